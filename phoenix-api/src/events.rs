//! Experiment events as they are written: the store wrapper every write goes through
//! ([`ObservedStore`]), the broadcast it feeds ([`EventHub`]), and what it remembers for
//! fast reads and for `/metrics` (the latest record of each experiment, its phase and
//! results).
//!
//! The remembered records are those this process wrote or read; with several servers on one
//! PostgreSQL database another server's writes are not seen here (run one server per
//! database).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use axum::body::Bytes;
use phoenix_core::analysis::ExperimentResults;
use phoenix_core::experiment::{Experiment, ExperimentEvent, ExperimentId};
use phoenix_core::phase::Phase;
use phoenix_core::store::{ExperimentStore, ListQuery, Page};
use tokio::sync::broadcast;

/// How many events a slow subscriber may fall behind before it is told it lagged.
const CHANNEL_CAPACITY: usize = 1024;
/// How many serialized experiments are kept for fast reads.
const CACHE_CAPACITY: usize = 4096;
/// How many finished experiments keep their results for `/metrics` (per-experiment series).
pub(crate) const METRICS_FINISHED: usize = 50;
/// How many deletions are remembered, so that a stale read racing a delete does not bring
/// the deleted experiment back into the cache.
const TOMBSTONE_CAPACITY: usize = 1024;

/// Broadcasts every experiment event written through the [`ObservedStore`], and the id of
/// every experiment deleted through it.
#[derive(Debug, Clone)]
pub struct EventHub {
    sender: broadcast::Sender<ExperimentEvent>,
    deletions: broadcast::Sender<ExperimentId>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new()
    }
}

impl EventHub {
    /// A hub with no subscriber.
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(CHANNEL_CAPACITY);
        let (deletions, _) = broadcast::channel(CHANNEL_CAPACITY);
        Self { sender, deletions }
    }

    /// A receiver of every event written from now on. A receiver that falls more than
    /// 1024 events behind gets `RecvError::Lagged` and continues with newer ones.
    pub fn subscribe(&self) -> broadcast::Receiver<ExperimentEvent> {
        self.sender.subscribe()
    }

    /// A receiver of the id of every experiment deleted from now on (a deletion writes no
    /// event, so watchers learn of it here). Lags like [`EventHub::subscribe`].
    pub fn subscribe_deletions(&self) -> broadcast::Receiver<ExperimentId> {
        self.deletions.subscribe()
    }

    /// How many receivers are subscribed (watchers, gRPC streams).
    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }

    fn publish(&self, event: &ExperimentEvent) {
        // No subscriber is not an error: nobody is watching.
        let _ = self.sender.send(event.clone());
    }

    fn publish_deletion(&self, id: &ExperimentId) {
        let _ = self.deletions.send(id.clone());
    }
}

/// An experiment as last written or read, serialized once.
#[derive(Debug, Clone)]
pub(crate) struct Cached {
    pub(crate) version: u64,
    pub(crate) json: Bytes,
}

#[derive(Debug)]
enum Slot {
    Live(Cached),
    Deleted,
}

/// What `/metrics` reports of one experiment.
#[derive(Debug, Clone)]
pub(crate) struct Summary {
    pub(crate) phase: Phase,
    pub(crate) results: Option<Arc<ExperimentResults>>,
}

#[derive(Debug, Default)]
struct Memory {
    cache: HashMap<ExperimentId, Slot>,
    /// The phase of every experiment known here, and the results of the last
    /// [`METRICS_FINISHED`] that have them.
    summaries: HashMap<ExperimentId, Summary>,
    /// The experiments whose summaries hold results, oldest first.
    with_results: VecDeque<ExperimentId>,
    /// The deleted experiments in `cache`, oldest first.
    tombstones: VecDeque<ExperimentId>,
}

impl Memory {
    /// Records `summary`; drops the results of the oldest finished experiment beyond
    /// [`METRICS_FINISHED`].
    fn summarize(&mut self, id: &ExperimentId, summary: Summary) {
        if let Some(at) = self.with_results.iter().position(|known| known == id) {
            self.with_results.remove(at);
        }
        if summary.results.is_some() {
            self.with_results.push_back(id.clone());
        }
        self.summaries.insert(id.clone(), summary);
        while self.with_results.len() > METRICS_FINISHED {
            if let Some(oldest) = self.with_results.pop_front()
                && let Some(old) = self.summaries.get_mut(&oldest)
            {
                old.results = None;
            }
        }
    }

    /// Forgets a deleted experiment's summary and remembers the deletion; the oldest
    /// deletions beyond [`TOMBSTONE_CAPACITY`] are forgotten.
    fn bury(&mut self, id: &ExperimentId) {
        if !matches!(
            self.cache.insert(id.clone(), Slot::Deleted),
            Some(Slot::Deleted)
        ) {
            self.tombstones.push_back(id.clone());
        }
        self.summaries.remove(id);
        if let Some(at) = self.with_results.iter().position(|known| known == id) {
            self.with_results.remove(at);
        }
        while self.tombstones.len() > TOMBSTONE_CAPACITY {
            if let Some(oldest) = self.tombstones.pop_front()
                && matches!(self.cache.get(&oldest), Some(Slot::Deleted))
            {
                self.cache.remove(&oldest);
            }
        }
    }
}

/// The experiment store as the server uses it: every write goes to the backend, then its
/// event is broadcast and the record remembered.
#[derive(Clone)]
pub struct ObservedStore {
    inner: Arc<dyn ExperimentStore>,
    hub: EventHub,
    memory: Arc<Mutex<Memory>>,
}

impl std::fmt::Debug for ObservedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObservedStore").finish_non_exhaustive()
    }
}

impl ObservedStore {
    /// Wraps `inner`, broadcasting on `hub`.
    pub fn new(inner: Arc<dyn ExperimentStore>, hub: EventHub) -> Self {
        Self {
            inner,
            hub,
            memory: Arc::new(Mutex::new(Memory::default())),
        }
    }

    fn memory(&self) -> MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers `experiment` unless a newer version is remembered or it was deleted.
    pub(crate) fn remember(&self, experiment: &Experiment) {
        let Ok(json) = serde_json::to_vec(experiment) else {
            return;
        };
        self.put(experiment, json, false);
    }

    fn put(&self, experiment: &Experiment, json: Vec<u8>, created: bool) {
        let mut memory = self.memory();
        let newer = match memory.cache.get(&experiment.id) {
            Some(Slot::Live(c)) => c.version > experiment.version,
            Some(Slot::Deleted) => !created,
            None => false,
        };
        if newer {
            return;
        }
        if created && let Some(at) = memory.tombstones.iter().position(|t| *t == experiment.id) {
            memory.tombstones.remove(at);
        }
        if memory.cache.len() >= CACHE_CAPACITY && !memory.cache.contains_key(&experiment.id) {
            let victim = memory
                .cache
                .iter()
                .find(|(_, slot)| matches!(slot, Slot::Live(_)))
                .map(|(id, _)| id.clone());
            if let Some(victim) = victim {
                memory.cache.remove(&victim);
            }
        }
        memory.cache.insert(
            experiment.id.clone(),
            Slot::Live(Cached {
                version: experiment.version,
                json: Bytes::from(json),
            }),
        );
        memory.summarize(
            &experiment.id,
            Summary {
                phase: experiment.status.phase,
                results: experiment.status.results.clone().map(Arc::new),
            },
        );
    }

    /// The remembered JSON of an experiment, if any.
    pub(crate) fn cached(&self, id: &ExperimentId) -> Option<Cached> {
        match self.memory().cache.get(id) {
            Some(Slot::Live(c)) => Some(c.clone()),
            _ => None,
        }
    }

    /// The phase and results of every experiment known to this process.
    pub(crate) fn summaries(&self) -> Vec<(ExperimentId, Summary)> {
        self.memory()
            .summaries
            .iter()
            .map(|(id, s)| (id.clone(), s.clone()))
            .collect()
    }

    /// The hub events are broadcast on.
    pub fn hub(&self) -> &EventHub {
        &self.hub
    }
}

#[async_trait]
impl ExperimentStore for ObservedStore {
    async fn create(
        &self,
        experiment: &Experiment,
        event: &ExperimentEvent,
    ) -> phoenix_core::Result<()> {
        self.inner.create(experiment, event).await?;
        if let Ok(json) = serde_json::to_vec(experiment) {
            self.put(experiment, json, true);
        }
        self.hub.publish(event);
        Ok(())
    }

    async fn get(&self, id: &ExperimentId) -> phoenix_core::Result<Experiment> {
        let experiment = self.inner.get(id).await?;
        self.remember(&experiment);
        Ok(experiment)
    }

    async fn list(&self, query: &ListQuery) -> phoenix_core::Result<Page> {
        self.inner.list(query).await
    }

    async fn update(
        &self,
        experiment: &Experiment,
        event: &ExperimentEvent,
    ) -> phoenix_core::Result<Experiment> {
        let saved = self.inner.update(experiment, event).await?;
        self.remember(&saved);
        self.hub.publish(event);
        Ok(saved)
    }

    async fn append_event(&self, event: &ExperimentEvent) -> phoenix_core::Result<()> {
        self.inner.append_event(event).await?;
        self.hub.publish(event);
        Ok(())
    }

    async fn events(&self, id: &ExperimentId) -> phoenix_core::Result<Vec<ExperimentEvent>> {
        self.inner.events(id).await
    }

    async fn delete(&self, id: &ExperimentId) -> phoenix_core::Result<()> {
        self.inner.delete(id).await?;
        self.memory().bury(id);
        self.hub.publish_deletion(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use phoenix_core::experiment::{EventKind, ExperimentSpec};
    use phoenix_store::MemoryStore;

    use super::*;

    fn spec() -> ExperimentSpec {
        serde_json::from_value(serde_json::json!({
            "name": "cache-test",
            "baseline": {"template": "process-baseline-v1"},
            "candidate": {"template": "process-topk-v1"},
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn writes_are_broadcast_and_remembered() {
        let store = ObservedStore::new(Arc::new(MemoryStore::new()), EventHub::new());
        let mut events = store.hub().subscribe();
        let mut deletions = store.hub().subscribe_deletions();
        let experiment = Experiment::new(spec());
        let created = experiment.event("t", EventKind::Created, "created");
        store.create(&experiment, &created).await.unwrap();
        assert_eq!(events.recv().await.unwrap(), created);
        assert_eq!(store.cached(&experiment.id).unwrap().version, 1);

        let mut edited = experiment.clone();
        edited.spec.description = "x".into();
        let updated = edited.event("t", EventKind::Updated, "edited");
        let saved = store.update(&edited, &updated).await.unwrap();
        assert_eq!(events.recv().await.unwrap(), updated);
        assert_eq!(store.cached(&experiment.id).unwrap().version, 2);

        // A stale record read later does not replace the newer one.
        store.remember(&experiment);
        assert_eq!(store.cached(&experiment.id).unwrap().version, saved.version);
        assert_eq!(store.summaries().len(), 1);

        store.delete(&experiment.id).await.unwrap();
        assert_eq!(deletions.recv().await.unwrap(), experiment.id);
        store.remember(&saved);
        assert!(
            store.cached(&experiment.id).is_none(),
            "deleted stays deleted"
        );
        assert!(store.summaries().is_empty());
    }

    #[tokio::test]
    async fn results_and_tombstones_are_bounded() {
        let store = ObservedStore::new(Arc::new(MemoryStore::new()), EventHub::new());
        let results = phoenix_core::analysis::analyze(
            &[],
            &spec().success_criteria,
            &spec().cost_model.unwrap_or_default(),
            phoenix_core::measurement::Noise::Deterministic,
        );
        let mut ids = Vec::new();
        for _ in 0..METRICS_FINISHED + 10 {
            let mut experiment = Experiment::new(spec());
            experiment.status.results = Some(results.clone());
            store.remember(&experiment);
            ids.push(experiment.id);
        }
        let summaries = store.summaries();
        assert_eq!(
            summaries.len(),
            METRICS_FINISHED + 10,
            "every phase is counted"
        );
        let with_results = summaries
            .iter()
            .filter(|(_, s)| s.results.is_some())
            .count();
        assert_eq!(with_results, METRICS_FINISHED);
        for _ in 0..TOMBSTONE_CAPACITY + 5 {
            let experiment = Experiment::new(spec());
            let created = experiment.event("t", EventKind::Created, "created");
            store.create(&experiment, &created).await.unwrap();
            store.delete(&experiment.id).await.unwrap();
        }
        let memory = store.memory();
        assert_eq!(memory.tombstones.len(), TOMBSTONE_CAPACITY);
        let dead = memory
            .cache
            .values()
            .filter(|slot| matches!(slot, Slot::Deleted))
            .count();
        assert_eq!(dead, TOMBSTONE_CAPACITY);
    }
}
