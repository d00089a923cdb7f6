//! Command-line interface of `phoenix-generator`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use phoenix_core::experiment::{CriticalMatcher, CriticalProcess};
use phoenix_generator::Error;
use phoenix_generator::catalog::{self, Override, Parameters, TemplateId};
use phoenix_generator::config::Config;
use phoenix_generator::gitops::{Commit, GitOpsRepo};
use phoenix_generator::kubernetes::ConfigMap;
use phoenix_generator::predict::{PredictOptions, Workload, predict};
use phoenix_generator::validate::{ValidateOptions, has_errors, validate, validate_pair};
use serde_json::{Map, Value};

/// Collector configs for Phoenix: the template catalog, validation and prediction.
#[derive(Debug, Parser)]
#[command(name = "phoenix-generator", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Human-readable text.
    Table,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the catalog's templates.
    Templates {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        output: Format,
    },
    /// Show a template's description, expected effect and parameter schema.
    Describe {
        /// Template name, e.g. process-topk-v1.
        template: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        output: Format,
    },
    /// Render a template to collector YAML (or a Kubernetes ConfigMap).
    Render {
        /// Template name.
        template: String,
        #[command(flatten)]
        params: ParamArgs,
        /// Emit a v1 ConfigMap holding the config instead of the bare config.
        #[arg(long)]
        configmap: bool,
        /// Namespace of the ConfigMap.
        #[arg(long, requires = "configmap")]
        namespace: Option<String>,
        /// Write to this file instead of stdout.
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
    },
    /// Validate a collector config file; exits 1 when it has errors.
    Validate {
        /// The collector YAML.
        config: PathBuf,
        /// Critical process name pattern (regex) for the safety check; repeatable.
        #[arg(long = "critical", value_name = "PATTERN")]
        critical: Vec<String>,
        /// Another config meant to run on the same node: report shared ports.
        #[arg(long = "alongside", value_name = "CONFIG")]
        alongside: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        output: Format,
    },
    /// Write both variants of an experiment (configs and ConfigMaps) into a Git working tree
    /// at experiments/<id>/<variant>.yaml and commit them.
    Publish(PublishArgs),
    /// Write a rendered template as targets/<target>/active.yaml (and its ConfigMap) in a Git
    /// working tree and commit it.
    Promote {
        /// The Git working tree (must exist; nothing is pushed).
        #[arg(long)]
        repo: PathBuf,
        /// Target name, e.g. prod-nodes (lowercase letters, digits, `.`, `_`, `-`).
        #[arg(long)]
        target: String,
        /// Template name.
        template: String,
        #[command(flatten)]
        params: ParamArgs,
        /// Namespace of the ConfigMap.
        #[arg(long)]
        namespace: Option<String>,
    },
    /// Predict a config's effect over a workload, against a baseline.
    Predict {
        /// Candidate collector YAML (or use --template).
        #[arg(conflicts_with = "template", required_unless_present = "template")]
        config: Option<PathBuf>,
        /// Candidate template name.
        #[arg(long)]
        template: Option<String>,
        #[command(flatten)]
        params: ParamArgs,
        /// Baseline collector YAML; default: process-baseline-v1 with default parameters.
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// OTLP JSON-lines recording (the collector's `file` exporter output).
        #[arg(long, conflicts_with = "profile", required_unless_present = "profile")]
        recording: Option<PathBuf>,
        /// Simulator profile: a preset (realistic, high-cardinality, high-churn, chaos), or a
        /// profile file when the value contains a path separator or has an extension
        /// (`./host`, `host.yaml`); a bare name is always a preset.
        #[arg(long)]
        profile: Option<String>,
        /// Simulator seed.
        #[arg(long, default_value_t = phoenix_sim::DEFAULT_SEED)]
        seed: u64,
        /// Snapshots to simulate, at the faster of the two configs' collection intervals.
        #[arg(long, default_value_t = 60)]
        scrapes: usize,
        /// Critical process name pattern (regex); repeatable. Default: the template's
        /// criticalProcesses when --template is used.
        #[arg(long = "critical", value_name = "PATTERN")]
        critical: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        output: Format,
    },
}

#[derive(Debug, clap::Args)]
struct PublishArgs {
    /// The Git working tree to write into (must exist; nothing is pushed).
    #[arg(long)]
    repo: PathBuf,
    /// Baseline template.
    #[arg(long, default_value = "process-baseline-v1")]
    baseline: String,
    /// Baseline parameter `name=value` (as --param); repeatable.
    #[arg(long = "baseline-param", value_name = "NAME=VALUE", value_parser = parse_override)]
    baseline_param: Vec<Override>,
    /// Baseline parameters file (YAML or JSON mapping).
    #[arg(long = "baseline-params-file", value_name = "FILE")]
    baseline_params_file: Option<PathBuf>,
    /// Candidate template.
    #[arg(long)]
    candidate: String,
    /// Candidate parameter `name=value` (as --param); repeatable.
    #[arg(long = "candidate-param", value_name = "NAME=VALUE", value_parser = parse_override)]
    candidate_param: Vec<Override>,
    /// Candidate parameters file (YAML or JSON mapping).
    #[arg(long = "candidate-params-file", value_name = "FILE")]
    candidate_params_file: Option<PathBuf>,
    /// Experiment id for both variants (overrides the parameters).
    #[arg(long = "experiment-id")]
    experiment_id: Option<String>,
    /// Namespace of the ConfigMaps.
    #[arg(long)]
    namespace: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
struct ParamArgs {
    /// A template parameter, `name=value`; the value is JSON when it parses as JSON, else a
    /// string. `name.key=value` sets one key of a map parameter (e.g.
    /// `otlpHeaders.Authorization=...`, `metrics.process.threads=true`). Repeatable; applied
    /// after --params-file.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_override)]
    param: Vec<Override>,
    /// YAML or JSON file with a mapping of parameters.
    #[arg(long = "params-file", value_name = "FILE")]
    params_file: Option<PathBuf>,
}

/// A `--param` item (a malformed one is a usage error).
fn parse_override(text: &str) -> Result<Override, Error> {
    text.parse()
}

/// How a command failed.
enum Failure {
    /// Bad command-line usage (exit 2).
    Usage(String),
    /// The command ran and failed (exit 1).
    Failed(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            Error::UnknownTemplate { .. } => Self::Usage(e.to_string()),
            other => Self::Failed(other.to_string()),
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match execute(cli.command, &mut out) {
        Ok(code) => code,
        Err(failure) => {
            let (message, code) = match failure {
                Failure::Usage(m) => (m, 2),
                Failure::Failed(m) => (m, 1),
            };
            let _ = writeln!(std::io::stderr(), "error: {message}");
            ExitCode::from(code)
        }
    }
}

fn io_failure(e: &std::io::Error) -> Failure {
    Failure::Failed(format!("cannot write output: {e}"))
}

fn execute(command: Command, out: &mut impl Write) -> Result<ExitCode, Failure> {
    match command {
        Command::Templates { output } => templates(output, out)?,
        Command::Describe { template, output } => describe(&template, output, out)?,
        Command::Render {
            template,
            params,
            configmap,
            namespace,
            out: file,
        } => {
            let rendered = render(&template, &params)?;
            let text = if configmap {
                ConfigMap::for_rendered(&rendered, namespace.as_deref())?.to_yaml()?
            } else {
                rendered.to_yaml()?
            };
            match file {
                Some(path) => std::fs::write(&path, text)
                    .map_err(|e| Failure::Failed(format!("{}: {e}", path.display())))?,
                None => out.write_all(text.as_bytes()).map_err(|e| io_failure(&e))?,
            }
        }
        Command::Publish(args) => {
            let repo = open_repo(&args.repo, args.namespace.as_deref())?;
            let side = |template: &str,
                        param: &[Override],
                        file: &Option<PathBuf>,
                        variant: &str|
             -> Result<catalog::Rendered, Failure> {
                let mut map = match file {
                    Some(path) => catalog::read_parameters_file(path)?,
                    None => Map::new(),
                };
                map.entry("variant")
                    .or_insert_with(|| Value::String(variant.to_owned()));
                let mut overrides = param.to_vec();
                if let Some(id) = &args.experiment_id {
                    overrides.push(Override::new("experimentId", Value::String(id.clone())));
                }
                let id: TemplateId = template.parse()?;
                Ok(catalog::render_parameters(Parameters::from_overrides(
                    id, map, &overrides,
                )?)?)
            };
            let baseline = side(
                &args.baseline,
                &args.baseline_param,
                &args.baseline_params_file,
                "baseline",
            )?;
            let candidate = side(
                &args.candidate,
                &args.candidate_param,
                &args.candidate_params_file,
                "candidate",
            )?;
            let commit = repo.publish_experiment(&baseline, &candidate)?;
            report_commit(&commit, out)?;
        }
        Command::Promote {
            repo,
            target,
            template,
            params,
            namespace,
        } => {
            let repo = open_repo(&repo, namespace.as_deref())?;
            let rendered = render(&template, &params)?;
            let commit = repo.promote(&target, &rendered)?;
            report_commit(&commit, out)?;
        }
        Command::Validate {
            config,
            critical,
            alongside,
            output,
        } => return validate_command(&config, critical, alongside.as_deref(), output, out),
        Command::Predict {
            config,
            template,
            params,
            baseline,
            recording,
            profile,
            seed,
            scrapes,
            critical,
            output,
        } => {
            if config.is_some() && (!params.param.is_empty() || params.params_file.is_some()) {
                return Err(Failure::Usage(
                    "--param and --params-file apply to --template only".to_owned(),
                ));
            }
            if scrapes == 0 {
                return Err(Failure::Failed("--scrapes must be at least 1".to_owned()));
            }
            check_critical(&critical)?;
            let (candidate, template_critical) = match (&config, &template) {
                (Some(path), _) => (read_config(path)?, Vec::new()),
                (None, Some(name)) => {
                    let rendered = render(name, &params)?;
                    let critical = rendered.parameters.common().critical_processes.to_vec();
                    (rendered.config, critical)
                }
                (None, None) => {
                    return Err(Failure::Usage(
                        "give a config file or --template".to_owned(),
                    ));
                }
            };
            let baseline = match &baseline {
                Some(path) => read_config(path)?,
                None => catalog::render(TemplateId::Baseline, &Map::new())?,
            };
            let workload = match (&recording, &profile) {
                (Some(path), _) => Workload::from_recording(path)?,
                (None, Some(profile)) => {
                    let profile =
                        phoenix_sim::Profile::from_reference(profile).map_err(|e| match e {
                            phoenix_sim::Error::InvalidOption { .. } => {
                                Failure::Usage(e.to_string())
                            }
                            other => Failure::Failed(format!("--profile {profile}: {other}")),
                        })?;
                    Workload::for_configs(&profile, seed, scrapes, &[&candidate, &baseline])?
                }
                (None, None) => {
                    return Err(Failure::Usage("give --recording or --profile".to_owned()));
                }
            };
            let critical: Vec<CriticalProcess> = if critical.is_empty() {
                template_critical
            } else {
                critical.into_iter().map(CriticalProcess::name).collect()
            };
            let matcher = CriticalMatcher::new(&critical)
                .map_err(|e| Failure::Failed(format!("--critical: {e}")))?;
            let options = PredictOptions {
                critical: matcher,
                ..PredictOptions::default()
            };
            let prediction = predict(&candidate, &baseline, workload.snapshots(), &options)?;
            match output {
                Format::Table => write!(out, "{prediction}"),
                Format::Json => writeln!(out, "{}", to_json(&prediction)?),
                Format::Yaml => write!(out, "{}", to_yaml(&prediction)?),
            }
            .map_err(|e| io_failure(&e))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn open_repo(path: &Path, namespace: Option<&str>) -> Result<GitOpsRepo, Failure> {
    let repo = GitOpsRepo::open(path)?;
    Ok(match namespace {
        Some(ns) => repo.with_namespace(ns),
        None => repo,
    })
}

fn report_commit(commit: &Commit, out: &mut impl Write) -> Result<(), Failure> {
    let mut text = String::new();
    for file in &commit.files {
        text.push_str(&format!("wrote {}\n", file.display()));
    }
    match &commit.hash {
        Some(hash) => text.push_str(&format!("committed {hash}: {}\n", commit.message)),
        None => text.push_str("nothing to commit: the files were already up to date\n"),
    }
    out.write_all(text.as_bytes()).map_err(|e| io_failure(&e))
}

fn to_json(value: &impl serde::Serialize) -> Result<String, Failure> {
    serde_json::to_string_pretty(value).map_err(|e| Failure::Failed(e.to_string()))
}

fn to_yaml(value: &impl serde::Serialize) -> Result<String, Failure> {
    serde_yaml::to_string(value).map_err(|e| Failure::Failed(e.to_string()))
}

fn read_config(path: &Path) -> Result<Config, Failure> {
    Ok(Config::from_file(path)?)
}

fn templates(output: Format, out: &mut impl Write) -> Result<(), Failure> {
    let list = catalog::templates();
    let text = match output {
        Format::Table => {
            let mut text = format!("{:<28} {}\n", "TEMPLATE", "EXPECTED EFFECT");
            for t in &list {
                let effect = t.expected_effect.split(". ").next().unwrap_or_default();
                text.push_str(&format!(
                    "{:<28} {}\n",
                    t.name,
                    effect.trim_end_matches('.')
                ));
            }
            text
        }
        Format::Json => to_json(&list)? + "\n",
        Format::Yaml => to_yaml(&list)?,
    };
    out.write_all(text.as_bytes()).map_err(|e| io_failure(&e))
}

fn describe(name: &str, output: Format, out: &mut impl Write) -> Result<(), Failure> {
    let id: TemplateId = name.parse()?;
    let template = id.template();
    let schema = id.parameter_schema();
    let text = match output {
        Format::Json | Format::Yaml => {
            let value = serde_json::json!({
                "name": template.name,
                "description": template.description,
                "expectedEffect": template.expected_effect,
                "collectorRelease": catalog::COLLECTOR_RELEASE,
                "parameters": schema,
            });
            if output == Format::Json {
                to_json(&value)? + "\n"
            } else {
                to_yaml(&value)?
            }
        }
        Format::Table => {
            let mut text = format!(
                "{}\n\n{}\n\nExpected effect: {}\n\nCollector: otelcol-contrib {}\n\nParameters:\n",
                template.name,
                template.description,
                template.expected_effect,
                catalog::COLLECTOR_RELEASE
            );
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (key, prop) in props {
                    let default = prop
                        .get("default")
                        .map(|d| serde_json::to_string(d).unwrap_or_default())
                        .unwrap_or_else(|| "-".to_owned());
                    let description = prop
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .replace('\n', " ");
                    text.push_str(&format!(
                        "  {key} ({}) default {default}\n      {description}\n",
                        type_name(prop)
                    ));
                }
            }
            text
        }
    };
    out.write_all(text.as_bytes()).map_err(|e| io_failure(&e))
}

/// A short type name of a JSON Schema property.
fn type_name(prop: &Value) -> String {
    match prop.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("|"),
        _ => prop
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.rsplit('/').next())
            .map_or_else(
                || {
                    if prop.get("anyOf").is_some() || prop.get("oneOf").is_some() {
                        "one of several".to_owned()
                    } else {
                        "any".to_owned()
                    }
                },
                str::to_owned,
            ),
    }
}

fn render(name: &str, args: &ParamArgs) -> Result<catalog::Rendered, Failure> {
    let id: TemplateId = name.parse()?;
    Ok(catalog::render_with_overrides(
        id,
        args.params_file.as_deref(),
        &args.param,
    )?)
}

/// Checks `--critical` patterns as catalog patterns are checked (an invalid value: exit 1).
fn check_critical(patterns: &[String]) -> Result<(), Failure> {
    for (i, pattern) in patterns.iter().enumerate() {
        catalog::pattern::check_portable(pattern)
            .map_err(|why| Failure::Failed(format!("--critical[{i}] `{pattern}`: {why}")))?;
    }
    Ok(())
}

fn validate_command(
    path: &Path,
    critical: Vec<String>,
    alongside: Option<&Path>,
    output: Format,
    out: &mut impl Write,
) -> Result<ExitCode, Failure> {
    check_critical(&critical)?;
    let config = read_config(path)?;
    let mut problems = validate(&config, &ValidateOptions::with_critical_names(critical));
    if let Some(other) = alongside {
        problems.extend(validate_pair(&read_config(other)?, &config));
    }
    let text = match output {
        Format::Table => {
            if problems.is_empty() {
                format!("{}: ok\n", path.display())
            } else {
                problems.iter().map(|p| format!("{p}\n")).collect()
            }
        }
        Format::Json => to_json(&problems)? + "\n",
        Format::Yaml => to_yaml(&problems)?,
    };
    out.write_all(text.as_bytes()).map_err(|e| io_failure(&e))?;
    Ok(if has_errors(&problems) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
