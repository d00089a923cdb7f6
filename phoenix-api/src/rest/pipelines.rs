//! `/api/v1/pipelines/…` and `/api/v1/sim/profiles`.

use axum::Json;
use axum::extract::State;

use super::extract::{Body, Caller};
use crate::service::{
    PredictRequest, PredictResponse, ProfileInfo, RenderRequest, RenderResponse, TemplateInfo,
    ValidateRequest, ValidateResponse,
};
use crate::{AppState, Result};

pub(crate) async fn templates(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Vec<TemplateInfo>>> {
    state.service().pipeline_templates(&caller).map(Json)
}

pub(crate) async fn render(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(request): Body<RenderRequest>,
) -> Result<Json<RenderResponse>> {
    state.service().render_pipeline(&caller, &request).map(Json)
}

pub(crate) async fn validate(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(request): Body<ValidateRequest>,
) -> Result<Json<ValidateResponse>> {
    state
        .service()
        .validate_pipeline(&caller, &request)
        .await
        .map(Json)
}

pub(crate) async fn predict(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(request): Body<PredictRequest>,
) -> Result<Json<PredictResponse>> {
    state
        .service()
        .predict_pipeline(&caller, request)
        .await
        .map(Json)
}

pub(crate) async fn profiles(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Vec<ProfileInfo>>> {
    state.service().sim_profiles(&caller).map(Json)
}
