//! The quickstart: every candidate template of the catalog against the baseline, on a
//! simulated host, through the experiment controller and the [`LocalExecutor`].
//!
//! [`run`] creates one experiment per candidate template in the given store, drives each to
//! its end, and returns a [`Report`] whose `Display` is the comparison table the
//! `quickstart` example prints. Every figure comes from the experiments' stored results.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use phoenix_core::analysis::ExperimentResults;
use phoenix_core::controller::ExperimentController;
use phoenix_core::executor::Executor;
use phoenix_core::experiment::{
    CriticalProcess, EventKind, Experiment, ExperimentId, ExperimentSpec, PipelineRef,
    ProfilePreset, Workload, WorkloadSource,
};
use phoenix_core::phase::Phase;
use phoenix_core::store::ExperimentStore;
use phoenix_core::{Error, Result};
use phoenix_generator::catalog::TemplateId;

use crate::local::LocalExecutor;

/// The actor named in the events of quickstart experiments.
pub const ACTOR: &str = "quickstart";

/// What the quickstart runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The simulator preset.
    pub preset: ProfilePreset,
    /// Process count instead of the preset's own.
    pub processes: Option<u32>,
    /// Simulated time per experiment.
    pub duration: Duration,
    /// Time between scrapes.
    pub scrape_interval: Duration,
    /// The simulator's seed.
    pub seed: u64,
    /// Processes that must stay fully visible.
    pub critical_processes: Vec<CriticalProcess>,
}

impl Default for Options {
    /// `realistic`, one hour at 10 s scrapes, seed 1, with `postgres`, `nginx`, `sshd` and
    /// `systemd` critical.
    fn default() -> Self {
        Self {
            preset: ProfilePreset::Realistic,
            processes: None,
            duration: Duration::from_secs(3600),
            scrape_interval: Duration::from_secs(10),
            seed: 1,
            critical_processes: ["^postgres$", "^nginx$", "^sshd$", "^systemd$"]
                .into_iter()
                .map(CriticalProcess::name)
                .collect(),
        }
    }
}

/// The candidate templates: every template of the catalog but the baseline.
pub fn candidates() -> Vec<TemplateId> {
    TemplateId::ALL
        .into_iter()
        .filter(|t| *t != TemplateId::Baseline)
        .collect()
}

/// The experiment spec comparing `candidate` with the baseline template, with default
/// parameters and success criteria.
pub fn spec(candidate: TemplateId, options: &Options) -> ExperimentSpec {
    let name = candidate.name();
    ExperimentSpec {
        name: format!("quickstart-{}", name.trim_start_matches("process-")),
        description: format!(
            "{name} against process-baseline-v1 on the {} profile",
            options.preset
        ),
        owner: ACTOR.to_owned(),
        baseline: PipelineRef::template(TemplateId::Baseline.name()),
        candidate: PipelineRef::template(name),
        target: phoenix_core::experiment::Target::Local,
        workload: Workload {
            source: WorkloadSource::Profile {
                preset: options.preset,
                processes: options.processes,
            },
            seed: options.seed,
        },
        duration: options.duration,
        warm_up: Duration::ZERO,
        scrape_interval: options.scrape_interval,
        measurement_window: None,
        critical_processes: options.critical_processes.clone(),
        success_criteria: phoenix_core::experiment::SuccessCriteria::default(),
        cost_model: None,
    }
}

/// What happened to one candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The candidate template.
    pub template: TemplateId,
    /// Its experiment.
    pub experiment: ExperimentId,
    /// Where the experiment ended.
    pub phase: Phase,
    /// The results, when it completed.
    pub results: Option<ExperimentResults>,
    /// Why it failed, when it did.
    pub failure: Option<String>,
    /// Wall time the run took.
    pub elapsed: Duration,
}

/// Progress of a quickstart run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Progress<'a> {
    /// An experiment is about to run.
    Started {
        /// The candidate.
        template: TemplateId,
        /// Its experiment.
        experiment: &'a ExperimentId,
        /// Its position among the candidates, from 1.
        position: usize,
        /// How many candidates there are.
        of: usize,
    },
    /// An experiment ended.
    Finished(&'a Outcome),
}

/// The quickstart's outcome: one entry per candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// What was run.
    pub options: Options,
    /// Per candidate, in catalog order.
    pub outcomes: Vec<Outcome>,
}

/// Runs the quickstart: one experiment per candidate template in `store`, each driven to its
/// end by an [`ExperimentController`] with a [`LocalExecutor`]. `progress` hears about each
/// experiment as it starts and ends.
///
/// # Errors
///
/// Store errors. A failed experiment is not an error: its outcome carries the reason.
pub async fn run(
    store: Arc<dyn ExperimentStore>,
    options: &Options,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<Report> {
    let executor: Arc<dyn Executor> = Arc::new(LocalExecutor::new());
    let controller = ExperimentController::new(Arc::clone(&store), executor);
    let templates = candidates();
    let mut outcomes = Vec::with_capacity(templates.len());
    for (i, template) in templates.iter().copied().enumerate() {
        let spec = spec(template, options);
        spec.validate().map_err(Error::Invalid)?;
        let experiment = Experiment::new(spec);
        let event = experiment.event(ACTOR, EventKind::Created, "created by the quickstart");
        store.create(&experiment, &event).await?;
        progress(Progress::Started {
            template,
            experiment: &experiment.id,
            position: i + 1,
            of: templates.len(),
        });
        let started = Instant::now();
        let done = controller.run(&experiment.id).await?;
        let outcome = Outcome {
            template,
            experiment: done.id,
            phase: done.status.phase,
            results: done.status.results,
            failure: done.status.failure,
            elapsed: started.elapsed(),
        };
        progress(Progress::Finished(&outcome));
        outcomes.push(outcome);
    }
    Ok(Report {
        options: options.clone(),
        outcomes,
    })
}

/// A count with thousands separators, rounded half away from zero.
fn thousands(value: f64) -> String {
    crate::core::analysis::fixed(value.max(0.0).round(), 0)
}

fn bytes(value: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = value.max(0.0);
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn change(reduction: f64) -> String {
    format!("{:+.1}%", -reduction * 100.0)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        writeln!(
            f,
            "Profile {}{}, seed {}, {} simulated at one scrape every {}; critical: {}",
            o.preset,
            o.processes
                .map(|n| format!(" ({n} processes)"))
                .unwrap_or_default(),
            o.seed,
            humantime::format_duration(o.duration),
            humantime::format_duration(o.scrape_interval),
            o.critical_processes
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        )?;
        writeln!(f)?;
        let header = [
            "pipeline",
            "distinct series",
            "mean active",
            "points/min",
            "bytes/min",
            "monthly cost",
            "cost change",
            "critical seen",
            "recommendation",
        ];
        let mut rows: Vec<[String; 9]> = Vec::new();
        let row = |name: &str,
                   s: &phoenix_core::analysis::VariantSummary,
                   currency: &str,
                   cost_change: String,
                   recommendation: String| {
            [
                name.to_owned(),
                thousands(s.distinct_series as f64),
                format!("{:.1}", s.mean_active_series),
                thousands(s.data_points_per_minute),
                bytes(s.bytes_per_minute),
                format!("{:.2} {currency}", s.monthly_cost.total),
                cost_change,
                format!(
                    "{:.1}% ({}/{})",
                    s.critical_coverage * 100.0,
                    s.critical_seen,
                    s.critical_expected
                ),
                recommendation,
            ]
        };
        if let Some(r) = self.outcomes.iter().find_map(|o| o.results.as_ref()) {
            let currency = r.cost_model.currency.as_str();
            rows.push(row(
                TemplateId::Baseline.name(),
                &r.baseline,
                currency,
                "—".to_owned(),
                "(reference)".to_owned(),
            ));
        }
        let mut notes = Vec::new();
        for outcome in &self.outcomes {
            let name = outcome.template.name();
            match &outcome.results {
                Some(r) => {
                    let currency = r.cost_model.currency.as_str();
                    rows.push(row(
                        name,
                        &r.candidate,
                        currency,
                        change(r.comparison.cost_reduction),
                        r.recommendation.as_str().to_owned(),
                    ));
                    for reason in r.recommendation.reasons() {
                        notes.push(format!("{name}: {reason}"));
                    }
                }
                None => {
                    let mut cells: [String; 9] = Default::default();
                    cells[0] = name.to_owned();
                    cells[8] = outcome.phase.as_str().to_owned();
                    rows.push(cells);
                    notes.push(format!(
                        "{name}: {}",
                        outcome.failure.as_deref().unwrap_or("no results")
                    ));
                }
            }
        }
        let mut widths = header.map(str::len);
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, cells: &[&str]| -> fmt::Result {
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                let pad = w.saturating_sub(cell.chars().count());
                if i + 1 == cells.len() {
                    f.write_str(cell)?;
                } else if i == 0 {
                    write!(f, "{cell}{}", " ".repeat(pad))?;
                } else {
                    write!(f, "{}{cell}", " ".repeat(pad))?;
                }
                if i + 1 < cells.len() {
                    f.write_str("  ")?;
                }
            }
            writeln!(f)
        };
        line(f, &header)?;
        for r in &rows {
            let cells: Vec<&str> = r.iter().map(String::as_str).collect();
            line(f, &cells)?;
        }
        if let Some(r) = self.outcomes.iter().find_map(|o| o.results.as_ref()) {
            let c = &r.cost_model;
            writeln!(f)?;
            writeln!(
                f,
                "Monthly cost at {:.2} {cur} per million data points, {:.2} {cur} per GB and {:.4} {cur} per active series-month; bytes are encoded OTLP protobuf.",
                c.per_million_data_points,
                c.per_gb_ingested,
                c.per_active_series_month,
                cur = c.currency
            )?;
        }
        if !notes.is_empty() {
            writeln!(f)?;
            for note in &notes {
                writeln!(f, "- {note}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_candidate_spec_validates() {
        let options = Options::default();
        let specs: Vec<_> = candidates().iter().map(|t| spec(*t, &options)).collect();
        assert_eq!(specs.len(), TemplateId::ALL.len() - 1);
        for s in &specs {
            s.validate().unwrap();
            assert_eq!(s.windows().len(), 60);
        }
    }

    #[test]
    fn numbers_are_readable() {
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(change(0.25), "-25.0%");
    }
}
