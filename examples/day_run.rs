//! One simulated day of the `realistic` profile with two variants (the baseline and a
//! candidate template) on the local executor, run end to end through the experiment
//! controller with an in-memory store; prints the wall time.
//!
//! ```text
//! cargo run --release --example day_run [-- <candidate template> [<runs> [<hours>]]]
//! ```
//!
//! The candidate defaults to `process-aggregated-v1`; with `<runs>` above one, the day is run
//! that many times (each a fresh experiment) and every wall time is printed with the median.
//! `<hours>` (default 24) shortens or lengthens the simulated time, for profiling.

// An example program reports to its terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use phoenix::core::controller::ExperimentController;
use phoenix::core::experiment::{EventKind, Experiment, ExperimentSpec};
use phoenix::core::phase::Phase;
use phoenix::core::store::ExperimentStore;
use phoenix::local::LocalExecutor;

fn spec(candidate: &str, hours: u64) -> Result<ExperimentSpec, Box<dyn std::error::Error>> {
    let yaml = format!(
        r#"
name: day-run
baseline: {{template: process-baseline-v1}}
candidate: {{template: {candidate}}}
workload: {{profile: realistic, seed: 1}}
duration: {hours}h
scrapeInterval: 10s
criticalProcesses: ["^postgres$", "^nginx$", "^sshd$", "^systemd$"]
"#
    );
    let spec: ExperimentSpec = serde_yaml::from_str(&yaml)?;
    spec.validate()?;
    Ok(spec)
}

async fn run_once(spec: &ExperimentSpec) -> Result<Duration, Box<dyn std::error::Error>> {
    let store = Arc::new(phoenix::store::MemoryStore::new());
    let experiment = Experiment::new(spec.clone());
    store
        .create(
            &experiment,
            &experiment.event("day-run", EventKind::Created, "created"),
        )
        .await?;
    let controller = ExperimentController::new(store, Arc::new(LocalExecutor::new()));
    let started = Instant::now();
    let done = controller.run(&experiment.id).await?;
    let elapsed = started.elapsed();
    if done.status.phase != Phase::Completed {
        return Err(format!(
            "the experiment ended {}: {}",
            done.status.phase,
            done.status.failure.unwrap_or_default()
        )
        .into());
    }
    if let Some(results) = &done.status.results {
        eprintln!(
            "  baseline {:.0} data points/min, candidate {:.0} data points/min, critical coverage {:.3}",
            results.baseline.data_points_per_minute,
            results.candidate.data_points_per_minute,
            results.candidate.critical_coverage,
        );
    }
    Ok(elapsed)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let candidate = args
        .next()
        .unwrap_or_else(|| "process-aggregated-v1".to_owned());
    let runs: usize = match args.next() {
        Some(n) => n.parse().map_err(|e| format!("<runs> {n:?}: {e}"))?,
        None => 1,
    };
    let hours: u64 = match args.next() {
        Some(n) => n.parse().map_err(|e| format!("<hours> {n:?}: {e}"))?,
        None => 24,
    };
    let spec = spec(&candidate, hours)?;
    let scrapes = spec.duration.as_secs() / spec.scrape_interval.as_secs().max(1);
    eprintln!(
        "realistic, {hours} h at 10 s ({scrapes} scrapes), process-baseline-v1 against {candidate}"
    );
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs.max(1) {
        let elapsed = run_once(&spec).await?;
        println!("run {}: {:.3} s", i + 1, elapsed.as_secs_f64());
        times.push(elapsed);
    }
    times.sort();
    println!(
        "median wall time: {:.3} s",
        times[times.len() / 2].as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
