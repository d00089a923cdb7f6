//! Network outputs (feature `export`): OTLP over gRPC and over HTTP to a collector, and a
//! Prometheus endpoint.
//!
//! - [`OtlpGrpc`]: the OTLP metrics service's `Export` call
//!   (`/opentelemetry.proto.collector.metrics.v1.MetricsService/Export`), unary, one
//!   request per snapshot, as the collector's `otlp` receiver expects on port 4317.
//! - [`OtlpHttp`]: `POST <endpoint>/v1/metrics` with `Content-Type: application/x-protobuf`,
//!   as the `otlp` receiver expects on port 4318.
//! - [`PrometheusServer`]: `GET /metrics` in the Prometheus text format: the current
//!   snapshot plus the simulator's own metrics.
//!
//! A response that reports rejected data points (`partial_success`) is an error.
//!
//! Both OTLP exporters take [`ExportOptions`]: a connect timeout (default 10 s), a request
//! timeout (default 30 s), so that an unreachable or silent endpoint fails instead of
//! hanging, and a largest request size (default [`DEFAULT_MAX_REQUEST_BYTES`], under the
//! collector's default 4 MiB gRPC receive limit): a larger snapshot is sent as several
//! requests, split between resources ([`split_request`]).

mod otlp;
mod prometheus;

pub use otlp::{
    DEFAULT_MAX_REQUEST_BYTES, EXPORT_PATH, ExportMetricsPartialSuccess,
    ExportMetricsServiceResponse, ExportOptions, OtlpGrpc, OtlpHttp, split_request,
};
pub use prometheus::{PrometheusServer, render};
