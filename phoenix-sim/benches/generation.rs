//! Generation throughput per profile (data points per second) and OTLP encoding throughput.
//!
//! ```text
//! cargo bench -p phoenix-sim --no-default-features --bench generation
//! ```
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use phoenix_core::experiment::ProfilePreset;
use phoenix_sim::{Profile, SimConfig, Simulator};
use std::hint::black_box;

/// Scrapes per measured batch: 10 simulated minutes at 10 s.
const SCRAPES: usize = 60;

fn warmed(preset: ProfilePreset) -> Simulator {
    let mut sim = Simulator::new(
        &Profile::preset(preset),
        SimConfig {
            seed: 1,
            ..SimConfig::default()
        },
    )
    .unwrap();
    for _ in 0..6 {
        sim.next_snapshot();
    }
    sim
}

/// Data points the next `SCRAPES` scrapes of `preset` produce (the runs are deterministic).
fn points(preset: ProfilePreset) -> u64 {
    let mut sim = warmed(preset);
    let before = sim.stats().data_points;
    for _ in 0..SCRAPES {
        sim.next_snapshot();
    }
    sim.stats().data_points - before
}

fn generation(c: &mut Criterion) {
    let mut group = c.benchmark_group("generation");
    group.sample_size(20);
    for preset in ProfilePreset::ALL {
        group.throughput(Throughput::Elements(points(preset)));
        group.bench_function(preset.as_str(), |b| {
            b.iter_batched(
                || warmed(preset),
                |mut sim| {
                    for _ in 0..SCRAPES {
                        black_box(sim.next_snapshot());
                    }
                    sim
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

fn encoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("otlp-encoding");
    group.sample_size(20);
    for preset in [ProfilePreset::Realistic, ProfilePreset::HighCardinality] {
        let snapshot = warmed(preset).next_snapshot().clone();
        group.throughput(Throughput::Elements(snapshot.data_point_count() as u64));
        group.bench_function(format!("protobuf/{}", preset.as_str()), |b| {
            b.iter(|| black_box(phoenix_core::otlp::encode_protobuf(black_box(&snapshot))));
        });
        group.bench_function(format!("json/{}", preset.as_str()), |b| {
            b.iter(|| black_box(phoenix_core::otlp::to_json(black_box(&snapshot))));
        });
    }
    group.finish();
}

criterion_group!(benches, generation, encoding);
criterion_main!(benches);
