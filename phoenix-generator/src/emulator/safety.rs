//! The critical-process safety check: every data point of a critical process must reach
//! every exporter unchanged, apart from added `phoenix.*` attributes.

use std::collections::{BTreeSet, HashSet};

use phoenix_core::experiment::CriticalMatcher;
use phoenix_core::telemetry::schema::ResourceAttribute;
use phoenix_core::telemetry::schema::{PROCESS_SCHEMA_URL, PROCESS_SCRAPER_SCOPE};
use phoenix_core::telemetry::{
    AnyValue, Attributes, DataPoint, Metric, MetricData, NumberValue, ProcessMetric, Resource,
    ResourceKey, ScopeMetrics, Snapshot, Temporality, Timestamp,
};
use xxhash_rust::xxh3::Xxh3;

use super::{Emulator, without_phoenix_attributes};
use crate::config::{ConditionGroup, Config, Processor, StatementGroup};
use crate::validate::Problem;

/// Process names probed besides those derived from the config.
const COMMON_NAMES: &[&str] = &[
    "postgres",
    "mysqld",
    "nginx",
    "java",
    "sshd",
    "systemd",
    "kubelet",
    "containerd",
    "dockerd",
    "etcd",
    "redis-server",
    "python3",
    "node",
    "mongod",
    "haproxy",
    "envoy",
    "otelcol-contrib",
];

/// A name no critical pattern is expected to match, so probes also exercise the paths for
/// ordinary processes.
const ORDINARY: &str = "phoenix-probe-ordinary";

fn probe_resource(pid: i64, name: &str, scrape: u64) -> Resource {
    let start = Timestamp::from_secs(1_700_000_000);
    let time = Timestamp::from_secs(1_700_000_100 + scrape * 10);
    let attrs: Attributes = [
        (ResourceAttribute::Pid.key(), AnyValue::Int(pid)),
        (ResourceAttribute::ParentPid.key(), AnyValue::Int(1)),
        (
            ResourceAttribute::ExecutableName.key(),
            AnyValue::from(name),
        ),
        (
            ResourceAttribute::ExecutablePath.key(),
            AnyValue::from(format!("/usr/bin/{name}")),
        ),
        (ResourceAttribute::Command.key(), AnyValue::from(name)),
        (
            ResourceAttribute::CommandLine.key(),
            AnyValue::from(format!("/usr/bin/{name} --probe {pid}")),
        ),
        (ResourceAttribute::Owner.key(), AnyValue::from("root")),
    ]
    .into_iter()
    .collect();
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_wrap)]
    let metrics = ProcessMetric::ALL
        .iter()
        .map(|&pm| {
            let mut m = Metric::process(pm);
            let step = (scrape + 1) as i64 * (pid + 7);
            let values: Vec<&str> = pm.point_values().to_vec();
            let attr = pm.point_attribute();
            let mut push = |attr_value: Option<&str>, k: i64| {
                let value = match pm.value_type() {
                    phoenix_core::telemetry::schema::ValueType::Int => {
                        NumberValue::Int(step * 1000 + k)
                    }
                    phoenix_core::telemetry::schema::ValueType::Double => {
                        if pm.kind() == phoenix_core::telemetry::schema::MetricKind::Gauge {
                            NumberValue::Double(0.01 * (k + 1) as f64)
                        } else {
                            NumberValue::Double(step as f64 * 0.5 + k as f64)
                        }
                    }
                };
                let mut p = DataPoint::new(
                    if pm.kind() == phoenix_core::telemetry::schema::MetricKind::Sum {
                        start
                    } else {
                        Timestamp::UNSET
                    },
                    time,
                    value,
                );
                if let (Some(a), Some(v)) = (attr, attr_value) {
                    p = p.with_attribute(a.key(), v);
                }
                m.data.points_mut().push(p);
            };
            if values.is_empty() {
                push(None, 0);
            } else {
                for (k, v) in values.iter().enumerate() {
                    push(Some(v), i64::try_from(k).unwrap_or(0));
                }
            }
            m
        })
        .collect();
    Resource {
        schema_url: PROCESS_SCHEMA_URL.to_owned(),
        scopes: vec![ScopeMetrics {
            scope: phoenix_core::telemetry::Scope {
                name: PROCESS_SCRAPER_SCOPE.to_owned(),
                ..Default::default()
            },
            metrics,
            ..ScopeMetrics::default()
        }],
        ..Resource::new(attrs)
    }
}

/// Three scrapes, 10 s apart, of one process per name (plus an ordinary one) with every
/// process metric the schema knows, so that every metric switch and both the first and later
/// points of stateful processors are exercised.
pub fn probe_workload(names: &[&str]) -> Vec<Snapshot> {
    (0..3)
        .map(|scrape| {
            let resources = names
                .iter()
                .chain(std::iter::once(&ORDINARY))
                .enumerate()
                .map(|(i, n)| probe_resource(1000 + i64::try_from(i).unwrap_or(0), n, scrape))
                .collect();
            Snapshot::new(resources)
        })
        .collect()
}

/// Candidate process names: the literal text of the config's OTTL strings and legacy name
/// patterns (anchors and escapes removed, alternatives split), and common daemon names.
fn candidate_names(config: &Config) -> BTreeSet<String> {
    let mut texts: Vec<String> = Vec::new();
    for p in config.processors.values() {
        match p {
            Processor::Filter(f) => {
                texts.extend(f.metrics.resource.iter().cloned());
                texts.extend(f.metrics.metric.iter().cloned());
                texts.extend(f.metrics.datapoint.iter().cloned());
                for g in &f.metric_conditions {
                    match g {
                        ConditionGroup::Flat(t) => texts.push(t.clone()),
                        ConditionGroup::Grouped(g) => texts.extend(g.conditions.iter().cloned()),
                    }
                }
            }
            Processor::Transform(t) => {
                for g in &t.metric_statements {
                    match g {
                        StatementGroup::Flat(s) => texts.push(s.clone()),
                        StatementGroup::Grouped(g) => {
                            texts.extend(g.statements.iter().cloned());
                            texts.extend(g.conditions.iter().cloned());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let mut names: BTreeSet<String> = COMMON_NAMES.iter().map(|s| (*s).to_owned()).collect();
    for text in texts {
        for literal in string_literals(&text) {
            for alt in literal.split('|') {
                let cleaned: String = simplify_pattern(alt);
                if !cleaned.is_empty() && cleaned.len() < 64 {
                    names.insert(cleaned);
                }
            }
        }
    }
    names
}

fn string_literals(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '"' {
            let mut s = String::new();
            while let Some(d) = chars.next() {
                match d {
                    '\\' => {
                        if let Some(e) = chars.next() {
                            s.push('\\');
                            s.push(e);
                        }
                    }
                    '"' => break,
                    other => s.push(other),
                }
            }
            // Undo the OTTL string escape of backslashes.
            out.push(s.replace("\\\\", "\\"));
        }
    }
    out
}

fn simplify_pattern(p: &str) -> String {
    let mut out = String::new();
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '^' | '$' | '(' | ')' | '?' | '*' | '+' => {}
            '\\' => {
                if let Some(e) = chars.next() {
                    out.push(e);
                }
            }
            '.' => {
                if chars.peek() == Some(&'*') || chars.peek() == Some(&'+') {
                    continue;
                }
                out.push('.');
            }
            other => out.push(other),
        }
    }
    out
}

pub(crate) fn point_key(resource: &Attributes, metric: &Metric, p: &DataPoint) -> u128 {
    let mut h = Xxh3::new();
    let r = without_phoenix_attributes(resource);
    let pa = without_phoenix_attributes(&p.attributes);
    let series = ResourceKey::new(&r).metric(&metric.name).series(&pa);
    h.update(&series.as_u128().to_le_bytes());
    let (kind, temporality, monotonic) = match &metric.data {
        MetricData::Gauge { .. } => (0_u8, 0_u8, false),
        MetricData::Sum {
            temporality,
            monotonic,
            ..
        } => (
            1,
            match temporality {
                Temporality::Unspecified => 0,
                Temporality::Delta => 1,
                Temporality::Cumulative => 2,
            },
            *monotonic,
        ),
    };
    h.update(&[kind, temporality, u8::from(monotonic)]);
    match p.value {
        NumberValue::Int(i) => {
            h.update(&[0]);
            h.update(&i.to_le_bytes());
        }
        NumberValue::Double(d) => {
            h.update(&[1]);
            h.update(&d.to_bits().to_le_bytes());
        }
    }
    h.update(&p.start_time.as_nanos().to_le_bytes());
    h.update(&p.time.as_nanos().to_le_bytes());
    h.update(&p.flags.to_le_bytes());
    h.digest128()
}

/// Critical probe names that a `hostmetrics` receiver used in a pipeline never scrapes,
/// because its process `exclude` matches them or its `include` does not.
fn receiver_drops(config: &Config, critical_names: &[&str]) -> Vec<Problem> {
    let used: BTreeSet<&crate::config::ComponentId> = config
        .service
        .pipelines
        .values()
        .flat_map(|p| p.receivers.iter())
        .collect();
    let matches = |m: &crate::config::ProcessMatch, name: &str| {
        m.names.iter().any(|n| match m.match_type {
            crate::config::MatchType::Strict => n == name,
            crate::config::MatchType::Regexp => {
                crate::ottl::regex::compile(n).is_ok_and(|re| re.is_match(name))
            }
        })
    };
    let mut problems = Vec::new();
    for (id, receiver) in &config.receivers {
        let crate::config::Receiver::HostMetrics(h) = receiver else {
            continue;
        };
        let Some(process) = h.scrapers.process.as_ref() else {
            continue;
        };
        if !used.contains(id) {
            continue;
        }
        for name in critical_names {
            if process.exclude.as_ref().is_some_and(|m| matches(m, name)) {
                problems.push(Problem::new(
                    format!("receivers.{id}.scrapers.process.exclude"),
                    format!("critical process `{name}` is excluded from scraping, so none of its data points are collected"),
                ));
            } else if process.include.as_ref().is_some_and(|m| !matches(m, name)) {
                problems.push(Problem::new(
                    format!("receivers.{id}.scrapers.process.include"),
                    format!("critical process `{name}` is not included in scraping, so none of its data points are collected"),
                ));
            }
        }
    }
    problems
}

/// Runs `config` over a probe workload of processes whose names match `critical` and reports
/// every critical data point that does not reach every exporter unchanged (apart from added
/// `phoenix.*` attributes). Probe names come from the config's OTTL strings and a list of
/// common daemons; [`critical_safety_with_names`] takes them explicitly.
pub fn critical_safety(config: &Config, critical: &CriticalMatcher) -> Vec<Problem> {
    if critical.is_empty() {
        return Vec::new();
    }
    let names = candidate_names(config);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    critical_safety_with_names(config, critical, &names)
}

/// [`critical_safety`] with the probe process names given.
pub fn critical_safety_with_names(
    config: &Config,
    critical: &CriticalMatcher,
    names: &[&str],
) -> Vec<Problem> {
    let is_critical = |name: &str| {
        let attrs: Attributes = [
            (ResourceAttribute::ExecutableName.key(), name.to_owned()),
            (
                ResourceAttribute::ExecutablePath.key(),
                format!("/usr/bin/{name}"),
            ),
        ]
        .into_iter()
        .collect();
        critical.is_critical(&attrs)
    };
    let critical_names: Vec<&str> = names.iter().copied().filter(|n| is_critical(n)).collect();
    if critical_names.is_empty() {
        return vec![Problem::new(
            "criticalProcesses",
            "no probe process name matches the critical patterns, so the safety check could not run; name a matching process explicitly",
        )];
    }
    let mut emulator = match Emulator::new(config) {
        Ok(e) => e,
        Err(e) => {
            return vec![Problem::new(
                "emulator",
                format!("the safety check cannot run: {e}"),
            )];
        }
    };
    let mut problems = receiver_drops(config, &critical_names);
    for (scrape, snapshot) in probe_workload(&critical_names).into_iter().enumerate() {
        let views = emulator.receiver_views(&snapshot);
        let output = match emulator.process(&snapshot) {
            Ok(o) => o.clone(),
            Err(e) => return vec![Problem::new("emulator", e.to_string())],
        };
        for (view, exporters) in views {
            for exporter in exporters {
                let Some(out) = output.exporters.get(&exporter) else {
                    continue;
                };
                let got: HashSet<u128> = out
                    .snapshot
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
                    .collect();
                let mut missing = BTreeSet::new();
                for r in &view.resources {
                    if !critical.is_critical(&r.attributes) {
                        continue;
                    }
                    for m in r.metrics() {
                        if m.data
                            .points()
                            .iter()
                            .any(|p| !got.contains(&point_key(&r.attributes, m, p)))
                        {
                            let name = r
                                .attributes
                                .get_str(ResourceAttribute::ExecutableName.key())
                                .unwrap_or("")
                                .to_owned();
                            missing.insert((name, m.name.as_str().to_owned()));
                        }
                    }
                }
                for (name, metric) in missing {
                    problems.push(Problem::new(
                        format!("exporters.{exporter}"),
                        format!("critical process `{name}`: data points of `{metric}` in probe scrape {} do not arrive unchanged", scrape + 1),
                    ));
                }
            }
        }
    }
    problems
}
