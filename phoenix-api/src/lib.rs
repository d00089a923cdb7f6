//! API server and command line for Phoenix.
//!
//! The server runs experiments for a team: REST under `/api/v1` (with an OpenAPI document at
//! `/api/v1/openapi.json`), gRPC `phoenix.v1` and a WebSocket stream of experiment events,
//! all on one port, with JWT authentication, roles, `/health`, `/ready` and `/metrics`.
//! Experiments run in background tasks through phoenix-core's controller on the local
//! executor; experiments interrupted by a stop are resumed when the server starts again.
//!
//! - [`ServerConfig`] and [`serve`]: run the server; [`shutdown_signal`] for SIGTERM/Ctrl-C.
//! - [`app`] and [`AppState`]: the router, for tests without ports.
//! - [`service::Service`]: the operations REST and gRPC share, each checking the caller's
//!   [`Principal`].
//!
//! See `docs/api.md` for the endpoints, roles, configuration and metrics.
//!
//! # Example
//!
//! Log in as the bootstrap admin and create an experiment, in process:
//!
//! ```
//! use phoenix_api::{AppState, ServerConfig};
//! use phoenix_api::service::LoginRequest;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let config = ServerConfig::default()
//!     .with_database_url("memory://")
//!     .with_admin_password("correct horse battery");
//! let state = AppState::open(&config).await?;
//! let service = state.service();
//!
//! let login = LoginRequest { username: "admin".into(), password: "correct horse battery".into() };
//! let tokens = service.login(&login, None).await?;
//! let admin = state.authenticate(&format!("Bearer {}", tokens.access_token))?;
//!
//! let spec = serde_json::from_value(serde_json::json!({
//!     "name": "topk-trial",
//!     "baseline": {"template": "process-baseline-v1"},
//!     "candidate": {"template": "process-topk-v1"},
//!     "duration": "5m",
//! }))?;
//! let experiment = service.create_experiment(&admin, spec).await?;
//! assert_eq!(experiment.spec.owner, "admin");
//!
//! // The router answers without a port.
//! let _router: axum::Router = phoenix_api::app(state.clone());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod auth;
pub mod config;
mod error;
pub mod events;
pub mod grpc;
mod metrics;
mod promotion;
mod rest;
mod runs;
mod server;
pub mod service;
mod state;

pub use auth::Principal;
pub use config::{JwtSecret, LoginRateLimit, ServerConfig};
pub use error::{Error, ErrorKind, Result};
pub use rest::{OPENAPI_PATH, Problem, app, openapi_document};
pub use server::{serve, serve_on, shutdown_signal};
pub use state::AppState;
