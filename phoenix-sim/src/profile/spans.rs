//! Durations and ranges as profile documents write them: `"30s"`, `"1s..8s"`, `25`, `"20..30"`.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// Parses a humantime duration (`"90s"`, `"1h 30m"`), with an error that quotes the input.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!("invalid duration {text:?}: {e} (write e.g. \"30s\", \"10m\", \"1h 30m\")")
    })
}

/// A duration written as a humantime string, e.g. `"30s"` or `"1h 30m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// A duration of whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    /// The duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Parses a string with `parse` while the deserializer still knows where the string is, so
/// that errors carry the field's path.
fn deserialize_parsed<'de, D, T>(
    deserializer: D,
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct Visitor<T> {
        expecting: &'static str,
        parse: fn(&str) -> Result<T, String>,
    }
    impl<T> de::Visitor<'_> for Visitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.parse)(v).map_err(E::custom)
        }
    }
    deserializer.deserialize_str(Visitor { expecting, parse })
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_parsed(deserializer, "a duration such as \"30s\"", |s| {
            parse_duration(s).map(Self)
        })
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration such as \"30s\", \"10m\" or \"1h 30m\".",
            "examples": ["30s", "10m", "1h 30m"]
        })
    }
}

/// A range of durations: `"30s"` (exactly) or `"1s..8s"` (uniformly between, inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationRange {
    /// The shortest duration.
    pub min: Duration,
    /// The longest duration.
    pub max: Duration,
}

impl DurationRange {
    /// Exactly `secs` seconds.
    pub const fn secs(secs: u64) -> Self {
        Self::new(Duration::from_secs(secs), Duration::from_secs(secs))
    }

    /// From `min` to `max`.
    pub const fn new(min: Duration, max: Duration) -> Self {
        Self { min, max }
    }

    /// From `min` to `max` milliseconds.
    pub const fn millis(min: u64, max: u64) -> Self {
        Self::new(Duration::from_millis(min), Duration::from_millis(max))
    }

    /// Parses `"30s"` or `"1s..8s"`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once("..") {
            Some((a, b)) => Ok(Self::new(parse_duration(a)?, parse_duration(b)?)),
            None => {
                let d = parse_duration(text)?;
                Ok(Self::new(d, d))
            }
        }
    }
}

impl fmt::Display for DurationRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            write!(f, "{}", humantime::format_duration(self.min))
        } else {
            write!(
                f,
                "{}..{}",
                humantime::format_duration(self.min),
                humantime::format_duration(self.max)
            )
        }
    }
}

impl Serialize for DurationRange {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DurationRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_parsed(
            deserializer,
            "a duration such as \"30s\" or a range such as \"1s..8s\"",
            Self::parse,
        )
    }
}

impl JsonSchema for DurationRange {
    fn schema_name() -> Cow<'static, str> {
        "DurationRange".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration (\"30s\") or a range of durations (\"1s..8s\"), drawn uniformly.",
            "examples": ["30s", "1s..8s", "10m..2h"]
        })
    }
}

/// A range of non-negative numbers: `25` (exactly) or `"20..30"` (uniformly between).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumberRange {
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl NumberRange {
    /// From `min` to `max`.
    pub const fn new(min: f64, max: f64) -> Self {
        Self { min, max }
    }

    /// Parses `"25"` or `"20..30"`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let number = |s: &str| {
            s.trim()
                .parse::<f64>()
                .map_err(|_| format!("invalid number {s:?} (write e.g. 25 or \"20..30\")"))
        };
        match text.split_once("..") {
            Some((a, b)) => Ok(Self::new(number(a)?, number(b)?)),
            None => {
                let n = number(text)?;
                Ok(Self::new(n, n))
            }
        }
    }
}

impl fmt::Display for NumberRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}..{}", self.min, self.max)
        }
    }
}

impl Serialize for NumberRange {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.min == self.max {
            serializer.serialize_f64(self.min)
        } else {
            serializer.collect_str(self)
        }
    }
}

impl<'de> Deserialize<'de> for NumberRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = NumberRange;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a range such as \"20..30\"")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NumberRange, E> {
                Ok(NumberRange::new(v, v))
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumberRange, E> {
                self.visit_f64(v as f64)
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NumberRange, E> {
                self.visit_f64(v as f64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NumberRange, E> {
                NumberRange::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for NumberRange {
    fn schema_name() -> Cow<'static, str> {
        "NumberRange".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A number (25) or a range of numbers (\"20..30\"), drawn uniformly.",
            "oneOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": "^\\s*[0-9.]+\\s*(\\.\\.\\s*[0-9.]+\\s*)?$"}
            ],
            "examples": [25, "20..30"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_print() {
        let r = DurationRange::parse("1s..8s").unwrap();
        assert_eq!(
            r,
            DurationRange::new(Duration::from_secs(1), Duration::from_secs(8))
        );
        assert_eq!(r.to_string(), "1s..8s");
        assert_eq!(DurationRange::parse("30s").unwrap().to_string(), "30s");
        assert!(DurationRange::parse("soon").is_err());
        let n = NumberRange::parse("20..30").unwrap();
        assert_eq!((n.min, n.max), (20.0, 30.0));
        assert!(NumberRange::parse("lots").is_err());
        let n: NumberRange = serde_yaml::from_str("25").unwrap();
        assert_eq!((n.min, n.max), (25.0, 25.0));
    }
}
