//! The Phoenix domain: telemetry, experiments, phases, analysis and the experiment controller.
//!
//! Phoenix cuts the cost of host process metrics collected by OpenTelemetry collectors while
//! keeping critical processes fully visible. This crate holds what every other Phoenix crate
//! shares, and depends on no runtime, database, Kubernetes or RPC crate:
//!
//! - [`telemetry`]: the model of one scrape ([`telemetry::Snapshot`]), the hostmetrics
//!   `process` scraper schema as types ([`telemetry::schema`]), and series identity
//!   ([`telemetry::SeriesKey`]). With the `otlp` feature, `otlp` converts it losslessly to and
//!   from OTLP protobuf and the OTLP JSON of the collector's `file` exporter.
//! - [`experiment`]: the spec users write, validated with every violation reported by path,
//!   and the stored record with its event log.
//! - [`phase`]: the phases and the pure transition function.
//! - [`measurement`], [`analysis`] and [`cost`]: per-window measurements, the comparison, the
//!   significance test, the recommendation and the monthly cost.
//! - [`store`] and [`executor`]: the traits that storage backends and executors implement.
//! - [`controller`]: drives one experiment through its phases with only those traits.
//!
//! # Example
//!
//! Parse and validate a spec, then step it through its phases by hand:
//!
//! ```
//! use phoenix_core::experiment::{Experiment, ExperimentSpec};
//! use phoenix_core::phase::{Effect, Phase, PhaseEvent};
//!
//! let spec: ExperimentSpec = serde_json::from_str(r#"{
//!     "name": "topk-trial",
//!     "baseline": {"template": "process-baseline-v1"},
//!     "candidate": {"template": "process-topk-v1", "parameters": {"k": 20}},
//!     "duration": "2h",
//!     "criticalProcesses": ["^postgres$"]
//! }"#)?;
//! spec.validate()?;
//! assert_eq!(spec.windows().len(), 60);
//!
//! let mut experiment = Experiment::new(spec);
//! assert_eq!(experiment.apply(&PhaseEvent::Start)?, [Effect::Prepare]);
//! assert_eq!(experiment.status.phase, Phase::Initializing);
//! assert!(experiment.apply(&PhaseEvent::Promote).is_err(), "only a completed run can be promoted");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
pub mod analysis;
pub mod controller;
pub mod cost;
pub(crate) mod duration;
mod error;
pub mod executor;
pub mod experiment;
pub mod measurement;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod phase;
pub mod store;
pub mod telemetry;

pub use error::{BoxError, Error, Result};
