//! Embedding the generator in another tool: render a catalog template, then predict what it
//! does to a simulated host against the baseline.
//!
//! `cargo run -p phoenix-generator --example embed`

use std::io::Write;

use phoenix_core::experiment::{CriticalMatcher, ProfilePreset};
use phoenix_generator::catalog::{TemplateId, render_template};
use phoenix_generator::predict::{PredictOptions, Workload, predict};
use phoenix_generator::{Error, catalog};

fn main() -> Result<(), Error> {
    let params = serde_json::json!({ "criticalProcesses": ["^postgres$", "^nginx$"] });
    let params = params.as_object().cloned().unwrap_or_default();
    let candidate = render_template(TemplateId::Aggregated, &params)?;
    let baseline = catalog::render(TemplateId::Baseline, &serde_json::Map::new())?;

    let profile = phoenix_sim::Profile::preset(ProfilePreset::Realistic);
    let workload = Workload::from_profile(&profile, 7, 30)?;
    let critical = CriticalMatcher::new(candidate.parameters.common().critical_processes)
        .map_err(|e| Error::Workload(e.to_string()))?;
    let options = PredictOptions {
        critical,
        ..PredictOptions::default()
    };

    let prediction = predict(&candidate.config, &baseline, workload.snapshots(), &options)?;
    writeln!(std::io::stdout(), "{prediction}").map_err(|source| Error::Io {
        path: "stdout".into(),
        source,
    })
}
