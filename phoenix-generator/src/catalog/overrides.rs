//! Parameter overrides as command lines write them: a mapping read from a parameters file,
//! then `name=value` and `name.key=value` items applied in order.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde_json::{Map, Value};

use super::{Parameters, Rendered, TemplateId, render_parameters};
use crate::error::{Error, Result};

/// One parameter override: `name=value` sets a parameter, `name.key=value` one key of a map
/// parameter (e.g. `otlpHeaders.Authorization=...`). The value is JSON when it parses as
/// JSON, else a string.
///
/// ```
/// use phoenix_generator::catalog::Override;
///
/// let item: Override = "topK=15".parse().unwrap();
/// assert_eq!(item.name(), "topK");
/// assert_eq!(item.value(), &serde_json::json!(15));
/// assert!("topK".parse::<Override>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    name: String,
    key: Option<String>,
    value: Value,
}

impl Override {
    /// Sets the parameter `name` to `value`.
    pub fn new(name: impl Into<String>, value: Value) -> Self {
        Self {
            name: name.into(),
            key: None,
            value,
        }
    }

    /// The parameter's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key of a map parameter, for `name.key=value`.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The value.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// Applies this override to a parameter mapping.
    ///
    /// # Errors
    ///
    /// [`Error::Parameter`] when `name.key=value` names a parameter that holds no mapping.
    pub fn apply(&self, map: &mut Map<String, Value>) -> Result<()> {
        match &self.key {
            Some(key) => {
                let entry = map
                    .entry(self.name.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                let Value::Object(inner) = entry else {
                    return Err(Error::Parameter {
                        field: format!("{}.{key}", self.name),
                        message: format!("`{}` is not a map parameter", self.name),
                    });
                };
                inner.insert(key.clone(), self.value.clone());
            }
            None => {
                map.insert(self.name.clone(), self.value.clone());
            }
        }
        Ok(())
    }
}

impl FromStr for Override {
    type Err = Error;

    fn from_str(item: &str) -> Result<Self> {
        let Some((path, raw)) = item.split_once('=') else {
            return Err(Error::Parameter {
                field: item.to_owned(),
                message: "expected NAME=VALUE".to_owned(),
            });
        };
        let (name, key) = match path.split_once('.') {
            Some((name, key)) if !key.is_empty() => (name, Some(key.to_owned())),
            _ => (path, None),
        };
        if name.is_empty() {
            return Err(Error::Parameter {
                field: item.to_owned(),
                message: "the name is empty (expected NAME=VALUE)".to_owned(),
            });
        }
        let value =
            serde_json::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
        Ok(Self {
            name: name.to_owned(),
            key,
            value,
        })
    }
}

impl fmt::Display for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{}.{key}={}", self.name, self.value),
            None => write!(f, "{}={}", self.name, self.value),
        }
    }
}

/// Reads a parameters file: a YAML or JSON mapping (an empty document is an empty mapping).
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be read, [`Error::Config`] naming the file when it is
/// not YAML or not a mapping.
pub fn read_parameters_file(path: &Path) -> Result<Map<String, Value>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    let value: Value = serde_yaml::from_str(&text).map_err(|e| Error::Config {
        path: path.display().to_string(),
        message: format!("not valid YAML or JSON: {e}"),
    })?;
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        _ => Err(Error::Config {
            path: path.display().to_string(),
            message: "expected a mapping of parameters".to_owned(),
        }),
    }
}

impl Parameters {
    /// Parameters of `template` from a base mapping (e.g. a parameters file, else empty) with
    /// `overrides` applied in order; missing keys take their defaults. Ranges and patterns are
    /// checked when rendering (see [`Parameters::check`]).
    ///
    /// # Errors
    ///
    /// [`Error::Parameter`] naming the field that is unknown, of the wrong type, or not a map
    /// parameter.
    pub fn from_overrides(
        template: TemplateId,
        mut base: Map<String, Value>,
        overrides: &[Override],
    ) -> Result<Self> {
        for item in overrides {
            item.apply(&mut base)?;
        }
        Self::from_map(template, &base)
    }
}

/// Renders `template` with the parameters of an optional parameters file and `overrides`.
///
/// # Errors
///
/// Everything [`read_parameters_file`], [`Parameters::from_overrides`] and
/// [`render_parameters`] refuse.
pub fn render_with_overrides(
    template: TemplateId,
    params_file: Option<&Path>,
    overrides: &[Override],
) -> Result<Rendered> {
    let base = match params_file {
        Some(path) => read_parameters_file(path)?,
        None => Map::new(),
    };
    render_parameters(Parameters::from_overrides(template, base, overrides)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(items: &[&str]) -> Vec<Override> {
        items.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn values_are_json_or_strings_and_keys_reach_maps() {
        let mut map = Map::new();
        for item in parse(&[
            "topK=15",
            "experimentId=exp-abc",
            "otlpHeaders.Authorization=Bearer x",
        ]) {
            item.apply(&mut map).unwrap();
        }
        assert_eq!(map["topK"], Value::from(15));
        assert_eq!(map["experimentId"], Value::from("exp-abc"));
        assert_eq!(map["otlpHeaders"]["Authorization"], Value::from("Bearer x"));
    }

    #[test]
    fn bad_items_are_named() {
        let e = "topK".parse::<Override>().unwrap_err().to_string();
        assert!(
            e.contains("expected NAME=VALUE") && e.contains("topK"),
            "{e}"
        );
        assert!("=1".parse::<Override>().is_err());
        let e = Parameters::from_overrides(
            TemplateId::TopK,
            Map::new(),
            &parse(&["topK=1", "topK.x=2"]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not a map parameter"), "{e}");
    }

    #[test]
    fn overrides_render_and_are_checked() {
        let e = render_with_overrides(TemplateId::TopK, None, &parse(&["topK=0"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("topK"), "{e}");
        assert!(render_with_overrides(TemplateId::TopK, None, &parse(&["topK=5"])).is_ok());
    }

    #[test]
    fn parameter_files_are_mappings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yaml");
        std::fs::write(&path, "topK: 3\n").unwrap();
        assert_eq!(read_parameters_file(&path).unwrap()["topK"], Value::from(3));
        std::fs::write(&path, "[1]\n").unwrap();
        assert!(read_parameters_file(&path).is_err());
        std::fs::write(&path, "").unwrap();
        assert!(read_parameters_file(&path).unwrap().is_empty());
    }
}
