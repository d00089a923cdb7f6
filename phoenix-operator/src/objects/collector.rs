//! The collector objects of a `PhoenixProcessPipeline`: ConfigMap, DaemonSet and Service.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    HTTPGetAction, HostPathVolumeSource, ObjectFieldSelector, PodSpec, PodTemplateSpec, Probe,
    SecurityContext, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use phoenix_generator::kubernetes::{CONFIG_KEY, EXPERIMENT_LABEL, VARIANT_LABEL};

use super::{
    CONFIG_DIR, CONFIG_HASH_ANNOTATION, Defaults, HOST_ROOT, INSTANCE_LABEL, NAME_LABEL,
    RenderedPipeline, check_dns_label, common_labels, default_resources, names, owned_meta,
};
use crate::Result;
use crate::crd::PhoenixProcessPipeline;

const COMPONENT: &str = "collector";
const CONTAINER: &str = "otelcol";

/// Labels of every object of the pipeline.
fn labels(pipeline: &PhoenixProcessPipeline, experiment_id: &str) -> BTreeMap<String, String> {
    let mut labels = common_labels(&pipeline.name_any(), COMPONENT);
    labels.insert(EXPERIMENT_LABEL.to_owned(), experiment_id.to_owned());
    labels.insert(
        VARIANT_LABEL.to_owned(),
        pipeline.spec.variant.as_str().to_owned(),
    );
    labels
}

/// The labels that select the pipeline's pods.
pub(crate) fn selector(pipeline: &PhoenixProcessPipeline) -> BTreeMap<String, String> {
    let all = common_labels(&pipeline.name_any(), COMPONENT);
    all.into_iter()
        .filter(|(k, _)| k == NAME_LABEL || k == INSTANCE_LABEL)
        .collect()
}

/// The ConfigMap holding the rendered collector config under `collector.yaml`.
pub fn config_map(
    pipeline: &PhoenixProcessPipeline,
    rendered: &RenderedPipeline,
    experiment_id: &str,
) -> ConfigMap {
    let mut metadata = owned_meta(
        pipeline,
        names::config_map(&pipeline.name_any()),
        labels(pipeline, experiment_id),
    );
    metadata.annotations = Some(BTreeMap::from([
        (CONFIG_HASH_ANNOTATION.to_owned(), rendered.hash.clone()),
        (
            "phoenix.io/config-source".to_owned(),
            rendered.source.clone(),
        ),
    ]));
    ConfigMap {
        metadata,
        data: Some(BTreeMap::from([(
            CONFIG_KEY.to_owned(),
            rendered.yaml.clone(),
        )])),
        ..ConfigMap::default()
    }
}

/// The host directories collector pods see, read-only, under `/hostfs`: what the hostmetrics
/// `process` scraper reads (`/proc` for processes, `/sys` for CPU topology and boot time,
/// `/etc` for the host's `passwd` and `os-release`), and nothing else of the host.
pub const HOST_DIRS: [&str; 3] = ["proc", "sys", "etc"];

/// The environment the hostmetrics receiver expects with `root_path: /hostfs`: one `HOST_*`
/// variable per mounted host directory (the receiver refuses variables that disagree with its
/// `root_path`).
fn host_env() -> Vec<EnvVar> {
    let mut env: Vec<EnvVar> = HOST_DIRS
        .into_iter()
        .map(|dir| EnvVar {
            name: format!("HOST_{}", dir.to_ascii_uppercase()),
            value: Some(format!("{HOST_ROOT}/{dir}")),
            ..EnvVar::default()
        })
        .collect();
    env.push(EnvVar {
        name: "K8S_NODE_NAME".to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "spec.nodeName".to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    });
    env
}

fn ports(rendered: &RenderedPipeline) -> Vec<ContainerPort> {
    let mut ports = Vec::new();
    if let Some(port) = rendered.prometheus_port {
        ports.push(ContainerPort {
            name: Some("metrics".to_owned()),
            container_port: i32::from(port),
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        });
    }
    if let Some(port) = rendered.telemetry_port {
        ports.push(ContainerPort {
            name: Some("telemetry".to_owned()),
            container_port: i32::from(port),
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        });
    }
    ports
}

/// The config mount and one read-only mount per host directory in [`HOST_DIRS`].
fn volume_mounts() -> Vec<VolumeMount> {
    let mut mounts = vec![VolumeMount {
        name: "config".to_owned(),
        mount_path: CONFIG_DIR.to_owned(),
        read_only: Some(true),
        ..VolumeMount::default()
    }];
    mounts.extend(HOST_DIRS.into_iter().map(|dir| VolumeMount {
        name: format!("host-{dir}"),
        mount_path: format!("{HOST_ROOT}/{dir}"),
        read_only: Some(true),
        ..VolumeMount::default()
    }));
    mounts
}

/// The config volume and one `hostPath` volume per host directory in [`HOST_DIRS`].
fn volumes(pipeline: &str) -> Vec<Volume> {
    let mut volumes = vec![Volume {
        name: "config".to_owned(),
        config_map: Some(ConfigMapVolumeSource {
            name: names::config_map(pipeline),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    }];
    volumes.extend(HOST_DIRS.into_iter().map(|dir| Volume {
        name: format!("host-{dir}"),
        host_path: Some(HostPathVolumeSource {
            path: format!("/{dir}"),
            type_: Some("Directory".to_owned()),
        }),
        ..Volume::default()
    }));
    volumes
}

/// The collector DaemonSet: one pod per selected node, in the host's PID namespace (not its
/// network), with the host's `/proc`, `/sys` and `/etc` read-only under `/hostfs`, the variant's ports, and
/// the config hash on the pod template so that a config change rolls the pods.
pub fn daemon_set(
    pipeline: &PhoenixProcessPipeline,
    rendered: &RenderedPipeline,
    experiment_id: &str,
    defaults: &Defaults,
) -> DaemonSet {
    let name = pipeline.name_any();
    let labels = labels(pipeline, experiment_id);
    let settings = &pipeline.spec.collector;
    let readiness = rendered.telemetry_port.map(|port| Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/metrics".to_owned()),
            port: IntOrString::Int(i32::from(port)),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: Some(5),
        period_seconds: Some(10),
        ..Probe::default()
    });
    let container = Container {
        name: CONTAINER.to_owned(),
        image: Some(
            settings
                .image
                .clone()
                .unwrap_or_else(|| defaults.collector_image.clone()),
        ),
        args: Some(vec![format!("--config={CONFIG_DIR}/{CONFIG_KEY}")]),
        env: Some(host_env()),
        ports: Some(ports(rendered)),
        resources: Some(
            settings
                .resources
                .clone()
                .unwrap_or_else(|| default_resources("512Mi")),
        ),
        readiness_probe: readiness,
        security_context: Some(SecurityContext {
            run_as_user: Some(0),
            run_as_non_root: Some(false),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            // Reading other users' /proc/<pid>/io and exe links needs these two.
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                add: Some(vec!["SYS_PTRACE".to_owned(), "DAC_READ_SEARCH".to_owned()]),
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(volume_mounts()),
        ..Container::default()
    };
    let mut node_selector = settings.node_selector.clone();
    node_selector
        .entry("kubernetes.io/os".to_owned())
        .or_insert_with(|| "linux".to_owned());
    let pod = PodSpec {
        host_pid: Some(true),
        host_network: Some(false),
        service_account_name: settings
            .service_account_name
            .clone()
            .or_else(|| defaults.collector_service_account.clone()),
        automount_service_account_token: Some(false),
        node_selector: Some(node_selector),
        tolerations: (!settings.tolerations.is_empty()).then(|| settings.tolerations.clone()),
        containers: vec![container],
        volumes: Some(volumes(&name)),
        termination_grace_period_seconds: Some(30),
        ..PodSpec::default()
    };
    DaemonSet {
        metadata: owned_meta(pipeline, names::daemon_set(&name), labels.clone()),
        spec: DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(selector(pipeline)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations: Some(BTreeMap::from([(
                        CONFIG_HASH_ANNOTATION.to_owned(),
                        rendered.hash.clone(),
                    )])),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("RollingUpdate".to_owned()),
                ..DaemonSetUpdateStrategy::default()
            }),
            ..DaemonSetSpec::default()
        },
        ..DaemonSet::default()
    }
}

/// The headless metrics Service: one endpoint per collector pod, for Prometheus to scrape
/// every node, with the exporter port named `metrics` and the collector's own metrics port
/// named `telemetry`.
///
/// # Errors
///
/// [`Error::Invalid`](crate::Error::Invalid) on `metadata.name` when the Service name would
/// not be a DNS label.
pub fn service(
    pipeline: &PhoenixProcessPipeline,
    rendered: &RenderedPipeline,
    experiment_id: &str,
) -> Result<Service> {
    let name = names::service(&pipeline.name_any());
    check_dns_label(&name, "metadata.name")?;
    let ports = ports(rendered)
        .into_iter()
        .map(|p| ServicePort {
            name: p.name.clone(),
            port: p.container_port,
            target_port: p.name.map(IntOrString::String),
            protocol: Some("TCP".to_owned()),
            ..ServicePort::default()
        })
        .collect();
    // No `prometheus.io/scrape` annotation: the scrape job of deploy/prometheus discovers the
    // collector pods, and a second, annotation-driven job would count every series twice.
    let metadata = owned_meta(pipeline, name, labels(pipeline, experiment_id));
    Ok(Service {
        metadata,
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            selector: Some(selector(pipeline)),
            ports: Some(ports),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{PhoenixProcessPipelineSpec, PodSettings};
    use crate::objects::render_pipeline;
    use k8s_openapi::api::core::v1::Toleration;
    use phoenix_core::measurement::VariantRole;

    fn pipeline(params: &serde_json::Value) -> PhoenixProcessPipeline {
        let mut p = PhoenixProcessPipeline::new(
            "topk",
            PhoenixProcessPipelineSpec {
                experiment_id: Some("exp-abcd1234".to_owned()),
                variant: VariantRole::Candidate,
                template: Some("process-topk-v1".to_owned()),
                parameters: params.as_object().cloned().unwrap_or_default(),
                config: None,
                critical_processes: Vec::new(),
                collector: PodSettings {
                    node_selector: BTreeMap::from([("pool".to_owned(), "web".to_owned())]),
                    tolerations: vec![Toleration {
                        operator: Some("Exists".to_owned()),
                        ..Toleration::default()
                    }],
                    service_account_name: Some("custom-sa".to_owned()),
                    ..PodSettings::default()
                },
            },
        );
        p.metadata.namespace = Some("obs".to_owned());
        p.metadata.uid = Some("0000-1111".to_owned());
        p
    }

    fn build(params: &serde_json::Value) -> (PhoenixProcessPipeline, RenderedPipeline, DaemonSet) {
        let p = pipeline(params);
        let rendered = render_pipeline(&p.spec, "exp-abcd1234").unwrap();
        let ds = daemon_set(&p, &rendered, "exp-abcd1234", &Defaults::default());
        (p, rendered, ds)
    }

    #[test]
    fn config_map_holds_the_rendered_config() {
        let p = pipeline(&serde_json::json!({}));
        let rendered = render_pipeline(&p.spec, "exp-abcd1234").unwrap();
        let cm = config_map(&p, &rendered, "exp-abcd1234");
        assert_eq!(cm.metadata.name.as_deref(), Some("topk-collector-config"));
        assert_eq!(cm.metadata.namespace.as_deref(), Some("obs"));
        assert_eq!(cm.data.as_ref().unwrap()[CONFIG_KEY], rendered.yaml);
        let owner = &cm.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("PhoenixProcessPipeline", Some(true))
        );
        assert_eq!(
            cm.metadata.labels.as_ref().unwrap()[VARIANT_LABEL],
            "candidate"
        );
    }

    #[test]
    fn daemon_set_reads_the_host_without_its_network() {
        let (_, rendered, ds) = build(&serde_json::json!({}));
        let spec = ds.spec;
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.host_pid, Some(true));
        assert_eq!(pod.host_network, Some(false));
        assert_eq!(pod.service_account_name.as_deref(), Some("custom-sa"));
        let selector = pod.node_selector.unwrap();
        assert_eq!(selector["pool"], "web");
        assert_eq!(selector["kubernetes.io/os"], "linux");
        assert_eq!(pod.tolerations.unwrap().len(), 1);
        let c = &pod.containers[0];
        let mounts = c.volume_mounts.as_ref().unwrap();
        let host_mounts: Vec<&str> = mounts
            .iter()
            .filter(|m| m.mount_path.starts_with("/hostfs"))
            .map(|m| m.mount_path.as_str())
            .collect();
        assert_eq!(host_mounts, ["/hostfs/proc", "/hostfs/sys", "/hostfs/etc"]);
        assert!(mounts.iter().all(|m| m.read_only == Some(true)));
        let host_paths: Vec<&str> = pod
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .filter_map(|v| v.host_path.as_ref().map(|h| h.path.as_str()))
            .collect();
        assert_eq!(host_paths, ["/proc", "/sys", "/etc"], "never the host's /");
        let env: BTreeMap<_, _> = c
            .env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| (e.name.as_str(), e.value.clone()))
            .collect();
        assert_eq!(env["HOST_PROC"].as_deref(), Some("/hostfs/proc"));
        assert_eq!(env["HOST_SYS"].as_deref(), Some("/hostfs/sys"));
        let ports: Vec<i32> = c
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| p.container_port)
            .collect();
        assert_eq!(ports, vec![8899, 8898], "candidate ports");
        assert!(c.resources.as_ref().unwrap().limits.is_some());
        let annotations = spec.template.metadata.unwrap().annotations.unwrap();
        assert_eq!(annotations[CONFIG_HASH_ANNOTATION], rendered.hash);
        let matched = spec.selector.match_labels.unwrap();
        assert_eq!(matched[INSTANCE_LABEL], "topk");
    }

    #[test]
    fn every_object_carries_the_managed_by_label_the_watches_select() {
        let (p, rendered, ds) = build(&serde_json::json!({}));
        let cm = config_map(&p, &rendered, "exp-abcd1234");
        let svc = service(&p, &rendered, "exp-abcd1234").unwrap();
        for labels in [
            &cm.metadata.labels,
            &ds.metadata.labels,
            &svc.metadata.labels,
        ] {
            assert_eq!(
                labels.as_ref().unwrap()[crate::objects::MANAGED_BY_LABEL],
                "phoenix-operator"
            );
        }
    }

    #[test]
    fn a_config_change_changes_the_pod_template() {
        let (_, _, a) = build(&serde_json::json!({"topK": 5}));
        let (_, _, b) = build(&serde_json::json!({"topK": 5, "collectionInterval": "20s"}));
        let hash = |ds: &DaemonSet| {
            ds.spec
                .template
                .metadata
                .as_ref()
                .unwrap()
                .annotations
                .as_ref()
                .unwrap()[CONFIG_HASH_ANNOTATION]
                .clone()
        };
        assert_ne!(hash(&a), hash(&b));
    }

    #[test]
    fn service_is_headless_with_named_ports() {
        let p = pipeline(&serde_json::json!({}));
        let rendered = render_pipeline(&p.spec, "exp-abcd1234").unwrap();
        let svc = service(&p, &rendered, "exp-abcd1234").unwrap();
        assert_eq!(svc.metadata.name.as_deref(), Some("topk-metrics"));
        let spec = svc.spec.unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        let ports: Vec<_> = spec
            .ports
            .unwrap()
            .into_iter()
            .map(|p| (p.name.unwrap(), p.port))
            .collect();
        assert_eq!(
            ports,
            vec![("metrics".to_owned(), 8899), ("telemetry".to_owned(), 8898)]
        );
        let mut long = pipeline(&serde_json::json!({}));
        long.metadata.name = Some("x".repeat(60));
        let e = service(&long, &rendered, "exp-abcd1234").unwrap_err();
        assert!(e.to_string().starts_with("metadata.name"), "{e}");
    }
}
