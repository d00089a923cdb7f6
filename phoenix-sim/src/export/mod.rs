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

mod otlp;
mod prometheus;

pub use otlp::{
    EXPORT_PATH, ExportMetricsPartialSuccess, ExportMetricsServiceResponse, OtlpGrpc, OtlpHttp,
};
pub use prometheus::{PrometheusServer, render};
