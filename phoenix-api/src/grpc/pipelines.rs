//! `phoenix.v1.PipelineService` over the shared service layer.

use phoenix_core::experiment::{
    CriticalMatcher, CriticalProcess, FieldError, PipelineRef, ProfilePreset,
};
use phoenix_generator::predict::{Prediction, VariantFigures};
use phoenix_store::Role;
use tonic::{Request, Response, Status};

use super::proto::{self, pipeline_service_server::PipelineService};
use super::{encode_json, json_field, principal};
use crate::service::{
    PredictRequest, RenderRequest, ValidateRequest, ValidateResponse, predict_problems,
};
use crate::{AppState, Error, Result};

/// The server side of `phoenix.v1.PipelineService`.
#[derive(Debug, Clone)]
pub struct PipelineApi {
    state: AppState,
}

impl PipelineApi {
    /// The service over `state`.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

type Parameters = serde_json::Map<String, serde_json::Value>;

/// Template parameters from `field`; empty text means none.
fn parameters(field: &str, text: &str) -> Result<Parameters> {
    if text.trim().is_empty() {
        Ok(Parameters::new())
    } else {
        json_field(field, text)
    }
}

/// The pipeline a request names, with errors under `field`.
fn pipeline(field: &str, pipeline: Option<proto::Pipeline>) -> Result<PipelineRef> {
    match pipeline.and_then(|p| p.source) {
        None => Err(Error::invalid_field(
            field,
            "must be set: a `template` (with `parameters_json`) or a `config_yaml`",
        )),
        Some(proto::pipeline::Source::Template(template)) => {
            let mut problems = Problems::default();
            if template.name.is_empty() {
                problems.0.push(FieldError {
                    path: format!("{field}.template.name"),
                    message: "must not be empty: name a catalog template such as process-topk-v1"
                        .to_owned(),
                });
            }
            let parameters_field = format!("{field}.template.parameters_json");
            let parameters = problems.take(
                &parameters_field,
                parameters(&parameters_field, &template.parameters_json),
            );
            match parameters {
                Some(parameters) if problems.0.is_empty() => Ok(PipelineRef::Template {
                    parameters,
                    name: template.name,
                }),
                _ => Err(problems.into_error(&format!("invalid pipeline `{field}`"))),
            }
        }
        Some(proto::pipeline::Source::ConfigYaml(config)) => Ok(PipelineRef::Inline { config }),
    }
}

fn critical_processes(processes: Vec<proto::CriticalProcess>) -> Vec<CriticalProcess> {
    processes
        .into_iter()
        .map(|p| CriticalProcess {
            name: p.name,
            path: p.path,
        })
        .collect()
}

fn profile(value: i32) -> Result<ProfilePreset> {
    match proto::Profile::try_from(value) {
        Ok(proto::Profile::Unspecified | proto::Profile::Realistic) => Ok(ProfilePreset::Realistic),
        Ok(proto::Profile::HighCardinality) => Ok(ProfilePreset::HighCardinality),
        Ok(proto::Profile::HighChurn) => Ok(ProfilePreset::HighChurn),
        Ok(proto::Profile::Chaos) => Ok(ProfilePreset::Chaos),
        Err(_) => Err(Error::invalid_field(
            "profile",
            format!("unknown profile {value}"),
        )),
    }
}

/// Collects the field errors of several conversions, so that one reply lists them all.
#[derive(Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    /// The value of `result`, or `None` with its errors noted; an error that names no
    /// field is put under `field`, the request field being converted.
    fn take<T>(&mut self, field: &str, result: Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                let fields = error.field_errors();
                if fields.is_empty() {
                    self.0.push(FieldError {
                        path: field.to_owned(),
                        message: error.client_message(),
                    });
                } else {
                    self.0.extend(fields);
                }
                None
            }
        }
    }

    fn into_error(self, message: &str) -> Error {
        Error::InvalidInput {
            message: message.to_owned(),
            errors: self.0,
        }
    }
}

/// A count as a wire integer.
fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn figures_to_proto(figures: &VariantFigures) -> proto::VariantFigures {
    proto::VariantFigures {
        exporter: figures.exporter.clone(),
        distinct_series: count(figures.distinct_series),
        mean_active_series: figures.mean_active_series,
        data_points_per_minute: figures.data_points_per_minute,
        bytes_per_minute: figures.bytes_per_minute,
        total_data_points: figures.total_data_points,
        total_bytes: figures.total_bytes,
        monthly_cost: Some((&figures.monthly_cost).into()),
        flapping_processes: count(figures.flapping_processes),
    }
}

fn prediction_to_proto(prediction: &Prediction) -> Result<proto::PredictResponse> {
    Ok(proto::PredictResponse {
        scrapes: count(prediction.scrapes),
        scrape_interval_seconds: prediction.scrape_interval_seconds,
        baseline: Some(figures_to_proto(&prediction.baseline)),
        candidate: Some(figures_to_proto(&prediction.candidate)),
        cardinality_reduction: prediction.cardinality_reduction,
        data_point_reduction: prediction.data_point_reduction,
        byte_reduction: prediction.byte_reduction,
        cost_reduction: prediction.cost_reduction,
        critical_loss: prediction.critical_loss,
        prediction_json: encode_json("a prediction", prediction)?,
    })
}

fn validation_to_proto(response: ValidateResponse) -> proto::ValidateResponse {
    proto::ValidateResponse {
        valid: response.valid,
        problems: response
            .problems
            .into_iter()
            .map(|p| proto::Problem {
                severity: match p.severity.as_str() {
                    "error" => proto::Severity::Error,
                    "warning" => proto::Severity::Warning,
                    _ => proto::Severity::Unspecified,
                }
                .into(),
                location: p.location,
                message: p.message,
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl PipelineService for PipelineApi {
    async fn list_templates(
        &self,
        request: Request<proto::ListTemplatesRequest>,
    ) -> Result<Response<proto::ListTemplatesResponse>, Status> {
        let caller = principal(&self.state, &request)?;
        let templates = self
            .state
            .service()
            .pipeline_templates(&caller)?
            .into_iter()
            .map(|t| {
                Ok(proto::Template {
                    parameter_schema_json: encode_json("a parameter schema", &t.parameters)?,
                    name: t.name,
                    description: t.description,
                    expected_effect: t.expected_effect,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Response::new(proto::ListTemplatesResponse { templates }))
    }

    async fn render(
        &self,
        request: Request<proto::RenderRequest>,
    ) -> Result<Response<proto::RenderResponse>, Status> {
        let caller = principal(&self.state, &request)?;
        let message = request.into_inner();
        let mut problems = Problems::default();
        if message.template.is_empty() {
            problems.0.push(FieldError {
                path: "template".to_owned(),
                message: "must not be empty: name a catalog template such as process-topk-v1"
                    .to_owned(),
            });
        }
        let parameters = problems.take(
            "parameters_json",
            parameters("parameters_json", &message.parameters_json),
        );
        let (Some(parameters), true) = (parameters, problems.0.is_empty()) else {
            return Err(problems.into_error("invalid render request").into());
        };
        let render = RenderRequest {
            parameters,
            template: message.template,
        };
        let rendered = self.state.service().render_pipeline(&caller, &render)?;
        Ok(Response::new(proto::RenderResponse {
            template: rendered.template,
            yaml: rendered.yaml,
        }))
    }

    async fn validate(
        &self,
        request: Request<proto::ValidateRequest>,
    ) -> Result<Response<proto::ValidateResponse>, Status> {
        let caller = principal(&self.state, &request)?;
        let message = request.into_inner();
        let critical = critical_processes(message.critical_processes);
        let mut problems = Problems::default();
        let Some(pipeline) = problems.take("pipeline", pipeline("pipeline", message.pipeline))
        else {
            // List the critical-process problems too, as the service would.
            if let Err(e) = CriticalMatcher::new(&critical) {
                problems.0.extend(e.into_errors());
            }
            return Err(problems.into_error("invalid validation request").into());
        };
        let validate = ValidateRequest {
            pipeline,
            critical_processes: critical,
        };
        let response = self
            .state
            .service()
            .validate_pipeline(&caller, &validate)
            .await?;
        Ok(Response::new(validation_to_proto(response)))
    }

    async fn predict(
        &self,
        request: Request<proto::PredictRequest>,
    ) -> Result<Response<proto::PredictResponse>, Status> {
        let caller = principal(&self.state, &request)?;
        let message = request.into_inner();
        // The role comes first: a viewer learns that predicting is not for them before
        // anything about the request.
        caller.require(Role::Experimenter, "predicting pipelines")?;
        let mut problems = Problems::default();
        let baseline = problems.take("baseline", pipeline("baseline", message.baseline));
        let candidate = problems.take("candidate", pipeline("candidate", message.candidate));
        let profile = problems.take("profile", profile(message.profile));
        let scrapes = message.scrapes.unwrap_or(60);
        let critical = critical_processes(message.critical_processes);
        let (Some(baseline), Some(candidate), Some(profile)) = (baseline, candidate, profile)
        else {
            // The service checks these once the pipelines are read; list them now too.
            problems.0.extend(predict_problems(scrapes, &critical).0);
            return Err(problems.into_error("invalid prediction request").into());
        };
        let predict = PredictRequest {
            baseline,
            candidate,
            profile,
            seed: message.seed.unwrap_or(phoenix_sim::DEFAULT_SEED),
            scrapes,
            critical_processes: critical,
        };
        let prediction = self.state.service().prediction(&caller, predict).await?;
        Ok(Response::new(prediction_to_proto(&prediction)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipeline_must_name_its_source() {
        let error = pipeline("baseline", None).unwrap_err();
        assert_eq!(error.field_errors()[0].path, "baseline");
        let error = pipeline(
            "candidate",
            Some(proto::Pipeline {
                source: Some(proto::pipeline::Source::Template(proto::TemplateRef {
                    name: "process-topk-v1".into(),
                    parameters_json: "{\"topK\": }".into(),
                })),
            }),
        )
        .unwrap_err();
        let fields = error.field_errors();
        assert_eq!(fields[0].path, "candidate.template.parameters_json");
        assert!(
            fields[0].message.contains("malformed JSON at line 1"),
            "{fields:?}"
        );
        let error = parameters("parameters_json", r#"{"topK": "many"}"#);
        assert!(error.is_ok(), "the generator checks parameter values");
    }

    #[test]
    fn unknown_profiles_are_refused() {
        assert_eq!(profile(0).ok(), Some(ProfilePreset::Realistic));
        assert_eq!(profile(42).unwrap_err().field_errors()[0].path, "profile");
    }

    /// `high-cardinality` → `PROFILE_HIGH_CARDINALITY`.
    fn wire_name(preset: ProfilePreset) -> String {
        format!(
            "PROFILE_{}",
            preset.as_str().replace('-', "_").to_ascii_uppercase()
        )
    }

    #[test]
    fn every_profile_preset_has_its_wire_value() {
        for preset in ProfilePreset::ALL {
            let name = wire_name(preset);
            let wire = proto::Profile::from_str_name(&name)
                .unwrap_or_else(|| panic!("{preset:?} has no {name} in the proto"));
            assert_eq!(profile(wire.into()).ok(), Some(preset), "{name}");
        }
    }

    #[test]
    fn every_problem_of_a_pipeline_is_listed() {
        let error = pipeline(
            "baseline",
            Some(proto::Pipeline {
                source: Some(proto::pipeline::Source::Template(proto::TemplateRef {
                    name: String::new(),
                    parameters_json: "[1]".into(),
                })),
            }),
        )
        .unwrap_err();
        let paths: Vec<String> = error.field_errors().into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "baseline.template.name",
                "baseline.template.parameters_json"
            ]
        );
    }
}
