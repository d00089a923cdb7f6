//! What the integration tests share: the whole router in process on a loopback port
//! ([`InProcess`]), `authed` for gRPC requests, and with the `cli` feature (which builds the
//! binary) the `phoenix serve` process ([`process::PhoenixServer`]).
//!
//! Use it from a test file with `#[allow(dead_code)] mod support;`: each test file uses a
//! part of it.

use std::net::SocketAddr;

use anyhow::Result;
use phoenix_api::auth::TokenKind;
use phoenix_api::{AppState, Principal, ServerConfig};
use phoenix_store::Role;
use tokio::task::JoinHandle;

#[cfg(feature = "cli")]
pub mod process;

/// The whole router on a loopback port with an in-memory store, stopped when dropped.
pub struct InProcess {
    /// The server's state, for tokens and direct service calls.
    pub state: AppState,
    /// Where it listens.
    pub address: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl InProcess {
    /// Serves a fresh in-memory store whose bootstrap admin has `admin_password`.
    pub async fn start(admin_password: &str) -> Result<Self> {
        let config = ServerConfig::default()
            .with_database_url("memory://")
            .with_admin_password(admin_password);
        let state = AppState::open(&config).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let router = phoenix_api::app(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("the test server runs until it is aborted");
        });
        Ok(Self {
            state,
            address,
            task,
        })
    }

    /// An access token for `name` with `role`.
    pub fn token(&self, name: &str, role: Role) -> Result<String> {
        Ok(self
            .state
            .service()
            .tokens()
            .issue(&Principal::new(name, role), TokenKind::Access)?)
    }
}

/// `message` with `authorization: Bearer <token>` metadata.
pub fn authed<T>(token: &str, message: T) -> Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(request)
}
