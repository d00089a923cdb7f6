//! The template catalog: five process-metrics strategies with typed parameters.
//!
//! | template | keeps at full fidelity | does with the rest |
//! |---|---|---|
//! | `process-baseline-v1` | everything | — |
//! | `process-priority-filter-v1` | critical + high-priority | drops |
//! | `process-topk-v1` | critical + processes above CPU / memory thresholds | drops |
//! | `process-aggregated-v1` | critical | sums per executable name (or class) |
//! | `process-adaptive-filter-v1` | critical + active | sums per name (or class) in a second pipeline |
//!
//! Every template renders the same skeleton (see [`Builder::skeleton`]): the `hostmetrics`
//! process scraper, `memory_limiter` first, the strategy's processors, a `resource` processor
//! adding `phoenix.experiment.id` and `phoenix.variant`, `batch` last, and the exporters
//! (`otlphttp`, `prometheus` on a per-variant port, optional `debug`), plus the collector's own
//! metrics on a per-variant port. Filters are written as DROP conditions, since that is what the
//! `filter` processor does with a match; process identity is read from resource attributes.

mod build;
mod overrides;
mod params;
pub mod pattern;

use std::fmt;
use std::str::FromStr;

use phoenix_core::experiment::PipelineRef;
use serde::Serialize;

pub use build::{
    ACTIVE_KEY, Builder, CLASS_KEY, Clause, EXE_PATH, EXPERIMENT_KEY, INSTANCE_IDENTITY,
    MONOTONIC_METRICS, NAME_PATH, VARIANT_KEY, match_clauses,
};
pub use overrides::{Override, read_parameters_file, render_with_overrides};
pub use params::{
    AdaptiveFilterParams, AggregatedParams, AggregationKey, BaselineParams, COLLECTOR_RELEASE,
    Common, PriorityFilterParams, ProcessClass, TopKParams, UNASSIGNED_EXPERIMENT_ID, Variant,
};

use crate::config::{Config, PipelineId, ProcessScraperMetric};
use crate::error::{Error, Result};
use build::{active_condition, drop_unless, inactive_condition};
use params::param;

/// A template of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TemplateId {
    /// `process-baseline-v1`.
    Baseline,
    /// `process-priority-filter-v1`.
    PriorityFilter,
    /// `process-topk-v1`.
    TopK,
    /// `process-aggregated-v1`.
    Aggregated,
    /// `process-adaptive-filter-v1`.
    AdaptiveFilter,
}

impl TemplateId {
    /// Every template, in catalog order.
    pub const ALL: [Self; 5] = [
        Self::Baseline,
        Self::PriorityFilter,
        Self::TopK,
        Self::Aggregated,
        Self::AdaptiveFilter,
    ];

    /// The template's name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Baseline => "process-baseline-v1",
            Self::PriorityFilter => "process-priority-filter-v1",
            Self::TopK => "process-topk-v1",
            Self::Aggregated => "process-aggregated-v1",
            Self::AdaptiveFilter => "process-adaptive-filter-v1",
        }
    }

    /// What the template does.
    pub const fn description(self) -> &'static str {
        match self {
            Self::Baseline => {
                "Every process at full fidelity: the hostmetrics process scraper, memory_limiter, \
                 the phoenix.* resource attributes, batch and the exporters. The reference every \
                 candidate is compared against."
            }
            Self::PriorityFilter => {
                "Keeps critical and listed high-priority processes and drops every other process \
                 with one filter condition on resource.attributes[\"process.executable.name\"] \
                 (and the path, where a pattern has one)."
            }
            Self::TopK => {
                "Keeps critical processes plus processes whose process.cpu.utilization or \
                 process.memory.usage is above a threshold, and drops the rest. The collector \
                 cannot rank processes, so the thresholds approximate the K busiest ones. A \
                 transform marks busy processes with phoenix.active, the filter drops unmarked \
                 non-critical processes, and a second transform removes the mark."
            }
            Self::Aggregated => {
                "Critical processes go unchanged through one pipeline. A second pipeline fed by \
                 the same receiver drops them, converts the monotonic counters of every other \
                 process to deltas (per process, before identity is lost), strips per-instance \
                 identity (pid, parent pid, command, command line, path, owner, cgroup), regroups \
                 the now identical resources with groupbyattrs and sums their points with \
                 aggregate_on_attributes: one series per executable name (or class) per metric \
                 and data-point attribute combination."
            }
            Self::AdaptiveFilter => {
                "Critical processes and processes above the activity thresholds go through one \
                 pipeline at full fidelity; every other process is aggregated per executable name \
                 (or class), as in process-aggregated-v1, in a second pipeline fed by the same \
                 receiver."
            }
        }
    }

    /// What the template is expected to do to series, data points and critical processes.
    pub const fn expected_effect(self) -> &'static str {
        match self {
            Self::Baseline => {
                "No reduction: the output equals the scraped input plus phoenix.experiment.id and \
                 phoenix.variant on every resource (7 data points per process per scrape with \
                 the default metrics)."
            }
            Self::PriorityFilter => {
                "Series and data points fall to those of the critical and high-priority \
                 processes; every other process disappears. Critical processes are untouched."
            }
            Self::TopK => {
                "About K non-critical processes survive each scrape, depending on how the \
                 workload sits around the thresholds; processes near a threshold flap in and out \
                 and create new series each time. On a process's first scrape \
                 process.cpu.utilization has no point yet, so only the memory criterion applies. \
                 Enabling process.cpu.utilization adds its points for every kept process. \
                 Critical processes are untouched."
            }
            Self::Aggregated => {
                "Series fall to the critical series plus one per distinct non-critical \
                 executable name (or class) for each metric and data-point attribute \
                 combination; process restarts and short-lived jobs no longer create series. \
                 Aggregated counters are exported as delta sums (a process's first point carries \
                 its total since it started). Critical processes are untouched."
            }
            Self::AdaptiveFilter => {
                "Busy and critical processes keep per-process detail; idle ones cost one series \
                 per name (or class) per metric and attribute combination. A process crossing a \
                 threshold moves between the two pipelines. Critical processes are untouched."
            }
        }
    }

    /// The JSON Schema of the template's parameters.
    pub fn parameter_schema(self) -> serde_json::Value {
        let schema = match self {
            Self::Baseline => schemars::schema_for!(BaselineParams),
            Self::PriorityFilter => schemars::schema_for!(PriorityFilterParams),
            Self::TopK => schemars::schema_for!(TopKParams),
            Self::Aggregated => schemars::schema_for!(AggregatedParams),
            Self::AdaptiveFilter => schemars::schema_for!(AdaptiveFilterParams),
        };
        schema.to_value()
    }

    /// The template's catalog entry.
    pub const fn template(self) -> Template {
        Template {
            id: self,
            name: self.name(),
            description: self.description(),
            expected_effect: self.expected_effect(),
        }
    }
}

impl fmt::Display for TemplateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TemplateId {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| Error::UnknownTemplate {
                name: name.to_owned(),
                known: Self::ALL.map(Self::name).join(", "),
            })
    }
}

/// A catalog entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    /// The template.
    #[serde(skip)]
    pub id: TemplateId,
    /// Its name.
    pub name: &'static str,
    /// What it does.
    pub description: &'static str,
    /// What it is expected to do to series, data points and critical processes.
    pub expected_effect: &'static str,
}

/// The catalog, in order.
pub fn templates() -> Vec<Template> {
    TemplateId::ALL
        .into_iter()
        .map(TemplateId::template)
        .collect()
}

/// Validated-on-render parameters of one template.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Parameters {
    /// `process-baseline-v1`.
    Baseline(BaselineParams),
    /// `process-priority-filter-v1`.
    PriorityFilter(PriorityFilterParams),
    /// `process-topk-v1`.
    TopK(TopKParams),
    /// `process-aggregated-v1`.
    Aggregated(AggregatedParams),
    /// `process-adaptive-filter-v1`.
    AdaptiveFilter(AdaptiveFilterParams),
}

impl Parameters {
    /// The template's defaults.
    pub fn defaults(template: TemplateId) -> Self {
        match template {
            TemplateId::Baseline => Self::Baseline(BaselineParams::default()),
            TemplateId::PriorityFilter => Self::PriorityFilter(PriorityFilterParams::default()),
            TemplateId::TopK => Self::TopK(TopKParams::default()),
            TemplateId::Aggregated => Self::Aggregated(AggregatedParams::default()),
            TemplateId::AdaptiveFilter => Self::AdaptiveFilter(AdaptiveFilterParams::default()),
        }
    }

    /// Reads parameters (camelCase keys; missing keys take their defaults). A key the template
    /// does not have, or a value of the wrong type, is an error naming the field. Ranges and
    /// patterns are checked by [`Parameters::check`].
    pub fn from_map(
        template: TemplateId,
        map: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self> {
        let value = serde_json::Value::Object(map.clone());
        Ok(match template {
            TemplateId::Baseline => Self::Baseline(from_value(value)?),
            TemplateId::PriorityFilter => Self::PriorityFilter(from_value(value)?),
            TemplateId::TopK => Self::TopK(from_value(value)?),
            TemplateId::Aggregated => Self::Aggregated(from_value(value)?),
            TemplateId::AdaptiveFilter => Self::AdaptiveFilter(from_value(value)?),
        })
    }

    /// The template these parameters belong to.
    pub const fn template(&self) -> TemplateId {
        match self {
            Self::Baseline(_) => TemplateId::Baseline,
            Self::PriorityFilter(_) => TemplateId::PriorityFilter,
            Self::TopK(_) => TemplateId::TopK,
            Self::Aggregated(_) => TemplateId::Aggregated,
            Self::AdaptiveFilter(_) => TemplateId::AdaptiveFilter,
        }
    }

    /// The shared parameters.
    pub fn common(&self) -> Common<'_> {
        match self {
            Self::Baseline(p) => p.common(),
            Self::PriorityFilter(p) => p.common(),
            Self::TopK(p) => p.common(),
            Self::Aggregated(p) => p.common(),
            Self::AdaptiveFilter(p) => p.common(),
        }
    }

    /// Range, pattern and consistency checks; errors name the field.
    pub fn check(&self) -> Result<()> {
        match self {
            Self::Baseline(p) => p.check(),
            Self::PriorityFilter(p) => p.check(),
            Self::TopK(p) => p.check(),
            Self::Aggregated(p) => p.check(),
            Self::AdaptiveFilter(p) => p.check(),
        }
    }

    /// The parameters as JSON (camelCase, every field).
    pub fn to_json(&self) -> serde_json::Value {
        // Serializing plain data structs into a JSON value cannot fail.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

fn from_value<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let field = if path.is_empty() || path == "." {
            // Unknown keys are reported at the top level; name the key itself.
            message
                .split('`')
                .nth(1)
                .map_or_else(|| "(parameters)".to_owned(), str::to_owned)
        } else {
            path
        };
        param(field, message)
    })
}

/// A rendered template: the parameters in effect and the config.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The parameters, with defaults filled in.
    pub parameters: Parameters,
    /// The collector config.
    pub config: Config,
}

impl Rendered {
    /// The template.
    pub const fn template(&self) -> TemplateId {
        self.parameters.template()
    }

    /// The experiment id written into the config.
    pub fn experiment_id(&self) -> &str {
        self.parameters.common().experiment_id
    }

    /// The variant written into the config.
    pub fn variant(&self) -> Variant {
        self.parameters.common().variant
    }

    /// The collector YAML, after a comment header naming the template, the collector release,
    /// the experiment and the variant. Deterministic for the same parameters.
    pub fn to_yaml(&self) -> Result<String> {
        let common = self.parameters.common();
        let mut out = format!(
            "# Generated by phoenix-generator from {} for otelcol-contrib {}.\n\
             # Experiment {}, variant {}. Edit the parameters, not this file.\n",
            self.template(),
            common.collector_release,
            common.experiment_id,
            common.variant
        );
        out.push_str(&self.config.to_yaml()?);
        Ok(out)
    }
}

/// Renders `template` with `params` (camelCase keys; missing keys take their defaults).
pub fn render(
    template: TemplateId,
    params: &serde_json::Map<String, serde_json::Value>,
) -> Result<Config> {
    render_template(template, params).map(|r| r.config)
}

/// Renders `template` with `params`, keeping the parameters in effect.
pub fn render_template(
    template: TemplateId,
    params: &serde_json::Map<String, serde_json::Value>,
) -> Result<Rendered> {
    render_parameters(Parameters::from_map(template, params)?)
}

/// Renders typed parameters.
pub fn render_parameters(parameters: Parameters) -> Result<Rendered> {
    parameters.check()?;
    let config = build(&parameters)?;
    Ok(Rendered { parameters, config })
}

/// The config an experiment variant refers to: a rendered catalog template, or an inline config.
pub fn resolve(pipeline: &PipelineRef) -> Result<Config> {
    match pipeline {
        PipelineRef::Template { name, parameters } => render(name.parse()?, parameters),
        PipelineRef::Inline { config } => Config::from_yaml(config),
    }
}

fn build(parameters: &Parameters) -> Result<Config> {
    let common = parameters.common();
    let critical = match_clauses(common.critical_processes);
    match parameters {
        Parameters::Baseline(_) => {
            let mut b = Builder::skeleton(&common, &[])?;
            b.pipeline(PipelineId::metrics(), Vec::new());
            Ok(b.finish())
        }
        Parameters::PriorityFilter(p) => {
            let mut b = Builder::skeleton(&common, &[])?;
            let mut keep = critical;
            keep.extend(match_clauses(&p.high_priority_processes));
            let condition = drop_unless(&keep, None).ok_or_else(|| {
                param(
                    "highPriorityProcesses",
                    "with no critical and no high-priority processes the filter would drop everything",
                )
            })?;
            let filter = b.drop_filter("priority", vec![condition]);
            b.pipeline(PipelineId::metrics(), vec![filter]);
            Ok(b.finish())
        }
        Parameters::TopK(p) => {
            let extra = cpu_metric(p.cpu_utilization_threshold);
            let mut b = Builder::skeleton(&common, &extra)?;
            let mark = b.mark_active(p.cpu_utilization_threshold, p.memory_usage_threshold);
            let condition = drop_unless(&critical, Some(inactive_condition()))
                .unwrap_or_else(inactive_condition);
            let filter = b.drop_filter("topk", vec![condition]);
            let unmark = b.unmark();
            b.pipeline(PipelineId::metrics(), vec![mark, filter, unmark]);
            Ok(b.finish())
        }
        Parameters::Aggregated(p) => {
            let mut b = Builder::skeleton(&common, &[])?;
            let mut middle = Vec::new();
            if let Some(keep) = drop_unless(&critical, None) {
                let only = b.drop_filter("critical-only", vec![keep]);
                b.pipeline(PipelineId::named_metrics("critical"), vec![only]);
                let rest = critical.iter().map(|c| c.text().to_owned()).collect();
                middle.push(b.drop_filter("non-critical", rest));
            }
            middle.extend(b.aggregation(
                common.interval()?,
                p.aggregation_key,
                &p.classes,
                &p.other_class,
            ));
            b.pipeline(PipelineId::named_metrics("aggregated"), middle);
            Ok(b.finish())
        }
        Parameters::AdaptiveFilter(p) => {
            let extra = cpu_metric(p.cpu_utilization_threshold);
            let mut b = Builder::skeleton(&common, &extra)?;
            let mark = b.mark_active(p.cpu_utilization_threshold, p.memory_usage_threshold);
            let keep = drop_unless(&critical, Some(inactive_condition()))
                .unwrap_or_else(inactive_condition);
            let keep = b.drop_filter("critical-or-active", vec![keep]);
            let unmark = b.unmark();
            b.pipeline(
                PipelineId::named_metrics("full"),
                vec![mark.clone(), keep, unmark],
            );
            let mut rest: Vec<String> = critical.iter().map(|c| c.text().to_owned()).collect();
            rest.push(active_condition());
            let mut middle = vec![mark, b.drop_filter("idle", rest)];
            middle.extend(b.aggregation(
                common.interval()?,
                p.aggregation_key,
                &p.classes,
                &p.other_class,
            ));
            b.pipeline(PipelineId::named_metrics("aggregated"), middle);
            Ok(b.finish())
        }
    }
}

/// `process.cpu.utilization` when a CPU threshold needs it.
fn cpu_metric(threshold: Option<f64>) -> Vec<ProcessScraperMetric> {
    threshold
        .map(|_| ProcessScraperMetric::CpuUtilization)
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(json: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        match json {
            serde_json::Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn names_round_trip_and_unknown_lists_the_catalog() {
        for t in TemplateId::ALL {
            assert_eq!(t.name().parse::<TemplateId>().unwrap(), t);
        }
        let err = "process-nope-v1"
            .parse::<TemplateId>()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("process-nope-v1") && err.contains("process-topk-v1"),
            "{err}"
        );
    }

    #[test]
    fn every_template_renders_with_defaults_and_round_trips() {
        for t in TemplateId::ALL {
            let config = render(t, &serde_json::Map::new()).unwrap();
            let yaml = config.to_yaml().unwrap();
            assert_eq!(Config::from_yaml(&yaml).unwrap(), config, "{t}");
        }
    }

    #[test]
    fn parameter_errors_name_the_field() {
        let err = render(TemplateId::TopK, &map(serde_json::json!({"topK": 0})))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "parameter `topK`: must be at least 1, got 0");
        let err = render(TemplateId::TopK, &map(serde_json::json!({"topK": "x"})))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("parameter `topK`:"), "{err}");
        let err = render(TemplateId::Baseline, &map(serde_json::json!({"topK": 3})))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("parameter `topK`: unknown field"), "{err}");
        let err = render(
            TemplateId::Aggregated,
            &map(serde_json::json!({"criticalProcesses": ["^a$", "(b"]})),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("parameter `criticalProcesses[1]`: invalid regex"),
            "{err}"
        );
    }

    #[test]
    fn priority_filter_drops_what_is_not_kept() {
        let config = render(
            TemplateId::PriorityFilter,
            &map(serde_json::json!({
                "criticalProcesses": ["^postgres$", {"name": "^java$", "path": "^/opt/app/"}],
                "highPriorityProcesses": ["^nginx$"],
            })),
        )
        .unwrap();
        let yaml = config.to_yaml().unwrap();
        assert!(
            yaml.contains(r#"not IsMatch(resource.attributes[\"process.executable.name\"], \"^postgres$\") and not (IsMatch"#)
                || yaml.contains(r#"not IsMatch(resource.attributes["process.executable.name"], "^postgres$") and not (IsMatch"#),
            "{yaml}"
        );
    }

    #[test]
    fn user_names_with_quotes_and_backslashes_are_escaped() {
        let config = render(
            TemplateId::PriorityFilter,
            &map(serde_json::json!({"criticalProcesses": [r#"^a\.b"c$"#]})),
        )
        .unwrap();
        let crate::config::Processor::Filter(filter) =
            &config.processors[&build::ids::filter("priority")]
        else {
            panic!("no filter");
        };
        assert_eq!(
            filter.metrics.datapoint[0],
            r#"not IsMatch(resource.attributes["process.executable.name"], "^a\\.b\"c$")"#
        );
    }

    #[test]
    fn resolve_handles_templates_and_inline_configs() {
        let t = PipelineRef::template("process-aggregated-v1");
        assert!(resolve(&t).unwrap().service.pipelines.len() == 2);
        let inline = PipelineRef::Inline {
            config: render(TemplateId::Baseline, &serde_json::Map::new())
                .unwrap()
                .to_yaml()
                .unwrap(),
        };
        assert_eq!(resolve(&inline).unwrap().service.pipelines.len(), 1);
        assert!(resolve(&PipelineRef::template("process-nope-v1")).is_err());
    }

    #[test]
    fn schema_documents_defaults() {
        let schema = TemplateId::TopK.parameter_schema();
        let top_k = &schema["properties"]["topK"];
        assert_eq!(top_k["default"], 20, "{schema}");
        assert!(top_k["description"].as_str().unwrap().contains("rank"));
    }
}
