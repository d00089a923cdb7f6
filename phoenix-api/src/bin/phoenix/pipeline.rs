//! `phoenix pipeline ...`: the generator's catalog, validation and prediction, run locally.

use std::path::Path;

use anyhow::{Context, Result, bail};
use phoenix_core::experiment::{CriticalMatcher, CriticalProcess};
use phoenix_generator::catalog::{self, Rendered, TemplateId};
use phoenix_generator::config::Config;
use phoenix_generator::kubernetes::ConfigMap;
use phoenix_generator::predict::{PredictOptions, Workload, predict};
use phoenix_generator::validate::{ValidateOptions, has_errors, validate, validate_pair};

use crate::args::{ParamArgs, PipelineCommand, PredictArgs};
use crate::output::{self, Format, Table};

/// Runs one pipeline command.
pub fn run(command: &PipelineCommand, format: Format) -> Result<()> {
    match command {
        PipelineCommand::Templates => {
            let list = catalog::templates();
            format.print(&list, |list| {
                let mut table = Table::new(["TEMPLATE", "EXPECTED EFFECT"]);
                for t in list {
                    let effect = t.expected_effect.split(". ").next().unwrap_or_default();
                    table.row([t.name, effect.trim_end_matches('.')]);
                }
                table.render()
            })
        }
        PipelineCommand::Render {
            template,
            params,
            configmap,
            namespace,
        } => {
            let rendered = render(template, params)?;
            let text = match (configmap, format) {
                (true, Format::Json) => {
                    let map = ConfigMap::for_rendered(&rendered, namespace.as_deref())?;
                    serde_json::to_string_pretty(&map)? + "\n"
                }
                (true, _) => ConfigMap::for_rendered(&rendered, namespace.as_deref())?.to_yaml()?,
                (false, Format::Json) => serde_json::to_string_pretty(&rendered.config)? + "\n",
                (false, _) => rendered.to_yaml()?,
            };
            output::print(&text)
        }
        PipelineCommand::Validate {
            config,
            critical,
            alongside,
        } => validate_file(config, critical, alongside.as_deref(), format),
        PipelineCommand::Predict(args) => predict_command(args, format),
    }
}

fn render(name: &str, args: &ParamArgs) -> Result<Rendered> {
    let id: TemplateId = name.parse()?;
    Ok(catalog::render_with_overrides(
        id,
        args.params_file.as_deref(),
        &args.param,
    )?)
}

fn read_config(path: &Path) -> Result<Config> {
    Ok(Config::from_file(path)?)
}

fn validate_file(
    path: &Path,
    critical: &[String],
    alongside: Option<&Path>,
    format: Format,
) -> Result<()> {
    let config = read_config(path)?;
    let mut problems = validate(
        &config,
        &ValidateOptions::with_critical_names(critical.iter().cloned()),
    );
    if let Some(other) = alongside {
        problems.extend(validate_pair(&read_config(other)?, &config));
    }
    format.print(&problems, |problems| {
        if problems.is_empty() {
            return format!("{}: ok\n", path.display());
        }
        let mut table = Table::new(["SEVERITY", "LOCATION", "PROBLEM"]);
        for p in problems {
            let severity = if p.is_error() { "error" } else { "warning" };
            table.row([severity, p.location.as_str(), p.message.as_str()]);
        }
        table.render()
    })?;
    if has_errors(&problems) {
        let n = problems.iter().filter(|p| p.is_error()).count();
        bail!(
            "{}: {n} error{} found",
            path.display(),
            if n == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

fn predict_command(args: &PredictArgs, format: Format) -> Result<()> {
    if args.config.is_some() && (!args.params.param.is_empty() || args.params.params_file.is_some())
    {
        bail!("--param and --params-file apply to --template only");
    }
    let (candidate, template_critical) = match (&args.config, &args.template) {
        (Some(path), _) => (read_config(path)?, Vec::new()),
        (None, Some(name)) => {
            let rendered = render(name, &args.params)?;
            let critical = rendered.parameters.common().critical_processes.to_vec();
            (rendered.config, critical)
        }
        (None, None) => bail!("give a config file or --template"),
    };
    let baseline = match &args.baseline {
        Some(path) => read_config(path)?,
        None => catalog::render(TemplateId::Baseline, &serde_json::Map::new())?,
    };
    let workload = match &args.recording {
        Some(path) => Workload::from_recording(path)?,
        None => {
            let profile =
                crate::sim::load_profile(&args.profile, args.profile_file.as_deref(), None)?;
            let scrapes = usize::try_from(args.scrapes).context("--scrapes is too large")?;
            Workload::for_configs(&profile, args.seed, scrapes, &[&candidate, &baseline])?
        }
    };
    let critical: Vec<CriticalProcess> = if args.critical.is_empty() {
        template_critical
    } else {
        args.critical
            .iter()
            .cloned()
            .map(CriticalProcess::name)
            .collect()
    };
    let matcher = CriticalMatcher::new(&critical).context("--critical")?;
    let options = PredictOptions {
        critical: matcher,
        ..PredictOptions::default()
    };
    let prediction = predict(&candidate, &baseline, workload.snapshots(), &options)?;
    format.print(&prediction, |p| p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(params: &[&str]) -> ParamArgs {
        ParamArgs {
            param: params.iter().map(|s| s.parse().unwrap()).collect(),
            params_file: None,
        }
    }

    #[test]
    fn render_checks_the_template_and_parameters() {
        let e = render("process-topk-v1", &args(&["topK=0"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("topK"), "{e}");
        assert!(render("no-such-template", &args(&[])).is_err());
        assert!(render("process-topk-v1", &args(&["topK=5"])).is_ok());
    }
}
