//! Component identities: `type[/name]` ids, the supported component types, config sections and
//! pipeline ids.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A top-level section of a collector config that defines components.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    /// `receivers`.
    Receivers,
    /// `processors`.
    Processors,
    /// `exporters`.
    Exporters,
    /// `connectors`.
    Connectors,
    /// `extensions`.
    Extensions,
}

impl Section {
    /// The YAML key of the section.
    pub const fn key(self) -> &'static str {
        match self {
            Self::Receivers => "receivers",
            Self::Processors => "processors",
            Self::Exporters => "exporters",
            Self::Connectors => "connectors",
            Self::Extensions => "extensions",
        }
    }

    /// The component types of this section that the config model supports.
    pub fn supported(self) -> Vec<ComponentKind> {
        ComponentKind::ALL
            .into_iter()
            .filter(|k| k.sections().contains(&self))
            .collect()
    }

    /// The supported type names of this section, comma-separated, for error messages.
    pub fn supported_list(self) -> String {
        self.supported()
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A component type the config model knows (the part of an id before `/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ComponentKind {
    /// `hostmetrics` receiver.
    HostMetrics,
    /// `otlp` receiver or exporter.
    Otlp,
    /// `memory_limiter` processor.
    MemoryLimiter,
    /// `batch` processor.
    Batch,
    /// `resource` processor.
    Resource,
    /// `attributes` processor.
    Attributes,
    /// `filter` processor.
    Filter,
    /// `transform` processor.
    Transform,
    /// `groupbyattrs` processor.
    GroupByAttrs,
    /// `cumulativetodelta` processor.
    CumulativeToDelta,
    /// `metricstransform` processor.
    MetricsTransform,
    /// `otlphttp` exporter.
    OtlpHttp,
    /// `prometheus` exporter.
    Prometheus,
    /// `debug` exporter.
    Debug,
    /// `file` exporter.
    File,
    /// `health_check` extension.
    HealthCheck,
    /// `forward` connector.
    Forward,
}

impl ComponentKind {
    /// Every supported type.
    pub const ALL: [Self; 17] = [
        Self::HostMetrics,
        Self::Otlp,
        Self::MemoryLimiter,
        Self::Batch,
        Self::Resource,
        Self::Attributes,
        Self::Filter,
        Self::Transform,
        Self::GroupByAttrs,
        Self::CumulativeToDelta,
        Self::MetricsTransform,
        Self::OtlpHttp,
        Self::Prometheus,
        Self::Debug,
        Self::File,
        Self::HealthCheck,
        Self::Forward,
    ];

    /// The type name as written in a config.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::HostMetrics => "hostmetrics",
            Self::Otlp => "otlp",
            Self::MemoryLimiter => "memory_limiter",
            Self::Batch => "batch",
            Self::Resource => "resource",
            Self::Attributes => "attributes",
            Self::Filter => "filter",
            Self::Transform => "transform",
            Self::GroupByAttrs => "groupbyattrs",
            Self::CumulativeToDelta => "cumulativetodelta",
            Self::MetricsTransform => "metricstransform",
            Self::OtlpHttp => "otlphttp",
            Self::Prometheus => "prometheus",
            Self::Debug => "debug",
            Self::File => "file",
            Self::HealthCheck => "health_check",
            Self::Forward => "forward",
        }
    }

    /// The sections in which this type can be defined.
    pub const fn sections(self) -> &'static [Section] {
        match self {
            Self::HostMetrics => &[Section::Receivers],
            Self::Otlp => &[Section::Receivers, Section::Exporters],
            Self::MemoryLimiter
            | Self::Batch
            | Self::Resource
            | Self::Attributes
            | Self::Filter
            | Self::Transform
            | Self::GroupByAttrs
            | Self::CumulativeToDelta
            | Self::MetricsTransform => &[Section::Processors],
            Self::OtlpHttp | Self::Prometheus | Self::Debug | Self::File => &[Section::Exporters],
            Self::HealthCheck => &[Section::Extensions],
            Self::Forward => &[Section::Connectors],
        }
    }

    /// The type with this name, if supported.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for ComponentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a component or pipeline id does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdError(String);

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IdError {}

/// Splits `type[/name]`, refusing an empty type or name.
fn split_id(text: &str) -> Result<(&str, Option<&str>), IdError> {
    let (kind, name) = match text.split_once('/') {
        Some((kind, name)) => (kind, Some(name)),
        None => (text, None),
    };
    if kind.trim().is_empty() {
        return Err(IdError(format!("`{text}`: the component type is empty")));
    }
    if kind != kind.trim() {
        return Err(IdError(format!(
            "`{text}`: the component type has surrounding spaces"
        )));
    }
    if name.is_some_and(|n| n.trim().is_empty()) {
        return Err(IdError(format!("`{text}`: the name after `/` is empty")));
    }
    Ok((kind, name))
}

/// A component id such as `filter/critical`: a type and an optional name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ComponentId {
    /// The component type.
    pub kind: ComponentKind,
    /// The name after `/`, if any.
    pub name: Option<String>,
}

impl ComponentId {
    /// An id without a name, e.g. `batch`.
    pub const fn new(kind: ComponentKind) -> Self {
        Self { kind, name: None }
    }

    /// An id with a name, e.g. `filter/critical`.
    pub fn named(kind: ComponentKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: Some(name.into()),
        }
    }

    /// Parses an id defined in (or referenced from) `section`; an unknown or misplaced type is an
    /// error naming the id and listing the section's supported types.
    pub fn parse_in(text: &str, section: Section) -> Result<Self, IdError> {
        let (kind, name) = split_id(text)?;
        let Some(kind) = ComponentKind::from_name(kind) else {
            return Err(IdError(format!(
                "{section}.{text}: unknown component type `{kind}`; supported {section}: {}",
                section.supported_list()
            )));
        };
        if !kind.sections().contains(&section) {
            return Err(IdError(format!(
                "{section}.{text}: `{kind}` is not one of the {section}; supported {section}: {}",
                section.supported_list()
            )));
        }
        Ok(Self {
            kind,
            name: name.map(str::to_owned),
        })
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{}/{name}", self.kind),
            None => f.write_str(self.kind.as_str()),
        }
    }
}

impl FromStr for ComponentId {
    type Err = IdError;

    fn from_str(text: &str) -> Result<Self, IdError> {
        let (kind, name) = split_id(text)?;
        let kind = ComponentKind::from_name(kind).ok_or_else(|| {
            let all = ComponentKind::ALL
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            IdError(format!(
                "`{text}`: unknown component type `{kind}`; supported types: {all}"
            ))
        })?;
        Ok(Self {
            kind,
            name: name.map(str::to_owned),
        })
    }
}

impl Ord for ComponentId {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.kind.as_str(), self.name.as_deref())
            .cmp(&(other.kind.as_str(), other.name.as_deref()))
    }
}

impl PartialOrd for ComponentId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for ComponentId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ComponentId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ComponentId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a component id such as `filter/critical`")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ComponentId, E> {
                text.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// The telemetry signal of a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// `metrics`: the only signal Phoenix generates and emulates.
    Metrics,
    /// `traces`.
    Traces,
    /// `logs`.
    Logs,
}

impl Signal {
    /// The signal's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Metrics => "metrics",
            Self::Traces => "traces",
            Self::Logs => "logs",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A pipeline id such as `metrics` or `metrics/aggregated`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PipelineId {
    /// The pipeline's signal.
    pub signal: Signal,
    /// The name after `/`, if any.
    pub name: Option<String>,
}

impl PipelineId {
    /// The `metrics` pipeline.
    pub const fn metrics() -> Self {
        Self {
            signal: Signal::Metrics,
            name: None,
        }
    }

    /// A named metrics pipeline, `metrics/<name>`.
    pub fn named_metrics(name: impl Into<String>) -> Self {
        Self {
            signal: Signal::Metrics,
            name: Some(name.into()),
        }
    }
}

impl fmt::Display for PipelineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{}/{name}", self.signal),
            None => f.write_str(self.signal.as_str()),
        }
    }
}

impl FromStr for PipelineId {
    type Err = IdError;

    fn from_str(text: &str) -> Result<Self, IdError> {
        let (signal, name) = split_id(text)?;
        let signal = match signal {
            "metrics" => Signal::Metrics,
            "traces" => Signal::Traces,
            "logs" => Signal::Logs,
            other => {
                return Err(IdError(format!(
                    "`{text}`: unknown signal `{other}`; expected metrics, traces or logs"
                )));
            }
        };
        Ok(Self {
            signal,
            name: name.map(str::to_owned),
        })
    }
}

impl Ord for PipelineId {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.signal.as_str(), self.name.as_deref())
            .cmp(&(other.signal.as_str(), other.name.as_deref()))
    }
}

impl PartialOrd for PipelineId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for PipelineId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PipelineId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = PipelineId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a pipeline id such as `metrics/aggregated`")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<PipelineId, E> {
                text.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        for text in [
            "filter/critical",
            "batch",
            "otlphttp/backend",
            "forward/agg",
        ] {
            let id: ComponentId = text.parse().unwrap();
            assert_eq!(id.to_string(), text);
        }
        let p: PipelineId = "metrics/aggregated".parse().unwrap();
        assert_eq!(p, PipelineId::named_metrics("aggregated"));
        assert_eq!(p.to_string(), "metrics/aggregated");
    }

    #[test]
    fn unknown_type_names_the_id_and_lists_supported() {
        let err = ComponentId::parse_in("routing/x", Section::Processors).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("processors.routing/x"), "{text}");
        assert!(text.contains("memory_limiter"), "{text}");
        let err = ComponentId::parse_in("hostmetrics", Section::Exporters).unwrap_err();
        assert!(err.to_string().contains("not one of the exporters"));
        assert!("filter/".parse::<ComponentId>().is_err());
        assert!("/x".parse::<ComponentId>().is_err());
    }

    #[test]
    fn ids_sort_by_text() {
        let mut ids: Vec<ComponentId> = ["transform/b", "batch", "filter/a", "transform/a"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        ids.sort();
        let sorted: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(sorted, ["batch", "filter/a", "transform/a", "transform/b"]);
    }
}
