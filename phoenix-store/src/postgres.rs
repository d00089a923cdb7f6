//! The PostgreSQL store: for shared deployments, one database (or one schema of it) reached
//! through a connection pool.

use std::io;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use phoenix_core::experiment::{Experiment, ExperimentEvent, ExperimentId};
use phoenix_core::store::{ExperimentStore, ListQuery, Page};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder, Transaction};

use crate::error::{Backend, core_store_error};
use crate::location::{Location, check_schema_name, redact};
use crate::migration;
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

/// How to connect to PostgreSQL beyond what the URL says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// The most connections the pool opens.
    pub max_connections: u32,
    /// How long to wait for a connection, including the first one made when opening; an
    /// unreachable server fails after this long.
    pub connect_timeout: Duration,
    /// The schema that holds the tables, created if missing; `None` uses the server's
    /// `search_path` (normally `public`).
    pub schema: Option<String>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            connect_timeout: Duration::from_secs(10),
            schema: None,
        }
    }
}

/// Keeps experiments, users and pipelines in a PostgreSQL database.
///
/// Every write is one transaction; updates are guarded by the version column, so concurrent
/// writers from several processes never overwrite each other. Cloning is cheap and shares the
/// connection pool.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    location: String,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`,
    /// plus the optional parameters `connect_timeout=SECONDS` and `schema=NAME`) and migrates
    /// it.
    ///
    /// Fails with [`Error::Open`] when the server cannot be reached or refuses the login,
    /// and with [`Error::SchemaTooNew`] when a newer Phoenix migrated the database.
    pub async fn connect(url: &str) -> Result<Self> {
        let Location::Postgres(parsed) = Location::parse(url)? else {
            return Err(Error::InvalidUrl {
                url: redact(url),
                message: "not a PostgreSQL URL: expected postgres://… or postgresql://…".to_owned(),
            });
        };
        let defaults = PostgresOptions::default();
        let options = PostgresOptions {
            connect_timeout: parsed.connect_timeout.unwrap_or(defaults.connect_timeout),
            schema: parsed.schema,
            ..defaults
        };
        Self::connect_with(&parsed.url, &options).await
    }

    /// Connects to the database at `url` with `options` and migrates it. The URL is passed
    /// to the driver as is.
    pub async fn connect_with(url: &str, options: &PostgresOptions) -> Result<Self> {
        let location = redact(url);
        let mut connect = PgConnectOptions::from_str(url).map_err(|e| Error::InvalidUrl {
            url: location.clone(),
            message: e.to_string(),
        })?;
        if let Some(schema) = &options.schema {
            check_schema_name(schema).map_err(|message| Error::InvalidUrl {
                url: location.clone(),
                message,
            })?;
            // Quoted, so that a reserved word such as `user` names a schema too.
            connect = connect.options([("search_path", quote_identifier(schema).as_str())]);
        }
        let open_error = |source| Error::Open {
            backend: Backend::Postgres,
            location: location.clone(),
            source,
        };
        // One connection first, to report why the server cannot be reached: the pool
        // retries refused connections until its timeout and then reports only the timeout.
        let timeout = options.connect_timeout;
        let first = tokio::time::timeout(timeout, PgConnection::connect_with(&connect))
            .await
            .map_err(|_| {
                open_error(sqlx::Error::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer from the server within {timeout:?}"),
                )))
            })?
            .map_err(open_error)?;
        // Closing is a courtesy to the server; the connection is done with either way.
        let _ = first.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(timeout)
            .connect_with(connect)
            .await
            .map_err(open_error)?;
        if let Some(schema) = &options.schema {
            // The name was checked to be a plain identifier; quoted, it may be a reserved word.
            sqlx::query(&format!(
                "CREATE SCHEMA IF NOT EXISTS {}",
                quote_identifier(schema)
            ))
            .execute(&pool)
            .await
            .map_err(open_error)?;
        }
        let store = Self { pool, location };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let location = &self.location;
        let read_error = |source| Error::Open {
            backend: Backend::Postgres,
            location: location.clone(),
            source,
        };
        let has_table: bool =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                .fetch_one(&self.pool)
                .await
                .map_err(read_error)?;
        if has_table {
            let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
                .fetch_all(&self.pool)
                .await
                .map_err(read_error)?;
            migration::check_applied(&migration::POSTGRES, &applied, Backend::Postgres, location)?;
        }
        migration::POSTGRES.run(&self.pool).await.map_err(|source| {
            migration::migrate_error(&migration::POSTGRES, source, Backend::Postgres, location)
        })
    }

    /// Where the database is: its URL without the password.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The connection pool, for checks and tools that need SQL beyond the store's methods.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn write(&self) -> std::result::Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    fn doing(&self, what: impl std::fmt::Display) -> String {
        format!("{what} in the PostgreSQL store {}", self.location)
    }
}

#[async_trait]
impl ExperimentStore for PostgresStore {
    async fn create(
        &self,
        experiment: &Experiment,
        event: &ExperimentEvent,
    ) -> phoenix_core::Result<()> {
        let id = &experiment.id;
        let row = ExperimentRow::encode(experiment, experiment.version)?;
        let event = EventRow::encode(event, Some(id))?;
        // One statement, so one atomic step: the event is inserted only when the experiment
        // row is.
        let inserted = sqlx::query(
            "WITH inserted AS ( \
                INSERT INTO experiments \
                (id, name, owner, phase, version, created_at_ns, updated_at_ns, event_seq, body) \
                VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8) ON CONFLICT (id) DO NOTHING \
                RETURNING id) \
             INSERT INTO experiment_events (experiment_id, seq, at_ns, actor, kind, body) \
             SELECT id, 1, $9::BIGINT, $10::TEXT, $11::TEXT, $12::TEXT FROM inserted",
        )
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.owner)
        .bind(row.phase)
        .bind(row.version)
        .bind(row.created_at_ns)
        .bind(row.updated_at_ns)
        .bind(&row.body)
        .bind(event.at_ns)
        .bind(&event.actor)
        .bind(event.kind)
        .bind(&event.body)
        .execute(&self.pool)
        .await
        .map_err(|e| core_store_error(self.doing(format_args!("creating experiment {id}")), e))?;
        if inserted.rows_affected() == 0 {
            return Err(phoenix_core::Error::AlreadyExists { id: id.clone() });
        }
        Ok(())
    }

    async fn get(&self, id: &ExperimentId) -> phoenix_core::Result<Experiment> {
        let found: Option<(i64, String)> =
            sqlx::query_as("SELECT version, body FROM experiments WHERE id = $1")
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
        let has_nul = |text: &Option<String>| text.as_ref().is_some_and(|t| t.contains('\0'));
        if has_nul(&query.owner) || has_nul(&query.name_prefix) {
            // PostgreSQL text cannot hold NUL, so no stored experiment matches.
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        }
        let mut sql =
            QueryBuilder::<Postgres>::new("SELECT id, version, body FROM experiments WHERE 1 = 1");
        if let Some(phase) = query.phase {
            sql.push(" AND phase = ").push_bind(phase.as_str());
        }
        if let Some(owner) = &query.owner {
            sql.push(" AND owner = ").push_bind(owner.clone());
        }
        if let Some(prefix) = &query.name_prefix {
            // LIKE with the wildcards escaped; the "C" collation of the column makes it
            // byte-wise and lets it use the name index.
            sql.push(r" AND name LIKE ")
                .push_bind(like_prefix(prefix))
                .push(r" ESCAPE '\'");
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
        let fail = |e| core_store_error(self.doing(format_args!("updating experiment {id}")), e);
        // One statement, so one atomic step: the version guard, the new record and its
        // event. A concurrent writer of the same row waits for the row lock, then sees the
        // new version and matches nothing.
        let written = sqlx::query(
            "WITH updated AS ( \
                UPDATE experiments SET name = $1, owner = $2, phase = $3, version = $4, \
                created_at_ns = $5, updated_at_ns = $6, body = $7, event_seq = event_seq + 1 \
                WHERE id = $8 AND version = $9 RETURNING id, event_seq) \
             INSERT INTO experiment_events (experiment_id, seq, at_ns, actor, kind, body) \
             SELECT id, event_seq, $10::BIGINT, $11::TEXT, $12::TEXT, $13::TEXT FROM updated",
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
        .bind(event.at_ns)
        .bind(&event.actor)
        .bind(event.kind)
        .bind(&event.body)
        .execute(&self.pool)
        .await
        .map_err(fail)?;
        if written.rows_affected() == 0 {
            let found: Option<i64> =
                sqlx::query_scalar("SELECT version FROM experiments WHERE id = $1")
                    .bind(&row.id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(fail)?;
            return Err(stale(experiment, found));
        }
        Ok(Experiment {
            version: next_version,
            ..experiment.clone()
        })
    }

    async fn append_event(&self, event: &ExperimentEvent) -> phoenix_core::Result<()> {
        let id = &event.experiment_id;
        let row = EventRow::encode(event, None)?;
        let written = sqlx::query(
            "WITH numbered AS ( \
                UPDATE experiments SET event_seq = event_seq + 1 WHERE id = $1 \
                RETURNING id, event_seq) \
             INSERT INTO experiment_events (experiment_id, seq, at_ns, actor, kind, body) \
             SELECT id, event_seq, $2::BIGINT, $3::TEXT, $4::TEXT, $5::TEXT FROM numbered",
        )
        .bind(id.as_str())
        .bind(row.at_ns)
        .bind(&row.actor)
        .bind(row.kind)
        .bind(&row.body)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            core_store_error(
                self.doing(format_args!("appending an event to experiment {id}")),
                e,
            )
        })?;
        if written.rows_affected() == 0 {
            return Err(phoenix_core::Error::NotFound { id: id.clone() });
        }
        Ok(())
    }

    async fn events(&self, id: &ExperimentId) -> phoenix_core::Result<Vec<ExperimentEvent>> {
        let fail = |e| {
            core_store_error(
                self.doing(format_args!("reading the events of experiment {id}")),
                e,
            )
        };
        let bodies: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM experiment_events WHERE experiment_id = $1 ORDER BY seq",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        if bodies.is_empty() {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM experiments WHERE id = $1)")
                    .bind(id.as_str())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(fail)?;
            if !exists {
                return Err(phoenix_core::Error::NotFound { id: id.clone() });
            }
        }
        bodies.iter().map(|body| decode_event(id, body)).collect()
    }

    async fn delete(&self, id: &ExperimentId) -> phoenix_core::Result<()> {
        let deleted = sqlx::query("DELETE FROM experiments WHERE id = $1")
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

const USER_COLUMNS: &str = "name, password_hash, role, disabled, created_at_ns, updated_at_ns";

#[async_trait]
impl UserStore for PostgresStore {
    async fn create_user(&self, user: &NewUser) -> Result<User> {
        user.validate()?;
        let now = now_nanos();
        let inserted = sqlx::query(
            "INSERT INTO users (name, password_hash, role, disabled, created_at_ns, updated_at_ns) \
             VALUES ($1, $2, $3, FALSE, $4, $5) ON CONFLICT (name) DO NOTHING",
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
        refuse_nul_name(name)?;
        let row: Option<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1"))
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
        refuse_nul_name(name)?;
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "UPDATE users SET password_hash = COALESCE($1, password_hash), role = COALESCE($2, role), \
             updated_at_ns = $3 WHERE name = $4 RETURNING {USER_COLUMNS}"
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
        refuse_nul_name(name)?;
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "UPDATE users SET disabled = $1, updated_at_ns = $2 WHERE name = $3 RETURNING {USER_COLUMNS}"
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
impl PipelineStore for PostgresStore {
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
            "INSERT INTO pipeline_targets (target, last_revision) VALUES ($1, 1) \
             ON CONFLICT (target) DO UPDATE SET last_revision = pipeline_targets.last_revision + 1 \
             RETURNING last_revision",
        )
        .bind(&target_text)
        .fetch_one(&mut *tx)
        .await
        .map_err(fail)?;
        sqlx::query(
            "UPDATE pipeline_revisions SET state = 'superseded', updated_at_ns = $1 \
             WHERE target = $2 AND state = 'active'",
        )
        .bind(now)
        .bind(&target_text)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        let row: RevisionRow = sqlx::query_as(&format!(
            "INSERT INTO pipeline_revisions ({REVISION_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, 'active', $6, $7) RETURNING {REVISION_COLUMNS}"
        ))
        .bind(&target_text)
        .bind(revision)
        .bind(config)
        .bind(experiment_id)
        .bind(variant)
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        row.decode()
    }

    async fn active(&self, target: &PipelineTarget) -> Result<Option<PipelineRevision>> {
        let row: Option<RevisionRow> = sqlx::query_as(&format!(
            "SELECT {REVISION_COLUMNS} FROM pipeline_revisions WHERE target = $1 AND state = 'active'"
        ))
        .bind(target.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| Error::database(self.doing(format_args!("reading the active pipeline of target {target}")), e))?;
        row.map(RevisionRow::decode).transpose()
    }

    async fn history(&self, target: &PipelineTarget) -> Result<Vec<PipelineRevision>> {
        let rows: Vec<RevisionRow> = sqlx::query_as(&format!(
            "SELECT {REVISION_COLUMNS} FROM pipeline_revisions WHERE target = $1 ORDER BY revision DESC"
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
        // Lock the target so that concurrent activations and rollbacks take turns.
        let known: Option<i64> = sqlx::query_scalar(
            "SELECT last_revision FROM pipeline_targets WHERE target = $1 FOR UPDATE",
        )
        .bind(&target_text)
        .fetch_optional(&mut *tx)
        .await
        .map_err(fail)?;
        if known.is_none() {
            return Err(nothing(RollbackGap::NoActivePipeline));
        }
        let active: Option<i64> = sqlx::query_scalar(
            "SELECT revision FROM pipeline_revisions WHERE target = $1 AND state = 'active'",
        )
        .bind(&target_text)
        .fetch_optional(&mut *tx)
        .await
        .map_err(fail)?;
        let active = active.ok_or_else(|| nothing(RollbackGap::NoActivePipeline))?;
        let restore: Option<i64> = sqlx::query_scalar(
            "SELECT revision FROM pipeline_revisions WHERE target = $1 AND revision < $2 \
             AND state <> 'rolledBack' ORDER BY revision DESC LIMIT 1",
        )
        .bind(&target_text)
        .bind(active)
        .fetch_optional(&mut *tx)
        .await
        .map_err(fail)?;
        let restore = restore.ok_or_else(|| nothing(RollbackGap::NoEarlierPipeline))?;
        sqlx::query(
            "UPDATE pipeline_revisions SET state = 'rolledBack', updated_at_ns = $1 \
             WHERE target = $2 AND revision = $3",
        )
        .bind(now)
        .bind(&target_text)
        .bind(active)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        let row: RevisionRow = sqlx::query_as(&format!(
            "UPDATE pipeline_revisions SET state = 'active', updated_at_ns = $1 \
             WHERE target = $2 AND revision = $3 RETURNING {REVISION_COLUMNS}"
        ))
        .bind(now)
        .bind(&target_text)
        .bind(restore)
        .fetch_one(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        row.decode()
    }
}

/// `name` as a quoted SQL identifier: `"name"`, with any `"` doubled.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// PostgreSQL text cannot hold NUL, so no stored user has a name with one; looking it up
/// would be a driver error instead of [`Error::UserNotFound`].
fn refuse_nul_name(name: &str) -> Result<()> {
    if name.contains('\0') {
        return Err(Error::UserNotFound {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// A LIKE pattern matching text that starts with `prefix`.
fn like_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_identifier("user"), "\"user\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_prefix("a_b%c\\d"), "a\\_b\\%c\\\\d%");
        assert_eq!(like_prefix(""), "%");
    }
}
