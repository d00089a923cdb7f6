//! Receivers: `hostmetrics` (with the `process` scraper) and `otlp`.

use std::collections::BTreeMap;
use std::fmt;

use phoenix_core::telemetry::ProcessMetric;
use phoenix_core::telemetry::schema::ResourceAttribute;
use serde::{Deserialize, Serialize};

use super::duration::GoDuration;
use super::serde_helpers::{is_false, present};

/// A receiver definition.
// A config holds a handful of receivers; boxing the large variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Receiver {
    /// `hostmetrics`.
    HostMetrics(HostMetricsReceiver),
    /// `otlp`.
    Otlp(OtlpReceiver),
}

/// The `hostmetrics` receiver.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostMetricsReceiver {
    /// How often to scrape (collector default `1m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_interval: Option<GoDuration>,
    /// Delay before the first scrape (collector default `1s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay: Option<GoDuration>,
    /// Scrape timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
    /// Root of the host filesystem, e.g. `/hostfs` when running in a container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_path: Option<String>,
    /// The scrapers.
    #[serde(default)]
    pub scrapers: HostMetricsScrapers,
}

/// The `scrapers` of `hostmetrics`.
///
/// Only the `process` scraper is modelled in detail; the others emit host-level metrics that
/// Phoenix neither generates nor emulates, and are kept as opaque YAML so that user configs that
/// enable them still parse and render unchanged.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostMetricsScrapers {
    /// The per-process scraper.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub process: Option<ProcessScraper>,
    /// `cpu` (opaque).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub cpu: Option<OpaqueScraper>,
    /// `disk` (opaque).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub disk: Option<OpaqueScraper>,
    /// `filesystem` (opaque).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub filesystem: Option<OpaqueScraper>,
    /// `load` (opaque).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub load: Option<OpaqueScraper>,
    /// `memory` (opaque).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub memory: Option<OpaqueScraper>,
    /// `network` (opaque).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub network: Option<OpaqueScraper>,
    /// `paging` (opaque).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub paging: Option<OpaqueScraper>,
    /// `processes` (opaque).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub processes: Option<OpaqueScraper>,
    /// `system` (opaque).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub system: Option<OpaqueScraper>,
}

/// The settings of a scraper that the model does not interpret, kept as written.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OpaqueScraper(pub serde_yaml::Mapping);

/// The `process` scraper of `hostmetrics`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessScraper {
    /// Only processes whose executable name matches are scraped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<ProcessMatch>,
    /// Processes whose executable name matches are not scraped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<ProcessMatch>,
    /// Mute every per-process read error.
    #[serde(default, skip_serializing_if = "is_false")]
    pub mute_process_all_errors: bool,
    /// Mute errors reading a process name.
    #[serde(default, skip_serializing_if = "is_false")]
    pub mute_process_name_error: bool,
    /// Mute errors reading a process executable path.
    #[serde(default, skip_serializing_if = "is_false")]
    pub mute_process_exe_error: bool,
    /// Mute errors reading process I/O counters.
    #[serde(default, skip_serializing_if = "is_false")]
    pub mute_process_io_error: bool,
    /// Mute errors resolving a process owner.
    #[serde(default, skip_serializing_if = "is_false")]
    pub mute_process_user_error: bool,
    /// Mute errors reading a process cgroup.
    #[serde(default, skip_serializing_if = "is_false")]
    pub mute_process_cgroup_error: bool,
    /// Minimum process age before it is scraped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_process_delay: Option<GoDuration>,
    /// Per-metric switches.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<ProcessScraperMetric, Toggle>,
    /// Per-resource-attribute switches.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_attributes: BTreeMap<ProcessResourceAttribute, Toggle>,
}

impl ProcessScraper {
    /// Whether `metric` is emitted, taking the scraper's defaults into account.
    pub fn metric_enabled(&self, metric: ProcessScraperMetric) -> bool {
        self.metrics
            .get(&metric)
            .map_or(metric.enabled_by_default(), |t| t.enabled)
    }

    /// Whether `attribute` is written on resources (all are on unless switched off, except
    /// `process.cgroup`).
    pub fn resource_attribute_enabled(&self, attribute: ProcessResourceAttribute) -> bool {
        self.resource_attributes
            .get(&attribute)
            .map_or(attribute.enabled_by_default(), |t| t.enabled)
    }
}

/// An include/exclude filter on process executable names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessMatch {
    /// Names or patterns.
    #[serde(default)]
    pub names: Vec<String>,
    /// How `names` are matched.
    pub match_type: MatchType,
}

/// `strict` or `regexp` matching, as the collector's filter sets do it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchType {
    /// Exact string equality.
    Strict,
    /// Go RE2 regular expression, unanchored.
    Regexp,
}

/// `{enabled: bool}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Toggle {
    /// Whether the item is on.
    pub enabled: bool,
}

impl Toggle {
    /// `{enabled: true}`.
    pub const ON: Self = Self { enabled: true };
    /// `{enabled: false}`.
    pub const OFF: Self = Self { enabled: false };
}

macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident => $text:literal, $default:literal;)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in the collector's documentation order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The name as written in a config.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// Whether the scraper enables it when the config says nothing.
            pub const fn enabled_by_default(self) -> bool {
                match self {
                    $(Self::$variant => $default,)+
                }
            }

            /// The value with this name.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                Self::from_name(&text).ok_or_else(|| {
                    let known = Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ");
                    serde::de::Error::custom(format!(
                        concat!("unknown ", $what, " `{}`; the process scraper has: {}"),
                        text, known
                    ))
                })
            }
        }
    };
}

named_enum! {
    /// A metric the `process` scraper can emit (contrib v0.155.0).
    ProcessScraperMetric, "metric" {
        /// `process.context_switches`.
        ContextSwitches => "process.context_switches", false;
        /// `process.cpu.time`.
        CpuTime => "process.cpu.time", true;
        /// `process.cpu.utilization`.
        CpuUtilization => "process.cpu.utilization", false;
        /// `process.disk.io`.
        DiskIo => "process.disk.io", true;
        /// `process.disk.operations`.
        DiskOperations => "process.disk.operations", false;
        /// `process.handles` (Windows only).
        Handles => "process.handles", false;
        /// `process.memory.usage`.
        MemoryUsage => "process.memory.usage", true;
        /// `process.memory.utilization`.
        MemoryUtilization => "process.memory.utilization", false;
        /// `process.memory.virtual`.
        MemoryVirtual => "process.memory.virtual", true;
        /// `process.open_file_descriptors`.
        OpenFileDescriptors => "process.open_file_descriptors", false;
        /// `process.paging.faults`.
        PagingFaults => "process.paging.faults", false;
        /// `process.signals_pending`.
        SignalsPending => "process.signals_pending", false;
        /// `process.threads`.
        Threads => "process.threads", false;
        /// `process.uptime`.
        Uptime => "process.uptime", false;
    }
}

impl ProcessScraperMetric {
    /// The metric in Phoenix's telemetry schema, when the workload model has it.
    pub fn schema_metric(self) -> Option<ProcessMetric> {
        ProcessMetric::from_name(self.as_str())
    }

    /// The scraper metric for a schema metric.
    pub fn from_schema(metric: ProcessMetric) -> Self {
        match metric {
            ProcessMetric::CpuTime => Self::CpuTime,
            ProcessMetric::MemoryUsage => Self::MemoryUsage,
            ProcessMetric::MemoryVirtual => Self::MemoryVirtual,
            ProcessMetric::DiskIo => Self::DiskIo,
            ProcessMetric::CpuUtilization => Self::CpuUtilization,
            ProcessMetric::MemoryUtilization => Self::MemoryUtilization,
            ProcessMetric::Threads => Self::Threads,
            ProcessMetric::OpenFileDescriptors => Self::OpenFileDescriptors,
            ProcessMetric::ContextSwitches => Self::ContextSwitches,
            ProcessMetric::PagingFaults => Self::PagingFaults,
            ProcessMetric::DiskOperations => Self::DiskOperations,
        }
    }
}

named_enum! {
    /// A resource attribute the `process` scraper can write (contrib v0.155.0).
    ProcessResourceAttribute, "resource attribute" {
        /// `process.cgroup`.
        Cgroup => "process.cgroup", false;
        /// `process.command`.
        Command => "process.command", true;
        /// `process.command_line`.
        CommandLine => "process.command_line", true;
        /// `process.executable.name`.
        ExecutableName => "process.executable.name", true;
        /// `process.executable.path`.
        ExecutablePath => "process.executable.path", true;
        /// `process.owner`.
        Owner => "process.owner", true;
        /// `process.parent_pid`.
        ParentPid => "process.parent_pid", true;
        /// `process.pid`.
        Pid => "process.pid", true;
    }
}

impl ProcessResourceAttribute {
    /// The attribute in Phoenix's telemetry schema, when the workload model has it.
    pub fn schema_attribute(self) -> Option<ResourceAttribute> {
        ResourceAttribute::from_key(self.as_str())
    }
}

/// The `otlp` receiver.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpReceiver {
    /// The protocols to serve.
    #[serde(default)]
    pub protocols: OtlpProtocols,
}

/// `protocols` of the `otlp` receiver; a protocol key present with no settings enables it with
/// its default endpoint.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpProtocols {
    /// gRPC, default endpoint `localhost:4317`.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub grpc: Option<ServerEndpoint>,
    /// HTTP, default endpoint `localhost:4318`.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub http: Option<ServerEndpoint>,
}

/// A server listening address.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerEndpoint {
    /// `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}
