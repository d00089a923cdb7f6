//! Kubernetes operator for Phoenix: run process-metrics pipeline experiments across the nodes
//! of a cluster.
//!
//! - [`crd`]: the `phoenix.io/v1alpha1` custom resources `PhoenixExperiment`,
//!   `PhoenixProcessPipeline` and `LoadSimulationJob`, as Rust types; the `crdgen` binary
//!   writes their CRDs into `deploy/crds/` ([`manifest`]).
//! - [`objects`]: pure builders of the objects the operator creates: the ConfigMap with the
//!   collector config rendered by phoenix-generator, the collector DaemonSet, the metrics
//!   Service and the simulator Job.
//! - [`reconciler`]: one reconciler per kind, with server-side apply, owner references,
//!   finalizers, status conditions, Kubernetes events and an error policy with backoff.
//! - [`executor`] and [`store`]: phoenix-core's `Executor` and `ExperimentStore` on the
//!   cluster, so that phoenix-core's experiment controller drives `PhoenixExperiment`s.
//! - [`prometheus`]: the Prometheus HTTP API client the executor measures with.
//! - [`run()`]: the operator itself, one controller per kind until a shutdown signal.
//!
//! Build the collector objects of a pipeline without a cluster:
//!
//! ```
//! use phoenix_operator::crd::PhoenixProcessPipeline;
//! use phoenix_operator::objects::{Defaults, config_map, daemon_set, render_pipeline};
//! use phoenix_operator::reconciler::pipeline_experiment_id;
//!
//! let pipeline: PhoenixProcessPipeline = serde_yaml::from_str(r#"
//! apiVersion: phoenix.io/v1alpha1
//! kind: PhoenixProcessPipeline
//! metadata: {name: topk, namespace: observability, uid: 0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9}
//! spec:
//!   variant: candidate
//!   template: process-topk-v1
//!   parameters: {topK: 10, criticalProcesses: ["^postgres$"]}
//! "#)?;
//! let id = pipeline_experiment_id(&pipeline)?;
//! assert_eq!(id, "exp-0f1e2d3c");
//! let rendered = render_pipeline(&pipeline.spec, &id)?;
//! assert!(rendered.yaml.contains("root_path: /hostfs"));
//!
//! let cm = config_map(&pipeline, &rendered, &id);
//! assert_eq!(cm.metadata.name.as_deref(), Some("topk-collector-config"));
//! let ds = daemon_set(&pipeline, &rendered, &id, &Defaults::default());
//! let pod = ds.spec.template.spec.as_ref().expect("the builder sets a pod spec");
//! assert_eq!((pod.host_pid, pod.host_network), (Some(true), Some(false)));
//!
//! // Bad input names the field; the reconciler writes it into the Degraded condition.
//! let mut bad = pipeline.clone();
//! bad.spec.parameters.insert("topK".into(), 0.into());
//! let err = render_pipeline(&bad.spec, &id).unwrap_err();
//! assert_eq!(err.to_string(), "spec.parameters.topK: must be at least 1, got 0");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! See `docs/operator.md` for the resources, what the operator does with them, and how it
//! keeps experiments in the cluster.

pub mod crd;
pub mod error;
pub mod executor;
pub mod manifest;
pub mod objects;
pub mod prometheus;
pub mod reconciler;
pub mod run;
pub mod store;

pub use error::{Error, Result};
pub use run::{Settings, run};
