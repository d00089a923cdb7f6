//! Template parameters: typed, documented (JSON Schema), with defaults and field-naming checks.

use std::collections::BTreeMap;
use std::fmt;

use phoenix_core::experiment::CriticalProcess;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::pattern::{check_config_text, check_portable};
use crate::config::{GoDuration, ProcessScraperMetric};
use crate::error::{Error, Result};

/// The collector release every template targets (`otelcol-contrib`).
pub const COLLECTOR_RELEASE: &str = "0.155.0";

/// The experiment id used when none is given (an experiment passes its own).
pub const UNASSIGNED_EXPERIMENT_ID: &str = "exp-00000000";

/// Which side of an experiment a rendered config is for. Ports are derived from it so that both
/// variants can run on one node.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// The reference pipeline.
    Baseline,
    /// The pipeline under test.
    Candidate,
}

impl Variant {
    /// Both variants.
    pub const ALL: [Self; 2] = [Self::Baseline, Self::Candidate];

    /// The variant's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::Candidate => "candidate",
        }
    }

    /// Added to every default port: 0 for the baseline, 10 for the candidate.
    pub const fn port_offset(self) -> u16 {
        match self {
            Self::Baseline => 0,
            Self::Candidate => 10,
        }
    }

    /// Default port of the collector's own metrics: 8888 (baseline) or 8898 (candidate).
    pub const fn default_telemetry_port(self) -> u16 {
        8888 + self.port_offset()
    }

    /// Default port of the `prometheus` exporter: 8889 (baseline) or 8899 (candidate).
    pub const fn default_prometheus_port(self) -> u16 {
        8889 + self.port_offset()
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Variant {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "baseline" => Ok(Self::Baseline),
            "candidate" => Ok(Self::Candidate),
            other => Err(Error::Parameter {
                field: "variant".to_owned(),
                message: format!("expected `baseline` or `candidate`, got `{other}`"),
            }),
        }
    }
}

/// What the aggregated pipelines group non-critical processes by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AggregationKey {
    /// One series per `process.executable.name` (per metric and data-point attributes).
    ExecutableName,
    /// One series per class (see `classes`), written as `phoenix.process.class`; the executable
    /// name is removed.
    Class,
}

/// A process class: processes whose executable name matches `pattern` belong to `class`.
/// Classes are tried in order; the first match wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessClass {
    /// The class name, e.g. `web`.
    pub class: String,
    /// Regex (RE2/Rust common subset, unanchored) on `process.executable.name`.
    pub pattern: String,
}

/// The parameters shared by every template, borrowed from a template's parameter struct.
#[derive(Debug, Clone, Copy)]
pub struct Common<'a> {
    /// See the parameter docs.
    pub experiment_id: &'a str,
    /// See the parameter docs.
    pub variant: Variant,
    /// See the parameter docs.
    pub critical_processes: &'a [CriticalProcess],
    /// See the parameter docs.
    pub collection_interval: &'a str,
    /// See the parameter docs.
    pub root_path: Option<&'a str>,
    /// See the parameter docs.
    pub metrics: &'a BTreeMap<String, bool>,
    /// See the parameter docs.
    pub otlp_endpoint: Option<&'a str>,
    /// See the parameter docs.
    pub otlp_headers: &'a BTreeMap<String, String>,
    /// See the parameter docs.
    pub prometheus: bool,
    /// See the parameter docs.
    pub prometheus_port: Option<u16>,
    /// See the parameter docs.
    pub telemetry_port: Option<u16>,
    /// See the parameter docs.
    pub debug: bool,
    /// See the parameter docs.
    pub memory_limit_percentage: u32,
    /// See the parameter docs.
    pub memory_spike_limit_percentage: u32,
    /// See the parameter docs.
    pub collector_release: &'a str,
}

impl Common<'_> {
    /// The `prometheus` exporter port in effect.
    pub fn prometheus_port(&self) -> u16 {
        self.prometheus_port
            .unwrap_or(self.variant.default_prometheus_port())
    }

    /// The internal telemetry port in effect.
    pub fn telemetry_port(&self) -> u16 {
        self.telemetry_port
            .unwrap_or(self.variant.default_telemetry_port())
    }

    /// The collection interval, parsed (checked by [`Common::check`]).
    pub fn interval(&self) -> Result<GoDuration> {
        self.collection_interval
            .parse::<GoDuration>()
            .map_err(|e| param("collectionInterval", e.to_string()))
    }

    /// Field-naming checks of the shared parameters.
    pub fn check(&self) -> Result<()> {
        let id_ok = self.experiment_id.strip_prefix("exp-").is_some_and(|rest| {
            rest.len() == 8
                && rest
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
        if !id_ok {
            return Err(param(
                "experimentId",
                format!(
                    "must be `exp-` followed by 8 lowercase letters or digits, got `{}`",
                    self.experiment_id
                ),
            ));
        }
        check_processes("criticalProcesses", self.critical_processes)?;
        let interval = self.interval()?;
        if interval.as_duration().is_zero() {
            return Err(param("collectionInterval", "must be greater than zero"));
        }
        if let Some(root) = self.root_path
            && !root.starts_with('/')
        {
            return Err(param(
                "rootPath",
                format!("must be an absolute path, got `{root}`"),
            ));
        }
        for name in self.metrics.keys() {
            if ProcessScraperMetric::from_name(name).is_none() {
                let known = ProcessScraperMetric::ALL
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(param(
                    format!("metrics.{name}"),
                    format!("unknown process metric; the scraper has: {known}"),
                ));
            }
        }
        if let Some(endpoint) = self.otlp_endpoint {
            let ok = endpoint.starts_with("http://")
                || endpoint.starts_with("https://")
                || endpoint.starts_with("${");
            if !ok {
                return Err(param(
                    "otlpEndpoint",
                    format!(
                        "must be an http:// or https:// URL or a `${{env:...}}` reference, got `{endpoint}`"
                    ),
                ));
            }
        }
        for key in self.otlp_headers.keys() {
            if key.trim().is_empty() || key.contains(char::is_whitespace) || key.contains(':') {
                return Err(param(
                    format!("otlpHeaders.{key}"),
                    "a header name must be a non-empty token without spaces or `:`",
                ));
            }
        }
        if self.prometheus_port == Some(0) {
            return Err(param(
                "prometheusPort",
                "must be between 1 and 65535, got 0",
            ));
        }
        if self.telemetry_port == Some(0) {
            return Err(param("telemetryPort", "must be between 1 and 65535, got 0"));
        }
        if self.prometheus && self.prometheus_port() == self.telemetry_port() {
            return Err(param(
                "prometheusPort",
                format!(
                    "must differ from telemetryPort; both are {}",
                    self.telemetry_port()
                ),
            ));
        }
        if self.otlp_endpoint.is_none() && !self.prometheus && !self.debug {
            return Err(param(
                "otlpEndpoint",
                "no exporter left: set otlpEndpoint, or enable prometheus or debug",
            ));
        }
        if !(1..=100).contains(&self.memory_limit_percentage) {
            return Err(param(
                "memoryLimitPercentage",
                format!(
                    "must be between 1 and 100, got {}",
                    self.memory_limit_percentage
                ),
            ));
        }
        if self.memory_spike_limit_percentage >= self.memory_limit_percentage {
            return Err(param(
                "memorySpikeLimitPercentage",
                format!(
                    "must be below memoryLimitPercentage ({}), got {}",
                    self.memory_limit_percentage, self.memory_spike_limit_percentage
                ),
            ));
        }
        if self.collector_release != COLLECTOR_RELEASE {
            return Err(param(
                "collectorRelease",
                format!(
                    "the catalog targets otelcol-contrib {COLLECTOR_RELEASE} only, got `{}`",
                    self.collector_release
                ),
            ));
        }
        Ok(())
    }
}

/// An [`Error::Parameter`].
pub(crate) fn param(field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Parameter {
        field: field.into(),
        message: message.into(),
    }
}

/// Checks process patterns, naming the failing entry.
pub(crate) fn check_processes(field: &str, processes: &[CriticalProcess]) -> Result<()> {
    for (i, process) in processes.iter().enumerate() {
        check_portable(&process.name).map_err(|why| {
            // A bare string is shorthand for `{name: ...}`, so the index alone names it.
            param(format!("{field}[{i}]"), why)
        })?;
        if let Some(path) = &process.path {
            check_portable(path).map_err(|why| param(format!("{field}[{i}].path"), why))?;
        }
    }
    Ok(())
}

fn default_critical() -> Vec<CriticalProcess> {
    [
        "^systemd$",
        "^kubelet$",
        "^containerd$",
        "^dockerd$",
        "^sshd$",
    ]
    .into_iter()
    .map(CriticalProcess::name)
    .collect()
}

macro_rules! template_params {
    (
        $(#[$meta:meta])*
        $name:ident, default variant $variant:expr;
        $( $(#[$fmeta:meta])* $field:ident : $ty:ty = $default:expr; )*
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields, default)]
        pub struct $name {
            /// Experiment id written as the resource attribute `phoenix.experiment.id`
            /// (`exp-` + 8 lowercase letters or digits).
            pub experiment_id: String,
            /// Variant written as `phoenix.variant`; also chooses the default ports.
            pub variant: Variant,
            /// Critical processes: regexes (unanchored, as OTTL `IsMatch`) on
            /// `process.executable.name`, optionally with a `path` regex on
            /// `process.executable.path`. Their data points are never dropped or changed.
            pub critical_processes: Vec<CriticalProcess>,
            /// Scrape interval of the process scraper (Go duration, e.g. `10s`).
            pub collection_interval: String,
            /// Host filesystem root for the scraper, e.g. `/hostfs` on Kubernetes.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub root_path: Option<String>,
            /// Optional process metrics switched on (`true`) or off (`false`), by metric name.
            pub metrics: BTreeMap<String, bool>,
            /// OTLP/HTTP endpoint of the backend; `null` removes the `otlphttp` exporter.
            pub otlp_endpoint: Option<String>,
            /// Headers for the OTLP/HTTP exporter; values may reference the environment, e.g.
            /// `Bearer ${env:PHOENIX_OTLP_TOKEN}`.
            pub otlp_headers: BTreeMap<String, String>,
            /// Serve the output on a `prometheus` exporter endpoint.
            pub prometheus: bool,
            /// Port of the `prometheus` exporter; default 8889 (baseline) / 8899 (candidate).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub prometheus_port: Option<u16>,
            /// Port of the collector's own metrics; default 8888 (baseline) / 8898 (candidate).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub telemetry_port: Option<u16>,
            /// Add a `debug` exporter (basic verbosity).
            pub debug: bool,
            /// `memory_limiter` hard limit, percent of the memory available to the collector.
            pub memory_limit_percentage: u32,
            /// `memory_limiter` spike headroom, percent; below the hard limit.
            pub memory_spike_limit_percentage: u32,
            /// The pinned `otelcol-contrib` release the config is written for.
            pub collector_release: String,
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    experiment_id: UNASSIGNED_EXPERIMENT_ID.to_owned(),
                    variant: $variant,
                    critical_processes: default_critical(),
                    collection_interval: "10s".to_owned(),
                    root_path: None,
                    metrics: BTreeMap::new(),
                    otlp_endpoint: Some("http://localhost:4318".to_owned()),
                    otlp_headers: BTreeMap::new(),
                    prometheus: true,
                    prometheus_port: None,
                    telemetry_port: None,
                    debug: false,
                    memory_limit_percentage: 80,
                    memory_spike_limit_percentage: 25,
                    collector_release: COLLECTOR_RELEASE.to_owned(),
                    $( $field: $default, )*
                }
            }
        }

        impl $name {
            /// The shared parameters.
            pub fn common(&self) -> Common<'_> {
                Common {
                    experiment_id: &self.experiment_id,
                    variant: self.variant,
                    critical_processes: &self.critical_processes,
                    collection_interval: &self.collection_interval,
                    root_path: self.root_path.as_deref(),
                    metrics: &self.metrics,
                    otlp_endpoint: self.otlp_endpoint.as_deref(),
                    otlp_headers: &self.otlp_headers,
                    prometheus: self.prometheus,
                    prometheus_port: self.prometheus_port,
                    telemetry_port: self.telemetry_port,
                    debug: self.debug,
                    memory_limit_percentage: self.memory_limit_percentage,
                    memory_spike_limit_percentage: self.memory_spike_limit_percentage,
                    collector_release: &self.collector_release,
                }
            }
        }
    };
}

template_params! {
    /// Parameters of `process-baseline-v1`.
    BaselineParams, default variant Variant::Baseline;
}

template_params! {
    /// Parameters of `process-priority-filter-v1`.
    PriorityFilterParams, default variant Variant::Candidate;
    /// High-priority processes kept besides the critical ones (same form as
    /// `criticalProcesses`).
    high_priority_processes: Vec<CriticalProcess> = Vec::new();
}

template_params! {
    /// Parameters of `process-topk-v1`.
    TopKParams, default variant Variant::Candidate;
    /// How many non-critical processes the thresholds should keep, about. The collector cannot
    /// rank; predictions report how many survive against this target.
    top_k: u32 = 20;
    /// Keep a process while any state of its `process.cpu.utilization` exceeds this fraction
    /// (0..1; enables that metric). `null` disables the CPU criterion.
    cpu_utilization_threshold: Option<f64> = Some(0.05);
    /// Keep a process while its `process.memory.usage` exceeds this many bytes. `null`
    /// disables the memory criterion.
    memory_usage_threshold: Option<u64> = Some(256 * 1024 * 1024);
}

template_params! {
    /// Parameters of `process-aggregated-v1`.
    AggregatedParams, default variant Variant::Candidate;
    /// What non-critical processes are aggregated by.
    aggregation_key: AggregationKey = AggregationKey::ExecutableName;
    /// Classes for `aggregationKey: class`, tried in order.
    classes: Vec<ProcessClass> = Vec::new();
    /// Class of processes that match no class.
    other_class: String = "other".to_owned();
}

template_params! {
    /// Parameters of `process-adaptive-filter-v1`.
    AdaptiveFilterParams, default variant Variant::Candidate;
    /// A process is active while any state of its `process.cpu.utilization` exceeds this
    /// fraction (0..1; enables that metric). `null` disables the CPU criterion.
    cpu_utilization_threshold: Option<f64> = Some(0.05);
    /// A process is active while its `process.memory.usage` exceeds this many bytes. `null`
    /// disables the memory criterion.
    memory_usage_threshold: Option<u64> = Some(256 * 1024 * 1024);
    /// What inactive non-critical processes are aggregated by.
    aggregation_key: AggregationKey = AggregationKey::ExecutableName;
    /// Classes for `aggregationKey: class`, tried in order.
    classes: Vec<ProcessClass> = Vec::new();
    /// Class of processes that match no class.
    other_class: String = "other".to_owned();
}

impl BaselineParams {
    /// Field-naming checks.
    pub fn check(&self) -> Result<()> {
        self.common().check()
    }
}

impl PriorityFilterParams {
    /// Field-naming checks.
    pub fn check(&self) -> Result<()> {
        self.common().check()?;
        check_processes("highPriorityProcesses", &self.high_priority_processes)?;
        if self.critical_processes.is_empty() && self.high_priority_processes.is_empty() {
            return Err(param(
                "highPriorityProcesses",
                "with no critical and no high-priority processes the filter would drop everything",
            ));
        }
        Ok(())
    }
}

/// Checks the activity thresholds.
fn check_thresholds(cpu: Option<f64>, memory: Option<u64>) -> Result<()> {
    if let Some(cpu) = cpu
        && !(cpu > 0.0 && cpu < 1.0)
    {
        return Err(param(
            "cpuUtilizationThreshold",
            format!("must be a fraction between 0 and 1 (exclusive), got {cpu}"),
        ));
    }
    if memory == Some(0) {
        return Err(param(
            "memoryUsageThreshold",
            "must be at least 1 byte, got 0",
        ));
    }
    if cpu.is_none() && memory.is_none() {
        return Err(param(
            "cpuUtilizationThreshold",
            "set cpuUtilizationThreshold or memoryUsageThreshold (both are null)",
        ));
    }
    Ok(())
}

/// Checks the aggregation key and classes.
fn check_classes(key: AggregationKey, classes: &[ProcessClass], other: &str) -> Result<()> {
    for (i, class) in classes.iter().enumerate() {
        if class.class.trim().is_empty() {
            return Err(param(format!("classes[{i}].class"), "must not be empty"));
        }
        check_config_text(&class.class).map_err(|why| param(format!("classes[{i}].class"), why))?;
        check_portable(&class.pattern)
            .map_err(|why| param(format!("classes[{i}].pattern"), why))?;
    }
    check_config_text(other).map_err(|why| param("otherClass", why))?;
    if key == AggregationKey::Class {
        if classes.is_empty() {
            return Err(param(
                "classes",
                "aggregationKey `class` needs at least one class",
            ));
        }
        if other.trim().is_empty() {
            return Err(param("otherClass", "must not be empty"));
        }
    }
    Ok(())
}

impl TopKParams {
    /// Field-naming checks.
    pub fn check(&self) -> Result<()> {
        self.common().check()?;
        if self.top_k == 0 {
            return Err(param("topK", "must be at least 1, got 0"));
        }
        check_thresholds(self.cpu_utilization_threshold, self.memory_usage_threshold)?;
        // A threshold reads its metric: with the metric switched off it never fires.
        let off = |name: &str| self.metrics.get(name) == Some(&false);
        if self.cpu_utilization_threshold.is_some() && off("process.cpu.utilization") {
            return Err(param(
                "metrics.process.cpu.utilization",
                "cpuUtilizationThreshold reads this metric, so it cannot be switched off; set cpuUtilizationThreshold: null or switch the metric on",
            ));
        }
        if self.memory_usage_threshold.is_some() && off("process.memory.usage") {
            return Err(param(
                "metrics.process.memory.usage",
                "memoryUsageThreshold reads this metric, so it cannot be switched off; set memoryUsageThreshold: null or switch the metric on",
            ));
        }
        Ok(())
    }
}

impl AggregatedParams {
    /// Field-naming checks.
    pub fn check(&self) -> Result<()> {
        self.common().check()?;
        check_classes(self.aggregation_key, &self.classes, &self.other_class)
    }
}

impl AdaptiveFilterParams {
    /// Field-naming checks.
    pub fn check(&self) -> Result<()> {
        self.common().check()?;
        check_thresholds(self.cpu_utilization_threshold, self.memory_usage_threshold)?;
        check_classes(self.aggregation_key, &self.classes, &self.other_class)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_their_checks() {
        BaselineParams::default().check().unwrap();
        PriorityFilterParams::default().check().unwrap();
        TopKParams::default().check().unwrap();
        AggregatedParams::default().check().unwrap();
        AdaptiveFilterParams::default().check().unwrap();
    }

    #[test]
    fn checks_name_the_field() {
        let p = TopKParams {
            top_k: 0,
            ..TopKParams::default()
        };
        assert_eq!(
            p.check().unwrap_err().to_string(),
            "parameter `topK`: must be at least 1, got 0"
        );
        let p = BaselineParams {
            critical_processes: vec![CriticalProcess::name("ok"), CriticalProcess::name("(")],
            ..BaselineParams::default()
        };
        let err = p.check().unwrap_err().to_string();
        assert!(
            err.starts_with("parameter `criticalProcesses[1]`: invalid regex"),
            "{err}"
        );
        let p = BaselineParams {
            prometheus_port: Some(8888),
            ..BaselineParams::default()
        };
        assert!(
            p.check()
                .unwrap_err()
                .to_string()
                .contains("prometheusPort")
        );
    }

    #[test]
    fn top_k_thresholds_need_their_metrics() {
        let with = |metric: &str, cpu: Option<f64>, memory: Option<u64>| TopKParams {
            metrics: [(metric.to_owned(), false)].into_iter().collect(),
            cpu_utilization_threshold: cpu,
            memory_usage_threshold: memory,
            ..TopKParams::default()
        };
        let err = with("process.memory.usage", Some(0.05), Some(1 << 20))
            .check()
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("parameter `metrics.process.memory.usage`"),
            "{err}"
        );
        let err = with("process.memory.usage", None, Some(1 << 20))
            .check()
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("parameter `metrics.process.memory.usage`"),
            "{err}"
        );
        let err = with("process.cpu.utilization", Some(0.05), None)
            .check()
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("parameter `metrics.process.cpu.utilization`"),
            "{err}"
        );
        // Switching off a metric no threshold reads is fine.
        with("process.memory.usage", Some(0.05), None)
            .check()
            .unwrap();
    }

    #[test]
    fn class_names_are_checked_like_patterns() {
        for bad in ["a${env:X}", "a$$b", "a\nb"] {
            let bad = bad.to_owned();
            let p = AggregatedParams {
                classes: vec![ProcessClass {
                    class: bad.clone(),
                    pattern: "^x$".to_owned(),
                }],
                ..AggregatedParams::default()
            };
            let err = p.check().unwrap_err().to_string();
            assert!(
                err.starts_with("parameter `classes[0].class`"),
                "{bad:?}: {err}"
            );
            let p = AggregatedParams {
                other_class: bad.clone(),
                ..AggregatedParams::default()
            };
            let err = p.check().unwrap_err().to_string();
            assert!(err.starts_with("parameter `otherClass`"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn variants_get_distinct_ports() {
        let ports: Vec<u16> = Variant::ALL
            .iter()
            .flat_map(|v| [v.default_telemetry_port(), v.default_prometheus_port()])
            .collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len());
    }
}
