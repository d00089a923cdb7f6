//! The experiment store of the operator: a `PhoenixExperiment`'s status subresource.
//!
//! phoenix-core's controller keeps an experiment in an
//! [`ExperimentStore`]. In the cluster the record lives
//! where users look for it, in the status of the custom resource: phase, record version,
//! windows, results, failure and the latest events. [`StatusStore`] implements the store over
//! that status, so that an operator that restarts resumes every experiment from its status,
//! and optimistic concurrency comes from Kubernetes itself: every write carries the
//! resourceVersion it read as a precondition, and a write based on an older record version
//! is refused as a conflict.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use phoenix_core::experiment::{
    EventKind, Experiment, ExperimentEvent, ExperimentId, ExperimentStatus,
};
use phoenix_core::phase::Phase;
use phoenix_core::store::{ExperimentStore, ListQuery, Page};
use phoenix_core::{Error as CoreError, Result as CoreResult};
use serde_json::json;

use crate::crd::{HistoryEntry, PhoenixExperiment, PhoenixExperimentStatus};
use crate::objects::experiment_spec;
use crate::reconciler::Context;

/// The most events kept in the status; older ones remain as Kubernetes events.
pub const MAX_HISTORY: usize = 50;

/// How often a write that only appends an event is retried on a conflict.
const APPEND_RETRIES: usize = 8;

/// An [`ExperimentStore`] holding the one experiment of one `PhoenixExperiment` in its status.
pub struct StatusStore {
    api: Api<PhoenixExperiment>,
    name: String,
    ctx: Arc<Context>,
}

fn store_error(what: &str, error: impl std::error::Error + Send + Sync + 'static) -> CoreError {
    CoreError::store(format!("{what}: {error}"), error)
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.is_conflict())
}

/// The recommendation in one word.
fn recommendation_word(experiment: &Experiment) -> Option<String> {
    experiment
        .status
        .results
        .as_ref()
        .map(|r| capitalized(r.recommendation.as_str()))
}

/// A phase as an event reason (`RolledBack`).
pub(crate) fn phase_reason(phase: Phase) -> String {
    capitalized(phase.as_str())
}

/// `s` with its first letter upper-case (`rolledBack` → `RolledBack`).
fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// The experiment record kept in a resource's status, if it has one.
///
/// # Errors
///
/// [`Error::Store`](phoenix_core::Error::Store) when the record or the spec does not read.
pub fn experiment_from(resource: &PhoenixExperiment) -> CoreResult<Option<Experiment>> {
    let Some(status) = resource.status.as_ref() else {
        return Ok(None);
    };
    let (Some(id), Some(phase)) = (&status.experiment_id, status.phase) else {
        return Ok(None);
    };
    let id: ExperimentId = id
        .parse()
        .map_err(|e| store_error("status.experimentId", e))?;
    let spec = experiment_spec(resource).map_err(|e| CoreError::Store {
        message: e.to_string(),
        source: None,
    })?;
    let now = Utc::now();
    Ok(Some(Experiment {
        id,
        version: status.record_version,
        spec,
        status: ExperimentStatus {
            phase,
            windows: status.windows.clone(),
            results: status.results.clone(),
            failure: status.failure.clone(),
        },
        created_at: status.created_at.unwrap_or(now),
        updated_at: status.updated_at.unwrap_or(now),
    }))
}

fn event_from(id: &ExperimentId, entry: &HistoryEntry) -> ExperimentEvent {
    let kind = match (entry.from, entry.to) {
        (Some(from), Some(to)) => EventKind::Transition {
            from,
            to,
            event: entry.event.clone(),
        },
        _ if entry.event == "created" => EventKind::Created,
        _ => EventKind::Updated,
    };
    ExperimentEvent {
        experiment_id: id.clone(),
        at: entry.at,
        actor: entry.actor.clone(),
        kind,
        message: entry.message.clone(),
    }
}

fn with_event(mut history: Vec<HistoryEntry>, event: &ExperimentEvent) -> Vec<HistoryEntry> {
    history.push(HistoryEntry::from(event));
    let excess = history.len().saturating_sub(MAX_HISTORY);
    history.drain(..excess);
    history
}

impl StatusStore {
    /// The store of the experiment `name` in the namespace of `api`.
    pub fn new(api: Api<PhoenixExperiment>, name: impl Into<String>, ctx: Arc<Context>) -> Self {
        Self {
            api,
            name: name.into(),
            ctx,
        }
    }

    async fn fetch(&self) -> CoreResult<PhoenixExperiment> {
        self.api
            .get(&self.name)
            .await
            .map_err(|e| store_error(&format!("reading PhoenixExperiment {}", self.name), e))
    }

    fn record_status(resource: &PhoenixExperiment) -> PhoenixExperimentStatus {
        resource.status.clone().unwrap_or_default()
    }

    fn check_id(&self, status: &PhoenixExperimentStatus, id: &ExperimentId) -> CoreResult<()> {
        if status.experiment_id.as_deref() == Some(id.as_str()) {
            Ok(())
        } else {
            Err(CoreError::NotFound { id: id.clone() })
        }
    }

    /// Writes `status` (a JSON object of status fields) if the resource is still at
    /// `resource_version`.
    async fn write(
        &self,
        resource_version: Option<String>,
        status: serde_json::Value,
    ) -> Result<PhoenixExperiment, kube::Error> {
        let patch = json!({
            "metadata": {"resourceVersion": resource_version},
            "status": status,
        });
        self.api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
    }

    async fn publish_transition(&self, resource: &PhoenixExperiment, event: &ExperimentEvent) {
        if let EventKind::Transition { from, to, .. } = &event.kind
            && from != to
        {
            let type_ = if *to == Phase::Failed {
                EventType::Warning
            } else {
                EventType::Normal
            };
            self.ctx
                .publish(
                    resource,
                    type_,
                    &phase_reason(*to),
                    "Transition",
                    event.message.clone(),
                )
                .await;
        }
    }
}

#[async_trait]
impl ExperimentStore for StatusStore {
    async fn create(&self, experiment: &Experiment, event: &ExperimentEvent) -> CoreResult<()> {
        let resource = self.fetch().await?;
        let status = Self::record_status(&resource);
        if status.experiment_id.is_some() {
            return Err(CoreError::AlreadyExists {
                id: experiment.id.clone(),
            });
        }
        let history = with_event(Vec::new(), event);
        let fields = json!({
            "experimentId": experiment.id,
            "recordVersion": experiment.version,
            "phase": experiment.status.phase,
            "windowsMeasured": experiment.status.windows.len(),
            "createdAt": experiment.created_at,
            "updatedAt": experiment.updated_at,
            "history": history,
        });
        match self.write(resource.resource_version(), fields).await {
            Ok(_) => Ok(()),
            Err(e) if is_conflict(&e) => Err(CoreError::AlreadyExists {
                id: experiment.id.clone(),
            }),
            Err(e) => Err(store_error("writing the experiment record", e)),
        }
    }

    async fn get(&self, id: &ExperimentId) -> CoreResult<Experiment> {
        let resource = self.fetch().await?;
        self.check_id(&Self::record_status(&resource), id)?;
        experiment_from(&resource)?.ok_or_else(|| CoreError::NotFound { id: id.clone() })
    }

    async fn list(&self, query: &ListQuery) -> CoreResult<Page> {
        let resource = self.fetch().await?;
        let items = experiment_from(&resource)?
            .into_iter()
            .filter(|e| query.matches(e))
            .collect();
        Ok(Page { items, next: None })
    }

    async fn update(
        &self,
        experiment: &Experiment,
        event: &ExperimentEvent,
    ) -> CoreResult<Experiment> {
        let resource = self.fetch().await?;
        let status = Self::record_status(&resource);
        self.check_id(&status, &experiment.id)?;
        let conflict = |found| CoreError::Conflict {
            id: experiment.id.clone(),
            expected: experiment.version,
            found,
        };
        if status.record_version != experiment.version {
            return Err(conflict(status.record_version));
        }
        let version = experiment.version.saturating_add(1);
        let mut fields = json!({
            "recordVersion": version,
            "phase": experiment.status.phase,
            "windowsMeasured": experiment.status.windows.len(),
            "windows": experiment.status.windows,
            "results": experiment.status.results,
            "recommendation": recommendation_word(experiment),
            "failure": experiment.status.failure,
            "updatedAt": experiment.updated_at,
            "history": with_event(status.history, event),
        });
        if let EventKind::Transition { from, to, .. } = &event.kind
            && *to == Phase::Running
            && *from != Phase::Running
        {
            fields["runStartedAt"] = json!(event.at);
        }
        match self.write(resource.resource_version(), fields).await {
            Ok(written) => {
                self.publish_transition(&written, event).await;
                let mut saved = experiment.clone();
                saved.version = version;
                Ok(saved)
            }
            Err(e) if is_conflict(&e) => {
                let found = Self::record_status(&self.fetch().await?).record_version;
                Err(conflict(found))
            }
            Err(e) => Err(store_error("writing the experiment record", e)),
        }
    }

    async fn append_event(&self, event: &ExperimentEvent) -> CoreResult<()> {
        for _ in 0..APPEND_RETRIES {
            let resource = self.fetch().await?;
            let status = Self::record_status(&resource);
            self.check_id(&status, &event.experiment_id)?;
            let fields = json!({"history": with_event(status.history, event)});
            match self.write(resource.resource_version(), fields).await {
                Ok(_) => {
                    self.ctx
                        .publish(
                            &resource,
                            EventType::Normal,
                            "Updated",
                            "Record",
                            event.message.clone(),
                        )
                        .await;
                    return Ok(());
                }
                Err(e) if is_conflict(&e) => {}
                Err(e) => return Err(store_error("appending an event", e)),
            }
        }
        Err(CoreError::Store {
            message: format!("appending an event: still conflicting after {APPEND_RETRIES} tries"),
            source: None,
        })
    }

    async fn events(&self, id: &ExperimentId) -> CoreResult<Vec<ExperimentEvent>> {
        let resource = self.fetch().await?;
        let status = Self::record_status(&resource);
        self.check_id(&status, id)?;
        Ok(status.history.iter().map(|h| event_from(id, h)).collect())
    }

    async fn delete(&self, id: &ExperimentId) -> CoreResult<()> {
        let resource = self.fetch().await?;
        self.check_id(&Self::record_status(&resource), id)?;
        let fields = json!({
            "experimentId": null, "recordVersion": 0, "phase": null, "windowsMeasured": 0,
            "windows": null, "results": null, "recommendation": null, "failure": null,
            "history": null, "createdAt": null, "updatedAt": null, "decision": null,
        });
        self.write(resource.resource_version(), fields)
            .await
            .map(|_| ())
            .map_err(|e| store_error("deleting the experiment record", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_bounded_and_reads_back() {
        let id: ExperimentId = "exp-abcd1234".parse().unwrap();
        let mut history = Vec::new();
        for i in 0..(MAX_HISTORY + 5) {
            let event = ExperimentEvent {
                experiment_id: id.clone(),
                at: Utc::now(),
                actor: "me".to_owned(),
                kind: EventKind::Transition {
                    from: Phase::Running,
                    to: Phase::Running,
                    event: "windowMeasured".to_owned(),
                },
                message: format!("window {i}"),
            };
            history = with_event(history, &event);
        }
        assert_eq!(history.len(), MAX_HISTORY);
        assert_eq!(history[0].message, "window 5");
        let back = event_from(&id, &history[0]);
        assert!(matches!(
            back.kind,
            EventKind::Transition {
                from: Phase::Running,
                ..
            }
        ));
        assert_eq!(phase_reason(Phase::RolledBack), "RolledBack");
    }
}
