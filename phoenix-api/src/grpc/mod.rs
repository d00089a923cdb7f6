//! gRPC `phoenix.v1`: `ExperimentService` (with the `WatchEvents` server stream) and
//! `PipelineService`, served on the same port as REST over HTTP/2.
//!
//! The services call the same [`Service`](crate::service::Service) operations as REST, so
//! roles, validation and errors are the same. Every call needs
//! `authorization: Bearer <access token>` metadata; [`Error`](crate::Error)s become status
//! codes in one place (the table is in `docs/grpc.md`) and never carry internal details. The protocol is in
//! `phoenix-api/proto/phoenix/v1/*.proto`; `docs/grpc.md` shows how to call it.
//!
//! # Example
//!
//! Mount the services and call one with the generated client over a loopback port:
//!
//! ```
//! use phoenix_api::grpc::proto::ListTemplatesRequest;
//! use phoenix_api::grpc::proto::pipeline_service_client::PipelineServiceClient;
//! use phoenix_api::service::LoginRequest;
//! use phoenix_api::{AppState, ServerConfig};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let config = ServerConfig::default()
//!     .with_database_url("memory://")
//!     .with_admin_password("correct horse battery");
//! let state = AppState::open(&config).await?;
//! let login = LoginRequest { username: "admin".into(), password: "correct horse battery".into() };
//! let token = state.service().login(&login, None).await?.access_token;
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let address = listener.local_addr()?;
//! let server = tokio::spawn(async move {
//!     axum::serve(listener, phoenix_api::grpc::router(state)).await
//! });
//!
//! let mut client = PipelineServiceClient::connect(format!("http://{address}")).await?;
//! let mut request = tonic::Request::new(ListTemplatesRequest {});
//! request.metadata_mut().insert("authorization", format!("Bearer {token}").parse()?);
//! let templates = client.list_templates(request).await?.into_inner().templates;
//! assert!(templates.iter().any(|t| t.name == "process-topk-v1"));
//!
//! // Without a token the call is refused.
//! let refused = client.list_templates(ListTemplatesRequest {}).await.unwrap_err();
//! assert_eq!(refused.code(), tonic::Code::Unauthenticated);
//! server.abort();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod experiments;
mod pipelines;
pub mod proto;
mod status;

use phoenix_core::experiment::ExperimentSpec;
use serde::de::DeserializeOwned;
use tonic::Request;
use tonic::server::NamedService;

pub use experiments::ExperimentApi;
pub use pipelines::PipelineApi;

use crate::auth::Principal;
use crate::service::document::{Format, parse, parse_at};
use crate::{AppState, Error, Result};
use proto::experiment_service_server::ExperimentServiceServer;
use proto::pipeline_service_server::PipelineServiceServer;

/// The largest reply message the services send (16 MiB); pages of at most 100 items keep
/// replies far below it.
pub const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;

/// Both services as an axum router, to merge into the HTTP router (gRPC needs HTTP/2, which
/// the server accepts beside HTTP/1 on the same port). It routes `/phoenix.v1.<Service>/*`
/// only and has no fallback of its own, so it merges into a router that has one. Request
/// messages larger than the server's body limit, and replies larger than
/// [`MAX_REPLY_BYTES`], fail with `OUT_OF_RANGE`.
pub fn router(state: AppState) -> axum::Router {
    let limit = state.body_limit;
    let experiments = ExperimentServiceServer::new(ExperimentApi::new(state.clone()))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(MAX_REPLY_BYTES);
    let pipelines = PipelineServiceServer::new(PipelineApi::new(state))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(MAX_REPLY_BYTES);
    axum::Router::new()
        .route_service(&service_path(&experiments), experiments)
        .route_service(&service_path(&pipelines), pipelines)
}

/// The route of every method of a service: `/<package>.<Service>/{*method}`.
fn service_path<S: NamedService>(_: &S) -> String {
    format!("/{}/{{*method}}", S::NAME)
}

/// Whether a request is a gRPC call (`content-type: application/grpc...`).
pub(crate) fn is_grpc(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// The `/metrics` route and status labels of a gRPC call to `path`: the method's own path
/// (`/phoenix.v1.ExperimentService/ListExperiments`) unless the method does not exist (then
/// the `route` pattern, so that made-up names share one label), and the `grpc-status` the
/// response opens with: `0` when it has none in its headers (a success, or a stream whose
/// outcome comes in its trailers).
pub(crate) fn call_labels(
    route: String,
    path: &str,
    response: &axum::response::Response,
) -> (String, String) {
    let status = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0);
    let route = if route == "unmatched" || status == i32::from(tonic::Code::Unimplemented) {
        route
    } else {
        path.to_owned()
    };
    (route, status.to_string())
}

/// The caller named by the request's `authorization: Bearer <token>` metadata.
fn principal<T>(state: &AppState, request: &Request<T>) -> Result<Principal> {
    let value = request.metadata().get("authorization").ok_or_else(|| {
        Error::Unauthenticated(
            "missing authorization metadata: send `authorization: Bearer <access token>` (get one from POST /api/v1/auth/login)"
                .to_owned(),
        )
    })?;
    let value = value.to_str().map_err(|_| {
        Error::Unauthenticated("the authorization metadata is not valid ASCII".to_owned())
    })?;
    state.authenticate(value)
}

/// A JSON document of any shape from the request field `field`; errors name the field and
/// the path inside the document, every one of them.
fn json_field<T: DeserializeOwned>(field: &str, text: &str) -> Result<T> {
    parse_at(text.as_bytes(), Format::Json, field, |_| Vec::new())
}

/// An experiment spec from a request field, read as REST reads it: every unknown field,
/// wrong type and invalid value is listed, with paths starting at `spec`.
fn spec_field(text: &str) -> Result<ExperimentSpec> {
    parse(text.as_bytes(), Format::Json)
}

/// `value` as JSON text, for the `*_json` response fields.
fn encode_json<T: serde::Serialize>(what: &str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Internal(format!("serializing {what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(grpc_status: Option<&str>) -> axum::response::Response {
        let mut response = axum::response::Response::new(axum::body::Body::empty());
        if let Some(status) = grpc_status {
            response
                .headers_mut()
                .insert("grpc-status", status.parse().expect("a valid header"));
        }
        response
    }

    #[test]
    fn calls_are_labelled_by_method_and_grpc_status() {
        let pattern = "/phoenix.v1.ExperimentService/{*method}".to_owned();
        let path = "/phoenix.v1.ExperimentService/ListExperiments";
        assert_eq!(
            call_labels(pattern.clone(), path, &response(None)),
            (path.to_owned(), "0".to_owned())
        );
        assert_eq!(
            call_labels(pattern.clone(), path, &response(Some("7"))),
            (path.to_owned(), "7".to_owned())
        );
        // Made-up methods share the pattern.
        assert_eq!(
            call_labels(
                pattern.clone(),
                "/phoenix.v1.ExperimentService/Nope",
                &response(Some("12"))
            ),
            (pattern, "12".to_owned())
        );
        let mut headers = axum::http::HeaderMap::new();
        assert!(!is_grpc(&headers));
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            "application/grpc+proto".parse().expect("a valid header"),
        );
        assert!(is_grpc(&headers));
    }
}
