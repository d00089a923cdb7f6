//! `phoenix serve`: the API server until Ctrl-C or SIGTERM.

use std::io::Write;

use anyhow::{Context, Result};
use phoenix_api::ServerConfig;
use phoenix_api::config::{ADMIN_PASSWORD_ENV, JWT_SECRET_ENV, JwtSecret};
use tracing_subscriber::EnvFilter;

use crate::args::ServeArgs;

/// How long the process waits, once the server has stopped, for blocking work to finish.
const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Builds the server's configuration from the flags and the environment and serves until a
/// shutdown signal, then drains open connections.
pub fn run(args: &ServeArgs) -> Result<()> {
    init_logging();
    let mut config = ServerConfig::default()
        .with_bind(args.bind)
        .with_database_url(args.database.clone());
    if let Some(secret) = jwt_secret(args, std::env::var_os(JWT_SECRET_ENV))? {
        config = config.with_jwt_secret(secret);
    }
    if let Some(password) = std::env::var_os(ADMIN_PASSWORD_ENV) {
        let password = password
            .into_string()
            .map_err(|_| anyhow::anyhow!("{ADMIN_PASSWORD_ENV} is not valid UTF-8"))?;
        config = config.with_admin_password(password);
    }
    if let Some(repo) = &args.gitops_repo {
        config = config.with_gitops_repo(repo.clone());
    }
    let config = config.with_endpoint_settings_from_env()?;
    config.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("cannot listen on {}", config.bind))?;
        let addr = listener
            .local_addr()
            .context("cannot read the bound address")?;
        // The library logs this line at `info`; when the log filter hides it, say it here,
        // so that scripts (and `--bind 127.0.0.1:0` users) always learn the address.
        if !tracing::enabled!(target: "phoenix_api::server", tracing::Level::INFO) {
            let _ = writeln!(std::io::stderr(), "listening on http://{addr}");
        }
        phoenix_api::serve_on(listener, config, phoenix_api::shutdown_signal()).await?;
        Ok(())
    });
    // A run's blocking work (a window being simulated) cannot be interrupted; the server has
    // closed the store already, and the run resumes from its persisted phase on the next
    // start, so the process need not wait for it.
    runtime.shutdown_timeout(SHUTDOWN_WAIT);
    served
}

/// The JWT signing secret, by one precedence: `--jwt-secret-file` (which clap also fills
/// from `PHOENIX_JWT_SECRET_FILE`), then the secret itself in `PHOENIX_JWT_SECRET`
/// (`env_secret`), else none (the server then uses a random one).
fn jwt_secret(
    args: &ServeArgs,
    env_secret: Option<std::ffi::OsString>,
) -> Result<Option<JwtSecret>> {
    if let Some(path) = &args.jwt_secret_file {
        return Ok(Some(JwtSecret::from_file(path)?));
    }
    match env_secret {
        Some(secret) => {
            let secret = secret
                .into_string()
                .map_err(|_| anyhow::anyhow!("{JWT_SECRET_ENV} is not valid UTF-8"))?;
            Ok(Some(JwtSecret::new(secret.into_bytes())?))
        }
        None => Ok(None),
    }
}

/// Logs to standard error; `RUST_LOG` filters (default `info`).
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn args(file: Option<std::path::PathBuf>) -> ServeArgs {
        ServeArgs {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            database: "memory:".to_owned(),
            jwt_secret_file: file,
            gitops_repo: None,
        }
    }

    #[test]
    fn the_secret_file_wins_over_the_secret_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let from_file = "f".repeat(40);
        std::fs::write(&path, format!("{from_file}\n")).unwrap();
        let from_env = "e".repeat(40);
        let secret = jwt_secret(&args(Some(path)), Some(from_env.clone().into()))
            .unwrap()
            .unwrap();
        assert_eq!(secret.as_bytes(), from_file.as_bytes());
        let secret = jwt_secret(&args(None), Some(from_env.clone().into()))
            .unwrap()
            .unwrap();
        assert_eq!(secret.as_bytes(), from_env.as_bytes());
        assert!(jwt_secret(&args(None), None).unwrap().is_none());
        assert!(jwt_secret(&args(None), Some("short".into())).is_err());
    }
}
