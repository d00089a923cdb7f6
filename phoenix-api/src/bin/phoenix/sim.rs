//! `phoenix sim ...`: the simulator's profiles and synthetic runs, locally.

use std::path::Path;

use anyhow::{Context, Result, bail};
use phoenix_core::experiment::ProfilePreset;
use phoenix_sim::output::{Discard, JsonLinesFile, Pace, RunSummary, Sink};
use phoenix_sim::{Profile, SimConfig, Simulator};
use serde::Serialize;

use crate::args::{SimCommand, SimRunArgs};
use crate::output::{Details, Format, Table, number};

/// One preset as `sim profiles` lists it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ProfileEntry {
    name: &'static str,
    processes: u64,
    description: String,
}

/// What `sim run` reports.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RunReport {
    profile: String,
    seed: u64,
    scrapes: u64,
    simulated_seconds: f64,
    wall_seconds: f64,
    live_processes: u64,
    processes_started: u64,
    processes_exited: u64,
    processes_crashed: u64,
    series: u64,
    data_points: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_file: Option<String>,
}

impl RunReport {
    fn new(profile: &Profile, seed: u64, summary: &RunSummary, out: Option<&Path>) -> Self {
        let s = &summary.stats;
        Self {
            profile: profile.name.clone(),
            seed,
            scrapes: s.scrapes,
            simulated_seconds: summary.simulated.as_secs_f64(),
            wall_seconds: summary.wall.as_secs_f64(),
            live_processes: s.live_processes,
            processes_started: s.starts,
            processes_exited: s.exits,
            processes_crashed: s.crashes,
            series: s.series_emitted,
            data_points: s.data_points,
            output_file: out.map(|p| p.display().to_string()),
        }
    }

    #[allow(clippy::cast_precision_loss)]
    fn table(&self) -> String {
        let mut d = Details::new();
        d.add("profile", self.profile.as_str())
            .add("seed", self.seed.to_string())
            .add("scrapes", number(self.scrapes as f64, 0))
            .add(
                "simulated",
                humantime::format_duration(std::time::Duration::from_secs_f64(
                    self.simulated_seconds,
                ))
                .to_string(),
            )
            .add("wall time", format!("{:.3} s", self.wall_seconds))
            .add("alive at the end", number(self.live_processes as f64, 0))
            .add(
                "processes started",
                number(self.processes_started as f64, 0),
            )
            .add(
                "processes exited",
                format!(
                    "{} ({} crashed)",
                    number(self.processes_exited as f64, 0),
                    number(self.processes_crashed as f64, 0)
                ),
            )
            .add("series", number(self.series as f64, 0))
            .add("data points", number(self.data_points as f64, 0));
        if let Some(file) = &self.output_file {
            d.add("written to", file.as_str());
        }
        d.render()
    }
}

/// Runs one sim command.
pub fn run(command: &SimCommand, format: Format) -> Result<()> {
    match command {
        SimCommand::Profiles => {
            let list: Vec<ProfileEntry> = ProfilePreset::ALL
                .into_iter()
                .map(|preset| {
                    let profile = Profile::preset(preset);
                    ProfileEntry {
                        name: preset.as_str(),
                        processes: profile.steady_processes(),
                        description: profile.description,
                    }
                })
                .collect();
            format.print(&list, |list| {
                let mut table = Table::new(["PROFILE", "PROCESSES", "DESCRIPTION"]);
                for p in list {
                    table.row([
                        p.name.to_owned(),
                        p.processes.to_string(),
                        p.description.clone(),
                    ]);
                }
                table.render()
            })
        }
        SimCommand::Run(args) => simulate(args, format),
    }
}

/// The profile of a command line: `file` when given, else a preset by name (a value with a
/// path separator or an extension is read as a file; see `phoenix_sim::Profile::load`);
/// scaled to `processes` when given.
pub fn load_profile(name: &str, file: Option<&Path>, processes: Option<u32>) -> Result<Profile> {
    Profile::load(name, file, processes).with_context(|| match file {
        Some(path) => format!("profile {}", path.display()),
        None => format!("profile {name}"),
    })
}

fn simulate(args: &SimRunArgs, format: Format) -> Result<()> {
    let profile = load_profile(&args.profile, args.profile_file.as_deref(), args.processes)?;
    let config = SimConfig {
        seed: args.seed,
        scrape_interval: args.scrape_interval,
        ..SimConfig::default()
    };
    let mut sim = Simulator::new(&profile, config)?;
    let scrapes = sim.scrapes_in(args.duration);
    if scrapes == 0 {
        bail!("--duration is shorter than one scrape interval");
    }
    let mut sink: Box<dyn Sink> = match &args.out {
        Some(path) => Box::new(JsonLinesFile::create(path)?),
        None => Box::new(Discard),
    };
    let summary =
        phoenix_sim::output::run(&mut sim, scrapes, Pace::Fast, sink.as_mut(), &mut |_| {})?;
    let report = RunReport::new(&profile, args.seed, &summary, args.out.as_deref());
    format.print(&report, RunReport::table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_files_load() {
        assert_eq!(
            load_profile("realistic", None, None).unwrap().name,
            "realistic"
        );
        let scaled = load_profile("realistic", None, Some(10)).unwrap();
        assert_eq!(scaled.steady_processes(), 10);
        let e = load_profile("no-such-profile", None, None).unwrap_err();
        assert!(format!("{e:#}").contains("no-such-profile"), "{e:#}");
    }

    #[test]
    fn explicit_files_load() {
        let dir = tempfile::tempdir().unwrap();
        let custom = Profile::preset_named("realistic")
            .unwrap()
            .with_processes(5)
            .unwrap();
        let file = dir.path().join("chaos");
        std::fs::write(&file, custom.to_yaml()).unwrap();
        let loaded = load_profile("ignored", Some(&file), None).unwrap();
        assert_eq!(loaded.steady_processes(), 5);
        let by_path = load_profile(file.to_str().unwrap(), None, None).unwrap();
        assert_eq!(by_path.steady_processes(), 5);
    }
}
