//! The server's configuration: a plain struct with defaults and builders; the `phoenix`
//! binary fills it from flags and the environment.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{Error, Result};

/// The environment variable holding the JWT signing secret.
pub const JWT_SECRET_ENV: &str = "PHOENIX_JWT_SECRET";
/// The environment variable naming a file that holds the JWT signing secret.
pub const JWT_SECRET_FILE_ENV: &str = "PHOENIX_JWT_SECRET_FILE";
/// The environment variable holding the first admin's password.
pub const ADMIN_PASSWORD_ENV: &str = "PHOENIX_ADMIN_PASSWORD";
/// The environment variable holding a static bearer token that `/metrics` also accepts
/// (for Prometheus scrapers).
pub const METRICS_TOKEN_ENV: &str = "PHOENIX_METRICS_TOKEN";
/// The environment variable that, set to `true` or `1`, serves `/metrics` without a token.
pub const OPEN_METRICS_ENV: &str = "PHOENIX_OPEN_METRICS";
/// The environment variable that, set to `true` or `1`, serves the OpenAPI document
/// without a token.
pub const OPEN_OPENAPI_ENV: &str = "PHOENIX_OPEN_OPENAPI";
/// The shortest metrics token accepted, in bytes.
pub const MIN_METRICS_TOKEN_LEN: usize = 16;
/// The shortest JWT secret accepted, in bytes (HS256 wants at least the hash size).
pub const MIN_JWT_SECRET_LEN: usize = 32;
/// The name of the administrator created on first run.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// How many login attempts are allowed before `429 Too Many Requests`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginRateLimit {
    /// Attempts one user name may make in a burst.
    pub per_user_burst: u32,
    /// One more attempt per user name is allowed after this long.
    pub per_user_interval: Duration,
    /// Attempts one client address may make in a burst.
    pub per_client_burst: u32,
    /// One more attempt per client address is allowed after this long.
    pub per_client_interval: Duration,
}

impl Default for LoginRateLimit {
    /// Five attempts per user name, then one every 12 s; twenty per client address, then one
    /// every 3 s.
    fn default() -> Self {
        Self {
            per_user_burst: 5,
            per_user_interval: Duration::from_secs(12),
            per_client_burst: 20,
            per_client_interval: Duration::from_secs(3),
        }
    }
}

/// The JWT signing secret. Its `Debug` output hides the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct JwtSecret(Vec<u8>);

impl JwtSecret {
    /// A secret from bytes; at least [`MIN_JWT_SECRET_LEN`] of them.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self> {
        let bytes = bytes.into();
        if bytes.len() < MIN_JWT_SECRET_LEN {
            return Err(Error::Config(format!(
                "the JWT secret has {} bytes; it needs at least {MIN_JWT_SECRET_LEN}",
                bytes.len()
            )));
        }
        Ok(Self(bytes))
    }

    /// Reads a secret from a file, as raw bytes (binary secrets are fine); surrounding ASCII
    /// whitespace (a trailing newline) is ignored.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            what: format!("reading the JWT secret file {}", path.display()),
            source,
        })?;
        Self::new(bytes.trim_ascii().to_vec())
    }

    /// A fresh random secret: tokens signed with it are void once the server stops.
    pub fn random() -> Self {
        let mut bytes = vec![0_u8; 48];
        fill_random(&mut bytes);
        Self(bytes)
    }

    /// The secret from the file named by `PHOENIX_JWT_SECRET_FILE`, else from
    /// `PHOENIX_JWT_SECRET` (the order `phoenix serve` documents); `None` when neither is set.
    pub fn from_env() -> Result<Option<Self>> {
        if let Some(path) = std::env::var_os(JWT_SECRET_FILE_ENV) {
            return Self::from_file(Path::new(&path)).map(Some);
        }
        match std::env::var(JWT_SECRET_ENV) {
            Ok(secret) => Self::new(secret.into_bytes()).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JwtSecret(<{} bytes>)", self.0.len())
    }
}

/// A boolean environment variable: unset, empty, `false` or `0` is false; `true` or `1` is
/// true; anything else is an error naming it.
fn env_flag(name: &str) -> Result<bool> {
    match std::env::var(name) {
        Err(_) => Ok(false),
        Ok(value) => match value.trim().to_ascii_lowercase().as_str() {
            "" | "false" | "0" => Ok(false),
            "true" | "1" => Ok(true),
            _ => Err(Error::Config(format!(
                "{name} must be true or false, got {value:?}"
            ))),
        },
    }
}

/// Fills `bytes` from the operating system's random source.
pub(crate) fn fill_random(bytes: &mut [u8]) {
    // The OS random source failing leaves no safe way to mint secrets.
    getrandom::fill(bytes).expect("the operating system's random source is available");
}

/// Everything [`serve`](crate::serve) needs. Its `Debug` output hides the admin password
/// and the metrics token.
#[derive(Clone)]
pub struct ServerConfig {
    /// Where to listen. Default `127.0.0.1:8080`.
    pub bind: SocketAddr,
    /// The store, in phoenix-store's [`open`](phoenix_store::open) syntax. Default
    /// `sqlite://phoenix.db`.
    pub database_url: String,
    /// The JWT signing secret. Default: from the environment, else random per process (tokens
    /// then end with the process; a warning is logged).
    pub jwt_secret: Option<JwtSecret>,
    /// A local Git working tree that promotions are committed to. Default none.
    pub gitops_repo: Option<PathBuf>,
    /// The first admin's password, used only when the store has no user. Default: from
    /// `PHOENIX_ADMIN_PASSWORD`, else random and printed once.
    pub admin_password: Option<String>,
    /// The largest request body accepted, in bytes. Default 1 MiB.
    pub body_limit: usize,
    /// How long access tokens last. Default 1 h.
    pub access_token_ttl: Duration,
    /// How long refresh tokens last. Default 7 days.
    pub refresh_token_ttl: Duration,
    /// How long after a password login refreshing keeps working: the chain of refresh
    /// tokens ends then and the user logs in again. Default 7 days.
    pub session_limit: Duration,
    /// Login attempts allowed before 429.
    pub login_rate_limit: LoginRateLimit,
    /// How long a graceful shutdown waits for open connections. Default 10 s.
    pub shutdown_grace: Duration,
    /// A static bearer token that `/metrics` accepts besides a viewer's access token, for
    /// Prometheus scrapers (`authorization: {credentials: ...}`). Default: from
    /// `PHOENIX_METRICS_TOKEN`, else none.
    pub metrics_token: Option<String>,
    /// Serve `/metrics` without a token. Default: `PHOENIX_OPEN_METRICS`, else false.
    pub open_metrics: bool,
    /// Serve `/api/v1/openapi.json` without a token. Default: `PHOENIX_OPEN_OPENAPI`, else
    /// false.
    pub open_openapi: bool,
    /// The most experiment runs started at once; a start beyond it is refused with 409
    /// (interrupted runs resumed at start-up are not refused). Default 8.
    pub max_runs: usize,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |set: bool| if set { Some("<hidden>") } else { None };
        f.debug_struct("ServerConfig")
            .field("bind", &self.bind)
            .field("database_url", &phoenix_store::redact(&self.database_url))
            .field("jwt_secret", &self.jwt_secret)
            .field("gitops_repo", &self.gitops_repo)
            .field("admin_password", &hidden(self.admin_password.is_some()))
            .field("body_limit", &self.body_limit)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("refresh_token_ttl", &self.refresh_token_ttl)
            .field("session_limit", &self.session_limit)
            .field("login_rate_limit", &self.login_rate_limit)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("max_runs", &self.max_runs)
            .field("metrics_token", &hidden(self.metrics_token.is_some()))
            .field("open_metrics", &self.open_metrics)
            .field("open_openapi", &self.open_openapi)
            .finish()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://phoenix.db".to_owned(),
            jwt_secret: None,
            gitops_repo: None,
            admin_password: None,
            body_limit: 1024 * 1024,
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(7 * 24 * 3600),
            session_limit: crate::auth::DEFAULT_SESSION_LIMIT,
            login_rate_limit: LoginRateLimit::default(),
            shutdown_grace: Duration::from_secs(10),
            max_runs: 8,
            metrics_token: None,
            open_metrics: false,
            open_openapi: false,
        }
    }
}

impl ServerConfig {
    /// The defaults, with the JWT secret, the admin password and the metrics settings
    /// taken from the environment (`PHOENIX_JWT_SECRET_FILE` or `PHOENIX_JWT_SECRET`,
    /// `PHOENIX_ADMIN_PASSWORD`, `PHOENIX_METRICS_TOKEN`, `PHOENIX_OPEN_METRICS`,
    /// `PHOENIX_OPEN_OPENAPI`).
    pub fn from_env() -> Result<Self> {
        Self {
            jwt_secret: JwtSecret::from_env()?,
            admin_password: std::env::var(ADMIN_PASSWORD_ENV).ok(),
            ..Self::default()
        }
        .with_endpoint_settings_from_env()
    }

    /// Takes who may read `/metrics` and the OpenAPI document from the environment:
    /// `PHOENIX_METRICS_TOKEN`, `PHOENIX_OPEN_METRICS` and `PHOENIX_OPEN_OPENAPI` (each
    /// left as it is when unset).
    pub fn with_endpoint_settings_from_env(mut self) -> Result<Self> {
        if let Ok(token) = std::env::var(METRICS_TOKEN_ENV) {
            self.metrics_token = Some(token);
        }
        self.open_metrics |= env_flag(OPEN_METRICS_ENV)?;
        self.open_openapi |= env_flag(OPEN_OPENAPI_ENV)?;
        Ok(self)
    }

    /// Also accepts `token` as a bearer token on `/metrics`.
    #[must_use]
    pub fn with_metrics_token(mut self, token: impl Into<String>) -> Self {
        self.metrics_token = Some(token.into());
        self
    }

    /// Serves `/metrics` (`metrics`) and the OpenAPI document (`openapi`) without a token.
    #[must_use]
    pub fn with_open_endpoints(mut self, metrics: bool, openapi: bool) -> Self {
        self.open_metrics = metrics;
        self.open_openapi = openapi;
        self
    }

    /// Listens on `bind`.
    #[must_use]
    pub fn with_bind(mut self, bind: SocketAddr) -> Self {
        self.bind = bind;
        self
    }

    /// Uses the store at `url`.
    #[must_use]
    pub fn with_database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = url.into();
        self
    }

    /// Signs tokens with `secret`.
    #[must_use]
    pub fn with_jwt_secret(mut self, secret: JwtSecret) -> Self {
        self.jwt_secret = Some(secret);
        self
    }

    /// Commits promotions to the Git working tree at `path`.
    #[must_use]
    pub fn with_gitops_repo(mut self, path: impl Into<PathBuf>) -> Self {
        self.gitops_repo = Some(path.into());
        self
    }

    /// Creates the first admin with this password when the store has no user.
    #[must_use]
    pub fn with_admin_password(mut self, password: impl Into<String>) -> Self {
        self.admin_password = Some(password.into());
        self
    }

    /// Accepts request bodies up to `bytes`.
    #[must_use]
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Uses these login limits.
    #[must_use]
    pub fn with_login_rate_limit(mut self, limit: LoginRateLimit) -> Self {
        self.login_rate_limit = limit;
        self
    }

    /// Checks the values that cannot be checked by their types.
    pub fn validate(&self) -> Result<()> {
        if self.max_runs == 0 {
            return Err(Error::Config("max_runs must allow at least one run".into()));
        }
        if self.body_limit == 0 {
            return Err(Error::Config(
                "the body limit must be at least 1 byte".into(),
            ));
        }
        if self.access_token_ttl.is_zero()
            || self.refresh_token_ttl.is_zero()
            || self.session_limit.is_zero()
        {
            return Err(Error::Config("token lifetimes must be positive".into()));
        }
        let limit = &self.login_rate_limit;
        if limit.per_user_burst == 0 || limit.per_client_burst == 0 {
            return Err(Error::Config(
                "login rate limits must allow at least one attempt".into(),
            ));
        }
        if let Some(token) = &self.metrics_token
            && token.trim().len() < MIN_METRICS_TOKEN_LEN
        {
            return Err(Error::Config(format!(
                "{METRICS_TOKEN_ENV} must have at least {MIN_METRICS_TOKEN_LEN} characters"
            )));
        }
        if let Some(password) = &self.admin_password
            && password.is_empty()
        {
            return Err(Error::Config(format!(
                "{ADMIN_PASSWORD_ENV} is set but empty"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_contract() {
        let config = ServerConfig::default();
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.database_url, "sqlite://phoenix.db");
        assert_eq!(config.access_token_ttl, Duration::from_secs(3600));
        assert_eq!(config.refresh_token_ttl, Duration::from_secs(604_800));
        assert!(config.validate().is_ok());
    }

    #[test]
    fn short_secrets_are_refused_and_never_printed() {
        let err = JwtSecret::new(b"short".to_vec()).unwrap_err();
        assert!(err.to_string().contains("at least 32"), "{err}");
        let secret = JwtSecret::new(vec![b'x'; 40]).unwrap();
        assert!(!format!("{secret:?}").contains("xxx"));
        assert_ne!(JwtSecret::random(), JwtSecret::random());
    }

    #[test]
    fn debug_hides_the_admin_password() {
        let config = ServerConfig::default().with_admin_password("hunter2-but-longer");
        let text = format!("{config:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("<hidden>"), "{text}");
    }

    #[test]
    fn secret_files_are_raw_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("binary");
        let mut secret = vec![0xff_u8, 0xfe, 0x80];
        secret.extend([7_u8; 40]);
        let mut file = b" \t".to_vec();
        file.extend(&secret);
        file.extend(b"\r\n");
        std::fs::write(&path, &file).unwrap();
        assert_eq!(JwtSecret::from_file(&path).unwrap().as_bytes(), secret);
    }

    #[test]
    fn secret_files_are_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, format!("{}\n", "s".repeat(40))).unwrap();
        assert_eq!(JwtSecret::from_file(&path).unwrap().as_bytes().len(), 40);
        let missing = JwtSecret::from_file(&dir.path().join("missing")).unwrap_err();
        assert!(missing.to_string().contains("reading the JWT secret file"));
    }
}
