//! The crate's error type, and the kind of each error that the REST and gRPC layers map to
//! their status codes.

use std::time::Duration;

use phoenix_core::experiment::FieldError;
use phoenix_store::Role;

/// What class of failure an [`Error`] is; the REST layer maps it to an HTTP status and the
/// gRPC layer to a status code, each in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request is malformed or names invalid values (HTTP 400).
    InvalidInput,
    /// No valid credentials (HTTP 401).
    Unauthenticated,
    /// The caller's role does not allow the operation (HTTP 403).
    PermissionDenied,
    /// The thing asked for does not exist (HTTP 404).
    NotFound,
    /// The operation does not fit the current state (HTTP 409).
    Conflict,
    /// The request body is larger than the server accepts (HTTP 413).
    PayloadTooLarge,
    /// The request body is in a format the server does not read (HTTP 415).
    UnsupportedMediaType,
    /// Too many attempts; retry later (HTTP 429).
    RateLimited,
    /// A dependency (the store) does not answer (HTTP 503).
    Unavailable,
    /// Anything else; the client sees no details (HTTP 500).
    Internal,
}

/// Everything that can go wrong in the API server.
///
/// [`Error::client_message`] is the text a client may see: it never holds SQL errors, file
/// paths or other internals, which stay in the `Display` output for the server's log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input that cannot be used; every field at fault is listed.
    #[error("{message}")]
    InvalidInput {
        /// A summary.
        message: String,
        /// Every field at fault, with its path.
        errors: Vec<FieldError>,
    },
    /// Missing, malformed, expired or wrongly signed credentials.
    #[error("not authenticated: {0}")]
    Unauthenticated(String),
    /// The caller's role is below what the operation needs.
    #[error("{action} needs the {needed} role; {user} is {role}")]
    Forbidden {
        /// What was attempted, e.g. `promoting an experiment`.
        action: String,
        /// The role it needs.
        needed: Role,
        /// Who asked.
        user: String,
        /// Their role.
        role: Role,
    },
    /// The caller may not touch this particular object.
    #[error("{0}")]
    NotOwner(String),
    /// Nothing has this name or id.
    #[error("{0}")]
    NotFound(String),
    /// The operation does not fit the object's current state.
    #[error("{0}")]
    Conflict(String),
    /// The request body exceeds the limit.
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The request body has a content type the server does not read.
    #[error(
        "unsupported content type {0:?}: send application/json (or application/yaml for specs)"
    )]
    UnsupportedMediaType(String),
    /// Too many login attempts.
    #[error("too many login attempts; retry in {} s", retry_after.as_secs().max(1))]
    RateLimited {
        /// How long until the next attempt is accepted.
        retry_after: Duration,
    },
    /// The store does not answer.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The server configuration cannot be used (reported at start-up).
    #[error("invalid server configuration: {0}")]
    Config(String),
    /// A domain error from phoenix-core (store, executor, transition, validation).
    #[error(transparent)]
    Core(#[from] phoenix_core::Error),
    /// An error from the user or pipeline store.
    #[error(transparent)]
    Store(#[from] phoenix_store::Error),
    /// An I/O error while starting or serving.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A failure the client cannot act on; details go to the log only.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// Invalid input with one field error.
    pub fn invalid_field(path: impl Into<String>, message: impl Into<String>) -> Self {
        let error = FieldError {
            path: path.into(),
            message: message.into(),
        };
        Self::InvalidInput {
            message: error.to_string(),
            errors: vec![error],
        }
    }

    /// The class of failure.
    pub fn kind(&self) -> ErrorKind {
        use phoenix_core::Error as Core;
        match self {
            Self::InvalidInput { .. } => ErrorKind::InvalidInput,
            Self::Unauthenticated(_) => ErrorKind::Unauthenticated,
            Self::Forbidden { .. } | Self::NotOwner(_) => ErrorKind::PermissionDenied,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Conflict(_) => ErrorKind::Conflict,
            Self::PayloadTooLarge { .. } => ErrorKind::PayloadTooLarge,
            Self::UnsupportedMediaType(_) => ErrorKind::UnsupportedMediaType,
            Self::RateLimited { .. } => ErrorKind::RateLimited,
            Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::Config(_) | Self::Io { .. } | Self::Internal(_) => ErrorKind::Internal,
            Self::Core(e) => match e {
                Core::Invalid(_) | Core::Otlp { .. } => ErrorKind::InvalidInput,
                Core::NotFound { .. } => ErrorKind::NotFound,
                Core::AlreadyExists { .. } | Core::Conflict { .. } | Core::Transition(_) => {
                    ErrorKind::Conflict
                }
                Core::Executor { source, .. } => executor_kind(source.as_deref()),
                _ => ErrorKind::Internal,
            },
            Self::Store(e) => Self::kind_of_store(e),
        }
    }

    fn kind_of_store(e: &phoenix_store::Error) -> ErrorKind {
        use phoenix_store::Error as St;
        match e {
            St::UserNotFound { .. } => ErrorKind::NotFound,
            St::UserExists { .. } | St::NothingToRollBack { .. } => ErrorKind::Conflict,
            St::InvalidUser { .. }
            | St::UnknownRole(_)
            | St::InvalidTarget { .. }
            | St::InvalidPipeline { .. } => ErrorKind::InvalidInput,
            _ => ErrorKind::Internal,
        }
    }

    /// The text a client may see. Internal errors (database, I/O, configuration) read as a
    /// generic sentence; their details are for the server's log.
    pub fn client_message(&self) -> String {
        match self.kind() {
            ErrorKind::Internal => {
                "the server failed to handle the request; the details are in its log".to_owned()
            }
            ErrorKind::Unavailable => "the store is unavailable; retry later".to_owned(),
            _ => match self {
                Self::Core(phoenix_core::Error::Executor { message, .. }) => {
                    format!("the experiment could not be run as asked: {message}")
                }
                other => other.to_string(),
            },
        }
    }

    /// Every field at fault, for invalid input; empty otherwise.
    pub fn field_errors(&self) -> Vec<FieldError> {
        match self {
            Self::InvalidInput { errors, .. } => errors.clone(),
            Self::Core(phoenix_core::Error::Invalid(v)) => v.errors().to_vec(),
            Self::Core(phoenix_core::Error::Otlp { path, message }) => vec![FieldError {
                path: path.clone(),
                message: message.clone(),
            }],
            Self::Store(phoenix_store::Error::InvalidUser { field, message }) => {
                vec![FieldError {
                    path: (*field).to_owned(),
                    message: message.clone(),
                }]
            }
            _ => Vec::new(),
        }
    }

    /// For [`ErrorKind::RateLimited`]: how long the client should wait.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

/// The class of an executor error: a refusal of what was asked (an inline candidate for
/// GitOps, a variant that cannot be rendered) is a conflict with the experiment's state; a
/// failure of the server's side (the GitOps repository, the pipeline store) is internal, or
/// unavailable when the store does not answer.
fn executor_kind(source: Option<&(dyn std::error::Error + Send + Sync + 'static)>) -> ErrorKind {
    let Some(source) = source else {
        return ErrorKind::Conflict;
    };
    if source
        .downcast_ref::<crate::promotion::RepositoryFailure>()
        .is_some()
    {
        return ErrorKind::Internal;
    }
    if let Some(store) = source.downcast_ref::<phoenix_store::Error>() {
        return Error::kind_of_store(store);
    }
    if let Some(core) = source.downcast_ref::<phoenix_core::Error>() {
        return match core {
            phoenix_core::Error::Store { .. } => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        };
    }
    ErrorKind::Internal
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_stay_out_of_client_messages() {
        let error = Error::Core(phoenix_core::Error::Store {
            message: "SELECT failed: disk I/O error at /var/lib/phoenix.db".into(),
            source: None,
        });
        assert_eq!(error.kind(), ErrorKind::Internal);
        let message = error.client_message();
        assert!(
            !message.contains("SELECT") && !message.contains("/var"),
            "{message}"
        );
        let io = Error::Io {
            what: "binding /secret".into(),
            source: std::io::Error::other("denied"),
        };
        assert!(!io.client_message().contains("secret"));
    }

    #[test]
    fn executor_refusals_and_failures_differ() {
        let refused = Error::Core(phoenix_core::Error::executor("inline candidate"));
        assert_eq!(refused.kind(), ErrorKind::Conflict);
        assert!(refused.client_message().contains("inline candidate"));
        let failed = Error::Core(phoenix_core::Error::Executor {
            message: "committing to /srv/gitops failed".into(),
            source: Some(Box::new(crate::promotion::RepositoryFailure)),
        });
        assert_eq!(failed.kind(), ErrorKind::Internal);
        assert!(!failed.client_message().contains("/srv"));
    }

    #[test]
    fn field_errors_are_listed() {
        let error = Error::invalid_field("spec.name", "must be 3-63 characters");
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        assert_eq!(error.field_errors().len(), 1);
        assert!(error.client_message().contains("spec.name"));
    }
}
