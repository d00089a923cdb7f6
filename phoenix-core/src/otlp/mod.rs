//! Lossless conversion between the telemetry model and OTLP: protobuf and OTLP JSON.
//!
//! [`encode_protobuf`] and [`decode_protobuf`] read and write the binary encoding of
//! `MetricsData` (the same bytes as the collector service's `ExportMetricsServiceRequest`);
//! [`to_json`] and [`from_json`] read and write OTLP JSON as one line of the OpenTelemetry
//! Collector's `file` exporter. The [`wire`] types sit in between, for crates that send OTLP
//! over the network themselves.
//!
//! Every [`Snapshot`] converts to OTLP and back unchanged. The other way round, OTLP data that
//! the model cannot hold is an error rather than something to drop: histograms, exponential
//! histograms, summaries, exemplars, metrics without data and data points without a value all
//! fail with [`Error::Otlp`], whose `path` names the construct in OTLP JSON field names, e.g.
//! `resourceMetrics[0].scopeMetrics[1].metrics[2].histogram` (`$` for the whole document).
//! Fields outside the subset (such as `Resource.entity_refs`) are ignored, as protobuf ignores
//! unknown fields.
//!
//! ```
//! use phoenix_core::otlp;
//! use phoenix_core::telemetry::{
//!     AnyValue, DataPoint, Metric, ProcessMetric, Resource, ScopeMetrics, Snapshot, Timestamp,
//! };
//!
//! let (start, now) = (Timestamp::from_secs(1_700_000_000), Timestamp::from_secs(1_700_000_060));
//! let mut cpu = Metric::process(ProcessMetric::CpuTime);
//! cpu.data.points_mut().push(DataPoint::new(start, now, 1.5).with_attribute("state", "user"));
//! let attributes = [("process.pid", AnyValue::Int(42))].into_iter().collect();
//! let resource = Resource {
//!     scopes: vec![ScopeMetrics { metrics: vec![cpu], ..ScopeMetrics::default() }],
//!     ..Resource::new(attributes)
//! };
//! let snapshot = Snapshot::new(vec![resource]);
//!
//! let json = otlp::to_json(&snapshot);
//! assert!(json.contains(r#"{"key":"process.pid","value":{"intValue":"42"}}"#));
//! assert_eq!(otlp::from_json(&json)?, snapshot);
//! assert_eq!(otlp::decode_protobuf(&otlp::encode_protobuf(&snapshot))?, snapshot);
//! # Ok::<(), phoenix_core::Error>(())
//! ```
//!
//! # OTLP JSON
//!
//! Written as the collector's pdata JSON marshaller writes it (checked against
//! `open-telemetry/opentelemetry-collector`: the pdatagen JSON templates in
//! `internal/cmd/pdatagen/internal/proto/json_marshal.go`, the field definitions in
//! `internal/cmd/pdatagen/internal/pmetric_package.go`, `pdata/internal/json/stream.go` and
//! expected outputs such as `pdata/pmetric/json_test.go`), which follows the "JSON Protobuf Encoding"
//! section of the OTLP specification (`open-telemetry/opentelemetry-proto`,
//! `docs/specification.md`):
//!
//! - field names are the proto names in lowerCamelCase (`resourceMetrics`, `dataPoints`,
//!   `aggregationTemporality`, `kvlistValue`, …);
//! - 64-bit integers (`startTimeUnixNano` and `timeUnixNano`, `asInt`, `intValue`) are decimal
//!   strings; 32-bit ones (`droppedAttributesCount`, `flags`) are numbers;
//! - enums are numbers (`"aggregationTemporality":2`), never names;
//! - bytes (`bytesValue`) are standard base64 with padding;
//! - a field at its default (empty string or list, zero, false) is left out, except the
//!   members of a oneof, which are written whenever set (`"asDouble":0`, `{"intValue":"0"}`,
//!   `{"stringValue":""}`), and the message fields pdata never leaves out: `resource`,
//!   `scope` and `KeyValue.value` are always written, as `{}` when empty. An empty `AnyValue`
//!   is `{}`;
//! - doubles are JSON numbers spelled as Go's encoder spells them: the shortest exact text,
//!   fixed notation for `1e-6 <= |v| < 1e21` and zero (`0`, `-0`, `0.000001`), exponent
//!   notation otherwise (`1e-7`, `1e+21`); NaN and the infinities are the strings `"NaN"`,
//!   `"+Inf"` and `"-Inf"`, as pdata writes them (protojson's `"Infinity"` is read too);
//! - fields come in `.proto` declaration order, on one line, without a trailing newline.
//!
//! Reading is lenient, as the specification asks of receivers: 64-bit and 32-bit integers
//! may be numbers or strings, doubles may be numbers or strings, enums may also be names or
//! strings, base64 may be URL-safe or unpadded, `null` and missing fields read as their
//! default, unknown fields are ignored, and the proto (snake_case) field names are accepted
//! too, as pdata and protojson accept them. Doubles are read exactly, as serde_json's
//! `float_roundtrip` feature (enabled in the workspace) parses them.

mod json;
mod size;
pub mod wire;

use std::fmt;

use prost::Message as _;

use crate::telemetry::{
    AnyValue, Attributes, DataPoint, KeyValue, Metric, MetricData, MetricName, NumberValue,
    Resource, Scope, ScopeMetrics, Snapshot, Temporality, Timestamp,
};
use crate::{Error, Result};

pub use size::{
    MetricHeader, attributes_encoded_len, encoded_len, metric_encoded_len, point_encoded_len,
    point_encoded_len_with, resource_metrics_encoded_len, scope_metrics_encoded_len,
};

/// Encodes a snapshot as OTLP protobuf (`MetricsData`, the same bytes as an
/// `ExportMetricsServiceRequest`).
pub fn encode_protobuf(snapshot: &Snapshot) -> Vec<u8> {
    wire::MetricsData::from(snapshot).encode_to_vec()
}

/// Decodes OTLP protobuf (`MetricsData` or `ExportMetricsServiceRequest`) into a snapshot.
///
/// # Errors
///
/// [`Error::Otlp`] if the bytes are not a valid message, or hold data the model does not
/// represent.
pub fn decode_protobuf(bytes: &[u8]) -> Result<Snapshot> {
    let data = wire::MetricsData::decode(bytes)
        .map_err(|e| Problem::new(format!("malformed OTLP protobuf: {e}")))?;
    Snapshot::try_from(data)
}

/// Writes a snapshot as OTLP JSON: one line as the collector's `file` exporter writes it,
/// without the trailing newline.
pub fn to_json(snapshot: &Snapshot) -> String {
    json::to_string(&wire::MetricsData::from(snapshot))
}

/// Reads one OTLP JSON document (one line of the collector's `file` exporter) into a
/// snapshot.
///
/// # Errors
///
/// [`Error::Otlp`] if the text is not valid OTLP JSON, or holds data the model does not
/// represent.
pub fn from_json(json: &str) -> Result<Snapshot> {
    Snapshot::try_from(json::from_str(json)?)
}

impl From<&Snapshot> for wire::MetricsData {
    fn from(snapshot: &Snapshot) -> Self {
        Self {
            resource_metrics: snapshot.resources.iter().map(resource_to_wire).collect(),
        }
    }
}

impl TryFrom<wire::MetricsData> for Snapshot {
    type Error = Error;

    /// Converts OTLP data into the model.
    ///
    /// # Errors
    ///
    /// [`Error::Otlp`] naming the first construct the model does not represent.
    fn try_from(data: wire::MetricsData) -> Result<Self> {
        let resources = each(data.resource_metrics, "resourceMetrics", resource_from_wire)?;
        Ok(Self::new(resources))
    }
}

/// A decoding problem. The path is built from the innermost construct outwards as the
/// problem travels up the conversion.
#[derive(Debug)]
struct Problem {
    path: String,
    message: String,
}

impl Problem {
    /// A problem with the construct being converted.
    fn new(message: impl Into<String>) -> Self {
        Self {
            path: String::new(),
            message: message.into(),
        }
    }

    /// A problem with the field `field` of the construct being converted.
    fn at(field: &str, message: impl Into<String>) -> Self {
        Self {
            path: field.to_owned(),
            message: message.into(),
        }
    }

    /// The same problem, seen from the construct that holds `outer`.
    fn within(mut self, outer: impl fmt::Display) -> Self {
        let outer = outer.to_string();
        self.path = match (outer.is_empty(), self.path.is_empty()) {
            (true, _) => self.path,
            (false, true) => outer,
            (false, false) if self.path.starts_with('[') => outer + &self.path,
            (false, false) => format!("{outer}.{}", self.path),
        };
        self
    }
}

impl From<Problem> for Error {
    fn from(problem: Problem) -> Self {
        let path = if problem.path.is_empty() {
            "$".to_owned()
        } else {
            problem.path
        };
        Self::Otlp {
            path,
            message: problem.message,
        }
    }
}

/// Converts every item of a repeated field, naming the item in the path of a problem.
fn each<T, U>(
    items: Vec<T>,
    field: &str,
    mut convert: impl FnMut(T) -> Result<U, Problem>,
) -> Result<Vec<U>, Problem> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| convert(item).map_err(|p| p.within(format_args!("{field}[{i}]"))))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Model to wire.

fn resource_to_wire(resource: &Resource) -> wire::ResourceMetrics {
    wire::ResourceMetrics {
        resource: Some(wire::Resource {
            attributes: attributes_to_wire(&resource.attributes),
            dropped_attributes_count: resource.dropped_attributes_count,
        }),
        scope_metrics: resource.scopes.iter().map(scope_to_wire).collect(),
        schema_url: resource.schema_url.clone(),
    }
}

fn scope_to_wire(scope: &ScopeMetrics) -> wire::ScopeMetrics {
    wire::ScopeMetrics {
        scope: Some(wire::InstrumentationScope {
            name: scope.scope.name.clone(),
            version: scope.scope.version.clone(),
            attributes: attributes_to_wire(&scope.scope.attributes),
            dropped_attributes_count: scope.scope.dropped_attributes_count,
        }),
        metrics: scope.metrics.iter().map(metric_to_wire).collect(),
        schema_url: scope.schema_url.clone(),
    }
}

fn metric_to_wire(metric: &Metric) -> wire::Metric {
    let data = match &metric.data {
        MetricData::Gauge { points } => wire::metric::Data::Gauge(wire::Gauge {
            data_points: points_to_wire(points),
        }),
        MetricData::Sum {
            points,
            temporality,
            monotonic,
        } => wire::metric::Data::Sum(wire::Sum {
            data_points: points_to_wire(points),
            aggregation_temporality: i32::from(temporality_to_wire(*temporality)),
            is_monotonic: *monotonic,
        }),
    };
    wire::Metric {
        name: metric.name.as_str().to_owned(),
        description: metric.description.clone(),
        unit: metric.unit.clone(),
        data: Some(data),
        metadata: attributes_to_wire(&metric.metadata),
    }
}

fn temporality_to_wire(temporality: Temporality) -> wire::AggregationTemporality {
    match temporality {
        Temporality::Unspecified => wire::AggregationTemporality::Unspecified,
        Temporality::Delta => wire::AggregationTemporality::Delta,
        Temporality::Cumulative => wire::AggregationTemporality::Cumulative,
    }
}

fn points_to_wire(points: &[DataPoint]) -> Vec<wire::NumberDataPoint> {
    points
        .iter()
        .map(|point| wire::NumberDataPoint {
            attributes: attributes_to_wire(&point.attributes),
            start_time_unix_nano: point.start_time.as_nanos(),
            time_unix_nano: point.time.as_nanos(),
            value: Some(match point.value {
                NumberValue::Int(i) => wire::number_data_point::Value::AsInt(i),
                NumberValue::Double(d) => wire::number_data_point::Value::AsDouble(d),
            }),
            exemplars: Vec::new(),
            flags: point.flags,
        })
        .collect()
}

fn attributes_to_wire(attributes: &Attributes) -> Vec<wire::KeyValue> {
    attributes
        .iter()
        .map(|kv| wire::KeyValue {
            key: kv.key.clone(),
            value: Some(value_to_wire(&kv.value)),
        })
        .collect()
}

fn value_to_wire(value: &AnyValue) -> wire::AnyValue {
    use wire::any_value::Value;
    let value = match value {
        AnyValue::Empty => None,
        AnyValue::String(s) => Some(Value::StringValue(s.clone())),
        AnyValue::Bool(b) => Some(Value::BoolValue(*b)),
        AnyValue::Int(i) => Some(Value::IntValue(*i)),
        AnyValue::Double(d) => Some(Value::DoubleValue(*d)),
        AnyValue::Array(values) => Some(Value::ArrayValue(wire::ArrayValue {
            values: values.iter().map(value_to_wire).collect(),
        })),
        AnyValue::Map(map) => Some(Value::KvlistValue(wire::KeyValueList {
            values: attributes_to_wire(map),
        })),
        AnyValue::Bytes(b) => Some(Value::BytesValue(b.clone())),
    };
    wire::AnyValue { value }
}

// ---------------------------------------------------------------------------------------------
// Wire to model.

fn resource_from_wire(rm: wire::ResourceMetrics) -> Result<Resource, Problem> {
    let resource = rm.resource.unwrap_or_default();
    Ok(Resource {
        attributes: attributes_from_wire(resource.attributes),
        dropped_attributes_count: resource.dropped_attributes_count,
        schema_url: rm.schema_url,
        scopes: each(rm.scope_metrics, "scopeMetrics", scope_from_wire)?,
    })
}

fn scope_from_wire(sm: wire::ScopeMetrics) -> Result<ScopeMetrics, Problem> {
    let scope = sm.scope.unwrap_or_default();
    Ok(ScopeMetrics {
        scope: Scope {
            name: scope.name,
            version: scope.version,
            attributes: attributes_from_wire(scope.attributes),
            dropped_attributes_count: scope.dropped_attributes_count,
        },
        schema_url: sm.schema_url,
        metrics: each(sm.metrics, "metrics", metric_from_wire)?,
    })
}

fn metric_from_wire(metric: wire::Metric) -> Result<Metric, Problem> {
    use wire::metric::Data;
    let unsupported = |field: &str, what: &str| {
        Problem::at(
            field,
            format!("{what} data is not supported by the telemetry model"),
        )
    };
    let data = match metric.data {
        Some(Data::Gauge(gauge)) => MetricData::Gauge {
            points: each(gauge.data_points, "dataPoints", point_from_wire)
                .map_err(|p| p.within("gauge"))?,
        },
        Some(Data::Sum(sum)) => MetricData::Sum {
            points: each(sum.data_points, "dataPoints", point_from_wire)
                .map_err(|p| p.within("sum"))?,
            temporality: temporality_from_wire(sum.aggregation_temporality)
                .map_err(|p| p.within("sum"))?,
            monotonic: sum.is_monotonic,
        },
        Some(Data::Histogram(_)) => return Err(unsupported("histogram", "histogram")),
        Some(Data::ExponentialHistogram(_)) => {
            return Err(unsupported("exponentialHistogram", "exponential histogram"));
        }
        Some(Data::Summary(_)) => return Err(unsupported("summary", "summary")),
        None => {
            return Err(Problem::new(
                "metric has no data: none of gauge, sum, histogram, exponentialHistogram or \
                 summary is set",
            ));
        }
    };
    Ok(Metric {
        name: MetricName::from(metric.name),
        description: metric.description,
        unit: metric.unit,
        metadata: attributes_from_wire(metric.metadata),
        data,
    })
}

fn temporality_from_wire(value: i32) -> Result<Temporality, Problem> {
    match wire::AggregationTemporality::try_from(value) {
        Ok(wire::AggregationTemporality::Unspecified) => Ok(Temporality::Unspecified),
        Ok(wire::AggregationTemporality::Delta) => Ok(Temporality::Delta),
        Ok(wire::AggregationTemporality::Cumulative) => Ok(Temporality::Cumulative),
        Err(_) => Err(Problem::at(
            "aggregationTemporality",
            format!(
                "unknown aggregation temporality {value} (expected 0 for unspecified, 1 for \
                 delta or 2 for cumulative)"
            ),
        )),
    }
}

fn point_from_wire(point: wire::NumberDataPoint) -> Result<DataPoint, Problem> {
    if !point.exemplars.is_empty() {
        return Err(Problem::at(
            "exemplars",
            "exemplars are not supported by the telemetry model",
        ));
    }
    let value = match point.value {
        Some(wire::number_data_point::Value::AsInt(i)) => NumberValue::Int(i),
        Some(wire::number_data_point::Value::AsDouble(d)) => NumberValue::Double(d),
        None => {
            return Err(Problem::new(
                "data point has no value: neither asDouble nor asInt is set",
            ));
        }
    };
    Ok(DataPoint {
        attributes: attributes_from_wire(point.attributes),
        start_time: Timestamp::from_nanos(point.start_time_unix_nano),
        time: Timestamp::from_nanos(point.time_unix_nano),
        value,
        flags: point.flags,
    })
}

fn attributes_from_wire(pairs: Vec<wire::KeyValue>) -> Attributes {
    let pairs: Vec<KeyValue> = pairs
        .into_iter()
        .map(|kv| KeyValue {
            key: kv.key,
            value: value_from_wire(kv.value.unwrap_or_default()),
        })
        .collect();
    Attributes::from(pairs)
}

fn value_from_wire(value: wire::AnyValue) -> AnyValue {
    use wire::any_value::Value;
    match value.value {
        None => AnyValue::Empty,
        Some(Value::StringValue(s)) => AnyValue::String(s),
        Some(Value::BoolValue(b)) => AnyValue::Bool(b),
        Some(Value::IntValue(i)) => AnyValue::Int(i),
        Some(Value::DoubleValue(d)) => AnyValue::Double(d),
        Some(Value::ArrayValue(array)) => {
            AnyValue::Array(array.values.into_iter().map(value_from_wire).collect())
        }
        Some(Value::KvlistValue(list)) => AnyValue::Map(attributes_from_wire(list.values)),
        Some(Value::BytesValue(b)) => AnyValue::Bytes(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(value: wire::number_data_point::Value) -> wire::NumberDataPoint {
        wire::NumberDataPoint {
            attributes: vec![wire::KeyValue {
                key: "k".to_owned(),
                value: Some(wire::AnyValue {
                    value: Some(wire::any_value::Value::IntValue(1)),
                }),
            }],
            start_time_unix_nano: 1,
            time_unix_nano: 2,
            value: Some(value),
            exemplars: Vec::new(),
            flags: 1,
        }
    }

    #[test]
    fn number_data_points_use_the_proto_field_numbers_and_types() {
        let bytes = point(wire::number_data_point::Value::AsInt(-1)).encode_to_vec();
        let expected: Vec<u8> = [
            &[0x11][..], // 2: start_time_unix_nano, fixed64
            &1u64.to_le_bytes(),
            &[0x19], // 3: time_unix_nano, fixed64
            &2u64.to_le_bytes(),
            &[0x31], // 6: as_int, sfixed64
            &(-1i64).to_le_bytes(),
            &[0x3a, 0x07, 0x0a, 0x01, b'k', 0x12, 0x02, 0x18, 0x01], // 7: attributes
            &[0x40, 0x01],                                           // 8: flags, varint
        ]
        .concat();
        assert_eq!(bytes, expected, "{bytes:02x?}");
        let double = point(wire::number_data_point::Value::AsDouble(0.5)).encode_to_vec();
        let as_double: Vec<u8> = [&[0x21][..], &0.5f64.to_le_bytes()].concat();
        assert!(double.windows(9).any(|w| w == as_double), "{double:02x?}");
    }

    #[test]
    fn any_values_use_the_proto_field_numbers_and_types() {
        use wire::any_value::Value;
        let encode = |value| wire::AnyValue { value: Some(value) }.encode_to_vec();
        assert_eq!(encode(Value::StringValue("a".into())), [0x0a, 0x01, b'a']);
        assert_eq!(encode(Value::BoolValue(true)), [0x10, 0x01]);
        assert_eq!(
            encode(Value::IntValue(-1)),
            [[0x18].as_slice(), &[0xff; 9], &[0x01]].concat()
        );
        assert_eq!(
            encode(Value::DoubleValue(1.0)),
            [[0x21].as_slice(), &1f64.to_le_bytes()].concat()
        );
        assert_eq!(
            encode(Value::ArrayValue(wire::ArrayValue::default())),
            [0x2a, 0x00]
        );
        assert_eq!(
            encode(Value::KvlistValue(wire::KeyValueList::default())),
            [0x32, 0x00]
        );
        assert_eq!(encode(Value::BytesValue(vec![7])), [0x3a, 0x01, 0x07]);
    }

    #[test]
    fn metrics_use_the_proto_field_numbers() {
        let metric = |data| wire::Metric {
            data: Some(data),
            ..wire::Metric::default()
        };
        let first_byte = |data| metric(data).encode_to_vec().first().copied();
        use wire::metric::Data;
        assert_eq!(first_byte(Data::Gauge(wire::Gauge::default())), Some(0x2a));
        assert_eq!(first_byte(Data::Sum(wire::Sum::default())), Some(0x3a));
        assert_eq!(first_byte(Data::Histogram(wire::Histogram {})), Some(0x4a));
        assert_eq!(
            first_byte(Data::ExponentialHistogram(wire::ExponentialHistogram {})),
            Some(0x52)
        );
        assert_eq!(first_byte(Data::Summary(wire::Summary {})), Some(0x5a));
        let sum = wire::Sum {
            data_points: vec![],
            aggregation_temporality: 2,
            is_monotonic: true,
        };
        assert_eq!(sum.encode_to_vec(), [0x10, 0x02, 0x18, 0x01]);
        let with_metadata = wire::Metric {
            metadata: vec![wire::KeyValue::default()],
            ..wire::Metric::default()
        };
        assert_eq!(with_metadata.encode_to_vec(), [0x62, 0x00]);
        let scope = wire::InstrumentationScope {
            name: "n".into(),
            version: "v".into(),
            attributes: vec![wire::KeyValue::default()],
            dropped_attributes_count: 3,
        };
        assert_eq!(
            scope.encode_to_vec(),
            [0x0a, 0x01, b'n', 0x12, 0x01, b'v', 0x1a, 0x00, 0x20, 0x03]
        );
        let resource = wire::Resource {
            attributes: vec![],
            dropped_attributes_count: 4,
        };
        assert_eq!(resource.encode_to_vec(), [0x10, 0x04]);
        let rm = wire::ResourceMetrics {
            resource: Some(wire::Resource::default()),
            scope_metrics: vec![wire::ScopeMetrics::default()],
            schema_url: "s".into(),
        };
        assert_eq!(
            rm.encode_to_vec(),
            [0x0a, 0x00, 0x12, 0x00, 0x1a, 0x01, b's']
        );
        let sm = wire::ScopeMetrics {
            scope: Some(wire::InstrumentationScope::default()),
            metrics: vec![wire::Metric::default()],
            schema_url: "s".into(),
        };
        assert_eq!(
            sm.encode_to_vec(),
            [0x0a, 0x00, 0x12, 0x00, 0x1a, 0x01, b's']
        );
        let data = wire::MetricsData {
            resource_metrics: vec![wire::ResourceMetrics::default()],
        };
        assert_eq!(data.encode_to_vec(), [0x0a, 0x00]);
    }

    #[test]
    fn problems_build_their_path_outwards() {
        let problem = Problem::at("histogram", "x")
            .within("metrics[2]")
            .within("scopeMetrics[1]");
        assert_eq!(problem.path, "scopeMetrics[1].metrics[2].histogram");
        let problem = Problem::new("x")
            .within("dataPoints[0]")
            .within("sum")
            .within("");
        assert_eq!(problem.path, "sum.dataPoints[0]");
        assert_eq!(
            Error::from(Problem::new("x")).to_string(),
            "invalid OTLP data at $: x"
        );
    }

    #[test]
    fn data_points_without_a_value_are_named() {
        let mut data_point = point(wire::number_data_point::Value::AsInt(1));
        data_point.value = None;
        let metric = wire::Metric {
            name: "m".into(),
            data: Some(wire::metric::Data::Gauge(wire::Gauge {
                data_points: vec![data_point],
            })),
            ..wire::Metric::default()
        };
        let data = wire::MetricsData {
            resource_metrics: vec![wire::ResourceMetrics {
                scope_metrics: vec![wire::ScopeMetrics {
                    metrics: vec![metric],
                    ..wire::ScopeMetrics::default()
                }],
                ..wire::ResourceMetrics::default()
            }],
        };
        let err = Snapshot::try_from(data).err();
        let Some(Error::Otlp { path, message }) = err else {
            panic!("expected an error")
        };
        assert_eq!(
            path,
            "resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0]"
        );
        assert!(message.contains("no value"), "{message}");
    }
}
