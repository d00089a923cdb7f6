use kube::Api;
use phoenix_core::experiment::{EventKind, ExperimentId};
use phoenix_core::phase::{Phase, PhaseEvent};
use phoenix_core::store::{ExperimentStore, ListQuery};
use phoenix_operator::crd::PhoenixExperiment;
use phoenix_operator::store::StatusStore;
use serde_json::json;

use crate::{NS, phoenix_path, setup};

fn path() -> String {
    phoenix_path("phoenixexperiments", "trial")
}

fn resource() -> serde_json::Value {
    json!({
        "apiVersion": "phoenix.io/v1alpha1",
        "kind": "PhoenixExperiment",
        "metadata": {"name": "trial", "namespace": NS, "uid": "4f2e3d4c-0000-4000-8000-000000000004"},
        "spec": {"experiment": {
            "name": "store-trial",
            "baseline": {"template": "process-baseline-v1"},
            "candidate": {"template": "process-topk-v1"},
        }},
    })
}

#[tokio::test]
async fn the_status_store_keeps_the_record_with_optimistic_concurrency() {
    let (api, ctx) = setup();
    api.put(&path(), resource());
    let client_api: Api<PhoenixExperiment> = Api::namespaced(ctx.client.clone(), NS);
    let store = StatusStore::new(client_api, "trial", ctx.clone());
    let id: ExperimentId = "exp-4f2e3d4c".parse().unwrap();
    let resource: PhoenixExperiment = serde_json::from_value(api.get(&path()).unwrap()).unwrap();
    let spec = phoenix_operator::objects::experiment_spec(&resource).unwrap();
    let experiment = phoenix_core::experiment::Experiment::with_id(id.clone(), spec);

    assert!(matches!(
        store.get(&id).await,
        Err(phoenix_core::Error::NotFound { .. })
    ));
    let created = experiment.event("tester", EventKind::Created, "created");
    store.create(&experiment, &created).await.unwrap();
    assert!(matches!(
        store.create(&experiment, &created).await,
        Err(phoenix_core::Error::AlreadyExists { .. })
    ));

    let mut started = store.get(&id).await.unwrap();
    assert_eq!((started.version, started.status.phase), (1, Phase::Pending));
    started.apply(&PhaseEvent::Start).unwrap();
    let event = started.transition_event(Phase::Pending, &PhaseEvent::Start, "tester", "go");
    let saved = store.update(&started, &event).await.unwrap();
    assert_eq!(saved.version, 2);
    assert_eq!(
        store.get(&id).await.unwrap().status.phase,
        Phase::Initializing
    );

    // A write based on the old version is refused and changes nothing.
    let stale = store.update(&started, &event).await;
    assert!(
        matches!(
            stale,
            Err(phoenix_core::Error::Conflict {
                expected: 1,
                found: 2,
                ..
            })
        ),
        "{stale:?}"
    );
    // So is one that raced another writer between read and write (resourceVersion moved).
    api.fail_when(|r| {
        (r.method == "PATCH" && r.body["metadata"]["resourceVersion"].is_string()).then_some(409)
    });
    let raced = store.update(&saved, &event).await;
    assert!(
        matches!(raced, Err(phoenix_core::Error::Conflict { .. })),
        "{raced:?}"
    );
    api.stop_failing();

    let events = store.events(&id).await.unwrap();
    assert_eq!(events.len(), 2);
    assert!(matches!(
        events[1].kind,
        EventKind::Transition {
            to: Phase::Initializing,
            ..
        }
    ));
    let page = store.list(&ListQuery::default()).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(api.event_reasons().contains(&"Initializing".to_owned()));

    store.delete(&id).await.unwrap();
    assert!(matches!(
        store.get(&id).await,
        Err(phoenix_core::Error::NotFound { .. })
    ));
}
