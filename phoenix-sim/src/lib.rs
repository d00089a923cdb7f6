//! Phoenix's process-load engine.
//!
//! Simulates the processes of a host and produces what the OpenTelemetry Collector's
//! hostmetrics `process` scraper would report about them, one [`Snapshot`] per scrape, in
//! phoenix-core's telemetry model — fast, deterministic for a seed, and streaming (memory
//! grows with live processes, not with simulated time).
//!
//! - [`profile`]: workloads — the presets `realistic`, `high-cardinality`, `high-churn`,
//!   `chaos`, and custom profiles in YAML, validated with errors that name the field.
//! - [`Simulator`]: the engine; [`SimConfig`] sets seed, scrape interval, start time and
//!   the enabled metrics.
//! - [`output`]: OTLP JSON lines as the collector's `file` exporter writes them.
//! - `export` (feature `export`): OTLP over gRPC and HTTP, and a Prometheus endpoint.
//! - [`workers`]: real mode — bounded worker processes with distinct names that burn CPU
//!   and hold memory by pattern, and die with the simulator.
//! - [`capture`]: this host's `/proc` read into a snapshot as the scraper would.
//! - [`replay`]: OTLP JSON lines read back into snapshots.
//!
//! # Example
//!
//! ```
//! use phoenix_core::experiment::ProfilePreset;
//! use phoenix_sim::{Profile, SimConfig, Simulator};
//!
//! let profile = Profile::preset(ProfilePreset::Realistic).with_processes(50)?;
//! let mut sim = Simulator::new(&profile, SimConfig { seed: 7, ..SimConfig::default() })?;
//! let snapshot = sim.next_snapshot();
//! assert_eq!(snapshot.resources.len(), 50);
//! // The scraper's default metrics: 7 data points per process.
//! assert_eq!(snapshot.data_point_count(), 50 * 7);
//! let line = phoenix_core::otlp::to_json(snapshot);
//! assert!(line.contains("process.cpu.time"));
//!
//! // The same seed gives the same snapshots.
//! let mut again = Simulator::new(&profile, SimConfig { seed: 7, ..SimConfig::default() })?;
//! assert_eq!(phoenix_core::otlp::to_json(again.next_snapshot()), line);
//! # Ok::<(), phoenix_sim::Error>(())
//! ```
//!
//! [`Snapshot`]: phoenix_core::telemetry::Snapshot

pub mod capture;
mod engine;
mod error;
#[cfg(feature = "export")]
pub mod export;
pub mod output;
pub mod profile;
pub mod replay;
pub mod workers;

pub use engine::{
    DEFAULT_SEED, DEFAULT_START, MAX_START, MetricSelection, PID_WRAP_TO, SCRAPER_VERSION,
    SimConfig, SimStats, Simulator,
};
pub use error::{Error, Result};
pub use profile::Profile;
