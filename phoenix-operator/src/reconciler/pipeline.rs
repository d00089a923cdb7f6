//! The `PhoenixProcessPipeline` reconciler.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::Context;
use super::status::{
    Health, degrade, patch_status, reconcile_with_finalizer, rejected, set_health,
};
use crate::crd::{
    ConditionType, Conditions, PhoenixProcessPipeline, PipelineStatus, experiment_id_from_uid,
};
use crate::objects::{
    self, FIELD_MANAGER, RenderedPipeline, config_map, daemon_set, names, render_pipeline,
};
use crate::{Error, Result};

/// The finalizer of pipelines: deletion waits until the collector DaemonSet and its pods are
/// gone (owner references alone delete them in the background, after the pipeline), so that
/// no collector of a deleted pipeline goes on exporting series under the experiment's labels.
pub const PIPELINE_FINALIZER: &str = "phoenix.io/collector-cleanup";

/// How long past its `deletionTimestamp` a pipeline waits for its DaemonSet to go; then the
/// finalizer is released anyway, with a Warning event, so that a stuck DaemonSet (a finalizer
/// of its own, an unreachable node) cannot keep the pipeline forever.
pub const CLEANUP_BOUND: std::time::Duration = std::time::Duration::from_secs(600);

/// The experiment id of a pipeline: `spec.experimentId`, or one derived from its uid.
///
/// # Errors
///
/// [`Error::Invalid`] on `spec.experimentId` when it is not `exp-` + 8 lowercase letters or
/// digits, or on `metadata.uid` when there is neither.
pub fn pipeline_experiment_id(pipeline: &PhoenixProcessPipeline) -> Result<String> {
    match &pipeline.spec.experiment_id {
        Some(id) => id
            .parse::<phoenix_core::experiment::ExperimentId>()
            .map(|id| id.to_string())
            .map_err(|e| Error::invalid("spec.experimentId", e.to_string())),
        None => pipeline
            .uid()
            .as_deref()
            .and_then(experiment_id_from_uid)
            .map(|id| id.to_string())
            .ok_or_else(|| {
                Error::invalid("metadata.uid", "missing; cannot derive an experiment id")
            }),
    }
}

/// The status of a pipeline whose objects were applied: node counts from the DaemonSet, and
/// Ready once every desired node runs a ready collector of the current pod template.
pub fn pipeline_status(
    pipeline: &PhoenixProcessPipeline,
    rendered: &RenderedPipeline,
    experiment_id: &str,
    daemon_set: &DaemonSet,
    now: DateTime<Utc>,
) -> PipelineStatus {
    let mut status = pipeline.status.clone().unwrap_or_default();
    let ds = daemon_set.status.clone().unwrap_or_default();
    let rolled_out = ds.observed_generation.is_some()
        && ds.observed_generation == daemon_set.metadata.generation;
    status.desired_nodes = ds.desired_number_scheduled;
    status.ready_nodes = ds.number_ready;
    status.updated_nodes = ds.updated_number_scheduled.unwrap_or_default();
    status.config_hash = Some(rendered.hash.clone());
    status.experiment_id = Some(experiment_id.to_owned());
    status.prometheus_port = rendered.prometheus_port;
    status.telemetry_port = rendered.telemetry_port;
    status.observed_generation = pipeline.metadata.generation;
    let ready = rolled_out
        && status.desired_nodes > 0
        && status.ready_nodes == status.desired_nodes
        && status.updated_nodes == status.desired_nodes;
    let message = format!(
        "{}/{} collectors ready, {} on the current config {}",
        status.ready_nodes, status.desired_nodes, status.updated_nodes, rendered.hash
    );
    let health = if ready {
        Health::Ready(&message)
    } else if rolled_out && status.desired_nodes == 0 {
        Health::Progressing("NoNodes", "no node matches the node selector")
    } else {
        Health::Progressing("RollingOut", &message)
    };
    set_health(
        &mut status.conditions,
        health,
        pipeline.metadata.generation,
        now,
    );
    status
}

/// Reconciles one pipeline: renders its config, applies the ConfigMap, DaemonSet and Service
/// with server-side apply, and writes the status. A spec that cannot be rendered, or objects
/// the API server refuses as invalid, end Degraded naming the field.
///
/// # Errors
///
/// API errors, for [`error_policy`](super::error_policy) to retry.
pub async fn reconcile_pipeline(
    pipeline: Arc<PhoenixProcessPipeline>,
    ctx: Arc<Context>,
) -> Result<Action> {
    let ctx = ctx.as_ref();
    reconcile_with_finalizer(
        pipeline,
        ctx,
        PIPELINE_FINALIZER,
        |p, api, ns| async move {
            match apply(&p, &api, ctx, &ns).await {
                Err(error @ Error::Invalid { .. }) => {
                    let conditions = p.status.clone().unwrap_or_default().conditions;
                    degrade(p.as_ref(), &api, ctx, &conditions, &error, json!({})).await
                }
                other => other,
            }
        },
        |p, _, ns| async move { cleanup(&p, ctx, &ns).await },
    )
    .await
}

async fn apply(
    pipeline: &PhoenixProcessPipeline,
    api: &Api<PhoenixProcessPipeline>,
    ctx: &Context,
    namespace: &str,
) -> Result<Action> {
    let id = pipeline_experiment_id(pipeline)?;
    let rendered = render_pipeline(&pipeline.spec, &id)?;
    let service = objects::service(pipeline, &rendered, &id)?;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let name = pipeline.name_any();
    let cm = config_map(pipeline, &rendered, &id);
    let cm_name = names::config_map(&name);
    Api::<ConfigMap>::namespaced(ctx.client.clone(), namespace)
        .patch(&cm_name, &params, &Patch::Apply(&cm))
        .await
        .map_err(|e| rejected("ConfigMap", &cm_name, e))?;
    let ds = daemon_set(pipeline, &rendered, &id, &ctx.defaults);
    let ds_name = names::daemon_set(&name);
    let applied = Api::<DaemonSet>::namespaced(ctx.client.clone(), namespace)
        .patch(&ds_name, &params, &Patch::Apply(&ds))
        .await
        .map_err(|e| rejected("DaemonSet", &ds_name, e))?;
    let svc_name = names::service(&name);
    Api::<Service>::namespaced(ctx.client.clone(), namespace)
        .patch(&svc_name, &params, &Patch::Apply(&service))
        .await
        .map_err(|e| rejected("Service", &svc_name, e))?;
    let old = pipeline.status.clone().unwrap_or_default();
    let status = pipeline_status(pipeline, &rendered, &id, &applied, Utc::now());
    patch_status(api, pipeline, &status).await?;
    let ready = status.conditions.is_true(ConditionType::Ready);
    if old.config_hash.is_some() && old.config_hash != status.config_hash {
        let note = format!(
            "config changed ({} -> {}); rolling the collectors",
            old.config_hash.as_deref().unwrap_or_default(),
            rendered.hash
        );
        ctx.publish(pipeline, EventType::Normal, "ConfigChanged", "Apply", note)
            .await;
    }
    if ready != old.conditions.is_true(ConditionType::Ready) || old.conditions.is_empty() {
        let (reason, note) = if ready {
            ("Ready", format!("{} collectors ready", status.ready_nodes))
        } else {
            (
                "Progressing",
                format!(
                    "{}/{} collectors ready",
                    status.ready_nodes, status.desired_nodes
                ),
            )
        };
        ctx.publish(pipeline, EventType::Normal, reason, "Apply", note)
            .await;
    }
    Ok(Action::requeue(if ready {
        ctx.timing.ready
    } else {
        ctx.timing.waiting
    }))
}

/// Deletes the collector objects, the DaemonSet in the foreground, and holds the finalizer
/// until the DaemonSet is gone.
async fn cleanup(
    pipeline: &PhoenixProcessPipeline,
    ctx: &Context,
    namespace: &str,
) -> Result<Action> {
    let name = pipeline.name_any();
    let daemon_sets = Api::<DaemonSet>::namespaced(ctx.client.clone(), namespace);
    let ds_name = names::daemon_set(&name);
    daemon_sets
        .delete(&ds_name, &DeleteParams::foreground())
        .await
        .map(|_| ())
        .or_else(ignore_not_found)?;
    Api::<Service>::namespaced(ctx.client.clone(), namespace)
        .delete(&names::service(&name), &DeleteParams::default())
        .await
        .map(|_| ())
        .or_else(ignore_not_found)?;
    Api::<ConfigMap>::namespaced(ctx.client.clone(), namespace)
        .delete(&names::config_map(&name), &DeleteParams::default())
        .await
        .map(|_| ())
        .or_else(ignore_not_found)?;
    if daemon_sets.get_opt(&ds_name).await?.is_some() {
        let deleting_since = pipeline
            .metadata
            .deletion_timestamp
            .as_ref()
            .and_then(|t| DateTime::<Utc>::from_timestamp(t.0.as_second(), 0));
        let bound = chrono::Duration::from_std(CLEANUP_BOUND).unwrap_or(chrono::Duration::MAX);
        let overdue = deleting_since.is_some_and(|since| Utc::now() > since + bound);
        if !overdue {
            return Err(Error::Finalizer(format!(
                "waiting for DaemonSet {namespace}/{ds_name} and its collectors to be deleted"
            )));
        }
        ctx.publish(
            pipeline,
            EventType::Warning,
            "CleanupTimedOut",
            "Cleanup",
            format!(
                "DaemonSet {namespace}/{ds_name} still exists {} after the deletion was \
                 requested; releasing the finalizer (delete the DaemonSet by hand if it stays)",
                humantime::format_duration(CLEANUP_BOUND)
            ),
        )
        .await;
        return Ok(Action::await_change());
    }
    ctx.publish(
        pipeline,
        EventType::Normal,
        "Deleted",
        "Cleanup",
        format!("collectors of {name} deleted"),
    )
    .await;
    Ok(Action::await_change())
}

/// Treats a 404 as success (what was to be deleted is gone).
pub(crate) fn ignore_not_found(error: kube::Error) -> Result<()> {
    match &error {
        kube::Error::Api(status) if status.is_not_found() => Ok(()),
        _ => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{ConditionType, Conditions, PhoenixProcessPipelineSpec};
    use k8s_openapi::api::apps::v1::DaemonSetStatus;
    use phoenix_core::measurement::VariantRole;

    fn pipeline() -> PhoenixProcessPipeline {
        let mut p = PhoenixProcessPipeline::new(
            "p",
            PhoenixProcessPipelineSpec {
                experiment_id: None,
                variant: VariantRole::Baseline,
                template: Some("process-baseline-v1".to_owned()),
                parameters: serde_json::Map::new(),
                config: None,
                critical_processes: Vec::new(),
                collector: Default::default(),
            },
        );
        p.metadata.uid = Some("abcdef01-2345".to_owned());
        p.metadata.generation = Some(3);
        p
    }

    fn ds(generation: i64, observed: i64, desired: i32, ready: i32, updated: i32) -> DaemonSet {
        let mut ds = DaemonSet::default();
        ds.metadata.generation = Some(generation);
        ds.status = Some(DaemonSetStatus {
            observed_generation: Some(observed),
            desired_number_scheduled: desired,
            number_ready: ready,
            updated_number_scheduled: Some(updated),
            ..DaemonSetStatus::default()
        });
        ds
    }

    #[test]
    fn readiness_needs_every_node_on_the_current_template() {
        let p = pipeline();
        let id = pipeline_experiment_id(&p).unwrap();
        assert_eq!(id, "exp-abcdef01");
        let rendered = render_pipeline(&p.spec, &id).unwrap();
        let now = Utc::now();
        let status = |d: &DaemonSet| pipeline_status(&p, &rendered, &id, d, now);
        let ready = status(&ds(2, 2, 3, 3, 3));
        assert!(ready.conditions.is_true(ConditionType::Ready));
        assert_eq!(ready.observed_generation, Some(3));
        assert_eq!(ready.config_hash.as_deref(), Some(rendered.hash.as_str()));
        let rolling = status(&ds(2, 2, 3, 3, 1));
        assert!(rolling.conditions.is_true(ConditionType::Progressing));
        let unobserved = status(&ds(3, 2, 3, 3, 3));
        assert!(!unobserved.conditions.is_true(ConditionType::Ready));
        let none = status(&ds(2, 2, 0, 0, 0));
        let progressing = none
            .conditions
            .condition(ConditionType::Progressing)
            .unwrap();
        assert_eq!(progressing.reason, "NoNodes");
    }

    #[test]
    fn bad_experiment_ids_name_the_field() {
        let mut p = pipeline();
        p.spec.experiment_id = Some("nope".to_owned());
        let e = pipeline_experiment_id(&p).unwrap_err();
        assert!(e.to_string().starts_with("spec.experimentId:"), "{e}");
    }
}
