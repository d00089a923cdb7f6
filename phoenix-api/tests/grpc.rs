//! The gRPC services in process: a tonic client against the whole HTTP router on a loopback
//! port the test picks. Covers authentication, roles, bad input, a whole experiment run with
//! its event stream, and the pipeline calls.

use std::time::Duration;

use anyhow::{Context, Result};
use phoenix_api::Principal;
use phoenix_api::auth::TokenKind;
use phoenix_api::grpc::proto::experiment_service_client::ExperimentServiceClient;
use phoenix_api::grpc::proto::pipeline_service_client::PipelineServiceClient;
use phoenix_api::grpc::proto::{self, pipeline};
use phoenix_store::Role;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

#[allow(dead_code)]
mod support;

use support::{InProcess, authed};

const ADMIN_PASSWORD: &str = "grpc tests admin password";

/// The services on a loopback port, with a channel to them; stopped when dropped.
struct Server {
    inner: InProcess,
    channel: Channel,
}

impl Server {
    async fn start() -> Result<Self> {
        let inner = InProcess::start(ADMIN_PASSWORD).await?;
        let channel = Channel::from_shared(format!("http://{}", inner.address))?
            .connect()
            .await?;
        Ok(Self { inner, channel })
    }

    fn experiments(&self) -> ExperimentServiceClient<Channel> {
        ExperimentServiceClient::new(self.channel.clone())
    }

    fn pipelines(&self) -> PipelineServiceClient<Channel> {
        PipelineServiceClient::new(self.channel.clone())
    }

    /// An access token for `name` with `role`.
    fn token(&self, name: &str, role: Role) -> Result<String> {
        self.inner.token(name, role)
    }
}

/// The spec of a short experiment (tests/grpc-fixtures/short-spec.json), named `name`.
fn spec_named(name: &str) -> serde_json::Value {
    const SPEC: &str = include_str!("grpc-fixtures/short-spec.json");
    let mut spec: serde_json::Value =
        serde_json::from_str(SPEC).expect("the fixture is valid JSON");
    spec["name"] = name.into();
    spec
}

/// [`spec_named`] as a JSON document.
fn short_spec(name: &str) -> String {
    spec_named(name).to_string()
}

/// A request creating the short experiment named `name`.
fn create(token: &str, name: &str) -> Result<Request<proto::CreateExperimentRequest>> {
    create_from(token, short_spec(name))
}

/// A request creating an experiment from the JSON document `spec_json`.
fn create_from(token: &str, spec_json: String) -> Result<Request<proto::CreateExperimentRequest>> {
    authed(token, proto::CreateExperimentRequest { spec_json })
}

/// Creating an experiment from `spec_json` as `token` fails with `code`: the status.
async fn create_fails(
    experiments: &mut ExperimentServiceClient<Channel>,
    token: &str,
    spec_json: String,
    code: Code,
) -> Result<Status> {
    expect_code(
        experiments
            .create_experiment(create_from(token, spec_json)?)
            .await,
        code,
    )
}

/// `refused!(client.method(token, message), code)`: calling `method` with `message` as
/// `token` fails with `code`; the status (see [`expect_code`]).
macro_rules! refused {
    ($client:ident . $method:ident($token:expr, $message:expr), $code:expr) => {
        expect_code($client.$method(authed($token, $message)?).await, $code)
    };
}

fn expect_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) -> Result<Status> {
    match result {
        Ok(value) => anyhow::bail!("expected {code:?}, got {value:?}"),
        Err(status) if status.code() == code => Ok(status),
        Err(status) => anyhow::bail!("expected {code:?}, got {status:?}"),
    }
}

#[tokio::test]
async fn calls_without_valid_credentials_are_unauthenticated() -> Result<()> {
    let server = Server::start().await?;
    let mut experiments = server.experiments();

    let status = expect_code(
        experiments
            .list_experiments(proto::ListExperimentsRequest::default())
            .await,
        Code::Unauthenticated,
    )?;
    assert!(status.message().contains("authorization"), "{status:?}");

    // A malformed token, one signed by another server's key, and a refresh token (not an
    // access token).
    let other = Server::start().await?;
    let foreign = other.token("admin", Role::Admin)?;
    let refresh = server
        .inner
        .state
        .service()
        .tokens()
        .issue(&Principal::new("admin", Role::Admin), TokenKind::Refresh)?;
    for (token, says) in [
        ("not-a-jwt", Some("malformed")),
        (foreign.as_str(), None),
        (refresh.as_str(), None),
    ] {
        let status = refused!(
            experiments.list_experiments(token, proto::ListExperimentsRequest::default()),
            Code::Unauthenticated
        )?;
        if let Some(says) = says {
            assert!(status.message().contains(says), "{status:?}");
        }
    }

    // The stream and the pipeline service check too.
    expect_code(
        experiments
            .watch_events(proto::WatchEventsRequest {
                id: "exp-a1b2c3d4".into(),
            })
            .await,
        Code::Unauthenticated,
    )?;
    expect_code(
        server
            .pipelines()
            .list_templates(proto::ListTemplatesRequest {})
            .await,
        Code::Unauthenticated,
    )?;
    Ok(())
}

#[tokio::test]
async fn roles_below_the_operation_are_denied() -> Result<()> {
    let server = Server::start().await?;
    let viewer = server.token("vera", Role::Viewer)?;
    let experimenter = server.token("erin", Role::Experimenter)?;
    let mut experiments = server.experiments();

    let status = expect_code(
        experiments
            .create_experiment(create(&viewer, "viewer-try")?)
            .await,
        Code::PermissionDenied,
    )?;
    assert!(status.message().contains("experimenter"), "{status:?}");

    // A viewer reads; an experimenter creates but cannot promote.
    experiments
        .list_experiments(authed(&viewer, proto::ListExperimentsRequest::default())?)
        .await?;
    let created = experiments
        .create_experiment(create(&experimenter, "erin-trial")?)
        .await?
        .into_inner();
    assert_eq!(created.owner, "erin");
    let status = refused!(
        experiments.promote_experiment(
            &experimenter,
            proto::PromoteExperimentRequest {
                id: created.id.clone(),
            }
        ),
        Code::PermissionDenied
    )?;
    assert!(status.message().contains("operator"), "{status:?}");

    // Another experimenter may not start erin's experiment.
    let other = server.token("otto", Role::Experimenter)?;
    refused!(
        experiments.start_experiment(&other, proto::StartExperimentRequest { id: created.id }),
        Code::PermissionDenied
    )?;

    // Predicting runs the simulator: experimenter and above.
    let predict = proto::PredictRequest {
        baseline: Some(template("process-baseline-v1", "")),
        candidate: Some(template("process-topk-v1", "")),
        scrapes: Some(3),
        ..proto::PredictRequest::default()
    };
    expect_code(
        server.pipelines().predict(authed(&viewer, predict)?).await,
        Code::PermissionDenied,
    )?;
    Ok(())
}

fn template(name: &str, parameters_json: &str) -> proto::Pipeline {
    proto::Pipeline {
        source: Some(pipeline::Source::Template(proto::TemplateRef {
            name: name.into(),
            parameters_json: parameters_json.into(),
        })),
    }
}

#[tokio::test]
async fn bad_input_is_an_invalid_argument_naming_the_field() -> Result<()> {
    let server = Server::start().await?;
    let admin = server.token("admin", Role::Admin)?;
    let mut experiments = server.experiments();

    // Malformed JSON names the document's root and the position.
    let status = create_fails(
        &mut experiments,
        &admin,
        "{\"name\": ".into(),
        Code::InvalidArgument,
    )
    .await?;
    assert!(
        status
            .message()
            .contains("spec: malformed JSON at line 1 column 9"),
        "{status:?}"
    );

    // Every unknown field and wrong type is named by its path in the document, as REST
    // names them.
    let mut spec = spec_named("unknown-field");
    spec["sucessCriteria"] = serde_json::json!({});
    spec["bogus"] = 1.into();
    spec["criticalProcesses"] = "postgres".into();
    let status = create_fails(
        &mut experiments,
        &admin,
        spec.to_string(),
        Code::InvalidArgument,
    )
    .await?;
    let message = status.message();
    assert!(message.starts_with("3 invalid fields"), "{message}");
    for path in [
        "spec.sucessCriteria: ",
        "spec.bogus: ",
        "spec.criticalProcesses: ",
    ] {
        assert!(message.contains(path), "{path} in {message}");
    }

    // An invalid spec lists every field at fault.
    let mut spec = spec_named("Bad Name");
    spec["successCriteria"] = serde_json::json!({"minCardinalityReduction": 7});
    let status = create_fails(
        &mut experiments,
        &admin,
        spec.to_string(),
        Code::InvalidArgument,
    )
    .await?;
    let message = status.message();
    assert!(message.starts_with("2 invalid fields"), "{message}");
    assert!(
        message.contains("spec.name: ")
            && message.contains("spec.successCriteria.minCardinalityReduction: "),
        "{message}"
    );

    // Ids, phases, page sizes and page tokens.
    let status = refused!(
        experiments.get_experiment(&admin, proto::GetExperimentRequest { id: "nope".into() }),
        Code::InvalidArgument
    )?;
    assert!(status.message().contains("id:"), "{status:?}");
    let status = refused!(
        experiments.list_experiments(
            &admin,
            proto::ListExperimentsRequest {
                phase: Some(42),
                page_token: "garbage".into(),
                ..proto::ListExperimentsRequest::default()
            }
        ),
        Code::InvalidArgument
    )?;
    let message = status.message();
    assert!(message.starts_with("2 invalid fields"), "{message}");
    assert!(
        message.contains("phase: unknown phase 42") && message.contains("page_token: "),
        "{message}"
    );
    // A page size over the gRPC maximum reads as the maximum.
    experiments
        .list_experiments(authed(
            &admin,
            proto::ListExperimentsRequest {
                limit: 5000,
                ..proto::ListExperimentsRequest::default()
            },
        )?)
        .await?;

    // A message over the server's body limit (1 MiB by default) is refused unread.
    let mut spec = spec_named("too-large");
    spec["description"] = "x".repeat(2 * 1024 * 1024).into();
    create_fails(&mut experiments, &admin, spec.to_string(), Code::OutOfRange).await?;

    // Pipelines: an empty template name, bad parameters, a missing pipeline, several at once.
    let mut pipelines = server.pipelines();
    let status = refused!(
        pipelines.render(&admin, proto::RenderRequest::default()),
        Code::InvalidArgument
    )?;
    assert!(status.message().contains("template"), "{status:?}");
    let status = refused!(
        pipelines.render(
            &admin,
            proto::RenderRequest {
                template: "process-topk-v1".into(),
                parameters_json: "{\"topK\": 0}".into(),
            }
        ),
        Code::InvalidArgument
    )?;
    assert!(status.message().contains("topK"), "{status:?}");
    let status = refused!(
        pipelines.validate(&admin, proto::ValidateRequest::default()),
        Code::InvalidArgument
    )?;
    assert!(status.message().contains("pipeline"), "{status:?}");
    let status = refused!(
        pipelines.predict(
            &admin,
            proto::PredictRequest {
                baseline: None,
                candidate: Some(template("process-topk-v1", "[1]")),
                profile: 77,
                scrapes: Some(0),
                critical_processes: vec![proto::CriticalProcess {
                    name: "(".into(),
                    ..proto::CriticalProcess::default()
                }],
                ..proto::PredictRequest::default()
            }
        ),
        Code::InvalidArgument
    )?;
    let message = status.message();
    assert!(message.starts_with("5 invalid fields"), "{message}");
    for field in [
        "baseline: ",
        "candidate.template.parameters_json: ",
        "profile: ",
        "scrapes: ",
        "criticalProcesses[0]",
    ] {
        assert!(message.contains(field), "{field} in {message}");
    }
    let status = refused!(
        pipelines.predict(
            &admin,
            proto::PredictRequest {
                baseline: Some(template("process-baseline-v1", "")),
                candidate: Some(template("process-topk-v1", "")),
                scrapes: Some(0),
                ..proto::PredictRequest::default()
            }
        ),
        Code::InvalidArgument
    )?;
    assert!(status.message().contains("scrapes"), "{status:?}");
    Ok(())
}

#[tokio::test]
async fn an_experiment_runs_to_completion_and_is_watched() -> Result<()> {
    let server = Server::start().await?;
    let admin = server.token("admin", Role::Admin)?;
    let mut experiments = server.experiments();

    let created = experiments
        .create_experiment(create(&admin, "grpc-watched")?)
        .await?
        .into_inner();
    assert_eq!(created.phase(), proto::Phase::Pending);
    assert_eq!(created.version, 1);
    assert!(created.created_at.is_some());
    let spec: serde_json::Value = serde_json::from_str(&created.spec_json)?;
    assert_eq!(spec["name"], "grpc-watched");

    // Results before the run are a failed precondition; unknown ids are not found.
    let status = refused!(
        experiments.get_results(
            &admin,
            proto::GetResultsRequest {
                id: created.id.clone(),
            }
        ),
        Code::FailedPrecondition
    )?;
    assert!(status.message().contains("pending"), "{status:?}");
    refused!(
        experiments.get_experiment(
            &admin,
            proto::GetExperimentRequest {
                id: "exp-zzzzzzzz".into(),
            }
        ),
        Code::NotFound
    )?;

    // Watch while it is still pending, then start it: the stream hands over from the log
    // to live events without a gap or a duplicate.
    let mut stream = experiments
        .watch_events(authed(
            &admin,
            proto::WatchEventsRequest {
                id: created.id.clone(),
            },
        )?)
        .await?
        .into_inner();
    let first = stream.message().await?.context("the created event")?;
    assert_eq!(first.kind(), proto::EventKind::Created);

    let started = experiments
        .start_experiment(authed(
            &admin,
            proto::StartExperimentRequest {
                id: created.id.clone(),
            },
        )?)
        .await?
        .into_inner();
    assert_ne!(started.phase(), proto::Phase::Pending);

    let mut events = vec![first];
    let deadline = Duration::from_secs(120);
    while let Some(event) = tokio::time::timeout(deadline, stream.message())
        .await
        .context("the stream must end once the run is over")??
    {
        events.push(event);
    }
    assert_eq!(events[0].kind(), proto::EventKind::Created);
    let last = events.last().context("events")?;
    assert_eq!(last.kind(), proto::EventKind::Transition);
    assert_eq!(last.to_phase(), proto::Phase::Completed, "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e.transition == "windowMeasured" && e.to_phase() == proto::Phase::Running)
    );
    assert!(
        events
            .iter()
            .all(|e| e.experiment_id == created.id && e.at.is_some())
    );

    // The log has the same events, in pages of 3 (and all of them in one default page).
    let mut logged = Vec::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let page = experiments
            .list_events(authed(
                &admin,
                proto::ListEventsRequest {
                    id: created.id.clone(),
                    limit: 3,
                    page_token,
                },
            )?)
            .await?
            .into_inner();
        assert!(page.events.len() <= 3);
        logged.extend(page.events);
        pages += 1;
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(logged, events);
    assert_eq!(pages, events.len().div_ceil(3));
    let whole = experiments
        .list_events(authed(
            &admin,
            proto::ListEventsRequest {
                id: created.id.clone(),
                ..proto::ListEventsRequest::default()
            },
        )?)
        .await?
        .into_inner();
    assert_eq!(whole.events, events, "fewer than 100 events fit one page");
    assert!(whole.next_page_token.is_empty());
    let status = refused!(
        experiments.list_events(
            &admin,
            proto::ListEventsRequest {
                id: created.id.clone(),
                page_token: "not-a-token".into(),
                ..proto::ListEventsRequest::default()
            }
        ),
        Code::InvalidArgument
    )?;
    assert!(status.message().contains("page_token"), "{status:?}");

    let results = experiments
        .get_results(authed(
            &admin,
            proto::GetResultsRequest {
                id: created.id.clone(),
            },
        )?)
        .await?
        .into_inner();
    assert_ne!(results.decision(), proto::Decision::Unspecified);
    let baseline = results.baseline.context("baseline")?;
    let candidate = results.candidate.context("candidate")?;
    assert!(baseline.distinct_series > candidate.distinct_series);
    let comparison = results.comparison.context("comparison")?;
    assert!(comparison.cardinality_reduction > 0.0);
    let full: serde_json::Value = serde_json::from_str(&results.results_json)?;
    assert_eq!(full["windows"], results.windows);

    let listed = experiments
        .list_experiments(authed(
            &admin,
            proto::ListExperimentsRequest {
                phase: Some(proto::Phase::Completed.into()),
                ..proto::ListExperimentsRequest::default()
            },
        )?)
        .await?
        .into_inner();
    assert_eq!(listed.experiments.len(), 1);
    assert!(listed.experiments[0].has_results);
    assert!(listed.next_page_token.is_empty());

    // Watching a run that is over replays its log and ends.
    let replay = experiments
        .watch_events(authed(
            &admin,
            proto::WatchEventsRequest {
                id: created.id.clone(),
            },
        )?)
        .await?
        .into_inner();
    let mut replayed = Vec::new();
    let mut replay = replay;
    while let Some(event) = replay.message().await? {
        replayed.push(event);
    }
    assert_eq!(replayed, events);

    // Roll back the candidate, then it cannot be deleted twice.
    let rolled = experiments
        .rollback_experiment(authed(
            &admin,
            proto::RollbackExperimentRequest {
                id: created.id.clone(),
            },
        )?)
        .await?
        .into_inner();
    assert_eq!(rolled.phase(), proto::Phase::RolledBack);
    experiments
        .delete_experiment(authed(
            &admin,
            proto::DeleteExperimentRequest {
                id: created.id.clone(),
            },
        )?)
        .await?;
    refused!(
        experiments.delete_experiment(&admin, proto::DeleteExperimentRequest { id: created.id }),
        Code::NotFound
    )?;
    Ok(())
}

#[tokio::test]
async fn pending_experiments_are_updated_and_stopped() -> Result<()> {
    let server = Server::start().await?;
    let token = server.token("erin", Role::Experimenter)?;
    let mut experiments = server.experiments();
    let created = experiments
        .create_experiment(create(&token, "erin-pending")?)
        .await?
        .into_inner();

    let mut spec = spec_named("erin-pending");
    spec["description"] = "edited over gRPC".into();
    let updated = experiments
        .update_experiment(authed(
            &token,
            proto::UpdateExperimentRequest {
                id: created.id.clone(),
                spec_json: spec.to_string(),
            },
        )?)
        .await?
        .into_inner();
    assert_eq!(updated.description, "edited over gRPC");
    assert_eq!(updated.version, 2);

    let stopped = experiments
        .stop_experiment(authed(
            &token,
            proto::StopExperimentRequest {
                id: created.id.clone(),
            },
        )?)
        .await?
        .into_inner();
    assert_eq!(stopped.phase(), proto::Phase::Cancelled);

    // A cancelled experiment cannot be started or edited.
    refused!(
        experiments.start_experiment(
            &token,
            proto::StartExperimentRequest {
                id: created.id.clone(),
            }
        ),
        Code::FailedPrecondition
    )?;
    refused!(
        experiments.update_experiment(
            &token,
            proto::UpdateExperimentRequest {
                id: created.id,
                spec_json: spec.to_string(),
            }
        ),
        Code::FailedPrecondition
    )?;
    Ok(())
}

#[tokio::test]
async fn pipelines_are_listed_rendered_validated_and_predicted() -> Result<()> {
    let server = Server::start().await?;
    let token = server.token("erin", Role::Experimenter)?;
    let mut pipelines = server.pipelines();

    let templates = pipelines
        .list_templates(authed(&token, proto::ListTemplatesRequest {})?)
        .await?
        .into_inner()
        .templates;
    let names: Vec<&str> = templates.iter().map(|t| t.name.as_str()).collect();
    let catalog: Vec<&str> = phoenix_generator::catalog::TemplateId::ALL
        .iter()
        .map(|id| id.name())
        .collect();
    assert_eq!(names, catalog, "the whole catalog, in its order");
    let topk = templates
        .iter()
        .find(|t| t.name == "process-topk-v1")
        .context("topk template")?;
    let schema: serde_json::Value = serde_json::from_str(&topk.parameter_schema_json)?;
    assert!(schema.is_object());

    let rendered = pipelines
        .render(authed(
            &token,
            proto::RenderRequest {
                template: "process-topk-v1".into(),
                parameters_json: "{\"topK\": 5, \"criticalProcesses\": [\"^postgres$\"]}".into(),
            },
        )?)
        .await?
        .into_inner();
    assert_eq!(rendered.template, "process-topk-v1");
    assert!(rendered.yaml.contains("filter/topk"), "{}", rendered.yaml);

    // The rendered config is valid; a config that drops a critical process is not.
    let valid = pipelines
        .validate(authed(
            &token,
            proto::ValidateRequest {
                pipeline: Some(proto::Pipeline {
                    source: Some(pipeline::Source::ConfigYaml(rendered.yaml.clone())),
                }),
                critical_processes: vec![proto::CriticalProcess {
                    name: "^postgres$".into(),
                    path: None,
                }],
            },
        )?)
        .await?
        .into_inner();
    assert!(valid.valid, "{valid:?}");
    // A top-K config rendered without naming postgres may drop it.
    let unsafe_config = pipelines
        .validate(authed(
            &token,
            proto::ValidateRequest {
                pipeline: Some(template("process-topk-v1", "{\"topK\": 5}")),
                critical_processes: vec![proto::CriticalProcess {
                    name: "^postgres$".into(),
                    path: None,
                }],
            },
        )?)
        .await?
        .into_inner();
    assert!(!unsafe_config.valid, "{unsafe_config:?}");
    let problem = &unsafe_config.problems[0];
    assert_eq!(problem.severity(), proto::Severity::Error);
    assert!(problem.location.starts_with("exporters."), "{problem:?}");
    assert!(problem.message.contains("postgres"), "{problem:?}");
    let bare = "receivers:\n  hostmetrics:\n    scrapers:\n      process: {}\nexporters:\n  debug: {}\nservice:\n  pipelines:\n    metrics:\n      receivers: [hostmetrics]\n      exporters: [debug]\n";
    // A config without memory_limiter works, with a warning.
    let warned = pipelines
        .validate(authed(
            &token,
            proto::ValidateRequest {
                pipeline: Some(proto::Pipeline {
                    source: Some(pipeline::Source::ConfigYaml(bare.into())),
                }),
                critical_processes: Vec::new(),
            },
        )?)
        .await?
        .into_inner();
    assert!(warned.valid, "{warned:?}");
    assert!(
        warned
            .problems
            .iter()
            .any(|p| p.severity() == proto::Severity::Warning
                && p.message.contains("memory_limiter")),
        "{warned:?}"
    );

    let prediction = pipelines
        .predict(authed(
            &token,
            proto::PredictRequest {
                baseline: Some(template("process-baseline-v1", "")),
                candidate: Some(template(
                    "process-aggregated-v1",
                    "{\"criticalProcesses\": [\"^postgres$\"]}",
                )),
                profile: proto::Profile::Realistic.into(),
                seed: Some(5),
                scrapes: Some(6),
                critical_processes: vec![proto::CriticalProcess {
                    name: "^postgres$".into(),
                    path: None,
                }],
            },
        )?)
        .await?
        .into_inner();
    assert_eq!(prediction.scrapes, 6);
    let baseline = prediction.baseline.context("baseline")?;
    let candidate = prediction.candidate.context("candidate")?;
    assert!(baseline.distinct_series > candidate.distinct_series);
    assert!(prediction.cardinality_reduction > 0.0);
    assert_eq!(prediction.critical_loss, 0.0);
    let full: serde_json::Value = serde_json::from_str(&prediction.prediction_json)?;
    assert_eq!(full["scrapes"], 6);
    Ok(())
}

/// Waits until no watch task is subscribed to the event hub any more.
async fn watchers_gone(server: &Server) -> Result<()> {
    tokio::time::timeout(Duration::from_secs(10), async {
        while server.inner.state.service().events().subscribers() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .context("the watch task must end")
}

/// A pending experiment watched by the admin, past its `created` event.
struct Watched {
    server: Server,
    admin: String,
    experiments: ExperimentServiceClient<Channel>,
    id: String,
    stream: tonic::Streaming<proto::ExperimentEvent>,
}

/// A server with the pending experiment `name`, watched by the admin; the stream's first
/// event must be `created`.
async fn watching(name: &str) -> Result<Watched> {
    let server = Server::start().await?;
    let admin = server.token("admin", Role::Admin)?;
    let mut experiments = server.experiments();
    let id = experiments
        .create_experiment(create(&admin, name)?)
        .await?
        .into_inner()
        .id;
    let mut stream = experiments
        .watch_events(authed(
            &admin,
            proto::WatchEventsRequest { id: id.clone() },
        )?)
        .await?
        .into_inner();
    let first = stream.message().await?.context("the created event")?;
    assert_eq!(first.kind(), proto::EventKind::Created);
    Ok(Watched {
        server,
        admin,
        experiments,
        id,
        stream,
    })
}

#[tokio::test]
async fn a_dropped_stream_ends_its_watch_task() -> Result<()> {
    let Watched { server, stream, .. } = watching("grpc-dropped").await?;
    assert_eq!(server.inner.state.service().events().subscribers(), 1);
    // The experiment stays quiet: nothing but the hang-up can end the task.
    drop(stream);
    watchers_gone(&server).await
}

#[tokio::test]
async fn deleting_a_watched_pending_experiment_ends_the_stream() -> Result<()> {
    let Watched {
        server,
        admin,
        mut experiments,
        id,
        mut stream,
    } = watching("grpc-deleted").await?;
    experiments
        .delete_experiment(authed(
            &admin,
            proto::DeleteExperimentRequest { id: id.clone() },
        )?)
        .await?;
    let end = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .context("the stream must end when the experiment is deleted")?;
    let status = expect_code(end, Code::NotFound)?;
    assert!(status.message().contains(&id), "{status:?}");
    watchers_gone(&server).await
}

/// `message` with the token, for a call whose status is all that matters.
fn req<T>(token: &str, message: T) -> Result<Request<T>, Status> {
    authed(token, message).map_err(|e| Status::internal(e.to_string()))
}

/// Every RPC of both services.
#[derive(Debug, Clone, Copy)]
enum Rpc {
    CreateExperiment,
    ListExperiments,
    GetExperiment,
    UpdateExperiment,
    DeleteExperiment,
    StartExperiment,
    StopExperiment,
    PromoteExperiment,
    RollbackExperiment,
    ListEvents,
    GetResults,
    WatchEvents,
    ListTemplates,
    Render,
    Validate,
    Predict,
}

impl Rpc {
    const ALL: [Self; 16] = [
        Self::CreateExperiment,
        Self::ListExperiments,
        Self::GetExperiment,
        Self::UpdateExperiment,
        Self::DeleteExperiment,
        Self::StartExperiment,
        Self::StopExperiment,
        Self::PromoteExperiment,
        Self::RollbackExperiment,
        Self::ListEvents,
        Self::GetResults,
        Self::WatchEvents,
        Self::ListTemplates,
        Self::Render,
        Self::Validate,
        Self::Predict,
    ];

    /// The lowest role allowed to call it (on one's own experiment).
    fn role(self) -> Role {
        match self {
            Self::ListExperiments
            | Self::GetExperiment
            | Self::ListEvents
            | Self::GetResults
            | Self::WatchEvents
            | Self::ListTemplates
            | Self::Render
            | Self::Validate => Role::Viewer,
            Self::CreateExperiment
            | Self::UpdateExperiment
            | Self::DeleteExperiment
            | Self::StartExperiment
            | Self::StopExperiment
            | Self::Predict => Role::Experimenter,
            Self::PromoteExperiment | Self::RollbackExperiment => Role::Operator,
        }
    }

    /// Calls it as `token` on the experiment `id`; only the status matters.
    async fn call(self, server: &Server, token: &str, id: &str, name: &str) -> Result<(), Status> {
        let mut experiments = server.experiments();
        let mut pipelines = server.pipelines();
        let id = id.to_owned();
        // `send!(client.method(message))`: the call as `token`, its answer dropped.
        macro_rules! send {
            ($client:ident . $method:ident($message:expr)) => {{
                $client.$method(req(token, $message)?).await?;
            }};
        }
        match self {
            Self::CreateExperiment => send!(experiments.create_experiment(
                proto::CreateExperimentRequest {
                    spec_json: short_spec(&format!("{name}-new")),
                }
            )),
            Self::ListExperiments => {
                send!(experiments.list_experiments(proto::ListExperimentsRequest::default()));
            }
            Self::GetExperiment => {
                send!(experiments.get_experiment(proto::GetExperimentRequest { id }));
            }
            Self::UpdateExperiment => send!(experiments.update_experiment(
                proto::UpdateExperimentRequest {
                    id,
                    spec_json: short_spec(name),
                }
            )),
            Self::DeleteExperiment => {
                send!(experiments.delete_experiment(proto::DeleteExperimentRequest { id }));
            }
            Self::StartExperiment => {
                send!(experiments.start_experiment(proto::StartExperimentRequest { id }));
            }
            Self::StopExperiment => {
                send!(experiments.stop_experiment(proto::StopExperimentRequest { id }));
            }
            Self::PromoteExperiment => {
                send!(experiments.promote_experiment(proto::PromoteExperimentRequest { id }));
            }
            Self::RollbackExperiment => {
                send!(experiments.rollback_experiment(proto::RollbackExperimentRequest { id }));
            }
            Self::ListEvents => send!(experiments.list_events(proto::ListEventsRequest {
                id,
                ..proto::ListEventsRequest::default()
            })),
            Self::GetResults => send!(experiments.get_results(proto::GetResultsRequest { id })),
            Self::WatchEvents => send!(experiments.watch_events(proto::WatchEventsRequest { id })),
            Self::ListTemplates => send!(pipelines.list_templates(proto::ListTemplatesRequest {})),
            Self::Render => send!(pipelines.render(proto::RenderRequest {
                template: "process-topk-v1".into(),
                parameters_json: String::new(),
            })),
            Self::Validate => send!(pipelines.validate(proto::ValidateRequest {
                pipeline: Some(template("process-topk-v1", "")),
                critical_processes: Vec::new(),
            })),
            Self::Predict => send!(pipelines.predict(proto::PredictRequest {
                baseline: Some(template("process-baseline-v1", "")),
                candidate: Some(template("process-topk-v1", "")),
                scrapes: Some(1),
                ..proto::PredictRequest::default()
            })),
        }
        Ok(())
    }
}

#[tokio::test]
async fn every_rpc_gives_every_role_its_answer_or_permission_denied() -> Result<()> {
    let server = Server::start().await?;
    let admin = server.token("admin", Role::Admin)?;
    let mut experiments = server.experiments();
    let roles = [
        Role::Viewer,
        Role::Experimenter,
        Role::Operator,
        Role::Admin,
    ];
    for (r, role) in roles.into_iter().enumerate() {
        let user = format!("user-{r}");
        let token = server.token(&user, role)?;
        for (n, rpc) in Rpc::ALL.into_iter().enumerate() {
            // A fresh pending experiment owned by the caller, so that only the role decides.
            let name = format!("table-{r}-{n}");
            let mut spec = spec_named(&name);
            spec["owner"] = user.clone().into();
            let created = experiments
                .create_experiment(create_from(&admin, spec.to_string())?)
                .await?
                .into_inner();
            let outcome = rpc.call(&server, &token, &created.id, &name).await;
            let code = outcome.as_ref().err().map(Status::code);
            if role < rpc.role() {
                assert_eq!(
                    code,
                    Some(Code::PermissionDenied),
                    "{rpc:?} as {role}: {outcome:?}"
                );
            } else {
                // Allowed: it succeeds, or fails for a reason other than the role (promoting
                // a pending experiment is a failed precondition).
                assert!(
                    !matches!(code, Some(Code::PermissionDenied | Code::Unauthenticated)),
                    "{rpc:?} as {role}: {outcome:?}"
                );
            }
        }
    }
    Ok(())
}
