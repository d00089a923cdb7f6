//! Kubernetes rendering: a v1 `ConfigMap` holding a rendered collector config.
//!
//! Plain serde structs; no Kubernetes client dependency.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::Rendered;
use crate::error::{Error, Result};

/// The `data` key holding the collector config.
pub const CONFIG_KEY: &str = "collector.yaml";
/// Label with the template name.
pub const TEMPLATE_LABEL: &str = "phoenix.dev/template";
/// Label with the experiment id.
pub const EXPERIMENT_LABEL: &str = "phoenix.dev/experiment";
/// Label with the variant.
pub const VARIANT_LABEL: &str = "phoenix.dev/variant";
/// Label with the pinned collector release.
pub const RELEASE_LABEL: &str = "phoenix.dev/collector-release";
/// Annotation with the parameters in effect, as compact JSON.
pub const PARAMETERS_ANNOTATION: &str = "phoenix.dev/parameters";

/// A v1 `ConfigMap`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMap {
    /// Always `v1`.
    pub api_version: String,
    /// Always `ConfigMap`.
    pub kind: String,
    /// Name, namespace, labels and annotations.
    pub metadata: ObjectMeta,
    /// The config under [`CONFIG_KEY`].
    pub data: BTreeMap<String, String>,
}

/// The metadata subset Phoenix writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    /// Object name.
    pub name: String,
    /// Namespace, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The ConfigMap name of a variant: `phoenix-<experiment id>-<variant>`.
pub fn config_map_name(rendered: &Rendered) -> String {
    format!(
        "phoenix-{}-{}",
        rendered.experiment_id(),
        rendered.variant()
    )
}

/// What a redacted header value reads in the parameters annotation.
const REDACTED: &str = "***";

/// Replaces every `otlpHeaders` value with [`REDACTED`], except one that is a single
/// `${...}` reference (the secret stays in the environment, so the reference is safe to keep).
fn redact_headers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "otlpHeaders"
                    && let serde_json::Value::Object(headers) = v
                {
                    for header in headers.values_mut() {
                        let reference = header.as_str().is_some_and(|s| {
                            s.starts_with("${") && s.ends_with('}') && s.matches("${").count() == 1
                        });
                        if !reference {
                            *header = serde_json::Value::String(REDACTED.to_owned());
                        }
                    }
                } else {
                    redact_headers(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_headers),
        _ => {}
    }
}

impl ConfigMap {
    /// The ConfigMap for a rendered template, labelled with template, experiment, variant and
    /// collector release.
    pub fn for_rendered(rendered: &Rendered, namespace: Option<&str>) -> Result<Self> {
        let common = rendered.parameters.common();
        let labels = BTreeMap::from([
            (
                "app.kubernetes.io/managed-by".to_owned(),
                "phoenix".to_owned(),
            ),
            (
                "app.kubernetes.io/component".to_owned(),
                "collector-config".to_owned(),
            ),
            (TEMPLATE_LABEL.to_owned(), rendered.template().to_string()),
            (EXPERIMENT_LABEL.to_owned(), common.experiment_id.to_owned()),
            (VARIANT_LABEL.to_owned(), common.variant.to_string()),
            (
                RELEASE_LABEL.to_owned(),
                common.collector_release.to_owned(),
            ),
        ]);
        let mut parameters =
            serde_json::to_value(&rendered.parameters).map_err(|e| Error::Config {
                path: "parameters".to_owned(),
                message: e.to_string(),
            })?;
        redact_headers(&mut parameters);
        let parameters = parameters.to_string();
        Ok(Self {
            api_version: "v1".to_owned(),
            kind: "ConfigMap".to_owned(),
            metadata: ObjectMeta {
                name: config_map_name(rendered),
                namespace: namespace.map(str::to_owned),
                labels,
                annotations: BTreeMap::from([(PARAMETERS_ANNOTATION.to_owned(), parameters)]),
            },
            data: BTreeMap::from([(CONFIG_KEY.to_owned(), rendered.to_yaml()?)]),
        })
    }

    /// The ConfigMap as YAML.
    pub fn to_yaml(&self) -> Result<String> {
        serde_yaml::to_string(self).map_err(|e| Error::Config {
            path: String::new(),
            message: format!("cannot render the ConfigMap: {e}"),
        })
    }

    /// Parses a ConfigMap written by [`ConfigMap::to_yaml`].
    pub fn from_yaml(text: &str) -> Result<Self> {
        serde_yaml::from_str(text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            Error::Yaml {
                line,
                column,
                message: e.to_string(),
            }
        })
    }

    /// The collector config it holds.
    pub fn config(&self) -> Result<crate::config::Config> {
        let text = self.data.get(CONFIG_KEY).ok_or_else(|| Error::Config {
            path: format!("data.{CONFIG_KEY}"),
            message: "missing".to_owned(),
        })?;
        crate::config::Config::from_yaml(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{TemplateId, render_template};

    #[test]
    fn config_map_carries_labels_and_the_config() {
        let rendered = render_template(TemplateId::TopK, &serde_json::Map::new()).unwrap();
        let cm = ConfigMap::for_rendered(&rendered, Some("observability")).unwrap();
        let yaml = cm.to_yaml().unwrap();
        let back = ConfigMap::from_yaml(&yaml).unwrap();
        assert_eq!(back, cm);
        assert_eq!(back.metadata.name, "phoenix-exp-00000000-candidate");
        assert_eq!(back.metadata.labels[TEMPLATE_LABEL], "process-topk-v1");
        assert_eq!(back.metadata.labels[VARIANT_LABEL], "candidate");
        assert_eq!(back.config().unwrap(), rendered.config);
    }

    #[test]
    fn header_values_are_redacted_in_the_annotation() {
        let params = serde_json::json!({
            "otlpEndpoint": "https://backend:4318",
            "otlpHeaders": {
                "Authorization": "Bearer s3cr3t-token",
                "X-Api-Key": "${env:API_KEY}",
            },
        });
        let rendered = render_template(TemplateId::Baseline, params.as_object().unwrap()).unwrap();
        let cm = ConfigMap::for_rendered(&rendered, None).unwrap();
        let annotation = &cm.metadata.annotations[PARAMETERS_ANNOTATION];
        assert!(!annotation.contains("s3cr3t"), "{annotation}");
        let value: serde_json::Value = serde_json::from_str(annotation).unwrap();
        let mut found = Vec::new();
        fn walk(v: &serde_json::Value, found: &mut Vec<serde_json::Value>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(h) = m.get("otlpHeaders") {
                        found.push(h.clone());
                    }
                    m.values().for_each(|x| walk(x, found));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, found)),
                _ => {}
            }
        }
        walk(&value, &mut found);
        assert_eq!(
            found,
            vec![serde_json::json!({"Authorization": "***", "X-Api-Key": "${env:API_KEY}"})]
        );
        // The config itself keeps the real value for the collector.
        assert!(cm.data[CONFIG_KEY].contains("s3cr3t-token"));
    }
}
