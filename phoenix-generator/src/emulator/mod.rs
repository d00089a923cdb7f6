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
//! `aggregate_on_attributes`) runs those stages as one pass that copies only the aggregated
//! points. [`Emulator::keep_data_of`] limits which exporters' data is kept.
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
mod rollup;
mod safety;
mod stage;

use std::collections::{BTreeMap, HashSet};

use phoenix_core::telemetry::{
    Attributes, MetricName, ProcessMetric, SeriesKey, Snapshot, Timestamp,
};
use regex::Regex;

use rollup::Rollup;
pub(crate) use safety::point_key;
pub use safety::{critical_safety, critical_safety_with_names, probe_workload};
use stage::Stage;

use crate::config::{
    ComponentId, ComponentKind, Config, HostMetricsReceiver, MatchType, PipelineId,
    ProcessResourceAttribute, ProcessScraperMetric, Receiver, Signal,
};
use crate::{Error, Result};

/// What one exporter received for one scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExporterOutput {
    /// Data points received.
    pub data_points: usize,
    /// Distinct series among them.
    pub series: HashSet<SeriesKey>,
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
        let filters_metrics =
            self.disabled_schema.iter().any(|d| *d) || !self.disabled_other.is_empty();
        data.resources.iter().all(|r| {
            let name = r
                .attributes
                .get_str("process.executable.name")
                .unwrap_or("");
            self.include.as_ref().is_none_or(|i| i.matches(name))
                && self.exclude.as_ref().is_none_or(|e| !e.matches(name))
                && !r
                    .attributes
                    .iter()
                    .any(|kv| self.disabled_attributes.contains(&kv.key.as_str()))
                && !r.scopes.is_empty()
                && (!filters_metrics
                    || (r.scopes.iter().all(|s| !s.metrics.is_empty())
                        && r.metrics().all(|m| match &m.name {
                            MetricName::Process(pm) => !self.disabled_schema[schema_index(*pm)],
                            MetricName::Other(name) => {
                                !self.disabled_other.contains(&name.as_str())
                            }
                        })))
        })
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

fn schema_index(metric: ProcessMetric) -> usize {
    ProcessMetric::ALL
        .iter()
        .position(|m| *m == metric)
        .unwrap_or(0)
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
}

/// A compiled config, ready to run scrapes through.
#[derive(Debug)]
pub struct Emulator {
    receivers: Vec<(Source, Vec<usize>)>,
    pipelines: Vec<PipelineRun>,
    output: Output,
    /// The exporters whose [`ExporterOutput::snapshot`] is filled; `None` for all.
    kept: Option<HashSet<ComponentId>>,
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
                rollup: Rollup::plan(&stages),
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
            receivers.push((source, fed));
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
            kept: None,
        })
    }

    /// Fills [`ExporterOutput::snapshot`] only for these exporters (by default, for every
    /// exporter); the others report their counts with an empty snapshot. Keeping less saves
    /// copying what is exported.
    pub fn keep_data_of(&mut self, exporters: &[ComponentId]) {
        self.kept = Some(exporters.iter().cloned().collect());
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
        for (kind, fed) in &self.receivers {
            let view = match kind {
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
        for (i, (kind, fed)) in self.receivers.iter().enumerate() {
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
            .map(|(kind, fed)| {
                let mut view = snapshot.clone();
                if let Source::Process(filter) = kind {
                    filter.apply(&mut view);
                }
                let mut exporters = HashSet::new();
                let mut stack: Vec<usize> = fed.clone();
                let mut seen = HashSet::new();
                while let Some(p) = stack.pop() {
                    if !seen.insert(p) {
                        continue;
                    }
                    for s in &self.pipelines[p].sinks {
                        match s {
                            Sink::Exporter(e) => {
                                exporters.insert(e.clone());
                            }
                            Sink::Connector(next) => stack.extend(next.iter().copied()),
                        }
                    }
                }
                (view, exporters)
            })
            .collect()
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
        let (mut data, start) = match (&mut pipeline.rollup, data) {
            (Some(rollup), data) if start == 0 => {
                let (out, first_filter_points) = rollup.run(&mut pipeline.stages, data.get());
                if leading.is_some() {
                    pipeline.appetite = first_filter_points;
                }
                (out, rollup.end())
            }
            (_, Batch::Owned(data)) => (data, start),
            (_, Batch::Borrowed(data)) => pipeline.ingest(data),
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
        let sinks = &pipelines[p].sinks;
        let takes_data = |s: &Sink| match s {
            Sink::Exporter(id) => kept.as_ref().is_none_or(|k| k.contains(id)),
            Sink::Connector(_) => true,
        };
        // The last sink that takes the data gets it; the ones before it get copies.
        let last = sinks.iter().rposition(takes_data);
        // Every exporter of the pipeline receives the same batch: count it once.
        let stats = sinks
            .iter()
            .any(|s| matches!(s, Sink::Exporter(_)))
            .then(|| BatchStats::of(&data));
        let mut data = Some(data);
        for (i, sink) in sinks.iter().enumerate() {
            let batch = if !takes_data(sink) {
                None
            } else if Some(i) == last {
                data.take()
            } else {
                data.clone()
            };
            match (sink, batch) {
                (Sink::Exporter(id), batch) => {
                    if let (Some(out), Some(stats)) = (output.exporters.get_mut(id), &stats) {
                        record(out, batch, stats);
                    }
                }
                (Sink::Connector(fed), Some(batch)) => {
                    fan_out(pipelines, fed, Batch::Owned(batch), jobs);
                }
                (Sink::Connector(_), None) => {}
            }
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

fn record(out: &mut ExporterOutput, batch: Option<Snapshot>, stats: &BatchStats) {
    out.requests += 1;
    out.data_points += stats.points;
    out.series.extend(stats.series.iter().copied());
    out.bytes += stats.bytes;
    if let Some(batch) = batch {
        out.snapshot.resources.extend(batch.resources);
    }
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
