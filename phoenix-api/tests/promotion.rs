//! Promotion and rollback: recorded as the target's active pipeline in the pipeline store,
//! and with a GitOps repository configured, committed to it.

// Test helpers outside `#[test]` functions unwrap too: a failure is the test failing.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use phoenix_api::{AppState, Principal, ServerConfig};
use phoenix_core::experiment::{Experiment, ExperimentId, ExperimentSpec};
use phoenix_core::measurement::VariantRole;
use phoenix_core::phase::Phase;
use phoenix_generator::gitops::GitOpsRepo;
use phoenix_store::{PipelineRevision, PipelineStore, PipelineTarget, Role};

const SMALL_SPEC: &str = include_str!("fixtures/small-spec.json");

fn admin() -> Principal {
    Principal::new("admin", Role::Admin)
}

async fn open(gitops: Option<&Path>) -> AppState {
    let mut config = ServerConfig::default()
        .with_database_url("memory://")
        .with_admin_password("correct horse battery");
    if let Some(path) = gitops {
        config = config.with_gitops_repo(path);
    }
    AppState::open(&config).await.unwrap()
}

/// A GitOps repository in a new directory, and a state promoting into it.
async fn open_with_gitops() -> (tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().unwrap();
    GitOpsRepo::init(dir.path()).unwrap();
    let state = open(Some(dir.path())).await;
    (dir, state)
}

/// The local target's active pipeline, if there is one.
async fn active_pipeline(state: &AppState) -> Option<PipelineRevision> {
    state
        .service()
        .store()
        .active(&PipelineTarget::Local)
        .await
        .unwrap()
}

/// The side of the experiment `revision` came from.
fn variant(revision: &PipelineRevision) -> VariantRole {
    revision.origin.as_ref().unwrap().variant
}

/// The active config committed to the GitOps repository `repo`.
fn committed(repo: &Path) -> String {
    std::fs::read_to_string(repo.join("targets/local/active.yaml")).unwrap()
}

/// Rolls the experiment `id` back: the baseline is active again, and committed to the GitOps
/// repository `repo`.
async fn rolls_back(state: &AppState, repo: &Path, id: &ExperimentId) {
    let rolled = state
        .service()
        .rollback_experiment(&admin(), id)
        .await
        .unwrap();
    assert_eq!(rolled.status.phase, Phase::RolledBack);
    let restored = active_pipeline(state).await.unwrap();
    assert_eq!(variant(&restored), VariantRole::Baseline);
    assert_eq!(
        committed(repo),
        restored.config,
        "the rollback is committed too"
    );
}

/// Creates and runs an experiment to its end, following its event stream.
async fn completed(state: &AppState, spec: &str) -> Experiment {
    let service = state.service();
    let spec: ExperimentSpec = serde_json::from_str(spec).unwrap();
    let experiment = service.create_experiment(&admin(), spec).await.unwrap();
    let mut watch = service
        .watch_experiment(&admin(), &experiment.id)
        .await
        .unwrap();
    service
        .start_experiment(&admin(), &experiment.id)
        .await
        .unwrap();
    while let Some(event) = watch.next().await {
        event.unwrap();
    }
    let done = service
        .get_experiment(&admin(), &experiment.id)
        .await
        .unwrap();
    assert_eq!(
        done.status.phase,
        Phase::Completed,
        "{:?}",
        done.status.failure
    );
    done
}

fn git(repo: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn promotion_commits_to_gitops_and_rollback_restores() {
    let (dir, state) = open_with_gitops().await;
    let experiment = completed(&state, SMALL_SPEC).await;
    let service = state.service();

    let promoted = service
        .promote_experiment(&admin(), &experiment.id)
        .await
        .unwrap();
    assert_eq!(promoted.status.phase, Phase::Promoted);
    let active = active_pipeline(&state).await.unwrap();
    assert_eq!(variant(&active), VariantRole::Candidate);
    let file = committed(dir.path());
    assert_eq!(
        file, active.config,
        "the repository holds exactly the promoted config"
    );
    assert!(
        dir.path()
            .join("targets/local/active.configmap.yaml")
            .exists()
    );
    let log = git(dir.path(), &["log", "--format=%s"]);
    assert!(log.contains(&format!("promote {}", experiment.id)), "{log}");

    rolls_back(&state, dir.path(), &experiment.id).await;
    let commits = git(dir.path(), &["rev-list", "--count", "HEAD"]);
    assert_eq!(commits.trim(), "2", "{log}");
}

#[tokio::test]
async fn without_gitops_promotion_is_recorded_in_the_store() {
    let state = open(None).await;
    let experiment = completed(&state, SMALL_SPEC).await;
    let service = state.service();
    service
        .promote_experiment(&admin(), &experiment.id)
        .await
        .unwrap();
    let history = service
        .store()
        .history(&PipelineTarget::Local)
        .await
        .unwrap();
    assert_eq!(history.len(), 2, "the baseline first, then the candidate");
    service
        .rollback_experiment(&admin(), &experiment.id)
        .await
        .unwrap();
    let active = active_pipeline(&state).await.unwrap();
    assert_eq!(variant(&active), VariantRole::Baseline);
}

#[tokio::test]
async fn an_inline_candidate_is_refused_by_gitops_promotion_without_changes() {
    let (dir, state) = open_with_gitops().await;
    let rendered = state
        .service()
        .render_pipeline(
            &admin(),
            &serde_json::from_value(serde_json::json!({"template": "process-topk-v1"})).unwrap(),
        )
        .unwrap();
    let mut spec: serde_json::Value = serde_json::from_str(SMALL_SPEC).unwrap();
    spec["candidate"] = serde_json::json!({"config": rendered.yaml});
    let experiment = completed(&state, &spec.to_string()).await;
    let error = state
        .service()
        .promote_experiment(&admin(), &experiment.id)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), phoenix_api::ErrorKind::Conflict, "{error}");
    let message = error.client_message();
    assert!(message.contains("inline config"), "{message}");
    assert!(
        !message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(active_pipeline(&state).await.is_none());
    let stored = state
        .service()
        .get_experiment(&admin(), &experiment.id)
        .await
        .unwrap();
    assert_eq!(stored.status.phase, Phase::Completed);
}

#[tokio::test]
async fn a_dropped_watch_ends_its_task() {
    let state = open(None).await;
    let service = state.service();
    let spec: ExperimentSpec = serde_json::from_str(SMALL_SPEC).unwrap();
    let experiment = service.create_experiment(&admin(), spec).await.unwrap();
    let watch = service
        .watch_experiment(&admin(), &experiment.id)
        .await
        .unwrap();
    let mut receiver = watch.into_receiver();
    assert!(receiver.recv().await.unwrap().is_ok(), "the created event");
    assert_eq!(service.events().subscribers(), 1, "the watch task");
    drop(receiver);
    // The pending experiment's watcher is gone: its task stops waiting without any event.
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while service.events().subscribers() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_failed_rollback_commit_leaves_the_promotion_in_place() {
    let (dir, state) = open_with_gitops().await;
    let experiment = completed(&state, SMALL_SPEC).await;
    let service = state.service();
    service
        .promote_experiment(&admin(), &experiment.id)
        .await
        .unwrap();
    let promoted_file = committed(dir.path());

    // Another Git process holds the index: the rollback's commit fails.
    let lock = dir.path().join(".git/index.lock");
    std::fs::write(&lock, b"").unwrap();
    let error = service
        .rollback_experiment(&admin(), &experiment.id)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), phoenix_api::ErrorKind::Internal, "{error}");
    assert!(
        !error
            .client_message()
            .contains(&dir.path().display().to_string()),
        "{}",
        error.client_message()
    );
    let active = active_pipeline(&state).await.unwrap();
    assert_eq!(
        variant(&active),
        VariantRole::Candidate,
        "the restore was undone"
    );
    assert_eq!(active.config, promoted_file);
    let stored = service
        .get_experiment(&admin(), &experiment.id)
        .await
        .unwrap();
    assert_eq!(stored.status.phase, Phase::Promoted);
    let commits = git(dir.path(), &["rev-list", "--count", "HEAD"]);
    assert_eq!(
        commits.trim(),
        "1",
        "nothing committed by the failed rollback"
    );

    // Once Git is free again, the rollback goes through.
    std::fs::remove_file(&lock).unwrap();
    rolls_back(&state, dir.path(), &experiment.id).await;
}
