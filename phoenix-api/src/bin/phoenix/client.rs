//! The HTTP client of the Phoenix API: bearer tokens from the token file, refreshed when they
//! expire, and server errors (RFC 9457 problem details) turned into clear messages.

use std::fmt;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use phoenix_api::auth::TokenPair;
use phoenix_api::service::{LoginRequest, RefreshRequest};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;

use crate::args::ServerUrl;
use crate::credentials::{Credentials, Session, unix_now};

/// Refresh the access token when it expires within this many seconds.
const EXPIRY_MARGIN_SECS: u64 = 30;

/// The longest a request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A WebSocket connected to the server.
pub type Socket = tungstenite::WebSocket<TcpStream>;

/// The server could not be reached, or the connection broke or timed out: the one kind of
/// failure worth retrying. Every other failure (a refusal of the server, no saved session, a
/// refused refresh token) is final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    message: String,
}

impl TransportError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// Whether `error` is (or wraps) a transport failure.
    pub fn is_transport(error: &anyhow::Error) -> bool {
        error.chain().any(|e| e.downcast_ref::<Self>().is_some())
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TransportError {}

/// The session `tokens` open for `username`.
pub fn session_from(tokens: TokenPair, username: &str) -> Session {
    Session {
        username: username.to_owned(),
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        access_expires_at: unix_now().saturating_add(tokens.expires_in),
    }
}

/// An error answer of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// The problem's detail, else its title, else the status text.
    pub message: String,
    /// One line per invalid field, `path: message`.
    pub fields: Vec<String>,
}

impl ApiError {
    /// Reads an error answer: problem details JSON when the body is one, else its text.
    pub fn from_body(status: u16, body: &str, retry_after: Option<&str>) -> Self {
        let problem: Option<Value> = serde_json::from_str(body).ok();
        let text = |key: &str| {
            problem
                .as_ref()
                .and_then(|p| p.get(key))
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let mut message = text("detail")
            .or_else(|| text("title"))
            .or_else(|| text("message"))
            .or_else(|| text("error"))
            .unwrap_or_else(|| {
                let first = body.lines().next().unwrap_or_default().trim();
                if first.is_empty() || problem.is_some() {
                    status_text(status).to_owned()
                } else {
                    first.chars().take(200).collect()
                }
            });
        if let Some(wait) = retry_after.filter(|_| status == 429) {
            message.push_str(&format!("; retry after {wait} s"));
        }
        let fields = problem
            .as_ref()
            .and_then(|p| {
                [
                    "errors",
                    "fieldErrors",
                    "field_errors",
                    "invalidParams",
                    "invalid_params",
                ]
                .iter()
                .find_map(|k| p.get(*k).and_then(Value::as_array))
            })
            .map(|list| list.iter().filter_map(field_line).collect())
            .unwrap_or_default();
        Self {
            status,
            message,
            fields,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (HTTP {})", self.message, self.status)?;
        for field in &self.fields {
            write!(f, "\n  {field}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// One field error as `path: message`, from the shapes problem details use.
fn field_line(item: &Value) -> Option<String> {
    if let Some(text) = item.as_str() {
        return Some(text.to_owned());
    }
    let get = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| item.get(*k).and_then(Value::as_str))
            .map(str::to_owned)
    };
    let message = get(&["message", "detail", "reason"])?;
    Some(match get(&["path", "field", "pointer", "name"]) {
        Some(path) if !path.is_empty() => format!("{path}: {message}"),
        _ => message,
    })
}

/// The reason phrase of common statuses.
fn status_text(status: u16) -> &'static str {
    match status {
        400 => "bad request",
        401 => "not authenticated",
        403 => "permission denied",
        404 => "not found",
        409 => "conflict",
        413 => "request too large",
        422 => "unprocessable request",
        429 => "too many requests",
        500 => "internal server error",
        502..=504 => "server unavailable",
        _ => "request failed",
    }
}

/// An answer of the server.
struct Reply {
    status: u16,
    body: String,
    retry_after: Option<String>,
}

impl Reply {
    fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn into_result(self) -> Result<Value, ApiError> {
        if !self.is_success() {
            return Err(ApiError::from_body(
                self.status,
                &self.body,
                self.retry_after.as_deref(),
            ));
        }
        if self.body.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&self.body).map_err(|e| ApiError {
            status: self.status,
            message: format!("the server answered with invalid JSON: {e}"),
            fields: Vec::new(),
        })
    }
}

/// The request methods the CLI uses.
#[derive(Debug, Clone, Copy)]
enum Method<'a> {
    Get,
    Post(Option<&'a Value>),
    Put(&'a Value),
    Delete,
}

/// A client of one Phoenix server.
#[derive(Debug)]
pub struct ApiClient {
    base: String,
    agent: ureq::Agent,
    credentials: Credentials,
}

impl ApiClient {
    /// A client of the server at `server`, with the user's token file.
    pub fn new(server: &ServerUrl) -> Result<Self> {
        Ok(Self::with_credentials(server, Credentials::locate()?))
    }

    /// A client of the server at `server` with the token file `credentials`.
    pub fn with_credentials(server: &ServerUrl, credentials: Credentials) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .build()
            .into();
        Self {
            base: server.as_str().to_owned(),
            agent,
            credentials,
        }
    }

    /// The server's URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The token file.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Logs in and returns the tokens (not yet saved).
    pub fn login(&self, username: &str, password: &str) -> Result<TokenPair> {
        let body = serde_json::to_value(LoginRequest {
            username: username.to_owned(),
            password: password.to_owned(),
        })?;
        let value = self
            .call(Method::Post(Some(&body)), "/api/v1/auth/login", None)?
            .into_result()
            .map_err(|e| anyhow!("login failed: {e}"))?;
        serde_json::from_value(value).context("the server's login answer lacks the tokens")
    }

    /// `GET path` with the saved session.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.authorized(Method::Get, path)
    }

    /// `POST path` with a JSON body (or none) and the saved session.
    pub fn post<T: DeserializeOwned>(&self, path: &str, body: Option<&Value>) -> Result<T> {
        self.authorized(Method::Post(body), path)
    }

    /// `PUT path` with a JSON body and the saved session.
    pub fn put<T: DeserializeOwned>(&self, path: &str, body: &Value) -> Result<T> {
        self.authorized(Method::Put(body), path)
    }

    /// `DELETE path` with the saved session; the answer's body, if any, is ignored.
    pub fn delete(&self, path: &str) -> Result<()> {
        self.authorized::<Value>(Method::Delete, path).map(drop)
    }

    /// Opens the WebSocket at `path` with the saved session.
    pub fn websocket(&self, path: &str) -> Result<Socket> {
        let session = self.session()?;
        match self.try_websocket(path, &session.access_token) {
            Err(WsFailure::Http(e)) if e.status == 401 => {
                let session = self.renew(&session)?;
                self.try_websocket(path, &session.access_token)
                    .map_err(WsFailure::into_error)
            }
            other => other.map_err(WsFailure::into_error),
        }
    }

    fn try_websocket(&self, path: &str, token: &str) -> Result<Socket, WsFailure> {
        let url = format!("ws{}{path}", &self.base["http".len()..]);
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| WsFailure::Other(anyhow!("{url}: {e}")))?;
        let auth = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|e| WsFailure::Other(anyhow!("the saved token is not a valid header: {e}")))?;
        request.headers_mut().insert("authorization", auth);
        let host = request
            .uri()
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = request.uri().port_u16().unwrap_or(80);
        let stream = self
            .connect(&host, port)
            .map_err(|e| WsFailure::Other(e.into()))?;
        match tungstenite::client(request, stream) {
            Ok((socket, _)) => Ok(socket),
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                let status = response.status().as_u16();
                let body = response
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                Err(WsFailure::Http(ApiError::from_body(status, &body, None)))
            }
            Err(tungstenite::HandshakeError::Failure(e)) => Err(WsFailure::Other(
                TransportError::new(format!("cannot open the event stream at {url}: {e}")).into(),
            )),
            // A blocking stream is interrupted only by its timeout.
            Err(tungstenite::HandshakeError::Interrupted(_)) => Err(WsFailure::Other(
                TransportError::new(format!(
                    "the Phoenix server at {} did not answer the event stream request in time",
                    self.base
                ))
                .into(),
            )),
        }
    }

    /// A TCP connection to `host:port`, trying each address for at most [`CONNECT_TIMEOUT`],
    /// with read and write timeouts of [`REQUEST_TIMEOUT`] for the handshake.
    fn connect(&self, host: &str, port: u16) -> Result<TcpStream, TransportError> {
        let unreachable = |why: String| {
            TransportError::new(format!(
                "cannot reach the Phoenix server at {} ({why}); is `phoenix serve` running? (set --server or PHOENIX_SERVER)",
                self.base
            ))
        };
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| unreachable(e.to_string()))?
            .collect();
        let mut last = format!("{host} has no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(stream) => {
                    stream
                        .set_read_timeout(Some(REQUEST_TIMEOUT))
                        .and_then(|()| stream.set_write_timeout(Some(REQUEST_TIMEOUT)))
                        .map_err(|e| unreachable(e.to_string()))?;
                    return Ok(stream);
                }
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(unreachable(last))
    }

    /// The saved session, refreshed first when its access token expired.
    fn session(&self) -> Result<Session> {
        let Some(session) = self.credentials.get(&self.base)? else {
            bail!(
                "not logged in to {}: run `phoenix login --server {}` first",
                self.base,
                self.base
            );
        };
        if session.access_expired(EXPIRY_MARGIN_SECS) {
            return self.renew(&session);
        }
        Ok(session)
    }

    /// Trades the refresh token for new tokens and saves them.
    fn renew(&self, session: &Session) -> Result<Session> {
        let body = serde_json::to_value(RefreshRequest {
            refresh_token: session.refresh_token.clone(),
        })?;
        let reply = self.call(Method::Post(Some(&body)), "/api/v1/auth/refresh", None)?;
        let value = match reply.into_result() {
            Ok(value) => value,
            Err(e) if e.status == 401 || e.status == 400 => bail!(
                "the session of {} on {} has expired: run `phoenix login --server {}` again",
                session.username,
                self.base,
                self.base
            ),
            Err(e) => return Err(anyhow!("cannot refresh the session: {e}")),
        };
        let tokens: TokenPair = serde_json::from_value(value)
            .context("the server's refresh answer lacks the tokens")?;
        let renewed = session_from(tokens, &session.username);
        self.credentials.put(&self.base, renewed.clone())?;
        Ok(renewed)
    }

    fn authorized<T: DeserializeOwned>(&self, method: Method<'_>, path: &str) -> Result<T> {
        let session = self.session()?;
        let mut reply = self.call(method, path, Some(&session.access_token))?;
        if reply.status == 401 {
            // The server may have restarted with another key, or the clock may be off: one
            // refresh, then the request again.
            let session = self.renew(&session)?;
            reply = self.call(method, path, Some(&session.access_token))?;
        }
        let value = reply.into_result()?;
        serde_json::from_value(value).with_context(|| format!("unexpected answer from {path}"))
    }

    fn call(&self, method: Method<'_>, path: &str, token: Option<&str>) -> Result<Reply> {
        let url = format!("{}{path}", self.base);
        let auth = token.map(|t| format!("Bearer {t}"));
        let result = match method {
            Method::Get => {
                let mut request = self.agent.get(&url).header("accept", "application/json");
                if let Some(auth) = &auth {
                    request = request.header("authorization", auth);
                }
                request.call()
            }
            Method::Post(body) => {
                let mut request = self.agent.post(&url).header("accept", "application/json");
                if let Some(auth) = &auth {
                    request = request.header("authorization", auth);
                }
                match body {
                    Some(body) => request.send_json(body),
                    None => request.send_empty(),
                }
            }
            Method::Put(body) => {
                let mut request = self.agent.put(&url).header("accept", "application/json");
                if let Some(auth) = &auth {
                    request = request.header("authorization", auth);
                }
                request.send_json(body)
            }
            Method::Delete => {
                let mut request = self.agent.delete(&url).header("accept", "application/json");
                if let Some(auth) = &auth {
                    request = request.header("authorization", auth);
                }
                request.call()
            }
        };
        let mut response = result.map_err(|e| self.transport_error(&e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| self.transport_error(&e))?;
        Ok(Reply {
            status,
            body,
            retry_after,
        })
    }

    fn transport_error(&self, e: &ureq::Error) -> anyhow::Error {
        let message = match e {
            ureq::Error::ConnectionFailed | ureq::Error::HostNotFound | ureq::Error::Io(_) => {
                format!(
                    "cannot reach the Phoenix server at {} ({e}); is `phoenix serve` running? (set --server or PHOENIX_SERVER)",
                    self.base
                )
            }
            ureq::Error::Timeout(_) => {
                format!("the Phoenix server at {} timed out ({e})", self.base)
            }
            // Anything else (a malformed request, a protocol error) is not cured by a retry.
            _ => return anyhow!("request to {} failed: {e}", self.base),
        };
        TransportError::new(message).into()
    }
}

/// How opening a WebSocket failed.
enum WsFailure {
    /// The server refused the upgrade.
    Http(ApiError),
    /// Anything else.
    Other(anyhow::Error),
}

impl WsFailure {
    fn into_error(self) -> anyhow::Error {
        match self {
            Self::Http(e) => e.into(),
            Self::Other(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_details_show_the_detail_and_every_field() {
        let body = r#"{"type":"about:blank","title":"Bad Request","status":400,
            "detail":"invalid experiment spec",
            "errors":[{"path":"spec.name","message":"must be 3-63 characters"},
                      {"field":"spec.duration","detail":"must be positive"}]}"#;
        let e = ApiError::from_body(400, body, None);
        assert_eq!(
            e.to_string(),
            "invalid experiment spec (HTTP 400)\n  spec.name: must be 3-63 characters\n  spec.duration: must be positive"
        );
    }

    #[test]
    fn other_bodies_fall_back_to_the_title_or_text() {
        let e = ApiError::from_body(404, r#"{"title":"Not Found","status":404}"#, None);
        assert_eq!(e.to_string(), "Not Found (HTTP 404)");
        let e = ApiError::from_body(502, "upstream down\nmore", None);
        assert_eq!(e.to_string(), "upstream down (HTTP 502)");
        let e = ApiError::from_body(429, "", Some("7"));
        assert_eq!(
            e.to_string(),
            "too many requests; retry after 7 s (HTTP 429)"
        );
    }

    #[test]
    fn transport_errors_are_told_apart() {
        let e: anyhow::Error = TransportError::new("down").into();
        assert!(TransportError::is_transport(&e));
        assert!(TransportError::is_transport(&e.context("watching")));
        let api: anyhow::Error = ApiError::from_body(401, "", None).into();
        assert!(!TransportError::is_transport(&api));
        assert!(!TransportError::is_transport(&anyhow!("not logged in")));
    }

    #[test]
    fn websocket_connections_time_out_and_name_the_server() {
        // A port nobody listens on: refused at once, as a transport failure.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let dir = tempfile::tempdir().unwrap();
        let client = ApiClient {
            base: format!("http://127.0.0.1:{port}"),
            agent: ureq::Agent::new_with_defaults(),
            credentials: Credentials::at(dir.path().join("credentials.json")),
        };
        let e = client.connect("127.0.0.1", port).unwrap_err();
        assert!(e.to_string().contains("cannot reach"), "{e}");
    }
}
