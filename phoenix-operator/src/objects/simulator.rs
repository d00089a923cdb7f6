//! The Job of a `LoadSimulationJob`.

use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use phoenix_core::experiment::MAX_PROCESSES;
use phoenix_generator::kubernetes::EXPERIMENT_LABEL;

use super::{
    Defaults, SIMULATOR_PROMETHEUS_PORT, check_dns_label, common_labels, default_resources, names,
    owned_meta,
};
use crate::crd::{LoadSimulationJob, LoadSimulationJobSpec, SimulationMode};
use crate::{Error, Result};

const COMPONENT: &str = "load-simulator";
/// The most worker processes `phoenix-sim spawn` runs.
const MAX_REAL_PROCESSES: u32 = 1024;
/// How long past its duration a simulation may run before Kubernetes stops it.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(120);

/// Parses a humantime duration of a spec field, which must be longer than zero.
pub(crate) fn parse_duration(text: &str, field: &str) -> Result<Duration> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        Error::invalid(
            field,
            format!("`{text}` is not a duration ({e}); write e.g. `30m`"),
        )
    })?;
    if d.is_zero() {
        return Err(Error::invalid(field, "must be longer than zero"));
    }
    Ok(d)
}

/// The `phoenix-sim` command line of a simulation.
///
/// # Errors
///
/// [`Error::Invalid`] naming `spec.duration`, `spec.scrapeInterval`, `spec.processes` or
/// `spec.otlpEndpoint`.
pub fn simulator_args(spec: &LoadSimulationJobSpec) -> Result<Vec<String>> {
    let duration = parse_duration(&spec.duration, "spec.duration")?;
    let mut args = match spec.mode {
        SimulationMode::Real => vec!["spawn".to_owned()],
        SimulationMode::Synthetic => vec!["run".to_owned()],
    };
    args.extend([
        "--profile".to_owned(),
        spec.profile.as_str().to_owned(),
        "--seed".to_owned(),
        spec.seed.to_string(),
        "--duration".to_owned(),
        humantime::format_duration(duration).to_string(),
    ]);
    if let Some(n) = spec.processes {
        let max = match spec.mode {
            SimulationMode::Real => MAX_REAL_PROCESSES,
            SimulationMode::Synthetic => MAX_PROCESSES,
        };
        if !(1..=max).contains(&n) {
            return Err(Error::invalid(
                "spec.processes",
                format!(
                    "must be within 1..={max} in {} mode, got {n}",
                    spec.mode.as_str()
                ),
            ));
        }
        args.extend(["--processes".to_owned(), n.to_string()]);
    }
    match spec.mode {
        SimulationMode::Real => {
            if spec.otlp_endpoint.is_some() || spec.scrape_interval.is_some() {
                let field = if spec.otlp_endpoint.is_some() {
                    "spec.otlpEndpoint"
                } else {
                    "spec.scrapeInterval"
                };
                return Err(Error::invalid(
                    field,
                    "applies to synthetic mode only: real processes are scraped by the collectors",
                ));
            }
            args.extend(["--max-processes".to_owned(), MAX_REAL_PROCESSES.to_string()]);
        }
        SimulationMode::Synthetic => {
            if let Some(interval) = &spec.scrape_interval {
                let interval = parse_duration(interval, "spec.scrapeInterval")?;
                args.extend([
                    "--scrape-interval".to_owned(),
                    humantime::format_duration(interval).to_string(),
                ]);
            }
            args.push("--realtime".to_owned());
            match &spec.otlp_endpoint {
                Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                    args.extend(["--otlp-http".to_owned(), url.clone()]);
                }
                Some(url) => {
                    return Err(Error::invalid(
                        "spec.otlpEndpoint",
                        format!("must be an http:// or https:// URL, got `{url}`"),
                    ));
                }
                None => args.extend([
                    "--prometheus".to_owned(),
                    format!("0.0.0.0:{SIMULATOR_PROMETHEUS_PORT}"),
                ]),
            }
        }
    }
    Ok(args)
}

/// The Job running `phoenix-sim` for the simulation's duration; Kubernetes stops it
/// two minutes after the duration at the latest.
///
/// # Errors
///
/// As [`simulator_args`]; [`Error::Invalid`] on `metadata.name` when the Job's name (the
/// simulation's name + `-sim`) would not be a DNS label, which its pods' `job-name` label
/// requires.
pub fn simulation_job(simulation: &LoadSimulationJob, defaults: &Defaults) -> Result<Job> {
    let spec = &simulation.spec;
    check_dns_label(&names::job(&simulation.name_any()), "metadata.name")?;
    let args = simulator_args(spec)?;
    let duration = parse_duration(&spec.duration, "spec.duration")?;
    let deadline = i64::try_from(duration.saturating_add(STOP_GRACE).as_secs()).unwrap_or(i64::MAX);
    let mut labels = common_labels(&simulation.name_any(), COMPONENT);
    if let Some(id) = &spec.experiment_id {
        labels.insert(EXPERIMENT_LABEL.to_owned(), id.clone());
    }
    let ports =
        (spec.mode == SimulationMode::Synthetic && spec.otlp_endpoint.is_none()).then(|| {
            vec![ContainerPort {
                name: Some("metrics".to_owned()),
                container_port: i32::from(SIMULATOR_PROMETHEUS_PORT),
                protocol: Some("TCP".to_owned()),
                ..ContainerPort::default()
            }]
        });
    let container = Container {
        name: "phoenix-sim".to_owned(),
        image: Some(
            spec.pod
                .image
                .clone()
                .unwrap_or_else(|| defaults.simulator_image.clone()),
        ),
        args: Some(args),
        ports,
        resources: Some(
            spec.pod
                .resources
                .clone()
                .unwrap_or_else(|| default_resources("1536Mi")),
        ),
        ..Container::default()
    };
    let pod = PodSpec {
        restart_policy: Some("Never".to_owned()),
        node_selector: (!spec.pod.node_selector.is_empty()).then(|| spec.pod.node_selector.clone()),
        tolerations: (!spec.pod.tolerations.is_empty()).then(|| spec.pod.tolerations.clone()),
        service_account_name: spec.pod.service_account_name.clone(),
        containers: vec![container],
        ..PodSpec::default()
    };
    Ok(Job {
        metadata: owned_meta(
            simulation,
            names::job(&simulation.name_any()),
            labels.clone(),
        ),
        spec: Some(JobSpec {
            backoff_limit: Some(1),
            active_deadline_seconds: Some(deadline),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::PodSettings;
    use phoenix_core::experiment::ProfilePreset;

    fn spec(mode: SimulationMode) -> LoadSimulationJobSpec {
        LoadSimulationJobSpec {
            profile: ProfilePreset::HighChurn,
            processes: Some(300),
            duration: "30m".to_owned(),
            seed: 7,
            mode,
            scrape_interval: None,
            otlp_endpoint: None,
            experiment_id: Some("exp-abcd1234".to_owned()),
            pod: PodSettings::default(),
        }
    }

    #[test]
    fn real_mode_spawns_workers() {
        let args = simulator_args(&spec(SimulationMode::Real)).unwrap();
        assert_eq!(
            args.join(" "),
            "spawn --profile high-churn --seed 7 --duration 30m --processes 300 --max-processes 1024"
        );
    }

    #[test]
    fn synthetic_mode_runs_in_real_time() {
        let mut s = spec(SimulationMode::Synthetic);
        s.scrape_interval = Some("15s".to_owned());
        let args = simulator_args(&s).unwrap().join(" ");
        assert_eq!(
            args,
            "run --profile high-churn --seed 7 --duration 30m --processes 300 --scrape-interval 15s --realtime --prometheus 0.0.0.0:9464"
        );
        s.otlp_endpoint = Some("http://collector:4318".to_owned());
        assert!(
            simulator_args(&s)
                .unwrap()
                .join(" ")
                .ends_with("--otlp-http http://collector:4318")
        );
    }

    #[test]
    fn bad_fields_are_named() {
        let field = |s: &LoadSimulationJobSpec| match simulator_args(s).unwrap_err() {
            Error::Invalid { field, .. } => field,
            other => panic!("{other}"),
        };
        let mut s = spec(SimulationMode::Real);
        s.duration = "soon".to_owned();
        assert_eq!(field(&s), "spec.duration");
        let mut s = spec(SimulationMode::Real);
        s.processes = Some(5000);
        assert_eq!(field(&s), "spec.processes");
        let mut s = spec(SimulationMode::Real);
        s.otlp_endpoint = Some("http://x".to_owned());
        assert_eq!(field(&s), "spec.otlpEndpoint");
        let mut s = spec(SimulationMode::Synthetic);
        s.otlp_endpoint = Some("collector:4318".to_owned());
        assert_eq!(field(&s), "spec.otlpEndpoint");
    }

    #[test]
    fn job_runs_once_and_is_bounded() {
        let mut sim = LoadSimulationJob::new("load", spec(SimulationMode::Synthetic));
        sim.metadata.namespace = Some("obs".to_owned());
        sim.metadata.uid = Some("u-1".to_owned());
        let job = simulation_job(&sim, &Defaults::default()).unwrap();
        assert_eq!(job.metadata.name.as_deref(), Some("load-sim"));
        assert_eq!(
            job.metadata.labels.as_ref().unwrap()[crate::objects::MANAGED_BY_LABEL],
            "phoenix-operator"
        );
        assert_eq!(
            job.metadata.owner_references.as_ref().unwrap()[0].kind,
            "LoadSimulationJob"
        );
        let spec = job.spec.unwrap();
        assert_eq!(spec.active_deadline_seconds, Some(30 * 60 + 120));
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let c = &pod.containers[0];
        assert!(c.image.as_deref().unwrap().contains("/phoenix-sim:"));
        assert_eq!(c.ports.as_ref().unwrap()[0].container_port, 9464);
        assert_eq!(
            spec.template.metadata.unwrap().labels.unwrap()[EXPERIMENT_LABEL],
            "exp-abcd1234"
        );
    }

    #[test]
    fn job_names_must_be_dns_labels() {
        let mut sim = LoadSimulationJob::new(&"s".repeat(60), spec(SimulationMode::Real));
        sim.metadata.namespace = Some("obs".to_owned());
        let e = simulation_job(&sim, &Defaults::default()).unwrap_err();
        assert!(e.to_string().starts_with("metadata.name:"), "{e}");
        assert!(e.to_string().contains(&"s".repeat(60)), "{e}");
    }
}
