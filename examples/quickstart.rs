//! Every candidate template against the baseline on a simulated host, one simulated hour
//! each, stored in an embedded SQLite database, then a comparison table.
//!
//! ```text
//! cargo run --release --example quickstart
//! ```
//!
//! The database is `phoenix-quickstart.db` in the system's temporary directory (set
//! `PHOENIX_QUICKSTART_DB` to use another file). Progress goes to stderr, the table to stdout.

// An example program reports to its terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use phoenix::core::experiment::ExperimentSpec;
use phoenix::quickstart::{self, Options, Progress};

fn database() -> PathBuf {
    std::env::var_os("PHOENIX_QUICKSTART_DB").map_or_else(
        || std::env::temp_dir().join("phoenix-quickstart.db"),
        PathBuf::from,
    )
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let path = database();
    let url = format!("sqlite://{}", path.display());
    let store = phoenix::store::open(&url).await?;
    eprintln!("store: {url}");
    let options = Options::default();
    let mut progress = |event: Progress<'_>| match event {
        Progress::Started {
            template,
            experiment,
            position,
            of,
        } => {
            eprintln!("[{position}/{of}] {experiment}: {template} against process-baseline-v1 ...");
        }
        Progress::Finished(outcome) => eprintln!(
            "      {}: {} in {:.2} s",
            outcome.experiment,
            outcome.phase,
            outcome.elapsed.as_secs_f64()
        ),
    };
    let report = quickstart::run(Arc::new(store), &options, &mut progress).await?;
    println!("{report}");
    let spec: ExperimentSpec = quickstart::spec(quickstart::candidates()[0], &options);
    println!(
        "{} experiments of {} windows each are stored in {}; total wall time {:.2} s.",
        report.outcomes.len(),
        spec.windows().len(),
        path.display(),
        started.elapsed().as_secs_f64()
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
