//! Attribute values and ordered attribute lists, as OTLP's `AnyValue` and `KeyValue`.

use std::fmt;
use std::sync::Arc;

/// An attribute value: OTLP's `AnyValue`.
///
/// `Empty` is an `AnyValue` with no value set; OTLP allows it and Phoenix keeps it so that
/// conversions stay lossless.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyValue {
    /// No value set.
    Empty,
    /// A UTF-8 string.
    String(String),
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Double(f64),
    /// An ordered list of values.
    Array(Vec<AnyValue>),
    /// An ordered list of key-value pairs.
    Map(Attributes),
    /// Raw bytes.
    Bytes(Vec<u8>),
}

impl AnyValue {
    /// The string, if this is a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an integer value.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl From<&str> for AnyValue {
    fn from(value: &str) -> Self {
        Self::String(value.to_owned())
    }
}

impl From<String> for AnyValue {
    fn from(value: String) -> Self {
        Self::String(value)
    }
}

impl From<i64> for AnyValue {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<bool> for AnyValue {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

impl From<f64> for AnyValue {
    fn from(value: f64) -> Self {
        Self::Double(value)
    }
}

impl fmt::Display for AnyValue {
    /// Formats the value the way OTTL's `String()` conversion would for scalars; arrays and
    /// maps use a JSON-like form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => Ok(()),
            Self::String(s) => f.write_str(s),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Double(d) => write!(f, "{d}"),
            Self::Array(values) => {
                f.write_str("[")?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Self::Map(map) => {
                f.write_str("{")?;
                for (i, kv) in map.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}:{}", kv.key, kv.value)?;
                }
                f.write_str("}")
            }
            Self::Bytes(b) => {
                for byte in b {
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// One attribute: a key and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValue {
    /// The attribute key, e.g. `process.pid`.
    pub key: String,
    /// The attribute value.
    pub value: AnyValue,
}

impl KeyValue {
    /// A key-value pair.
    pub fn new(key: impl Into<String>, value: impl Into<AnyValue>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// An ordered list of attributes.
///
/// Keys are unique when the list is built with [`Attributes::insert`] or `collect`. Order is
/// kept as received so that OTLP conversions are lossless, and equality is order-sensitive
/// for the same reason; series identity ([`SeriesKey`](super::SeriesKey)) ignores order.
/// Input converted with `From<Vec<KeyValue>>` is kept as it is, duplicate keys included
/// (OTLP forbids them, but a lossless reader must not drop data).
///
/// The list is shared on clone and copied on its first change after one, so a clone costs a
/// reference count, and [`Attributes::same_as`] recognises two lists that are clones of each
/// other, unchanged since, without reading them. A producer that keeps its resources from
/// one snapshot to the next (as the simulator does) lets consumers recognise what they saw
/// before at that price.
#[derive(Debug, Clone, Default)]
pub struct Attributes(Option<Arc<Vec<KeyValue>>>);

impl Attributes {
    /// An empty list.
    pub const fn new() -> Self {
        Self(None)
    }

    /// An empty list with room for `capacity` attributes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self((capacity > 0).then(|| Arc::new(Vec::with_capacity(capacity))))
    }

    /// The list, to change in place: copied first when it is shared.
    fn make_mut(&mut self) -> &mut Vec<KeyValue> {
        Arc::make_mut(self.0.get_or_insert_with(Arc::default))
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: impl AsRef<str>) -> Option<&AnyValue> {
        let key = key.as_ref();
        self.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
    }

    /// The string value of `key`, if present and a string.
    pub fn get_str(&self, key: impl AsRef<str>) -> Option<&str> {
        self.get(key).and_then(AnyValue::as_str)
    }

    /// Whether some key occurs more than once (input wrapped as received may hold
    /// duplicates).
    ///
    /// ```
    /// use phoenix_core::telemetry::{AnyValue, Attributes, KeyValue};
    ///
    /// let pid = |p| KeyValue { key: "process.pid".into(), value: AnyValue::Int(p) };
    /// assert!(Attributes::from(vec![pid(1), pid(2)]).has_duplicate_keys());
    /// assert!(!Attributes::from(vec![pid(1)]).has_duplicate_keys());
    /// ```
    pub fn has_duplicate_keys(&self) -> bool {
        let list = self.as_slice();
        list.iter()
            .enumerate()
            .any(|(i, kv)| list[i + 1..].iter().any(|other| other.key == kv.key))
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: impl AsRef<str>) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`: replaces the value in place if the key exists, appends otherwise.
    pub fn insert(&mut self, key: impl AsRef<str>, value: impl Into<AnyValue>) {
        let key = key.as_ref();
        let value = value.into();
        let list = self.make_mut();
        match list.iter_mut().find(|kv| kv.key == key) {
            Some(kv) => kv.value = value,
            None => list.push(KeyValue {
                key: key.to_owned(),
                value,
            }),
        }
    }

    /// Removes `key` and returns its value, keeping the order of the rest.
    pub fn remove(&mut self, key: impl AsRef<str>) -> Option<AnyValue> {
        let key = key.as_ref();
        let index = self.iter().position(|kv| kv.key == key)?;
        Some(self.make_mut().remove(index).value)
    }

    /// Keeps only the attributes for which `keep` returns true (asked once for each, in
    /// order).
    pub fn retain(&mut self, mut keep: impl FnMut(&KeyValue) -> bool) {
        // A list left as it is stays shared.
        let Some(first) = self.iter().position(|kv| !keep(kv)) else {
            return;
        };
        let mut at = 0;
        self.make_mut().retain(|kv| {
            let kept = at < first || (at > first && keep(kv));
            at += 1;
            kept
        });
    }

    /// The attributes in order.
    pub fn iter(&self) -> std::slice::Iter<'_, KeyValue> {
        self.as_slice().iter()
    }

    /// How many attributes there are.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// The attributes as a slice, in order.
    pub fn as_slice(&self) -> &[KeyValue] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }

    /// Consumes the list into its key-value pairs, in order (copied when shared).
    pub fn into_vec(self) -> Vec<KeyValue> {
        self.0.map(Arc::unwrap_or_clone).unwrap_or_default()
    }

    /// Whether `other` holds the same attributes in the same order: true without reading
    /// either when they share their storage (one is a clone of the other, and neither changed
    /// since), and otherwise as `==` answers. Unlike `==`, a list holding a NaN is the same
    /// as its clones.
    ///
    /// ```
    /// use phoenix_core::telemetry::Attributes;
    ///
    /// let a: Attributes = [("process.pid", 7_i64)].into_iter().collect();
    /// let mut b = a.clone();
    /// assert!(a.same_as(&b));
    /// b.insert("process.pid", 8_i64);
    /// assert!(!a.same_as(&b));
    /// ```
    #[inline]
    pub fn same_as(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) if Arc::ptr_eq(a, b) => true,
            (None, None) => true,
            _ => self == other,
        }
    }

    /// Whether both lists share their storage: one is a clone of the other, and neither
    /// changed since. Answered without reading either list; false when either was made empty
    /// and never held an attribute (it has no storage).
    #[inline]
    pub fn shares_storage_with(&self, other: &Self) -> bool {
        matches!((&self.0, &other.0), (Some(a), Some(b)) if Arc::ptr_eq(a, b))
    }
}

impl PartialEq for Attributes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl From<Vec<KeyValue>> for Attributes {
    /// Wraps pairs as received. Later duplicates of a key are kept as they are, so that
    /// input from elsewhere round-trips; [`Attributes::get`] sees the first.
    fn from(pairs: Vec<KeyValue>) -> Self {
        Self((!pairs.is_empty()).then(|| Arc::new(pairs)))
    }
}

impl<K: AsRef<str>, V: Into<AnyValue>> FromIterator<(K, V)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut attributes = Self::new();
        for (k, v) in iter {
            attributes.insert(k, v);
        }
        attributes
    }
}

impl<'a> IntoIterator for &'a Attributes {
    type Item = &'a KeyValue;
    type IntoIter = std::slice::Iter<'a, KeyValue>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_replaces_in_place_and_appends_new_keys() {
        let mut attrs: Attributes = [("a", 1_i64), ("b", 2)].into_iter().collect();
        attrs.insert("a", 10_i64);
        attrs.insert("c", "x");
        let keys: Vec<_> = attrs.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(attrs.get("a"), Some(&AnyValue::Int(10)));
        assert_eq!(attrs.get_str("c"), Some("x"));
    }

    #[test]
    fn remove_keeps_the_order_of_the_rest() {
        let mut attrs: Attributes = [("a", 1_i64), ("b", 2), ("c", 3)].into_iter().collect();
        assert_eq!(attrs.remove("b"), Some(AnyValue::Int(2)));
        assert_eq!(attrs.remove("b"), None);
        let keys: Vec<_> = attrs.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["a", "c"]);
    }

    #[test]
    fn clones_share_until_one_changes() {
        let a: Attributes = [("a", 1_i64), ("b", 2), ("c", 3)].into_iter().collect();
        let mut b = a.clone();
        assert!(a.same_as(&b));
        b.retain(|_| true);
        assert!(
            a.same_as(&b),
            "a retain that keeps everything changes nothing"
        );
        assert_eq!(b.remove("z"), None);
        assert!(a.same_as(&b), "removing an absent key changes nothing");
        b.retain(|kv| kv.key != "b");
        assert!(!a.same_as(&b));
        assert_eq!(a.len(), 3, "the original is left as it was");
        let keys: Vec<_> = b.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["a", "c"]);
        // Equal lists built apart are the same too.
        let c: Attributes = [("a", 1_i64), ("c", 3)].into_iter().collect();
        assert!(b.same_as(&c) && b == c);
    }

    #[test]
    fn retain_asks_once_for_each_attribute_in_order() {
        let mut attrs: Attributes = [("a", 1_i64), ("b", 2), ("c", 3), ("d", 4)]
            .into_iter()
            .collect();
        let mut asked = Vec::new();
        attrs.retain(|kv| {
            asked.push(kv.key.clone());
            kv.key != "b" && kv.key != "d"
        });
        assert_eq!(asked, ["a", "b", "c", "d"]);
        let keys: Vec<_> = attrs.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["a", "c"]);
    }

    #[test]
    fn a_nan_is_the_same_as_itself_but_not_equal() {
        let a: Attributes = [("x", f64::NAN)].into_iter().collect();
        assert!(a.same_as(&a.clone()));
        assert_ne!(a, a.clone());
        assert!(Attributes::new().same_as(&Attributes::from(Vec::new())));
    }

    #[test]
    fn display_formats_scalars_plainly() {
        assert_eq!(AnyValue::from("nginx").to_string(), "nginx");
        assert_eq!(AnyValue::Int(42).to_string(), "42");
        assert_eq!(AnyValue::Bytes(vec![0xde, 0xad]).to_string(), "dead");
        let arr = AnyValue::Array(vec![AnyValue::Int(1), AnyValue::Bool(true)]);
        assert_eq!(arr.to_string(), "[1,true]");
    }
}
