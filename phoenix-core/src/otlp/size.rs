//! The size of a snapshot's OTLP protobuf encoding, computed from the model without encoding.
//!
//! Follows the encoding of [`encode_protobuf`](super::encode_protobuf) field by field (see the
//! [`wire`](super::wire) types): proto3 scalars at their default are left out, the `resource`,
//! `scope`, metric data and `KeyValue.value` messages are always written (possibly empty), and
//! oneof members are written whenever set, defaults included.

use crate::telemetry::{
    AnyValue, Attributes, DataPoint, Metric, MetricData, Resource, Scope, ScopeMetrics, Snapshot,
    Temporality,
};

/// The number of bytes [`encode_protobuf`](super::encode_protobuf) writes for `snapshot`,
/// computed without building the message (no copies, no allocation).
///
/// ```
/// use phoenix_core::otlp;
/// use phoenix_core::telemetry::{
///     DataPoint, Metric, ProcessMetric, Resource, ScopeMetrics, Snapshot, Timestamp,
/// };
///
/// let mut memory = Metric::process(ProcessMetric::MemoryUsage);
/// memory.data.points_mut().push(DataPoint::new(Timestamp::UNSET, Timestamp::from_secs(9), 4096));
/// let resource = Resource {
///     scopes: vec![ScopeMetrics { metrics: vec![memory], ..ScopeMetrics::default() }],
///     ..Resource::default()
/// };
/// let snapshot = Snapshot::new(vec![resource]);
/// assert_eq!(otlp::encoded_len(&snapshot), otlp::encode_protobuf(&snapshot).len());
/// ```
pub fn encoded_len(snapshot: &Snapshot) -> usize {
    snapshot
        .resources
        .iter()
        .map(|r| nested(resource_len(r)))
        .sum()
}

/// The size of one `ResourceMetrics` message (without its own tag and length).
fn resource_len(resource: &Resource) -> usize {
    resource_metrics_len(
        &resource.attributes,
        resource.dropped_attributes_count,
        &resource.schema_url,
        resource
            .scopes
            .iter()
            .map(|s| nested(scope_metrics_len(s)))
            .sum(),
    )
}

fn resource_metrics_len(
    attributes: &Attributes,
    dropped_attributes_count: u32,
    schema_url: &str,
    scopes_len: usize,
) -> usize {
    nested(attributes_len(attributes) + uint32_len(dropped_attributes_count))
        + scopes_len
        + string_len(schema_url)
}

fn scope_metrics_len(scope: &ScopeMetrics) -> usize {
    nested(scope_len(&scope.scope))
        + scope
            .metrics
            .iter()
            .map(|m| {
                nested(metric_len(
                    &MetricHeader::of(m),
                    m.data.points().iter().map(point_encoded_len).sum(),
                ))
            })
            .sum::<usize>()
        + string_len(&scope.schema_url)
}

fn scope_len(scope: &Scope) -> usize {
    string_len(&scope.name)
        + string_len(&scope.version)
        + attributes_len(&scope.attributes)
        + uint32_len(scope.dropped_attributes_count)
}

/// What a `Metric` message holds apart from its points.
#[derive(Debug, Clone, Copy)]
pub struct MetricHeader<'a> {
    /// The metric name.
    pub name: &'a str,
    /// The description.
    pub description: &'a str,
    /// The unit.
    pub unit: &'a str,
    /// The metadata.
    pub metadata: &'a Attributes,
    /// For a sum, its temporality and monotonicity; `None` for a gauge.
    pub sum: Option<(Temporality, bool)>,
}

impl<'a> MetricHeader<'a> {
    /// The header of `metric`.
    pub fn of(metric: &'a Metric) -> Self {
        Self {
            name: metric.name.as_str(),
            description: &metric.description,
            unit: &metric.unit,
            metadata: &metric.metadata,
            sum: match &metric.data {
                MetricData::Gauge { .. } => None,
                MetricData::Sum {
                    temporality,
                    monotonic,
                    ..
                } => Some((*temporality, *monotonic)),
            },
        }
    }
}

fn metric_len(header: &MetricHeader<'_>, points_len: usize) -> usize {
    let data = match header.sum {
        None => points_len,
        Some((temporality, monotonic)) => {
            let temporality = match temporality {
                Temporality::Unspecified => 0,
                Temporality::Delta | Temporality::Cumulative => 2,
            };
            points_len + temporality + if monotonic { 2 } else { 0 }
        }
    };
    string_len(header.name)
        + string_len(header.description)
        + string_len(header.unit)
        + nested(data)
        + attributes_len(header.metadata)
}

fn point_len(point: &DataPoint, attributes_len: usize) -> usize {
    let fixed64 = |v: u64| if v == 0 { 0 } else { 9 };
    // The value (`as_int` or `as_double`) is a oneof member: written even when zero, as a
    // tag and 8 bytes.
    let value = 9;
    attributes_len
        + fixed64(point.start_time.as_nanos())
        + fixed64(point.time.as_nanos())
        + value
        + uint32_len(point.flags)
}

// The parts of an encoding, for callers that hold a message's parts apart (or know some of
// their sizes already). Each gives the bytes the part adds to the message that holds it
// (its tag and length included); a message's size is the sum of its parts'.

/// The bytes a data point adds to its metric's encoding.
pub fn point_encoded_len(point: &DataPoint) -> usize {
    nested(point_len(point, attributes_len(&point.attributes)))
}

/// As [`point_encoded_len`], with the size of the point's attributes given
/// ([`attributes_encoded_len`]) instead of those of `point`, which are not looked at.
pub fn point_encoded_len_with(point: &DataPoint, attributes_len: usize) -> usize {
    nested(point_len(point, attributes_len))
}

/// The bytes a list of attributes adds to the message that holds it.
pub fn attributes_encoded_len(attributes: &Attributes) -> usize {
    attributes_len(attributes)
}

/// The bytes a metric adds to its scope's encoding, given what its points add
/// (the sum of their [`point_encoded_len`]).
pub fn metric_encoded_len(header: &MetricHeader<'_>, points_len: usize) -> usize {
    nested(metric_len(header, points_len))
}

/// The bytes a `ScopeMetrics` adds to its resource's encoding, given what its metrics add
/// (the sum of their [`metric_encoded_len`]).
pub fn scope_metrics_encoded_len(scope: &Scope, schema_url: &str, metrics_len: usize) -> usize {
    nested(nested(scope_len(scope)) + metrics_len + string_len(schema_url))
}

/// The bytes a `ResourceMetrics` adds to the encoding of a snapshot, given what its scopes
/// add (the sum of their [`scope_metrics_encoded_len`]).
pub fn resource_metrics_encoded_len(
    attributes: &Attributes,
    dropped_attributes_count: u32,
    schema_url: &str,
    scopes_len: usize,
) -> usize {
    nested(resource_metrics_len(
        attributes,
        dropped_attributes_count,
        schema_url,
        scopes_len,
    ))
}

/// The size of a repeated `KeyValue` field with a one-byte tag.
fn attributes_len(attributes: &Attributes) -> usize {
    attributes
        .iter()
        .map(|kv| nested(string_len(&kv.key) + nested(any_value_len(&kv.value))))
        .sum()
}

/// The size of an `AnyValue` message (without its own tag and length).
fn any_value_len(value: &AnyValue) -> usize {
    match value {
        AnyValue::Empty => 0,
        AnyValue::String(s) => nested(s.len()),
        AnyValue::Bool(_) => 2,
        // int64 is a varint of the two's complement: negative values take ten bytes.
        AnyValue::Int(i) => 1 + varint_len(i.cast_unsigned()),
        AnyValue::Double(_) => 9,
        AnyValue::Array(values) => nested(values.iter().map(|v| nested(any_value_len(v))).sum()),
        AnyValue::Map(map) => nested(attributes_len(map)),
        AnyValue::Bytes(b) => nested(b.len()),
    }
}

/// A length-delimited field with a one-byte tag whose content is `len` bytes: tag, length,
/// content. Every field of the subset has a tag below 16, so every tag takes one byte.
fn nested(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// A proto3 string field: left out when empty.
fn string_len(s: &str) -> usize {
    if s.is_empty() { 0 } else { nested(s.len()) }
}

/// A proto3 `uint32` field: left out when zero.
fn uint32_len(v: u32) -> usize {
    if v == 0 {
        0
    } else {
        1 + varint_len(u64::from(v))
    }
}

/// The number of bytes of `v` as a base-128 varint.
fn varint_len(v: u64) -> usize {
    // One byte per started group of 7 bits; zero takes one byte.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::otlp::encode_protobuf;
    use crate::telemetry::{KeyValue, MetricName, NumberValue, ProcessMetric, Timestamp};

    #[test]
    fn varints_take_one_byte_per_seven_bits() {
        for (v, len) in [
            (0, 1),
            (1, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (u64::from(u32::MAX), 5),
            (u64::MAX, 10),
        ] {
            assert_eq!(varint_len(v), len, "{v}");
        }
    }

    #[test]
    fn the_empty_snapshot_and_empty_messages() {
        let empty = Snapshot::default();
        assert_eq!(encoded_len(&empty), 0);
        let one = Snapshot::new(vec![Resource {
            scopes: vec![ScopeMetrics {
                metrics: vec![Metric::process(ProcessMetric::CpuTime)],
                ..ScopeMetrics::default()
            }],
            ..Resource::default()
        }]);
        assert_eq!(encoded_len(&one), encode_protobuf(&one).len());
    }

    fn any_value() -> impl Strategy<Value = AnyValue> {
        let leaf = prop_oneof![
            Just(AnyValue::Empty),
            ".{0,20}".prop_map(AnyValue::String),
            any::<bool>().prop_map(AnyValue::Bool),
            any::<i64>().prop_map(AnyValue::Int),
            (-3_i64..200).prop_map(AnyValue::Int),
            any::<f64>().prop_map(AnyValue::Double),
            proptest::collection::vec(any::<u8>(), 0..200).prop_map(AnyValue::Bytes),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(AnyValue::Array),
                attributes_of(inner).prop_map(AnyValue::Map),
            ]
        })
    }

    fn attributes_of(values: impl Strategy<Value = AnyValue>) -> impl Strategy<Value = Attributes> {
        proptest::collection::vec((".{0,8}", values), 0..4).prop_map(|pairs| {
            Attributes::from(
                pairs
                    .into_iter()
                    .map(|(k, v)| KeyValue::new(k, v))
                    .collect::<Vec<_>>(),
            )
        })
    }

    fn data_point() -> impl Strategy<Value = DataPoint> {
        let value = prop_oneof![
            any::<i64>().prop_map(NumberValue::Int),
            any::<f64>().prop_map(NumberValue::Double),
        ];
        let time = prop_oneof![Just(0_u64), any::<u64>()];
        let flags = prop_oneof![Just(0_u32), any::<u32>()];
        (attributes_of(any_value()), time.clone(), time, value, flags).prop_map(
            |(attributes, start, time, value, flags)| DataPoint {
                attributes,
                start_time: Timestamp::from_nanos(start),
                time: Timestamp::from_nanos(time),
                value,
                flags,
            },
        )
    }

    fn metric() -> impl Strategy<Value = Metric> {
        let name = prop_oneof![
            proptest::sample::select(ProcessMetric::ALL.to_vec()).prop_map(MetricName::from),
            ".{0,30}".prop_map(MetricName::from),
        ];
        // Up to 40 points, so that some metrics are longer than 127 bytes.
        let points = || proptest::collection::vec(data_point(), 0..40);
        let temporality = prop_oneof![
            Just(Temporality::Unspecified),
            Just(Temporality::Delta),
            Just(Temporality::Cumulative)
        ];
        let data = prop_oneof![
            points().prop_map(|points| MetricData::Gauge { points }),
            (points(), temporality, any::<bool>()).prop_map(|(points, temporality, monotonic)| {
                MetricData::Sum {
                    points,
                    temporality,
                    monotonic,
                }
            }),
        ];
        (name, ".{0,4}", ".{0,4}", attributes_of(any_value()), data).prop_map(
            |(name, description, unit, metadata, data)| Metric {
                name,
                description,
                unit,
                metadata,
                data,
            },
        )
    }

    fn snapshot() -> impl Strategy<Value = Snapshot> {
        let scope = (".{0,4}", ".{0,4}", attributes_of(any_value()), any::<u32>()).prop_map(
            |(name, version, attributes, dropped_attributes_count)| Scope {
                name,
                version,
                attributes,
                dropped_attributes_count,
            },
        );
        let scope_metrics = (scope, ".{0,4}", proptest::collection::vec(metric(), 0..3)).prop_map(
            |(scope, schema_url, metrics)| ScopeMetrics {
                scope,
                schema_url,
                metrics,
            },
        );
        let resource = (
            attributes_of(any_value()),
            prop_oneof![Just(0_u32), any::<u32>()],
            ".{0,4}",
            proptest::collection::vec(scope_metrics, 0..3),
        )
            .prop_map(
                |(attributes, dropped_attributes_count, schema_url, scopes)| Resource {
                    attributes,
                    dropped_attributes_count,
                    schema_url,
                    scopes,
                },
            );
        proptest::collection::vec(resource, 0..3).prop_map(Snapshot::new)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn encoded_len_is_the_length_of_the_encoding(snapshot in snapshot()) {
            prop_assert_eq!(encoded_len(&snapshot), encode_protobuf(&snapshot).len());
        }

        /// The parts add up to the length of the encoding.
        #[test]
        fn the_parts_add_up_to_the_encoding(snapshot in snapshot()) {
            let total: usize = snapshot
                .resources
                .iter()
                .map(|r| {
                    let scopes = r
                        .scopes
                        .iter()
                        .map(|sm| {
                            let metrics = sm
                                .metrics
                                .iter()
                                .map(|m| {
                                    let points = m
                                        .data
                                        .points()
                                        .iter()
                                        .map(|p| {
                                            point_encoded_len_with(
                                                p,
                                                attributes_encoded_len(&p.attributes),
                                            )
                                        })
                                        .sum();
                                    metric_encoded_len(&MetricHeader::of(m), points)
                                })
                                .sum();
                            scope_metrics_encoded_len(&sm.scope, &sm.schema_url, metrics)
                        })
                        .sum();
                    resource_metrics_encoded_len(
                        &r.attributes,
                        r.dropped_attributes_count,
                        &r.schema_url,
                        scopes,
                    )
                })
                .sum();
            prop_assert_eq!(total, encode_protobuf(&snapshot).len());
        }
    }
}
