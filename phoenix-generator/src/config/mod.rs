//! The typed model of the collector configuration subset that Phoenix writes and reads.
//!
//! A [`Config`] has the collector's top-level sections. Component maps are keyed by
//! [`ComponentId`] (`type[/name]`) and hold one typed struct per supported component type; a type
//! outside the supported set is refused with an error naming the component id and listing the
//! supported types of that section. Typed structs refuse unknown keys, as the collector does.
//! Output is deterministic: maps are ordered (`BTreeMap`) and struct fields keep their declared
//! order, so rendering the same config twice gives byte-identical YAML.
//!
//! ```
//! use phoenix_generator::config::{ComponentId, ComponentKind, Config, Processor};
//!
//! let yaml = r#"
//! receivers:
//!   hostmetrics:
//!     collection_interval: 10s
//!     scrapers:
//!       process:
//!         mute_process_name_error: true
//! processors:
//!   filter/critical:
//!     error_mode: ignore
//!     metrics:
//!       datapoint:
//!         - 'not IsMatch(resource.attributes["process.executable.name"], "^postgres$")'
//! exporters:
//!   debug: {}
//! service:
//!   pipelines:
//!     metrics:
//!       receivers: [hostmetrics]
//!       processors: [filter/critical]
//!       exporters: [debug]
//! "#;
//! let config = Config::from_yaml(yaml)?;
//! let id = ComponentId::named(ComponentKind::Filter, "critical");
//! assert!(matches!(config.processors.get(&id), Some(Processor::Filter(_))));
//! // Rendering and parsing again gives the same config.
//! assert_eq!(Config::from_yaml(&config.to_yaml()?)?, config);
//! # Ok::<(), phoenix_generator::Error>(())
//! ```

mod component;
mod duration;
mod exporters;
mod processors;
mod receivers;
mod serde_helpers;
mod service;

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use component::{ComponentId, ComponentKind, IdError, PipelineId, Section, Signal};
pub use duration::{DurationError, GoDuration};
pub use exporters::{
    ClientTls, Connector, DebugExporter, Enabled, Exporter, Extension, FileExporter, FileFormat,
    FileRotation, ForwardConnector, HealthCheckExtension, OtlpExporter, OtlpHttpEncoding,
    OtlpHttpExporter, PrometheusExporter, RetryOnFailure, SendingQueue, Verbosity, port_of,
};
pub use processors::{
    AggregationType, AttributeAction, AttributeActionKind, AttributeValue, AttributesMatch,
    AttributesProcessor, BatchProcessor, ConditionGroup, ContextConditions, ContextStatements,
    CumulativeToDeltaProcessor, DeltaMatch, DeltaMetricType, ErrorMode, FilterMetrics,
    FilterProcessor, GroupByAttrsProcessor, InitialValue, KeyValueMatch, MemoryLimiterProcessor,
    MetricMatchProperties, MetricsTransform, MetricsTransformOperation, MetricsTransformProcessor,
    OperationAction, OttlContext, Processor, ResourceProcessor, StatementGroup, SubmatchCase,
    TransformAction, TransformProcessor, ValueAction,
};
pub use receivers::{
    HostMetricsReceiver, HostMetricsScrapers, MatchType, OpaqueScraper, OtlpProtocols,
    OtlpReceiver, ProcessMatch, ProcessResourceAttribute, ProcessScraper, ProcessScraperMetric,
    Receiver, ServerEndpoint, Toggle,
};
pub use service::{
    LogLevel, MetricReader, Pipeline, PrometheusReader, PullExporter, PullReader, Service,
    Telemetry, TelemetryLevel, TelemetryLogs, TelemetryMetrics,
};

use crate::error::{Error, Result};

/// A collector configuration (the supported subset).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `receivers`.
    #[serde(default, deserialize_with = "section")]
    pub receivers: BTreeMap<ComponentId, Receiver>,
    /// `processors`.
    #[serde(
        default,
        deserialize_with = "section",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub processors: BTreeMap<ComponentId, Processor>,
    /// `exporters`.
    #[serde(default, deserialize_with = "section")]
    pub exporters: BTreeMap<ComponentId, Exporter>,
    /// `connectors`.
    #[serde(
        default,
        deserialize_with = "section",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub connectors: BTreeMap<ComponentId, Connector>,
    /// `extensions`.
    #[serde(
        default,
        deserialize_with = "section",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub extensions: BTreeMap<ComponentId, Extension>,
    /// `service`.
    #[serde(default)]
    pub service: Service,
}

impl Config {
    /// Parses collector YAML. Errors carry the line, column and config path of the problem.
    pub fn from_yaml(text: &str) -> Result<Config> {
        let deserializer = serde_yaml::Deserializer::from_str(text);
        serde_path_to_error::deserialize(deserializer).map_err(yaml_error)
    }

    /// Reads and parses a collector YAML file. Errors name the file, then the line, column
    /// and config path of the problem.
    pub fn from_file(path: &std::path::Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml(&text).map_err(|e| Error::Config {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Renders deterministic collector YAML.
    pub fn to_yaml(&self) -> Result<String> {
        serde_yaml::to_string(self).map_err(|e| Error::Config {
            path: String::new(),
            message: format!("cannot render YAML: {e}"),
        })
    }

    /// The receiver with this id.
    pub fn receiver(&self, id: &ComponentId) -> Option<&Receiver> {
        self.receivers.get(id)
    }

    /// The processor with this id.
    pub fn processor(&self, id: &ComponentId) -> Option<&Processor> {
        self.processors.get(id)
    }

    /// The exporter with this id.
    pub fn exporter(&self, id: &ComponentId) -> Option<&Exporter> {
        self.exporters.get(id)
    }

    /// The connector with this id.
    pub fn connector(&self, id: &ComponentId) -> Option<&Connector> {
        self.connectors.get(id)
    }
}

/// Turns a path-tracking YAML error into [`Error::Yaml`] with line, column and path.
fn yaml_error(error: serde_path_to_error::Error<serde_yaml::Error>) -> Error {
    let path = error.path().to_string();
    let inner = error.into_inner();
    let (line, column) = inner.location().map_or((0, 0), |l| (l.line(), l.column()));
    let mut message = inner.to_string();
    if let Some(at) = message.rfind(" at line ") {
        message.truncate(at);
    }
    // serde_yaml prefixes its own, coarser path; keep only the precise one.
    if let Some((head, rest)) = message.split_once(": ")
        && !head.contains(' ')
        && (head == "." || path.starts_with(head))
    {
        message = rest.to_owned();
    }
    let message = if path.is_empty() || path == "." {
        message
    } else {
        format!("{path}: {message}")
    };
    Error::Yaml {
        line,
        column,
        message,
    }
}

/// A component definition that lives in one section and is chosen by the id's type.
trait SectionEntry: Sized {
    const SECTION: Section;
    fn deserialize_value<'de, A: MapAccess<'de>>(
        kind: ComponentKind,
        map: &mut A,
    ) -> std::result::Result<Self, A::Error>;
}

/// The settings of one component; a key with no settings (`batch:`) means the defaults.
fn settings<'de, A, T>(map: &mut A) -> std::result::Result<T, A::Error>
where
    A: MapAccess<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(map.next_value::<Option<T>>()?.unwrap_or_default())
}

fn misplaced<E: de::Error>(kind: ComponentKind, section: Section) -> E {
    E::custom(format!(
        "`{kind}` is not one of the {section}; supported {section}: {}",
        section.supported_list()
    ))
}

impl SectionEntry for Receiver {
    const SECTION: Section = Section::Receivers;
    fn deserialize_value<'de, A: MapAccess<'de>>(
        kind: ComponentKind,
        map: &mut A,
    ) -> std::result::Result<Self, A::Error> {
        match kind {
            ComponentKind::HostMetrics => settings(map).map(Self::HostMetrics),
            ComponentKind::Otlp => settings(map).map(Self::Otlp),
            other => Err(misplaced(other, Self::SECTION)),
        }
    }
}

impl SectionEntry for Processor {
    const SECTION: Section = Section::Processors;
    fn deserialize_value<'de, A: MapAccess<'de>>(
        kind: ComponentKind,
        map: &mut A,
    ) -> std::result::Result<Self, A::Error> {
        match kind {
            ComponentKind::MemoryLimiter => settings(map).map(Self::MemoryLimiter),
            ComponentKind::Batch => settings(map).map(Self::Batch),
            ComponentKind::Resource => settings(map).map(Self::Resource),
            ComponentKind::Attributes => settings(map).map(Self::Attributes),
            ComponentKind::Filter => settings(map).map(Self::Filter),
            ComponentKind::Transform => settings(map).map(Self::Transform),
            ComponentKind::GroupByAttrs => settings(map).map(Self::GroupByAttrs),
            ComponentKind::CumulativeToDelta => settings(map).map(Self::CumulativeToDelta),
            ComponentKind::MetricsTransform => settings(map).map(Self::MetricsTransform),
            other => Err(misplaced(other, Self::SECTION)),
        }
    }
}

impl SectionEntry for Exporter {
    const SECTION: Section = Section::Exporters;
    fn deserialize_value<'de, A: MapAccess<'de>>(
        kind: ComponentKind,
        map: &mut A,
    ) -> std::result::Result<Self, A::Error> {
        match kind {
            ComponentKind::Otlp => settings(map).map(Self::Otlp),
            ComponentKind::OtlpHttp => settings(map).map(Self::OtlpHttp),
            ComponentKind::Prometheus => settings(map).map(Self::Prometheus),
            ComponentKind::Debug => settings(map).map(Self::Debug),
            ComponentKind::File => settings(map).map(Self::File),
            other => Err(misplaced(other, Self::SECTION)),
        }
    }
}

impl SectionEntry for Extension {
    const SECTION: Section = Section::Extensions;
    fn deserialize_value<'de, A: MapAccess<'de>>(
        kind: ComponentKind,
        map: &mut A,
    ) -> std::result::Result<Self, A::Error> {
        match kind {
            ComponentKind::HealthCheck => settings(map).map(Self::HealthCheck),
            other => Err(misplaced(other, Self::SECTION)),
        }
    }
}

impl SectionEntry for Connector {
    const SECTION: Section = Section::Connectors;
    fn deserialize_value<'de, A: MapAccess<'de>>(
        kind: ComponentKind,
        map: &mut A,
    ) -> std::result::Result<Self, A::Error> {
        match kind {
            ComponentKind::Forward => settings(map).map(Self::Forward),
            other => Err(misplaced(other, Self::SECTION)),
        }
    }
}

struct SectionVisitor<T>(PhantomData<T>);

impl<'de, T: SectionEntry> Visitor<'de> for SectionVisitor<T> {
    type Value = BTreeMap<ComponentId, T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a mapping of {} by id", T::SECTION)
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }

    fn visit_none<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(id) = map.next_key_seed(KeySeed(T::SECTION))? {
            if out.contains_key(&id) {
                return Err(de::Error::custom(format!(
                    "{}.{id} is defined twice",
                    T::SECTION
                )));
            }
            let value = T::deserialize_value(id.kind, &mut map)?;
            out.insert(id, value);
        }
        Ok(out)
    }
}

/// Parses a component id in a section, so that an unknown type is reported at the key.
struct KeySeed(Section);

impl<'de> de::DeserializeSeed<'de> for KeySeed {
    type Value = ComponentId;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<ComponentId, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = ComponentId;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a component id such as `filter/critical`")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> std::result::Result<ComponentId, E> {
        ComponentId::parse_in(text, self.0).map_err(E::custom)
    }
}

fn section<'de, D, T>(deserializer: D) -> std::result::Result<BTreeMap<ComponentId, T>, D::Error>
where
    D: Deserializer<'de>,
    T: SectionEntry,
{
    deserializer.deserialize_any(SectionVisitor(PhantomData))
}

macro_rules! component_enum {
    ($ty:ident { $($variant:ident => $kind:ident),+ $(,)? }) => {
        impl $ty {
            /// The component type.
            pub const fn kind(&self) -> ComponentKind {
                match self {
                    $(Self::$variant(_) => ComponentKind::$kind,)+
                }
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                match self {
                    $(Self::$variant(inner) => inner.serialize(s),)+
                }
            }
        }
    };
}

component_enum!(Receiver {
    HostMetrics => HostMetrics,
    Otlp => Otlp,
});
component_enum!(Processor {
    MemoryLimiter => MemoryLimiter,
    Batch => Batch,
    Resource => Resource,
    Attributes => Attributes,
    Filter => Filter,
    Transform => Transform,
    GroupByAttrs => GroupByAttrs,
    CumulativeToDelta => CumulativeToDelta,
    MetricsTransform => MetricsTransform,
});
component_enum!(Exporter {
    Otlp => Otlp,
    OtlpHttp => OtlpHttp,
    Prometheus => Prometheus,
    Debug => Debug,
    File => File,
});
component_enum!(Extension {
    HealthCheck => HealthCheck,
});
component_enum!(Connector { Forward => Forward });

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = include_str!("../../tests/fixtures/config/full.yaml");

    #[test]
    fn full_config_round_trips() {
        let config = Config::from_yaml(FULL).unwrap();
        assert_eq!(config.receivers.len(), 2);
        assert_eq!(config.processors.len(), 11);
        assert_eq!(config.exporters.len(), 5);
        let yaml = config.to_yaml().unwrap();
        let again = Config::from_yaml(&yaml).unwrap();
        assert_eq!(again, config);
        assert_eq!(again.to_yaml().unwrap(), yaml, "rendering is deterministic");
    }

    #[test]
    fn empty_settings_mean_defaults() {
        let config = Config::from_yaml(
            "receivers:\n  otlp:\n    protocols:\n      grpc:\nprocessors:\n  batch:\nexporters:\n  debug:\nservice:\n  pipelines: {}\n",
        )
        .unwrap();
        let Some(Receiver::Otlp(otlp)) =
            config.receivers.get(&ComponentId::new(ComponentKind::Otlp))
        else {
            panic!("otlp receiver missing");
        };
        assert_eq!(otlp.protocols.grpc, Some(ServerEndpoint::default()));
        assert_eq!(otlp.protocols.http, None);
        assert!(matches!(
            config.processor(&ComponentId::new(ComponentKind::Batch)),
            Some(Processor::Batch(b)) if *b == BatchProcessor::default()
        ));
    }

    #[test]
    fn unknown_component_type_names_the_id_and_the_line() {
        let err = Config::from_yaml("processors:\n  batch: {}\n  routing/x: {}\n").unwrap_err();
        let Error::Yaml { line, message, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(*line, 3, "{err}");
        assert!(message.contains("routing/x"), "{message}");
        assert!(message.contains("memory_limiter"), "{message}");
    }

    #[test]
    fn unknown_key_names_the_path_and_line() {
        let yaml = "processors:\n  filter/a:\n    metrics:\n      datapont: []\n";
        let err = Config::from_yaml(yaml).unwrap_err();
        let Error::Yaml { line, message, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(*line, 4, "{err}");
        assert!(message.contains("processors.filter/a.metrics"), "{message}");
        assert!(message.contains("datapont"), "{message}");
    }

    #[test]
    fn malformed_yaml_gives_line_and_column() {
        let err = Config::from_yaml("receivers:\n  hostmetrics: [\n").unwrap_err();
        let Error::Yaml { line, column, .. } = err else {
            panic!("{err}");
        };
        assert!(line >= 2, "line {line}");
        assert!(column >= 1);
    }

    #[test]
    fn removed_telemetry_address_is_refused() {
        let yaml = "service:\n  telemetry:\n    metrics:\n      address: 0.0.0.0:8888\n";
        let err = Config::from_yaml(yaml).unwrap_err().to_string();
        assert!(err.contains("address"), "{err}");
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn bad_duration_and_metric_are_named() {
        let err = Config::from_yaml("receivers:\n  hostmetrics:\n    collection_interval: 10\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("collection_interval"), "{err}");
        let yaml = "receivers:\n  hostmetrics:\n    scrapers:\n      process:\n        metrics:\n          process.cpu.tme: {enabled: true}\n";
        let err = Config::from_yaml(yaml).unwrap_err().to_string();
        assert!(err.contains("process.cpu.tme"), "{err}");
        assert!(err.contains("line 6"), "{err}");
    }

    #[test]
    fn transform_statements_flat_and_grouped() {
        let yaml = r#"
processors:
  transform:
    error_mode: ignore
    metric_statements:
      - set(resource.attributes["a"], "b")
      - context: datapoint
        conditions: ['metric.name == "x"']
        statements: ['set(attributes["k"], "v")']
"#;
        let config = Config::from_yaml(yaml).unwrap();
        let Some(Processor::Transform(t)) =
            config.processor(&ComponentId::new(ComponentKind::Transform))
        else {
            panic!("transform missing");
        };
        assert!(
            matches!(&t.metric_statements[0], StatementGroup::Flat(s) if s.starts_with("set("))
        );
        assert!(matches!(
            &t.metric_statements[1],
            StatementGroup::Grouped(g) if g.context == Some(OttlContext::Datapoint) && g.conditions.len() == 1
        ));
        let again = Config::from_yaml(&config.to_yaml().unwrap()).unwrap();
        assert_eq!(again, config);
    }
}
