//! The `phoenix.io/v1alpha1` custom resources, as Rust types.
//!
//! The CRDs in `deploy/crds/` are generated from these types by the `crdgen` binary
//! ([`crds`] lists them), so the types are the single source of truth.

mod condition;
mod experiment;
mod pipeline;
mod simulation;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use condition::{Condition, ConditionStatus, ConditionType, Conditions};
pub use experiment::{
    Decision, DecisionRecord, HistoryEntry, LoadSimulationSettings, PhoenixExperiment,
    PhoenixExperimentSpec, PhoenixExperimentStatus,
};
pub use pipeline::{PhoenixProcessPipeline, PhoenixProcessPipelineSpec, PipelineStatus};
pub use simulation::{
    LoadSimulationJob, LoadSimulationJobSpec, LoadSimulationJobStatus, SimulationMode,
    SimulationPhase,
};

/// The API group of every Phoenix custom resource.
pub const GROUP: &str = "phoenix.io";
/// The API version of every Phoenix custom resource.
pub const VERSION: &str = "v1alpha1";

/// Every Phoenix CRD, in the order `crdgen` writes them.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        PhoenixExperiment::crd(),
        PhoenixProcessPipeline::crd(),
        LoadSimulationJob::crd(),
    ]
}

/// How the pods the operator runs for a resource are scheduled and sized.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodSettings {
    /// Container image; the operator's default for the component when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Compute resources of the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Labels that select the nodes to run on; all nodes when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations, e.g. to run on control-plane nodes too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Service account of the pods; the operator's default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
}

/// The schema of a free-form JSON object that Kubernetes keeps as written.
pub(crate) fn free_form_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// An experiment id derived from a resource's uid: `exp-` and the uid's first 8 hex digits.
///
/// Kubernetes uids are lowercase hex with dashes, so the result is always a valid id.
pub fn experiment_id_from_uid(uid: &str) -> Option<phoenix_core::experiment::ExperimentId> {
    let digits: String = uid
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .take(8)
        .collect();
    if digits.len() < 8 {
        return None;
    }
    format!("exp-{digits}").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experiment_ids_come_from_uids() {
        let id = experiment_id_from_uid("3F2a9c1e-77aa-4b1c-9d2e-0123456789ab").unwrap();
        assert_eq!(id.as_str(), "exp-3f2a9c1e");
        assert!(experiment_id_from_uid("abc").is_none());
    }
}
