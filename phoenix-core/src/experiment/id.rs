//! Experiment identifiers.

use std::fmt;
use std::str::FromStr;

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

const PREFIX: &str = "exp-";
const SUFFIX_LEN: usize = 8;
const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// An experiment id: `exp-` followed by 8 lowercase letters or digits, e.g. `exp-k3x9a2mq`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExperimentId(String);

impl ExperimentId {
    /// A fresh random id.
    pub fn random() -> Self {
        let mut rng = fastrand::Rng::new();
        Self::random_with(&mut rng)
    }

    /// A random id drawn from `rng`, for reproducible ids in tests and simulations.
    pub fn random_with(rng: &mut fastrand::Rng) -> Self {
        let mut id = String::with_capacity(PREFIX.len() + SUFFIX_LEN);
        id.push_str(PREFIX);
        for _ in 0..SUFFIX_LEN {
            id.push(char::from(ALPHABET[rng.usize(..ALPHABET.len())]));
        }
        Self(id)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a string is not an [`ExperimentId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid experiment id {0:?}: expected `exp-` followed by 8 lowercase letters or digits")]
pub struct InvalidExperimentId(String);

impl FromStr for ExperimentId {
    type Err = InvalidExperimentId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = s.strip_prefix(PREFIX).is_some_and(|suffix| {
            suffix.len() == SUFFIX_LEN
                && suffix
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidExperimentId(s.to_owned()))
        }
    }
}

impl fmt::Display for ExperimentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ExperimentId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl JsonSchema for ExperimentId {
    fn schema_name() -> Cow<'static, str> {
        "ExperimentId".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": "^exp-[a-z0-9]{8}$" })
    }
}

impl Serialize for ExperimentId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ExperimentId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_parse_back() {
        for _ in 0..100 {
            let id = ExperimentId::random();
            assert_eq!(id.as_str().parse::<ExperimentId>(), Ok(id));
        }
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "exp-",
            "exp-ABCDEFGH",
            "exp-abc",
            "exp-abcdefghi",
            "xyz-abcdefgh",
            "exp-abcd_fgh",
        ] {
            assert!(bad.parse::<ExperimentId>().is_err(), "{bad:?} was accepted");
        }
        assert!("exp-a1b2c3d4".parse::<ExperimentId>().is_ok());
    }

    #[test]
    fn seeded_ids_repeat() {
        let a = ExperimentId::random_with(&mut fastrand::Rng::with_seed(7));
        let b = ExperimentId::random_with(&mut fastrand::Rng::with_seed(7));
        assert_eq!(a, b);
    }
}
