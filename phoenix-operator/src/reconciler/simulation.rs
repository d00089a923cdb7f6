//! The `LoadSimulationJob` reconciler.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::Context;
use super::pipeline::ignore_not_found;
use super::status::{
    Health, degrade, patch_status, reconcile_with_finalizer, rejected, set_health,
};
use crate::crd::{LoadSimulationJob, LoadSimulationJobStatus, SimulationPhase};
use crate::objects::{FIELD_MANAGER, STOP_GRACE, names, simulation_job};
use crate::{Error, Result};

/// The finalizer of simulations: deletion waits until the Job and its pod are gone, so that
/// no worker process outlives the resource that asked for it.
pub const SIMULATION_FINALIZER: &str = "phoenix.io/simulator-cleanup";

/// How long past its duration a Job may still run before the operator deletes it.
const OVERRUN: Duration = Duration::from_secs(60);

/// The status of a simulation from its Job (`None` when the Job does not exist): the phase,
/// when it started and ended, and the conditions. A Job still running `OVERRUN` past its
/// duration is reported as Stopped; the caller deletes it.
///
/// `observedGeneration` is the generation of the spec the Job was created from: a Job's pod
/// template cannot change, so later edits of the spec are ignored, and the Ready or
/// Progressing message says so (the conditions carry the latest generation).
pub fn simulation_status(
    simulation: &LoadSimulationJob,
    job: Option<&Job>,
    duration: Duration,
    now: DateTime<Utc>,
) -> LoadSimulationJobStatus {
    let mut status = simulation.status.clone().unwrap_or_default();
    let generation = simulation.metadata.generation;
    let job_generation = job_generation(simulation);
    status.observed_generation = job_generation;
    status.job_name = Some(names::job(&simulation.name_any()));
    let job_status = job.and_then(|j| j.status.clone()).unwrap_or_default();
    if let Some(start) = &job_status.start_time {
        status.start_time = DateTime::from_timestamp(start.0.as_second(), 0);
    }
    let finished_condition = job_status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.status == "True" && (c.type_ == "Complete" || c.type_ == "Failed"));
    let overran = status.start_time.is_some_and(|start| {
        let limit = chrono::Duration::from_std(duration.saturating_add(OVERRUN))
            .unwrap_or(chrono::Duration::MAX);
        job_status.active.unwrap_or_default() > 0 && now > start + limit
    });
    let phase = if status.phase.is_finished() {
        status.phase
    } else if let Some(c) = finished_condition {
        match (c.type_.as_str(), c.reason.as_deref()) {
            ("Complete", _) => SimulationPhase::Succeeded,
            (_, Some("DeadlineExceeded")) => SimulationPhase::Stopped,
            _ => SimulationPhase::Failed,
        }
    } else if overran {
        SimulationPhase::Stopped
    } else if job_status.active.unwrap_or_default() > 0 {
        SimulationPhase::Running
    } else {
        SimulationPhase::Pending
    };
    if phase.is_finished() && status.completion_time.is_none() {
        status.completion_time = Some(now);
    }
    status.phase = phase;
    let mut message = match finished_condition {
        Some(c) => c.message.clone().unwrap_or_default(),
        None => format!("simulation {}", phase.as_str().to_ascii_lowercase()),
    };
    let mut ready = match phase {
        SimulationPhase::Running => "the simulator runs",
        SimulationPhase::Succeeded => "the simulation ran its duration",
        SimulationPhase::Stopped => "the simulation was stopped after its duration",
        _ => "",
    }
    .to_owned();
    if let Some(ignored) = ignored_change(generation, job_generation) {
        for text in [&mut message, &mut ready] {
            text.push_str("; ");
            text.push_str(&ignored);
        }
    }
    let health = match phase {
        SimulationPhase::Pending => Health::Progressing("Pending", &message),
        SimulationPhase::Running | SimulationPhase::Succeeded | SimulationPhase::Stopped => {
            Health::Ready(&ready)
        }
        SimulationPhase::Failed => Health::Failed("SimulatorFailed", &message),
        SimulationPhase::Invalid => Health::Degraded("InvalidSpec", &message),
    };
    set_health(&mut status.conditions, health, generation, now);
    status
}

/// The generation of the spec the simulation's Job runs: the one recorded once the Job
/// exists, or the current one before.
fn job_generation(simulation: &LoadSimulationJob) -> Option<i64> {
    simulation
        .status
        .as_ref()
        .filter(|s| s.job_name.is_some())
        .and_then(|s| s.observed_generation)
        .or(simulation.metadata.generation)
}

/// What the status says when the spec changed after the Job was created.
fn ignored_change(generation: Option<i64>, job_generation: Option<i64>) -> Option<String> {
    match (generation, job_generation) {
        (Some(now), Some(job)) if now > job => Some(format!(
            "spec changes after generation {job} are ignored: the Job runs once, as created \
             (delete and re-create the resource to run another simulation)"
        )),
        _ => None,
    }
}

/// Reconciles one simulation: creates its Job once, follows it, stops it once its duration
/// has passed, and writes the status. An invalid spec, or a Job the API server refuses as
/// invalid, ends Degraded naming the field.
///
/// # Errors
///
/// API errors, for [`error_policy`](super::error_policy) to retry.
pub async fn reconcile_simulation(
    simulation: Arc<LoadSimulationJob>,
    ctx: Arc<Context>,
) -> Result<Action> {
    let ctx = ctx.as_ref();
    reconcile_with_finalizer(
        simulation,
        ctx,
        SIMULATION_FINALIZER,
        |s, api, ns| async move {
            match apply(&s, &api, ctx, &ns).await {
                Err(error @ Error::Invalid { .. }) => {
                    let conditions = s.status.clone().unwrap_or_default().conditions;
                    let phase = json!({ "phase": SimulationPhase::Invalid });
                    degrade(s.as_ref(), &api, ctx, &conditions, &error, phase).await
                }
                other => other,
            }
        },
        |s, _, ns| async move { cleanup(&s, ctx, &ns).await },
    )
    .await
}

async fn apply(
    simulation: &LoadSimulationJob,
    api: &Api<LoadSimulationJob>,
    ctx: &Context,
    namespace: &str,
) -> Result<Action> {
    let old = simulation.status.clone().unwrap_or_default();
    if old.phase.is_finished() {
        return Ok(Action::await_change());
    }
    let jobs = Api::<Job>::namespaced(ctx.client.clone(), namespace);
    let name = names::job(&simulation.name_any());
    let spec_duration =
        || crate::objects::parse_duration(&simulation.spec.duration, "spec.duration");
    // A Job's pod template cannot change, and a simulation runs once: create the Job only
    // while the status records none, then only follow it. Once it exists, the spec is not
    // checked again (edits are ignored, invalid ones included) and its duration is the Job's.
    let current = match jobs.get_opt(&name).await? {
        Some(existing) => existing,
        None if old.job_name.is_some() || old.start_time.is_some() => {
            return job_gone(simulation, api, ctx, &name, spec_duration().ok()).await;
        }
        None => {
            let job = simulation_job(simulation, &ctx.defaults)?;
            spec_duration()?;
            let params = PatchParams::apply(FIELD_MANAGER).force();
            jobs.patch(&name, &params, &Patch::Apply(&job))
                .await
                .map_err(|e| rejected("Job", &name, e))?
        }
    };
    let duration = match job_duration(&current) {
        Some(duration) => duration,
        None => spec_duration()?,
    };
    let now = Utc::now();
    let status = simulation_status(simulation, Some(&current), duration, now);
    // Record Stopped before deleting the Job: a reconcile that sees the Job gone then finds
    // the simulation over, never a reason to start it again.
    patch_status(api, simulation, &status).await?;
    if status.phase == SimulationPhase::Stopped
        && current
            .status
            .as_ref()
            .and_then(|s| s.active)
            .unwrap_or_default()
            > 0
    {
        jobs.delete(&name, &DeleteParams::background())
            .await
            .map(|_| ())
            .or_else(ignore_not_found)?;
    }
    if status.phase != old.phase {
        let type_ = if status.phase == SimulationPhase::Failed {
            EventType::Warning
        } else {
            EventType::Normal
        };
        ctx.publish(
            simulation,
            type_,
            status.phase.as_str(),
            "Simulate",
            format!("simulation {}", status.phase.as_str().to_ascii_lowercase()),
        )
        .await;
    }
    let first_look_at_generation = old
        .conditions
        .iter()
        .all(|c| c.observed_generation != simulation.metadata.generation);
    if let Some(ignored) =
        ignored_change(simulation.metadata.generation, status.observed_generation)
        && first_look_at_generation
    {
        ctx.publish(
            simulation,
            EventType::Warning,
            "SpecChangeIgnored",
            "Simulate",
            ignored,
        )
        .await;
    }
    if status.phase.is_finished() {
        return Ok(Action::await_change());
    }
    // Look again when the duration is up, or soon while the Job starts.
    let wait = status
        .start_time
        .and_then(|start| {
            let end = start + chrono::Duration::from_std(duration.saturating_add(OVERRUN)).ok()?;
            (end - now).to_std().ok()
        })
        .map_or(ctx.timing.waiting, |left| {
            left.min(ctx.timing.ready).max(Duration::from_secs(1))
        });
    Ok(Action::requeue(wait))
}

/// The duration a Job was created for: its `activeDeadlineSeconds` less the grace the
/// builder adds.
fn job_duration(job: &Job) -> Option<Duration> {
    let deadline = job.spec.as_ref()?.active_deadline_seconds?;
    let seconds = u64::try_from(deadline).ok()?;
    Duration::from_secs(seconds)
        .checked_sub(STOP_GRACE)
        .filter(|d| !d.is_zero())
}

/// The Job the status records is gone (deleted by someone, or by the operator before a
/// status write was lost): the simulation is over, Stopped when it had run its duration,
/// Failed otherwise. The Job is never created again.
async fn job_gone(
    simulation: &LoadSimulationJob,
    api: &Api<LoadSimulationJob>,
    ctx: &Context,
    name: &str,
    duration: Option<Duration>,
) -> Result<Action> {
    let now = Utc::now();
    let mut status = simulation.status.clone().unwrap_or_default();
    let ran_its_course = status
        .start_time
        .zip(duration)
        .is_some_and(|(start, d)| chrono::Duration::from_std(d).is_ok_and(|d| now >= start + d));
    let message = format!("Job {name} is gone; a simulation runs once and is not started again");
    let (phase, health) = if ran_its_course {
        (
            SimulationPhase::Stopped,
            Health::Ready("the simulation was stopped after its duration"),
        )
    } else {
        (
            SimulationPhase::Failed,
            Health::Failed("JobDeleted", &message),
        )
    };
    status.phase = phase;
    status.completion_time.get_or_insert(now);
    set_health(
        &mut status.conditions,
        health,
        simulation.metadata.generation,
        now,
    );
    patch_status(api, simulation, &status).await?;
    let type_ = if phase == SimulationPhase::Failed {
        EventType::Warning
    } else {
        EventType::Normal
    };
    ctx.publish(simulation, type_, phase.as_str(), "Simulate", message)
        .await;
    Ok(Action::await_change())
}

async fn cleanup(simulation: &LoadSimulationJob, ctx: &Context, namespace: &str) -> Result<Action> {
    let jobs = Api::<Job>::namespaced(ctx.client.clone(), namespace);
    let name = names::job(&simulation.name_any());
    jobs.delete(&name, &DeleteParams::foreground())
        .await
        .map(|_| ())
        .or_else(ignore_not_found)?;
    if jobs.get_opt(&name).await?.is_some() {
        return Err(Error::Finalizer(format!(
            "waiting for Job {namespace}/{name} and its pod to be deleted"
        )));
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{LoadSimulationJobSpec, PodSettings, SimulationMode};
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn sim() -> LoadSimulationJob {
        LoadSimulationJob::new(
            "load",
            LoadSimulationJobSpec {
                profile: Default::default(),
                processes: None,
                duration: "10m".to_owned(),
                seed: 0,
                mode: SimulationMode::Real,
                scrape_interval: None,
                otlp_endpoint: None,
                experiment_id: None,
                pod: PodSettings::default(),
            },
        )
    }

    fn job(active: i32, start: DateTime<Utc>, condition: Option<(&str, &str)>) -> Job {
        Job {
            status: Some(JobStatus {
                active: Some(active),
                start_time: Some(Time(
                    k8s_openapi::jiff::Timestamp::from_second(start.timestamp()).unwrap(),
                )),
                conditions: condition.map(|(type_, reason)| {
                    vec![JobCondition {
                        type_: type_.to_owned(),
                        status: "True".to_owned(),
                        reason: Some(reason.to_owned()),
                        ..JobCondition::default()
                    }]
                }),
                ..JobStatus::default()
            }),
            ..Job::default()
        }
    }

    #[test]
    fn phases_follow_the_job() {
        let start = DateTime::from_timestamp(1_000_000, 0).unwrap();
        let d = Duration::from_secs(600);
        let at = |secs| start + chrono::Duration::seconds(secs);
        let s = simulation_status(&sim(), None, d, at(0));
        assert_eq!(s.phase, SimulationPhase::Pending);
        let s = simulation_status(&sim(), Some(&job(1, start, None)), d, at(10));
        assert_eq!(s.phase, SimulationPhase::Running);
        assert_eq!(s.start_time, Some(start));
        let s = simulation_status(
            &sim(),
            Some(&job(0, start, Some(("Complete", "")))),
            d,
            at(600),
        );
        assert_eq!(s.phase, SimulationPhase::Succeeded);
        assert!(s.completion_time.is_some());
        let s = simulation_status(
            &sim(),
            Some(&job(0, start, Some(("Failed", "BackoffLimitExceeded")))),
            d,
            at(60),
        );
        assert_eq!(s.phase, SimulationPhase::Failed);
        let s = simulation_status(&sim(), Some(&job(1, start, None)), d, at(600 + 61));
        assert_eq!(
            s.phase,
            SimulationPhase::Stopped,
            "stopped once the duration has passed"
        );
    }
}
