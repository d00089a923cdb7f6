//! Pipelines (catalog templates, render, validate, predict) and the simulator's profiles.

use phoenix_core::experiment::{
    CriticalMatcher, CriticalProcess, FieldError, PipelineRef, ProfilePreset,
};
use phoenix_generator::catalog::{self, TemplateId};
use phoenix_generator::config::Config;
use phoenix_generator::predict::{PredictOptions, Prediction, Workload, predict};
use phoenix_generator::validate::{Severity, ValidateOptions, has_errors, validate};
use phoenix_store::Role;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Service;
use crate::auth::Principal;
use crate::{Error, Result};

/// The most scrapes a prediction may simulate.
pub const MAX_PREDICT_SCRAPES: u32 = 2_000;

/// A catalog template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateInfo {
    /// Its name, e.g. `process-topk-v1`.
    pub name: String,
    /// What it does.
    pub description: String,
    /// What it is expected to do to series, data points and critical processes.
    pub expected_effect: String,
    /// The JSON Schema of its parameters.
    pub parameters: serde_json::Value,
}

/// `POST /api/v1/pipelines/render`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenderRequest {
    /// The template name.
    pub template: String,
    /// Its parameters (camelCase keys); missing ones take their defaults.
    #[serde(default)]
    pub parameters: serde_json::Map<String, serde_json::Value>,
}

/// A rendered template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RenderResponse {
    /// The template.
    pub template: String,
    /// The collector config as YAML.
    pub yaml: String,
}

/// `POST /api/v1/pipelines/validate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidateRequest {
    /// The pipeline: `{template, parameters}` or `{config}` (YAML).
    pub pipeline: PipelineRef,
    /// Critical processes for the safety check (no data point of theirs may be dropped).
    #[serde(default)]
    pub critical_processes: Vec<CriticalProcess>,
}

/// One problem of a config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidationProblem {
    /// Where, as a config path.
    pub location: String,
    /// What is wrong.
    pub message: String,
    /// `error` or `warning`.
    pub severity: String,
}

/// The outcome of a validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidateResponse {
    /// Whether the config has no error (warnings allowed).
    pub valid: bool,
    /// Every problem, errors first.
    pub problems: Vec<ValidationProblem>,
}

/// `POST /api/v1/pipelines/predict`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PredictRequest {
    /// The reference pipeline.
    pub baseline: PipelineRef,
    /// The pipeline under test.
    pub candidate: PipelineRef,
    /// The simulator preset fed to both. Default `realistic`.
    #[serde(default)]
    pub profile: ProfilePreset,
    /// The simulator seed. Default 1.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Scrapes of 10 s to simulate, 1 to 2000. Default 60.
    #[serde(default = "default_scrapes")]
    pub scrapes: u32,
    /// Processes that must stay fully visible.
    #[serde(default)]
    pub critical_processes: Vec<CriticalProcess>,
}

fn default_seed() -> u64 {
    phoenix_sim::DEFAULT_SEED
}

fn default_scrapes() -> u32 {
    60
}

/// The emulator's prediction: both variants' figures and the reductions (see
/// phoenix-generator's `predict::Prediction`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct PredictResponse(pub serde_json::Value);

/// A simulator profile preset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileInfo {
    /// The name used in specs, e.g. `realistic`.
    pub name: String,
    /// What it models.
    pub description: String,
    /// Processes alive in its steady state.
    pub processes: u64,
}

fn generator_error(path: &str, error: &phoenix_generator::Error) -> Error {
    Error::invalid_field(path, error.to_string())
}

/// The config a pipeline reference names, errors under `path`. An inline config whose
/// anchors and aliases expand it beyond its size is refused before it is parsed.
fn resolve(pipeline: &PipelineRef, path: &str) -> Result<Config> {
    super::document::check_inline(pipeline, path)?;
    catalog::resolve(pipeline).map_err(|e| generator_error(path, &e))
}

/// The problems of a prediction's scrape count and critical-process patterns, every one
/// of them, and the matcher when the patterns are valid.
pub(crate) fn predict_problems(
    scrapes: u32,
    critical_processes: &[CriticalProcess],
) -> (Vec<FieldError>, Option<CriticalMatcher>) {
    let mut errors = Vec::new();
    if !(1..=MAX_PREDICT_SCRAPES).contains(&scrapes) {
        errors.push(FieldError {
            path: "scrapes".into(),
            message: format!("must be within 1..={MAX_PREDICT_SCRAPES}, got {scrapes}"),
        });
    }
    let critical = match CriticalMatcher::new(critical_processes) {
        Ok(m) => Some(m),
        Err(e) => {
            errors.extend(e.into_errors());
            None
        }
    };
    (errors, critical)
}

impl Service {
    /// The template catalog.
    pub fn pipeline_templates(&self, principal: &Principal) -> Result<Vec<TemplateInfo>> {
        principal.require(Role::Viewer, "listing pipeline templates")?;
        Ok(TemplateId::ALL
            .into_iter()
            .map(|id| TemplateInfo {
                name: id.name().to_owned(),
                description: id.description().to_owned(),
                expected_effect: id.expected_effect().to_owned(),
                parameters: id.parameter_schema(),
            })
            .collect())
    }

    /// Renders a template.
    pub fn render_pipeline(
        &self,
        principal: &Principal,
        request: &RenderRequest,
    ) -> Result<RenderResponse> {
        principal.require(Role::Viewer, "rendering pipelines")?;
        let template: TemplateId = request
            .template
            .parse()
            .map_err(|e| generator_error("template", &e))?;
        let rendered = catalog::render_template(template, &request.parameters)
            .map_err(|e| generator_error("parameters", &e))?;
        let yaml = rendered
            .to_yaml()
            .map_err(|e| Error::Internal(format!("writing rendered YAML: {e}")))?;
        Ok(RenderResponse {
            template: template.name().to_owned(),
            yaml,
        })
    }

    /// Validates a pipeline. Problems of the config are the answer, not an error. Parsing
    /// and checking run on the blocking pool, a bounded number at a time.
    pub async fn validate_pipeline(
        &self,
        principal: &Principal,
        request: &ValidateRequest,
    ) -> Result<ValidateResponse> {
        principal.require(Role::Viewer, "validating pipelines")?;
        CriticalMatcher::new(&request.critical_processes).map_err(|e| Error::InvalidInput {
            message: e.to_string(),
            errors: e.into_errors(),
        })?;
        let pipeline = request.pipeline.clone();
        let options = ValidateOptions {
            critical: request.critical_processes.clone(),
        };
        let problems = self
            .blocking("validation", move || {
                let config = resolve(&pipeline, "pipeline")?;
                Ok(validate(&config, &options))
            })
            .await?;
        Ok(ValidateResponse {
            valid: !has_errors(&problems),
            problems: problems
                .into_iter()
                .map(|p| ValidationProblem {
                    location: p.location,
                    message: p.message,
                    severity: match p.severity {
                        Severity::Error => "error",
                        Severity::Warning => "warning",
                    }
                    .to_owned(),
                })
                .collect(),
        })
    }

    /// Predicts what the candidate does against the baseline on a simulated workload, as
    /// the JSON document REST returns.
    pub async fn predict_pipeline(
        &self,
        principal: &Principal,
        request: PredictRequest,
    ) -> Result<PredictResponse> {
        let prediction = self.prediction(principal, request).await?;
        serde_json::to_value(&prediction)
            .map(PredictResponse)
            .map_err(|e| Error::Internal(format!("serializing a prediction: {e}")))
    }

    /// Predicts what the candidate does against the baseline on a simulated workload.
    pub async fn prediction(
        &self,
        principal: &Principal,
        request: PredictRequest,
    ) -> Result<Prediction> {
        principal.require(Role::Experimenter, "predicting pipelines")?;
        let (mut errors, critical) = predict_problems(request.scrapes, &request.critical_processes);
        let profile = phoenix_sim::Profile::preset(request.profile);
        let job = move || {
            let baseline = resolve(&request.baseline, "baseline");
            let candidate = resolve(&request.candidate, "candidate");
            for result in [&baseline, &candidate] {
                if let Err(e) = result {
                    errors.extend(e.field_errors());
                }
            }
            let (Ok(baseline), Ok(candidate), Some(critical), true) =
                (baseline, candidate, critical, errors.is_empty())
            else {
                return Err(Error::InvalidInput {
                    message: "invalid prediction request".into(),
                    errors,
                });
            };
            let workload = Workload::from_profile(&profile, request.seed, request.scrapes as usize)
                .map_err(|e| generator_error("profile", &e))?;
            let options = PredictOptions {
                critical,
                ..PredictOptions::default()
            };
            predict(&candidate, &baseline, workload.snapshots(), &options)
                .map_err(|e| generator_error("pipeline", &e))
        };
        self.blocking("prediction", job).await
    }

    /// The simulator's profile presets.
    pub fn sim_profiles(&self, principal: &Principal) -> Result<Vec<ProfileInfo>> {
        principal.require(Role::Viewer, "listing simulator profiles")?;
        Ok(ProfilePreset::ALL
            .into_iter()
            .map(|preset| {
                let profile = phoenix_sim::Profile::preset(preset);
                ProfileInfo {
                    name: preset.as_str().to_owned(),
                    description: profile.description.clone(),
                    processes: profile.steady_processes(),
                }
            })
            .collect())
    }
}
