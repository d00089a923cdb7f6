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

/// Snapshots to predict over.
#[derive(Debug, Clone, Default)]
pub struct Workload {
    snapshots: Vec<Snapshot>,
}

impl Workload {
    /// A workload of these snapshots.
    pub fn new(snapshots: Vec<Snapshot>) -> Self {
        Self { snapshots }
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
        Ok(Self { snapshots })
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
    /// scrape interval, start time, metric selection).
    ///
    /// # Errors
    ///
    /// [`Error::Workload`] if the simulator refuses the profile or the settings.
    pub fn from_simulation(
        profile: &phoenix_sim::Profile,
        config: phoenix_sim::SimConfig,
        scrapes: usize,
    ) -> Result<Self> {
        let mut sim = phoenix_sim::Simulator::new(profile, config)
            .map_err(|e| Error::Workload(e.to_string()))?;
        let snapshots = (0..scrapes).map(|_| sim.next_snapshot().clone()).collect();
        Ok(Self { snapshots })
    }

    /// The snapshots in order.
    pub fn snapshots(&self) -> impl Iterator<Item = Snapshot> + '_ {
        self.snapshots.iter().cloned()
    }

    /// How many scrapes the workload holds.
    pub fn len(&self) -> usize {
        self.snapshots.len()
    }

    /// Whether the workload is empty.
    pub fn is_empty(&self) -> bool {
        self.snapshots.is_empty()
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
    presence: HashMap<(String, i64), Vec<bool>>,
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
        }
    }

    fn add(&mut self, scrape: usize, input: &Snapshot, out: Option<&ExporterOutput>) {
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
                let row = self
                    .presence
                    .entry(id.clone())
                    .or_insert_with(|| vec![false; scrape]);
                row.resize(scrape, false);
                row.push(seen.contains(&id));
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
            .filter_map(|((name, pid), row)| {
                let transitions = row.windows(2).filter(|w| w[0] != w[1]).count();
                (transitions > 0 && row.iter().any(|x| *x)).then(|| FlappingProcess {
                    name: name.clone(),
                    pid: *pid,
                    transitions,
                })
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
    fn figures(&self, scrapes: usize, interval: Duration, cost: &CostModel) -> VariantFigures {
        let minutes = (scrapes as f64 * interval.as_secs_f64() / 60.0).max(f64::MIN_POSITIVE);
        let mean_active = if scrapes == 0 {
            0.0
        } else {
            self.active_sum as f64 / scrapes as f64
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
        }
    }
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
    let mut coverage = Vec::new();
    let mut times = Vec::new();
    let mut scrapes = 0;
    for snapshot in workload {
        if let Some(t) = snapshot.time() {
            times.push(t);
        }
        let views = cand.receiver_views(&snapshot);
        {
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
            let mut expected: BTreeMap<(String, i64), bool> = BTreeMap::new();
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
                    let entry = expected.entry(id).or_insert(true);
                    *entry &= ok;
                }
            }
            coverage.push(ScrapeCoverage {
                scrape: scrapes + 1,
                expected: expected.len(),
                covered: expected.values().filter(|ok| **ok).count(),
            });
            cand_tally.add(scrapes, &snapshot, exported);
        }
        let out = base.process(&snapshot)?;
        base_tally.add(scrapes, &snapshot, out.exporters.get(&base_tally.exporter));
        scrapes += 1;
    }
    let interval = options
        .scrape_interval
        .unwrap_or_else(|| infer_interval(&times));
    let candidate_figures = cand_tally.figures(scrapes, interval, &options.cost);
    let baseline_figures = base_tally.figures(scrapes, interval, &options.cost);
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
        tally.add(0, &input, Some(&seen(&[1, 2])));
        tally.add(1, &input, Some(&seen(&[2])));
        tally.add(2, &input, Some(&seen(&[1, 2])));
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
