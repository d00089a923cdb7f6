//! Writing status subresources and the conditions they carry, and what every reconciler
//! does around its own work: the finalizer, invalid specs, and refusals of the API server.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Context, key_of};
use crate::crd::{Condition, ConditionStatus, ConditionType, Conditions};
use crate::{Error, Result};

/// Runs a reconcile of a namespaced `object` under the finalizer `name`: `apply` while the
/// object lives, `cleanup` once it is being deleted (the finalizer is released when `cleanup`
/// succeeds). Both get the object, its API and its namespace. A successful reconcile forgets
/// the object's failures (see [`Context::reset_backoff`]).
///
/// # Errors
///
/// What `apply` or `cleanup` fail with, as [`Error::Finalizer`]; API errors adding or
/// removing the finalizer.
pub(crate) async fn reconcile_with_finalizer<K, A, AF, C, CF>(
    object: Arc<K>,
    ctx: &Context,
    name: &str,
    apply: A,
    cleanup: C,
) -> Result<Action>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    A: FnOnce(Arc<K>, Api<K>, String) -> AF,
    AF: Future<Output = Result<Action>>,
    C: FnOnce(Arc<K>, Api<K>, String) -> CF,
    CF: Future<Output = Result<Action>>,
{
    let key = key_of(object.as_ref());
    let Some(namespace) = object.namespace() else {
        return Err(Error::invalid(
            "metadata.namespace",
            format!("{} resources are namespaced", K::kind(&())),
        ));
    };
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    let action = finalizer(&api, name, object, |event| async {
        match event {
            Finalizer::Apply(o) => apply(o, api.clone(), namespace.clone()).await,
            Finalizer::Cleanup(o) => cleanup(o, api.clone(), namespace.clone()).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(e.to_string()))?;
    ctx.reset_backoff(&key);
    Ok(action)
}

/// An API error, with a refusal of the object as invalid (422: a bad quantity, a name too
/// long, ...) turned into [`Error::Invalid`] naming the fields the API server gave in
/// `details.causes`, so that the reconciler ends Degraded instead of retrying forever.
pub(crate) fn rejected(kind: &str, name: &str, error: kube::Error) -> Error {
    match &error {
        kube::Error::Api(status) if status.is_invalid() || status.code == 422 => {
            let causes = status
                .details
                .as_ref()
                .map(|d| d.causes.as_slice())
                .unwrap_or_default();
            let fields: Vec<&str> = causes
                .iter()
                .map(|c| c.field.as_str())
                .filter(|f| !f.is_empty())
                .collect();
            let messages: Vec<&str> = causes
                .iter()
                .map(|c| c.message.as_str())
                .filter(|m| !m.is_empty())
                .collect();
            let field = if fields.is_empty() {
                format!("{kind} {name}")
            } else {
                format!("{kind} {name}: {}", fields.join(", "))
            };
            let reason = if messages.is_empty() {
                status.message.clone()
            } else {
                messages.join("; ")
            };
            Error::invalid(field, format!("rejected by the API server: {reason}"))
        }
        _ => Error::Kube(error),
    }
}

/// Records a spec that cannot be carried out: Degraded naming the field on `conditions`,
/// `observedGeneration`, the fields of `extra` (a JSON object, e.g. a phase) merged into the
/// status, a Warning event `InvalidSpec` when the message is new, and no requeue until the
/// spec changes. What the last good spec created keeps running.
///
/// # Errors
///
/// API errors writing the status.
pub(crate) async fn degrade<K>(
    object: &K,
    api: &Api<K>,
    ctx: &Context,
    conditions: &[Condition],
    error: &Error,
    extra: serde_json::Value,
) -> Result<Action>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let message = error.to_string();
    let mut conditions = conditions.to_vec();
    let changed = degraded_message(&conditions) != Some(message.as_str());
    let generation = object.meta().generation;
    set_health(
        &mut conditions,
        Health::Degraded("InvalidSpec", &message),
        generation,
        Utc::now(),
    );
    let mut status = serde_json::json!({
        "conditions": conditions,
        "observedGeneration": generation,
    });
    if let (Some(status), serde_json::Value::Object(extra)) = (status.as_object_mut(), extra) {
        status.extend(extra);
    }
    patch_status(api, object, &status).await?;
    if changed {
        ctx.publish(
            object,
            EventType::Warning,
            "InvalidSpec",
            "Reconcile",
            message,
        )
        .await;
    }
    Ok(Action::await_change())
}

/// Merge-patches `status` into the status subresource of `object`.
pub(crate) async fn patch_status<K, S>(api: &Api<K>, object: &K, status: &S) -> Result<()>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let patch = serde_json::json!({ "status": status });
    api.patch_status(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

/// What a reconcile concluded about a resource, as the three conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health<'a> {
    /// Everything runs as asked.
    Ready(&'a str),
    /// Getting there.
    Progressing(&'a str, &'a str),
    /// The spec cannot be carried out.
    Degraded(&'a str, &'a str),
    /// It ran and failed (a simulation or an experiment).
    Failed(&'a str, &'a str),
}

/// Sets Ready, Progressing and Degraded on `conditions` according to `health`.
pub(crate) fn set_health(
    conditions: &mut Vec<Condition>,
    health: Health<'_>,
    generation: Option<i64>,
    now: DateTime<Utc>,
) {
    use ConditionStatus::{False, True};
    use ConditionType::{Degraded, Progressing, Ready};
    let (ready, progressing, degraded) = match health {
        Health::Ready(message) => (
            (True, "Ready", message),
            (False, "Ready", ""),
            (False, "Ready", ""),
        ),
        Health::Progressing(reason, message) => (
            (False, reason, message),
            (True, reason, message),
            (False, "Progressing", ""),
        ),
        Health::Degraded(reason, message) | Health::Failed(reason, message) => (
            (False, reason, message),
            (False, reason, ""),
            (True, reason, message),
        ),
    };
    for (type_, (status, reason, message)) in [
        (Ready, ready),
        (Progressing, progressing),
        (Degraded, degraded),
    ] {
        conditions.set_condition(type_, status, reason, message, generation, now);
    }
}

/// The Degraded message currently recorded, if the resource is Degraded.
pub(crate) fn degraded_message(conditions: &[Condition]) -> Option<&str> {
    conditions
        .iter()
        .find(|c| c.type_ == ConditionType::Degraded && c.status == ConditionStatus::True)
        .map(|c| c.message.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_of_the_api_server_name_the_fields() {
        let status = kube::core::Status {
            code: 422,
            reason: "Invalid".to_owned(),
            message: "Job.batch \"x\" is invalid".to_owned(),
            details: Some(kube::core::response::StatusDetails {
                causes: vec![kube::core::response::StatusCause {
                    reason: "FieldValueInvalid".to_owned(),
                    message: "Invalid value: \"1x\": quantities must match the regular expression"
                        .to_owned(),
                    field: "spec.template.spec.containers[0].resources.limits.memory".to_owned(),
                }],
                name: "load-sim".to_owned(),
                group: "batch".to_owned(),
                kind: "jobs".to_owned(),
                uid: String::new(),
                retry_after_seconds: 0,
            }),
            ..Default::default()
        };
        let e = rejected("Job", "load-sim", kube::Error::Api(Box::new(status)));
        assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "Job load-sim: spec.template.spec.containers[0].resources.limits.memory: rejected \
             by the API server: Invalid value: \"1x\": quantities must match the regular expression"
        );
        let unavailable = kube::core::Status {
            code: 503,
            ..Default::default()
        };
        let e = rejected("Job", "load-sim", kube::Error::Api(Box::new(unavailable)));
        assert!(matches!(e, Error::Kube(_)), "{e:?}");
    }

    #[test]
    fn health_sets_all_three_conditions() {
        let now = Utc::now();
        let mut c = Vec::new();
        set_health(
            &mut c,
            Health::Degraded("InvalidSpec", "spec.template: unknown"),
            Some(3),
            now,
        );
        assert_eq!(c.len(), 3);
        assert_eq!(degraded_message(&c), Some("spec.template: unknown"));
        assert!(!c.is_true(ConditionType::Ready));
        set_health(&mut c, Health::Ready("2/2 nodes"), Some(4), now);
        assert!(c.is_true(ConditionType::Ready));
        assert_eq!(degraded_message(&c), None);
        assert!(c.iter().all(|c| c.observed_generation == Some(4)));
    }
}
