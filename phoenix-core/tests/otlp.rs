//! OTLP conversion: the collector fixture, losslessness, and errors for what the model cannot
//! hold.
#![cfg(feature = "otlp")]
#![allow(clippy::unwrap_used)]

use phoenix_core::Error;
use phoenix_core::otlp::{self, wire};
use phoenix_core::telemetry::{
    AnyValue, Attributes, DataPoint, KeyValue, Metric, MetricData, MetricName, NumberValue,
    ProcessMetric, Resource, Scope, ScopeMetrics, Snapshot, Temporality, Timestamp,
};
use proptest::prelude::*;
use prost::Message as _;

const FIXTURE: &str = include_str!("fixtures/otlp/hostmetrics-process.json");

fn fixture() -> Snapshot {
    otlp::from_json(FIXTURE).unwrap()
}

fn otlp_error(result: Result<Snapshot, Error>) -> (String, String) {
    match result {
        Err(Error::Otlp { path, message }) => (path, message),
        other => panic!("expected an OTLP error, got {other:?}"),
    }
}

/// One resource with one scope holding `metric_json`, as OTLP JSON.
fn document_with_metric(metric_json: &str) -> String {
    format!(
        r#"{{"resourceMetrics":[{{"resource":{{}},"scopeMetrics":[{{"scope":{{}},"metrics":[{{"name":"ok","gauge":{{"dataPoints":[{{"asInt":"1"}}]}}}},{metric_json}]}}]}}]}}"#
    )
}

#[test]
fn the_fixture_parses_into_the_process_scraper_model() {
    let snapshot = fixture();
    assert_eq!(snapshot.resources.len(), 2);
    let systemd = &snapshot.resources[0];
    assert_eq!(
        systemd.attributes.get("process.pid"),
        Some(&AnyValue::Int(1))
    );
    assert_eq!(
        systemd.attributes.get("process.parent_pid"),
        Some(&AnyValue::Int(0))
    );
    assert_eq!(
        systemd.attributes.get_str("process.executable.name"),
        Some("systemd")
    );
    assert_eq!(
        systemd.attributes.get_str("host.name"),
        Some("phoenix-node-1")
    );
    assert_eq!(systemd.schema_url, "https://opentelemetry.io/schemas/1.9.0");
    let scope = &systemd.scopes[0].scope;
    assert!(
        scope
            .name
            .ends_with("/hostmetricsreceiver/internal/scraper/processscraper")
    );
    assert!(!scope.version.is_empty());

    let names: Vec<_> = systemd.metrics().map(|m| m.name.clone()).collect();
    assert_eq!(
        names,
        [
            ProcessMetric::CpuTime,
            ProcessMetric::CpuUtilization,
            ProcessMetric::DiskIo,
            ProcessMetric::MemoryUsage,
            ProcessMetric::MemoryVirtual,
        ]
        .map(MetricName::from)
    );
    for metric in systemd.metrics() {
        let process = metric.name.process_metric().unwrap();
        let template = Metric::process(process);
        assert_eq!(metric.description, template.description, "{}", metric.name);
        assert_eq!(metric.unit, template.unit, "{}", metric.name);
        assert_eq!(metric.data.kind(), template.data.kind(), "{}", metric.name);
        assert_eq!(
            metric.data.points().len(),
            process.points_per_scrape(),
            "{}",
            metric.name
        );
    }
    let cpu = systemd.metrics().next().unwrap();
    assert!(matches!(
        cpu.data,
        MetricData::Sum {
            temporality: Temporality::Cumulative,
            monotonic: true,
            ..
        }
    ));
    assert_eq!(cpu.data.points()[2].value, NumberValue::Double(0.0));
    assert_eq!(snapshot.data_point_count(), 2 * 10 + 2);

    let fixture_scope = &snapshot.resources[1].scopes[1];
    let kinds: Vec<_> = fixture_scope
        .scope
        .attributes
        .iter()
        .map(|kv| &kv.value)
        .collect();
    assert!(kinds.iter().any(|v| matches!(v, AnyValue::String(_))));
    assert!(kinds.iter().any(|v| matches!(v, AnyValue::Bool(false))));
    assert!(kinds.iter().any(|v| matches!(v, AnyValue::Int(i64::MIN))));
    assert!(kinds.iter().any(|v| matches!(v, AnyValue::Double(_))));
    assert!(kinds.iter().any(|v| matches!(v, AnyValue::Array(_))));
    assert!(kinds.iter().any(|v| matches!(v, AnyValue::Map(_))));
    assert!(
        kinds
            .iter()
            .any(|v| matches!(v, AnyValue::Bytes(b) if b == b"phoenix"))
    );
    assert!(kinds.iter().any(|v| matches!(v, AnyValue::Empty)));
    let delta = &fixture_scope.metrics[0];
    assert!(matches!(
        delta.data,
        MetricData::Sum {
            temporality: Temporality::Delta,
            ..
        }
    ));
    assert_eq!(delta.data.points()[0].value, NumberValue::Int(-42));
    assert_eq!(
        delta.data.points()[0].attributes.get("zero"),
        Some(&AnyValue::Int(0))
    );
    assert_eq!(delta.data.points()[1].flags, 1);
    assert_eq!(delta.metadata.get_str("fixture.metadata"), Some("kept"));
}

#[test]
fn the_fixture_is_written_back_as_the_collector_wrote_it() {
    let written = otlp::to_json(&fixture());
    assert!(!written.contains('\n'), "one line");
    // Byte for byte: key order and number spelling as the collector writes them.
    assert_eq!(written, FIXTURE.trim_end());
    let written: serde_json::Value = serde_json::from_str(&written).unwrap();
    let original: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
    assert_eq!(written, original);
}

#[test]
fn the_fixture_survives_protobuf() {
    let snapshot = fixture();
    let bytes = otlp::encode_protobuf(&snapshot);
    assert_eq!(otlp::decode_protobuf(&bytes).unwrap(), snapshot);
    let request = wire::ExportMetricsServiceRequest::decode(bytes.as_slice()).unwrap();
    assert_eq!(Snapshot::try_from(request).unwrap(), snapshot);
}

#[test]
fn histograms_in_json_are_an_error_naming_them() {
    let json = document_with_metric(
        r#"{"name":"h","histogram":{"dataPoints":[{"count":"3","sum":1.5,"bucketCounts":["1","2"],"explicitBounds":[1]}],"aggregationTemporality":2}}"#,
    );
    let (path, message) = otlp_error(otlp::from_json(&json));
    assert_eq!(
        path,
        "resourceMetrics[0].scopeMetrics[0].metrics[1].histogram"
    );
    assert!(
        message.contains("histogram data is not supported"),
        "{message}"
    );

    for (member, what) in [
        ("exponentialHistogram", "exponential histogram"),
        ("summary", "summary"),
    ] {
        let json = document_with_metric(&format!(r#"{{"name":"x","{member}":{{}}}}"#));
        let (path, message) = otlp_error(otlp::from_json(&json));
        assert_eq!(
            path,
            format!("resourceMetrics[0].scopeMetrics[0].metrics[1].{member}")
        );
        assert!(message.contains(what), "{message}");
    }
}

/// Just enough of the real histogram messages to encode one with content.
mod real {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricsData {
        #[prost(message, repeated, tag = "1")]
        pub resource_metrics: Vec<ResourceMetrics>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceMetrics {
        #[prost(message, repeated, tag = "2")]
        pub scope_metrics: Vec<ScopeMetrics>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeMetrics {
        #[prost(message, repeated, tag = "2")]
        pub metrics: Vec<Metric>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metric {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "9")]
        pub histogram: Option<Histogram>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Histogram {
        #[prost(message, repeated, tag = "1")]
        pub data_points: Vec<HistogramDataPoint>,
        #[prost(int32, tag = "2")]
        pub aggregation_temporality: i32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct HistogramDataPoint {
        #[prost(fixed64, tag = "4")]
        pub count: u64,
        #[prost(fixed64, repeated, tag = "6")]
        pub bucket_counts: Vec<u64>,
        #[prost(double, repeated, tag = "7")]
        pub explicit_bounds: Vec<f64>,
    }
}

#[test]
fn histograms_in_protobuf_are_an_error_naming_them() {
    let histogram = real::Histogram {
        data_points: vec![real::HistogramDataPoint {
            count: 3,
            bucket_counts: vec![1, 2],
            explicit_bounds: vec![1.0],
        }],
        aggregation_temporality: 2,
    };
    let data = real::MetricsData {
        resource_metrics: vec![real::ResourceMetrics {
            scope_metrics: vec![real::ScopeMetrics {
                metrics: vec![
                    real::Metric {
                        name: "no data".into(),
                        histogram: None,
                    },
                    real::Metric {
                        name: "h".into(),
                        histogram: Some(histogram),
                    },
                ],
            }],
        }],
    };
    let (path, message) = otlp_error(otlp::decode_protobuf(&data.encode_to_vec()));
    // The first metric has no data at all, which is reported first.
    assert_eq!(path, "resourceMetrics[0].scopeMetrics[0].metrics[0]");
    assert!(message.contains("no data"), "{message}");

    let mut data = data;
    data.resource_metrics[0].scope_metrics[0].metrics.remove(0);
    let (path, message) = otlp_error(otlp::decode_protobuf(&data.encode_to_vec()));
    assert_eq!(
        path,
        "resourceMetrics[0].scopeMetrics[0].metrics[0].histogram"
    );
    assert!(
        message.contains("histogram data is not supported"),
        "{message}"
    );
}

#[test]
fn exemplars_and_points_without_values_are_errors_naming_them() {
    let json = document_with_metric(
        r#"{"name":"s","sum":{"dataPoints":[{"asInt":"1"},{"asInt":"2","exemplars":[{"asInt":"2"}]}],"aggregationTemporality":2}}"#,
    );
    let (path, message) = otlp_error(otlp::from_json(&json));
    assert_eq!(
        path,
        "resourceMetrics[0].scopeMetrics[0].metrics[1].sum.dataPoints[1].exemplars"
    );
    assert!(message.contains("exemplars"), "{message}");

    let json =
        document_with_metric(r#"{"name":"g","gauge":{"dataPoints":[{"timeUnixNano":"5"}]}}"#);
    let (path, message) = otlp_error(otlp::from_json(&json));
    assert_eq!(
        path,
        "resourceMetrics[0].scopeMetrics[0].metrics[1].gauge.dataPoints[0]"
    );
    assert!(message.contains("no value"), "{message}");
}

#[test]
fn malformed_json_is_an_error_saying_where() {
    let cut = &FIXTURE[..FIXTURE.len() / 2];
    let (path, message) = otlp_error(otlp::from_json(cut));
    assert!(path.starts_with("resourceMetrics[1]"), "{path}");
    assert!(message.contains("EOF"), "{message}");

    let (path, message) = otlp_error(otlp::from_json("not json"));
    assert_eq!(path, "$");
    assert!(message.contains("malformed OTLP JSON"), "{message}");

    let json = document_with_metric(
        r#"{"name":"g","gauge":{"dataPoints":[{"timeUnixNano":true,"asInt":"1"}]}}"#,
    );
    let (path, message) = otlp_error(otlp::from_json(&json));
    assert_eq!(
        path,
        "resourceMetrics[0].scopeMetrics[0].metrics[1].gauge.dataPoints[0].timeUnixNano"
    );
    assert!(message.contains("64-bit"), "{message}");

    // The path names the member of a oneof that was one too many.
    let json = document_with_metric(
        r#"{"name":"g","gauge":{"dataPoints":[{"asInt":"1","asDouble":1.5},{"asInt":"2"}]}}"#,
    );
    let (path, message) = otlp_error(otlp::from_json(&json));
    assert_eq!(
        path,
        "resourceMetrics[0].scopeMetrics[0].metrics[1].gauge.dataPoints[0].asDouble"
    );
    assert!(
        message.contains("more than one of asDouble and asInt"),
        "{message}"
    );

    let json = document_with_metric(r#"{"name":"g","gauge":{},"sum":{}}"#);
    let (path, message) = otlp_error(otlp::from_json(&json));
    assert_eq!(path, "resourceMetrics[0].scopeMetrics[0].metrics[1].sum");
    assert!(message.contains("more than one of gauge, sum"), "{message}");
}

#[test]
fn malformed_protobuf_is_an_error() {
    let bytes = otlp::encode_protobuf(&fixture());
    let (path, message) = otlp_error(otlp::decode_protobuf(&bytes[..bytes.len() - 3]));
    assert_eq!(path, "$");
    assert!(message.contains("malformed OTLP protobuf"), "{message}");
}

#[test]
fn unknown_aggregation_temporality_is_an_error_naming_the_field() {
    let json = document_with_metric(
        r#"{"name":"s","sum":{"dataPoints":[{"asInt":"1"}],"aggregationTemporality":7}}"#,
    );
    let (path, message) = otlp_error(otlp::from_json(&json));
    assert_eq!(
        path,
        "resourceMetrics[0].scopeMetrics[0].metrics[1].sum.aggregationTemporality"
    );
    assert!(
        message.contains("unknown aggregation temporality 7"),
        "{message}"
    );

    let mut data = wire::MetricsData::from(&fixture());
    let Some(wire::metric::Data::Sum(sum)) =
        &mut data.resource_metrics[1].scope_metrics[0].metrics[0].data
    else {
        panic!("process.cpu.time is a sum");
    };
    sum.aggregation_temporality = 3;
    let (path, _) = otlp_error(otlp::decode_protobuf(&data.encode_to_vec()));
    assert_eq!(
        path,
        "resourceMetrics[1].scopeMetrics[0].metrics[0].sum.aggregationTemporality"
    );
}

#[test]
fn lenient_reading_accepts_numbers_names_nulls_and_unknown_fields() {
    let json = r#"{
        "resourceMetrics": [{
            "resource": {"attributes": [{"key": "process.pid", "value": {"intValue": 42}}],
                         "droppedAttributesCount": "2", "entityRefs": [{"type": "process"}]},
            "scope_metrics": [{
                "scope": null,
                "metrics": [{
                    "name": "process.memory.usage",
                    "sum": {"dataPoints": [{"startTimeUnixNano": 1700000000000000000,
                                            "timeUnixNano": "1700000060000000000",
                                            "asInt": -5, "flags": "1"},
                                           {"time_unix_nano": 1, "asDouble": 2, "somethingNew": [1.5]}],
                            "aggregationTemporality": "AGGREGATION_TEMPORALITY_DELTA",
                            "isMonotonic": null},
                    "futureField": {"nested": 1e400}
                }]
            }]
        }],
        "unknown": 1
    }"#;
    let snapshot = otlp::from_json(json).unwrap();
    let resource = &snapshot.resources[0];
    assert_eq!(
        resource.attributes.get("process.pid"),
        Some(&AnyValue::Int(42))
    );
    assert_eq!(resource.dropped_attributes_count, 2);
    assert_eq!(resource.scopes[0].scope, Scope::default());
    let metric = &resource.scopes[0].metrics[0];
    assert_eq!(metric.name, MetricName::Process(ProcessMetric::MemoryUsage));
    let MetricData::Sum {
        points,
        temporality,
        monotonic,
    } = &metric.data
    else {
        panic!("a sum");
    };
    assert_eq!(*temporality, Temporality::Delta);
    assert!(!monotonic);
    assert_eq!(
        points[0].start_time,
        Timestamp::from_nanos(1_700_000_000_000_000_000)
    );
    assert_eq!(
        points[0].time,
        Timestamp::from_nanos(1_700_000_060_000_000_000)
    );
    assert_eq!(points[0].value, NumberValue::Int(-5));
    assert_eq!(points[0].flags, 1);
    assert_eq!(points[1].time, Timestamp::from_nanos(1));
    assert_eq!(points[1].value, NumberValue::Double(2.0));
}

#[test]
fn large_integers_given_as_numbers_are_exact() {
    let json = document_with_metric(
        r#"{"name":"g","gauge":{"dataPoints":[{"timeUnixNano":18446744073709551615,"asInt":-9223372036854775808},{"asDouble":9007199254740993}]}}"#,
    );
    let snapshot = otlp::from_json(&json).unwrap();
    let points = snapshot.resources[0].scopes[0].metrics[1].data.points();
    assert_eq!(points[0].time, Timestamp::from_nanos(u64::MAX));
    assert_eq!(points[0].value, NumberValue::Int(i64::MIN));
    // 2^53 + 1 rounds to the nearest double, as parsing its decimal text would.
    assert_eq!(
        points[1].value,
        NumberValue::Double(9_007_199_254_740_992.0)
    );
}

fn snapshot_with_doubles(values: &[f64]) -> Snapshot {
    let points = values
        .iter()
        .map(|&v| {
            DataPoint::new(Timestamp::from_secs(1), Timestamp::from_secs(2), v)
                .with_attribute("as.attribute", v)
        })
        .collect();
    let metric = Metric {
        name: MetricName::from("special"),
        description: String::new(),
        unit: String::new(),
        metadata: Attributes::new(),
        data: MetricData::Gauge { points },
    };
    Snapshot::new(vec![Resource {
        scopes: vec![ScopeMetrics {
            metrics: vec![metric],
            ..ScopeMetrics::default()
        }],
        ..Resource::default()
    }])
}

fn doubles_of(snapshot: &Snapshot) -> Vec<(f64, f64)> {
    snapshot
        .data_points()
        .map(|(_, _, p)| {
            let NumberValue::Double(value) = p.value else {
                panic!("a double")
            };
            let Some(AnyValue::Double(attribute)) = p.attributes.get("as.attribute") else {
                panic!("a double attribute")
            };
            (value, *attribute)
        })
        .collect()
}

#[test]
fn nan_and_infinities_round_trip() {
    let values = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        f64::MIN_POSITIVE,
        f64::MAX,
    ];
    let snapshot = snapshot_with_doubles(&values);
    let json = otlp::to_json(&snapshot);
    for written in [
        r#""asDouble":"NaN""#,
        r#""asDouble":"+Inf""#,
        r#""asDouble":"-Inf""#,
    ] {
        assert!(json.contains(written), "{written} in {json}");
    }
    assert!(json.contains(r#"{"doubleValue":"NaN"}"#), "{json}");

    let bits = |pairs: Vec<(f64, f64)>| -> Vec<(u64, u64)> {
        pairs
            .into_iter()
            .map(|(a, b)| (a.to_bits(), b.to_bits()))
            .collect()
    };
    let expected = bits(values.iter().map(|&v| (v, v)).collect());
    let from_json = otlp::from_json(&json).unwrap();
    assert_eq!(bits(doubles_of(&from_json)), expected);
    let from_protobuf = otlp::decode_protobuf(&otlp::encode_protobuf(&snapshot)).unwrap();
    assert_eq!(bits(doubles_of(&from_protobuf)), expected);

    // protojson's spelling is read too.
    let protojson = json
        .replace(r#""+Inf""#, r#""Infinity""#)
        .replace(r#""-Inf""#, r#""-Infinity""#);
    assert_eq!(
        bits(doubles_of(&otlp::from_json(&protojson).unwrap())),
        expected
    );
}

// ---------------------------------------------------------------------------------------------
// Random models.

fn finite_double() -> impl Strategy<Value = f64> {
    use proptest::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    prop_oneof![
        POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO,
        (-1_000_000i64..1_000_000).prop_map(|i| i as f64 / 100.0),
    ]
}

fn any_value() -> impl Strategy<Value = AnyValue> {
    let leaf = prop_oneof![
        Just(AnyValue::Empty),
        any::<String>().prop_map(AnyValue::String),
        any::<bool>().prop_map(AnyValue::Bool),
        any::<i64>().prop_map(AnyValue::Int),
        finite_double().prop_map(AnyValue::Double),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(AnyValue::Bytes),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(AnyValue::Array),
            attributes_of(inner).prop_map(AnyValue::Map),
        ]
    })
}

fn attributes_of(values: impl Strategy<Value = AnyValue>) -> impl Strategy<Value = Attributes> {
    proptest::collection::vec((any::<String>(), values), 0..4).prop_map(|pairs| {
        Attributes::from(
            pairs
                .into_iter()
                .map(|(k, v)| KeyValue::new(k, v))
                .collect::<Vec<_>>(),
        )
    })
}

fn attributes() -> impl Strategy<Value = Attributes> {
    attributes_of(any_value())
}

fn data_point() -> impl Strategy<Value = DataPoint> {
    let value = prop_oneof![
        any::<i64>().prop_map(NumberValue::Int),
        finite_double().prop_map(NumberValue::Double),
    ];
    (
        attributes(),
        any::<u64>(),
        any::<u64>(),
        value,
        any::<u32>(),
    )
        .prop_map(|(attributes, start, time, value, flags)| DataPoint {
            attributes,
            start_time: Timestamp::from_nanos(start),
            time: Timestamp::from_nanos(time),
            value,
            flags,
        })
}

fn metric() -> impl Strategy<Value = Metric> {
    let name = prop_oneof![
        proptest::sample::select(ProcessMetric::ALL.to_vec()).prop_map(MetricName::from),
        any::<String>().prop_map(MetricName::from),
    ];
    let points = || proptest::collection::vec(data_point(), 0..4);
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
    (name, any::<String>(), any::<String>(), attributes(), data).prop_map(
        |(name, description, unit, metadata, data)| Metric {
            name,
            description,
            unit,
            metadata,
            data,
        },
    )
}

fn scope_metrics() -> impl Strategy<Value = ScopeMetrics> {
    let scope = (any::<String>(), any::<String>(), attributes(), any::<u32>()).prop_map(
        |(name, version, attributes, dropped_attributes_count)| Scope {
            name,
            version,
            attributes,
            dropped_attributes_count,
        },
    );
    (
        scope,
        any::<String>(),
        proptest::collection::vec(metric(), 0..3),
    )
        .prop_map(|(scope, schema_url, metrics)| ScopeMetrics {
            scope,
            schema_url,
            metrics,
        })
}

fn snapshot() -> impl Strategy<Value = Snapshot> {
    let resource = (
        attributes(),
        any::<u32>(),
        any::<String>(),
        proptest::collection::vec(scope_metrics(), 0..3),
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
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_models_round_trip_through_protobuf(snapshot in snapshot()) {
        let decoded = otlp::decode_protobuf(&otlp::encode_protobuf(&snapshot)).unwrap();
        prop_assert_eq!(decoded, snapshot);
    }

    #[test]
    fn random_models_round_trip_through_json(snapshot in snapshot()) {
        let json = otlp::to_json(&snapshot);
        prop_assert!(!json.contains('\n'));
        let decoded = otlp::from_json(&json).unwrap();
        prop_assert_eq!(decoded, snapshot);
    }

    #[test]
    fn json_is_stable_once_written(snapshot in snapshot()) {
        let json = otlp::to_json(&snapshot);
        let again = otlp::to_json(&otlp::from_json(&json).unwrap());
        prop_assert_eq!(again, json);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut json = FIXTURE.as_bytes().to_vec();
        let mut protobuf = otlp::encode_protobuf(&fixture());
        for (index, byte) in edits {
            let i = index.index(json.len());
            json[i] = byte;
            let i = index.index(protobuf.len());
            protobuf[i] = byte;
        }
        let _ = otlp::from_json(&String::from_utf8_lossy(&json));
        let _ = otlp::decode_protobuf(&protobuf);
    }

    #[test]
    fn arbitrary_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = otlp::decode_protobuf(&bytes);
        let _ = otlp::from_json(&String::from_utf8_lossy(&bytes));
    }
}
