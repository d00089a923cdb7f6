//! Experiments: the spec users write, the record the store keeps, and its events.

mod id;
mod spec;
pub(crate) mod validation;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use id::{ExperimentId, InvalidExperimentId};
pub use spec::{
    CriticalMatcher, CriticalProcess, DEFAULT_WINDOW_COUNT, ExperimentSpec, MAX_DURATION,
    MAX_PROCESSES, MAX_WINDOWS, PipelineRef, ProfilePreset, SuccessCriteria, Target, Workload,
    WorkloadSource,
};
pub use validation::{FieldError, ValidationErrors};

use crate::analysis::ExperimentResults;
use crate::measurement::WindowMeasurement;
use crate::phase::{Effect, Phase, PhaseEvent, TransitionError, transition};

/// An experiment as stored: its spec and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Experiment {
    /// The id.
    pub id: ExperimentId,
    /// Incremented by the store on every update; an update naming an older version is refused.
    pub version: u64,
    /// What the experiment compares.
    pub spec: ExperimentSpec,
    /// Where it stands.
    pub status: ExperimentStatus,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

impl Experiment {
    /// A new pending experiment with a random id, at version 1.
    pub fn new(spec: ExperimentSpec) -> Self {
        Self::with_id(ExperimentId::random(), spec)
    }

    /// A new pending experiment with the given id, at version 1.
    pub fn with_id(id: ExperimentId, spec: ExperimentSpec) -> Self {
        let now = Utc::now();
        Self {
            id,
            version: 1,
            spec,
            status: ExperimentStatus::default(),
            created_at: now,
            updated_at: now,
        }
    }

    /// Applies `event` to the status: the new phase, and the failure reason for
    /// [`PhaseEvent::Fail`]. Returns the effects the caller must perform; nothing changes when
    /// the event is refused.
    pub fn apply(&mut self, event: &PhaseEvent) -> Result<&'static [Effect], TransitionError> {
        let (next, effects) = transition(self.status.phase, event)?;
        self.status.phase = next;
        if let PhaseEvent::Fail { reason } = event {
            self.status.failure = Some(reason.clone());
        }
        self.updated_at = Utc::now();
        Ok(effects)
    }

    /// An event about this experiment, stamped now.
    pub fn event(
        &self,
        actor: &str,
        kind: EventKind,
        message: impl Into<String>,
    ) -> ExperimentEvent {
        ExperimentEvent {
            experiment_id: self.id.clone(),
            at: Utc::now(),
            actor: actor.to_owned(),
            kind,
            message: message.into(),
        }
    }
}

impl Experiment {
    /// The event recording that `event` moved this experiment from `from` to its current
    /// phase.
    pub fn transition_event(
        &self,
        from: Phase,
        event: &PhaseEvent,
        actor: &str,
        message: impl Into<String>,
    ) -> ExperimentEvent {
        let kind = EventKind::Transition {
            from,
            to: self.status.phase,
            event: event.name().to_owned(),
        };
        self.event(actor, kind, message)
    }
}

/// Where an experiment stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentStatus {
    /// The phase.
    pub phase: Phase,
    /// The windows measured so far, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<WindowMeasurement>,
    /// The results, once analysed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<ExperimentResults>,
    /// Why the experiment failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

impl Default for ExperimentStatus {
    fn default() -> Self {
        Self {
            phase: Phase::Pending,
            windows: Vec::new(),
            results: None,
            failure: None,
        }
    }
}

/// A record in an experiment's event log: who did what, when and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentEvent {
    /// The experiment.
    pub experiment_id: ExperimentId,
    /// When.
    pub at: DateTime<Utc>,
    /// Who: a user name, or the controller.
    pub actor: String,
    /// What.
    pub kind: EventKind,
    /// Why, in words.
    pub message: String,
}

/// What an event records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "type"
)]
pub enum EventKind {
    /// The experiment was created.
    Created,
    /// The phase machine took a step (a progress step keeps the phase).
    Transition {
        /// The phase before.
        from: Phase,
        /// The phase after.
        to: Phase,
        /// The event's name, e.g. `windowMeasured`.
        event: String,
    },
    /// The spec or other data changed without a phase step.
    Updated,
}
