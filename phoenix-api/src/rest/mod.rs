//! The HTTP surface: REST under `/api/v1`, the WebSocket event stream, the OpenAPI document
//! generated from the handlers' types, `/health`, `/ready` and `/metrics`.

mod accounts;
mod experiments;
mod extract;
mod operations;
mod pipelines;
pub(crate) mod problem;
mod watch;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use aide::axum::ApiRouter;
use aide::axum::routing::{get_with, post_with};
use aide::openapi::{Info, OpenApi, SecurityScheme, Tag};
use aide::transform::{TransformOpenApi, TransformOperation};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::metrics::{Metrics, RequestLabels};
use extract::BEARER_SCHEME;
use problem::problem_response;

pub use problem::Problem;

/// The path of the OpenAPI document.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

fn tagged(
    tag: &'static str,
    summary: &'static str,
) -> impl FnOnce(TransformOperation<'_>) -> TransformOperation<'_> {
    move |op| op.tag(tag).summary(summary)
}

fn created<T: schemars::JsonSchema>(
    tag: &'static str,
    summary: &'static str,
) -> impl FnOnce(TransformOperation<'_>) -> TransformOperation<'_> {
    move |op| {
        op.tag(tag)
            .summary(summary)
            .response::<201, axum::Json<T>>()
    }
}

/// Every documented route, with its handler.
fn routes(document: &operations::Document) -> ApiRouter<AppState> {
    use phoenix_core::experiment::Experiment;

    use crate::service::UserInfo;
    let exp = "experiments";
    ApiRouter::new()
        .api_route(
            "/health",
            get_with(operations::health, tagged("operations", "Liveness")),
        )
        .api_route(
            "/ready",
            get_with(
                operations::ready,
                tagged("operations", "Readiness: the store answers"),
            ),
        )
        .api_route(
            "/metrics",
            get_with(operations::metrics, |op| {
                tagged(
                    "operations",
                    "Prometheus metrics (a viewer token or the static metrics token, unless opened)",
                )(op)
                .security_requirement(BEARER_SCHEME)
            }),
        )
        .api_route(
            OPENAPI_PATH,
            get_with(operations::openapi(Arc::clone(document)), |op| {
                tagged(
                    "operations",
                    "This OpenAPI document (a viewer token, unless opened)",
                )(op)
                .security_requirement(BEARER_SCHEME)
            }),
        )
        .api_route(
            "/api/v1/auth/login",
            post_with(
                accounts::login,
                tagged("auth", "Log in: a token pair (rate limited)"),
            ),
        )
        .api_route(
            "/api/v1/auth/refresh",
            post_with(
                accounts::refresh,
                tagged("auth", "A new token pair for a refresh token"),
            ),
        )
        .api_route(
            "/api/v1/auth/me",
            get_with(accounts::me, tagged("auth", "The caller")),
        )
        .api_route(
            "/api/v1/users",
            get_with(accounts::list_users, tagged("users", "List users (admin)")).post_with(
                accounts::create_user,
                created::<UserInfo>("users", "Create a user (admin)"),
            ),
        )
        .api_route(
            "/api/v1/experiments",
            get_with(experiments::list, tagged(exp, "List experiments")).post_with(
                experiments::create,
                created::<Experiment>(exp, "Create an experiment (JSON or YAML spec)"),
            ),
        )
        .api_route(
            "/api/v1/experiments/{id}",
            get_with(experiments::get, tagged(exp, "Read an experiment"))
                .put_with(
                    experiments::update,
                    tagged(exp, "Replace a pending experiment's spec"),
                )
                .delete_with(
                    experiments::delete,
                    tagged(exp, "Delete an experiment that is not running"),
                ),
        )
        .api_route(
            "/api/v1/experiments/{id}/start",
            post_with(
                experiments::start,
                tagged(exp, "Start a pending experiment"),
            ),
        )
        .api_route(
            "/api/v1/experiments/{id}/stop",
            post_with(experiments::stop, tagged(exp, "Cancel a run")),
        )
        .api_route(
            "/api/v1/experiments/{id}/promote",
            post_with(
                experiments::promote,
                tagged(exp, "Promote the candidate (operator)"),
            ),
        )
        .api_route(
            "/api/v1/experiments/{id}/rollback",
            post_with(
                experiments::rollback,
                tagged(exp, "Reject the candidate or undo its promotion (operator)"),
            ),
        )
        .api_route(
            "/api/v1/experiments/{id}/events",
            get_with(experiments::events, tagged(exp, "The event log")),
        )
        .api_route(
            "/api/v1/experiments/{id}/results",
            get_with(
                experiments::results,
                tagged(exp, "The results of a completed run"),
            ),
        )
        .api_route(
            "/api/v1/experiments/{id}/watch",
            get_with(watch::watch, |op| {
                tagged(
                    exp,
                    "Stream the events over a WebSocket until the run is over",
                )(op)
                .security_requirement(BEARER_SCHEME)
            }),
        )
        .api_route(
            "/api/v1/pipelines/templates",
            get_with(
                pipelines::templates,
                tagged("pipelines", "The template catalog"),
            ),
        )
        .api_route(
            "/api/v1/pipelines/render",
            post_with(pipelines::render, tagged("pipelines", "Render a template")),
        )
        .api_route(
            "/api/v1/pipelines/validate",
            post_with(
                pipelines::validate,
                tagged("pipelines", "Validate a pipeline"),
            ),
        )
        .api_route(
            "/api/v1/pipelines/predict",
            post_with(
                pipelines::predict,
                tagged(
                    "pipelines",
                    "Predict a candidate against a baseline (experimenter)",
                ),
            ),
        )
        .api_route(
            "/api/v1/sim/profiles",
            get_with(
                pipelines::profiles,
                tagged("sim", "The simulator's profile presets"),
            ),
        )
}

fn describe(api: TransformOpenApi<'_>) -> TransformOpenApi<'_> {
    api.title("Phoenix API")
        .version(env!("CARGO_PKG_VERSION"))
        .description(
            "Run experiments that compare collector pipelines for host process metrics. \
             Authenticate with `POST /api/v1/auth/login` and send `Authorization: Bearer <access_token>`.",
        )
        .security_scheme(
            BEARER_SCHEME,
            SecurityScheme::Http {
                scheme: "bearer".to_owned(),
                bearer_format: Some("JWT".to_owned()),
                description: Some("An access token from /api/v1/auth/login".to_owned()),
                extensions: Default::default(),
            },
        )
        .tag(Tag {
            name: "experiments".to_owned(),
            description: Some("Experiments and their runs".to_owned()),
            ..Tag::default()
        })
}

/// Counts and times every request by method, route pattern and status.
async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = crate::metrics::method_label(request.method()).to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let grpc = crate::grpc::is_grpc(request.headers());
    let path = grpc.then(|| request.uri().path().to_owned());
    let response = next.run(request).await;
    let (route, status) = match path {
        Some(path) => crate::grpc::call_labels(route, &path, &response),
        None => (route, response.status().as_u16().to_string()),
    };
    let labels = RequestLabels {
        method,
        route,
        status,
    };
    metrics.observe(&labels, started.elapsed());
    response
}

async fn not_found(request: Request) -> Response {
    let detail = format!("no route for {} {}", request.method(), request.uri().path());
    problem_response(StatusCode::NOT_FOUND, "not-found", detail, Vec::new(), None)
}

async fn method_not_allowed(request: Request) -> Response {
    let detail = format!(
        "{} is not allowed on {}",
        request.method(),
        request.uri().path()
    );
    problem_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        detail,
        Vec::new(),
        None,
    )
    .into_response()
}

/// The OpenAPI document of every route, as the server serves it at
/// [`OPENAPI_PATH`].
pub fn openapi_document() -> OpenApi {
    let mut api = OpenApi {
        info: Info::default(),
        ..OpenApi::default()
    };
    let document: operations::Document = Arc::new(OnceLock::new());
    let _router: Router<AppState> = routes(&document).finish_api_with(&mut api, describe);
    api
}

/// The router of the whole HTTP API, for [`serve`](crate::serve) and for in-process tests.
pub fn app(state: AppState) -> Router {
    let document: operations::Document = Arc::new(OnceLock::new());
    let mut api = OpenApi::default();
    let router = routes(&document).finish_api_with(&mut api, describe);
    let json = serde_json::to_vec(&api).unwrap_or_default();
    let _ = document.set(Bytes::from(json));
    let metrics = Arc::clone(&state.metrics);
    let body_limit = state.body_limit;
    let router: Router = router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone())
        .merge(crate::grpc::router(state));
    router
        .layer(axum::middleware::from_fn_with_state(metrics, track))
        .layer(DefaultBodyLimit::max(body_limit))
}
