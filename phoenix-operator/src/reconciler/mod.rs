//! The reconcilers of the three kinds, and what they share.
//!
//! Each kind has a `reconcile_*` function for kube-runtime's `Controller` and shares
//! [`error_policy`]. A spec the operator cannot carry out is not an error: the reconciler
//! writes a Degraded condition naming the field, emits a Warning event, and waits for the
//! spec to change. Errors (the API server failing) are retried with exponential backoff.

mod context;
mod experiment;
mod pipeline;
mod simulation;
mod status;

pub use context::{Backoff, Context, Timing};
pub use experiment::{EXPERIMENT_FINALIZER, experiment_id, reconcile_experiment};
pub use pipeline::{
    CLEANUP_BOUND, PIPELINE_FINALIZER, pipeline_experiment_id, pipeline_status, reconcile_pipeline,
};
pub use simulation::{SIMULATION_FINALIZER, reconcile_simulation, simulation_status};

use std::sync::Arc;

use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use crate::Error;

pub(crate) use status::degraded_message as degraded;
pub(crate) use status::rejected;

/// What every reconciler does with an error: log it and retry after a delay that doubles with
/// every consecutive failure of the same object (see [`Backoff`]).
// kube-runtime's Controller hands over the object and the context by value.
#[allow(clippy::needless_pass_by_value)]
pub fn error_policy<K>(object: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action
where
    K: Resource<DynamicType = ()>,
{
    let key = key_of(object.as_ref());
    let delay = ctx.next_backoff(&key);
    tracing::warn!(
        object = %key,
        retry_in = ?delay,
        "reconcile failed: {error}"
    );
    Action::requeue(delay)
}

/// The key of an object in the backoff table and in logs: `kind/namespace/name`.
pub(crate) fn key_of<K: Resource<DynamicType = ()>>(object: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}
