//! The controller driven with an in-memory store and a scripted executor.

// Test doubles unwrap poisoned locks and fixtures: a panic is the right failure here.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use phoenix_core::analysis::{Recommendation, Significance};
use phoenix_core::controller::{CONTROLLER_ACTOR, ExperimentController};
use phoenix_core::executor::Executor;
use phoenix_core::experiment::{
    CriticalProcess, EventKind, Experiment, ExperimentEvent, ExperimentId, ExperimentSpec,
};
use phoenix_core::measurement::{Noise, VariantSample, Window, WindowMeasurement};
use phoenix_core::phase::{Phase, PhaseEvent};
use phoenix_core::store::{Cursor, ExperimentStore, ListQuery, Page};
use phoenix_core::{Error, Result};
use tokio::sync::Notify;

/// A store that keeps everything in memory and checks versions like a real one.
#[derive(Default)]
struct MemoryStore {
    experiments: Mutex<HashMap<ExperimentId, Experiment>>,
    events: Mutex<Vec<ExperimentEvent>>,
}

#[async_trait]
impl ExperimentStore for MemoryStore {
    async fn create(&self, experiment: &Experiment, event: &ExperimentEvent) -> Result<()> {
        let mut experiments = self.experiments.lock().unwrap();
        if experiments.contains_key(&experiment.id) {
            return Err(Error::AlreadyExists {
                id: experiment.id.clone(),
            });
        }
        experiments.insert(experiment.id.clone(), experiment.clone());
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }

    async fn get(&self, id: &ExperimentId) -> Result<Experiment> {
        let experiments = self.experiments.lock().unwrap();
        experiments
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound { id: id.clone() })
    }

    async fn list(&self, query: &ListQuery) -> Result<Page> {
        let experiments = self.experiments.lock().unwrap();
        let mut items: Vec<_> = experiments
            .values()
            .filter(|e| query.matches(e))
            .cloned()
            .collect();
        items.sort_by(|a, b| Cursor::after(a).cmp(&Cursor::after(b)));
        Ok(Page { items, next: None })
    }

    async fn update(&self, experiment: &Experiment, event: &ExperimentEvent) -> Result<Experiment> {
        let mut experiments = self.experiments.lock().unwrap();
        let stored = experiments
            .get_mut(&experiment.id)
            .ok_or_else(|| Error::NotFound {
                id: experiment.id.clone(),
            })?;
        if stored.version != experiment.version {
            return Err(Error::Conflict {
                id: experiment.id.clone(),
                expected: experiment.version,
                found: stored.version,
            });
        }
        *stored = Experiment {
            version: experiment.version + 1,
            ..experiment.clone()
        };
        self.events.lock().unwrap().push(event.clone());
        Ok(stored.clone())
    }

    async fn append_event(&self, event: &ExperimentEvent) -> Result<()> {
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }

    async fn events(&self, id: &ExperimentId) -> Result<Vec<ExperimentEvent>> {
        let events = self.events.lock().unwrap();
        Ok(events
            .iter()
            .filter(|e| &e.experiment_id == id)
            .cloned()
            .collect())
    }

    async fn delete(&self, id: &ExperimentId) -> Result<()> {
        self.experiments.lock().unwrap().remove(id);
        self.events
            .lock()
            .unwrap()
            .retain(|e| &e.experiment_id != id);
        Ok(())
    }
}

/// Where a scripted executor stops and waits.
struct Gate {
    window: u32,
    reached: Notify,
    release: Notify,
}

/// An executor that records its calls and reports fixed figures: the candidate exports 40% of
/// the baseline's data and keeps every critical process.
#[derive(Default)]
struct ScriptedExecutor {
    calls: Mutex<Vec<String>>,
    fail_prepare: bool,
    fail_window: Option<u32>,
    gate: Option<Arc<Gate>>,
    /// Edits the experiment's description behind the controller's back at this window.
    meddle: Option<(u32, Arc<MemoryStore>)>,
    /// Rejects the experiment behind the controller's back while it promotes.
    reject_while_promoting: Option<Arc<MemoryStore>>,
    fail_tear_down: bool,
}

impl ScriptedExecutor {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, call: impl Into<String>) {
        self.calls.lock().unwrap().push(call.into());
    }
}

fn sample(series: u64, points_per_window: u64) -> VariantSample {
    VariantSample {
        scrapes: 6,
        mean_active_series: series as f64,
        distinct_series_to_date: series,
        new_series: 0,
        data_points: points_per_window,
        bytes: points_per_window * 50,
        critical_expected: 12,
        critical_seen: 12,
        cpu_cores: None,
        memory_bytes: None,
    }
}

#[async_trait]
impl Executor for ScriptedExecutor {
    fn noise(&self) -> Noise {
        Noise::Deterministic
    }

    async fn prepare(&self, _: &Experiment) -> Result<()> {
        self.record("prepare");
        if self.fail_prepare {
            return Err(Error::executor("config rejected by the collector"));
        }
        Ok(())
    }

    async fn start(&self, _: &Experiment) -> Result<()> {
        self.record("start");
        Ok(())
    }

    async fn measure(&self, experiment: &Experiment, window: Window) -> Result<WindowMeasurement> {
        self.record(format!("measure {}", window.index));
        if let Some(gate) = self.gate.as_ref().filter(|g| g.window == window.index) {
            gate.reached.notify_one();
            gate.release.notified().await;
        }
        if let Some((_, store)) = self.meddle.as_ref().filter(|(at, _)| *at == window.index) {
            let mut edited = store.get(&experiment.id).await?;
            edited.spec.description = "edited while running".into();
            let event = edited.event("bob", EventKind::Updated, "description edited");
            store.update(&edited, &event).await?;
        }
        if self.fail_window == Some(window.index) {
            return Err(Error::executor("collector crashed"));
        }
        Ok(WindowMeasurement {
            window,
            baseline: sample(700, 4200),
            candidate: sample(280, 1680),
        })
    }

    async fn tear_down(&self, _: &Experiment) -> Result<()> {
        self.record("tear_down");
        if self.fail_tear_down {
            return Err(Error::executor("namespace is terminating"));
        }
        Ok(())
    }

    async fn promote(&self, experiment: &Experiment) -> Result<()> {
        self.record("promote");
        if let Some(store) = &self.reject_while_promoting {
            let mut rejected = store.get(&experiment.id).await?;
            rejected.apply(&PhaseEvent::Rollback)?;
            let event = rejected.event("bob", EventKind::Updated, "rejected");
            store.update(&rejected, &event).await?;
        }
        Ok(())
    }

    async fn rollback(&self, _: &Experiment) -> Result<()> {
        self.record("rollback");
        Ok(())
    }
}

/// Ten one-minute windows.
fn spec() -> ExperimentSpec {
    let mut spec: ExperimentSpec = serde_yaml::from_str(
        "name: topk-trial\nbaseline: {template: process-baseline-v1}\ncandidate: {template: process-topk-v1}\n",
    )
    .unwrap();
    spec.duration = Duration::from_secs(600);
    spec.measurement_window = Some(Duration::from_secs(60));
    spec.critical_processes = vec![CriticalProcess::name("^postgres$")];
    spec
}

/// A store holding one pending experiment created by alice, and the executor.
async fn setup(
    executor: ScriptedExecutor,
) -> (Arc<MemoryStore>, Arc<ScriptedExecutor>, ExperimentId) {
    setup_with(|_| executor).await
}

/// As [`setup`], for an executor that reaches into the store behind the controller's back.
async fn setup_with(
    executor: impl FnOnce(&Arc<MemoryStore>) -> ScriptedExecutor,
) -> (Arc<MemoryStore>, Arc<ScriptedExecutor>, ExperimentId) {
    let store = Arc::new(MemoryStore::default());
    let experiment = Experiment::new(spec());
    let event = experiment.event("alice", EventKind::Created, "created");
    store.create(&experiment, &event).await.unwrap();
    let executor = Arc::new(executor(&store));
    (store, executor, experiment.id)
}

fn controller(store: &Arc<MemoryStore>, executor: &Arc<ScriptedExecutor>) -> ExperimentController {
    ExperimentController::new(store.clone(), executor.clone())
}

fn measures(from: u32, to: u32) -> Vec<String> {
    (from..to).map(|i| format!("measure {i}")).collect()
}

fn transitions(events: &[ExperimentEvent]) -> Vec<(Phase, Phase)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Transition { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_run_goes_from_pending_to_completed_with_every_step_persisted() {
    let (store, executor, id) = setup(ScriptedExecutor::default()).await;
    let controller = controller(&store, &executor);
    controller.start(&id, "alice").await.unwrap();
    let done = controller.run(&id).await.unwrap();

    assert_eq!(done.status.phase, Phase::Completed);
    assert_eq!(done.status.windows.len(), 10);
    let results = done.status.results.as_ref().unwrap();
    assert_eq!(results.recommendation, Recommendation::Promote);
    assert_eq!(results.significance, Significance::Deterministic);
    assert_eq!(store.get(&id).await.unwrap(), done);

    let mut expected = vec!["prepare".to_owned(), "start".to_owned()];
    expected.extend(measures(0, 10));
    expected.push("tear_down".to_owned());
    assert_eq!(executor.calls(), expected);

    let events = store.events(&id).await.unwrap();
    let mut want = vec![
        (Phase::Pending, Phase::Initializing),
        (Phase::Initializing, Phase::Running),
    ];
    want.extend(std::iter::repeat_n((Phase::Running, Phase::Running), 10));
    want.extend([
        (Phase::Running, Phase::Analyzing),
        (Phase::Analyzing, Phase::Completed),
    ]);
    assert_eq!(transitions(&events), want);
    assert_eq!(events[0].kind, EventKind::Created);
    assert_eq!(events[1].actor, "alice");
    assert!(events[2..].iter().all(|e| e.actor == CONTROLLER_ACTOR));
    // One event per stored version: created at 1, then one update per transition.
    assert_eq!(done.version, events.len() as u64);
}

#[tokio::test]
async fn run_starts_a_pending_experiment_itself() {
    let (store, executor, id) = setup(ScriptedExecutor::default()).await;
    let done = controller(&store, &executor).run(&id).await.unwrap();
    assert_eq!(done.status.phase, Phase::Completed);
}

#[tokio::test]
async fn an_executor_error_fails_the_experiment_with_the_reason_and_tears_down() {
    let script = ScriptedExecutor {
        fail_window: Some(4),
        ..ScriptedExecutor::default()
    };
    let (store, executor, id) = setup(script).await;
    let done = controller(&store, &executor).run(&id).await.unwrap();

    assert_eq!(done.status.phase, Phase::Failed);
    assert_eq!(
        done.status.failure.as_deref(),
        Some("executor: collector crashed")
    );
    assert_eq!(done.status.windows.len(), 4);
    assert_eq!(
        executor.calls().last().map(String::as_str),
        Some("tear_down")
    );
    let events = store.events(&id).await.unwrap();
    let last = events.last().unwrap();
    assert!(matches!(
        last.kind,
        EventKind::Transition {
            from: Phase::Running,
            to: Phase::Failed,
            ..
        }
    ));
    assert!(
        last.message.contains("collector crashed"),
        "{}",
        last.message
    );
}

#[tokio::test]
async fn a_failed_preparation_fails_the_experiment() {
    let script = ScriptedExecutor {
        fail_prepare: true,
        ..ScriptedExecutor::default()
    };
    let (store, executor, id) = setup(script).await;
    let done = controller(&store, &executor).run(&id).await.unwrap();
    assert_eq!(done.status.phase, Phase::Failed);
    assert!(done.status.failure.unwrap().contains("config rejected"));
    assert_eq!(executor.calls(), ["prepare", "tear_down"]);
}

#[tokio::test]
async fn a_controller_dropped_mid_run_is_resumed_by_another_from_the_stored_phase() {
    let gate = Arc::new(Gate {
        window: 3,
        reached: Notify::new(),
        release: Notify::new(),
    });
    let script = ScriptedExecutor {
        gate: Some(gate.clone()),
        ..ScriptedExecutor::default()
    };
    let (store, first, id) = setup(script).await;
    {
        let controller = controller(&store, &first);
        let run = controller.run(&id);
        tokio::select! {
            _ = run => panic!("the run finished although window 3 never returns"),
            () = gate.reached.notified() => {}
        }
        // Leaving the block drops the run future mid-measurement, as a crash would.
    }
    let interrupted = store.get(&id).await.unwrap();
    assert_eq!(interrupted.status.phase, Phase::Running);
    assert_eq!(interrupted.status.windows.len(), 3);

    let second = Arc::new(ScriptedExecutor::default());
    let done = controller(&store, &second).run(&id).await.unwrap();
    assert_eq!(done.status.phase, Phase::Completed);
    let indices: Vec<u32> = done.status.windows.iter().map(|w| w.window.index).collect();
    assert_eq!(indices, (0..10).collect::<Vec<_>>());
    let mut expected = vec!["prepare".to_owned(), "start".to_owned()];
    expected.extend(measures(3, 10));
    expected.push("tear_down".to_owned());
    assert_eq!(
        second.calls(),
        expected,
        "the resumed run re-prepares and measures only what is missing"
    );
}

#[tokio::test]
async fn an_experiment_persisted_while_analyzing_is_completed_on_resume() {
    let (store, executor, id) = setup(ScriptedExecutor::default()).await;
    let mut stored = store.get(&id).await.unwrap();
    for window in stored.spec.windows() {
        stored.status.windows.push(WindowMeasurement {
            window,
            baseline: sample(700, 4200),
            candidate: sample(280, 1680),
        });
    }
    stored.status.phase = Phase::Analyzing;
    let event = stored.event(
        "test",
        EventKind::Updated,
        "written as an interrupted run would leave it",
    );
    store.update(&stored, &event).await.unwrap();

    let done = controller(&store, &executor).run(&id).await.unwrap();
    assert_eq!(done.status.phase, Phase::Completed);
    assert!(done.status.results.is_some());
    assert_eq!(
        executor.calls(),
        ["tear_down"],
        "resuming Analyzing only re-does its tear-down"
    );
}

#[tokio::test]
async fn cancelling_a_running_experiment_stops_its_controller_and_tears_down() {
    let gate = Arc::new(Gate {
        window: 2,
        reached: Notify::new(),
        release: Notify::new(),
    });
    let script = ScriptedExecutor {
        gate: Some(gate.clone()),
        ..ScriptedExecutor::default()
    };
    let (store, executor, id) = setup(script).await;
    let controller = controller(&store, &executor);

    let runner = {
        let controller = controller.clone();
        let id = id.clone();
        tokio::spawn(async move { controller.run(&id).await })
    };
    gate.reached.notified().await;
    let cancelled = controller
        .cancel(&id, "alice", "no longer needed")
        .await
        .unwrap();
    assert_eq!(cancelled.status.phase, Phase::Cancelled);
    gate.release.notify_one();

    let done = runner.await.unwrap().unwrap();
    assert_eq!(done.status.phase, Phase::Cancelled);
    assert_eq!(
        done.status.windows.len(),
        2,
        "the window measured after the cancel is not recorded"
    );
    let calls = executor.calls();
    let tear_downs = calls.iter().filter(|c| *c == "tear_down").count();
    assert_eq!(
        tear_downs, 2,
        "once by the cancel, once by the preempted run: {calls:?}"
    );
    assert!(
        !calls.contains(&"measure 3".to_owned()),
        "no window is measured after the cancel"
    );
    let events = store.events(&id).await.unwrap();
    let cancel = events
        .iter()
        .find(|e| e.actor == "alice" && e.message.contains("no longer needed"));
    assert!(cancel.is_some());
    assert_eq!(store.get(&id).await.unwrap().status.phase, Phase::Cancelled);
}

#[tokio::test]
async fn a_concurrent_edit_does_not_stop_the_run() {
    let (store, executor, id) = setup_with(|store| ScriptedExecutor {
        meddle: Some((1, store.clone())),
        ..ScriptedExecutor::default()
    })
    .await;
    let done = controller(&store, &executor).run(&id).await.unwrap();
    assert_eq!(done.status.phase, Phase::Completed);
    assert_eq!(done.status.windows.len(), 10);
    assert_eq!(
        done.spec.description, "edited while running",
        "the other writer's change is kept"
    );
}

#[tokio::test]
async fn promotion_and_rollback_go_through_the_executor() {
    let (store, executor, id) = setup(ScriptedExecutor::default()).await;
    let controller = controller(&store, &executor);

    let refused = controller.promote(&id, "alice").await.unwrap_err();
    assert!(matches!(refused, Error::Transition(_)), "{refused}");
    assert!(!executor.calls().contains(&"promote".to_owned()));

    controller.run(&id).await.unwrap();
    let promoted = controller.promote(&id, "alice").await.unwrap();
    assert_eq!(promoted.status.phase, Phase::Promoted);
    let rolled_back = controller.rollback(&id, "bob").await.unwrap();
    assert_eq!(rolled_back.status.phase, Phase::RolledBack);
    let calls = executor.calls();
    assert_eq!(&calls[calls.len() - 2..], ["promote", "rollback"]);
    let err = controller.cancel(&id, "bob", "").await.unwrap_err();
    assert!(err.to_string().contains("rolledBack"), "{err}");
}

#[tokio::test]
async fn rejecting_a_completed_candidate_needs_no_executor_work() {
    let (store, executor, id) = setup(ScriptedExecutor::default()).await;
    let controller = controller(&store, &executor);
    controller.run(&id).await.unwrap();
    let before = executor.calls().len();
    let rejected = controller.rollback(&id, "alice").await.unwrap();
    assert_eq!(rejected.status.phase, Phase::RolledBack);
    assert_eq!(executor.calls().len(), before);
}

#[tokio::test]
async fn unknown_experiments_are_not_found() {
    let store = Arc::new(MemoryStore::default());
    let executor = Arc::new(ScriptedExecutor::default());
    let id: ExperimentId = "exp-00000000".parse().unwrap();
    let err = controller(&store, &executor).run(&id).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
}

#[tokio::test]
async fn a_promotion_that_loses_a_race_is_undone() {
    let (store, executor, id) = setup_with(|store| ScriptedExecutor {
        reject_while_promoting: Some(store.clone()),
        ..ScriptedExecutor::default()
    })
    .await;
    let controller = controller(&store, &executor);
    controller.run(&id).await.unwrap();

    let err = controller.promote(&id, "alice").await.unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    let calls = executor.calls();
    assert_eq!(
        &calls[calls.len() - 2..],
        ["promote", "rollback"],
        "the promotion is undone"
    );
    let stored = store.get(&id).await.unwrap();
    assert_eq!(
        stored.status.phase,
        Phase::RolledBack,
        "the other writer's decision stands"
    );
}

#[tokio::test]
async fn a_failed_tear_down_after_a_cancel_is_recorded_not_lost() {
    let script = ScriptedExecutor {
        fail_tear_down: true,
        ..ScriptedExecutor::default()
    };
    let (store, executor, id) = setup(script).await;
    let controller = controller(&store, &executor);
    controller.start(&id, "alice").await.unwrap();

    let cancelled = controller.cancel(&id, "alice", "").await.unwrap();
    assert_eq!(cancelled.status.phase, Phase::Cancelled);
    assert_eq!(executor.calls(), ["tear_down"]);
    let events = store.events(&id).await.unwrap();
    let last = events.last().unwrap();
    assert!(
        last.message
            .contains("tear-down after the cancellation failed"),
        "{}",
        last.message
    );
    assert!(
        last.message.contains("namespace is terminating"),
        "{}",
        last.message
    );
}

#[tokio::test]
async fn an_invalid_stored_spec_fails_the_run_naming_the_field() {
    let (store, executor, id) = setup(ScriptedExecutor::default()).await;
    let mut stored = store.get(&id).await.unwrap();
    stored.spec.measurement_window = Some(Duration::from_millis(1));
    let event = stored.event("test", EventKind::Updated, "written around validation");
    store.update(&stored, &event).await.unwrap();

    let done = controller(&store, &executor).run(&id).await.unwrap();
    assert_eq!(done.status.phase, Phase::Failed);
    let failure = done.status.failure.unwrap();
    assert!(failure.contains("spec.measurementWindow"), "{failure}");
    assert!(
        executor.calls().is_empty(),
        "nothing was deployed for a pending experiment"
    );
}
