//! Phoenix: cut the cost of host process metrics while keeping critical processes visible.
//!
//! This facade re-exports the Phoenix libraries so that a tool can depend on one crate.
//! Each library is also usable on its own.

pub use phoenix_core as core;
