//! In-process REST tests: the router answers through `tower::ServiceExt::oneshot`, with no
//! port. Every endpoint × every role, tokens, bad input, the OpenAPI document, metrics and
//! the login rate limit.

// Test helpers outside `#[test]` functions unwrap too: a failure is the test failing.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use phoenix_api::auth::{Principal, TokenIssuer, TokenKind};
use phoenix_api::service::NewUserRequest;
use phoenix_api::{AppState, JwtSecret, LoginRateLimit, ServerConfig, app};
use phoenix_store::Role;
use serde_json::{Value, json};
use tower::ServiceExt;

const SECRET: &[u8] = b"an-in-process-test-secret-of-32-bytes-or-more";
const PASSWORD: &str = "correct horse battery";
const SMALL_SPEC: &str = include_str!("fixtures/small-spec.json");
const INVALID_SPEC: &str = include_str!("fixtures/invalid-spec.json");
const UNKNOWN_FIELDS_SPEC: &str = include_str!("fixtures/unknown-fields-spec.json");

struct Harness {
    state: AppState,
    router: Router,
    issuer: TokenIssuer,
}

fn config() -> ServerConfig {
    ServerConfig::default()
        .with_database_url("memory://")
        .with_jwt_secret(JwtSecret::new(SECRET.to_vec()).unwrap())
        .with_admin_password(PASSWORD)
        .with_body_limit(64 * 1024)
}

async fn harness_with(config: ServerConfig) -> Harness {
    let state = AppState::open(&config).await.unwrap();
    let admin = Principal::new("admin", Role::Admin);
    for role in [Role::Viewer, Role::Experimenter, Role::Operator] {
        let request = NewUserRequest {
            username: role.as_str().to_owned(),
            password: PASSWORD.to_owned(),
            role: serde_json::from_value(json!(role.as_str())).unwrap(),
        };
        state.service().create_user(&admin, &request).await.unwrap();
    }
    let issuer = TokenIssuer::new(
        &JwtSecret::new(SECRET.to_vec()).unwrap(),
        Duration::from_secs(3600),
        Duration::from_secs(7 * 86_400),
    );
    Harness {
        router: app(state.clone()),
        state,
        issuer,
    }
}

async fn harness() -> Harness {
    harness_with(config()).await
}

fn user_of(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        other => other.as_str(),
    }
}

impl Harness {
    fn token(&self, role: Role) -> String {
        self.issuer
            .issue(&Principal::new(user_of(role), role), TokenKind::Access)
            .unwrap()
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, headers, body)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_owned())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let (status, _, body) = self.send(request).await;
        (status, body)
    }

    /// `POST /api/v1/auth/login` as `username` with `password`.
    async fn login(&self, username: &str, password: &str) -> (StatusCode, Value) {
        let body = json!({"username": username, "password": password}).to_string();
        self.call(Method::POST, "/api/v1/auth/login", None, Some(&body))
            .await
    }

    /// Posts the YAML spec `yaml` to create an experiment, as `role`.
    async fn post_yaml(&self, role: Role, yaml: String) -> (StatusCode, Value) {
        let request = Request::post("/api/v1/experiments")
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.token(role)),
            )
            .header(header::CONTENT_TYPE, "application/yaml")
            .body(Body::from(yaml))
            .unwrap();
        let (status, _, body) = self.send(request).await;
        (status, body)
    }

    /// Creates an experiment owned by `owner` (as admin).
    async fn experiment_of(&self, owner: &str) -> String {
        let mut spec: Value = serde_json::from_str(SMALL_SPEC).unwrap();
        spec["owner"] = json!(owner);
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/experiments",
                Some(&self.token(Role::Admin)),
                Some(&spec.to_string()),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }
}

/// One endpoint: method, path (with `{id}`), body, the lowest role allowed, and the exact
/// status an allowed caller gets (on an experiment in the phase `completed` says).
struct Endpoint {
    method: Method,
    path: &'static str,
    body: Option<String>,
    role: Role,
    allowed: StatusCode,
    /// The `{id}` names a completed experiment rather than a pending one.
    completed: bool,
}

fn endpoints() -> Vec<Endpoint> {
    let e = |method: Method, path: &'static str, body: Option<String>, role: Role| {
        let allowed = match (&method, path) {
            (&Method::POST, "/api/v1/users" | "/api/v1/experiments") => StatusCode::CREATED,
            (&Method::DELETE, _) => StatusCode::NO_CONTENT,
            // A plain GET is not a WebSocket upgrade: refused only after the checks.
            (_, "/api/v1/experiments/{id}/watch") => StatusCode::BAD_REQUEST,
            _ => StatusCode::OK,
        };
        let completed =
            path.ends_with("/promote") || path.ends_with("/rollback") || path.ends_with("/results");
        Endpoint {
            method,
            path,
            body,
            role,
            allowed,
            completed,
        }
    };
    let user = json!({"username": "new-user-x", "password": "long enough pw", "role": "viewer"});
    let render = json!({"template": "process-topk-v1", "parameters": {"topK": 3}});
    let validate = json!({"pipeline": {"template": "process-baseline-v1"}});
    let predict = json!({
        "baseline": {"template": "process-baseline-v1"},
        "candidate": {"template": "process-topk-v1"},
        "scrapes": 3
    });
    vec![
        e(Method::GET, "/api/v1/auth/me", None, Role::Viewer),
        e(Method::GET, "/api/v1/users", None, Role::Admin),
        e(
            Method::POST,
            "/api/v1/users",
            Some(user.to_string()),
            Role::Admin,
        ),
        e(Method::GET, "/api/v1/experiments", None, Role::Viewer),
        e(
            Method::POST,
            "/api/v1/experiments",
            Some(SMALL_SPEC.to_owned()),
            Role::Experimenter,
        ),
        e(Method::GET, "/api/v1/experiments/{id}", None, Role::Viewer),
        e(
            Method::PUT,
            "/api/v1/experiments/{id}",
            Some(SMALL_SPEC.to_owned()),
            Role::Experimenter,
        ),
        e(
            Method::DELETE,
            "/api/v1/experiments/{id}",
            None,
            Role::Experimenter,
        ),
        e(
            Method::POST,
            "/api/v1/experiments/{id}/start",
            None,
            Role::Experimenter,
        ),
        e(
            Method::POST,
            "/api/v1/experiments/{id}/stop",
            None,
            Role::Experimenter,
        ),
        e(
            Method::POST,
            "/api/v1/experiments/{id}/promote",
            None,
            Role::Operator,
        ),
        e(
            Method::POST,
            "/api/v1/experiments/{id}/rollback",
            None,
            Role::Operator,
        ),
        e(
            Method::GET,
            "/api/v1/experiments/{id}/events",
            None,
            Role::Viewer,
        ),
        e(
            Method::GET,
            "/api/v1/experiments/{id}/results",
            None,
            Role::Viewer,
        ),
        e(
            Method::GET,
            "/api/v1/experiments/{id}/watch",
            None,
            Role::Viewer,
        ),
        e(
            Method::GET,
            "/api/v1/pipelines/templates",
            None,
            Role::Viewer,
        ),
        e(
            Method::POST,
            "/api/v1/pipelines/render",
            Some(render.to_string()),
            Role::Viewer,
        ),
        e(
            Method::POST,
            "/api/v1/pipelines/validate",
            Some(validate.to_string()),
            Role::Viewer,
        ),
        e(
            Method::POST,
            "/api/v1/pipelines/predict",
            Some(predict.to_string()),
            Role::Experimenter,
        ),
        e(Method::GET, "/api/v1/sim/profiles", None, Role::Viewer),
    ]
}

/// Routes outside [`endpoints`]: open (health, readiness, login, refresh) or guarded by
/// their own rules (metrics, the OpenAPI document).
const OTHER_ENDPOINTS: [(&str, &str); 6] = [
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
];

impl Harness {
    /// Creates an experiment owned by `owner` and runs it to completion.
    async fn completed_of(&self, owner: &str) -> String {
        let service = self.state.service();
        let admin = Principal::new("admin", Role::Admin);
        let mut spec: phoenix_core::experiment::ExperimentSpec =
            serde_json::from_str(SMALL_SPEC).unwrap();
        spec.owner = owner.to_owned();
        let experiment = service.create_experiment(&admin, spec).await.unwrap();
        let mut watch = service
            .watch_experiment(&admin, &experiment.id)
            .await
            .unwrap();
        service
            .start_experiment(&admin, &experiment.id)
            .await
            .unwrap();
        while let Some(event) = watch.next().await {
            event.unwrap();
        }
        let done = service
            .get_experiment(&admin, &experiment.id)
            .await
            .unwrap();
        assert_eq!(
            done.status.phase,
            phoenix_core::phase::Phase::Completed,
            "{:?}",
            done.status.failure
        );
        experiment.id.to_string()
    }
}

#[tokio::test]
async fn every_endpoint_gives_every_role_its_answer_or_403() {
    let h = harness().await;
    for endpoint in endpoints() {
        for role in Role::ALL {
            // A fresh experiment owned by the caller, so that ownership never decides, in
            // the phase where the operation is allowed.
            let path = if endpoint.path.contains("{id}") {
                let id = if endpoint.completed && role >= endpoint.role {
                    h.completed_of(user_of(role)).await
                } else {
                    h.experiment_of(user_of(role)).await
                };
                endpoint.path.replace("{id}", &id)
            } else {
                endpoint.path.to_owned()
            };
            let body = endpoint.body.as_deref().map(|b| {
                if endpoint.path == "/api/v1/users" {
                    b.replace("new-user-x", &format!("new-{}", role.as_str()))
                } else {
                    b.to_owned()
                }
            });
            let (status, answer) = h
                .call(
                    endpoint.method.clone(),
                    &path,
                    Some(&h.token(role)),
                    body.as_deref(),
                )
                .await;
            let what = format!(
                "{} {} as {role}: {status} {answer}",
                endpoint.method, endpoint.path
            );
            if role >= endpoint.role {
                assert_eq!(status, endpoint.allowed, "{what}");
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
                assert_eq!(answer["status"], 403, "{what}");
                let detail = answer["detail"].as_str().unwrap();
                assert!(detail.contains(endpoint.role.as_str()), "{what}");
            }
        }
    }
}

#[tokio::test]
async fn experimenters_touch_only_their_own_experiments() {
    let h = harness().await;
    let theirs = h.experiment_of("operator").await;
    let token = h.token(Role::Experimenter);
    for (method, suffix, body) in [
        (Method::PUT, "", Some(SMALL_SPEC)),
        (Method::DELETE, "", None),
        (Method::POST, "/start", None),
        (Method::POST, "/stop", None),
    ] {
        let path = format!("/api/v1/experiments/{theirs}{suffix}");
        let (status, body) = h.call(method, &path, Some(&token), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains("operator"),
            "{body}"
        );
    }
    // Creating an experiment for someone else is refused too, as a field error.
    let mut spec: Value = serde_json::from_str(SMALL_SPEC).unwrap();
    spec["owner"] = json!("operator");
    let (status, body) = h
        .call(
            Method::POST,
            "/api/v1/experiments",
            Some(&token),
            Some(&spec.to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["path"], "spec.owner");
}

#[tokio::test]
async fn missing_and_bad_tokens_get_401() {
    let h = harness().await;
    let alice = Principal::new("admin", Role::Admin);
    let foreign = TokenIssuer::new(
        &JwtSecret::new(vec![b'z'; 40]).unwrap(),
        Duration::from_secs(3600),
        Duration::from_secs(3600),
    )
    .issue(&alice, TokenKind::Access)
    .unwrap();
    let expired = h
        .issuer
        .issue_at(
            &alice,
            TokenKind::Access,
            1_000_000,
            Duration::from_secs(3600),
        )
        .unwrap();
    let valid = h.token(Role::Admin);
    let claims = valid.split('.').nth(1).unwrap();
    // {"alg":"none","typ":"JWT"}
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{claims}.");
    let refresh = h.issuer.issue(&alice, TokenKind::Refresh).unwrap();
    let id = h.experiment_of("admin").await;
    for endpoint in endpoints() {
        let path = endpoint.path.replace("{id}", &id);
        for token in [
            None,
            Some(&foreign),
            Some(&expired),
            Some(&unsigned),
            Some(&refresh),
        ] {
            let (status, body) = h
                .call(
                    endpoint.method.clone(),
                    &path,
                    token.map(String::as_str),
                    endpoint.body.as_deref(),
                )
                .await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{} {path}: {body}",
                endpoint.method
            );
            assert_eq!(body["type"], "urn:phoenix:problem:unauthenticated");
        }
    }
    let request = Request::get("/api/v1/auth/me")
        .header(header::AUTHORIZATION, "Basic YWRtaW46cHc=")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = h.send(request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
}

#[tokio::test]
async fn login_refresh_and_me() {
    let h = harness().await;
    let (status, tokens) = h.login("operator", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    let access = tokens["access_token"].as_str().unwrap();
    let (status, me) = h
        .call(Method::GET, "/api/v1/auth/me", Some(access), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me, json!({"username": "operator", "role": "operator"}));

    let refresh = json!({"refresh_token": tokens["refresh_token"]}).to_string();
    let (status, again) = h
        .call(Method::POST, "/api/v1/auth/refresh", None, Some(&refresh))
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    // An access token is not a refresh token.
    let wrong = json!({"refresh_token": access}).to_string();
    let (status, _) = h
        .call(Method::POST, "/api/v1/auth/refresh", None, Some(&wrong))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, body) = h.login("operator", "wrong password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["detail"],
        "not authenticated: invalid user name or password"
    );
    let (_, other) = h.login("nobody", "wrong password").await;
    assert_eq!(
        other["detail"], body["detail"],
        "unknown names look like bad passwords"
    );
}

#[tokio::test]
async fn logins_are_rate_limited_with_retry_after() {
    let h = harness_with(config().with_login_rate_limit(LoginRateLimit {
        per_user_burst: 3,
        per_user_interval: Duration::from_secs(60),
        per_client_burst: 100,
        per_client_interval: Duration::from_secs(1),
    }))
    .await;
    for _ in 0..3 {
        let (status, _) = h.login("viewer", "not the password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // The fourth, with its headers.
    let bad = json!({"username": "viewer", "password": "not the password"}).to_string();
    let request = Request::post("/api/v1/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(bad))
        .unwrap();
    let (status, headers, body) = h.send(request).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let retry: u64 = headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(body["retry_after"], retry);
    // Even the right password waits: the limit comes before the check.
    let (status, _) = h.login("viewer", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Other users are not affected.
    let (status, _) = h.login("operator", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn bad_input_is_400_with_every_field_error_and_never_500() {
    let h = harness().await;
    let token = h.token(Role::Admin);
    let post = |body: &'static str| {
        let token = token.clone();
        let h = &h;
        async move {
            h.call(
                Method::POST,
                "/api/v1/experiments",
                Some(&token),
                Some(body),
            )
            .await
        }
    };

    let (status, body) = post("{\"name\": \"x\",").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("malformed JSON"),
        "{body}"
    );
    assert_eq!(body["errors"][0]["path"], "spec");

    // The paths expected in each answer, and how many errors it lists at least.
    for (spec, expected, at_least) in [
        (
            UNKNOWN_FIELDS_SPEC,
            [
                "spec.colour",
                "spec.successCriteria.maxBudget",
                "spec.workload.processes",
            ],
            None,
        ),
        (
            INVALID_SPEC,
            [
                "spec.name",
                "spec.candidate",
                "spec.successCriteria.minCardinalityReduction",
            ],
            Some(4),
        ),
    ] {
        let (status, body) = post(spec).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let paths: BTreeSet<&str> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap())
            .collect();
        for expected in expected {
            assert!(
                paths.contains(expected),
                "{expected} missing from {paths:?}"
            );
        }
        if let Some(at_least) = at_least {
            assert!(
                paths.len() >= at_least,
                "every violation is listed: {paths:?}"
            );
        }
    }

    // Oversized bodies: 413, as a problem.
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(100 * 1024));
    let (status, body) = h
        .call(
            Method::POST,
            "/api/v1/experiments",
            Some(&token),
            Some(&big),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["type"], "urn:phoenix:problem:payload-too-large");

    // Wrong content type: 415.
    let request = Request::post("/api/v1/auth/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("username=a&password=b"))
        .unwrap();
    let (status, _, body) = h.send(request).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");

    // Every body-taking endpoint, fed junk: a 4xx, never a 5xx.
    let id = h.experiment_of("admin").await;
    let junk = [
        "",
        "null",
        "[]",
        "42",
        "\"text\"",
        "{",
        "{}",
        "{\"a\":1}",
        "\u{0}",
        "{\"name\": []}",
        "{\"username\": {}, \"password\": 1}",
    ];
    for endpoint in endpoints() {
        let path = endpoint.path.replace("{id}", &id);
        for body in junk {
            let (status, answer) = h
                .call(endpoint.method.clone(), &path, Some(&token), Some(body))
                .await;
            assert!(
                !status.is_server_error(),
                "{} {path} {body:?}: {status} {answer}",
                endpoint.method
            );
        }
    }
    // Bad ids and query strings.
    for path in [
        "/api/v1/experiments/not-an-id",
        "/api/v1/experiments/exp-UPPER123/results",
        "/api/v1/experiments?phase=sleeping",
        "/api/v1/experiments?limit=0",
        "/api/v1/experiments?limit=many",
        "/api/v1/experiments?after=garbage",
        "/api/v1/experiments?colour=blue",
    ] {
        let (status, body) = h.call(Method::GET, path, Some(&token), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(
            !body["errors"].as_array().unwrap().is_empty(),
            "{path}: {body}"
        );
    }
    let (status, body) = h
        .call(
            Method::GET,
            "/api/v1/experiments/exp-00000000",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = h
        .call(Method::GET, "/api/v1/nothing", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = h
        .call(Method::PATCH, "/api/v1/experiments", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
}

#[tokio::test]
async fn yaml_specs_are_accepted() {
    let h = harness().await;
    let yaml = "name: yaml-trial\nbaseline: {template: process-baseline-v1}\ncandidate: {template: process-topk-v1}\nduration: 2m\n";
    let (status, body) = h.post_yaml(Role::Experimenter, yaml.to_owned()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["spec"]["owner"], "experimenter");
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let h = harness().await;
    let (status, body) = h
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "not open by default: {body}"
    );
    let (status, doc) = h
        .call(
            Method::GET,
            "/api/v1/openapi.json",
            Some(&h.token(Role::Viewer)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    let mut expected: BTreeSet<(String, String)> = endpoints()
        .iter()
        .map(|e| (e.method.as_str().to_lowercase(), e.path.to_owned()))
        .collect();
    expected.extend(
        OTHER_ENDPOINTS
            .iter()
            .map(|(m, p)| (m.to_lowercase(), (*p).to_owned())),
    );
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "put", "post", "delete", "patch"].contains(&k.as_str()))
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    assert_eq!(documented, expected);
    // Types come from the handlers: the spec schema is phoenix-core's.
    let create = &paths["/api/v1/experiments"]["post"];
    assert!(create["requestBody"].is_object(), "{create}");
    assert!(doc["components"]["schemas"]["ExperimentSpec"].is_object());
    assert!(create["security"].is_array(), "{create}");
    assert!(paths["/health"]["get"]["security"].is_null());
}

#[tokio::test]
async fn health_ready_and_metrics() {
    let h = harness().await;
    let (status, body) = h.call(Method::GET, "/health", None, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (status, body) = h.call(Method::GET, "/ready", None, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ready"})));
    let id = h.experiment_of("admin").await;
    let token = h.token(Role::Viewer);
    let path = format!("/api/v1/experiments/{id}");
    let (status, _) = h.call(Method::GET, &path, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = h.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "not open by default: {body}"
    );
    let request = Request::get("/metrics")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let (status, headers, text) = h.send(request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = text.as_str().unwrap();
    assert!(
        text.contains(r#"phoenix_http_requests_total{method="GET",route="/api/v1/experiments/{id}",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("phoenix_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains(r#"phoenix_experiments{phase="pending"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn ready_fails_with_503_when_the_store_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("phoenix.db").display());
    let h = harness_with(config().with_database_url(url)).await;
    h.state.service().store().close().await;
    let (status, body) = h.call(Method::GET, "/ready", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        !detail.contains("phoenix.db") && !detail.contains("sqlx"),
        "{detail}"
    );
    let (status, _) = h.call(Method::GET, "/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_and_openapi_can_be_opened_or_scraped_with_a_static_token() {
    const SCRAPE: &str = "a-static-scrape-token-for-prometheus";
    let h = harness_with(config().with_metrics_token(SCRAPE)).await;
    let (status, _) = h.call(Method::GET, "/metrics", Some(SCRAPE), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h
        .call(Method::GET, "/metrics", Some("wrong-token"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = h
        .call(Method::GET, "/api/v1/openapi.json", Some(SCRAPE), None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the scrape token is for /metrics only"
    );

    let h = harness_with(config().with_open_endpoints(true, true)).await;
    let (status, _) = h.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// Base64url without padding, as JWTs write their parts.
fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0_u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// A JWT with `header` and `claims`, signed with the server's secret by HMAC over `digest`.
fn forged(header: &Value, claims: &Value, alg: &str) -> String {
    use hmac::{Hmac, Mac};
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let signature = match alg {
        "HS256" => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        "HS384" => {
            let mut mac = Hmac::<sha2::Sha384>::new_from_slice(SECRET).unwrap();
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        _ => {
            let mut mac = Hmac::<sha2::Sha512>::new_from_slice(SECRET).unwrap();
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
    };
    format!("{input}.{}", b64url(&signature))
}

#[tokio::test]
async fn forged_tokens_get_401_with_their_reason() {
    let h = harness().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"sub": "admin", "role": "admin", "typ": "access", "iss": "phoenix",
                        "iat": now, "exp": now + 600});
    let me = |token: String| {
        let h = &h;
        async move {
            h.call(Method::GET, "/api/v1/auth/me", Some(&token), None)
                .await
        }
    };
    // The forging itself is right: HS256 with the secret passes.
    let good = forged(&json!({"alg": "HS256", "typ": "JWT"}), &claims, "HS256");
    assert_eq!(me(good).await.0, StatusCode::OK);
    for alg in ["HS384", "HS512"] {
        let token = forged(&json!({"alg": alg, "typ": "JWT"}), &claims, alg);
        let (status, body) = me(token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{alg}: {body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("not signed with HS256"),
            "{alg}: {body}"
        );
    }
    let mut untyped = claims.clone();
    untyped.as_object_mut().unwrap().remove("typ");
    let token = forged(&json!({"alg": "HS256", "typ": "JWT"}), &untyped, "HS256");
    let (status, body) = me(token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no typ: {body}");
    // alg: none, with the claims of a valid token and no signature.
    let valid = h.token(Role::Admin);
    let payload = valid.split('.').nth(1).unwrap();
    let unsigned = format!("{}.{payload}.", b64url(br#"{"alg":"none","typ":"JWT"}"#));
    let (status, body) = me(unsigned).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("not signed with HS256"),
        "alg none: {body}"
    );
}

#[tokio::test]
async fn reads_see_updates_and_deletions() {
    let h = harness().await;
    let token = h.token(Role::Experimenter);
    let id = h.experiment_of("experimenter").await;
    let path = format!("/api/v1/experiments/{id}");
    let (_, before) = h.call(Method::GET, &path, Some(&token), None).await;
    let mut spec: Value = serde_json::from_str(SMALL_SPEC).unwrap();
    spec["description"] = json!("changed by PUT");
    let (status, body) = h
        .call(Method::PUT, &path, Some(&token), Some(&spec.to_string()))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, after) = h.call(Method::GET, &path, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(after["spec"]["description"], "changed by PUT");
    assert!(
        after["version"].as_u64() > before["version"].as_u64(),
        "{after}"
    );
    let (status, _) = h.call(Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = h.call(Method::GET, &path, Some(&token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn promoted_experiments_cannot_be_deleted() {
    let h = harness().await;
    let id = h.completed_of("operator").await;
    let token = h.token(Role::Operator);
    let (status, body) = h
        .call(
            Method::POST,
            &format!("/api/v1/experiments/{id}/promote"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let path = format!("/api/v1/experiments/{id}");
    let (status, body) = h.call(Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("roll it back"),
        "{body}"
    );
}

#[tokio::test]
async fn oversized_yaml_bodies_get_413() {
    let h = harness().await;
    let big = format!(
        "name: big\ndescription: {}\nbaseline: {{template: process-baseline-v1}}\ncandidate: {{template: process-topk-v1}}\n",
        "x".repeat(70 * 1024)
    );
    let (status, body) = h.post_yaml(Role::Admin, big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["type"], "urn:phoenix:problem:payload-too-large");
}

/// A YAML document of nine levels of ten aliases each (10^9 leaves once expanded): the first
/// anchor under the key `first`, the next ones under `prefix` and their anchor's letter.
fn alias_bomb(first: &str, prefix: &str) -> String {
    let mut bomb = format!("{first}: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for level in b'b'..=b'i' {
        let prev = char::from(level - 1);
        let level = char::from(level);
        let aliases = vec![format!("*{prev}"); 10].join(", ");
        bomb.push_str(&format!("{prefix}{level}: &{level} [{aliases}]\n"));
    }
    bomb
}

#[tokio::test]
async fn yaml_alias_bombs_get_400() {
    let h = harness().await;
    let bomb = alias_bomb("name", "k");
    let (status, body) = h.post_yaml(Role::Admin, bomb).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("anchors and aliases"),
        "{body}"
    );
}

#[tokio::test]
async fn inline_config_alias_bombs_get_400_everywhere() {
    let h = harness().await;
    let bomb = alias_bomb("a", "");
    let token = h.token(Role::Experimenter);
    let mut spec: Value = serde_json::from_str(SMALL_SPEC).unwrap();
    spec["candidate"] = json!({"config": bomb});
    for (path, body, error_path) in [
        (
            "/api/v1/pipelines/validate",
            json!({"pipeline": {"config": bomb}}),
            "pipeline.config",
        ),
        (
            "/api/v1/pipelines/predict",
            json!({"baseline": {"template": "process-baseline-v1"},
                   "candidate": {"config": bomb}, "scrapes": 2}),
            "candidate.config",
        ),
        ("/api/v1/experiments", spec, "spec.candidate.config"),
    ] {
        let (status, body) = h
            .call(Method::POST, path, Some(&token), Some(&body.to_string()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["errors"][0]["path"], error_path, "{body}");
    }
}

#[tokio::test]
async fn watch_authenticates_first() {
    let h = harness().await;
    // A bad id and an unknown query key, unauthenticated: 401, not 400.
    let (status, body) = h
        .call(
            Method::GET,
            "/api/v1/experiments/NOT-AN-ID/watch?bogus=1",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // A token in the subprotocol authenticates; a plain GET is then refused as no upgrade.
    let id = h.experiment_of("viewer").await;
    let request = Request::get(format!("/api/v1/experiments/{id}/watch"))
        .header(
            header::SEC_WEBSOCKET_PROTOCOL,
            format!("phoenix.watch.v1, bearer.{}", h.token(Role::Viewer)),
        )
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = h.send(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        h.state.service().events().subscribers(),
        0,
        "no watch was started"
    );
    let (status, body) = h
        .call(
            Method::GET,
            &format!(
                "/api/v1/experiments/{id}/watch?access_token={}",
                h.token(Role::Viewer)
            ),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn long_user_names_are_bad_credentials_and_not_counted() {
    let h = harness_with(config().with_login_rate_limit(LoginRateLimit {
        per_user_burst: 1,
        per_user_interval: Duration::from_secs(3600),
        per_client_burst: 1,
        per_client_interval: Duration::from_secs(3600),
    }))
    .await;
    let long = "u".repeat(129);
    for _ in 0..3 {
        let (status, body) = h.login(&long, "whatever").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    for _ in 0..3 {
        let (status, body) = h.login("viewer", PASSWORD).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "successes do not use up attempts: {body}"
        );
    }
}

#[tokio::test]
async fn runs_are_capped_and_stop_ends_the_run_task() {
    const LONG_SPEC: &str = include_str!("fixtures/long-spec.json");
    let mut config = config();
    config.max_runs = 1;
    let h = harness_with(config).await;
    let token = h.token(Role::Operator);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, body) = h
            .call(
                Method::POST,
                "/api/v1/experiments",
                Some(&token),
                Some(LONG_SPEC),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let action = |id: &str, what: &str| format!("/api/v1/experiments/{id}/{what}");
    let (status, body) = h
        .call(Method::POST, &action(&ids[0], "start"), Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = h
        .call(Method::POST, &action(&ids[1], "start"), Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("limit"), "{body}");
    // Stopping the first ends its task at once: the second may start.
    let (status, body) = h
        .call(Method::POST, &action(&ids[0], "stop"), Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"]["phase"], "cancelled");
    let (status, body) = h
        .call(Method::POST, &action(&ids[1], "start"), Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = h
        .call(Method::POST, &action(&ids[1], "stop"), Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    // The cancelled run wrote nothing after its cancellation.
    let (_, experiment) = h
        .call(
            Method::GET,
            &format!("/api/v1/experiments/{}", ids[0]),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(experiment["status"]["phase"], "cancelled", "{experiment}");
}

#[tokio::test]
async fn refresh_reads_the_user_and_ends_with_the_session() {
    use phoenix_store::{UserStore, UserUpdate};
    let h = harness().await;
    let (status, tokens) = h.login("viewer", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let refresh = |token: &str| json!({"refresh_token": token}).to_string();
    // A role change is picked up at the refresh.
    let store = h.state.service().store();
    store
        .update_user(
            "viewer",
            &UserUpdate {
                password_hash: None,
                role: Some(Role::Operator),
            },
        )
        .await
        .unwrap();
    let body = refresh(tokens["refresh_token"].as_str().unwrap());
    let (status, pair) = h
        .call(Method::POST, "/api/v1/auth/refresh", None, Some(&body))
        .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let access = pair["access_token"].as_str().unwrap();
    let (_, me) = h
        .call(Method::GET, "/api/v1/auth/me", Some(access), None)
        .await;
    assert_eq!(me["role"], "operator", "{me}");
    // A disabled user gets no new pair.
    store.set_user_disabled("viewer", true).await.unwrap();
    let body = refresh(pair["refresh_token"].as_str().unwrap());
    let (status, answer) = h
        .call(Method::POST, "/api/v1/auth/refresh", None, Some(&body))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    // A refresh token whose login is older than the session limit is refused.
    let issuer = TokenIssuer::new(
        &JwtSecret::new(SECRET.to_vec()).unwrap(),
        Duration::from_secs(3600),
        Duration::from_secs(7 * 86_400),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let old = issuer
        .pair_since(&Principal::new("admin", Role::Admin), now - 7 * 86_400 + 5)
        .unwrap();
    let claims = issuer
        .verify(&old.refresh_token, TokenKind::Refresh)
        .unwrap();
    assert!(claims.exp <= now + 5, "capped by the session: {claims:?}");
    let stale = forged(
        &json!({"alg": "HS256", "typ": "JWT"}),
        &json!({"sub": "admin", "role": "admin", "typ": "refresh", "iss": "phoenix",
                "iat": now, "exp": now + 600, "auth_time": now - 8 * 86_400}),
        "HS256",
    );
    let (status, answer) = h
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(&refresh(&stale)),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("maximum lifetime"),
        "{answer}"
    );
}
