//! Validation of collector configs, generated or written by hand.
//!
//! [`validate`] reports every problem with where it is (a config path such as
//! `service.pipelines.metrics.processors[2]`):
//!
//! - **Structure** (errors): at least one pipeline; every pipeline has receivers and exporters;
//!   every id a pipeline lists is defined in the right section (receivers or connectors,
//!   processors, exporters or connectors) and listed once; only `metrics` pipelines (the only
//!   signal the supported components and the emulator handle); a connector is used both as an
//!   exporter and as a receiver; listed extensions are defined.
//! - **`memory_limiter`**: where a pipeline has one it must be the first processor (error); a
//!   pipeline without one gets a warning, since the collector runs without it but a spike can
//!   then take the node's memory.
//! - **Unused components**: a defined receiver, processor, exporter or extension that no pipeline
//!   (or `service.extensions`) uses is a warning; the collector ignores it, but it is usually a
//!   mistake.
//! - **Settings** (errors): required endpoints and paths, memory limits, legacy match
//!   properties whose regexes do not compile or whose `match_type` is missing, and
//!   `metric_statements` / `metric_conditions` lists that mix flat strings with context groups
//!   (the collector refuses the mix).
//! - **Ports** (errors): two listeners in one config on the same port (the `prometheus`
//!   exporter, internal telemetry — 8888 when not configured —, the `otlp` receiver, and
//!   `health_check`); [`validate_pair`] checks two configs meant for one node.
//! - **OTTL** (errors): every statement and condition parses, uses known functions and paths,
//!   and its `IsMatch` regexes compile ([`crate::ottl::check_config`]).
//! - **Critical-process safety** (errors, when critical patterns are given): a probe workload
//!   of critical processes runs through the emulator and every critical data point must reach
//!   every exporter unchanged apart from `phoenix.*` attributes
//!   ([`crate::emulator::critical_safety`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use phoenix_core::experiment::{CriticalMatcher, CriticalProcess};
use regex::Regex;
use serde::Serialize;

use crate::config::{
    ComponentId, ComponentKind, ConditionGroup, Config, Exporter, Extension, MatchType, PipelineId,
    Processor, Receiver, Section, Signal, StatementGroup, port_of,
};

/// How serious a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The config is wrong or unsafe: the collector refuses it, or it loses critical data.
    Error,
    /// The config works but is probably not what was meant.
    Warning,
}

/// One problem found in a config, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where, as a config path, e.g. `service.pipelines.metrics.processors[0]`.
    pub location: String,
    /// What is wrong.
    pub message: String,
    /// How serious it is.
    pub severity: Severity,
}

impl Problem {
    /// An error at `location`.
    pub fn new(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            message: message.into(),
            severity: Severity::Error,
        }
    }

    /// A warning at `location`.
    pub fn warning(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            message: message.into(),
            severity: Severity::Warning,
        }
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.severity {
            Severity::Error => write!(f, "{}: {}", self.location, self.message),
            Severity::Warning => write!(f, "{}: warning: {}", self.location, self.message),
        }
    }
}

/// What [`validate`] checks beyond structure.
#[derive(Debug, Clone, Default)]
pub struct ValidateOptions {
    /// Critical processes for the safety check; empty skips it.
    pub critical: Vec<CriticalProcess>,
}

impl ValidateOptions {
    /// Options with these critical name patterns.
    pub fn with_critical_names<I, S>(patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            critical: patterns
                .into_iter()
                .map(|p| CriticalProcess::name(p.into()))
                .collect(),
        }
    }
}

/// Every problem of `config`, errors first, each with its location.
pub fn validate(config: &Config, options: &ValidateOptions) -> Vec<Problem> {
    let mut problems = Vec::new();
    structure(config, &mut problems);
    settings(config, &mut problems);
    ports(config, &mut problems);
    problems.extend(crate::ottl::check_config(config));
    if !options.critical.is_empty() {
        match CriticalMatcher::new(&options.critical) {
            Ok(matcher) => problems.extend(crate::emulator::critical_safety(config, &matcher)),
            Err(errors) => problems.push(Problem::new("critical", errors.to_string())),
        }
    }
    problems.sort_by_key(|p| p.severity);
    problems
}

/// Whether `problems` contains an error (warnings alone pass).
pub fn has_errors(problems: &[Problem]) -> bool {
    problems.iter().any(Problem::is_error)
}

fn pipeline_path(id: &PipelineId) -> String {
    format!("service.pipelines.{id}")
}

fn structure(config: &Config, problems: &mut Vec<Problem>) {
    let pipelines = &config.service.pipelines;
    if pipelines.is_empty() {
        problems.push(Problem::new("service.pipelines", "no pipeline is defined"));
    }
    let mut used: BTreeSet<(Section, ComponentId)> = BTreeSet::new();
    let mut connector_as_exporter: BTreeSet<&ComponentId> = BTreeSet::new();
    let mut connector_as_receiver: BTreeSet<&ComponentId> = BTreeSet::new();
    for (pid, pipeline) in pipelines {
        let at = pipeline_path(pid);
        if pid.signal != Signal::Metrics {
            problems.push(Problem::new(
                at.clone(),
                format!(
                    "a {} pipeline; the supported components and the emulator handle metrics only",
                    pid.signal
                ),
            ));
        }
        if pipeline.receivers.is_empty() {
            problems.push(Problem::new(
                format!("{at}.receivers"),
                "a pipeline needs at least one receiver",
            ));
        }
        if pipeline.exporters.is_empty() {
            problems.push(Problem::new(
                format!("{at}.exporters"),
                "a pipeline needs at least one exporter",
            ));
        }
        for (i, id) in pipeline.receivers.iter().enumerate() {
            let loc = format!("{at}.receivers[{i}]");
            duplicate(&pipeline.receivers, i, &loc, problems);
            if config.receivers.contains_key(id) {
                used.insert((Section::Receivers, id.clone()));
            } else if config.connectors.contains_key(id) {
                connector_as_receiver.insert(id);
            } else {
                problems.push(undefined(&loc, id, "receivers or connectors"));
            }
        }
        for (i, id) in pipeline.processors.iter().enumerate() {
            let loc = format!("{at}.processors[{i}]");
            duplicate(&pipeline.processors, i, &loc, problems);
            if config.processors.contains_key(id) {
                used.insert((Section::Processors, id.clone()));
            } else {
                problems.push(undefined(&loc, id, "processors"));
            }
        }
        for (i, id) in pipeline.exporters.iter().enumerate() {
            let loc = format!("{at}.exporters[{i}]");
            duplicate(&pipeline.exporters, i, &loc, problems);
            if config.exporters.contains_key(id) {
                used.insert((Section::Exporters, id.clone()));
            } else if config.connectors.contains_key(id) {
                connector_as_exporter.insert(id);
            } else {
                problems.push(undefined(&loc, id, "exporters or connectors"));
            }
        }
        memory_limiter_first(config, pid, &pipeline.processors, problems);
    }
    for id in config.connectors.keys() {
        let loc = format!("connectors.{id}");
        match (
            connector_as_exporter.contains(id),
            connector_as_receiver.contains(id),
        ) {
            (true, true) => {}
            (false, false) => problems.push(Problem::warning(loc, "defined but not used")),
            (true, false) => problems.push(Problem::new(
                loc,
                "used as an exporter but no pipeline receives from it",
            )),
            (false, true) => problems.push(Problem::new(
                loc,
                "used as a receiver but no pipeline exports to it",
            )),
        }
    }
    for (i, id) in config.service.extensions.iter().enumerate() {
        if config.extensions.contains_key(id) {
            used.insert((Section::Extensions, id.clone()));
        } else {
            problems.push(undefined(
                &format!("service.extensions[{i}]"),
                id,
                "extensions",
            ));
        }
    }
    let defined = config
        .receivers
        .keys()
        .map(|id| (Section::Receivers, id))
        .chain(config.processors.keys().map(|id| (Section::Processors, id)))
        .chain(config.exporters.keys().map(|id| (Section::Exporters, id)))
        .chain(config.extensions.keys().map(|id| (Section::Extensions, id)));
    for (section, id) in defined {
        if !used.contains(&(section, id.clone())) {
            let what = if section == Section::Extensions {
                "defined but not listed in service.extensions"
            } else {
                "defined but not used by any pipeline"
            };
            problems.push(Problem::warning(format!("{section}.{id}"), what));
        }
    }
}

fn duplicate(list: &[ComponentId], i: usize, loc: &str, problems: &mut Vec<Problem>) {
    if list[..i].contains(&list[i]) {
        problems.push(Problem::new(loc, format!("`{}` is listed twice", list[i])));
    }
}

fn undefined(loc: &str, id: &ComponentId, sections: &str) -> Problem {
    Problem::new(loc, format!("`{id}` is not defined in {sections}"))
}

fn memory_limiter_first(
    config: &Config,
    pid: &PipelineId,
    processors: &[ComponentId],
    problems: &mut Vec<Problem>,
) {
    let is_limiter = |id: &ComponentId| {
        id.kind == ComponentKind::MemoryLimiter
            && matches!(config.processors.get(id), Some(Processor::MemoryLimiter(_)))
    };
    let positions: Vec<usize> = processors
        .iter()
        .enumerate()
        .filter(|(_, id)| is_limiter(id))
        .map(|(i, _)| i)
        .collect();
    let at = pipeline_path(pid);
    if positions.is_empty() {
        problems.push(Problem::warning(
            format!("{at}.processors"),
            "no memory_limiter: add one as the first processor so a load spike cannot exhaust the node's memory",
        ));
    }
    for i in positions {
        if i != 0 {
            problems.push(Problem::new(
                format!("{at}.processors[{i}]"),
                format!(
                    "`{}` must be the first processor of the pipeline",
                    processors[i]
                ),
            ));
        }
    }
}

fn check_regexes(
    loc: &str,
    match_type: MatchType,
    patterns: &[String],
    problems: &mut Vec<Problem>,
) {
    if match_type != MatchType::Regexp {
        return;
    }
    for (i, pattern) in patterns.iter().enumerate() {
        if let Err(e) = Regex::new(pattern) {
            problems.push(Problem::new(
                format!("{loc}[{i}]"),
                format!("invalid regex `{pattern}`: {e}"),
            ));
        }
    }
}

/// The collector refuses a list that mixes flat strings with context groups.
fn mixed_styles(loc: &str, flat: &[bool], problems: &mut Vec<Problem>) {
    if flat.iter().any(|f| *f) && flat.iter().any(|f| !*f) {
        let i = flat.iter().position(|f| *f != flat[0]).unwrap_or_default();
        problems.push(Problem::new(
            format!("{loc}[{i}]"),
            "flat entries and context groups cannot be mixed in one list (the collector refuses it); use one style",
        ));
    }
}

fn settings(config: &Config, problems: &mut Vec<Problem>) {
    for (id, receiver) in &config.receivers {
        let at = format!("receivers.{id}");
        match receiver {
            Receiver::HostMetrics(h) => {
                if h.collection_interval
                    .is_some_and(|d| d.as_duration().is_zero())
                {
                    problems.push(Problem::new(
                        format!("{at}.collection_interval"),
                        "must be greater than zero",
                    ));
                }
                let s = &h.scrapers;
                let any = s.process.is_some()
                    || [
                        &s.cpu,
                        &s.disk,
                        &s.filesystem,
                        &s.load,
                        &s.memory,
                        &s.network,
                        &s.paging,
                        &s.processes,
                        &s.system,
                    ]
                    .iter()
                    .any(|x| x.is_some());
                if !any {
                    problems.push(Problem::new(
                        format!("{at}.scrapers"),
                        "at least one scraper must be configured",
                    ));
                }
                if let Some(process) = &s.process {
                    for (key, m) in [("include", &process.include), ("exclude", &process.exclude)] {
                        if let Some(m) = m {
                            check_regexes(
                                &format!("{at}.scrapers.process.{key}.names"),
                                m.match_type,
                                &m.names,
                                problems,
                            );
                        }
                    }
                }
            }
            Receiver::Otlp(o) => {
                if o.protocols.grpc.is_none() && o.protocols.http.is_none() {
                    problems.push(Problem::new(
                        format!("{at}.protocols"),
                        "at least one of grpc or http must be enabled",
                    ));
                }
            }
        }
    }
    for (id, processor) in &config.processors {
        let at = format!("processors.{id}");
        match processor {
            Processor::MemoryLimiter(m) => {
                if m.check_interval.is_none_or(|d| d.as_duration().is_zero()) {
                    problems.push(Problem::new(
                        format!("{at}.check_interval"),
                        "must be set and greater than zero",
                    ));
                }
                if m.limit_mib.is_none() && m.limit_percentage.is_none() {
                    problems.push(Problem::new(
                        at.clone(),
                        "set limit_mib or limit_percentage",
                    ));
                }
                if let (Some(limit), Some(spike)) = (m.limit_percentage, m.spike_limit_percentage)
                    && spike >= limit
                {
                    problems.push(Problem::new(
                        format!("{at}.spike_limit_percentage"),
                        "must be below limit_percentage",
                    ));
                }
                if let (Some(limit), Some(spike)) = (m.limit_mib, m.spike_limit_mib)
                    && spike >= limit
                {
                    problems.push(Problem::new(
                        format!("{at}.spike_limit_mib"),
                        "must be below limit_mib",
                    ));
                }
            }
            Processor::Filter(f) => {
                let flat = |g: &ConditionGroup| matches!(g, ConditionGroup::Flat(_));
                mixed_styles(
                    &format!("{at}.metric_conditions"),
                    &f.metric_conditions.iter().map(flat).collect::<Vec<_>>(),
                    problems,
                );
                for (key, m) in [
                    ("include", &f.metrics.include),
                    ("exclude", &f.metrics.exclude),
                ] {
                    if let Some(m) = m {
                        check_regexes(
                            &format!("{at}.metrics.{key}.metric_names"),
                            m.match_type,
                            &m.metric_names,
                            problems,
                        );
                        for (i, kv) in m.resource_attributes.iter().enumerate() {
                            if let Some(value) = &kv.value {
                                check_regexes(
                                    &format!("{at}.metrics.{key}.resource_attributes[{i}].value"),
                                    m.match_type,
                                    std::slice::from_ref(value),
                                    problems,
                                );
                            }
                        }
                    }
                }
            }
            Processor::CumulativeToDelta(c) => {
                for (key, m) in [("include", &c.include), ("exclude", &c.exclude)] {
                    if let Some(m) = m {
                        match m.match_type {
                            None if !m.metrics.is_empty() => problems.push(Problem::new(
                                format!("{at}.{key}.match_type"),
                                "match_type must be set when metrics are listed",
                            )),
                            Some(t) => check_regexes(
                                &format!("{at}.{key}.metrics"),
                                t,
                                &m.metrics,
                                problems,
                            ),
                            None => {}
                        }
                    }
                }
            }
            Processor::MetricsTransform(m) => {
                for (i, t) in m.transforms.iter().enumerate() {
                    if matches!(t.match_type, Some(MatchType::Regexp))
                        && let Err(e) = Regex::new(&t.include)
                    {
                        problems.push(Problem::new(
                            format!("{at}.transforms[{i}].include"),
                            format!("invalid regex `{}`: {e}", t.include),
                        ));
                    }
                    if t.action != crate::config::TransformAction::Update && t.new_name.is_none() {
                        problems.push(Problem::new(
                            format!("{at}.transforms[{i}].new_name"),
                            "required for insert and combine",
                        ));
                    }
                }
            }
            Processor::Transform(t) => {
                let flat = |g: &StatementGroup| matches!(g, StatementGroup::Flat(_));
                mixed_styles(
                    &format!("{at}.metric_statements"),
                    &t.metric_statements.iter().map(flat).collect::<Vec<_>>(),
                    problems,
                );
            }
            Processor::Batch(_)
            | Processor::Resource(_)
            | Processor::Attributes(_)
            | Processor::GroupByAttrs(_) => {}
        }
    }
    for (id, exporter) in &config.exporters {
        let at = format!("exporters.{id}");
        let missing = match exporter {
            Exporter::Otlp(e) => e.endpoint.is_none().then_some("endpoint"),
            Exporter::OtlpHttp(e) => (e.endpoint.is_none() && e.metrics_endpoint.is_none())
                .then_some("endpoint (or metrics_endpoint)"),
            Exporter::Prometheus(e) => e.endpoint.is_none().then_some("endpoint"),
            Exporter::File(e) => e.path.is_none().then_some("path"),
            Exporter::Debug(_) => None,
        };
        if let Some(field) = missing {
            problems.push(Problem::new(at, format!("{field} is required")));
        }
    }
}

/// Every port `config` listens on, with where it is configured (defaults included: internal
/// telemetry on 8888 when unconfigured, `otlp` on 4317/4318, `health_check` on 13133).
pub fn bound_ports(config: &Config) -> Vec<(u16, String)> {
    let mut out = Vec::new();
    for (id, receiver) in &config.receivers {
        if let Receiver::Otlp(o) = receiver {
            for (proto, endpoint, default) in [
                ("grpc", &o.protocols.grpc, 4317),
                ("http", &o.protocols.http, 4318),
            ] {
                if let Some(e) = endpoint {
                    let port = e.endpoint.as_deref().and_then(port_of).unwrap_or(default);
                    out.push((port, format!("receivers.{id}.protocols.{proto}.endpoint")));
                }
            }
        }
    }
    for (id, exporter) in &config.exporters {
        if let Exporter::Prometheus(p) = exporter
            && let Some(port) = p.port()
        {
            out.push((port, format!("exporters.{id}.endpoint")));
        }
    }
    for (id, extension) in &config.extensions {
        let Extension::HealthCheck(h) = extension;
        if config.service.extensions.contains(id) {
            let port = h.endpoint.as_deref().and_then(port_of).unwrap_or(13133);
            out.push((port, format!("extensions.{id}.endpoint")));
        }
    }
    let metrics = config
        .service
        .telemetry
        .as_ref()
        .and_then(|t| t.metrics.as_ref());
    match metrics {
        Some(m) if !m.readers.is_empty() => {
            for (i, port) in m.prometheus_ports().into_iter().enumerate() {
                out.push((
                    port,
                    format!("service.telemetry.metrics.readers[{i}].pull.exporter.prometheus.port"),
                ));
            }
        }
        Some(m) if m.level == Some(crate::config::TelemetryLevel::None) => {}
        _ => out.push((8888, "service.telemetry.metrics (default port)".to_owned())),
    }
    out
}

fn ports(config: &Config, problems: &mut Vec<Problem>) {
    let mut seen: BTreeMap<u16, String> = BTreeMap::new();
    for (port, location) in bound_ports(config) {
        if let Some(first) = seen.get(&port) {
            problems.push(Problem::new(
                location,
                format!("port {port} is already bound by {first}"),
            ));
        } else {
            seen.insert(port, location);
        }
    }
}

/// Problems running `a` and `b` on one node: every port both bind, located in `b`.
pub fn validate_pair(a: &Config, b: &Config) -> Vec<Problem> {
    let taken: BTreeMap<u16, String> = bound_ports(a).into_iter().collect();
    bound_ports(b)
        .into_iter()
        .filter_map(|(port, location)| {
            taken.get(&port).map(|other| {
                Problem::new(
                    location,
                    format!("port {port} is also bound by the other variant at {other}"),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{TemplateId, render};

    fn problems_of(yaml: &str) -> Vec<Problem> {
        validate(
            &Config::from_yaml(yaml).unwrap(),
            &ValidateOptions::default(),
        )
    }

    const MINIMAL: &str = "
receivers:
  hostmetrics:
    scrapers:
      process:
processors:
  memory_limiter:
    check_interval: 1s
    limit_percentage: 80
  batch:
exporters:
  debug:
service:
  pipelines:
    metrics:
      receivers: [hostmetrics]
      processors: [memory_limiter, batch]
      exporters: [debug]
";

    #[test]
    fn minimal_config_is_clean() {
        assert_eq!(problems_of(MINIMAL), Vec::<Problem>::new());
    }

    #[test]
    fn every_template_validates_cleanly() {
        let mut failures = Vec::new();
        for t in TemplateId::ALL {
            let config = render(t, &serde_json::Map::new()).unwrap();
            let problems = validate(&config, &ValidateOptions::with_critical_names(["^sshd$"]));
            if !problems.is_empty() {
                failures.push(format!("{t}: {problems:#?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn memory_limiter_must_be_first() {
        let yaml = MINIMAL.replace("[memory_limiter, batch]", "[batch, memory_limiter]");
        let problems = problems_of(&yaml);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            problems[0].location,
            "service.pipelines.metrics.processors[1]"
        );
        let yaml = MINIMAL.replace("[memory_limiter, batch]", "[batch]");
        let problems = problems_of(&yaml);
        assert!(
            problems
                .iter()
                .any(|p| p.severity == Severity::Warning && p.message.contains("no memory_limiter")),
            "{problems:?}"
        );
        assert!(!has_errors(&problems));
    }

    #[test]
    fn undefined_and_unused_components_are_located() {
        let yaml = MINIMAL.replace("exporters: [debug]", "exporters: [otlphttp]");
        let problems = problems_of(&yaml);
        let locations: Vec<&str> = problems.iter().map(|p| p.location.as_str()).collect();
        assert!(
            locations.contains(&"service.pipelines.metrics.exporters[0]"),
            "{problems:?}"
        );
        assert!(locations.contains(&"exporters.debug"), "{problems:?}");
    }

    #[test]
    fn shared_ports_are_refused() {
        let yaml = MINIMAL
            .replace(
                "  debug:\n",
                "  debug:\n  prometheus:\n    endpoint: 0.0.0.0:8888\n",
            )
            .replace("exporters: [debug]", "exporters: [debug, prometheus]");
        let problems = problems_of(&yaml);
        assert!(
            problems.iter().any(|p| p.message.contains("port 8888")),
            "{problems:?}"
        );
        let baseline = render(TemplateId::Baseline, &serde_json::Map::new()).unwrap();
        let candidate = render(TemplateId::TopK, &serde_json::Map::new()).unwrap();
        assert!(validate_pair(&baseline, &candidate).is_empty());
        assert!(!validate_pair(&baseline, &baseline).is_empty());
    }

    #[test]
    fn mixed_statement_styles_are_refused() {
        let yaml = MINIMAL
            .replace(
                "  batch:\n",
                "  batch:\n  transform/x:\n    metric_statements:\n      - 'delete_key(resource.attributes, \"a\")'\n      - context: resource\n        statements: ['delete_key(attributes, \"b\")']\n",
            )
            .replace("[memory_limiter, batch]", "[memory_limiter, transform/x, batch]");
        let problems = problems_of(&yaml);
        assert!(
            problems
                .iter()
                .any(|p| p.location == "processors.transform/x.metric_statements[1]"),
            "{problems:?}"
        );
    }

    #[test]
    fn bad_ottl_regex_is_reported_with_its_location() {
        let yaml = MINIMAL
            .replace(
                "  batch:\n",
                "  batch:\n  filter/x:\n    metrics:\n      datapoint:\n        - 'IsMatch(resource.attributes[\"process.executable.name\"], \"(\")'\n",
            )
            .replace("[memory_limiter, batch]", "[memory_limiter, filter/x, batch]");
        let problems = problems_of(&yaml);
        assert!(
            problems.iter().any(|p| p
                .location
                .starts_with("processors.filter/x.metrics.datapoint[0]")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_filter_dropping_critical_processes_fails_the_safety_check() {
        let yaml = MINIMAL
            .replace(
                "  batch:\n",
                "  batch:\n  filter/oops:\n    metrics:\n      datapoint:\n        - 'IsMatch(resource.attributes[\"process.executable.name\"], \"^postgres$\")'\n",
            )
            .replace("[memory_limiter, batch]", "[memory_limiter, filter/oops, batch]");
        let config = Config::from_yaml(&yaml).unwrap();
        let problems = validate(
            &config,
            &ValidateOptions::with_critical_names(["^postgres$"]),
        );
        assert!(has_errors(&problems), "{problems:?}");
        let clean = validate(
            &Config::from_yaml(MINIMAL).unwrap(),
            &ValidateOptions::with_critical_names(["^postgres$"]),
        );
        assert!(!has_errors(&clean), "{clean:?}");
    }
}
