//! Processors compiled for execution: one [`Stage`] per processor of a pipeline.

use phoenix_core::telemetry::{
    AnyValue, Attributes, Metric, MetricData, Resource, ScopeMetrics, Snapshot,
};
use regex::Regex;

use super::delta::CumulativeToDelta;
use crate::config::{
    AttributeAction, AttributeActionKind, AttributeValue, AttributesMatch, ConditionGroup,
    FilterProcessor, KeyValueMatch, MatchType, MetricMatchProperties, MetricsTransformProcessor,
    OperationAction, OttlContext, Processor, StatementGroup, TransformAction, TransformProcessor,
};
use crate::ottl::{self, CompiledStatement, Condition, Context, EvalContext, Host, MetricView};
use crate::{Error, Result};

/// A processor ready to run.
#[derive(Debug)]
pub(crate) enum Stage {
    /// `memory_limiter` and `batch`: data passes unchanged.
    PassThrough,
    /// `resource`: attribute actions on resources.
    Resource(Vec<Action>),
    /// `attributes`: attribute actions on data points.
    Attributes(AttributesStage),
    /// `filter`: drops what its conditions match.
    Filter(FilterStage),
    /// `transform`: OTTL statement groups.
    Transform(Vec<TransformGroup>),
    /// `groupbyattrs`.
    GroupByAttrs(Vec<String>),
    /// `cumulativetodelta` (stateful).
    CumulativeToDelta(Box<CumulativeToDelta>),
    /// `metricstransform` renames.
    MetricsTransform(Vec<Rename>),
}

fn unsupported(component: &str, construct: impl Into<String>) -> Error {
    Error::Unsupported {
        component: component.to_owned(),
        construct: construct.into(),
    }
}

fn regex(component: &str, path: &str, pattern: &str) -> Result<Regex> {
    ottl::regex::compile(pattern).map_err(|e| Error::Config {
        path: format!("{component}.{path}"),
        message: format!("invalid regexp \"{pattern}\": {e}"),
    })
}

impl Stage {
    /// Compiles `processor`; `component` is its config path, e.g. `processors.filter/x`.
    pub(crate) fn compile(component: &str, processor: &Processor) -> Result<Self> {
        Ok(match processor {
            Processor::MemoryLimiter(_) | Processor::Batch(_) => Self::PassThrough,
            Processor::Resource(p) => Self::Resource(
                p.attributes
                    .iter()
                    .enumerate()
                    .map(|(i, a)| Action::compile(component, &format!("attributes[{i}]"), a))
                    .collect::<Result<_>>()?,
            ),
            Processor::Attributes(p) => Self::Attributes(AttributesStage {
                actions: p
                    .actions
                    .iter()
                    .enumerate()
                    .map(|(i, a)| Action::compile(component, &format!("actions[{i}]"), a))
                    .collect::<Result<_>>()?,
                include: p
                    .include
                    .as_ref()
                    .map(|m| PointMatch::compile(component, "include", m))
                    .transpose()?,
                exclude: p
                    .exclude
                    .as_ref()
                    .map(|m| PointMatch::compile(component, "exclude", m))
                    .transpose()?,
            }),
            Processor::Filter(p) => Self::Filter(FilterStage::compile(component, p)?),
            Processor::Transform(p) => Self::Transform(compile_transform(component, p)?),
            Processor::GroupByAttrs(p) => Self::GroupByAttrs(p.keys.clone()),
            Processor::CumulativeToDelta(p) => {
                Self::CumulativeToDelta(Box::new(CumulativeToDelta::compile(component, p)?))
            }
            Processor::MetricsTransform(p) => {
                Self::MetricsTransform(compile_renames(component, p)?)
            }
        })
    }

    /// Runs the processor over one batch.
    pub(crate) fn run(&mut self, data: &mut Snapshot) {
        match self {
            Self::PassThrough => {}
            Self::Resource(actions) => {
                for r in &mut data.resources {
                    for a in actions.iter() {
                        a.apply(&mut r.attributes);
                    }
                }
            }
            Self::Attributes(stage) => stage.run(data),
            Self::Filter(stage) => stage.run(data),
            // Every supported statement reads and writes only its own resource's subtree, so
            // running each group over all resources in turn equals running all groups over
            // each resource in turn (one pass instead of one per group).
            Self::Transform(groups) => {
                for r in &mut data.resources {
                    for g in groups.iter() {
                        g.run_resource(r);
                    }
                }
            }
            Self::GroupByAttrs(keys) => group_by_attrs(data, keys),
            Self::CumulativeToDelta(stage) => stage.run(data),
            Self::MetricsTransform(renames) => {
                for r in &mut data.resources {
                    for s in &mut r.scopes {
                        for m in &mut s.metrics {
                            if let Some(rename) =
                                renames.iter().find(|x| x.matches(m.name.as_str()))
                            {
                                m.name = rename.new_name.as_str().into();
                            }
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// resource and attributes processors
// ---------------------------------------------------------------------------------------

/// One attribute action (`insert`, `update`, `upsert`, `delete`).
#[derive(Debug)]
pub(crate) struct Action {
    kind: AttributeActionKind,
    key: Option<String>,
    pattern: Option<Regex>,
    source: ActionSource,
}

#[derive(Debug)]
enum ActionSource {
    None,
    Value(AnyValue),
    FromAttribute(String),
}

impl Action {
    fn compile(component: &str, path: &str, a: &AttributeAction) -> Result<Self> {
        let here = format!("{component}.{path}");
        match a.action {
            AttributeActionKind::Insert
            | AttributeActionKind::Update
            | AttributeActionKind::Upsert
            | AttributeActionKind::Delete => {}
            other => {
                return Err(unsupported(
                    component,
                    format!("attribute action `{other:?}` at {path}").to_lowercase(),
                ));
            }
        }
        if a.from_context.is_some() {
            return Err(unsupported(
                component,
                format!(
                    "`from_context` at {path} (request metadata does not exist in the emulator)"
                ),
            ));
        }
        let source = match (&a.value, &a.from_attribute) {
            (Some(v), _) => ActionSource::Value(match v {
                AttributeValue::Bool(b) => AnyValue::Bool(*b),
                AttributeValue::Int(i) => AnyValue::Int(*i),
                AttributeValue::Double(d) => AnyValue::Double(*d),
                AttributeValue::String(s) => AnyValue::String(s.clone()),
            }),
            (None, Some(f)) => ActionSource::FromAttribute(f.clone()),
            (None, None) => ActionSource::None,
        };
        let pattern = a
            .pattern
            .as_deref()
            .map(|p| regex(component, &format!("{path}.pattern"), p))
            .transpose()?;
        if a.action != AttributeActionKind::Delete && matches!(source, ActionSource::None) {
            return Err(Error::Config {
                path: here,
                message: "the action needs `value` or `from_attribute`".to_owned(),
            });
        }
        if a.key.is_none() && pattern.is_none() {
            return Err(Error::Config {
                path: here,
                message: "the action needs `key` (or `pattern` for delete)".to_owned(),
            });
        }
        Ok(Self {
            kind: a.action,
            key: a.key.clone(),
            pattern,
            source,
        })
    }

    /// Applies the action as `internal/coreinternal/attraction` does.
    pub(crate) fn apply(&self, attrs: &mut Attributes) {
        if self.kind == AttributeActionKind::Delete {
            if let Some(k) = &self.key {
                attrs.remove(k);
            }
            if let Some(re) = &self.pattern {
                attrs.retain(|kv| !re.is_match(&kv.key));
            }
            return;
        }
        let Some(key) = &self.key else { return };
        let value = match &self.source {
            ActionSource::Value(v) => Some(v.clone()),
            ActionSource::FromAttribute(f) => attrs.get(f).cloned(),
            ActionSource::None => None,
        };
        let Some(value) = value else { return };
        let exists = attrs.contains_key(key);
        let write = match self.kind {
            AttributeActionKind::Insert => !exists,
            AttributeActionKind::Update => exists,
            _ => true,
        };
        if write {
            attrs.insert(key, value);
        }
    }
}

fn value_text(v: &AnyValue) -> String {
    v.to_string()
}

#[derive(Debug)]
struct KvMatch {
    key: String,
    value: Option<StringMatch>,
}

#[derive(Debug)]
enum StringMatch {
    Strict(String),
    Regexp(Regex),
}

impl StringMatch {
    fn new(component: &str, path: &str, match_type: MatchType, text: &str) -> Result<Self> {
        Ok(match match_type {
            MatchType::Strict => Self::Strict(text.to_owned()),
            MatchType::Regexp => Self::Regexp(regex(component, path, text)?),
        })
    }

    /// Strict equality, or an unanchored regexp match as `internal/filter/filterset/regexp`.
    fn matches(&self, text: &str) -> bool {
        match self {
            Self::Strict(s) => s == text,
            Self::Regexp(re) => re.is_match(text),
        }
    }
}

fn kv_matches(attrs: &Attributes, m: &[KvMatch]) -> bool {
    m.iter().all(|kv| match attrs.get(&kv.key) {
        None => false,
        Some(v) => kv
            .value
            .as_ref()
            .is_none_or(|want| want.matches(&value_text(v))),
    })
}

fn compile_kvs(
    component: &str,
    path: &str,
    match_type: MatchType,
    kvs: &[KeyValueMatch],
) -> Result<Vec<KvMatch>> {
    kvs.iter()
        .enumerate()
        .map(|(i, kv)| {
            Ok(KvMatch {
                key: kv.key.clone(),
                value: kv
                    .value
                    .as_deref()
                    .map(|v| {
                        StringMatch::new(component, &format!("{path}[{i}].value"), match_type, v)
                    })
                    .transpose()?,
            })
        })
        .collect()
}

#[derive(Debug)]
struct PointMatch {
    names: Vec<StringMatch>,
    attributes: Vec<KvMatch>,
    resources: Vec<KvMatch>,
}

impl PointMatch {
    fn compile(component: &str, path: &str, m: &AttributesMatch) -> Result<Self> {
        Ok(Self {
            names: m
                .metric_names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    StringMatch::new(
                        component,
                        &format!("{path}.metric_names[{i}]"),
                        m.match_type,
                        n,
                    )
                })
                .collect::<Result<_>>()?,
            attributes: compile_kvs(
                component,
                &format!("{path}.attributes"),
                m.match_type,
                &m.attributes,
            )?,
            resources: compile_kvs(
                component,
                &format!("{path}.resources"),
                m.match_type,
                &m.resources,
            )?,
        })
    }

    fn matches(&self, resource: &Attributes, metric: &str, point: &Attributes) -> bool {
        (self.names.is_empty() || self.names.iter().any(|n| n.matches(metric)))
            && kv_matches(point, &self.attributes)
            && kv_matches(resource, &self.resources)
    }
}

#[derive(Debug)]
pub(crate) struct AttributesStage {
    actions: Vec<Action>,
    include: Option<PointMatch>,
    exclude: Option<PointMatch>,
}

impl AttributesStage {
    fn run(&self, data: &mut Snapshot) {
        for r in &mut data.resources {
            let resource = &r.attributes;
            for s in &mut r.scopes {
                for m in &mut s.metrics {
                    let name = m.name.as_str().to_owned();
                    for p in m.data.points_mut() {
                        if self
                            .include
                            .as_ref()
                            .is_some_and(|i| !i.matches(resource, &name, &p.attributes))
                            || self
                                .exclude
                                .as_ref()
                                .is_some_and(|e| e.matches(resource, &name, &p.attributes))
                        {
                            continue;
                        }
                        for a in &self.actions {
                            a.apply(&mut p.attributes);
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// filter
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct LegacyMatch {
    names: Vec<StringMatch>,
    resources: Vec<KvMatch>,
}

impl LegacyMatch {
    fn compile(component: &str, path: &str, m: &MetricMatchProperties) -> Result<Self> {
        Ok(Self {
            names: m
                .metric_names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    StringMatch::new(
                        component,
                        &format!("{path}.metric_names[{i}]"),
                        m.match_type,
                        n,
                    )
                })
                .collect::<Result<_>>()?,
            resources: compile_kvs(
                component,
                &format!("{path}.resource_attributes"),
                m.match_type,
                &m.resource_attributes,
            )?,
        })
    }

    fn matches(&self, resource: &Attributes, metric: &str) -> bool {
        (self.names.is_empty() || self.names.iter().any(|n| n.matches(metric)))
            && kv_matches(resource, &self.resources)
    }
}

/// The filter processor: conditions per context; a match DROPS the item.
#[derive(Debug, Default)]
pub(crate) struct FilterStage {
    resource: Vec<Condition>,
    metric: Vec<Condition>,
    datapoint: Vec<Condition>,
    /// Metric conditions reading only resource attributes: evaluated once per resource.
    metric_by_resource: Vec<Condition>,
    /// Data-point conditions reading only resource attributes: evaluated once per resource.
    datapoint_by_resource: Vec<Condition>,
    include: Option<LegacyMatch>,
    exclude: Option<LegacyMatch>,
}

fn context_of(c: OttlContext) -> Context {
    match c {
        OttlContext::Resource => Context::Resource,
        OttlContext::Scope => Context::Scope,
        OttlContext::Metric => Context::Metric,
        OttlContext::Datapoint => Context::DataPoint,
    }
}

/// What the filter does with one resource as a whole.
enum ResourceVerdict {
    /// Every item goes (a resource condition matched, or a resource-only metric or data-point
    /// condition matched, which empties every metric and so the resource).
    Drop,
    /// Items are judged one by one.
    Inspect,
}

impl FilterStage {
    fn compile(component: &str, p: &FilterProcessor) -> Result<Self> {
        let mut stage = Self::default();
        let compile = |text: &str, context: Option<Context>, path: &str| {
            ottl::compile_condition(text, context, Host::Filter)
                .map_err(|e| e.into_error(component, &format!("{component}.{path}"), text))
        };
        for (i, c) in p.metrics.resource.iter().enumerate() {
            stage.resource.push(
                compile(
                    c,
                    Some(Context::Resource),
                    &format!("metrics.resource[{i}]"),
                )?
                .1,
            );
        }
        for (i, c) in p.metrics.metric.iter().enumerate() {
            stage
                .metric
                .push(compile(c, Some(Context::Metric), &format!("metrics.metric[{i}]"))?.1);
        }
        for (i, c) in p.metrics.datapoint.iter().enumerate() {
            stage.datapoint.push(
                compile(
                    c,
                    Some(Context::DataPoint),
                    &format!("metrics.datapoint[{i}]"),
                )?
                .1,
            );
        }
        for (i, group) in p.metric_conditions.iter().enumerate() {
            let (context, texts): (Option<Context>, Vec<&String>) = match group {
                ConditionGroup::Flat(t) => (None, vec![t]),
                ConditionGroup::Grouped(g) => {
                    (g.context.map(context_of), g.conditions.iter().collect())
                }
            };
            for (j, t) in texts.into_iter().enumerate() {
                let (ctx, cond) = compile(
                    t,
                    context,
                    &format!("metric_conditions[{i}].conditions[{j}]"),
                )?;
                match ctx {
                    Context::Resource => stage.resource.push(cond),
                    Context::Metric => stage.metric.push(cond),
                    Context::DataPoint => stage.datapoint.push(cond),
                    Context::Scope => {
                        return Err(unsupported(
                            component,
                            format!(
                                "filter conditions in the scope context (metric_conditions[{i}])"
                            ),
                        ));
                    }
                }
            }
        }
        stage.include = p
            .metrics
            .include
            .as_ref()
            .map(|m| LegacyMatch::compile(component, "metrics.include", m))
            .transpose()?;
        stage.exclude = p
            .metrics
            .exclude
            .as_ref()
            .map(|m| LegacyMatch::compile(component, "metrics.exclude", m))
            .transpose()?;
        stage.split_resource_only();
        Ok(stage)
    }

    fn split_resource_only(&mut self) {
        let (by_resource, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.metric)
            .into_iter()
            .partition(Condition::is_resource_only);
        self.metric_by_resource = by_resource;
        self.metric = rest;
        let (by_resource, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.datapoint)
            .into_iter()
            .partition(Condition::is_resource_only);
        self.datapoint_by_resource = by_resource;
        self.datapoint = rest;
    }

    fn has_metric(&self) -> bool {
        !self.metric.is_empty()
            || !self.metric_by_resource.is_empty()
            || self.include.is_some()
            || self.exclude.is_some()
    }

    fn has_datapoint(&self) -> bool {
        !self.datapoint.is_empty() || !self.datapoint_by_resource.is_empty()
    }

    /// Whether the filter removes metrics without points (from the resources it keeps).
    pub(crate) fn drops_empty_metrics(&self) -> bool {
        self.has_datapoint()
    }

    pub(crate) fn is_noop(&self) -> bool {
        self.resource.is_empty() && !self.has_metric() && !self.has_datapoint()
    }

    /// Whether every condition reads resource attributes only, so that the filter keeps or
    /// drops resources as a whole (apart from removing metrics that have no points).
    pub(crate) fn is_resource_level(&self) -> bool {
        self.metric.is_empty()
            && self.datapoint.is_empty()
            && self.include.is_none()
            && self.exclude.is_none()
    }

    /// Whether the filter keeps (some of) a resource with these attributes.
    pub(crate) fn keeps_resource(&self, attrs: &Attributes) -> bool {
        matches!(self.judge_resource(attrs), ResourceVerdict::Inspect)
    }

    fn judge_resource(&self, attrs: &Attributes) -> ResourceVerdict {
        let ctx = EvalContext {
            resource: attrs,
            scope: None,
            metric: None,
            point: None,
        };
        if self
            .resource
            .iter()
            .chain(&self.metric_by_resource)
            .chain(&self.datapoint_by_resource)
            .any(|c| c.eval(&ctx))
        {
            ResourceVerdict::Drop
        } else {
            ResourceVerdict::Inspect
        }
    }

    fn drops_metric(
        &self,
        resource: &Attributes,
        scope: &phoenix_core::telemetry::Scope,
        m: &Metric,
    ) -> bool {
        let name = m.name.as_str();
        if self
            .include
            .as_ref()
            .is_some_and(|inc| !inc.matches(resource, name))
            || self
                .exclude
                .as_ref()
                .is_some_and(|exc| exc.matches(resource, name))
        {
            return true;
        }
        if self.metric.is_empty() {
            return false;
        }
        let ctx = EvalContext {
            resource,
            scope: Some(scope),
            metric: Some(MetricView::of(m)),
            point: None,
        };
        self.metric.iter().any(|c| c.eval(&ctx))
    }

    fn drops_point(
        &self,
        resource: &Attributes,
        scope: &phoenix_core::telemetry::Scope,
        view: MetricView<'_>,
        p: &phoenix_core::telemetry::DataPoint,
    ) -> bool {
        let ctx = EvalContext {
            resource,
            scope: Some(scope),
            metric: Some(view),
            point: Some(p),
        };
        self.datapoint.iter().any(|c| c.eval(&ctx))
    }

    /// As `processor/filterprocessor/metrics.go`: resources matching a resource condition
    /// are dropped; then metrics matching a metric condition (or the legacy include/exclude);
    /// then data points matching a data-point condition, a metric left without points going
    /// with them. Scopes and resources left empty are removed.
    fn run(&self, data: &mut Snapshot) {
        if self.is_noop() {
            return;
        }
        let (has_metric, has_datapoint) = (self.has_metric(), self.has_datapoint());
        data.resources.retain_mut(|r| {
            if matches!(self.judge_resource(&r.attributes), ResourceVerdict::Drop) {
                return false;
            }
            let resource = &r.attributes;
            r.scopes.retain_mut(|s| {
                let scope = &s.scope;
                s.metrics.retain_mut(|m| {
                    if has_metric && self.drops_metric(resource, scope, m) {
                        return false;
                    }
                    if !has_datapoint {
                        return true;
                    }
                    if self.datapoint.is_empty() {
                        return !m.data.points().is_empty();
                    }
                    let (view, points) = MetricView::split(m);
                    points.retain(|p| !self.drops_point(resource, scope, view, p));
                    !points.is_empty()
                });
                !s.metrics.is_empty()
            });
            !r.scopes.is_empty()
        });
    }

    /// What [`FilterStage::run`] would leave of `data`, copying only what survives.
    pub(crate) fn copy_filtered(&self, data: &Snapshot) -> Snapshot {
        let (has_metric, has_datapoint) = (self.has_metric(), self.has_datapoint());
        let mut out = Vec::new();
        for r in &data.resources {
            if matches!(self.judge_resource(&r.attributes), ResourceVerdict::Drop) {
                continue;
            }
            let resource = &r.attributes;
            let mut scopes = Vec::new();
            for s in &r.scopes {
                let scope = &s.scope;
                let mut metrics = Vec::new();
                for m in &s.metrics {
                    if has_metric && self.drops_metric(resource, scope, m) {
                        continue;
                    }
                    if !has_datapoint || self.datapoint.is_empty() {
                        if !has_datapoint || !m.data.points().is_empty() {
                            metrics.push(m.clone());
                        }
                        continue;
                    }
                    let view = MetricView::without_points(m);
                    let kept: Vec<_> = m
                        .data
                        .points()
                        .iter()
                        .filter(|p| !self.drops_point(resource, scope, view, p))
                        .cloned()
                        .collect();
                    if kept.is_empty() {
                        continue;
                    }
                    let data = match &m.data {
                        MetricData::Gauge { .. } => MetricData::Gauge { points: kept },
                        MetricData::Sum {
                            temporality,
                            monotonic,
                            ..
                        } => MetricData::Sum {
                            points: kept,
                            temporality: *temporality,
                            monotonic: *monotonic,
                        },
                    };
                    metrics.push(Metric {
                        name: m.name.clone(),
                        description: m.description.clone(),
                        unit: m.unit.clone(),
                        metadata: m.metadata.clone(),
                        data,
                    });
                }
                if !metrics.is_empty() {
                    scopes.push(ScopeMetrics {
                        scope: s.scope.clone(),
                        schema_url: s.schema_url.clone(),
                        metrics,
                    });
                }
            }
            if !scopes.is_empty() {
                out.push(Resource {
                    attributes: r.attributes.clone(),
                    dropped_attributes_count: r.dropped_attributes_count,
                    schema_url: r.schema_url.clone(),
                    scopes,
                });
            }
        }
        Snapshot::new(out)
    }
}

// ---------------------------------------------------------------------------------------
// transform
// ---------------------------------------------------------------------------------------

/// One statement group: a context, conditions joined with `or`, statements in order.
#[derive(Debug)]
pub(crate) struct TransformGroup {
    context: Context,
    conditions: Vec<Condition>,
    statements: Vec<CompiledStatement>,
}

fn compile_transform(component: &str, p: &TransformProcessor) -> Result<Vec<TransformGroup>> {
    let mut groups = Vec::new();
    for (i, g) in p.metric_statements.iter().enumerate() {
        let (context, conditions, statements): (
            Option<Context>,
            Vec<&String>,
            Vec<(String, &String)>,
        ) = match g {
            StatementGroup::Flat(t) => (None, vec![], vec![(format!("metric_statements[{i}]"), t)]),
            StatementGroup::Grouped(g) => (
                g.context.map(context_of),
                g.conditions.iter().collect(),
                g.statements
                    .iter()
                    .enumerate()
                    .map(|(j, s)| (format!("metric_statements[{i}].statements[{j}]"), s))
                    .collect(),
            ),
        };
        // Without an explicit context, the group's context is inferred from all its
        // statements and conditions together.
        let context = match context {
            Some(c) => c,
            None => infer_group(component, i, &conditions, &statements)?,
        };
        let mut compiled = Vec::new();
        for (path, text) in &statements {
            let (_, s) = ottl::compile_statement(text, Some(context), Host::Transform)
                .map_err(|e| e.into_error(component, &format!("{component}.{path}"), text))?;
            compiled.push(s);
        }
        let mut conds = Vec::new();
        for (j, text) in conditions.iter().enumerate() {
            let (_, c) =
                ottl::compile_condition(text, Some(context), Host::Transform).map_err(|e| {
                    e.into_error(
                        component,
                        &format!("{component}.metric_statements[{i}].conditions[{j}]"),
                        text,
                    )
                })?;
            conds.push(c);
        }
        groups.push(TransformGroup {
            context,
            conditions: conds,
            statements: compiled,
        });
    }
    Ok(groups)
}

fn infer_group(
    component: &str,
    i: usize,
    conditions: &[&String],
    statements: &[(String, &String)],
) -> Result<Context> {
    let mut chosen: Option<Context> = None;
    for (path, text) in statements {
        let (c, _) = ottl::compile_statement(text, None, Host::Transform)
            .map_err(|e| e.into_error(component, &format!("{component}.{path}"), text))?;
        chosen = Some(match chosen {
            Some(prev) if prev.depth() >= c.depth() => prev,
            _ => c,
        });
    }
    for (j, text) in conditions.iter().enumerate() {
        let (c, _) = ottl::compile_condition(text, None, Host::Transform).map_err(|e| {
            e.into_error(
                component,
                &format!("{component}.metric_statements[{i}].conditions[{j}]"),
                text,
            )
        })?;
        chosen = Some(match chosen {
            Some(prev) if prev.depth() >= c.depth() => prev,
            _ => c,
        });
    }
    chosen.ok_or_else(|| Error::Config {
        path: format!("{component}.metric_statements[{i}]"),
        message: "the group has no statements".to_owned(),
    })
}

impl TransformGroup {
    fn run_resource(&self, r: &mut Resource) {
        {
            let Resource {
                attributes, scopes, ..
            } = r;
            match self.context {
                Context::Resource => {
                    let ctx = EvalContext {
                        resource: attributes,
                        scope: None,
                        metric: None,
                        point: None,
                    };
                    if !self.gate(&ctx) {
                        return;
                    }
                    for s in &self.statements {
                        s.exec_resource(attributes);
                    }
                }
                Context::Scope => {
                    for sm in scopes.iter_mut() {
                        let ctx = EvalContext {
                            resource: attributes,
                            scope: Some(&sm.scope),
                            metric: None,
                            point: None,
                        };
                        if !self.gate(&ctx) {
                            continue;
                        }
                        for s in &self.statements {
                            s.exec_scope(attributes, &mut sm.scope);
                        }
                    }
                }
                Context::Metric => {
                    for ScopeMetrics { scope, metrics, .. } in scopes.iter_mut() {
                        for m in metrics.iter_mut() {
                            let ctx = EvalContext {
                                resource: attributes,
                                scope: Some(scope),
                                metric: Some(MetricView::of(m)),
                                point: None,
                            };
                            if !self.gate(&ctx) {
                                continue;
                            }
                            for s in &self.statements {
                                s.exec_metric(attributes, scope, m);
                            }
                        }
                    }
                }
                Context::DataPoint => {
                    for ScopeMetrics { scope, metrics, .. } in scopes.iter_mut() {
                        for m in metrics.iter_mut() {
                            let (view, points) = MetricView::split(m);
                            for p in points.iter_mut() {
                                let ctx = EvalContext {
                                    resource: attributes,
                                    scope: Some(scope),
                                    metric: Some(view),
                                    point: Some(p),
                                };
                                if !self.gate(&ctx) {
                                    continue;
                                }
                                for s in &self.statements {
                                    s.exec_point(attributes, scope, view, p);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The key edits, when the group edits resource attribute keys only, unconditionally.
    pub(crate) fn resource_key_edits(&self) -> Option<Vec<ottl::KeyEdit<'_>>> {
        self.each_unconditional(Context::Resource, CompiledStatement::resource_key_edit)
    }

    /// What `each` makes of every statement, when the group runs in `context` without
    /// conditions and `each` makes something of every statement.
    fn each_unconditional<'a, T>(
        &'a self,
        context: Context,
        each: impl Fn(&'a CompiledStatement) -> Option<T>,
    ) -> Option<Vec<T>> {
        if self.context != context || !self.conditions.is_empty() {
            return None;
        }
        self.statements.iter().map(each).collect()
    }

    /// Whether the group runs on data points and reads and writes nothing but their time,
    /// start time, value and flags.
    pub(crate) fn is_point_scalar_edit(&self) -> bool {
        self.context == Context::DataPoint
            && self
                .conditions
                .iter()
                .all(Condition::reads_point_scalars_only)
            && self
                .statements
                .iter()
                .all(CompiledStatement::is_point_scalar_edit)
    }

    /// The group's statements as time truncations, when it runs on data points without
    /// conditions and holds nothing else: they then run without the interpreter.
    pub(crate) fn time_truncations(&self) -> Option<Vec<ottl::TimeTruncation>> {
        self.each_unconditional(Context::DataPoint, CompiledStatement::time_truncation)
    }

    /// The point fields a group for which [`TransformGroup::is_point_scalar_edit`] holds
    /// reads or writes: what it does to a point depends on these fields only, and changes
    /// no others.
    pub(crate) fn point_scalars(&self) -> ottl::PointScalars {
        self.conditions
            .iter()
            .map(Condition::point_scalars)
            .chain(self.statements.iter().map(CompiledStatement::point_scalars))
            .fold(ottl::PointScalars::default(), ottl::PointScalars::with)
    }

    /// Runs a group for which [`TransformGroup::is_point_scalar_edit`] holds on one point.
    /// `resource`, `scope` and `metric` may be anything (the group reads none of them), and
    /// the point's attributes are neither read nor written.
    pub(crate) fn run_point_scalars(
        &self,
        resource: &mut Attributes,
        scope: &mut phoenix_core::telemetry::Scope,
        metric: MetricView<'_>,
        p: &mut phoenix_core::telemetry::DataPoint,
    ) {
        let ctx = EvalContext {
            resource,
            scope: Some(scope),
            metric: Some(metric),
            point: Some(p),
        };
        if !self.gate(&ctx) {
            return;
        }
        for s in &self.statements {
            s.exec_point(resource, scope, metric, p);
        }
    }

    /// The function, when the group is one unconditional metric-context
    /// `aggregate_on_attributes` over all attributes.
    pub(crate) fn aggregation(&self) -> Option<ottl::AggregationFunction> {
        match self.statements.as_slice() {
            [only] if self.context == Context::Metric && self.conditions.is_empty() => {
                only.aggregation_over_all_attributes()
            }
            _ => None,
        }
    }

    fn gate(&self, ctx: &EvalContext<'_>) -> bool {
        self.conditions.is_empty() || self.conditions.iter().any(|c| c.eval(ctx))
    }
}

// ---------------------------------------------------------------------------------------
// groupbyattrs
// ---------------------------------------------------------------------------------------

/// As `processor/groupbyattrsprocessor`: every data point moves to the resource whose
/// attributes are its origin resource's plus the point's grouping attributes (which leave the
/// point); resources with identical attributes merge, scopes merge by name and version, and
/// metrics merge by name and type (keeping the first one's description, unit and shape).
/// New resources carry no schema URL; metrics without points vanish.
fn group_by_attrs(data: &mut Snapshot, keys: &[String]) {
    let input = std::mem::take(&mut data.resources);
    let mut groups = Regrouped::default();
    for r in input {
        let Resource {
            attributes, scopes, ..
        } = r;
        // The resource the points without grouping attributes go to, found once.
        let mut base: Option<usize> = None;
        for sm in scopes {
            let ScopeMetrics { scope, metrics, .. } = sm;
            for mut m in metrics {
                let regroup = !keys.is_empty()
                    && m.data
                        .points()
                        .iter()
                        .any(|p| keys.iter().any(|k| p.attributes.contains_key(k)));
                if !regroup {
                    if m.data.points().is_empty() {
                        continue;
                    }
                    let target = *base.get_or_insert_with(|| groups.find_or_create(&attributes));
                    let points = std::mem::take(m.data.points_mut());
                    groups.metric(target, &scope, &m).append(&mut { points });
                    continue;
                }
                let points = std::mem::take(m.data.points_mut());
                for mut p in points {
                    let mut grouping = Attributes::new();
                    for k in keys {
                        if let Some(v) = p.attributes.remove(k) {
                            grouping.insert(k, v);
                        }
                    }
                    let target = if grouping.is_empty() {
                        *base.get_or_insert_with(|| groups.find_or_create(&attributes))
                    } else {
                        let mut merged = attributes.clone();
                        for kv in grouping.into_vec() {
                            merged.insert(kv.key, kv.value);
                        }
                        groups.find_or_create(&merged)
                    };
                    groups.metric(target, &scope, &m).push(p);
                }
            }
        }
    }
    data.resources = groups.out;
}

/// The regrouped output of `groupbyattrs`, with an index of its resources by attributes.
#[derive(Default)]
struct Regrouped {
    out: Vec<Resource>,
    index: ottl::PrehashedMap<u64, Vec<usize>>,
    buf: Vec<u8>,
}

impl Regrouped {
    fn find_or_create(&mut self, attrs: &Attributes) -> usize {
        let key = ottl::attributes_hash(attrs, &mut self.buf);
        let slot = self.index.entry(key).or_default();
        if let Some(&i) = slot
            .iter()
            .find(|&&i| same_attributes(&self.out[i].attributes, attrs))
        {
            return i;
        }
        slot.push(self.out.len());
        self.out.push(Resource::new(attrs.clone()));
        self.out.len() - 1
    }

    /// The point list of the metric matching `m` (name and type) in the scope matching `scope`
    /// (name and version) of resource `target`, created from `m` and `scope` when missing.
    fn metric(
        &mut self,
        target: usize,
        scope: &phoenix_core::telemetry::Scope,
        m: &Metric,
    ) -> &mut Vec<phoenix_core::telemetry::DataPoint> {
        let resource = &mut self.out[target];
        let si = match resource
            .scopes
            .iter()
            .position(|s| s.scope.name == scope.name && s.scope.version == scope.version)
        {
            Some(i) => i,
            None => {
                resource.scopes.push(ScopeMetrics {
                    scope: scope.clone(),
                    ..ScopeMetrics::default()
                });
                resource.scopes.len() - 1
            }
        };
        let sm = &mut resource.scopes[si];
        let kind = m.data.kind();
        let mi = match sm
            .metrics
            .iter()
            .position(|x| x.name == m.name && x.data.kind() == kind)
        {
            Some(i) => i,
            None => {
                let data = match &m.data {
                    MetricData::Gauge { .. } => MetricData::Gauge { points: Vec::new() },
                    MetricData::Sum {
                        temporality,
                        monotonic,
                        ..
                    } => MetricData::Sum {
                        points: Vec::new(),
                        temporality: *temporality,
                        monotonic: *monotonic,
                    },
                };
                sm.metrics.push(Metric {
                    name: m.name.clone(),
                    description: m.description.clone(),
                    unit: m.unit.clone(),
                    metadata: m.metadata.clone(),
                    data,
                });
                sm.metrics.len() - 1
            }
        };
        sm.metrics[mi].data.points_mut()
    }
}

pub(crate) fn same_attributes(a: &Attributes, b: &Attributes) -> bool {
    a.len() == b.len() && a.iter().all(|kv| b.get(&kv.key) == Some(&kv.value))
}

// ---------------------------------------------------------------------------------------
// metricstransform
// ---------------------------------------------------------------------------------------

/// A `metricstransform` rename (`action: update` with `new_name` and no operations).
#[derive(Debug)]
pub(crate) struct Rename {
    include: StringMatch,
    new_name: String,
}

impl Rename {
    fn matches(&self, name: &str) -> bool {
        match &self.include {
            StringMatch::Strict(s) => s == name,
            // metricstransform anchors its regexp matches.
            StringMatch::Regexp(re) => re
                .find(name)
                .is_some_and(|m| m.start() == 0 && m.end() == name.len()),
        }
    }
}

fn compile_renames(component: &str, p: &MetricsTransformProcessor) -> Result<Vec<Rename>> {
    p.transforms
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if t.action != TransformAction::Update {
                return Err(unsupported(
                    component,
                    format!("transforms[{i}]: action `{:?}`", t.action).to_lowercase(),
                ));
            }
            if let Some(op) = t.operations.first() {
                let name = match op.action {
                    OperationAction::UpdateLabel => "update_label",
                    OperationAction::AggregateLabels => "aggregate_labels",
                    OperationAction::AggregateLabelValues => "aggregate_label_values",
                    OperationAction::DeleteLabelValue => "delete_label_value",
                    OperationAction::AddLabel => "add_label",
                    OperationAction::ToggleScalarDataType => "toggle_scalar_data_type",
                    OperationAction::ExperimentalScaleValue => "experimental_scale_value",
                };
                return Err(unsupported(
                    component,
                    format!("transforms[{i}]: operation `{name}`"),
                ));
            }
            if !t.experimental_match_labels.is_empty()
                || !t.group_resource_labels.is_empty()
                || t.submatch_case.is_some()
            {
                return Err(unsupported(
                    component,
                    format!("transforms[{i}]: label matching, resource labels or submatch_case"),
                ));
            }
            let Some(new_name) = t.new_name.clone() else {
                return Err(unsupported(
                    component,
                    format!("transforms[{i}]: update without new_name"),
                ));
            };
            let match_type = t.match_type.unwrap_or(MatchType::Strict);
            if match_type == MatchType::Regexp && new_name.contains('$') {
                return Err(unsupported(
                    component,
                    format!("transforms[{i}]: submatch expansion in new_name"),
                ));
            }
            Ok(Rename {
                include: StringMatch::new(
                    component,
                    &format!("transforms[{i}].include"),
                    match_type,
                    &t.include,
                )?,
                new_name,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use phoenix_core::telemetry::{DataPoint, NumberValue, ProcessMetric, Timestamp};

    fn process(pid: i64, name: &str, rss: i64) -> Resource {
        let mut mem = Metric::process(ProcessMetric::MemoryUsage);
        mem.data.points_mut().push(DataPoint::new(
            Timestamp::from_secs(1),
            Timestamp::from_secs(10),
            rss,
        ));
        let mut cpu = Metric::process(ProcessMetric::CpuTime);
        for (i, state) in ["user", "system"].iter().enumerate() {
            #[allow(clippy::cast_precision_loss)]
            cpu.data.points_mut().push(
                DataPoint::new(
                    Timestamp::from_secs(1),
                    Timestamp::from_secs(10),
                    pid as f64 + i as f64,
                )
                .with_attribute("state", *state),
            );
        }
        Resource {
            scopes: vec![ScopeMetrics {
                metrics: vec![mem, cpu],
                ..ScopeMetrics::default()
            }],
            ..Resource::new(
                [
                    ("process.pid", AnyValue::Int(pid)),
                    ("process.executable.name", AnyValue::from(name)),
                ]
                .into_iter()
                .collect(),
            )
        }
    }

    fn workload() -> Snapshot {
        Snapshot::new(vec![
            process(1, "postgres", 100),
            process(2, "nginx", 5000),
            process(3, "nginx", 7000),
        ])
    }

    fn stage(yaml: &str) -> Stage {
        let p: Processor = {
            let v: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
            let (kind, body) = v.as_mapping().unwrap().iter().next().unwrap();
            match kind.as_str().unwrap() {
                "filter" => Processor::Filter(serde_yaml::from_value(body.clone()).unwrap()),
                "transform" => Processor::Transform(serde_yaml::from_value(body.clone()).unwrap()),
                "resource" => Processor::Resource(serde_yaml::from_value(body.clone()).unwrap()),
                "attributes" => {
                    Processor::Attributes(serde_yaml::from_value(body.clone()).unwrap())
                }
                "groupbyattrs" => {
                    Processor::GroupByAttrs(serde_yaml::from_value(body.clone()).unwrap())
                }
                "metricstransform" => {
                    Processor::MetricsTransform(serde_yaml::from_value(body.clone()).unwrap())
                }
                other => panic!("{other}"),
            }
        };
        Stage::compile("processors.test", &p).unwrap()
    }

    fn run(yaml: &str, data: &mut Snapshot) {
        stage(yaml).run(data);
    }

    #[test]
    fn filter_drops_what_matches_and_removes_empty_parents() {
        let mut data = workload();
        run(
            r#"filter:
  metrics:
    datapoint:
      - 'resource.attributes["process.executable.name"] == "nginx"'
"#,
            &mut data,
        );
        assert_eq!(
            data.resources.len(),
            1,
            "resources left without points are removed"
        );
        assert_eq!(data.data_point_count(), 3);

        let mut data = workload();
        run(
            r#"filter:
  metrics:
    datapoint:
      - 'metric.name == "process.cpu.time" and attributes["state"] == "system"'
    metric:
      - 'name == "process.memory.usage" and HasAttrKeyOnDatapoint("nope") == false and resource.attributes["process.pid"] == 3'
"#,
            &mut data,
        );
        assert_eq!(data.data_point_count(), 9 - 3 - 1);

        let mut data = workload();
        run(
            "filter:\n  metrics:\n    resource:\n      - 'attributes[\"process.pid\"] >= 2'\n",
            &mut data,
        );
        assert_eq!(data.resources.len(), 1);
    }

    #[test]
    fn copying_filter_equals_filtering_a_copy() {
        for yaml in [
            "filter:\n  metrics:\n    datapoint:\n      - 'resource.attributes[\"process.executable.name\"] == \"nginx\"'\n",
            "filter:\n  metrics:\n    datapoint:\n      - 'attributes[\"state\"] == \"user\"'\n    metric:\n      - 'name == \"process.memory.usage\"'\n",
            "filter:\n  metrics:\n    resource:\n      - 'attributes[\"process.pid\"] == 1'\n",
            "filter:\n  metrics:\n    include:\n      match_type: regexp\n      metric_names: ['cpu']\n",
        ] {
            let Stage::Filter(f) = stage(yaml) else {
                panic!()
            };
            let w = workload();
            let mut in_place = w.clone();
            f.run(&mut in_place);
            assert_eq!(f.copy_filtered(&w), in_place, "{yaml}");
        }
    }

    #[test]
    fn legacy_include_and_exclude() {
        let mut data = workload();
        run(
            "filter:\n  metrics:\n    include:\n      match_type: strict\n      metric_names: [process.memory.usage]\n",
            &mut data,
        );
        assert_eq!(data.data_point_count(), 3);
        let mut data = workload();
        run(
            "filter:\n  metrics:\n    exclude:\n      match_type: regexp\n      metric_names: ['cpu']\n      resource_attributes:\n        - key: process.executable.name\n          value: '^ng'\n",
            &mut data,
        );
        assert_eq!(data.data_point_count(), 9 - 4);
    }

    #[test]
    fn resource_and_attributes_actions() {
        let mut data = workload();
        run(
            r#"resource:
  attributes:
    - {key: phoenix.variant, value: candidate, action: upsert}
    - {key: process.pid, action: delete}
    - {key: process.executable.name, value: x, action: insert}
    - {key: name.copy, from_attribute: process.executable.name, action: insert}
    - {key: absent, value: y, action: update}
"#,
            &mut data,
        );
        let r = &data.resources[1].attributes;
        assert_eq!(r.get_str("phoenix.variant"), Some("candidate"));
        assert!(!r.contains_key("process.pid"));
        assert_eq!(
            r.get_str("process.executable.name"),
            Some("nginx"),
            "insert never overwrites"
        );
        assert_eq!(r.get_str("name.copy"), Some("nginx"));
        assert!(!r.contains_key("absent"), "update never creates");

        let mut data = workload();
        run(
            "attributes:\n  actions:\n    - {key: state, value: any, action: update}\n  include:\n    match_type: strict\n    metric_names: [process.cpu.time]\n",
            &mut data,
        );
        assert!(
            data.data_points()
                .all(|(_, m, p)| m.name.as_str() != "process.cpu.time"
                    || p.attributes.get_str("state") == Some("any"))
        );
        let e = Stage::compile(
            "processors.attributes/x",
            &Processor::Attributes(
                serde_yaml::from_str("actions:\n  - {key: a, action: hash}\n").unwrap(),
            ),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("processors.attributes/x") && e.to_string().contains("hash"),
            "{e}"
        );
    }

    #[test]
    fn transform_groups_run_in_order_with_conditions() {
        let mut data = workload();
        run(
            r#"transform:
  metric_statements:
    - context: resource
      conditions:
        - 'not IsMatch(attributes["process.executable.name"], "^postgres$")'
      statements:
        - 'delete_key(attributes, "process.pid")'
    - 'set(datapoint.attributes["exe"], resource.attributes["process.executable.name"]) where metric.name == "process.memory.usage"'
"#,
            &mut data,
        );
        assert!(data.resources[0].attributes.contains_key("process.pid"));
        assert!(!data.resources[1].attributes.contains_key("process.pid"));
        let mem: Vec<_> = data
            .data_points()
            .filter(|(_, m, _)| m.name.as_str() == "process.memory.usage")
            .collect();
        assert_eq!(mem[2].2.attributes.get_str("exe"), Some("nginx"));
    }

    #[test]
    fn groupbyattrs_merges_identical_resources_and_metrics() {
        let mut data = workload();
        run(
            "transform:\n  metric_statements:\n    - context: resource\n      statements: ['delete_key(attributes, \"process.pid\")']\n",
            &mut data,
        );
        run("groupbyattrs:\n  keys: [state]\n", &mut data);
        // postgres: mem | user | system; nginx: mem (2 points) | user | system resources.
        assert_eq!(data.resources.len(), 6);
        assert_eq!(data.data_point_count(), 9);
        let nginx_mem = data
            .resources
            .iter()
            .find(|r| {
                r.attributes.get_str("process.executable.name") == Some("nginx")
                    && !r.attributes.contains_key("state")
            })
            .unwrap();
        assert_eq!(nginx_mem.scopes.len(), 1);
        assert_eq!(nginx_mem.scopes[0].metrics.len(), 1);
        assert_eq!(nginx_mem.scopes[0].metrics[0].data.points().len(), 2);

        run(
            "transform:\n  metric_statements:\n    - context: metric\n      statements: ['aggregate_on_attributes(\"sum\")']\n",
            &mut data,
        );
        // postgres keeps 3 points; each nginx metric merges its two processes: 3.
        assert_eq!(data.data_point_count(), 6);
        let total: i64 = data
            .data_points()
            .filter_map(|(r, m, p)| {
                (m.name.as_str() == "process.memory.usage"
                    && r.attributes.get_str("process.executable.name") == Some("nginx"))
                .then_some(p.value)
            })
            .map(|v| match v {
                NumberValue::Int(i) => i,
                NumberValue::Double(_) => 0,
            })
            .sum();
        assert_eq!(total, 12_000);
    }

    #[test]
    fn metricstransform_renames_and_refuses_operations() {
        let mut data = workload();
        run(
            "metricstransform:\n  transforms:\n    - include: process.memory.usage\n      action: update\n      new_name: mem\n",
            &mut data,
        );
        assert_eq!(
            data.data_points()
                .filter(|(_, m, _)| m.name.as_str() == "mem")
                .count(),
            3
        );
        let p: MetricsTransformProcessor = serde_yaml::from_str(
            "transforms:\n  - include: a\n    action: update\n    operations:\n      - action: aggregate_labels\n        label_set: [state]\n        aggregation_type: sum\n",
        )
        .unwrap();
        let e = Stage::compile(
            "processors.metricstransform",
            &Processor::MetricsTransform(p),
        )
        .unwrap_err();
        assert!(e.to_string().contains("aggregate_labels"), "{e}");
    }
}
