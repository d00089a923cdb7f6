//! Listing against a reference: for random experiments and random queries, paging through the
//! memory store and an SQLite store visits exactly the experiments that phoenix-core's
//! `ListQuery::matches` accepts, in `Cursor` order.

// Test fixtures unwrap: a panic is the right failure here.
#![allow(clippy::unwrap_used)]

use chrono::DateTime;
use phoenix_core::experiment::{EventKind, Experiment, ExperimentId, ExperimentSpec};
use phoenix_core::phase::{Phase, PhaseEvent};
use phoenix_core::store::{Cursor, ExperimentStore, ListQuery};
use phoenix_store::{MemoryStore, Store};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Item {
    id_suffix: u32,
    created_at: i64,
    name: String,
    owner: String,
    started: bool,
}

fn item() -> impl Strategy<Value = Item> {
    (
        0..1_000_000_u32,
        0..4_i64,
        "[aAb_%]{0,4}",
        prop::sample::select(vec!["alice", "bob", "Bob"]),
        any::<bool>(),
    )
        .prop_map(|(id_suffix, created_at, name, owner, started)| Item {
            id_suffix,
            created_at,
            name,
            owner: owner.to_owned(),
            started,
        })
}

fn query() -> impl Strategy<Value = ListQuery> {
    (
        prop::option::of(prop::sample::select(vec![
            Phase::Pending,
            Phase::Initializing,
        ])),
        prop::option::of(prop::sample::select(vec!["alice", "bob", "Bob"])),
        prop::option::of("[aAb_%]{0,2}"),
        1..7_u32,
    )
        .prop_map(|(phase, owner, name_prefix, limit)| ListQuery {
            phase,
            owner: owner.map(str::to_owned),
            name_prefix,
            limit,
            after: None,
        })
}

fn experiment(item: &Item) -> Experiment {
    let spec: ExperimentSpec = serde_json::from_str(
        r#"{"name": "x", "baseline": {"template": "process-baseline-v1"},
            "candidate": {"template": "process-topk-v1"}}"#,
    )
    .unwrap();
    let id: ExperimentId = format!("exp-{:08}", item.id_suffix).parse().unwrap();
    let mut experiment = Experiment::with_id(id, spec);
    experiment.spec.name.clone_from(&item.name);
    experiment.spec.owner.clone_from(&item.owner);
    // Few distinct creation times, so that ties are broken by id.
    experiment.created_at =
        DateTime::from_timestamp_nanos(1_700_000_000_000_000_000 + item.created_at);
    if item.started {
        experiment.apply(&PhaseEvent::Start).unwrap();
    }
    experiment
}

async fn paged_ids(store: &Store, mut query: ListQuery) -> Vec<ExperimentId> {
    let mut ids = Vec::new();
    loop {
        let page = store.list(&query).await.unwrap();
        assert!(page.items.len() <= query.limit as usize);
        ids.extend(page.items.into_iter().map(|e| e.id));
        match page.next {
            Some(next) => query.after = Some(next),
            None => return ids,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn paging_matches_the_reference(items in prop::collection::vec(item(), 0..25), query in query()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let mut experiments: Vec<Experiment> = Vec::new();
            for item in &items {
                let experiment = experiment(item);
                if experiments.iter().all(|e| e.id != experiment.id) {
                    experiments.push(experiment);
                }
            }
            let mut expected: Vec<&Experiment> =
                experiments.iter().filter(|e| query.matches(e)).collect();
            expected.sort_by_key(|e| Cursor::after(e));
            let expected: Vec<ExperimentId> = expected.into_iter().map(|e| e.id.clone()).collect();

            let memory = Store::from(MemoryStore::new());
            let sqlite = phoenix_store::open("sqlite::memory:").await.unwrap();
            for store in [&memory, &sqlite] {
                for experiment in &experiments {
                    let event = experiment.event("prop", EventKind::Created, "created");
                    store.create(experiment, &event).await.unwrap();
                }
                let listed = paged_ids(store, query.clone()).await;
                assert_eq!(listed, expected, "{:?} with {query:?}", store.backend());
            }
        });
    }
}
