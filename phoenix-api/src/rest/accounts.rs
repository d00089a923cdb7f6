//! `/api/v1/auth/…` and `/api/v1/users`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::extract::{Body, Caller, ClientAddr};
use crate::auth::TokenPair;
use crate::service::{LoginRequest, NewUserRequest, RefreshRequest, UserInfo};
use crate::{AppState, Result};

pub(crate) async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Body(request): Body<LoginRequest>,
) -> Result<Json<TokenPair>> {
    state.service().login(&request, client).await.map(Json)
}

pub(crate) async fn refresh(
    State(state): State<AppState>,
    Body(request): Body<RefreshRequest>,
) -> Result<Json<TokenPair>> {
    state.service().refresh(&request).await.map(Json)
}

pub(crate) async fn me(State(state): State<AppState>, Caller(caller): Caller) -> Json<UserInfo> {
    Json(state.service().me(&caller))
}

pub(crate) async fn list_users(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Vec<UserInfo>>> {
    state.service().list_users(&caller).await.map(Json)
}

pub(crate) async fn create_user(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(request): Body<NewUserRequest>,
) -> Result<(StatusCode, Json<UserInfo>)> {
    let user = state.service().create_user(&caller, &request).await?;
    Ok((StatusCode::CREATED, Json(user)))
}
