//! Collector pipeline configuration for Phoenix.
//!
//! This crate will hold the collector config model, the template catalog
//! (`process-baseline-v1`, `process-priority-filter-v1`, `process-topk-v1`,
//! `process-aggregated-v1`, `process-adaptive-filter-v1`), validation, YAML and
//! Kubernetes rendering, the GitOps writer and the pipeline emulator with its
//! OTTL subset (see `docs/ARCHITECTURE.md`).
//!
//! Nothing is implemented yet: the crate exports no items.
