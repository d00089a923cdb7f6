//! OTLP export over gRPC (tonic, no code generation) and HTTP (ureq).

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

/// OTLP over gRPC: one `Export` call per snapshot.
pub struct OtlpGrpc {
    runtime: tokio::runtime::Runtime,
    client: tonic::client::Grpc<tonic::transport::Channel>,
    endpoint: String,
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
    /// Connects to `endpoint`, e.g. `http://127.0.0.1:4317`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] naming `otlp-grpc` for a malformed URL, [`Error::Export`] if
    /// the connection fails.
    pub fn connect(endpoint: &str) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| export_error(endpoint, e))?;
        let target = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| Error::option("otlp-grpc", format!("invalid URL {endpoint:?}: {e}")))?;
        let channel = runtime
            .block_on(target.connect())
            .map_err(|e| export_error(endpoint, e))?;
        Ok(Self {
            runtime,
            client: tonic::client::Grpc::new(channel),
            endpoint: endpoint.to_owned(),
            requests: 0,
        })
    }

    /// Sends one snapshot.
    ///
    /// # Errors
    ///
    /// [`Error::Export`] if the call fails or data points are rejected.
    pub fn export(&mut self, snapshot: &Snapshot) -> Result<()> {
        let request = ExportMetricsServiceRequest::from(snapshot);
        let client = &mut self.client;
        let response: ExportMetricsServiceResponse = self
            .runtime
            .block_on(async {
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

/// OTLP over HTTP: one protobuf `POST <endpoint>/v1/metrics` per snapshot.
#[derive(Debug)]
pub struct OtlpHttp {
    agent: ureq::Agent,
    url: String,
    /// Requests sent.
    pub requests: u64,
}

impl OtlpHttp {
    /// A sink posting to `<endpoint>/v1/metrics`, e.g. `http://127.0.0.1:4318`. An endpoint
    /// that already ends in `/v1/metrics` is used as it is.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] naming `otlp-http` unless the endpoint is an `http://` URL
    /// (TLS is not built in).
    pub fn new(endpoint: &str) -> Result<Self> {
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
        Ok(Self {
            agent: ureq::Agent::new_with_defaults(),
            url,
            requests: 0,
        })
    }

    /// The URL posted to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends one snapshot.
    ///
    /// # Errors
    ///
    /// [`Error::Export`] if the request fails, the status is not 2xx, or data points are
    /// rejected.
    pub fn export(&mut self, snapshot: &Snapshot) -> Result<()> {
        let body = phoenix_core::otlp::encode_protobuf(snapshot);
        let mut response = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/x-protobuf")
            .send(&body[..])
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
