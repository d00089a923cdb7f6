//! Building blocks of the templates: the shared skeleton and the processors each strategy adds.

use std::collections::BTreeMap;

use phoenix_core::experiment::CriticalProcess;

use super::params::{AggregationKey, Common, ProcessClass};
use super::pattern::{any_of, ottl_string};
use crate::config::{
    AttributeAction, BatchProcessor, ComponentId, Config, ContextStatements,
    CumulativeToDeltaProcessor, DebugExporter, DeltaMatch, Enabled, ErrorMode, Exporter,
    FilterMetrics, FilterProcessor, GoDuration, GroupByAttrsProcessor, HostMetricsReceiver,
    HostMetricsScrapers, InitialValue, MatchType, MemoryLimiterProcessor, OtlpHttpExporter,
    OttlContext, Pipeline, PipelineId, ProcessResourceAttribute, ProcessScraper,
    ProcessScraperMetric, Processor, PrometheusExporter, Receiver, ResourceProcessor, Service,
    StatementGroup, Telemetry, TelemetryMetrics, Toggle, TransformProcessor, Verbosity,
};
use crate::error::Result;

/// `resource.attributes["process.executable.name"]`.
pub const NAME_PATH: &str = r#"resource.attributes["process.executable.name"]"#;
/// `resource.attributes["process.executable.path"]`.
pub const EXE_PATH: &str = r#"resource.attributes["process.executable.path"]"#;
/// The resource attribute that marks an active process between two processors; it never
/// reaches an exporter.
pub const ACTIVE_KEY: &str = "phoenix.active";
/// The resource attribute holding a process's class when aggregating by class.
pub const CLASS_KEY: &str = "phoenix.process.class";
/// The resource attribute with the experiment id.
pub const EXPERIMENT_KEY: &str = "phoenix.experiment.id";
/// The resource attribute with the variant.
pub const VARIANT_KEY: &str = "phoenix.variant";

/// Monotonic cumulative process counters: converted to deltas per process before summing.
pub const MONOTONIC_METRICS: [ProcessScraperMetric; 5] = [
    ProcessScraperMetric::CpuTime,
    ProcessScraperMetric::DiskIo,
    ProcessScraperMetric::DiskOperations,
    ProcessScraperMetric::ContextSwitches,
    ProcessScraperMetric::PagingFaults,
];

/// The per-instance identity removed before aggregating: every process resource attribute
/// except the executable name.
pub const INSTANCE_IDENTITY: [ProcessResourceAttribute; 7] = [
    ProcessResourceAttribute::Pid,
    ProcessResourceAttribute::ParentPid,
    ProcessResourceAttribute::Command,
    ProcessResourceAttribute::CommandLine,
    ProcessResourceAttribute::ExecutablePath,
    ProcessResourceAttribute::Owner,
    ProcessResourceAttribute::Cgroup,
];

fn active_path() -> String {
    format!("resource.attributes[{}]", ottl_string(ACTIVE_KEY))
}

/// An OTTL condition, kept with whether it needs parentheses under `not`.
#[derive(Debug, Clone)]
pub struct Clause {
    text: String,
    compound: bool,
}

impl Clause {
    /// The condition text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// `not <clause>`.
    pub fn negated(&self) -> String {
        if self.compound {
            format!("not ({})", self.text)
        } else {
            format!("not {}", self.text)
        }
    }
}

/// Conditions that together match `processes` (any clause true = the process matches).
/// Name-only patterns are merged into one `IsMatch`; a pattern with a path becomes
/// `IsMatch(name) and IsMatch(path)`.
pub fn match_clauses(processes: &[CriticalProcess]) -> Vec<Clause> {
    let names: Vec<&str> = processes
        .iter()
        .filter(|p| p.path.is_none())
        .map(|p| p.name.as_str())
        .collect();
    let mut clauses = Vec::new();
    if !names.is_empty() {
        clauses.push(Clause {
            text: format!("IsMatch({NAME_PATH}, {})", ottl_string(&any_of(&names))),
            compound: false,
        });
    }
    for process in processes {
        if let Some(path) = &process.path {
            clauses.push(Clause {
                text: format!(
                    "IsMatch({NAME_PATH}, {}) and IsMatch({EXE_PATH}, {})",
                    ottl_string(&process.name),
                    ottl_string(path)
                ),
                compound: true,
            });
        }
    }
    clauses
}

/// The activity marks: one statement per threshold.
fn mark_statements(cpu: Option<f64>, memory: Option<u64>) -> Vec<StatementGroup> {
    let active = active_path();
    let mut out = Vec::new();
    if let Some(cpu) = cpu {
        out.push(StatementGroup::Flat(format!(
            "set({active}, true) where metric.name == \"process.cpu.utilization\" and datapoint.value_double > {}",
            float_literal(cpu)
        )));
    }
    if let Some(memory) = memory {
        out.push(StatementGroup::Flat(format!(
            "set({active}, true) where metric.name == \"process.memory.usage\" and datapoint.value_int > {memory}"
        )));
    }
    out
}

/// A float as an OTTL literal (always with a decimal point).
fn float_literal(value: f64) -> String {
    let text = format!("{value}");
    if text.contains('.') || text.contains('e') {
        text
    } else {
        format!("{text}.0")
    }
}

/// Ids of the components the templates use.
pub mod ids {
    use crate::config::{ComponentId, ComponentKind};

    /// `hostmetrics`.
    pub fn hostmetrics() -> ComponentId {
        ComponentId::new(ComponentKind::HostMetrics)
    }
    /// `memory_limiter`.
    pub fn memory_limiter() -> ComponentId {
        ComponentId::new(ComponentKind::MemoryLimiter)
    }
    /// `resource/phoenix`.
    pub fn resource() -> ComponentId {
        ComponentId::named(ComponentKind::Resource, "phoenix")
    }
    /// `batch`.
    pub fn batch() -> ComponentId {
        ComponentId::new(ComponentKind::Batch)
    }
    /// `filter/<name>`.
    pub fn filter(name: &str) -> ComponentId {
        ComponentId::named(ComponentKind::Filter, name)
    }
    /// `transform/<name>`.
    pub fn transform(name: &str) -> ComponentId {
        ComponentId::named(ComponentKind::Transform, name)
    }
    /// `cumulativetodelta/monotonic`.
    pub fn to_delta() -> ComponentId {
        ComponentId::named(ComponentKind::CumulativeToDelta, "monotonic")
    }
    /// `groupbyattrs/compact`.
    pub fn compact() -> ComponentId {
        ComponentId::named(ComponentKind::GroupByAttrs, "compact")
    }
    /// `otlphttp`.
    pub fn otlphttp() -> ComponentId {
        ComponentId::new(ComponentKind::OtlpHttp)
    }
    /// `prometheus`.
    pub fn prometheus() -> ComponentId {
        ComponentId::new(ComponentKind::Prometheus)
    }
    /// `debug`.
    pub fn debug() -> ComponentId {
        ComponentId::new(ComponentKind::Debug)
    }
}

/// A config under construction: the skeleton plus the strategy's processors and pipelines.
pub struct Builder {
    config: Config,
    exporters: Vec<ComponentId>,
}

impl Builder {
    /// The shared skeleton: `hostmetrics` with the process scraper, `memory_limiter`,
    /// `resource/phoenix`, `batch`, the exporters and the internal telemetry port.
    /// `extra_metrics` are switched on in the scraper because the strategy needs them.
    pub fn skeleton(common: &Common<'_>, extra_metrics: &[ProcessScraperMetric]) -> Result<Self> {
        let mut metrics = BTreeMap::new();
        for (name, on) in common.metrics {
            if let Some(metric) = ProcessScraperMetric::from_name(name)
                && metric.enabled_by_default() != *on
            {
                metrics.insert(metric, if *on { Toggle::ON } else { Toggle::OFF });
            }
        }
        for metric in extra_metrics {
            if !metric.enabled_by_default() {
                metrics.insert(*metric, Toggle::ON);
            }
        }
        let scraper = ProcessScraper {
            mute_process_name_error: true,
            mute_process_exe_error: true,
            mute_process_io_error: true,
            mute_process_user_error: true,
            metrics,
            ..ProcessScraper::default()
        };
        let receiver = HostMetricsReceiver {
            collection_interval: Some(common.interval()?),
            root_path: common.root_path.map(str::to_owned),
            scrapers: HostMetricsScrapers {
                process: Some(scraper),
                ..HostMetricsScrapers::default()
            },
            ..HostMetricsReceiver::default()
        };
        let mut config = Config::default();
        config
            .receivers
            .insert(ids::hostmetrics(), Receiver::HostMetrics(receiver));
        config.processors.insert(
            ids::memory_limiter(),
            Processor::MemoryLimiter(MemoryLimiterProcessor {
                check_interval: Some(GoDuration::from_secs(1)),
                limit_percentage: Some(common.memory_limit_percentage),
                spike_limit_percentage: Some(common.memory_spike_limit_percentage),
                ..MemoryLimiterProcessor::default()
            }),
        );
        config.processors.insert(
            ids::resource(),
            Processor::Resource(ResourceProcessor {
                attributes: vec![
                    AttributeAction::upsert(EXPERIMENT_KEY, common.experiment_id),
                    AttributeAction::upsert(VARIANT_KEY, common.variant.as_str()),
                ],
            }),
        );
        config
            .processors
            .insert(ids::batch(), Processor::Batch(BatchProcessor::default()));
        let mut exporters = Vec::new();
        if let Some(endpoint) = common.otlp_endpoint {
            config.exporters.insert(
                ids::otlphttp(),
                Exporter::OtlpHttp(OtlpHttpExporter {
                    endpoint: Some(endpoint.to_owned()),
                    headers: common.otlp_headers.clone(),
                    ..OtlpHttpExporter::default()
                }),
            );
            exporters.push(ids::otlphttp());
        }
        if common.prometheus {
            config.exporters.insert(
                ids::prometheus(),
                Exporter::Prometheus(PrometheusExporter {
                    endpoint: Some(format!("0.0.0.0:{}", common.prometheus_port())),
                    resource_to_telemetry_conversion: Some(Enabled { enabled: true }),
                    ..PrometheusExporter::default()
                }),
            );
            exporters.push(ids::prometheus());
        }
        if common.debug {
            config.exporters.insert(
                ids::debug(),
                Exporter::Debug(DebugExporter {
                    verbosity: Some(Verbosity::Basic),
                    ..DebugExporter::default()
                }),
            );
            exporters.push(ids::debug());
        }
        config.service = Service {
            extensions: Vec::new(),
            pipelines: BTreeMap::new(),
            telemetry: Some(Telemetry {
                metrics: Some(TelemetryMetrics::prometheus(
                    "0.0.0.0",
                    common.telemetry_port(),
                )),
                logs: None,
            }),
        };
        Ok(Self { config, exporters })
    }

    /// Adds a processor definition.
    pub fn processor(&mut self, id: ComponentId, processor: Processor) -> ComponentId {
        self.config.processors.insert(id.clone(), processor);
        id
    }

    /// Adds a pipeline `hostmetrics → memory_limiter → middle… → resource/phoenix → batch →
    /// every exporter`.
    pub fn pipeline(&mut self, id: PipelineId, middle: Vec<ComponentId>) {
        let mut processors = vec![ids::memory_limiter()];
        processors.extend(middle);
        processors.push(ids::resource());
        processors.push(ids::batch());
        self.config.service.pipelines.insert(
            id,
            Pipeline {
                receivers: vec![ids::hostmetrics()],
                processors,
                exporters: self.exporters.clone(),
            },
        );
    }

    /// The finished config.
    pub fn finish(self) -> Config {
        self.config
    }

    /// `filter/<name>` dropping every data point for which one of `conditions` holds.
    pub fn drop_filter(&mut self, name: &str, conditions: Vec<String>) -> ComponentId {
        self.processor(
            ids::filter(name),
            Processor::Filter(FilterProcessor {
                error_mode: Some(ErrorMode::Ignore),
                metrics: FilterMetrics {
                    datapoint: conditions,
                    ..FilterMetrics::default()
                },
                metric_conditions: Vec::new(),
            }),
        )
    }

    /// `transform/<name>` with flat statements.
    pub fn transform(&mut self, name: &str, statements: Vec<StatementGroup>) -> ComponentId {
        self.processor(
            ids::transform(name),
            Processor::Transform(TransformProcessor {
                error_mode: Some(ErrorMode::Ignore),
                metric_statements: statements,
            }),
        )
    }

    /// `transform/mark-active`: sets `phoenix.active` on processes above a threshold.
    pub fn mark_active(&mut self, cpu: Option<f64>, memory: Option<u64>) -> ComponentId {
        self.transform("mark-active", mark_statements(cpu, memory))
    }

    /// `transform/unmark`: removes `phoenix.active` again.
    pub fn unmark(&mut self) -> ComponentId {
        self.transform(
            "unmark",
            vec![StatementGroup::Flat(format!(
                "delete_key(resource.attributes, {})",
                ottl_string(ACTIVE_KEY)
            ))],
        )
    }

    /// The aggregation chain for processes that are not kept at full fidelity:
    /// `cumulativetodelta/monotonic → transform/strip-identity → transform/align-time →
    /// groupbyattrs/compact → transform/aggregate`.
    pub fn aggregation(
        &mut self,
        interval: GoDuration,
        key: AggregationKey,
        classes: &[ProcessClass],
        other_class: &str,
    ) -> Vec<ComponentId> {
        let staleness =
            GoDuration((interval.as_duration() * 3).max(std::time::Duration::from_secs(300)));
        let to_delta = self.processor(
            ids::to_delta(),
            Processor::CumulativeToDelta(CumulativeToDeltaProcessor {
                include: Some(DeltaMatch {
                    metrics: MONOTONIC_METRICS
                        .iter()
                        .map(|m| m.as_str().to_owned())
                        .collect(),
                    match_type: Some(MatchType::Strict),
                    metric_types: Vec::new(),
                }),
                exclude: None,
                max_staleness: Some(staleness),
                initial_value: Some(InitialValue::Keep),
            }),
        );
        let mut strip: Vec<StatementGroup> = INSTANCE_IDENTITY
            .iter()
            .map(|attr| {
                StatementGroup::Flat(format!(
                    "delete_key(resource.attributes, {})",
                    ottl_string(attr.as_str())
                ))
            })
            .collect();
        if key == AggregationKey::Class {
            let class_path = format!("resource.attributes[{}]", ottl_string(CLASS_KEY));
            for class in classes {
                strip.push(StatementGroup::Flat(format!(
                    "set({class_path}, {}) where {class_path} == nil and IsMatch({NAME_PATH}, {})",
                    ottl_string(&class.class),
                    ottl_string(&class.pattern)
                )));
            }
            strip.push(StatementGroup::Flat(format!(
                "set({class_path}, {}) where {class_path} == nil",
                ottl_string(other_class)
            )));
            strip.push(StatementGroup::Flat(format!(
                "delete_key(resource.attributes, {})",
                ottl_string(ProcessResourceAttribute::ExecutableName.as_str())
            )));
        }
        let strip = self.transform("strip-identity", strip);
        // The process scraper stamps every process with its own read time, and
        // aggregate_on_attributes only merges points with equal timestamps (and, for deltas,
        // equal start times): align both to the collection interval first.
        let step = ottl_string(&interval.to_string());
        let align = self.transform(
            "align-time",
            vec![
                StatementGroup::Flat(format!(
                    "set(datapoint.time, TruncateTime(datapoint.time, Duration({step})))"
                )),
                StatementGroup::Flat(format!(
                    "set(datapoint.start_time, TruncateTime(datapoint.start_time, Duration({step}))) where datapoint.start_time_unix_nano > 0"
                )),
            ],
        );
        let compact = self.processor(
            ids::compact(),
            Processor::GroupByAttrs(GroupByAttrsProcessor { keys: Vec::new() }),
        );
        let aggregate = self.transform(
            "aggregate",
            vec![StatementGroup::Grouped(ContextStatements {
                context: Some(OttlContext::Metric),
                conditions: Vec::new(),
                statements: vec!["aggregate_on_attributes(\"sum\")".to_owned()],
                error_mode: None,
            })],
        );
        vec![to_delta, strip, align, compact, aggregate]
    }
}

/// `<active> == nil`.
pub fn inactive_condition() -> String {
    format!("{} == nil", active_path())
}

/// `<active> != nil`.
pub fn active_condition() -> String {
    format!("{} != nil", active_path())
}

/// Keeps only what matches one of `keep` (a single drop condition: `not a and not b ...`,
/// optionally with an extra conjunct); `None` when `keep` is empty and there is no extra.
pub fn drop_unless(keep: &[Clause], extra: Option<String>) -> Option<String> {
    let mut parts: Vec<String> = extra.into_iter().collect();
    parts.extend(keep.iter().map(Clause::negated));
    if parts.is_empty() {
        None
    } else {
        Some(parts.join(" and "))
    }
}
