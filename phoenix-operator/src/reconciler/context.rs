//! What the reconcilers share: the client, defaults, the event recorder, backoff state and
//! the running experiments.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use kube::Client;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::task::JoinHandle;

use crate::objects::Defaults;
use crate::prometheus::PrometheusClient;

/// Exponential backoff of failing reconciles: `base`, doubled per consecutive failure, at most
/// `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(5),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The delay after `failures` consecutive failures (1 for the first).
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 2_u32.saturating_pow(failures.saturating_sub(1).min(16));
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// Consecutive failures per object key. An entry goes with the object's next success, or
/// once the object has not failed for twice the longest backoff (a deleted object, or one
/// that stopped being reconciled, is forgotten), so the table does not grow with every
/// object that ever failed.
#[derive(Debug, Default)]
struct Failures {
    entries: HashMap<String, (u32, Instant)>,
}

impl Failures {
    /// Records one more failure of `key` at `now`, forgetting entries whose last failure is
    /// `forget_after` or more before `now`; returns the count of `key`.
    fn record(&mut self, key: &str, now: Instant, forget_after: Duration) -> u32 {
        self.entries
            .retain(|_, (_, last)| now.saturating_duration_since(*last) < forget_after);
        let entry = self.entries.entry(key.to_owned()).or_insert((0, now));
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        entry.0
    }

    fn forget(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

/// How often the operator looks again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Requeue of a resource that is not ready yet.
    pub waiting: Duration,
    /// Requeue of a ready resource, to refresh its status.
    pub ready: Duration,
    /// How long the Kubernetes executor waits for both pipelines to become ready.
    pub ready_timeout: Duration,
    /// How often it looks while waiting.
    pub poll: Duration,
    /// How long after a window's end it waits before measuring, so that Prometheus has
    /// scraped the window's last samples.
    pub scrape_lag: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            waiting: Duration::from_secs(10),
            ready: Duration::from_secs(300),
            ready_timeout: Duration::from_secs(600),
            poll: Duration::from_secs(5),
            scrape_lag: Duration::from_secs(30),
        }
    }
}

/// Shared state of the reconcilers.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Images and service account used when a resource names none.
    pub defaults: Defaults,
    /// Where experiments are measured; experiments fail with a clear reason without it.
    pub prometheus: Option<PrometheusClient>,
    /// Backoff of failing reconciles.
    pub backoff: Backoff,
    /// Requeue intervals and executor waits.
    pub timing: Timing,
    recorder: Recorder,
    failures: Mutex<Failures>,
    runs: Mutex<HashMap<String, JoinHandle<()>>>,
}

impl Context {
    /// A context with default backoff and timing, reporting events as `phoenix-operator`.
    pub fn new(client: Client, defaults: Defaults, prometheus: Option<PrometheusClient>) -> Self {
        let reporter = Reporter {
            controller: "phoenix-operator".to_owned(),
            instance: std::env::var("HOSTNAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            defaults,
            prometheus,
            backoff: Backoff::default(),
            timing: Timing::default(),
            failures: Mutex::new(Failures::default()),
            runs: Mutex::new(HashMap::new()),
        }
    }

    /// The same context with other timing.
    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    /// The delay before retrying `key` after one more failure.
    pub(crate) fn next_backoff(&self, key: &str) -> Duration {
        let count = self
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(key, Instant::now(), self.backoff.max.saturating_mul(2));
        self.backoff.delay(count)
    }

    /// Forgets the failures of `key` after a successful reconcile (including the cleanup that
    /// releases a deleted object's finalizer).
    pub(crate) fn reset_backoff(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .forget(key);
    }

    /// Publishes a Kubernetes event about `object`. Failing to publish is logged, not fatal.
    pub(crate) async fn publish<K>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) where
        K: Resource<DynamicType = ()>,
    {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(truncate(note, 1000)),
            action: action.to_owned(),
            secondary: None,
        };
        let reference = object.object_ref(&());
        if let Err(error) = self.recorder.publish(&event, &reference).await {
            tracing::warn!(object = %super::key_of(object), "cannot publish event {reason}: {error}");
        }
    }

    /// Whether a run task for `key` is alive.
    pub(crate) fn run_is_alive(&self, key: &str) -> bool {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .is_some_and(|h| !h.is_finished())
    }

    /// Registers the run task of `key`, replacing a finished one.
    pub(crate) fn track_run(&self, key: String, handle: JoinHandle<()>) {
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = runs.insert(key, handle) {
            old.abort();
        }
    }

    /// Stops the run task of `key`, if any.
    pub(crate) fn stop_run(&self, key: &str) {
        if let Some(handle) = self
            .runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key)
        {
            handle.abort();
        }
    }

    /// Stops every run task (on shutdown); the experiments resume from their status later.
    pub fn stop_all_runs(&self) {
        for (_, handle) in self
            .runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
        {
            handle.abort();
        }
    }
}

/// At most `max` bytes of `text`, cut at a character boundary.
pub(crate) fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = Backoff::default();
        let delays: Vec<u64> = (1..=8).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(b.delay(u32::MAX), b.max);
    }

    #[test]
    fn failures_of_objects_that_stopped_failing_are_forgotten() {
        let mut f = Failures::default();
        let t0 = Instant::now();
        let forget = Duration::from_secs(600);
        assert_eq!(f.record("a", t0, forget), 1);
        assert_eq!(f.record("a", t0 + Duration::from_secs(5), forget), 2);
        assert_eq!(f.record("b", t0 + Duration::from_secs(10), forget), 1);
        f.forget("b");
        assert_eq!(f.entries.len(), 1);
        // `a` was deleted and never failed again: the next failure of another object drops it.
        assert_eq!(f.record("c", t0 + Duration::from_secs(700), forget), 1);
        assert_eq!(f.entries.keys().collect::<Vec<_>>(), ["c"]);
        // Failing on keeps the count.
        assert_eq!(f.record("c", t0 + Duration::from_secs(1000), forget), 2);
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        assert_eq!(truncate("héllo".to_owned(), 2), "h");
        assert_eq!(truncate("abc".to_owned(), 10), "abc");
    }

    #[test]
    fn contexts_can_be_shared() {
        fn shared<T: Send + Sync>() {}
        shared::<std::sync::Arc<Context>>();
    }
}
