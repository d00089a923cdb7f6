//! The router's state: the service, the metrics, and the HTTP settings.

use std::sync::Arc;

use sha2::Digest;

use crate::auth::Principal;
use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::service::Service;
use crate::{Error, Result};

/// What every handler shares. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    service: Service,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) body_limit: usize,
    /// Who may read `/metrics` and the OpenAPI document.
    pub(crate) operations: Arc<OperationsAccess>,
    /// The exclusive lock on an SQLite store's lock file, held while the state lives.
    _store_lock: Option<Arc<std::fs::File>>,
}

/// Who may read the operations endpoints besides viewers.
#[derive(Debug)]
pub(crate) struct OperationsAccess {
    /// The SHA-256 of the static token `/metrics` accepts.
    metrics_token: Option<[u8; 32]>,
    open_metrics: bool,
    open_openapi: bool,
}

/// An operations endpoint that needs a viewer token unless opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OperationsEndpoint {
    Metrics,
    OpenApi,
}

/// The SQLite file a store URL names, if it names one (`sqlite://PATH` or `sqlite:PATH`).
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let (scheme, rest) = url.split_once(':')?;
    if !scheme.eq_ignore_ascii_case("sqlite") || rest == ":memory:" || rest == "//:memory:" {
        return None;
    }
    let path = rest.strip_prefix("//").unwrap_or(rest);
    (!path.is_empty()).then(|| std::path::PathBuf::from(path))
}

/// Takes the exclusive lock on `<database>.lock` beside an SQLite store, so that a second
/// server on the same file fails fast instead of running experiments twice. The lock ends
/// with the process, however it ends.
fn lock_sqlite(url: &str) -> Result<Option<Arc<std::fs::File>>> {
    let Some(database) = sqlite_file(url) else {
        return Ok(None);
    };
    let mut name = database.clone().into_os_string();
    name.push(".lock");
    let path = std::path::PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| Error::Io {
            what: format!("opening the lock file {}", path.display()),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(Some(Arc::new(file))),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Config(format!(
            "another Phoenix server uses the database {} (its lock file {} is held): run one server per database",
            database.display(),
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(source)) => Err(Error::Io {
            what: format!("locking {}", path.display()),
            source,
        }),
    }
}

impl AppState {
    /// State over an existing service.
    pub fn new(service: Service, config: &ServerConfig) -> Self {
        Self {
            service,
            metrics: Arc::new(Metrics::new()),
            body_limit: config.body_limit,
            operations: Arc::new(OperationsAccess {
                metrics_token: config
                    .metrics_token
                    .as_deref()
                    .map(|t| sha2::Sha256::digest(t.trim().as_bytes()).into()),
                open_metrics: config.open_metrics,
                open_openapi: config.open_openapi,
            }),
            _store_lock: None,
        }
    }

    /// Opens the store `config` names, creates the first admin when there is no user (the
    /// generated password, if any, is returned by [`AppState::open_with_bootstrap`]), and
    /// builds the executor (with the GitOps repository, if configured). Resumes nothing:
    /// [`serve`](crate::serve) does that.
    pub async fn open(config: &ServerConfig) -> Result<Self> {
        Self::open_with_bootstrap(config)
            .await
            .map(|(state, _)| state)
    }

    /// [`AppState::open`], also returning the first admin's generated password when one was
    /// generated now.
    pub async fn open_with_bootstrap(config: &ServerConfig) -> Result<(Self, Option<String>)> {
        config.validate()?;
        let store_lock = lock_sqlite(&config.database_url)?;
        let store = phoenix_store::open(&config.database_url).await?;
        let executor = crate::promotion::executor(&store, config.gitops_repo.as_deref())?;
        let service = Service::new(store, executor, config);
        let generated = service
            .bootstrap_admin(config.admin_password.as_deref())
            .await?;
        service.load_summaries().await?;
        let mut state = Self::new(service, config);
        state._store_lock = store_lock;
        Ok((state, generated))
    }

    /// The operations.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// The caller an `Authorization` header value (or a bare token) names.
    pub fn authenticate(&self, bearer: &str) -> Result<Principal> {
        self.service.authenticate(bearer)
    }

    /// `Ok` when the `Authorization` header `header` may read `endpoint`: it is open by
    /// configuration, the header holds a viewer's access token, or (for `/metrics`) the
    /// static metrics token.
    pub(crate) fn authorize_operations(
        &self,
        endpoint: OperationsEndpoint,
        header: Option<&str>,
    ) -> Result<()> {
        let access = &self.operations;
        let open = match endpoint {
            OperationsEndpoint::Metrics => access.open_metrics,
            OperationsEndpoint::OpenApi => access.open_openapi,
        };
        if open {
            return Ok(());
        }
        if endpoint == OperationsEndpoint::Metrics
            && let (Some(expected), Some(value)) = (&access.metrics_token, header)
        {
            let token = value
                .trim()
                .split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map_or(value.trim(), |(_, token)| token.trim());
            let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
            if digest == *expected {
                return Ok(());
            }
        }
        let caller = self.authenticate_header(header)?;
        let what = match endpoint {
            OperationsEndpoint::Metrics => "reading metrics",
            OperationsEndpoint::OpenApi => "reading the OpenAPI document",
        };
        caller.require(phoenix_store::Role::Viewer, what)
    }

    /// [`Error::Unauthenticated`] unless `header` holds a valid access token.
    pub(crate) fn authenticate_header(&self, header: Option<&str>) -> Result<Principal> {
        let header = header.ok_or_else(|| {
            Error::Unauthenticated(
                "missing Authorization header: send `Authorization: Bearer <access token>` (get one from POST /api/v1/auth/login)"
                    .to_owned(),
            )
        })?;
        self.authenticate(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_server_on_one_sqlite_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("phoenix.db").display());
        let config = ServerConfig::default()
            .with_database_url(&url)
            .with_admin_password("correct horse battery");
        let first = AppState::open(&config).await.unwrap();
        let err = AppState::open(&config).await.unwrap_err();
        assert!(err.to_string().contains("another Phoenix server"), "{err}");
        first.service().store().close().await;
        drop(first);
        assert!(
            AppState::open(&config).await.is_ok(),
            "free once the first is gone"
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("memory://"), None);
        assert_eq!(sqlite_file("sqlite:x.db"), Some("x.db".into()));
    }
}
