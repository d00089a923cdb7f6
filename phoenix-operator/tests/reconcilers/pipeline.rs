use std::time::Duration;

use kube::runtime::controller::Action;
use phoenix_operator::Error;
use phoenix_operator::crd::PhoenixProcessPipeline;
use phoenix_operator::objects::CONFIG_HASH_ANNOTATION;
use phoenix_operator::reconciler::{
    CLEANUP_BOUND, PIPELINE_FINALIZER, error_policy, reconcile_pipeline,
};
use serde_json::{Value, json};

use crate::{FakeApi, NS, condition, load, phoenix_path, setup};

fn path() -> String {
    phoenix_path("phoenixprocesspipelines", "topk")
}

const DS: &str = "/apis/apps/v1/namespaces/obs/daemonsets/topk-collector";
const CM: &str = "/api/v1/namespaces/obs/configmaps/topk-collector-config";
const SVC: &str = "/api/v1/namespaces/obs/services/topk-metrics";

fn pipeline(parameters: &Value, finalizer: bool) -> Value {
    let mut p = json!({
        "apiVersion": "phoenix.io/v1alpha1",
        "kind": "PhoenixProcessPipeline",
        "metadata": {"name": "topk", "namespace": NS, "uid": "1f2e3d4c-0000-4000-8000-000000000001"},
        "spec": {
            "variant": "candidate",
            "template": "process-topk-v1",
            "parameters": parameters,
        },
    });
    if finalizer {
        p["metadata"]["finalizers"] = json!([PIPELINE_FINALIZER]);
    }
    p
}

async fn reconcile(
    api: &FakeApi,
    ctx: &std::sync::Arc<phoenix_operator::reconciler::Context>,
) -> Result<Action, Error> {
    reconcile_pipeline(load::<PhoenixProcessPipeline>(api, &path()), ctx.clone()).await
}

fn pod_hash(api: &FakeApi) -> String {
    api.get(DS).unwrap()["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn first_creation_applies_the_collector_and_reports_readiness() {
    let (api, ctx) = setup();
    api.put(&path(), pipeline(&json!({"topK": 5}), false));

    // The first reconcile only adds the finalizer.
    reconcile(&api, &ctx).await.unwrap();
    assert_eq!(
        api.get(&path()).unwrap()["metadata"]["finalizers"],
        json!([PIPELINE_FINALIZER])
    );
    assert!(api.get(DS).is_none());

    let action = reconcile(&api, &ctx).await.unwrap();
    assert_eq!(
        action,
        Action::requeue(Duration::from_secs(10)),
        "not ready yet"
    );
    for (object, fragment) in [(CM, "configmaps"), (DS, "daemonsets"), (SVC, "services")] {
        let applies = api.requests("PATCH", fragment);
        assert_eq!(applies.len(), 1, "{fragment}");
        assert!(
            applies[0].content_type.contains("apply-patch"),
            "server-side apply"
        );
        assert!(
            applies[0].query.contains("fieldManager=phoenix-operator"),
            "{}",
            applies[0].query
        );
        assert!(applies[0].query.contains("force=true"));
        let stored = api.get(object).unwrap();
        assert_eq!(
            stored["metadata"]["ownerReferences"][0]["kind"],
            "PhoenixProcessPipeline"
        );
    }
    let ds = api.get(DS).unwrap();
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"], true);
    assert_eq!(pod["hostNetwork"], false);
    let status = api.get(&path()).unwrap()["status"].clone();
    assert_eq!(status["configHash"], pod_hash(&api));
    assert_eq!(status["prometheusPort"], 8899);
    assert_eq!(condition(&status, "Ready")["status"], "False");
    assert_eq!(condition(&status, "Progressing")["status"], "True");
    assert_eq!(status["observedGeneration"], 1);

    // The DaemonSet rolls out on two nodes.
    api.merge(
        DS,
        &json!({"status": {"desiredNumberScheduled": 2, "numberReady": 2, "updatedNumberScheduled": 2,
                           "currentNumberScheduled": 2, "numberMisscheduled": 0,
                           "observedGeneration": ds["metadata"]["generation"]}}),
    );
    let action = reconcile(&api, &ctx).await.unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));
    let status = api.get(&path()).unwrap()["status"].clone();
    assert_eq!(
        (
            status["desiredNodes"].as_i64(),
            status["readyNodes"].as_i64()
        ),
        (Some(2), Some(2))
    );
    assert_eq!(condition(&status, "Ready")["status"], "True");
    assert_eq!(condition(&status, "Degraded")["status"], "False");
    let reasons = api.event_reasons();
    assert!(reasons.contains(&"Progressing".to_owned()), "{reasons:?}");
    assert!(reasons.contains(&"Ready".to_owned()), "{reasons:?}");
}

#[tokio::test]
async fn a_config_change_rolls_the_daemon_set() {
    let (api, ctx) = setup();
    api.put(
        &path(),
        pipeline(&json!({"collectionInterval": "10s"}), true),
    );
    reconcile(&api, &ctx).await.unwrap();
    let first = pod_hash(&api);
    let first_config = api.get(CM).unwrap()["data"]["collector.yaml"].clone();

    api.merge(&path(), &json!({"spec": {"parameters": {"collectionInterval": "30s"}}, "metadata": {"generation": 2}}));
    reconcile(&api, &ctx).await.unwrap();
    let second = pod_hash(&api);
    assert_ne!(
        first, second,
        "a new hash on the pod template rolls the pods"
    );
    let config = api.get(CM).unwrap()["data"]["collector.yaml"].clone();
    assert_ne!(config, first_config);
    assert!(
        config
            .as_str()
            .unwrap()
            .contains("collection_interval: 30s")
    );
    let status = api.get(&path()).unwrap()["status"].clone();
    assert_eq!(status["configHash"], second);
    assert_eq!(status["observedGeneration"], 2);
    assert!(api.event_reasons().contains(&"ConfigChanged".to_owned()));

    // The same spec again changes nothing on the pods.
    reconcile(&api, &ctx).await.unwrap();
    assert_eq!(pod_hash(&api), second);
}

#[tokio::test]
async fn deletion_removes_the_collectors_before_the_finalizer() {
    let (api, ctx) = setup();
    api.put(&path(), pipeline(&json!({}), true));
    reconcile(&api, &ctx).await.unwrap();
    assert!(api.get(DS).is_some());
    api.clear_log();

    api.merge(
        &path(),
        &json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}),
    );
    reconcile(&api, &ctx).await.unwrap();
    let deletes = api.requests("DELETE", "");
    let paths: Vec<&str> = deletes.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, [DS, SVC, CM]);
    assert_eq!(deletes[0].body["propagationPolicy"], "Foreground");
    assert!(api.get(DS).is_none() && api.get(CM).is_none() && api.get(SVC).is_none());
    let finalizers = api.get(&path()).unwrap()["metadata"]["finalizers"].clone();
    assert_eq!(
        finalizers,
        json!([]),
        "finalizer removed once the collectors are gone"
    );
}

#[tokio::test]
async fn deletion_waits_while_the_daemon_set_is_still_there() {
    let (api, ctx) = setup();
    api.put(&path(), pipeline(&json!({}), true));
    reconcile(&api, &ctx).await.unwrap();
    // The API server keeps a DaemonSet deleted in the foreground while its pods terminate.
    api.hold_on_delete(DS);
    api.merge(
        &path(),
        &json!({"metadata": {"deletionTimestamp": deletion_at(Duration::ZERO)}}),
    );
    let object = load::<PhoenixProcessPipeline>(&api, &path());
    let error = reconcile_pipeline(object.clone(), ctx.clone())
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("waiting for DaemonSet obs/topk-collector"),
        "{error}"
    );
    assert_eq!(
        api.get(&path()).unwrap()["metadata"]["finalizers"],
        json!([PIPELINE_FINALIZER])
    );
    assert_eq!(
        error_policy(object, &error, ctx.clone()),
        Action::requeue(Duration::from_secs(5))
    );
    // Once it is gone, the finalizer goes.
    api.release(DS);
    reconcile(&api, &ctx).await.unwrap();
    assert_eq!(
        api.get(&path()).unwrap()["metadata"]["finalizers"],
        json!([])
    );
}

/// A `deletionTimestamp` `ago` before now.
fn deletion_at(ago: Duration) -> String {
    (chrono::Utc::now() - chrono::Duration::from_std(ago).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test]
async fn a_daemon_set_stuck_past_the_bound_releases_the_finalizer_with_a_warning() {
    let (api, ctx) = setup();
    api.put(&path(), pipeline(&json!({}), true));
    reconcile(&api, &ctx).await.unwrap();
    api.hold_on_delete(DS);
    let past_bound = CLEANUP_BOUND + Duration::from_secs(60);
    api.merge(
        &path(),
        &json!({"metadata": {"deletionTimestamp": deletion_at(past_bound)}}),
    );
    let action = reconcile(&api, &ctx).await.unwrap();
    assert_eq!(action, Action::await_change());
    assert!(api.get(DS).is_some(), "the DaemonSet is still there");
    assert_eq!(
        api.get(&path()).unwrap()["metadata"]["finalizers"],
        json!([]),
        "the finalizer is released after the bound"
    );
    let warning = api
        .requests("POST", "/events")
        .into_iter()
        .find(|r| r.body["reason"] == "CleanupTimedOut")
        .expect("a CleanupTimedOut event");
    assert_eq!(warning.body["type"], "Warning");
}

#[tokio::test]
async fn an_object_the_api_server_refuses_as_invalid_ends_degraded() {
    let (api, ctx) = setup();
    let mut p = pipeline(&json!({}), true);
    p["spec"]["collector"] = json!({"resources": {"limits": {"memory": "lots"}}});
    api.put(&path(), p);
    let field = "spec.template.spec.containers[0].resources.limits[memory]";
    api.reject_when(
        |r| r.method == "PATCH" && r.path.contains("daemonsets"),
        field,
        "Invalid value: \"lots\": quantities must match the regular expression",
    );
    let action = reconcile(&api, &ctx).await.unwrap();
    assert_eq!(action, Action::await_change(), "not retried forever");
    let status = api.get(&path()).unwrap()["status"].clone();
    let degraded = condition(&status, "Degraded");
    assert_eq!(degraded["status"], "True");
    let message = degraded["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "DaemonSet topk-collector: {field}: rejected by the API server"
        )),
        "{message}"
    );
    assert!(message.contains("\"lots\""), "{message}");
    assert_eq!(api.event_reasons(), ["InvalidSpec"]);
}

#[tokio::test]
async fn an_api_error_is_retried_with_growing_backoff() {
    let (api, ctx) = setup();
    api.put(&path(), pipeline(&json!({}), true));
    api.fail_when(|r| (r.method == "PATCH" && r.path.contains("daemonsets")).then_some(500));
    let object = load::<PhoenixProcessPipeline>(&api, &path());
    let error = reconcile_pipeline(object.clone(), ctx.clone())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("injected failure"), "{error}");
    assert_eq!(
        error_policy(object.clone(), &error, ctx.clone()),
        Action::requeue(Duration::from_secs(5))
    );
    assert_eq!(
        error_policy(object.clone(), &error, ctx.clone()),
        Action::requeue(Duration::from_secs(10))
    );
    // Once the API server recovers, the reconcile succeeds and the backoff starts over.
    api.stop_failing();
    reconcile_pipeline(object.clone(), ctx.clone())
        .await
        .unwrap();
    assert_eq!(
        error_policy(object, &error, ctx),
        Action::requeue(Duration::from_secs(5))
    );
}

#[tokio::test]
async fn invalid_input_ends_degraded_naming_the_field() {
    let (api, ctx) = setup();
    api.put(&path(), pipeline(&json!({"topK": 0}), true));
    let action = reconcile(&api, &ctx).await.unwrap();
    assert_eq!(
        action,
        Action::await_change(),
        "no retry until the spec changes"
    );
    let status = api.get(&path()).unwrap()["status"].clone();
    let degraded = condition(&status, "Degraded");
    assert_eq!(degraded["status"], "True");
    assert_eq!(degraded["reason"], "InvalidSpec");
    assert!(
        degraded["message"]
            .as_str()
            .unwrap()
            .starts_with("spec.parameters.topK:"),
        "{degraded}"
    );
    assert!(api.get(DS).is_none(), "nothing deployed");
    assert_eq!(api.event_reasons(), ["InvalidSpec"]);

    // An unknown template, the same way; the event is not repeated for the same message.
    api.merge(
        &path(),
        &json!({"spec": {"template": "process-nope-v1", "parameters": {}}}),
    );
    reconcile(&api, &ctx).await.unwrap();
    reconcile(&api, &ctx).await.unwrap();
    let status = api.get(&path()).unwrap()["status"].clone();
    assert!(
        condition(&status, "Degraded")["message"]
            .as_str()
            .unwrap()
            .starts_with("spec.template: unknown template")
    );
    assert_eq!(
        api.events_published(),
        2,
        "one more event, not one per reconcile"
    );

    // Fixed: it recovers.
    api.merge(
        &path(),
        &json!({"spec": {"template": "process-topk-v1", "parameters": {"topK": null}}}),
    );
    reconcile(&api, &ctx).await.unwrap();
    let status = api.get(&path()).unwrap()["status"].clone();
    assert_eq!(condition(&status, "Degraded")["status"], "False");
    assert!(api.get(DS).is_some());
}
