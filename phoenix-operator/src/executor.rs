//! The Kubernetes executor: phoenix-core's [`Executor`] on a cluster.
//!
//! It deploys each variant as a `PhoenixProcessPipeline` owned by the experiment (and the
//! workload as a `LoadSimulationJob` when the experiment asks for one), waits until both
//! pipelines are Ready, and measures them through the Prometheus HTTP API, window by window,
//! at the wall-clock times the windows cover from the start of the run.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use phoenix_core::executor::Executor;
use phoenix_core::experiment::{CriticalProcess, Experiment};
use phoenix_core::measurement::{Noise, VariantRole, VariantSample, Window, WindowMeasurement};
use phoenix_core::phase::Phase;
use phoenix_core::{Error as CoreError, Result as CoreResult};
use phoenix_generator::kubernetes::EXPERIMENT_LABEL;

use crate::crd::{
    ConditionType, Conditions, LoadSimulationJob, PhoenixExperiment, PhoenixProcessPipeline,
};
use crate::objects::{
    FIELD_MANAGER, load_simulation, pipeline_name, render_pipeline, simulation_name,
    variant_pipeline,
};
use crate::prometheus::{PrometheusClient, TimeWindow, VariantSelector, escape};
use crate::reconciler::Context;

/// The name of the pipeline a promotion makes the target's active one.
pub const ACTIVE_PIPELINE: &str = "phoenix-active";
/// Annotation on the active pipeline: the experiment that promoted it.
pub const PROMOTED_BY_ANNOTATION: &str = "phoenix.io/promoted-by";
/// Annotation on the active pipeline: the spec it replaced (JSON), restored by a rollback.
pub const PREVIOUS_SPEC_ANNOTATION: &str = "phoenix.io/previous-spec";

fn failed(message: impl Into<String>) -> CoreError {
    CoreError::executor(message)
}

fn kube_failed(what: &str, error: kube::Error) -> CoreError {
    CoreError::Executor {
        message: format!("{what}: {error}"),
        source: Some(Box::new(error)),
    }
}

/// Runs the variants of one `PhoenixExperiment` on its cluster.
pub struct KubernetesExecutor {
    ctx: Arc<Context>,
    resource: PhoenixExperiment,
    namespace: String,
}

impl KubernetesExecutor {
    /// An executor for `resource` (its owner references, collector and simulation settings).
    pub fn new(ctx: Arc<Context>, resource: PhoenixExperiment) -> Self {
        let namespace = resource.namespace().unwrap_or_default();
        Self {
            ctx,
            resource,
            namespace,
        }
    }

    fn pipelines(&self) -> Api<PhoenixProcessPipeline> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace)
    }

    fn simulations(&self) -> Api<LoadSimulationJob> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace)
    }

    fn prometheus(&self) -> CoreResult<&PrometheusClient> {
        self.ctx.prometheus.as_ref().ok_or_else(|| {
            failed("no Prometheus URL is configured (set PHOENIX_PROMETHEUS_URL on the operator)")
        })
    }

    /// The experiment resource as it is now: the run outlives the reconcile that started it,
    /// so the collector and simulation settings (and the status) are read again at each step
    /// that uses them rather than taken from the snapshot the executor was created with.
    async fn current(&self) -> CoreResult<PhoenixExperiment> {
        let api: Api<PhoenixExperiment> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        api.get(&self.resource.name_any())
            .await
            .map_err(|e| kube_failed("reading the experiment", e))
    }

    /// When the run started: `status.runStartedAt`, written with the transition into
    /// Running (or that transition in the event log).
    async fn run_start(&self) -> CoreResult<DateTime<Utc>> {
        let resource = self.current().await?;
        if let Some(at) = resource.status.as_ref().and_then(|s| s.run_started_at) {
            return Ok(at);
        }
        resource
            .status
            .iter()
            .flat_map(|s| s.history.iter())
            .rev()
            .find(|h| h.to == Some(Phase::Running) && h.from != Some(Phase::Running))
            .map(|h| h.at)
            .ok_or_else(|| failed("the status records no start of the run"))
    }

    async fn wait_until_ready(&self, experiment: &Experiment) -> CoreResult<()> {
        let deadline = tokio::time::Instant::now() + self.ctx.timing.ready_timeout;
        loop {
            let mut waiting = Vec::new();
            for role in VariantRole::BOTH {
                let name = pipeline_name(&self.resource.name_any(), role);
                let pipeline = self
                    .pipelines()
                    .get_opt(&name)
                    .await
                    .map_err(|e| kube_failed(&format!("reading pipeline {name}"), e))?;
                let Some(pipeline) = pipeline else {
                    waiting.push(format!("{name} does not exist"));
                    continue;
                };
                let status = pipeline.status.clone().unwrap_or_default();
                if let Some(degraded) = crate::reconciler::degraded(&status.conditions) {
                    return Err(failed(format!("pipeline {name} is degraded: {degraded}")));
                }
                let current = status.observed_generation == pipeline.metadata.generation;
                if !(current && status.conditions.is_true(ConditionType::Ready)) {
                    waiting.push(format!(
                        "{name}: {}/{} collectors ready",
                        status.ready_nodes, status.desired_nodes
                    ));
                }
            }
            if waiting.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(failed(format!(
                    "experiment {}: pipelines not ready after {}: {}",
                    experiment.id,
                    humantime::format_duration(self.ctx.timing.ready_timeout),
                    waiting.join("; ")
                )));
            }
            tokio::time::sleep(self.ctx.timing.poll).await;
        }
    }

    async fn apply<K>(&self, api: &Api<K>, object: &K) -> CoreResult<()>
    where
        K: kube::Resource
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let name = object.name_any();
        match api.patch(&name, &params, &Patch::Apply(object)).await {
            Ok(_) => Ok(()),
            // Refused as invalid: the run fails naming the fields, as a reconciler's Degraded.
            Err(kube::Error::Api(status)) if status.is_invalid() || status.code == 422 => {
                let kind = K::kind(&K::DynamicType::default()).into_owned();
                Err(failed(
                    crate::reconciler::rejected(&kind, &name, kube::Error::Api(status)).to_string(),
                ))
            }
            Err(e) => Err(kube_failed(&format!("applying {name}"), e)),
        }
    }

    async fn delete<K>(&self, api: &Api<K>, name: &str) -> CoreResult<()>
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
            Err(e) => Err(kube_failed(&format!("deleting {name}"), e)),
        }
    }

    /// Figures of one variant for one window.
    async fn sample(
        &self,
        prometheus: &PrometheusClient,
        experiment: &Experiment,
        role: VariantRole,
        run: (SystemTime, SystemTime, SystemTime),
    ) -> CoreResult<(VariantSample, Vec<u64>)> {
        let (first, start, end) = run;
        let selector = VariantSelector::new(experiment.id.as_str(), role);
        let window = TimeWindow::new(start, end).map_err(|e| failed(e.to_string()))?;
        let measure = |e: crate::Error| failed(e.to_string());
        let figures = prometheus
            .variant_figures(&selector, window)
            .await
            .map_err(measure)?;
        let to_date = prometheus
            .distinct_series(&selector, TimeWindow::new(first, end).map_err(measure)?)
            .await
            .map_err(measure)?;
        let before = if start > first {
            prometheus
                .distinct_series(&selector, TimeWindow::new(first, start).map_err(measure)?)
                .await
                .map_err(measure)?
        } else {
            0
        };
        let presence = critical_presence(
            prometheus,
            &selector,
            &experiment.spec.critical_processes,
            window,
            experiment.spec.scrape_interval,
        )
        .await
        .map_err(measure)?;
        let interval = experiment.spec.scrape_interval.as_secs_f64().max(1.0);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let scrapes = (window.length().as_secs_f64() / interval).round() as u32;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let data_points = figures
            .exported_points
            .map_or(figures.scraped_samples, |p| p.max(0.0).round() as u64);
        Ok((
            VariantSample {
                scrapes,
                mean_active_series: figures.mean_active_series,
                distinct_series_to_date: to_date,
                new_series: to_date.saturating_sub(before),
                data_points,
                bytes: 0,
                critical_expected: 0,
                critical_seen: 0,
                cpu_cores: figures.collector_cpu_cores,
                memory_bytes: figures.collector_memory_bytes,
            },
            presence,
        ))
    }
}

/// The PromQL query measuring how often instances of one critical process were present
/// among the variant's series over the last `range`: at every `step` (the scrape interval),
/// the number of distinct instances, `(node, process_pid)` pairs, with a sample in the last
/// step and a half (the half absorbs scrape jitter; an instance that is gone is counted at
/// most once more), summed over the range. A process running on every one of `n` nodes for `k` scrapes
/// counts `n * k`, whatever its pids; an instance the pipeline drops halfway counts half.
///
/// Patterns are unanchored, as in OTTL's `IsMatch`; PromQL anchors its regexes, hence the
/// `.*` around them.
pub fn critical_query(
    selector: &VariantSelector,
    process: &CriticalProcess,
    range: Duration,
    step: Duration,
) -> String {
    let mut matchers = format!(
        "{},process_executable_name=~\".*(?:{}).*\"",
        selector.matchers(),
        escape(&process.name)
    );
    if let Some(path) = &process.path {
        matchers.push_str(&format!(
            ",process_executable_path=~\".*(?:{}).*\"",
            escape(path)
        ));
    }
    let step_ms = step.as_millis().max(1);
    let lookback_ms = step_ms + step_ms / 2;
    format!(
        "sum_over_time((count(count by (node, process_pid) (last_over_time({{{matchers}}}[{lookback_ms}ms]))))[{}ms:{step_ms}ms])",
        range.as_millis().max(1)
    )
}

/// Instance-scrapes of each critical process (see [`critical_query`]), in the order of
/// `processes`.
async fn critical_presence(
    prometheus: &PrometheusClient,
    selector: &VariantSelector,
    processes: &[CriticalProcess],
    window: TimeWindow,
    step: Duration,
) -> crate::Result<Vec<u64>> {
    let mut presence = Vec::with_capacity(processes.len());
    for process in processes {
        let query = critical_query(selector, process, window.length(), step);
        let value = prometheus.query_value(&query, window.end()).await?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        presence.push(value.map_or(0, |v| v.max(0.0).round() as u64));
    }
    Ok(presence)
}

/// Critical-process coverage of the candidate: `(expected, seen)` instance-scrapes, where the
/// baseline (which keeps every process) sets what was there to keep, and the candidate is
/// credited per process with at most what the baseline saw.
pub fn critical_coverage(baseline: &[u64], candidate: &[u64]) -> (u64, u64) {
    let expected = baseline.iter().sum();
    let seen = baseline
        .iter()
        .zip(candidate)
        .map(|(b, c)| (*c).min(*b))
        .sum();
    (expected, seen)
}

fn at(offset: Duration, start: DateTime<Utc>) -> SystemTime {
    SystemTime::from(start) + offset
}

#[async_trait]
impl Executor for KubernetesExecutor {
    fn noise(&self) -> Noise {
        Noise::Noisy
    }

    async fn prepare(&self, experiment: &Experiment) -> CoreResult<()> {
        let resource = self.current().await?;
        for role in VariantRole::BOTH {
            let pipeline = variant_pipeline(&resource, &experiment.spec, &experiment.id, role)
                .map_err(|e| failed(e.to_string()))?;
            // Render first, so that a bad template or parameter fails the run naming it.
            render_pipeline(&pipeline.spec, experiment.id.as_str())
                .map_err(|e| failed(format!("{role} pipeline: {e}")))?;
            self.apply(&self.pipelines(), &pipeline).await?;
        }
        Ok(())
    }

    async fn start(&self, experiment: &Experiment) -> CoreResult<()> {
        let resource = self.current().await?;
        if let Some(simulation) = load_simulation(&resource, &experiment.spec, &experiment.id)
            .map_err(|e| failed(e.to_string()))?
        {
            let api = self.simulations();
            // A simulation runs once: a finished one from an earlier attempt is not replayed.
            let exists = api
                .get_opt(&simulation.name_any())
                .await
                .map_err(|e| kube_failed("reading the load simulation", e))?
                .is_some();
            if !exists {
                api.create(&PostParams::default(), &simulation)
                    .await
                    .map_err(|e| kube_failed("creating the load simulation", e))?;
            }
        }
        self.wait_until_ready(experiment).await
    }

    async fn measure(
        &self,
        experiment: &Experiment,
        window: Window,
    ) -> CoreResult<WindowMeasurement> {
        let prometheus = self.prometheus()?;
        let run_start = self.run_start().await?;
        let first = experiment
            .spec
            .windows()
            .first()
            .map_or(window.start, |w| w.start);
        let (first, start, end) = (
            at(first, run_start),
            at(window.start, run_start),
            at(window.end, run_start),
        );
        let ready_at = end + self.ctx.timing.scrape_lag;
        if let Ok(wait) = ready_at.duration_since(SystemTime::now()) {
            tokio::time::sleep(wait).await;
        }
        let (mut baseline, baseline_presence) = self
            .sample(
                prometheus,
                experiment,
                VariantRole::Baseline,
                (first, start, end),
            )
            .await?;
        let (mut candidate, candidate_presence) = self
            .sample(
                prometheus,
                experiment,
                VariantRole::Candidate,
                (first, start, end),
            )
            .await?;
        // The baseline keeps every process: the instances it saw at each scrape are what was
        // there to keep.
        let (expected, seen) = critical_coverage(&baseline_presence, &candidate_presence);
        baseline.critical_expected = expected;
        baseline.critical_seen = expected;
        candidate.critical_expected = expected;
        candidate.critical_seen = seen;
        Ok(WindowMeasurement {
            window,
            baseline,
            candidate,
        })
    }

    async fn tear_down(&self, _experiment: &Experiment) -> CoreResult<()> {
        let name = self.resource.name_any();
        self.delete(&self.simulations(), &simulation_name(&name))
            .await?;
        for role in VariantRole::BOTH {
            self.delete(&self.pipelines(), &pipeline_name(&name, role))
                .await?;
        }
        Ok(())
    }

    async fn promote(&self, experiment: &Experiment) -> CoreResult<()> {
        let api = self.pipelines();
        let resource = self.current().await?;
        let mut candidate = variant_pipeline(
            &resource,
            &experiment.spec,
            &experiment.id,
            VariantRole::Candidate,
        )
        .map_err(|e| failed(e.to_string()))?;
        let previous = api
            .get_opt(ACTIVE_PIPELINE)
            .await
            .map_err(|e| kube_failed("reading the active pipeline", e))?;
        let mut annotations = std::collections::BTreeMap::from([(
            PROMOTED_BY_ANNOTATION.to_owned(),
            format!("{}/{}", self.resource.name_any(), experiment.id),
        )]);
        if let Some(previous) = previous {
            let promoted_here = previous.annotations().get(PROMOTED_BY_ANNOTATION)
                == annotations.get(PROMOTED_BY_ANNOTATION);
            if promoted_here {
                return Ok(());
            }
            let spec = serde_json::to_string(&previous.spec)
                .map_err(|e| failed(format!("encoding the active pipeline: {e}")))?;
            annotations.insert(PREVIOUS_SPEC_ANNOTATION.to_owned(), spec);
        }
        // The active pipeline outlives the experiment: no owner reference. Its series must
        // not count as the candidate's (which runs until the experiment is deleted): no
        // experiment id of the experiment, so that the pipeline derives its own from its uid.
        candidate.spec.experiment_id = None;
        let mut labels = candidate.metadata.labels.take().unwrap_or_default();
        labels.remove(EXPERIMENT_LABEL);
        candidate.metadata = kube::api::ObjectMeta {
            name: Some(ACTIVE_PIPELINE.to_owned()),
            namespace: Some(self.namespace.clone()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..kube::api::ObjectMeta::default()
        };
        self.apply(&api, &candidate).await
    }

    async fn rollback(&self, experiment: &Experiment) -> CoreResult<()> {
        let api = self.pipelines();
        let Some(active) = api
            .get_opt(ACTIVE_PIPELINE)
            .await
            .map_err(|e| kube_failed("reading the active pipeline", e))?
        else {
            return Ok(());
        };
        let ours = active
            .annotations()
            .get(PROMOTED_BY_ANNOTATION)
            .is_some_and(|by| by.ends_with(experiment.id.as_str()));
        if !ours {
            // Rejecting a candidate that was never promoted changes nothing on the target.
            return Ok(());
        }
        match active.annotations().get(PREVIOUS_SPEC_ANNOTATION) {
            Some(previous) => {
                let spec = serde_json::from_str(previous)
                    .map_err(|e| failed(format!("reading the previous active pipeline: {e}")))?;
                let mut restored = PhoenixProcessPipeline::new(ACTIVE_PIPELINE, spec);
                restored.metadata.namespace = Some(self.namespace.clone());
                restored.metadata.annotations = Some(Default::default());
                self.apply(&api, &restored).await
            }
            None => self.delete(&api, ACTIVE_PIPELINE).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn critical_queries_unanchor_and_escape() {
        let selector = VariantSelector::new("exp-abcd1234", VariantRole::Candidate);
        let q = critical_query(
            &selector,
            &CriticalProcess {
                name: "^post\"gres$".to_owned(),
                path: Some("^/usr/lib/".to_owned()),
            },
            Duration::from_secs(300),
            Duration::from_secs(15),
        );
        assert!(
            q.contains(r#"process_executable_name=~".*(?:^post\"gres$).*""#),
            "{q}"
        );
        assert!(
            q.contains(r#"process_executable_path=~".*(?:^/usr/lib/).*""#),
            "{q}"
        );
        assert!(q.contains("phoenix_experiment_id=\"exp-abcd1234\""), "{q}");
        assert!(q.contains("count by (node, process_pid)"), "{q}");
        assert!(q.ends_with("[22500ms]))))[300000ms:15000ms])"), "{q}");
    }

    #[test]
    fn coverage_credits_the_candidate_per_process_up_to_the_baseline() {
        assert_eq!(critical_coverage(&[40, 20], &[40, 20]), (60, 60));
        assert_eq!(critical_coverage(&[40, 20], &[30, 25]), (60, 50));
        assert_eq!(critical_coverage(&[], &[]), (0, 0));
    }
}
