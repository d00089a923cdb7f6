//! Rendering a pipeline's collector config through phoenix-generator.

use phoenix_generator::catalog::{EXPERIMENT_KEY, TemplateId, VARIANT_KEY, render_template};
use phoenix_generator::config::{
    AttributeActionKind, AttributeValue, Config, Exporter, Processor, Receiver,
};
use phoenix_generator::validate::{Problem, ValidateOptions, bound_ports, validate};
use serde_json::Value;

use super::HOST_ROOT;
use crate::crd::PhoenixProcessPipelineSpec;
use crate::{Error, Result};

/// A pipeline's collector config, rendered and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedPipeline {
    /// The collector YAML.
    pub yaml: String,
    /// Hash of the YAML (xxh3, 16 hex digits); pods carry it so that they roll on change.
    pub hash: String,
    /// The catalog template, or `inline`.
    pub source: String,
    /// Port of the `prometheus` exporter serving the pipeline's output, if the config has one.
    pub prometheus_port: Option<u16>,
    /// Port of the collector's own metrics, if it serves them.
    pub telemetry_port: Option<u16>,
}

/// Renders the config of a pipeline of experiment `experiment_id`: a catalog template with
/// the spec's parameters (plus the experiment id, the variant and `rootPath: /hostfs`, which
/// the operator sets), or the spec's inline config, checked by phoenix-generator.
///
/// # Errors
///
/// [`Error::Invalid`] naming the field at fault: `spec.template` for an unknown template,
/// `spec.parameters.<name>` for a bad parameter, `spec.config...` for an inline config that
/// does not parse or does not validate.
pub fn render_pipeline(
    spec: &PhoenixProcessPipelineSpec,
    experiment_id: &str,
) -> Result<RenderedPipeline> {
    let (config, yaml, source) = match (&spec.template, &spec.config) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                "spec.config",
                "set either `template` (with `parameters`) or `config`, not both",
            ));
        }
        (None, None) => {
            return Err(Error::invalid(
                "spec.template",
                "set a catalog template (with `parameters`) or an inline `config`",
            ));
        }
        (Some(template), None) => render_from_template(spec, template, experiment_id)?,
        (None, Some(text)) => check_inline(spec, text, experiment_id)?,
    };
    let mut prometheus_port = None;
    let mut telemetry_port = None;
    for (port, location) in bound_ports(&config) {
        if location.starts_with("exporters.") {
            let is_prometheus = config.exporters.iter().any(|(id, e)| {
                matches!(e, Exporter::Prometheus(_))
                    && location.starts_with(&format!("exporters.{id}."))
            });
            if is_prometheus && prometheus_port.is_none() {
                prometheus_port = Some(port);
            }
        } else if location.starts_with("service.telemetry") && telemetry_port.is_none() {
            telemetry_port = Some(port);
        }
    }
    let hash = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(yaml.as_bytes()));
    Ok(RenderedPipeline {
        yaml,
        hash,
        source,
        prometheus_port,
        telemetry_port,
    })
}

fn render_from_template(
    spec: &PhoenixProcessPipelineSpec,
    template: &str,
    experiment_id: &str,
) -> Result<(Config, String, String)> {
    let id: TemplateId = template
        .parse()
        .map_err(|e: phoenix_generator::Error| Error::invalid("spec.template", e.to_string()))?;
    let mut params = spec.parameters.clone();
    let owned = [
        ("experimentId", experiment_id.to_owned()),
        ("variant", spec.variant.as_str().to_owned()),
        ("rootPath", HOST_ROOT.to_owned()),
    ];
    for (key, value) in owned {
        match params.get(key) {
            Some(Value::String(given)) if *given == value => {}
            Some(given) => {
                return Err(Error::invalid(
                    format!("spec.parameters.{key}"),
                    format!("is set by the operator to `{value}`; remove it (got {given})"),
                ));
            }
            None => {
                params.insert(key.to_owned(), Value::String(value));
            }
        }
    }
    // The experiment is measured through Prometheus; an OTLP backend is used only when named.
    params
        .entry("otlpEndpoint".to_owned())
        .or_insert(Value::Null);
    let rendered = render_template(id, &params).map_err(|e| match e {
        phoenix_generator::Error::Parameter { field, message } => {
            Error::invalid(format!("spec.parameters.{field}"), message)
        }
        other => Error::invalid("spec.parameters", other.to_string()),
    })?;
    let critical = rendered.parameters.common().critical_processes.to_vec();
    let problems = validate(&rendered.config, &ValidateOptions { critical });
    report(&problems, "spec.parameters", "the rendered config")?;
    let yaml = rendered.to_yaml()?;
    Ok((rendered.config, yaml, id.name().to_owned()))
}

fn check_inline(
    spec: &PhoenixProcessPipelineSpec,
    text: &str,
    experiment_id: &str,
) -> Result<(Config, String, String)> {
    let config =
        Config::from_yaml(text).map_err(|e| Error::invalid("spec.config", e.to_string()))?;
    check_listen_addresses(&config)?;
    check_variant_labels(&config, experiment_id, spec.variant.as_str())?;
    for (id, receiver) in &config.receivers {
        if let Receiver::HostMetrics(h) = receiver
            && h.root_path.as_deref() != Some(HOST_ROOT)
        {
            return Err(Error::invalid(
                format!("spec.config.receivers.{id}.root_path"),
                format!("must be `{HOST_ROOT}`, where collector pods see the host's filesystem"),
            ));
        }
    }
    let options = ValidateOptions::with_critical_names(spec.critical_processes.iter().cloned());
    let problems = validate(&config, &options);
    report(&problems, "spec.config", "the config")?;
    let yaml = config.to_yaml()?;
    Ok((config, yaml, "inline".to_owned()))
}

/// Whether `host` (of a `host:port`, brackets allowed) is a loopback address.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Prometheus scrapes the collector pods from outside and the kubelet probes the telemetry
/// port on the pod's IP: an inline config must not bind either to loopback.
fn check_listen_addresses(config: &Config) -> Result<()> {
    for (id, exporter) in &config.exporters {
        if let Exporter::Prometheus(p) = exporter
            && let Some(endpoint) = &p.endpoint
            && let Some((host, _)) = endpoint.rsplit_once(':')
            && is_loopback(host)
        {
            return Err(Error::invalid(
                format!("spec.config.exporters.{id}.endpoint"),
                format!(
                    "`{endpoint}` binds to loopback, where Prometheus cannot scrape it; \
                     listen on `0.0.0.0:<port>`"
                ),
            ));
        }
    }
    let readers = config
        .service
        .telemetry
        .as_ref()
        .and_then(|t| t.metrics.as_ref())
        .map(|m| m.readers.as_slice())
        .unwrap_or_default();
    for (i, reader) in readers.iter().enumerate() {
        if let Some(host) = reader
            .pull
            .as_ref()
            .and_then(|p| p.exporter.prometheus.as_ref())
            .and_then(|p| p.host.as_deref())
            && is_loopback(host)
        {
            return Err(Error::invalid(
                format!(
                    "spec.config.service.telemetry.metrics.readers[{i}].pull.exporter.prometheus.host"
                ),
                format!(
                    "`{host}` is loopback, where neither Prometheus nor the readiness probe \
                     reach the collector's own metrics; use `0.0.0.0`"
                ),
            ));
        }
    }
    Ok(())
}

/// Experiments select a variant's series by the `phoenix_experiment_id` and `phoenix_variant`
/// labels: every `prometheus` exporter of an inline config must copy resource attributes onto
/// its series (`resource_to_telemetry_conversion`), and every pipeline feeding it must set
/// `phoenix.experiment.id` and `phoenix.variant` to the pipeline's values with a `resource`
/// processor.
fn check_variant_labels(config: &Config, experiment_id: &str, variant: &str) -> Result<()> {
    for (id, exporter) in &config.exporters {
        let Exporter::Prometheus(p) = exporter else {
            continue;
        };
        if p.resource_to_telemetry_conversion
            .is_none_or(|c| !c.enabled)
        {
            return Err(Error::invalid(
                format!("spec.config.exporters.{id}.resource_to_telemetry_conversion"),
                "must be `{enabled: true}`: the variant's series are told apart by the \
                 resource attributes phoenix.experiment.id and phoenix.variant",
            ));
        }
        for (pipeline_id, pipeline) in &config.service.pipelines {
            if !pipeline.exporters.contains(id) {
                continue;
            }
            for (key, value) in [(EXPERIMENT_KEY, experiment_id), (VARIANT_KEY, variant)] {
                let set = pipeline.processors.iter().any(|processor| {
                    matches!(
                        config.processors.get(processor),
                        Some(Processor::Resource(r)) if r.attributes.iter().any(|a| {
                            a.key.as_deref() == Some(key)
                                && matches!(a.action, AttributeActionKind::Upsert | AttributeActionKind::Insert)
                                && matches!(&a.value, Some(AttributeValue::String(v)) if v == value)
                        })
                    )
                });
                if !set {
                    return Err(Error::invalid(
                        format!("spec.config.service.pipelines.{pipeline_id}.processors"),
                        format!(
                            "must include a `resource` processor that upserts `{key}: {value}` \
                             (the pipeline exports to `{id}`)"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Fails with the first error (named under `prefix`), listing every error in the message.
fn report(problems: &[Problem], prefix: &str, what: &str) -> Result<()> {
    let errors: Vec<&Problem> = problems.iter().filter(|p| p.is_error()).collect();
    let Some(first) = errors.first() else {
        return Ok(());
    };
    let all = errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    Err(Error::invalid(
        format!("{prefix}.{}", first.location),
        format!("{what} does not validate: {all}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use phoenix_core::measurement::VariantRole;

    fn spec(template: Option<&str>, params: &Value) -> PhoenixProcessPipelineSpec {
        PhoenixProcessPipelineSpec {
            experiment_id: None,
            variant: VariantRole::Candidate,
            template: template.map(str::to_owned),
            parameters: params.as_object().cloned().unwrap_or_default(),
            config: None,
            critical_processes: Vec::new(),
            collector: Default::default(),
        }
    }

    #[test]
    fn templates_render_with_operator_parameters() {
        let rendered = render_pipeline(
            &spec(Some("process-topk-v1"), &serde_json::json!({"topK": 5})),
            "exp-abcd1234",
        )
        .unwrap();
        assert!(
            rendered.yaml.contains("root_path: /hostfs"),
            "{}",
            rendered.yaml
        );
        assert!(rendered.yaml.contains("exp-abcd1234"));
        assert!(
            !rendered.yaml.contains("otlphttp"),
            "no backend named, no OTLP exporter"
        );
        assert_eq!(rendered.prometheus_port, Some(8899));
        assert_eq!(rendered.telemetry_port, Some(8898));
        assert_eq!(rendered.source, "process-topk-v1");
        assert_eq!(rendered.hash.len(), 16);
        let again = render_pipeline(
            &spec(Some("process-topk-v1"), &serde_json::json!({"topK": 5})),
            "exp-abcd1234",
        )
        .unwrap();
        assert_eq!(again.hash, rendered.hash);
        let other = render_pipeline(
            &spec(
                Some("process-topk-v1"),
                &serde_json::json!({"topK": 5, "collectionInterval": "20s"}),
            ),
            "exp-abcd1234",
        )
        .unwrap();
        assert_ne!(other.hash, rendered.hash);
    }

    #[test]
    fn bad_input_names_the_field() {
        let err = |s: &PhoenixProcessPipelineSpec| render_pipeline(s, "exp-abcd1234").unwrap_err();
        let e = err(&spec(Some("process-nope-v1"), &Value::Null));
        assert!(
            matches!(&e, Error::Invalid { field, .. } if field == "spec.template"),
            "{e}"
        );
        let e = err(&spec(
            Some("process-topk-v1"),
            &serde_json::json!({"topK": 0}),
        ));
        assert!(
            matches!(&e, Error::Invalid { field, .. } if field == "spec.parameters.topK"),
            "{e}"
        );
        let e = err(&spec(
            Some("process-topk-v1"),
            &serde_json::json!({"variant": "baseline"}),
        ));
        assert!(
            matches!(&e, Error::Invalid { field, .. } if field == "spec.parameters.variant"),
            "{e}"
        );
        let e = err(&spec(None, &Value::Null));
        assert!(
            matches!(&e, Error::Invalid { field, .. } if field == "spec.template"),
            "{e}"
        );
        let mut inline = spec(None, &Value::Null);
        inline.config = Some("receivers: [".to_owned());
        let e = err(&inline);
        assert!(
            matches!(&e, Error::Invalid { field, .. } if field == "spec.config"),
            "{e}"
        );
    }

    #[test]
    fn inline_configs_are_checked() {
        let mut template = spec(Some("process-baseline-v1"), &Value::Null);
        template.variant = VariantRole::Baseline;
        let baseline = render_pipeline(&template, "exp-abcd1234").unwrap();
        let mut inline = spec(None, &Value::Null);
        inline.variant = VariantRole::Baseline;
        inline.config = Some(baseline.yaml.clone());
        inline.critical_processes = vec!["^sshd$".to_owned()];
        let rendered = render_pipeline(&inline, "exp-abcd1234").unwrap();
        assert_eq!(rendered.source, "inline");
        assert_eq!(rendered.prometheus_port, Some(8889));
        assert_eq!(rendered.telemetry_port, Some(8888));
        let without_root = baseline.yaml.replace("    root_path: /hostfs\n", "");
        inline.config = Some(without_root);
        let e = render_pipeline(&inline, "exp-abcd1234").unwrap_err();
        assert!(
            matches!(&e, Error::Invalid { field, .. } if field == "spec.config.receivers.hostmetrics.root_path"),
            "{e}"
        );
    }

    #[test]
    fn inline_configs_must_be_reachable_and_labelled_as_the_variant() {
        let mut template = spec(Some("process-baseline-v1"), &Value::Null);
        template.variant = VariantRole::Baseline;
        let baseline = render_pipeline(&template, "exp-abcd1234").unwrap().yaml;
        let field_of = |yaml: String, variant: VariantRole, id: &str| {
            let mut inline = spec(None, &Value::Null);
            inline.variant = variant;
            inline.config = Some(yaml);
            match render_pipeline(&inline, id).unwrap_err() {
                Error::Invalid { field, .. } => field,
                other => panic!("{other}"),
            }
        };
        assert!(baseline.contains("0.0.0.0:8889"), "{baseline}");
        let loopback = baseline.replace("0.0.0.0:8889", "127.0.0.1:8889");
        assert_eq!(
            field_of(loopback, VariantRole::Baseline, "exp-abcd1234"),
            "spec.config.exporters.prometheus.endpoint"
        );
        let telemetry = baseline.replace("host: 0.0.0.0", "host: localhost");
        assert_ne!(telemetry, baseline);
        assert_eq!(
            field_of(telemetry, VariantRole::Baseline, "exp-abcd1234"),
            "spec.config.service.telemetry.metrics.readers[0].pull.exporter.prometheus.host"
        );
        let unlabelled = baseline.replace(
            "    resource_to_telemetry_conversion:\n      enabled: true\n",
            "",
        );
        assert_ne!(unlabelled, baseline);
        assert_eq!(
            field_of(unlabelled, VariantRole::Baseline, "exp-abcd1234"),
            "spec.config.exporters.prometheus.resource_to_telemetry_conversion"
        );
        // The baseline's config as the candidate, or under another experiment: its series
        // would be counted as the wrong variant.
        assert_eq!(
            field_of(baseline.clone(), VariantRole::Candidate, "exp-abcd1234"),
            "spec.config.service.pipelines.metrics.processors"
        );
        assert_eq!(
            field_of(baseline, VariantRole::Baseline, "exp-00000001"),
            "spec.config.service.pipelines.metrics.processors"
        );
    }
}
