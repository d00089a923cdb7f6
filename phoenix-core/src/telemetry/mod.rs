//! The telemetry model: what one scrape of one host looks like.
//!
//! A [`Snapshot`] holds [`Resource`]s (one per process for the hostmetrics `process`
//! scraper), each with its metrics grouped by instrumentation [`Scope`], each [`Metric`] with
//! its [`DataPoint`]s. The model mirrors the OTLP metrics data model closely enough to convert
//! to and from it without loss (see the `otlp` module, behind the `otlp` feature); only
//! gauges and sums of numbers exist here, because that is all the process scraper writes.
//!
//! A series is identified by metric name, resource attributes and data-point attributes; see
//! [`SeriesKey`].

mod attributes;
pub mod schema;
mod series;

use std::fmt;
use std::time::Duration;

pub use attributes::{AnyValue, Attributes, KeyValue};
pub use schema::ProcessMetric;
pub use series::{MetricKey, ResourceKey, SeriesKey};

/// Nanoseconds since the Unix epoch, as OTLP counts time. Zero means "not set".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The unset timestamp.
    pub const UNSET: Self = Self(0);

    /// A timestamp from nanoseconds since the epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        Self(nanos)
    }

    /// A timestamp from whole seconds since the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Whether this is [`Timestamp::UNSET`].
    pub const fn is_unset(self) -> bool {
        self.0 == 0
    }

    /// This timestamp plus `duration`, saturating at the largest representable time.
    pub fn saturating_add(self, duration: Duration) -> Self {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(nanos))
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl From<u64> for Timestamp {
    fn from(nanos: u64) -> Self {
        Self(nanos)
    }
}

/// One scrape of one host: the process resources and their metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The resources, in the order they were produced.
    pub resources: Vec<Resource>,
}

impl Snapshot {
    /// A snapshot of these resources.
    pub fn new(resources: Vec<Resource>) -> Self {
        Self { resources }
    }

    /// The scrape time: the latest data-point time, or `None` when there are no points.
    pub fn time(&self) -> Option<Timestamp> {
        self.data_points().map(|(_, _, p)| p.time).max()
    }

    /// How many data points the snapshot holds.
    pub fn data_point_count(&self) -> usize {
        self.resources.iter().map(Resource::data_point_count).sum()
    }

    /// Every data point with its resource and metric.
    pub fn data_points(&self) -> impl Iterator<Item = (&Resource, &Metric, &DataPoint)> {
        self.resources.iter().flat_map(|resource| {
            resource.metrics().flat_map(move |metric| {
                metric
                    .data
                    .points()
                    .iter()
                    .map(move |p| (resource, metric, p))
            })
        })
    }

    /// The series key of every data point, in order.
    pub fn series_keys(&self) -> impl Iterator<Item = SeriesKey> + '_ {
        self.resources.iter().flat_map(|resource| {
            let resource_key = ResourceKey::new(&resource.attributes);
            resource.metrics().flat_map(move |metric| {
                let metric_key = resource_key.metric(&metric.name);
                metric
                    .data
                    .points()
                    .iter()
                    .map(move |p| metric_key.series(&p.attributes))
            })
        })
    }
}

/// A resource with its metrics: one process, for the process scraper. OTLP's
/// `ResourceMetrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resource {
    /// Resource attributes: the process identity (see [`schema::ResourceAttribute`]).
    pub attributes: Attributes,
    /// How many attributes the producer dropped.
    pub dropped_attributes_count: u32,
    /// The schema URL of the resource, empty when not set.
    pub schema_url: String,
    /// The metrics, grouped by the scope that produced them.
    pub scopes: Vec<ScopeMetrics>,
}

impl Resource {
    /// A resource with these attributes and no metrics.
    pub fn new(attributes: Attributes) -> Self {
        Self {
            attributes,
            ..Self::default()
        }
    }

    /// Every metric of every scope, in order.
    pub fn metrics(&self) -> impl Iterator<Item = &Metric> {
        self.scopes.iter().flat_map(|s| s.metrics.iter())
    }

    /// How many data points the resource holds.
    pub fn data_point_count(&self) -> usize {
        self.metrics().map(|m| m.data.points().len()).sum()
    }
}

/// The metrics one instrumentation scope produced for a resource. OTLP's `ScopeMetrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScopeMetrics {
    /// The producing scope.
    pub scope: Scope,
    /// The schema URL of the scope's metrics, empty when not set.
    pub schema_url: String,
    /// The metrics.
    pub metrics: Vec<Metric>,
}

/// An instrumentation scope: the component that produced metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    /// The scope name, e.g. the scraper's package path.
    pub name: String,
    /// The scope version, empty when not set.
    pub version: String,
    /// Scope attributes.
    pub attributes: Attributes,
    /// How many attributes the producer dropped.
    pub dropped_attributes_count: u32,
}

/// A metric name: one of the process scraper's, or any other.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricName {
    /// A process scraper metric.
    Process(ProcessMetric),
    /// Any other metric name.
    Other(String),
}

impl MetricName {
    /// The name as the collector writes it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Process(m) => m.name(),
            Self::Other(s) => s,
        }
    }

    /// The process metric, if this is one.
    pub fn process_metric(&self) -> Option<ProcessMetric> {
        match self {
            Self::Process(m) => Some(*m),
            Self::Other(_) => None,
        }
    }
}

impl From<&str> for MetricName {
    fn from(name: &str) -> Self {
        ProcessMetric::from_name(name).map_or_else(|| Self::Other(name.to_owned()), Self::Process)
    }
}

impl From<String> for MetricName {
    fn from(name: String) -> Self {
        ProcessMetric::from_name(&name).map_or(Self::Other(name), Self::Process)
    }
}

impl From<ProcessMetric> for MetricName {
    fn from(metric: ProcessMetric) -> Self {
        Self::Process(metric)
    }
}

impl fmt::Display for MetricName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for MetricName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// A metric: name, description, unit and its data.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The metric name.
    pub name: MetricName,
    /// A description, empty when not set.
    pub description: String,
    /// The unit (UCUM), empty when not set.
    pub unit: String,
    /// Additional metadata (OTLP `Metric.metadata`), usually empty.
    pub metadata: Attributes,
    /// The data points and how to read them.
    pub data: MetricData,
}

impl Metric {
    /// An empty metric shaped as the process scraper writes `metric`: its name, description,
    /// unit, kind, temporality and monotonicity.
    pub fn process(metric: ProcessMetric) -> Self {
        let data = match metric.temporality() {
            None => MetricData::Gauge { points: Vec::new() },
            Some(temporality) => MetricData::Sum {
                points: Vec::new(),
                temporality,
                monotonic: metric.is_monotonic(),
            },
        };
        Self {
            name: MetricName::Process(metric),
            description: metric.description().to_owned(),
            unit: metric.unit().to_owned(),
            metadata: Attributes::new(),
            data,
        }
    }
}

/// The data of a metric.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricData {
    /// Instantaneous measurements.
    Gauge {
        /// The points.
        points: Vec<DataPoint>,
    },
    /// Sums over time.
    Sum {
        /// The points.
        points: Vec<DataPoint>,
        /// Whether each point covers the time since the previous report or since the start.
        temporality: Temporality,
        /// Whether the sum only ever increases.
        monotonic: bool,
    },
}

impl MetricData {
    /// The data points.
    pub fn points(&self) -> &[DataPoint] {
        match self {
            Self::Gauge { points } | Self::Sum { points, .. } => points,
        }
    }

    /// The data points, mutably.
    pub fn points_mut(&mut self) -> &mut Vec<DataPoint> {
        match self {
            Self::Gauge { points } | Self::Sum { points, .. } => points,
        }
    }

    /// Gauge or sum.
    pub fn kind(&self) -> schema::MetricKind {
        match self {
            Self::Gauge { .. } => schema::MetricKind::Gauge,
            Self::Sum { .. } => schema::MetricKind::Sum,
        }
    }
}

/// The aggregation temporality of a sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Temporality {
    /// Not specified (OTLP value 0); kept for lossless conversion.
    Unspecified,
    /// Each point covers the time since the previous point.
    Delta,
    /// Each point covers the time since the start time.
    Cumulative,
}

/// One data point of a gauge or sum.
#[derive(Debug, Clone, PartialEq)]
pub struct DataPoint {
    /// Data-point attributes, e.g. `state: user`.
    pub attributes: Attributes,
    /// Start of the period a cumulative point covers: the process create time for the
    /// process scraper's sums. Unset for gauges.
    pub start_time: Timestamp,
    /// When the value was observed.
    pub time: Timestamp,
    /// The value.
    pub value: NumberValue,
    /// OTLP data-point flags (bit 0: no recorded value).
    pub flags: u32,
}

impl DataPoint {
    /// A point with no attributes and no flags.
    pub fn new(start_time: Timestamp, time: Timestamp, value: impl Into<NumberValue>) -> Self {
        Self {
            attributes: Attributes::new(),
            start_time,
            time,
            value: value.into(),
            flags: 0,
        }
    }

    /// This point with one more attribute.
    #[must_use]
    pub fn with_attribute(mut self, key: impl AsRef<str>, value: impl Into<AnyValue>) -> Self {
        self.attributes.insert(key, value);
        self
    }
}

/// A data-point value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NumberValue {
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Double(f64),
}

impl NumberValue {
    /// The value as a float (integers convert, possibly rounding above 2^53).
    #[allow(clippy::cast_precision_loss)]
    pub fn as_f64(self) -> f64 {
        match self {
            Self::Int(i) => i as f64,
            Self::Double(d) => d,
        }
    }
}

impl From<i64> for NumberValue {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<f64> for NumberValue {
    fn from(value: f64) -> Self {
        Self::Double(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(pid: i64, name: &str) -> Resource {
        let attrs: Attributes = [
            (schema::ResourceAttribute::Pid.key(), AnyValue::Int(pid)),
            (
                schema::ResourceAttribute::ExecutableName.key(),
                AnyValue::from(name),
            ),
        ]
        .into_iter()
        .collect();
        let mut metric = Metric::process(ProcessMetric::MemoryUsage);
        metric.data.points_mut().push(DataPoint::new(
            Timestamp::from_secs(1),
            Timestamp::from_secs(10),
            4096,
        ));
        let mut cpu = Metric::process(ProcessMetric::CpuTime);
        for state in schema::CpuState::ALL {
            cpu.data.points_mut().push(
                DataPoint::new(Timestamp::from_secs(1), Timestamp::from_secs(11), 0.5)
                    .with_attribute(schema::PointAttribute::State, state.as_str()),
            );
        }
        Resource {
            scopes: vec![ScopeMetrics {
                metrics: vec![metric, cpu],
                ..ScopeMetrics::default()
            }],
            ..Resource::new(attrs)
        }
    }

    #[test]
    fn snapshot_counts_points_and_takes_the_latest_time() {
        let snapshot = Snapshot::new(vec![process(1, "init"), process(2, "nginx")]);
        assert_eq!(snapshot.data_point_count(), 8);
        assert_eq!(snapshot.time(), Some(Timestamp::from_secs(11)));
        assert_eq!(Snapshot::default().time(), None);
    }

    #[test]
    fn series_keys_are_distinct_per_process_and_point_attributes() {
        let snapshot = Snapshot::new(vec![process(1, "init"), process(2, "nginx")]);
        let keys: std::collections::HashSet<_> = snapshot.series_keys().collect();
        assert_eq!(keys.len(), 8);
        let again: std::collections::HashSet<_> = snapshot.series_keys().collect();
        assert_eq!(keys, again);
    }

    #[test]
    fn metric_names_parse_to_the_schema() {
        assert_eq!(
            MetricName::from("process.cpu.time"),
            MetricName::Process(ProcessMetric::CpuTime)
        );
        assert_eq!(MetricName::from("custom.metric").as_str(), "custom.metric");
        assert_eq!(
            MetricName::from(String::from("process.threads")).process_metric(),
            Some(ProcessMetric::Threads)
        );
    }

    #[test]
    fn timestamps_saturate() {
        let t = Timestamp::from_secs(5);
        assert_eq!(
            t.saturating_add(Duration::from_secs(1)),
            Timestamp::from_secs(6)
        );
        assert_eq!(
            Timestamp::from_nanos(u64::MAX)
                .saturating_add(Duration::from_secs(1))
                .as_nanos(),
            u64::MAX
        );
        assert_eq!(
            t.saturating_duration_since(Timestamp::from_secs(7)),
            Duration::ZERO
        );
        assert!(Timestamp::UNSET.is_unset());
    }
}
