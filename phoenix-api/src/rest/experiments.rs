//! `/api/v1/experiments/…`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::NoContent;
use phoenix_core::analysis::ExperimentResults;
use phoenix_core::experiment::{Experiment, ExperimentEvent, ExperimentSpec};

use super::extract::{ApiQuery, Body, Caller, ExperimentPath, JsonBytes};
use crate::service::{ExperimentList, ExperimentQuery};
use crate::{AppState, Result};

pub(crate) async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<ExperimentQuery>,
) -> Result<Json<ExperimentList>> {
    state
        .service()
        .list_experiments(&caller, &query)
        .await
        .map(Json)
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(spec): Body<ExperimentSpec>,
) -> Result<(StatusCode, Json<Experiment>)> {
    let experiment = state.service().create_experiment(&caller, spec).await?;
    Ok((StatusCode::CREATED, Json(experiment)))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ExperimentPath(id): ExperimentPath,
) -> Result<JsonBytes<Experiment>> {
    state
        .service()
        .get_experiment_json(&caller, &id)
        .await
        .map(JsonBytes::new)
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ExperimentPath(id): ExperimentPath,
    Body(spec): Body<ExperimentSpec>,
) -> Result<Json<Experiment>> {
    state
        .service()
        .update_experiment(&caller, &id, spec)
        .await
        .map(Json)
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ExperimentPath(id): ExperimentPath,
) -> Result<NoContent> {
    state.service().delete_experiment(&caller, &id).await?;
    Ok(NoContent)
}

pub(crate) async fn start(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ExperimentPath(id): ExperimentPath,
) -> Result<Json<Experiment>> {
    state
        .service()
        .start_experiment(&caller, &id)
        .await
        .map(Json)
}

pub(crate) async fn stop(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ExperimentPath(id): ExperimentPath,
) -> Result<Json<Experiment>> {
    state
        .service()
        .stop_experiment(&caller, &id)
        .await
        .map(Json)
}

pub(crate) async fn promote(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ExperimentPath(id): ExperimentPath,
) -> Result<Json<Experiment>> {
    state
        .service()
        .promote_experiment(&caller, &id)
        .await
        .map(Json)
}

pub(crate) async fn rollback(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ExperimentPath(id): ExperimentPath,
) -> Result<Json<Experiment>> {
    state
        .service()
        .rollback_experiment(&caller, &id)
        .await
        .map(Json)
}

pub(crate) async fn events(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ExperimentPath(id): ExperimentPath,
) -> Result<Json<Vec<ExperimentEvent>>> {
    state
        .service()
        .experiment_events(&caller, &id)
        .await
        .map(Json)
}

pub(crate) async fn results(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ExperimentPath(id): ExperimentPath,
) -> Result<Json<ExperimentResults>> {
    state
        .service()
        .experiment_results(&caller, &id)
        .await
        .map(Json)
}
