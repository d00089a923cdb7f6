//! OTLP export over gRPC (tonic, no code generation) and HTTP (ureq).

use std::time::Duration;

use phoenix_core::otlp::wire::ExportMetricsServiceRequest;
use phoenix_core::telemetry::Snapshot;
use prost::Message as _;
use tonic::codegen::http::uri::PathAndQuery;

use crate::output::Sink;
use crate::{Error, Result, SimStats};

/// The gRPC path of the OTLP metrics service's `Export` call.
pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/// The response of the `Export` call: `ExportMetricsServiceResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportMetricsServiceResponse {
    /// Set when the receiver rejected part of the request.
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<ExportMetricsPartialSuccess>,
}

/// `ExportMetricsPartialSuccess`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportMetricsPartialSuccess {
    /// Data points the receiver rejected.
    #[prost(int64, tag = "1")]
    pub rejected_data_points: i64,
    /// Why.
    #[prost(string, tag = "2")]
    pub error_message: String,
}

/// The default largest request: 4 MiB (the collector's default gRPC receive limit,
/// `max_recv_msg_size_mib: 4`) minus 256 KiB of headroom.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024 - 256 * 1024;

/// Timeouts and request size of the OTLP exporters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportOptions {
    /// Longest wait for a connection to the endpoint (default 10 s).
    pub connect_timeout: Duration,
    /// Longest wait for one request, from sending to the full response (default 30 s).
    pub request_timeout: Duration,
    /// Largest encoded request: a snapshot whose encoding is larger is sent as several
    /// requests, each holding whole resources (default [`DEFAULT_MAX_REQUEST_BYTES`]). A
    /// single resource larger than this is sent alone.
    pub max_request_bytes: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        }
    }
}

/// Splits `request` into requests of at most `max_bytes` encoded bytes each, keeping its
/// resources whole and in order. A request that fits is returned as it is; a resource
/// that alone exceeds `max_bytes` gets a request of its own.
pub fn split_request(
    request: ExportMetricsServiceRequest,
    max_bytes: usize,
) -> Vec<ExportMetricsServiceRequest> {
    if request.encoded_len() <= max_bytes {
        return vec![request];
    }
    let mut requests = Vec::new();
    let mut current = ExportMetricsServiceRequest::default();
    let mut size = 0;
    for resource in request.resource_metrics {
        // `repeated ResourceMetrics resource_metrics = 1`: tag, length, body.
        let len = prost::encoding::message::encoded_len(1, &resource);
        if !current.resource_metrics.is_empty() && size + len > max_bytes {
            requests.push(std::mem::take(&mut current));
            size = 0;
        }
        size += len;
        current.resource_metrics.push(resource);
    }
    if !current.resource_metrics.is_empty() {
        requests.push(current);
    }
    requests
}

fn check_partial(endpoint: &str, response: &ExportMetricsServiceResponse) -> Result<()> {
    match &response.partial_success {
        Some(p) if p.rejected_data_points > 0 => Err(Error::Export {
            endpoint: endpoint.to_owned(),
            message: format!(
                "{} data points rejected: {}",
                p.rejected_data_points, p.error_message
            ),
        }),
        _ => Ok(()),
    }
}

/// OTLP over gRPC: one `Export` call per snapshot (several for a snapshot larger than
/// [`ExportOptions::max_request_bytes`]).
pub struct OtlpGrpc {
    runtime: tokio::runtime::Runtime,
    client: tonic::client::Grpc<tonic::transport::Channel>,
    endpoint: String,
    options: ExportOptions,
    /// Requests sent.
    pub requests: u64,
}

impl std::fmt::Debug for OtlpGrpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpGrpc")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl OtlpGrpc {
    /// Connects to `endpoint`, e.g. `http://127.0.0.1:4317`, with the default
    /// [`ExportOptions`].
    ///
    /// # Errors
    ///
    /// As [`OtlpGrpc::connect_with`].
    pub fn connect(endpoint: &str) -> Result<Self> {
        Self::connect_with(endpoint, ExportOptions::default())
    }

    /// Connects to `endpoint` with `options`' timeouts and request size.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] naming `otlp-grpc` for a malformed URL, [`Error::Export`] if
    /// the connection fails or does not succeed within the connect timeout.
    pub fn connect_with(endpoint: &str, options: ExportOptions) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| export_error(endpoint, e))?;
        let target = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| Error::option("otlp-grpc", format!("invalid URL {endpoint:?}: {e}")))?
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout);
        let channel = runtime
            .block_on(async {
                tokio::time::timeout(options.connect_timeout, target.connect())
                    .await
                    .map_err(|_| {
                        format!(
                            "no connection within {}",
                            humantime::format_duration(options.connect_timeout)
                        )
                    })?
                    .map_err(|e| e.to_string())
            })
            .map_err(|e| export_error(endpoint, e))?;
        Ok(Self {
            runtime,
            client: tonic::client::Grpc::new(channel),
            endpoint: endpoint.to_owned(),
            options,
            requests: 0,
        })
    }

    /// Sends one snapshot, split into several requests if it is larger than
    /// [`ExportOptions::max_request_bytes`].
    ///
    /// # Errors
    ///
    /// [`Error::Export`] if a call fails, times out, or data points are rejected.
    pub fn export(&mut self, snapshot: &Snapshot) -> Result<()> {
        let request = ExportMetricsServiceRequest::from(snapshot);
        for request in split_request(request, self.options.max_request_bytes) {
            self.export_request(request)?;
        }
        Ok(())
    }

    fn export_request(&mut self, request: ExportMetricsServiceRequest) -> Result<()> {
        let client = &mut self.client;
        let timeout = self.options.request_timeout;
        let response: ExportMetricsServiceResponse = self
            .runtime
            .block_on(async {
                let call = async {
                    client.ready().await.map_err(|e| e.to_string())?;
                    client
                        .unary(
                            tonic::Request::new(request),
                            PathAndQuery::from_static(EXPORT_PATH),
                            tonic_prost::ProstCodec::default(),
                        )
                        .await
                        .map(tonic::Response::into_inner)
                        .map_err(|status| format!("{}: {}", status.code(), status.message()))
                };
                tokio::time::timeout(timeout, call).await.map_err(|_| {
                    format!("no response within {}", humantime::format_duration(timeout))
                })?
            })
            .map_err(|message| Error::Export {
                endpoint: self.endpoint.clone(),
                message,
            })?;
        self.requests += 1;
        check_partial(&self.endpoint, &response)
    }
}

impl Sink for OtlpGrpc {
    fn send(&mut self, snapshot: &Snapshot, _: &SimStats) -> Result<()> {
        self.export(snapshot)
    }
}

/// OTLP over HTTP: one protobuf `POST <endpoint>/v1/metrics` per snapshot (several for a
/// snapshot larger than [`ExportOptions::max_request_bytes`]).
#[derive(Debug)]
pub struct OtlpHttp {
    agent: ureq::Agent,
    url: String,
    options: ExportOptions,
    /// Requests sent.
    pub requests: u64,
}

impl OtlpHttp {
    /// A sink posting to `<endpoint>/v1/metrics`, e.g. `http://127.0.0.1:4318`, with the
    /// default [`ExportOptions`]. An endpoint that already ends in `/v1/metrics` is used as
    /// it is.
    ///
    /// # Errors
    ///
    /// As [`OtlpHttp::with_options`].
    pub fn new(endpoint: &str) -> Result<Self> {
        Self::with_options(endpoint, ExportOptions::default())
    }

    /// As [`OtlpHttp::new`], with `options`' timeouts (the request timeout covers the
    /// whole request, connection included) and request size.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] naming `otlp-http` unless the endpoint is an `http://` URL
    /// (TLS is not built in).
    pub fn with_options(endpoint: &str, options: ExportOptions) -> Result<Self> {
        let trimmed = endpoint.trim_end_matches('/');
        if !trimmed.starts_with("http://") || trimmed.len() <= "http://".len() {
            return Err(Error::option(
                "otlp-http",
                format!("expected an http:// URL such as http://127.0.0.1:4318, got {endpoint:?}"),
            ));
        }
        let url = if trimmed.ends_with("/v1/metrics") {
            trimmed.to_owned()
        } else {
            format!("{trimmed}/v1/metrics")
        };
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(options.connect_timeout))
            .timeout_global(Some(options.request_timeout))
            .build();
        Ok(Self {
            agent: ureq::Agent::new_with_config(config),
            url,
            options,
            requests: 0,
        })
    }

    /// The URL posted to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends one snapshot, split into several requests if it is larger than
    /// [`ExportOptions::max_request_bytes`].
    ///
    /// # Errors
    ///
    /// [`Error::Export`] if a request fails or times out, the status is not 2xx, or data
    /// points are rejected.
    pub fn export(&mut self, snapshot: &Snapshot) -> Result<()> {
        let request = ExportMetricsServiceRequest::from(snapshot);
        for request in split_request(request, self.options.max_request_bytes) {
            self.export_request(&request.encode_to_vec())?;
        }
        Ok(())
    }

    fn export_request(&mut self, body: &[u8]) -> Result<()> {
        let mut response = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/x-protobuf")
            .send(body)
            .map_err(|e| export_error(&self.url, e))?;
        self.requests += 1;
        let bytes = response
            .body_mut()
            .read_to_vec()
            .map_err(|e| export_error(&self.url, e))?;
        if let Ok(parsed) = ExportMetricsServiceResponse::decode(&bytes[..]) {
            check_partial(&self.url, &parsed)?;
        }
        Ok(())
    }
}

impl Sink for OtlpHttp {
    fn send(&mut self, snapshot: &Snapshot, _: &SimStats) -> Result<()> {
        self.export(snapshot)
    }
}

fn export_error(endpoint: &str, e: impl std::fmt::Display) -> Error {
    Error::Export {
        endpoint: endpoint.to_owned(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Profile, SimConfig, Simulator};
    use phoenix_core::experiment::ProfilePreset;

    #[test]
    fn large_requests_are_split_between_resources() {
        let profile = Profile::preset(ProfilePreset::HighCardinality);
        let mut sim = Simulator::new(&profile, SimConfig::default()).unwrap();
        let request = ExportMetricsServiceRequest::from(sim.next_snapshot());
        let total = request.encoded_len();
        assert!(total > 256 * 1024, "{total} bytes");
        let limit = 64 * 1024;
        let parts = split_request(request.clone(), limit);
        assert!(parts.len() >= total / limit, "{} parts", parts.len());
        for part in &parts {
            assert!(part.encoded_len() <= limit, "{}", part.encoded_len());
        }
        let joined: Vec<_> = parts.into_iter().flat_map(|p| p.resource_metrics).collect();
        assert_eq!(joined, request.resource_metrics);
        assert_eq!(split_request(request.clone(), total), vec![request.clone()]);
        // A resource larger than the limit travels alone.
        let alone = split_request(request.clone(), 10);
        assert_eq!(alone.len(), request.resource_metrics.len());
    }
}
