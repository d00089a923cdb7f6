//! Request documents (JSON, or YAML for specs) parsed with every problem listed at once:
//! REST bodies and the JSON fields of gRPC messages go through [`parse`], so both transports
//! report the same field paths (an experiment spec's paths start with `spec`).

use phoenix_core::experiment::{ExperimentSpec, FieldError};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use super::{
    LoginRequest, NewUserRequest, PredictRequest, RefreshRequest, RenderRequest, ValidateRequest,
};
use crate::{Error, Result};

/// At most this many field errors are collected from one document.
const MAX_FIELD_ERRORS: usize = 64;

/// A request body type: how its field paths are named and what is checked beyond its shape.
pub(crate) trait RequestBody: DeserializeOwned + JsonSchema {
    /// Prefix of field paths in errors, e.g. `spec`.
    const ROOT: &'static str = "";
    /// Whether YAML bodies (`application/yaml`) are read too.
    const YAML: bool = false;

    /// Every invalid value, once the shape is right.
    fn check(&self) -> Vec<FieldError> {
        Vec::new()
    }
}

impl RequestBody for ExperimentSpec {
    const ROOT: &'static str = "spec";
    const YAML: bool = true;

    fn check(&self) -> Vec<FieldError> {
        // Inline configs are parsed by the validation below: refuse alias bombs first.
        let mut errors = Vec::new();
        for (path, pipeline) in [
            ("spec.baseline", &self.baseline),
            ("spec.candidate", &self.candidate),
        ] {
            if let Err(e) = check_inline(pipeline, path) {
                errors.extend(e.field_errors());
            }
        }
        if !errors.is_empty() {
            return errors;
        }
        self.validate()
            .err()
            .map(phoenix_core::experiment::ValidationErrors::into_errors)
            .unwrap_or_default()
    }
}

impl RequestBody for LoginRequest {}
impl RequestBody for RefreshRequest {}
impl RequestBody for NewUserRequest {}
impl RequestBody for RenderRequest {}
impl RequestBody for ValidateRequest {}
impl RequestBody for PredictRequest {}

/// How the body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Yaml,
}

/// Why a YAML document cannot be read.
#[derive(Debug)]
pub(crate) enum YamlProblem {
    /// Not well-formed YAML.
    Malformed(serde_yaml::Error),
    /// Anchors and aliases repeat more content than the document holds.
    Expands {
        /// The most values allowed.
        limit: usize,
    },
}

impl YamlProblem {
    /// The 400 naming the problem, at field `path`.
    pub(crate) fn into_error(self, path: &str) -> Error {
        match self {
            Self::Malformed(e) => {
                let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
                Error::invalid_field(
                    path,
                    format!("malformed YAML at line {line} column {column}: {e}"),
                )
            }
            Self::Expands { limit } => Error::invalid_field(
                path,
                format!(
                    "the YAML document expands to more than {limit} values through anchors and aliases (&name / *name); write the repeated parts out"
                ),
            ),
        }
    }
}

/// The most values a YAML document of `len` bytes may hold once its aliases are expanded:
/// a document without aliases never needs more than about two per byte, so only aliases
/// that repeat content (the "billion laughs" attack) reach it.
fn yaml_budget(len: usize) -> usize {
    len.saturating_mul(2).saturating_add(64)
}

/// Builds a JSON value from YAML, counting every value against a budget.
struct Budgeted<'b> {
    left: &'b std::cell::Cell<usize>,
    exceeded: &'b std::cell::Cell<bool>,
}

impl Budgeted<'_> {
    fn spend<E: serde::de::Error>(&self) -> std::result::Result<(), E> {
        match self.left.get().checked_sub(1) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => {
                self.exceeded.set(true);
                Err(E::custom("the document expands to too many values"))
            }
        }
    }

    fn reborrow(&self) -> Budgeted<'_> {
        Budgeted {
            left: self.left,
            exceeded: self.exceeded,
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Budgeted<'_> {
    type Value = serde_json::Value;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Budgeted<'_> {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> std::result::Result<Self::Value, E> {
        self.spend()?;
        Ok(v.into())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<Self::Value, E> {
        self.spend()?;
        Ok(v.into())
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<Self::Value, E> {
        self.spend()?;
        Ok(v.into())
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<Self::Value, E> {
        self.spend()?;
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
        self.spend()?;
        Ok(v.into())
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> std::result::Result<Self::Value, E> {
        self.spend()?;
        Ok(v.into())
    }

    fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<Self::Value, E> {
        self.spend()?;
        Ok(serde_json::Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> std::result::Result<Self::Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        self.spend()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.reborrow())? {
            items.push(item);
        }
        Ok(serde_json::Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        self.spend()?;
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.spend()?;
            let value = map.next_value_seed(self.reborrow())?;
            object.insert(key, value);
        }
        Ok(serde_json::Value::Object(object))
    }
}

/// Reads YAML into a JSON value, refusing documents whose anchors and aliases expand them
/// beyond [`yaml_budget`] values, so that a small body cannot make the server build a huge
/// one.
pub(crate) fn yaml_value(bytes: &[u8]) -> std::result::Result<serde_json::Value, YamlProblem> {
    use serde::de::DeserializeSeed;
    let limit = yaml_budget(bytes.len());
    let left = std::cell::Cell::new(limit);
    let exceeded = std::cell::Cell::new(false);
    let seed = Budgeted {
        left: &left,
        exceeded: &exceeded,
    };
    match seed.deserialize(serde_yaml::Deserializer::from_slice(bytes)) {
        Ok(value) => Ok(value),
        Err(_) if exceeded.get() => Err(YamlProblem::Expands { limit }),
        Err(e) => Err(YamlProblem::Malformed(e)),
    }
}

/// Refuses an inline config whose anchors and aliases would expand it beyond its budget,
/// before the generator parses it; errors name `path`.
pub(crate) fn check_inline(
    pipeline: &phoenix_core::experiment::PipelineRef,
    path: &str,
) -> Result<()> {
    match pipeline {
        phoenix_core::experiment::PipelineRef::Inline { config } => {
            match yaml_value(config.as_bytes()) {
                Err(problem @ YamlProblem::Expands { .. }) => {
                    Err(problem.into_error(&format!("{path}.config")))
                }
                // Malformed configs are reported by the generator with its own context.
                _ => Ok(()),
            }
        }
        phoenix_core::experiment::PipelineRef::Template { .. } => Ok(()),
    }
}

/// A field path: `root`, then `path` (as serde_path_to_error writes it), then `key`; `body`
/// when all are empty.
fn join(root: &str, path: &str, key: Option<&str>) -> String {
    let mut out = root.to_owned();
    for part in [Some(path), key].into_iter().flatten() {
        if part.is_empty() || part == "." {
            continue;
        }
        if !out.is_empty() && !part.starts_with('[') {
            out.push('.');
        }
        out.push_str(part);
    }
    if out.is_empty() {
        "body".to_owned()
    } else {
        out
    }
}

/// The key an `unknown field` or `missing field` message names.
fn quoted_field(message: &str) -> Option<&str> {
    message.split('`').nth(1)
}

/// The object at the end of `segments` in `value`.
fn object_at<'v>(
    value: &'v mut serde_json::Value,
    segments: &[&serde_path_to_error::Segment],
) -> Option<&'v mut serde_json::Map<String, serde_json::Value>> {
    use serde_path_to_error::Segment;
    let mut current = value;
    for segment in segments {
        current = match segment {
            Segment::Map { key } => current.as_object_mut()?.get_mut(key)?,
            Segment::Seq { index } => current.as_array_mut()?.get_mut(*index)?,
            Segment::Enum { .. } => current,
            Segment::Unknown => return None,
        };
    }
    current.as_object_mut()
}

/// Whether `path` ends at `key` (serde_path_to_error puts an unknown field's key on the path).
fn ends_at(path: &serde_path_to_error::Path, key: &str) -> bool {
    matches!(path.iter().next_back(), Some(serde_path_to_error::Segment::Map { key: last }) if last == key)
}

/// Removes what an error is about from `value`, so that parsing can go on to find the next
/// problem. `false` when nothing can be removed.
fn remove_offender(
    value: &mut serde_json::Value,
    path: &serde_path_to_error::Path,
    message: &str,
) -> bool {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    if message.starts_with("missing field") {
        return false;
    }
    if message.starts_with("unknown field")
        && let Some(key) = quoted_field(message)
        && !ends_at(path, key)
    {
        return object_at(value, &segments).is_some_and(|o| o.remove(key).is_some());
    }
    let Some((Segment::Map { key }, parent)) = segments.split_last() else {
        return false;
    };
    object_at(value, parent).is_some_and(|o| o.remove(key.as_str()).is_some())
}

/// Parses a body: the document must be well-formed; then every shape error (unknown
/// fields, wrong types) is collected by removing the offending field and parsing again, and
/// once the shape is right, every invalid value is added.
pub(crate) fn parse<T: RequestBody>(bytes: &[u8], format: Format) -> Result<T> {
    parse_at(bytes, format, T::ROOT, T::check)
}

/// [`parse`] with field paths under `root` (e.g. the gRPC field the document came in) and
/// `check` for the values once the shape is right.
pub(crate) fn parse_at<T: DeserializeOwned>(
    bytes: &[u8],
    format: Format,
    root: &str,
    check: impl FnOnce(&T) -> Vec<FieldError>,
) -> Result<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::invalid_field(
            join(root, "", None),
            "the document is empty: send a JSON document",
        ));
    }
    let mut value: serde_json::Value = match format {
        Format::Json => serde_json::from_slice(bytes).map_err(|e| {
            Error::invalid_field(
                join(root, "", None),
                format!(
                    "malformed JSON at line {} column {}: {e}",
                    e.line(),
                    e.column()
                ),
            )
        })?,
        Format::Yaml => yaml_value(bytes).map_err(|e| e.into_error(&join(root, "", None)))?,
    };
    let mut errors: Vec<FieldError> = Vec::new();
    loop {
        match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(parsed) => {
                errors.extend(check(&parsed));
                if errors.is_empty() {
                    return Ok(parsed);
                }
                break;
            }
            Err(error) => {
                let path = error.path().clone();
                let message = error.inner().to_string();
                let removed =
                    errors.len() < MAX_FIELD_ERRORS && remove_offender(&mut value, &path, &message);
                let missing = message.starts_with("missing field");
                let key = (missing || message.starts_with("unknown field"))
                    .then(|| quoted_field(&message))
                    .flatten()
                    .filter(|key| !ends_at(&path, key));
                let at = join(root, &path.to_string(), key);
                // A required field removed for being invalid is reported once, not again as
                // missing.
                let duplicate = missing && errors.iter().any(|e| e.path == at);
                if !duplicate {
                    errors.push(FieldError { path: at, message });
                }
                if !removed {
                    break;
                }
            }
        }
    }
    let n = errors.len();
    Err(Error::InvalidInput {
        message: format!(
            "the request body has {n} invalid field{}",
            if n == 1 { "" } else { "s" }
        ),
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of<T: RequestBody + std::fmt::Debug>(text: &str) -> Vec<String> {
        parse::<T>(text.as_bytes(), Format::Json)
            .unwrap_err()
            .field_errors()
            .into_iter()
            .map(|e| e.path)
            .collect()
    }

    #[test]
    fn every_unknown_field_and_invalid_value_is_listed() {
        let paths = errors_of::<ExperimentSpec>(
            r#"{"name": "X", "bogus": 1, "baseline": {"template": "process-baseline-v1"},
                "candidate": {"template": "process-topk-v1"},
                "successCriteria": {"minCardinalityReduction": 7, "extra": true},
                "workload": {"processes": "many"}}"#,
        );
        assert!(paths.contains(&"spec.bogus".to_owned()), "{paths:?}");
        assert!(
            paths.contains(&"spec.successCriteria.extra".to_owned()),
            "{paths:?}"
        );
        assert!(
            paths.iter().any(|p| p.starts_with("spec.workload")),
            "{paths:?}"
        );
    }

    #[test]
    fn valid_shapes_get_their_values_checked() {
        let paths = errors_of::<ExperimentSpec>(
            r#"{"name": "X", "baseline": {"template": "process-baseline-v1"},
                "candidate": {"template": "process-topk-v1"},
                "successCriteria": {"minCardinalityReduction": 7}}"#,
        );
        assert!(paths.contains(&"spec.name".to_owned()), "{paths:?}");
        assert!(
            paths.contains(&"spec.successCriteria.minCardinalityReduction".to_owned()),
            "{paths:?}"
        );
    }

    #[test]
    fn malformed_documents_name_the_position() {
        let err = parse::<LoginRequest>(b"{\"username\": ", Format::Json).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        let err = parse::<LoginRequest>(b"  ", Format::Json).unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
        let paths = errors_of::<LoginRequest>(r#"{"username": "a"}"#);
        assert_eq!(paths, ["password"]);
        let paths = errors_of::<LoginRequest>(r#"{"username": 1, "password": "p"}"#);
        assert_eq!(paths, ["username"], "reported once, not again as missing");
    }

    #[test]
    fn yaml_alias_bombs_are_refused() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for level in b'b'..=b'j' {
            let prev = char::from(level - 1);
            let aliases = vec![format!("*{prev}"); 10].join(", ");
            bomb.push_str(&format!(
                "{}: &{} [{aliases}]\n",
                char::from(level),
                char::from(level)
            ));
        }
        let err = parse::<ExperimentSpec>(bomb.as_bytes(), Format::Yaml).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("anchors and aliases"), "{err}");
        // A small alias is harmless and read.
        let spec: ExperimentSpec = parse(
            b"name: &n yaml-alias\ndescription: *n\nbaseline: {template: process-baseline-v1}\ncandidate: {template: process-topk-v1}\n",
            Format::Yaml,
        )
        .unwrap();
        assert_eq!(spec.description, "yaml-alias");
        // An inline config bomb inside a JSON spec is refused before it is parsed.
        let pipeline = phoenix_core::experiment::PipelineRef::Inline { config: bomb };
        let err = check_inline(&pipeline, "pipeline").unwrap_err();
        assert_eq!(err.field_errors()[0].path, "pipeline.config");
    }

    #[test]
    fn yaml_specs_are_read() {
        let spec: ExperimentSpec = parse(
            b"name: yaml-trial\nbaseline: {template: process-baseline-v1}\ncandidate: {template: process-topk-v1}\n",
            Format::Yaml,
        )
        .unwrap();
        assert_eq!(spec.name, "yaml-trial");
    }
}
