//! What the `crdgen` binary writes: the CRDs, and the objects the builders make from sample
//! custom resources.

use std::path::{Path, PathBuf};

use kube::ResourceExt;
use phoenix_core::measurement::VariantRole;
use serde::{Deserialize as _, Serialize};

use crate::crd::{LoadSimulationJob, PhoenixExperiment, PhoenixProcessPipeline, crds};
use crate::objects::{self, Defaults};
use crate::{Error, Result};

/// One file to write: its name and its YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    /// The file name, e.g. `phoenixexperiments.phoenix.io.yaml`.
    pub name: String,
    /// The YAML text.
    pub yaml: String,
}

fn to_yaml<T: Serialize>(value: &T, what: &str) -> Result<String> {
    serde_yaml::to_string(value).map_err(|e| Error::encoding(what, e))
}

/// The CRD files: one per CRD, named after it.
///
/// # Errors
///
/// [`Error::Encoding`] if a CRD does not serialise (it always does).
pub fn crd_files() -> Result<Vec<ManifestFile>> {
    crds()
        .into_iter()
        .map(|crd| {
            let name = format!("{}.yaml", crd.name_any());
            Ok(ManifestFile {
                yaml: to_yaml(&crd, &name)?,
                name,
            })
        })
        .collect()
}

/// Writes `files` into `dir`, creating it.
///
/// # Errors
///
/// [`Error::Io`] naming the path that could not be written.
pub fn write_files(dir: &Path, files: &[ManifestFile]) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_owned(),
        source,
    })?;
    files
        .iter()
        .map(|file| {
            let path = dir.join(&file.name);
            std::fs::write(&path, &file.yaml).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            Ok(path)
        })
        .collect()
}

/// The CRD files in `dir` that are missing or differ from [`crd_files`], and the `.yaml`
/// files in `dir` that no CRD generates.
///
/// # Errors
///
/// [`Error::Io`] if `dir` cannot be listed.
pub fn stale_crd_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let expected = crd_files()?;
    let mut stale = Vec::new();
    for file in &expected {
        let path = dir.join(&file.name);
        match std::fs::read_to_string(&path) {
            Ok(text) if text == file.yaml => {}
            _ => stale.push(path),
        }
    }
    if dir.is_dir() {
        let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
            path: dir.to_owned(),
            source,
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".yaml") && !expected.iter().any(|f| f.name == name) {
                stale.push(entry.path());
            }
        }
    }
    stale.sort();
    Ok(stale)
}

/// A uid for a sample resource that has none: deterministic, so that the output is stable.
fn sample_uid(kind: &str, name: &str) -> String {
    let hash = xxhash_rust::xxh3::xxh3_128(format!("{kind}/{name}").as_bytes());
    let hex = format!("{hash:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn file_name(kind: &str, name: Option<&str>) -> String {
    format!(
        "{}-{}.yaml",
        kind.to_ascii_lowercase(),
        name.unwrap_or("unnamed")
    )
}

fn pipeline_objects(
    pipeline: &PhoenixProcessPipeline,
    defaults: &Defaults,
) -> Result<Vec<ManifestFile>> {
    let id = crate::reconciler::pipeline_experiment_id(pipeline)?;
    let rendered = objects::render_pipeline(&pipeline.spec, &id)?;
    let cm = objects::config_map(pipeline, &rendered, &id);
    let ds = objects::daemon_set(pipeline, &rendered, &id, defaults);
    let svc = objects::service(pipeline, &rendered, &id)?;
    Ok(vec![
        ManifestFile {
            name: file_name("ConfigMap", cm.metadata.name.as_deref()),
            yaml: to_yaml(&cm, "ConfigMap")?,
        },
        ManifestFile {
            name: file_name("DaemonSet", ds.metadata.name.as_deref()),
            yaml: to_yaml(&ds, "DaemonSet")?,
        },
        ManifestFile {
            name: file_name("Service", svc.metadata.name.as_deref()),
            yaml: to_yaml(&svc, "Service")?,
        },
    ])
}

fn simulation_objects(
    simulation: &LoadSimulationJob,
    defaults: &Defaults,
) -> Result<Vec<ManifestFile>> {
    let job = objects::simulation_job(simulation, defaults)?;
    Ok(vec![ManifestFile {
        name: file_name("Job", job.metadata.name.as_deref()),
        yaml: to_yaml(&job, "Job")?,
    }])
}

/// The Kubernetes objects (ConfigMaps, DaemonSets, Services, Jobs) the operator would create
/// for one custom resource document: a `PhoenixProcessPipeline`, a `LoadSimulationJob`, or a
/// `PhoenixExperiment`, which gives the objects of the pipelines and the load simulation it
/// creates.
///
/// # Errors
///
/// [`Error::Invalid`] naming the field of a resource the operator would mark Degraded, and
/// [`Error::Encoding`] for a document that is not one of the three kinds.
pub fn objects_for(document: &serde_json::Value, defaults: &Defaults) -> Result<Vec<ManifestFile>> {
    let kind = document
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or_default();
    let parse_error = |e: serde_json::Error| Error::encoding(format!("a {kind} document"), e);
    match kind {
        "PhoenixProcessPipeline" => {
            let mut pipeline: PhoenixProcessPipeline =
                serde_json::from_value(document.clone()).map_err(parse_error)?;
            let uid = sample_uid(kind, &pipeline.name_any());
            pipeline.metadata.uid.get_or_insert(uid);
            pipeline_objects(&pipeline, defaults)
        }
        "LoadSimulationJob" => {
            let mut simulation: LoadSimulationJob =
                serde_json::from_value(document.clone()).map_err(parse_error)?;
            let uid = sample_uid(kind, &simulation.name_any());
            simulation.metadata.uid.get_or_insert(uid);
            simulation_objects(&simulation, defaults)
        }
        "PhoenixExperiment" => {
            let mut experiment: PhoenixExperiment =
                serde_json::from_value(document.clone()).map_err(parse_error)?;
            let uid = sample_uid(kind, &experiment.name_any());
            experiment.metadata.uid.get_or_insert(uid);
            let spec = objects::experiment_spec(&experiment)?;
            let id = crate::reconciler::experiment_id(&experiment)?;
            let mut files = Vec::new();
            for role in VariantRole::BOTH {
                let mut pipeline = objects::variant_pipeline(&experiment, &spec, &id, role)?;
                let uid = sample_uid("PhoenixProcessPipeline", &pipeline.name_any());
                pipeline.metadata.uid.get_or_insert(uid);
                files.extend(pipeline_objects(&pipeline, defaults)?);
            }
            if let Some(mut simulation) = objects::load_simulation(&experiment, &spec, &id)? {
                let uid = sample_uid("LoadSimulationJob", &simulation.name_any());
                simulation.metadata.uid.get_or_insert(uid);
                files.extend(simulation_objects(&simulation, defaults)?);
            }
            Ok(files)
        }
        other => Err(Error::encoding(
            "sample document",
            format!("`kind: {other}` is not a Phoenix resource"),
        )),
    }
}

/// The objects for every document of every `*.yaml` file in `samples`, in file order.
///
/// # Errors
///
/// [`Error::Io`] for an unreadable file, [`Error::Encoding`] naming the file for YAML that
/// does not parse, and the errors of [`objects_for`] prefixed with the file.
pub fn objects_from_samples(samples: &Path, defaults: &Defaults) -> Result<Vec<ManifestFile>> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io { path, source }
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(samples)
        .map_err(io(samples))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_json::Value::deserialize(document)
                .map_err(|e| Error::encoding(path.display().to_string(), e))?;
            if value.is_null() {
                continue;
            }
            let objects = objects_for(&value, defaults)
                .map_err(|e| Error::encoding(path.display().to_string(), e))?;
            files.extend(objects);
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_files_are_named_after_their_crds() {
        let files = crd_files().unwrap();
        let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "phoenixexperiments.phoenix.io.yaml",
                "phoenixprocesspipelines.phoenix.io.yaml",
                "loadsimulationjobs.phoenix.io.yaml"
            ]
        );
        assert!(files[0].yaml.contains("subresources:"));
    }

    #[test]
    fn stale_files_are_found() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(stale_crd_files(dir.path()).unwrap().len(), 3);
        write_files(dir.path(), &crd_files().unwrap()).unwrap();
        assert!(stale_crd_files(dir.path()).unwrap().is_empty());
        std::fs::write(dir.path().join("extra.yaml"), "x").unwrap();
        assert_eq!(stale_crd_files(dir.path()).unwrap().len(), 1);
    }

    fn deploy_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
    }

    #[test]
    fn committed_crds_match_the_types() {
        let stale = stale_crd_files(&deploy_dir().join("crds")).unwrap();
        assert!(
            stale.is_empty(),
            "deploy/crds differs from the types: {stale:?}; run `cargo run -p phoenix-operator --bin crdgen`"
        );
    }

    #[test]
    fn every_sample_builds_its_objects() {
        let files =
            objects_from_samples(&deploy_dir().join("samples"), &Defaults::default()).unwrap();
        for kind in ["configmap-", "daemonset-", "service-", "job-"] {
            assert!(
                files.iter().any(|f| f.name.starts_with(kind)),
                "no {kind} object"
            );
        }
        let mut names: Vec<_> = files.iter().map(|f| &f.name).collect();
        names.dedup();
        assert_eq!(names.len(), files.len(), "file names are unique");
    }

    #[test]
    fn sample_uids_are_stable_uuids() {
        let uid = sample_uid("PhoenixExperiment", "a");
        assert_eq!(uid, sample_uid("PhoenixExperiment", "a"));
        assert_eq!(uid.len(), 36);
        assert_ne!(uid, sample_uid("PhoenixExperiment", "b"));
    }
}
