//! Phoenix: cut the cost of host process metrics while keeping critical processes visible.
//!
//! This facade re-exports the Phoenix libraries so that a tool can depend on one crate, and
//! holds what needs several of them:
//!
//! - [`core`]: the domain — telemetry model, experiment specs, phases, analysis, cost model,
//!   the store and executor traits, and the experiment controller.
//! - [`generator`]: collector configs, the template catalog and the pipeline emulator.
//! - [`sim`]: the process-load simulator, `/proc` capture and replay.
//! - [`store`]: experiment stores (memory, SQLite, PostgreSQL) and pipeline history.
//! - [`local`]: the [`LocalExecutor`](local::LocalExecutor), which runs experiments
//!   in-process — simulated hours in seconds — with the simulator and the emulator.
//! - [`quickstart`]: every candidate template against the baseline, as the `quickstart`
//!   example runs it.
//!
//! Each library is also usable on its own. See `docs/local-runner.md`.
//!
//! # Example
//!
//! Run a spec end to end on the local executor with an in-memory store:
//!
//! ```
//! use std::sync::Arc;
//! use phoenix::core::controller::ExperimentController;
//! use phoenix::core::experiment::{EventKind, Experiment, ExperimentSpec};
//! use phoenix::core::store::ExperimentStore;
//! use phoenix::local::LocalExecutor;
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let spec: ExperimentSpec = serde_yaml::from_str(r#"
//! name: aggregated-trial
//! baseline: {template: process-baseline-v1}
//! candidate: {template: process-aggregated-v1}
//! workload: {profile: realistic, processes: 30, seed: 7}
//! duration: 5m
//! warmUp: 1m
//! criticalProcesses: ["^postgres$", "^sshd$"]
//! "#)?;
//! spec.validate()?;
//!
//! let store = Arc::new(phoenix::store::MemoryStore::new());
//! let experiment = Experiment::new(spec);
//! store.create(&experiment, &experiment.event("docs", EventKind::Created, "created")).await?;
//! let controller = ExperimentController::new(store, Arc::new(LocalExecutor::new()));
//! let done = controller.run(&experiment.id).await?;
//!
//! let results = done.status.results.expect("completed");
//! assert!(results.comparison.cardinality_reduction > 0.0);
//! assert_eq!(results.candidate.critical_coverage, 1.0, "critical processes stay whole");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use phoenix_core as core;
pub use phoenix_generator as generator;
pub use phoenix_sim as sim;
pub use phoenix_store as store;

pub mod local;
pub mod quickstart;
