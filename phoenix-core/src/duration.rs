//! Serde support for durations written as humantime strings (`"10s"`, `"1h 30m"`).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

/// Serialises a duration as a humantime string.
pub(crate) fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_duration(*value))
}

/// Deserialises a humantime string such as `"90s"` or `"1h 30m"`.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse(&text).map_err(D::Error::custom)
}

/// Parses a humantime duration, with an error that quotes the input.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!("invalid duration {text:?}: {e} (write e.g. \"30s\", \"10m\", \"1h 30m\")")
    })
}

/// The same for `Option<Duration>`.
pub(crate) mod option {
    use super::{Deserialize, Deserializer, Duration, Serializer};

    /// Serialises `Some` as a humantime string and `None` as null.
    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => super::serialize(d, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Deserialises null or a humantime string.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| super::parse(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}
