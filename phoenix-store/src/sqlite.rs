//! The SQLite store: the embedded default, one file in WAL mode.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use phoenix_core::experiment::{Experiment, ExperimentEvent, ExperimentId};
use phoenix_core::store::{ExperimentStore, ListQuery, Page};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Sqlite, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::error::{Backend, core_store_error};
use crate::migration::{self, MIGRATIONS_TABLE};
use crate::pipeline::{
    PipelineOrigin, PipelineRevision, PipelineStore, PipelineTarget, RollbackGap, check_activation,
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
/// Files are opened with `synchronous=FULL` (a write is on disk when it returns),
/// `foreign_keys=ON` and a [`BUSY_TIMEOUT`], and switched to `journal_mode=WAL` once the
/// schema is known to be one this build may touch. Every write transaction starts with
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
    /// The schema is checked first, on a connection of its own that changes nothing: a
    /// database migrated by a newer Phoenix is refused with [`Error::SchemaTooNew`] and left
    /// as it was (not even switched to WAL). Migrations run under the database's write lock,
    /// so processes opening one new file at the same time take turns. Fails with
    /// [`Error::Open`] when the file cannot be created or is not an SQLite database.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let location = path.display().to_string();
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // No journal mode on this connection: switching to WAL writes to the file, which
        // must wait until the schema is known to be one this build may touch.
        let mut setup = SqliteConnection::connect_with(&options)
            .await
            .map_err(|e| open_error(&location, e))?;
        let prepared = async {
            migrate(&mut setup, &location).await?;
            use_wal(&mut setup, &location).await
        }
        .await;
        // Closing is a courtesy; the connection is done with either way.
        let _ = setup.close().await;
        prepared?;
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options.journal_mode(SqliteJournalMode::Wal))
            .await
            .map_err(|e| open_error(&location, e))?;
        Ok(Self::with_pool(pool, location))
    }

    /// A private in-memory SQLite database, gone when the store is dropped: the SQL code
    /// paths without a file.
    pub async fn open_in_memory() -> Result<Self> {
        let location = ":memory:".to_owned();
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
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|e| open_error(&location, e))?;
        let mut conn = pool.acquire().await.map_err(|e| open_error(&location, e))?;
        migrate(&mut conn, &location).await?;
        drop(conn);
        Ok(Self::with_pool(pool, location))
    }

    fn with_pool(pool: SqlitePool, location: String) -> Self {
        Self {
            pool,
            location,
            writer: Arc::new(Mutex::new(())),
        }
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

fn open_error(location: &str, source: sqlx::Error) -> Error {
    Error::Open {
        backend: Backend::Sqlite,
        location: location.to_owned(),
        source,
    }
}

/// Refuses a schema newer than this build, then applies the missing migrations while
/// holding the database's write lock, so that processes opening the same new file at once
/// take turns: the first migrates, the others find the migrations applied.
async fn migrate(conn: &mut SqliteConnection, location: &str) -> Result<()> {
    // Reading only: nothing is written to a database this build must not touch.
    check_schema(conn, location).await?;
    let mut tx = conn
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(|e| open_error(location, e))?;
    // Another process may have migrated the database since the first check.
    check_schema(&mut tx, location).await?;
    // sqlx runs each migration in a savepoint of this transaction.
    migration::SQLITE
        .run_direct(&mut *tx)
        .await
        .map_err(|source| {
            migration::migrate_error(&migration::SQLITE, source, Backend::Sqlite, location)
        })?;
    tx.commit().await.map_err(|e| open_error(location, e))
}

/// Fails with [`Error::SchemaTooNew`] when the database has a migration this build does not
/// know.
async fn check_schema(conn: &mut SqliteConnection, location: &str) -> Result<()> {
    let has_table: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?")
            .bind(MIGRATIONS_TABLE)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| open_error(location, e))?;
    if has_table.is_some() {
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| open_error(location, e))?;
        migration::check_applied(&migration::SQLITE, &applied, Backend::Sqlite, location)?;
    }
    Ok(())
}

/// Switches the file to WAL, which lasts: every connection opened later finds it in the file.
/// Another process switching or migrating at the same moment can make the switch report busy
/// at once (SQLite does not wait where waiting could deadlock), so it is retried until the
/// [`BUSY_TIMEOUT`].
async fn use_wal(conn: &mut SqliteConnection, location: &str) -> Result<()> {
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        let switched: std::result::Result<String, sqlx::Error> =
            sqlx::query_scalar("PRAGMA journal_mode = WAL")
                .fetch_one(&mut *conn)
                .await;
        match switched {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) => {
                return Err(open_error(
                    location,
                    sqlx::Error::Protocol(format!(
                        "the journal mode stayed {mode:?} instead of becoming WAL"
                    )),
                ));
            }
            Err(e) if is_busy(&e) && started.elapsed() < BUSY_TIMEOUT => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(open_error(location, e)),
        }
    }
}

/// Whether SQLite refused for a lock another connection holds (`SQLITE_BUSY` or
/// `SQLITE_LOCKED`, with their extended codes).
fn is_busy(error: &sqlx::Error) -> bool {
    let code = error
        .as_database_error()
        .and_then(|e| e.code())
        .and_then(|code| code.parse::<i32>().ok());
    matches!(code.map(|c| c & 0xff), Some(5 | 6))
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
        let fail = |e| core_store_error(self.doing(format_args!("deleting experiment {id}")), e);
        let mut tx = self.write().await.map_err(fail)?;
        let deleted = sqlx::query("DELETE FROM experiments WHERE id = ?")
            .bind(id.as_str())
            .execute(&mut *tx.tx)
            .await
            .map_err(fail)?;
        if deleted.rows_affected() == 0 {
            return Err(phoenix_core::Error::NotFound { id: id.clone() });
        }
        tx.commit().await.map_err(fail)
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
        let fail =
            |e| Error::database(self.doing(format_args!("creating user {:?}", user.name)), e);
        let now = now_nanos();
        let mut tx = self.write().await.map_err(fail)?;
        let inserted = sqlx::query(
            "INSERT INTO users (name, password_hash, role, disabled, created_at_ns, updated_at_ns) \
             VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&user.name)
        .bind(&user.password_hash)
        .bind(user.role.as_str())
        .bind(now)
        .bind(now)
        .execute(&mut *tx.tx)
        .await
        .map_err(fail)?;
        if inserted.rows_affected() == 0 {
            return Err(Error::UserExists {
                name: user.name.clone(),
            });
        }
        tx.commit().await.map_err(fail)?;
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
        update.validate()?;
        let fail = |e| Error::database(self.doing(format_args!("updating user {name:?}")), e);
        let mut tx = self.write().await.map_err(fail)?;
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "UPDATE users SET password_hash = COALESCE(?, password_hash), role = COALESCE(?, role), \
             updated_at_ns = ? WHERE name = ? RETURNING {USER_COLUMNS}"
        ))
        .bind(update.password_hash.as_deref())
        .bind(update.role.map(|r| r.as_str()))
        .bind(now_nanos())
        .bind(name)
        .fetch_optional(&mut *tx.tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        row.ok_or_else(|| Error::UserNotFound {
            name: name.to_owned(),
        })?
        .decode()
    }

    async fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<User> {
        let fail = |e| {
            Error::database(
                self.doing(format_args!("setting the disabled flag of user {name:?}")),
                e,
            )
        };
        let mut tx = self.write().await.map_err(fail)?;
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "UPDATE users SET disabled = ?, updated_at_ns = ? WHERE name = ? RETURNING {USER_COLUMNS}"
        ))
        .bind(disabled)
        .bind(now_nanos())
        .bind(name)
        .fetch_optional(&mut *tx.tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
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
        check_activation(target, config)?;
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
        target.validate()?;
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
        let active = active.ok_or_else(|| nothing(RollbackGap::NoActivePipeline))?;
        let restore: Option<i64> = sqlx::query_scalar(
            "SELECT revision FROM pipeline_revisions WHERE target = ? AND revision < ? \
             AND state <> 'rolledBack' ORDER BY revision DESC LIMIT 1",
        )
        .bind(&target_text)
        .bind(active)
        .fetch_optional(&mut *tx.tx)
        .await
        .map_err(fail)?;
        let restore = restore.ok_or_else(|| nothing(RollbackGap::NoEarlierPipeline))?;
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

#[cfg(test)]
mod tests {
    use phoenix_core::experiment::{EventKind, ExperimentSpec};

    use super::*;
    use crate::user::Role;

    fn experiment(name: &str) -> Experiment {
        let spec: ExperimentSpec = serde_json::from_str(&format!(
            r#"{{"name": "{name}", "owner": "alice",
                "baseline": {{"template": "process-baseline-v1"}},
                "candidate": {{"template": "process-topk-v1"}}}}"#
        ))
        .unwrap();
        Experiment::new(spec)
    }

    async fn create(store: &SqliteStore, name: &str) -> Experiment {
        let experiment = experiment(name);
        let event = experiment.event("alice", EventKind::Created, "created");
        store.create(&experiment, &event).await.unwrap();
        experiment
    }

    /// Every kind of write waits for this process's write turn: none of them may reach the
    /// database while another writer of the process holds it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_write_takes_the_write_turn() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("turns.db"))
            .await
            .unwrap();
        let updated = create(&store, "updated").await;
        let deleted = create(&store, "deleted").await;
        let user = NewUser {
            name: "bob".into(),
            password_hash: "hash".into(),
            role: Role::Viewer,
        };
        store.create_user(&user).await.unwrap();
        let rolled: PipelineTarget = "k8s/rolled".parse().unwrap();
        store.activate(&rolled, "# 1", None).await.unwrap();
        store.activate(&rolled, "# 2", None).await.unwrap();

        let turn = Arc::clone(&store.writer).lock_owned().await;
        let mut writes = Vec::new();
        macro_rules! write {
            ($name:literal, |$s:ident| $body:expr) => {{
                let $s = store.clone();
                writes.push((
                    $name,
                    tokio::spawn(async move { $body.map(drop).map_err(|e| e.to_string()) }),
                ));
            }};
        }
        let fresh = experiment("fresh");
        write!("create", |s| s
            .create(&fresh, &fresh.event("alice", EventKind::Created, "created"))
            .await);
        let mut edited = updated.clone();
        edited.spec.description = "edited".into();
        write!("update", |s| s
            .update(&edited, &edited.event("alice", EventKind::Updated, "edit"))
            .await);
        let note = updated.event("alice", EventKind::Updated, "note");
        write!("append_event", |s| s.append_event(&note).await);
        let doomed = deleted.id.clone();
        write!("delete", |s| s.delete(&doomed).await);
        let carol = NewUser {
            name: "carol".into(),
            ..user.clone()
        };
        write!("create_user", |s| s.create_user(&carol).await);
        let update = UserUpdate {
            role: Some(Role::Admin),
            ..UserUpdate::default()
        };
        write!("update_user", |s| s.update_user("bob", &update).await);
        write!("set_user_disabled", |s| s
            .set_user_disabled("bob", true)
            .await);
        write!("activate", |s| s
            .activate(&PipelineTarget::Local, "# local", None)
            .await);
        write!("rollback", |s| s.rollback(&rolled).await);

        tokio::time::sleep(Duration::from_millis(300)).await;
        for (name, write) in &writes {
            assert!(
                !write.is_finished(),
                "{name} finished while another writer held the write turn"
            );
        }
        drop(turn);
        for (name, write) in writes {
            let done = tokio::time::timeout(Duration::from_secs(30), write)
                .await
                .unwrap_or_else(|_| panic!("{name} did not finish"))
                .unwrap();
            assert_eq!(done, Ok(()), "{name}");
        }
        assert!(store.user("carol").await.is_ok());
        assert!(store.user("bob").await.unwrap().disabled);
        assert_eq!(store.user("bob").await.unwrap().role, Role::Admin);
    }
}
