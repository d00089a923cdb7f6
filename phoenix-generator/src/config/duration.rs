//! Go-style durations (`10s`, `1m30s`, `500ms`) as the collector writes them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration in Go's `time.ParseDuration` syntax.
///
/// Parsing accepts sequences of decimal numbers with units `ns`, `us`, `µs`, `ms`, `s`, `m`,
/// `h` (e.g. `1m30s`, `1.5h`) and the bare `0`. Formatting uses the largest unit that divides the
/// value exactly (`90s`, `1m`, `250ms`), so the text stays short and parses back to the same
/// value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct GoDuration(pub Duration);

impl GoDuration {
    /// Whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    /// Milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Self(Duration::from_millis(millis))
    }

    /// The duration.
    pub const fn as_duration(self) -> Duration {
        self.0
    }
}

impl From<Duration> for GoDuration {
    fn from(d: Duration) -> Self {
        Self(d)
    }
}

/// Why a duration does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError(String);

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DurationError {}

impl FromStr for GoDuration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, DurationError> {
        let bad = |why: &str| {
            DurationError(format!(
                "invalid duration `{text}`: {why} (expected e.g. `10s`, `1m30s`, `500ms`)"
            ))
        };
        if text == "0" {
            return Ok(Self(Duration::ZERO));
        }
        if text.is_empty() {
            return Err(bad("empty"));
        }
        if text.starts_with('-') {
            return Err(bad("negative"));
        }
        let text_body = text.strip_prefix('+').unwrap_or(text);
        let mut rest = text_body;
        let mut total_nanos: f64 = 0.0;
        while !rest.is_empty() {
            let number_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            if number_len == 0 {
                return Err(bad("a number is missing"));
            }
            let number: f64 = rest[..number_len]
                .parse()
                .map_err(|_| bad("malformed number"))?;
            rest = &rest[number_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let scale = match &rest[..unit_len] {
                "ns" => 1.0,
                "us" | "µs" | "μs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                "" => return Err(bad("a unit is missing")),
                _ => return Err(bad("unknown unit")),
            };
            rest = &rest[unit_len..];
            total_nanos += number * scale;
        }
        if !total_nanos.is_finite() || total_nanos > 9.2e18 {
            return Err(bad("out of range"));
        }
        // Rounded to whole nanoseconds, the resolution Go keeps.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let nanos = total_nanos.round() as u64;
        Ok(Self(Duration::from_nanos(nanos)))
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        const UNITS: [(u128, &str); 6] = [
            (3_600_000_000_000, "h"),
            (60_000_000_000, "m"),
            (1_000_000_000, "s"),
            (1_000_000, "ms"),
            (1_000, "us"),
            (1, "ns"),
        ];
        for (size, unit) in UNITS {
            if nanos.is_multiple_of(size) {
                return write!(f, "{}{unit}", nanos / size);
            }
        }
        write!(f, "{nanos}ns")
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = GoDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as `10s` or `1m30s`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<GoDuration, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<GoDuration, E> {
                if v == 0 {
                    Ok(GoDuration(Duration::ZERO))
                } else {
                    Err(E::custom(format!(
                        "invalid duration `{v}`: a unit is missing (expected e.g. `{v}s`)"
                    )))
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<GoDuration, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!("invalid duration `{v}`: negative"))),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_syntax() {
        let cases = [
            ("10s", 10_000),
            ("1m30s", 90_000),
            ("500ms", 500),
            ("1.5h", 5_400_000),
            ("0", 0),
            ("2m", 120_000),
        ];
        for (text, millis) in cases {
            let d: GoDuration = text.parse().unwrap();
            assert_eq!(d.0, Duration::from_millis(millis), "{text}");
        }
        for bad in ["", "10", "s", "10x", "-1s", "1.2.3s"] {
            assert!(bad.parse::<GoDuration>().is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_with_the_largest_exact_unit_and_round_trips() {
        for (millis, text) in [(90_000, "90s"), (60_000, "1m"), (250, "250ms"), (0, "0s")] {
            let d = GoDuration::from_millis(millis);
            assert_eq!(d.to_string(), text);
            assert_eq!(text.parse::<GoDuration>().unwrap(), d);
        }
    }
}
