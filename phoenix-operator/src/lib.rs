//! Kubernetes operator for Phoenix.
//!
//! This crate will hold the `phoenix.io/v1alpha1` custom resources, their
//! reconcilers, the Kubernetes executor and the `crdgen` binary (see
//! `docs/ARCHITECTURE.md`).
//!
//! Nothing is implemented yet: the crate exports no items.
