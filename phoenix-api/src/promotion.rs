//! Promotion with a GitOps repository: the local executor records the promoted config as the
//! target's active pipeline in the pipeline store; this wrapper also commits it to the Git
//! working tree through phoenix-generator's [`GitOpsRepo`], and on rollback commits the
//! config that the pipeline store restored.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use phoenix::local::LocalExecutor;
use phoenix_core::executor::Executor;
use phoenix_core::experiment::{Experiment, PipelineRef};
use phoenix_core::measurement::{Noise, VariantRole, Window, WindowMeasurement};
use phoenix_core::store::ExperimentStore;
use phoenix_generator::catalog::{self, Rendered};
use phoenix_generator::gitops::GitOpsRepo;
use phoenix_store::{
    PipelineOrigin, PipelineRevision, PipelineStore, PipelineTarget, RevisionState, Store,
};

use crate::{Error, Result};

/// The executor the server runs experiments with: the local executor recording promotions in
/// `store`, plus commits to the GitOps repository at `gitops` when one is given.
pub(crate) fn executor(store: &Store, gitops: Option<&Path>) -> Result<Arc<dyn Executor>> {
    let local = LocalExecutor::new().with_pipeline_store(Arc::new(store.clone()));
    match gitops {
        None => Ok(Arc::new(local)),
        Some(path) => {
            let repo = GitOpsRepo::open(path).map_err(|e| {
                Error::Config(format!("the GitOps repository {}: {e}", path.display()))
            })?;
            Ok(Arc::new(GitOpsExecutor {
                local,
                repo,
                store: store.clone(),
                git: tokio::sync::Mutex::new(()),
            }))
        }
    }
}

/// The local executor, committing promotions and rollbacks to a GitOps repository.
struct GitOpsExecutor {
    local: LocalExecutor,
    repo: GitOpsRepo,
    store: Store,
    /// Held across a promotion's or rollback's record in the pipeline store and its commit,
    /// so that the repository and the store change in the same order.
    git: tokio::sync::Mutex<()>,
}

/// Marks an executor error as a failure of the server's side (the repository), not a refusal
/// of the request: the API answers it with 500 and no details.
#[derive(Debug, thiserror::Error)]
#[error("the GitOps repository could not be written")]
pub(crate) struct RepositoryFailure;

/// A promotion error for the client: it names the experiment, never the repository's path
/// (which goes to the log).
fn commit_failed(
    action: &str,
    experiment: &Experiment,
    error: &dyn std::fmt::Display,
) -> phoenix_core::Error {
    tracing::error!(id = %experiment.id, %error, "{action}: committing to the GitOps repository failed");
    phoenix_core::Error::Executor {
        message: format!(
            "{action}: committing to the GitOps repository failed; the server log has the details"
        ),
        source: Some(Box::new(RepositoryFailure)),
    }
}

/// Renders `role`'s template of `experiment` exactly as the local executor records it (see
/// [`phoenix::local::effective_pipeline`]). `None` for an inline config, which has no
/// template to render.
fn render_variant(
    experiment: &Experiment,
    role: VariantRole,
) -> phoenix_core::Result<Option<Rendered>> {
    let PipelineRef::Template { name, parameters } =
        phoenix::local::effective_pipeline(experiment, role)
    else {
        return Ok(None);
    };
    let template = name
        .parse()
        .map_err(|e| phoenix_core::Error::executor(format!("{role} variant: {e}")))?;
    catalog::render_template(template, &parameters)
        .map(Some)
        .map_err(|e| phoenix_core::Error::executor(format!("{role} variant: {e}")))
}

impl GitOpsExecutor {
    /// The Git directory name of a target: `local`, or `k8s-<namespace>`.
    fn target_dir(target: &PipelineTarget) -> String {
        target.to_string().replace('/', "-")
    }

    /// Renders `revision` for the repository from the experiment variant it came from.
    async fn render_revision(
        &self,
        revision: &PipelineRevision,
        action: &str,
        experiment: &Experiment,
    ) -> phoenix_core::Result<Rendered> {
        let Some(origin) = &revision.origin else {
            return Err(phoenix_core::Error::executor(format!(
                "{action}: the restored pipeline of target {} did not come from an experiment, so it cannot be rendered for the GitOps repository",
                revision.target
            )));
        };
        let source = if origin.experiment_id == experiment.id {
            experiment.clone()
        } else {
            self.store.get(&origin.experiment_id).await?
        };
        let rendered = render_variant(&source, origin.variant)?.ok_or_else(|| {
            phoenix_core::Error::executor(format!(
                "{action}: the {} variant of experiment {} is an inline config; GitOps promotion needs a catalog template",
                origin.variant, source.id
            ))
        })?;
        Ok(rendered)
    }

    /// The revision a rollback of `experiment` would restore, if it would change anything:
    /// the newest earlier revision not rolled back, when the experiment's candidate is the
    /// active one (the local executor's rule).
    async fn to_restore(
        &self,
        experiment: &Experiment,
        target: &PipelineTarget,
    ) -> phoenix_core::Result<Option<PipelineRevision>> {
        let ours = PipelineOrigin {
            experiment_id: experiment.id.clone(),
            variant: VariantRole::Candidate,
        };
        let history = self
            .store
            .history(target)
            .await
            .map_err(phoenix_core::Error::from)?;
        let Some(active) = history
            .iter()
            .position(|r| r.state == RevisionState::Active)
        else {
            return Ok(None);
        };
        if history[active].origin.as_ref() != Some(&ours) {
            return Ok(None);
        }
        Ok(history[active + 1..]
            .iter()
            .find(|r| r.state != RevisionState::RolledBack)
            .cloned())
    }

    async fn commit(
        &self,
        target: &PipelineTarget,
        rendered: &Rendered,
        action: &str,
        experiment: &Experiment,
    ) -> phoenix_core::Result<()> {
        let repo = self.repo.clone();
        let dir = Self::target_dir(target);
        let rendered = rendered.clone();
        let commit = tokio::task::spawn_blocking(move || repo.promote(&dir, &rendered))
            .await
            .map_err(|e| commit_failed(action, experiment, &e))?
            .map_err(|e| commit_failed(action, experiment, &e))?;
        tracing::info!(
            id = %experiment.id,
            commit = commit.hash.as_deref().unwrap_or("(unchanged)"),
            "{action}: committed to the GitOps repository"
        );
        Ok(())
    }
}

#[async_trait]
impl Executor for GitOpsExecutor {
    fn noise(&self) -> Noise {
        self.local.noise()
    }

    async fn prepare(&self, experiment: &Experiment) -> phoenix_core::Result<()> {
        self.local.prepare(experiment).await
    }

    async fn start(&self, experiment: &Experiment) -> phoenix_core::Result<()> {
        self.local.start(experiment).await
    }

    async fn measure(
        &self,
        experiment: &Experiment,
        window: Window,
    ) -> phoenix_core::Result<WindowMeasurement> {
        self.local.measure(experiment, window).await
    }

    async fn tear_down(&self, experiment: &Experiment) -> phoenix_core::Result<()> {
        self.local.tear_down(experiment).await
    }

    /// Refuses an inline candidate before anything changes; records the promotion in the
    /// pipeline store, then commits it. A failed commit undoes the record.
    async fn promote(&self, experiment: &Experiment) -> phoenix_core::Result<()> {
        let action = "promotion";
        let rendered = render_variant(experiment, VariantRole::Candidate)?.ok_or_else(|| {
            phoenix_core::Error::executor(
                "promotion: the candidate is an inline config; GitOps promotion needs a catalog template",
            )
        })?;
        let _git = self.git.lock().await;
        self.local.promote(experiment).await?;
        let target = PipelineTarget::from(&experiment.spec.target);
        if let Err(error) = self.commit(&target, &rendered, action, experiment).await {
            if let Err(undo) = self.local.rollback(experiment).await {
                tracing::error!(id = %experiment.id, %undo, "undoing the promotion record failed");
            }
            return Err(error);
        }
        Ok(())
    }

    /// Renders the pipeline a rollback restores first (refusing, with nothing changed, one
    /// that cannot be rendered), restores it in the pipeline store, then commits it. A failed
    /// commit undoes the restore by promoting the candidate again.
    async fn rollback(&self, experiment: &Experiment) -> phoenix_core::Result<()> {
        let action = "rollback";
        let target = PipelineTarget::from(&experiment.spec.target);
        let _git = self.git.lock().await;
        let Some(restore) = self.to_restore(experiment, &target).await? else {
            // Never promoted, or replaced since: the local executor changes nothing.
            return self.local.rollback(experiment).await;
        };
        let rendered = self.render_revision(&restore, action, experiment).await?;
        self.local.rollback(experiment).await?;
        let restored = self
            .store
            .active(&target)
            .await
            .map_err(phoenix_core::Error::from)?;
        let rendered = match restored {
            Some(r) if r.revision == restore.revision => rendered,
            Some(r) => self.render_revision(&r, action, experiment).await?,
            None => return Ok(()),
        };
        if let Err(error) = self.commit(&target, &rendered, action, experiment).await {
            if let Err(undo) = self.local.promote(experiment).await {
                tracing::error!(id = %experiment.id, %undo, "undoing the rollback record failed");
            }
            return Err(error);
        }
        Ok(())
    }
}
