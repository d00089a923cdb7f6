//! The SQLite store: the embedded default, one file in WAL mode.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use phoenix_core::experiment::{Experiment, ExperimentEvent, ExperimentId};
use phoenix_core::store::{ExperimentStore, ListQuery, Page};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::error::{Backend, core_store_error};
use crate::migration::{self, MIGRATIONS_TABLE};
use crate::pipeline::{
    NO_ACTIVE, NO_EARLIER, PipelineOrigin, PipelineRevision, PipelineStore, PipelineTarget,
    check_config,
};
use crate::record::{
    EventRow, ExperimentRow, cursor_columns, decode_event, decode_experiment, fetch_count,
    into_page, now_nanos, stale,
};
use crate::row::{RevisionRow, UserRow, origin_columns};
use crate::user::{NewUser, User, UserStore, UserUpdate};
use crate::{Error, Result};

/// How long a writer waits for another connection's write lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The most connections to one SQLite file. Writers take turns; readers run side by side
/// thanks to WAL.
const MAX_CONNECTIONS: u32 = 4;

/// Keeps experiments, users and pipelines in an SQLite database.
///
/// Files are opened with `journal_mode=WAL`, `synchronous=FULL` (a write is on disk when it
/// returns), `foreign_keys=ON` and a [`BUSY_TIMEOUT`]; write transactions start with
/// `BEGIN IMMEDIATE` so that concurrent writers queue instead of failing. Cloning is cheap
/// and shares the connection pool.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    location: String,
    /// Writers of this process take turns here rather than in SQLite's busy handler, which
    /// polls and can starve a writer under heavy contention; the busy timeout still covers
    /// writers in other processes.
    writer: Arc<Mutex<()>>,
}

/// A write transaction, holding this process's write turn until it ends.
struct WriteTx {
    tx: Transaction<'static, Sqlite>,
    _turn: OwnedMutexGuard<()>,
}

impl WriteTx {
    async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl SqliteStore {
    /// Opens the database file at `path`, creating it if missing, and migrates it.
    ///
    /// Fails with [`Error::Open`] when the file cannot be created or is not an SQLite
    /// database, and with [`Error::SchemaTooNew`] when a newer Phoenix migrated it.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new().max_connections(MAX_CONNECTIONS);
        Self::connect(options, pool, path.display().to_string()).await
    }

    /// A private in-memory SQLite database, gone when the store is dropped: the SQL code
    /// paths without a file.
    pub async fn open_in_memory() -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // One connection that never closes: every connection would see a database of its
        // own, and the last one closing drops it.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
        Self::connect(options, pool, ":memory:".to_owned()).await
    }

    async fn connect(
        options: SqliteConnectOptions,
        pool: SqlitePoolOptions,
        location: String,
    ) -> Result<Self> {
        let open_error = |source| Error::Open {
            backend: Backend::Sqlite,
            location: location.clone(),
            source,
        };
        let pool = pool.connect_with(options).await.map_err(open_error)?;
        let store = Self {
            pool,
            location,
            writer: Arc::new(Mutex::new(())),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let location = &self.location;
        let read_error = |source| Error::Open {
            backend: Backend::Sqlite,
            location: location.clone(),
            source,
        };
        let has_table: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?")
                .bind(MIGRATIONS_TABLE)
                .fetch_optional(&self.pool)
                .await
                .map_err(read_error)?;
        if has_table.is_some() {
            let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
                .fetch_all(&self.pool)
                .await
                .map_err(read_error)?;
            migration::check_applied(&migration::SQLITE, &applied, Backend::Sqlite, location)?;
        }
        migration::SQLITE.run(&self.pool).await.map_err(|source| {
            migration::migrate_error(&migration::SQLITE, source, Backend::Sqlite, location)
        })
    }

    /// Where the database is: its path, or `:memory:`.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The connection pool, for checks and tools that need SQL beyond the store's methods.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Starts a write transaction that holds the write lock from the start.
    async fn write(&self) -> std::result::Result<WriteTx, sqlx::Error> {
        let turn = Arc::clone(&self.writer).lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx { tx, _turn: turn })
    }

    fn doing(&self, what: impl std::fmt::Display) -> String {
        format!("{what} in the SQLite store {}", self.location)
    }
}

#[async_trait]
impl ExperimentStore for SqliteStore {
    async fn create(
        &self,
        experiment: &Experiment,
        event: &ExperimentEvent,
    ) -> phoenix_core::Result<()> {
        let id = &experiment.id;
        let row = ExperimentRow::encode(experiment, experiment.version)?;
        let event = EventRow::encode(event, Some(id))?;
        let what = || self.doing(format_args!("creating experiment {id}"));
        let fail = |e| core_store_error(what(), e);
        let mut tx = self.write().await.map_err(fail)?;
        let inserted = sqlx::query(
            "INSERT INTO experiments \
             (id, name, owner, phase, version, created_at_ns, updated_at_ns, event_seq, body) \
             VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.owner)
        .bind(row.phase)
        .bind(row.version)
        .bind(row.created_at_ns)
        .bind(row.updated_at_ns)
        .bind(&row.body)
        .execute(&mut *tx.tx)
        .await
        .map_err(fail)?;
        if inserted.rows_affected() == 0 {
            return Err(phoenix_core::Error::AlreadyExists { id: id.clone() });
        }
        insert_event(&mut tx, &row.id, 1, &event)
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)
    }

    async fn get(&self, id: &ExperimentId) -> phoenix_core::Result<Experiment> {
        let found: Option<(i64, String)> =
            sqlx::query_as("SELECT version, body FROM experiments WHERE id = ?")
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| {
                    core_store_error(self.doing(format_args!("reading experiment {id}")), e)
                })?;
        let (version, body) =
            found.ok_or_else(|| phoenix_core::Error::NotFound { id: id.clone() })?;
        decode_experiment(id.as_str(), &body, version)
    }

    async fn list(&self, query: &ListQuery) -> phoenix_core::Result<Page> {
        let mut sql =
            QueryBuilder::<Sqlite>::new("SELECT id, version, body FROM experiments WHERE 1 = 1");
        if let Some(phase) = query.phase {
            sql.push(" AND phase = ").push_bind(phase.as_str());
        }
        if let Some(owner) = &query.owner {
            sql.push(" AND owner = ").push_bind(owner.clone());
        }
        if let Some(prefix) = query.name_prefix.as_ref().filter(|p| !p.is_empty()) {
            // (An empty prefix matches every name; SQLite's substr() of an empty name would
            // be NULL and match nothing.)
            // Byte-wise prefix match: LIKE would be case-insensitive and treat `%` and `_` as
            // wildcards. The range start lets the name index narrow the scan.
            sql.push(" AND name >= ").push_bind(prefix.clone());
            sql.push(" AND substr(CAST(name AS BLOB), 1, ")
                .push_bind(i64::try_from(prefix.len()).unwrap_or(i64::MAX))
                .push(") = ")
                .push_bind(prefix.as_bytes().to_vec());
        }
        if let Some(after) = &query.after {
            let (nanos, id) = cursor_columns(after)?;
            sql.push(" AND (created_at_ns, id) > (")
                .push_bind(nanos)
                .push(", ")
                .push_bind(id)
                .push(")");
        }
        sql.push(" ORDER BY created_at_ns, id LIMIT ")
            .push_bind(fetch_count(query));
        let rows: Vec<(String, i64, String)> = sql
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| core_store_error(self.doing("listing experiments"), e))?;
        let items = rows
            .iter()
            .map(|(id, version, body)| decode_experiment(id, body, *version))
            .collect::<phoenix_core::Result<Vec<_>>>()?;
        Ok(into_page(items, query))
    }

    async fn update(
        &self,
        experiment: &Experiment,
        event: &ExperimentEvent,
    ) -> phoenix_core::Result<Experiment> {
        let id = &experiment.id;
        let next_version = experiment.version.saturating_add(1);
        let row = ExperimentRow::encode(experiment, next_version)?;
        let event = EventRow::encode(event, Some(id))?;
        let what = || self.doing(format_args!("updating experiment {id}"));
        let fail = |e| core_store_error(what(), e);
        let mut tx = self.write().await.map_err(fail)?;
        let seq: Option<i64> = sqlx::query_scalar(
            "UPDATE experiments SET name = ?, owner = ?, phase = ?, version = ?, \
             created_at_ns = ?, updated_at_ns = ?, body = ?, event_seq = event_seq + 1 \
             WHERE id = ? AND version = ? RETURNING event_seq",
        )
        .bind(&row.name)
        .bind(&row.owner)
        .bind(row.phase)
        .bind(row.version)
        .bind(row.created_at_ns)
        .bind(row.updated_at_ns)
        .bind(&row.body)
        .bind(&row.id)
        .bind(row.version - 1)
        .fetch_optional(&mut *tx.tx)
        .await
        .map_err(fail)?;
        let Some(seq) = seq else {
            let found: Option<i64> =
                sqlx::query_scalar("SELECT version FROM experiments WHERE id = ?")
                    .bind(&row.id)
                    .fetch_optional(&mut *tx.tx)
                    .await
                    .map_err(fail)?;
            return Err(stale(experiment, found));
        };
        insert_event(&mut tx, &row.id, seq, &event)
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(Experiment {
            version: next_version,
            ..experiment.clone()
        })
    }

    async fn append_event(&self, event: &ExperimentEvent) -> phoenix_core::Result<()> {
        let id = &event.experiment_id;
        let row = EventRow::encode(event, None)?;
        let what = || self.doing(format_args!("appending an event to experiment {id}"));
        let fail = |e| core_store_error(what(), e);
        let mut tx = self.write().await.map_err(fail)?;
        let seq: Option<i64> = sqlx::query_scalar(
            "UPDATE experiments SET event_seq = event_seq + 1 WHERE id = ? RETURNING event_seq",
        )
        .bind(id.as_str())
        .fetch_optional(&mut *tx.tx)
        .await
        .map_err(fail)?;
        let seq = seq.ok_or_else(|| phoenix_core::Error::NotFound { id: id.clone() })?;
        insert_event(&mut tx, id.as_str(), seq, &row)
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)
    }

    async fn events(&self, id: &ExperimentId) -> phoenix_core::Result<Vec<ExperimentEvent>> {
        let fail = |e| {
            core_store_error(
                self.doing(format_args!("reading the events of experiment {id}")),
                e,
            )
        };
        let bodies: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM experiment_events WHERE experiment_id = ? ORDER BY seq",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        if bodies.is_empty() {
            let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM experiments WHERE id = ?")
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(fail)?;
            if exists.is_none() {
                return Err(phoenix_core::Error::NotFound { id: id.clone() });
            }
        }
        bodies.iter().map(|body| decode_event(id, body)).collect()
    }

    async fn delete(&self, id: &ExperimentId) -> phoenix_core::Result<()> {
        let deleted = sqlx::query("DELETE FROM experiments WHERE id = ?")
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(|e| {
                core_store_error(self.doing(format_args!("deleting experiment {id}")), e)
            })?;
        if deleted.rows_affected() == 0 {
            return Err(phoenix_core::Error::NotFound { id: id.clone() });
        }
        Ok(())
    }
}

async fn insert_event(
    tx: &mut WriteTx,
    id: &str,
    seq: i64,
    event: &EventRow,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO experiment_events (experiment_id, seq, at_ns, actor, kind, body) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(seq)
    .bind(event.at_ns)
    .bind(&event.actor)
    .bind(event.kind)
    .bind(&event.body)
    .execute(&mut *tx.tx)
    .await
    .map(drop)
}

const USER_COLUMNS: &str = "name, password_hash, role, disabled, created_at_ns, updated_at_ns";

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: &NewUser) -> Result<User> {
        user.validate()?;
        let now = now_nanos();
        let inserted = sqlx::query(
            "INSERT INTO users (name, password_hash, role, disabled, created_at_ns, updated_at_ns) \
             VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&user.name)
        .bind(&user.password_hash)
        .bind(user.role.as_str())
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            Error::database(self.doing(format_args!("creating user {:?}", user.name)), e)
        })?;
        if inserted.rows_affected() == 0 {
            return Err(Error::UserExists {
                name: user.name.clone(),
            });
        }
        UserRow {
            name: user.name.clone(),
            password_hash: user.password_hash.clone(),
            role: user.role.as_str().to_owned(),
            disabled: false,
            created_at_ns: now,
            updated_at_ns: now,
        }
        .decode()
    }

    async fn user(&self, name: &str) -> Result<User> {
        let row: Option<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?"))
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| {
                    Error::database(self.doing(format_args!("reading user {name:?}")), e)
                })?;
        row.ok_or_else(|| Error::UserNotFound {
            name: name.to_owned(),
        })?
        .decode()
    }

    async fn users(&self) -> Result<Vec<User>> {
        let rows: Vec<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| Error::database(self.doing("listing users"), e))?;
        rows.into_iter().map(UserRow::decode).collect()
    }

    async fn update_user(&self, name: &str, update: &UserUpdate) -> Result<User> {
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "UPDATE users SET password_hash = COALESCE(?, password_hash), role = COALESCE(?, role), \
             updated_at_ns = ? WHERE name = ? RETURNING {USER_COLUMNS}"
        ))
        .bind(update.password_hash.as_deref())
        .bind(update.role.map(|r| r.as_str()))
        .bind(now_nanos())
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| Error::database(self.doing(format_args!("updating user {name:?}")), e))?;
        row.ok_or_else(|| Error::UserNotFound {
            name: name.to_owned(),
        })?
        .decode()
    }

    async fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<User> {
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "UPDATE users SET disabled = ?, updated_at_ns = ? WHERE name = ? RETURNING {USER_COLUMNS}"
        ))
        .bind(disabled)
        .bind(now_nanos())
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| Error::database(self.doing(format_args!("setting the disabled flag of user {name:?}")), e))?;
        row.ok_or_else(|| Error::UserNotFound {
            name: name.to_owned(),
        })?
        .decode()
    }

    async fn user_count(&self) -> Result<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| Error::database(self.doing("counting users"), e))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

const REVISION_COLUMNS: &str =
    "target, revision, config, experiment_id, variant, state, created_at_ns, updated_at_ns";

#[async_trait]
impl PipelineStore for SqliteStore {
    async fn activate(
        &self,
        target: &PipelineTarget,
        config: &str,
        origin: Option<&PipelineOrigin>,
    ) -> Result<PipelineRevision> {
        check_config(target, config)?;
        let what = || self.doing(format_args!("activating a pipeline on target {target}"));
        let fail = |e| Error::database(what(), e);
        let target_text = target.to_string();
        let (experiment_id, variant) = origin_columns(origin);
        let now = now_nanos();
        let mut tx = self.write().await.map_err(fail)?;
        let revision: i64 = sqlx::query_scalar(
            "INSERT INTO pipeline_targets (target, last_revision) VALUES (?, 1) \
             ON CONFLICT (target) DO UPDATE SET last_revision = pipeline_targets.last_revision + 1 \
             RETURNING last_revision",
        )
        .bind(&target_text)
        .fetch_one(&mut *tx.tx)
        .await
        .map_err(fail)?;
        sqlx::query(
            "UPDATE pipeline_revisions SET state = 'superseded', updated_at_ns = ? \
             WHERE target = ? AND state = 'active'",
        )
        .bind(now)
        .bind(&target_text)
        .execute(&mut *tx.tx)
        .await
        .map_err(fail)?;
        let row: RevisionRow = sqlx::query_as(&format!(
            "INSERT INTO pipeline_revisions ({REVISION_COLUMNS}) \
             VALUES (?, ?, ?, ?, ?, 'active', ?, ?) RETURNING {REVISION_COLUMNS}"
        ))
        .bind(&target_text)
        .bind(revision)
        .bind(config)
        .bind(experiment_id)
        .bind(variant)
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx.tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        row.decode()
    }

    async fn active(&self, target: &PipelineTarget) -> Result<Option<PipelineRevision>> {
        let row: Option<RevisionRow> = sqlx::query_as(&format!(
            "SELECT {REVISION_COLUMNS} FROM pipeline_revisions WHERE target = ? AND state = 'active'"
        ))
        .bind(target.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| Error::database(self.doing(format_args!("reading the active pipeline of target {target}")), e))?;
        row.map(RevisionRow::decode).transpose()
    }

    async fn history(&self, target: &PipelineTarget) -> Result<Vec<PipelineRevision>> {
        let rows: Vec<RevisionRow> = sqlx::query_as(&format!(
            "SELECT {REVISION_COLUMNS} FROM pipeline_revisions WHERE target = ? ORDER BY revision DESC"
        ))
        .bind(target.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| Error::database(self.doing(format_args!("reading the pipeline history of target {target}")), e))?;
        rows.into_iter().map(RevisionRow::decode).collect()
    }

    async fn rollback(&self, target: &PipelineTarget) -> Result<PipelineRevision> {
        let what = || self.doing(format_args!("rolling back the pipeline of target {target}"));
        let fail = |e| Error::database(what(), e);
        let nothing = |reason| Error::NothingToRollBack {
            target: target.clone(),
            reason,
        };
        let target_text = target.to_string();
        let now = now_nanos();
        let mut tx = self.write().await.map_err(fail)?;
        let active: Option<i64> = sqlx::query_scalar(
            "SELECT revision FROM pipeline_revisions WHERE target = ? AND state = 'active'",
        )
        .bind(&target_text)
        .fetch_optional(&mut *tx.tx)
        .await
        .map_err(fail)?;
        let active = active.ok_or_else(|| nothing(NO_ACTIVE))?;
        let restore: Option<i64> = sqlx::query_scalar(
            "SELECT revision FROM pipeline_revisions WHERE target = ? AND revision < ? \
             AND state <> 'rolledBack' ORDER BY revision DESC LIMIT 1",
        )
        .bind(&target_text)
        .bind(active)
        .fetch_optional(&mut *tx.tx)
        .await
        .map_err(fail)?;
        let restore = restore.ok_or_else(|| nothing(NO_EARLIER))?;
        sqlx::query(
            "UPDATE pipeline_revisions SET state = 'rolledBack', updated_at_ns = ? \
             WHERE target = ? AND revision = ?",
        )
        .bind(now)
        .bind(&target_text)
        .bind(active)
        .execute(&mut *tx.tx)
        .await
        .map_err(fail)?;
        let row: RevisionRow = sqlx::query_as(&format!(
            "UPDATE pipeline_revisions SET state = 'active', updated_at_ns = ? \
             WHERE target = ? AND revision = ? RETURNING {REVISION_COLUMNS}"
        ))
        .bind(now)
        .bind(&target_text)
        .bind(restore)
        .fetch_one(&mut *tx.tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        row.decode()
    }
}
