//! The operations of the API, shared by REST and gRPC. Every operation takes the caller's
//! [`Principal`](crate::Principal) and checks its role first:
//!
//! | operation | role |
//! |---|---|
//! | read experiments, events, results; watch; templates, render, validate; simulator profiles; `me` | viewer |
//! | create experiments; update, delete, start and stop one's own; predict | experimenter |
//! | update, delete, start and stop anyone's experiments; promote; roll back | operator |
//! | list and create users | admin |

mod auth;
pub(crate) mod document;
mod experiments;
mod pipelines;
mod users;

use std::sync::Arc;

use phoenix_core::controller::ExperimentController;
use phoenix_core::executor::Executor;
use phoenix_core::store::ExperimentStore;
use phoenix_store::Store;

pub use auth::{LoginRequest, MAX_USERNAME_LEN, RefreshRequest};
pub(crate) use experiments::parse_id;
pub use experiments::{EventWatch, ExperimentList, ExperimentQuery};
pub(crate) use pipelines::predict_problems;
pub use pipelines::{
    PredictRequest, PredictResponse, ProfileInfo, RenderRequest, RenderResponse, TemplateInfo,
    ValidateRequest, ValidateResponse, ValidationProblem,
};
pub use users::{NewUserRequest, UserInfo};

use crate::auth::{LoginLimiter, TokenIssuer};
use crate::config::ServerConfig;
use crate::events::{EventHub, ObservedStore};
use crate::runs::Runs;

/// The API's operations over one store and executor. Cheap to clone.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    experiments: ObservedStore,
    controller: ExperimentController,
    tokens: TokenIssuer,
    limiter: LoginLimiter,
    runs: Runs,
    /// Bounds the CPU-heavy work (parsing, validating, predicting) run at once.
    cpu: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("store", &self.inner.store.location())
            .finish_non_exhaustive()
    }
}

/// How many CPU-heavy requests run at once: one per core, at least two.
fn cpu_slots() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

impl Service {
    /// A service over `store`, running experiments with `executor` and signing tokens as
    /// `config` says (a random secret when it names none).
    pub fn new(store: Store, executor: Arc<dyn Executor>, config: &ServerConfig) -> Self {
        let hub = EventHub::new();
        let experiments = ObservedStore::new(Arc::new(store.clone()), hub);
        let controller = ExperimentController::new(
            Arc::new(experiments.clone()) as Arc<dyn ExperimentStore>,
            executor,
        );
        let secret = config
            .jwt_secret
            .clone()
            .unwrap_or_else(crate::config::JwtSecret::random);
        let tokens = TokenIssuer::new(&secret, config.access_token_ttl, config.refresh_token_ttl)
            .with_session_limit(config.session_limit);
        let runs = Runs::new(controller.clone(), config.max_runs);
        Self {
            inner: Arc::new(Inner {
                store,
                experiments,
                controller,
                tokens,
                limiter: LoginLimiter::new(config.login_rate_limit),
                runs,
                cpu: Arc::new(tokio::sync::Semaphore::new(cpu_slots())),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The hub that broadcasts every experiment event written by this server.
    pub fn events(&self) -> &EventHub {
        self.inner.experiments.hub()
    }

    /// The token issuer.
    pub fn tokens(&self) -> &TokenIssuer {
        &self.inner.tokens
    }

    pub(crate) fn observed(&self) -> &ObservedStore {
        &self.inner.experiments
    }

    pub(crate) fn runs(&self) -> &Runs {
        &self.inner.runs
    }

    /// Runs CPU-heavy `job` on the blocking pool once one of the CPU slots is free, so that
    /// it neither stalls the async workers nor piles up without bound.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        what: &str,
        job: impl FnOnce() -> crate::Result<T> + Send + 'static,
    ) -> crate::Result<T> {
        let permit = Arc::clone(&self.inner.cpu)
            .acquire_owned()
            .await
            .map_err(|e| crate::Error::Internal(format!("{what}: {e}")))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await
        .map_err(|e| crate::Error::Internal(format!("{what} task failed: {e}")))?
    }

    /// Whether the store answers.
    pub async fn ready(&self) -> crate::Result<()> {
        use phoenix_store::UserStore;
        self.inner
            .store
            .user_count()
            .await
            .map(drop)
            .map_err(|e| crate::Error::Unavailable(e.to_string()))
    }
}
