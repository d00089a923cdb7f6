//! `/health`, `/ready`, `/metrics` and `/api/v1/openapi.json`.

use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::extract::JsonBytes;
use crate::state::OperationsEndpoint;
use crate::{AppState, Result};

/// The media type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A health answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Health {
    /// `ok` for `/health`, `ready` for `/ready`.
    status: String,
}

pub(crate) async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

pub(crate) async fn ready(State(state): State<AppState>) -> Result<Json<Health>> {
    state.service().ready().await?;
    Ok(Json(Health {
        status: "ready".to_owned(),
    }))
}

/// The `Authorization` header, if it is text (anything else counts as none).
fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

pub(crate) async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<([(header::HeaderName, &'static str); 1], String)> {
    state.authorize_operations(OperationsEndpoint::Metrics, authorization(&headers))?;
    let service = state.service();
    let text = state
        .metrics
        .render_cached(|| (service.observed().summaries(), service.runs().active()));
    Ok(([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], text))
}

/// The OpenAPI document, filled in once the router is built.
pub(crate) type Document = Arc<OnceLock<Bytes>>;

pub(crate) fn openapi(
    document: Document,
) -> impl Fn(State<AppState>, HeaderMap) -> std::future::Ready<Result<JsonBytes<serde_json::Value>>>
+ Clone {
    move |State(state): State<AppState>, headers: HeaderMap| {
        let answer = state
            .authorize_operations(OperationsEndpoint::OpenApi, authorization(&headers))
            .map(|()| JsonBytes::new(document.get().cloned().unwrap_or_default()));
        std::future::ready(answer)
    }
}
