//! One store type for whichever backend a URL names.

use std::sync::Arc;

use async_trait::async_trait;
use phoenix_core::experiment::{Experiment, ExperimentEvent, ExperimentId};
use phoenix_core::store::{ExperimentStore, ListQuery, Page};

use crate::Result;
use crate::error::Backend;
use crate::location::Location;
use crate::memory::MemoryStore;
use crate::pipeline::{PipelineOrigin, PipelineRevision, PipelineStore, PipelineTarget};
use crate::postgres::PostgresStore;
use crate::sqlite::SqliteStore;
use crate::user::{NewUser, User, UserStore, UserUpdate};

/// A store on any backend: implements [`ExperimentStore`], [`UserStore`] and
/// [`PipelineStore`] by handing every call to the backend. Cloning is cheap and shares the
/// data (and the connection pool).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Store {
    /// In process memory.
    Memory(Arc<MemoryStore>),
    /// In SQLite.
    Sqlite(SqliteStore),
    /// In PostgreSQL.
    Postgres(PostgresStore),
}

/// Opens the store that `url` names, creating and migrating its database as needed:
///
/// - `sqlite://PATH` (`sqlite:///absolute/path.db`, `sqlite://relative/path.db`, or
///   `sqlite:PATH`): an SQLite file, created if missing; `sqlite::memory:` for a private
///   in-memory SQLite database;
/// - `postgres://…` or `postgresql://…`: a PostgreSQL database, with the optional parameters
///   `connect_timeout=SECONDS` (default 10) and `schema=NAME`;
/// - `memory://`: process memory.
///
/// Errors name the URL without its password: [`Error::UnsupportedUrl`](crate::Error::UnsupportedUrl),
/// [`Error::InvalidUrl`](crate::Error::InvalidUrl), [`Error::Open`](crate::Error::Open),
/// [`Error::Migrate`](crate::Error::Migrate) and [`Error::SchemaTooNew`](crate::Error::SchemaTooNew).
pub async fn open(url: &str) -> Result<Store> {
    match Location::parse(url)? {
        Location::Memory => Ok(Store::Memory(Arc::new(MemoryStore::new()))),
        Location::SqliteFile(path) => SqliteStore::open(path).await.map(Store::Sqlite),
        Location::SqliteMemory => SqliteStore::open_in_memory().await.map(Store::Sqlite),
        Location::Postgres(_) => PostgresStore::connect(url).await.map(Store::Postgres),
    }
}

impl Store {
    /// The backend the data is in.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Memory(_) => Backend::Memory,
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Where the data is: `memory`, a file path, or a URL without its password.
    pub fn location(&self) -> &str {
        match self {
            Self::Memory(_) => "memory",
            Self::Sqlite(s) => s.location(),
            Self::Postgres(s) => s.location(),
        }
    }

    /// Closes the database connections; later calls fail. Does nothing in memory.
    pub async fn close(&self) {
        match self {
            Self::Memory(_) => {}
            Self::Sqlite(s) => s.close().await,
            Self::Postgres(s) => s.close().await,
        }
    }

    fn experiments(&self) -> &dyn ExperimentStore {
        match self {
            Self::Memory(s) => s.as_ref(),
            Self::Sqlite(s) => s,
            Self::Postgres(s) => s,
        }
    }

    fn user_store(&self) -> &dyn UserStore {
        match self {
            Self::Memory(s) => s.as_ref(),
            Self::Sqlite(s) => s,
            Self::Postgres(s) => s,
        }
    }

    fn pipelines(&self) -> &dyn PipelineStore {
        match self {
            Self::Memory(s) => s.as_ref(),
            Self::Sqlite(s) => s,
            Self::Postgres(s) => s,
        }
    }
}

impl From<MemoryStore> for Store {
    fn from(store: MemoryStore) -> Self {
        Self::Memory(Arc::new(store))
    }
}

impl From<SqliteStore> for Store {
    fn from(store: SqliteStore) -> Self {
        Self::Sqlite(store)
    }
}

impl From<PostgresStore> for Store {
    fn from(store: PostgresStore) -> Self {
        Self::Postgres(store)
    }
}

#[async_trait]
impl ExperimentStore for Store {
    async fn create(
        &self,
        experiment: &Experiment,
        event: &ExperimentEvent,
    ) -> phoenix_core::Result<()> {
        self.experiments().create(experiment, event).await
    }

    async fn get(&self, id: &ExperimentId) -> phoenix_core::Result<Experiment> {
        self.experiments().get(id).await
    }

    async fn list(&self, query: &ListQuery) -> phoenix_core::Result<Page> {
        self.experiments().list(query).await
    }

    async fn update(
        &self,
        experiment: &Experiment,
        event: &ExperimentEvent,
    ) -> phoenix_core::Result<Experiment> {
        self.experiments().update(experiment, event).await
    }

    async fn append_event(&self, event: &ExperimentEvent) -> phoenix_core::Result<()> {
        self.experiments().append_event(event).await
    }

    async fn events(&self, id: &ExperimentId) -> phoenix_core::Result<Vec<ExperimentEvent>> {
        self.experiments().events(id).await
    }

    async fn delete(&self, id: &ExperimentId) -> phoenix_core::Result<()> {
        self.experiments().delete(id).await
    }
}

#[async_trait]
impl UserStore for Store {
    async fn create_user(&self, user: &NewUser) -> Result<User> {
        self.user_store().create_user(user).await
    }

    async fn user(&self, name: &str) -> Result<User> {
        self.user_store().user(name).await
    }

    async fn users(&self) -> Result<Vec<User>> {
        self.user_store().users().await
    }

    async fn update_user(&self, name: &str, update: &UserUpdate) -> Result<User> {
        self.user_store().update_user(name, update).await
    }

    async fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<User> {
        self.user_store().set_user_disabled(name, disabled).await
    }

    async fn user_count(&self) -> Result<u64> {
        self.user_store().user_count().await
    }
}

#[async_trait]
impl PipelineStore for Store {
    async fn activate(
        &self,
        target: &PipelineTarget,
        config: &str,
        origin: Option<&PipelineOrigin>,
    ) -> Result<PipelineRevision> {
        self.pipelines().activate(target, config, origin).await
    }

    async fn active(&self, target: &PipelineTarget) -> Result<Option<PipelineRevision>> {
        self.pipelines().active(target).await
    }

    async fn history(&self, target: &PipelineTarget) -> Result<Vec<PipelineRevision>> {
        self.pipelines().history(target).await
    }

    async fn rollback(&self, target: &PipelineTarget) -> Result<PipelineRevision> {
        self.pipelines().rollback(target).await
    }
}
