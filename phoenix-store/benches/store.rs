//! Create, get and list throughput of the SQLite and PostgreSQL stores (and the memory store
//! for reference).
//!
//! `cargo bench -p phoenix-store`. The PostgreSQL part needs `PHOENIX_TEST_POSTGRES_URL` (see
//! `docs/store.md`) and is skipped with a message without it; it works in a schema of its own,
//! dropped at the end. Medians are in `target/criterion/<group>/<bench>/new/estimates.json`.

// A benchmark harness: failing loudly is right.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    missing_docs
)]

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use phoenix_core::experiment::{EventKind, Experiment, ExperimentId, ExperimentSpec};
use phoenix_core::store::{ExperimentStore, ListQuery};
use phoenix_store::{MemoryStore, PostgresOptions, PostgresStore, SqliteStore, Store};
use tokio::runtime::Runtime;

/// Experiments in the store before get and list are measured.
const POPULATION: usize = 1000;
/// Experiments per listed page.
const PAGE: u32 = 100;

fn spec(n: usize) -> ExperimentSpec {
    serde_json::from_str(&format!(
        r#"{{"name": "bench-{n}", "owner": "owner-{}",
            "baseline": {{"template": "process-baseline-v1"}},
            "candidate": {{"template": "process-topk-v1", "parameters": {{"k": 20}}}},
            "criticalProcesses": ["^postgres$", "^nginx$"]}}"#,
        n % 10
    ))
    .unwrap()
}

async fn create(store: &Store, n: usize) -> ExperimentId {
    let experiment = Experiment::new(spec(n));
    let event = experiment.event("bench", EventKind::Created, "created");
    store.create(&experiment, &event).await.unwrap();
    experiment.id
}

fn bench_backend(c: &mut Criterion, rt: &Runtime, name: &str, store: &Store) {
    let ids: Vec<ExperimentId> = rt.block_on(async { populate(store, POPULATION).await });
    let mut group = c.benchmark_group(name);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(5));

    group.throughput(Throughput::Elements(1));
    let next = AtomicUsize::new(0);
    group.bench_function("get", |b| {
        b.to_async(rt).iter(|| async {
            let id = &ids[next.fetch_add(1, Ordering::Relaxed) % ids.len()];
            black_box(store.get(id).await.unwrap())
        });
    });

    group.throughput(Throughput::Elements(u64::from(PAGE)));
    group.bench_function("list_100", |b| {
        b.to_async(rt).iter(|| async {
            let query = ListQuery {
                limit: PAGE,
                ..ListQuery::default()
            };
            let page = store.list(&query).await.unwrap();
            assert_eq!(page.items.len(), PAGE as usize);
            black_box(page)
        });
    });
    group.bench_function("list_100_by_owner", |b| {
        b.to_async(rt).iter(|| async {
            let query = ListQuery {
                owner: Some("owner-3".into()),
                limit: PAGE,
                ..ListQuery::default()
            };
            let page = store.list(&query).await.unwrap();
            assert_eq!(page.items.len(), PAGE as usize);
            black_box(page)
        });
    });
    // Last: it grows the store, which the other measurements should not see.
    group.throughput(Throughput::Elements(1));
    let counter = AtomicUsize::new(POPULATION);
    group.bench_function("create", |b| {
        b.to_async(rt).iter(|| async {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            black_box(create(store, n).await)
        });
    });

    group.finish();
}

/// Creates `count` experiments, eight at a time.
async fn populate(store: &Store, count: usize) -> Vec<ExperimentId> {
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in (worker..count).step_by(8) {
                ids.push(create(&store, n).await);
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await.unwrap());
    }
    ids
}

fn stores(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    bench_backend(c, &rt, "memory", &Store::from(MemoryStore::new()));

    let dir = tempfile::tempdir().unwrap();
    let sqlite = rt
        .block_on(SqliteStore::open(dir.path().join("bench.db")))
        .unwrap();
    bench_backend(c, &rt, "sqlite", &Store::from(sqlite));

    match std::env::var("PHOENIX_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => {
            let schema = format!("phoenix_bench_{}", std::process::id());
            let options = PostgresOptions {
                schema: Some(schema.clone()),
                ..PostgresOptions::default()
            };
            let postgres = rt
                .block_on(PostgresStore::connect_with(&url, &options))
                .unwrap();
            bench_backend(c, &rt, "postgres", &Store::from(postgres.clone()));
            rt.block_on(async {
                sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                    .execute(postgres.pool())
                    .await
                    .unwrap();
            });
        }
        _ => eprintln!(
            "postgres benchmarks skipped: PHOENIX_TEST_POSTGRES_URL is not set (see docs/store.md)"
        ),
    }
}

criterion_group!(benches, stores);
criterion_main!(benches);
