//! Extractors that turn every request problem into a problem detail: the caller from the
//! bearer token, JSON (or YAML) bodies with every field error listed, query strings, the
//! experiment id in the path, the client address; and a JSON response from bytes.

use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};

use aide::generate::GenContext;
use aide::openapi::Operation;
use aide::transform::TransformOperation;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use phoenix_core::experiment::{ExperimentId, FieldError};
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::auth::Principal;
use crate::service::document::{Format, RequestBody, parse};
use crate::{AppState, Error, Result};

/// The name of the bearer security scheme in the OpenAPI document.
pub(crate) const BEARER_SCHEME: &str = "bearer";

/// The authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let header = match parts.headers.get(header::AUTHORIZATION) {
            None => None,
            Some(value) => Some(value.to_str().map_err(|_| {
                Error::Unauthenticated("the Authorization header is not valid text".to_owned())
            })?),
        };
        state.authenticate_header(header).map(Caller)
    }
}

impl aide::OperationInput for Caller {
    fn operation_input(_ctx: &mut GenContext, operation: &mut Operation) {
        let _ = TransformOperation::new(operation).security_requirement(BEARER_SCHEME);
    }
}

/// The client's address, when the server knows it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub(crate) Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
    }
}

impl aide::OperationInput for ClientAddr {}

/// The `{id}` of an experiment route.
#[derive(Debug, Clone)]
pub(crate) struct ExperimentPath(pub(crate) ExperimentId);

/// The path parameters of an experiment route, for the OpenAPI document.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct IdParam {
    /// The experiment id: `exp-` and 8 lowercase letters or digits.
    #[allow(dead_code)]
    id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for ExperimentPath {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| Error::invalid_field("id", e.body_text()))?;
        crate::service::parse_id(&id).map(Self)
    }
}

impl aide::OperationInput for ExperimentPath {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        Path::<IdParam>::operation_input(ctx, operation);
    }
}

/// Query parameters; a bad one is a 400 naming it.
#[derive(Debug, Clone)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(value)| Self(value))
            .map_err(|e| Error::InvalidInput {
                message: format!("invalid query string: {}", e.body_text()),
                errors: vec![FieldError {
                    path: "query".to_owned(),
                    message: e.body_text(),
                }],
            })
    }
}

impl<T: JsonSchema> aide::OperationInput for ApiQuery<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        Query::<T>::operation_input(ctx, operation);
    }
}

/// A JSON (or, for specs, YAML) request body, with every field error reported at once.
#[derive(Debug, Clone)]
pub(crate) struct Body<T>(pub(crate) T);

fn format_of(content_type: Option<&HeaderValue>, yaml: bool) -> Result<Format> {
    let Some(value) = content_type else {
        return Ok(Format::Json);
    };
    let text = value.to_str().unwrap_or_default();
    let essence = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(Format::Json),
        e if e.starts_with("application/") && e.ends_with("+json") => Ok(Format::Json),
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" if yaml => {
            Ok(Format::Yaml)
        }
        _ => Err(Error::UnsupportedMediaType(text.to_owned())),
    }
}

impl<T: RequestBody + Send> FromRequest<AppState> for Body<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &AppState) -> Result<Self> {
        let format = format_of(request.headers().get(header::CONTENT_TYPE), T::YAML)?;
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Error::PayloadTooLarge {
                        limit: state.body_limit,
                    }
                } else {
                    Error::invalid_field("body", rejection.body_text())
                }
            })?;
        parse::<T>(&bytes, format).map(Body)
    }
}

impl<T: JsonSchema> aide::OperationInput for Body<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        axum::Json::<T>::operation_input(ctx, operation);
    }
}

/// A JSON response whose body is already serialized; documented as `T`.
#[derive(Debug, Clone)]
pub(crate) struct JsonBytes<T>(pub(crate) Bytes, pub(crate) PhantomData<T>);

impl<T> JsonBytes<T> {
    pub(crate) fn new(bytes: Bytes) -> Self {
        Self(bytes, PhantomData)
    }
}

impl<T> IntoResponse for JsonBytes<T> {
    fn into_response(self) -> Response {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.0,
        )
            .into_response()
    }
}

impl<T: JsonSchema> aide::OperationOutput for JsonBytes<T> {
    type Inner = T;

    fn operation_response(
        ctx: &mut GenContext,
        operation: &mut Operation,
    ) -> Option<aide::openapi::Response> {
        axum::Json::<T>::operation_response(ctx, operation)
    }

    fn inferred_responses(
        ctx: &mut GenContext,
        operation: &mut Operation,
    ) -> Vec<(Option<aide::openapi::StatusCode>, aide::openapi::Response)> {
        axum::Json::<T>::inferred_responses(ctx, operation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_pick_the_format() {
        assert!(format_of(Some(&HeaderValue::from_static("text/plain")), true).is_err());
        assert!(format_of(Some(&HeaderValue::from_static("application/yaml")), false).is_err());
        assert_eq!(
            format_of(
                Some(&HeaderValue::from_static("application/json; charset=utf-8")),
                false
            )
            .unwrap(),
            Format::Json
        );
        assert_eq!(
            format_of(Some(&HeaderValue::from_static("application/yaml")), true).unwrap(),
            Format::Yaml
        );
    }
}
