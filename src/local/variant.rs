//! One variant's pipeline: its resolved config, the exporter counted, and the emulator state
//! with its tallies.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use phoenix_core::experiment::{CriticalMatcher, Experiment, PipelineRef};
use phoenix_core::measurement::{VariantRole, VariantSample};
use phoenix_core::telemetry::{
    AnyValue, Attributes, DataPoint, KeyValue, Metric, MetricData, NumberValue, Resource, Snapshot,
    Temporality, schema::ResourceAttribute,
};
use phoenix_core::{Error, Result};
use phoenix_generator::catalog;
use phoenix_generator::config::{ComponentId, ComponentKind, Config, GoDuration, Receiver};
use phoenix_generator::emulator::{Emulator, SeriesSet};
use phoenix_sim::MetricSelection;

/// A variant's pipeline as resolved for one experiment.
#[derive(Debug, Clone)]
pub(crate) struct VariantPipeline {
    pub(crate) role: VariantRole,
    /// The config as YAML: what a promotion records.
    pub(crate) yaml: String,
    pub(crate) config: Config,
    /// The exporter whose input is the variant's output.
    pub(crate) exporter: ComponentId,
}

/// Describes where a variant's pipeline comes from, for error messages.
fn describe(pipeline: &PipelineRef) -> String {
    match pipeline {
        PipelineRef::Template { name, .. } => format!("template `{name}`"),
        PipelineRef::Inline { .. } => "inline config".to_owned(),
    }
}

/// An executor error about one variant.
pub(crate) fn variant_error(
    role: VariantRole,
    pipeline: &PipelineRef,
    cause: impl std::fmt::Display,
) -> Error {
    Error::executor(format!("{role} variant ({}): {cause}", describe(pipeline)))
}

/// The pipeline reference with what the experiment implies filled in: for a template, the
/// parameters `experimentId`, `variant`, `collectionInterval` (the spec's scrape interval) and
/// `criticalProcesses` (the spec's, when it lists any), each only where the parameters leave
/// it out. Inline configs are taken as written.
pub(crate) fn effective_pipeline(experiment: &Experiment, role: VariantRole) -> PipelineRef {
    let spec = &experiment.spec;
    match spec.variant(role) {
        PipelineRef::Template { name, parameters } => {
            let mut parameters = parameters.clone();
            let mut fill = |key: &str, value: serde_json::Value| {
                parameters.entry(key.to_owned()).or_insert(value);
            };
            fill("experimentId", experiment.id.as_str().into());
            fill("variant", role.as_str().into());
            fill(
                "collectionInterval",
                GoDuration::from(spec.scrape_interval).to_string().into(),
            );
            if !spec.critical_processes.is_empty()
                && let Ok(list) = serde_json::to_value(&spec.critical_processes)
            {
                fill("criticalProcesses", list);
            }
            PipelineRef::Template {
                name: name.clone(),
                parameters,
            }
        }
        inline @ PipelineRef::Inline { .. } => inline.clone(),
    }
}

impl VariantPipeline {
    /// Resolves `role`'s pipeline, checks that the emulator can run it, and picks the
    /// exporter to count.
    pub(crate) fn resolve(experiment: &Experiment, role: VariantRole) -> Result<Self> {
        let original = experiment.spec.variant(role);
        let pipeline = effective_pipeline(experiment, role);
        let fail = |cause: &dyn std::fmt::Display| variant_error(role, original, cause);
        let (config, yaml) = match &pipeline {
            PipelineRef::Template { name, parameters } => {
                let template = name.parse::<catalog::TemplateId>().map_err(|e| fail(&e))?;
                let rendered =
                    catalog::render_template(template, parameters).map_err(|e| fail(&e))?;
                let yaml = rendered.to_yaml().map_err(|e| fail(&e))?;
                (rendered.config, yaml)
            }
            PipelineRef::Inline { config } => {
                let parsed = catalog::resolve(&pipeline).map_err(|e| fail(&e))?;
                (parsed, config.clone())
            }
        };
        Emulator::new(&config).map_err(|e| fail(&e))?;
        let exporter = counted_exporter(&config)
            .ok_or_else(|| fail(&"the config has no exporter in a metrics pipeline to measure"))?;
        Ok(Self {
            role,
            yaml,
            config,
            exporter,
        })
    }

    /// A fresh emulator of this pipeline.
    pub(crate) fn emulator(&self, original: &PipelineRef) -> Result<Emulator> {
        Emulator::new(&self.config).map_err(|e| variant_error(self.role, original, e))
    }

    /// Adds the metrics this config's `process` scrapers enable to `selection`.
    pub(crate) fn enable_metrics(&self, mut selection: MetricSelection) -> MetricSelection {
        for receiver in self.config.receivers.values() {
            let Receiver::HostMetrics(h) = receiver else {
                continue;
            };
            let Some(process) = &h.scrapers.process else {
                continue;
            };
            for metric in phoenix_core::telemetry::ProcessMetric::ALL {
                let scraper = phoenix_generator::config::ProcessScraperMetric::from_schema(metric);
                if process.metric_enabled(scraper) {
                    selection = selection.with(metric, true);
                }
            }
        }
        selection
    }
}

/// The exporter whose input counts as the variant's output: the first OTLP or OTLP/HTTP
/// exporter used by a metrics pipeline, else the first Prometheus, then file, then any other.
/// Every exporter of a catalog template receives the same data, so the choice only matters
/// for hand-written configs that export different data to different exporters.
fn counted_exporter(config: &Config) -> Option<ComponentId> {
    let rank = |kind: ComponentKind| match kind {
        ComponentKind::Otlp | ComponentKind::OtlpHttp => 0,
        ComponentKind::Prometheus => 1,
        ComponentKind::File => 2,
        _ => 3,
    };
    let used: HashSet<&ComponentId> = config
        .service
        .pipelines
        .iter()
        .filter(|(id, _)| id.signal == phoenix_generator::config::Signal::Metrics)
        .flat_map(|(_, p)| p.exporters.iter())
        .collect();
    config
        .exporters
        .keys()
        .filter(|id| used.contains(id))
        .min_by_key(|id| rank(id.kind))
        .cloned()
}

const PHOENIX_PREFIX: &str = "phoenix.";

/// A resource's executable name.
fn executable_name(resource: &Resource) -> Option<&str> {
    resource
        .attributes
        .get_str(ResourceAttribute::ExecutableName)
}

/// A metric's kind, temporality and monotonicity.
fn kind_of(metric: &Metric) -> (u8, Option<Temporality>, bool) {
    match &metric.data {
        MetricData::Gauge { .. } => (0, None, false),
        MetricData::Sum {
            temporality,
            monotonic,
            ..
        } => (1, Some(*temporality), *monotonic),
    }
}

/// Whether two attribute lists hold the same attributes apart from `phoenix.*` ones, in any
/// order (as series keys compare them).
fn same_attributes(a: &Attributes, b: &Attributes) -> bool {
    if a == b {
        return true;
    }
    let own = |kv: &&KeyValue| !kv.key.starts_with(PHOENIX_PREFIX);
    a.iter().filter(own).count() == b.iter().filter(own).count()
        && a.iter().filter(own).all(|x| b.iter().any(|y| x == y))
}

/// A fingerprint of attributes apart from `phoenix.*` ones, whatever their order: two lists
/// without a key twice that [`same_attributes`] finds the same have the same fingerprint. It
/// hashes the process id and executable name (which tell processes apart), when present.
fn fingerprint(attributes: &Attributes) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    if let Some(AnyValue::Int(pid)) = attributes.get(ResourceAttribute::Pid) {
        pid.hash(&mut h);
    }
    attributes
        .get_str(ResourceAttribute::ExecutableName)
        .hash(&mut h);
    h.finish()
}

/// Whether two points are the same apart from `phoenix.*` attributes: attributes, times,
/// value (of the same type) and flags.
fn same_point(a: &DataPoint, b: &DataPoint) -> bool {
    let same_value = match (a.value, b.value) {
        (NumberValue::Int(x), NumberValue::Int(y)) => x == y,
        (NumberValue::Double(x), NumberValue::Double(y)) => x.to_bits() == y.to_bits(),
        _ => false,
    };
    same_value
        && a.start_time == b.start_time
        && a.time == b.time
        && a.flags == b.flags
        && same_attributes(&a.attributes, &b.attributes)
}

/// Whether every point of `expected` is among the points of the output resources `got`
/// (those whose attributes, apart from `phoenix.*` ones, are `expected`'s): in a metric of
/// the same name and kind, unchanged.
fn covered(expected: &Resource, got: &[&Resource]) -> bool {
    expected.metrics().all(|m| {
        let kind = kind_of(m);
        let candidates: Vec<&Metric> = got
            .iter()
            .flat_map(|r| r.metrics())
            .filter(|o| o.name == m.name && kind_of(o) == kind)
            .collect();
        m.data.points().iter().all(|p| {
            candidates
                .iter()
                .any(|o| o.data.points().iter().any(|q| same_point(p, q)))
        })
    })
}

/// What one variant exported over the scrapes of a window.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    scrapes: u32,
    active_sum: u64,
    data_points: u64,
    bytes: u64,
    critical_expected: u64,
    critical_seen: u64,
    distinct_before: u64,
}

impl Tally {
    /// A window's sample, given the distinct series to date at its end.
    pub(crate) fn sample(&self, distinct_to_date: u64) -> VariantSample {
        #[allow(clippy::cast_precision_loss)]
        let mean_active_series = if self.scrapes == 0 {
            0.0
        } else {
            self.active_sum as f64 / f64::from(self.scrapes)
        };
        VariantSample {
            scrapes: self.scrapes,
            mean_active_series,
            distinct_series_to_date: distinct_to_date,
            new_series: distinct_to_date.saturating_sub(self.distinct_before),
            data_points: self.data_points,
            bytes: self.bytes,
            critical_expected: self.critical_expected,
            critical_seen: self.critical_seen,
            cpu_cores: None,
            memory_bytes: None,
        }
    }
}

/// A variant's emulator with what it has counted since the first measurement window.
#[derive(Debug)]
pub(crate) struct VariantState {
    emulator: Emulator,
    exporter: ComponentId,
    distinct: SeriesSet,
}

/// How a scrape counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counting {
    /// During the warm-up: fed to the pipeline, not counted.
    WarmUp,
    /// Measured, before the window asked for: counted into the distinct series only.
    Replayed,
    /// In the window asked for: counted in full.
    Window,
}

impl VariantState {
    pub(crate) fn new(pipeline: &VariantPipeline, original: &PipelineRef) -> Result<Self> {
        let mut emulator = pipeline.emulator(original)?;
        // Only the counted exporter's data is looked at (for critical coverage).
        emulator.keep_data_of(std::slice::from_ref(&pipeline.exporter));
        Ok(Self {
            emulator,
            exporter: pipeline.exporter.clone(),
            distinct: SeriesSet::default(),
        })
    }

    /// Distinct series exported in measured scrapes so far.
    pub(crate) fn distinct(&self) -> u64 {
        self.distinct.len() as u64
    }

    /// Starts a window's tally.
    pub(crate) fn tally(&self) -> Tally {
        Tally {
            distinct_before: self.distinct(),
            ..Tally::default()
        }
    }

    /// Runs one scrape through the variant. `critical` holds the scrape's critical
    /// processes (only looked at for [`Counting::Window`]).
    pub(crate) fn scrape<'s>(
        &mut self,
        snapshot: &'s Snapshot,
        critical: &[&'s Resource],
        counting: Counting,
        tally: &mut Tally,
    ) -> phoenix_generator::Result<()> {
        let in_window = counting == Counting::Window;
        // What the variant's receivers make of each critical process, on the way to the
        // counted exporter.
        let expected: Vec<Option<Vec<Cow<'s, Resource>>>> = if in_window {
            critical
                .iter()
                .map(|r| {
                    let reaching = self.emulator.receiver_views_reaching(r, &self.exporter);
                    (!reaching.is_empty()).then_some(reaching)
                })
                .collect()
        } else {
            Vec::new()
        };
        // Only output resources named like an expected one can hold its points; when a
        // receiver removed the name, every output resource is looked at. The emulator copies
        // only those.
        let names: Option<HashSet<String>> = expected
            .iter()
            .flatten()
            .flatten()
            .map(|r| {
                r.attributes
                    .get_str(ResourceAttribute::ExecutableName)
                    .map(str::to_owned)
            })
            .collect();
        if !in_window || critical.is_empty() {
            self.emulator.keep_resources_where(|_| false);
        } else {
            self.emulator.keep_resources_where(move |attributes| {
                names.as_ref().is_none_or(|names| {
                    attributes
                        .get_str(ResourceAttribute::ExecutableName)
                        .is_some_and(|n| names.contains(n))
                })
            });
        }
        let output = self.emulator.process(snapshot)?;
        let Some(exported) = output.exporters.get(&self.exporter) else {
            if in_window {
                tally.scrapes += 1;
                tally.critical_expected += critical.len() as u64;
            }
            return Ok(());
        };
        if counting != Counting::WarmUp {
            self.distinct.extend(exported.series.iter().copied());
        }
        if !in_window {
            return Ok(());
        }
        tally.scrapes += 1;
        tally.active_sum += exported.series.len() as u64;
        tally.data_points += exported.data_points as u64;
        tally.bytes += exported.bytes as u64;
        tally.critical_expected += critical.len() as u64;
        if !critical.is_empty() {
            // The snapshot holds only the output resources named like an expected one; those
            // holding an expected resource's points have its attributes, apart from
            // `phoenix.*` ones.
            // Output resources by fingerprint; those holding a key twice (which a fingerprint
            // may tell apart from their equals) are looked at for every expected resource.
            let all = &exported.snapshot.resources;
            let mut got: HashMap<u64, Vec<&Resource>> = HashMap::new();
            let mut odd: Vec<&Resource> = Vec::new();
            for o in all {
                if o.attributes.has_duplicate_keys() {
                    odd.push(o);
                } else {
                    got.entry(fingerprint(&o.attributes)).or_default().push(o);
                }
            }
            let seen = expected
                .iter()
                .filter(|views| {
                    views.as_ref().is_some_and(|resources| {
                        resources.iter().all(|r| {
                            let same = |o: &&Resource| {
                                executable_name(o) == executable_name(r)
                                    && same_attributes(&o.attributes, &r.attributes)
                            };
                            let outputs: Vec<&Resource> = if r.attributes.has_duplicate_keys() {
                                all.iter().filter(same).collect()
                            } else {
                                got.get(&fingerprint(&r.attributes))
                                    .into_iter()
                                    .flatten()
                                    .chain(&odd)
                                    .copied()
                                    .filter(same)
                                    .collect()
                            };
                            !outputs.is_empty() && covered(r, &outputs)
                        })
                    })
                })
                .count();
            tally.critical_seen += seen as u64;
        }
        Ok(())
    }
}

/// The critical processes of a scrape.
pub(crate) fn critical_processes<'s>(
    snapshot: &'s Snapshot,
    matcher: &CriticalMatcher,
) -> Vec<&'s Resource> {
    if matcher.is_empty() {
        return Vec::new();
    }
    snapshot
        .resources
        .iter()
        .filter(|r| matcher.is_critical(&r.attributes))
        .collect()
}
