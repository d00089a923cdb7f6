//! Exporters (`otlp`, `otlphttp`, `prometheus`, `debug`, `file`), extensions (`health_check`)
//! and connectors (`forward`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::duration::GoDuration;
use super::serde_helpers::is_false;

/// An exporter definition.
#[derive(Debug, Clone, PartialEq)]
pub enum Exporter {
    /// `otlp` (gRPC).
    Otlp(OtlpExporter),
    /// `otlphttp`.
    OtlpHttp(OtlpHttpExporter),
    /// `prometheus` (pull endpoint).
    Prometheus(PrometheusExporter),
    /// `debug`.
    Debug(DebugExporter),
    /// `file`.
    File(FileExporter),
}

/// Client TLS settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTls {
    /// Plain-text connection.
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure: bool,
    /// Skip server certificate verification.
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure_skip_verify: bool,
    /// CA certificate file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Client certificate file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    /// Client key file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// Server name override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name_override: Option<String>,
}

/// Retry settings of an exporter.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryOnFailure {
    /// Whether retries happen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// First backoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_interval: Option<GoDuration>,
    /// Largest backoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_interval: Option<GoDuration>,
    /// Give up after this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_elapsed_time: Option<GoDuration>,
}

/// Queue settings of an exporter (subset).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendingQueue {
    /// Whether the queue is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Consumer goroutines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_consumers: Option<u32>,
    /// Capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_size: Option<u64>,
}

/// The `otlp` (gRPC) exporter.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpExporter {
    /// `host:port` of the server (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Extra request headers; values may reference `${env:VAR}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// TLS settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTls>,
    /// `gzip`, `zstd`, `snappy`, `none`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// Per-request timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
    /// Retry settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on_failure: Option<RetryOnFailure>,
    /// Queue settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending_queue: Option<SendingQueue>,
}

/// Payload encoding of `otlphttp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtlpHttpEncoding {
    /// Protobuf (default).
    Proto,
    /// JSON.
    Json,
}

/// The `otlphttp` exporter.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpHttpExporter {
    /// Base URL; `/v1/metrics` is appended for metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Full metrics URL, overriding `endpoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_endpoint: Option<String>,
    /// Extra request headers; values may reference `${env:VAR}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// TLS settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTls>,
    /// `gzip` (default), `zstd`, `none`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// Payload encoding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<OtlpHttpEncoding>,
    /// Per-request timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
    /// Retry settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on_failure: Option<RetryOnFailure>,
    /// Queue settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending_queue: Option<SendingQueue>,
}

/// `{enabled: bool}` for exporter features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enabled {
    /// Whether the feature is on.
    pub enabled: bool,
}

/// The `prometheus` exporter: serves the metrics it receives for scraping.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusExporter {
    /// `host:port` to listen on (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Prefix for metric names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels added to every metric.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub const_labels: BTreeMap<String, String>,
    /// Whether samples carry timestamps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_timestamps: Option<bool>,
    /// How long an unupdated series is still served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_expiration: Option<GoDuration>,
    /// Serve OpenMetrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_open_metrics: Option<bool>,
    /// Add type and unit suffixes to names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_metric_suffixes: Option<bool>,
    /// Copy resource attributes onto every series as labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_to_telemetry_conversion: Option<Enabled>,
}

impl PrometheusExporter {
    /// The port of `endpoint`, when it ends in `:<port>`.
    pub fn port(&self) -> Option<u16> {
        port_of(self.endpoint.as_deref()?)
    }
}

/// The port of a `host:port` address.
pub fn port_of(endpoint: &str) -> Option<u16> {
    endpoint.rsplit_once(':')?.1.parse().ok()
}

/// Verbosity of the `debug` exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verbosity {
    /// Counts only.
    Basic,
    /// One line per item.
    Normal,
    /// Everything.
    Detailed,
}

/// The `debug` exporter.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebugExporter {
    /// How much is logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbosity: Option<Verbosity>,
    /// Items logged per second before sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_initial: Option<u32>,
    /// Then one in this many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_thereafter: Option<u32>,
}

/// Output format of the `file` exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// OTLP JSON, one object per line (Phoenix's recording format).
    Json,
    /// Length-prefixed OTLP protobuf.
    Proto,
}

/// File rotation of the `file` exporter.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRotation {
    /// Rotate after this size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_megabytes: Option<u32>,
    /// Delete files older than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_days: Option<u32>,
    /// Keep this many old files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backups: Option<u32>,
    /// Use local time in backup names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localtime: Option<bool>,
}

/// The `file` exporter.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileExporter {
    /// Output file (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Output format (default `json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<FileFormat>,
    /// Append instead of truncating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append: Option<bool>,
    /// Flush period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_interval: Option<GoDuration>,
    /// `zstd` or unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// Rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<FileRotation>,
}

/// An extension definition.
#[derive(Debug, Clone, PartialEq)]
pub enum Extension {
    /// `health_check`.
    HealthCheck(HealthCheckExtension),
}

/// The `health_check` extension.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckExtension {
    /// `host:port` to listen on (default `localhost:13133`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// URL path (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// A connector definition.
#[derive(Debug, Clone, PartialEq)]
pub enum Connector {
    /// `forward`: exporter of one pipeline, receiver of others; passes data unchanged.
    Forward(ForwardConnector),
}

/// The `forward` connector (no settings).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConnector {}
