//! Experiments: create, list, read, update, delete, start, stop, promote, roll back, events,
//! results, and the event stream.

use phoenix_core::analysis::ExperimentResults;
use phoenix_core::experiment::{
    EventKind, Experiment, ExperimentEvent, ExperimentId, ExperimentSpec, FieldError,
};
use phoenix_core::phase::Phase;
use phoenix_core::store::{Cursor, ExperimentStore, ListQuery, MAX_PAGE_SIZE};
use phoenix_store::Role;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use super::Service;
use crate::auth::Principal;
use crate::events::ObservedStore;
use crate::{Error, Result};

/// `GET /api/v1/experiments` query parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExperimentQuery {
    /// Only experiments in this phase (`pending`, `running`, `completed`, `rolledBack`, …).
    pub phase: Option<String>,
    /// Only experiments of this owner.
    pub owner: Option<String>,
    /// Only experiments whose name starts with this.
    pub name_prefix: Option<String>,
    /// At most this many (1 to 1000, default 100).
    pub limit: Option<u32>,
    /// The `next` token of the previous page.
    pub after: Option<String>,
}

/// One page of experiments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExperimentList {
    /// The experiments, oldest first.
    pub items: Vec<Experiment>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Parses an experiment id from a path or message.
pub(crate) fn parse_id(id: &str) -> Result<ExperimentId> {
    if id.is_empty() {
        return Err(Error::invalid_field(
            "id",
            "must not be empty: send an experiment id such as exp-a1b2c3d4",
        ));
    }
    id.parse()
        .map_err(|e: phoenix_core::experiment::InvalidExperimentId| {
            Error::invalid_field("id", e.to_string())
        })
}

/// The events of one experiment, as they are written: the past ones first, then new ones
/// until the run is over.
#[derive(Debug)]
pub struct EventWatch {
    receiver: mpsc::Receiver<Result<ExperimentEvent>>,
}

impl EventWatch {
    /// The next event; `None` once the run is over (Completed, Failed, Cancelled,
    /// Promoted or RolledBack) and every event was delivered. An error ends the stream.
    pub async fn next(&mut self) -> Option<Result<ExperimentEvent>> {
        self.receiver.recv().await
    }

    /// The underlying channel, for adapters such as `tokio_stream::wrappers::ReceiverStream`.
    pub fn into_receiver(self) -> mpsc::Receiver<Result<ExperimentEvent>> {
        self.receiver
    }
}

/// At most this many events of a read log are kept to recognise the same events arriving
/// on the broadcast (which holds at most this many of all experiments).
const DEDUPE_WINDOW: usize = 1024;

/// The task behind an [`EventWatch`]: sends the event log, then every event of the
/// experiment as it is broadcast; reads the log again only after falling behind.
struct Forwarder {
    store: ObservedStore,
    id: ExperimentId,
    sender: mpsc::Sender<Result<ExperimentEvent>>,
    /// How many events of the log were sent.
    sent: usize,
    /// The tail of the last log read: broadcast events equal to one of these were sent
    /// already. Cleared at the first broadcast event that is new.
    recent: Vec<ExperimentEvent>,
    /// The run is over: stop after what was sent.
    over: bool,
}

/// Whether the watch goes on after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

impl Forwarder {
    async fn run(
        mut self,
        replay: Vec<ExperimentEvent>,
        mut live: broadcast::Receiver<ExperimentEvent>,
        mut deletions: broadcast::Receiver<ExperimentId>,
    ) {
        if self.send_log(replay).await == Flow::Stop {
            return;
        }
        while !self.over {
            let flow = tokio::select! {
                () = self.sender.closed() => Flow::Stop,
                received = live.recv() => match received {
                    Ok(event) if event.experiment_id == self.id => self.send_live(event).await,
                    Ok(_) => Flow::Continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => self.reread().await,
                    Err(broadcast::error::RecvError::Closed) => Flow::Stop,
                },
                deleted = deletions.recv() => match deleted {
                    Ok(gone) if gone == self.id => self.gone().await,
                    Ok(_) => Flow::Continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => self.recheck().await,
                    Err(broadcast::error::RecvError::Closed) => Flow::Stop,
                },
            };
            if flow == Flow::Stop {
                return;
            }
        }
    }

    /// Sends `event`; notes the end of the run.
    async fn send(&mut self, event: ExperimentEvent) -> Flow {
        if let EventKind::Transition { to, .. } = &event.kind
            && !to.is_active()
        {
            self.over = true;
        }
        self.sent += 1;
        if self.sender.send(Ok(event)).await.is_err() {
            return Flow::Stop;
        }
        Flow::Continue
    }

    /// Sends the events of `log` not sent yet, and keeps its tail for deduplication.
    async fn send_log(&mut self, log: Vec<ExperimentEvent>) -> Flow {
        let total = log.len();
        let keep_from = total.saturating_sub(DEDUPE_WINDOW);
        let skip = self.sent;
        self.recent.clear();
        for (index, event) in log.into_iter().enumerate() {
            if index >= keep_from {
                self.recent.push(event.clone());
            }
            if index >= skip && self.send(event).await == Flow::Stop {
                return Flow::Stop;
            }
        }
        self.sent = self.sent.max(total);
        Flow::Continue
    }

    /// Sends a broadcast event unless the last log read held it already.
    async fn send_live(&mut self, event: ExperimentEvent) -> Flow {
        if !self.recent.is_empty() {
            if self.recent.iter().rev().any(|seen| *seen == event) {
                return Flow::Continue;
            }
            // Everything after the first new event is new too.
            self.recent.clear();
        }
        self.send(event).await
    }

    /// After falling behind the broadcast: sends what the log holds beyond what was sent.
    async fn reread(&mut self) -> Flow {
        match self.store.events(&self.id).await {
            Ok(log) => self.send_log(log).await,
            Err(e) => {
                let _ = self.sender.send(Err(e.into())).await;
                Flow::Stop
            }
        }
    }

    /// After missing deletion notices: ends the watch if the experiment is gone.
    async fn recheck(&mut self) -> Flow {
        match self.store.get(&self.id).await {
            Ok(_) => Flow::Continue,
            Err(phoenix_core::Error::NotFound { .. }) => self.gone().await,
            Err(e) => {
                let _ = self.sender.send(Err(e.into())).await;
                Flow::Stop
            }
        }
    }

    /// The experiment was deleted: ends the stream with a not-found error.
    async fn gone(&mut self) -> Flow {
        let error = Error::NotFound(format!(
            "experiment {} was deleted while being watched",
            self.id
        ));
        let _ = self.sender.send(Err(error)).await;
        Flow::Stop
    }
}

impl Service {
    fn require_owner_or(
        &self,
        principal: &Principal,
        experiment: &Experiment,
        action: &str,
    ) -> Result<()> {
        principal.require(Role::Experimenter, action)?;
        if principal.role >= Role::Operator || experiment.spec.owner == principal.name {
            return Ok(());
        }
        Err(Error::NotOwner(format!(
            "{action} on experiment {} needs the operator role or ownership; it belongs to {:?}",
            experiment.id, experiment.spec.owner
        )))
    }

    /// Checks a spec for `principal`: owner defaulted to the caller, every field valid.
    fn prepare_spec(principal: &Principal, mut spec: ExperimentSpec) -> Result<ExperimentSpec> {
        if spec.owner.is_empty() {
            spec.owner.clone_from(&principal.name);
        }
        let mut errors: Vec<FieldError> = Vec::new();
        if spec.owner != principal.name && principal.role < Role::Operator {
            errors.push(FieldError {
                path: "spec.owner".to_owned(),
                message: format!(
                    "must be your own name ({:?}): only operators create experiments for others",
                    principal.name
                ),
            });
        }
        if let Err(invalid) = spec.validate() {
            errors.extend(invalid.into_errors());
        }
        // Inline configs are parsed when the run starts: refuse alias bombs now.
        for (path, pipeline) in [
            ("spec.baseline", &spec.baseline),
            ("spec.candidate", &spec.candidate),
        ] {
            if let Err(e) = super::document::check_inline(pipeline, path) {
                errors.extend(e.field_errors());
            }
        }
        if errors.is_empty() {
            Ok(spec)
        } else {
            Err(Error::InvalidInput {
                message: format!(
                    "the experiment spec has {} invalid field{}",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" }
                ),
                errors,
            })
        }
    }

    /// Creates a pending experiment.
    pub async fn create_experiment(
        &self,
        principal: &Principal,
        spec: ExperimentSpec,
    ) -> Result<Experiment> {
        principal.require(Role::Experimenter, "creating experiments")?;
        let spec = Self::prepare_spec(principal, spec)?;
        let experiment = Experiment::new(spec);
        let event = experiment.event(&principal.name, EventKind::Created, "created");
        self.inner.experiments.create(&experiment, &event).await?;
        tracing::info!(id = %experiment.id, by = %principal.name, "experiment created");
        Ok(experiment)
    }

    /// Experiments matching `query`, oldest first.
    pub async fn list_experiments(
        &self,
        principal: &Principal,
        query: &ExperimentQuery,
    ) -> Result<ExperimentList> {
        self.list_experiments_with(principal, query, Vec::new())
            .await
    }

    /// [`Service::list_experiments`] for a transport that found `errors` in the request
    /// already: they are reported together with the query's own.
    pub(crate) async fn list_experiments_with(
        &self,
        principal: &Principal,
        query: &ExperimentQuery,
        mut errors: Vec<FieldError>,
    ) -> Result<ExperimentList> {
        principal.require(Role::Viewer, "listing experiments")?;
        let phase = match query.phase.as_deref() {
            None | Some("") => None,
            Some(text) => {
                let parsed = Phase::parse(text);
                if parsed.is_none() {
                    let known: Vec<_> = Phase::ALL.iter().map(|p| p.as_str()).collect();
                    errors.push(FieldError {
                        path: "phase".into(),
                        message: format!(
                            "unknown phase {text:?}; expected one of {}",
                            known.join(", ")
                        ),
                    });
                }
                parsed
            }
        };
        let limit = query.limit.unwrap_or(100);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            errors.push(FieldError {
                path: "limit".into(),
                message: format!("must be within 1..={MAX_PAGE_SIZE}, got {limit}"),
            });
        }
        let after = match query.after.as_deref() {
            None | Some("") => None,
            Some(text) => match text.parse::<Cursor>() {
                Ok(cursor) => Some(cursor),
                Err(e) => {
                    errors.push(FieldError {
                        path: "after".into(),
                        message: e.to_string(),
                    });
                    None
                }
            },
        };
        if !errors.is_empty() {
            return Err(Error::InvalidInput {
                message: "invalid query parameters".into(),
                errors,
            });
        }
        let page = self
            .inner
            .experiments
            .list(&ListQuery {
                phase,
                owner: query.owner.clone().filter(|o| !o.is_empty()),
                name_prefix: query.name_prefix.clone().filter(|p| !p.is_empty()),
                limit,
                after,
            })
            .await?;
        Ok(ExperimentList {
            items: page.items,
            next: page.next.map(|c| c.to_string()),
        })
    }

    /// One experiment.
    pub async fn get_experiment(
        &self,
        principal: &Principal,
        id: &ExperimentId,
    ) -> Result<Experiment> {
        principal.require(Role::Viewer, "reading experiments")?;
        Ok(self.inner.experiments.get(id).await?)
    }

    /// One experiment as JSON, from memory when this server wrote or read it last.
    pub async fn get_experiment_json(
        &self,
        principal: &Principal,
        id: &ExperimentId,
    ) -> Result<axum::body::Bytes> {
        principal.require(Role::Viewer, "reading experiments")?;
        if let Some(cached) = self.inner.experiments.cached(id) {
            return Ok(cached.json);
        }
        let experiment = self.inner.experiments.get(id).await?;
        serde_json::to_vec(&experiment)
            .map(axum::body::Bytes::from)
            .map_err(|e| Error::Internal(format!("serializing experiment {id}: {e}")))
    }

    /// Replaces the spec of a pending experiment.
    pub async fn update_experiment(
        &self,
        principal: &Principal,
        id: &ExperimentId,
        spec: ExperimentSpec,
    ) -> Result<Experiment> {
        principal.require(Role::Experimenter, "updating experiments")?;
        let current = self.inner.experiments.get(id).await?;
        self.require_owner_or(principal, &current, "updating")?;
        if current.status.phase != Phase::Pending {
            return Err(Error::Conflict(format!(
                "experiment {id} is {}; only a pending experiment's spec can change",
                current.status.phase
            )));
        }
        let mut spec = spec;
        if spec.owner.is_empty() {
            spec.owner.clone_from(&current.spec.owner);
        }
        let spec = Self::prepare_spec(principal, spec)?;
        let mut next = current;
        next.spec = spec;
        next.updated_at = chrono::Utc::now();
        let event = next.event(&principal.name, EventKind::Updated, "spec replaced");
        Ok(self.inner.experiments.update(&next, &event).await?)
    }

    /// Deletes an experiment whose run is not in progress and that is not promoted.
    pub async fn delete_experiment(&self, principal: &Principal, id: &ExperimentId) -> Result<()> {
        principal.require(Role::Experimenter, "deleting experiments")?;
        let current = self.inner.experiments.get(id).await?;
        self.require_owner_or(principal, &current, "deleting")?;
        let phase = current.status.phase;
        if phase.is_active() && phase != Phase::Pending {
            return Err(Error::Conflict(format!(
                "experiment {id} is {phase}; stop it before deleting it"
            )));
        }
        // Its candidate is the target's active pipeline: the record must stay so that the
        // promotion can be rolled back. (The store has no versioned delete, so a start racing
        // this delete is not refused here; the run then ends when it finds the record gone.)
        if phase == Phase::Promoted {
            return Err(Error::Conflict(format!(
                "experiment {id} is promoted; roll it back before deleting it"
            )));
        }
        self.inner.experiments.delete(id).await?;
        tracing::info!(%id, by = %principal.name, "experiment deleted");
        Ok(())
    }

    /// Starts a pending experiment; it runs in the background.
    pub async fn start_experiment(
        &self,
        principal: &Principal,
        id: &ExperimentId,
    ) -> Result<Experiment> {
        principal.require(Role::Experimenter, "starting experiments")?;
        let current = self.inner.experiments.get(id).await?;
        self.require_owner_or(principal, &current, "starting")?;
        self.inner.runs.ensure_capacity()?;
        let started = self.inner.controller.start(id, &principal.name).await?;
        self.inner.runs.spawn(id.clone());
        Ok(started)
    }

    /// Cancels an experiment whose run is not over.
    pub async fn stop_experiment(
        &self,
        principal: &Principal,
        id: &ExperimentId,
    ) -> Result<Experiment> {
        principal.require(Role::Experimenter, "stopping experiments")?;
        let current = self.inner.experiments.get(id).await?;
        self.require_owner_or(principal, &current, "stopping")?;
        let reason = format!("stopped by {}", principal.name);
        let cancelled = self
            .inner
            .controller
            .cancel(id, &principal.name, &reason)
            .await?;
        // The cancellation is stored: the run task has nothing left to do.
        self.inner.runs.cancel(id).await;
        Ok(cancelled)
    }

    /// Promotes the candidate of a completed experiment.
    pub async fn promote_experiment(
        &self,
        principal: &Principal,
        id: &ExperimentId,
    ) -> Result<Experiment> {
        principal.require(Role::Operator, "promoting experiments")?;
        Ok(self.inner.controller.promote(id, &principal.name).await?)
    }

    /// Rejects the candidate of a completed experiment, or undoes its promotion.
    pub async fn rollback_experiment(
        &self,
        principal: &Principal,
        id: &ExperimentId,
    ) -> Result<Experiment> {
        principal.require(Role::Operator, "rolling back experiments")?;
        Ok(self.inner.controller.rollback(id, &principal.name).await?)
    }

    /// The experiment's events, oldest first.
    pub async fn experiment_events(
        &self,
        principal: &Principal,
        id: &ExperimentId,
    ) -> Result<Vec<ExperimentEvent>> {
        principal.require(Role::Viewer, "reading experiment events")?;
        // An unknown id is NotFound rather than an empty list.
        self.inner.experiments.get(id).await?;
        Ok(self.inner.experiments.events(id).await?)
    }

    /// The experiment's results, once analysed.
    pub async fn experiment_results(
        &self,
        principal: &Principal,
        id: &ExperimentId,
    ) -> Result<ExperimentResults> {
        principal.require(Role::Viewer, "reading experiment results")?;
        let experiment = self.inner.experiments.get(id).await?;
        experiment.status.results.ok_or_else(|| {
            let phase = experiment.status.phase;
            let why = match (phase, &experiment.status.failure) {
                (Phase::Failed, Some(reason)) => format!("it failed: {reason}"),
                (p, _) if p.is_active() => format!("it is {p}; results come when it completes"),
                (p, _) => format!("it ended {p} before completing"),
            };
            Error::Conflict(format!("experiment {id} has no results: {why}"))
        })
    }

    /// The experiment's events: every past one, then new ones as they are written, ending
    /// once the run is over. The stream ends with a not-found error if the experiment is
    /// deleted while watched; the task behind it ends as soon as the watcher goes away.
    pub async fn watch_experiment(
        &self,
        principal: &Principal,
        id: &ExperimentId,
    ) -> Result<EventWatch> {
        principal.require(Role::Viewer, "watching experiments")?;
        // Subscribe before reading, so that nothing written in between is missed; what is
        // both read and received is sent once.
        let live = self.events().subscribe();
        let deletions = self.events().subscribe_deletions();
        let experiment = self.inner.experiments.get(id).await?;
        let replay = self.inner.experiments.events(id).await?;
        let (sender, receiver) = mpsc::channel(64);
        let forwarder = Forwarder {
            store: self.inner.experiments.clone(),
            id: id.clone(),
            sender,
            sent: 0,
            recent: Vec::new(),
            over: !experiment.status.phase.is_active(),
        };
        tokio::spawn(forwarder.run(replay, live, deletions));
        Ok(EventWatch { receiver })
    }

    /// Resumes every experiment whose run was interrupted (Initializing, Running or
    /// Analyzing); returns how many.
    pub async fn resume_interrupted(&self) -> Result<usize> {
        let mut resumed = 0;
        for phase in [Phase::Initializing, Phase::Running, Phase::Analyzing] {
            let mut after = None;
            loop {
                let page = self
                    .inner
                    .experiments
                    .list(&ListQuery {
                        phase: Some(phase),
                        limit: MAX_PAGE_SIZE,
                        after: after.take(),
                        ..ListQuery::default()
                    })
                    .await?;
                for experiment in &page.items {
                    self.inner.experiments.remember(experiment);
                    tracing::info!(id = %experiment.id, %phase, "resuming an interrupted experiment");
                    self.inner.runs.spawn(experiment.id.clone());
                    resumed += 1;
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        Ok(resumed)
    }

    /// Loads every experiment's phase and results into memory for `/metrics`.
    pub(crate) async fn load_summaries(&self) -> Result<()> {
        let mut after = None;
        loop {
            let page = self
                .inner
                .experiments
                .list(&ListQuery {
                    limit: MAX_PAGE_SIZE,
                    after: after.take(),
                    ..ListQuery::default()
                })
                .await?;
            for experiment in &page.items {
                self.inner.experiments.remember(experiment);
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
        }
    }
}
