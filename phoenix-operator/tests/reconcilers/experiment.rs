use std::time::Duration;

use kube::runtime::controller::Action;
use phoenix_operator::crd::{PhoenixExperiment, PhoenixProcessPipeline};
use phoenix_operator::executor::ACTIVE_PIPELINE;
use phoenix_operator::reconciler::{
    EXPERIMENT_FINALIZER, error_policy, pipeline_experiment_id, reconcile_experiment,
};
use serde_json::{Value, json};

use crate::{FakeApi, NS, condition, load, phoenix_path, setup};

fn path() -> String {
    phoenix_path("phoenixexperiments", "trial")
}

fn pipeline_path(name: &str) -> String {
    phoenix_path("phoenixprocesspipelines", name)
}

const UID: &str = "3f2e3d4c-0000-4000-8000-000000000003";
const ID: &str = "exp-3f2e3d4c";

fn experiment(candidate_parameters: &Value) -> Value {
    json!({
        "apiVersion": "phoenix.io/v1alpha1",
        "kind": "PhoenixExperiment",
        "metadata": {"name": "trial", "namespace": NS, "uid": UID, "finalizers": [EXPERIMENT_FINALIZER]},
        "spec": {
            "experiment": {
                "name": "topk-trial",
                "baseline": {"template": "process-baseline-v1"},
                "candidate": {"template": "process-topk-v1", "parameters": candidate_parameters},
                "duration": "10m",
                "criticalProcesses": ["^postgres$"],
                "workload": {"profile": "realistic", "processes": 30, "seed": 1},
            },
            "loadSimulation": {"mode": "real"},
        },
    })
}

/// Polls the fake API server until `done` holds.
async fn wait_for(api: &FakeApi, what: &str, done: impl Fn(&FakeApi) -> bool) {
    for _ in 0..3000 {
        if done(api) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

fn phase(api: &FakeApi) -> Option<String> {
    api.get(&path()).unwrap()["status"]["phase"]
        .as_str()
        .map(str::to_owned)
}

fn mark_ready(api: &FakeApi, name: &str) {
    let p = api.get(&pipeline_path(name)).unwrap();
    api.merge(
        &pipeline_path(name),
        &json!({"status": {
            "observedGeneration": p["metadata"]["generation"],
            "desiredNodes": 1, "readyNodes": 1, "updatedNodes": 1,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "",
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        }}),
    );
}

#[tokio::test]
async fn first_creation_records_and_runs_the_experiment() {
    let (api, ctx) = setup();
    api.put(&path(), experiment(&json!({"topK": 10})));
    let action = reconcile_experiment(load::<PhoenixExperiment>(&api, &path()), ctx.clone())
        .await
        .unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(30)));
    let status = api.get(&path()).unwrap()["status"].clone();
    assert_eq!(status["experimentId"], ID);
    assert_eq!(condition(&status, "Progressing")["status"], "True");

    // The run deploys both variants, owned by the experiment, and the load simulation.
    wait_for(&api, "both pipelines", |api| {
        api.get(&pipeline_path("trial-baseline")).is_some()
            && api.get(&pipeline_path("trial-candidate")).is_some()
    })
    .await;
    let candidate = api.get(&pipeline_path("trial-candidate")).unwrap();
    assert_eq!(candidate["spec"]["experimentId"], ID);
    assert_eq!(candidate["spec"]["parameters"]["topK"], 10);
    assert_eq!(candidate["metadata"]["ownerReferences"][0]["uid"], UID);
    wait_for(&api, "the load simulation", |api| {
        api.get(&phoenix_path("loadsimulationjobs", "trial-load"))
            .is_some()
    })
    .await;
    assert_eq!(phase(&api).as_deref(), Some("initializing"));

    // Once both are ready the run goes on; without Prometheus it cannot measure, fails with
    // that reason, and tears the variants down.
    mark_ready(&api, "trial-baseline");
    mark_ready(&api, "trial-candidate");
    wait_for(&api, "the failure", |api| {
        phase(api).as_deref() == Some("failed")
    })
    .await;
    let status = api.get(&path()).unwrap()["status"].clone();
    assert!(
        status["failure"]
            .as_str()
            .unwrap()
            .contains("no Prometheus URL"),
        "{status}"
    );
    wait_for(&api, "the tear-down", |api| {
        api.get(&pipeline_path("trial-candidate")).is_none()
            && api
                .get(&phoenix_path("loadsimulationjobs", "trial-load"))
                .is_none()
    })
    .await;
    let history: Vec<String> = status["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to"].as_str().unwrap_or("-").to_owned())
        .collect();
    assert_eq!(history, ["-", "initializing", "running", "failed"]);
    let reasons = api.event_reasons();
    for reason in ["Created", "Initializing", "Running", "Failed"] {
        assert!(
            reasons.contains(&reason.to_owned()),
            "{reason} in {reasons:?}"
        );
    }

    // The next reconcile reports the failure as Degraded and does not restart the run.
    reconcile_experiment(load::<PhoenixExperiment>(&api, &path()), ctx.clone())
        .await
        .unwrap();
    let status = api.get(&path()).unwrap()["status"].clone();
    assert_eq!(condition(&status, "Degraded")["status"], "True");
    assert_eq!(phase(&api).as_deref(), Some("failed"));
}

fn completed(decision: Option<&str>) -> Value {
    let mut e = experiment(&json!({"topK": 10}));
    e["spec"]["decision"] = json!(decision);
    e["status"] = json!({
        "experimentId": ID, "recordVersion": 7, "phase": "completed", "windowsMeasured": 0,
        "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T01:00:00Z",
        "history": [{"at": "2026-01-01T00:00:10Z", "actor": "phoenix-controller",
                     "from": "initializing", "to": "running", "event": "prepared", "message": ""}],
    });
    e
}

#[tokio::test]
async fn a_decision_in_the_spec_promotes_then_rolls_back() {
    let (api, ctx) = setup();
    api.put(&path(), completed(Some("promote")));
    reconcile_experiment(load::<PhoenixExperiment>(&api, &path()), ctx.clone())
        .await
        .unwrap();
    let status = api.get(&path()).unwrap()["status"].clone();
    assert_eq!(status["phase"], "promoted");
    assert_eq!(status["recordVersion"], 8);
    assert_eq!(status["decision"]["decision"], "promote");
    assert_eq!(status["decision"]["applied"], true);
    let active = api.get(&pipeline_path(ACTIVE_PIPELINE)).unwrap();
    assert_eq!(active["spec"]["template"], "process-topk-v1");
    assert!(
        active["metadata"]["ownerReferences"].is_null(),
        "outlives the experiment"
    );
    // Its series are not the candidate's: it derives an experiment id of its own.
    assert!(active["spec"]["experimentId"].is_null(), "{active}");
    assert!(
        active["metadata"]["labels"]["phoenix.dev/experiment"].is_null(),
        "{active}"
    );
    let mut with_uid: PhoenixProcessPipeline = serde_json::from_value(active.clone()).unwrap();
    with_uid.metadata.uid = Some("7a7a7a7a-0000-4000-8000-000000000007".to_owned());
    let active_id = pipeline_experiment_id(&with_uid).unwrap();
    assert_ne!(active_id, ID);
    assert_eq!(active_id, "exp-7a7a7a7a");
    assert!(api.event_reasons().contains(&"DecisionApplied".to_owned()));

    // Reconciling again does not promote twice.
    api.clear_log();
    reconcile_experiment(load::<PhoenixExperiment>(&api, &path()), ctx.clone())
        .await
        .unwrap();
    assert!(api.requests("PATCH", ACTIVE_PIPELINE).is_empty());

    // Rolling back removes the promoted pipeline (there was none before it).
    api.merge(&path(), &json!({"spec": {"decision": "rollback"}}));
    reconcile_experiment(load::<PhoenixExperiment>(&api, &path()), ctx.clone())
        .await
        .unwrap();
    let status = api.get(&path()).unwrap()["status"].clone();
    assert_eq!(status["phase"], "rolledBack");
    assert_eq!(status["decision"]["decision"], "rollback");
    assert!(api.get(&pipeline_path(ACTIVE_PIPELINE)).is_none());
}

#[tokio::test]
async fn a_decision_the_phase_does_not_allow_is_refused_and_recorded() {
    let (api, ctx) = setup();
    let mut e = completed(Some("promote"));
    e["status"]["phase"] = json!("failed");
    e["status"]["failure"] = json!("executor: boom");
    api.put(&path(), e);
    reconcile_experiment(load::<PhoenixExperiment>(&api, &path()), ctx.clone())
        .await
        .unwrap();
    let status = api.get(&path()).unwrap()["status"].clone();
    assert_eq!(status["phase"], "failed");
    assert_eq!(status["decision"]["applied"], false);
    assert!(
        status["decision"]["message"]
            .as_str()
            .unwrap()
            .starts_with("refused"),
        "{status}"
    );
    assert!(api.get(&pipeline_path(ACTIVE_PIPELINE)).is_none());
    assert!(api.event_reasons().contains(&"DecisionRefused".to_owned()));
}

#[tokio::test]
async fn a_cancel_decision_stops_the_run_and_tears_down() {
    let (api, ctx) = setup();
    api.put(&path(), experiment(&json!({"topK": 10})));
    reconcile_experiment(load::<PhoenixExperiment>(&api, &path()), ctx.clone())
        .await
        .unwrap();
    wait_for(&api, "both pipelines", |api| {
        api.get(&pipeline_path("trial-candidate")).is_some()
    })
    .await;
    api.merge(&path(), &json!({"spec": {"decision": "cancel"}}));
    let action = reconcile_experiment(load::<PhoenixExperiment>(&api, &path()), ctx.clone())
        .await
        .unwrap();
    assert_eq!(action, Action::await_change());
    let status = api.get(&path()).unwrap()["status"].clone();
    assert_eq!(status["phase"], "cancelled", "{status}");
    assert_eq!(status["decision"]["applied"], true);
    assert!(api.get(&pipeline_path("trial-baseline")).is_none());
    assert!(api.get(&pipeline_path("trial-candidate")).is_none());
    // The stopped run does not come back.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(phase(&api).as_deref(), Some("cancelled"));
    assert!(api.get(&pipeline_path("trial-candidate")).is_none());
}

#[tokio::test]
async fn deletion_stops_the_run_and_tears_the_variants_down_before_the_finalizer() {
    let (api, ctx) = setup();
    api.put(&path(), experiment(&json!({"topK": 10})));
    // A run in progress: it has deployed the variants and the simulation, and polls the
    // pipelines until they are ready.
    reconcile_experiment(load::<PhoenixExperiment>(&api, &path()), ctx.clone())
        .await
        .unwrap();
    wait_for(&api, "the variants and the simulation", |api| {
        api.get(&pipeline_path("trial-baseline")).is_some()
            && api.get(&pipeline_path("trial-candidate")).is_some()
            && api
                .get(&phoenix_path("loadsimulationjobs", "trial-load"))
                .is_some()
    })
    .await;
    wait_for(&api, "the run polling the pipelines", |api| {
        api.requests("GET", "/phoenixprocesspipelines/").len() >= 2
    })
    .await;

    api.merge(
        &path(),
        &json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}),
    );
    api.clear_log();
    reconcile_experiment(load::<PhoenixExperiment>(&api, &path()), ctx.clone())
        .await
        .unwrap();
    let deleted: Vec<String> = api
        .requests("DELETE", "")
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        deleted,
        [
            phoenix_path("loadsimulationjobs", "trial-load"),
            pipeline_path("trial-baseline"),
            pipeline_path("trial-candidate"),
        ]
    );
    assert_eq!(
        api.get(&path()).unwrap()["metadata"]["finalizers"],
        json!([])
    );
    // The run was stopped: nothing polls or re-creates the variants any more.
    api.clear_log();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after: Vec<String> = api
        .log()
        .iter()
        .filter(|r| !r.path.contains("/events"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(after.is_empty(), "the run goes on: {after:?}");
    assert!(api.get(&pipeline_path("trial-candidate")).is_none());
}

#[tokio::test]
async fn an_api_error_is_retried_with_backoff() {
    let (api, ctx) = setup();
    api.put(&path(), experiment(&json!({})));
    api.fail_when(|r| (r.method == "PATCH" && r.path.ends_with("/status")).then_some(500));
    let object = load::<PhoenixExperiment>(&api, &path());
    let error = reconcile_experiment(object.clone(), ctx.clone())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("injected failure"), "{error}");
    assert_eq!(
        error_policy(object.clone(), &error, ctx.clone()),
        Action::requeue(Duration::from_secs(5))
    );
    assert_eq!(
        error_policy(object, &error, ctx.clone()),
        Action::requeue(Duration::from_secs(10))
    );
    assert!(
        api.get(&pipeline_path("trial-baseline")).is_none(),
        "no run without a record"
    );
}

#[tokio::test]
async fn invalid_input_ends_degraded_naming_the_field() {
    let (api, ctx) = setup();
    api.put(&path(), experiment(&json!({"topK": 0})));
    let action = reconcile_experiment(load::<PhoenixExperiment>(&api, &path()), ctx.clone())
        .await
        .unwrap();
    assert_eq!(action, Action::await_change());
    let status = api.get(&path()).unwrap()["status"].clone();
    let degraded = condition(&status, "Degraded");
    assert!(
        degraded["message"]
            .as_str()
            .unwrap()
            .starts_with("spec.experiment.candidate.parameters.topK:"),
        "{degraded}"
    );
    assert!(
        status["experimentId"].is_null(),
        "nothing recorded, nothing run"
    );

    let mut unknown = experiment(&json!({}));
    unknown["spec"]["experiment"]["candidate"]["template"] = json!("process-nope-v1");
    api.put(&path(), unknown);
    reconcile_experiment(load::<PhoenixExperiment>(&api, &path()), ctx.clone())
        .await
        .unwrap();
    let status = api.get(&path()).unwrap()["status"].clone();
    let message = condition(&status, "Degraded")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.starts_with("spec.experiment.candidate.template:"),
        "{message}"
    );

    let mut bad = experiment(&json!({}));
    bad["spec"]["experiment"]["duration"] = json!("forever");
    api.put(&path(), bad);
    reconcile_experiment(load::<PhoenixExperiment>(&api, &path()), ctx)
        .await
        .unwrap();
    let status = api.get(&path()).unwrap()["status"].clone();
    let message = condition(&status, "Degraded")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.starts_with("spec.experiment.duration:"),
        "{message}"
    );
}

/// The figures a fake Prometheus answers for one variant: the candidate keeps a fifth of the
/// baseline's series and points, and every critical process.
fn prometheus_answer(query: &str) -> Value {
    let candidate = query.contains("phoenix_variant=\"candidate\"");
    let pick = |baseline: f64, other: f64| if candidate { other } else { baseline };
    let sample =
        |metric: Value, value: f64| json!({"metric": metric, "value": [1.0, value.to_string()]});
    let result = if query.contains("process_executable_name") {
        vec![sample(json!({}), 1.0)]
    } else if query.starts_with("count by (__name__)") {
        vec![
            sample(
                json!({"__name__": "process_cpu_time_seconds_total"}),
                pick(60.0, 12.0),
            ),
            sample(
                json!({"__name__": "process_memory_usage_bytes"}),
                pick(40.0, 8.0),
            ),
        ]
    } else if query.contains("count_over_time") {
        vec![sample(json!({}), pick(1000.0, 200.0))]
    } else if query.contains("otelcol_exporter_sent") {
        vec![sample(json!({}), pick(900.0, 180.0))]
    } else if query.contains("otelcol_process_cpu") {
        vec![sample(json!({}), pick(0.05, 0.04))]
    } else if query.contains("otelcol_process_memory") {
        vec![sample(json!({}), pick(100e6, 90e6))]
    } else if query.starts_with("avg_over_time(count(") || query.starts_with("count(") {
        vec![sample(json!({}), pick(100.0, 20.0))]
    } else {
        Vec::new()
    };
    json!({"status": "success", "data": {"resultType": "vector", "result": result}})
}

/// Serves [`prometheus_answer`] on 127.0.0.1 at a port the OS picks.
async fn fake_prometheus() -> (String, tokio::task::JoinHandle<()>) {
    async fn query(body: String) -> axum::Json<Value> {
        let promql = form_urlencoded::parse(body.as_bytes())
            .find(|(k, _)| k == "query")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        axum::Json(prometheus_answer(&promql))
    }
    let app = axum::Router::new().route("/api/v1/query", axum::routing::post(query));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, server)
}

#[tokio::test]
async fn a_run_measures_through_prometheus_and_completes() {
    let (url, prometheus) = fake_prometheus().await;
    let (api, ctx) = crate::setup_with_prometheus(&url);
    let mut e = experiment(&json!({"topK": 10}));
    e["spec"]["experiment"]["duration"] = json!("2s");
    e["spec"]["experiment"]["scrapeInterval"] = json!("1s");
    e["spec"]["experiment"]["measurementWindow"] = json!("1s");
    api.put(&path(), e);
    reconcile_experiment(load::<PhoenixExperiment>(&api, &path()), ctx.clone())
        .await
        .unwrap();
    wait_for(&api, "both pipelines", |api| {
        api.get(&pipeline_path("trial-baseline")).is_some()
            && api.get(&pipeline_path("trial-candidate")).is_some()
    })
    .await;
    mark_ready(&api, "trial-baseline");
    mark_ready(&api, "trial-candidate");
    wait_for(&api, "completion", |api| {
        matches!(phase(api).as_deref(), Some("completed" | "failed"))
    })
    .await;
    let status = api.get(&path()).unwrap()["status"].clone();
    assert_eq!(status["phase"], "completed", "{status}");
    assert!(status["runStartedAt"].is_string(), "{status}");
    assert_eq!(status["windowsMeasured"], 2);
    let window = &status["windows"][1];
    assert_eq!(window["baseline"]["distinctSeriesToDate"], 100);
    assert_eq!(window["candidate"]["distinctSeriesToDate"], 20);
    assert_eq!(window["candidate"]["dataPoints"], 180);
    assert_eq!(
        window["candidate"]["criticalSeen"],
        window["baseline"]["criticalExpected"]
    );
    assert_eq!(window["baseline"]["cpuCores"], 0.05);
    let reduction = status["results"]["comparison"]["cardinalityReduction"]
        .as_f64()
        .unwrap();
    assert!((reduction - 0.8).abs() < 1e-9, "{reduction}");
    assert!(status["recommendation"].is_string(), "{status}");
    assert_eq!(status["results"]["noise"], "noisy");
    // The run tore its variants down after measuring.
    assert!(api.get(&pipeline_path("trial-candidate")).is_none());
    assert!(api.event_reasons().contains(&"Completed".to_owned()));
    prometheus.abort();
}
