//! The in-memory store: for tests and throwaway runs. Nothing survives the process.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use phoenix_core::experiment::{Experiment, ExperimentEvent, ExperimentId};
use phoenix_core::store::{ExperimentStore, ListQuery, Page};

use crate::pipeline::{
    PipelineOrigin, PipelineRevision, PipelineStore, PipelineTarget, RevisionState, RollbackGap,
    check_activation,
};
use crate::record::{check_event_subject, check_experiment, cursor_columns, into_page};
use crate::user::{NewUser, User, UserStore, UserUpdate};
use crate::{Error, Result};

/// Keeps experiments, users and pipelines in process memory, with the same checks and
/// semantics as the database stores: version-guarded updates, events written together with
/// the change, the same listing order and paging.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    experiments: HashMap<ExperimentId, Stored>,
    /// Every experiment's listing position, in listing order.
    order: BTreeSet<(DateTime<Utc>, ExperimentId)>,
    users: BTreeMap<String, User>,
    pipelines: HashMap<PipelineTarget, Vec<PipelineRevision>>,
}

#[derive(Debug)]
struct Stored {
    experiment: Experiment,
    events: Vec<ExperimentEvent>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every change is made completely before the lock is released and nothing in between
    /// can panic, so a poisoned lock still guards consistent data.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn not_found(id: &ExperimentId) -> phoenix_core::Error {
    phoenix_core::Error::NotFound { id: id.clone() }
}

#[async_trait]
impl ExperimentStore for MemoryStore {
    async fn create(
        &self,
        experiment: &Experiment,
        event: &ExperimentEvent,
    ) -> phoenix_core::Result<()> {
        check_experiment(experiment, experiment.version)?;
        check_event_subject(event, Some(&experiment.id))?;
        let mut state = self.state();
        if state.experiments.contains_key(&experiment.id) {
            return Err(phoenix_core::Error::AlreadyExists {
                id: experiment.id.clone(),
            });
        }
        state
            .order
            .insert((experiment.created_at, experiment.id.clone()));
        state.experiments.insert(
            experiment.id.clone(),
            Stored {
                experiment: experiment.clone(),
                events: vec![event.clone()],
            },
        );
        Ok(())
    }

    async fn get(&self, id: &ExperimentId) -> phoenix_core::Result<Experiment> {
        let state = self.state();
        let stored = state.experiments.get(id).ok_or_else(|| not_found(id))?;
        Ok(stored.experiment.clone())
    }

    async fn list(&self, query: &ListQuery) -> phoenix_core::Result<Page> {
        if let Some(after) = &query.after {
            // The same refusal as the database stores for a cursor they cannot compare.
            cursor_columns(after)?;
        }
        let state = self.state();
        let start = match &query.after {
            Some(after) => Bound::Excluded((after.created_at, after.id.clone())),
            None => Bound::Unbounded,
        };
        let fetch = query.effective_limit() as usize + 1;
        let items = state
            .order
            .range((start, Bound::Unbounded))
            .filter_map(|(_, id)| state.experiments.get(id))
            .map(|stored| &stored.experiment)
            .filter(|e| query.matches(e))
            .take(fetch)
            .cloned()
            .collect();
        Ok(into_page(items, query))
    }

    async fn update(
        &self,
        experiment: &Experiment,
        event: &ExperimentEvent,
    ) -> phoenix_core::Result<Experiment> {
        let next_version = experiment.version.saturating_add(1);
        check_experiment(experiment, next_version)?;
        check_event_subject(event, Some(&experiment.id))?;
        let mut state = self.state();
        let stored = state
            .experiments
            .get_mut(&experiment.id)
            .ok_or_else(|| not_found(&experiment.id))?;
        if stored.experiment.version != experiment.version {
            return Err(phoenix_core::Error::Conflict {
                id: experiment.id.clone(),
                expected: experiment.version,
                found: stored.experiment.version,
            });
        }
        let moved_from = (stored.experiment.created_at != experiment.created_at)
            .then(|| (stored.experiment.created_at, experiment.id.clone()));
        stored.experiment = Experiment {
            version: next_version,
            ..experiment.clone()
        };
        stored.events.push(event.clone());
        let saved = stored.experiment.clone();
        if let Some(old) = moved_from {
            state.order.remove(&old);
            state.order.insert((saved.created_at, saved.id.clone()));
        }
        Ok(saved)
    }

    async fn append_event(&self, event: &ExperimentEvent) -> phoenix_core::Result<()> {
        check_event_subject(event, None)?;
        let mut state = self.state();
        let id = &event.experiment_id;
        let stored = state.experiments.get_mut(id).ok_or_else(|| not_found(id))?;
        stored.events.push(event.clone());
        Ok(())
    }

    async fn events(&self, id: &ExperimentId) -> phoenix_core::Result<Vec<ExperimentEvent>> {
        let state = self.state();
        let stored = state.experiments.get(id).ok_or_else(|| not_found(id))?;
        Ok(stored.events.clone())
    }

    async fn delete(&self, id: &ExperimentId) -> phoenix_core::Result<()> {
        let mut state = self.state();
        let stored = state.experiments.remove(id).ok_or_else(|| not_found(id))?;
        state
            .order
            .remove(&(stored.experiment.created_at, id.clone()));
        Ok(())
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn create_user(&self, user: &NewUser) -> Result<User> {
        user.validate()?;
        let mut state = self.state();
        if state.users.contains_key(&user.name) {
            return Err(Error::UserExists {
                name: user.name.clone(),
            });
        }
        let now = Utc::now();
        let created = User {
            name: user.name.clone(),
            password_hash: user.password_hash.clone(),
            role: user.role,
            disabled: false,
            created_at: now,
            updated_at: now,
        };
        state.users.insert(user.name.clone(), created.clone());
        Ok(created)
    }

    async fn user(&self, name: &str) -> Result<User> {
        let state = self.state();
        state
            .users
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UserNotFound {
                name: name.to_owned(),
            })
    }

    async fn users(&self) -> Result<Vec<User>> {
        Ok(self.state().users.values().cloned().collect())
    }

    async fn update_user(&self, name: &str, update: &UserUpdate) -> Result<User> {
        update.validate()?;
        let mut state = self.state();
        let user = state
            .users
            .get_mut(name)
            .ok_or_else(|| Error::UserNotFound {
                name: name.to_owned(),
            })?;
        if let Some(hash) = &update.password_hash {
            user.password_hash.clone_from(hash);
        }
        if let Some(role) = update.role {
            user.role = role;
        }
        user.updated_at = Utc::now();
        Ok(user.clone())
    }

    async fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<User> {
        let mut state = self.state();
        let user = state
            .users
            .get_mut(name)
            .ok_or_else(|| Error::UserNotFound {
                name: name.to_owned(),
            })?;
        user.disabled = disabled;
        user.updated_at = Utc::now();
        Ok(user.clone())
    }

    async fn user_count(&self) -> Result<u64> {
        Ok(self.state().users.len() as u64)
    }
}

#[async_trait]
impl PipelineStore for MemoryStore {
    async fn activate(
        &self,
        target: &PipelineTarget,
        config: &str,
        origin: Option<&PipelineOrigin>,
    ) -> Result<PipelineRevision> {
        check_activation(target, config)?;
        let mut state = self.state();
        let revisions = state.pipelines.entry(target.clone()).or_default();
        let now = Utc::now();
        for active in revisions
            .iter_mut()
            .filter(|r| r.state == RevisionState::Active)
        {
            active.state = RevisionState::Superseded;
            active.updated_at = now;
        }
        let revision = PipelineRevision {
            target: target.clone(),
            revision: revisions.last().map_or(1, |r| r.revision + 1),
            config: config.to_owned(),
            origin: origin.cloned(),
            state: RevisionState::Active,
            created_at: now,
            updated_at: now,
        };
        revisions.push(revision.clone());
        Ok(revision)
    }

    async fn active(&self, target: &PipelineTarget) -> Result<Option<PipelineRevision>> {
        let state = self.state();
        Ok(state.pipelines.get(target).and_then(|revisions| {
            revisions
                .iter()
                .find(|r| r.state == RevisionState::Active)
                .cloned()
        }))
    }

    async fn history(&self, target: &PipelineTarget) -> Result<Vec<PipelineRevision>> {
        let state = self.state();
        let revisions = state.pipelines.get(target);
        Ok(revisions.map_or_else(Vec::new, |r| r.iter().rev().cloned().collect()))
    }

    async fn rollback(&self, target: &PipelineTarget) -> Result<PipelineRevision> {
        target.validate()?;
        let mut state = self.state();
        let nothing = |reason| Error::NothingToRollBack {
            target: target.clone(),
            reason,
        };
        let revisions = state
            .pipelines
            .get_mut(target)
            .ok_or_else(|| nothing(RollbackGap::NoActivePipeline))?;
        let active = revisions
            .iter()
            .position(|r| r.state == RevisionState::Active)
            .ok_or_else(|| nothing(RollbackGap::NoActivePipeline))?;
        let restore = revisions[..active]
            .iter()
            .rposition(|r| r.state != RevisionState::RolledBack)
            .ok_or_else(|| nothing(RollbackGap::NoEarlierPipeline))?;
        let now = Utc::now();
        revisions[active].state = RevisionState::RolledBack;
        revisions[active].updated_at = now;
        revisions[restore].state = RevisionState::Active;
        revisions[restore].updated_at = now;
        Ok(revisions[restore].clone())
    }
}
