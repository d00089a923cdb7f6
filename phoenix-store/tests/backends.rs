//! The store contract (`contract/mod.rs`) run against every backend, plus what is particular
//! to each: schema checks, pragmas, reopening.
//!
//! PostgreSQL tests need a server: set `PHOENIX_TEST_POSTGRES_URL` (see `docs/store.md`).
//! Without it they print why they are skipped and pass, unless `PHOENIX_REQUIRE_POSTGRES=1`
//! is set (as `.ci/postgres.sh` does), which makes them fail instead. Each PostgreSQL test
//! works in a fresh schema of its own, dropped when it passes.

// Test fixtures unwrap: a panic is the right failure here.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

#[macro_use]
mod contract;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use phoenix_core::experiment::ExperimentId;
use phoenix_store::{MemoryStore, PostgresOptions, PostgresStore, SqliteStore, Store};
use tempfile::TempDir;

/// The variable that names the PostgreSQL server for tests.
const POSTGRES_URL_VAR: &str = "PHOENIX_TEST_POSTGRES_URL";
/// Set to `1`, PostgreSQL tests without a server fail instead of being skipped.
const REQUIRE_POSTGRES_VAR: &str = "PHOENIX_REQUIRE_POSTGRES";

/// A store to test, and what to clean up afterwards.
pub struct Fixture {
    /// The store under test.
    pub store: Arc<Store>,
    cleanup: Cleanup,
}

enum Cleanup {
    Nothing,
    /// The SQLite file's directory, removed when dropped.
    Directory(#[allow(dead_code)] TempDir),
    /// The test's PostgreSQL schema.
    Schema(String),
}

impl Fixture {
    /// Drops what the test created and closes the store.
    pub async fn finish(self) {
        if let Cleanup::Schema(schema) = &self.cleanup
            && let Store::Postgres(store) = self.store.as_ref()
        {
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(store.pool())
                .await
                .unwrap();
        }
        self.store.close().await;
    }
}

async fn memory() -> Option<Fixture> {
    Some(Fixture {
        store: Arc::new(MemoryStore::new().into()),
        cleanup: Cleanup::Nothing,
    })
}

async fn sqlite() -> Option<Fixture> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("phoenix.db"))
        .await
        .unwrap();
    Some(Fixture {
        store: Arc::new(store.into()),
        cleanup: Cleanup::Directory(dir),
    })
}

/// The PostgreSQL server's URL, or `None` after saying why the test is skipped. Panics
/// when no URL is set but a server is required.
fn postgres_url() -> Option<String> {
    let url = std::env::var(POSTGRES_URL_VAR).ok();
    let require = std::env::var(REQUIRE_POSTGRES_VAR).ok();
    match postgres_decision(url, require.as_deref()) {
        Ok(url) => url,
        Err(reason) => panic!("{reason}"),
    }
}

/// What a PostgreSQL test does with the environment: run against the URL, skip (after
/// saying why), or fail because a server is required and none is named.
fn postgres_decision(url: Option<String>, require: Option<&str>) -> Result<Option<String>, String> {
    match url {
        Some(url) if !url.is_empty() => Ok(Some(url)),
        _ if require.is_some_and(|r| r.trim() == "1") => Err(format!(
            "{REQUIRE_POSTGRES_VAR}=1 but {POSTGRES_URL_VAR} is not set: the PostgreSQL tests \
             must not be skipped (did postgres_start from .ci/postgres.sh run?)"
        )),
        _ => {
            eprintln!(
                "skipped: {POSTGRES_URL_VAR} is not set, so there is no PostgreSQL server to test \
                 against (bash .ci/run starts one; see docs/store.md)"
            );
            Ok(None)
        }
    }
}

#[test]
fn postgres_tests_skip_only_when_no_server_is_required() {
    let url = || Some("postgres://phoenix@127.0.0.1:5432/phoenix_test".to_owned());
    assert_eq!(postgres_decision(url(), None), Ok(url()));
    assert_eq!(postgres_decision(url(), Some("1")), Ok(url()));
    assert_eq!(postgres_decision(None, None), Ok(None));
    assert_eq!(postgres_decision(Some(String::new()), Some("0")), Ok(None));
    for url in [None, Some(String::new())] {
        let err = postgres_decision(url, Some("1")).unwrap_err();
        assert!(err.contains(POSTGRES_URL_VAR), "{err}");
    }
}

/// A schema name no other test run uses.
fn fresh_schema() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = ExperimentId::random();
    let suffix = &random.as_str()[4..];
    format!("phoenix_test_{}_{n}_{suffix}", std::process::id())
}

async fn postgres() -> Option<Fixture> {
    let url = postgres_url()?;
    let schema = fresh_schema();
    let options = PostgresOptions {
        schema: Some(schema.clone()),
        ..PostgresOptions::default()
    };
    let store = PostgresStore::connect_with(&url, &options).await.unwrap();
    Some(Fixture {
        store: Arc::new(store.into()),
        cleanup: Cleanup::Schema(schema),
    })
}

mod memory {
    contract_suite!(crate::memory);
}

mod sqlite {
    contract_suite!(crate::sqlite);
}

mod postgres {
    contract_suite!(crate::postgres);
}

mod sqlite_file {
    use std::sync::Arc;

    use phoenix_core::store::{ExperimentStore, ListQuery};
    use phoenix_store::{Error, SqliteStore, UserStore};

    use crate::contract;

    #[tokio::test]
    async fn the_file_is_created_in_wal_mode_with_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        let store = SqliteStore::open(&path).await.unwrap();
        assert!(path.exists());
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(journal, "wal");
        let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(foreign_keys, 1);
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(busy, 5000);
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(synchronous, 2, "FULL");
    }

    #[tokio::test]
    async fn an_in_memory_database_works_and_is_private() {
        let store = Arc::new(phoenix_store::open("sqlite::memory:").await.unwrap());
        contract::update_increments_the_version_and_appends_the_event(Arc::clone(&store)).await;
        contract::pipelines_activate_and_roll_back(Arc::clone(&store)).await;
        let other = phoenix_store::open("sqlite::memory:").await.unwrap();
        let listed = other.list(&ListQuery::default()).await.unwrap();
        assert!(listed.items.is_empty(), "two in-memory stores share data");
    }

    #[tokio::test]
    async fn data_survives_reopening_and_migrations_run_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("phoenix.db").display());
        let store = phoenix_store::open(&url).await.unwrap();
        let experiment = contract::create(&store, "persisted", "alice").await;
        store.close().await;

        let store = phoenix_store::open(&url).await.unwrap();
        assert_eq!(store.get(&experiment.id).await.unwrap(), experiment);
        assert_eq!(store.user_count().await.unwrap(), 0);
        let Store::Sqlite(sqlite) = &store else {
            panic!("not SQLite")
        };
        let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(sqlite.pool())
            .await
            .unwrap();
        assert_eq!(applied, 1);
    }

    #[tokio::test]
    async fn a_schema_newer_than_this_build_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("future.db");
        let store = SqliteStore::open(&path).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from the future', 1, x'00', 0)",
        )
        .execute(store.pool())
        .await
        .unwrap();
        let schema_before = schema_of(store.pool()).await;
        store.close().await;

        let err = SqliteStore::open(&path).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::SchemaTooNew {
                    found: 9999,
                    known: 1,
                    ..
                }
            ),
            "{err}"
        );
        let message = err.to_string();
        assert!(
            message.contains("9999") && message.contains("untouched"),
            "{message}"
        );
        assert!(message.contains(&path.display().to_string()), "{message}");

        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .read_only(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        assert_eq!(
            schema_of(&pool).await,
            schema_before,
            "the schema was changed"
        );
    }

    /// A database in rollback-journal mode, as another tool or an older build might leave
    /// it, with a migration newer than this build: opening refuses it before changing a
    /// byte — in particular, before switching it to WAL.
    #[tokio::test]
    async fn a_too_new_schema_is_refused_before_the_file_is_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("future-delete-mode.db");
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Delete);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        for sql in [
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
             installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, \
             checksum BLOB NOT NULL, execution_time BIGINT NOT NULL)",
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (1, 'initial', 1, x'00', 0), (9999, 'from the future', 1, x'00', 0)",
            "CREATE TABLE future_things (id INTEGER PRIMARY KEY)",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;
        let before = std::fs::read(&path).unwrap();
        let files_before = files_in(dir.path());

        let err = SqliteStore::open(&path).await.unwrap_err();
        assert!(
            matches!(err, Error::SchemaTooNew { found: 9999, .. }),
            "{err}"
        );
        assert!(
            std::fs::read(&path).unwrap() == before,
            "the database file was changed"
        );
        assert_eq!(files_in(dir.path()), files_before, "files were added");
    }

    fn files_in(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Processes starting together on a new file must not race in the migrator: each of
    /// several concurrent opens succeeds, and the migrations are applied once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_opens_of_a_new_file_all_succeed() {
        const ROUNDS: usize = 8;
        const OPENERS: usize = 4;
        let dir = tempfile::tempdir().unwrap();
        for round in 0..ROUNDS {
            let path = dir.path().join(format!("fresh-{round}.db"));
            let barrier = Arc::new(tokio::sync::Barrier::new(OPENERS));
            let mut openers = Vec::new();
            for _ in 0..OPENERS {
                let path = path.clone();
                let barrier = Arc::clone(&barrier);
                openers.push(tokio::spawn(async move {
                    barrier.wait().await;
                    SqliteStore::open(&path).await
                }));
            }
            let mut stores = Vec::new();
            for opener in openers {
                match opener.await.unwrap() {
                    Ok(store) => stores.push(store),
                    Err(err) => panic!("round {round}: {}", contract::chain(&err)),
                }
            }
            let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
                .fetch_all(stores[0].pool())
                .await
                .unwrap();
            assert_eq!(applied, [1], "round {round}");
            for store in &stores {
                let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                    .fetch_one(store.pool())
                    .await
                    .unwrap();
                assert_eq!(mode, "wal", "round {round}");
                assert_eq!(store.user_count().await.unwrap(), 0);
                store.close().await;
            }
        }
    }

    /// The schema and the applied migrations.
    async fn schema_of(pool: &sqlx::SqlitePool) -> (Vec<String>, Vec<i64>) {
        let schema =
            sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
                .fetch_all(pool)
                .await
                .unwrap();
        let applied = sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(pool)
            .await
            .unwrap();
        (schema, applied)
    }

    use phoenix_store::Store;
}

mod postgres_server {
    use phoenix_core::store::ExperimentStore;
    use phoenix_store::{Error, PostgresOptions, PostgresStore, UserStore};

    use crate::{contract, fresh_schema, postgres_url};

    #[tokio::test]
    async fn data_survives_reconnecting_through_open() {
        let Some(url) = postgres_url() else { return };
        let schema = fresh_schema();
        let separator = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{separator}schema={schema}&connect_timeout=5");
        let store = phoenix_store::open(&url).await.unwrap();
        let experiment = contract::create(&store, "persisted", "alice").await;
        store.close().await;

        let store = phoenix_store::open(&url).await.unwrap();
        assert_eq!(store.get(&experiment.id).await.unwrap(), experiment);
        assert_eq!(store.user_count().await.unwrap(), 0);
        let phoenix_store::Store::Postgres(pg) = &store else {
            panic!("not PostgreSQL")
        };
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(pg.pool())
            .await
            .unwrap();
    }

    /// A schema named by a reserved word is quoted wherever it is written into SQL.
    #[tokio::test]
    async fn a_schema_named_by_a_reserved_word_works() {
        let Some(url) = postgres_url() else { return };
        let options = PostgresOptions {
            schema: Some("user".to_owned()),
            ..PostgresOptions::default()
        };
        let store = PostgresStore::connect_with(&url, &options).await.unwrap();
        let experiment = contract::create(&store.clone().into(), "reserved", "alice").await;
        let schema: String =
            sqlx::query_scalar("SELECT table_schema::TEXT FROM information_schema.tables WHERE table_name = 'experiments' AND table_schema = current_schema()")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(schema, "user");
        assert_eq!(store.get(&experiment.id).await.unwrap(), experiment);
        sqlx::query("DROP SCHEMA \"user\" CASCADE")
            .execute(store.pool())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_schema_newer_than_this_build_is_refused_and_left_alone() {
        let Some(url) = postgres_url() else { return };
        let schema = fresh_schema();
        let options = PostgresOptions {
            schema: Some(schema.clone()),
            ..PostgresOptions::default()
        };
        let store = PostgresStore::connect_with(&url, &options).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from the future', TRUE, '\\x00', 0)",
        )
        .execute(store.pool())
        .await
        .unwrap();

        let err = PostgresStore::connect_with(&url, &options)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::SchemaTooNew {
                    found: 9999,
                    known: 1,
                    ..
                }
            ),
            "{err}"
        );
        let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(applied, 2, "the migrations table was changed");
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(store.pool())
            .await
            .unwrap();
    }
}
