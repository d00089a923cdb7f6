//! The `PhoenixExperiment` reconciler.

use std::sync::Arc;

use chrono::Utc;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use phoenix_core::controller::ExperimentController;
use phoenix_core::executor::Executor;
use phoenix_core::experiment::{EventKind, Experiment, ExperimentId};
use phoenix_core::measurement::VariantRole;
use phoenix_core::phase::Phase;
use phoenix_core::store::ExperimentStore;

use super::status::{self, Health, patch_status, reconcile_with_finalizer, set_health};
use super::{Context, key_of};
use crate::crd::{Decision, DecisionRecord, PhoenixExperiment, experiment_id_from_uid};
use crate::executor::KubernetesExecutor;
use crate::objects::{experiment_spec, render_pipeline, variant_pipeline};
use crate::store::StatusStore;
use crate::{Error, Result};

/// The finalizer of experiments: deletion stops the run the operator drives in-process and
/// tears the variants down through the executor (owner references would remove the
/// pipelines, but not stop the run, which would then fail trying to measure them).
pub const EXPERIMENT_FINALIZER: &str = "phoenix.io/experiment-cleanup";

/// The actor named in the experiment's events for decisions taken through the spec.
pub const SPEC_ACTOR: &str = "spec.decision";

/// The experiment id of a resource: the one in its status, or one derived from its uid.
///
/// # Errors
///
/// [`Error::Invalid`] on `metadata.uid` when the resource has neither.
pub fn experiment_id(experiment: &PhoenixExperiment) -> Result<ExperimentId> {
    if let Some(id) = experiment
        .status
        .as_ref()
        .and_then(|s| s.experiment_id.as_deref())
        && let Ok(id) = id.parse()
    {
        return Ok(id);
    }
    experiment
        .uid()
        .as_deref()
        .and_then(experiment_id_from_uid)
        .ok_or_else(|| Error::invalid("metadata.uid", "missing; cannot derive an experiment id"))
}

/// Checks everything the operator can check before running: the spec, and that both
/// variants render. Errors name the field under `spec.experiment`.
fn check(experiment: &PhoenixExperiment, id: &ExperimentId) -> Result<()> {
    let spec = experiment_spec(experiment)?;
    for role in VariantRole::BOTH {
        let pipeline = variant_pipeline(experiment, &spec, id, role)?;
        render_pipeline(&pipeline.spec, id.as_str()).map_err(|e| match e {
            Error::Invalid { field, message } => {
                let field = match field.strip_prefix("spec.") {
                    Some("template") => format!("spec.experiment.{role}.template"),
                    Some(rest) => format!("spec.experiment.{role}.{rest}"),
                    None => field,
                };
                Error::Invalid { field, message }
            }
            other => other,
        })?;
    }
    Ok(())
}

/// Reconciles one experiment: checks the spec, keeps a controller running it while its run
/// is not over, carries out a decision set in the spec, and writes the conditions.
///
/// # Errors
///
/// API errors, for [`error_policy`](super::error_policy) to retry.
pub async fn reconcile_experiment(
    experiment: Arc<PhoenixExperiment>,
    ctx: Arc<Context>,
) -> Result<Action> {
    let key = key_of(experiment.as_ref());
    let key = key.as_str();
    let ctx = &ctx;
    reconcile_with_finalizer(
        experiment,
        ctx,
        EXPERIMENT_FINALIZER,
        |e, api, _| async move { apply(e, &api, ctx, key).await },
        |e, _, _| async move { cleanup(e, ctx, key).await },
    )
    .await
}

fn controller(
    resource: &PhoenixExperiment,
    api: &Api<PhoenixExperiment>,
    ctx: &Arc<Context>,
) -> ExperimentController {
    let store: Arc<dyn ExperimentStore> = Arc::new(StatusStore::new(
        api.clone(),
        resource.name_any(),
        ctx.clone(),
    ));
    let executor: Arc<dyn Executor> =
        Arc::new(KubernetesExecutor::new(ctx.clone(), resource.clone()));
    ExperimentController::new(store, executor)
}

async fn apply(
    resource: Arc<PhoenixExperiment>,
    api: &Api<PhoenixExperiment>,
    ctx: &Arc<Context>,
    key: &str,
) -> Result<Action> {
    let id = experiment_id(&resource)?;
    let recorded = resource.status.as_ref().and_then(|s| s.phase).filter(|_| {
        resource
            .status
            .as_ref()
            .is_some_and(|s| s.experiment_id.is_some())
    });
    if let Err(error) = check(&resource, &id) {
        return match error {
            Error::Invalid { .. } if recorded.is_none_or(Phase::is_active) => {
                degrade(&resource, api, ctx, &error).await
            }
            Error::Invalid { .. } => Ok(Action::await_change()),
            other => Err(other),
        };
    }
    let controller = controller(&resource, api, ctx);
    let phase = match recorded {
        Some(phase) => phase,
        None => {
            let spec = experiment_spec(&resource)?;
            let experiment = Experiment::with_id(id.clone(), spec);
            let event = experiment.event(
                phoenix_core::controller::CONTROLLER_ACTOR,
                EventKind::Created,
                "created from the PhoenixExperiment resource",
            );
            let store = StatusStore::new(api.clone(), resource.name_any(), ctx.clone());
            store.create(&experiment, &event).await?;
            ctx.publish(
                resource.as_ref(),
                EventType::Normal,
                "Created",
                "Create",
                format!("experiment {id} recorded"),
            )
            .await;
            Phase::Pending
        }
    };
    let cancel_now = phase.is_active() && resource.spec.decision == Some(Decision::Cancel);
    let phase = if cancel_now {
        cancel(&resource, api, ctx, &controller, &id, key).await?
    } else {
        phase
    };
    if phase.is_active() {
        if !ctx.run_is_alive(key) {
            let run_id = id.clone();
            let run_key = key.to_owned();
            let handle = tokio::spawn(async move {
                match controller.run(&run_id).await {
                    Ok(done) => {
                        tracing::info!(experiment = %run_key, phase = %done.status.phase, "run over");
                    }
                    Err(error) => tracing::warn!(experiment = %run_key, "run interrupted: {error}"),
                }
            });
            ctx.track_run(key.to_owned(), handle);
        }
    } else if let Some(decision) = resource.spec.decision.filter(|_| !cancel_now) {
        decide(&resource, api, ctx, &controller, &id, phase, decision).await?;
    }
    write_conditions(&resource, api, phase).await?;
    Ok(if phase.is_active() {
        Action::requeue(ctx.timing.waiting.max(std::time::Duration::from_secs(30)))
    } else {
        Action::await_change()
    })
}

/// Cancels a run on request: stops the run task, then has the controller record the
/// cancellation and tear the variants down. Returns the phase afterwards.
async fn cancel(
    resource: &PhoenixExperiment,
    api: &Api<PhoenixExperiment>,
    ctx: &Context,
    controller: &ExperimentController,
    id: &ExperimentId,
    key: &str,
) -> Result<Phase> {
    ctx.stop_run(key);
    let cancelled = controller
        .cancel(id, SPEC_ACTOR, "requested through spec.decision")
        .await?;
    let record = DecisionRecord {
        decision: Decision::Cancel,
        applied: true,
        message: "run cancelled and variants torn down".to_owned(),
        at: Utc::now(),
    };
    patch_status(api, resource, &serde_json::json!({ "decision": record })).await?;
    ctx.publish(
        resource,
        EventType::Normal,
        "DecisionApplied",
        "Decide",
        record.message.clone(),
    )
    .await;
    Ok(cancelled.status.phase)
}

/// Carries out `decision` once per change of it: promotes or rolls back through the
/// controller (which records the phase) and records the outcome in `status.decision`.
async fn decide(
    resource: &PhoenixExperiment,
    api: &Api<PhoenixExperiment>,
    ctx: &Context,
    controller: &ExperimentController,
    id: &ExperimentId,
    phase: Phase,
    decision: Decision,
) -> Result<()> {
    let done = resource
        .status
        .as_ref()
        .and_then(|s| s.decision.as_ref())
        .is_some_and(|r| r.decision == decision);
    if done {
        return Ok(());
    }
    let already = matches!(
        (decision, phase),
        (Decision::Promote, Phase::Promoted) | (Decision::Rollback, Phase::RolledBack)
    );
    let outcome = if already {
        Ok(())
    } else {
        match decision {
            Decision::Promote => controller.promote(id, SPEC_ACTOR).await.map(|_| ()),
            Decision::Rollback => controller.rollback(id, SPEC_ACTOR).await.map(|_| ()),
            Decision::Cancel => Err(phoenix_core::Error::executor(format!(
                "the run is already over (phase {phase})"
            ))),
        }
    };
    let (applied, message) = match outcome {
        Err(phoenix_core::Error::Executor { message, .. }) if decision == Decision::Cancel => {
            (false, format!("refused: {message}"))
        }
        Ok(()) => (true, format!("{} carried out", decision.as_str())),
        Err(phoenix_core::Error::Transition(e)) => (false, format!("refused: {e}")),
        Err(phoenix_core::Error::Invalid(e)) => (false, format!("refused: {e}")),
        Err(e @ phoenix_core::Error::Executor { .. }) => (false, format!("failed: {e}")),
        // A conflict with the run or an API failure: retried with backoff.
        Err(other) => return Err(Error::Core(other)),
    };
    let record = DecisionRecord {
        decision,
        applied,
        message: message.clone(),
        at: Utc::now(),
    };
    patch_status(api, resource, &serde_json::json!({ "decision": record })).await?;
    let type_ = if applied {
        EventType::Normal
    } else {
        EventType::Warning
    };
    let reason = if applied {
        "DecisionApplied"
    } else {
        "DecisionRefused"
    };
    ctx.publish(resource, type_, reason, "Decide", message)
        .await;
    Ok(())
}

/// Ready, Progressing and Degraded from the phase.
async fn write_conditions(
    resource: &PhoenixExperiment,
    api: &Api<PhoenixExperiment>,
    phase: Phase,
) -> Result<()> {
    let failure = resource
        .status
        .as_ref()
        .and_then(|s| s.failure.clone())
        .unwrap_or_default();
    let phase_text = format!("phase {phase}");
    let health = match phase {
        Phase::Pending | Phase::Initializing | Phase::Running | Phase::Analyzing => {
            Health::Progressing("Running", &phase_text)
        }
        Phase::Completed | Phase::Promoted | Phase::RolledBack => Health::Ready(&phase_text),
        Phase::Cancelled => Health::Failed("Cancelled", &phase_text),
        Phase::Failed => Health::Failed("Failed", &failure),
    };
    let mut conditions = resource
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let before = conditions.clone();
    set_health(
        &mut conditions,
        health,
        resource.metadata.generation,
        Utc::now(),
    );
    let generation = resource.status.as_ref().and_then(|s| s.observed_generation);
    if conditions != before || generation != resource.metadata.generation {
        let status = serde_json::json!({
            "conditions": conditions,
            "observedGeneration": resource.metadata.generation,
        });
        patch_status(api, resource, &status).await?;
    }
    Ok(())
}

async fn degrade(
    resource: &PhoenixExperiment,
    api: &Api<PhoenixExperiment>,
    ctx: &Context,
    error: &Error,
) -> Result<Action> {
    let conditions = resource
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    status::degrade(
        resource,
        api,
        ctx,
        &conditions,
        error,
        serde_json::json!({}),
    )
    .await
}

async fn cleanup(
    resource: Arc<PhoenixExperiment>,
    ctx: &Arc<Context>,
    key: &str,
) -> Result<Action> {
    ctx.stop_run(key);
    let executor = KubernetesExecutor::new(ctx.clone(), resource.as_ref().clone());
    if let Some(experiment) = crate::store::experiment_from(&resource)? {
        executor.tear_down(&experiment).await?;
    } else if let Ok(id) = experiment_id(&resource)
        && let Ok(spec) = experiment_spec(&resource)
    {
        executor.tear_down(&Experiment::with_id(id, spec)).await?;
    }
    ctx.publish(
        resource.as_ref(),
        EventType::Normal,
        "Deleted",
        "Cleanup",
        "run stopped and variants torn down".to_owned(),
    )
    .await;
    Ok(Action::await_change())
}
