//! Experiment stores for Phoenix.
//!
//! This crate will hold the implementations of
//! `phoenix_core::store::ExperimentStore`: in-memory, SQLite (the embedded
//! default) and PostgreSQL, with their migrations (see `docs/ARCHITECTURE.md`).
//!
//! Nothing is implemented yet: the crate exports no items.
