//! The workload of a local run: a simulator profile or a recording, replayable from the
//! start.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use phoenix_core::experiment::{ExperimentSpec, WorkloadSource};
use phoenix_core::telemetry::{Snapshot, Timestamp};
use phoenix_core::{Error, Result};
use phoenix_sim::{DEFAULT_START, MetricSelection, Profile, SimConfig, Simulator};

/// Where the first scrape of every local run is taken: 2026-01-01T00:00:00Z, phoenix-sim's
/// default start. A fixed time keeps runs, and their replays after a resume, identical.
pub const RUN_START: Timestamp = DEFAULT_START;

/// How to produce a run's snapshots from the start, as often as needed.
#[derive(Debug, Clone)]
pub(crate) enum WorkloadPlan {
    /// The simulator with this profile and config.
    Simulated {
        profile: Box<Profile>,
        config: SimConfig,
    },
    /// A recording, read once: one snapshot per scrape.
    Recorded { snapshots: Arc<Vec<Snapshot>> },
}

fn workload_error(cause: impl std::fmt::Display) -> Error {
    Error::executor(format!("workload: {cause}"))
}

/// Scrapes a run of `duration` holds at `interval`, the first at offset zero.
pub(crate) fn scrapes_in(duration: Duration, interval: Duration) -> u64 {
    let interval = interval.as_nanos().max(1);
    u64::try_from(duration.as_nanos().div_ceil(interval)).unwrap_or(u64::MAX)
}

impl WorkloadPlan {
    /// The plan for `spec`'s workload. Relative recording paths are taken from `base_dir`.
    /// `metrics` are the process metrics the variants' receivers enable.
    pub(crate) fn new(
        spec: &ExperimentSpec,
        base_dir: &Path,
        metrics: MetricSelection,
    ) -> Result<Self> {
        let interval = spec.scrape_interval;
        let profile = match &spec.workload.source {
            WorkloadSource::Profile { preset, processes } => {
                let profile = Profile::preset(*preset);
                match processes {
                    Some(n) => profile.with_processes(*n).map_err(|e| {
                        workload_error(format_args!("profile {preset} with {n} processes: {e}"))
                    })?,
                    None => profile,
                }
            }
            WorkloadSource::Custom { definition } => Profile::from_value(definition)
                .map_err(|e| workload_error(format_args!("custom profile: {e}")))?,
            WorkloadSource::Recording { path } => {
                return Self::recorded(spec, &base_dir.join(path), path);
            }
        };
        // The simulator's first snapshot comes one interval after its start.
        let step = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX);
        let start = Timestamp::from_nanos(RUN_START.as_nanos().saturating_sub(step));
        let config = SimConfig {
            seed: spec.workload.seed,
            scrape_interval: interval,
            start,
            metrics,
        };
        // Checks the profile and the interval now rather than at the first window.
        Simulator::new(&profile, config)
            .map_err(|e| workload_error(format_args!("simulator profile {}: {e}", profile.name)))?;
        Ok(Self::Simulated {
            profile: Box::new(profile),
            config,
        })
    }

    fn recorded(spec: &ExperimentSpec, path: &PathBuf, written: &str) -> Result<Self> {
        let replay = phoenix_sim::replay::read_file(path)
            .map_err(|e| workload_error(format_args!("recording {written:?}: {e}")))?;
        let snapshots = replay
            .collect::<phoenix_sim::Result<Vec<Snapshot>>>()
            .map_err(|e| workload_error(format_args!("recording {written:?}: {e}")))?;
        let needed = scrapes_in(spec.duration, spec.scrape_interval);
        if (snapshots.len() as u64) < needed {
            return Err(workload_error(format_args!(
                "recording {written:?} holds {} scrapes, but a run of {} at one scrape every {} needs {needed}; shorten `duration` or lengthen `scrapeInterval`",
                snapshots.len(),
                humanize(spec.duration),
                humanize(spec.scrape_interval),
            )));
        }
        Ok(Self::Recorded {
            snapshots: Arc::new(snapshots),
        })
    }

    /// The workload from its first scrape.
    pub(crate) fn source(&self) -> Result<Source> {
        match self {
            Self::Simulated { profile, config } => Simulator::new(profile, *config)
                .map(|sim| Source::Simulated(Box::new(sim)))
                .map_err(workload_error),
            Self::Recorded { snapshots } => Ok(Source::Recorded {
                snapshots: Arc::clone(snapshots),
                next: 0,
            }),
        }
    }
}

fn humanize(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A workload being read, scrape by scrape.
#[derive(Debug)]
pub(crate) enum Source {
    Simulated(Box<Simulator>),
    Recorded {
        snapshots: Arc<Vec<Snapshot>>,
        next: usize,
    },
}

impl Source {
    /// The next scrape's snapshot, or `None` past the end of a recording.
    pub(crate) fn next_snapshot(&mut self) -> Option<&Snapshot> {
        match self {
            Self::Simulated(sim) => Some(sim.next_snapshot()),
            Self::Recorded { snapshots, next } => {
                let snapshot = snapshots.get(*next)?;
                *next += 1;
                Some(snapshot)
            }
        }
    }
}
