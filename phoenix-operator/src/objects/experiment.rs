//! The resources a `PhoenixExperiment` creates: one pipeline per variant and, when asked, a
//! load simulation.

use std::collections::BTreeMap;

use kube::ResourceExt;
use phoenix_core::experiment::{ExperimentId, ExperimentSpec, PipelineRef, Target, WorkloadSource};
use phoenix_core::measurement::VariantRole;
use phoenix_generator::config::GoDuration;
use phoenix_generator::kubernetes::{EXPERIMENT_LABEL, VARIANT_LABEL};
use serde_json::Value;

use super::{common_labels, owned_meta};
use crate::crd::{
    LoadSimulationJob, LoadSimulationJobSpec, PhoenixExperiment, PhoenixProcessPipeline,
    PhoenixProcessPipelineSpec,
};
use crate::{Error, Result};

/// The most measurement windows an experiment may have on Kubernetes: every window is kept in
/// the resource's status, which must stay well below etcd's object size limit.
pub const MAX_CLUSTER_WINDOWS: usize = 1000;

/// Rewrites a core validation path (`spec.x`) to its place in the resource
/// (`spec.experiment.x`).
fn resource_path(core_path: &str) -> String {
    match core_path.strip_prefix("spec") {
        Some(rest) => format!("spec.experiment{rest}"),
        None => format!("spec.experiment.{core_path}"),
    }
}

/// The experiment spec of the resource, parsed and validated, with its target set to the
/// resource's namespace when it names none.
///
/// # Errors
///
/// [`Error::Invalid`] naming the first field at fault under `spec.experiment`, with every
/// violation in the message.
pub fn experiment_spec(experiment: &PhoenixExperiment) -> Result<ExperimentSpec> {
    let mut spec: ExperimentSpec = serde_path_to_error::deserialize(&experiment.spec.experiment)
        .map_err(|e| {
            let path = e.path().to_string();
            let field = if path.is_empty() || path == "." {
                "spec.experiment".to_owned()
            } else {
                format!("spec.experiment.{path}")
            };
            Error::invalid(field, e.into_inner().to_string())
        })?;
    if let Err(errors) = spec.validate() {
        let errors = errors.into_errors();
        let all = errors
            .iter()
            .map(|e| format!("{}: {}", resource_path(&e.path), e.message))
            .collect::<Vec<_>>()
            .join("; ");
        let field = errors
            .first()
            .map_or_else(|| "spec.experiment".to_owned(), |e| resource_path(&e.path));
        return Err(Error::invalid(field, all));
    }
    let namespace = experiment.namespace().unwrap_or_default();
    match &spec.target {
        Target::Local => {
            spec.target = Target::Kubernetes {
                namespace,
                node_selector: BTreeMap::new(),
            };
        }
        Target::Kubernetes {
            namespace: target, ..
        } if *target != namespace => {
            return Err(Error::invalid(
                "spec.experiment.target.namespace",
                format!(
                    "must be the experiment's own namespace `{namespace}`, where the operator creates its pipelines, got `{target}`"
                ),
            ));
        }
        Target::Kubernetes { .. } => {}
    }
    let windows = spec.windows().len();
    if windows > MAX_CLUSTER_WINDOWS {
        return Err(Error::invalid(
            "spec.experiment.measurementWindow",
            format!(
                "splits the run into {windows} windows; on Kubernetes at most {MAX_CLUSTER_WINDOWS} are kept in the status"
            ),
        ));
    }
    Ok(spec)
}

/// The name of the pipeline of one variant of an experiment.
pub fn pipeline_name(experiment: &str, role: VariantRole) -> String {
    format!("{experiment}-{role}")
}

/// The name of an experiment's load simulation.
pub fn simulation_name(experiment: &str) -> String {
    format!("{experiment}-load")
}

fn experiment_labels(id: &ExperimentId, experiment: &str) -> BTreeMap<String, String> {
    let mut labels = common_labels(experiment, "experiment");
    labels.insert(EXPERIMENT_LABEL.to_owned(), id.to_string());
    labels
}

/// The `PhoenixProcessPipeline` of one variant, owned by the experiment.
///
/// Critical processes and the scrape interval come from the experiment unless the variant's
/// parameters set them.
///
/// # Errors
///
/// [`Error::Invalid`] when a template's parameters switch off the `prometheus` exporter,
/// through which the experiment is measured.
pub fn variant_pipeline(
    experiment: &PhoenixExperiment,
    spec: &ExperimentSpec,
    id: &ExperimentId,
    role: VariantRole,
) -> Result<PhoenixProcessPipeline> {
    let name = experiment.name_any();
    let mut collector = experiment.spec.collector.clone();
    if let Target::Kubernetes { node_selector, .. } = &spec.target {
        collector
            .node_selector
            .extend(node_selector.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let (template, parameters, config, critical_processes) = match spec.variant(role) {
        PipelineRef::Template {
            name: template,
            parameters,
        } => {
            let mut parameters = parameters.clone();
            if parameters.get("prometheus") == Some(&Value::Bool(false)) {
                return Err(Error::invalid(
                    format!("spec.experiment.{role}.parameters.prometheus"),
                    "must stay true: experiments are measured through the prometheus exporter",
                ));
            }
            if !spec.critical_processes.is_empty() && !parameters.contains_key("criticalProcesses")
            {
                let critical = serde_json::to_value(&spec.critical_processes)
                    .map_err(|e| Error::encoding("critical processes", e))?;
                parameters.insert("criticalProcesses".to_owned(), critical);
            }
            parameters
                .entry("collectionInterval".to_owned())
                .or_insert_with(|| {
                    Value::String(GoDuration::from(spec.scrape_interval).to_string())
                });
            (Some(template.clone()), parameters, None, Vec::new())
        }
        PipelineRef::Inline { config } => {
            let critical = spec
                .critical_processes
                .iter()
                .map(|p| p.name.clone())
                .collect();
            (None, serde_json::Map::new(), Some(config.clone()), critical)
        }
    };
    let mut labels = experiment_labels(id, &name);
    labels.insert(VARIANT_LABEL.to_owned(), role.as_str().to_owned());
    let mut pipeline = PhoenixProcessPipeline::new(
        &pipeline_name(&name, role),
        PhoenixProcessPipelineSpec {
            experiment_id: Some(id.to_string()),
            variant: role,
            template,
            parameters,
            config,
            critical_processes,
            collector,
        },
    );
    pipeline.metadata = owned_meta(experiment, pipeline_name(&name, role), labels);
    Ok(pipeline)
}

/// The `LoadSimulationJob` of an experiment that asks for one, owned by the experiment: the
/// experiment's workload for the experiment's duration.
///
/// # Errors
///
/// [`Error::Invalid`] on `spec.experiment.workload` for a custom or recorded workload, which
/// the cluster simulation does not run.
pub fn load_simulation(
    experiment: &PhoenixExperiment,
    spec: &ExperimentSpec,
    id: &ExperimentId,
) -> Result<Option<LoadSimulationJob>> {
    let Some(settings) = &experiment.spec.load_simulation else {
        return Ok(None);
    };
    let (profile, processes) = match &spec.workload.source {
        WorkloadSource::Profile { preset, processes } => (*preset, *processes),
        WorkloadSource::Custom { .. } | WorkloadSource::Recording { .. } => {
            return Err(Error::invalid(
                "spec.experiment.workload",
                "a load simulation on Kubernetes runs a profile preset (`profile`, `processes`, `seed`)",
            ));
        }
    };
    let name = experiment.name_any();
    // The workload runs where the collectors run: on the target's nodes, tolerating what the
    // collectors tolerate. The simulation's own settings win on a conflicting key.
    let mut pod = settings.pod.clone();
    if let Target::Kubernetes { node_selector, .. } = &spec.target {
        for (key, value) in node_selector {
            pod.node_selector
                .entry(key.clone())
                .or_insert_with(|| value.clone());
        }
    }
    for toleration in &experiment.spec.collector.tolerations {
        if !pod.tolerations.contains(toleration) {
            pod.tolerations.push(toleration.clone());
        }
    }
    let mut simulation = LoadSimulationJob::new(
        &simulation_name(&name),
        LoadSimulationJobSpec {
            profile,
            processes,
            duration: humantime::format_duration(spec.duration).to_string(),
            seed: spec.workload.seed,
            mode: settings.mode,
            scrape_interval: None,
            otlp_endpoint: None,
            experiment_id: Some(id.to_string()),
            pod,
        },
    );
    simulation.metadata = owned_meta(
        experiment,
        simulation_name(&name),
        experiment_labels(id, &name),
    );
    Ok(Some(simulation))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{LoadSimulationSettings, PhoenixExperimentSpec, SimulationMode};

    fn experiment(doc: Value) -> PhoenixExperiment {
        let mut e = PhoenixExperiment::new(
            "trial",
            PhoenixExperimentSpec {
                experiment: doc,
                collector: Default::default(),
                load_simulation: Some(LoadSimulationSettings {
                    mode: SimulationMode::Real,
                    pod: Default::default(),
                }),
                decision: None,
            },
        );
        e.metadata.namespace = Some("obs".to_owned());
        e.metadata.uid = Some("abcdef12-0000".to_owned());
        e
    }

    fn doc() -> Value {
        serde_json::json!({
            "name": "topk-trial",
            "baseline": {"template": "process-baseline-v1"},
            "candidate": {"template": "process-topk-v1", "parameters": {"topK": 10}},
            "duration": "30m",
            "warmUp": "5m",
            "criticalProcesses": ["^postgres$"],
            "workload": {"profile": "high-churn", "processes": 200, "seed": 3},
            "target": {"kind": "kubernetes", "namespace": "obs", "nodeSelector": {"pool": "a"}}
        })
    }

    #[test]
    fn variants_become_owned_pipelines() {
        let e = experiment(doc());
        let spec = experiment_spec(&e).unwrap();
        let id: ExperimentId = "exp-abcdef12".parse().unwrap();
        let p = variant_pipeline(&e, &spec, &id, VariantRole::Candidate).unwrap();
        assert_eq!(p.metadata.name.as_deref(), Some("trial-candidate"));
        assert_eq!(
            p.metadata.owner_references.as_ref().unwrap()[0].kind,
            "PhoenixExperiment"
        );
        assert_eq!(p.spec.template.as_deref(), Some("process-topk-v1"));
        assert_eq!(p.spec.parameters["topK"], 10);
        assert_eq!(
            p.spec.parameters["criticalProcesses"],
            serde_json::json!([{"name": "^postgres$"}])
        );
        assert_eq!(p.spec.parameters["collectionInterval"], "10s");
        assert_eq!(p.spec.collector.node_selector["pool"], "a");
        // The pipeline renders.
        crate::objects::render_pipeline(&p.spec, id.as_str()).unwrap();
        let sim = load_simulation(&e, &spec, &id).unwrap().unwrap();
        assert_eq!(sim.spec.duration, "30m");
        assert_eq!(sim.spec.processes, Some(200));
        assert_eq!(sim.spec.seed, 3);
    }

    #[test]
    fn the_simulation_runs_where_the_collectors_run() {
        use k8s_openapi::api::core::v1::Toleration;
        let taint = |key: &str| Toleration {
            key: Some(key.to_owned()),
            operator: Some("Exists".to_owned()),
            ..Toleration::default()
        };
        let mut e = experiment(doc());
        e.spec.collector.tolerations = vec![taint("dedicated"), taint("gpu")];
        let settings = e.spec.load_simulation.as_mut().unwrap();
        settings.pod.tolerations = vec![taint("gpu")];
        settings.pod.node_selector = BTreeMap::from([
            ("zone".to_owned(), "z1".to_owned()),
            ("pool".to_owned(), "own".to_owned()),
        ]);
        let spec = experiment_spec(&e).unwrap();
        let id: ExperimentId = "exp-abcdef12".parse().unwrap();
        let sim = load_simulation(&e, &spec, &id).unwrap().unwrap();
        let pod = &sim.spec.pod;
        assert_eq!(pod.node_selector["zone"], "z1");
        assert_eq!(
            pod.node_selector["pool"], "own",
            "the simulation's own setting wins"
        );
        assert_eq!(pod.tolerations, vec![taint("gpu"), taint("dedicated")]);
        // Without settings of its own, the target's selector.
        let mut e = experiment(doc());
        e.spec.collector.tolerations = vec![taint("dedicated")];
        let sim = load_simulation(&e, &spec, &id).unwrap().unwrap();
        assert_eq!(sim.spec.pod.node_selector["pool"], "a");
        assert_eq!(sim.spec.pod.tolerations, vec![taint("dedicated")]);
        // Every object the operator creates carries the label its watches select.
        for labels in [
            sim.metadata.labels.as_ref().unwrap(),
            variant_pipeline(&e, &spec, &id, VariantRole::Baseline)
                .unwrap()
                .metadata
                .labels
                .as_ref()
                .unwrap(),
        ] {
            assert_eq!(labels[super::super::MANAGED_BY_LABEL], "phoenix-operator");
        }
    }

    #[test]
    fn bad_specs_name_the_field() {
        let field = |doc: Value| match experiment_spec(&experiment(doc)).unwrap_err() {
            Error::Invalid { field, .. } => field,
            other => panic!("{other}"),
        };
        let mut d = doc();
        d["duration"] = "0s".into();
        assert_eq!(field(d), "spec.experiment.duration");
        let mut d = doc();
        d["bogus"] = 1.into();
        assert_eq!(field(d), "spec.experiment.bogus");
        let mut d = doc();
        d["target"]["namespace"] = "elsewhere".into();
        assert_eq!(field(d), "spec.experiment.target.namespace");
        let mut d = doc();
        d["candidate"]["parameters"] = serde_json::json!({"prometheus": false});
        let e = experiment(d);
        let spec = experiment_spec(&e).unwrap();
        let id: ExperimentId = "exp-abcdef12".parse().unwrap();
        let err = variant_pipeline(&e, &spec, &id, VariantRole::Candidate).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("spec.experiment.candidate.parameters.prometheus")
        );
    }
}
