//! `PhoenixExperiment`: a baseline and a candidate pipeline compared on a live cluster.

use chrono::{DateTime, Utc};
use kube::CustomResource;
use phoenix_core::analysis::ExperimentResults;
use phoenix_core::experiment::{EventKind, ExperimentEvent};
use phoenix_core::measurement::WindowMeasurement;
use phoenix_core::phase::Phase;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, PodSettings, SimulationMode};

/// An experiment comparing two collector pipelines on the nodes of a cluster.
///
/// The operator drives it with phoenix-core's experiment controller: it creates one
/// `PhoenixProcessPipeline` per variant (and a `LoadSimulationJob` when asked), waits until
/// they are ready, measures them through Prometheus window by window, analyses, and writes
/// the phase, results and recommendation into the status. Promotion and rollback are
/// requested by setting `spec.decision`.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "phoenix.io",
    version = "v1alpha1",
    kind = "PhoenixExperiment",
    namespaced,
    status = "PhoenixExperimentStatus",
    shortname = "pexp",
    category = "phoenix",
    doc = "A Phoenix experiment: a baseline and a candidate process-metrics pipeline measured side by side.",
    printcolumn = r#"{"name":"Phase", "type":"string", "jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Windows", "type":"integer", "jsonPath":".status.windowsMeasured"}"#,
    printcolumn = r#"{"name":"Recommendation", "type":"string", "jsonPath":".status.recommendation"}"#,
    printcolumn = r#"{"name":"Decision", "type":"string", "jsonPath":".spec.decision"}"#,
    printcolumn = r#"{"name":"Age", "type":"date", "jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PhoenixExperimentSpec {
    /// The experiment, as phoenix-core's `ExperimentSpec` defines it (camelCase): name,
    /// variants, duration, critical processes, success criteria. Its target, when given,
    /// must be `kubernetes`; the workload feeds the load simulation when one is asked for.
    /// Checked by the operator, which reports every invalid field in the Degraded condition.
    #[schemars(schema_with = "super::free_form_object")]
    pub experiment: serde_json::Value,
    /// Image, resources and scheduling of both variants' collector pods. The target's node
    /// selector is added to the node selector here.
    #[serde(default)]
    pub collector: PodSettings,
    /// Run a `LoadSimulationJob` with the experiment's workload for the experiment's duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_simulation: Option<LoadSimulationSettings>,
    /// Promote the candidate or roll it back once the experiment has completed, or cancel a
    /// run that is not over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

/// The load simulation of an experiment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadSimulationSettings {
    /// Real processes (default) or a synthetic host.
    #[serde(default)]
    pub mode: SimulationMode,
    /// Image, resources and scheduling of the simulator pod.
    #[serde(default)]
    pub pod: PodSettings,
}

/// A user's decision on an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Decision {
    /// Make the candidate the target's active pipeline.
    Promote,
    /// Reject the candidate, or undo its promotion.
    Rollback,
    /// Stop a run that is not over and tear its variants down.
    Cancel,
}

impl Decision {
    /// The decision as written in the spec.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Promote => "promote",
            Self::Rollback => "rollback",
            Self::Cancel => "cancel",
        }
    }
}

/// What became of a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecisionRecord {
    /// The decision.
    pub decision: Decision,
    /// Whether it was carried out.
    pub applied: bool,
    /// What happened, e.g. why it was refused.
    pub message: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// One entry of an experiment's event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who: a user, or the controller.
    pub actor: String,
    /// The phase before a transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Phase>,
    /// The phase after a transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Phase>,
    /// The event, e.g. `windowMeasured`, or `created` / `updated`.
    pub event: String,
    /// Why, in words.
    pub message: String,
}

impl From<&ExperimentEvent> for HistoryEntry {
    fn from(event: &ExperimentEvent) -> Self {
        let (from, to, name) = match &event.kind {
            EventKind::Created => (None, None, "created".to_owned()),
            EventKind::Updated => (None, None, "updated".to_owned()),
            EventKind::Transition { from, to, event } => (Some(*from), Some(*to), event.clone()),
        };
        Self {
            at: event.at,
            actor: event.actor.clone(),
            from,
            to,
            event: name,
            message: event.message.clone(),
        }
    }
}

/// Where an experiment stands: phoenix-core's experiment record, kept in the status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhoenixExperimentStatus {
    /// The experiment id (from the resource's uid), used in labels and series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment_id: Option<String>,
    /// The version of the experiment record, incremented on every write of the controller.
    #[serde(default)]
    pub record_version: u64,
    /// The phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Measured windows so far.
    #[serde(default)]
    pub windows_measured: u32,
    /// The measurements, window by window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "free_form_list")]
    pub windows: Vec<WindowMeasurement>,
    /// The results, once analysed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::free_form_object")]
    pub results: Option<ExperimentResults>,
    /// The recommendation in one word: Promote, Reject or Inconclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<String>,
    /// Why the experiment failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The last decision carried out or refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionRecord>,
    /// The latest events of the experiment, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    /// When the run entered Running: the windows' offsets count from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_started_at: Option<DateTime<Utc>>,
    /// When the experiment record was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// When the experiment record last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Progressing and Degraded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

fn free_form_list(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
    })
}
