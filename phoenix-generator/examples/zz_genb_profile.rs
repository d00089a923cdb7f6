//! Temporary profiling driver (removed before the end of the work).
#![allow(clippy::unwrap_used, clippy::print_stdout)]
use phoenix_core::experiment::ProfilePreset;
use phoenix_generator::catalog::{TemplateId, render};
use phoenix_generator::emulator::Emulator;

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "process-aggregated-v1".into());
    let n: usize = std::env::args().nth(2).map_or(20, |s| s.parse().unwrap());
    let template = TemplateId::ALL.into_iter().find(|t| t.name() == name).unwrap();
    let profile = phoenix_sim::Profile::preset(ProfilePreset::HighCardinality);
    let params = serde_json::json!({
        "criticalProcesses": ["^systemd$", "^sshd$", "^postgres$"],
        "experimentId": "exp-bench001",
    });
    let serde_json::Value::Object(params) = params else { return };
    let config = render(template, &params).unwrap();
    let mut emulator = Emulator::new(&config).unwrap();
    let mut sim = phoenix_sim::Simulator::new(&profile, phoenix_sim::SimConfig::default()).unwrap();
    for _ in 0..3 {
        let _ = emulator.process(sim.next_snapshot());
    }
    if std::env::var("PEEK").is_ok() {
        let s = sim.next_snapshot();
        println!("{:#?}", &s.resources[0]);
        let mut names = std::collections::HashSet::new();
        for r in &s.resources { names.insert(r.attributes.get_str("process.executable.name").unwrap_or("").to_owned()); }
        println!("resources {} distinct names {}", s.resources.len(), names.len());
    }
    let snaps: Vec<_> = (0..n).map(|_| sim.next_snapshot().clone()).collect();
    if std::env::var("DROPT").is_ok() {
        let copies: Vec<_> = snaps.iter().cloned().collect();
        let t = std::time::Instant::now();
        drop(copies);
        println!("drop per snapshot {:?}", t.elapsed() / n as u32);
        let t = std::time::Instant::now();
        let copies: Vec<_> = snaps.iter().cloned().collect();
        println!("clone per snapshot {:?}", t.elapsed() / n as u32);
        drop(copies);
    }
    let points: usize = snaps.iter().map(|s| s.data_point_count()).sum();
    let start = std::time::Instant::now();
    let mut total = 0;
    for s in snaps {
        let out = emulator.process_owned(s).unwrap();
        total += out.exporters.values().map(|e| e.data_points + e.bytes + e.series.len()).sum::<usize>();
    }
    let el = start.elapsed();
    println!("{name}: {points} points in {el:?}: {:.2} M/s (check {total})", points as f64 / el.as_secs_f64() / 1e6);
}
