//! Experiment runs in background tasks: one tokio task per running experiment, driving it
//! with the controller until its run is over.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use phoenix_core::controller::ExperimentController;
use phoenix_core::experiment::ExperimentId;
use tokio::task::JoinHandle;

/// The background runs of this server.
#[derive(Clone)]
pub(crate) struct Runs {
    controller: ExperimentController,
    tasks: Arc<Mutex<HashMap<ExperimentId, JoinHandle<()>>>>,
    /// The most runs started at once through [`Runs::ensure_capacity`].
    max: usize,
}

impl Runs {
    pub(crate) fn new(controller: ExperimentController, max: usize) -> Self {
        Self {
            controller,
            tasks: Arc::new(Mutex::new(HashMap::new())),
            max,
        }
    }

    /// [`Error::Conflict`](crate::Error::Conflict) when this server already runs as many
    /// experiments as it may; resumed runs do not ask.
    pub(crate) fn ensure_capacity(&self) -> crate::Result<()> {
        let active = self.active();
        if active >= self.max {
            return Err(crate::Error::Conflict(format!(
                "this server already runs {active} experiments, its limit; start this one when one of them is over"
            )));
        }
        Ok(())
    }

    /// Stops the task driving `id`, if any, and waits for it to end: for a run whose
    /// cancellation is persisted already.
    pub(crate) async fn cancel(&self, id: &ExperimentId) {
        let task = self
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        if let Some(task) = task {
            task.abort();
            // A cancelled task's JoinError says only that it was cancelled.
            let _ = task.await;
        }
    }

    /// Drives the experiment in a background task, unless one drives it already.
    pub(crate) fn spawn(&self, id: ExperimentId) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.retain(|_, task| !task.is_finished());
        if tasks.contains_key(&id) {
            return;
        }
        let controller = self.controller.clone();
        let registry = Arc::clone(&self.tasks);
        let key = id.clone();
        let task = tokio::spawn(async move {
            match controller.run(&id).await {
                Ok(experiment) => tracing::info!(
                    %id,
                    phase = %experiment.status.phase,
                    failure = experiment.status.failure.as_deref().unwrap_or(""),
                    "experiment run over"
                ),
                // The experiment stays as last persisted and is resumed on the next start.
                Err(error) => {
                    tracing::error!(%id, %error, "experiment run stopped by a store error");
                }
            }
            registry
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
        });
        tasks.insert(key, task);
    }

    /// How many runs are in progress.
    pub(crate) fn active(&self) -> usize {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.retain(|_, task| !task.is_finished());
        tasks.len()
    }

    /// Stops every run where it is and waits for each task to end, so that none writes to
    /// the store after this returns; each run is resumed from its persisted phase on the
    /// next start.
    pub(crate) async fn abort_all(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        for task in tasks.values() {
            task.abort();
        }
        for (_, task) in tasks {
            let _ = task.await;
        }
    }
}
