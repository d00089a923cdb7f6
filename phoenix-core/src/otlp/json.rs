//! OTLP JSON: serde helpers for the wire types, and reading and writing whole documents.
//!
//! The encoding rules are listed in the [`otlp`](super) module documentation. Most wire types
//! derive serde; the three messages that hold a oneof (`Metric`, `NumberDataPoint`,
//! `AnyValue`), whose members are keys of the message's JSON object, are written and read by
//! hand here.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::de::{self, MapAccess, Unexpected, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Problem;
use super::wire::{
    AggregationTemporality, AnyValue, ArrayValue, ExponentialHistogram, Gauge, Histogram,
    KeyValueList, Metric, MetricsData, NumberDataPoint, Sum, Summary, any_value, metric,
    number_data_point,
};

/// Writes `data` as one line of OTLP JSON.
pub(super) fn to_string(data: &MetricsData) -> String {
    // The wire types only write strings, numbers, booleans, sequences and maps with string
    // keys, and their Serialize impls never fail, so serde_json cannot fail here.
    serde_json::to_string(data).unwrap_or_else(|e| unreachable!("OTLP JSON serialisation: {e}"))
}

/// Reads one OTLP JSON document.
///
/// Doubles are read exactly because the workspace enables serde_json's `float_roundtrip`
/// feature (without it serde_json's float parser may be off by one unit in the last place, and
/// the JSON round-trip property test in `tests/otlp.rs` fails).
pub(super) fn from_str(json: &str) -> Result<MetricsData, Problem> {
    serde_json::from_str(json).map_err(|e| {
        let offset = byte_offset(json, e.line(), e.column());
        Problem::new(format!("malformed OTLP JSON: {e}")).within(path_at(json, offset))
    })
}

/// The index just past the string that starts with the quote at `start` (or the end of the
/// input if the string is not closed).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The byte offset of serde_json's one-based `line` and `column` in `json`.
fn byte_offset(json: &str, line: usize, column: usize) -> usize {
    let line_start = json
        .match_indices('\n')
        .nth(line.saturating_sub(2))
        .filter(|_| line > 1)
        .map_or(0, |(i, _)| i + 1);
    (line_start + column).min(json.len())
}

/// The path, in OTLP JSON field names, of the value being read at byte `offset` of `json`, e.g.
/// `resourceMetrics[0].scopeMetrics[1].metrics`. Empty at the top level.
fn path_at(json: &str, offset: usize) -> String {
    enum Frame<'a> {
        Object(Option<&'a str>),
        Array(usize),
    }
    let bytes = json.as_bytes();
    let end = offset.min(bytes.len());
    let mut stack: Vec<Frame<'_>> = Vec::new();
    let mut expecting_key = false;
    let mut i = 0;
    while i < end {
        match bytes[i] {
            b'"' => {
                let after = string_end(bytes, i);
                if expecting_key && let Some(Frame::Object(key)) = stack.last_mut() {
                    let close = if after > i + 1 && bytes[after - 1] == b'"' {
                        after - 1
                    } else {
                        after
                    };
                    *key = json.get(i + 1..close);
                    expecting_key = false;
                }
                i = after;
                continue;
            }
            b'{' => {
                stack.push(Frame::Object(None));
                expecting_key = true;
            }
            b'[' => stack.push(Frame::Array(0)),
            b'}' | b']' => {
                stack.pop();
                expecting_key = false;
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object(key)) => {
                    *key = None;
                    expecting_key = true;
                }
                Some(Frame::Array(index)) => *index += 1,
                None => {}
            },
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Object(Some(key)) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Object(None) => {}
            Frame::Array(index) => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

// ---------------------------------------------------------------------------------------------
// Field helpers used by the wire types' serde attributes.

/// Reads a field that may be `null`, which protojson reads as the default value.
pub(super) fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A value that reads JSON `null` as its default.
struct Nullable<T>(T);

impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for Nullable<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        nullable(deserializer).map(Nullable)
    }
}

/// Reads an integer field given as a JSON number or a decimal string, or `null`.
pub(super) fn integer<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Integer,
{
    Ok(Nullable::<Int<T>>::deserialize(deserializer)?.0.0)
}

/// Writes a message field that pdata always writes, as `{}` when it is not set.
pub(super) fn message_or_empty<T, S>(value: &Option<T>, serializer: S) -> Result<S::Ok, S::Error>
where
    T: Serialize + Default,
    S: Serializer,
{
    match value {
        Some(message) => message.serialize(serializer),
        None => T::default().serialize(serializer),
    }
}

/// Whether a number is zero, the default that is not written.
pub(super) fn is_zero<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// Whether a boolean is false, the default that is not written.
pub(super) fn is_false(value: &bool) -> bool {
    !value
}

/// Reads an aggregation temporality: a number, a decimal string, an enum name, or `null`.
/// Unknown numbers are kept, to be reported by the conversion to the model.
pub(super) fn temporality<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
    struct Temporality;
    impl Visitor<'_> for Temporality {
        type Value = i32;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an aggregation temporality number")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i32, E> {
            i32::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i32, E> {
            i32::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<i32, E> {
            match AggregationTemporality::from_str_name(v) {
                Some(known) => Ok(i32::from(known)),
                None => v
                    .parse()
                    .map_err(|_| E::invalid_value(Unexpected::Str(v), &self)),
            }
        }
        fn visit_unit<E: de::Error>(self) -> Result<i32, E> {
            Ok(0)
        }
    }
    deserializer.deserialize_any(Temporality)
}

/// The integer types of OTLP fields, with a name for error messages.
pub(super) trait Integer: TryFrom<u64> + TryFrom<i64> + FromStr + Default {
    /// What the field holds, for error messages.
    const WHAT: &'static str;
}

impl Integer for u32 {
    const WHAT: &'static str = "an unsigned 32-bit integer";
}

impl Integer for u64 {
    const WHAT: &'static str = "an unsigned 64-bit integer (a decimal string or a number)";
}

impl Integer for i64 {
    const WHAT: &'static str = "a signed 64-bit integer (a decimal string or a number)";
}

/// An integer read from a JSON number or a decimal string.
#[derive(Default)]
struct Int<T>(T);

impl<'de, T: Integer> Deserialize<'de> for Int<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntVisitor<T>(PhantomData<T>);
        impl<T: Integer> Visitor<'_> for IntVisitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(T::WHAT)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
                T::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
                T::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
                v.parse()
                    .map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
            }
        }
        deserializer
            .deserialize_any(IntVisitor(PhantomData))
            .map(Int)
    }
}

/// A 64-bit integer, written as a decimal string.
struct Decimal<T>(T);

impl<T: fmt::Display> Serialize for Decimal<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// A double, written as the collector's JSON encoder (Go's jsoniter via pdata) writes it:
/// the shortest text that reads back exactly, in fixed notation when `1e-6 <= |v| < 1e21` or
/// `v` is zero (`0`, `-0`, `0.25`, `100000000000000000000`), in exponent notation otherwise
/// (`1e-7`, `1.5e+21`); NaN and the infinities as the strings `"NaN"`, `"+Inf"` and
/// `"-Inf"`.
///
/// Read from a JSON number, or from a string that [`f64::from_str`] accepts: a decimal number
/// or `NaN`, `Infinity`, `-Infinity` (and Go's `+Inf` and `-Inf`), in any letter case.
struct Double(f64);

/// `v` as Go's `strconv.AppendFloat(v, fmt, -1, 64)` writes it with jsoniter's choice of
/// `fmt` and its clean-up of two-digit negative exponents (`e-07` becomes `e-7`).
fn go_float(v: f64) -> String {
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let text = format!("{v:e}");
        match text.split_once('e') {
            Some((mantissa, exponent)) if !exponent.starts_with('-') => {
                format!("{mantissa}e+{exponent}")
            }
            _ => text,
        }
    } else {
        // Rust's `Display` is the shortest round-trip text in fixed notation, as Go's 'f'.
        v.to_string()
    }
}

impl Serialize for Double {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_nan() {
            serializer.serialize_str("NaN")
        } else if v.is_infinite() {
            serializer.serialize_str(if v > 0.0 { "+Inf" } else { "-Inf" })
        } else {
            serde_json::value::RawValue::from_string(go_float(v))
                .map_err(serde::ser::Error::custom)?
                .serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Double {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DoubleVisitor;
        impl Visitor<'_> for DoubleVisitor {
            type Value = f64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a double (a number, or \"NaN\", \"Infinity\" or \"-Infinity\")")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
                Ok(v)
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
                Ok(v as f64) // rounds to nearest, as parsing the decimal text would
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
                Ok(v as f64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
                v.parse()
                    .map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
            }
        }
        deserializer.deserialize_any(DoubleVisitor).map(Double)
    }
}

/// Bytes, written as standard base64 with padding; read from standard or URL-safe base64,
/// with or without padding, as protojson reads them.
struct Base64<B>(B);

impl<B: AsRef<[u8]>> Serialize for Base64<B> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(self.0.as_ref()))
    }
}

impl<'de> Deserialize<'de> for Base64<Vec<u8>> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const LENIENT: GeneralPurposeConfig =
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
        const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
        const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);
        let text = String::deserialize(deserializer)?;
        STANDARD
            .decode(&text)
            .or_else(|_| URL_SAFE.decode(&text))
            .map(Base64)
            .map_err(|e| de::Error::custom(format!("invalid base64 in bytesValue: {e}")))
    }
}

// ---------------------------------------------------------------------------------------------
// The messages with a oneof.

/// Fails if a member of the oneof in `slot` is already set, before the next member is read:
/// the error then points at that member's key.
fn ensure_unset<T, E: de::Error>(slot: &Option<T>, members: &str) -> Result<(), E> {
    match slot {
        Some(_) => Err(E::custom(format!("more than one of {members} is set"))),
        None => Ok(()),
    }
}

/// The fields of `Metric` in JSON.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum MetricField {
    Name,
    Description,
    Unit,
    Gauge,
    Sum,
    Histogram,
    #[serde(alias = "exponential_histogram")]
    ExponentialHistogram,
    Summary,
    Metadata,
    #[serde(other)]
    Unknown,
}

impl<'de> Deserialize<'de> for Metric {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MetricVisitor;
        impl<'de> Visitor<'de> for MetricVisitor {
            type Value = Metric;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Metric object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Metric, A::Error> {
                use metric::Data;
                const DATA: &str = "gauge, sum, histogram, exponentialHistogram and summary";
                let mut metric = Metric::default();
                while let Some(field) = map.next_key()? {
                    match field {
                        MetricField::Name => metric.name = map.next_value::<Nullable<_>>()?.0,
                        MetricField::Description => {
                            metric.description = map.next_value::<Nullable<_>>()?.0;
                        }
                        MetricField::Unit => metric.unit = map.next_value::<Nullable<_>>()?.0,
                        MetricField::Gauge => {
                            ensure_unset(&metric.data, DATA)?;
                            metric.data = map.next_value::<Option<Gauge>>()?.map(Data::Gauge);
                        }
                        MetricField::Sum => {
                            ensure_unset(&metric.data, DATA)?;
                            metric.data = map.next_value::<Option<Sum>>()?.map(Data::Sum);
                        }
                        MetricField::Histogram => {
                            ensure_unset(&metric.data, DATA)?;
                            metric.data =
                                map.next_value::<Option<Histogram>>()?.map(Data::Histogram);
                        }
                        MetricField::ExponentialHistogram => {
                            ensure_unset(&metric.data, DATA)?;
                            metric.data = map
                                .next_value::<Option<ExponentialHistogram>>()?
                                .map(Data::ExponentialHistogram);
                        }
                        MetricField::Summary => {
                            ensure_unset(&metric.data, DATA)?;
                            metric.data = map.next_value::<Option<Summary>>()?.map(Data::Summary);
                        }
                        MetricField::Metadata => {
                            metric.metadata = map.next_value::<Nullable<_>>()?.0;
                        }
                        MetricField::Unknown => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(metric)
            }
        }
        deserializer.deserialize_map(MetricVisitor)
    }
}

impl Serialize for Metric {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if !self.name.is_empty() {
            map.serialize_entry("name", &self.name)?;
        }
        if !self.description.is_empty() {
            map.serialize_entry("description", &self.description)?;
        }
        if !self.unit.is_empty() {
            map.serialize_entry("unit", &self.unit)?;
        }
        match &self.data {
            None => {}
            Some(metric::Data::Gauge(gauge)) => map.serialize_entry("gauge", gauge)?,
            Some(metric::Data::Sum(sum)) => map.serialize_entry("sum", sum)?,
            Some(metric::Data::Histogram(h)) => map.serialize_entry("histogram", h)?,
            Some(metric::Data::ExponentialHistogram(h)) => {
                map.serialize_entry("exponentialHistogram", h)?;
            }
            Some(metric::Data::Summary(summary)) => map.serialize_entry("summary", summary)?,
        }
        if !self.metadata.is_empty() {
            map.serialize_entry("metadata", &self.metadata)?;
        }
        map.end()
    }
}

/// The fields of `NumberDataPoint` in JSON.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum NumberDataPointField {
    Attributes,
    #[serde(alias = "start_time_unix_nano")]
    StartTimeUnixNano,
    #[serde(alias = "time_unix_nano")]
    TimeUnixNano,
    #[serde(alias = "as_double")]
    AsDouble,
    #[serde(alias = "as_int")]
    AsInt,
    Exemplars,
    Flags,
    #[serde(other)]
    Unknown,
}

impl<'de> Deserialize<'de> for NumberDataPoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PointVisitor;
        impl<'de> Visitor<'de> for PointVisitor {
            type Value = NumberDataPoint;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a NumberDataPoint object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NumberDataPoint, A::Error> {
                use number_data_point::Value;
                const VALUE: &str = "asDouble and asInt";
                let mut point = NumberDataPoint::default();
                while let Some(field) = map.next_key()? {
                    match field {
                        NumberDataPointField::Attributes => {
                            point.attributes = map.next_value::<Nullable<_>>()?.0;
                        }
                        NumberDataPointField::StartTimeUnixNano => {
                            point.start_time_unix_nano = map.next_value::<Nullable<Int<_>>>()?.0.0;
                        }
                        NumberDataPointField::TimeUnixNano => {
                            point.time_unix_nano = map.next_value::<Nullable<Int<_>>>()?.0.0;
                        }
                        NumberDataPointField::AsDouble => {
                            ensure_unset(&point.value, VALUE)?;
                            let value = map.next_value::<Option<Double>>()?;
                            point.value = value.map(|d| Value::AsDouble(d.0));
                        }
                        NumberDataPointField::AsInt => {
                            ensure_unset(&point.value, VALUE)?;
                            let value = map.next_value::<Option<Int<i64>>>()?;
                            point.value = value.map(|i| Value::AsInt(i.0));
                        }
                        NumberDataPointField::Exemplars => {
                            point.exemplars = map.next_value::<Nullable<_>>()?.0;
                        }
                        NumberDataPointField::Flags => {
                            point.flags = map.next_value::<Nullable<Int<_>>>()?.0.0;
                        }
                        NumberDataPointField::Unknown => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(point)
            }
        }
        deserializer.deserialize_map(PointVisitor)
    }
}

impl Serialize for NumberDataPoint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if !self.attributes.is_empty() {
            map.serialize_entry("attributes", &self.attributes)?;
        }
        if self.start_time_unix_nano != 0 {
            map.serialize_entry("startTimeUnixNano", &Decimal(self.start_time_unix_nano))?;
        }
        if self.time_unix_nano != 0 {
            map.serialize_entry("timeUnixNano", &Decimal(self.time_unix_nano))?;
        }
        match self.value {
            None => {}
            Some(number_data_point::Value::AsDouble(d)) => {
                map.serialize_entry("asDouble", &Double(d))?;
            }
            Some(number_data_point::Value::AsInt(i)) => {
                map.serialize_entry("asInt", &Decimal(i))?;
            }
        }
        if !self.exemplars.is_empty() {
            map.serialize_entry("exemplars", &self.exemplars)?;
        }
        if self.flags != 0 {
            map.serialize_entry("flags", &self.flags)?;
        }
        map.end()
    }
}

/// The fields of `AnyValue` in JSON.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum AnyValueField {
    #[serde(alias = "string_value")]
    StringValue,
    #[serde(alias = "bool_value")]
    BoolValue,
    #[serde(alias = "int_value")]
    IntValue,
    #[serde(alias = "double_value")]
    DoubleValue,
    #[serde(alias = "array_value")]
    ArrayValue,
    #[serde(alias = "kvlist_value")]
    KvlistValue,
    #[serde(alias = "bytes_value")]
    BytesValue,
    #[serde(other)]
    Unknown,
}

impl<'de> Deserialize<'de> for AnyValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AnyValueVisitor;
        impl<'de> Visitor<'de> for AnyValueVisitor {
            type Value = AnyValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an AnyValue object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyValue, A::Error> {
                use any_value::Value;
                const VALUE: &str = "stringValue, boolValue, intValue, doubleValue, arrayValue, \
                                     kvlistValue and bytesValue";
                let mut value = None;
                while let Some(field) = map.next_key()? {
                    if !matches!(field, AnyValueField::Unknown) {
                        ensure_unset(&value, VALUE)?;
                    }
                    let member = match field {
                        AnyValueField::StringValue => {
                            map.next_value::<Option<String>>()?.map(Value::StringValue)
                        }
                        AnyValueField::BoolValue => {
                            map.next_value::<Option<bool>>()?.map(Value::BoolValue)
                        }
                        AnyValueField::IntValue => map
                            .next_value::<Option<Int<i64>>>()?
                            .map(|i| Value::IntValue(i.0)),
                        AnyValueField::DoubleValue => map
                            .next_value::<Option<Double>>()?
                            .map(|d| Value::DoubleValue(d.0)),
                        AnyValueField::ArrayValue => map
                            .next_value::<Option<ArrayValue>>()?
                            .map(Value::ArrayValue),
                        AnyValueField::KvlistValue => map
                            .next_value::<Option<KeyValueList>>()?
                            .map(Value::KvlistValue),
                        AnyValueField::BytesValue => map
                            .next_value::<Option<Base64<Vec<u8>>>>()?
                            .map(|b| Value::BytesValue(b.0)),
                        AnyValueField::Unknown => {
                            map.next_value::<de::IgnoredAny>()?;
                            None
                        }
                    };
                    value = value.or(member);
                }
                Ok(AnyValue { value })
            }
        }
        deserializer.deserialize_map(AnyValueVisitor)
    }
}

impl Serialize for AnyValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use any_value::Value;
        let mut map = serializer.serialize_map(Some(usize::from(self.value.is_some())))?;
        match &self.value {
            None => {}
            Some(Value::StringValue(s)) => map.serialize_entry("stringValue", s)?,
            Some(Value::BoolValue(b)) => map.serialize_entry("boolValue", b)?,
            Some(Value::IntValue(i)) => map.serialize_entry("intValue", &Decimal(i))?,
            Some(Value::DoubleValue(d)) => map.serialize_entry("doubleValue", &Double(*d))?,
            Some(Value::ArrayValue(a)) => map.serialize_entry("arrayValue", a)?,
            Some(Value::KvlistValue(l)) => map.serialize_entry("kvlistValue", l)?,
            Some(Value::BytesValue(b)) => map.serialize_entry("bytesValue", &Base64(b))?,
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_the_value_being_read() {
        let json = r#"{"resourceMetrics":[{"resource":{},"scopeMetrics":[{},{"metrics":[{"name":"#;
        assert_eq!(
            path_at(json, json.len()),
            "resourceMetrics[0].scopeMetrics[1].metrics[0].name"
        );
        assert_eq!(path_at(json, 1), "");
        let json = r#"{"a\"b":[1,2,"#;
        assert_eq!(path_at(json, json.len()), r#"a\"b[2]"#);
        assert_eq!(path_at(json, json.len() - 1), r#"a\"b[1]"#);
    }

    #[test]
    fn byte_offsets_follow_serde_json_positions() {
        let json = "ab\ncdef\ng";
        assert_eq!(byte_offset(json, 1, 2), 2);
        assert_eq!(byte_offset(json, 2, 3), 6);
        assert_eq!(byte_offset(json, 3, 1), 9);
        assert_eq!(byte_offset(json, 9, 9), json.len());
    }

    #[test]
    fn doubles_are_written_like_go_and_protojson() {
        let write = |v: f64| serde_json::to_string(&Double(v)).unwrap();
        assert_eq!(write(0.0), "0");
        assert_eq!(write(-3.0), "-3");
        assert_eq!(write(0.25), "0.25");
        assert_eq!(write(-0.0), "-0");
        assert_eq!(write(1e-6), "0.000001");
        assert_eq!(write(1.5e-7), "1.5e-7");
        assert_eq!(write(1e20), "100000000000000000000");
        assert_eq!(write(1e21), "1e+21");
        assert_eq!(write(-2.5e300), "-2.5e+300");
        assert_eq!(write(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(write(f64::NAN), r#""NaN""#);
        assert_eq!(write(f64::INFINITY), r#""+Inf""#);
        assert_eq!(write(f64::NEG_INFINITY), r#""-Inf""#);
    }

    #[test]
    fn doubles_are_read_from_numbers_and_strings() {
        let read = |json: &str| serde_json::from_str::<Double>(json).unwrap().0;
        assert_eq!(read("2"), 2.0);
        assert_eq!(read("-2"), -2.0);
        assert_eq!(read(r#""0.1""#), 0.1);
        assert!(read(r#""NaN""#).is_nan());
        assert_eq!(read(r#""Infinity""#), f64::INFINITY);
        assert_eq!(read(r#""-Infinity""#), f64::NEG_INFINITY);
        assert_eq!(read(r#""+Inf""#), f64::INFINITY);
        assert!(serde_json::from_str::<Double>(r#""fast""#).is_err());
    }

    #[test]
    fn integers_are_read_from_numbers_and_strings() {
        let read = |json: &str| serde_json::from_str::<Int<i64>>(json).map(|i| i.0);
        assert_eq!(read("-5").unwrap(), -5);
        assert_eq!(read(r#""-5""#).unwrap(), -5);
        assert!(read(r#""5x""#).is_err());
        assert!(read("5.5").is_err());
        assert!(serde_json::from_str::<Int<u32>>("4294967296").is_err());
    }

    #[test]
    fn bytes_accept_both_base64_alphabets_with_or_without_padding() {
        let read = |json: &str| serde_json::from_str::<Base64<Vec<u8>>>(json).map(|b| b.0);
        assert_eq!(read(r#""+/8=""#).unwrap(), vec![0xfb, 0xff]);
        assert_eq!(read(r#""-_8""#).unwrap(), vec![0xfb, 0xff]);
        assert!(read(r#""!!""#).is_err());
        assert_eq!(
            serde_json::to_string(&Base64([0xfb, 0xff])).unwrap(),
            r#""+/8=""#
        );
    }

    #[test]
    fn several_members_of_a_oneof_are_an_error() {
        let err = serde_json::from_str::<AnyValue>(r#"{"stringValue":"a","intValue":"1"}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("more than one of stringValue"), "{err}");
    }
}
