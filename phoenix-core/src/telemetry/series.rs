//! Series identity: metric name + resource attributes + data-point attributes.

use xxhash_rust::xxh3::Xxh3;

use super::{AnyValue, Attributes, KeyValue, MetricName};

/// The identity of one series, as a 128-bit hash of its metric name, resource attributes and
/// data-point attributes.
///
/// Attribute order does not matter; value types do (`1` and `"1"` are different series, as
/// they are to the collector). Keys are stable across runs and platforms, so they can be
/// compared between a prediction and a recording. Compute the resource part once with
/// [`ResourceKey`] and derive the series keys of its points from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey(u128);

impl SeriesKey {
    /// The key of one series.
    pub fn new(metric: &MetricName, resource: &Attributes, point: &Attributes) -> Self {
        ResourceKey::new(resource).metric(metric).series(point)
    }

    /// The raw hash.
    pub const fn as_u128(self) -> u128 {
        self.0
    }
}

/// The hashed resource part of a series key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResourceKey(u128);

impl ResourceKey {
    /// Hashes a resource's attributes.
    pub fn new(resource: &Attributes) -> Self {
        let mut hasher = Xxh3::new();
        hash_attributes(&mut hasher, resource);
        Self(hasher.digest128())
    }

    /// The key of `metric` on this resource.
    pub fn metric(self, metric: &MetricName) -> MetricKey {
        let mut hasher = Xxh3::new();
        hasher.update(&self.0.to_le_bytes());
        hash_str(&mut hasher, metric.as_str());
        MetricKey(hasher.digest128())
    }
}

/// The hashed resource and metric part of a series key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetricKey(u128);

impl MetricKey {
    /// The key of the series with these data-point attributes.
    pub fn series(self, point: &Attributes) -> SeriesKey {
        let mut hasher = Xxh3::new();
        hasher.update(&self.0.to_le_bytes());
        hash_attributes(&mut hasher, point);
        SeriesKey(hasher.digest128())
    }
}

fn hash_attributes(hasher: &mut Xxh3, attributes: &Attributes) {
    hasher.update(&(attributes.len() as u64).to_le_bytes());
    match attributes.as_slice() {
        [] => {}
        [only] => hash_key_value(hasher, only),
        many => {
            let mut sorted: Vec<&KeyValue> = many.iter().collect();
            sorted.sort_unstable_by(|a, b| a.key.cmp(&b.key));
            for kv in sorted {
                hash_key_value(hasher, kv);
            }
        }
    }
}

fn hash_key_value(hasher: &mut Xxh3, kv: &KeyValue) {
    hash_str(hasher, &kv.key);
    hash_value(hasher, &kv.value);
}

fn hash_str(hasher: &mut Xxh3, s: &str) {
    hasher.update(&(s.len() as u64).to_le_bytes());
    hasher.update(s.as_bytes());
}

fn hash_value(hasher: &mut Xxh3, value: &AnyValue) {
    match value {
        AnyValue::Empty => hasher.update(&[0]),
        AnyValue::String(s) => {
            hasher.update(&[1]);
            hash_str(hasher, s);
        }
        AnyValue::Bool(b) => hasher.update(&[2, u8::from(*b)]),
        AnyValue::Int(i) => {
            hasher.update(&[3]);
            hasher.update(&i.to_le_bytes());
        }
        AnyValue::Double(d) => {
            hasher.update(&[4]);
            hasher.update(&d.to_bits().to_le_bytes());
        }
        AnyValue::Array(values) => {
            hasher.update(&[5]);
            hasher.update(&(values.len() as u64).to_le_bytes());
            for v in values {
                hash_value(hasher, v);
            }
        }
        AnyValue::Map(map) => {
            hasher.update(&[6]);
            hash_attributes(hasher, map);
        }
        AnyValue::Bytes(bytes) => {
            hasher.update(&[7]);
            hasher.update(&(bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::ProcessMetric;

    fn attrs(pairs: &[(&str, AnyValue)]) -> Attributes {
        pairs.iter().cloned().collect()
    }

    #[test]
    fn attribute_order_does_not_change_identity() {
        let name = MetricName::from(ProcessMetric::CpuTime);
        let a = attrs(&[("a", AnyValue::Int(1)), ("b", "x".into())]);
        let b = attrs(&[("b", "x".into()), ("a", AnyValue::Int(1))]);
        let point = attrs(&[("state", "user".into())]);
        assert_eq!(
            SeriesKey::new(&name, &a, &point),
            SeriesKey::new(&name, &b, &point)
        );
    }

    #[test]
    fn every_part_of_the_identity_matters() {
        let cpu = MetricName::from(ProcessMetric::CpuTime);
        let mem = MetricName::from(ProcessMetric::MemoryUsage);
        let r1 = attrs(&[("process.pid", AnyValue::Int(1))]);
        let r2 = attrs(&[("process.pid", AnyValue::Int(2))]);
        let r1s = attrs(&[("process.pid", "1".into())]);
        let user = attrs(&[("state", "user".into())]);
        let system = attrs(&[("state", "system".into())]);
        let base = SeriesKey::new(&cpu, &r1, &user);
        assert_ne!(base, SeriesKey::new(&mem, &r1, &user));
        assert_ne!(base, SeriesKey::new(&cpu, &r2, &user));
        assert_ne!(base, SeriesKey::new(&cpu, &r1s, &user));
        assert_ne!(base, SeriesKey::new(&cpu, &r1, &system));
        assert_ne!(base, SeriesKey::new(&cpu, &r1, &Attributes::new()));
    }

    #[test]
    fn length_prefixes_keep_boundaries_apart() {
        let name = MetricName::from("m");
        let a = attrs(&[("ab", "c".into())]);
        let b = attrs(&[("a", "bc".into())]);
        assert_ne!(
            SeriesKey::new(&name, &a, &Attributes::new()),
            SeriesKey::new(&name, &b, &Attributes::new())
        );
    }
}
