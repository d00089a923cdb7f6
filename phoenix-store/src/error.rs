//! The crate's error type.

use std::fmt;

use phoenix_core::BoxError;

use crate::pipeline::{PipelineTarget, RollbackGap};

/// Which kind of database a store keeps its data in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// Process memory; nothing survives the process.
    Memory,
    /// An SQLite file (or an in-memory SQLite database).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend's name for people: `memory`, `SQLite`, `PostgreSQL`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong when opening a store, migrating it, or keeping users and
/// pipelines in it.
///
/// The [`ExperimentStore`](phoenix_core::store::ExperimentStore) methods report
/// [`phoenix_core::Error`] instead, as the trait prescribes; `From<Error>` converts this
/// error into that one. Locations in messages never contain passwords.
///
/// A message says what failed and where; when a driver or migrator error is the reason, it is
/// the [`source`](std::error::Error::source) and is not repeated in the message, so print the
/// whole chain to see it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A store URL whose scheme no backend handles.
    #[error(
        "unsupported store URL {url:?}: expected sqlite://PATH, sqlite::memory:, postgres://…, postgresql://… or memory://"
    )]
    UnsupportedUrl {
        /// The URL, with any password masked.
        url: String,
    },
    /// A store URL with a known scheme that cannot be used.
    #[error("invalid store URL {url:?}: {message}")]
    InvalidUrl {
        /// The URL, with any password masked.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// The database cannot be reached, created or read. The driver's error, the reason, is
    /// the [`source`](std::error::Error::source).
    #[error("cannot open the {backend} store at {location}")]
    Open {
        /// The backend.
        backend: Backend,
        /// Where the database is (a path or a URL without its password).
        location: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Applying the schema migrations failed. The migrator's error, the reason, is the
    /// [`source`](std::error::Error::source).
    #[error("cannot migrate the {backend} store at {location}")]
    Migrate {
        /// The backend.
        backend: Backend,
        /// Where the database is.
        location: String,
        /// The migrator's error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// The database was migrated by a newer Phoenix: its schema has a migration this build
    /// does not know. The database is left untouched.
    #[error(
        "the {backend} store at {location} has schema migration {found}, newer than the newest this build knows ({known}); it was left untouched: run a Phoenix release that knows it"
    )]
    SchemaTooNew {
        /// The backend.
        backend: Backend,
        /// Where the database is.
        location: String,
        /// The newest migration applied to the database.
        found: i64,
        /// The newest migration this build knows.
        known: i64,
    },
    /// No user has this name.
    #[error("user {name:?} not found")]
    UserNotFound {
        /// The name asked for.
        name: String,
    },
    /// A user with this name exists already.
    #[error("user {name:?} already exists")]
    UserExists {
        /// The name.
        name: String,
    },
    /// A user field that cannot be stored.
    #[error("invalid user {field}: {message}")]
    InvalidUser {
        /// The field, e.g. `name`.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// Text that names no [`Role`](crate::Role).
    #[error("unknown role {0:?}: expected viewer, experimenter, operator or admin")]
    UnknownRole(String),
    /// Text that names no [`PipelineTarget`].
    #[error("invalid pipeline target {text:?}: {message}")]
    InvalidTarget {
        /// The text.
        text: String,
        /// What is wrong with it.
        message: String,
    },
    /// A pipeline config that cannot be activated.
    #[error("invalid pipeline config for target {target}: {message}")]
    InvalidPipeline {
        /// The target.
        target: PipelineTarget,
        /// What is wrong with it.
        message: String,
    },
    /// A rollback with no earlier pipeline to restore.
    #[error("cannot roll back the pipeline of target {target}: {reason}")]
    NothingToRollBack {
        /// The target.
        target: PipelineTarget,
        /// Why: no active pipeline, or no earlier one.
        reason: RollbackGap,
    },
    /// The database reported an error while doing `what`. The driver's error, the reason, is
    /// the [`source`](std::error::Error::source).
    #[error("{what}")]
    Database {
        /// What was being done, e.g. `reading user "alice" from SQLite`.
        what: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A stored record that this build cannot read back.
    #[error("stored {what} cannot be read: {message}")]
    CorruptRecord {
        /// Which record.
        what: String,
        /// What is wrong with it.
        message: String,
    },
}

impl Error {
    pub(crate) fn database(what: impl Into<String>, source: sqlx::Error) -> Self {
        Self::Database {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>, message: impl fmt::Display) -> Self {
        Self::CorruptRecord {
            what: what.into(),
            message: message.to_string(),
        }
    }
}

impl From<Error> for phoenix_core::Error {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        Self::Store {
            message,
            source: Some(BoxError::from(error)),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A phoenix-core store error for a driver failure while doing `what`: the message says what
/// was being done, the driver's error is the source (and is not repeated in the message).
pub(crate) fn core_store_error(
    what: impl fmt::Display,
    source: sqlx::Error,
) -> phoenix_core::Error {
    phoenix_core::Error::store(what.to_string(), source)
}

/// A phoenix-core store error without an underlying cause.
pub(crate) fn core_store_message(message: impl Into<String>) -> phoenix_core::Error {
    phoenix_core::Error::Store {
        message: message.into(),
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    /// The messages of `error` and of every source below it.
    fn chain(error: &dyn std::error::Error) -> Vec<String> {
        let mut messages = vec![error.to_string()];
        let mut next = error.source();
        while let Some(source) = next {
            messages.push(source.to_string());
            next = source.source();
        }
        messages
    }

    #[test]
    fn a_driver_error_appears_once_in_the_chain() {
        let driver = || sqlx::Error::Protocol("the driver's reason".to_owned());
        let counted = |messages: Vec<String>| {
            let count = messages
                .iter()
                .filter(|m| m.contains("the driver's reason"))
                .count();
            (count, messages)
        };

        let error = Error::database("reading user \"alice\" from SQLite", driver());
        assert!(error.source().is_some());
        let (count, messages) = counted(chain(&error));
        assert_eq!(count, 1, "{messages:?}");

        let error = core_store_error("updating experiment exp-1", driver());
        assert!(error.source().is_some());
        let (count, messages) = counted(chain(&error));
        assert_eq!(count, 1, "{messages:?}");

        let error = Error::Open {
            backend: Backend::Sqlite,
            location: "/tmp/x.db".to_owned(),
            source: driver(),
        };
        let (count, messages) = counted(chain(&error));
        assert_eq!(count, 1, "{messages:?}");
    }
}
