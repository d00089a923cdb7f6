//! The local executor driven by the experiment controller, checked against the simulator and
//! emulator run directly.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use phoenix::core::Result;
use phoenix::core::analysis::{Reason, Recommendation};
use phoenix::core::executor::Executor;
use phoenix::core::experiment::{Experiment, ProfilePreset};
use phoenix::core::measurement::{Noise, VariantRole, VariantSample, Window, WindowMeasurement};
use phoenix::core::phase::Phase;
use phoenix::core::store::ExperimentStore;
use phoenix::core::telemetry::{SeriesKey, Snapshot, Timestamp};
use phoenix::generator::catalog::{TemplateId, render};
use phoenix::generator::config::ComponentKind;
use phoenix::generator::emulator::Emulator;
use phoenix::local::{LocalExecutor, RUN_START};
use phoenix::sim::{Profile, SimConfig, Simulator};
use phoenix::store::{PipelineStore, PipelineTarget};
use tokio::sync::Notify;

const TINY: &str = r#"
name: tiny-aggregated
baseline: {template: process-baseline-v1}
candidate: {template: process-aggregated-v1}
workload: {profile: realistic, processes: 40, seed: 9}
duration: 3m
warmUp: 30s
scrapeInterval: 10s
measurementWindow: 1m
criticalProcesses: ["^postgres$"]
"#;

#[tokio::test]
async fn an_experiment_runs_to_completion_with_results() {
    let done = common::run_to_end(common::spec(TINY)).await;
    assert_eq!(
        done.status.phase,
        Phase::Completed,
        "{:?}",
        done.status.failure
    );
    let indices: Vec<u32> = done.status.windows.iter().map(|w| w.window.index).collect();
    assert_eq!(indices, [0, 1, 2]);
    let scrapes: Vec<u32> = done
        .status
        .windows
        .iter()
        .map(|w| w.baseline.scrapes)
        .collect();
    assert_eq!(
        scrapes,
        [6, 6, 3],
        "scrapes at offsets 30 s..80 s, 90 s..140 s, 150 s..170 s"
    );
    let results = done.status.results.unwrap();
    assert_eq!(results.noise, Noise::Deterministic);
    assert_eq!(results.windows, 3);
    assert!(results.baseline.distinct_series > results.candidate.distinct_series);
    assert!(results.baseline.bytes_per_minute > results.candidate.bytes_per_minute);
    assert!(results.candidate.critical_expected > 0);
    assert_eq!(results.candidate.critical_coverage, 1.0);
    assert_eq!(results.baseline.critical_coverage, 1.0);
    assert!(results.comparison.cardinality_reduction > 0.0);
    assert!(results.comparison.data_point_reduction > 0.0);
}

/// What one variant exports, computed without the executor.
struct Direct {
    emulator: Emulator,
    exporter: phoenix::generator::config::ComponentId,
    distinct: HashSet<SeriesKey>,
}

impl Direct {
    fn new(experiment: &Experiment, role: VariantRole, template: TemplateId) -> Self {
        let params = serde_json::json!({
            "experimentId": experiment.id.as_str(),
            "variant": role.as_str(),
            "collectionInterval": "10s",
            "criticalProcesses": ["^postgres$"],
        });
        let config = render(template, params.as_object().unwrap()).unwrap();
        let exporter = config
            .exporters
            .keys()
            .find(|id| id.kind == ComponentKind::OtlpHttp)
            .unwrap()
            .clone();
        Self {
            emulator: Emulator::new(&config).unwrap(),
            exporter,
            distinct: HashSet::new(),
        }
    }

    fn window(&mut self, snapshots: &[Snapshot], critical: &[u64]) -> VariantSample {
        let before = self.distinct.len() as u64;
        let mut sample = VariantSample::default();
        let mut active = 0;
        for (snapshot, critical) in snapshots.iter().zip(critical) {
            let out = &self.emulator.process(snapshot).unwrap().exporters[&self.exporter];
            sample.scrapes += 1;
            active += out.series.len();
            sample.data_points += out.data_points as u64;
            sample.bytes += out.bytes as u64;
            sample.critical_expected += critical;
            sample.critical_seen += critical;
            self.distinct.extend(out.series.iter().copied());
        }
        sample.mean_active_series = active as f64 / f64::from(sample.scrapes);
        sample.distinct_series_to_date = self.distinct.len() as u64;
        sample.new_series = sample.distinct_series_to_date - before;
        sample
    }

    fn warm_up(&mut self, snapshots: &[Snapshot]) {
        for snapshot in snapshots {
            self.emulator.process(snapshot).unwrap();
        }
    }
}

#[tokio::test]
async fn figures_match_the_simulator_and_emulator_run_directly() {
    let done = common::run_to_end(common::spec(TINY)).await;
    assert_eq!(
        done.status.phase,
        Phase::Completed,
        "{:?}",
        done.status.failure
    );

    let profile = Profile::preset(ProfilePreset::Realistic)
        .with_processes(40)
        .unwrap();
    let interval = Duration::from_secs(10);
    let config = SimConfig {
        seed: 9,
        scrape_interval: interval,
        start: Timestamp::from_nanos(RUN_START.as_nanos() - 10_000_000_000),
        ..SimConfig::default()
    };
    let snapshots: Vec<Snapshot> = Simulator::new(&profile, config)
        .unwrap()
        .snapshots(18)
        .collect();
    assert_eq!(
        snapshots[0].time().unwrap().as_nanos() / 1_000_000_000,
        RUN_START.as_nanos() / 1_000_000_000
    );
    let critical: Vec<u64> = snapshots
        .iter()
        .map(|s| {
            s.resources
                .iter()
                .filter(|r| r.attributes.get_str("process.executable.name") == Some("postgres"))
                .count() as u64
        })
        .collect();
    assert!(
        critical.iter().all(|c| *c > 0),
        "the workload has postgres processes"
    );

    let mut baseline = Direct::new(&done, VariantRole::Baseline, TemplateId::Baseline);
    let mut candidate = Direct::new(&done, VariantRole::Candidate, TemplateId::Aggregated);
    baseline.warm_up(&snapshots[..3]);
    candidate.warm_up(&snapshots[..3]);
    let bounds = [(3, 9), (9, 15), (15, 18)];
    for (measured, (from, to)) in done.status.windows.iter().zip(bounds) {
        let expected_baseline = baseline.window(&snapshots[from..to], &critical[from..to]);
        let expected_candidate = candidate.window(&snapshots[from..to], &critical[from..to]);
        assert_eq!(
            measured.baseline, expected_baseline,
            "baseline, window {}",
            measured.window.index
        );
        assert_eq!(
            measured.candidate, expected_candidate,
            "candidate, window {}",
            measured.window.index
        );
    }
    assert!(
        done.status.windows[0].candidate.data_points < done.status.windows[0].baseline.data_points
    );
}

/// An executor that stops at one window until released, wrapping the local executor.
struct Gated {
    inner: LocalExecutor,
    window: u32,
    reached: Notify,
    release: Notify,
}

#[async_trait]
impl Executor for Gated {
    fn noise(&self) -> Noise {
        self.inner.noise()
    }
    async fn prepare(&self, e: &Experiment) -> Result<()> {
        self.inner.prepare(e).await
    }
    async fn start(&self, e: &Experiment) -> Result<()> {
        self.inner.start(e).await
    }
    async fn measure(&self, e: &Experiment, window: Window) -> Result<WindowMeasurement> {
        if window.index == self.window {
            self.reached.notify_one();
            self.release.notified().await;
        }
        self.inner.measure(e, window).await
    }
    async fn tear_down(&self, e: &Experiment) -> Result<()> {
        self.inner.tear_down(e).await
    }
    async fn promote(&self, e: &Experiment) -> Result<()> {
        self.inner.promote(e).await
    }
    async fn rollback(&self, e: &Experiment) -> Result<()> {
        self.inner.rollback(e).await
    }
}

const CHURNY: &str = r#"
name: resume-churn
baseline: {template: process-baseline-v1}
candidate:
  template: process-priority-filter-v1
  parameters: {highPriorityProcesses: ["^sh$"]}
workload: {profile: high-churn, processes: 20, seed: 4}
duration: 2m
warmUp: 20s
scrapeInterval: 10s
measurementWindow: 20s
criticalProcesses: ["^postgres$", "^sshd$"]
"#;

#[tokio::test]
async fn a_run_resumed_by_a_fresh_executor_ends_as_an_uninterrupted_one() {
    let uninterrupted = common::run_to_end(common::spec(CHURNY)).await;
    assert_eq!(uninterrupted.status.phase, Phase::Completed);
    assert!(
        uninterrupted.status.windows[3].baseline.new_series > 0,
        "short-lived processes add series in every window"
    );

    let (store, id) = common::stored(common::spec(CHURNY)).await;
    let gated = Arc::new(Gated {
        inner: LocalExecutor::new(),
        window: 3,
        reached: Notify::new(),
        release: Notify::new(),
    });
    {
        let controller = common::controller(&store, gated.clone());
        let run = controller.run(&id);
        tokio::select! {
            _ = run => panic!("the run finished although window 3 never returns"),
            () = gated.reached.notified() => {}
        }
        // Leaving the block drops the run mid-measurement, as a crash would.
    }
    let interrupted = store.get(&id).await.unwrap();
    assert_eq!(interrupted.status.phase, Phase::Running);
    assert_eq!(interrupted.status.windows.len(), 3);

    let resumed = common::controller(&store, Arc::new(LocalExecutor::new()))
        .run(&id)
        .await
        .unwrap();
    assert_eq!(resumed.status.phase, Phase::Completed);
    assert_eq!(resumed.status.windows, uninterrupted.status.windows);
    assert_eq!(resumed.status.results, uninterrupted.status.results);
}

#[tokio::test]
async fn a_window_measured_again_or_out_of_order_gives_the_same_figures() {
    let spec = common::spec(CHURNY);
    let experiment = Experiment::new(spec.clone());
    let windows = spec.windows();
    let first = LocalExecutor::new();
    first.prepare(&experiment).await.unwrap();
    first.start(&experiment).await.unwrap();
    let mut measured = Vec::new();
    for w in &windows {
        measured.push(first.measure(&experiment, *w).await.unwrap());
    }
    // The same executor, asked for a window it has passed, replays from the start.
    assert_eq!(
        first.measure(&experiment, windows[2]).await.unwrap(),
        measured[2]
    );
    // A fresh one, asked for a late window first, counts distinct series from window 0.
    let fresh = LocalExecutor::new();
    assert_eq!(
        fresh.measure(&experiment, windows[4]).await.unwrap(),
        measured[4]
    );
    first.tear_down(&experiment).await.unwrap();
}

async fn failure_of(yaml: &str) -> String {
    let done = common::run_to_end(common::spec(yaml)).await;
    assert_eq!(done.status.phase, Phase::Failed);
    done.status.failure.unwrap()
}

#[tokio::test]
async fn an_unknown_template_fails_the_experiment_naming_the_variant() {
    let reason = failure_of(
        r#"
name: unknown-template
baseline: {template: process-baseline-v1}
candidate: {template: process-magic-v1}
duration: 1m
"#,
    )
    .await;
    assert!(
        reason.contains("candidate variant (template `process-magic-v1`)"),
        "{reason}"
    );
    assert!(
        reason.contains("unknown template `process-magic-v1`"),
        "{reason}"
    );
}

#[tokio::test]
async fn bad_template_parameters_fail_the_experiment_naming_the_parameter() {
    let reason = failure_of(
        r#"
name: bad-parameters
baseline: {template: process-baseline-v1}
candidate: {template: process-topk-v1, parameters: {topK: 0}}
duration: 1m
"#,
    )
    .await;
    assert!(
        reason.contains("parameter `topK`: must be at least 1"),
        "{reason}"
    );
}

#[tokio::test]
async fn an_inline_config_the_emulator_cannot_run_fails_naming_the_construct() {
    let reason = failure_of(
        r#"
name: unsupported-inline
baseline: {template: process-baseline-v1}
candidate:
  config: |
    receivers:
      hostmetrics:
        scrapers:
          process: {}
    processors:
      transform/rename:
        metric_statements:
          - 'replace_pattern(resource.attributes["process.command_line"], "--id [0-9a-f]+", "--id x")'
    exporters:
      otlphttp: {endpoint: "http://localhost:4318"}
    service:
      pipelines:
        metrics: {receivers: [hostmetrics], processors: [transform/rename], exporters: [otlphttp]}
duration: 1m
"#,
    )
    .await;
    assert!(
        reason.contains("candidate variant (inline config)"),
        "{reason}"
    );
    assert!(reason.contains("processors.transform/rename"), "{reason}");
    assert!(reason.contains("not supported by the emulator"), "{reason}");
}

#[tokio::test]
async fn an_inline_config_that_does_not_parse_fails_naming_the_line() {
    let reason = failure_of(
        r#"
name: broken-inline
baseline:
  config: |
    receivers:
      hostmetrics: {scrapers: {process: {}}}
    exporters: [not, a, mapping]
candidate: {template: process-topk-v1}
duration: 1m
"#,
    )
    .await;
    assert!(
        reason.contains("baseline variant (inline config)"),
        "{reason}"
    );
    assert!(reason.contains("line "), "{reason}");
}

#[tokio::test]
async fn a_candidate_that_drops_a_critical_process_is_rejected() {
    // The candidate's own critical list leaves postgres out, so its filter drops postgres.
    let done = common::run_to_end(common::spec(
        r#"
name: loses-postgres
baseline: {template: process-baseline-v1}
candidate:
  template: process-priority-filter-v1
  parameters: {criticalProcesses: ["^sshd$"], highPriorityProcesses: ["^nginx$"]}
workload: {profile: realistic, processes: 40, seed: 2}
duration: 2m
criticalProcesses: ["^postgres$"]
"#,
    ))
    .await;
    assert_eq!(done.status.phase, Phase::Completed);
    let results = done.status.results.unwrap();
    assert_eq!(results.baseline.critical_coverage, 1.0);
    assert!(results.candidate.critical_expected > 0);
    assert_eq!(results.candidate.critical_seen, 0);
    let Recommendation::Reject { reasons } = &results.recommendation else {
        panic!("{:?}", results.recommendation);
    };
    assert!(
        matches!(reasons[0], Reason::CriticalProcessLoss { .. }),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn promotion_activates_the_candidate_and_rollback_restores_the_previous_pipeline() {
    let (store, id) = common::stored(common::spec(TINY)).await;
    let pipelines: Arc<dyn PipelineStore> = store.clone();
    let executor = Arc::new(LocalExecutor::new().with_pipeline_store(pipelines));
    let controller = common::controller(&store, executor);
    assert_eq!(
        controller.run(&id).await.unwrap().status.phase,
        Phase::Completed
    );

    let promoted = controller.promote(&id, "alice").await.unwrap();
    assert_eq!(promoted.status.phase, Phase::Promoted);
    let active = store.active(&PipelineTarget::Local).await.unwrap().unwrap();
    let origin = active.origin.unwrap();
    assert_eq!(
        (origin.experiment_id, origin.variant),
        (id.clone(), VariantRole::Candidate)
    );
    assert!(
        active.config.contains("process-aggregated-v1"),
        "{}",
        active.config
    );
    assert_eq!(
        store.history(&PipelineTarget::Local).await.unwrap().len(),
        2,
        "an empty target first gets the baseline, so that a rollback can restore it"
    );

    let rolled_back = controller.rollback(&id, "alice").await.unwrap();
    assert_eq!(rolled_back.status.phase, Phase::RolledBack);
    let active = store.active(&PipelineTarget::Local).await.unwrap().unwrap();
    assert_eq!(active.origin.unwrap().variant, VariantRole::Baseline);
    assert!(active.config.contains("process-baseline-v1"));
}

#[tokio::test]
async fn without_a_pipeline_store_promotion_changes_only_the_phase() {
    let (store, id) = common::stored(common::spec(TINY)).await;
    let controller = common::controller(&store, Arc::new(LocalExecutor::new()));
    controller.run(&id).await.unwrap();
    let promoted = controller.promote(&id, "alice").await.unwrap();
    assert_eq!(promoted.status.phase, Phase::Promoted);
    assert!(
        store
            .active(&PipelineTarget::Local)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_kubernetes_experiment_is_refused() {
    let reason = failure_of(
        r#"
name: on-a-cluster
baseline: {template: process-baseline-v1}
candidate: {template: process-topk-v1}
target: {kind: kubernetes, namespace: perf}
duration: 1m
"#,
    )
    .await;
    assert!(
        reason.contains("runs only `kind: local` experiments"),
        "{reason}"
    );
    assert!(reason.contains("\"perf\""), "{reason}");
}
