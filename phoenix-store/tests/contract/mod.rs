//! The contract every store backend meets, written once: each `pub async fn` here is one
//! test, run against every backend by [`contract_suite!`].

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use phoenix_core::Error as CoreError;
use phoenix_core::experiment::{EventKind, Experiment, ExperimentId, ExperimentSpec};
use phoenix_core::measurement::VariantRole;
use phoenix_core::phase::{Phase, PhaseEvent};
use phoenix_core::store::{Cursor, ExperimentStore, ListQuery, MAX_PAGE_SIZE};
use phoenix_store::{
    Error, NewUser, PipelineOrigin, PipelineStore, PipelineTarget, RevisionState, Role,
    RollbackGap, Store, UserStore, UserUpdate,
};

/// Instantiates every contract test for one backend. `$fixture` is an async fn returning
/// `Option<Fixture>`; `None` skips the test (it prints why).
macro_rules! contract_suite {
    ($fixture:path) => {
        contract_suite!(@each $fixture;
            create_then_get_round_trips,
            creating_an_existing_id_fails_and_keeps_the_original,
            an_event_about_another_experiment_is_refused,
            unknown_ids_are_not_found,
            update_increments_the_version_and_appends_the_event,
            a_stale_update_conflicts_and_writes_nothing,
            append_event_keeps_the_data_and_the_order,
            delete_removes_the_experiment_and_its_events,
            timestamps_outside_the_storable_range_are_refused,
            listing_orders_by_creation_time_then_id,
            listing_filters_by_phase_owner_and_name_prefix,
            paging_visits_every_experiment_once,
            a_cursor_survives_the_deletion_of_its_experiment,
            page_size_is_clamped_to_the_maximum,
            users_are_created_read_updated_and_disabled,
            pipelines_activate_and_roll_back,
            an_unstorable_target_is_refused_before_anything_is_written,
            nul_characters_are_refused_naming_the_field,
            a_cursor_outside_the_storable_range_is_refused,
            concurrent_creates_of_one_id_admit_exactly_one,
            concurrent_activations_get_distinct_revisions,
            concurrent_updates_all_land_exactly_once,
        );
    };
    (@each $fixture:path; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let Some(fixture) = $fixture().await else { return };
                $crate::contract::$test(fixture.store.clone()).await;
                fixture.finish().await;
            }
        )*
    };
}

/// The messages of `error` and every source below it, joined with `: `.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        text.push_str(": ");
        text.push_str(&source.to_string());
        next = source.source();
    }
    text
}

/// A spec with this name and owner.
pub fn spec(name: &str, owner: &str) -> ExperimentSpec {
    let mut spec: ExperimentSpec = serde_json::from_str(
        r#"{"name": "x", "baseline": {"template": "process-baseline-v1"},
            "candidate": {"template": "process-topk-v1", "parameters": {"k": 20}},
            "criticalProcesses": ["^postgres$"]}"#,
    )
    .unwrap();
    spec.name = name.to_owned();
    spec.owner = owner.to_owned();
    spec
}

/// A new experiment, created in `store` with its first event.
pub async fn create(store: &Store, name: &str, owner: &str) -> Experiment {
    let experiment = Experiment::new(spec(name, owner));
    create_this(store, &experiment).await;
    experiment
}

async fn create_this(store: &Store, experiment: &Experiment) {
    let event = experiment.event("alice", EventKind::Created, "created");
    store.create(experiment, &event).await.unwrap();
}

fn id(text: &str) -> ExperimentId {
    text.parse().unwrap()
}

fn at(seconds: i64, nanos: u32) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, nanos).unwrap()
}

/// An experiment with a chosen id and creation time.
fn experiment_at(id_text: &str, created_at: DateTime<Utc>, name: &str, owner: &str) -> Experiment {
    let mut experiment = Experiment::with_id(id(id_text), spec(name, owner));
    experiment.created_at = created_at;
    experiment.updated_at = created_at;
    experiment
}

fn all(limit: u32) -> ListQuery {
    ListQuery {
        limit,
        ..ListQuery::default()
    }
}

/// Every experiment matching `query`, page by page, with the cursor passed as text the way
/// an API hands it out.
async fn list_all(store: &Store, mut query: ListQuery) -> (Vec<Experiment>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.list(&query).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= query.effective_limit() as usize);
        items.extend(page.items);
        match page.next {
            Some(next) => {
                let token = next.to_string();
                query.after = Some(token.parse::<Cursor>().unwrap());
            }
            None => return (items, pages),
        }
        assert!(pages < 10_000, "paging does not end");
    }
}

pub async fn create_then_get_round_trips(store: Arc<Store>) {
    let mut experiment = Experiment::new(spec("round-trip", "alice"));
    experiment.spec.description = "ünïcode, \"quotes\" and 'apostrophes'".into();
    experiment.created_at = at(0, 123_456_789);
    let event = experiment.event("alice", EventKind::Created, "created");
    store.create(&experiment, &event).await.unwrap();

    assert_eq!(store.get(&experiment.id).await.unwrap(), experiment);
    assert_eq!(store.events(&experiment.id).await.unwrap(), [event]);
}

pub async fn creating_an_existing_id_fails_and_keeps_the_original(store: Arc<Store>) {
    let original = create(&store, "original", "alice").await;
    let mut imposter = Experiment::with_id(original.id.clone(), spec("imposter", "mallory"));
    imposter.version = 7;
    let event = imposter.event("mallory", EventKind::Created, "again");
    let err = store.create(&imposter, &event).await.unwrap_err();
    assert!(
        matches!(&err, CoreError::AlreadyExists { id } if id == &original.id),
        "{err}"
    );
    assert_eq!(store.get(&original.id).await.unwrap(), original);
    assert_eq!(store.events(&original.id).await.unwrap().len(), 1);
}

pub async fn an_event_about_another_experiment_is_refused(store: Arc<Store>) {
    let experiment = Experiment::new(spec("mismatch", "alice"));
    let other = Experiment::new(spec("other", "alice"));
    let wrong = other.event("alice", EventKind::Created, "created");
    let err = store.create(&experiment, &wrong).await.unwrap_err();
    assert!(matches!(err, CoreError::Store { .. }), "{err}");
    assert!(err.to_string().contains(other.id.as_str()), "{err}");
    assert!(matches!(
        store.get(&experiment.id).await,
        Err(CoreError::NotFound { .. })
    ));

    create_this(&store, &experiment).await;
    let err = store.update(&experiment, &wrong).await.unwrap_err();
    assert!(matches!(err, CoreError::Store { .. }), "{err}");
    assert_eq!(store.get(&experiment.id).await.unwrap().version, 1);
    assert_eq!(store.events(&experiment.id).await.unwrap().len(), 1);
}

pub async fn unknown_ids_are_not_found(store: Arc<Store>) {
    let ghost = Experiment::new(spec("ghost", "nobody"));
    let event = ghost.event("nobody", EventKind::Updated, "boo");
    let not_found = |result: Result<(), CoreError>| match result {
        Err(CoreError::NotFound { id }) => assert_eq!(id, ghost.id),
        other => panic!("expected NotFound, got {other:?}"),
    };
    not_found(store.get(&ghost.id).await.map(drop));
    not_found(store.update(&ghost, &event).await.map(drop));
    not_found(store.append_event(&event).await);
    not_found(store.events(&ghost.id).await.map(drop));
    not_found(store.delete(&ghost.id).await);
    // Nothing was written on the way.
    assert!(store.list(&all(10)).await.unwrap().items.is_empty());
}

pub async fn update_increments_the_version_and_appends_the_event(store: Arc<Store>) {
    let experiment = create(&store, "updates", "alice").await;
    let mut next = experiment.clone();
    let from = next.status.phase;
    next.apply(&PhaseEvent::Start).unwrap();
    next.spec.description = "started".into();
    let event = next.transition_event(from, &PhaseEvent::Start, "alice", "go");
    let saved = store.update(&next, &event).await.unwrap();
    assert_eq!(saved.version, 2);
    assert_eq!(saved.status.phase, Phase::Initializing);
    assert_eq!(
        saved,
        Experiment {
            version: 2,
            ..next.clone()
        }
    );
    assert_eq!(store.get(&experiment.id).await.unwrap(), saved);

    let events = store.events(&experiment.id).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].kind, EventKind::Created);
    assert_eq!(events[1], event);

    // The saved record is the base of the next update.
    let mut again = saved.clone();
    again.spec.description = "again".into();
    let event = again.event("bob", EventKind::Updated, "edit");
    assert_eq!(store.update(&again, &event).await.unwrap().version, 3);
}

pub async fn a_stale_update_conflicts_and_writes_nothing(store: Arc<Store>) {
    let experiment = create(&store, "stale", "alice").await;
    let mut first = experiment.clone();
    first.spec.description = "first".into();
    let saved = store
        .update(&first, &first.event("alice", EventKind::Updated, "first"))
        .await
        .unwrap();

    let mut late = experiment.clone();
    late.spec.description = "late".into();
    let event = late.event("bob", EventKind::Updated, "late");
    match store.update(&late, &event).await {
        Err(CoreError::Conflict {
            id,
            expected,
            found,
        }) => {
            assert_eq!((id, expected, found), (experiment.id.clone(), 1, 2));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // A version from the future conflicts too.
    late.version = 9;
    match store.update(&late, &event).await {
        Err(CoreError::Conflict {
            expected, found, ..
        }) => assert_eq!((expected, found), (9, 2)),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.get(&experiment.id).await.unwrap(), saved);
    let messages: Vec<_> = store
        .events(&experiment.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(messages, ["created", "first"]);
}

pub async fn append_event_keeps_the_data_and_the_order(store: Arc<Store>) {
    let experiment = create(&store, "appends", "alice").await;
    for i in 0..5 {
        let event = experiment.event("controller", EventKind::Updated, format!("note {i}"));
        store.append_event(&event).await.unwrap();
    }
    let mut edited = experiment.clone();
    edited.spec.description = "edited".into();
    store
        .update(&edited, &edited.event("alice", EventKind::Updated, "edit"))
        .await
        .unwrap();
    store
        .append_event(&experiment.event("controller", EventKind::Updated, "last"))
        .await
        .unwrap();

    assert_eq!(store.get(&experiment.id).await.unwrap().version, 2);
    let messages: Vec<_> = store
        .events(&experiment.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(
        messages,
        [
            "created", "note 0", "note 1", "note 2", "note 3", "note 4", "edit", "last"
        ]
    );
}

pub async fn delete_removes_the_experiment_and_its_events(store: Arc<Store>) {
    let doomed = create(&store, "doomed", "alice").await;
    let kept = create(&store, "kept", "alice").await;
    store
        .append_event(&doomed.event("alice", EventKind::Updated, "note"))
        .await
        .unwrap();
    store.delete(&doomed.id).await.unwrap();

    assert!(matches!(
        store.get(&doomed.id).await,
        Err(CoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.events(&doomed.id).await,
        Err(CoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.delete(&doomed.id).await,
        Err(CoreError::NotFound { .. })
    ));
    assert_eq!(
        store.list(&all(10)).await.unwrap().items,
        std::slice::from_ref(&kept)
    );
    assert_eq!(store.events(&kept.id).await.unwrap().len(), 1);

    // The id can be used again, with a fresh event log.
    create_this(&store, &doomed).await;
    let events = store.events(&doomed.id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::Created);
}

pub async fn timestamps_outside_the_storable_range_are_refused(store: Arc<Store>) {
    let far = Utc.with_ymd_and_hms(2300, 1, 1, 0, 0, 0).unwrap();
    let experiment = experiment_at("exp-future00", far, "future", "alice");
    let event = experiment.event("alice", EventKind::Created, "created");
    let err = store.create(&experiment, &event).await.unwrap_err();
    assert!(
        err.to_string().contains("outside the storable range"),
        "{err}"
    );
    assert!(matches!(
        store.get(&experiment.id).await,
        Err(CoreError::NotFound { .. })
    ));
}

pub async fn listing_orders_by_creation_time_then_id(store: Arc<Store>) {
    // Inserted out of order; two pairs share a creation time (to the nanosecond).
    let experiments = [
        experiment_at("exp-cccccccc", at(5, 1), "c", "alice"),
        experiment_at("exp-bbbbbbbb", at(5, 1), "b", "alice"),
        experiment_at("exp-zzzzzzzz", at(1, 999_999_999), "z", "alice"),
        experiment_at("exp-aaaaaaaa", at(5, 2), "a", "alice"),
        experiment_at("exp-00000000", at(9, 0), "zero", "alice"),
        experiment_at("exp-11111111", at(9, 0), "one", "alice"),
        experiment_at("exp-yyyyyyyy", at(-100, 0), "y", "alice"),
    ];
    for experiment in &experiments {
        create_this(&store, experiment).await;
    }
    let listed: Vec<_> = store
        .list(&all(100))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.id.to_string())
        .collect();
    assert_eq!(
        listed,
        [
            "exp-yyyyyyyy",
            "exp-zzzzzzzz",
            "exp-bbbbbbbb",
            "exp-cccccccc",
            "exp-aaaaaaaa",
            "exp-00000000",
            "exp-11111111",
        ]
    );
    // Paging one by one gives the same order.
    let (paged, pages) = list_all(&store, all(1)).await;
    let paged: Vec<_> = paged.into_iter().map(|e| e.id.to_string()).collect();
    assert_eq!(paged, listed);
    assert_eq!(pages, 7);
}

pub async fn listing_filters_by_phase_owner_and_name_prefix(store: Arc<Store>) {
    let names = [
        ("web-a", "alice"),
        ("web-b", "bob"),
        ("Web-c", "alice"),
        ("webinar", "alice"),
        ("db_x", "alice"),
        ("dbax", "bob"),
        ("db%y", "alice"),
        ("dbz", "alice"),
        ("ünï-1", "carol"),
        ("", "dave"),
    ];
    let mut created = Vec::new();
    for (i, (name, owner)) in names.iter().enumerate() {
        let mut experiment = experiment_at(
            &format!("exp-0000000{i}"),
            at(i64::try_from(i).unwrap(), 0),
            name,
            owner,
        );
        if name.starts_with("web") {
            experiment.apply(&PhaseEvent::Start).unwrap();
        }
        create_this(&store, &experiment).await;
        created.push(experiment);
    }
    let names_of = |query: ListQuery| {
        let store = Arc::clone(&store);
        async move {
            let (items, _) = list_all(&store, query).await;
            items.into_iter().map(|e| e.spec.name).collect::<Vec<_>>()
        }
    };
    let prefix = |p: &str| ListQuery {
        name_prefix: Some(p.to_owned()),
        limit: 2,
        ..ListQuery::default()
    };
    assert_eq!(names_of(prefix("web")).await, ["web-a", "web-b", "webinar"]);
    assert_eq!(names_of(prefix("web-")).await, ["web-a", "web-b"]);
    assert_eq!(names_of(prefix("Web")).await, ["Web-c"]);
    assert_eq!(
        names_of(prefix("db_")).await,
        ["db_x"],
        "`_` is no wildcard"
    );
    assert_eq!(
        names_of(prefix("db%")).await,
        ["db%y"],
        "`%` is no wildcard"
    );
    assert_eq!(names_of(prefix("ünï")).await, ["ünï-1"]);
    assert_eq!(
        names_of(prefix("")).await.len(),
        names.len(),
        "an empty prefix matches all"
    );
    assert!(names_of(prefix("nothing")).await.is_empty());
    assert!(names_of(prefix("web\0")).await.is_empty());

    let owner = |o: &str| ListQuery {
        owner: Some(o.to_owned()),
        ..ListQuery::default()
    };
    assert_eq!(names_of(owner("bob")).await, ["web-b", "dbax"]);
    assert!(names_of(owner("Bob")).await.is_empty());

    let phase = |p: Phase| ListQuery {
        phase: Some(p),
        ..ListQuery::default()
    };
    assert_eq!(
        names_of(phase(Phase::Initializing)).await,
        ["web-a", "web-b", "webinar"]
    );
    assert_eq!(names_of(phase(Phase::Running)).await.len(), 0);

    let combined = ListQuery {
        phase: Some(Phase::Pending),
        owner: Some("alice".into()),
        name_prefix: Some("db".into()),
        limit: 1,
        ..ListQuery::default()
    };
    assert_eq!(names_of(combined.clone()).await, ["db_x", "db%y", "dbz"]);
    // Every backend agrees with phoenix-core's own reading of the filters.
    for experiment in &created {
        let listed = names_of(combined.clone())
            .await
            .contains(&experiment.spec.name);
        assert_eq!(
            listed,
            combined.matches(experiment),
            "{}",
            experiment.spec.name
        );
    }
}

pub async fn paging_visits_every_experiment_once(store: Arc<Store>) {
    let mut ids = BTreeSet::new();
    for _ in 0..25 {
        ids.insert(create(&store, "paged", "alice").await.id);
    }
    for (limit, expected_pages) in [(10, 3), (5, 5), (25, 1), (24, 2), (1000, 1)] {
        let (items, pages) = list_all(&store, all(limit)).await;
        assert_eq!(pages, expected_pages, "limit {limit}");
        let listed: Vec<_> = items.iter().map(|e| e.id.clone()).collect();
        assert_eq!(listed.iter().cloned().collect::<BTreeSet<_>>(), ids);
        assert_eq!(
            listed.len(),
            ids.len(),
            "limit {limit}: an experiment was listed twice"
        );
    }
    // The last page says so, also when it is full.
    let page = store.list(&all(25)).await.unwrap();
    assert_eq!((page.items.len(), page.next), (25, None));
    let page = store.list(&all(10)).await.unwrap();
    assert_eq!(page.next, Some(Cursor::after(&page.items[9])));
}

pub async fn a_cursor_survives_the_deletion_of_its_experiment(store: Arc<Store>) {
    let mut created = Vec::new();
    for i in 0..6 {
        let experiment = experiment_at(&format!("exp-0000000{i}"), at(i, 0), "c", "alice");
        create_this(&store, &experiment).await;
        created.push(experiment);
    }
    let first = store.list(&all(3)).await.unwrap();
    let next = first.next.unwrap();
    store.delete(&created[2].id).await.unwrap();
    let rest = store
        .list(&ListQuery {
            after: Some(next),
            ..all(3)
        })
        .await
        .unwrap();
    assert_eq!(rest.items, created[3..]);
    assert_eq!(rest.next, None);
}

pub async fn page_size_is_clamped_to_the_maximum(store: Arc<Store>) {
    let total = MAX_PAGE_SIZE as usize + 1;
    let mut tasks = Vec::new();
    for task in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for _ in (task..total).step_by(8) {
                create(&store, "many", "alice").await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let page = store.list(&all(u32::MAX)).await.unwrap();
    assert_eq!(page.items.len(), MAX_PAGE_SIZE as usize);
    let rest = store
        .list(&ListQuery {
            after: page.next,
            ..all(u32::MAX)
        })
        .await
        .unwrap();
    assert_eq!((rest.items.len(), rest.next), (1, None));
    assert_eq!(
        store.list(&all(0)).await.unwrap().items.len(),
        1,
        "a limit of 0 means 1"
    );
}

pub async fn users_are_created_read_updated_and_disabled(store: Arc<Store>) {
    assert_eq!(store.user_count().await.unwrap(), 0);
    let new = |name: &str, role| NewUser {
        name: name.to_owned(),
        password_hash: format!("$argon2id$v=19$hash-of-{name}"),
        role,
    };
    let bob = store.create_user(&new("bob", Role::Viewer)).await.unwrap();
    let alice = store.create_user(&new("alice", Role::Admin)).await.unwrap();
    assert_eq!(
        (bob.name.as_str(), bob.role, bob.disabled),
        ("bob", Role::Viewer, false)
    );
    assert_eq!(bob.created_at, bob.updated_at);
    assert_eq!(store.user("bob").await.unwrap(), bob);
    assert_eq!(store.users().await.unwrap(), [alice.clone(), bob.clone()]);
    assert_eq!(store.user_count().await.unwrap(), 2);

    let err = store
        .create_user(&new("bob", Role::Admin))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::UserExists { name } if name == "bob"),
        "{err}"
    );
    assert_eq!(store.user("bob").await.unwrap().role, Role::Viewer);

    let err = store
        .create_user(&new(" bob", Role::Admin))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidUser { field: "name", .. }),
        "{err}"
    );

    let promoted = store
        .update_user(
            "bob",
            &UserUpdate {
                role: Some(Role::Operator),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(promoted.role, Role::Operator);
    assert_eq!(promoted.password_hash, bob.password_hash);
    assert!(promoted.updated_at >= bob.updated_at);
    assert_eq!(promoted.created_at, bob.created_at);
    let rehashed = store
        .update_user(
            "bob",
            &UserUpdate {
                password_hash: Some("new-hash".into()),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (rehashed.password_hash.as_str(), rehashed.role),
        ("new-hash", Role::Operator)
    );

    let disabled = store.set_user_disabled("bob", true).await.unwrap();
    assert!(disabled.disabled);
    assert_eq!(store.user("bob").await.unwrap(), disabled);
    assert!(
        !store
            .set_user_disabled("bob", false)
            .await
            .unwrap()
            .disabled
    );

    for result in [
        store.user("carol").await,
        store.update_user("carol", &UserUpdate::default()).await,
        store.set_user_disabled("carol", true).await,
    ] {
        assert!(
            matches!(&result, Err(Error::UserNotFound { name }) if name == "carol"),
            "{result:?}"
        );
    }
    assert_eq!(store.user_count().await.unwrap(), 2);
}

pub async fn pipelines_activate_and_roll_back(store: Arc<Store>) {
    let local = PipelineTarget::Local;
    let k8s: PipelineTarget = "k8s/perf".parse().unwrap();
    assert_eq!(store.active(&local).await.unwrap(), None);
    assert!(store.history(&local).await.unwrap().is_empty());
    let err = store.rollback(&local).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::NothingToRollBack {
                reason: RollbackGap::NoActivePipeline,
                ..
            }
        ),
        "{err}"
    );
    let err = store.activate(&local, "  \n", None).await.unwrap_err();
    assert!(matches!(err, Error::InvalidPipeline { .. }), "{err}");

    let origin = PipelineOrigin {
        experiment_id: id("exp-abcd1234"),
        variant: VariantRole::Candidate,
    };
    let mut configs = Vec::new();
    for n in 1..=3_u64 {
        let config = format!("receivers:\n  hostmetrics: {{}}\n# revision {n}\n");
        let origin = (n != 2).then_some(&origin);
        let revision = store.activate(&local, &config, origin).await.unwrap();
        assert_eq!(
            (revision.revision, revision.state),
            (n, RevisionState::Active)
        );
        assert_eq!(revision.origin.as_ref(), origin);
        assert_eq!(revision.config, config);
        configs.push(config);
    }
    store.activate(&k8s, "k8s: 1", None).await.unwrap();

    let history = store.history(&local).await.unwrap();
    let states: Vec<_> = history.iter().map(|r| (r.revision, r.state)).collect();
    assert_eq!(
        states,
        [
            (3, RevisionState::Active),
            (2, RevisionState::Superseded),
            (1, RevisionState::Superseded),
        ]
    );
    assert_eq!(
        store.active(&local).await.unwrap().as_ref(),
        history.first()
    );

    // Roll back twice: 3 -> 2 -> 1; then nothing earlier is left.
    let restored = store.rollback(&local).await.unwrap();
    assert_eq!(
        (restored.revision, restored.state),
        (2, RevisionState::Active)
    );
    assert_eq!(restored.config, configs[1]);
    assert_eq!(store.rollback(&local).await.unwrap().revision, 1);
    let err = store.rollback(&local).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::NothingToRollBack {
                reason: RollbackGap::NoEarlierPipeline,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.active(&local).await.unwrap().unwrap().revision, 1);

    // A new activation supersedes 1; rolling it back restores 1, skipping the rolled-back.
    let fourth = store.activate(&local, "# revision 4", None).await.unwrap();
    assert_eq!(fourth.revision, 4);
    let restored = store.rollback(&local).await.unwrap();
    assert_eq!(
        (restored.revision, restored.config.as_str()),
        (1, configs[0].as_str())
    );
    assert_eq!(restored.origin.as_ref(), Some(&origin));
    let states: Vec<_> = store
        .history(&local)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.revision, r.state))
        .collect();
    assert_eq!(
        states,
        [
            (4, RevisionState::RolledBack),
            (3, RevisionState::RolledBack),
            (2, RevisionState::RolledBack),
            (1, RevisionState::Active),
        ]
    );

    // The other target was never touched.
    let other = store.history(&k8s).await.unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(
        (other[0].revision, other[0].state),
        (1, RevisionState::Active)
    );
}

/// A Kubernetes namespace built in code is not checked by the type; a store must refuse one
/// that could not be read back, rather than commit a revision that breaks every later read.
pub async fn an_unstorable_target_is_refused_before_anything_is_written(store: Arc<Store>) {
    for namespace in ["Bad/NS", "", "-x", "under_score"] {
        let bad = PipelineTarget::Kubernetes {
            namespace: namespace.to_owned(),
        };
        let err = store
            .activate(&bad, "receivers: {}", None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidTarget { .. }), "{err}");
        assert!(
            err.to_string().contains(&format!("k8s/{namespace}")),
            "{err}"
        );
        let err = store.rollback(&bad).await.unwrap_err();
        assert!(matches!(err, Error::InvalidTarget { .. }), "{err}");
        assert_eq!(store.active(&bad).await.unwrap(), None);
        assert!(store.history(&bad).await.unwrap().is_empty());
    }
    // The refusal left the store usable, and revisions still number from 1.
    let good = PipelineTarget::Kubernetes {
        namespace: "good-ns".to_owned(),
    };
    let revision = store.activate(&good, "receivers: {}", None).await.unwrap();
    assert_eq!(revision.revision, 1);
    assert_eq!(store.active(&good).await.unwrap(), Some(revision));
}

/// PostgreSQL text cannot hold NUL; every backend refuses it up front, naming the field,
/// instead of one of them failing in the driver.
pub async fn nul_characters_are_refused_naming_the_field(store: Arc<Store>) {
    for (field, name, owner) in [("name", "we\0b", "alice"), ("owner", "web", "al\0ice")] {
        let experiment = Experiment::new(spec(name, owner));
        let event = experiment.event("alice", EventKind::Created, "created");
        let err = store.create(&experiment, &event).await.unwrap_err();
        assert!(matches!(err, CoreError::Store { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains(&format!("{field} ")) && message.contains("NUL"),
            "{message}"
        );
        assert!(matches!(
            store.get(&experiment.id).await,
            Err(CoreError::NotFound { .. })
        ));
    }
    let experiment = create(&store, "nul-checks", "alice").await;
    let mut renamed = experiment.clone();
    renamed.spec.name = "nul\0".into();
    let err = store
        .update(
            &renamed,
            &renamed.event("alice", EventKind::Updated, "rename"),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("name "), "{err}");
    let err = store
        .append_event(&experiment.event("ali\0ce", EventKind::Updated, "note"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("event actor"), "{err}");
    assert_eq!(store.get(&experiment.id).await.unwrap(), experiment);
    assert_eq!(store.events(&experiment.id).await.unwrap().len(), 1);
    // Listing by a name or owner with NUL matches nothing, on every backend alike.
    for query in [
        ListQuery {
            owner: Some("al\0ice".into()),
            ..ListQuery::default()
        },
        ListQuery {
            name_prefix: Some("nul\0".into()),
            ..ListQuery::default()
        },
    ] {
        assert!(store.list(&query).await.unwrap().items.is_empty());
    }

    let user = |name: &str, hash: &str| NewUser {
        name: name.to_owned(),
        password_hash: hash.to_owned(),
        role: Role::Viewer,
    };
    let err = store.create_user(&user("b\0b", "hash")).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidUser { field: "name", .. }),
        "{err}"
    );
    let err = store
        .create_user(&user("bob", "secret\0hash"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidUser {
                field: "password_hash",
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.to_string().contains("secret"), "{err}");
    assert_eq!(store.user_count().await.unwrap(), 0);
    store.create_user(&user("bob", "hash")).await.unwrap();
    let rehash = UserUpdate {
        password_hash: Some("new\0hash".into()),
        ..UserUpdate::default()
    };
    let err = store.update_user("bob", &rehash).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidUser {
                field: "password_hash",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.user("bob").await.unwrap().password_hash, "hash");
    for result in [
        store.user("b\0b").await,
        store.update_user("b\0b", &UserUpdate::default()).await,
        store.set_user_disabled("b\0b", true).await,
    ] {
        assert!(
            matches!(&result, Err(Error::UserNotFound { .. })),
            "{result:?}"
        );
    }

    let local = PipelineTarget::Local;
    let err = store
        .activate(&local, "receivers: {}\0", None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidPipeline { .. }), "{err}");
    assert!(err.to_string().contains("NUL"), "{err}");
    assert_eq!(store.active(&local).await.unwrap(), None);
}

/// A cursor whose time no database can compare is refused by every backend alike.
pub async fn a_cursor_outside_the_storable_range_is_refused(store: Arc<Store>) {
    let kept = create(&store, "kept", "alice").await;
    for year in [1500, 2300] {
        let query = ListQuery {
            after: Some(Cursor {
                created_at: Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).unwrap(),
                id: kept.id.clone(),
            }),
            ..ListQuery::default()
        };
        let err = store.list(&query).await.unwrap_err();
        assert!(matches!(err, CoreError::Store { .. }), "{err}");
        assert!(
            err.to_string().contains("outside the storable range"),
            "{err}"
        );
    }
}

pub async fn concurrent_creates_of_one_id_admit_exactly_one(store: Arc<Store>) {
    let experiment = Experiment::new(spec("contested", "alice"));
    let mut tasks = Vec::new();
    for task in 0..8 {
        let store = Arc::clone(&store);
        let experiment = experiment.clone();
        tasks.push(tokio::spawn(async move {
            let event = experiment.event(&format!("task-{task}"), EventKind::Created, "created");
            store.create(&experiment, &event).await
        }));
    }
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => created += 1,
            Err(CoreError::AlreadyExists { .. }) => {}
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(store.events(&experiment.id).await.unwrap().len(), 1);
}

pub async fn concurrent_activations_get_distinct_revisions(store: Arc<Store>) {
    let target: PipelineTarget = "k8s/busy".parse().unwrap();
    let mut tasks = Vec::new();
    for task in 0..8 {
        let store = Arc::clone(&store);
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            store
                .activate(&target, &format!("# task {task}"), None)
                .await
                .unwrap()
                .revision
        }));
    }
    let mut revisions = Vec::new();
    for task in tasks {
        revisions.push(task.await.unwrap());
    }
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=8).collect::<Vec<_>>());
    let history = store.history(&target).await.unwrap();
    let active = history
        .iter()
        .filter(|r| r.state == RevisionState::Active)
        .count();
    assert_eq!(active, 1);
    assert_eq!(history[0].state, RevisionState::Active);
}

/// 16 writers each apply 100 updates to one experiment, re-reading and retrying on every
/// conflict. No update may be lost or applied twice.
pub async fn concurrent_updates_all_land_exactly_once(store: Arc<Store>) {
    const TASKS: u64 = 16;
    const UPDATES: u64 = 100;
    let experiment = create(&store, "contended", "alice").await;
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = Arc::clone(&store);
        let id = experiment.id.clone();
        tasks.push(tokio::spawn(async move {
            let mut versions = Vec::new();
            let mut conflicts = 0_u64;
            let mut rng = fastrand::Rng::with_seed(task);
            for update in 0..UPDATES {
                let note = format!("task {task} update {update}");
                let mut streak = 0_u32;
                loop {
                    let mut current = store.get(&id).await.unwrap();
                    // Let the other writers run between the read and the write, as network
                    // round trips would (the memory store never yields by itself).
                    tokio::task::yield_now().await;
                    current.spec.description.clone_from(&note);
                    let event = current.event(&format!("task-{task}"), EventKind::Updated, &note);
                    match store.update(&current, &event).await {
                        Ok(saved) => {
                            assert_eq!(saved.version, current.version + 1);
                            versions.push(saved.version);
                            break;
                        }
                        Err(CoreError::Conflict {
                            expected, found, ..
                        }) => {
                            assert!(found > expected, "{found} <= {expected}");
                            conflicts += 1;
                            // Back off for a random, growing moment, as a real client
                            // would, so that the writers do not keep colliding in lockstep.
                            streak += 1;
                            let pause = rng.u64(0..1 << streak.min(5));
                            tokio::time::sleep(Duration::from_millis(pause)).await;
                        }
                        Err(other) => panic!("task {task}: {other}"),
                    }
                }
            }
            (versions, conflicts)
        }));
    }
    let mut versions = Vec::new();
    let mut conflicts = 0;
    for task in tasks {
        let (v, c) = task.await.unwrap();
        versions.extend(v);
        conflicts += c;
    }
    versions.sort_unstable();
    assert_eq!(versions, (2..=1 + TASKS * UPDATES).collect::<Vec<_>>());

    let stored = store.get(&experiment.id).await.unwrap();
    assert_eq!(stored.version, 1 + TASKS * UPDATES);
    let events = store.events(&experiment.id).await.unwrap();
    assert_eq!(events.len() as u64, 1 + TASKS * UPDATES);
    let notes: HashSet<_> = events[1..].iter().map(|e| e.message.clone()).collect();
    assert_eq!(
        notes.len() as u64,
        TASKS * UPDATES,
        "every update is in the event log once"
    );
    // Each writer's own updates appear in the log in the order it made them.
    for task in 0..TASKS {
        let own: Vec<_> = events
            .iter()
            .filter(|e| e.actor == format!("task-{task}"))
            .map(|e| e.message.clone())
            .collect();
        let expected: Vec<_> = (0..UPDATES)
            .map(|u| format!("task {task} update {u}"))
            .collect();
        assert_eq!(own, expected);
    }
    assert_eq!(stored.spec.description, events.last().unwrap().message);
    eprintln!("{conflicts} conflicts retried");
}
