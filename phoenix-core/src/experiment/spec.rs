//! The experiment spec: what to compare, on what, for how long, and what counts as success.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use super::validation::{ValidationErrors, Violations};
use crate::cost::CostModel;
use crate::measurement::{VariantRole, Window};
use crate::telemetry::{Attributes, schema::ResourceAttribute};

/// The longest run an experiment may ask for.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);
/// The most processes a workload may ask for.
pub const MAX_PROCESSES: u32 = 100_000;
/// The most measurement windows a run may have: every window is persisted as it is measured.
pub const MAX_WINDOWS: u64 = 10_000;
/// The number of measurement windows a run is split into when the spec does not set
/// `measurementWindow`.
pub const DEFAULT_WINDOW_COUNT: u32 = 60;

/// What an experiment compares and how it judges the result.
///
/// Written by users as YAML or JSON with camelCase keys; unknown keys are refused. Parsing
/// checks the shape; [`ExperimentSpec::validate`] then checks every value and reports every
/// violation with its path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExperimentSpec {
    /// A DNS-label style name: 3–63 lowercase letters, digits and dashes.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Who owns the experiment; the API sets it to the requesting user when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub owner: String,
    /// The reference pipeline.
    pub baseline: PipelineRef,
    /// The pipeline under test.
    pub candidate: PipelineRef,
    /// Where the variants run.
    #[serde(default)]
    pub target: Target,
    /// The process workload the variants see.
    #[serde(default)]
    pub workload: Workload,
    /// How long the run lasts, warm-up included. Default one hour.
    #[serde(with = "crate::duration", default = "default_duration")]
    #[schemars(with = "String")]
    pub duration: Duration,
    /// How much of the start of the run is not measured. Default none.
    #[serde(with = "crate::duration", default)]
    #[schemars(with = "String")]
    pub warm_up: Duration,
    /// How often the collector scrapes processes. Default 10 s.
    #[serde(with = "crate::duration", default = "default_scrape_interval")]
    #[schemars(with = "String")]
    pub scrape_interval: Duration,
    /// Length of a measurement window. Default: the measured time split into
    /// [`DEFAULT_WINDOW_COUNT`] windows, rounded up to whole scrape intervals.
    #[serde(
        with = "crate::duration::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<String>")]
    pub measurement_window: Option<Duration>,
    /// Processes that must stay fully visible.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub critical_processes: Vec<CriticalProcess>,
    /// What the candidate must achieve to be promoted.
    #[serde(default)]
    pub success_criteria: SuccessCriteria,
    /// Prices for this experiment; the global cost model applies when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_model: Option<CostModel>,
}

fn default_duration() -> Duration {
    Duration::from_secs(3600)
}

fn default_scrape_interval() -> Duration {
    Duration::from_secs(10)
}

impl ExperimentSpec {
    /// Checks every field and returns every violation, each with its path under `spec.`.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut v = Violations::default();
        validate_dns_label(&mut v, &self.name, "spec.name", 3);
        v.check(
            self.description.len() <= 4096,
            "spec.description",
            "must be at most 4096 bytes",
        );
        self.baseline.validate(&mut v, "spec.baseline");
        self.candidate.validate(&mut v, "spec.candidate");
        v.check(
            self.baseline != self.candidate,
            "spec.candidate",
            "must differ from the baseline",
        );
        self.target.validate(&mut v);
        self.workload.validate(&mut v);
        self.validate_timing(&mut v);
        CriticalMatcher::compile(&self.critical_processes, &mut v);
        self.success_criteria.validate(&mut v);
        if let Some(cost) = &self.cost_model {
            cost.check(&mut v, "spec.costModel");
        }
        v.finish()
    }

    fn validate_timing(&self, v: &mut Violations) {
        let (duration, warm_up, scrape) = (self.duration, self.warm_up, self.scrape_interval);
        v.check(
            !duration.is_zero() && duration <= MAX_DURATION,
            "spec.duration",
            "must be more than 0 and at most 30 days",
        );
        v.check(
            scrape >= Duration::from_secs(1) && scrape <= duration.max(Duration::from_secs(1)),
            "spec.scrapeInterval",
            "must be at least 1s and at most the duration",
        );
        v.check(
            warm_up < duration,
            "spec.warmUp",
            "must be shorter than the duration",
        );
        if let Some(window) = self.measurement_window {
            let measured = duration.saturating_sub(warm_up);
            v.check(
                window >= scrape && window <= measured,
                "spec.measurementWindow",
                "must be at least one scrape interval and at most the measured time (duration minus warm-up)",
            );
            let count = measured.as_nanos().div_ceil(window.as_nanos().max(1));
            v.check(
                count <= u128::from(MAX_WINDOWS),
                "spec.measurementWindow",
                format!("splits the run into {count} windows; at most {MAX_WINDOWS} are allowed"),
            );
        }
    }

    /// The length of one measurement window: `measurementWindow`, or the measured time split
    /// into [`DEFAULT_WINDOW_COUNT`] windows, rounded up to whole scrape intervals.
    pub fn window_length(&self) -> Duration {
        if let Some(window) = self.measurement_window {
            return window;
        }
        let measured = self.duration.saturating_sub(self.warm_up);
        let scrape = self.scrape_interval.max(Duration::from_millis(1));
        let share = measured.div_f64(f64::from(DEFAULT_WINDOW_COUNT));
        let scrapes = share.as_secs_f64() / scrape.as_secs_f64();
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let scrapes = scrapes.ceil().max(1.0) as u32;
        scrape.saturating_mul(scrapes)
    }

    /// The run's measurement windows.
    pub fn windows(&self) -> Vec<Window> {
        Window::plan(self.duration, self.warm_up, self.window_length())
    }

    /// The pipeline of `role`.
    pub fn variant(&self, role: VariantRole) -> &PipelineRef {
        match role {
            VariantRole::Baseline => &self.baseline,
            VariantRole::Candidate => &self.candidate,
        }
    }

    /// Compiles the critical-process patterns.
    pub fn critical_matcher(&self) -> Result<CriticalMatcher, ValidationErrors> {
        CriticalMatcher::new(&self.critical_processes)
    }
}

fn validate_dns_label(v: &mut Violations, value: &str, path: &str, min_len: usize) {
    let shape_ok = value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    v.check(
        (min_len..=63).contains(&value.len()) && shape_ok,
        path,
        format!(
            "must be {min_len}-63 lowercase letters, digits or dashes, starting and ending with a letter or digit; got {value:?}"
        ),
    );
}

/// A pipeline: a catalog template with parameters, or a collector config written out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "PipelineRefDoc", into = "PipelineRefDoc")]
#[schemars(with = "PipelineRefDoc")]
pub enum PipelineRef {
    /// A template of the generator's catalog.
    Template {
        /// The template name, e.g. `process-topk-v1`.
        name: String,
        /// The template's parameters, checked by the generator.
        parameters: serde_json::Map<String, serde_json::Value>,
    },
    /// A complete collector config as YAML.
    Inline {
        /// The config text.
        config: String,
    },
}

impl PipelineRef {
    /// A template reference with no parameters.
    pub fn template(name: impl Into<String>) -> Self {
        Self::Template {
            name: name.into(),
            parameters: serde_json::Map::new(),
        }
    }

    fn validate(&self, v: &mut Violations, path: &str) {
        match self {
            Self::Template { name, .. } => {
                static TEMPLATE_NAME: LazyLock<Option<Regex>> =
                    LazyLock::new(|| Regex::new(r"^[a-z0-9]+(-[a-z0-9]+)*-v[0-9]+$").ok());
                let ok = TEMPLATE_NAME.as_ref().is_some_and(|re| re.is_match(name));
                v.check(
                    ok,
                    format!("{path}.template"),
                    format!("must be a template name such as `process-topk-v1`, got {name:?}"),
                );
            }
            Self::Inline { config } => {
                v.check(
                    !config.trim().is_empty(),
                    format!("{path}.config"),
                    "must not be empty",
                );
            }
        }
    }
}

/// How a [`PipelineRef`] is written: `{template, parameters}` or `{config}`.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PipelineRefDoc {
    /// A catalog template name, e.g. `process-topk-v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    template: Option<String>,
    /// Parameters of the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parameters: Option<serde_json::Map<String, serde_json::Value>>,
    /// A complete collector config as YAML, instead of a template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    config: Option<String>,
}

impl TryFrom<PipelineRefDoc> for PipelineRef {
    type Error = String;

    fn try_from(doc: PipelineRefDoc) -> Result<Self, String> {
        match (doc.template, doc.parameters, doc.config) {
            (Some(name), parameters, None) => Ok(Self::Template {
                name,
                parameters: parameters.unwrap_or_default(),
            }),
            (None, None, Some(config)) => Ok(Self::Inline { config }),
            (None, Some(_), _) => Err("`parameters` needs a `template`".to_owned()),
            (Some(_), _, Some(_)) => Err("set either `template` or `config`, not both".to_owned()),
            (None, None, None) => Err("set `template` (with `parameters`) or `config`".to_owned()),
        }
    }
}

impl From<PipelineRef> for PipelineRefDoc {
    fn from(pipeline: PipelineRef) -> Self {
        match pipeline {
            PipelineRef::Template { name, parameters } => Self {
                template: Some(name),
                parameters: (!parameters.is_empty()).then_some(parameters),
                config: None,
            },
            PipelineRef::Inline { config } => Self {
                template: None,
                parameters: None,
                config: Some(config),
            },
        }
    }
}

/// Where the variants run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Target {
    /// In-process: the simulator feeds the pipeline emulator.
    #[default]
    Local,
    /// On a Kubernetes cluster: one collector DaemonSet per variant.
    Kubernetes {
        /// The namespace the variants are deployed to.
        namespace: String,
        /// Labels that select the nodes to run on; all nodes when empty.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        node_selector: BTreeMap<String, String>,
    },
}

impl Target {
    fn validate(&self, v: &mut Violations) {
        if let Self::Kubernetes {
            namespace,
            node_selector,
        } = self
        {
            validate_dns_label(v, namespace, "spec.target.namespace", 1);
            for key in node_selector.keys() {
                v.check(
                    !key.is_empty() && key.len() <= 317,
                    format!("spec.target.nodeSelector[{key:?}]"),
                    "must be a label key of 1-317 characters",
                );
            }
        }
    }
}

/// A simulator profile preset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProfilePreset {
    /// About 100–200 processes of a typical server; low churn.
    #[default]
    Realistic,
    /// 1,000–2,000 mostly idle processes with unique command lines.
    HighCardinality,
    /// 20–30 short-lived processes started per second over a realistic base.
    HighChurn,
    /// Crashes, restarts with new pids, CPU spikes, memory leaks, fork bursts.
    Chaos,
}

impl ProfilePreset {
    /// Every preset.
    pub const ALL: [Self; 4] = [
        Self::Realistic,
        Self::HighCardinality,
        Self::HighChurn,
        Self::Chaos,
    ];

    /// The preset's name as written in specs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Realistic => "realistic",
            Self::HighCardinality => "high-cardinality",
            Self::HighChurn => "high-churn",
            Self::Chaos => "chaos",
        }
    }
}

impl fmt::Display for ProfilePreset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the process workload comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkloadSource {
    /// A simulator preset, optionally with its process count overridden.
    Profile {
        /// The preset.
        preset: ProfilePreset,
        /// Process count instead of the preset's own.
        processes: Option<u32>,
    },
    /// A custom simulator profile, checked by the simulator.
    Custom {
        /// The profile document.
        definition: serde_json::Value,
    },
    /// A recording: OTLP JSON lines as the collector's `file` exporter writes them.
    Recording {
        /// Path of the recording file.
        path: String,
    },
}

impl Default for WorkloadSource {
    fn default() -> Self {
        Self::Profile {
            preset: ProfilePreset::default(),
            processes: None,
        }
    }
}

/// The process workload of a run.
///
/// Written as exactly one of `profile` (with optional `processes`), `custom` or `recording`,
/// plus `seed`; e.g. `{profile: high-churn, processes: 300, seed: 7}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "WorkloadDoc", into = "WorkloadDoc")]
#[schemars(with = "WorkloadDoc")]
pub struct Workload {
    /// Where processes come from.
    pub source: WorkloadSource,
    /// Seed of the simulator; the same seed gives the same workload.
    pub seed: u64,
}

impl Workload {
    fn validate(&self, v: &mut Violations) {
        match &self.source {
            WorkloadSource::Profile {
                processes: Some(n), ..
            } => v.check(
                (1..=MAX_PROCESSES).contains(n),
                "spec.workload.processes",
                format!("must be within 1..={MAX_PROCESSES}, got {n}"),
            ),
            WorkloadSource::Profile {
                processes: None, ..
            } => {}
            WorkloadSource::Custom { definition } => v.check(
                definition.is_object(),
                "spec.workload.custom",
                "must be a profile document (a mapping)",
            ),
            WorkloadSource::Recording { path } => {
                v.check(
                    !path.trim().is_empty(),
                    "spec.workload.recording",
                    "must not be empty",
                );
            }
        }
    }
}

/// How a [`Workload`] is written.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WorkloadDoc {
    /// A simulator preset; `realistic` when no source is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    profile: Option<ProfilePreset>,
    /// Process count instead of the preset's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    processes: Option<u32>,
    /// A custom simulator profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    custom: Option<serde_json::Value>,
    /// Path of an OTLP JSON recording.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recording: Option<String>,
    /// Seed of the simulator. Default 0.
    #[serde(default)]
    seed: u64,
}

impl TryFrom<WorkloadDoc> for Workload {
    type Error = String;

    fn try_from(doc: WorkloadDoc) -> Result<Self, String> {
        let source = match (doc.profile, doc.processes, doc.custom, doc.recording) {
            (preset, processes, None, None) => WorkloadSource::Profile {
                preset: preset.unwrap_or_default(),
                processes,
            },
            (None, None, Some(definition), None) => WorkloadSource::Custom { definition },
            (None, None, None, Some(path)) => WorkloadSource::Recording { path },
            _ => {
                return Err(
                    "set only one of `profile` (with `processes`), `custom` or `recording`"
                        .to_owned(),
                );
            }
        };
        Ok(Self {
            source,
            seed: doc.seed,
        })
    }
}

impl From<Workload> for WorkloadDoc {
    fn from(workload: Workload) -> Self {
        let mut doc = Self {
            profile: None,
            processes: None,
            custom: None,
            recording: None,
            seed: workload.seed,
        };
        match workload.source {
            WorkloadSource::Profile { preset, processes } => {
                doc.profile = Some(preset);
                doc.processes = processes;
            }
            WorkloadSource::Custom { definition } => doc.custom = Some(definition),
            WorkloadSource::Recording { path } => doc.recording = Some(path),
        }
        doc
    }
}

/// A process that must stay fully visible: a regex on `process.executable.name`, and
/// optionally one on `process.executable.path`.
///
/// Patterns are unanchored, as in OTTL's `IsMatch`: write `^postgres$` for an exact name. A
/// bare string is shorthand for `{name: <pattern>}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CriticalProcess {
    /// Regex matched against `process.executable.name`.
    pub name: String,
    /// Regex matched against `process.executable.path`, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl CriticalProcess {
    /// A matcher on the executable name only.
    pub fn name(pattern: impl Into<String>) -> Self {
        Self {
            name: pattern.into(),
            path: None,
        }
    }
}

impl<'de> Deserialize<'de> for CriticalProcess {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        struct Full {
            name: String,
            #[serde(default)]
            path: Option<String>,
        }

        struct Visitor;

        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = CriticalProcess;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a name pattern, or a mapping with `name` and optional `path`")
            }

            fn visit_str<E: serde::de::Error>(self, pattern: &str) -> Result<Self::Value, E> {
                Ok(CriticalProcess::name(pattern))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                let full = Full::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(CriticalProcess {
                    name: full.name,
                    path: full.path,
                })
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

/// Compiled critical-process patterns.
#[derive(Debug, Clone, Default)]
pub struct CriticalMatcher {
    patterns: Vec<(Regex, Option<Regex>)>,
}

impl CriticalMatcher {
    /// Compiles `processes`; every invalid pattern is reported.
    pub fn new(processes: &[CriticalProcess]) -> Result<Self, ValidationErrors> {
        let mut v = Violations::default();
        let matcher = Self::compile(processes, &mut v);
        v.finish().map(|()| matcher)
    }

    /// Compiles the patterns that are valid and records a violation for each one that is not.
    fn compile(processes: &[CriticalProcess], v: &mut Violations) -> Self {
        let mut compile = |pattern: &str, path: String| {
            Regex::new(pattern)
                .map_err(|e| v.add(path, format!("invalid regex: {e}")))
                .ok()
        };
        let mut patterns = Vec::with_capacity(processes.len());
        for (i, process) in processes.iter().enumerate() {
            let name = compile(&process.name, format!("spec.criticalProcesses[{i}].name"));
            let path = match &process.path {
                Some(p) => compile(p, format!("spec.criticalProcesses[{i}].path")).map(Some),
                None => Some(None),
            };
            if let (Some(name), Some(path)) = (name, path) {
                patterns.push((name, path));
            }
        }
        Self { patterns }
    }

    /// Whether no process is critical.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether a process with these resource attributes is critical.
    pub fn is_critical(&self, resource: &Attributes) -> bool {
        let Some(name) = resource.get_str(ResourceAttribute::ExecutableName) else {
            return false;
        };
        let path = resource.get_str(ResourceAttribute::ExecutablePath);
        self.patterns.iter().any(|(name_re, path_re)| {
            name_re.is_match(name)
                && path_re
                    .as_ref()
                    .is_none_or(|re| path.is_some_and(|p| re.is_match(p)))
        })
    }
}

/// What the candidate must achieve to be promoted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SuccessCriteria {
    /// Least fraction by which distinct series must fall, 0..=1. Default 0.1.
    pub min_cardinality_reduction: f64,
    /// Largest tolerated fraction of critical-process observations missing from the
    /// candidate's output, 0..=1. Default 0: every critical process stays fully visible.
    pub max_critical_process_loss: f64,
    /// Least fraction by which the monthly cost must fall, 0..=1. Default 0.
    pub min_cost_reduction: f64,
    /// Largest tolerated collector CPU increase over the baseline, as a fraction (0.2 = 20%).
    /// Checked only where the executor measures CPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_cpu_overhead: Option<f64>,
    /// Largest tolerated collector memory increase over the baseline, as a fraction.
    /// Checked only where the executor measures memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_memory_overhead: Option<f64>,
}

impl Default for SuccessCriteria {
    fn default() -> Self {
        Self {
            min_cardinality_reduction: 0.1,
            max_critical_process_loss: 0.0,
            min_cost_reduction: 0.0,
            max_cpu_overhead: None,
            max_memory_overhead: None,
        }
    }
}

impl SuccessCriteria {
    fn validate(&self, v: &mut Violations) {
        let p = "spec.successCriteria";
        v.fraction(
            self.min_cardinality_reduction,
            format!("{p}.minCardinalityReduction"),
        );
        v.fraction(
            self.max_critical_process_loss,
            format!("{p}.maxCriticalProcessLoss"),
        );
        v.fraction(self.min_cost_reduction, format!("{p}.minCostReduction"));
        if let Some(cpu) = self.max_cpu_overhead {
            v.non_negative(cpu, format!("{p}.maxCpuOverhead"));
        }
        if let Some(memory) = self.max_memory_overhead {
            v.non_negative(memory, format!("{p}.maxMemoryOverhead"));
        }
    }
}
