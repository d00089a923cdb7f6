//! API server and command line for Phoenix.
//!
//! This crate will hold the REST (`/api/v1`), gRPC (`phoenix.v1`) and
//! WebSocket API with authentication and `/metrics`, and the `phoenix` command
//! line (see `docs/ARCHITECTURE.md`).
//!
//! Nothing is implemented yet: the crate exports no items.
