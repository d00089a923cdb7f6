//! The crate's error type.

/// Everything that can go wrong in the operator library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Prometheus HTTP API query failed or returned something unusable.
    #[error("Prometheus query `{query}` failed: {reason}")]
    Prometheus {
        /// The PromQL expression (or endpoint) that was queried.
        query: String,
        /// Why it failed.
        reason: String,
    },
    /// A custom resource asks for something that cannot be done; `field` names the field, e.g.
    /// `spec.parameters.topK`.
    #[error("{field}: {message}")]
    Invalid {
        /// The field at fault, as a path from the resource's root.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The Kubernetes API refused or failed a request.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// phoenix-generator could not render or check a pipeline config.
    #[error("pipeline config: {0}")]
    Generator(#[from] phoenix_generator::Error),
    /// The experiment controller failed.
    #[error("experiment: {0}")]
    Core(#[from] phoenix_core::Error),
    /// A document could not be encoded or decoded.
    #[error("{what}: {message}")]
    Encoding {
        /// What was being encoded or decoded.
        what: String,
        /// Why it failed.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A finalizer step failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
}

impl Error {
    /// An [`Error::Invalid`] naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// An [`Error::Encoding`].
    pub fn encoding(what: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self::Encoding {
            what: what.into(),
            message: message.to_string(),
        }
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
