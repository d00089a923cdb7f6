//! OTTL, the OpenTelemetry Transformation Language: the subset Phoenix's templates and users
//! commonly write, parsed, compiled and evaluated over the telemetry model.
//!
//! - [`parser`]: lexer and recursive-descent parser producing the [`ast`], with 1-based
//!   columns in every error.
//! - [`CompiledStatement`] and [`Condition`]: paths resolved to enums, regexes compiled once,
//!   evaluation that borrows the telemetry.
//! - [`check_config`]: parses every statement and condition of a config's `filter` and
//!   `transform` processors for validation.
//!
//! The grammar, the supported paths and functions, and the semantics with their sources are
//! listed in `docs/emulator.md`.
//!
//! ```
//! use phoenix_generator::ottl::{self, Context, Host};
//! use phoenix_core::telemetry::Attributes;
//!
//! let (context, statement) = ottl::compile_statement(
//!     r#"delete_key(resource.attributes, "process.pid") where IsMatch(resource.attributes["process.executable.name"], "^java$")"#,
//!     None,
//!     Host::Transform,
//! ).unwrap();
//! assert_eq!(context, Context::Resource);
//! let mut attrs: Attributes = [("process.executable.name", "java")].into_iter().collect();
//! attrs.insert("process.pid", 42_i64);
//! statement.exec_resource(&mut attrs);
//! assert!(!attrs.contains_key("process.pid"));
//! ```

pub mod ast;
mod compile;
pub mod functions;
pub mod parser;
pub mod regex;

use std::fmt;

pub use compile::{
    AggregationFunction, CompiledStatement, Condition, EvalContext, MetricView,
    aggregate_on_attributes,
};
pub(crate) use compile::{
    KeyEdit, PointScalars, PrehashedMap, TimeTruncation, attributes_hash, attrs_equal,
    key_values_hash, merge_values,
};

/// The telemetry level a statement or condition runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    /// Once per resource.
    Resource,
    /// Once per instrumentation scope.
    Scope,
    /// Once per metric.
    Metric,
    /// Once per data point.
    DataPoint,
}

impl Context {
    /// The name used in configs and path prefixes.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Resource => "resource",
            Self::Scope => "scope",
            Self::Metric => "metric",
            Self::DataPoint => "datapoint",
        }
    }

    /// 0 for resource down to 3 for data point.
    pub(crate) const fn depth(self) -> u8 {
        match self {
            Self::Resource => 0,
            Self::Scope => 1,
            Self::Metric => 2,
            Self::DataPoint => 3,
        }
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The processor hosting the OTTL: each registers its own functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// The `filter` processor: conditions, with `HasAttrOnDatapoint` and
    /// `HasAttrKeyOnDatapoint` in the metric context.
    Filter,
    /// The `transform` processor: statements with editors, and `aggregate_on_attributes` in
    /// the metric context.
    Transform,
}

impl Host {
    /// The processor type name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Filter => "filter",
            Self::Transform => "transform",
        }
    }
}

/// A problem in one statement or condition, at a 1-based column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based column (in characters) of the problem.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// Whether the text is valid OTTL that the emulator does not execute.
    pub unsupported: bool,
}

impl SyntaxError {
    pub(crate) fn syntax(column: usize, message: impl Into<String>) -> Self {
        Self {
            column,
            message: message.into(),
            unsupported: false,
        }
    }

    pub(crate) fn unsupported(column: usize, construct: impl Into<String>) -> Self {
        Self {
            column,
            message: construct.into(),
            unsupported: true,
        }
    }

    /// This problem as the crate's error: [`Error::Unsupported`](crate::Error::Unsupported)
    /// naming `component` and the construct for valid OTTL outside the subset,
    /// [`Error::Ottl`](crate::Error::Ottl) at `path` otherwise.
    pub fn into_error(self, component: &str, path: &str, text: &str) -> crate::Error {
        if self.unsupported {
            crate::Error::Unsupported {
                component: component.to_owned(),
                construct: format!(
                    "{} (at column {} of `{text}` in {path})",
                    self.message, self.column
                ),
            }
        } else {
            crate::Error::Ottl {
                path: path.to_owned(),
                source_text: text.to_owned(),
                column: self.column,
                message: self.message,
            }
        }
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.unsupported {
            write!(
                f,
                "column {}: {} is not supported by the emulator",
                self.column, self.message
            )
        } else {
            write!(f, "column {}: {}", self.column, self.message)
        }
    }
}

/// Parses and compiles a statement. `context` is the statement group's context; `None`
/// infers it from the path prefixes as the collector does for flat statements. Returns the
/// context the statement runs in.
///
/// # Errors
///
/// A [`SyntaxError`] with the column of the first problem.
pub fn compile_statement(
    text: &str,
    context: Option<Context>,
    host: Host,
) -> Result<(Context, CompiledStatement), SyntaxError> {
    compile::compile_statement(text, context, host)
}

/// Parses and compiles a condition, in `context` or, when `None`, the inferred one.
///
/// # Errors
///
/// A [`SyntaxError`] with the column of the first problem.
pub fn compile_condition(
    text: &str,
    context: Option<Context>,
    host: Host,
) -> Result<(Context, Condition), SyntaxError> {
    compile::compile_condition(text, context, host)
}

/// Every OTTL statement and condition of `config`'s `filter` and `transform` processors,
/// with its config location, context (when fixed by the config) and host.
fn ottl_texts(
    config: &crate::config::Config,
) -> Vec<(String, String, Option<Context>, Host, bool)> {
    use crate::config::{ConditionGroup, OttlContext, Processor, StatementGroup};
    let ctx = |c: Option<OttlContext>| {
        c.map(|c| match c {
            OttlContext::Resource => Context::Resource,
            OttlContext::Scope => Context::Scope,
            OttlContext::Metric => Context::Metric,
            OttlContext::Datapoint => Context::DataPoint,
        })
    };
    let mut out = Vec::new();
    for (id, p) in &config.processors {
        let base = format!("processors.{id}");
        match p {
            Processor::Filter(f) => {
                let lists = [
                    ("resource", &f.metrics.resource, Context::Resource),
                    ("metric", &f.metrics.metric, Context::Metric),
                    ("datapoint", &f.metrics.datapoint, Context::DataPoint),
                ];
                for (name, list, c) in lists {
                    for (i, t) in list.iter().enumerate() {
                        out.push((
                            format!("{base}.metrics.{name}[{i}]"),
                            t.clone(),
                            Some(c),
                            Host::Filter,
                            false,
                        ));
                    }
                }
                for (i, g) in f.metric_conditions.iter().enumerate() {
                    match g {
                        ConditionGroup::Flat(t) => {
                            out.push((
                                format!("{base}.metric_conditions[{i}]"),
                                t.clone(),
                                None,
                                Host::Filter,
                                false,
                            ));
                        }
                        ConditionGroup::Grouped(g) => {
                            for (j, t) in g.conditions.iter().enumerate() {
                                out.push((
                                    format!("{base}.metric_conditions[{i}].conditions[{j}]"),
                                    t.clone(),
                                    ctx(g.context),
                                    Host::Filter,
                                    false,
                                ));
                            }
                        }
                    }
                }
            }
            Processor::Transform(t) => {
                for (i, g) in t.metric_statements.iter().enumerate() {
                    match g {
                        StatementGroup::Flat(s) => {
                            out.push((
                                format!("{base}.metric_statements[{i}]"),
                                s.clone(),
                                None,
                                Host::Transform,
                                true,
                            ));
                        }
                        StatementGroup::Grouped(g) => {
                            for (j, s) in g.statements.iter().enumerate() {
                                out.push((
                                    format!("{base}.metric_statements[{i}].statements[{j}]"),
                                    s.clone(),
                                    ctx(g.context),
                                    Host::Transform,
                                    true,
                                ));
                            }
                            for (j, c) in g.conditions.iter().enumerate() {
                                out.push((
                                    format!("{base}.metric_statements[{i}].conditions[{j}]"),
                                    c.clone(),
                                    ctx(g.context),
                                    Host::Transform,
                                    false,
                                ));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Parses every OTTL statement and condition of `config`'s `filter` and `transform`
/// processors, compiles the regexes of `IsMatch` and the key-pattern editors, and reports each
/// problem with its location: syntax errors with their column, unknown functions and paths,
/// functions used outside their context, invalid regexes. Valid OTTL that the emulator does not
/// execute is not a problem here (the emulator reports it by name).
pub fn check_config(config: &crate::config::Config) -> Vec<crate::validate::Problem> {
    ottl_texts(config)
        .into_iter()
        .filter_map(|(location, text, context, host, statement)| {
            let result = if statement {
                compile_statement(&text, context, host).map(|_| ())
            } else {
                compile_condition(&text, context, host).map(|_| ())
            };
            match result {
                Err(e) if !e.unsupported => Some(crate::validate::Problem::new(
                    location,
                    format!(
                        "OTTL error at column {} of `{text}`: {}",
                        e.column, e.message
                    ),
                )),
                _ => None,
            }
        })
        .collect()
}
