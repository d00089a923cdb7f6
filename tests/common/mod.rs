//! Shared set-up of the root package's integration tests.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use phoenix::core::controller::ExperimentController;
use phoenix::core::executor::Executor;
use phoenix::core::experiment::{EventKind, Experiment, ExperimentId, ExperimentSpec};
use phoenix::core::store::ExperimentStore;
use phoenix::store::MemoryStore;

/// Parses a YAML spec and checks it.
pub fn spec(yaml: &str) -> ExperimentSpec {
    let spec: ExperimentSpec = serde_yaml::from_str(yaml).unwrap();
    spec.validate().unwrap();
    spec
}

/// A memory store holding a new pending experiment of `spec`.
pub async fn stored(spec: ExperimentSpec) -> (Arc<MemoryStore>, ExperimentId) {
    let store = Arc::new(MemoryStore::new());
    let experiment = Experiment::new(spec);
    let event = experiment.event("test", EventKind::Created, "created");
    store.create(&experiment, &event).await.unwrap();
    (store, experiment.id)
}

/// A controller over `store` and `executor`.
pub fn controller(store: &Arc<MemoryStore>, executor: Arc<dyn Executor>) -> ExperimentController {
    let store: Arc<dyn ExperimentStore> = store.clone();
    ExperimentController::new(store, executor)
}

/// Runs `spec` to its end with a fresh local executor and a memory store.
pub async fn run_to_end(spec: ExperimentSpec) -> Experiment {
    let (store, id) = stored(spec).await;
    let executor = Arc::new(phoenix::local::LocalExecutor::new());
    controller(&store, executor).run(&id).await.unwrap()
}
