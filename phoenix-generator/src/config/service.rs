//! The `service` section: extensions, pipelines and the collector's own telemetry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::component::{ComponentId, PipelineId};

/// The `service` section.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Extensions to start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<ComponentId>,
    /// The pipelines.
    #[serde(default)]
    pub pipelines: BTreeMap<PipelineId, Pipeline>,
    /// The collector's own telemetry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<Telemetry>,
}

/// One pipeline: receivers feed the processors in order, then every exporter.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Receivers (and connectors used as receivers).
    #[serde(default)]
    pub receivers: Vec<ComponentId>,
    /// Processors, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processors: Vec<ComponentId>,
    /// Exporters (and connectors used as exporters).
    #[serde(default)]
    pub exporters: Vec<ComponentId>,
}

/// `service.telemetry`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    /// Internal metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<TelemetryMetrics>,
    /// Internal logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<TelemetryLogs>,
}

/// Verbosity of the collector's internal metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TelemetryLevel {
    /// No internal metrics.
    None,
    /// Essential metrics.
    Basic,
    /// The default.
    Normal,
    /// Everything.
    Detailed,
}

/// `service.telemetry.metrics`. The collector refuses the old `address` key since v0.128; the
/// listening address is a pull reader.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryMetrics {
    /// Verbosity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<TelemetryLevel>,
    /// Metric readers (the collector's default is a Prometheus pull reader on port 8888).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readers: Vec<MetricReader>,
}

impl TelemetryMetrics {
    /// Internal metrics served for pulling on `host:port`.
    pub fn prometheus(host: impl Into<String>, port: u16) -> Self {
        Self {
            level: None,
            readers: vec![MetricReader {
                pull: Some(PullReader {
                    exporter: PullExporter {
                        prometheus: Some(PrometheusReader {
                            host: Some(host.into()),
                            port: Some(port),
                        }),
                    },
                }),
            }],
        }
    }

    /// The ports of the Prometheus pull readers.
    pub fn prometheus_ports(&self) -> Vec<u16> {
        self.readers
            .iter()
            .filter_map(|r| r.pull.as_ref()?.exporter.prometheus.as_ref()?.port)
            .collect()
    }
}

/// A metric reader of the internal telemetry (pull readers only).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricReader {
    /// A pull reader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull: Option<PullReader>,
}

/// A pull reader.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullReader {
    /// Its exporter.
    pub exporter: PullExporter,
}

/// The exporter of a pull reader.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullExporter {
    /// A Prometheus endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusReader>,
}

/// A Prometheus endpoint for internal metrics.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusReader {
    /// Host to bind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Port to bind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// Level of the collector's own logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Debug.
    Debug,
    /// Info (default).
    Info,
    /// Warn.
    Warn,
    /// Error.
    Error,
}

/// `service.telemetry.logs`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryLogs {
    /// Level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<LogLevel>,
    /// `console` or `json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
}
