//! The crate's error type.

use crate::experiment::{ExperimentId, ValidationErrors};
use crate::phase::TransitionError;

/// A boxed error from another layer (a database driver, a Kubernetes client, …).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in phoenix-core, and in the stores and executors that
/// implement its traits.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// OTLP input that cannot be read into the telemetry model, or that holds data the model
    /// does not represent. `path` names the construct, e.g.
    /// `resourceMetrics[0].scopeMetrics[0].metrics[2].histogram`.
    #[error("invalid OTLP data at {path}: {message}")]
    Otlp {
        /// Where in the document the problem is.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A document with invalid fields; every violation is listed.
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// An event not allowed in the experiment's phase.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// No experiment has this id.
    #[error("experiment {id} not found")]
    NotFound {
        /// The id asked for.
        id: ExperimentId,
    },
    /// An experiment with this id exists already.
    #[error("experiment {id} already exists")]
    AlreadyExists {
        /// The id.
        id: ExperimentId,
    },
    /// The experiment changed since it was read; nothing was written.
    #[error(
        "experiment {id} was changed by someone else: the update was based on version {expected}, the stored version is {found}"
    )]
    Conflict {
        /// The experiment.
        id: ExperimentId,
        /// The version the writer had read.
        expected: u64,
        /// The version stored now.
        found: u64,
    },
    /// The store's backend failed.
    #[error("store: {message}")]
    Store {
        /// What failed, for people.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The executor failed to run or measure the variants.
    #[error("executor: {message}")]
    Executor {
        /// What failed, for people.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    /// A store error with a message and an underlying cause.
    pub fn store(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Store {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// An executor error with a message only.
    pub fn executor(message: impl Into<String>) -> Self {
        Self::Executor {
            message: message.into(),
            source: None,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
