//! OTLP JSON: serde helpers for the wire types, and reading and writing whole documents.
//!
//! The encoding rules are listed in the [`otlp`](super) module documentation. Most wire types
//! derive serde; the three messages that hold a oneof (`Metric`, `NumberDataPoint`,
//! `AnyValue`) are written by hand here and read through a flat helper struct that has one
//! optional field per oneof member.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::de::{self, Unexpected, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Problem;
use super::wire::{
    AnyValue, ArrayValue, AggregationTemporality, ExponentialHistogram, Exemplar, Gauge,
    Histogram, KeyValue, KeyValueList, Metric, MetricsData, NumberDataPoint, Sum, Summary,
    any_value, metric, number_data_point,
};

/// Writes `data` as one line of OTLP JSON.
pub(super) fn to_string(data: &MetricsData) -> String {
    // The wire types only write strings, numbers, booleans, sequences and maps with string
    // keys, and their Serialize impls never fail, so serde_json cannot fail here.
    serde_json::to_string(data).unwrap_or_else(|e| unreachable!("OTLP JSON serialisation: {e}"))
}

/// Reads one OTLP JSON document.
///
/// serde_json's default float parser (without its `float_roundtrip` feature) may be off by one
/// unit in the last place, which would break lossless reading of doubles. So every number
/// literal that is not a 64-bit integer is first turned into a JSON string (see
/// [`quote_inexact_numbers`]); the double fields accept strings, as protojson does, and parse
/// them with Rust's correctly rounded [`f64::from_str`].
pub(super) fn from_str(json: &str) -> Result<MetricsData, Problem> {
    let quoted = quote_inexact_numbers(json);
    serde_json::from_str(&quoted).map_err(|e| {
        let offset = byte_offset(&quoted, e.line(), e.column());
        let full = e.to_string();
        let location = format!(" at line {} column {}", e.line(), e.column());
        let message = full.strip_suffix(&location).unwrap_or(&full);
        Problem::new(format!("malformed OTLP JSON: {message}")).within(path_at(&quoted, offset))
    })
}

/// Turns every number literal outside strings that does not fit a 64-bit integer (it has a
/// fraction or an exponent, or is too large) into a JSON string holding the same text.
/// Malformed literals are left alone for serde_json to reject.
fn quote_inexact_numbers(json: &str) -> String {
    let bytes = json.as_bytes();
    let mut out = String::with_capacity(json.len() + json.len() / 16);
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = string_end(bytes, i),
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len() && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                let literal = &json[start..i];
                let exact = literal.parse::<i64>().is_ok() || literal.parse::<u64>().is_ok();
                if !exact && is_json_number(literal) {
                    out.push_str(&json[copied..start]);
                    out.push('"');
                    out.push_str(literal);
                    out.push('"');
                    copied = i;
                }
            }
            _ => i += 1,
        }
    }
    out.push_str(&json[copied..]);
    out
}

/// Whether `literal` is a number as JSON's grammar spells it:
/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn is_json_number(literal: &str) -> bool {
    fn digits(s: &[u8]) -> usize {
        s.iter().take_while(|b| b.is_ascii_digit()).count()
    }
    let mut rest = literal.strip_prefix('-').unwrap_or(literal).as_bytes();
    let n = digits(rest);
    if n == 0 || (n > 1 && rest.first() == Some(&b'0')) {
        return false;
    }
    rest = &rest[n..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = digits(fraction);
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    if let Some(exponent) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let exponent = exponent
            .strip_prefix(b"+")
            .or_else(|| exponent.strip_prefix(b"-"))
            .unwrap_or(exponent);
        let n = digits(exponent);
        if n == 0 {
            return false;
        }
        rest = &exponent[n..];
    }
    rest.is_empty()
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
                    let close = if after > i + 1 && bytes[after - 1] == b'"' { after - 1 } else { after };
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

/// Reads an integer field given as a JSON number or a decimal string, or `null`.
pub(super) fn integer<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Integer,
{
    Ok(Option::<Int<T>>::deserialize(deserializer)?.map_or_else(T::default, |i| i.0))
}

/// Writes a 64-bit integer as a decimal string.
pub(super) fn decimal_string<T: fmt::Display, S: Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
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
                None => v.parse().map_err(|_| E::invalid_value(Unexpected::Str(v), &self)),
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
pub(super) struct Int<T>(T);

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
                v.parse().map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
            }
        }
        deserializer.deserialize_any(IntVisitor(PhantomData)).map(Int)
    }
}

/// A double, written as a JSON number except for NaN and the infinities, which are written
/// as protojson writes them: `"NaN"`, `"Infinity"` and `"-Infinity"`. Integral values are
/// written without a fraction (`0`, not `0.0`), as Go's encoder writes them.
///
/// Read from a JSON number, or from a string that [`f64::from_str`] accepts: a decimal number
/// or `NaN`, `Infinity`, `-Infinity` (and Go's `+Inf` and `-Inf`), in any letter case.
pub(super) struct Double(pub(super) f64);

impl Serialize for Double {
    #[allow(clippy::cast_possible_truncation, clippy::float_cmp)]
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // 2^63, the first double beyond the range of i64.
        const I64_END: f64 = 9_223_372_036_854_775_808.0;
        let v = self.0;
        if v.is_nan() {
            serializer.serialize_str("NaN")
        } else if v.is_infinite() {
            serializer.serialize_str(if v > 0.0 { "Infinity" } else { "-Infinity" })
        } else if v == v.trunc() && v.abs() < I64_END && !(v == 0.0 && v.is_sign_negative()) {
            // Exact: v is integral and within i64.
            serializer.serialize_i64(v as i64)
        } else {
            serializer.serialize_f64(v)
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
                v.parse().map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
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

/// `Metric` as read from JSON: one optional field per member of the `data` oneof.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct MetricJson {
    #[serde(deserialize_with = "nullable")]
    name: String,
    #[serde(deserialize_with = "nullable")]
    description: String,
    #[serde(deserialize_with = "nullable")]
    unit: String,
    gauge: Option<Gauge>,
    sum: Option<Sum>,
    histogram: Option<Histogram>,
    #[serde(alias = "exponential_histogram")]
    exponential_histogram: Option<ExponentialHistogram>,
    summary: Option<Summary>,
    #[serde(deserialize_with = "nullable")]
    metadata: Vec<KeyValue>,
}

impl TryFrom<MetricJson> for Metric {
    type Error = String;

    fn try_from(json: MetricJson) -> Result<Self, String> {
        let data = only_one(
            "gauge, sum, histogram, exponentialHistogram and summary",
            [
                json.gauge.map(metric::Data::Gauge),
                json.sum.map(metric::Data::Sum),
                json.histogram.map(metric::Data::Histogram),
                json.exponential_histogram.map(metric::Data::ExponentialHistogram),
                json.summary.map(metric::Data::Summary),
            ],
        )?;
        Ok(Self {
            name: json.name,
            description: json.description,
            unit: json.unit,
            data,
            metadata: json.metadata,
        })
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

/// `NumberDataPoint` as read from JSON: one optional field per member of the `value` oneof.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct NumberDataPointJson {
    #[serde(deserialize_with = "nullable")]
    attributes: Vec<KeyValue>,
    #[serde(alias = "start_time_unix_nano", deserialize_with = "integer")]
    start_time_unix_nano: u64,
    #[serde(alias = "time_unix_nano", deserialize_with = "integer")]
    time_unix_nano: u64,
    #[serde(alias = "as_double")]
    as_double: Option<Double>,
    #[serde(alias = "as_int")]
    as_int: Option<Int<i64>>,
    #[serde(deserialize_with = "nullable")]
    exemplars: Vec<Exemplar>,
    #[serde(deserialize_with = "integer")]
    flags: u32,
}

impl TryFrom<NumberDataPointJson> for NumberDataPoint {
    type Error = String;

    fn try_from(json: NumberDataPointJson) -> Result<Self, String> {
        let value = only_one(
            "asDouble and asInt",
            [
                json.as_double.map(|d| number_data_point::Value::AsDouble(d.0)),
                json.as_int.map(|i| number_data_point::Value::AsInt(i.0)),
            ],
        )?;
        Ok(Self {
            attributes: json.attributes,
            start_time_unix_nano: json.start_time_unix_nano,
            time_unix_nano: json.time_unix_nano,
            value,
            exemplars: json.exemplars,
            flags: json.flags,
        })
    }
}

impl Serialize for NumberDataPoint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Decimal(u64);
        impl Serialize for Decimal {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                decimal_string(&self.0, serializer)
            }
        }
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
                map.serialize_entry("asInt", &i.to_string())?;
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

/// `AnyValue` as read from JSON: one optional field per member of the `value` oneof.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct AnyValueJson {
    #[serde(alias = "string_value")]
    string_value: Option<String>,
    #[serde(alias = "bool_value")]
    bool_value: Option<bool>,
    #[serde(alias = "int_value")]
    int_value: Option<Int<i64>>,
    #[serde(alias = "double_value")]
    double_value: Option<Double>,
    #[serde(alias = "array_value")]
    array_value: Option<ArrayValue>,
    #[serde(alias = "kvlist_value")]
    kvlist_value: Option<KeyValueList>,
    #[serde(alias = "bytes_value")]
    bytes_value: Option<Base64<Vec<u8>>>,
}

impl TryFrom<AnyValueJson> for AnyValue {
    type Error = String;

    fn try_from(json: AnyValueJson) -> Result<Self, String> {
        use any_value::Value;
        let value = only_one(
            "stringValue, boolValue, intValue, doubleValue, arrayValue, kvlistValue and \
             bytesValue",
            [
                json.string_value.map(Value::StringValue),
                json.bool_value.map(Value::BoolValue),
                json.int_value.map(|i| Value::IntValue(i.0)),
                json.double_value.map(|d| Value::DoubleValue(d.0)),
                json.array_value.map(Value::ArrayValue),
                json.kvlist_value.map(Value::KvlistValue),
                json.bytes_value.map(|b| Value::BytesValue(b.0)),
            ],
        )?;
        Ok(Self { value })
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
            Some(Value::IntValue(i)) => map.serialize_entry("intValue", &i.to_string())?,
            Some(Value::DoubleValue(d)) => map.serialize_entry("doubleValue", &Double(*d))?,
            Some(Value::ArrayValue(a)) => map.serialize_entry("arrayValue", a)?,
            Some(Value::KvlistValue(l)) => map.serialize_entry("kvlistValue", l)?,
            Some(Value::BytesValue(b)) => map.serialize_entry("bytesValue", &Base64(b))?,
        }
        map.end()
    }
}

/// The one member of a oneof that is set, if any; an error naming the members if several are.
fn only_one<T, const N: usize>(members: &str, values: [Option<T>; N]) -> Result<Option<T>, String> {
    let mut set = values.into_iter().flatten();
    let first = set.next();
    if set.next().is_some() {
        return Err(format!("more than one of {members} is set"));
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inexact_numbers_are_quoted_outside_strings_only() {
        let json = r#"{"a":1,"b":-2,"c":0.5,"d":"3.5","e":[1e3,-0.0,18446744073709551616],"f\"1.5":2}"#;
        assert_eq!(
            quote_inexact_numbers(json),
            r#"{"a":1,"b":-2,"c":"0.5","d":"3.5","e":["1e3","-0.0","18446744073709551616"],"f\"1.5":2}"#
        );
        for malformed in ["[-]", "[1.]", "[.5]", "[01.5]", "[1e]", "[1.2.3]", "[--1]"] {
            assert_eq!(quote_inexact_numbers(malformed), malformed);
        }
    }

    #[test]
    fn json_number_grammar() {
        for good in ["0", "-0", "1.5", "-12.25e+3", "1E-7", "10"] {
            assert!(is_json_number(good), "{good}");
        }
        for bad in ["", "-", "01", "1.", ".5", "1e", "1e+", "+1", "1.2.3", "0x1"] {
            assert!(!is_json_number(bad), "{bad}");
        }
    }

    #[test]
    fn paths_name_the_value_being_read() {
        let json = r#"{"resourceMetrics":[{"resource":{},"scopeMetrics":[{},{"metrics":[{"name":"#;
        assert_eq!(path_at(json, json.len()), "resourceMetrics[0].scopeMetrics[1].metrics[0].name");
        assert_eq!(path_at(json, 1), "");
        assert_eq!(path_at(r#"{"a\"b":[1,2,"#, 12), r#"a\"b[2]"#);
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
        assert_eq!(write(-0.0), "-0.0");
        assert_eq!(write(f64::NAN), r#""NaN""#);
        assert_eq!(write(f64::INFINITY), r#""Infinity""#);
        assert_eq!(write(f64::NEG_INFINITY), r#""-Infinity""#);
        assert_eq!(write(1e300), "1e300");
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
        assert_eq!(serde_json::to_string(&Base64([0xfb, 0xff])).unwrap(), r#""+/8=""#);
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
