//! Process-load engine for Phoenix.
//!
//! This crate will hold the simulator: workload profiles, the process
//! population model, hostmetrics-shaped snapshots, OTLP and Prometheus export,
//! real-process mode, `/proc` capture and replay (see `docs/ARCHITECTURE.md`).
//!
//! Nothing is implemented yet: the crate exports no items.
