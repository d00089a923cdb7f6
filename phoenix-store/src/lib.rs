//! Experiment stores for Phoenix: in memory, in SQLite (the embedded default) and in
//! PostgreSQL (for shared deployments), behind phoenix-core's
//! [`ExperimentStore`](phoenix_core::store::ExperimentStore) trait.
//!
//! Besides experiments and their event logs, a store keeps what the API and promotion need:
//! [users](UserStore) with their roles, and per target the [active pipeline](PipelineStore)
//! with its history, so that a rollback restores the pipeline a promotion replaced.
//!
//! [`open`] picks the backend from a URL (`sqlite://PATH`, `sqlite::memory:`,
//! `postgres://…`, `postgresql://…`, `memory://`), creates the database if needed and applies
//! the embedded schema migrations. A database migrated by a newer Phoenix is refused, not
//! touched. All three backends pass one contract test suite: the same version-guarded
//! updates (a stale writer gets [`phoenix_core::Error::Conflict`] and nothing is written),
//! events written in the same transaction as the change, and the same listing order and
//! paging.
//!
//! # Example
//!
//! ```
//! use phoenix_core::experiment::{EventKind, Experiment, ExperimentSpec};
//! use phoenix_core::store::{ExperimentStore, ListQuery};
//! use phoenix_store::{PipelineStore, PipelineTarget};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let dir = tempfile::tempdir()?;
//! let url = format!("sqlite://{}", dir.path().join("phoenix.db").display());
//! let store = phoenix_store::open(&url).await?;
//!
//! let spec: ExperimentSpec = serde_json::from_str(
//!     r#"{"name": "topk-trial", "owner": "alice",
//!         "baseline": {"template": "process-baseline-v1"},
//!         "candidate": {"template": "process-topk-v1"}}"#,
//! )?;
//! let experiment = Experiment::new(spec);
//! store.create(&experiment, &experiment.event("alice", EventKind::Created, "created")).await?;
//!
//! // Updates name the version they were based on; the store increments it.
//! let mut edited = store.get(&experiment.id).await?;
//! edited.spec.description = "top 20 processes".into();
//! let saved = store.update(&edited, &edited.event("alice", EventKind::Updated, "described")).await?;
//! assert_eq!(saved.version, 2);
//!
//! // A writer that read version 1 is refused, and nothing changes.
//! let stale = store.update(&edited, &edited.event("bob", EventKind::Updated, "late")).await;
//! assert!(matches!(stale, Err(phoenix_core::Error::Conflict { expected: 1, found: 2, .. })));
//! assert_eq!(store.events(&experiment.id).await?.len(), 2);
//!
//! let page = store.list(&ListQuery { owner: Some("alice".into()), ..ListQuery::default() }).await?;
//! assert_eq!(page.items, [saved]);
//!
//! // Pipelines: activate, then roll back to the previous one.
//! let local = PipelineTarget::Local;
//! store.activate(&local, "receivers: {}\n# v1", None).await?;
//! store.activate(&local, "receivers: {}\n# v2", None).await?;
//! assert_eq!(store.rollback(&local).await?.revision, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })
//! # .map_err(|e| e.to_string())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! See `docs/store.md` for URLs, pragmas, the schema, the migration policy and how to run the
//! PostgreSQL tests.

mod backend;
mod error;
mod location;
mod memory;
mod migration;
pub mod pipeline;
mod postgres;
mod record;
mod row;
mod sqlite;
pub mod user;

pub use backend::{Store, open};
pub use error::{Backend, Error, Result};
pub use location::redact;
pub use memory::MemoryStore;
pub use pipeline::{
    PipelineOrigin, PipelineRevision, PipelineStore, PipelineTarget, RevisionState, RollbackGap,
};
pub use postgres::{PostgresOptions, PostgresStore};
pub use sqlite::{BUSY_TIMEOUT, SqliteStore};
pub use user::{NewUser, Role, User, UserStore, UserUpdate};
