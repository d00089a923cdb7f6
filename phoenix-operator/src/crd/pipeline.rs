//! `PhoenixProcessPipeline`: one variant's collector, as a ConfigMap, a DaemonSet and a Service.

use kube::CustomResource;
use phoenix_core::measurement::VariantRole;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, PodSettings};

/// A process-metrics collector pipeline running on every selected node.
///
/// The config comes from a catalog `template` with `parameters`, or is written out in
/// `config`; either way phoenix-generator renders or checks it before anything is deployed.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "phoenix.io",
    version = "v1alpha1",
    kind = "PhoenixProcessPipeline",
    namespaced,
    status = "PipelineStatus",
    shortname = "ppl",
    category = "phoenix",
    doc = "A process-metrics collector pipeline: a rendered config, a collector DaemonSet and a metrics Service.",
    printcolumn = r#"{"name":"Variant", "type":"string", "jsonPath":".spec.variant"}"#,
    printcolumn = r#"{"name":"Template", "type":"string", "jsonPath":".spec.template"}"#,
    printcolumn = r#"{"name":"Desired", "type":"integer", "jsonPath":".status.desiredNodes"}"#,
    printcolumn = r#"{"name":"Ready", "type":"integer", "jsonPath":".status.readyNodes"}"#,
    printcolumn = r#"{"name":"Hash", "type":"string", "jsonPath":".status.configHash", "priority":1}"#,
    printcolumn = r#"{"name":"Age", "type":"date", "jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PhoenixProcessPipelineSpec {
    /// The experiment the pipeline belongs to (`exp-` + 8 lowercase letters or digits),
    /// written into every series as `phoenix.experiment.id`. Derived from the resource's uid
    /// when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment_id: Option<String>,
    /// Which side of the experiment this is; also chooses the default ports, so that a
    /// baseline and a candidate can run on the same node.
    pub variant: VariantRole,
    /// A catalog template, e.g. `process-topk-v1`. Exactly one of `template` and `config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// The template's parameters (camelCase). `experimentId`, `variant` and `rootPath` are
    /// set by the operator.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    #[schemars(schema_with = "super::free_form_object")]
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// A collector config written out (YAML), checked by phoenix-generator. Exactly one of
    /// `template` and `config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// Critical-process name patterns an inline `config` must keep intact; templates take
    /// theirs from `parameters.criticalProcesses`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub critical_processes: Vec<String>,
    /// Image, resources and scheduling of the collector pods.
    #[serde(default)]
    pub collector: PodSettings,
}

/// What the operator observed of a pipeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Nodes that should run a collector.
    #[serde(default)]
    pub desired_nodes: i32,
    /// Nodes whose collector is ready.
    #[serde(default)]
    pub ready_nodes: i32,
    /// Nodes whose collector runs the current pod template.
    #[serde(default)]
    pub updated_nodes: i32,
    /// Hash of the rendered config; the DaemonSet's pods carry it, so they roll on change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// The experiment id in effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment_id: Option<String>,
    /// Port of the `prometheus` exporter serving the pipeline's output, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus_port: Option<u16>,
    /// Port of the collector's own metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry_port: Option<u16>,
    /// Ready, Progressing and Degraded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
