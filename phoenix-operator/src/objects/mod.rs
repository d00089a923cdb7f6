//! The desired Kubernetes objects, built by pure functions (no I/O).
//!
//! Reconcilers render a resource's desired objects here and apply them with server-side
//! apply; tests check them without a cluster, and `crdgen --objects` writes them out for
//! offline schema validation.

mod collector;
mod experiment;
mod pipeline_config;
mod simulator;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

pub use collector::{HOST_DIRS, config_map, daemon_set, service};
pub use experiment::{
    MAX_CLUSTER_WINDOWS, experiment_spec, load_simulation, pipeline_name, simulation_name,
    variant_pipeline,
};
pub use pipeline_config::{RenderedPipeline, render_pipeline};
pub(crate) use simulator::{STOP_GRACE, parse_duration};
pub use simulator::{simulation_job, simulator_args};

/// The field manager of every server-side apply by the operator.
pub const FIELD_MANAGER: &str = "phoenix-operator";
/// Pod-template annotation holding the hash of the collector config; a new hash rolls the pods.
pub const CONFIG_HASH_ANNOTATION: &str = "phoenix.io/config-hash";
/// Label with the name of the Phoenix resource an object belongs to.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// Label with the component (`collector`, `load-simulator`).
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// Label with the application name.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// Label naming the operator as the manager.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Where the host directories of [`HOST_DIRS`] are mounted, read-only, in collector pods.
pub const HOST_ROOT: &str = "/hostfs";
/// Where the collector config is mounted in collector pods.
pub const CONFIG_DIR: &str = "/etc/phoenix";
/// The port a synthetic simulation serves its scrapes on for Prometheus.
pub const SIMULATOR_PROMETHEUS_PORT: u16 = 9464;

/// The operator-wide defaults the builders fall back on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// Collector image when a resource names none.
    pub collector_image: String,
    /// Simulator image when a resource names none.
    pub simulator_image: String,
    /// Service account of collector pods when a resource names none; without one they run
    /// under their namespace's default account. Either way without an API token: collectors
    /// never call the Kubernetes API.
    pub collector_service_account: Option<String>,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            collector_image: format!(
                "otel/opentelemetry-collector-contrib:{}",
                phoenix_generator::catalog::COLLECTOR_RELEASE
            ),
            simulator_image: format!(
                "ghcr.io/phoenix-otel/phoenix-sim:{}",
                env!("CARGO_PKG_VERSION")
            ),
            collector_service_account: None,
        }
    }
}

/// Names of the objects of a `PhoenixProcessPipeline` called `name`.
pub mod names {
    /// The ConfigMap holding the collector config.
    pub fn config_map(pipeline: &str) -> String {
        format!("{pipeline}-collector-config")
    }

    /// The collector DaemonSet.
    pub fn daemon_set(pipeline: &str) -> String {
        format!("{pipeline}-collector")
    }

    /// The metrics Service.
    pub fn service(pipeline: &str) -> String {
        format!("{pipeline}-metrics")
    }

    /// The Job of a `LoadSimulationJob`.
    pub fn job(simulation: &str) -> String {
        format!("{simulation}-sim")
    }
}

/// Metadata of an object owned by `owner`: same namespace, a controller owner reference, and
/// these labels.
pub(crate) fn owned_meta<K>(owner: &K, name: String, labels: BTreeMap<String, String>) -> ObjectMeta
where
    K: Resource<DynamicType = ()>,
{
    ObjectMeta {
        name: Some(name),
        namespace: owner.meta().namespace.clone(),
        labels: Some(labels),
        owner_references: owner.controller_owner_ref(&()).map(|r| vec![r]),
        ..ObjectMeta::default()
    }
}

/// The resources of a container whose resource names none: 100m CPU and 128Mi memory
/// requested, `memory_limit` as the memory limit, no CPU limit (throttling would distort what
/// experiments measure).
pub(crate) fn default_resources(memory_limit: &str) -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity("100m".to_owned())),
            ("memory".to_owned(), Quantity("128Mi".to_owned())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_owned(),
            Quantity(memory_limit.to_owned()),
        )])),
        ..ResourceRequirements::default()
    }
}

/// Labels shared by every object of one Phoenix resource.
pub(crate) fn common_labels(instance: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME_LABEL.to_owned(), format!("phoenix-{component}")),
        (INSTANCE_LABEL.to_owned(), instance.to_owned()),
        (COMPONENT_LABEL.to_owned(), component.to_owned()),
        (MANAGED_BY_LABEL.to_owned(), FIELD_MANAGER.to_owned()),
    ])
}

/// Checks that `name` can name a Service (an RFC 1035 label), reporting `field`.
pub(crate) fn check_dns_label(name: &str, field: &str) -> crate::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(crate::Error::invalid(
            field,
            format!(
                "`{name}` must be a DNS label: at most 63 lowercase letters, digits and `-`, starting with a letter"
            ),
        ))
    }
}
