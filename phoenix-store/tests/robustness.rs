//! Durability across a killed writer, and clear errors for bad input: a corrupt SQLite file,
//! an unsupported URL, an unreachable PostgreSQL server.

// Test fixtures unwrap: a panic is the right failure here.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use phoenix_core::experiment::{EventKind, Experiment, ExperimentSpec};
use phoenix_core::store::ExperimentStore;
use phoenix_store::{Backend, Error, SqliteStore};

/// Set in the environment of the writer child: the SQLite file it writes to.
const CHILD_DB_VAR: &str = "PHOENIX_STORE_DURABILITY_DB";
/// How many commits the parent waits for before it kills the writer.
const COMMITS_BEFORE_KILL: usize = 60;

fn spec(name: &str) -> ExperimentSpec {
    serde_json::from_str(&format!(
        r#"{{"name": "{name}", "owner": "writer",
            "baseline": {{"template": "process-baseline-v1"}},
            "candidate": {{"template": "process-topk-v1"}}}}"#
    ))
    .unwrap()
}

/// The messages of `error` and every source below it, joined with `: `: the driver's reason
/// is a source, not part of the message.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        text.push_str(": ");
        text.push_str(&source.to_string());
        next = source.source();
    }
    text
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The writer: run by `a_killed_writer_loses_no_committed_write` as a child process (this
/// test binary again, with the variable set). Four tasks create experiments and update them,
/// printing `committed <id> <version>` after each write returns, until the parent kills it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the writer child of a_killed_writer_loses_no_committed_write; it needs its parent"]
async fn durability_writer_child() {
    let Some(path) = std::env::var_os(CHILD_DB_VAR) else {
        eprintln!("{CHILD_DB_VAR} is not set: this test only runs as a child process");
        return;
    };
    let store = SqliteStore::open(&path).await.unwrap();
    let mut tasks = Vec::new();
    for task in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // Bounded, in case the parent dies without killing the child.
            for n in 0..10_000 {
                let mut experiment = Experiment::new(spec(&format!("writer-{task}-{n}")));
                let event = experiment.event("writer", EventKind::Created, "created");
                store.create(&experiment, &event).await.unwrap();
                println!("committed {} {}", experiment.id, experiment.version);
                experiment.spec.description = format!("updated by task {task}");
                let event = experiment.event("writer", EventKind::Updated, "updated");
                let saved = store.update(&experiment, &event).await.unwrap();
                println!("committed {} {}", saved.id, saved.version);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn a_killed_writer_loses_no_committed_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phoenix.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "durability_writer_child",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .args(["--test-threads", "1"])
        .env(CHILD_DB_VAR, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The child's stderr, read on the side so that a full pipe never blocks it, and shown
    // when the child fails.
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();

    // Reported commits: id -> the highest version reported for it.
    let mut committed = std::collections::BTreeMap::new();
    let mut record = |line: &str| {
        if let Some(rest) = line.strip_prefix("committed ") {
            let (id, version) = rest.split_once(' ').unwrap();
            let version: u64 = version.parse().unwrap();
            let entry = committed.entry(id.to_owned()).or_insert(version);
            *entry = (*entry).max(version);
            return true;
        }
        false
    };
    let mut seen = 0;
    for line in lines.by_ref() {
        if record(&line.unwrap()) {
            seen += 1;
            if seen == COMMITS_BEFORE_KILL {
                break;
            }
        }
    }
    if seen < COMMITS_BEFORE_KILL {
        let _ = child.kill();
        let status = child.wait().unwrap();
        panic!(
            "the writer stopped early after {seen} commits ({status}); its stderr:\n{}",
            stderr.join().unwrap()
        );
    }
    // SIGKILL, while the other tasks are in the middle of their writes.
    child.kill().unwrap();
    // What the writer printed before it died was committed too.
    for line in lines {
        match line {
            Ok(line) => {
                record(&line);
            }
            Err(_) => break,
        }
    }
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the writer was not killed: {status}; its stderr:\n{stderr}"
    );

    let store = SqliteStore::open(&path).await.unwrap();
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
    for (id, version) in &committed {
        let stored = store.get(&id.parse().unwrap()).await.unwrap();
        assert!(
            stored.version >= *version,
            "{id}: version {} < {version}",
            stored.version
        );
        let events = store.events(&stored.id).await.unwrap();
        assert_eq!(
            events.len() as u64,
            stored.version,
            "{id}: one event per write"
        );
    }
    assert!(committed.len() >= COMMITS_BEFORE_KILL / 2);
    eprintln!(
        "{} experiments reported committed before SIGKILL, all present after reopening",
        committed.len()
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-database.db");
    std::fs::copy(fixture("not-a-database.db"), &path).unwrap();
    let before = std::fs::read(&path).unwrap();

    let err = phoenix_store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Open {
                backend: Backend::Sqlite,
                ..
            }
        ),
        "{err}"
    );
    let message = chain(&err);
    eprintln!("{message}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{message}"
    );
    assert!(message.contains("file is not a database"), "{message}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the file was changed"
    );
}

#[tokio::test]
async fn a_database_with_damaged_pages_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.db");
    let store = SqliteStore::open(&path).await.unwrap();
    for n in 0..20 {
        let experiment = Experiment::new(spec(&format!("damaged-{n}")));
        let event = experiment.event("writer", EventKind::Created, "created");
        store.create(&experiment, &event).await.unwrap();
    }
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(store.pool())
        .await
        .unwrap();
    store.close().await;
    // Keep the header and the schema page; overwrite every later page with garbage.
    let mut bytes = std::fs::read(&path).unwrap();
    let page_size = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
    assert!(
        bytes.len() > 2 * page_size,
        "the database is too small to damage"
    );
    for (i, byte) in bytes[page_size..].iter_mut().enumerate() {
        *byte = (i % 251) as u8;
    }
    std::fs::write(&path, &bytes).unwrap();

    let err = SqliteStore::open(&path).await.unwrap_err();
    let message = chain(&err);
    eprintln!("{message}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{message}"
    );
    assert!(message.contains("malformed"), "{message}");
}

#[tokio::test]
async fn sqlite_paths_that_cannot_hold_a_database_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    for path in [
        dir.path().to_owned(),
        dir.path().join("missing/dir/phoenix.db"),
    ] {
        let err = phoenix_store::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Open { .. }), "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
}

#[tokio::test]
async fn unsupported_and_malformed_urls_are_clear_errors() {
    for url in [
        "mysql://root:hunter2@127.0.0.1/phoenix",
        "phoenix.db",
        "",
        "redis://x",
        "host=127.0.0.1 user=phoenix password=hunter2",
    ] {
        let err = phoenix_store::open(url).await.unwrap_err();
        assert!(matches!(err, Error::UnsupportedUrl { .. }), "{url}: {err}");
        let message = chain(&err);
        eprintln!("{message}");
        assert!(
            message.contains("sqlite://") && message.contains("postgres://"),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "{message}");
    }
    for url in [
        "sqlite://",
        "memory://elsewhere",
        "postgres://u:hunter2@127.0.0.1/db?connect_timeout=never",
        "postgres://u:hunter2@127.0.0.1:notaport/db",
        "postgres://u:hunter2@127.0.0.1/db?sslmode=sometimes",
        "postgres:u:hunter2@127.0.0.1/db",
        "postgres://u:hun/ter2@127.0.0.1/db",
        "postgres://u:hun/ter2@127.0.0.1:notaport/db",
    ] {
        let err = phoenix_store::open(url).await.unwrap_err();
        assert!(matches!(err, Error::InvalidUrl { .. }), "{url}: {err}");
        let message = chain(&err);
        eprintln!("{message}");
        assert!(
            !message.contains("hunter2") && !message.contains("ter2"),
            "{message}"
        );
    }
}

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn an_unreachable_postgres_is_a_clear_error() {
    let port = closed_port();
    let url = format!("postgres://phoenix:hunter2@127.0.0.1:{port}/phoenix?connect_timeout=2");
    let started = Instant::now();
    let err = phoenix_store::open(&url).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        matches!(
            err,
            Error::Open {
                backend: Backend::Postgres,
                ..
            }
        ),
        "{err}"
    );
    let message = chain(&err);
    eprintln!("{message}");
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(message.contains("refused"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn a_postgres_that_never_answers_times_out() {
    // Accepts connections (the kernel does, into the backlog) but never speaks.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("postgresql://phoenix:hunter2@127.0.0.1:{port}/phoenix?connect_timeout=1");
    let started = Instant::now();
    let err = phoenix_store::open(&url).await.unwrap_err();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    assert!(matches!(err, Error::Open { .. }), "{err}");
    let message = chain(&err);
    eprintln!("{message}");
    assert!(message.contains("no answer"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    drop(listener);
}
