//! The ready-to-use specs in `examples/experiments/`: every one parses, validates and
//! prepares on the local executor, and the small ones run end to end.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use phoenix::core::executor::Executor;
use phoenix::core::experiment::{Experiment, ExperimentSpec, ProfilePreset, WorkloadSource};
use phoenix::core::phase::Phase;
use phoenix::local::LocalExecutor;
use phoenix::sim::{Profile, SimConfig, Simulator};

fn experiments_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/experiments")
}

fn load(path: &Path) -> ExperimentSpec {
    let text = std::fs::read_to_string(path).unwrap();
    let spec: ExperimentSpec =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if let Err(e) = spec.validate() {
        panic!("{}: {e}", path.display());
    }
    spec
}

fn spec_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(experiments_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn every_spec_parses_validates_and_prepares() {
    let files = spec_files();
    assert!(files.len() >= 5, "{files:?}");
    let mut names = std::collections::HashSet::new();
    let executor = LocalExecutor::new().with_base_dir(env!("CARGO_MANIFEST_DIR"));
    for path in &files {
        let spec = load(path);
        let stem = path.file_stem().unwrap().to_str().unwrap();
        assert_eq!(
            spec.name,
            stem,
            "{}: the name matches the file",
            path.display()
        );
        assert!(names.insert(spec.name.clone()));
        let experiment = Experiment::new(spec);
        // Resolves both pipelines, builds their emulators, checks the workload.
        if let Err(e) = executor.prepare(&experiment).await {
            panic!("{}: {e}", path.display());
        }
        executor.tear_down(&experiment).await.unwrap();
    }
}

/// The committed recording: `realistic` scaled to 8 processes, seed 4, 6 scrapes at 10 s.
fn recording_lines() -> String {
    let profile = Profile::preset(ProfilePreset::Realistic)
        .with_processes(8)
        .unwrap();
    let config = SimConfig {
        seed: 4,
        ..SimConfig::default()
    };
    let mut sim = Simulator::new(&profile, config).unwrap();
    let mut out = String::new();
    for _ in 0..6 {
        out.push_str(&phoenix::core::otlp::to_json(sim.next_snapshot()));
        out.push('\n');
    }
    out
}

const RECORDING: &str = "examples/experiments/recordings/realistic-8-processes.jsonl";

#[test]
fn the_committed_recording_is_what_the_simulator_writes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(RECORDING);
    let expected = recording_lines();
    if std::env::var_os("PHOENIX_REGENERATE").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == expected,
        "{RECORDING} differs from its generator; rerun with PHOENIX_REGENERATE=1"
    );
}

#[tokio::test]
async fn the_recording_spec_runs_end_to_end() {
    let spec = load(&experiments_dir().join("recording-replay.yaml"));
    assert!(matches!(
        &spec.workload.source,
        WorkloadSource::Recording { path } if path == RECORDING
    ));
    let (store, id) = common::stored(spec).await;
    let executor = LocalExecutor::new().with_base_dir(env!("CARGO_MANIFEST_DIR"));
    let done = common::controller(&store, std::sync::Arc::new(executor))
        .run(&id)
        .await
        .unwrap();
    assert_eq!(
        done.status.phase,
        Phase::Completed,
        "{:?}",
        done.status.failure
    );
    let scrapes: u32 = done.status.windows.iter().map(|w| w.baseline.scrapes).sum();
    assert_eq!(scrapes, 6);
    let results = done.status.results.unwrap();
    assert!(results.baseline.data_points_per_minute > 0.0);
    assert!(results.candidate.data_points_per_minute < results.baseline.data_points_per_minute);
    assert_eq!(results.candidate.critical_coverage, 1.0);
}

#[tokio::test]
async fn a_recording_shorter_than_the_run_fails_with_the_counts() {
    let mut spec = load(&experiments_dir().join("recording-replay.yaml"));
    spec.duration = std::time::Duration::from_secs(600);
    let (store, id) = common::stored(spec).await;
    let executor = LocalExecutor::new().with_base_dir(env!("CARGO_MANIFEST_DIR"));
    let done = common::controller(&store, std::sync::Arc::new(executor))
        .run(&id)
        .await
        .unwrap();
    assert_eq!(done.status.phase, Phase::Failed);
    let reason = done.status.failure.unwrap();
    assert!(reason.contains("holds 6 scrapes"), "{reason}");
    assert!(reason.contains("needs 60"), "{reason}");
}

#[tokio::test]
async fn a_missing_recording_fails_naming_the_file() {
    let mut spec = load(&experiments_dir().join("recording-replay.yaml"));
    spec.workload.source = WorkloadSource::Recording {
        path: "no/such/recording.jsonl".into(),
    };
    let done = common::run_to_end(spec).await;
    assert_eq!(done.status.phase, Phase::Failed);
    let reason = done.status.failure.unwrap();
    assert!(reason.contains("no/such/recording.jsonl"), "{reason}");
}
