//! Each template's predicted series and data points on a small hand-written workload, against
//! numbers computed by hand.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use phoenix_core::experiment::{CriticalMatcher, CriticalProcess};
use phoenix_generator::catalog::{TemplateId, render};
use phoenix_generator::predict::{PredictOptions, Prediction, Workload, predict};

/// `tests/fixtures/workload-small.jsonl`: three scrapes at t = 1100 s, 1110 s, 1120 s of
///
/// | pid | executable | scrapes | memory.usage |
/// |---|---|---|---|
/// | 10 | postgres (critical) | 1, 2, 3 | 500 MB |
/// | 20 | nginx | 1, 2, 3 | 200 MB |
/// | 21 | nginx | 1, 2, 3 | 50 MB |
/// | 30 | bash (started at 1105 s) | 2, 3 | 5 MB |
///
/// each with the scraper's four default metrics: `process.cpu.time` (states user, system,
/// wait: 3 points), `process.memory.usage` (1), `process.memory.virtual` (1) and
/// `process.disk.io` (directions read, write: 2), so 7 points and 7 series per process.
fn workload() -> Workload {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/workload-small.jsonl");
    Workload::from_recording(&path).unwrap()
}

fn params(extra: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    let mut map = serde_json::json!({
        "criticalProcesses": ["^postgres$"],
        "experimentId": "exp-fixture1",
    });
    for (k, v) in extra.as_object().unwrap() {
        map.as_object_mut().unwrap().insert(k.clone(), v.clone());
    }
    map.as_object().unwrap().clone()
}

fn run(template: TemplateId, extra: &serde_json::Value) -> Prediction {
    let candidate = render(template, &params(extra)).unwrap();
    let baseline = render(TemplateId::Baseline, &params(&serde_json::json!({}))).unwrap();
    let options = PredictOptions {
        critical: CriticalMatcher::new(&[CriticalProcess::name("^postgres$")]).unwrap(),
        ..PredictOptions::default()
    };
    predict(&candidate, &baseline, workload().snapshots(), &options).unwrap()
}

fn assert_counts(p: &Prediction, distinct: usize, points: u64) {
    assert_eq!(
        p.candidate.distinct_series, distinct,
        "distinct series\n{p}"
    );
    assert_eq!(p.candidate.total_data_points, points, "data points\n{p}");
    // Every scrape keeps postgres complete.
    assert_eq!(p.critical_loss, 0.0, "{p}");
    assert_eq!(p.critical_coverage.len(), 3);
    assert!(
        p.critical_coverage
            .iter()
            .all(|c| c.expected == 1 && c.covered == 1),
        "{p}"
    );
}

#[test]
fn baseline_exports_everything() {
    let p = run(TemplateId::Baseline, &serde_json::json!({}));
    // Points: scrape 1 has 3 processes × 7 = 21, scrapes 2 and 3 have 4 × 7 = 28:
    // 21 + 28 + 28 = 77. Series: 4 processes × 7 = 28.
    assert_counts(&p, 28, 77);
    assert_eq!(p.baseline.total_data_points, 77);
    // 77 points over 3 scrapes of 10 s = 0.5 min: 154 points per minute.
    assert!((p.candidate.data_points_per_minute - 154.0).abs() < 1e-9);
    // Mean active series: (21 + 28 + 28) / 3.
    assert!((p.candidate.mean_active_series - 77.0 / 3.0).abs() < 1e-9);
    // The report prints as a table and serialises as JSON.
    let table = p.to_string();
    assert!(
        table.contains("distinct series") && table.contains("3/3"),
        "{table}"
    );
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["candidate"]["distinctSeries"], 28);
    assert_eq!(json["criticalCoverage"].as_array().unwrap().len(), 3);
}

#[test]
fn priority_filter_keeps_critical_and_high_priority() {
    let p = run(
        TemplateId::PriorityFilter,
        &serde_json::json!({"highPriorityProcesses": ["^nginx$"]}),
    );
    // bash is dropped: 3 processes × 7 points × 3 scrapes = 63; series 3 × 7 = 21.
    assert_counts(&p, 21, 63);
}

#[test]
fn topk_keeps_critical_and_processes_above_the_thresholds() {
    let p = run(
        TemplateId::TopK,
        &serde_json::json!({"memoryUsageThreshold": 100_000_000, "cpuUtilizationThreshold": null}),
    );
    // Active (memory.usage > 100 MB): postgres (500 MB) and nginx pid 20 (200 MB); nginx pid 21
    // (50 MB) and bash (5 MB) are dropped. Kept: 2 processes × 7 points × 3 scrapes = 42;
    // series 2 × 7 = 14.
    assert_counts(&p, 14, 42);
}

#[test]
fn aggregated_sums_non_critical_processes_per_executable_name() {
    let p = run(TemplateId::Aggregated, &serde_json::json!({}));
    // Pipeline `critical`: postgres, 7 points × 3 scrapes = 21 points, 7 series.
    // Pipeline `aggregated` (cumulativetodelta with initial_value keep, identity stripped,
    // resources compacted, points summed per metric, attributes, time and, for delta sums,
    // start time):
    //   scrape 1: nginx 20 + 21 merge into one `nginx` resource: 7 points;
    //   scrape 2: `nginx` 7 points + `bash` (first seen) 7 points = 14;
    //   scrape 3: 14.
    //   => 7 + 14 + 14 = 35 points; series: 2 names × 7 = 14.
    // Total: 21 + 35 = 56 points; 7 + 14 = 21 series.
    assert_counts(&p, 21, 56);
}

#[test]
fn adaptive_filter_keeps_active_processes_and_aggregates_the_rest() {
    let p = run(
        TemplateId::AdaptiveFilter,
        &serde_json::json!({"memoryUsageThreshold": 100_000_000, "cpuUtilizationThreshold": null}),
    );
    // Pipeline `full`: postgres and nginx pid 20 (active): 14 points × 3 scrapes = 42, 14 series.
    // Pipeline `aggregated`: nginx pid 21 and bash, one resource per name:
    //   scrape 1: nginx 7; scrapes 2 and 3: nginx 7 + bash 7 = 14 => 35 points, 14 series.
    // Total: 42 + 35 = 77 points; 14 + 14 = 28 series.
    assert_counts(&p, 28, 77);
}

#[test]
fn a_malformed_recording_names_the_line() {
    let err = Workload::from_json_lines("{\"resourceMetrics\":[]}\nnot json\n").unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
}
