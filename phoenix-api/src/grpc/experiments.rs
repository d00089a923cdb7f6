//! `phoenix.v1.ExperimentService` over the shared service layer.

use std::pin::Pin;

use chrono::{DateTime, Utc};
use phoenix_core::analysis::{ExperimentResults, MonthlyCost, Recommendation, VariantSummary};
use phoenix_core::experiment::{EventKind, Experiment, ExperimentEvent, ExperimentId, FieldError};
use phoenix_core::phase::Phase;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::proto::{self, experiment_service_server::ExperimentService};
use super::{encode_json, principal, spec_field};
use crate::service::{ExperimentQuery, parse_id};
use crate::{AppState, Error, Principal, Result};

/// The server side of `phoenix.v1.ExperimentService`.
#[derive(Debug, Clone)]
pub struct ExperimentApi {
    state: AppState,
}

impl ExperimentApi {
    /// The service over `state`.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// The events `WatchEvents` streams.
type EventStream = Pin<Box<dyn Stream<Item = Result<proto::ExperimentEvent, Status>> + Send>>;

fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        // A leap second reads as 1_000_000_000 or more; protobuf allows at most 999_999_999.
        nanos: i32::try_from(at.timestamp_subsec_nanos().min(999_999_999)).unwrap_or(999_999_999),
    }
}

/// The wire form of a phase.
pub(crate) fn phase_to_proto(phase: Phase) -> proto::Phase {
    match phase {
        Phase::Pending => proto::Phase::Pending,
        Phase::Initializing => proto::Phase::Initializing,
        Phase::Running => proto::Phase::Running,
        Phase::Analyzing => proto::Phase::Analyzing,
        Phase::Completed => proto::Phase::Completed,
        Phase::Failed => proto::Phase::Failed,
        Phase::Cancelled => proto::Phase::Cancelled,
        Phase::Promoted => proto::Phase::Promoted,
        Phase::RolledBack => proto::Phase::RolledBack,
    }
}

/// The phase a wire value names; `None` for unspecified or unknown values.
pub(crate) fn phase_from_proto(value: i32) -> Option<Phase> {
    match proto::Phase::try_from(value).ok()? {
        proto::Phase::Unspecified => None,
        proto::Phase::Pending => Some(Phase::Pending),
        proto::Phase::Initializing => Some(Phase::Initializing),
        proto::Phase::Running => Some(Phase::Running),
        proto::Phase::Analyzing => Some(Phase::Analyzing),
        proto::Phase::Completed => Some(Phase::Completed),
        proto::Phase::Failed => Some(Phase::Failed),
        proto::Phase::Cancelled => Some(Phase::Cancelled),
        proto::Phase::Promoted => Some(Phase::Promoted),
        proto::Phase::RolledBack => Some(Phase::RolledBack),
    }
}

fn experiment_to_proto(experiment: &Experiment) -> Result<proto::Experiment> {
    let status = &experiment.status;
    Ok(proto::Experiment {
        id: experiment.id.to_string(),
        version: experiment.version,
        name: experiment.spec.name.clone(),
        description: experiment.spec.description.clone(),
        owner: experiment.spec.owner.clone(),
        phase: phase_to_proto(status.phase).into(),
        failure: status.failure.clone(),
        windows_measured: u32::try_from(status.windows.len()).unwrap_or(u32::MAX),
        has_results: status.results.is_some(),
        created_at: Some(timestamp(experiment.created_at)),
        updated_at: Some(timestamp(experiment.updated_at)),
        spec_json: encode_json("an experiment spec", &experiment.spec)?,
    })
}

fn event_to_proto(event: ExperimentEvent) -> proto::ExperimentEvent {
    let (kind, from, to, transition) = match event.kind {
        EventKind::Created => (proto::EventKind::Created, None, None, String::new()),
        EventKind::Updated => (proto::EventKind::Updated, None, None, String::new()),
        EventKind::Transition { from, to, event } => {
            (proto::EventKind::Transition, Some(from), Some(to), event)
        }
    };
    let phase = |p: Option<Phase>| p.map_or(proto::Phase::Unspecified, phase_to_proto).into();
    proto::ExperimentEvent {
        experiment_id: event.experiment_id.to_string(),
        at: Some(timestamp(event.at)),
        actor: event.actor,
        kind: kind.into(),
        from_phase: phase(from),
        to_phase: phase(to),
        transition,
        message: event.message,
    }
}

impl From<&MonthlyCost> for proto::MonthlyCost {
    fn from(cost: &MonthlyCost) -> Self {
        Self {
            data_points: cost.data_points,
            bytes: cost.bytes,
            series: cost.series,
            total: cost.total,
        }
    }
}

fn summary_to_proto(summary: &VariantSummary) -> proto::VariantSummary {
    proto::VariantSummary {
        distinct_series: summary.distinct_series,
        mean_active_series: summary.mean_active_series,
        data_points_per_minute: summary.data_points_per_minute,
        bytes_per_minute: summary.bytes_per_minute,
        series_churn_per_hour: summary.series_churn_per_hour,
        critical_coverage: summary.critical_coverage,
        monthly_cost: Some((&summary.monthly_cost).into()),
    }
}

fn results_to_proto(
    id: &ExperimentId,
    results: &ExperimentResults,
) -> Result<proto::ExperimentResults> {
    let decision = match &results.recommendation {
        Recommendation::Promote => proto::Decision::Promote,
        Recommendation::Reject { .. } => proto::Decision::Reject,
        Recommendation::Inconclusive { .. } => proto::Decision::Inconclusive,
    };
    let comparison = &results.comparison;
    Ok(proto::ExperimentResults {
        experiment_id: id.to_string(),
        decision: decision.into(),
        reasons: results
            .recommendation
            .reasons()
            .iter()
            .map(ToString::to_string)
            .collect(),
        baseline: Some(summary_to_proto(&results.baseline)),
        candidate: Some(summary_to_proto(&results.candidate)),
        comparison: Some(proto::Comparison {
            cardinality_reduction: comparison.cardinality_reduction,
            data_point_reduction: comparison.data_point_reduction,
            byte_reduction: comparison.byte_reduction,
            cost_reduction: comparison.cost_reduction,
            monthly_saving: comparison.monthly_saving,
            critical_process_loss: comparison.critical_process_loss,
        }),
        findings: results.findings.clone(),
        windows: results.windows,
        results_json: encode_json("experiment results", results)?,
    })
}

/// The most experiments or events one gRPC page holds.
pub(crate) const MAX_PAGE_SIZE: u32 = 100;

/// How many items a page with the requested `limit` holds: 0 means the maximum, and larger
/// values are cut to it.
fn page_size(limit: u32) -> usize {
    let limit = if limit == 0 {
        MAX_PAGE_SIZE
    } else {
        limit.min(MAX_PAGE_SIZE)
    };
    usize::try_from(limit).unwrap_or(usize::MAX)
}

/// Where a page of events starts: the position a previous page's token names (the tokens
/// are opaque to clients), or 0.
fn events_page_start(token: &str) -> Result<usize> {
    if token.is_empty() {
        return Ok(0);
    }
    token.parse().map_err(|_| {
        Error::invalid_field(
            "page_token",
            "is not a token this server issued: pass the previous page's `next_page_token`",
        )
    })
}

/// `error` with the field `from` (named as the service names it) renamed `to` (the request
/// field's name).
fn rename_field(error: Error, from: &str, to: &str) -> Error {
    match error {
        Error::InvalidInput {
            message,
            mut errors,
        } => {
            for error in &mut errors {
                if error.path == from {
                    to.clone_into(&mut error.path);
                }
            }
            Error::InvalidInput { message, errors }
        }
        other => other,
    }
}

impl ExperimentApi {
    /// The caller and the experiment id of a request.
    fn caller_and_id<T>(
        &self,
        request: &Request<T>,
        id: &str,
    ) -> Result<(Principal, ExperimentId)> {
        Ok((principal(&self.state, request)?, parse_id(id)?))
    }
}

#[tonic::async_trait]
impl ExperimentService for ExperimentApi {
    async fn create_experiment(
        &self,
        request: Request<proto::CreateExperimentRequest>,
    ) -> Result<Response<proto::Experiment>, Status> {
        let caller = principal(&self.state, &request)?;
        let spec = spec_field(&request.get_ref().spec_json)?;
        let experiment = self
            .state
            .service()
            .create_experiment(&caller, spec)
            .await?;
        Ok(Response::new(experiment_to_proto(&experiment)?))
    }

    async fn list_experiments(
        &self,
        request: Request<proto::ListExperimentsRequest>,
    ) -> Result<Response<proto::ListExperimentsResponse>, Status> {
        let caller = principal(&self.state, &request)?;
        let message = request.into_inner();
        let mut errors = Vec::new();
        let phase = match message.phase {
            None => None,
            Some(value) => {
                let phase = phase_from_proto(value);
                if phase.is_none() {
                    errors.push(FieldError {
                        path: "phase".to_owned(),
                        message: format!(
                            "unknown phase {value}; omit the field to list every phase"
                        ),
                    });
                }
                phase
            }
        };
        let query = ExperimentQuery {
            phase: phase.map(|p| p.as_str().to_owned()),
            owner: message.owner,
            name_prefix: message.name_prefix,
            // Larger pages are cut to the gRPC maximum (AIP-158), keeping replies small.
            limit: (message.limit != 0).then_some(message.limit.min(MAX_PAGE_SIZE)),
            after: (!message.page_token.is_empty()).then_some(message.page_token),
        };
        let list = self
            .state
            .service()
            .list_experiments_with(&caller, &query, errors)
            .await
            .map_err(|e| rename_field(e, "after", "page_token"))?;
        let experiments = list
            .items
            .iter()
            .map(experiment_to_proto)
            .collect::<Result<_>>()?;
        Ok(Response::new(proto::ListExperimentsResponse {
            experiments,
            next_page_token: list.next.unwrap_or_default(),
        }))
    }

    async fn get_experiment(
        &self,
        request: Request<proto::GetExperimentRequest>,
    ) -> Result<Response<proto::Experiment>, Status> {
        let (caller, id) = self.caller_and_id(&request, &request.get_ref().id)?;
        let experiment = self.state.service().get_experiment(&caller, &id).await?;
        Ok(Response::new(experiment_to_proto(&experiment)?))
    }

    async fn update_experiment(
        &self,
        request: Request<proto::UpdateExperimentRequest>,
    ) -> Result<Response<proto::Experiment>, Status> {
        let caller = principal(&self.state, &request)?;
        let message = request.get_ref();
        let id = parse_id(&message.id)?;
        let spec = spec_field(&message.spec_json)?;
        let experiment = self
            .state
            .service()
            .update_experiment(&caller, &id, spec)
            .await?;
        Ok(Response::new(experiment_to_proto(&experiment)?))
    }

    async fn delete_experiment(
        &self,
        request: Request<proto::DeleteExperimentRequest>,
    ) -> Result<Response<proto::DeleteExperimentResponse>, Status> {
        let (caller, id) = self.caller_and_id(&request, &request.get_ref().id)?;
        self.state.service().delete_experiment(&caller, &id).await?;
        Ok(Response::new(proto::DeleteExperimentResponse {}))
    }

    async fn start_experiment(
        &self,
        request: Request<proto::StartExperimentRequest>,
    ) -> Result<Response<proto::Experiment>, Status> {
        let (caller, id) = self.caller_and_id(&request, &request.get_ref().id)?;
        let experiment = self.state.service().start_experiment(&caller, &id).await?;
        Ok(Response::new(experiment_to_proto(&experiment)?))
    }

    async fn stop_experiment(
        &self,
        request: Request<proto::StopExperimentRequest>,
    ) -> Result<Response<proto::Experiment>, Status> {
        let (caller, id) = self.caller_and_id(&request, &request.get_ref().id)?;
        let experiment = self.state.service().stop_experiment(&caller, &id).await?;
        Ok(Response::new(experiment_to_proto(&experiment)?))
    }

    async fn promote_experiment(
        &self,
        request: Request<proto::PromoteExperimentRequest>,
    ) -> Result<Response<proto::Experiment>, Status> {
        let (caller, id) = self.caller_and_id(&request, &request.get_ref().id)?;
        let experiment = self
            .state
            .service()
            .promote_experiment(&caller, &id)
            .await?;
        Ok(Response::new(experiment_to_proto(&experiment)?))
    }

    async fn rollback_experiment(
        &self,
        request: Request<proto::RollbackExperimentRequest>,
    ) -> Result<Response<proto::Experiment>, Status> {
        let (caller, id) = self.caller_and_id(&request, &request.get_ref().id)?;
        let experiment = self
            .state
            .service()
            .rollback_experiment(&caller, &id)
            .await?;
        Ok(Response::new(experiment_to_proto(&experiment)?))
    }

    async fn list_events(
        &self,
        request: Request<proto::ListEventsRequest>,
    ) -> Result<Response<proto::ListEventsResponse>, Status> {
        let (caller, id) = self.caller_and_id(&request, &request.get_ref().id)?;
        let message = request.into_inner();
        let start = events_page_start(&message.page_token)?;
        let events = self.state.service().experiment_events(&caller, &id).await?;
        let size = page_size(message.limit);
        let end = start.saturating_add(size).min(events.len());
        let next_page_token = if end < events.len() {
            end.to_string()
        } else {
            String::new()
        };
        Ok(Response::new(proto::ListEventsResponse {
            events: events
                .into_iter()
                .skip(start)
                .take(size)
                .map(event_to_proto)
                .collect(),
            next_page_token,
        }))
    }

    async fn get_results(
        &self,
        request: Request<proto::GetResultsRequest>,
    ) -> Result<Response<proto::ExperimentResults>, Status> {
        let (caller, id) = self.caller_and_id(&request, &request.get_ref().id)?;
        let results = self
            .state
            .service()
            .experiment_results(&caller, &id)
            .await?;
        Ok(Response::new(results_to_proto(&id, &results)?))
    }

    type WatchEventsStream = EventStream;

    async fn watch_events(
        &self,
        request: Request<proto::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let (caller, id) = self.caller_and_id(&request, &request.get_ref().id)?;
        let watch = self.state.service().watch_experiment(&caller, &id).await?;
        let stream = ReceiverStream::new(watch.into_receiver())
            .map(|event| event.map(event_to_proto).map_err(Status::from));
        Ok(Response::new(Box::pin(stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_phase_round_trips() {
        for phase in Phase::ALL {
            let wire: i32 = phase_to_proto(phase).into();
            assert_eq!(phase_from_proto(wire), Some(phase));
        }
        assert_eq!(phase_from_proto(0), None, "unspecified is no phase");
        assert_eq!(phase_from_proto(99), None);
    }

    #[test]
    fn ids_are_checked() {
        let empty = Status::from(parse_id("").unwrap_err());
        assert_eq!(empty.code(), tonic::Code::InvalidArgument);
        assert!(empty.message().contains("id"), "{}", empty.message());
        let bad = Status::from(parse_id("exp-NOPE").unwrap_err());
        assert!(
            bad.message().starts_with("1 invalid field: id:"),
            "{}",
            bad.message()
        );
        assert!(parse_id("exp-a1b2c3d4").is_ok());
    }
}
