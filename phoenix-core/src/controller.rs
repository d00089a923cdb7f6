//! The experiment controller: drives one experiment through its phases using only the
//! [`ExperimentStore`] and [`Executor`] traits.
//!
//! The controller reads the experiment, decides the next [`PhaseEvent`] from its phase, asks
//! [`transition`](crate::phase::transition) what follows, persists the new state together with
//! an event, and then performs the returned [`Effect`]s through the executor. Because every
//! step of a run is persisted before its effects run, a controller started on an experiment that was
//! interrupted mid-run continues from the stored phase: it performs the effects of entering
//! that phase again (they are idempotent) and measures the windows that are still missing.
//!
//! Other writers may change the experiment while it runs, a user cancelling it for example.
//! The controller notices on its next write (the store refuses its stale version), reloads,
//! and stops driving when the phase is no longer the one it was driving, tearing the variants
//! down if the run was cancelled or failed under it.
//!
//! A user's promotion or rollback is the exception: the executor acts first and the decision
//! is stored afterwards, guarded by the version it was made on, and undone if another writer
//! changed the experiment in between.

use std::sync::Arc;

use crate::analysis;
use crate::cost::CostModel;
use crate::executor::Executor;
use crate::experiment::{EventKind, Experiment, ExperimentId, ExperimentStatus, ValidationErrors};
use crate::measurement::Window;
use crate::phase::{Effect, Phase, PhaseEvent, transition};
use crate::store::ExperimentStore;
use crate::{Error, Result};

/// The actor named in the events the controller writes.
pub const CONTROLLER_ACTOR: &str = "phoenix-controller";

/// How often a request is retried when concurrent writers keep changing the experiment.
const MAX_CONFLICT_RETRIES: usize = 16;

/// Drives experiments through their phases.
#[derive(Clone)]
pub struct ExperimentController {
    store: Arc<dyn ExperimentStore>,
    executor: Arc<dyn Executor>,
    cost_model: CostModel,
}

/// The outcome of trying to persist one step.
enum Step {
    /// The step was persisted; perform these effects.
    Moved(Experiment, &'static [Effect]),
    /// Someone else moved the experiment; this is what is stored now.
    Preempted(Experiment),
}

impl ExperimentController {
    /// A controller over this store and executor, with the default cost model.
    pub fn new(store: Arc<dyn ExperimentStore>, executor: Arc<dyn Executor>) -> Self {
        Self {
            store,
            executor,
            cost_model: CostModel::default(),
        }
    }

    /// Uses `cost_model` for experiments whose spec sets none.
    ///
    /// # Errors
    ///
    /// Every invalid price, named under `costModel`.
    pub fn with_cost_model(mut self, cost_model: CostModel) -> Result<Self, ValidationErrors> {
        cost_model.validate("costModel")?;
        self.cost_model = cost_model;
        Ok(self)
    }

    /// Marks a pending experiment as started by `actor`. [`run`](Self::run) then drives it.
    pub async fn start(&self, id: &ExperimentId, actor: &str) -> Result<Experiment> {
        let (experiment, _) = self
            .request(id, actor, &PhaseEvent::Start, "started")
            .await?;
        Ok(experiment)
    }

    /// Drives the experiment until its run is over — Completed, Failed or Cancelled — and
    /// returns it as stored then. A pending experiment is started; an interrupted one is
    /// resumed from its stored phase. If another writer moves the experiment meanwhile (a
    /// user cancelling it, or another controller), this one stops and returns what is stored.
    ///
    /// Executor errors and an invalid spec do not make this fail: they end the experiment in
    /// `Failed` with the reason. Store errors do, leaving the experiment as last persisted,
    /// to be resumed.
    pub async fn run(&self, id: &ExperimentId) -> Result<Experiment> {
        let mut experiment = self.store.get(id).await?;
        if !experiment.status.phase.is_active() {
            return Ok(experiment);
        }
        if let Err(errors) = experiment.spec.validate() {
            return self.fail(experiment, &Error::Invalid(errors)).await;
        }
        let windows = experiment.spec.windows();
        // Entering a phase performs its effects; a resumed phase has its effects redone.
        let mut pending_effects = experiment.status.phase.resume_effects();
        loop {
            if let Err(error) = self.perform(&experiment, pending_effects).await {
                return self.fail(experiment, &error).await;
            }
            let step = match experiment.status.phase {
                Phase::Pending => self.step(experiment, &PhaseEvent::Start, "started").await?,
                Phase::Initializing => {
                    let message = "both variants are prepared and running";
                    self.step(experiment, &PhaseEvent::Prepared, message)
                        .await?
                }
                Phase::Running => match self.measure_next(experiment, &windows).await? {
                    Ok(step) => step,
                    Err((experiment, error)) => return self.fail(experiment, &error).await,
                },
                Phase::Analyzing => self.analyze(experiment).await?,
                Phase::Completed
                | Phase::Failed
                | Phase::Cancelled
                | Phase::Promoted
                | Phase::RolledBack => return Ok(experiment),
            };
            match step {
                Step::Moved(next, effects) => {
                    experiment = next;
                    pending_effects = effects;
                }
                Step::Preempted(current) => return self.after_preemption(current).await,
            }
        }
    }

    /// Cancels an experiment whose run is not over, and tears its variants down.
    ///
    /// Once the cancellation is stored it stands: a tear-down that fails afterwards is
    /// recorded in the event log (the executor's tear-down is idempotent and can be retried)
    /// rather than reported as an error.
    pub async fn cancel(&self, id: &ExperimentId, actor: &str, reason: &str) -> Result<Experiment> {
        let message = if reason.is_empty() {
            "cancelled".to_owned()
        } else {
            format!("cancelled: {reason}")
        };
        let (experiment, effects) = self
            .request(id, actor, &PhaseEvent::Cancel, &message)
            .await?;
        self.perform_or_record(
            &experiment,
            effects,
            "tear-down after the cancellation failed",
        )
        .await?;
        Ok(experiment)
    }

    /// Promotes the candidate of a completed experiment.
    ///
    /// The executor makes the candidate the target's active pipeline, then the phase is
    /// stored as Promoted, guarded by the version read before promoting. If another writer
    /// changed the experiment in between, the promotion is undone and the conflict returned,
    /// so the target never runs a pipeline the record does not show.
    pub async fn promote(&self, id: &ExperimentId, actor: &str) -> Result<Experiment> {
        let experiment = self.store.get(id).await?;
        let message = match experiment
            .status
            .results
            .as_ref()
            .map(|r| &r.recommendation)
        {
            Some(analysis::Recommendation::Promote) | None => "candidate promoted",
            Some(_) => "candidate promoted against the recommendation",
        };
        self.decide(experiment, actor, &PhaseEvent::Promote, message)
            .await
    }

    /// Rejects the candidate of a completed experiment, or undoes its promotion (the executor
    /// restores the target's previous pipeline), with the same guard as
    /// [`promote`](Self::promote).
    pub async fn rollback(&self, id: &ExperimentId, actor: &str) -> Result<Experiment> {
        let experiment = self.store.get(id).await?;
        let message = match experiment.status.phase {
            Phase::Promoted => "promotion rolled back",
            _ => "candidate rejected",
        };
        self.decide(experiment, actor, &PhaseEvent::Rollback, message)
            .await
    }

    /// Performs a user's decision on the target, then stores it if the experiment is still
    /// in the state the decision was made on; otherwise undoes it.
    async fn decide(
        &self,
        experiment: Experiment,
        actor: &str,
        event: &PhaseEvent,
        message: &str,
    ) -> Result<Experiment> {
        let (_, effects) = transition(experiment.status.phase, event)?;
        self.perform(&experiment, effects).await?;
        let (id, read) = (experiment.id.clone(), experiment.version);
        let outcome = self
            .advance(experiment.clone(), event, actor, message, |_| {})
            .await;
        let error = match outcome {
            Ok(Step::Moved(saved, _)) => return Ok(saved),
            Ok(Step::Preempted(stored)) => Error::Conflict {
                id,
                expected: read,
                found: stored.version,
            },
            Err(error) => error,
        };
        let undo: &[Effect] = match effects {
            [Effect::Promote] => &[Effect::Rollback],
            [Effect::Rollback] => &[Effect::Promote],
            _ => &[],
        };
        self.perform(&experiment, undo).await?;
        Err(error)
    }

    /// Measures the next window, or finishes the run when every window is measured. An
    /// executor error comes back as `Ok(Err(..))` so that the caller fails the experiment.
    async fn measure_next(
        &self,
        experiment: Experiment,
        windows: &[Window],
    ) -> Result<Result<Step, (Experiment, Error)>> {
        let done = experiment.status.windows.len();
        let Some(window) = windows.get(done).copied() else {
            let message = format!("all {} measurement windows recorded", windows.len());
            return self
                .step(experiment, &PhaseEvent::RunFinished, &message)
                .await
                .map(Ok);
        };
        let measurement = match self.executor.measure(&experiment, window).await {
            Ok(m) if m.window == window => m,
            Ok(m) => {
                let error = Error::executor(format!(
                    "asked to measure window {} but got window {}",
                    window.index, m.window.index
                ));
                return Ok(Err((experiment, error)));
            }
            Err(error) => return Ok(Err((experiment, error))),
        };
        let message = format!("window {}/{} measured", done + 1, windows.len());
        let record = move |status: &mut ExperimentStatus| status.windows.push(measurement.clone());
        self.advance(
            experiment,
            &PhaseEvent::WindowMeasured,
            CONTROLLER_ACTOR,
            &message,
            record,
        )
        .await
        .map(Ok)
    }

    /// Computes the results and completes the experiment.
    async fn analyze(&self, experiment: Experiment) -> Result<Step> {
        let cost_model = experiment
            .spec
            .cost_model
            .clone()
            .unwrap_or_else(|| self.cost_model.clone());
        let results = analysis::analyze(
            &experiment.status.windows,
            &experiment.spec.success_criteria,
            &cost_model,
            self.executor.noise(),
        );
        let message = match &results.recommendation {
            analysis::Recommendation::Promote => {
                "analysed: recommend promoting the candidate".to_owned()
            }
            analysis::Recommendation::Reject { reasons } => {
                format!(
                    "analysed: recommend rejecting the candidate: {}",
                    join(reasons)
                )
            }
            analysis::Recommendation::Inconclusive { reasons } => {
                format!("analysed: inconclusive: {}", join(reasons))
            }
        };
        let record = move |status: &mut ExperimentStatus| status.results = Some(results.clone());
        self.advance(
            experiment,
            &PhaseEvent::Analyzed,
            CONTROLLER_ACTOR,
            &message,
            record,
        )
        .await
    }

    /// Performs effects through the executor.
    async fn perform(&self, experiment: &Experiment, effects: &[Effect]) -> Result<()> {
        for effect in effects {
            match effect {
                Effect::Prepare => {
                    self.executor.prepare(experiment).await?;
                    self.executor.start(experiment).await?;
                }
                Effect::TearDown => self.executor.tear_down(experiment).await?,
                Effect::Promote => self.executor.promote(experiment).await?,
                Effect::Rollback => self.executor.rollback(experiment).await?,
            }
        }
        Ok(())
    }

    /// Performs effects whose failure must not undo what was already stored: a failure is
    /// written to the event log instead.
    async fn perform_or_record(
        &self,
        experiment: &Experiment,
        effects: &[Effect],
        what: &str,
    ) -> Result<()> {
        if let Err(error) = self.perform(experiment, effects).await {
            let message = format!("{what}: {error}");
            let event = experiment.event(CONTROLLER_ACTOR, EventKind::Updated, message);
            self.store.append_event(&event).await?;
        }
        Ok(())
    }

    /// Ends the run in Failed with `error` as the reason, tearing down what was deployed.
    async fn fail(&self, experiment: Experiment, error: &Error) -> Result<Experiment> {
        let reason = error.to_string();
        let event = PhaseEvent::Fail {
            reason: reason.clone(),
        };
        let message = format!("failed: {reason}");
        match self.step(experiment, &event, &message).await? {
            Step::Moved(failed, effects) => {
                self.perform_or_record(&failed, effects, "tear-down after the failure failed too")
                    .await?;
                Ok(failed)
            }
            Step::Preempted(current) => self.after_preemption(current).await,
        }
    }

    /// Someone else moved the experiment while this controller drove it. If they ended the
    /// run, the variants this controller deployed are torn down; either way it stops driving.
    async fn after_preemption(&self, current: Experiment) -> Result<Experiment> {
        if matches!(current.status.phase, Phase::Cancelled | Phase::Failed) {
            let what = "tear-down after the run was ended elsewhere failed";
            self.perform_or_record(&current, &[Effect::TearDown], what)
                .await?;
        }
        Ok(current)
    }

    /// [`advance`](Self::advance) by the controller, changing nothing but the phase.
    async fn step(
        &self,
        experiment: Experiment,
        event: &PhaseEvent,
        message: &str,
    ) -> Result<Step> {
        self.advance(experiment, event, CONTROLLER_ACTOR, message, |_| {})
            .await
    }

    /// Applies `event` and `change` to the experiment and stores both with an event by
    /// `actor`: the one write path of the controller. When the store reports a concurrent
    /// change, the step is applied again to what is stored, as long as that is still the
    /// state the step was decided on; otherwise the stored experiment comes back as
    /// [`Step::Preempted`].
    async fn advance(
        &self,
        mut current: Experiment,
        event: &PhaseEvent,
        actor: &str,
        message: &str,
        change: impl Fn(&mut ExperimentStatus),
    ) -> Result<Step> {
        let mut attempt = 0;
        loop {
            let mut next = current.clone();
            let from = next.status.phase;
            let effects = next.apply(event)?;
            change(&mut next.status);
            let record = next.transition_event(from, event, actor, message);
            match self.store.update(&next, &record).await {
                Ok(saved) => return Ok(Step::Moved(saved, effects)),
                Err(Error::Conflict { .. }) if attempt < MAX_CONFLICT_RETRIES => {
                    attempt += 1;
                    let stored = self.store.get(&current.id).await?;
                    let same_state = stored.status.phase == current.status.phase
                        && stored.status.windows.len() == current.status.windows.len();
                    if !same_state {
                        return Ok(Step::Preempted(stored));
                    }
                    current = stored;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Applies a user's event to whatever is stored, re-reading when another writer moved
    /// the experiment meanwhile (the event may then be refused by the new phase).
    async fn request(
        &self,
        id: &ExperimentId,
        actor: &str,
        event: &PhaseEvent,
        message: &str,
    ) -> Result<(Experiment, &'static [Effect])> {
        let mut current = self.store.get(id).await?;
        for _ in 0..MAX_CONFLICT_RETRIES {
            match self.advance(current, event, actor, message, |_| {}).await? {
                Step::Moved(saved, effects) => return Ok((saved, effects)),
                Step::Preempted(stored) => current = stored,
            }
        }
        let found = self.store.get(id).await?.version;
        Err(Error::Conflict {
            id: id.clone(),
            expected: current.version,
            found,
        })
    }
}

fn join(reasons: &[analysis::Reason]) -> String {
    reasons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
