//! The local executor: runs an experiment's variants in-process, with phoenix-sim's
//! simulator (or a recording) as the workload and phoenix-generator's pipeline emulator as
//! the collectors.
//!
//! Simulated time is not wall time: a window of an hour of scrapes is computed as fast as the
//! simulator and the emulator go. Each scrape `k` of a run is taken at offset
//! `k × scrapeInterval` from [`RUN_START`]; a window `[start, end)` holds the scrapes whose
//! offsets fall in it. Every scrape, warm-up included, runs through both variants'
//! emulators, so that stateful processors (`cumulativetodelta`) are warm when measuring
//! starts; scrapes of the warm-up are not counted, and distinct series count from the first
//! window. See `docs/local-runner.md`.
//!
//! ```
//! use std::sync::Arc;
//! use phoenix::core::controller::ExperimentController;
//! use phoenix::core::experiment::{EventKind, Experiment, ExperimentSpec};
//! use phoenix::core::phase::Phase;
//! use phoenix::core::store::ExperimentStore;
//! use phoenix::local::LocalExecutor;
//! use phoenix::store::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let spec: ExperimentSpec = serde_yaml::from_str(r#"
//! name: priority-trial
//! baseline: {template: process-baseline-v1}
//! candidate:
//!   template: process-priority-filter-v1
//!   parameters: {highPriorityProcesses: ["^nginx$"]}
//! workload: {profile: realistic, processes: 20, seed: 1}
//! duration: 2m
//! criticalProcesses: ["^postgres$"]
//! "#)?;
//! let store = Arc::new(MemoryStore::new());
//! let experiment = Experiment::new(spec);
//! store.create(&experiment, &experiment.event("docs", EventKind::Created, "created")).await?;
//!
//! let controller = ExperimentController::new(store.clone(), Arc::new(LocalExecutor::new()));
//! let done = controller.run(&experiment.id).await?;
//! assert_eq!(done.status.phase, Phase::Completed);
//! let results = done.status.results.expect("a completed run has results");
//! assert!(results.candidate.data_points_per_minute < results.baseline.data_points_per_minute);
//! assert_eq!(results.candidate.critical_coverage, 1.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod variant;
mod workload;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use phoenix_core::executor::Executor;
use phoenix_core::experiment::{
    CriticalMatcher, Experiment, ExperimentId, ExperimentSpec, PipelineRef, Target,
};
use phoenix_core::measurement::{Noise, VariantRole, Window, WindowMeasurement};
use phoenix_core::{Error, Result};
use phoenix_sim::MetricSelection;
use phoenix_store::{PipelineOrigin, PipelineStore, PipelineTarget};

use variant::{Counting, VariantPipeline, VariantState, critical_processes, variant_error};
pub use workload::RUN_START;
use workload::{Source, WorkloadPlan, scrapes_in};

/// `role`'s pipeline reference of `experiment` as [`LocalExecutor`] runs and promotes it: for
/// a template, the parameters `experimentId`, `variant`, `collectionInterval` (the spec's
/// scrape interval) and `criticalProcesses` (the spec's, when it lists any) are filled in
/// where the parameters leave them out; an inline config is taken as written. Render a
/// template reference with `phoenix_generator::catalog::render_template` to get the exact
/// config a promotion records.
pub fn effective_pipeline(experiment: &Experiment, role: VariantRole) -> PipelineRef {
    variant::effective_pipeline(experiment, role)
}

/// Runs experiments in-process: the simulator (or a recording) feeds both variants' pipeline
/// emulators, and each window is measured from what the variants export.
///
/// Measurements are [`Noise::Deterministic`]: the same spec gives the same figures. A fresh
/// executor asked for a later window (after a resume) replays the workload from the first
/// scrape, so cumulative figures are those of an uninterrupted run.
///
/// Promotion records the candidate's config as the target's active pipeline in the
/// [`PipelineStore`] given with [`with_pipeline_store`](Self::with_pipeline_store); without
/// one, promotion and rollback have nothing to change and succeed without doing anything.
pub struct LocalExecutor {
    runs: Mutex<HashMap<ExperimentId, Arc<Mutex<Run>>>>,
    pipelines: Option<Arc<dyn PipelineStore>>,
    base_dir: PathBuf,
}

impl std::fmt::Debug for LocalExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalExecutor")
            .field("runs", &lock(&self.runs).len())
            .field("pipeline_store", &self.pipelines.is_some())
            .field("base_dir", &self.base_dir)
            .finish()
    }
}

impl Default for LocalExecutor {
    fn default() -> Self {
        Self::new()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LocalExecutor {
    /// An executor without a pipeline store, reading recordings relative to the working
    /// directory.
    pub fn new() -> Self {
        Self {
            runs: Mutex::new(HashMap::new()),
            pipelines: None,
            base_dir: PathBuf::new(),
        }
    }

    /// Records promotions and rollbacks in `store`, as the target's active pipeline.
    #[must_use]
    pub fn with_pipeline_store(mut self, store: Arc<dyn PipelineStore>) -> Self {
        self.pipelines = Some(store);
        self
    }

    /// Reads recordings named by relative paths from `dir` instead of the working directory.
    #[must_use]
    pub fn with_base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = dir.into();
        self
    }

    /// The run of `experiment`, prepared now if this executor has none (a fresh executor
    /// after a resume), or if the spec changed since it was prepared.
    fn run_for(&self, experiment: &Experiment) -> Result<Arc<Mutex<Run>>> {
        if let Some(run) = lock(&self.runs).get(&experiment.id)
            && lock(run).spec == experiment.spec
        {
            return Ok(Arc::clone(run));
        }
        let run = Arc::new(Mutex::new(Run::prepare(experiment, &self.base_dir)?));
        lock(&self.runs).insert(experiment.id.clone(), Arc::clone(&run));
        Ok(run)
    }

    fn target(experiment: &Experiment) -> PipelineTarget {
        PipelineTarget::from(&experiment.spec.target)
    }
}

#[async_trait]
impl Executor for LocalExecutor {
    fn noise(&self) -> Noise {
        Noise::Deterministic
    }

    /// Resolves both variants' pipelines (rendering templates with the experiment's id,
    /// variant, scrape interval and critical processes filled in where the parameters leave
    /// them out), builds their emulators, and checks the workload. Keeps an existing run of
    /// the same spec, with its progress.
    async fn prepare(&self, experiment: &Experiment) -> Result<()> {
        self.run_for(experiment).map(drop)
    }

    /// Positions the workload at its first scrape, unless the run has started already.
    async fn start(&self, experiment: &Experiment) -> Result<()> {
        let run = self.run_for(experiment)?;
        let mut run = lock(&run);
        if run.progress.is_none() {
            run.progress = Some(run.fresh()?);
        }
        Ok(())
    }

    /// Advances the workload through the window's scrapes (replaying from the first scrape
    /// when the window lies behind the run's position) and measures both variants. The work
    /// runs on tokio's blocking pool when called inside a tokio runtime.
    async fn measure(&self, experiment: &Experiment, window: Window) -> Result<WindowMeasurement> {
        let run = self.run_for(experiment)?;
        let job = move || lock(&run).measure(window);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle.spawn_blocking(job).await.map_err(|e| {
                Error::executor(format!("measuring window {} failed: {e}", window.index))
            })?,
            Err(_) => job(),
        }
    }

    /// Drops the run's state.
    async fn tear_down(&self, experiment: &Experiment) -> Result<()> {
        lock(&self.runs).remove(&experiment.id);
        Ok(())
    }

    /// With a pipeline store, makes the candidate's config the target's active pipeline (a
    /// target with no pipeline yet first gets the baseline's, so that a rollback has it to
    /// restore). Promoting again while the candidate is active changes nothing.
    async fn promote(&self, experiment: &Experiment) -> Result<()> {
        let Some(store) = &self.pipelines else {
            return Ok(());
        };
        let target = Self::target(experiment);
        let candidate = VariantPipeline::resolve(experiment, VariantRole::Candidate)?;
        let origin = |variant| PipelineOrigin {
            experiment_id: experiment.id.clone(),
            variant,
        };
        match store.active(&target).await? {
            Some(active)
                if active.origin.as_ref() == Some(&origin(VariantRole::Candidate))
                    && active.config == candidate.yaml =>
            {
                return Ok(());
            }
            Some(_) => {}
            None => {
                let baseline = VariantPipeline::resolve(experiment, VariantRole::Baseline)?;
                let origin = origin(VariantRole::Baseline);
                store
                    .activate(&target, &baseline.yaml, Some(&origin))
                    .await?;
            }
        }
        let origin = origin(VariantRole::Candidate);
        store
            .activate(&target, &candidate.yaml, Some(&origin))
            .await?;
        Ok(())
    }

    /// With a pipeline store, restores the pipeline that was active before this experiment's
    /// candidate, if the candidate is the target's active pipeline; otherwise (never
    /// promoted, or replaced since) nothing changes.
    async fn rollback(&self, experiment: &Experiment) -> Result<()> {
        let Some(store) = &self.pipelines else {
            return Ok(());
        };
        let target = Self::target(experiment);
        let ours = PipelineOrigin {
            experiment_id: experiment.id.clone(),
            variant: VariantRole::Candidate,
        };
        let active = store.active(&target).await?;
        if active.and_then(|a| a.origin).as_ref() == Some(&ours) {
            store.rollback(&target).await?;
        }
        Ok(())
    }
}

/// One experiment's run: what was resolved at preparation, and how far the workload went.
#[derive(Debug)]
struct Run {
    spec: ExperimentSpec,
    /// The variants as the spec names them, for error messages.
    originals: [PipelineRef; 2],
    pipelines: [VariantPipeline; 2],
    plan: WorkloadPlan,
    matcher: CriticalMatcher,
    /// The first scrape after the warm-up.
    measured_from: u64,
    progress: Option<Progress>,
}

/// The workload and the variants' emulators at a scrape of the run.
#[derive(Debug)]
struct Progress {
    /// One copy of the workload per variant (baseline, candidate), replaying the same
    /// snapshots.
    sources: [Source; 2],
    /// Scrapes run so far, i.e. the index of the next one.
    next_scrape: u64,
    states: [VariantState; 2],
}

impl Run {
    fn prepare(experiment: &Experiment, base_dir: &std::path::Path) -> Result<Self> {
        let spec = &experiment.spec;
        if let Target::Kubernetes { namespace, .. } = &spec.target {
            return Err(Error::executor(format!(
                "target: the local executor runs only `kind: local` experiments; this one targets the Kubernetes namespace {namespace:?}"
            )));
        }
        let matcher = spec.critical_matcher().map_err(Error::Invalid)?;
        let baseline = VariantPipeline::resolve(experiment, VariantRole::Baseline)?;
        let candidate = VariantPipeline::resolve(experiment, VariantRole::Candidate)?;
        let metrics = candidate.enable_metrics(baseline.enable_metrics(MetricSelection::default()));
        let plan = WorkloadPlan::new(spec, base_dir, metrics)?;
        Ok(Self {
            spec: spec.clone(),
            originals: [spec.baseline.clone(), spec.candidate.clone()],
            pipelines: [baseline, candidate],
            plan,
            matcher,
            measured_from: scrapes_in(spec.warm_up, spec.scrape_interval),
            progress: None,
        })
    }

    /// The workload and fresh emulators, before the first scrape.
    fn fresh(&self) -> Result<Progress> {
        let [b, c] = &self.pipelines;
        let [ob, oc] = &self.originals;
        Ok(Progress {
            sources: [self.plan.source()?, self.plan.source()?],
            next_scrape: 0,
            states: [VariantState::new(b, ob)?, VariantState::new(c, oc)?],
        })
    }

    fn measure(&mut self, window: Window) -> Result<WindowMeasurement> {
        let interval = self.spec.scrape_interval;
        let first = scrapes_in(window.start, interval);
        let end = scrapes_in(window.end, interval);
        let behind = self.progress.as_ref().is_none_or(|p| p.next_scrape > first);
        if behind {
            // Never measured, or asked for a window already passed: replay from the start.
            self.progress = None;
            self.progress = Some(self.fresh()?);
        }
        let Some(progress) = self.progress.as_mut() else {
            return Err(Error::executor("the run has no workload"));
        };
        let result = Self::advance(
            progress,
            &self.originals,
            &self.matcher,
            self.measured_from,
            first,
            end,
        );
        match result {
            Ok([baseline, candidate]) => Ok(WindowMeasurement {
                window,
                baseline,
                candidate,
            }),
            Err(error) => {
                // A failed scrape leaves the emulators part-way: start over next time.
                self.progress = None;
                Err(error)
            }
        }
    }

    /// Runs scrapes up to `first` (counting measured ones into the distinct series only),
    /// then the scrapes `first..end` in full, and returns both variants' samples.
    fn advance(
        progress: &mut Progress,
        originals: &[PipelineRef; 2],
        matcher: &CriticalMatcher,
        measured_from: u64,
        first: u64,
        end: u64,
    ) -> Result<[phoenix_core::measurement::VariantSample; 2]> {
        let Progress {
            sources: [source0, source1],
            next_scrape,
            states: [state0, state1],
        } = progress;
        let start = *next_scrape;
        let scrapes = ScrapeRange {
            start,
            first,
            end,
            measured_from,
        };
        // The variants are independent, and each has its own copy of the workload: the
        // candidate runs on a scoped thread while the baseline runs here, without waiting
        // for each other between scrapes.
        let (baseline, candidate) = std::thread::scope(|scope| {
            let candidate = scope.spawn(|| scrapes.run(source1, state1, matcher));
            let baseline = scrapes.run(source0, state0, matcher);
            (baseline, candidate.join())
        });
        let candidate = candidate
            .map_err(|_| variant_error(role(1), &originals[1], "the emulator panicked"))?;
        // When both fail, the earlier scrape's failure is the one to report.
        match (baseline, candidate) {
            (Ok(baseline), Ok(candidate)) => {
                *next_scrape = end.max(start);
                Ok([baseline, candidate])
            }
            (Err(b), Err(c)) if c.scrape() < b.scrape() => {
                Err(c.into_error(role(1), &originals[1]))
            }
            (Err(b), _) => Err(b.into_error(role(0), &originals[0])),
            (_, Err(c)) => Err(c.into_error(role(1), &originals[1])),
        }
    }
}

/// The scrapes one call to [`Run::advance`] runs.
#[derive(Debug, Clone, Copy)]
struct ScrapeRange {
    /// The next scrape to run.
    start: u64,
    /// The first scrape of the window.
    first: u64,
    /// The scrape after the window.
    end: u64,
    /// The first scrape counted into the distinct series.
    measured_from: u64,
}

/// Why one variant's scrapes stopped.
enum ScrapeFailure {
    /// The recording ended after this many scrapes.
    WorkloadEnded(u64),
    /// The emulator failed at this scrape.
    Emulator(u64, phoenix_generator::Error),
}

impl ScrapeFailure {
    /// The scrape that failed.
    fn scrape(&self) -> u64 {
        match self {
            Self::WorkloadEnded(k) | Self::Emulator(k, _) => *k,
        }
    }

    fn into_error(self, role: VariantRole, original: &PipelineRef) -> Error {
        match self {
            Self::WorkloadEnded(k) => {
                Error::executor(format!("workload: the recording ends after {k} scrapes"))
            }
            Self::Emulator(_, e) => variant_error(role, original, e),
        }
    }
}

impl ScrapeRange {
    /// Runs the scrapes through one variant, reading its copy of the workload, and returns
    /// its sample of the window.
    fn run(
        self,
        source: &mut Source,
        state: &mut VariantState,
        matcher: &CriticalMatcher,
    ) -> std::result::Result<phoenix_core::measurement::VariantSample, ScrapeFailure> {
        let mut scratch = state.tally();
        let mut tally: Option<variant::Tally> = None;
        for k in self.start..self.end {
            let counting = if k >= self.first {
                Counting::Window
            } else if k >= self.measured_from {
                Counting::Replayed
            } else {
                Counting::WarmUp
            };
            if counting == Counting::Window && tally.is_none() {
                tally = Some(state.tally());
            }
            let snapshot = source
                .next_snapshot()
                .ok_or(ScrapeFailure::WorkloadEnded(k))?;
            let critical = if counting == Counting::Window {
                critical_processes(snapshot, matcher)
            } else {
                Vec::new()
            };
            state
                .scrape(
                    snapshot,
                    &critical,
                    counting,
                    tally.as_mut().unwrap_or(&mut scratch),
                )
                .map_err(|e| ScrapeFailure::Emulator(k, e))?;
        }
        let tally = tally.unwrap_or_else(|| state.tally());
        Ok(tally.sample(state.distinct()))
    }
}

fn role(index: usize) -> VariantRole {
    if index == 0 {
        VariantRole::Baseline
    } else {
        VariantRole::Candidate
    }
}
