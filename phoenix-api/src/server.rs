//! Running the server: bind, resume, serve, shut down gracefully.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::config::{ADMIN_PASSWORD_ENV, BOOTSTRAP_ADMIN, ServerConfig};
use crate::{AppState, Error, Result};

/// Runs the server until `shutdown` resolves: opens the store, creates the first admin on
/// first run (with the configured password, else a random one written once to stderr),
/// resumes interrupted experiments, binds `config.bind`, and serves REST, WebSocket and gRPC
/// on that one port over HTTP/1 and HTTP/2. Logs `listening on http://ADDR` once bound.
///
/// On shutdown it stops accepting connections, lets open requests finish for up to
/// `config.shutdown_grace`, and leaves running experiments as persisted; they resume on the
/// next start.
pub async fn serve(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let listener = TcpListener::bind(config.bind)
        .await
        .map_err(|source| Error::Io {
            what: format!("binding {}", config.bind),
            source,
        })?;
    serve_on(listener, config, shutdown).await
}

/// [`serve`] on a listener the caller bound.
pub async fn serve_on(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    if config.jwt_secret.is_none() {
        tracing::warn!(
            "no JWT secret configured (PHOENIX_JWT_SECRET or PHOENIX_JWT_SECRET_FILE): using a random one, so tokens end when the server stops"
        );
    }
    let (state, generated) = AppState::open_with_bootstrap(&config).await?;
    if let Some(password) = generated {
        tracing::warn!(
            "created the first user, {BOOTSTRAP_ADMIN}; its password is printed once on stderr"
        );
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "phoenix: first run: created user {BOOTSTRAP_ADMIN:?} with password {password:?} (set {ADMIN_PASSWORD_ENV} to choose it); this is shown once"
            );
        }
    }
    let resumed = state.service().resume_interrupted().await?;
    if resumed > 0 {
        tracing::info!(resumed, "resumed interrupted experiments");
    }
    let addr = listener.local_addr().map_err(|source| Error::Io {
        what: "reading the bound address".to_owned(),
        source,
    })?;
    tracing::info!("listening on http://{addr}");
    let router = crate::app(state.clone());
    let grace = config.shutdown_grace;
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections; open requests may finish");
        let _ = stopping_tx.send(());
    };
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal);
    let mut served = tokio::spawn(async move { server.await });
    // Wait for the server, or for the grace period after the signal.
    let outcome = tokio::select! {
        result = &mut served => Some(result),
        () = async {
            let _ = stopping_rx.await;
            tokio::time::sleep(grace).await;
        } => None,
    };
    if outcome.is_none() {
        // Connections still open after the grace period are dropped with the task.
        served.abort();
        let _ = served.await;
    }
    // No run task may write once the store is closed.
    state.service().runs().abort_all().await;
    state.service().store().close().await;
    match outcome {
        Some(Ok(Ok(()))) => Ok(()),
        Some(Ok(Err(source))) => Err(Error::Io {
            what: "serving".to_owned(),
            source,
        }),
        Some(Err(e)) => Err(Error::Internal(format!("the server task failed: {e}"))),
        None => {
            tracing::warn!("open connections did not finish within the grace period; closing them");
            Ok(())
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(%e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(%e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
