//! Differential conformance: every catalog template, and a hand-written config over the
//! emulator's other components (`tests/fixtures/conformance/differential/`), run by the
//! pinned collector build and by the emulator over the same workloads, export the same
//! series, data points and values.
//!
//! The rendered config is turned into a runnable one (`conformance::derive`): its
//! `hostmetrics` receiver becomes an `otlp` receiver on 127.0.0.1 and every exporter a `file`
//! exporter, with processors and pipelines untouched. The workload is first passed through
//! the original receiver's metric selection (`Emulator::receiver_views`), then sent to the
//! collector one scrape per OTLP/HTTP request and run through the emulator on the same
//! derived config. Needs `PHOENIX_OTELCOL` (see `docs/conformance.md`); skipped without it.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod conformance;

use std::sync::OnceLock;
use std::time::Instant;

use phoenix_core::experiment::ProfilePreset;
use phoenix_core::telemetry::{Snapshot, Timestamp};
use phoenix_generator::catalog::{TemplateId, render};
use phoenix_generator::config::Config;
use phoenix_generator::emulator::Emulator;
use phoenix_sim::{MetricSelection, Profile, SimConfig, Simulator};
use serde_json::json;

/// Scrapes per workload: enough for `cumulativetodelta` to see first points, later points,
/// processes that appear and processes that exit.
const SCRAPES: usize = 8;

const WORKLOADS: [(ProfilePreset, &str); 3] = [
    (ProfilePreset::Realistic, "realistic"),
    (ProfilePreset::HighCardinality, "high-cardinality"),
    (ProfilePreset::HighChurn, "high-churn"),
];

/// The workload's snapshots, with every process metric the simulator can produce (the
/// receiver's selection removes what a template leaves disabled).
fn workload(preset: ProfilePreset) -> &'static [Snapshot] {
    static CACHE: [OnceLock<Vec<Snapshot>>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let i = WORKLOADS.iter().position(|(p, _)| *p == preset).unwrap();
    CACHE[i].get_or_init(|| {
        let config = SimConfig {
            seed: 5,
            metrics: MetricSelection::all(),
            ..SimConfig::default()
        };
        let mut sim = Simulator::new(&Profile::preset(preset), config).unwrap();
        (0..SCRAPES).map(|_| sim.next_snapshot().clone()).collect()
    })
}

/// Each template's parameters: non-default choices that exercise its processors (fan-out to
/// several exporters, class aggregation, optional metrics).
fn parameters(template: TemplateId) -> serde_json::Value {
    match template {
        TemplateId::Baseline => json!({
            "experimentId": "exp-conf0001",
            "debug": true,
        }),
        TemplateId::PriorityFilter => json!({
            "experimentId": "exp-conf0002",
            "criticalProcesses": ["^postgres$", "^systemd", {"name": "^sshd$", "path": "^/usr/"}],
            "highPriorityProcesses": ["^nginx$", "^(java|node)$", "redis-server"],
        }),
        TemplateId::TopK => json!({
            "experimentId": "exp-conf0003",
            "criticalProcesses": ["^postgres$", "^containerd$"],
            "topK": 10,
            "cpuUtilizationThreshold": 0.02,
            "memoryUsageThreshold": 134_217_728,
            "metrics": {"process.memory.utilization": true, "process.threads": true},
        }),
        TemplateId::Aggregated => json!({
            "experimentId": "exp-conf0004",
            "criticalProcesses": ["^postgres$", "^sshd$"],
            "metrics": {
                "process.context_switches": true,
                "process.paging.faults": true,
                "process.open_file_descriptors": true,
            },
            "debug": true,
        }),
        TemplateId::AdaptiveFilter => json!({
            "experimentId": "exp-conf0005",
            "criticalProcesses": ["^postgres$"],
            "cpuUtilizationThreshold": 0.1,
            "aggregationKey": "class",
            "classes": [
                {"class": "web", "pattern": "^(nginx|gunicorn|php-fpm[0-9.]*|node)$"},
                {"class": "kernel", "pattern": "^(kworker|ksoftirqd|migration|cpuhp)/"},
                {"class": "systemd", "pattern": "^systemd"},
            ],
            "otherClass": "rest",
            "metrics": {"process.context_switches": true},
        }),
    }
}

/// What is run: a catalog template, or a hand-written config over the emulator's other
/// components (`tests/fixtures/conformance/differential/`).
#[derive(Debug, Clone, Copy)]
enum Case {
    Template(TemplateId),
    Fixture(&'static str),
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Self::Template(t) => t.name(),
            Self::Fixture(f) => f,
        }
    }

    fn yaml(self) -> String {
        match self {
            Self::Template(t) => render(t, parameters(t).as_object().unwrap())
                .unwrap()
                .to_yaml()
                .unwrap(),
            Self::Fixture(f) => std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fixtures/conformance/differential")
                    .join(format!("{f}.yaml")),
            )
            .unwrap(),
        }
    }
}

struct PairResult {
    case: Case,
    workload: &'static str,
    comparisons: Vec<conformance::Comparison>,
    input_points: usize,
}

/// The input both sides see: the workload through the original receiver's own selection
/// (disabled metrics and attributes).
fn receiver_view(config: &Config, snapshots: &[Snapshot]) -> Vec<Snapshot> {
    let original = Emulator::new(config).unwrap();
    snapshots
        .iter()
        .map(|s| {
            let mut views = original.receiver_views(s);
            assert_eq!(views.len(), 1, "one receiver expected");
            views.remove(0).0
        })
        .collect()
}

/// A workload whose simulated time starts after the collector did, so that
/// `cumulativetodelta`'s `initial_value: auto` keeps the first point of processes started
/// during the run and drops it for older ones. Processes whose start time falls in the
/// interval where the collector's own start time lies (between spawning it and its receiver
/// listening, with a second of margin) are left out of the input of both sides: on them the
/// outcome depends on when exactly the processor was created.
fn workload_after(preset: ProfilePreset, collector: &conformance::Collector) -> Vec<Snapshot> {
    let ten = 10_000_000_000;
    let start = (collector.ready_after.as_nanos() / ten + 7) * ten;
    let config = SimConfig {
        seed: 5,
        metrics: MetricSelection::all(),
        start: Timestamp::from_nanos(start),
        ..SimConfig::default()
    };
    let mut sim = Simulator::new(&Profile::preset(preset), config).unwrap();
    let low = collector.started_before.as_nanos() - 1_000_000_000;
    let high = collector.ready_after.as_nanos() + 1_000_000_000;
    (0..SCRAPES)
        .map(|_| {
            let mut s = sim.next_snapshot().clone();
            s.resources.retain(|r| {
                !r.metrics()
                    .flat_map(|m| m.data.points())
                    .any(|p| (low..=high).contains(&p.start_time.as_nanos()))
            });
            s
        })
        .collect()
}

fn run_pair(
    bin: &std::path::Path,
    case: Case,
    preset: ProfilePreset,
    workload_name: &'static str,
) -> PairResult {
    let yaml = case.yaml();
    let config = Config::from_yaml(&yaml).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let derived = conformance::derive(&yaml, dir.path());
    let collector = conformance::Collector::start(bin, dir.path(), &derived);
    let inputs = match case {
        Case::Template(_) => receiver_view(&config, workload(preset)),
        Case::Fixture(_) => receiver_view(&config, &workload_after(preset, &collector)),
    };
    let requests: Vec<Vec<u8>> = inputs
        .iter()
        .map(phoenix_core::otlp::encode_protobuf)
        .collect();
    collector.send(&requests);
    let collector_start = collector.started_before;
    let exported = collector.stop(&derived);
    let predicted = conformance::run_emulator(&derived, &inputs, collector_start);
    let comparisons = derived
        .exporters
        .keys()
        .map(|id| conformance::compare(id, &exported[id], &predicted[id]))
        .collect();
    PairResult {
        case,
        workload: workload_name,
        comparisons,
        input_points: inputs.iter().map(Snapshot::data_point_count).sum(),
    }
}

#[test]
fn every_template_and_workload_matches_the_collector() {
    let Some(bin) = conformance::collector("every_template_and_workload_matches_the_collector")
    else {
        return;
    };
    let started = Instant::now();
    let cases = TemplateId::ALL
        .into_iter()
        .map(Case::Template)
        .chain([Case::Fixture("components")]);
    let pairs: Vec<(Case, ProfilePreset, &'static str)> = cases
        .flat_map(|c| WORKLOADS.iter().map(move |(p, n)| (c, *p, *n)))
        .collect();
    // Generate the workloads before the threads start.
    for (preset, _) in WORKLOADS {
        workload(preset);
    }
    let results = conformance::parallel_map(&pairs, |(t, p, n)| run_pair(&bin, *t, *p, n));

    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for r in &results {
        for c in &r.comparisons {
            rows.push(vec![
                r.case.name().to_owned(),
                r.workload.to_owned(),
                c.exporter.clone(),
                r.input_points.to_string(),
                format!("{} / {}", c.series.0, c.series.1),
                format!("{} / {}", c.data_points.0, c.data_points.1),
                format!("{:.1e}", c.max_relative_error),
                if c.agrees() { "yes" } else { "no" }.to_owned(),
            ]);
            if !c.agrees() {
                failures.push(format!(
                    "{} × {} → {}:\n  {}",
                    r.case.name(),
                    r.workload,
                    c.exporter,
                    c.differences.join("\n  ")
                ));
            }
        }
    }
    eprintln!(
        "differential conformance, {SCRAPES} scrapes per workload (collector / emulator), {:.1} s:\n{}",
        started.elapsed().as_secs_f64(),
        conformance::table(
            &[
                "case",
                "workload",
                "exporter",
                "input points",
                "series",
                "data points",
                "max rel. error",
                "agree",
            ],
            &rows
        )
    );
    assert!(
        failures.is_empty(),
        "the emulator disagrees with the collector:\n{}",
        failures.join("\n")
    );
}

/// The comparison itself, without the collector: it notices a missing point, a changed value,
/// a changed value type, a renamed series and changed metric metadata, and ignores how
/// points are grouped into requests.
#[test]
fn the_comparison_notices_every_kind_of_difference() {
    use phoenix_core::telemetry::{MetricData, NumberValue};

    let profile = Profile::preset(ProfilePreset::Realistic)
        .with_processes(6)
        .unwrap();
    let mut sim = Simulator::new(&profile, SimConfig::default()).unwrap();
    let scrapes: Vec<Snapshot> = (0..2).map(|_| sim.next_snapshot().clone()).collect();
    let agree = conformance::compare("x", &scrapes, &scrapes);
    assert!(agree.agrees(), "{:?}", agree.differences);

    // Regrouped: both scrapes in one request, resources in reverse order.
    let mut merged = scrapes[0].clone();
    merged
        .resources
        .extend(scrapes[1].resources.iter().cloned());
    merged.resources.reverse();
    assert!(conformance::compare("x", &[merged], &scrapes).agrees());

    let edit = |f: &dyn Fn(&mut Snapshot)| {
        let mut changed = scrapes.clone();
        f(&mut changed[1]);
        conformance::compare("x", &changed, &scrapes)
    };
    let dropped = edit(&|s| {
        s.resources[0].scopes[0].metrics[0].data.points_mut().pop();
    });
    assert!(!dropped.agrees());
    assert_ne!(dropped.data_points.0, dropped.data_points.1);

    let nudged = edit(&|s| {
        for m in &mut s.resources[0].scopes[0].metrics {
            for p in m.data.points_mut() {
                p.value = match p.value {
                    NumberValue::Double(d) => NumberValue::Double(d * (1.0 + 1e-7) + 1e-7),
                    NumberValue::Int(i) => NumberValue::Int(i + 1),
                };
            }
        }
    });
    assert!(!nudged.agrees() && nudged.max_relative_error > conformance::RELATIVE_TOLERANCE);

    let retyped = edit(&|s| {
        let p = &mut s.resources[0].scopes[0].metrics[0].data.points_mut()[0];
        p.value = match p.value {
            NumberValue::Int(i) => NumberValue::Double(i as f64),
            NumberValue::Double(d) => NumberValue::Int(d as i64),
        };
    });
    assert!(!retyped.agrees());
    assert!(
        retyped
            .differences
            .iter()
            .any(|d| d.contains("value types differ")),
        "{retyped:?}"
    );

    let renamed = edit(&|s| s.resources[0].attributes.insert("process.pid", 999_999_i64));
    assert!(renamed.series.0 > renamed.series.1, "{renamed:?}");
    assert!(renamed.differences[0].starts_with("series:"), "{renamed:?}");

    let relabelled = edit(&|s| {
        let m = &mut s.resources[0].scopes[0].metrics[0];
        m.unit = "changed".to_owned();
        if let MetricData::Sum { monotonic, .. } = &mut m.data {
            *monotonic = !*monotonic;
        }
    });
    assert!(!relabelled.agrees());
}
