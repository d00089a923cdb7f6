//! Small serde adapters shared by the config types.

use serde::{Deserialize, Deserializer};

/// For a key whose presence matters even without settings (`process:`, `grpc:`): a present
/// key with a null value becomes the type's default, an absent key stays `None` (use with
/// `#[serde(default)]`).
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Some(
        Option::<T>::deserialize(deserializer)?.unwrap_or_default(),
    ))
}

/// `skip_serializing_if` for flags that default to false.
#[allow(clippy::trivially_copy_pass_by_ref)]
pub(crate) fn is_false(value: &bool) -> bool {
    !*value
}
