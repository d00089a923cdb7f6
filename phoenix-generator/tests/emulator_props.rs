//! Property tests of the catalog's templates through the emulator, over random workloads
//! whose process names include critical ones and regex metacharacters.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashSet};

use phoenix_core::experiment::{CriticalMatcher, CriticalProcess};
use phoenix_core::telemetry::{
    AnyValue, Attributes, DataPoint, Metric, MetricData, ProcessMetric, Resource, ScopeMetrics,
    Snapshot, Timestamp,
};
use phoenix_generator::catalog::{TemplateId, render};
use phoenix_generator::config::Config;
use phoenix_generator::emulator::Emulator;
use proptest::prelude::*;

/// Executable names: ordinary ones, and ones full of regex metacharacters.
const NAMES: &[&str] = &[
    "postgres",
    "sshd",
    "nginx",
    "java",
    "a.b",
    "c++",
    "(x)",
    "[y]",
    "$z",
    r"back\slash",
    "q?",
    "x|y",
    "^caret",
    "star*",
    "{brace}",
];

const METRICS: [ProcessMetric; 4] = [
    ProcessMetric::CpuTime,
    ProcessMetric::MemoryUsage,
    ProcessMetric::MemoryVirtual,
    ProcessMetric::DiskIo,
];

/// Points (and series) per process per scrape: 3 + 1 + 1 + 2.
const POINTS_PER_PROCESS: usize = 7;

#[derive(Debug, Clone)]
struct Proc {
    pid: i64,
    name: &'static str,
    /// Which of the three scrapes the process is alive in (a contiguous run).
    first: usize,
    last: usize,
    memory: i64,
}

fn procs() -> impl Strategy<Value = Vec<Proc>> {
    prop::collection::vec(
        (0..NAMES.len(), 0_usize..3, 0_usize..3, 1_i64..1_000_000_000),
        1..10,
    )
    .prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (n, a, b, memory))| Proc {
                pid: 100 + i64::try_from(i).unwrap(),
                name: NAMES[n],
                first: a.min(b),
                last: a.max(b),
                memory,
            })
            .collect()
    })
}

fn resource(p: &Proc, scrape: usize) -> Resource {
    let k = i64::try_from(scrape).unwrap();
    let start = Timestamp::from_secs(500 + u64::try_from(p.pid).unwrap());
    // Each process is read at its own instant, a few milliseconds apart, as the scraper does.
    let time = Timestamp::from_nanos(
        (1000 + 10 * u64::try_from(scrape).unwrap()) * 1_000_000_000
            + u64::try_from(p.pid).unwrap() * 1_000_000,
    );
    let attrs: Attributes = [
        ("process.pid", AnyValue::Int(p.pid)),
        ("process.parent_pid", AnyValue::Int(1)),
        ("process.executable.name", AnyValue::from(p.name)),
        (
            "process.executable.path",
            AnyValue::from(format!("/opt/{}", p.name)),
        ),
        ("process.command", AnyValue::from(p.name)),
        (
            "process.command_line",
            AnyValue::from(format!("{} --id {}", p.name, p.pid)),
        ),
        ("process.owner", AnyValue::from("app")),
    ]
    .into_iter()
    .collect();
    let metrics = METRICS
        .iter()
        .map(|&m| {
            let mut metric = Metric::process(m);
            let values = m.point_values();
            let attr = m.point_attribute();
            for j in 0..m.points_per_scrape() {
                let jj = i64::try_from(j).unwrap();
                #[allow(clippy::cast_precision_loss)]
                let mut point = match m {
                    ProcessMetric::CpuTime => {
                        DataPoint::new(start, time, (p.pid * (k + 1) + jj) as f64 * 0.25)
                    }
                    ProcessMetric::DiskIo => {
                        DataPoint::new(start, time, p.pid * 100 * (k + 1) + jj)
                    }
                    _ => DataPoint::new(start, time, p.memory + jj),
                };
                if let (Some(a), Some(v)) = (attr, values.get(j)) {
                    point = point.with_attribute(a.key(), *v);
                }
                metric.data.points_mut().push(point);
            }
            metric
        })
        .collect();
    Resource {
        scopes: vec![ScopeMetrics {
            metrics,
            ..ScopeMetrics::default()
        }],
        ..Resource::new(attrs)
    }
}

fn workload(procs: &[Proc]) -> Vec<Snapshot> {
    (0..3)
        .map(|s| {
            Snapshot::new(
                procs
                    .iter()
                    .filter(|p| p.first <= s && s <= p.last)
                    .map(|p| resource(p, s))
                    .collect(),
            )
        })
        .collect()
}

/// A critical pattern: an anchored exact name, or an unanchored escaped fragment of one.
fn patterns() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec((0..NAMES.len(), any::<bool>()), 0..3).prop_map(|raw| {
        raw.into_iter()
            .map(|(n, exact)| {
                let name = NAMES[n];
                if exact {
                    format!("^{}$", regex::escape(name))
                } else {
                    regex::escape(&name[..name.len().min(2)])
                }
            })
            .collect()
    })
}

fn matcher(patterns: &[String]) -> CriticalMatcher {
    let list: Vec<CriticalProcess> = patterns
        .iter()
        .map(|p| CriticalProcess::name(p.as_str()))
        .collect();
    CriticalMatcher::new(&list).unwrap()
}

fn render_with(template: TemplateId, extra: serde_json::Value) -> Config {
    let serde_json::Value::Object(map) = extra else {
        panic!()
    };
    render(template, &map).unwrap()
}

fn strip(attrs: &Attributes) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = attrs
        .iter()
        .filter(|kv| !kv.key.starts_with("phoenix."))
        .map(|kv| (kv.key.clone(), format!("{:?}", kv.value)))
        .collect();
    v.sort();
    v
}

/// A point's full identity and content, with `phoenix.*` attributes left out.
fn point_text(r: &Attributes, m: &Metric, p: &DataPoint) -> String {
    let shape = match &m.data {
        MetricData::Gauge { .. } => "gauge".to_owned(),
        MetricData::Sum {
            temporality,
            monotonic,
            ..
        } => format!("sum {temporality:?} {monotonic}"),
    };
    format!(
        "{:?}|{}|{shape}|{:?}|{:?}|{:?}|{:?}|{}",
        strip(r),
        m.name,
        strip(&p.attributes),
        p.value,
        p.start_time,
        p.time,
        p.flags
    )
}

fn texts(s: &Snapshot) -> HashSet<String> {
    s.data_points()
        .map(|(r, m, p)| point_text(&r.attributes, m, p))
        .collect()
}

/// Runs `config` and checks that every critical point reaches every exporter unchanged.
fn check_critical(
    config: &Config,
    snapshots: &[Snapshot],
    critical: &CriticalMatcher,
) -> Result<(), TestCaseError> {
    let mut emulator = Emulator::new(config).unwrap();
    for (i, s) in snapshots.iter().enumerate() {
        let out = emulator.process(s).unwrap();
        prop_assert!(!out.exporters.is_empty());
        for (id, e) in &out.exporters {
            let got = texts(&e.snapshot);
            for (r, m, p) in s.data_points() {
                if critical.is_critical(&r.attributes) {
                    prop_assert!(
                        got.contains(&point_text(&r.attributes, m, p)),
                        "scrape {i}, exporter {id}: critical point of {:?} / {} missing",
                        r.attributes.get_str("process.executable.name"),
                        m.name
                    );
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn critical_points_reach_every_exporter_unchanged_in_every_template(
        procs in procs(),
        critical in patterns(),
        high in patterns(),
        memory in prop::option::of(1_i64..1_000_000_000),
        debug in any::<bool>(),
    ) {
        let snapshots = workload(&procs);
        let m = matcher(&critical);
        for template in TemplateId::ALL {
            let mut params = serde_json::json!({
                "criticalProcesses": critical,
                "debug": debug,
                "experimentId": "exp-props001",
            });
            match template {
                TemplateId::PriorityFilter => {
                    let mut high = high.clone();
                    if high.is_empty() && critical.is_empty() {
                        high.push("^nginx$".to_owned());
                    }
                    params["highPriorityProcesses"] = serde_json::json!(high);
                }
                TemplateId::TopK | TemplateId::AdaptiveFilter => {
                    params["cpuUtilizationThreshold"] = serde_json::Value::Null;
                    params["memoryUsageThreshold"] = serde_json::json!(memory.unwrap_or(1));
                }
                _ => {}
            }
            let config = render_with(template, params);
            check_critical(&config, &snapshots, &m)?;
        }
    }

    #[test]
    fn the_baseline_exports_its_input_plus_phoenix_attributes(procs in procs(), critical in patterns()) {
        let snapshots = workload(&procs);
        let config = render_with(TemplateId::Baseline, serde_json::json!({
            "criticalProcesses": critical,
            "experimentId": "exp-props002",
        }));
        let mut emulator = Emulator::new(&config).unwrap();
        for s in &snapshots {
            let out = emulator.process(s).unwrap();
            for e in out.exporters.values() {
                let mut stripped = e.snapshot.clone();
                for r in &mut stripped.resources {
                    prop_assert_eq!(r.attributes.get_str("phoenix.experiment.id"), Some("exp-props002"));
                    prop_assert!(r.attributes.contains_key("phoenix.variant"));
                    r.attributes.retain(|kv| !kv.key.starts_with("phoenix."));
                }
                prop_assert_eq!(&stripped, s);
            }
        }
    }

    #[test]
    fn the_aggregated_template_keeps_one_series_per_name_and_attributes(procs in procs(), critical in patterns()) {
        let snapshots = workload(&procs);
        let m = matcher(&critical);
        let config = render_with(TemplateId::Aggregated, serde_json::json!({
            "criticalProcesses": critical,
            "experimentId": "exp-props003",
        }));
        let mut emulator = Emulator::new(&config).unwrap();
        for (i, s) in snapshots.iter().enumerate() {
            let critical_procs = s.resources.iter().filter(|r| m.is_critical(&r.attributes)).count();
            let names: BTreeSet<&str> = s
                .resources
                .iter()
                .filter(|r| !m.is_critical(&r.attributes))
                .filter_map(|r| r.attributes.get_str("process.executable.name"))
                .collect();
            let expected = (critical_procs + names.len()) * POINTS_PER_PROCESS;
            let out = emulator.process(s).unwrap();
            for (id, e) in &out.exporters {
                prop_assert_eq!(
                    e.series.len(),
                    expected,
                    "scrape {}, exporter {}: {} critical processes, non-critical names {:?}",
                    i, id, critical_procs, names
                );
            }
        }
    }
}

#[test]
fn the_critical_check_detects_a_dropped_critical_process() {
    let procs = vec![
        Proc {
            pid: 1,
            name: "postgres",
            first: 0,
            last: 2,
            memory: 10,
        },
        Proc {
            pid: 2,
            name: "nginx",
            first: 0,
            last: 2,
            memory: 10,
        },
    ];
    // A priority filter that keeps only nginx drops postgres, which is critical here.
    let config = render_with(
        TemplateId::PriorityFilter,
        serde_json::json!({"criticalProcesses": ["^nginx$"], "experimentId": "exp-props004"}),
    );
    let result = check_critical(
        &config,
        &workload(&procs),
        &matcher(&["^postgres$".to_owned()]),
    );
    assert!(result.is_err());
    assert!(
        check_critical(
            &config,
            &workload(&procs),
            &matcher(&["^nginx$".to_owned()])
        )
        .is_ok()
    );
}
