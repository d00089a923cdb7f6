//! The `phoenix` binary over gRPC: `phoenix serve` on a free loopback port with a temporary
//! SQLite store; log in over REST, then create a short experiment, start it, follow
//! `WatchEvents` to the end of the run and read the results, all over gRPC on the same port.
//! SIGTERM stops the server gracefully.

#[allow(dead_code)]
mod support;

use std::time::Duration;

use anyhow::{Context, Result};
use phoenix_api::grpc::proto::experiment_service_client::ExperimentServiceClient;
use phoenix_api::grpc::proto::{self, Decision, EventKind, Phase};
use support::authed;
use support::process::PhoenixServer;

const ADMIN_PASSWORD: &str = "grpc-e2e-password";
const SPEC: &str = include_str!("grpc-fixtures/short-spec.json");

#[test]
fn an_experiment_runs_over_grpc_against_the_binary() -> Result<()> {
    let server = PhoenixServer::start(ADMIN_PASSWORD)?;
    let token = server.login("admin", ADMIN_PASSWORD)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_experiment(&server.url, &token))?;
    server.stop()
}

async fn run_experiment(url: &str, token: &str) -> Result<()> {
    let mut client = ExperimentServiceClient::connect(url.to_owned()).await?;

    // No token: refused before anything runs.
    let refused = client
        .list_experiments(proto::ListExperimentsRequest::default())
        .await
        .err()
        .context("a call without a token is refused")?;
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    let created = client
        .create_experiment(authed(
            token,
            proto::CreateExperimentRequest {
                spec_json: SPEC.to_owned(),
            },
        )?)
        .await?
        .into_inner();
    assert_eq!(created.phase(), Phase::Pending);
    assert_eq!(created.owner, "admin");
    let id = created.id;

    client
        .start_experiment(authed(
            token,
            proto::StartExperimentRequest { id: id.clone() },
        )?)
        .await?;
    let mut stream = client
        .watch_events(authed(token, proto::WatchEventsRequest { id: id.clone() })?)
        .await?
        .into_inner();
    let mut events = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(120), stream.message())
        .await
        .context("the stream ends once the run is over")??
    {
        events.push(event);
    }
    assert_eq!(
        events.first().map(proto::ExperimentEvent::kind),
        Some(EventKind::Created)
    );
    let phases: Vec<Phase> = events
        .iter()
        .filter(|e| e.kind() == EventKind::Transition)
        .map(proto::ExperimentEvent::to_phase)
        .collect();
    for phase in [Phase::Initializing, Phase::Running, Phase::Analyzing] {
        assert!(phases.contains(&phase), "{phase:?} in {phases:?}");
    }
    assert_eq!(phases.last(), Some(&Phase::Completed), "{events:?}");

    let experiment = client
        .get_experiment(authed(
            token,
            proto::GetExperimentRequest { id: id.clone() },
        )?)
        .await?
        .into_inner();
    assert_eq!(experiment.phase(), Phase::Completed);
    assert!(experiment.has_results);
    assert!(experiment.windows_measured > 0);

    let results = client
        .get_results(authed(token, proto::GetResultsRequest { id: id.clone() })?)
        .await?
        .into_inner();
    assert_eq!(results.experiment_id, id);
    assert_ne!(results.decision(), Decision::Unspecified);
    let baseline = results.baseline.context("baseline figures")?;
    let candidate = results.candidate.context("candidate figures")?;
    assert!(candidate.distinct_series < baseline.distinct_series);
    assert_eq!(candidate.critical_coverage, 1.0);
    let comparison = results.comparison.context("comparison")?;
    assert!(comparison.cardinality_reduction > 0.0);
    let full: serde_json::Value = serde_json::from_str(&results.results_json)?;
    assert_eq!(full["windows"], results.windows);
    Ok(())
}
