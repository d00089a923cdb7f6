//! Prediction report: what a candidate config exports over a workload, against a baseline.
//!
//! [`predict`] runs the candidate and the baseline through the [`Emulator`] over the same
//! snapshots and reports, for each: distinct series over the run, mean active series per
//! scrape, data points and encoded OTLP bytes per minute, and the monthly cost under a
//! [`CostModel`]; then critical-process coverage per scrape (a critical process counts as
//! covered when every one of its data points reaches the output unchanged apart from
//! `phoenix.*` attributes) and the processes that flap in and out of the output. The
//! [`Prediction`] prints as a table and serialises as JSON. [`Workload`] reads an OTLP
//! JSON-lines recording (the collector's `file` exporter output) or runs a simulator profile.
//!
//! ```
//! use phoenix_generator::config::Config;
//! use phoenix_generator::predict::{predict, PredictOptions, Workload};
//! use phoenix_core::experiment::{CriticalMatcher, CriticalProcess, ProfilePreset};
//!
//! let yaml = |filter: &str| format!(r#"
//! receivers:
//!   hostmetrics:
//!     scrapers:
//!       process: {{}}
//! processors:
//!   filter/x:
//!     metrics:
//!       datapoint: ['{filter}']
//! exporters:
//!   otlphttp:
//!     endpoint: http://backend:4318
//! service:
//!   pipelines:
//!     metrics:
//!       receivers: [hostmetrics]
//!       processors: [filter/x]
//!       exporters: [otlphttp]
//! "#);
//! let baseline = Config::from_yaml(&yaml("false"))?;
//! let candidate = Config::from_yaml(&yaml(r#"metric.name == "process.disk.io""#))?;
//! let workload = Workload::from_profile(&phoenix_sim::Profile::preset(ProfilePreset::Realistic), 1, 6)?;
//! let options = PredictOptions {
//!     critical: CriticalMatcher::new(&[CriticalProcess::name("^postgres$")]).unwrap(),
//!     ..PredictOptions::default()
//! };
//! let prediction = predict(&candidate, &baseline, workload.snapshots(), &options)?;
//! assert!(prediction.candidate.data_points_per_minute < prediction.baseline.data_points_per_minute);
//! println!("{prediction}");
//! # Ok::<(), phoenix_generator::Error>(())
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use phoenix_core::analysis::MonthlyCost;
use phoenix_core::cost::CostModel;
use phoenix_core::experiment::CriticalMatcher;
use phoenix_core::telemetry::{AnyValue, SeriesKey, Snapshot, Timestamp};
use serde::Serialize;

use crate::config::{ComponentId, ComponentKind, Config};
use crate::emulator::{Emulator, ExporterOutput, point_key};
use crate::{Error, Result};

/// Snapshots to predict over: a recording held in memory, or a simulation run lazily, one
/// snapshot at a time, each time [`Workload::snapshots`] is called (so a long simulation does
/// not hold every snapshot in memory).
#[derive(Debug, Clone, Default)]
pub struct Workload {
    source: Source,
}

#[derive(Debug, Clone, Default)]
enum Source {
    #[default]
    Empty,
    Recorded(Vec<Snapshot>),
    Simulated {
        profile: Box<phoenix_sim::Profile>,
        config: phoenix_sim::SimConfig,
        scrapes: usize,
    },
}

impl Workload {
    /// A workload of these snapshots.
    pub fn new(snapshots: Vec<Snapshot>) -> Self {
        Self {
            source: Source::Recorded(snapshots),
        }
    }

    /// Reads an OTLP JSON-lines recording: one `MetricsData` document per line, as the
    /// collector's `file` exporter writes; blank lines are skipped.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the file cannot be read; [`Error::Workload`] naming the line that is not
    /// valid OTLP JSON.
    pub fn from_recording(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json_lines(&text).map_err(|e| match e {
            Error::Workload(m) => Error::Workload(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Reads OTLP JSON lines from text.
    ///
    /// # Errors
    ///
    /// [`Error::Workload`] naming the line that is not valid OTLP JSON.
    pub fn from_json_lines(text: &str) -> Result<Self> {
        let mut snapshots = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let snapshot = phoenix_core::otlp::from_json(line)
                .map_err(|e| Error::Workload(format!("line {}: {e}", i + 1)))?;
            snapshots.push(snapshot);
        }
        if snapshots.is_empty() {
            return Err(Error::Workload(
                "the recording holds no snapshots".to_owned(),
            ));
        }
        Ok(Self::new(snapshots))
    }

    /// Runs a simulator profile for `scrapes` scrapes of 10 s with `seed`.
    ///
    /// # Errors
    ///
    /// [`Error::Workload`] if the simulator refuses the profile.
    pub fn from_profile(profile: &phoenix_sim::Profile, seed: u64, scrapes: usize) -> Result<Self> {
        let config = phoenix_sim::SimConfig {
            seed,
            ..phoenix_sim::SimConfig::default()
        };
        Self::from_simulation(profile, config, scrapes)
    }

    /// Runs a simulator profile for `scrapes` scrapes with the given simulator settings (seed,
    /// scrape interval, start time, metric selection). The snapshots are produced lazily by
    /// [`Workload::snapshots`].
    ///
    /// # Errors
    ///
    /// [`Error::Workload`] if the simulator refuses the profile or the settings.
    pub fn from_simulation(
        profile: &phoenix_sim::Profile,
        config: phoenix_sim::SimConfig,
        scrapes: usize,
    ) -> Result<Self> {
        // Checked here so that `snapshots` cannot fail later.
        phoenix_sim::Simulator::new(profile, config).map_err(|e| Error::Workload(e.to_string()))?;
        Ok(Self {
            source: Source::Simulated {
                profile: Box::new(profile.clone()),
                config,
                scrapes,
            },
        })
    }

    /// Runs a simulator profile for `scrapes` scrapes with `seed`, at the fastest of the
    /// `configs`' collection intervals (10 s when none sets one): the configs that collect
    /// less often skip the snapshots in between, as they would on a real host.
    ///
    /// # Errors
    ///
    /// [`Error::Workload`] if the simulator refuses the profile or the settings.
    pub fn for_configs(
        profile: &phoenix_sim::Profile,
        seed: u64,
        scrapes: usize,
        configs: &[&Config],
    ) -> Result<Self> {
        let every = configs
            .iter()
            .filter_map(|config| collection_interval(config))
            .min()
            .unwrap_or(Duration::from_secs(10));
        let config = phoenix_sim::SimConfig {
            seed,
            scrape_interval: every,
            ..phoenix_sim::SimConfig::default()
        };
        Self::from_simulation(profile, config, scrapes)
    }

    /// The snapshots in order.
    pub fn snapshots(&self) -> Box<dyn Iterator<Item = Snapshot> + '_> {
        match &self.source {
            Source::Empty => Box::new(std::iter::empty()),
            Source::Recorded(snapshots) => Box::new(snapshots.iter().cloned()),
            Source::Simulated {
                profile,
                config,
                scrapes,
            } => match phoenix_sim::Simulator::new(profile, *config) {
                Ok(mut sim) => Box::new((0..*scrapes).map(move |_| sim.next_snapshot().clone())),
                // Refused by `from_simulation` already, so never reached.
                Err(_) => Box::new(std::iter::empty()),
            },
        }
    }

    /// How many scrapes the workload holds.
    pub fn len(&self) -> usize {
        match &self.source {
            Source::Empty => 0,
            Source::Recorded(snapshots) => snapshots.len(),
            Source::Simulated { scrapes, .. } => *scrapes,
        }
    }

    /// Whether the workload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How to predict.
#[derive(Debug, Clone, Default)]
pub struct PredictOptions {
    /// Which processes are critical.
    pub critical: CriticalMatcher,
    /// Prices for the monthly cost.
    pub cost: CostModel,
    /// Time between scrapes; inferred from the snapshots' times when `None` (10 s for a
    /// single scrape).
    pub scrape_interval: Option<Duration>,
    /// The exporter to count in each config; when `None`, the first OTLP or OTLP/HTTP
    /// exporter, else the first Prometheus, file or debug exporter.
    pub exporter: Option<ComponentId>,
}

/// One variant's figures over the workload.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VariantFigures {
    /// The exporter counted.
    pub exporter: String,
    /// Distinct series over the whole run.
    pub distinct_series: usize,
    /// Mean distinct series per scrape.
    pub mean_active_series: f64,
    /// Data points exported per minute.
    pub data_points_per_minute: f64,
    /// Encoded OTLP bytes exported per minute.
    pub bytes_per_minute: f64,
    /// Data points over the whole run.
    pub total_data_points: u64,
    /// Bytes over the whole run.
    pub total_bytes: u64,
    /// Monthly cost at these rates.
    pub monthly_cost: MonthlyCost,
    /// Processes (executable name and pid) seen individually in the output in some scrapes
    /// and missing in others while still running.
    pub flapping_processes: usize,
    /// Workload snapshots this variant scraped: with a collection interval longer than the
    /// workload's, the snapshots in between are skipped.
    pub scrapes: usize,
    /// The config's `hostmetrics` `collection_interval` in seconds (collector default 60 when
    /// unset); `None` when the config has no `hostmetrics` process scraper in a pipeline, in
    /// which case every snapshot is taken.
    pub collection_interval_seconds: Option<f64>,
}

/// Critical-process coverage of one scrape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScrapeCoverage {
    /// 1-based scrape number.
    pub scrape: usize,
    /// Critical processes in the input.
    pub expected: usize,
    /// Critical processes whose every data point reached the candidate's output unchanged.
    pub covered: usize,
}

/// A process flapping in and out of the candidate's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlappingProcess {
    /// Executable name.
    pub name: String,
    /// Process id.
    pub pid: i64,
    /// Times it entered or left the output.
    pub transitions: usize,
}

/// The prediction: candidate against baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Prediction {
    /// Scrapes in the workload.
    pub scrapes: usize,
    /// The scrape interval used, in seconds.
    pub scrape_interval_seconds: f64,
    /// The candidate's figures.
    pub candidate: VariantFigures,
    /// The baseline's figures.
    pub baseline: VariantFigures,
    /// Fraction by which distinct series fall (negative when they rise).
    pub cardinality_reduction: f64,
    /// Fraction by which data points per minute fall.
    pub data_point_reduction: f64,
    /// Fraction by which bytes per minute fall.
    pub byte_reduction: f64,
    /// Fraction by which the monthly cost falls.
    pub cost_reduction: f64,
    /// Critical-process coverage per scrape, for the candidate.
    pub critical_coverage: Vec<ScrapeCoverage>,
    /// Fraction of critical-process observations missing from the candidate's output.
    pub critical_loss: f64,
    /// The candidate's flapping processes, most transitions first (at most 20).
    pub flapping: Vec<FlappingProcess>,
}

fn reduction(baseline: f64, candidate: f64) -> f64 {
    if baseline > 0.0 {
        (baseline - candidate) / baseline
    } else {
        0.0
    }
}

fn pick_exporter(config: &Config, wanted: Option<&ComponentId>) -> Result<ComponentId> {
    if let Some(id) = wanted {
        return if config.exporters.contains_key(id) {
            Ok(id.clone())
        } else {
            Err(Error::Config {
                path: format!("exporters.{id}"),
                message: "the exporter to count is not defined".to_owned(),
            })
        };
    }
    let rank = |k: ComponentKind| match k {
        ComponentKind::Otlp | ComponentKind::OtlpHttp => 0,
        ComponentKind::Prometheus => 1,
        ComponentKind::File => 2,
        _ => 3,
    };
    config
        .exporters
        .keys()
        .min_by_key(|id| rank(id.kind))
        .cloned()
        .ok_or_else(|| Error::Config {
            path: "exporters".to_owned(),
            message: "the config has no exporter to count".to_owned(),
        })
}

struct Tally {
    exporter: ComponentId,
    distinct: HashSet<SeriesKey>,
    active_sum: usize,
    points: u64,
    bytes: u64,
    presence: HashMap<(String, i64), Presence>,
    /// Scrapes this variant took (its collection interval may skip workload snapshots).
    scrapes: usize,
}

/// Output presence of one process, compared only between consecutive scrapes in which the
/// process is in the input.
#[derive(Debug, Clone, Copy)]
struct Presence {
    /// The last scrape (0-based) the process was in the input.
    last_scrape: usize,
    /// Whether it reached the output in that scrape.
    last_seen: bool,
    /// Whether it ever reached the output.
    ever_seen: bool,
    /// Changes of output presence between consecutive scrapes with the process in the input.
    transitions: usize,
}

/// The exported resources [`predict`] reads: those with a process id (whose presence it
/// follows) and critical ones (whose points it looks for). A critical point reaches the
/// output unchanged only in a resource with the attributes of its process, apart from
/// `phoenix.*` ones, which the matcher finds critical too. Keeping only these in the
/// emulator's output ([`Emulator::keep_resources_where`](crate::emulator::Emulator::keep_resources_where))
/// saves copying the rest.
pub fn resources_read(
    critical: &CriticalMatcher,
) -> impl Fn(&phoenix_core::telemetry::Attributes) -> bool + Send + Sync + 'static {
    let critical = critical.clone();
    move |attributes| attributes.get("process.pid").is_some() || critical.is_critical(attributes)
}

fn identity(attrs: &phoenix_core::telemetry::Attributes) -> Option<(String, i64)> {
    let name = attrs.get_str("process.executable.name")?.to_owned();
    let pid = attrs.get("process.pid").and_then(AnyValue::as_int)?;
    Some((name, pid))
}

impl Tally {
    fn new(exporter: ComponentId) -> Self {
        Self {
            exporter,
            distinct: HashSet::new(),
            active_sum: 0,
            points: 0,
            bytes: 0,
            presence: HashMap::new(),
            scrapes: 0,
        }
    }

    fn add(&mut self, input: &Snapshot, out: Option<&ExporterOutput>) {
        let scrape = self.scrapes;
        self.scrapes += 1;
        let seen: HashSet<(String, i64)> = out
            .map(|o| {
                o.snapshot
                    .resources
                    .iter()
                    .filter_map(|r| identity(&r.attributes))
                    .collect()
            })
            .unwrap_or_default();
        for r in &input.resources {
            if let Some(id) = identity(&r.attributes) {
                let now = seen.contains(&id);
                match self.presence.get_mut(&id) {
                    Some(p) => {
                        if p.last_scrape == scrape {
                            // The same process twice in one scrape: seen if either is.
                            p.last_seen |= now;
                        } else {
                            if p.last_scrape + 1 == scrape && p.last_seen != now {
                                p.transitions += 1;
                            }
                            p.last_scrape = scrape;
                            p.last_seen = now;
                        }
                        p.ever_seen |= now;
                    }
                    None => {
                        self.presence.insert(
                            id,
                            Presence {
                                last_scrape: scrape,
                                last_seen: now,
                                ever_seen: now,
                                transitions: 0,
                            },
                        );
                    }
                }
            }
        }
        if let Some(o) = out {
            self.distinct.extend(o.series.iter().copied());
            self.active_sum += o.series.len();
            self.points += o.data_points as u64;
            self.bytes += o.bytes as u64;
        }
    }

    /// Processes present in the input in consecutive scrapes whose output presence changed.
    fn flapping(&self) -> Vec<FlappingProcess> {
        let mut out: Vec<FlappingProcess> = self
            .presence
            .iter()
            .filter(|(_, p)| p.transitions > 0 && p.ever_seen)
            .map(|((name, pid), p)| FlappingProcess {
                name: name.clone(),
                pid: *pid,
                transitions: p.transitions,
            })
            .collect();
        out.sort_by(|a, b| {
            b.transitions
                .cmp(&a.transitions)
                .then(a.name.cmp(&b.name))
                .then(a.pid.cmp(&b.pid))
        });
        out
    }

    #[allow(clippy::cast_precision_loss)]
    fn figures(&self, run: Duration, every: Option<Duration>, cost: &CostModel) -> VariantFigures {
        let minutes = (run.as_secs_f64() / 60.0).max(f64::MIN_POSITIVE);
        let mean_active = if self.scrapes == 0 {
            0.0
        } else {
            self.active_sum as f64 / self.scrapes as f64
        };
        let dpm = self.points as f64 / minutes;
        let bpm = self.bytes as f64 / minutes;
        VariantFigures {
            exporter: self.exporter.to_string(),
            distinct_series: self.distinct.len(),
            mean_active_series: mean_active,
            data_points_per_minute: dpm,
            bytes_per_minute: bpm,
            total_data_points: self.points,
            total_bytes: self.bytes,
            monthly_cost: cost.monthly_cost(dpm, bpm, mean_active),
            flapping_processes: self.flapping().len(),
            scrapes: self.scrapes,
            collection_interval_seconds: every.map(|d| d.as_secs_f64()),
        }
    }
}

/// The collector's `hostmetrics` default `collection_interval`.
const DEFAULT_COLLECTION_INTERVAL: Duration = Duration::from_secs(60);

/// How often `config` scrapes processes: the `collection_interval` of the first `hostmetrics`
/// receiver with the `process` scraper used in a pipeline (the collector's default of 1m when
/// unset); `None` when no such receiver is used.
pub fn collection_interval(config: &Config) -> Option<Duration> {
    let used: HashSet<&ComponentId> = config
        .service
        .pipelines
        .values()
        .flat_map(|p| p.receivers.iter())
        .collect();
    config.receivers.iter().find_map(|(id, r)| match r {
        crate::config::Receiver::HostMetrics(h)
            if used.contains(id) && h.scrapers.process.is_some() =>
        {
            Some(
                h.collection_interval
                    .map_or(DEFAULT_COLLECTION_INTERVAL, |d| d.as_duration()),
            )
        }
        _ => None,
    })
}

/// Whether a variant scraping `every` takes the snapshot at `time`, given the time of the last
/// one it took (updated when it does). Snapshots without a time, and configs without an
/// interval, take every snapshot; a twentieth of the interval absorbs recording jitter.
fn due(last: &mut Option<Timestamp>, time: Option<Timestamp>, every: Option<Duration>) -> bool {
    let (Some(t), Some(every)) = (time, every) else {
        return true;
    };
    if let Some(l) = *last
        && t.saturating_duration_since(l) + every / 20 < every
    {
        return false;
    }
    *last = Some(t);
    true
}

fn infer_interval(times: &[Timestamp]) -> Duration {
    let mut gaps: Vec<Duration> = times
        .windows(2)
        .map(|w| w[1].saturating_duration_since(w[0]))
        .filter(|d| !d.is_zero())
        .collect();
    if gaps.is_empty() {
        return Duration::from_secs(10);
    }
    gaps.sort();
    gaps[gaps.len() / 2]
}

/// Predicts what `candidate` exports over `workload`, against `baseline`.
///
/// # Errors
///
/// Whatever [`Emulator::new`] refuses in either config, and an exporter to count that does
/// not exist.
pub fn predict(
    candidate: &Config,
    baseline: &Config,
    workload: impl Iterator<Item = Snapshot>,
    options: &PredictOptions,
) -> Result<Prediction> {
    let mut cand = Emulator::new(candidate)?;
    let mut base = Emulator::new(baseline)?;
    let mut cand_tally = Tally::new(pick_exporter(candidate, options.exporter.as_ref())?);
    let mut base_tally = Tally::new(pick_exporter(baseline, options.exporter.as_ref())?);
    // Only the counted exporters' data is read, and of it only what `resources_read` keeps.
    cand.keep_data_of(std::slice::from_ref(&cand_tally.exporter));
    base.keep_data_of(std::slice::from_ref(&base_tally.exporter));
    cand.keep_resources_where(resources_read(&options.critical));
    base.keep_resources_where(resources_read(&options.critical));
    let cand_every = collection_interval(candidate);
    let base_every = collection_interval(baseline);
    let (mut cand_last, mut base_last) = (None, None);
    let mut coverage = Vec::new();
    let mut times = Vec::new();
    let mut scrapes = 0;
    for snapshot in workload {
        let time = snapshot.time();
        if let Some(t) = time {
            times.push(t);
        }
        if due(&mut cand_last, time, cand_every) {
            let views = cand.receiver_views(&snapshot);
            let out = cand.process(&snapshot)?;
            let exported = out.exporters.get(&cand_tally.exporter);
            // Critical coverage: every point of a critical process in what the receivers
            // produced must reach the counted exporter unchanged.
            let got: HashSet<u128> = exported
                .map(|o| {
                    o.snapshot
                        .resources
                        .iter()
                        .flat_map(|r| {
                            r.metrics().flat_map(move |m| {
                                m.data
                                    .points()
                                    .iter()
                                    .map(move |p| point_key(&r.attributes, m, p))
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            // The expected set comes from the raw input, before any receiver's own process
            // include/exclude, so a receiver that drops a critical process shows as loss.
            let mut expected: BTreeMap<(String, i64), bool> = snapshot
                .resources
                .iter()
                .filter(|r| options.critical.is_critical(&r.attributes))
                .map(|r| (identity(&r.attributes).unwrap_or_default(), false))
                .collect();
            let mut reached: HashSet<(String, i64)> = HashSet::new();
            for (view, exporters) in &views {
                if !exporters.contains(&cand_tally.exporter) {
                    continue;
                }
                for r in &view.resources {
                    if !options.critical.is_critical(&r.attributes) {
                        continue;
                    }
                    let id = identity(&r.attributes).unwrap_or_default();
                    let ok = r.metrics().all(|m| {
                        m.data
                            .points()
                            .iter()
                            .all(|p| got.contains(&point_key(&r.attributes, m, p)))
                    });
                    let entry = expected.entry(id.clone()).or_insert(true);
                    if reached.insert(id) {
                        *entry = ok;
                    } else {
                        *entry &= ok;
                    }
                }
            }
            coverage.push(ScrapeCoverage {
                scrape: scrapes + 1,
                expected: expected.len(),
                covered: expected.values().filter(|ok| **ok).count(),
            });
            cand_tally.add(&snapshot, exported);
        }
        if due(&mut base_last, time, base_every) {
            let out = base.process(&snapshot)?;
            base_tally.add(&snapshot, out.exporters.get(&base_tally.exporter));
        }
        scrapes += 1;
    }
    let interval = options
        .scrape_interval
        .unwrap_or_else(|| infer_interval(&times));
    let run = interval.saturating_mul(u32::try_from(scrapes).unwrap_or(u32::MAX));
    let candidate_figures = cand_tally.figures(run, cand_every, &options.cost);
    let baseline_figures = base_tally.figures(run, base_every, &options.cost);
    let expected: usize = coverage.iter().map(|c| c.expected).sum();
    let covered: usize = coverage.iter().map(|c| c.covered).sum();
    #[allow(clippy::cast_precision_loss)]
    let critical_loss = if expected == 0 {
        0.0
    } else {
        (expected - covered) as f64 / expected as f64
    };
    #[allow(clippy::cast_precision_loss)]
    let prediction = Prediction {
        scrapes,
        scrape_interval_seconds: interval.as_secs_f64(),
        cardinality_reduction: reduction(
            baseline_figures.distinct_series as f64,
            candidate_figures.distinct_series as f64,
        ),
        data_point_reduction: reduction(
            baseline_figures.data_points_per_minute,
            candidate_figures.data_points_per_minute,
        ),
        byte_reduction: reduction(
            baseline_figures.bytes_per_minute,
            candidate_figures.bytes_per_minute,
        ),
        cost_reduction: reduction(
            baseline_figures.monthly_cost.total,
            candidate_figures.monthly_cost.total,
        ),
        critical_coverage: coverage,
        critical_loss,
        flapping: cand_tally.flapping().into_iter().take(20).collect(),
        candidate: candidate_figures,
        baseline: baseline_figures,
    };
    Ok(prediction)
}

impl fmt::Display for Prediction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |x: f64| format!("{:.1}%", x * 100.0);
        writeln!(
            f,
            "{} scrapes every {}s; candidate exporter {}, baseline exporter {}",
            self.scrapes,
            self.scrape_interval_seconds,
            self.candidate.exporter,
            self.baseline.exporter
        )?;
        writeln!(
            f,
            "{:<28} {:>16} {:>16} {:>10}",
            "", "candidate", "baseline", "reduction"
        )?;
        let c = &self.candidate;
        let b = &self.baseline;
        #[allow(clippy::cast_precision_loss)]
        let rows: [(&str, String, String, String); 8] = [
            (
                "distinct series",
                c.distinct_series.to_string(),
                b.distinct_series.to_string(),
                pct(self.cardinality_reduction),
            ),
            (
                "mean active series",
                format!("{:.1}", c.mean_active_series),
                format!("{:.1}", b.mean_active_series),
                pct(reduction(b.mean_active_series, c.mean_active_series)),
            ),
            (
                "data points / min",
                format!("{:.1}", c.data_points_per_minute),
                format!("{:.1}", b.data_points_per_minute),
                pct(self.data_point_reduction),
            ),
            (
                "bytes / min",
                format!("{:.0}", c.bytes_per_minute),
                format!("{:.0}", b.bytes_per_minute),
                pct(self.byte_reduction),
            ),
            (
                "monthly cost: data points",
                format!("{:.2}", c.monthly_cost.data_points),
                format!("{:.2}", b.monthly_cost.data_points),
                String::new(),
            ),
            (
                "monthly cost: bytes",
                format!("{:.2}", c.monthly_cost.bytes),
                format!("{:.2}", b.monthly_cost.bytes),
                String::new(),
            ),
            (
                "monthly cost: series",
                format!("{:.2}", c.monthly_cost.series),
                format!("{:.2}", b.monthly_cost.series),
                String::new(),
            ),
            (
                "monthly cost: total",
                format!("{:.2}", c.monthly_cost.total),
                format!("{:.2}", b.monthly_cost.total),
                pct(self.cost_reduction),
            ),
        ];
        for (label, cv, bv, r) in rows {
            writeln!(f, "{label:<28} {cv:>16} {bv:>16} {r:>10}")?;
        }
        writeln!(
            f,
            "{:<28} {:>16} {:>16}",
            "flapping processes", c.flapping_processes, b.flapping_processes
        )?;
        let every = |v: &VariantFigures| {
            v.collection_interval_seconds
                .map_or_else(|| "every snapshot".to_owned(), |s| format!("{s}s"))
        };
        writeln!(
            f,
            "{:<28} {:>16} {:>16}",
            "collection interval",
            every(c),
            every(b)
        )?;
        writeln!(
            f,
            "{:<28} {:>16} {:>16}",
            "scrapes taken", c.scrapes, b.scrapes
        )?;
        let expected: usize = self.critical_coverage.iter().map(|s| s.expected).sum();
        let covered: usize = self.critical_coverage.iter().map(|s| s.covered).sum();
        writeln!(
            f,
            "critical processes: {covered}/{expected} observations complete (loss {})",
            pct(self.critical_loss)
        )?;
        for s in self
            .critical_coverage
            .iter()
            .filter(|s| s.covered < s.expected)
        {
            writeln!(
                f,
                "  scrape {}: {}/{} critical processes complete",
                s.scrape, s.covered, s.expected
            )?;
        }
        for p in &self.flapping {
            writeln!(
                f,
                "  flapping: {} (pid {}), {} transitions",
                p.name, p.pid, p.transitions
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phoenix_core::telemetry::{Attributes, Resource};

    fn process(pid: i64, name: &str) -> Resource {
        let attrs: Attributes = [
            ("process.pid", AnyValue::Int(pid)),
            ("process.executable.name", AnyValue::from(name)),
        ]
        .into_iter()
        .collect();
        Resource::new(attrs)
    }

    #[test]
    fn flapping_counts_changes_while_the_process_runs() {
        let id: ComponentId = "debug".parse().unwrap();
        let mut tally = Tally::new(id);
        let input = Snapshot::new(vec![process(1, "a"), process(2, "b")]);
        let seen = |pids: &[i64]| ExporterOutput {
            snapshot: Snapshot::new(
                pids.iter()
                    .map(|p| process(*p, if *p == 1 { "a" } else { "b" }))
                    .collect(),
            ),
            ..ExporterOutput::default()
        };
        tally.add(&input, Some(&seen(&[1, 2])));
        tally.add(&input, Some(&seen(&[2])));
        tally.add(&input, Some(&seen(&[1, 2])));
        let flapping = tally.flapping();
        assert_eq!(flapping.len(), 1);
        assert_eq!(
            (
                flapping[0].name.as_str(),
                flapping[0].pid,
                flapping[0].transitions
            ),
            ("a", 1, 2)
        );
    }

    #[test]
    fn late_starts_and_gaps_are_not_flaps() {
        let id: ComponentId = "debug".parse().unwrap();
        let mut tally = Tally::new(id);
        let kept =
            |pids: &[i64]| Snapshot::new(pids.iter().map(|p| process(*p, "x")).collect::<Vec<_>>());
        // pid 1 starts at scrape 1; pid 2 runs in scrapes 0, 2 and 3 (a gap at 1). The output
        // keeps everything in the input.
        let scrapes: [&[i64]; 4] = [&[2], &[1], &[1, 2], &[1, 2]];
        for pids in scrapes {
            let input = kept(pids);
            let out = ExporterOutput {
                snapshot: input.clone(),
                ..ExporterOutput::default()
            };
            tally.add(&input, Some(&out));
        }
        assert!(tally.flapping().is_empty(), "{:?}", tally.flapping());
        // Leaving the output while still running is a flap; the gap is not.
        let input = kept(&[1, 2]);
        let out = ExporterOutput {
            snapshot: kept(&[1]),
            ..ExporterOutput::default()
        };
        tally.add(&input, Some(&out));
        let flapping = tally.flapping();
        assert_eq!(flapping.len(), 1);
        assert_eq!((flapping[0].pid, flapping[0].transitions), (2, 1));
    }

    #[test]
    fn a_receiver_exclude_counts_as_critical_loss() {
        use phoenix_core::experiment::CriticalProcess;
        let excluding = Config::from_yaml(include_str!(
            "../tests/fixtures/config/excludes-critical.yaml"
        ))
        .unwrap();
        let keeping = Config::from_yaml(
            &include_str!("../tests/fixtures/config/excludes-critical.yaml")
                .replace("[sshd]", "[nothing-runs-as-this]"),
        )
        .unwrap();
        let workload = crate::emulator::probe_workload(&["sshd", "nginx"]);
        let options = PredictOptions {
            critical: CriticalMatcher::new(&[CriticalProcess::name("^sshd$")]).unwrap(),
            ..PredictOptions::default()
        };
        let p = predict(&excluding, &keeping, workload.iter().cloned(), &options).unwrap();
        assert!(
            p.critical_coverage
                .iter()
                .all(|c| c.expected == 1 && c.covered == 0)
        );
        assert!((p.critical_loss - 1.0).abs() < 1e-12);
        let p = predict(&keeping, &keeping, workload.into_iter(), &options).unwrap();
        assert!(
            p.critical_coverage
                .iter()
                .all(|c| c.expected == 1 && c.covered == 1)
        );
        assert_eq!(p.critical_loss, 0.0);
    }

    #[test]
    fn the_collection_interval_sets_the_rate() {
        let yaml = |interval: &str| {
            format!(
                "receivers:\n  hostmetrics:\n    collection_interval: {interval}\n    scrapers:\n      process: {{}}\nexporters:\n  otlphttp:\n    endpoint: http://backend:4318\nservice:\n  pipelines:\n    metrics:\n      receivers: [hostmetrics]\n      exporters: [otlphttp]\n"
            )
        };
        let slow = Config::from_yaml(&yaml("60s")).unwrap();
        let fast = Config::from_yaml(&yaml("10s")).unwrap();
        assert_eq!(collection_interval(&slow), Some(Duration::from_secs(60)));
        let profile =
            phoenix_sim::Profile::preset(phoenix_core::experiment::ProfilePreset::Realistic);
        let workload = Workload::from_profile(&profile, 3, 36).unwrap();
        let p = predict(
            &slow,
            &fast,
            workload.snapshots(),
            &PredictOptions::default(),
        )
        .unwrap();
        assert_eq!((p.candidate.scrapes, p.baseline.scrapes), (6, 36));
        let ratio = p.candidate.data_points_per_minute / p.baseline.data_points_per_minute;
        assert!((ratio - 1.0 / 6.0).abs() < 0.03, "{ratio}");
        assert!(p.candidate.monthly_cost.total < p.baseline.monthly_cost.total);
        // Same interval on both sides: the same figures.
        let p = predict(
            &fast,
            &fast,
            workload.snapshots(),
            &PredictOptions::default(),
        )
        .unwrap();
        assert_eq!(p.candidate, p.baseline);
    }

    #[test]
    fn simulated_workloads_stream() {
        let profile =
            phoenix_sim::Profile::preset(phoenix_core::experiment::ProfilePreset::Realistic);
        let workload = Workload::from_profile(&profile, 3, 5).unwrap();
        assert_eq!(workload.len(), 5);
        let first: Vec<Snapshot> = workload.snapshots().collect();
        let again: Vec<Snapshot> = workload.snapshots().collect();
        assert_eq!(first.len(), 5);
        assert_eq!(first, again);
        // A huge run is not generated up front: building it and reading its start is instant.
        let huge = Workload::from_profile(&profile, 3, usize::MAX).unwrap();
        assert_eq!(huge.len(), usize::MAX);
        let head: Vec<Snapshot> = huge.snapshots().take(5).collect();
        assert_eq!(head, first);
    }

    #[test]
    fn intervals_and_reductions() {
        let t = |s| Timestamp::from_secs(s);
        assert_eq!(
            infer_interval(&[t(0), t(10), t(20), t(50)]),
            Duration::from_secs(10)
        );
        assert_eq!(infer_interval(&[t(5)]), Duration::from_secs(10));
        assert!((reduction(200.0, 50.0) - 0.75).abs() < 1e-12);
        assert_eq!(reduction(0.0, 5.0), 0.0);
    }
}
