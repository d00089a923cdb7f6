//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in phoenix-generator.
///
/// Every variant names where the problem is: a YAML line, a config path such as
/// `processors.filter/critical.metrics.datapoint[0]`, a template parameter, or the component and
/// construct the emulator cannot execute.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// YAML that does not parse, or that does not fit the config model.
    #[error("line {line}, column {column}: {message}")]
    Yaml {
        /// 1-based line of the problem (0 when unknown).
        line: usize,
        /// 1-based column of the problem (0 when unknown).
        column: usize,
        /// What is wrong, including the config path when known.
        message: String,
    },
    /// A config value at `path` is wrong.
    #[error("{path}: {message}")]
    Config {
        /// Where in the config, e.g. `service.pipelines.metrics.processors[1]`.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The config failed validation; every problem is listed.
    #[error("invalid config: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<crate::validate::Problem>),
    /// A template name that is not in the catalog.
    #[error("unknown template `{name}`; the catalog has: {known}")]
    UnknownTemplate {
        /// The name asked for.
        name: String,
        /// The catalog's template names, comma-separated.
        known: String,
    },
    /// A template parameter that is missing, malformed or out of range.
    #[error("parameter `{field}`: {message}")]
    Parameter {
        /// The parameter, e.g. `topK` or `criticalProcesses[2]`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// An OTTL statement or condition that does not parse or does not type-check.
    #[error("{path}: OTTL error at column {column} of `{source_text}`: {message}")]
    Ottl {
        /// Where the statement is in the config.
        path: String,
        /// The statement's text.
        source_text: String,
        /// 1-based column of the problem.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A component or construct the emulator cannot execute faithfully.
    #[error("{component}: {construct} is not supported by the emulator")]
    Unsupported {
        /// The component id, e.g. `processors.routing/x` or `processors.transform/agg`.
        component: String,
        /// The construct, e.g. `OTTL function ReplacePattern`.
        construct: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A `git` command in the GitOps working tree failed.
    #[error("git {command}: {message}")]
    Git {
        /// The git subcommand, e.g. `commit`.
        command: String,
        /// What git reported.
        message: String,
    },
    /// Reading a workload (recording or simulator profile) failed.
    #[error("workload: {0}")]
    Workload(String),
}

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
