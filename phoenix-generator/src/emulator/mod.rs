//! The pipeline emulator: runs a collector [`Config`] over snapshots and returns what each
//! exporter would receive.
//!
//! [`Emulator::new`] compiles every component of the config's metrics pipelines (OTTL parsed,
//! regexes compiled, paths resolved) and refuses anything it cannot execute faithfully with
//! [`Error::Unsupported`] naming the component and the construct. [`Emulator::process`] feeds
//! one scrape to every receiver, runs each pipeline's processors in order (each pipeline has
//! its own processor instances, as in the collector, so `cumulativetodelta` keeps state per
//! pipeline), fans data out to several pipelines and exporters (each gets its own copy) and
//! through `forward` connectors, and counts per exporter: data points, series and encoded
//! OTLP bytes ([`phoenix_core::otlp::encoded_len`], without encoding).
//!
//! Pipelines read the scrape where it is and copy only what they keep: a leading filter
//! copies what survives it, and a pipeline that reduces its input (resource-level filters,
//! `cumulativetodelta`, edits of resource keys and point times, then `groupbyattrs` and
//! `aggregate_on_attributes`) runs those stages as one pass, planned once per process, that
//! builds only the aggregated points (and, when only a relabelling follows, only those of the
//! resources kept). A pipeline that only edits resource attributes or drops whole resources
//! (the baseline, the templates' critical pipelines) counts what it exports from the input
//! where it is, copying only what is kept. [`Emulator::keep_data_of`] and
//! [`Emulator::keep_resources_where`] limit which exporters' data, and which resources of it,
//! is kept.
//!
//! Supported components and their semantics, with sources, are listed in `docs/emulator.md`.
//!
//! ```
//! use phoenix_generator::config::Config;
//! use phoenix_generator::emulator::Emulator;
//! use phoenix_core::telemetry::{AnyValue, DataPoint, Metric, ProcessMetric, Resource, ScopeMetrics, Snapshot, Timestamp};
//!
//! let config = Config::from_yaml(r#"
//! receivers:
//!   otlp:
//!     protocols:
//!       grpc: {}
//! processors:
//!   filter/drop-idle:
//!     metrics:
//!       datapoint:
//!         - 'metric.name == "process.memory.usage" and datapoint.value_int < 1000'
//! exporters:
//!   debug: {}
//! service:
//!   pipelines:
//!     metrics:
//!       receivers: [otlp]
//!       processors: [filter/drop-idle]
//!       exporters: [debug]
//! "#)?;
//! let mut emulator = Emulator::new(&config)?;
//!
//! let process = |pid: i64, rss: i64| {
//!     let mut m = Metric::process(ProcessMetric::MemoryUsage);
//!     m.data.points_mut().push(DataPoint::new(Timestamp::from_secs(1), Timestamp::from_secs(10), rss));
//!     Resource {
//!         scopes: vec![ScopeMetrics { metrics: vec![m], ..ScopeMetrics::default() }],
//!         ..Resource::new([("process.pid", AnyValue::Int(pid))].into_iter().collect())
//!     }
//! };
//! let output = emulator.process(&Snapshot::new(vec![process(1, 500), process(2, 5000)]))?;
//! let debug = output.exporters.values().next().unwrap();
//! assert_eq!(debug.data_points, 1);
//! assert_eq!(debug.series.len(), 1);
//! # Ok::<(), phoenix_generator::Error>(())
//! ```

mod delta;
mod relabel;
mod resource_memo;
mod rollup;
mod safety;
mod stage;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use phoenix_core::telemetry::{
    Attributes, MetricName, ProcessMetric, Resource, SeriesKey, Snapshot, Timestamp,
};
use regex::Regex;

use relabel::{Exported, Relabel};
use rollup::Rollup;
pub(crate) use safety::point_key;
pub use safety::{critical_safety, critical_safety_with_names, probe_workload};
use stage::Stage;

use crate::config::{
    ComponentId, ComponentKind, Config, HostMetricsReceiver, MatchType, PipelineId,
    ProcessResourceAttribute, ProcessScraperMetric, Receiver, Signal,
};
use crate::{Error, Result};

/// A set of series keys. The keys are hashes already: the set takes their low 64 bits as
/// they are instead of hashing them again.
pub type SeriesSet = HashSet<SeriesKey, BuildHasherDefault<SeriesKeyHasher>>;

/// The [`Hasher`] of [`SeriesSet`]: a 128-bit key's low 64 bits, as they are (other input is
/// mixed in byte by byte).
#[derive(Debug, Clone, Copy, Default)]
pub struct SeriesKeyHasher(u64);

impl Hasher for SeriesKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u128(&mut self, n: u128) {
        // The low half of a 128-bit hash.
        #[allow(clippy::cast_possible_truncation)]
        let low = n as u64;
        self.0 ^= low;
    }
}

/// What one exporter received for one scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExporterOutput {
    /// Data points received.
    pub data_points: usize,
    /// Distinct series among them.
    pub series: SeriesSet,
    /// Encoded OTLP protobuf bytes of the export requests (the sum over requests, one per
    /// pipeline batch reaching the exporter).
    pub bytes: usize,
    /// Export requests received.
    pub requests: usize,
    /// The data itself, every request's resources in arrival order.
    pub snapshot: Snapshot,
}

/// What every exporter received for one scrape, keyed by exporter id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    /// Per exporter (connectors are not listed; what passes through them reaches the
    /// exporters of the pipelines they feed).
    pub exporters: BTreeMap<ComponentId, ExporterOutput>,
}

impl Output {
    fn clear(&mut self) {
        for e in self.exporters.values_mut() {
            e.data_points = 0;
            e.series.clear();
            e.bytes = 0;
            e.requests = 0;
            e.snapshot.resources.clear();
        }
    }
}

/// How a receiver turns the workload into its output.
#[derive(Debug)]
enum Source {
    /// `otlp`: the workload as it is.
    Otlp,
    /// `hostmetrics` with the `process` scraper.
    Process(ProcessFilter),
}

#[derive(Debug)]
struct ProcessFilter {
    include: Option<NameSet>,
    exclude: Option<NameSet>,
    /// Disabled scraper metrics of the schema, by `ProcessMetric` position.
    disabled_schema: [bool; ProcessMetric::ALL.len()],
    /// Disabled scraper metrics outside the schema, by name.
    disabled_other: Vec<&'static str>,
    disabled_attributes: Vec<&'static str>,
}

#[derive(Debug)]
enum NameSet {
    Strict(Vec<String>),
    Regexp(Vec<Regex>),
}

impl NameSet {
    fn matches(&self, name: &str) -> bool {
        match self {
            Self::Strict(names) => names.iter().any(|n| n == name),
            Self::Regexp(res) => res.iter().any(|r| r.is_match(name)),
        }
    }
}

impl ProcessFilter {
    fn compile(component: &str, r: &HostMetricsReceiver) -> Result<Self> {
        let s = &r.scrapers;
        let others = [
            ("cpu", s.cpu.is_some()),
            ("disk", s.disk.is_some()),
            ("filesystem", s.filesystem.is_some()),
            ("load", s.load.is_some()),
            ("memory", s.memory.is_some()),
            ("network", s.network.is_some()),
            ("paging", s.paging.is_some()),
            ("processes", s.processes.is_some()),
            ("system", s.system.is_some()),
        ];
        if let Some((name, _)) = others.iter().find(|(_, on)| *on) {
            return Err(Error::Unsupported {
                component: component.to_owned(),
                construct: format!("scraper `{name}` (workloads hold process metrics only)"),
            });
        }
        let Some(p) = &s.process else {
            return Err(Error::Unsupported {
                component: component.to_owned(),
                construct: "a hostmetrics receiver without the `process` scraper".to_owned(),
            });
        };
        let names = |path: &str, m: &crate::config::ProcessMatch| -> Result<NameSet> {
            Ok(match m.match_type {
                MatchType::Strict => NameSet::Strict(m.names.clone()),
                MatchType::Regexp => NameSet::Regexp(
                    m.names
                        .iter()
                        .map(|n| {
                            crate::ottl::regex::compile(n).map_err(|e| Error::Config {
                                path: format!("{component}.scrapers.process.{path}.names"),
                                message: format!("invalid regexp \"{n}\": {e}"),
                            })
                        })
                        .collect::<Result<_>>()?,
                ),
            })
        };
        Ok(Self {
            include: p
                .include
                .as_ref()
                .map(|m| names("include", m))
                .transpose()?,
            exclude: p
                .exclude
                .as_ref()
                .map(|m| names("exclude", m))
                .transpose()?,
            disabled_schema: ProcessMetric::ALL
                .map(|m| !p.metric_enabled(ProcessScraperMetric::from_schema(m))),
            disabled_other: ProcessScraperMetric::ALL
                .iter()
                .filter(|m| m.schema_metric().is_none() && !p.metric_enabled(**m))
                .map(|m| m.as_str())
                .collect(),
            disabled_attributes: ProcessResourceAttribute::ALL
                .iter()
                .filter(|a| !p.resource_attribute_enabled(**a))
                .map(|a| a.as_str())
                .collect(),
        })
    }

    /// Whether [`ProcessFilter::apply`] would leave `data` as it is: every process passes
    /// include/exclude and has neither disabled metrics nor disabled resource attributes.
    fn keeps_all(&self, data: &Snapshot) -> bool {
        data.resources.iter().all(|r| self.keeps_as_is(r))
    }

    /// Whether [`ProcessFilter::apply`] would leave a snapshot holding only `r` as it is.
    fn keeps_as_is(&self, r: &Resource) -> bool {
        let filters_metrics =
            self.disabled_schema.iter().any(|d| *d) || !self.disabled_other.is_empty();
        let name = || {
            r.attributes
                .get_str("process.executable.name")
                .unwrap_or("")
        };
        self.include.as_ref().is_none_or(|i| i.matches(name()))
            && self.exclude.as_ref().is_none_or(|e| !e.matches(name()))
            && (self.disabled_attributes.is_empty()
                || !r
                    .attributes
                    .iter()
                    .any(|kv| self.disabled_attributes.contains(&kv.key.as_str())))
            && !r.scopes.is_empty()
            && (!filters_metrics
                || (r.scopes.iter().all(|s| !s.metrics.is_empty())
                    && r.metrics().all(|m| match &m.name {
                        MetricName::Process(pm) => !self.disabled_schema[schema_index(*pm)],
                        MetricName::Other(name) => !self.disabled_other.contains(&name.as_str()),
                    })))
    }

    /// The scraper's view of the workload: processes outside include/exclude skipped,
    /// disabled metrics and resource attributes removed.
    fn apply(&self, data: &mut Snapshot) {
        data.resources.retain_mut(|r| {
            let name = r
                .attributes
                .get_str("process.executable.name")
                .unwrap_or("");
            if self.include.as_ref().is_some_and(|i| !i.matches(name))
                || self.exclude.as_ref().is_some_and(|e| e.matches(name))
            {
                return false;
            }
            if !self.disabled_attributes.is_empty() {
                r.attributes
                    .retain(|kv| !self.disabled_attributes.contains(&kv.key.as_str()));
            }
            if self.disabled_schema.iter().any(|d| *d) || !self.disabled_other.is_empty() {
                for s in &mut r.scopes {
                    s.metrics.retain(|m| match &m.name {
                        MetricName::Process(pm) => !self.disabled_schema[schema_index(*pm)],
                        MetricName::Other(name) => !self.disabled_other.contains(&name.as_str()),
                    });
                }
                r.scopes.retain(|s| !s.metrics.is_empty());
            }
            !r.scopes.is_empty()
        });
    }
}

/// The position of `metric` in [`ProcessMetric::ALL`], which lists the metrics in the
/// order they are declared.
fn schema_index(metric: ProcessMetric) -> usize {
    metric as usize
}

#[derive(Debug)]
enum Sink {
    Exporter(ComponentId),
    /// A connector: the pipelines it feeds.
    Connector(Vec<usize>),
}

#[derive(Debug)]
struct PipelineRun {
    stages: Vec<Stage>,
    sinks: Vec<Sink>,
    /// The index of the filter the pipeline starts with (after pass-through stages), if any.
    leading_filter: Option<usize>,
    /// Data points that passed the leading filter last time: in a fan-out, the pipeline
    /// keeping the most takes the batch and the others copy what their filter keeps. This
    /// only saves copies; results do not depend on it.
    appetite: usize,
    /// The pipeline's leading stages run as one pass over borrowed data, when they have the
    /// shape for it.
    rollup: Option<Rollup>,
    /// The whole pipeline runs as a relabelling of resources, when it has the shape for it.
    relabel: Option<Relabel>,
    /// Whether the stages after the rollup relabel resources without filtering them
    /// ([`Relabel::plan`] holds for them, and they hold no filter that drops something): the
    /// rollup then counts what the pipeline exports without building it.
    tail_relabels: bool,
}

/// A receiver with the pipelines it feeds.
#[derive(Debug)]
struct ReceiverRun {
    source: Source,
    fed: Vec<usize>,
    /// The exporters its data reaches, through connectors too.
    reaches: HashSet<ComponentId>,
}

/// A compiled config, ready to run scrapes through.
#[derive(Debug)]
pub struct Emulator {
    receivers: Vec<ReceiverRun>,
    pipelines: Vec<PipelineRun>,
    output: Output,
    /// What goes into the exporters' [`ExporterOutput::snapshot`].
    kept: Kept,
}

/// Which exporters' data is kept, and which resources of it.
#[derive(Default)]
struct Kept {
    /// The exporters whose [`ExporterOutput::snapshot`] is filled; `None` for all.
    exporters: Option<HashSet<ComponentId>>,
    /// The resources kept, by their attributes as exported; `None` for all.
    resources: Option<ResourcePredicate>,
}

/// A test of exported resources' attributes.
type ResourcePredicate = Box<dyn Fn(&Attributes) -> bool + Send + Sync>;

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kept")
            .field("exporters", &self.exporters)
            .field("resources", &self.resources.as_ref().map(|_| "a predicate"))
            .finish()
    }
}

impl Kept {
    fn takes_data(&self, sink: &Sink) -> bool {
        match sink {
            Sink::Exporter(id) => self.exporters.as_ref().is_none_or(|k| k.contains(id)),
            Sink::Connector(_) => true,
        }
    }

    fn keeps_resource(&self, attributes: &Attributes) -> bool {
        self.resources.as_ref().is_none_or(|keep| keep(attributes))
    }
}

fn pipeline_path(id: &PipelineId) -> String {
    format!("service.pipelines.{id}")
}

impl Emulator {
    /// Compiles `config`'s metrics pipelines.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] naming the component and construct the emulator cannot execute;
    /// [`Error::Ottl`] for OTTL that does not parse; [`Error::Config`] for references to
    /// undefined components and invalid regexes.
    pub fn new(config: &Config) -> Result<Self> {
        let metrics: Vec<(&PipelineId, &crate::config::Pipeline)> = config
            .service
            .pipelines
            .iter()
            .filter(|(id, _)| id.signal == Signal::Metrics)
            .collect();
        let index_of = |id: &PipelineId| metrics.iter().position(|(p, _)| *p == id);
        let mut pipelines = Vec::with_capacity(metrics.len());
        for (id, p) in &metrics {
            let mut stages = Vec::new();
            for (i, pid) in p.processors.iter().enumerate() {
                let processor = config.processor(pid).ok_or_else(|| Error::Config {
                    path: format!("{}.processors[{i}]", pipeline_path(id)),
                    message: format!("processor `{pid}` is not defined"),
                })?;
                stages.push(Stage::compile(&format!("processors.{pid}"), processor)?);
            }
            let mut sinks = Vec::new();
            for (i, eid) in p.exporters.iter().enumerate() {
                if eid.kind == ComponentKind::Forward {
                    if config.connector(eid).is_none() {
                        return Err(Error::Config {
                            path: format!("{}.exporters[{i}]", pipeline_path(id)),
                            message: format!("connector `{eid}` is not defined"),
                        });
                    }
                    let fed: Vec<usize> = metrics
                        .iter()
                        .filter(|(_, q)| q.receivers.contains(eid))
                        .filter_map(|(qid, _)| index_of(qid))
                        .collect();
                    sinks.push(Sink::Connector(fed));
                } else if config.exporter(eid).is_some() {
                    sinks.push(Sink::Exporter(eid.clone()));
                } else {
                    return Err(Error::Config {
                        path: format!("{}.exporters[{i}]", pipeline_path(id)),
                        message: format!("exporter `{eid}` is not defined"),
                    });
                }
            }
            let leading_filter = stages
                .iter()
                .position(|s| !matches!(s, Stage::PassThrough))
                .filter(|&i| matches!(stages[i], Stage::Filter(_)));
            pipelines.push(PipelineRun {
                tail_relabels: Rollup::plan(&stages).is_some_and(|r| {
                    let tail = &stages[r.end()..];
                    // The rollup counts the relabelled output; a filter there runs as a stage.
                    Relabel::plan(tail).is_some()
                        && !tail
                            .iter()
                            .any(|s| matches!(s, Stage::Filter(f) if !f.is_noop()))
                }),
                rollup: Rollup::plan(&stages),
                relabel: Relabel::plan(&stages),
                appetite: if leading_filter.is_some() {
                    0
                } else {
                    usize::MAX
                },
                stages,
                sinks,
                leading_filter,
            });
        }
        check_acyclic(&pipelines)?;
        let mut receivers = Vec::new();
        for (rid, receiver) in &config.receivers {
            let fed: Vec<usize> = metrics
                .iter()
                .filter(|(_, p)| p.receivers.contains(rid))
                .filter_map(|(id, _)| index_of(id))
                .collect();
            if fed.is_empty() {
                continue;
            }
            let component = format!("receivers.{rid}");
            let source = match receiver {
                Receiver::Otlp(_) => Source::Otlp,
                Receiver::HostMetrics(h) => Source::Process(ProcessFilter::compile(&component, h)?),
            };
            let reaches = reached_exporters(&pipelines, &fed);
            receivers.push(ReceiverRun {
                source,
                fed,
                reaches,
            });
        }
        for (id, p) in &metrics {
            for (i, rid) in p.receivers.iter().enumerate() {
                if rid.kind != ComponentKind::Forward && config.receiver(rid).is_none() {
                    return Err(Error::Config {
                        path: format!("{}.receivers[{i}]", pipeline_path(id)),
                        message: format!("receiver `{rid}` is not defined"),
                    });
                }
            }
        }
        let mut output = Output::default();
        for p in &pipelines {
            for s in &p.sinks {
                if let Sink::Exporter(e) = s {
                    output.exporters.entry(e.clone()).or_default();
                }
            }
        }
        Ok(Self {
            receivers,
            pipelines,
            output,
            kept: Kept::default(),
        })
    }

    /// Fills [`ExporterOutput::snapshot`] only for these exporters (by default, for every
    /// exporter); the others report their counts with an empty snapshot. Keeping less saves
    /// copying what is exported.
    pub fn keep_data_of(&mut self, exporters: &[ComponentId]) {
        self.kept.exporters = Some(exporters.iter().cloned().collect());
    }

    /// Fills [`ExporterOutput::snapshot`] only with the resources whose attributes, as
    /// exported, satisfy `keep` (by default, with every resource); the counts of data points,
    /// series and bytes are those of everything exported. Keeping less saves copying.
    pub fn keep_resources_where(
        &mut self,
        keep: impl Fn(&Attributes) -> bool + Send + Sync + 'static,
    ) {
        self.kept.resources = Some(Box::new(keep));
    }

    /// Fills [`ExporterOutput::snapshot`] with every resource again, undoing
    /// [`Emulator::keep_resources_where`].
    pub fn keep_all_resources(&mut self) {
        self.kept.resources = None;
    }

    /// Sets the time the emulated collector started, which `cumulativetodelta`'s
    /// `initial_value: auto` compares series start times with. Without it, the time of the
    /// first scrape is used (processes that started before the first scrape are treated as
    /// older than the collector).
    pub fn set_collector_start(&mut self, start: Timestamp) {
        for p in &mut self.pipelines {
            for s in &mut p.stages {
                if let Stage::CumulativeToDelta(d) = s {
                    d.set_start(start);
                }
            }
        }
    }

    /// Runs one scrape through the config and returns what each exporter received.
    ///
    /// Pipelines read `snapshot` where it is and copy only what they change or export.
    ///
    /// # Errors
    ///
    /// None at present: every construct that could fail is refused by [`Emulator::new`].
    pub fn process(&mut self, snapshot: &Snapshot) -> Result<&Output> {
        self.output.clear();
        let mut jobs: Vec<Job<'_>> = Vec::new();
        for ReceiverRun { source, fed, .. } in &self.receivers {
            let view = match source {
                Source::Process(filter) if !filter.keeps_all(snapshot) => {
                    let mut view = snapshot.clone();
                    filter.apply(&mut view);
                    Batch::Owned(view)
                }
                Source::Otlp | Source::Process(_) => Batch::Borrowed(snapshot),
            };
            fan_out(&self.pipelines, fed, view, &mut jobs);
        }
        self.run_jobs(jobs);
        Ok(&self.output)
    }

    /// As [`Emulator::process`], taking the snapshot by value: the pipeline that changes the
    /// most of it takes it instead of a copy.
    ///
    /// # Errors
    ///
    /// As [`Emulator::process`].
    pub fn process_owned(&mut self, snapshot: Snapshot) -> Result<&Output> {
        self.output.clear();
        let mut jobs: Vec<Job<'_>> = Vec::new();
        let receivers = self.receivers.len();
        let mut source = Some(snapshot);
        for (
            i,
            ReceiverRun {
                source: kind, fed, ..
            },
        ) in self.receivers.iter().enumerate()
        {
            let mut view = if i + 1 == receivers {
                source.take().unwrap_or_default()
            } else {
                source.as_ref().cloned().unwrap_or_default()
            };
            if let Source::Process(filter) = kind {
                filter.apply(&mut view);
            }
            fan_out(&self.pipelines, fed, Batch::Owned(view), &mut jobs);
        }
        self.run_jobs(jobs);
        Ok(&self.output)
    }

    fn run_jobs(&mut self, mut jobs: Vec<Job<'_>>) {
        while let Some(job) = jobs.pop() {
            self.run_pipeline(job, &mut jobs);
        }
    }

    /// What each receiver makes of `snapshot`, with the exporters its pipelines reach.
    pub fn receiver_views(&self, snapshot: &Snapshot) -> Vec<(Snapshot, HashSet<ComponentId>)> {
        self.receivers
            .iter()
            .map(|r| {
                let mut view = snapshot.clone();
                if let Source::Process(filter) = &r.source {
                    filter.apply(&mut view);
                }
                (view, r.reaches.clone())
            })
            .collect()
    }

    /// What the receivers whose pipelines reach `exporter` make of `resource`: one resource
    /// per such receiver that keeps (some of) it, borrowed where the receiver leaves it as it
    /// is. The same as [`Emulator::receiver_views`] of a snapshot holding only `resource`,
    /// without copying what is not changed.
    pub fn receiver_views_reaching<'r>(
        &self,
        resource: &'r Resource,
        exporter: &ComponentId,
    ) -> Vec<Cow<'r, Resource>> {
        let mut views = Vec::new();
        for r in self
            .receivers
            .iter()
            .filter(|r| r.reaches.contains(exporter))
        {
            match &r.source {
                Source::Process(filter) if !filter.keeps_as_is(resource) => {
                    let mut view = Snapshot::new(vec![resource.clone()]);
                    filter.apply(&mut view);
                    views.extend(view.resources.into_iter().map(Cow::Owned));
                }
                Source::Otlp | Source::Process(_) => views.push(Cow::Borrowed(resource)),
            }
        }
        views
    }

    fn run_pipeline<'a>(&mut self, job: Job<'a>, jobs: &mut Vec<Job<'a>>) {
        let Self {
            pipelines,
            output,
            kept,
            ..
        } = self;
        let Job {
            pipeline: p,
            data,
            start,
        } = job;
        let pipeline = &mut pipelines[p];
        let leading = pipeline.leading_filter;
        if start == 0
            && let Some(relabel) = &mut pipeline.relabel
        {
            let copy = pipeline.sinks.iter().any(|s| kept.takes_data(s));
            // Connectors take everything; exporters only the resources kept.
            let feeds_connector = pipeline
                .sinks
                .iter()
                .any(|s| matches!(s, Sink::Connector(_)));
            let all = |_: &Attributes| true;
            let keep: &dyn Fn(&Attributes) -> bool = if feeds_connector {
                &all
            } else {
                &|a: &Attributes| kept.keeps_resource(a)
            };
            let input = match &data {
                Batch::Borrowed(input) => Some(*input),
                Batch::Owned(input) if !copy => Some(input),
                Batch::Owned(_) => None,
            };
            if let Some(done) =
                input.and_then(|input| relabel.run(&pipeline.stages, input, copy, keep))
            {
                deliver_exported(pipelines, p, output, kept, done, jobs);
                return;
            }
        }
        // The rollup, when the scrape suits it (`None` otherwise: the stages run one by one).
        let mut rolled = None;
        if start == 0
            && let Some(rollup) = &mut pipeline.rollup
        {
            let end = rollup.end();
            let feeds_connector = pipeline
                .sinks
                .iter()
                .any(|s| matches!(s, Sink::Connector(_)));
            if pipeline.tail_relabels && !feeds_connector {
                let copy = pipeline.sinks.iter().any(|s| kept.takes_data(s));
                let keep = |a: &Attributes| kept.keeps_resource(a);
                if let Some(done) =
                    rollup.run_relabelled(&mut pipeline.stages, data.get(), copy, &keep)
                {
                    deliver_exported(pipelines, p, output, kept, done, jobs);
                    return;
                }
            } else if let Some((out, first_filter_points)) =
                rollup.run(&mut pipeline.stages, data.get())
            {
                if leading.is_some() {
                    pipeline.appetite = first_filter_points;
                }
                rolled = Some((out, end));
            }
        }
        let (mut data, start) = match (rolled, data) {
            (Some(rolled), _) => rolled,
            (None, Batch::Owned(data)) => (data, start),
            (None, Batch::Borrowed(data)) => pipeline.ingest(data),
        };
        if leading.is_some_and(|l| start == l + 1) {
            pipeline.appetite = data.data_point_count();
        }
        for (i, stage) in pipeline.stages.iter_mut().enumerate().skip(start) {
            if data.resources.is_empty() {
                if leading.is_some_and(|l| i <= l) {
                    pipeline.appetite = 0;
                }
                return;
            }
            stage.run(&mut data);
            if leading == Some(i) {
                pipeline.appetite = data.data_point_count();
            }
        }
        if data.resources.is_empty() {
            return;
        }
        // Every exporter of the pipeline receives the same batch: count it once.
        let stats = if pipelines[p]
            .sinks
            .iter()
            .any(|s| matches!(s, Sink::Exporter(_)))
        {
            BatchStats::of(&data)
        } else {
            BatchStats {
                points: 0,
                series: Vec::new(),
                bytes: 0,
            }
        };
        deliver(pipelines, p, output, kept, &stats, Some(data), jobs);
    }
}

/// Hands what a fast path counted for pipeline `p` to its sinks, after recording the points
/// its leading filter kept (see [`PipelineRun::appetite`]).
fn deliver_exported<'a>(
    pipelines: &mut [PipelineRun],
    p: usize,
    output: &mut Output,
    kept: &Kept,
    done: Exported,
    jobs: &mut Vec<Job<'a>>,
) {
    if pipelines[p].leading_filter.is_some() {
        pipelines[p].appetite = done.first_filter_points;
    }
    if done.resources > 0 {
        let stats = BatchStats {
            points: done.points,
            series: done.series,
            bytes: done.bytes,
        };
        deliver(pipelines, p, output, kept, &stats, done.data, jobs);
    }
}

/// Hands what pipeline `p` exports (counted as `stats`; the data itself when some sink
/// takes it) to its sinks: the last sink that takes the data gets it, the ones before it
/// get copies.
fn deliver<'a>(
    pipelines: &[PipelineRun],
    p: usize,
    output: &mut Output,
    kept: &Kept,
    stats: &BatchStats,
    mut data: Option<Snapshot>,
    jobs: &mut Vec<Job<'a>>,
) {
    let sinks = &pipelines[p].sinks;
    let last = sinks.iter().rposition(|s| kept.takes_data(s));
    for (i, sink) in sinks.iter().enumerate() {
        let batch = if !kept.takes_data(sink) {
            None
        } else if Some(i) == last {
            data.take()
        } else {
            data.clone()
        };
        match (sink, batch) {
            (Sink::Exporter(id), batch) => {
                if let Some(out) = output.exporters.get_mut(id) {
                    record(out, batch, stats, kept);
                }
            }
            (Sink::Connector(fed), Some(batch)) => {
                fan_out(pipelines, fed, Batch::Owned(batch), jobs);
            }
            (Sink::Connector(_), None) => {}
        }
    }
}

/// The data a pipeline receives: the caller's snapshot, or a batch of its own.
enum Batch<'a> {
    Borrowed(&'a Snapshot),
    Owned(Snapshot),
}

impl Batch<'_> {
    fn get(&self) -> &Snapshot {
        match self {
            Self::Borrowed(s) => s,
            Self::Owned(s) => s,
        }
    }
}

/// A batch waiting for a pipeline, to run from stage `start` on.
struct Job<'a> {
    pipeline: usize,
    data: Batch<'a>,
    start: usize,
}

/// Hands `data` to the pipelines `fed`. A borrowed batch is shared. Of an owned one, the
/// hungriest pipeline takes it; the others get a copy, made by their first filter when they
/// start with one (so that only what survives it is copied).
fn fan_out<'a>(pipelines: &[PipelineRun], fed: &[usize], data: Batch<'a>, jobs: &mut Vec<Job<'a>>) {
    // The hungriest pipeline (the last one among equals) takes the batch itself. It runs
    // first, the others after it in reverse order (a shared batch goes in the same order, so
    // that exporters fed by several pipelines receive the same sequence either way).
    let Some(owner) = fed
        .iter()
        .enumerate()
        .max_by_key(|(i, p)| (pipelines[**p].appetite, *i))
        .map(|(_, p)| *p)
    else {
        return;
    };
    let data = match data {
        Batch::Borrowed(shared) => {
            for &p in fed.iter().filter(|&&p| p != owner).chain([&owner]) {
                jobs.push(Job {
                    pipeline: p,
                    data: Batch::Borrowed(shared),
                    start: 0,
                });
            }
            return;
        }
        Batch::Owned(data) => data,
    };
    for &p in fed.iter().filter(|&&p| p != owner) {
        let (copy, start) = pipelines[p].ingest(&data);
        jobs.push(Job {
            pipeline: p,
            data: Batch::Owned(copy),
            start,
        });
    }
    jobs.push(Job {
        pipeline: owner,
        data: Batch::Owned(data),
        start: 0,
    });
}

impl PipelineRun {
    /// A copy of `data` for this pipeline and the stage to continue from: when the pipeline
    /// starts (after pass-through stages) with a filter, the filter makes the copy.
    fn ingest(&self, data: &Snapshot) -> (Snapshot, usize) {
        for (i, stage) in self.stages.iter().enumerate() {
            match stage {
                Stage::PassThrough => {}
                Stage::Filter(f) => return (f.copy_filtered(data), i + 1),
                _ => break,
            }
        }
        (data.clone(), 0)
    }
}

/// Points, series and encoded size of one batch.
struct BatchStats {
    points: usize,
    series: Vec<SeriesKey>,
    bytes: usize,
}

impl BatchStats {
    fn of(batch: &Snapshot) -> Self {
        Self {
            points: batch.data_point_count(),
            series: batch.series_keys().collect(),
            bytes: phoenix_core::otlp::encoded_len(batch),
        }
    }
}

fn record(out: &mut ExporterOutput, batch: Option<Snapshot>, stats: &BatchStats, kept: &Kept) {
    out.requests += 1;
    out.data_points += stats.points;
    out.series.extend(stats.series.iter().copied());
    out.bytes += stats.bytes;
    if let Some(batch) = batch {
        if kept.resources.is_some() {
            out.snapshot.resources.extend(
                batch
                    .resources
                    .into_iter()
                    .filter(|r| kept.keeps_resource(&r.attributes)),
            );
        } else {
            out.snapshot.resources.extend(batch.resources);
        }
    }
}

/// The exporters that data given to the pipelines `fed` reaches, through connectors too.
fn reached_exporters(pipelines: &[PipelineRun], fed: &[usize]) -> HashSet<ComponentId> {
    let mut exporters = HashSet::new();
    let mut stack = fed.to_vec();
    let mut seen = HashSet::new();
    while let Some(p) = stack.pop() {
        if !seen.insert(p) {
            continue;
        }
        for s in &pipelines[p].sinks {
            match s {
                Sink::Exporter(e) => {
                    exporters.insert(e.clone());
                }
                Sink::Connector(next) => stack.extend(next.iter().copied()),
            }
        }
    }
    exporters
}

fn check_acyclic(pipelines: &[PipelineRun]) -> Result<()> {
    fn visit(p: usize, pipelines: &[PipelineRun], state: &mut [u8]) -> bool {
        match state[p] {
            1 => return false,
            2 => return true,
            _ => {}
        }
        state[p] = 1;
        for s in &pipelines[p].sinks {
            if let Sink::Connector(fed) = s {
                for &q in fed {
                    if !visit(q, pipelines, state) {
                        return false;
                    }
                }
            }
        }
        state[p] = 2;
        true
    }
    let mut state = vec![0_u8; pipelines.len()];
    for p in 0..pipelines.len() {
        if !visit(p, pipelines, &mut state) {
            return Err(Error::Config {
                path: "service.pipelines".to_owned(),
                message: "the pipelines form a cycle through connectors".to_owned(),
            });
        }
    }
    Ok(())
}

/// Attributes without the `phoenix.*` keys Phoenix's templates add.
pub fn without_phoenix_attributes(attrs: &Attributes) -> Attributes {
    let mut out = attrs.clone();
    out.retain(|kv| !kv.key.starts_with("phoenix."));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_indexes_are_positions_in_the_schema() {
        for (i, m) in ProcessMetric::ALL.into_iter().enumerate() {
            assert_eq!(schema_index(m), i, "{m:?}");
        }
    }

    /// Keeping the data of some resources only changes what the snapshots hold, not the
    /// counts; the snapshots hold exactly the resources kept, on every path (relabelled,
    /// rolled up, stage by stage).
    #[test]
    fn data_is_kept_only_for_the_resources_asked_for() {
        let params = serde_json::json!({
            "criticalProcesses": ["^systemd$", "^sshd$"],
            "experimentId": "exp-keep0002",
        });
        let serde_json::Value::Object(params) = params else {
            panic!("an object")
        };
        let profile =
            phoenix_sim::Profile::preset(phoenix_core::experiment::ProfilePreset::Realistic);
        let named = |a: &Attributes| {
            a.get_str("process.executable.name")
                .is_some_and(|n| n.starts_with('s'))
        };
        for template in crate::catalog::TemplateId::ALL {
            let config = crate::catalog::render(template, &params).unwrap();
            let mut sim =
                phoenix_sim::Simulator::new(&profile, phoenix_sim::SimConfig::default()).unwrap();
            let mut all = Emulator::new(&config).unwrap();
            let mut some = Emulator::new(&config).unwrap();
            some.keep_resources_where(named);
            let mut staged = Emulator::new(&config).unwrap();
            staged.keep_resources_where(named);
            for p in &mut staged.pipelines {
                p.rollup = None;
                p.relabel = None;
                p.tail_relabels = false;
            }
            for _ in 0..3 {
                let s = sim.next_snapshot().clone();
                let everything = all.process(&s).unwrap().clone();
                let from_stages = staged.process(&s).unwrap().clone();
                let kept = some.process(&s).unwrap();
                assert_eq!(kept, &from_stages, "{template}");
                for (id, e) in &everything.exporters {
                    let k = &kept.exporters[id];
                    assert_eq!(
                        (k.data_points, &k.series, k.bytes, k.requests),
                        (e.data_points, &e.series, e.bytes, e.requests)
                    );
                    let expected: Vec<_> = e
                        .snapshot
                        .resources
                        .iter()
                        .filter(|r| named(&r.attributes))
                        .collect();
                    assert_eq!(k.snapshot.resources.iter().collect::<Vec<_>>(), expected);
                }
            }
            some.keep_all_resources();
            let s = sim.next_snapshot().clone();
            assert_eq!(some.process(&s).unwrap(), all.process(&s).unwrap());
        }
    }

    #[test]
    fn data_is_kept_only_for_the_exporters_asked_for() {
        let params = serde_json::json!({
            "criticalProcesses": ["^systemd$"],
            "experimentId": "exp-keep0001",
        });
        let serde_json::Value::Object(params) = params else {
            panic!("an object")
        };
        let config =
            crate::catalog::render(crate::catalog::TemplateId::Aggregated, &params).unwrap();
        let profile =
            phoenix_sim::Profile::preset(phoenix_core::experiment::ProfilePreset::Realistic);
        let mut sim =
            phoenix_sim::Simulator::new(&profile, phoenix_sim::SimConfig::default()).unwrap();
        let mut all = Emulator::new(&config).unwrap();
        let mut some = Emulator::new(&config).unwrap();
        let ids: Vec<ComponentId> = all.output.exporters.keys().cloned().collect();
        assert!(ids.len() >= 2, "{ids:?}");
        some.keep_data_of(&ids[..1]);
        for _ in 0..3 {
            let s = sim.next_snapshot().clone();
            let everything = all.process(&s).unwrap().clone();
            let counted = some.process(&s).unwrap();
            for (id, e) in &everything.exporters {
                let c = &counted.exporters[id];
                assert_eq!(
                    (c.data_points, &c.series, c.bytes, c.requests),
                    (e.data_points, &e.series, e.bytes, e.requests)
                );
                if *id == ids[0] {
                    assert_eq!(c.snapshot, e.snapshot);
                } else {
                    assert!(c.snapshot.resources.is_empty() && !e.snapshot.resources.is_empty());
                }
            }
        }
    }
}
