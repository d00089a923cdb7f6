//! `LoadSimulationJob`: a Job running `phoenix-sim` to put process load on a node.

use kube::CustomResource;
use phoenix_core::experiment::ProfilePreset;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, PodSettings};

/// A process-load simulation run as a Kubernetes Job.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "phoenix.io",
    version = "v1alpha1",
    kind = "LoadSimulationJob",
    namespaced,
    status = "LoadSimulationJobStatus",
    shortname = "lsj",
    category = "phoenix",
    doc = "A phoenix-sim run as a Job: real worker processes or a synthetic host, for a bounded time.",
    printcolumn = r#"{"name":"Profile", "type":"string", "jsonPath":".spec.profile"}"#,
    printcolumn = r#"{"name":"Mode", "type":"string", "jsonPath":".spec.mode"}"#,
    printcolumn = r#"{"name":"Duration", "type":"string", "jsonPath":".spec.duration"}"#,
    printcolumn = r#"{"name":"Phase", "type":"string", "jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age", "type":"date", "jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct LoadSimulationJobSpec {
    /// The simulator profile preset.
    #[serde(default)]
    pub profile: ProfilePreset,
    /// Process count instead of the preset's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<u32>,
    /// How long to run, e.g. `30m` (humantime syntax). The Job is stopped once it has passed.
    pub duration: String,
    /// Simulator seed; the same seed gives the same workload.
    #[serde(default)]
    pub seed: u64,
    /// Real worker processes (seen by collectors on the node) or a synthetic host.
    #[serde(default)]
    pub mode: SimulationMode,
    /// Synthetic mode: time between scrapes (humantime), `10s` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_interval: Option<String>,
    /// Synthetic mode: OTLP/HTTP endpoint to export to; when unset the simulator serves its
    /// scrapes for Prometheus on port 9464.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// The experiment the load belongs to, for labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment_id: Option<String>,
    /// Image, resources and scheduling of the simulator pod.
    #[serde(default)]
    pub pod: PodSettings,
}

/// How the simulator makes load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SimulationMode {
    /// `phoenix-sim spawn`: bounded real processes that burn CPU and hold memory; collectors
    /// with the host's PID namespace see them.
    #[default]
    Real,
    /// `phoenix-sim run --realtime`: a synthetic host exported over OTLP or Prometheus.
    Synthetic,
}

impl SimulationMode {
    /// The mode as written in the spec.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Real => "real",
            Self::Synthetic => "synthetic",
        }
    }
}

/// Where a simulation stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SimulationPhase {
    /// The Job is not running yet.
    #[default]
    Pending,
    /// The simulator runs.
    Running,
    /// The simulator finished its duration.
    Succeeded,
    /// The simulator failed.
    Failed,
    /// The Job outlived its duration and was stopped.
    Stopped,
    /// The spec is invalid; see the Degraded condition.
    Invalid,
}

impl SimulationPhase {
    /// The phase as written in the status.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Stopped => "Stopped",
            Self::Invalid => "Invalid",
        }
    }

    /// Whether the simulation is over.
    pub const fn is_finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Stopped)
    }
}

/// What the operator observed of a simulation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadSimulationJobStatus {
    /// Where the simulation stands.
    #[serde(default)]
    pub phase: SimulationPhase,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The Job's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// When the Job started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<chrono::DateTime<chrono::Utc>>,
    /// When the simulation ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Ready, Progressing and Degraded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
