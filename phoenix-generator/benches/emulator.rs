//! Emulator throughput per catalog template on the simulator's high-cardinality workload, in
//! data points per second (single-threaded), and for the aggregated template over the same
//! workload stored as a decoded recording would be. Generating the snapshots (and dropping
//! them) is untimed setup; the emulator reads each one by reference, as `predict` does.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use phoenix_core::experiment::{CriticalMatcher, CriticalProcess, ProfilePreset};
use phoenix_core::telemetry::{Attributes, Snapshot};
use phoenix_generator::catalog::{TemplateId, render};
use phoenix_generator::emulator::Emulator;
use phoenix_generator::predict::resources_read;

/// Scrapes run before measuring, so that stateful processors are in their steady state.
const WARM_UP_SCRAPES: usize = 3;

/// The critical processes the templates keep and `predict` looks for.
const CRITICAL: [&str; 3] = ["^systemd$", "^sshd$", "^postgres$"];

fn emulator(c: &mut Criterion) {
    let mut group = c.benchmark_group("emulator");
    group.sample_size(20);
    for template in TemplateId::ALL {
        let Some((mut emulator, mut sim)) = warmed_up(template) else {
            return;
        };
        let points = sim.next_snapshot().data_point_count();
        group.throughput(Throughput::Elements(points as u64));
        // As `predict` runs it: each scrape read where it is, and what the counted exporter
        // receives kept (and dropped at the next scrape, inside the measurement).
        group.bench_function(template.name(), |b| {
            b.iter_batched_ref(
                || sim.next_snapshot().clone(),
                |snapshot| {
                    let out = emulator.process(snapshot);
                    black_box(out.map(|o| o.exporters.len()).unwrap_or(0))
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

/// `process-aggregated-v1` over the same workload with every attribute list stored apart from
/// the previous scrape's, as decoding a recording scrape by scrape gives it: the emulator's
/// caches then compare attributes in full instead of by pointer.
fn decoded(c: &mut Criterion) {
    let Some((mut emulator, mut sim)) = warmed_up(TemplateId::Aggregated) else {
        return;
    };
    let mut group = c.benchmark_group("emulator-decoded");
    group.sample_size(20);
    group.throughput(Throughput::Elements(
        sim.next_snapshot().data_point_count() as u64
    ));
    group.bench_function(TemplateId::Aggregated.name(), |b| {
        b.iter_batched_ref(
            || stored_apart(sim.next_snapshot()),
            |snapshot| {
                let out = emulator.process(snapshot);
                black_box(out.map(|o| o.exporters.len()).unwrap_or(0))
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

/// An emulator of `template` (with the benchmark's critical processes) and the simulator of
/// the `high-cardinality` workload, past the warm-up, keeping what `predict` keeps: of the
/// data of the one exporter it counts, the resources it reads.
fn warmed_up(template: TemplateId) -> Option<(Emulator, phoenix_sim::Simulator)> {
    let profile = phoenix_sim::Profile::preset(ProfilePreset::HighCardinality);
    let critical = CriticalMatcher::new(&CRITICAL.map(CriticalProcess::name)).ok()?;
    let params = serde_json::json!({
        "criticalProcesses": CRITICAL,
        "experimentId": "exp-bench001",
    });
    let serde_json::Value::Object(params) = params else {
        return None;
    };
    let mut emulator = Emulator::new(&render(template, &params).ok()?).ok()?;
    let mut sim = phoenix_sim::Simulator::new(&profile, phoenix_sim::SimConfig::default()).ok()?;
    for _ in 0..WARM_UP_SCRAPES {
        let _ = emulator.process(sim.next_snapshot());
    }
    let counted: Vec<_> = emulator
        .process(sim.next_snapshot())
        .map(|o| o.exporters.keys().take(1).cloned().collect())
        .unwrap_or_default();
    emulator.keep_data_of(&counted);
    emulator.keep_resources_where(resources_read(&critical));
    Some((emulator, sim))
}

/// A copy of `snapshot` whose attribute lists share nothing with it.
fn stored_apart(snapshot: &Snapshot) -> Snapshot {
    let apart = |a: &Attributes| Attributes::from(a.as_slice().to_vec());
    let mut copy = snapshot.clone();
    for r in &mut copy.resources {
        r.attributes = apart(&r.attributes);
        for m in r.scopes.iter_mut().flat_map(|s| &mut s.metrics) {
            for p in m.data.points_mut() {
                p.attributes = apart(&p.attributes);
            }
        }
    }
    copy
}

/// What an exact per-process cache cannot avoid: visiting every resource and every point and
/// checking that its attributes are those of the previous scrape at the same place
/// (`Attributes::same_as`, which the simulator's shared attributes answer without reading
/// them), and nothing else. The emulator's throughput on the same workload is measured
/// against this floor.
fn floor(c: &mut Criterion) {
    let profile = phoenix_sim::Profile::preset(ProfilePreset::HighCardinality);
    let Ok(mut sim) = phoenix_sim::Simulator::new(&profile, phoenix_sim::SimConfig::default())
    else {
        return;
    };
    for _ in 0..WARM_UP_SCRAPES {
        sim.next_snapshot();
    }
    let mut group = c.benchmark_group("floor");
    group.sample_size(20);
    group.throughput(Throughput::Elements(
        sim.next_snapshot().data_point_count() as u64
    ));
    let mut previous = sim.next_snapshot().clone();
    group.bench_function("compare-attributes", |b| {
        b.iter_batched_ref(
            || {
                let next = sim.next_snapshot().clone();
                (std::mem::replace(&mut previous, next.clone()), next)
            },
            |(before, now)| {
                let mut equal = 0_usize;
                for (a, b) in before.resources.iter().zip(&now.resources) {
                    equal += usize::from(a.attributes.same_as(&b.attributes));
                    for (ma, mb) in a.metrics().zip(b.metrics()) {
                        for (pa, pb) in ma.data.points().iter().zip(mb.data.points()) {
                            equal += usize::from(pa.attributes.same_as(&pb.attributes));
                        }
                    }
                }
                black_box(equal)
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, emulator, decoded, floor);
criterion_main!(benches);
