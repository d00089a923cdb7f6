//! Wire types for the subset of the OTLP metrics protocol that the telemetry model covers.
//!
//! Declared by hand with `prost` (no code generation, no gRPC stack), with the field numbers
//! and scalar types of opentelemetry-proto's `metrics/v1/metrics.proto`,
//! `common/v1/common.proto`, `resource/v1/resource.proto` and
//! `collector/metrics/v1/metrics_service.proto`. The same types serialise to and from OTLP
//! JSON with serde, following the rules listed in the [`otlp`](super) module documentation.
//!
//! [`Histogram`], [`ExponentialHistogram`], [`Summary`] and [`Exemplar`] are decoded only far
//! enough to notice that they are there: they are empty messages whose content is skipped.
//! Converting data that holds one of them into the telemetry model fails rather than drops it.
//!
//! These types are public for crates that send or receive OTLP over the network. They read and
//! write OTLP JSON with `serde_json` directly too; [`from_json`](super::from_json) adds error
//! paths. Doubles are read exactly because the workspace enables serde_json's
//! `float_roundtrip` feature.

use serde::{Deserialize, Serialize};

use super::json;

/// Metrics data as stored or exported: OTLP's `MetricsData`.
///
/// Its encoding is identical to that of the collector service's
/// `ExportMetricsServiceRequest` (see [`ExportMetricsServiceRequest`]), and it is what one
/// line of the collector's `file` exporter holds.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MetricsData {
    /// The metrics, grouped by resource.
    #[prost(message, repeated, tag = "1")]
    #[serde(
        alias = "resource_metrics",
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "json::nullable"
    )]
    pub resource_metrics: Vec<ResourceMetrics>,
}

/// The request of the OTLP metrics service's `Export` call: the same message as
/// [`MetricsData`] (`repeated ResourceMetrics resource_metrics = 1`).
pub type ExportMetricsServiceRequest = MetricsData;

/// The metrics of one resource.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ResourceMetrics {
    /// The resource; `None` when not set (written as an empty resource in JSON).
    #[prost(message, optional, tag = "1")]
    #[serde(serialize_with = "json::message_or_empty")]
    pub resource: Option<Resource>,
    /// The metrics, grouped by instrumentation scope.
    #[prost(message, repeated, tag = "2")]
    #[serde(
        alias = "scope_metrics",
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "json::nullable"
    )]
    pub scope_metrics: Vec<ScopeMetrics>,
    /// The schema URL of the resource.
    #[prost(string, tag = "3")]
    #[serde(
        alias = "schema_url",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "json::nullable"
    )]
    pub schema_url: String,
}

/// A resource: the entity that produced telemetry.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Resource {
    /// The resource attributes.
    #[prost(message, repeated, tag = "1")]
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "json::nullable"
    )]
    pub attributes: Vec<KeyValue>,
    /// How many attributes were dropped.
    #[prost(uint32, tag = "2")]
    #[serde(
        alias = "dropped_attributes_count",
        skip_serializing_if = "json::is_zero",
        deserialize_with = "json::integer"
    )]
    pub dropped_attributes_count: u32,
}

/// The metrics one instrumentation scope produced for a resource.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ScopeMetrics {
    /// The scope; `None` when not set (written as an empty scope in JSON).
    #[prost(message, optional, tag = "1")]
    #[serde(serialize_with = "json::message_or_empty")]
    pub scope: Option<InstrumentationScope>,
    /// The metrics.
    #[prost(message, repeated, tag = "2")]
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "json::nullable"
    )]
    pub metrics: Vec<Metric>,
    /// The schema URL of the metrics.
    #[prost(string, tag = "3")]
    #[serde(
        alias = "schema_url",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "json::nullable"
    )]
    pub schema_url: String,
}

/// An instrumentation scope: the component that produced metrics.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct InstrumentationScope {
    /// The scope name.
    #[prost(string, tag = "1")]
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "json::nullable"
    )]
    pub name: String,
    /// The scope version.
    #[prost(string, tag = "2")]
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "json::nullable"
    )]
    pub version: String,
    /// The scope attributes.
    #[prost(message, repeated, tag = "3")]
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "json::nullable"
    )]
    pub attributes: Vec<KeyValue>,
    /// How many attributes were dropped.
    #[prost(uint32, tag = "4")]
    #[serde(
        alias = "dropped_attributes_count",
        skip_serializing_if = "json::is_zero",
        deserialize_with = "json::integer"
    )]
    pub dropped_attributes_count: u32,
}

/// One metric: name, description, unit, metadata and one kind of data.
///
/// Its JSON form is written and read by hand, as `data` is a oneof whose members are keys of
/// the metric object.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Metric {
    /// The metric name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The description.
    #[prost(string, tag = "2")]
    pub description: String,
    /// The unit (UCUM).
    #[prost(string, tag = "3")]
    pub unit: String,
    /// The data: gauge, sum, or one of the kinds the telemetry model does not represent.
    #[prost(oneof = "metric::Data", tags = "5, 7, 9, 10, 11")]
    pub data: Option<metric::Data>,
    /// Additional metadata.
    #[prost(message, repeated, tag = "12")]
    pub metadata: Vec<KeyValue>,
}

/// The oneof of [`Metric`].
pub mod metric {
    /// The data of a metric.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Data {
        /// `gauge = 5`.
        #[prost(message, tag = "5")]
        Gauge(super::Gauge),
        /// `sum = 7`.
        #[prost(message, tag = "7")]
        Sum(super::Sum),
        /// `histogram = 9`, not represented in the telemetry model.
        #[prost(message, tag = "9")]
        Histogram(super::Histogram),
        /// `exponential_histogram = 10`, not represented in the telemetry model.
        #[prost(message, tag = "10")]
        ExponentialHistogram(super::ExponentialHistogram),
        /// `summary = 11`, not represented in the telemetry model.
        #[prost(message, tag = "11")]
        Summary(super::Summary),
    }
}

/// Instantaneous measurements.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Gauge {
    /// The data points.
    #[prost(message, repeated, tag = "1")]
    #[serde(
        alias = "data_points",
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "json::nullable"
    )]
    pub data_points: Vec<NumberDataPoint>,
}

/// Sums over time.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Sum {
    /// The data points.
    #[prost(message, repeated, tag = "1")]
    #[serde(
        alias = "data_points",
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "json::nullable"
    )]
    pub data_points: Vec<NumberDataPoint>,
    /// The aggregation temporality, an [`AggregationTemporality`] number. Kept as the raw
    /// number so that values this code does not know survive decoding and can be reported.
    #[prost(enumeration = "AggregationTemporality", tag = "2")]
    #[serde(
        alias = "aggregation_temporality",
        skip_serializing_if = "json::is_zero",
        deserialize_with = "json::temporality"
    )]
    pub aggregation_temporality: i32,
    /// Whether the sum only ever increases.
    #[prost(bool, tag = "3")]
    #[serde(
        alias = "is_monotonic",
        skip_serializing_if = "json::is_false",
        deserialize_with = "json::nullable"
    )]
    pub is_monotonic: bool,
}

/// OTLP's `AggregationTemporality` enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum AggregationTemporality {
    /// `AGGREGATION_TEMPORALITY_UNSPECIFIED = 0`.
    Unspecified = 0,
    /// `AGGREGATION_TEMPORALITY_DELTA = 1`.
    Delta = 1,
    /// `AGGREGATION_TEMPORALITY_CUMULATIVE = 2`.
    Cumulative = 2,
}

impl AggregationTemporality {
    /// The value's name in the `.proto` file, e.g. `AGGREGATION_TEMPORALITY_DELTA`.
    pub fn as_str_name(self) -> &'static str {
        match self {
            Self::Unspecified => "AGGREGATION_TEMPORALITY_UNSPECIFIED",
            Self::Delta => "AGGREGATION_TEMPORALITY_DELTA",
            Self::Cumulative => "AGGREGATION_TEMPORALITY_CUMULATIVE",
        }
    }

    /// The value with this name in the `.proto` file, if there is one.
    pub fn from_str_name(name: &str) -> Option<Self> {
        [Self::Unspecified, Self::Delta, Self::Cumulative]
            .into_iter()
            .find(|value| value.as_str_name() == name)
    }
}

/// `histogram = 9`: only its presence is decoded.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct Histogram {}

/// `exponential_histogram = 10`: only its presence is decoded.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct ExponentialHistogram {}

/// `summary = 11`: only its presence is decoded.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct Summary {}

/// An exemplar of a data point: only its presence is decoded.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct Exemplar {}

/// One data point of a gauge or sum.
///
/// Its JSON form is written and read by hand, as `value` is a oneof.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NumberDataPoint {
    /// The data-point attributes.
    #[prost(message, repeated, tag = "7")]
    pub attributes: Vec<KeyValue>,
    /// Start of the period the value covers, in nanoseconds since the Unix epoch.
    #[prost(fixed64, tag = "2")]
    pub start_time_unix_nano: u64,
    /// When the value was observed, in nanoseconds since the Unix epoch.
    #[prost(fixed64, tag = "3")]
    pub time_unix_nano: u64,
    /// The value: `as_double = 4` or `as_int = 6`.
    #[prost(oneof = "number_data_point::Value", tags = "4, 6")]
    pub value: Option<number_data_point::Value>,
    /// Exemplars, not represented in the telemetry model.
    #[prost(message, repeated, tag = "5")]
    pub exemplars: Vec<Exemplar>,
    /// Data-point flags (bit 0: no recorded value).
    #[prost(uint32, tag = "8")]
    pub flags: u32,
}

/// The oneof of [`NumberDataPoint`].
pub mod number_data_point {
    /// The value of a data point.
    #[derive(Clone, Copy, PartialEq, prost::Oneof)]
    pub enum Value {
        /// `double as_double = 4`.
        #[prost(double, tag = "4")]
        AsDouble(f64),
        /// `sfixed64 as_int = 6`.
        #[prost(sfixed64, tag = "6")]
        AsInt(i64),
    }
}

/// An attribute: a key and its value.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyValue {
    /// The attribute key.
    #[prost(string, tag = "1")]
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "json::nullable"
    )]
    pub key: String,
    /// The value; `None` reads as an empty value (written as `{}` in JSON).
    #[prost(message, optional, tag = "2")]
    #[serde(serialize_with = "json::message_or_empty")]
    pub value: Option<AnyValue>,
}

/// An attribute value, possibly empty.
///
/// Its JSON form is written and read by hand, as `value` is a oneof.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AnyValue {
    /// The value; `None` for an empty value.
    #[prost(oneof = "any_value::Value", tags = "1, 2, 3, 4, 5, 6, 7")]
    pub value: Option<any_value::Value>,
}

/// The oneof of [`AnyValue`].
pub mod any_value {
    /// The value of an [`AnyValue`](super::AnyValue).
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        /// `string string_value = 1`.
        #[prost(string, tag = "1")]
        StringValue(String),
        /// `bool bool_value = 2`.
        #[prost(bool, tag = "2")]
        BoolValue(bool),
        /// `int64 int_value = 3`.
        #[prost(int64, tag = "3")]
        IntValue(i64),
        /// `double double_value = 4`.
        #[prost(double, tag = "4")]
        DoubleValue(f64),
        /// `ArrayValue array_value = 5`.
        #[prost(message, tag = "5")]
        ArrayValue(super::ArrayValue),
        /// `KeyValueList kvlist_value = 6`.
        #[prost(message, tag = "6")]
        KvlistValue(super::KeyValueList),
        /// `bytes bytes_value = 7`.
        #[prost(bytes = "vec", tag = "7")]
        BytesValue(Vec<u8>),
    }
}

/// A list of values.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ArrayValue {
    /// The values, in order.
    #[prost(message, repeated, tag = "1")]
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "json::nullable"
    )]
    pub values: Vec<AnyValue>,
}

/// A list of key-value pairs.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyValueList {
    /// The pairs, in order.
    #[prost(message, repeated, tag = "1")]
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "json::nullable"
    )]
    pub values: Vec<KeyValue>,
}
