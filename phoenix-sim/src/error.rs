//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the simulator.
///
/// Variants about user input name the field, line or construct at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A profile (or another document) with an invalid field. `field` is the path of the
    /// field, e.g. `groups[2].cpu.pattern`.
    #[error("invalid {field}: {message}")]
    InvalidField {
        /// Path of the offending field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A profile document that is not valid YAML or JSON at all.
    #[error("invalid profile document: {message}")]
    Document {
        /// What the parser reported, with its location.
        message: String,
    },
    /// A command-line option or API argument with an invalid value.
    #[error("invalid {option}: {message}")]
    InvalidOption {
        /// The option, e.g. `--duration`.
        option: String,
        /// What is wrong with it.
        message: String,
    },
    /// A profile that real mode refuses because it would exceed a hard cap.
    #[error("refused: {message}")]
    CapExceeded {
        /// Which cap and by how much.
        message: String,
    },
    /// A line of an OTLP JSON lines file that cannot be read.
    #[error("{path}:{line}: {source}")]
    Replay {
        /// The file (or `-` for a reader).
        path: String,
        /// The 1-based line number.
        line: usize,
        /// Why the line cannot be read.
        #[source]
        source: phoenix_core::Error,
    },
    /// Reading `/proc` failed.
    #[error("reading /proc: {message}")]
    Proc {
        /// What failed.
        message: String,
    },
    /// An export to a collector or the Prometheus endpoint failed.
    #[error("export to {endpoint}: {message}")]
    Export {
        /// The endpoint.
        endpoint: String,
        /// What failed.
        message: String,
    },
    /// Starting or supervising real worker processes failed.
    #[error("real mode: {message}")]
    Worker {
        /// What failed.
        message: String,
    },
    /// An I/O error on a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// An invalid-field error.
    pub(crate) fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            message: message.into(),
        }
    }

    /// An invalid-option error.
    pub(crate) fn option(option: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidOption {
            option: option.into(),
            message: message.into(),
        }
    }

    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// The path of the field or the option at fault, if the error is about one.
    pub fn field_name(&self) -> Option<&str> {
        match self {
            Self::InvalidField { field, .. } => Some(field),
            Self::InvalidOption { option, .. } => Some(option),
            _ => None,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
