//! Compiles parsed OTTL into resolved getters, setters and editors, and evaluates them over
//! the telemetry model.
//!
//! Paths are resolved to enums once, regexes are compiled once, and evaluation borrows the
//! data rather than copying it.

use std::cmp::Ordering;

use phoenix_core::telemetry::schema::MetricKind;
use phoenix_core::telemetry::{
    AnyValue, Attributes, DataPoint, KeyValue, Metric, MetricData, MetricName, NumberValue, Scope,
    Temporality, Timestamp,
};
use regex::Regex;

use super::ast::{Argument, BoolExpr, Call, CompareOp, Key, Path, Statement, Value};
use super::{Context, Host, SyntaxError};

/// A hasher for keys that are already well-mixed hashes (xxh3 digests): it folds them into 64
/// bits instead of hashing them again.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PrehashedHasher(u64);

impl std::hash::Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut buf = [0_u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(buf))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u128(&mut self, v: u128) {
        #[allow(clippy::cast_possible_truncation)]
        let folded = (v as u64) ^ ((v >> 64) as u64);
        self.0 ^= folded;
    }

    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }
}

/// An order-insensitive 64-bit hash of attributes: the sum of the hashes of each key and
/// value (so no sorting), mixed with their number, computed over a reused buffer (the hot
/// paths hash small attribute sets millions of times per second).
pub(crate) fn attributes_hash(attrs: &Attributes, buf: &mut Vec<u8>) -> u64 {
    key_values_hash(attrs.iter(), buf)
}

/// [`attributes_hash`] of the attributes `kvs` yields: the same value as for an
/// [`Attributes`] holding them.
pub(crate) fn key_values_hash<'a>(
    kvs: impl IntoIterator<Item = &'a KeyValue>,
    buf: &mut Vec<u8>,
) -> u64 {
    fn value_bytes(v: &AnyValue, buf: &mut Vec<u8>) {
        match v {
            AnyValue::Empty => buf.push(0),
            AnyValue::String(s) => {
                buf.push(1);
                buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
                buf.extend_from_slice(s.as_bytes());
            }
            AnyValue::Bool(b) => buf.extend_from_slice(&[2, u8::from(*b)]),
            AnyValue::Int(i) => {
                buf.push(3);
                buf.extend_from_slice(&i.to_le_bytes());
            }
            AnyValue::Double(d) => {
                buf.push(4);
                buf.extend_from_slice(&d.to_bits().to_le_bytes());
            }
            AnyValue::Bytes(b) => {
                buf.push(7);
                buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
                buf.extend_from_slice(b);
            }
            AnyValue::Array(_) | AnyValue::Map(_) => {
                buf.push(5);
                let text = format!("{v:?}");
                buf.extend_from_slice(&(text.len() as u64).to_le_bytes());
                buf.extend_from_slice(text.as_bytes());
            }
        }
    }
    let mut len: u64 = 0;
    let mut sum: u64 = 0;
    for kv in kvs {
        buf.clear();
        buf.extend_from_slice(&(kv.key.len() as u64).to_le_bytes());
        buf.extend_from_slice(kv.key.as_bytes());
        value_bytes(&kv.value, buf);
        sum = sum.wrapping_add(xxhash_rust::xxh3::xxh3_64(buf));
        len += 1;
    }
    (sum ^ len.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
}

/// A `HashMap` keyed by pre-hashed values.
pub(crate) type PrehashedMap<K, V> =
    std::collections::HashMap<K, V, std::hash::BuildHasherDefault<PrehashedHasher>>;

/// A literal value held by a compiled program.
#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Nil,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Lit>),
}

/// Which attribute map a path or editor addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MapOwner {
    Resource,
    Scope,
    Point,
}

impl MapOwner {
    fn context(self) -> Context {
        match self {
            Self::Resource => Context::Resource,
            Self::Scope => Context::Scope,
            Self::Point => Context::DataPoint,
        }
    }
}

/// A resolved value source.
#[derive(Debug, Clone)]
enum Getter {
    Literal(Lit),
    Attr(MapOwner, String),
    Attrs(MapOwner),
    ScopeName,
    ScopeVersion,
    MetricName,
    MetricDescription,
    MetricUnit,
    MetricType,
    MetricTemporality,
    MetricMonotonic,
    ValueInt,
    ValueDouble,
    StartTime,
    Time,
    Flags,
    TimeValue,
    StartTimeValue,
    Duration(i64),
    TruncateTime(Box<Getter>, Box<Getter>),
    IsMatch(Box<Getter>, Regex),
    HasAttrOnDatapoint(String, String),
    HasAttrKeyOnDatapoint(String),
}

/// A resolved assignment target of `set`.
#[derive(Debug, Clone)]
enum Setter {
    Attr(MapOwner, String),
    Attrs(MapOwner),
    MetricName,
    MetricDescription,
    MetricUnit,
    ValueInt,
    ValueDouble,
    Time,
    StartTime,
}

/// An aggregation function of `aggregate_on_attributes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregationFunction {
    /// Sum of the values.
    Sum,
    /// Mean of the values (integer division for integer points).
    Mean,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Median value.
    Median,
    /// Number of points.
    Count,
}

#[derive(Debug, Clone)]
enum Editor {
    Set(Setter, Getter),
    DeleteKey(MapOwner, String),
    DeleteMatchingKeys(MapOwner, Regex),
    KeepKeys(MapOwner, Vec<String>),
    KeepMatchingKeys(MapOwner, Regex),
    AggregateOnAttributes(AggregationFunction, Option<Vec<String>>),
}

/// A compiled boolean expression.
#[derive(Debug, Clone)]
pub struct Condition {
    expr: Cond,
}

#[derive(Debug, Clone)]
enum Cond {
    Or(Vec<Cond>),
    And(Vec<Cond>),
    Not(Box<Cond>),
    Compare(Getter, CompareOp, Getter),
    Const(bool),
    Bool(Getter),
}

/// A compiled statement: an editor and its optional `where` clause.
#[derive(Debug, Clone)]
pub struct CompiledStatement {
    editor: Editor,
    condition: Option<Condition>,
}

/// What a metric looks like to a condition: its identity and, in the metric context, its
/// points.
#[derive(Debug, Clone, Copy)]
pub struct MetricView<'a> {
    /// The metric name.
    pub name: &'a MetricName,
    /// The description.
    pub description: &'a str,
    /// The unit.
    pub unit: &'a str,
    /// Gauge or sum.
    pub kind: MetricKind,
    /// The temporality of a sum.
    pub temporality: Option<Temporality>,
    /// Whether a sum is monotonic.
    pub monotonic: bool,
    /// The data points (empty when evaluating in the data-point context).
    pub points: &'a [DataPoint],
}

impl<'a> MetricView<'a> {
    /// A view of `metric` with its points.
    pub fn of(metric: &'a Metric) -> Self {
        Self {
            points: metric.data.points(),
            ..Self::header(
                &metric.name,
                &metric.description,
                &metric.unit,
                &metric.data,
            )
        }
    }

    /// A view of `metric` without its points, as the data-point context sees its metric.
    pub fn without_points(metric: &'a Metric) -> Self {
        Self::header(
            &metric.name,
            &metric.description,
            &metric.unit,
            &metric.data,
        )
    }

    /// A view of `metric` without its points, and its points to change: what evaluating the
    /// data-point context in place needs.
    pub fn split(metric: &'a mut Metric) -> (Self, &'a mut Vec<DataPoint>) {
        let Metric {
            name,
            description,
            unit,
            data,
            ..
        } = metric;
        let view = Self::header(name, description, unit, data);
        (view, data.points_mut())
    }

    fn header(
        name: &'a MetricName,
        description: &'a str,
        unit: &'a str,
        data: &MetricData,
    ) -> Self {
        let (temporality, monotonic) = match data {
            MetricData::Gauge { .. } => (None, false),
            MetricData::Sum {
                temporality,
                monotonic,
                ..
            } => (Some(*temporality), *monotonic),
        };
        Self {
            name,
            description,
            unit,
            kind: data.kind(),
            temporality,
            monotonic,
            points: &[],
        }
    }
}

/// The telemetry a condition sees: the item of its context and everything above it.
#[derive(Debug, Clone, Copy)]
pub struct EvalContext<'a> {
    /// Resource attributes.
    pub resource: &'a Attributes,
    /// The scope, from the scope context down.
    pub scope: Option<&'a Scope>,
    /// The metric, from the metric context down.
    pub metric: Option<MetricView<'a>>,
    /// The data point, in the data-point context.
    pub point: Option<&'a DataPoint>,
}

/// A runtime value: borrowed from the telemetry or the program.
#[derive(Debug, Clone)]
enum Val<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(&'a str),
    Bytes(&'a [u8]),
    Map(&'a Attributes),
    Slice(&'a [AnyValue]),
    List(&'a [Lit]),
    /// A `time.Time`, as nanoseconds since the Unix epoch.
    Time(i128),
    /// A `time.Duration` in nanoseconds.
    Duration(i64),
}

/// A value and whether it came from an attribute (a `pcommon.Value` in the collector, which
/// compares for equality strictly by type).
type Operand<'a> = (Val<'a>, bool);

fn any_val(v: &AnyValue) -> Val<'_> {
    match v {
        AnyValue::Empty => Val::Nil,
        AnyValue::String(s) => Val::Str(s),
        AnyValue::Bool(b) => Val::Bool(*b),
        AnyValue::Int(i) => Val::Int(*i),
        AnyValue::Double(d) => Val::Double(*d),
        AnyValue::Array(a) => Val::Slice(a),
        AnyValue::Map(m) => Val::Map(m),
        AnyValue::Bytes(b) => Val::Bytes(b),
    }
}

fn lit_val(l: &Lit) -> Val<'_> {
    match l {
        Lit::Nil => Val::Nil,
        Lit::Bool(b) => Val::Bool(*b),
        Lit::Int(i) => Val::Int(*i),
        Lit::Double(d) => Val::Double(*d),
        Lit::Str(s) => Val::Str(s),
        Lit::Bytes(b) => Val::Bytes(b),
        Lit::List(l) => Val::List(l),
    }
}

fn to_any(v: &Val<'_>) -> Option<AnyValue> {
    Some(match v {
        Val::Nil => return None,
        Val::Bool(b) => AnyValue::Bool(*b),
        Val::Int(i) => AnyValue::Int(*i),
        Val::Double(d) => AnyValue::Double(*d),
        Val::Str(s) => AnyValue::String((*s).to_owned()),
        Val::Bytes(b) => AnyValue::Bytes(b.to_vec()),
        Val::Map(m) => AnyValue::Map((*m).clone()),
        Val::Slice(s) => AnyValue::Array(s.to_vec()),
        Val::List(l) => AnyValue::Array(l.iter().filter_map(|x| to_any(&lit_val(x))).collect()),
        Val::Time(_) | Val::Duration(_) => return None,
    })
}

fn metric_type_code(kind: MetricKind) -> i64 {
    match kind {
        MetricKind::Gauge => 1,
        MetricKind::Sum => 2,
    }
}

fn temporality_code(t: Option<Temporality>) -> i64 {
    match t {
        None | Some(Temporality::Unspecified) => 0,
        Some(Temporality::Delta) => 1,
        Some(Temporality::Cumulative) => 2,
    }
}

fn enum_value(name: &str) -> Option<i64> {
    Some(match name {
        "METRIC_DATA_TYPE_NONE" => 0,
        "METRIC_DATA_TYPE_GAUGE" => 1,
        "METRIC_DATA_TYPE_SUM" => 2,
        "METRIC_DATA_TYPE_HISTOGRAM" => 3,
        "METRIC_DATA_TYPE_EXPONENTIAL_HISTOGRAM" => 4,
        "METRIC_DATA_TYPE_SUMMARY" => 5,
        "AGGREGATION_TEMPORALITY_UNSPECIFIED" => 0,
        "AGGREGATION_TEMPORALITY_DELTA" => 1,
        "AGGREGATION_TEMPORALITY_CUMULATIVE" => 2,
        "FLAG_NONE" => 0,
        "FLAG_NO_RECORDED_VALUE" => 1,
        _ => return None,
    })
}

/// Appends the text OTTL's string conversion gives `v` (as `IsMatch` converts its target).
fn string_like(v: &Val<'_>, out: &mut String) -> bool {
    use std::fmt::Write as _;
    match v {
        Val::Nil => return false,
        Val::Str(s) => out.push_str(s),
        Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Val::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Val::Double(d) => {
            let _ = write!(out, "{d}");
        }
        Val::Bytes(b) => {
            for byte in *b {
                let _ = write!(out, "{byte:02x}");
            }
        }
        Val::Map(m) => out.push_str(&json_of(&AnyValue::Map((*m).clone()))),
        Val::Slice(s) => out.push_str(&json_of(&AnyValue::Array(s.to_vec()))),
        Val::Time(_) | Val::Duration(_) => return false,
        Val::List(l) => {
            let items: Vec<AnyValue> = l.iter().filter_map(|x| to_any(&lit_val(x))).collect();
            out.push_str(&json_of(&AnyValue::Array(items)));
        }
    }
    true
}

fn json_of(v: &AnyValue) -> String {
    fn conv(v: &AnyValue) -> serde_json::Value {
        match v {
            AnyValue::Empty => serde_json::Value::Null,
            AnyValue::String(s) => serde_json::Value::String(s.clone()),
            AnyValue::Bool(b) => serde_json::Value::Bool(*b),
            AnyValue::Int(i) => serde_json::Value::from(*i),
            AnyValue::Double(d) => serde_json::Value::from(*d),
            AnyValue::Array(a) => serde_json::Value::Array(a.iter().map(conv).collect()),
            AnyValue::Map(m) => serde_json::Value::Object(
                m.iter()
                    .map(|kv| (kv.key.clone(), conv(&kv.value)))
                    .collect(),
            ),
            AnyValue::Bytes(b) => {
                serde_json::Value::String(b.iter().map(|x| format!("{x:02x}")).collect())
            }
        }
    }
    conv(v).to_string()
}

pub(crate) fn attrs_equal(a: &Attributes, b: &Attributes) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|kv| b.get(&kv.key).is_some_and(|v| any_equal(&kv.value, v)))
}

fn any_equal(a: &AnyValue, b: &AnyValue) -> bool {
    match (a, b) {
        (AnyValue::Map(x), AnyValue::Map(y)) => attrs_equal(x, y),
        (AnyValue::Array(x), AnyValue::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| any_equal(p, q))
        }
        _ => a == b,
    }
}

fn order<T: PartialOrd>(a: &T, b: &T, op: CompareOp) -> bool {
    match op {
        CompareOp::Eq => a == b,
        CompareOp::Ne => a != b,
        CompareOp::Lt => a < b,
        CompareOp::Le => a <= b,
        CompareOp::Gt => a > b,
        CompareOp::Ge => a >= b,
    }
}

/// Compares two values with OTTL's comparison rules (`pkg/ottl/compare.go`).
fn compare(a: &Operand<'_>, b: &Operand<'_>, op: CompareOp) -> bool {
    let ((av, a_attr), (bv, b_attr)) = (a, b);
    // Two attribute values compare for (in)equality with `pcommon.Value.Equal`: same type and
    // same value.
    if *a_attr && *b_attr && matches!(op, CompareOp::Eq | CompareOp::Ne) {
        let equal = match (av, bv) {
            (Val::Nil, Val::Nil) => true,
            (Val::Bool(x), Val::Bool(y)) => x == y,
            (Val::Int(x), Val::Int(y)) => x == y,
            (Val::Double(x), Val::Double(y)) => x == y,
            (Val::Str(x), Val::Str(y)) => x == y,
            (Val::Bytes(x), Val::Bytes(y)) => x == y,
            (Val::Map(x), Val::Map(y)) => attrs_equal(x, y),
            (Val::Slice(x), Val::Slice(y)) => {
                x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| any_equal(p, q))
            }
            _ => false,
        };
        return (op == CompareOp::Eq) == equal;
    }
    compare_raw(av, bv, op)
}

fn compare_raw(a: &Val<'_>, b: &Val<'_>, op: CompareOp) -> bool {
    let invalid = op == CompareOp::Ne;
    match (a, b) {
        (Val::Nil, Val::Nil) => matches!(op, CompareOp::Eq | CompareOp::Le | CompareOp::Ge),
        (Val::Nil, _) | (_, Val::Nil) => invalid,
        (Val::Bool(x), Val::Bool(y)) => order(x, y, op),
        (Val::Int(x), Val::Int(y)) => order(x, y, op),
        #[allow(clippy::cast_precision_loss)]
        (Val::Int(x), Val::Double(y)) => order(&(*x as f64), y, op),
        #[allow(clippy::cast_precision_loss)]
        (Val::Double(x), Val::Int(y)) => order(x, &(*y as f64), op),
        (Val::Double(x), Val::Double(y)) => order(x, y, op),
        (Val::Str(x), Val::Str(y)) => order(x, y, op),
        (Val::Bytes(x), Val::Bytes(y)) => order(x, y, op),
        (Val::Time(x), Val::Time(y)) => order(x, y, op),
        (Val::Duration(x), Val::Duration(y)) => order(x, y, op),
        (Val::Map(x), Val::Map(y)) => match op {
            CompareOp::Eq => attrs_equal(x, y),
            CompareOp::Ne => !attrs_equal(x, y),
            _ => false,
        },
        (Val::Slice(_) | Val::List(_), Val::Slice(_) | Val::List(_)) => {
            let xs = to_any(a);
            let ys = to_any(b);
            let equal = match (xs, ys) {
                (Some(x), Some(y)) => any_equal(&x, &y),
                _ => false,
            };
            match op {
                CompareOp::Eq => equal,
                CompareOp::Ne => !equal,
                _ => false,
            }
        }
        _ => invalid,
    }
}

impl Getter {
    fn get<'a>(&'a self, ctx: &EvalContext<'a>) -> Operand<'a> {
        let raw = |v| (v, false);
        match self {
            Self::Literal(l) => raw(lit_val(l)),
            Self::Attr(owner, key) => {
                let map = match owner {
                    MapOwner::Resource => Some(ctx.resource),
                    MapOwner::Scope => ctx.scope.map(|s| &s.attributes),
                    MapOwner::Point => ctx.point.map(|p| &p.attributes),
                };
                match map.and_then(|m| m.get(key)) {
                    Some(v) => (any_val(v), true),
                    None => raw(Val::Nil),
                }
            }
            Self::Attrs(owner) => match owner {
                MapOwner::Resource => raw(Val::Map(ctx.resource)),
                MapOwner::Scope => raw(ctx.scope.map_or(Val::Nil, |s| Val::Map(&s.attributes))),
                MapOwner::Point => raw(ctx.point.map_or(Val::Nil, |p| Val::Map(&p.attributes))),
            },
            Self::ScopeName => raw(ctx.scope.map_or(Val::Nil, |s| Val::Str(&s.name))),
            Self::ScopeVersion => raw(ctx.scope.map_or(Val::Nil, |s| Val::Str(&s.version))),
            Self::MetricName => raw(ctx.metric.map_or(Val::Nil, |m| Val::Str(m.name.as_str()))),
            Self::MetricDescription => {
                raw(ctx.metric.map_or(Val::Nil, |m| Val::Str(m.description)))
            }
            Self::MetricUnit => raw(ctx.metric.map_or(Val::Nil, |m| Val::Str(m.unit))),
            Self::MetricType => raw(ctx
                .metric
                .map_or(Val::Nil, |m| Val::Int(metric_type_code(m.kind)))),
            Self::MetricTemporality => raw(ctx
                .metric
                .map_or(Val::Nil, |m| Val::Int(temporality_code(m.temporality)))),
            Self::MetricMonotonic => raw(ctx.metric.map_or(Val::Nil, |m| Val::Bool(m.monotonic))),
            Self::ValueInt => raw(ctx.point.map_or(Val::Nil, |p| match p.value {
                NumberValue::Int(i) => Val::Int(i),
                NumberValue::Double(_) => Val::Int(0),
            })),
            Self::ValueDouble => raw(ctx.point.map_or(Val::Nil, |p| match p.value {
                NumberValue::Double(d) => Val::Double(d),
                NumberValue::Int(_) => Val::Double(0.0),
            })),
            Self::StartTime => raw(ctx
                .point
                .map_or(Val::Nil, |p| Val::Int(nanos(p.start_time)))),
            Self::Time => raw(ctx.point.map_or(Val::Nil, |p| Val::Int(nanos(p.time)))),
            Self::Flags => raw(ctx.point.map_or(Val::Nil, |p| Val::Int(i64::from(p.flags)))),
            Self::TimeValue => raw(ctx
                .point
                .map_or(Val::Nil, |p| Val::Time(i128::from(p.time.as_nanos())))),
            Self::StartTimeValue => raw(ctx
                .point
                .map_or(Val::Nil, |p| Val::Time(i128::from(p.start_time.as_nanos())))),
            Self::Duration(d) => raw(Val::Duration(*d)),
            Self::TruncateTime(t, d) => match (t.get(ctx).0, d.get(ctx).0) {
                (Val::Time(t), Val::Duration(d)) => raw(Val::Time(truncate_time(t, d))),
                _ => raw(Val::Nil),
            },
            Self::IsMatch(target, re) => {
                let (v, _) = target.get(ctx);
                let matched = match v {
                    Val::Str(s) => re.is_match(s),
                    other => {
                        let mut text = String::new();
                        string_like(&other, &mut text) && re.is_match(&text)
                    }
                };
                raw(Val::Bool(matched))
            }
            Self::HasAttrOnDatapoint(key, value) => raw(Val::Bool(ctx.metric.is_some_and(|m| {
                m.points
                    .iter()
                    .any(|p| p.attributes.get_str(key) == Some(value.as_str()))
            }))),
            Self::HasAttrKeyOnDatapoint(key) => {
                raw(Val::Bool(ctx.metric.is_some_and(|m| {
                    m.points.iter().any(|p| p.attributes.contains_key(key))
                })))
            }
        }
    }
}

/// Nanoseconds from the start of year 1 to the Unix epoch.
const ZERO_TO_UNIX: i128 = 62_135_596_800 * 1_000_000_000;

/// Go's `time.Time.Truncate`: rounds down to a multiple of `d` since Go's zero time (1 January
/// of year 1, UTC); a non-positive `d` leaves the time unchanged.
fn truncate_time(unix_nanos: i128, d: i64) -> i128 {
    if d <= 0 {
        return unix_nanos;
    }
    let since_zero = unix_nanos + ZERO_TO_UNIX;
    since_zero - since_zero.rem_euclid(i128::from(d)) - ZERO_TO_UNIX
}

fn nanos(t: Timestamp) -> i64 {
    i64::try_from(t.as_nanos()).unwrap_or(i64::MAX)
}

impl Cond {
    fn eval(&self, ctx: &EvalContext<'_>) -> bool {
        match self {
            Self::Or(terms) => terms.iter().any(|t| t.eval(ctx)),
            Self::And(terms) => terms.iter().all(|t| t.eval(ctx)),
            Self::Not(inner) => !inner.eval(ctx),
            Self::Compare(a, op, b) => compare(&a.get(ctx), &b.get(ctx), *op),
            Self::Const(b) => *b,
            Self::Bool(g) => matches!(g.get(ctx).0, Val::Bool(true)),
        }
    }
}

impl Getter {
    /// Whether the value depends on nothing below the resource.
    fn resource_only(&self) -> bool {
        match self {
            Self::Literal(_) | Self::Duration(_) => true,
            Self::Attr(owner, _) | Self::Attrs(owner) => *owner == MapOwner::Resource,
            Self::IsMatch(g, _) => g.resource_only(),
            Self::TruncateTime(a, b) => a.resource_only() && b.resource_only(),
            _ => false,
        }
    }
}

impl Cond {
    fn resource_only(&self) -> bool {
        match self {
            Self::Or(t) | Self::And(t) => t.iter().all(Self::resource_only),
            Self::Not(x) => x.resource_only(),
            Self::Compare(a, _, b) => a.resource_only() && b.resource_only(),
            Self::Const(_) => true,
            Self::Bool(g) => g.resource_only(),
        }
    }
}

impl Condition {
    /// Whether the condition holds for this telemetry.
    pub fn eval(&self, ctx: &EvalContext<'_>) -> bool {
        self.expr.eval(ctx)
    }

    /// Whether the condition reads nothing but resource attributes and literals, so that it
    /// can be evaluated once per resource instead of once per metric or data point.
    pub fn is_resource_only(&self) -> bool {
        self.expr.resource_only()
    }
}

/// Editors may change attribute maps of their own context or of the contexts above it (a
/// data-point statement may set a resource attribute), as in the collector.
fn map_of(owner: MapOwner, ctx_level: Context) -> Option<MapOwner> {
    (owner.context().depth() <= ctx_level.depth()).then_some(owner)
}

fn apply_map_edit(attrs: &mut Attributes, editor: &Editor) {
    match editor {
        Editor::DeleteKey(_, key) => {
            attrs.remove(key);
        }
        Editor::DeleteMatchingKeys(_, re) => attrs.retain(|kv| !re.is_match(&kv.key)),
        Editor::KeepKeys(_, keys) => attrs.retain(|kv| keys.contains(&kv.key)),
        Editor::KeepMatchingKeys(_, re) => attrs.retain(|kv| re.is_match(&kv.key)),
        Editor::Set(..) | Editor::AggregateOnAttributes(..) => {}
    }
}

fn set_map_value(attrs: &mut Attributes, key: &str, value: Option<AnyValue>) {
    // Setting nil leaves the map unchanged, as the collector's map setter does.
    if let Some(v) = value {
        attrs.insert(key, v);
    }
}

/// The mutable telemetry an editor may change: its own item and the ones above it.
struct Targets<'a> {
    resource: &'a mut Attributes,
    scope: Option<&'a mut Scope>,
    metric: Option<&'a mut Metric>,
    point: Option<&'a mut DataPoint>,
}

impl Targets<'_> {
    fn map(&mut self, owner: MapOwner) -> Option<&mut Attributes> {
        match owner {
            MapOwner::Resource => Some(self.resource),
            MapOwner::Scope => self.scope.as_deref_mut().map(|s| &mut s.attributes),
            MapOwner::Point => self.point.as_deref_mut().map(|p| &mut p.attributes),
        }
    }
}

/// A point's time or start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeField {
    Time,
    StartTime,
}

impl TimeField {
    fn get(self, p: &DataPoint) -> Timestamp {
        match self {
            Self::Time => p.time,
            Self::StartTime => p.start_time,
        }
    }
}

/// A statement that sets a point's time or start time to a time of the point truncated to a
/// step, `set(datapoint.time, TruncateTime(datapoint.time, Duration("10s")))`, possibly with a
/// `where` clause comparing a time's Unix nanoseconds with an integer: run without the
/// interpreter, with the same result.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimeTruncation {
    target: TimeField,
    source: TimeField,
    step: i64,
    /// Nanoseconds from year 1 to the Unix epoch, modulo the step (when it is positive).
    offset: u64,
    condition: Option<(TimeField, CompareOp, i64)>,
    /// The last time truncated, and the result: the points of a resource share their times,
    /// and a 64-bit division costs more than the rest of the statement.
    last: Option<(u64, i128)>,
}

impl TimeTruncation {
    /// [`truncate_time`] of `unix_nanos`, in 64-bit arithmetic where it can be.
    fn truncate(&self, unix_nanos: u64) -> i128 {
        let Ok(step) = u64::try_from(self.step) else {
            return truncate_time(i128::from(unix_nanos), self.step);
        };
        if step == 0 {
            return i128::from(unix_nanos);
        }
        // (Unix nanoseconds + the offset of year 1) mod step, without 128-bit division: both
        // remainders are below the step, which is below 2^63, so their sum fits.
        let rem = (unix_nanos % step + self.offset) % step;
        i128::from(unix_nanos) - i128::from(rem)
    }

    /// Runs the statement on `p`.
    pub(crate) fn apply(&mut self, p: &mut DataPoint) {
        if let Some((field, op, bound)) = self.condition
            && !order(&nanos(field.get(p)), &bound, op)
        {
            return;
        }
        let source = self.source.get(p).as_nanos();
        let truncated = match self.last {
            Some((from, to)) if from == source => to,
            _ => {
                let to = self.truncate(source);
                self.last = Some((source, to));
                to
            }
        };
        // As `set` with the value `TruncateTime` gives: a time is carried as its Unix
        // nanoseconds, and one outside `i64` leaves the point as it is.
        if let Ok(n) = i64::try_from(truncated.max(0)) {
            let t = Timestamp::from_nanos(u64::try_from(n).unwrap_or(0));
            match self.target {
                TimeField::Time => p.time = t,
                TimeField::StartTime => p.start_time = t,
            }
        }
    }
}

impl CompiledStatement {
    fn holds(&self, ctx: &EvalContext<'_>) -> bool {
        self.condition.as_ref().is_none_or(|c| c.eval(ctx))
    }

    /// The statement as a [`TimeTruncation`], when it is one.
    pub(crate) fn time_truncation(&self) -> Option<TimeTruncation> {
        let Editor::Set(setter, Getter::TruncateTime(source, step)) = &self.editor else {
            return None;
        };
        let target = match setter {
            Setter::Time => TimeField::Time,
            Setter::StartTime => TimeField::StartTime,
            _ => return None,
        };
        let source = match **source {
            Getter::TimeValue => TimeField::Time,
            Getter::StartTimeValue => TimeField::StartTime,
            _ => return None,
        };
        let Getter::Duration(step) = **step else {
            return None;
        };
        let condition = match &self.condition {
            None => None,
            Some(Condition {
                expr: Cond::Compare(field, op, Getter::Literal(Lit::Int(bound))),
            }) => Some((
                match field {
                    Getter::Time => TimeField::Time,
                    Getter::StartTime => TimeField::StartTime,
                    _ => return None,
                },
                *op,
                *bound,
            )),
            Some(_) => return None,
        };
        Some(TimeTruncation {
            target,
            source,
            step,
            offset: u64::try_from(ZERO_TO_UNIX.rem_euclid(i128::from(step.max(1)))).unwrap_or(0),
            condition,
            last: None,
        })
    }

    /// Applies the editor with `value` (the evaluated value of `set`).
    fn apply(&self, value: Option<AnyValue>, mut t: Targets<'_>) {
        match &self.editor {
            Editor::Set(setter, _) => match setter {
                Setter::Attr(owner, key) => {
                    if let Some(m) = t.map(*owner) {
                        set_map_value(m, key, value);
                    }
                }
                Setter::Attrs(owner) => {
                    if let (Some(m), Some(AnyValue::Map(new))) = (t.map(*owner), value) {
                        *m = new;
                    }
                }
                Setter::MetricName | Setter::MetricDescription | Setter::MetricUnit => {
                    let (Some(metric), Some(AnyValue::String(s))) = (t.metric, value) else {
                        return;
                    };
                    match setter {
                        Setter::MetricName => metric.name = MetricName::from(s),
                        Setter::MetricDescription => metric.description = s,
                        _ => metric.unit = s,
                    }
                }
                Setter::ValueInt => {
                    if let (Some(p), Some(AnyValue::Int(i))) = (t.point, value) {
                        p.value = NumberValue::Int(i);
                    }
                }
                Setter::Time | Setter::StartTime => {
                    if let (Some(p), Some(AnyValue::Int(nanos))) = (t.point, value) {
                        let ts = Timestamp::from_nanos(u64::try_from(nanos).unwrap_or(0));
                        if matches!(setter, Setter::Time) {
                            p.time = ts;
                        } else {
                            p.start_time = ts;
                        }
                    }
                }
                Setter::ValueDouble => {
                    if let (Some(p), Some(AnyValue::Double(d))) = (t.point, value) {
                        p.value = NumberValue::Double(d);
                    }
                }
            },
            Editor::AggregateOnAttributes(function, keys) => {
                if let Some(metric) = t.metric {
                    aggregate_on_attributes(metric, *function, keys.as_deref());
                }
            }
            Editor::DeleteKey(owner, _)
            | Editor::DeleteMatchingKeys(owner, _)
            | Editor::KeepKeys(owner, _)
            | Editor::KeepMatchingKeys(owner, _) => {
                if let Some(m) = t.map(*owner) {
                    apply_map_edit(m, &self.editor);
                }
            }
        }
    }

    /// Evaluates the `where` clause and the value `set` assigns; `None` when the clause does
    /// not hold.
    fn prepare(&self, ctx: &EvalContext<'_>) -> Option<Option<AnyValue>> {
        if !self.holds(ctx) {
            return None;
        }
        Some(match &self.editor {
            Editor::Set(Setter::Time | Setter::StartTime, g) => match g.get(ctx).0 {
                // A time is carried as its Unix nanoseconds; other types leave the point as is.
                Val::Time(t) => i64::try_from(t.max(0)).ok().map(AnyValue::Int),
                _ => None,
            },
            Editor::Set(_, g) => to_any(&g.get(ctx).0),
            _ => None,
        })
    }

    /// Runs the statement in the resource context.
    pub fn exec_resource(&self, resource: &mut Attributes) {
        let ctx = EvalContext {
            resource,
            scope: None,
            metric: None,
            point: None,
        };
        if let Some(value) = self.prepare(&ctx) {
            self.apply(
                value,
                Targets {
                    resource,
                    scope: None,
                    metric: None,
                    point: None,
                },
            );
        }
    }

    /// Runs the statement in the scope context.
    pub fn exec_scope(&self, resource: &mut Attributes, scope: &mut Scope) {
        let ctx = EvalContext {
            resource,
            scope: Some(scope),
            metric: None,
            point: None,
        };
        if let Some(value) = self.prepare(&ctx) {
            self.apply(
                value,
                Targets {
                    resource,
                    scope: Some(scope),
                    metric: None,
                    point: None,
                },
            );
        }
    }

    /// Runs the statement in the metric context.
    pub fn exec_metric(&self, resource: &mut Attributes, scope: &mut Scope, metric: &mut Metric) {
        let ctx = EvalContext {
            resource,
            scope: Some(scope),
            metric: Some(MetricView::of(metric)),
            point: None,
        };
        if let Some(value) = self.prepare(&ctx) {
            self.apply(
                value,
                Targets {
                    resource,
                    scope: Some(scope),
                    metric: Some(metric),
                    point: None,
                },
            );
        }
    }

    /// Runs the statement in the data-point context.
    pub fn exec_point(
        &self,
        resource: &mut Attributes,
        scope: &mut Scope,
        metric: MetricView<'_>,
        point: &mut DataPoint,
    ) {
        let ctx = EvalContext {
            resource,
            scope: Some(scope),
            metric: Some(metric),
            point: Some(point),
        };
        if let Some(value) = self.prepare(&ctx) {
            self.apply(
                value,
                Targets {
                    resource,
                    scope: Some(scope),
                    metric: None,
                    point: Some(point),
                },
            );
        }
    }
}

/// `aggregate_on_attributes` as `internal/coreinternal/aggregateutil` implements it: keep only
/// `keys` on every point (all attributes when `keys` is `None`), group points by attributes
/// and timestamp (and start time for delta sums), and merge each group into its first point.
/// The merged point's start time is the group's earliest. Groups come out in the order of
/// their first point (the collector iterates a Go map, so its order is unspecified). The
/// metric's metadata is dropped, as the collector rebuilds the metric without it.
pub fn aggregate_on_attributes(
    metric: &mut Metric,
    function: AggregationFunction,
    keys: Option<&[String]>,
) {
    let by_start = matches!(
        metric.data,
        MetricData::Sum {
            temporality: Temporality::Delta,
            ..
        }
    );
    metric.metadata = Attributes::new();
    let points = metric.data.points_mut();
    if let Some(keys) = keys {
        for p in points.iter_mut() {
            p.attributes.retain(|kv| keys.contains(&kv.key));
        }
    }
    let taken = std::mem::take(points);
    let mut groups: Vec<(DataPoint, Vec<NumberValue>)> = Vec::new();
    let mut index: PrehashedMap<u128, Vec<usize>> = PrehashedMap::default();
    let mut buf = Vec::with_capacity(64);
    for p in taken {
        let key = group_key(&p, by_start, &mut buf);
        let slot = index.entry(key).or_default();
        let found = slot.iter().copied().find(|&g| {
            let first = &groups[g].0;
            first.time == p.time
                && (!by_start || first.start_time == p.start_time)
                && attrs_equal(&first.attributes, &p.attributes)
        });
        match found {
            Some(g) => {
                let group = &mut groups[g];
                if p.start_time < group.0.start_time {
                    group.0.start_time = p.start_time;
                }
                group.1.push(p.value);
            }
            None => {
                slot.push(groups.len());
                let value = p.value;
                groups.push((p, vec![value]));
            }
        }
    }
    for (mut point, values) in groups {
        point.value = merge_values(point.value, &values, function);
        points.push(point);
    }
}

/// The grouping key of `aggregate_on_attributes` for a point.
fn group_key(p: &DataPoint, by_start: bool, buf: &mut Vec<u8>) -> u128 {
    let base = u128::from(attributes_hash(&p.attributes, buf));
    let t = u128::from(p.time.as_nanos());
    let s = if by_start {
        u128::from(p.start_time.as_nanos())
    } else {
        0
    };
    base ^ t.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ s.rotate_left(64)
}

#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap
)]
pub(crate) fn merge_values(
    first: NumberValue,
    values: &[NumberValue],
    function: AggregationFunction,
) -> NumberValue {
    let n = values.len();
    match first {
        NumberValue::Double(_) => {
            let v: Vec<f64> = values.iter().map(|x| x.as_f64()).collect();
            let out = match function {
                AggregationFunction::Sum => v.iter().sum(),
                AggregationFunction::Mean => v.iter().sum::<f64>() / n as f64,
                AggregationFunction::Max => v.iter().copied().fold(v[0], f64::max),
                AggregationFunction::Min => v.iter().copied().fold(v[0], f64::min),
                // A single point keeps its value: the collector only counts from the second.
                AggregationFunction::Count => {
                    if n > 1 {
                        n as f64
                    } else {
                        v[0]
                    }
                }
                AggregationFunction::Median => {
                    let mut s = v;
                    s.sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
                    if n % 2 == 1 {
                        s[n / 2]
                    } else {
                        (s[n / 2 - 1] + s[n / 2]) / 2.0
                    }
                }
            };
            NumberValue::Double(out)
        }
        NumberValue::Int(_) => {
            let v: Vec<i64> = values
                .iter()
                .map(|x| match x {
                    NumberValue::Int(i) => *i,
                    NumberValue::Double(d) => *d as i64,
                })
                .collect();
            let out = match function {
                AggregationFunction::Sum => v.iter().fold(0_i64, |a, b| a.wrapping_add(*b)),
                AggregationFunction::Mean => {
                    v.iter().fold(0_i64, |a, b| a.wrapping_add(*b)) / n as i64
                }
                AggregationFunction::Max => v.iter().copied().max().unwrap_or(0),
                AggregationFunction::Min => v.iter().copied().min().unwrap_or(0),
                AggregationFunction::Count => {
                    if n > 1 {
                        n as i64
                    } else {
                        v[0]
                    }
                }
                AggregationFunction::Median => {
                    let mut s = v;
                    s.sort_unstable();
                    if n % 2 == 1 {
                        s[n / 2]
                    } else {
                        (s[n / 2 - 1] + s[n / 2]) / 2
                    }
                }
            };
            NumberValue::Int(out)
        }
    }
}

// ----------------------------------------------------------------------------------------
// What statements touch, for executing them over borrowed telemetry
// ----------------------------------------------------------------------------------------

/// An unconditional edit of the resource attributes' keys: what a resource-context
/// `delete_key`, `delete_matching_keys`, `keep_keys` or `keep_matching_keys` statement without
/// a `where` clause does, applicable to a list of borrowed attributes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum KeyEdit<'a> {
    /// `delete_key`: removes the first attribute with this key.
    Delete(&'a str),
    /// `delete_matching_keys`.
    DeleteMatching(&'a Regex),
    /// `keep_keys`.
    Keep(&'a [String]),
    /// `keep_matching_keys`.
    KeepMatching(&'a Regex),
}

impl KeyEdit<'_> {
    /// Applies the edit as [`CompiledStatement::exec_resource`] would to the attributes
    /// `attrs` lists, in order.
    pub(crate) fn apply(self, attrs: &mut Vec<&KeyValue>) {
        match self {
            Self::Delete(key) => {
                if let Some(i) = attrs.iter().position(|kv| kv.key == key) {
                    attrs.remove(i);
                }
            }
            Self::DeleteMatching(re) => attrs.retain(|kv| !re.is_match(&kv.key)),
            Self::Keep(keys) => attrs.retain(|kv| keys.contains(&kv.key)),
            Self::KeepMatching(re) => attrs.retain(|kv| re.is_match(&kv.key)),
        }
    }
}

/// Which of a data point's time, start time, value and flags something reads or writes: a
/// set of the `PointScalars::*` bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PointScalars(u8);

impl PointScalars {
    /// The time.
    pub(crate) const TIME: Self = Self(1);
    /// The start time.
    pub(crate) const START_TIME: Self = Self(2);
    /// The value (and its type).
    pub(crate) const VALUE: Self = Self(4);
    /// The flags.
    pub(crate) const FLAGS: Self = Self(8);

    /// Whether every field of `other` is in the set.
    pub(crate) fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of the two sets.
    #[must_use]
    pub(crate) fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

impl Getter {
    /// The point fields the value depends on.
    fn point_scalars(&self) -> PointScalars {
        match self {
            Self::ValueInt | Self::ValueDouble => PointScalars::VALUE,
            Self::StartTime | Self::StartTimeValue => PointScalars::START_TIME,
            Self::Time | Self::TimeValue => PointScalars::TIME,
            Self::Flags => PointScalars::FLAGS,
            Self::TruncateTime(a, b) => a.point_scalars().with(b.point_scalars()),
            Self::IsMatch(g, _) => g.point_scalars(),
            _ => PointScalars::default(),
        }
    }

    /// Whether the value depends on nothing but the data point's time, start time, value and
    /// flags (and literals).
    fn point_scalars_only(&self) -> bool {
        match self {
            Self::Literal(_)
            | Self::Duration(_)
            | Self::ValueInt
            | Self::ValueDouble
            | Self::StartTime
            | Self::Time
            | Self::Flags
            | Self::TimeValue
            | Self::StartTimeValue => true,
            Self::TruncateTime(a, b) => a.point_scalars_only() && b.point_scalars_only(),
            Self::IsMatch(g, _) => g.point_scalars_only(),
            _ => false,
        }
    }
}

impl Cond {
    fn point_scalars(&self) -> PointScalars {
        match self {
            Self::Or(t) | Self::And(t) => t.iter().fold(PointScalars::default(), |acc, c| {
                acc.with(c.point_scalars())
            }),
            Self::Not(x) => x.point_scalars(),
            Self::Compare(a, _, b) => a.point_scalars().with(b.point_scalars()),
            Self::Const(_) => PointScalars::default(),
            Self::Bool(g) => g.point_scalars(),
        }
    }

    fn point_scalars_only(&self) -> bool {
        match self {
            Self::Or(t) | Self::And(t) => t.iter().all(Self::point_scalars_only),
            Self::Not(x) => x.point_scalars_only(),
            Self::Compare(a, _, b) => a.point_scalars_only() && b.point_scalars_only(),
            Self::Const(_) => true,
            Self::Bool(g) => g.point_scalars_only(),
        }
    }
}

impl Condition {
    /// Whether the condition reads nothing but the data point's time, start time, value and
    /// flags: it then gives the same answer on a point stripped of its attributes, with any
    /// resource, scope and metric.
    pub(crate) fn reads_point_scalars_only(&self) -> bool {
        self.expr.point_scalars_only()
    }

    /// The point fields the condition reads.
    pub(crate) fn point_scalars(&self) -> PointScalars {
        self.expr.point_scalars()
    }
}

impl CompiledStatement {
    /// The key edit, when the statement is an unconditional edit of resource attribute keys.
    pub(crate) fn resource_key_edit(&self) -> Option<KeyEdit<'_>> {
        if self.condition.is_some() {
            return None;
        }
        match &self.editor {
            Editor::DeleteKey(MapOwner::Resource, key) => Some(KeyEdit::Delete(key)),
            Editor::DeleteMatchingKeys(MapOwner::Resource, re) => Some(KeyEdit::DeleteMatching(re)),
            Editor::KeepKeys(MapOwner::Resource, keys) => Some(KeyEdit::Keep(keys)),
            Editor::KeepMatchingKeys(MapOwner::Resource, re) => Some(KeyEdit::KeepMatching(re)),
            _ => None,
        }
    }

    /// Whether the statement reads and writes nothing but the data point's time, start time,
    /// value and flags: `set` of one of them, from and under conditions on them.
    pub(crate) fn is_point_scalar_edit(&self) -> bool {
        let Editor::Set(setter, getter) = &self.editor else {
            return false;
        };
        matches!(
            setter,
            Setter::ValueInt | Setter::ValueDouble | Setter::Time | Setter::StartTime
        ) && getter.point_scalars_only()
            && self
                .condition
                .as_ref()
                .is_none_or(Condition::reads_point_scalars_only)
    }

    /// The point fields a statement for which [`CompiledStatement::is_point_scalar_edit`]
    /// holds reads or writes.
    pub(crate) fn point_scalars(&self) -> PointScalars {
        let mut fields = self
            .condition
            .as_ref()
            .map_or(PointScalars::default(), Condition::point_scalars);
        if let Editor::Set(setter, getter) = &self.editor {
            fields = fields.with(getter.point_scalars()).with(match setter {
                Setter::ValueInt | Setter::ValueDouble => PointScalars::VALUE,
                Setter::Time => PointScalars::TIME,
                Setter::StartTime => PointScalars::START_TIME,
                _ => PointScalars::default(),
            });
        }
        fields
    }

    /// The aggregation function, when the statement is an unconditional
    /// `aggregate_on_attributes` over all attributes (no key list).
    pub(crate) fn aggregation_over_all_attributes(&self) -> Option<AggregationFunction> {
        match (&self.editor, &self.condition) {
            (Editor::AggregateOnAttributes(function, None), None) => Some(*function),
            _ => None,
        }
    }
}

// ----------------------------------------------------------------------------------------
// Compilation
// ----------------------------------------------------------------------------------------

const CONTEXT_NAMES: [&str; 5] = [
    "resource",
    "scope",
    "instrumentation_scope",
    "metric",
    "datapoint",
];

fn context_of_name(name: &str) -> Option<Context> {
    Some(match name {
        "resource" => Context::Resource,
        "scope" | "instrumentation_scope" => Context::Scope,
        "metric" => Context::Metric,
        "datapoint" => Context::DataPoint,
        _ => return None,
    })
}

/// Whether `field` is a path of `context` in the collector's OTTL (`pkg/ottl/contexts`), whether
/// or not it is supported here: an unknown field is an error, a known one the emulator cannot
/// evaluate is only unsupported.
fn known_field(context: Context, field: &str) -> bool {
    let fields: &[&str] = match context {
        Context::Resource => &[
            "attributes",
            "dropped_attributes_count",
            "schema_url",
            "cache",
        ],
        Context::Scope => &[
            "name",
            "version",
            "attributes",
            "dropped_attributes_count",
            "schema_url",
            "cache",
        ],
        Context::Metric => &[
            "name",
            "description",
            "unit",
            "type",
            "aggregation_temporality",
            "is_monotonic",
            "data_points",
            "metadata",
            "cache",
        ],
        Context::DataPoint => &[
            "attributes",
            "start_time_unix_nano",
            "time_unix_nano",
            "start_time",
            "time",
            "value_double",
            "value_int",
            "exemplars",
            "flags",
            "count",
            "sum",
            "bucket_counts",
            "explicit_bounds",
            "scale",
            "zero_count",
            "positive",
            "negative",
            "quantile_values",
            "cache",
        ],
    };
    fields.contains(&field)
}

/// Splits a path into its context and the remaining segments; `None` context when the path
/// has no context prefix.
fn path_context(path: &Path) -> (Option<Context>, usize) {
    match path.segments.first() {
        Some(first)
            if path.segments.len() > 1
                && first.keys.is_empty()
                && CONTEXT_NAMES.contains(&first.name.as_str()) =>
        {
            (context_of_name(&first.name), 1)
        }
        _ => (None, 0),
    }
}

/// Statement-level hints for context inference: the path contexts, function names and enums.
#[derive(Default)]
struct Hints {
    contexts: Vec<Context>,
    functions: Vec<String>,
    enums: bool,
}

fn hint_value(v: &Value, h: &mut Hints) {
    match v {
        Value::Path(p) => {
            if let (Some(c), _) = path_context(p) {
                h.contexts.push(c);
            }
        }
        Value::Converter(call) => hint_call(call, h),
        Value::List(items) => items.iter().for_each(|i| hint_value(i, h)),
        Value::Enum { .. } => h.enums = true,
        _ => {}
    }
}

fn hint_call(call: &Call, h: &mut Hints) {
    h.functions.push(call.name.clone());
    for a in &call.args {
        hint_value(&a.value, h);
    }
}

fn hint_bool(e: &BoolExpr, h: &mut Hints) {
    match e {
        BoolExpr::Or(t) | BoolExpr::And(t) => t.iter().for_each(|x| hint_bool(x, h)),
        BoolExpr::Not(x) => hint_bool(x, h),
        BoolExpr::Compare(a, _, b) => {
            hint_value(a, h);
            hint_value(b, h);
        }
        BoolExpr::Const(_) => {}
        BoolExpr::Converter(c) => hint_call(c, h),
    }
}

fn supports_function(context: Context, host: Host, name: &str) -> bool {
    match name {
        "IsMatch" | "TruncateTime" | "Duration" => true,
        "HasAttrOnDatapoint" | "HasAttrKeyOnDatapoint" => {
            host == Host::Filter && context == Context::Metric
        }
        "aggregate_on_attributes" => host == Host::Transform && context == Context::Metric,
        "set" | "delete_key" | "delete_matching_keys" | "keep_keys" | "keep_matching_keys" => {
            host == Host::Transform
        }
        // Functions outside the subset do not constrain inference; they are reported later.
        _ => true,
    }
}

/// Infers the context of flat statements and conditions as `pkg/ottl/context_inferrer.go`
/// does: the highest-priority context among the path prefixes (datapoint, metric, resource,
/// scope), falling back to its lower contexts when it lacks a function or enum used.
fn infer(hints: &Hints, host: Host) -> Option<Context> {
    let priority = |c: Context| match c {
        Context::DataPoint => 0,
        Context::Metric => 1,
        Context::Resource => 2,
        Context::Scope => 3,
    };
    let chosen = hints
        .contexts
        .iter()
        .copied()
        .min_by_key(|c| priority(*c))?;
    let ok = |c: Context| {
        hints
            .functions
            .iter()
            .all(|f| supports_function(c, host, f))
            && (!hints.enums || matches!(c, Context::Metric | Context::DataPoint))
    };
    if ok(chosen) {
        return Some(chosen);
    }
    let mut lower: Vec<Context> = match chosen {
        Context::Resource => vec![Context::Scope, Context::Metric, Context::DataPoint],
        Context::Scope => vec![Context::Metric, Context::DataPoint],
        Context::Metric => vec![Context::DataPoint],
        Context::DataPoint => vec![],
    };
    lower.sort_by_key(|c| priority(*c));
    lower.into_iter().find(|c| ok(*c))
}

struct Compiler {
    context: Context,
    host: Host,
    /// Whether paths must carry a context prefix (flat statements with inferred context).
    require_prefix: bool,
}

/// Compiles a statement. `context` is the group's context, or `None` to infer it from the
/// path prefixes as the collector does for flat statements. Returns the context used.
pub(super) fn compile_statement(
    text: &str,
    context: Option<Context>,
    host: Host,
) -> Result<(Context, CompiledStatement), SyntaxError> {
    let parsed = super::parser::parse_statement(text)?;
    let (context, require_prefix) = match context {
        Some(c) => (c, false),
        None => {
            let mut h = Hints::default();
            hint_call(&parsed.editor, &mut h);
            if let Some(w) = &parsed.where_clause {
                hint_bool(w, &mut h);
            }
            (infer(&h, host).ok_or_else(|| no_context(&parsed))?, true)
        }
    };
    let c = Compiler {
        context,
        host,
        require_prefix,
    };
    Ok((context, c.statement(&parsed)?))
}

fn no_context(parsed: &Statement) -> SyntaxError {
    SyntaxError::syntax(
        parsed.editor.column,
        "unable to infer a context from the statement: write paths with a context prefix (resource., scope., metric., datapoint.) or use a statement group with `context`",
    )
}

/// Compiles a condition in `context`, or infers the context when `None`.
pub(super) fn compile_condition(
    text: &str,
    context: Option<Context>,
    host: Host,
) -> Result<(Context, Condition), SyntaxError> {
    let parsed = super::parser::parse_condition(text)?;
    let (context, require_prefix) = match context {
        Some(c) => (c, false),
        None => {
            let mut h = Hints::default();
            hint_bool(&parsed, &mut h);
            (
                infer(&h, host).ok_or_else(|| {
                    SyntaxError::syntax(1, "unable to infer a context from the condition: write paths with a context prefix")
                })?,
                true,
            )
        }
    };
    let c = Compiler {
        context,
        host,
        require_prefix,
    };
    Ok((
        context,
        Condition {
            expr: c.cond(&parsed)?,
        },
    ))
}

fn unsupported(column: usize, what: impl Into<String>) -> SyntaxError {
    SyntaxError::unsupported(column, what)
}

impl Compiler {
    fn statement(&self, s: &Statement) -> Result<CompiledStatement, SyntaxError> {
        let condition = match &s.where_clause {
            Some(w) => Some(Condition {
                expr: self.cond(w)?,
            }),
            None => None,
        };
        let editor = self.editor(&s.editor)?;
        Ok(CompiledStatement { editor, condition })
    }

    fn cond(&self, e: &BoolExpr) -> Result<Cond, SyntaxError> {
        Ok(match e {
            BoolExpr::Or(t) => Cond::Or(t.iter().map(|x| self.cond(x)).collect::<Result<_, _>>()?),
            BoolExpr::And(t) => {
                Cond::And(t.iter().map(|x| self.cond(x)).collect::<Result<_, _>>()?)
            }
            BoolExpr::Not(x) => Cond::Not(Box::new(self.cond(x)?)),
            BoolExpr::Compare(a, op, b) => Cond::Compare(self.getter(a)?, *op, self.getter(b)?),
            BoolExpr::Const(b) => Cond::Const(*b),
            BoolExpr::Converter(call) => Cond::Bool(self.converter(call)?),
        })
    }

    fn check_function(&self, call: &Call) -> Result<(), SyntaxError> {
        if !super::functions::is_supported(&call.name) {
            return Err(if super::functions::is_known(&call.name) {
                unsupported(call.column, format!("OTTL function `{}`", call.name))
            } else {
                SyntaxError::syntax(
                    call.column,
                    format!("unknown OTTL function `{}`", call.name),
                )
            });
        }
        if !supports_function(self.context, self.host, &call.name) {
            return Err(SyntaxError::syntax(
                call.column,
                format!(
                    "function `{}` is not available in the {} context of the {} processor",
                    call.name,
                    self.context.name(),
                    self.host.name()
                ),
            ));
        }
        Ok(())
    }

    fn args<'c>(
        &self,
        call: &'c Call,
        names: &[&str],
        required: usize,
    ) -> Result<Vec<Option<&'c Value>>, SyntaxError> {
        let mut out: Vec<Option<&Value>> = vec![None; names.len()];
        for (i, Argument { name, value }) in call.args.iter().enumerate() {
            let slot = match name {
                Some(n) => names.iter().position(|x| x == n).ok_or_else(|| {
                    SyntaxError::syntax(
                        call.column,
                        format!("`{}` has no parameter named `{n}`", call.name),
                    )
                })?,
                None => i,
            };
            if slot >= names.len() {
                return Err(SyntaxError::syntax(
                    call.column,
                    format!(
                        "`{}` takes at most {} arguments, got {}",
                        call.name,
                        names.len(),
                        call.args.len()
                    ),
                ));
            }
            out[slot] = Some(value);
        }
        if let Some(missing) = out.iter().take(required).position(Option::is_none) {
            return Err(SyntaxError::syntax(
                call.column,
                format!(
                    "`{}` is missing its argument `{}`",
                    call.name, names[missing]
                ),
            ));
        }
        Ok(out)
    }

    fn string_literal(
        &self,
        call: &Call,
        v: Option<&Value>,
        what: &str,
    ) -> Result<String, SyntaxError> {
        match v {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(SyntaxError::syntax(
                call.column,
                format!("`{}` needs a string literal as its {what}", call.name),
            )),
        }
    }

    fn pattern(&self, call: &Call, v: Option<&Value>) -> Result<Regex, SyntaxError> {
        let p = self.string_literal(call, v, "pattern")?;
        super::regex::compile(&p).map_err(|e| {
            SyntaxError::syntax(
                call.column,
                format!(
                    "the pattern \"{p}\" given to {} is not a valid regexp: {e}",
                    call.name
                ),
            )
        })
    }

    fn converter(&self, call: &Call) -> Result<Getter, SyntaxError> {
        self.check_function(call)?;
        match call.name.as_str() {
            "IsMatch" => {
                let a = self.args(call, &["target", "pattern"], 2)?;
                let target = self.getter(a[0].unwrap_or(&Value::Nil))?;
                Ok(Getter::IsMatch(Box::new(target), self.pattern(call, a[1])?))
            }
            "HasAttrOnDatapoint" => {
                let a = self.args(call, &["key", "expectedVal"], 2)?;
                Ok(Getter::HasAttrOnDatapoint(
                    self.string_literal(call, a[0], "key")?,
                    self.string_literal(call, a[1], "value")?,
                ))
            }
            "HasAttrKeyOnDatapoint" => {
                let a = self.args(call, &["key"], 1)?;
                Ok(Getter::HasAttrKeyOnDatapoint(
                    self.string_literal(call, a[0], "key")?,
                ))
            }
            "Duration" => {
                let a = self.args(call, &["duration"], 1)?;
                let text = self.string_literal(call, a[0], "duration")?;
                let d: crate::config::GoDuration = text.parse().map_err(|e| {
                    SyntaxError::syntax(
                        call.column,
                        format!("invalid duration \"{text}\" given to Duration: {e}"),
                    )
                })?;
                Ok(Getter::Duration(
                    i64::try_from(d.as_duration().as_nanos()).unwrap_or(i64::MAX),
                ))
            }
            "TruncateTime" => {
                let a = self.args(call, &["time", "duration"], 2)?;
                let time = self.getter(a[0].unwrap_or(&Value::Nil))?;
                let duration = self.getter(a[1].unwrap_or(&Value::Nil))?;
                Ok(Getter::TruncateTime(Box::new(time), Box::new(duration)))
            }
            other => Err(unsupported(
                call.column,
                format!("OTTL converter `{other}`"),
            )),
        }
    }

    fn literal(v: &Value) -> Option<Lit> {
        Some(match v {
            Value::Nil => Lit::Nil,
            Value::Bool(b) => Lit::Bool(*b),
            Value::Int(i) => Lit::Int(*i),
            Value::Float(f) => Lit::Double(*f),
            Value::String(s) => Lit::Str(s.clone()),
            Value::Bytes(b) => Lit::Bytes(b.clone()),
            Value::List(items) => {
                Lit::List(items.iter().map(Self::literal).collect::<Option<_>>()?)
            }
            _ => return None,
        })
    }

    fn getter(&self, v: &Value) -> Result<Getter, SyntaxError> {
        if let Some(l) = Self::literal(v) {
            return Ok(Getter::Literal(l));
        }
        match v {
            Value::Enum { name, column } => enum_value(name)
                .filter(|_| matches!(self.context, Context::Metric | Context::DataPoint))
                .map(|i| Getter::Literal(Lit::Int(i)))
                .ok_or_else(|| {
                    SyntaxError::syntax(
                        *column,
                        format!(
                            "enum symbol `{name}` is not defined in the {} context",
                            self.context.name()
                        ),
                    )
                }),
            Value::Path(p) => self.path_getter(p),
            Value::Converter(call) => self.converter(call),
            Value::List(_) => Err(unsupported(1, "a list holding paths or converters")),
            _ => Err(unsupported(1, "this value")),
        }
    }

    /// Resolves a path into (context, field, key).
    fn resolve<'p>(&self, p: &'p Path) -> Result<(Context, &'p str, Option<&'p Key>), SyntaxError> {
        let (prefix, start) = path_context(p);
        if prefix.is_none() && self.require_prefix {
            return Err(SyntaxError::syntax(
                p.column,
                format!(
                    "path `{}` has no context prefix; flat statements need one (e.g. `datapoint.{}`)",
                    p.text(),
                    p.text()
                ),
            ));
        }
        let context = prefix.unwrap_or(self.context);
        if context.depth() > self.context.depth() {
            return Err(SyntaxError::syntax(
                p.column,
                format!(
                    "path `{}` is not available in the {} context",
                    p.text(),
                    self.context.name()
                ),
            ));
        }
        let rest = &p.segments[start..];
        let Some(field) = rest.first() else {
            return Err(SyntaxError::syntax(
                p.column,
                format!("path `{}` names no field", p.text()),
            ));
        };
        if !known_field(context, &field.name) {
            return Err(SyntaxError::syntax(
                p.column,
                format!(
                    "path `{}`: `{}` is not a path of the {} context",
                    p.text(),
                    field.name,
                    context.name()
                ),
            ));
        }
        if rest.len() > 1 || field.keys.len() > 1 {
            return Err(unsupported(p.column, format!("path `{}`", p.text())));
        }
        Ok((context, field.name.as_str(), field.keys.first()))
    }

    fn path_getter(&self, p: &Path) -> Result<Getter, SyntaxError> {
        let (context, field, key) = self.resolve(p)?;
        let bad = || unsupported(p.column, format!("path `{}`", p.text()));
        let owner = match (context, field) {
            (Context::Resource, "attributes") => Some(MapOwner::Resource),
            (Context::Scope, "attributes") => Some(MapOwner::Scope),
            (Context::DataPoint, "attributes") => Some(MapOwner::Point),
            _ => None,
        };
        if let Some(owner) = owner {
            return match key {
                None => Ok(Getter::Attrs(owner)),
                Some(Key::String(k)) => Ok(Getter::Attr(owner, k.clone())),
                Some(Key::Int(_)) => Err(SyntaxError::syntax(
                    p.column,
                    format!("path `{}`: attributes are indexed by string keys", p.text()),
                )),
            };
        }
        if key.is_some() {
            return Err(bad());
        }
        Ok(match (context, field) {
            (Context::Scope, "name") => Getter::ScopeName,
            (Context::Scope, "version") => Getter::ScopeVersion,
            (Context::Metric, "name") => Getter::MetricName,
            (Context::Metric, "description") => Getter::MetricDescription,
            (Context::Metric, "unit") => Getter::MetricUnit,
            (Context::Metric, "type") => Getter::MetricType,
            (Context::Metric, "aggregation_temporality") => Getter::MetricTemporality,
            (Context::Metric, "is_monotonic") => Getter::MetricMonotonic,
            (Context::DataPoint, "value_int") => Getter::ValueInt,
            (Context::DataPoint, "value_double") => Getter::ValueDouble,
            (Context::DataPoint, "start_time_unix_nano") => Getter::StartTime,
            (Context::DataPoint, "time_unix_nano") => Getter::Time,
            (Context::DataPoint, "flags") => Getter::Flags,
            (Context::DataPoint, "time") => Getter::TimeValue,
            (Context::DataPoint, "start_time") => Getter::StartTimeValue,
            _ => return Err(bad()),
        })
    }

    /// The attribute map an editor modifies; it must belong to the statement's own context.
    fn map_target(&self, call: &Call, v: Option<&Value>) -> Result<MapOwner, SyntaxError> {
        let Some(Value::Path(p)) = v else {
            return Err(SyntaxError::syntax(
                call.column,
                format!("`{}` needs an attribute map path as its target", call.name),
            ));
        };
        match self.path_getter(p)? {
            Getter::Attrs(owner) => map_of(owner, self.context).ok_or_else(|| {
                unsupported(
                    p.column,
                    format!(
                        "`{}` on `{}` from the {} context (edit it in its own context)",
                        call.name,
                        p.text(),
                        self.context.name()
                    ),
                )
            }),
            _ => Err(SyntaxError::syntax(
                p.column,
                format!("`{}` needs an attribute map, got `{}`", call.name, p.text()),
            )),
        }
    }

    fn setter(&self, p: &Path) -> Result<Setter, SyntaxError> {
        let own = |owner: MapOwner| {
            map_of(owner, self.context).ok_or_else(|| {
                unsupported(
                    p.column,
                    format!(
                        "setting `{}` from the {} context (set it in its own context)",
                        p.text(),
                        self.context.name()
                    ),
                )
            })
        };
        let level = |want: Context, s: Setter| {
            if want == self.context {
                Ok(s)
            } else {
                Err(unsupported(
                    p.column,
                    format!(
                        "setting `{}` from the {} context (set it in its own context)",
                        p.text(),
                        self.context.name()
                    ),
                ))
            }
        };
        match self.path_getter(p)? {
            Getter::Attr(owner, key) => Ok(Setter::Attr(own(owner)?, key)),
            Getter::Attrs(owner) => Ok(Setter::Attrs(own(owner)?)),
            Getter::MetricName => level(Context::Metric, Setter::MetricName),
            Getter::MetricDescription => level(Context::Metric, Setter::MetricDescription),
            Getter::MetricUnit => level(Context::Metric, Setter::MetricUnit),
            Getter::ValueInt => level(Context::DataPoint, Setter::ValueInt),
            Getter::ValueDouble => level(Context::DataPoint, Setter::ValueDouble),
            Getter::TimeValue => level(Context::DataPoint, Setter::Time),
            Getter::StartTimeValue => level(Context::DataPoint, Setter::StartTime),
            _ => Err(unsupported(p.column, format!("setting `{}`", p.text()))),
        }
    }

    fn editor(&self, call: &Call) -> Result<Editor, SyntaxError> {
        self.check_function(call)?;
        match call.name.as_str() {
            "set" => {
                let a = self.args(call, &["target", "value"], 2)?;
                let Some(Value::Path(p)) = a[0] else {
                    return Err(SyntaxError::syntax(
                        call.column,
                        "`set` needs a path as its target",
                    ));
                };
                let setter = self.setter(p)?;
                let value = self.getter(a[1].unwrap_or(&Value::Nil))?;
                Ok(Editor::Set(setter, value))
            }
            "delete_key" => {
                let a = self.args(call, &["target", "key"], 2)?;
                Ok(Editor::DeleteKey(
                    self.map_target(call, a[0])?,
                    self.string_literal(call, a[1], "key")?,
                ))
            }
            "delete_matching_keys" => {
                let a = self.args(call, &["target", "pattern"], 2)?;
                Ok(Editor::DeleteMatchingKeys(
                    self.map_target(call, a[0])?,
                    self.pattern(call, a[1])?,
                ))
            }
            "keep_matching_keys" => {
                let a = self.args(call, &["target", "pattern"], 2)?;
                Ok(Editor::KeepMatchingKeys(
                    self.map_target(call, a[0])?,
                    self.pattern(call, a[1])?,
                ))
            }
            "keep_keys" => {
                let a = self.args(call, &["target", "keys"], 2)?;
                let target = self.map_target(call, a[0])?;
                Ok(Editor::KeepKeys(target, self.string_list(call, a[1])?))
            }
            "aggregate_on_attributes" => {
                let a = self.args(call, &["function", "attributes"], 1)?;
                let f = self.string_literal(call, a[0], "aggregation function")?;
                let function = match f.as_str() {
                    "sum" => AggregationFunction::Sum,
                    "mean" => AggregationFunction::Mean,
                    "min" => AggregationFunction::Min,
                    "max" => AggregationFunction::Max,
                    "median" => AggregationFunction::Median,
                    "count" => AggregationFunction::Count,
                    other => {
                        return Err(SyntaxError::syntax(
                            call.column,
                            format!(
                                "invalid aggregation function `{other}`; valid options: sum, mean, min, max, median, count"
                            ),
                        ));
                    }
                };
                let keys = match a[1] {
                    None => None,
                    Some(v) => Some(self.string_list(call, Some(v))?),
                };
                Ok(Editor::AggregateOnAttributes(function, keys))
            }
            other => Err(unsupported(call.column, format!("OTTL editor `{other}`"))),
        }
    }

    fn string_list(&self, call: &Call, v: Option<&Value>) -> Result<Vec<String>, SyntaxError> {
        let bad = || {
            SyntaxError::syntax(
                call.column,
                format!("`{}` needs a list of string literals", call.name),
            )
        };
        let Some(Value::List(items)) = v else {
            return Err(bad());
        };
        items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                _ => Err(bad()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ottl::{compile_condition, compile_statement};
    use phoenix_core::telemetry::ProcessMetric;

    fn resource() -> Attributes {
        [
            ("process.executable.name", AnyValue::from("java")),
            ("process.pid", AnyValue::Int(42)),
            ("ratio", AnyValue::Double(1.0)),
            ("empty", AnyValue::Empty),
        ]
        .into_iter()
        .collect()
    }

    fn cond(text: &str, context: Context) -> bool {
        let (_, c) = compile_condition(text, Some(context), Host::Filter).unwrap();
        let r = resource();
        let scope = Scope::default();
        let mut metric = Metric::process(ProcessMetric::CpuTime);
        metric.data.points_mut().push(
            DataPoint::new(Timestamp::from_secs(1), Timestamp::from_secs(2), 2.5)
                .with_attribute("state", "user"),
        );
        let point = metric.data.points()[0].clone();
        let ctx = EvalContext {
            resource: &r,
            scope: Some(&scope),
            metric: Some(MetricView::of(&metric)),
            point: (context == Context::DataPoint).then_some(&point),
        };
        c.eval(&ctx)
    }

    #[test]
    fn comparison_rules_follow_ottl() {
        let dp = Context::DataPoint;
        assert!(cond(r#"resource.attributes["process.pid"] == 42"#, dp));
        assert!(
            cond(r#"resource.attributes["process.pid"] == 42.0"#, dp),
            "int attribute equals a float literal numerically"
        );
        assert!(cond(r#"resource.attributes["process.pid"] < 42.5"#, dp));
        assert!(
            !cond(r#"resource.attributes["process.pid"] == "42""#, dp),
            "no string/int coercion"
        );
        assert!(cond(r#"resource.attributes["process.pid"] != "42""#, dp));
        assert!(cond(r#"resource.attributes["missing"] == nil"#, dp));
        assert!(cond(r#"resource.attributes["empty"] == nil"#, dp));
        assert!(!cond(r#"resource.attributes["missing"] == "x""#, dp));
        assert!(cond(r#"resource.attributes["missing"] != "x""#, dp));
        assert!(
            !cond(r#"resource.attributes["missing"] < 1"#, dp),
            "nil never orders"
        );
        assert!(cond("nil <= nil", dp));
        // Two attribute values compare strictly by type for equality.
        assert!(!cond(
            r#"resource.attributes["ratio"] == resource.attributes["process.pid"]"#,
            dp
        ));
        assert!(cond(r#""abc" < "abd""#, dp));
        assert!(cond("true != false and not (1 > 2)", dp));
    }

    #[test]
    fn metric_and_datapoint_paths() {
        let dp = Context::DataPoint;
        assert!(cond("metric.type == METRIC_DATA_TYPE_SUM", dp));
        assert!(!cond("metric.type == METRIC_DATA_TYPE_GAUGE", dp));
        assert!(cond(
            "metric.aggregation_temporality == AGGREGATION_TEMPORALITY_CUMULATIVE and metric.is_monotonic == true",
            dp
        ));
        assert!(cond(
            r#"metric.name == "process.cpu.time" and attributes["state"] == "user""#,
            dp
        ));
        assert!(cond("datapoint.value_double > 2.0 and value_int == 0", dp));
        assert!(cond("start_time_unix_nano == 1000000000", dp));
        assert!(cond(
            r#"IsMatch(resource.attributes["process.executable.name"], "^ja.a$")"#,
            dp
        ));
        assert!(
            cond(
                r#"IsMatch(resource.attributes["process.pid"], "^4\\d$")"#,
                dp
            ),
            "IsMatch converts ints to text"
        );
        assert!(
            !cond(r#"IsMatch(resource.attributes["missing"], ".*")"#, dp),
            "IsMatch on nil is false"
        );
        assert!(cond(
            r#"HasAttrOnDatapoint("state", "user")"#,
            Context::Metric
        ));
        assert!(!cond(
            r#"HasAttrOnDatapoint("state", "system")"#,
            Context::Metric
        ));
        assert!(cond(r#"HasAttrKeyOnDatapoint("state")"#, Context::Metric));
    }

    #[test]
    fn errors_name_the_construct() {
        let e = compile_condition(
            r#"IsMatch(metric.name, "(")"#,
            Some(Context::Metric),
            Host::Filter,
        )
        .unwrap_err();
        assert!(
            e.message.contains("\"(\"") && e.message.contains("not a valid regexp"),
            "{}",
            e.message
        );
        let e = compile_condition(
            "datapoint.value_int > 1",
            Some(Context::Metric),
            Host::Filter,
        )
        .unwrap_err();
        assert!(
            e.message.contains("not available in the metric context"),
            "{}",
            e.message
        );
        let e = compile_statement(
            r#"replace_pattern(attributes["a"], "x", "y")"#,
            Some(Context::DataPoint),
            Host::Transform,
        )
        .unwrap_err();
        assert!(
            e.unsupported && e.message.contains("replace_pattern"),
            "{e:?}"
        );
        let e = compile_statement(
            r#"frobnicate(attributes["a"])"#,
            Some(Context::DataPoint),
            Host::Transform,
        )
        .unwrap_err();
        assert!(
            !e.unsupported && e.message.contains("unknown OTTL function `frobnicate`"),
            "{e:?}"
        );
        let e = compile_condition(
            "metric.data_points == nil",
            Some(Context::Metric),
            Host::Filter,
        )
        .unwrap_err();
        assert!(
            e.unsupported && e.message.contains("metric.data_points"),
            "{e:?}"
        );
        // A field the collector does not know is an error, not merely unsupported.
        let e = compile_condition(
            r#"atributes["process.pid"] == 1"#,
            Some(Context::Resource),
            Host::Filter,
        )
        .unwrap_err();
        assert!(
            !e.unsupported && e.message.contains("not a path of the resource context"),
            "{e:?}"
        );
        let e = compile_condition(
            r#"HasAttrOnDatapoint("a", "b")"#,
            Some(Context::Metric),
            Host::Transform,
        )
        .unwrap_err();
        assert!(e.message.contains("not available"), "{e:?}");
        let e = compile_condition(
            "metric.type == METRIC_DATA_TYPE_SUMM",
            Some(Context::Metric),
            Host::Filter,
        )
        .unwrap_err();
        assert_eq!(e.column, 16);
    }

    #[test]
    fn context_inference_follows_the_collector() {
        let infer = |s: &str| compile_statement(s, None, Host::Transform).map(|(c, _)| c);
        assert_eq!(
            infer(r#"set(resource.attributes["a"], "b")"#),
            Ok(Context::Resource)
        );
        assert_eq!(
            infer(r#"set(datapoint.attributes["a"], "b") where resource.attributes["x"] == "y""#),
            Ok(Context::DataPoint)
        );
        assert_eq!(
            infer(r#"aggregate_on_attributes("sum", []) where metric.name == "m""#),
            Ok(Context::Metric)
        );
        // The resource context lacks aggregate_on_attributes: the inferrer falls back to a lower
        // context that has it.
        assert_eq!(
            infer(r#"aggregate_on_attributes("sum") where resource.attributes["a"] == "b""#),
            Ok(Context::Metric)
        );
        let e = infer(r#"set(attributes["a"], "b")"#).unwrap_err();
        assert!(e.message.contains("unable to infer"), "{e:?}");
        let e = infer(r#"set(datapoint.attributes["a"], "b") where attributes["x"] == nil"#)
            .unwrap_err();
        assert!(e.message.contains("no context prefix"), "{e:?}");
    }

    #[test]
    fn editors_change_their_own_context() {
        let run_resource = |s: &str| {
            let (_, st) = compile_statement(s, Some(Context::Resource), Host::Transform).unwrap();
            let mut r = resource();
            st.exec_resource(&mut r);
            r
        };
        let r = run_resource(r#"set(attributes["phoenix.variant"], "candidate")"#);
        assert_eq!(r.get_str("phoenix.variant"), Some("candidate"));
        let r = run_resource(
            r#"set(attributes["copy"], attributes["process.pid"]) where attributes["process.pid"] > 40"#,
        );
        assert_eq!(r.get("copy"), Some(&AnyValue::Int(42)));
        let r = run_resource(r#"set(attributes["copy"], attributes["missing"])"#);
        assert!(
            !r.contains_key("copy"),
            "setting nil leaves the map unchanged"
        );
        let r = run_resource(r#"delete_key(attributes, "process.pid")"#);
        assert!(!r.contains_key("process.pid"));
        let r = run_resource(r#"delete_matching_keys(attributes, "^process\\.")"#);
        assert_eq!(r.len(), 2);
        let r = run_resource(r#"keep_keys(attributes, ["process.pid", "nope"])"#);
        assert_eq!(r.len(), 1);
        let r = run_resource(r#"keep_matching_keys(attributes, "^(ratio|empty)$")"#);
        assert_eq!(r.len(), 2);
        let r = run_resource(
            r#"delete_key(attributes, "process.pid") where attributes["process.executable.name"] == "python""#,
        );
        assert!(
            r.contains_key("process.pid"),
            "the where clause gates the editor"
        );
        assert!(
            compile_statement(
                r#"set(resource.attributes["a"], "b")"#,
                Some(Context::DataPoint),
                Host::Transform
            )
            .is_ok()
        );
        let e = compile_statement(
            r#"set(metric.name, "b")"#,
            Some(Context::DataPoint),
            Host::Transform,
        )
        .unwrap_err();
        assert!(e.unsupported, "{e:?}");
    }

    #[test]
    fn datapoint_setters() {
        let (_, st) = compile_statement(
            "set(value_int, 7) where attributes[\"state\"] == \"user\"",
            Some(Context::DataPoint),
            Host::Transform,
        )
        .unwrap();
        let r = resource();
        let scope = Scope::default();
        let mut metric = Metric::process(ProcessMetric::MemoryUsage);
        metric.data.points_mut().push(
            DataPoint::new(Timestamp::UNSET, Timestamp::from_secs(2), 1_i64)
                .with_attribute("state", "user"),
        );
        let view_metric = metric.clone();
        let view = MetricView::of(&view_metric);
        let (mut r, mut scope) = (r, scope);
        st.exec_point(&mut r, &mut scope, view, &mut metric.data.points_mut()[0]);
        assert_eq!(metric.data.points()[0].value, NumberValue::Int(7));
        let (_, st) = compile_statement(
            r#"set(resource.attributes["phoenix.active"], true) where metric.name == "process.memory.usage" and datapoint.value_int > 5"#,
            None,
            Host::Transform,
        )
        .unwrap();
        st.exec_point(&mut r, &mut scope, view, &mut metric.data.points_mut()[0]);
        assert_eq!(
            r.get("phoenix.active"),
            Some(&AnyValue::Bool(true)),
            "a data-point statement sets a resource attribute"
        );
    }

    #[test]
    fn truncate_time_aligns_points_like_go() {
        assert_eq!(
            truncate_time(1_234_567_891_000_000_000, 10_000_000_000),
            1_234_567_890_000_000_000
        );
        assert_eq!(truncate_time(5, 0), 5);
        // Go truncates relative to year 1: with a 7 s step the Unix epoch is not a boundary.
        assert_eq!(truncate_time(0, 7_000_000_000), -4_000_000_000);
        let (_, st) = compile_statement(
            r#"set(datapoint.time, TruncateTime(datapoint.time, Duration("10s"))) where datapoint.start_time < datapoint.time"#,
            None,
            Host::Transform,
        )
        .unwrap();
        let mut r = resource();
        let mut scope = Scope::default();
        let metric = Metric::process(ProcessMetric::MemoryUsage);
        let mut p = DataPoint::new(
            Timestamp::from_secs(1),
            Timestamp::from_nanos(1_007_300_000_000),
            1_i64,
        );
        st.exec_point(&mut r, &mut scope, MetricView::of(&metric), &mut p);
        assert_eq!(p.time, Timestamp::from_secs(1_000));
        let e = compile_statement(
            r#"set(datapoint.time, TruncateTime(datapoint.time, Duration("10 parsecs")))"#,
            None,
            Host::Transform,
        )
        .unwrap_err();
        assert!(e.message.contains("10 parsecs"), "{e:?}");
    }

    /// Statements recognised as time truncations do what the interpreter does with them;
    /// others are not recognised.
    #[test]
    fn time_truncations_run_as_the_interpreter_runs_them() {
        let statements = [
            r#"set(datapoint.time, TruncateTime(datapoint.time, Duration("10s")))"#,
            r#"set(datapoint.start_time, TruncateTime(datapoint.start_time, Duration("10s"))) where datapoint.start_time_unix_nano > 0"#,
            r#"set(datapoint.time, TruncateTime(datapoint.start_time, Duration("7s"))) where datapoint.time_unix_nano <= 1000000000000"#,
            r#"set(datapoint.start_time, TruncateTime(datapoint.time, Duration("1m"))) where datapoint.start_time_unix_nano != 5"#,
        ];
        let times = [
            0,
            5,
            999_999_999,
            1_000_000_000_000,
            1_007_300_000_000,
            u64::MAX,
        ];
        let metric = Metric::process(ProcessMetric::MemoryUsage);
        for src in statements {
            let (_, st) = compile_statement(src, None, Host::Transform).unwrap();
            // One statement for every point, as the rollup runs it: it remembers the last
            // time it truncated.
            let mut native = st.time_truncation().unwrap_or_else(|| panic!("{src}"));
            for start in times {
                for time in times {
                    let point = DataPoint::new(
                        Timestamp::from_nanos(start),
                        Timestamp::from_nanos(time),
                        1_i64,
                    );
                    let mut interpreted = point.clone();
                    st.exec_point(
                        &mut resource(),
                        &mut Scope::default(),
                        MetricView::of(&metric),
                        &mut interpreted,
                    );
                    let mut fast = point;
                    native.apply(&mut fast);
                    assert_eq!(fast, interpreted, "{src} on ({start}, {time})");
                }
            }
        }
        for src in [
            r#"set(datapoint.time, TruncateTime(datapoint.time, Duration("10s"))) where datapoint.time < datapoint.start_time"#,
            r#"set(datapoint.value_int, 3)"#,
            r#"set(datapoint.time, TruncateTime(datapoint.time, Duration("10s"))) where IsMatch(resource.attributes["a"], "b")"#,
        ] {
            let (_, st) = compile_statement(src, None, Host::Transform).unwrap();
            assert!(st.time_truncation().is_none(), "{src}");
        }
    }

    fn sum_metric(temporality: Temporality, points: Vec<DataPoint>) -> Metric {
        let mut m = Metric::process(ProcessMetric::CpuTime);
        m.data = MetricData::Sum {
            points,
            temporality,
            monotonic: true,
        };
        m
    }

    #[test]
    fn aggregate_on_attributes_groups_by_attributes_and_time() {
        let t = Timestamp::from_secs(10);
        let p = |start: u64, state: &str, pid: i64, v: f64| {
            DataPoint::new(Timestamp::from_secs(start), t, v)
                .with_attribute("state", state)
                .with_attribute("pid", pid)
        };
        let mut m = sum_metric(
            Temporality::Cumulative,
            vec![
                p(1, "user", 1, 1.0),
                p(2, "user", 2, 2.0),
                p(3, "system", 1, 4.0),
                p(1, "user", 3, 8.0),
            ],
        );
        aggregate_on_attributes(
            &mut m,
            AggregationFunction::Sum,
            Some(&["state".to_owned()]),
        );
        let pts = m.data.points();
        assert_eq!(pts.len(), 2);
        assert_eq!(pts[0].value, NumberValue::Double(11.0));
        assert_eq!(
            pts[0].start_time,
            Timestamp::from_secs(1),
            "the earliest start time wins"
        );
        assert_eq!(pts[0].attributes.len(), 1);
        assert_eq!(pts[1].value, NumberValue::Double(4.0));

        // Delta sums also group by start time.
        let mut m = sum_metric(
            Temporality::Delta,
            vec![
                p(1, "user", 1, 1.0),
                p(2, "user", 2, 2.0),
                p(1, "user", 3, 3.0),
            ],
        );
        aggregate_on_attributes(
            &mut m,
            AggregationFunction::Sum,
            Some(&["state".to_owned()]),
        );
        assert_eq!(m.data.points().len(), 2);
        assert_eq!(m.data.points()[0].value, NumberValue::Double(4.0));

        // Without a key list, only identical attribute sets merge.
        let mut m = sum_metric(
            Temporality::Cumulative,
            vec![
                p(1, "user", 1, 1.0),
                p(1, "user", 1, 2.0),
                p(1, "user", 2, 5.0),
            ],
        );
        aggregate_on_attributes(&mut m, AggregationFunction::Max, None);
        assert_eq!(m.data.points().len(), 2);
        assert_eq!(m.data.points()[0].value, NumberValue::Double(2.0));
    }

    #[test]
    fn aggregation_functions() {
        let vals = [
            NumberValue::Int(5),
            NumberValue::Int(1),
            NumberValue::Int(4),
            NumberValue::Int(2),
        ];
        assert_eq!(
            merge_values(vals[0], &vals, AggregationFunction::Sum),
            NumberValue::Int(12)
        );
        assert_eq!(
            merge_values(vals[0], &vals, AggregationFunction::Mean),
            NumberValue::Int(3)
        );
        assert_eq!(
            merge_values(vals[0], &vals, AggregationFunction::Min),
            NumberValue::Int(1)
        );
        assert_eq!(
            merge_values(vals[0], &vals, AggregationFunction::Max),
            NumberValue::Int(5)
        );
        assert_eq!(
            merge_values(vals[0], &vals, AggregationFunction::Median),
            NumberValue::Int(3)
        );
        assert_eq!(
            merge_values(vals[0], &vals, AggregationFunction::Count),
            NumberValue::Int(4)
        );
        assert_eq!(
            merge_values(
                NumberValue::Int(9),
                &[NumberValue::Int(9)],
                AggregationFunction::Count
            ),
            NumberValue::Int(9),
            "a single point keeps its value, as in the collector"
        );
        let d = [NumberValue::Double(1.0), NumberValue::Double(2.0)];
        assert_eq!(
            merge_values(d[0], &d, AggregationFunction::Mean),
            NumberValue::Double(1.5)
        );
        assert_eq!(
            merge_values(d[0], &d, AggregationFunction::Median),
            NumberValue::Double(1.5)
        );
    }
}
