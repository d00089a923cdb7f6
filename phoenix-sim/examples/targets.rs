//! Measures the simulator's speed and memory targets and prints the figures.
//!
//! ```text
//! cargo run --release -p phoenix-sim --no-default-features --example targets
//! ```
//!
//! Targets (release build, one thread): at least 20 million data points per second for
//! `realistic` and `high-cardinality`; 24 simulated hours of `realistic` at 10 s scrapes
//! in under 1 s; peak memory (VmHWM) under 200 MB for 24 simulated hours of `high-churn`.
//! The memory run comes first, so that the high-water mark is its own.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use phoenix_core::experiment::ProfilePreset;
use phoenix_sim::{Profile, SimConfig, Simulator};

const DAY: u64 = 8640; // 10 s scrapes in 24 hours

fn run(preset: ProfilePreset, scrapes: u64) -> (Duration, u64, u64) {
    let profile = Profile::preset(preset);
    let mut sim = Simulator::new(
        &profile,
        SimConfig {
            seed: 1,
            ..SimConfig::default()
        },
    )
    .expect("presets are valid");
    let started = Instant::now();
    for _ in 0..scrapes {
        std::hint::black_box(sim.next_snapshot());
    }
    let wall = started.elapsed();
    (wall, sim.stats().data_points, sim.stats().live_processes)
}

fn peak_memory_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let (wall, points, live) = run(ProfilePreset::HighChurn, DAY);
    println!(
        "high-churn, 24 h at 10 s: {:.3} s, {points} points, {live} processes alive at the end, peak memory (VmHWM) {:.1} MB (target < 200 MB)",
        wall.as_secs_f64(),
        peak_memory_kib() as f64 / 1024.0
    );
    let (wall, points, _) = run(ProfilePreset::Realistic, DAY);
    println!(
        "realistic, 24 h at 10 s: {:.3} s (target < 1 s), {points} points, {:.1} M points/s (target >= 20)",
        wall.as_secs_f64(),
        points as f64 / wall.as_secs_f64() / 1e6
    );
    let (wall, points, _) = run(ProfilePreset::HighCardinality, DAY / 4);
    println!(
        "high-cardinality, 6 h at 10 s: {:.3} s, {points} points, {:.1} M points/s (target >= 20)",
        wall.as_secs_f64(),
        points as f64 / wall.as_secs_f64() / 1e6
    );
}
