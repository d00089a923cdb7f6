use std::time::Duration;

use kube::runtime::controller::Action;
use phoenix_operator::crd::LoadSimulationJob;
use phoenix_operator::reconciler::{SIMULATION_FINALIZER, error_policy, reconcile_simulation};
use serde_json::{Value, json};

use crate::{FakeApi, NS, condition, load, phoenix_path, setup};

fn path() -> String {
    phoenix_path("loadsimulationjobs", "load")
}

const JOB: &str = "/apis/batch/v1/namespaces/obs/jobs/load-sim";

fn simulation(duration: &str, finalizer: bool) -> Value {
    let mut s = json!({
        "apiVersion": "phoenix.io/v1alpha1",
        "kind": "LoadSimulationJob",
        "metadata": {"name": "load", "namespace": NS, "uid": "2f2e3d4c-0000-4000-8000-000000000002"},
        "spec": {"profile": "high-churn", "processes": 50, "duration": duration, "seed": 4},
    });
    if finalizer {
        s["metadata"]["finalizers"] = json!([SIMULATION_FINALIZER]);
    }
    s
}

async fn reconcile(
    api: &FakeApi,
    ctx: &std::sync::Arc<phoenix_operator::reconciler::Context>,
) -> Result<Action, phoenix_operator::Error> {
    reconcile_simulation(load::<LoadSimulationJob>(api, &path()), ctx.clone()).await
}

fn phase(api: &FakeApi) -> String {
    api.get(&path()).unwrap()["status"]["phase"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn first_creation_runs_the_simulator_once() {
    let (api, ctx) = setup();
    api.put(&path(), simulation("10m", false));
    reconcile(&api, &ctx).await.unwrap();
    assert_eq!(
        api.get(&path()).unwrap()["metadata"]["finalizers"],
        json!([SIMULATION_FINALIZER])
    );

    reconcile(&api, &ctx).await.unwrap();
    let job = api.get(JOB).unwrap();
    let args: Vec<&str> = job["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        args.join(" "),
        "spawn --profile high-churn --seed 4 --duration 10m --processes 50 --max-processes 1024"
    );
    assert_eq!(job["spec"]["activeDeadlineSeconds"], 720);
    assert_eq!(
        job["metadata"]["ownerReferences"][0]["kind"],
        "LoadSimulationJob"
    );
    assert_eq!(phase(&api), "Pending");

    // The Job is not applied again: its pod template cannot change.
    api.clear_log();
    reconcile(&api, &ctx).await.unwrap();
    assert!(api.requests("PATCH", "/jobs/").is_empty());
}

#[tokio::test]
async fn the_status_follows_the_job_and_an_overrun_is_stopped() {
    let (api, ctx) = setup();
    api.put(&path(), simulation("10m", true));
    reconcile(&api, &ctx).await.unwrap();

    let started = chrono::Utc::now() - chrono::Duration::seconds(30);
    let start = started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    api.merge(JOB, &json!({"status": {"active": 1, "startTime": start}}));
    let action = reconcile(&api, &ctx).await.unwrap();
    assert_eq!(phase(&api), "Running");
    assert!(matches!(action, a if a != Action::await_change()));
    let status = api.get(&path()).unwrap()["status"].clone();
    assert_eq!(condition(&status, "Ready")["status"], "True");

    // Still running well past its duration: the operator stops it.
    let long_ago = (chrono::Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    api.merge(JOB, &json!({"status": {"startTime": long_ago}}));
    api.clear_log();
    let action = reconcile(&api, &ctx).await.unwrap();
    assert_eq!(action, Action::await_change());
    assert_eq!(phase(&api), "Stopped");
    assert!(api.get(JOB).is_none(), "the Job is deleted");
    // Stopped is recorded before the Job is deleted.
    let order: Vec<String> = api
        .log()
        .into_iter()
        .filter(|r| r.path.ends_with("/status") || r.method == "DELETE")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        order,
        [format!("PATCH {}/status", path()), format!("DELETE {JOB}")]
    );
    assert!(api.event_reasons().contains(&"Stopped".to_owned()));

    // A stopped simulation is not started again.
    reconcile(&api, &ctx).await.unwrap();
    assert!(api.get(JOB).is_none());
}

#[tokio::test]
async fn a_completed_job_succeeds() {
    let (api, ctx) = setup();
    api.put(&path(), simulation("10m", true));
    reconcile(&api, &ctx).await.unwrap();
    api.merge(JOB, &json!({"status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}}));
    reconcile(&api, &ctx).await.unwrap();
    assert_eq!(phase(&api), "Succeeded");
    assert!(api.get(&path()).unwrap()["status"]["completionTime"].is_string());
}

#[tokio::test]
async fn deletion_removes_the_job_before_the_finalizer() {
    let (api, ctx) = setup();
    api.put(&path(), simulation("10m", true));
    reconcile(&api, &ctx).await.unwrap();
    api.merge(
        &path(),
        &json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}),
    );
    reconcile(&api, &ctx).await.unwrap();
    let deletes = api.requests("DELETE", "jobs");
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].body["propagationPolicy"], "Foreground");
    assert!(api.get(JOB).is_none());
    assert_eq!(
        api.get(&path()).unwrap()["metadata"]["finalizers"],
        json!([])
    );
}

#[tokio::test]
async fn an_api_error_is_retried_with_backoff() {
    let (api, ctx) = setup();
    api.put(&path(), simulation("10m", true));
    api.fail_when(|r| (r.method == "GET" && r.path.contains("/jobs/")).then_some(503));
    let object = load::<LoadSimulationJob>(&api, &path());
    let error = reconcile_simulation(object.clone(), ctx.clone())
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("injected failure") && text.contains("ServiceUnavailable"),
        "the injected 503: {text}"
    );
    let failed = api.requests("GET", "/jobs/");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].path, JOB);
    assert_eq!(
        error_policy(object.clone(), &error, ctx.clone()),
        Action::requeue(Duration::from_secs(5))
    );
    assert_eq!(
        error_policy(object, &error, ctx),
        Action::requeue(Duration::from_secs(10))
    );
    assert!(api.get(JOB).is_none());
}

#[tokio::test]
async fn invalid_input_ends_degraded_naming_the_field() {
    let (api, ctx) = setup();
    api.put(&path(), simulation("soon", true));
    let action = reconcile(&api, &ctx).await.unwrap();
    assert_eq!(action, Action::await_change());
    let status = api.get(&path()).unwrap()["status"].clone();
    assert_eq!(status["phase"], "Invalid");
    let degraded = condition(&status, "Degraded");
    assert!(
        degraded["message"]
            .as_str()
            .unwrap()
            .starts_with("spec.duration:"),
        "{degraded}"
    );
    assert!(api.get(JOB).is_none());
}

#[tokio::test]
async fn a_recorded_job_that_is_gone_is_never_created_again() {
    // The Job was created (the status names it) and is gone before the duration passed.
    let (api, ctx) = setup();
    let mut s = simulation("10m", true);
    s["status"] = json!({"phase": "Running", "jobName": "load-sim",
        "startTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)});
    api.put(&path(), s);
    let action = reconcile(&api, &ctx).await.unwrap();
    assert_eq!(action, Action::await_change());
    assert!(api.requests("PATCH", "/jobs/").is_empty(), "no Job applied");
    assert!(api.requests("POST", "/jobs").is_empty(), "no Job created");
    assert!(api.get(JOB).is_none());
    assert_eq!(phase(&api), "Failed");
    let status = api.get(&path()).unwrap()["status"].clone();
    assert_eq!(condition(&status, "Degraded")["reason"], "JobDeleted");

    // Gone after its duration: Stopped, still not created again.
    let (api, ctx) = setup();
    let mut s = simulation("10m", true);
    let long_ago = (chrono::Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    s["status"] = json!({"phase": "Running", "jobName": "load-sim", "startTime": long_ago});
    api.put(&path(), s);
    reconcile(&api, &ctx).await.unwrap();
    reconcile(&api, &ctx).await.unwrap();
    assert_eq!(phase(&api), "Stopped");
    assert!(api.get(JOB).is_none());
    assert!(api.requests("PATCH", "/jobs/").is_empty());
}

#[tokio::test]
async fn a_job_the_api_server_refuses_as_invalid_ends_degraded() {
    let (api, ctx) = setup();
    let mut s = simulation("10m", true);
    s["spec"]["pod"] = json!({"resources": {"requests": {"cpu": "fast"}}});
    api.put(&path(), s);
    let field = "spec.template.spec.containers[0].resources.requests[cpu]";
    api.reject_when(
        |r| r.method == "PATCH" && r.path == JOB,
        field,
        "Invalid value: \"fast\": quantities must match the regular expression",
    );
    let action = reconcile(&api, &ctx).await.unwrap();
    assert_eq!(action, Action::await_change(), "not retried forever");
    let status = api.get(&path()).unwrap()["status"].clone();
    assert_eq!(status["phase"], "Invalid");
    let degraded = condition(&status, "Degraded");
    assert_eq!(degraded["status"], "True");
    assert!(
        degraded["message"].as_str().unwrap().starts_with(&format!(
            "Job load-sim: {field}: rejected by the API server"
        )),
        "{degraded}"
    );
    assert_eq!(api.event_reasons(), ["InvalidSpec"]);
}

#[tokio::test]
async fn a_name_too_long_for_the_job_ends_degraded_before_any_request() {
    let (api, ctx) = setup();
    let name = "l".repeat(60);
    let long_path = phoenix_path("loadsimulationjobs", &name);
    let mut s = simulation("10m", true);
    s["metadata"]["name"] = json!(name);
    api.put(&long_path, s);
    let action = reconcile_simulation(load::<LoadSimulationJob>(&api, &long_path), ctx)
        .await
        .unwrap();
    assert_eq!(action, Action::await_change());
    let status = api.get(&long_path).unwrap()["status"].clone();
    let message = condition(&status, "Degraded")["message"].clone();
    assert!(
        message.as_str().unwrap().starts_with("metadata.name:"),
        "{message}"
    );
    assert!(api.requests("PATCH", "/jobs/").is_empty());
}

#[tokio::test]
async fn spec_edits_after_the_job_exists_are_reported_as_ignored() {
    let (api, ctx) = setup();
    api.put(&path(), simulation("10m", true));
    reconcile(&api, &ctx).await.unwrap();
    assert!(api.get(JOB).is_some());
    // The spec changes: a new generation the Job cannot follow.
    api.merge(
        &path(),
        &json!({"metadata": {"generation": 2}, "spec": {"processes": 80, "duration": "soon"}}),
    );
    api.clear_log();
    reconcile(&api, &ctx).await.unwrap();
    reconcile(&api, &ctx).await.unwrap();
    assert!(api.requests("PATCH", "/jobs/").is_empty(), "the Job stays");
    let status = api.get(&path()).unwrap()["status"].clone();
    assert_eq!(
        status["observedGeneration"], 1,
        "the generation the Job runs"
    );
    // Even an invalid edit is only ignored: the Job goes on with its own duration.
    assert_eq!(status["phase"], "Pending");
    assert_eq!(condition(&status, "Degraded")["status"], "False");
    let progressing = condition(&status, "Progressing");
    assert_eq!(progressing["observedGeneration"], 2);
    assert!(
        progressing["message"]
            .as_str()
            .unwrap()
            .contains("spec changes after generation 1 are ignored"),
        "{progressing}"
    );
    assert_eq!(
        api.event_reasons(),
        ["SpecChangeIgnored"],
        "one event for the new generation, not one per reconcile"
    );
}
