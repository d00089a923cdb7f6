//! The operator: one controller per kind, until a shutdown signal.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, Resource};

use crate::Result;
use crate::crd::{LoadSimulationJob, PhoenixExperiment, PhoenixProcessPipeline};
use crate::objects::{Defaults, FIELD_MANAGER, MANAGED_BY_LABEL};
use crate::prometheus::PrometheusClient;
use crate::reconciler::{
    Context, error_policy, reconcile_experiment, reconcile_pipeline, reconcile_simulation,
};

/// How the operator is configured.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Base URL of the Prometheus HTTP API experiments are measured through.
    pub prometheus_url: Option<String>,
    /// Images and service account for resources that name none.
    pub defaults: Defaults,
    /// Watch only this namespace; every namespace when `None`.
    pub namespace: Option<String>,
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The label selector of the objects the operator creates: every builder in
/// [`objects`](crate::objects) sets `app.kubernetes.io/managed-by: phoenix-operator`.
pub fn managed_by_selector() -> String {
    format!("{MANAGED_BY_LABEL}={FIELD_MANAGER}")
}

/// The watch of an owned kind: only objects the operator manages, so that the controller does
/// not cache every ConfigMap, Service, DaemonSet or Job of the cluster.
pub fn owned_watch_config() -> watcher::Config {
    watcher::Config::default().labels(&managed_by_selector())
}

fn log_outcome<K: Resource, E: std::fmt::Display>(
    outcome: std::result::Result<(ObjectRef<K>, Action), E>,
) {
    match outcome {
        Ok((object, _)) => tracing::debug!(%object, "reconciled"),
        Err(error) => tracing::debug!("reconcile outcome: {error}"),
    }
}

/// Runs the three controllers until SIGTERM or Ctrl-C, then lets reconciles in flight finish
/// and stops the experiment runs (they resume from their status on the next start).
///
/// # Errors
///
/// [`Error::Prometheus`](crate::Error::Prometheus) for an unusable Prometheus URL.
pub async fn run(client: Client, settings: Settings) -> Result<()> {
    let prometheus = settings
        .prometheus_url
        .as_deref()
        .map(PrometheusClient::new)
        .transpose()?;
    if prometheus.is_none() {
        tracing::warn!("no Prometheus URL: experiments will fail when they measure");
    }
    let ctx = Arc::new(Context::new(client.clone(), settings.defaults, prometheus));
    let ns = settings.namespace.as_deref();
    let config = watcher::Config::default;
    let owned = owned_watch_config;

    let experiments = Controller::new(api::<PhoenixExperiment>(&client, ns), config())
        .owns(api::<PhoenixProcessPipeline>(&client, ns), owned())
        .owns(api::<LoadSimulationJob>(&client, ns), owned())
        .shutdown_on_signal()
        .run(reconcile_experiment, error_policy, ctx.clone())
        .for_each(|outcome| async move { log_outcome(outcome) });
    let pipelines = Controller::new(api::<PhoenixProcessPipeline>(&client, ns), config())
        .owns(api::<DaemonSet>(&client, ns), owned())
        .owns(api::<ConfigMap>(&client, ns), owned())
        .owns(api::<Service>(&client, ns), owned())
        .shutdown_on_signal()
        .run(reconcile_pipeline, error_policy, ctx.clone())
        .for_each(|outcome| async move { log_outcome(outcome) });
    let simulations = Controller::new(api::<LoadSimulationJob>(&client, ns), config())
        .owns(api::<Job>(&client, ns), owned())
        .shutdown_on_signal()
        .run(reconcile_simulation, error_policy, ctx.clone())
        .for_each(|outcome| async move { log_outcome(outcome) });

    tracing::info!(
        namespace = ns.unwrap_or("(all)"),
        "phoenix-operator started"
    );
    tokio::join!(experiments, pipelines, simulations);
    ctx.stop_all_runs();
    tracing::info!("phoenix-operator stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_watches_select_the_managed_by_label() {
        assert_eq!(
            owned_watch_config().label_selector.as_deref(),
            Some("app.kubernetes.io/managed-by=phoenix-operator")
        );
    }
}
