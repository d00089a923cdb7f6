use std::collections::{BTreeMap, BTreeSet};

use phoenix_core::experiment::ProfilePreset;
use phoenix_core::telemetry::schema::ResourceAttribute;
use proptest::prelude::*;

use super::*;

fn sim(preset: ProfilePreset, seed: u64) -> Simulator {
    Simulator::new(
        &Profile::preset(preset),
        SimConfig {
            seed,
            ..SimConfig::default()
        },
    )
    .unwrap()
}

fn int_attr(resource: &Resource, attr: ResourceAttribute) -> i64 {
    resource
        .attributes
        .get(attr)
        .and_then(AnyValue::as_int)
        .unwrap()
}

/// Checks the invariants of one snapshot against the previous values per (pid, start).
fn check_snapshot(snapshot: &Snapshot, previous: &mut BTreeMap<(i64, u64, String), f64>) {
    let pids: BTreeSet<i64> = snapshot
        .resources
        .iter()
        .map(|r| int_attr(r, ResourceAttribute::Pid))
        .collect();
    assert_eq!(pids.len(), snapshot.resources.len(), "pids are unique");
    let mut last = 0;
    for resource in &snapshot.resources {
        let pid = int_attr(resource, ResourceAttribute::Pid);
        assert!(pid > last, "resources are ordered by pid");
        last = pid;
        let ppid = int_attr(resource, ResourceAttribute::ParentPid);
        assert!(
            ppid == 0 || ppid == 1 || pids.contains(&ppid),
            "parent {ppid} of {pid} is alive"
        );
        for metric in resource.metrics() {
            for point in metric.data.points() {
                let Some(m) = metric.name.process_metric() else {
                    continue;
                };
                if !m.is_monotonic() {
                    continue;
                }
                let key = (
                    pid,
                    point.start_time.as_nanos(),
                    format!("{}{:?}", m.name(), point.attributes),
                );
                let value = point.value.as_f64();
                if let Some(before) = previous.insert(key, value) {
                    assert!(
                        value >= before,
                        "{} of {pid} went from {before} to {value}",
                        m.name()
                    );
                }
            }
        }
    }
}

#[test]
fn realistic_snapshots_follow_the_scraper_schema() {
    let mut sim = sim(ProfilePreset::Realistic, 1);
    let snapshot = sim.next_snapshot().clone();
    let n = snapshot.resources.len();
    assert!((100..=200).contains(&n), "{n} processes");
    assert_eq!(snapshot.data_point_count(), n * 7);
    let first = &snapshot.resources[0];
    assert_eq!(int_attr(first, ResourceAttribute::Pid), 1);
    assert_eq!(int_attr(first, ResourceAttribute::ParentPid), 0);
    let kthreadd = &snapshot.resources[1];
    assert_eq!(int_attr(kthreadd, ResourceAttribute::Pid), 2);
    assert_eq!(
        kthreadd
            .attributes
            .get_str(ResourceAttribute::ExecutableName),
        Some("kthreadd")
    );
    assert_eq!(int_attr(kthreadd, ResourceAttribute::ParentPid), 0);
    let kernel_children = snapshot
        .resources
        .iter()
        .filter(|r| r.attributes.get_str(ResourceAttribute::CommandLine) == Some(""))
        .filter(|r| int_attr(r, ResourceAttribute::ParentPid) == 2)
        .count();
    assert!(
        kernel_children >= 50,
        "{kernel_children} kernel threads under kthreadd"
    );
    assert_eq!(first.schema_url, PROCESS_SCHEMA_URL);
    assert_eq!(first.scopes[0].scope.name, PROCESS_SCRAPER_SCOPE);
    let keys: Vec<&str> = first.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "process.pid",
            "process.parent_pid",
            "process.executable.name",
            "process.executable.path",
            "process.command",
            "process.command_line",
            "process.owner"
        ]
    );
    let names: Vec<&str> = first.metrics().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "process.cpu.time",
            "process.disk.io",
            "process.memory.usage",
            "process.memory.virtual"
        ]
    );
    // Same JSON shape as the real scraper's output in phoenix-core's fixture.
    let json = phoenix_core::otlp::to_json(&snapshot);
    assert!(json.contains(r#""unit":"s","sum":{"dataPoints":[{"attributes":[{"key":"state","value":{"stringValue":"user"}}]"#));
    assert!(json.contains(r#""aggregationTemporality":2,"isMonotonic":true"#));
    assert_eq!(phoenix_core::otlp::from_json(&json).unwrap(), snapshot);
}

#[test]
fn optional_metrics_follow_the_scraper() {
    let profile = Profile::preset(ProfilePreset::Realistic)
        .with_processes(20)
        .unwrap();
    let config = SimConfig {
        metrics: MetricSelection::all(),
        ..SimConfig::default()
    };
    let mut sim = Simulator::new(&profile, config).unwrap();
    let first = sim.next_snapshot().clone();
    // No utilization point on a process's first scrape.
    assert_eq!(first.resources.len(), 20);
    assert_eq!(first.data_point_count(), 20 * 16);
    let second = sim.next_snapshot().clone();
    assert_eq!(second.data_point_count(), 20 * 19);
    let names: Vec<&str> = second.resources[5]
        .metrics()
        .map(|m| m.name.as_str())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "metrics are emitted by name");
    assert!(names.contains(&"process.cpu.utilization"));
}

#[test]
fn presets_have_their_documented_sizes() {
    let count = |p| sim(p, 3).next_snapshot().resources.len();
    let hc = count(ProfilePreset::HighCardinality);
    assert!((1000..=2000).contains(&hc), "high-cardinality: {hc}");
    let mut churn = sim(ProfilePreset::HighChurn, 3);
    for _ in 0..6 {
        churn.next_snapshot();
    }
    let per_second = churn.stats().starts as f64 / 60.0;
    assert!(per_second > 20.0, "high-churn starts {per_second}/s");
    let mut chaos = sim(ProfilePreset::Chaos, 3);
    for _ in 0..360 {
        chaos.next_snapshot();
    }
    assert!(chaos.stats().crashes > 0, "{:?}", chaos.stats());
}

#[test]
fn unique_command_lines_in_high_cardinality() {
    let mut sim = sim(ProfilePreset::HighCardinality, 5);
    let snapshot = sim.next_snapshot();
    let lines: BTreeSet<&str> = snapshot
        .resources
        .iter()
        .filter_map(|r| r.attributes.get_str(ResourceAttribute::CommandLine))
        .filter(|c| c.contains("containerd-shim") || c.contains("worker.py"))
        .collect();
    // 500 Kubernetes shims, 4 Docker shims and 400 queue workers, each line unique.
    assert_eq!(lines.len(), 904);
}

#[test]
fn pids_wrap_and_stay_unique() {
    let mut sim = sim(ProfilePreset::HighChurn, 11);
    let mut previous = BTreeMap::new();
    let mut wrapped = false;
    let mut max_pid = 0;
    for _ in 0..200 {
        let snapshot = sim.next_snapshot();
        check_snapshot(snapshot, &mut previous);
        for r in &snapshot.resources {
            let pid = int_attr(r, ResourceAttribute::Pid);
            if pid < max_pid - 20_000 {
                wrapped = true;
            }
            max_pid = max_pid.max(pid);
        }
        assert!(max_pid < 32_768);
    }
    assert!(wrapped, "pids wrapped past pid_max");
}

#[test]
fn same_seed_same_output_other_seed_other_output() {
    let run = |seed| {
        let mut sim = sim(ProfilePreset::Chaos, seed);
        (0..12)
            .map(|_| phoenix_core::otlp::to_json(sim.next_snapshot()))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(9), run(9));
    assert_ne!(run(9), run(10));
}

fn any_preset() -> impl Strategy<Value = ProfilePreset> {
    prop::sample::select(ProfilePreset::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_for_any_seed_and_preset(
        seed in any::<u64>(),
        preset in any_preset(),
        processes in 20_u32..160,
        steps in 5_usize..25,
    ) {
        let profile = Profile::preset(preset).with_processes(processes).unwrap();
        let config = SimConfig { seed, metrics: MetricSelection::all(), ..SimConfig::default() };
        let mut sim = Simulator::new(&profile, config).unwrap();
        let mut previous = BTreeMap::new();
        let mut snapshots = Vec::new();
        for _ in 0..steps {
            let snapshot = sim.next_snapshot();
            check_snapshot(snapshot, &mut previous);
            snapshots.push(snapshot.clone());
        }
        let stats = sim.stats();
        prop_assert_eq!(stats.live_processes as usize, sim.snapshot().resources.len());
        prop_assert!(stats.starts >= stats.exits);
        let mut again = Simulator::new(&profile, config).unwrap();
        for snapshot in &snapshots {
            prop_assert_eq!(again.next_snapshot(), snapshot);
        }
    }
}

#[test]
fn memory_follows_live_processes_not_time() {
    let mut sim = sim(ProfilePreset::HighChurn, 2);
    for _ in 0..1500 {
        sim.next_snapshot();
    }
    assert!(sim.stats().starts > 350_000, "{:?}", sim.stats());
    assert!(sim.procs.len() < 400, "{} live", sim.procs.len());
    assert!(sim.procs.capacity() < 1024 && sim.snapshot.resources.capacity() < 1024);
    assert!(sim.pending.len() < 1000, "{} pending", sim.pending.len());
}

#[test]
fn processes_with_a_lifetime_are_replaced() {
    let profile = Profile::from_yaml(
        "name: t\ngroups:\n  - name: \"w{index}\"\n    count: 5\n    lifetime: 30s..60s\n    restartDelay: 0s\n",
    )
    .unwrap();
    let mut sim = Simulator::new(&profile, SimConfig::default()).unwrap();
    let first: BTreeSet<i64> = sim
        .next_snapshot()
        .resources
        .iter()
        .map(|r| int_attr(r, ResourceAttribute::Pid))
        .collect();
    for _ in 0..12 {
        sim.next_snapshot();
    }
    let later: BTreeSet<i64> = sim
        .snapshot()
        .resources
        .iter()
        .map(|r| int_attr(r, ResourceAttribute::Pid))
        .collect();
    assert_eq!(later.len(), 5);
    assert!(first.is_disjoint(&later), "{first:?} {later:?}");
    let names: BTreeSet<&str> = sim
        .snapshot()
        .resources
        .iter()
        .filter_map(|r| r.attributes.get_str(ResourceAttribute::ExecutableName))
        .collect();
    assert_eq!(names.len(), 5, "replacements keep their instance names");
}

fn custom(yaml: &str) -> Profile {
    Profile::from_yaml(yaml).unwrap()
}

const SHORT_LIVED: &str = "name: t\ngroups:\n  - name: init\n    count: 1\n  - name: w\n    count: 3\n    lifetime: 10m..1h\n";

#[test]
fn a_start_before_the_uptime_is_refused_naming_start() {
    let config = SimConfig {
        start: Timestamp::from_secs(0),
        ..SimConfig::default()
    };
    let err = Simulator::new(&custom(SHORT_LIVED), config).unwrap_err();
    assert_eq!(err.field_name(), Some("start"), "{err}");
    // Just after the uptime is fine, and lifetimes still fit.
    let config = SimConfig {
        start: Timestamp::from_secs(3 * 86_400),
        ..SimConfig::default()
    };
    let mut sim = Simulator::new(&custom(SHORT_LIVED), config).unwrap();
    for r in &sim.next_snapshot().resources {
        let start = r.metrics().next().unwrap().data.points()[0].start_time;
        assert!(start.as_nanos() <= 3 * 86_400 * 1_000_000_000);
    }
}

#[test]
fn a_start_too_far_in_the_future_is_refused_naming_start() {
    let config = SimConfig {
        start: Timestamp::from_secs(99_999_999_999),
        ..SimConfig::default()
    };
    let err = Simulator::new(&Profile::preset(ProfilePreset::Realistic), config).unwrap_err();
    assert_eq!(err.field_name(), Some("start"), "{err}");
}

#[test]
fn durations_above_the_maximum_are_refused_naming_the_field() {
    let yaml = "name: t\ngroups:\n  - name: init\n    count: 1\n  - name: w\n    count: 3\n    churnRate: 1\n    restartDelay: 1000years\n";
    let err = Profile::from_yaml(yaml).unwrap_err();
    assert_eq!(err.field_name(), Some("groups[1].restartDelay"), "{err}");
    let err = Profile::from_yaml(
        "name: t\nhost: { uptime: 1000years }\ngroups:\n  - name: init\n    count: 1\n",
    )
    .unwrap_err();
    assert_eq!(err.field_name(), Some("host.uptime"), "{err}");
}

#[test]
fn the_longest_durations_do_not_overflow() {
    // Every duration at its maximum, the latest start: timestamps saturate, nothing panics.
    let yaml = "name: t\nhost: { uptime: 100years }\ngroups:\n  - name: init\n    count: 1\n  - name: w\n    count: 3\n    churnRate: 1\n    lifetime: 100years\n    startedAgo: 100years\n    restartDelay: 100years\n  - name: s\n    spawnPerSecond: 0.001\n    lifetime: 100years\nchaos:\n  forkBursts: { perHour: 1, size: \"5..5\", lifetime: 100years }\n";
    let config = SimConfig {
        start: MAX_START,
        scrape_interval: Duration::from_secs(86_400),
        ..SimConfig::default()
    };
    let mut sim = Simulator::new(&custom(yaml), config).unwrap();
    for _ in 0..5 {
        sim.next_snapshot();
    }
    assert!(sim.stats().starts > 0);
}

#[test]
fn short_lived_spawns_do_not_queue_up_within_an_interval() {
    // 10 000 spawns a second living 10 ms, scraped every minute: 600 000 processes start
    // and exit between two scrapes; the queue holds at most about one second of them.
    let yaml = "name: t\ngroups:\n  - name: init\n    count: 1\n  - name: s\n    spawnPerSecond: 10000\n    lifetime: 10ms\n";
    let config = SimConfig {
        scrape_interval: Duration::from_secs(60),
        ..SimConfig::default()
    };
    let mut sim = Simulator::new(&custom(yaml), config).unwrap();
    sim.next_snapshot();
    assert!(sim.stats().starts > 590_000, "{:?}", sim.stats());
    let stats = sim.stats();
    assert_eq!(stats.starts, stats.exits + stats.live_processes);
    assert!(stats.live_processes < 1000, "{stats:?}");
    assert!(
        sim.pending.capacity() <= 32_768,
        "{} queued",
        sim.pending.capacity()
    );
}
