//! The hostmetrics receiver's `process` scraper schema, as types.
//!
//! Metric names, units, types, data-point attributes and resource attribute keys of the
//! scraper that Phoenix simulates, emulates and optimises. Call sites use these enums rather
//! than loose strings.

use std::fmt;

use super::Temporality;

/// Scope name the collector's process scraper writes on its metrics.
pub const PROCESS_SCRAPER_SCOPE: &str = "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/hostmetricsreceiver/internal/scraper/processscraper";

/// Schema URL the process scraper writes on its resources.
pub const PROCESS_SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.9.0";

/// Whether a metric is a gauge or a sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// An instantaneous measurement.
    Gauge,
    /// A sum over time.
    Sum,
}

/// Whether a metric's points hold integers or floats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// Signed 64-bit integers.
    Int,
    /// 64-bit floats.
    Double,
}

/// A metric of the process scraper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProcessMetric {
    /// `process.cpu.time`: CPU seconds by state.
    CpuTime,
    /// `process.memory.usage`: resident set size.
    MemoryUsage,
    /// `process.memory.virtual`: virtual memory size.
    MemoryVirtual,
    /// `process.disk.io`: disk bytes by direction.
    DiskIo,
    /// `process.cpu.utilization`: CPU share since the last scrape, 0..1, by state.
    CpuUtilization,
    /// `process.memory.utilization`: share of physical memory.
    MemoryUtilization,
    /// `process.threads`: thread count.
    Threads,
    /// `process.open_file_descriptors`: open file descriptors.
    OpenFileDescriptors,
    /// `process.context_switches`: context switches by type.
    ContextSwitches,
    /// `process.paging.faults`: page faults by type.
    PagingFaults,
    /// `process.disk.operations`: disk operations by direction.
    DiskOperations,
}

impl ProcessMetric {
    /// Every process metric Phoenix models, in the order of the scraper's documentation.
    /// (The scraper also has `process.signals_pending`, `process.handles` and
    /// `process.uptime`, off by default; they are read as [`MetricName::Other`](super::MetricName::Other).)
    pub const ALL: [Self; 11] = [
        Self::CpuTime,
        Self::MemoryUsage,
        Self::MemoryVirtual,
        Self::DiskIo,
        Self::CpuUtilization,
        Self::MemoryUtilization,
        Self::Threads,
        Self::OpenFileDescriptors,
        Self::ContextSwitches,
        Self::PagingFaults,
        Self::DiskOperations,
    ];

    /// The metric name as the collector writes it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::CpuTime => "process.cpu.time",
            Self::MemoryUsage => "process.memory.usage",
            Self::MemoryVirtual => "process.memory.virtual",
            Self::DiskIo => "process.disk.io",
            Self::CpuUtilization => "process.cpu.utilization",
            Self::MemoryUtilization => "process.memory.utilization",
            Self::Threads => "process.threads",
            Self::OpenFileDescriptors => "process.open_file_descriptors",
            Self::ContextSwitches => "process.context_switches",
            Self::PagingFaults => "process.paging.faults",
            Self::DiskOperations => "process.disk.operations",
        }
    }

    /// The metric with this collector name, if it is a process scraper metric.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The metric's description as the scraper writes it.
    pub const fn description(self) -> &'static str {
        match self {
            Self::CpuTime => "Total CPU seconds broken down by different states.",
            Self::MemoryUsage => "The amount of physical memory in use.",
            Self::MemoryVirtual => "Virtual memory size.",
            Self::DiskIo => "Disk bytes transferred.",
            Self::CpuUtilization => {
                "Percentage of total CPU time used by the process since last scrape, expressed as a value between 0 and 1. On the first scrape, no data point is emitted for this metric."
            }
            Self::MemoryUtilization => {
                "Percentage of total physical memory that is used by the process."
            }
            Self::Threads => "Process threads count.",
            Self::OpenFileDescriptors => "Number of file descriptors in use by the process.",
            Self::ContextSwitches => "Number of times the process has been context switched.",
            Self::PagingFaults => "Number of page faults the process has made.",
            Self::DiskOperations => "Number of disk operations performed by the process.",
        }
    }

    /// The metric's unit (UCUM).
    pub const fn unit(self) -> &'static str {
        match self {
            Self::CpuTime => "s",
            Self::MemoryUsage | Self::MemoryVirtual | Self::DiskIo => "By",
            Self::CpuUtilization | Self::MemoryUtilization => "1",
            Self::Threads => "{threads}",
            Self::OpenFileDescriptors => "{count}",
            Self::ContextSwitches => "{count}",
            Self::PagingFaults => "{faults}",
            Self::DiskOperations => "{operations}",
        }
    }

    /// Gauge or sum.
    pub const fn kind(self) -> MetricKind {
        match self {
            Self::CpuUtilization | Self::MemoryUtilization => MetricKind::Gauge,
            _ => MetricKind::Sum,
        }
    }

    /// Integer or float points.
    pub const fn value_type(self) -> ValueType {
        match self {
            Self::CpuTime | Self::CpuUtilization | Self::MemoryUtilization => ValueType::Double,
            _ => ValueType::Int,
        }
    }

    /// The aggregation temporality of a sum; `None` for gauges.
    pub const fn temporality(self) -> Option<Temporality> {
        match self.kind() {
            MetricKind::Gauge => None,
            MetricKind::Sum => Some(Temporality::Cumulative),
        }
    }

    /// Whether a sum only ever increases over a process's life.
    pub const fn is_monotonic(self) -> bool {
        matches!(
            self,
            Self::CpuTime
                | Self::DiskIo
                | Self::ContextSwitches
                | Self::PagingFaults
                | Self::DiskOperations
        )
    }

    /// The data-point attribute that splits the metric into several points, if any.
    pub const fn point_attribute(self) -> Option<PointAttribute> {
        match self {
            Self::CpuTime | Self::CpuUtilization => Some(PointAttribute::State),
            Self::DiskIo | Self::DiskOperations => Some(PointAttribute::Direction),
            Self::ContextSwitches | Self::PagingFaults => Some(PointAttribute::Type),
            _ => None,
        }
    }

    /// The values of [`point_attribute`](Self::point_attribute) the scraper emits for this
    /// metric, one data point each; a single unnamed point when the metric has none.
    pub const fn point_values(self) -> &'static [&'static str] {
        match self {
            Self::CpuTime | Self::CpuUtilization => CpuState::NAMES,
            Self::DiskIo | Self::DiskOperations => Direction::NAMES,
            Self::ContextSwitches => ContextSwitchType::NAMES,
            Self::PagingFaults => PagingFaultType::NAMES,
            _ => &[],
        }
    }

    /// How many data points the scraper emits per process per scrape for this metric.
    pub const fn points_per_scrape(self) -> usize {
        match self.point_values().len() {
            0 => 1,
            n => n,
        }
    }

    /// Whether the scraper emits this metric unless configured otherwise.
    pub const fn enabled_by_default(self) -> bool {
        matches!(
            self,
            Self::CpuTime | Self::MemoryUsage | Self::MemoryVirtual | Self::DiskIo
        )
    }
}

impl fmt::Display for ProcessMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl AsRef<str> for ProcessMetric {
    fn as_ref(&self) -> &str {
        self.name()
    }
}

/// A data-point attribute key of the process scraper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PointAttribute {
    /// `state`: CPU state.
    State,
    /// `direction`: read or write.
    Direction,
    /// `type`: context-switch or page-fault type.
    Type,
}

impl PointAttribute {
    /// The attribute key.
    pub const fn key(self) -> &'static str {
        match self {
            Self::State => "state",
            Self::Direction => "direction",
            Self::Type => "type",
        }
    }
}

impl AsRef<str> for PointAttribute {
    fn as_ref(&self) -> &str {
        self.key()
    }
}

macro_rules! attribute_values {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in the order the scraper emits them.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];
            /// Every value's text, in the same order as [`Self::ALL`].
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The value as the collector writes it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

attribute_values! {
    /// Values of `state` on `process.cpu.time` and `process.cpu.utilization`.
    CpuState {
        /// Time in user mode.
        User => "user",
        /// Time in kernel mode.
        System => "system",
        /// Time waiting for I/O.
        Wait => "wait",
    }
}

attribute_values! {
    /// Values of `direction` on `process.disk.io` and `process.disk.operations`.
    Direction {
        /// Bytes or operations read.
        Read => "read",
        /// Bytes or operations written.
        Write => "write",
    }
}

attribute_values! {
    /// Values of `type` on `process.context_switches`.
    ContextSwitchType {
        /// Switches forced by the scheduler.
        Involuntary => "involuntary",
        /// Switches the process asked for.
        Voluntary => "voluntary",
    }
}

attribute_values! {
    /// Values of `type` on `process.paging.faults`.
    PagingFaultType {
        /// Faults that needed I/O.
        Major => "major",
        /// Faults served from memory.
        Minor => "minor",
    }
}

/// A resource attribute that identifies a process (plus `host.name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceAttribute {
    /// `process.pid` (int).
    Pid,
    /// `process.parent_pid` (int).
    ParentPid,
    /// `process.executable.name` (string): what Linux shows as `/proc/<pid>/comm`.
    ExecutableName,
    /// `process.executable.path` (string).
    ExecutablePath,
    /// `process.command` (string): the first word of the command line.
    Command,
    /// `process.command_line` (string).
    CommandLine,
    /// `process.owner` (string): the user name.
    Owner,
    /// `host.name` (string), from resource detection.
    HostName,
}

impl ResourceAttribute {
    /// The process attributes the scraper writes, in its order, then `host.name`.
    pub const ALL: [Self; 8] = [
        Self::Pid,
        Self::ParentPid,
        Self::ExecutableName,
        Self::ExecutablePath,
        Self::Command,
        Self::CommandLine,
        Self::Owner,
        Self::HostName,
    ];

    /// The attributes that identify one process instance rather than a program: stripping
    /// them is what aggregation by executable name does.
    pub const INSTANCE_IDENTITY: [Self; 5] = [
        Self::Pid,
        Self::ParentPid,
        Self::CommandLine,
        Self::Command,
        Self::ExecutablePath,
    ];

    /// The attribute key.
    pub const fn key(self) -> &'static str {
        match self {
            Self::Pid => "process.pid",
            Self::ParentPid => "process.parent_pid",
            Self::ExecutableName => "process.executable.name",
            Self::ExecutablePath => "process.executable.path",
            Self::Command => "process.command",
            Self::CommandLine => "process.command_line",
            Self::Owner => "process.owner",
            Self::HostName => "host.name",
        }
    }

    /// The attribute with this key, if it is one of these.
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.key() == key)
    }
}

impl fmt::Display for ResourceAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl AsRef<str> for ResourceAttribute {
    fn as_ref(&self) -> &str {
        self.key()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for metric in ProcessMetric::ALL {
            assert_eq!(ProcessMetric::from_name(metric.name()), Some(metric));
        }
        for attr in ResourceAttribute::ALL {
            assert_eq!(ResourceAttribute::from_key(attr.key()), Some(attr));
        }
        assert_eq!(ProcessMetric::from_name("system.cpu.time"), None);
    }

    #[test]
    fn default_metrics_emit_seven_points_per_process() {
        let points: usize = ProcessMetric::ALL
            .into_iter()
            .filter(|m| m.enabled_by_default())
            .map(ProcessMetric::points_per_scrape)
            .sum();
        assert_eq!(points, 7);
    }

    #[test]
    fn schema_matches_the_scraper_table() {
        use ProcessMetric::*;
        assert_eq!(CpuTime.kind(), MetricKind::Sum);
        assert_eq!(CpuTime.value_type(), ValueType::Double);
        assert!(CpuTime.is_monotonic());
        assert!(!MemoryUsage.is_monotonic());
        assert_eq!(MemoryUsage.value_type(), ValueType::Int);
        assert_eq!(CpuUtilization.kind(), MetricKind::Gauge);
        assert_eq!(CpuUtilization.temporality(), None);
        assert_eq!(DiskIo.temporality(), Some(Temporality::Cumulative));
        assert_eq!(ContextSwitches.point_values(), ["involuntary", "voluntary"]);
        assert_eq!(PagingFaults.point_attribute(), Some(PointAttribute::Type));
        assert_eq!(Threads.unit(), "{threads}");
        assert_eq!(
            ProcessMetric::ALL
                .iter()
                .filter(|m| m.enabled_by_default())
                .count(),
            4
        );
    }
}
