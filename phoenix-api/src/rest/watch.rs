//! `GET /api/v1/experiments/{id}/watch`: the experiment's events over a WebSocket, one JSON
//! text frame per event (the same JSON as `/events`); the server closes the socket once the
//! run is over.
//!
//! The caller is authenticated first, from `Authorization: Bearer <token>`, else a
//! `Sec-WebSocket-Protocol` entry `bearer.<token>` (for browsers, which cannot set headers on
//! a WebSocket request; offer `phoenix.watch.v1` too and the server selects that), else the
//! `access_token` query parameter. The route is logged and labelled in metrics by its
//! pattern only, so a query token never reaches the log or a metric label.

use aide::generate::GenContext;
use aide::openapi::Operation;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use schemars::JsonSchema;
use serde::Deserialize;

use super::extract::{ApiQuery, ExperimentPath};
use crate::auth::Principal;
use crate::service::EventWatch;
use crate::{AppState, Error, Result};

/// Close code: normal closure.
const CLOSE_NORMAL: u16 = 1000;
/// Close code: the server failed.
const CLOSE_ERROR: u16 = 1011;
/// The largest message and frame a client may send: it has nothing to say but pings and
/// the close.
const MAX_CLIENT_MESSAGE: usize = 4 * 1024;
/// The subprotocol the server selects when offered.
pub(crate) const WATCH_PROTOCOL: &str = "phoenix.watch.v1";
/// The prefix of a `Sec-WebSocket-Protocol` entry carrying an access token.
const BEARER_PROTOCOL: &str = "bearer.";

/// Query parameters of the watch route.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WatchQuery {
    /// The access token, for clients that cannot set the `Authorization` header on a
    /// WebSocket request (browsers). Prefer the header or a `bearer.<token>` subprotocol:
    /// URLs end up in proxies' logs.
    // Read by `WatchCaller` before the query is parsed; declared here for the OpenAPI
    // document and so that other keys are refused.
    #[allow(dead_code)]
    access_token: Option<String>,
}

/// A WebSocket upgrade; anything else is a 400 saying so.
pub(crate) struct Upgrade(WebSocketUpgrade);

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        WebSocketUpgrade::from_request_parts(parts, state)
            .await
            .map(Self)
            .map_err(|e| {
                Error::invalid_field(
                    "upgrade",
                    format!("this endpoint streams over a WebSocket: {}", e.body_text()),
                )
            })
    }
}

impl aide::OperationInput for Upgrade {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        WebSocketUpgrade::operation_input(ctx, operation);
    }
}

/// The entries of the `Sec-WebSocket-Protocol` headers.
fn offered_protocols(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
}

/// The caller of the watch route, authenticated before anything else of the request is
/// read, so that a bad unauthenticated request gets 401.
pub(crate) struct WatchCaller(Principal);

impl FromRequestParts<AppState> for WatchCaller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let headers = &parts.headers;
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let value = value.to_str().map_err(|_| {
                Error::Unauthenticated("the Authorization header is not valid text".to_owned())
            })?;
            return state.authenticate(value).map(Self);
        }
        if let Some(token) =
            offered_protocols(headers).find_map(|p| p.strip_prefix(BEARER_PROTOCOL))
        {
            return state.authenticate(token).map(Self);
        }
        let token = parts.uri.query().and_then(|query| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(key, _)| key == "access_token")
                .map(|(_, value)| value.into_owned())
        });
        state.authenticate_header(token.as_deref()).map(Self)
    }
}

impl aide::OperationInput for WatchCaller {}

pub(crate) async fn watch(
    State(state): State<AppState>,
    WatchCaller(caller): WatchCaller,
    ExperimentPath(id): ExperimentPath,
    ApiQuery(_query): ApiQuery<WatchQuery>,
    headers: HeaderMap,
    upgrade: Result<Upgrade, Error>,
) -> Result<Response> {
    // Refuse a plain HTTP request before any watch task is started.
    let Upgrade(upgrade) = upgrade?;
    let selected = offered_protocols(&headers)
        .find(|p| *p == WATCH_PROTOCOL)
        .or_else(|| offered_protocols(&headers).find(|p| p.starts_with(BEARER_PROTOCOL)))
        .map(str::to_owned);
    let mut upgrade = upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE);
    if let Some(protocol) = selected {
        upgrade = upgrade.protocols([protocol]);
    }
    let watch = state.service().watch_experiment(&caller, &id).await?;
    Ok(upgrade.on_upgrade(move |socket| pump(socket, watch)))
}

/// Sends every event as a text frame until the stream ends or the client leaves.
async fn pump(mut socket: WebSocket, mut watch: EventWatch) {
    let close = loop {
        tokio::select! {
            next = watch.next() => match next {
                Some(Ok(event)) => {
                    let Ok(text) = serde_json::to_string(&event) else {
                        break Some((CLOSE_ERROR, "cannot encode an event"));
                    };
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break None;
                    }
                }
                Some(Err(error)) => {
                    tracing::error!(%error, "watching an experiment failed");
                    break Some((CLOSE_ERROR, "reading the experiment's events failed"));
                }
                None => break Some((CLOSE_NORMAL, "the run is over")),
            },
            incoming = socket.recv() => match incoming {
                None | Some(Err(_) | Ok(Message::Close(_))) => break None,
                // Pings are answered by the WebSocket layer; other frames are ignored.
                Some(Ok(_)) => {}
            },
        }
    };
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = socket.send(Message::Close(Some(frame))).await;
    }
}
