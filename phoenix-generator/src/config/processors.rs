//! Processors: `memory_limiter`, `batch`, `resource`, `attributes`, `filter`, `transform`,
//! `groupbyattrs`, `cumulativetodelta` and `metricstransform`.
//!
//! OTTL statements and conditions stay text here; [`crate::ottl`] parses them.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::duration::GoDuration;
use super::receivers::MatchType;

/// A processor definition.
#[derive(Debug, Clone, PartialEq)]
pub enum Processor {
    /// `memory_limiter`.
    MemoryLimiter(MemoryLimiterProcessor),
    /// `batch`.
    Batch(BatchProcessor),
    /// `resource`.
    Resource(ResourceProcessor),
    /// `attributes`.
    Attributes(AttributesProcessor),
    /// `filter`.
    Filter(FilterProcessor),
    /// `transform`.
    Transform(TransformProcessor),
    /// `groupbyattrs`.
    GroupByAttrs(GroupByAttrsProcessor),
    /// `cumulativetodelta`.
    CumulativeToDelta(CumulativeToDeltaProcessor),
    /// `metricstransform`.
    MetricsTransform(MetricsTransformProcessor),
}

/// The `memory_limiter` processor.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryLimiterProcessor {
    /// How often memory use is checked (required by the collector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_interval: Option<GoDuration>,
    /// Hard limit in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_mib: Option<u64>,
    /// Headroom below the hard limit in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spike_limit_mib: Option<u64>,
    /// Hard limit as a percentage of total memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_percentage: Option<u32>,
    /// Spike headroom as a percentage of total memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spike_limit_percentage: Option<u32>,
    /// Minimum interval between forced GCs when over the soft limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_gc_interval_when_soft_limited: Option<GoDuration>,
    /// Minimum interval between forced GCs when over the hard limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_gc_interval_when_hard_limited: Option<GoDuration>,
}

/// The `batch` processor.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchProcessor {
    /// Send a batch after this long even if not full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
    /// Send once this many items are queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_batch_size: Option<u32>,
    /// Upper bound on a batch's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_batch_max_size: Option<u32>,
    /// Client metadata keys that partition batches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metadata_keys: Vec<String>,
    /// Limit on distinct metadata combinations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_cardinality_limit: Option<u32>,
}

/// An attribute value written by an `insert`/`update`/`upsert` action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeValue {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Double(f64),
    /// A string (may reference the environment, e.g. `${env:NODE_NAME}`).
    String(String),
}

impl fmt::Display for AttributeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool(v) => write!(f, "{v}"),
            Self::Int(v) => write!(f, "{v}"),
            Self::Double(v) => write!(f, "{v}"),
            Self::String(v) => f.write_str(v),
        }
    }
}

/// What an attribute action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttributeActionKind {
    /// Add the key if absent.
    Insert,
    /// Change the key if present.
    Update,
    /// Insert or update.
    Upsert,
    /// Remove the key.
    Delete,
    /// Replace the value with its SHA-256 hash.
    Hash,
    /// Extract named regex groups into new keys.
    Extract,
    /// Convert the value's type.
    Convert,
}

/// One action of the `resource` or `attributes` processor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeAction {
    /// The attribute key (for `delete`/`hash` may be omitted when `pattern` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The literal value to write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<AttributeValue>,
    /// Copy the value from this attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_attribute: Option<String>,
    /// Copy the value from client context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_context: Option<String>,
    /// Regex for `extract`, or for key selection with `delete`/`hash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Target type for `convert`: `int`, `double` or `string`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted_type: Option<String>,
    /// The action.
    pub action: AttributeActionKind,
}

impl AttributeAction {
    /// `{key, value, action: upsert}`.
    pub fn upsert(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: Some(key.into()),
            value: Some(AttributeValue::String(value.into())),
            from_attribute: None,
            from_context: None,
            pattern: None,
            converted_type: None,
            action: AttributeActionKind::Upsert,
        }
    }

    /// `{key, action: delete}`.
    pub fn delete(key: impl Into<String>) -> Self {
        Self {
            key: Some(key.into()),
            value: None,
            from_attribute: None,
            from_context: None,
            pattern: None,
            converted_type: None,
            action: AttributeActionKind::Delete,
        }
    }
}

/// The `resource` processor: attribute actions on every resource.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceProcessor {
    /// The actions, applied in order.
    #[serde(default)]
    pub attributes: Vec<AttributeAction>,
}

/// A key/value match of the legacy match properties (`value` is a string or a regex, per
/// `match_type`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyValueMatch {
    /// The attribute key.
    pub key: String,
    /// The value or pattern; absent means "key present".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `include`/`exclude` of the `attributes` processor (metrics subset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributesMatch {
    /// How names and values are matched.
    pub match_type: MatchType,
    /// Metric names or patterns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_names: Vec<String>,
    /// Data-point attributes that must all match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<KeyValueMatch>,
    /// Resource attributes that must all match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<KeyValueMatch>,
}

/// The `attributes` processor: attribute actions on data points.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributesProcessor {
    /// The actions, applied in order.
    #[serde(default)]
    pub actions: Vec<AttributeAction>,
    /// Only data matching this is changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<AttributesMatch>,
    /// Data matching this is not changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<AttributesMatch>,
}

/// What an OTTL processor does when a statement or condition fails at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorMode {
    /// Log the error and continue with the next statement.
    Ignore,
    /// Continue without logging.
    Silent,
    /// Return the error; the payload is dropped.
    Propagate,
}

/// An OTTL context for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OttlContext {
    /// `resource`.
    Resource,
    /// `scope`.
    Scope,
    /// `metric`.
    Metric,
    /// `datapoint`.
    Datapoint,
}

impl OttlContext {
    /// The context's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Resource => "resource",
            Self::Scope => "scope",
            Self::Metric => "metric",
            Self::Datapoint => "datapoint",
        }
    }
}

impl fmt::Display for OttlContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Legacy name-based match properties of the `filter` processor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricMatchProperties {
    /// `strict` or `regexp` (`expr` is not supported).
    pub match_type: MatchType,
    /// Metric names or patterns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_names: Vec<String>,
    /// Resource attributes that must all match (values are strings or patterns per
    /// `match_type`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_attributes: Vec<KeyValueMatch>,
}

/// `metrics` of the `filter` processor: everything a condition matches is DROPPED.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterMetrics {
    /// Keep only metrics matching this (legacy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<MetricMatchProperties>,
    /// Drop metrics matching this (legacy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<MetricMatchProperties>,
    /// OTTL conditions in the resource context: a match drops the whole resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource: Vec<String>,
    /// OTTL conditions in the metric context: a match drops the metric.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric: Vec<String>,
    /// OTTL conditions in the datapoint context: a match drops the data point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datapoint: Vec<String>,
}

impl FilterMetrics {
    /// Whether nothing is configured.
    pub fn is_empty(&self) -> bool {
        self.include.is_none()
            && self.exclude.is_none()
            && self.resource.is_empty()
            && self.metric.is_empty()
            && self.datapoint.is_empty()
    }
}

/// The `filter` processor (metrics). Conditions say what to DROP.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterProcessor {
    /// Run-time error handling; the collector's default for `filter` is `ignore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_mode: Option<ErrorMode>,
    /// Per-context conditions.
    #[serde(default, skip_serializing_if = "FilterMetrics::is_empty")]
    pub metrics: FilterMetrics,
    /// Conditions in the newer style: flat strings (context inferred from the path prefixes)
    /// or groups with an explicit context.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_conditions: Vec<ConditionGroup>,
}

impl FilterProcessor {
    /// The error mode in effect (`ignore` when unset).
    pub fn effective_error_mode(&self) -> ErrorMode {
        self.error_mode.unwrap_or(ErrorMode::Ignore)
    }
}

/// An entry of `metric_statements`: a flat statement or a group with a context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementGroup {
    /// A single statement whose context is inferred from its path prefixes.
    Flat(String),
    /// Statements sharing a context, optional conditions and error mode.
    Grouped(ContextStatements),
}

/// A group of statements (`context`, `conditions`, `statements`, `error_mode`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextStatements {
    /// The context; inferred from path prefixes when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<OttlContext>,
    /// Conditions joined with `or`: statements run only where one holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
    /// The statements, in order.
    #[serde(default)]
    pub statements: Vec<String>,
    /// Overrides the processor's error mode for this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_mode: Option<ErrorMode>,
}

/// An entry of the filter processor's `metric_conditions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionGroup {
    /// A single condition whose context is inferred.
    Flat(String),
    /// Conditions sharing a context and error mode.
    Grouped(ContextConditions),
}

/// A group of filter conditions.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextConditions {
    /// The context; inferred from path prefixes when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<OttlContext>,
    /// The conditions; any match drops the item.
    #[serde(default)]
    pub conditions: Vec<String>,
    /// Overrides the processor's error mode for this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_mode: Option<ErrorMode>,
}

macro_rules! string_or_group {
    ($ty:ident, $group:ident, $expecting:literal) => {
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    Self::Flat(text) => s.serialize_str(text),
                    Self::Grouped(group) => group.serialize(s),
                }
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        Ok($ty::Flat(v.to_owned()))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<$ty, A::Error> {
                        $group::deserialize(de::value::MapAccessDeserializer::new(map))
                            .map($ty::Grouped)
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<$ty, A::Error> {
                        Err(de::Error::custom(concat!(
                            "expected ",
                            $expecting,
                            ", found a list"
                        )))
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

string_or_group!(
    StatementGroup,
    ContextStatements,
    "an OTTL statement, or a mapping with `context`, `conditions`, `statements` and `error_mode`"
);
string_or_group!(
    ConditionGroup,
    ContextConditions,
    "an OTTL condition, or a mapping with `context`, `conditions` and `error_mode`"
);

/// The `transform` processor (metrics).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformProcessor {
    /// Run-time error handling; the collector's default for `transform` is `propagate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_mode: Option<ErrorMode>,
    /// The statements, in order.
    #[serde(default)]
    pub metric_statements: Vec<StatementGroup>,
}

impl TransformProcessor {
    /// The error mode in effect (`propagate` when unset).
    pub fn effective_error_mode(&self) -> ErrorMode {
        self.error_mode.unwrap_or(ErrorMode::Propagate)
    }
}

/// The `groupbyattrs` processor: moves the listed data-point attributes to the resource and
/// regroups; it never sums.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupByAttrsProcessor {
    /// Attribute keys to group by; empty means "compact identical resources only".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
}

/// A metric type the `cumulativetodelta` include/exclude can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeltaMetricType {
    /// Sums.
    Sum,
    /// Histograms.
    Histogram,
    /// Exponential histograms.
    #[serde(rename = "exponentialhistogram")]
    ExponentialHistogram,
}

/// `include`/`exclude` of `cumulativetodelta`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeltaMatch {
    /// Metric names or patterns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<String>,
    /// How `metrics` are matched; required when `metrics` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_type: Option<MatchType>,
    /// Metric types to select.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_types: Vec<DeltaMetricType>,
}

/// How `cumulativetodelta` treats the first point of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitialValue {
    /// Send it only if its start time is after the processor started.
    Auto,
    /// Always send it.
    Keep,
    /// Never send it; store it as the reference.
    Drop,
}

/// The `cumulativetodelta` processor (stateful per series).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CumulativeToDeltaProcessor {
    /// Only matching metrics are converted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<DeltaMatch>,
    /// Matching metrics are not converted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<DeltaMatch>,
    /// How long unseen series state is kept (0 = forever).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_staleness: Option<GoDuration>,
    /// First-point policy (default `auto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_value: Option<InitialValue>,
}

/// `action` of a `metricstransform` transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransformAction {
    /// Change the matched metric in place.
    Update,
    /// Add a changed copy under `new_name`.
    Insert,
    /// Combine matched metrics into one named `new_name`.
    Combine,
}

/// How `metricstransform` aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AggregationType {
    /// Sum.
    Sum,
    /// Mean.
    Mean,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Count.
    Count,
    /// Median.
    Median,
}

/// `action` of a `metricstransform` operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationAction {
    /// Rename a label and/or its values.
    UpdateLabel,
    /// Keep only `label_set`, aggregating the rest away.
    AggregateLabels,
    /// Merge `aggregated_values` of `label` into `new_value`.
    AggregateLabelValues,
    /// Drop points whose `label` has `label_value`.
    DeleteLabelValue,
    /// Add `new_label` with `new_value`.
    AddLabel,
    /// Switch int and double values.
    ToggleScalarDataType,
    /// Multiply values by `experimental_scale`.
    ExperimentalScaleValue,
}

/// `value_actions` entry: rename one label value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueAction {
    /// The current value.
    pub value: String,
    /// The new value.
    pub new_value: String,
}

/// An operation of a `metricstransform` transform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsTransformOperation {
    /// What to do.
    pub action: OperationAction,
    /// The label operated on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The new label name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_label: Option<String>,
    /// Labels to keep for `aggregate_labels`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub label_set: Vec<String>,
    /// How to aggregate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation_type: Option<AggregationType>,
    /// Values merged by `aggregate_label_values`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aggregated_values: Vec<String>,
    /// The new value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_value: Option<String>,
    /// Value renames for `update_label`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub value_actions: Vec<ValueAction>,
    /// Factor for `experimental_scale_value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experimental_scale: Option<f64>,
    /// The value for `delete_label_value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_value: Option<String>,
}

/// Case conversion of regexp submatches in `new_name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubmatchCase {
    /// Lower-case.
    Lower,
    /// Upper-case.
    Upper,
}

/// A transform of the `metricstransform` processor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsTransform {
    /// The metric name or pattern to select.
    pub include: String,
    /// How `include` is matched (default `strict`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_type: Option<MatchType>,
    /// Only points with these label values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub experimental_match_labels: BTreeMap<String, String>,
    /// What to do.
    pub action: TransformAction,
    /// The new metric name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_name: Option<String>,
    /// Resource labels of the combined metric.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub group_resource_labels: BTreeMap<String, String>,
    /// Aggregation for `combine`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation_type: Option<AggregationType>,
    /// Case conversion of submatches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submatch_case: Option<SubmatchCase>,
    /// Operations, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<MetricsTransformOperation>,
}

/// The `metricstransform` processor.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsTransformProcessor {
    /// The transforms, in order.
    #[serde(default)]
    pub transforms: Vec<MetricsTransform>,
}
