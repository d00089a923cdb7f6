//! One pass over borrowed telemetry for pipelines that reduce it before anything else changes
//! it: resource-level filters, then any of `cumulativetodelta`, unconditional edits of
//! resource attribute keys and edits of data-point times and values, then `groupbyattrs`
//! without keys followed by `aggregate_on_attributes` over all attributes (the shape of
//! `process-aggregated-v1`).
//!
//! Running these stages one after the other needs a copy of every resource and point, only
//! to merge nearly all of them away. [`Rollup`] instead reads the input where it is: resource
//! attributes are edited as lists of borrowed attributes, each point's time and value are
//! worked on in a scratch point, and only what the aggregation keeps (one point per group)
//! is copied. The result is the same, to the bit, as running the stages one by one: the same
//! hashes, the same equality tests, the same order of creation, and the same merge of values
//! (`ottl::merge_values`), as the equivalence tests below check.
//!
//! Processes persist from one scrape to the next with the same attributes, metrics and point
//! attributes, and everything the segment works out about them depends on those alone: what
//! the filters and key edits make of a resource, the tracker's identity of each metric, and
//! where each point aggregates (its output metric and attribute set). [`Rollup`] works that
//! out once per resource ([`Plan`], kept in a [`ResourceMemo`]) and keeps the aggregation's
//! output resources, metrics and attribute sets across scrapes ([`Sink`]), so that a point
//! seen before costs a comparison of its metric and attributes with the ones its plan was
//! made from (of pointers, when the producer shares attributes across snapshots), the
//! tracker's update (at the place its plan remembers), and an append to its group.

use phoenix_core::otlp;
use phoenix_core::telemetry::{
    Attributes, DataPoint, KeyValue, Metric, MetricData, MetricName, NumberValue, Resource,
    ResourceKey, Scope, ScopeMetrics, SeriesKey, Snapshot, Temporality, Timestamp,
};

use super::delta::{self, CumulativeToDelta};
use super::relabel::{Exported, Relabel};
use super::resource_memo::ResourceMemo;
use super::stage::{Stage, TransformGroup};
use crate::ottl::{self, AggregationFunction, MetricView, PointScalars, PrehashedMap};

/// A pipeline segment run as one pass; see the module documentation.
#[derive(Debug)]
pub(crate) struct Rollup {
    /// The stages before the `groupbyattrs`, by index in the pipeline, in order.
    ops: Vec<Op>,
    /// The index of the first stage after the aggregation.
    end: usize,
    function: AggregationFunction,
    /// What the segment makes of each resource of the last scrape.
    plans: ResourceMemo<Plan>,
    /// The aggregation's output resources, metrics and attribute sets.
    sink: Sink,
    /// Per point-edit group: how it runs.
    edits: Vec<PointEdit>,
}

/// What the segment makes of one resource (with given attributes), worked out as its parts
/// are first seen and checked against them at every scrape.
#[derive(Debug, Default)]
struct Plan {
    /// Whether the first filter keeps it (true when there is none).
    first_keeps: bool,
    /// Whether every filter keeps it.
    keeps: bool,
    /// Whether its attributes hold a key twice.
    duplicate_keys: bool,
    /// The tracker's hash of the attributes as the tracker sees them (0 without tracker).
    tracker_hash: u64,
    /// The attributes after every key edit, and their hash.
    edited: Vec<KeyValue>,
    edited_hash: u64,
    /// The output resource, once a point reached it.
    target: Option<usize>,
    /// Per scope, in order.
    scopes: Vec<ScopePlan>,
    /// Per metric, in order over all scopes.
    metrics: Vec<MetricPlan>,
    /// Per point, in order over all metrics.
    points: Vec<PointPlan>,
    /// Counts the parts worked out: a part records the count of the part it depends on, and
    /// is worked out again when that one was.
    made: u64,
}

/// What a plan knows of a scope.
#[derive(Debug)]
struct ScopePlan {
    name: String,
    version: String,
    /// The tracker's identity of the scope.
    identity: u64,
    made: u64,
}

/// What a plan knows of a metric.
#[derive(Debug)]
struct MetricPlan {
    name: MetricName,
    unit: String,
    shape: Shape,
    /// The `made` of its scope's plan.
    scope: u64,
    /// The tracker's identity of the metric when the tracker converts it.
    identity: Option<u64>,
    /// The output metric.
    slot: usize,
    made: u64,
}

/// The kind, temporality and monotonicity of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Gauge,
    Sum(Temporality, bool),
}

impl Shape {
    fn of(data: &MetricData) -> Self {
        match data {
            MetricData::Gauge { .. } => Self::Gauge,
            MetricData::Sum {
                temporality,
                monotonic,
                ..
            } => Self::Sum(*temporality, *monotonic),
        }
    }
}

/// What a plan knows of a point.
#[derive(Debug)]
struct PointPlan {
    attributes: Attributes,
    /// `ottl::attributes_hash` of the attributes.
    hash: u64,
    /// The `made` of its metric's plan.
    metric: u64,
    /// The attribute set it aggregates into.
    family: usize,
    /// Where the tracker keeps its series' state ([`delta::NO_SLOT`] before it is known).
    tracked: usize,
    /// Per point-edit group run through the interpreter, in order, its last result for this
    /// point.
    edits: Vec<Option<(MemoKey, Scalars)>>,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    /// A resource-level filter.
    Filter(usize),
    /// `cumulativetodelta`.
    Delta(usize),
    /// A transform of resource attribute keys.
    KeyEdits(usize),
    /// A transform of point times and values.
    PointEdits(usize),
}

impl Rollup {
    /// The rollup of a pipeline's stages, when they have its shape (pass-through stages may
    /// sit anywhere).
    pub(crate) fn plan(stages: &[Stage]) -> Option<Self> {
        let mut ops = Vec::new();
        let mut edits = Vec::new();
        let (mut past_filters, mut delta, mut point_edits) = (false, false, false);
        for (i, stage) in stages.iter().enumerate() {
            match stage {
                Stage::PassThrough => {}
                Stage::Filter(f) if !past_filters && f.is_resource_level() => {
                    ops.push(Op::Filter(i));
                }
                // The tracker's clock is the latest point time of its batch: no point edits
                // before it, and one tracker only.
                Stage::CumulativeToDelta(_) if !delta && !point_edits => {
                    past_filters = true;
                    delta = true;
                    ops.push(Op::Delta(i));
                }
                Stage::Transform(groups)
                    if groups.iter().all(|g| g.resource_key_edits().is_some()) =>
                {
                    past_filters = true;
                    ops.push(Op::KeyEdits(i));
                }
                Stage::Transform(groups)
                    if groups.iter().all(TransformGroup::is_point_scalar_edit) =>
                {
                    past_filters = true;
                    point_edits = true;
                    edits.extend(groups.iter().map(|g| match g.time_truncations() {
                        Some(statements) => PointEdit::Native(statements),
                        None => PointEdit::Remembered(Memo::new(g.point_scalars())),
                    }));
                    ops.push(Op::PointEdits(i));
                }
                Stage::GroupByAttrs(keys) if keys.is_empty() => {
                    let next = (i + 1..stages.len())
                        .find(|&j| !matches!(stages[j], Stage::PassThrough))?;
                    let Stage::Transform(groups) = &stages[next] else {
                        return None;
                    };
                    let [group] = groups.as_slice() else {
                        return None;
                    };
                    return Some(Self {
                        ops,
                        end: next + 1,
                        function: group.aggregation()?,
                        plans: ResourceMemo::default(),
                        sink: Sink::default(),
                        edits,
                    });
                }
                _ => return None,
            }
        }
        None
    }

    /// The index of the first stage after the segment.
    pub(crate) fn end(&self) -> usize {
        self.end
    }

    /// Runs the segment over `input`, with the pipeline's `stages` (whose
    /// `cumulativetodelta` state it updates), and returns what the aggregation leaves, with
    /// the number of points the first filter kept (all of them when there is none).
    /// `None` when the scrape does not suit the rollup (see [`Gathered::Unsuited`]): the
    /// stages then run one by one.
    pub(crate) fn run(
        &mut self,
        stages: &mut [Stage],
        input: &Snapshot,
    ) -> Option<(Snapshot, usize)> {
        let function = self.function;
        self.run_with(stages, input, |scrape, sink, plans, _| match scrape {
            Some(scrape) => scrape.finish(sink, plans, function),
            None => Snapshot::default(),
        })
    }

    /// As [`Rollup::run`], followed by the rest of the pipeline's stages, which relabel
    /// resources without filtering them: counts what the pipeline exports without building
    /// it (with the points the first filter kept), and builds only the resources to copy
    /// (when `copy`, those whose attributes as exported satisfy `keep`). `None` as for
    /// [`Rollup::run`].
    pub(crate) fn run_relabelled(
        &mut self,
        stages: &mut [Stage],
        input: &Snapshot,
        copy: bool,
        keep: &dyn Fn(&Attributes) -> bool,
    ) -> Option<Exported> {
        let function = self.function;
        let (out, first_filter_points) =
            self.run_with(stages, input, |scrape, sink, plans, tail| match scrape {
                Some(scrape) => scrape.finish_relabelled(sink, plans, function, tail, copy, keep),
                None => Exported {
                    resources: 0,
                    points: 0,
                    first_filter_points: 0,
                    series: Vec::new(),
                    bytes: 0,
                    data: copy.then(Snapshot::default),
                },
            })?;
        Some(Exported {
            first_filter_points,
            ..out
        })
    }

    /// Gathers `input` into groups and ends the scrape with `finish` (given the groups, or
    /// `None` when no point is kept, with the sink, the plans and the stages after the
    /// aggregation); returns what it made, with the points the first filter kept. `None`
    /// when the scrape does not suit the rollup.
    fn run_with<'a, T>(
        &mut self,
        stages: &mut [Stage],
        input: &'a Snapshot,
        finish: impl FnOnce(Option<Scrape<'a>>, &mut Sink, &ResourceMemo<Plan>, &[Stage]) -> T,
    ) -> Option<(T, usize)> {
        let (scrape, first_filter_points) = match self.gather(stages, input) {
            Gathered::Unsuited => {
                self.settle(false);
                return None;
            }
            Gathered::Groups(scrape, first_filter_points) => (scrape, first_filter_points),
        };
        let ran = scrape.is_some();
        let out = finish(scrape, &mut self.sink, &self.plans, &stages[self.end..]);
        self.settle(ran);
        Some((out, first_filter_points))
    }

    /// Runs the points of `input` that the filters keep into the aggregation's groups, and
    /// counts the points the first filter keeps.
    fn gather<'a>(&mut self, stages: &mut [Stage], input: &'a Snapshot) -> Gathered<'a> {
        let (kept, mut first_filter_points) = self.judge(stages, input);
        let (mut now, mut duplicates) = (None, false);
        for &(r, at) in &kept {
            let plan = self.plans.get(at);
            duplicates |= plan.is_some_and(|p| p.duplicate_keys);
            let planned = plan.map_or(&[][..], |p| p.points.as_slice());
            let mut place = 0;
            for m in r.metrics() {
                for p in m.data.points() {
                    now = now.max(Some(p.time));
                    // A list planned at this place went through the aggregation: it holds no
                    // key twice.
                    let planned = planned
                        .get(place)
                        .is_some_and(|pp| pp.attributes.shares_storage_with(&p.attributes));
                    duplicates |=
                        !planned && p.attributes.len() > 1 && p.attributes.has_duplicate_keys();
                    place += 1;
                }
            }
            first_filter_points += place;
        }
        if duplicates {
            return Gathered::Unsuited;
        }
        let scrape = now.map(|now| self.run_points(stages, &kept, now));
        Gathered::Groups(scrape, first_filter_points)
    }

    /// Ends a scrape (`ran`: whether points went through the sink): forgets the resources it
    /// did not see.
    fn settle(&mut self, ran: bool) {
        self.plans.end();
        if ran && self.sink.is_mostly_stale() {
            // Resources that come and go leave output metrics and attribute sets behind:
            // start afresh (the plans refer to them).
            self.sink = Sink::default();
            self.plans = ResourceMemo::default();
        }
    }

    /// The resources of `input` that the filters keep, each with its plan's index, and the
    /// number of points of the others that the first filter keeps.
    fn judge<'a>(
        &mut self,
        stages: &[Stage],
        input: &'a Snapshot,
    ) -> (Vec<(&'a Resource, usize)>, usize) {
        let mut filters = Vec::new();
        // The key edits before and after the tracker's hash.
        let (mut edits_before_delta, mut edits) = (Vec::new(), Vec::new());
        let mut tracked = false;
        for op in &self.ops {
            match (op, &stages[op_stage(*op)]) {
                (Op::Filter(_), Stage::Filter(f)) => filters.push(f),
                (Op::KeyEdits(_), Stage::Transform(groups)) => {
                    for g in groups {
                        edits.extend(g.resource_key_edits().into_iter().flatten());
                    }
                }
                (Op::Delta(_), _) => {
                    tracked = true;
                    edits_before_delta = std::mem::take(&mut edits);
                }
                _ => {}
            }
        }
        let mut buf = Vec::with_capacity(256);
        let mut decide = |attributes: &Attributes| {
            let mut filters = filters.iter();
            let first_keeps = filters.next().is_none_or(|f| f.keeps_resource(attributes));
            let keeps = first_keeps && filters.all(|f| f.keeps_resource(attributes));
            let mut plan = Plan {
                first_keeps,
                keeps,
                duplicate_keys: attributes.has_duplicate_keys(),
                ..Plan::default()
            };
            if keeps {
                let mut view: Vec<&KeyValue> = attributes.iter().collect();
                for edit in &edits_before_delta {
                    edit.apply(&mut view);
                }
                if tracked {
                    plan.tracker_hash = ottl::key_values_hash(view.iter().copied(), &mut buf);
                }
                for edit in &edits {
                    edit.apply(&mut view);
                }
                plan.edited = view.iter().map(|kv| (*kv).clone()).collect();
                plan.edited_hash = ottl::key_values_hash(plan.edited.iter(), &mut buf);
            }
            plan
        };
        self.plans.begin();
        let (mut kept, mut first_filter_points) = (Vec::with_capacity(input.resources.len()), 0);
        for r in &input.resources {
            let at = self.plans.next(&r.attributes, &mut decide);
            let Some(plan) = self.plans.get_mut(at) else {
                continue;
            };
            if plan.keeps {
                kept.push((r, at));
            } else if plan.first_keeps {
                first_filter_points += r.data_point_count();
            }
        }
        (kept, first_filter_points)
    }

    fn run_points<'a>(
        &mut self,
        stages: &mut [Stage],
        kept: &[(&'a Resource, usize)],
        now: Timestamp,
    ) -> Scrape<'a> {
        // The tracker leaves the stage list while it runs, so that the other stages can be
        // borrowed meanwhile.
        let delta_at = self.ops.iter().find_map(|op| match op {
            Op::Delta(i) => Some(*i),
            _ => None,
        });
        let mut delta =
            delta_at.and_then(
                |i| match std::mem::replace(&mut stages[i], Stage::PassThrough) {
                    Stage::CumulativeToDelta(d) => Some(d),
                    other => {
                        stages[i] = other;
                        None
                    }
                },
            );
        let out = self.aggregate(stages, kept, delta.as_deref_mut(), now);
        if let (Some(i), Some(d)) = (delta_at, delta) {
            stages[i] = Stage::CumulativeToDelta(d);
        }
        out
    }

    fn aggregate<'a>(
        &mut self,
        stages: &[Stage],
        kept: &[(&'a Resource, usize)],
        mut delta: Option<&mut CumulativeToDelta>,
        now: Timestamp,
    ) -> Scrape<'a> {
        let delta_start = delta.as_deref_mut().map(|d| d.begin(now));
        // Per point, after the tracker: the point edits (each with its shared memo).
        let mut point_edits: Vec<&TransformGroup> = Vec::new();
        for op in &self.ops {
            if let (Op::PointEdits(_), Stage::Transform(groups)) = (op, &stages[op_stage(*op)]) {
                point_edits.extend(groups.iter());
            }
        }
        let Self {
            plans, sink, edits, ..
        } = self;
        let mut scrape = Scrape::new(sink);
        let mut buf = Vec::with_capacity(256);
        let (mut no_attributes, mut no_scope) = (Attributes::new(), Scope::default());
        let remembered = edits
            .iter()
            .filter(|e| matches!(e, PointEdit::Remembered(_)))
            .count();
        for &(r, at) in kept {
            let Some(plan) = plans.get_mut(at) else {
                continue;
            };
            let (mut metric_at, mut point_at) = (0, 0);
            for (scope_at, sm) in r.scopes.iter().enumerate() {
                let scope_made = plan.scope(scope_at, &sm.scope, delta.is_some(), &mut buf);
                for m in &sm.metrics {
                    let mp = plan.metric(
                        metric_at,
                        scope_at,
                        scope_made,
                        m,
                        delta.as_deref(),
                        sink,
                        &mut buf,
                    );
                    let (identity, made, slot) = (mp.identity, mp.made, mp.slot);
                    metric_at += 1;
                    let view_of_metric = MetricView::without_points(m);
                    for p in m.data.points() {
                        let i = plan.point(point_at, (made, slot), p, remembered, sink, &mut buf);
                        point_at += 1;
                        let pp = &mut plan.points[i];
                        scrape.reference(sink, pp.family);
                        // The point as the stages change it, without its attributes (which
                        // none of them reads or writes).
                        let mut scratch = DataPoint {
                            attributes: Attributes::new(),
                            ..*p
                        };
                        if let (Some(identity), Some(start), Some(d)) =
                            (identity, delta_start, delta.as_deref_mut())
                            && !d.convert_point(
                                start,
                                identity,
                                pp.hash,
                                &mut scratch,
                                &mut pp.tracked,
                            )
                        {
                            continue;
                        }
                        let mut lasts = pp.edits.iter_mut();
                        for (group, edit) in point_edits.iter().zip(edits.iter_mut()) {
                            match edit {
                                PointEdit::Native(statements) => {
                                    for s in statements.iter_mut() {
                                        s.apply(&mut scratch);
                                    }
                                }
                                PointEdit::Remembered(memo) => {
                                    // The plan holds one per such group; without one,
                                    // the stage just runs.
                                    let mut none = None;
                                    let last = lasts.next().unwrap_or(&mut none);
                                    memo.apply(&mut scratch, last, |p| {
                                        group.run_point_scalars(
                                            &mut no_attributes,
                                            &mut no_scope,
                                            view_of_metric,
                                            p,
                                        );
                                    });
                                }
                            }
                        }
                        scrape.add(
                            sink,
                            pp.family,
                            at,
                            sm,
                            m,
                            identity.is_some(),
                            &p.attributes,
                            &scratch,
                        );
                    }
                }
            }
        }
        scrape
    }
}

/// What [`Rollup::gather`] made of a scrape.
enum Gathered<'a> {
    /// The scrape holds attribute lists with a key twice. Equality of attribute lists as the
    /// aggregation tests it (`ottl::attrs_equal`) is then not transitive, so attribute sets
    /// remembered from earlier scrapes could merge points the stages keep apart: the scrape
    /// runs stage by stage.
    Unsuited,
    /// The groups (`None` when no point is kept: every stage leaves the batch empty, and the
    /// tracker untouched), and the points the first filter kept.
    Groups(Option<Scrape<'a>>, usize),
}

impl Plan {
    /// The `made` of the plan of the scope at place `at` (in order), worked out again unless
    /// it was made for a scope with this name and version. `tracked`: whether a tracker
    /// needs the scope's identity.
    fn scope(&mut self, at: usize, scope: &Scope, tracked: bool, buf: &mut Vec<u8>) -> u64 {
        if let Some(s) = self.scopes.get(at)
            && s.name == scope.name
            && s.version == scope.version
        {
            return s.made;
        }
        self.made += 1;
        let plan = ScopePlan {
            name: scope.name.clone(),
            version: scope.version.clone(),
            identity: if tracked {
                CumulativeToDelta::scope_identity(scope, buf)
            } else {
                0
            },
            made: self.made,
        };
        put(&mut self.scopes, at, plan);
        self.made
    }

    /// The plan of metric `m` at place `at` (in order), in the scope planned at `scope`
    /// (made `scope_made`), worked out again unless it was made for a metric with this
    /// name, unit and shape in that scope.
    #[allow(clippy::too_many_arguments)]
    fn metric(
        &mut self,
        at: usize,
        scope: usize,
        scope_made: u64,
        m: &Metric,
        delta: Option<&CumulativeToDelta>,
        sink: &mut Sink,
        buf: &mut Vec<u8>,
    ) -> &MetricPlan {
        let shape = Shape::of(&m.data);
        let valid = self.metrics.get(at).is_some_and(|mp| {
            mp.scope == scope_made && mp.shape == shape && mp.name == m.name && mp.unit == m.unit
        });
        if !valid {
            let target = *self
                .target
                .get_or_insert_with(|| sink.resource(&self.edited, self.edited_hash));
            let scope = &self.scopes[scope];
            self.made += 1;
            let plan = MetricPlan {
                name: m.name.clone(),
                unit: m.unit.clone(),
                shape,
                scope: scope_made,
                identity: delta.filter(|d| d.converts(m)).map(|_| {
                    CumulativeToDelta::metric_identity(scope.identity, m, self.tracker_hash, buf)
                }),
                slot: sink.slot(target, &scope.name, &scope.version, m),
                made: self.made,
            };
            put(&mut self.metrics, at, plan);
        }
        &self.metrics[at]
    }

    /// The index of the plan of point `p` at place `at` (in order) of the metric planned as
    /// `made` with output metric `slot`, worked out again unless it was made for equal
    /// attributes in that metric. `remembered`: the number of point-edit groups run through
    /// the interpreter ([`PointEdit::Remembered`]).
    fn point(
        &mut self,
        at: usize,
        (made, slot): (u64, usize),
        p: &DataPoint,
        remembered: usize,
        sink: &mut Sink,
        buf: &mut Vec<u8>,
    ) -> usize {
        let valid = self
            .points
            .get(at)
            .is_some_and(|pp| pp.metric == made && pp.attributes.same_as(&p.attributes));
        if !valid {
            let hash = ottl::attributes_hash(&p.attributes, buf);
            let plan = PointPlan {
                family: sink.family(slot, &p.attributes, hash),
                attributes: p.attributes.clone(),
                hash,
                metric: made,
                edits: vec![None; remembered],
                tracked: delta::NO_SLOT,
            };
            put(&mut self.points, at, plan);
        }
        at
    }
}

/// Puts `value` at place `at` of `list`, which holds at least `at` values (places are
/// filled in order).
fn put<T>(list: &mut Vec<T>, at: usize, value: T) {
    debug_assert!(at <= list.len(), "place {at} of {}", list.len());
    match list.get_mut(at) {
        Some(slot) => *slot = value,
        None => list.push(value),
    }
}

/// How a point-edit group runs on each point.
#[derive(Debug)]
enum PointEdit {
    /// Its statements, run without the interpreter.
    Native(Vec<ottl::TimeTruncation>),
    /// Through the interpreter, with its last results remembered.
    Remembered(Memo),
}

/// The last few results of a point-edit group, which depend only on the point fields it reads
/// or writes (`fields`): a point that agrees with a remembered one on those fields gets the
/// same result without running the stage.
#[derive(Debug)]
struct Memo {
    fields: PointScalars,
    /// Remembered (fields before, point after), the most recently used first.
    recent: Vec<(MemoKey, Scalars)>,
}

/// The fields of a point a group depends on; the others are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MemoKey {
    time: u64,
    start_time: u64,
    value_kind: u8,
    value: u64,
    flags: u32,
}

/// A point's time, start time, value and flags.
#[derive(Debug, Clone, Copy)]
struct Scalars {
    time: Timestamp,
    start_time: Timestamp,
    value: NumberValue,
    flags: u32,
}

impl Memo {
    const SIZE: usize = 8;

    fn new(fields: PointScalars) -> Self {
        Self {
            fields,
            recent: Vec::with_capacity(Self::SIZE),
        }
    }

    fn key(&self, p: &DataPoint) -> MemoKey {
        let has = |f: PointScalars| self.fields.contains(f);
        let (value_kind, value) = match p.value {
            _ if !has(PointScalars::VALUE) => (0, 0),
            NumberValue::Int(i) => (1, i.cast_unsigned()),
            NumberValue::Double(d) => (2, d.to_bits()),
        };
        MemoKey {
            time: if has(PointScalars::TIME) {
                p.time.as_nanos()
            } else {
                0
            },
            start_time: if has(PointScalars::START_TIME) {
                p.start_time.as_nanos()
            } else {
                0
            },
            value_kind,
            value,
            flags: if has(PointScalars::FLAGS) { p.flags } else { 0 },
        }
    }

    /// Runs the group (`stage`) on `p`, or does what it did to a point with the same fields:
    /// the one at the same place at the last scrape (`last`, updated), or a recent one.
    fn apply(
        &mut self,
        p: &mut DataPoint,
        last: &mut Option<(MemoKey, Scalars)>,
        stage: impl FnOnce(&mut DataPoint),
    ) {
        let key = self.key(p);
        let after = match last {
            Some((k, after)) if *k == key => *after,
            _ => {
                let after = self.recent(p, key, stage);
                *last = Some((key, after));
                after
            }
        };
        let f = self.fields;
        if f.contains(PointScalars::TIME) {
            p.time = after.time;
        }
        if f.contains(PointScalars::START_TIME) {
            p.start_time = after.start_time;
        }
        if f.contains(PointScalars::VALUE) {
            p.value = after.value;
        }
        if f.contains(PointScalars::FLAGS) {
            p.flags = after.flags;
        }
    }

    /// What the group does to `p` (whose fields are `key`), remembered among recent points.
    fn recent(
        &mut self,
        p: &mut DataPoint,
        key: MemoKey,
        stage: impl FnOnce(&mut DataPoint),
    ) -> Scalars {
        if let Some(i) = self.recent.iter().position(|(k, _)| *k == key) {
            self.recent[..=i].rotate_right(1);
            return self.recent[0].1;
        }
        stage(p);
        let after = Scalars {
            time: p.time,
            start_time: p.start_time,
            value: p.value,
            flags: p.flags,
        };
        if self.recent.len() == Self::SIZE {
            self.recent.pop();
        }
        self.recent.insert(0, (key, after));
        after
    }
}

fn op_stage(op: Op) -> usize {
    match op {
        Op::Filter(i) | Op::Delta(i) | Op::KeyEdits(i) | Op::PointEdits(i) => i,
    }
}

/// The aggregation's output resources, metrics and attribute sets, kept across scrapes: found
/// once per plan, they are only marked at each scrape ([`Scrape`]) as points reach them.
#[derive(Debug, Default)]
struct Sink {
    resources: Vec<OutResource>,
    /// Resources by attribute hash, as `groupbyattrs` finds them.
    resource_index: PrehashedMap<u64, Vec<usize>>,
    slots: Vec<Slot>,
    families: Vec<Family>,
    /// Attribute sets by a hash of their slot and attributes.
    family_index: PrehashedMap<u64, Vec<usize>>,
    /// The scrape being run, counted from 1.
    stamp: u64,
    /// Resources that points reached, and attribute sets points came in for, at the last
    /// scrape that had points.
    touched: usize,
    /// The last scrape's number of groups, and its list of values (emptied) to reuse.
    groups: usize,
    values: Vec<(NumberValue, usize)>,
    /// Relabellings worked out so far.
    tails: u64,
}

/// An output resource.
#[derive(Debug)]
struct OutResource {
    attributes: Attributes,
    /// Its scopes' names and versions, each with the scrape that last output it and where.
    scopes: Vec<(String, String, u64, usize)>,
    /// Its output metrics.
    slots: Vec<usize>,
    /// The scrape that last output it, and where.
    stamp: u64,
    at: usize,
    /// What the stages after the aggregation make of it, when they relabel resources.
    tail: Tail,
}

/// What the relabelling after the aggregation makes of an output resource.
#[derive(Debug)]
struct Tail {
    /// The attributes it was worked out for, as the resource had them (in order).
    source: Vec<KeyValue>,
    /// The attributes as exported, and their key.
    attributes: Attributes,
    key: ResourceKey,
    /// Tells this relabelling from others; 0 until one is worked out.
    made: u64,
}

impl Tail {
    fn unset() -> Self {
        let attributes = Attributes::new();
        Self {
            source: Vec::new(),
            key: ResourceKey::new(&attributes),
            attributes,
            made: 0,
        }
    }
}

/// An output metric.
#[derive(Debug)]
struct Slot {
    resource: usize,
    scope: usize,
    name: MetricName,
    kind: phoenix_core::telemetry::schema::MetricKind,
    /// The scrape that last output it, and where (resource, scope and metric place).
    stamp: u64,
    at: (usize, usize, usize),
    /// Whether points group by start time too (delta sums), at that scrape.
    by_start: bool,
}

/// The points of one output metric with equal attributes.
#[derive(Debug)]
struct Family {
    slot: usize,
    attributes: Attributes,
    /// The scrape that last gave it a group, and the latest group it got then.
    stamp: u64,
    last: usize,
    /// The last scrape a point of it came in (whether or not the point stayed).
    referenced: u64,
    /// Its series key after a relabelling (by [`Tail::made`]), and the encoded size of its
    /// attributes.
    exported: Option<(u64, SeriesKey, usize)>,
}

impl Sink {
    /// The output resource with the attributes `view` lists (whose hash is `key`), created
    /// when missing.
    fn resource(&mut self, view: &[KeyValue], key: u64) -> usize {
        let list = self.resource_index.entry(key).or_default();
        let same = |stored: &Attributes| {
            stored.len() == view.len()
                && stored.iter().all(|kv| {
                    view.iter()
                        .find(|x| x.key == kv.key)
                        .is_some_and(|x| x.value == kv.value)
                })
        };
        if let Some(&i) = list.iter().find(|&&i| same(&self.resources[i].attributes)) {
            return i;
        }
        list.push(self.resources.len());
        self.resources.push(OutResource {
            attributes: Attributes::from(view.to_vec()),
            scopes: Vec::new(),
            slots: Vec::new(),
            stamp: 0,
            at: 0,
            tail: Tail::unset(),
        });
        self.resources.len() - 1
    }

    /// The output metric matching `m` (name and type) in the scope named `scope` at
    /// `version` of output resource `target`, created when missing.
    fn slot(&mut self, target: usize, scope: &str, version: &str, m: &Metric) -> usize {
        let resource = &mut self.resources[target];
        let si = match resource
            .scopes
            .iter()
            .position(|s| s.0 == scope && s.1 == version)
        {
            Some(i) => i,
            None => {
                resource
                    .scopes
                    .push((scope.to_owned(), version.to_owned(), 0, 0));
                resource.scopes.len() - 1
            }
        };
        let kind = m.data.kind();
        if let Some(&slot) = resource.slots.iter().find(|&&s| {
            let s = &self.slots[s];
            s.scope == si && s.kind == kind && s.name == m.name
        }) {
            return slot;
        }
        resource.slots.push(self.slots.len());
        self.slots.push(Slot {
            resource: target,
            scope: si,
            name: m.name.clone(),
            kind,
            stamp: 0,
            at: (0, 0, 0),
            by_start: false,
        });
        self.slots.len() - 1
    }

    /// The attribute set `attributes` (hashing to `hash`) of output metric `slot`, created
    /// when missing.
    fn family(&mut self, slot: usize, attributes: &Attributes, hash: u64) -> usize {
        let key = hash ^ (slot as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let list = self.family_index.entry(key).or_default();
        if let Some(&f) = list.iter().find(|&&f| {
            let f = &self.families[f];
            f.slot == slot && ottl::attrs_equal(&f.attributes, attributes)
        }) {
            return f;
        }
        list.push(self.families.len());
        self.families.push(Family {
            slot,
            attributes: attributes.clone(),
            stamp: 0,
            last: 0,
            referenced: 0,
            exported: None,
        });
        self.families.len() - 1
    }

    /// What the relabelling `stages` make of output resource `resource`, whose attributes
    /// are `attributes` at this scrape.
    fn tail(&mut self, resource: usize, attributes: &[KeyValue], stages: &[Stage]) -> &Tail {
        let tail = &mut self.resources[resource].tail;
        if tail.made == 0 || tail.source != attributes {
            self.tails += 1;
            let exported =
                Relabel::attributes_after(stages, &Attributes::from(attributes.to_vec()));
            *tail = Tail {
                source: attributes.to_vec(),
                key: ResourceKey::new(&exported),
                attributes: exported,
                made: self.tails,
            };
        }
        tail
    }

    /// Whether most of what the sink holds went unused at the last scrape.
    fn is_mostly_stale(&self) -> bool {
        let held = self.resources.len() + self.families.len();
        held > 4096 && held > 4 * self.touched
    }
}

/// The output of one scrape, gathered as points arrive: the output resources, scopes and
/// metrics in the order points first reach them, and one group per output metric, attribute
/// set and time (and start time, for delta sums), in the order the stages create them.
struct Scrape<'a> {
    stamp: u64,
    resources: Vec<ResourceOut<'a>>,
    /// The number of output metrics so far.
    metrics: usize,
    groups: Vec<Group<'a>>,
    /// Every group's values, each with the place of the group's next value.
    values: Vec<(NumberValue, usize)>,
    touched: usize,
}

/// An output resource of the scrape.
struct ResourceOut<'a> {
    /// In the sink.
    resource: usize,
    /// The plan (among the scrape's) of the first resource that reached it, whose edited
    /// attributes it has.
    plan: usize,
    scopes: Vec<ScopeOut<'a>>,
}

/// An output scope of the scrape, with the scope of the first point that reached it.
struct ScopeOut<'a> {
    scope: &'a Scope,
    metrics: Vec<MetricOut<'a>>,
}

/// An output metric of the scrape, made from the metric of the first point that reached it
/// (`converted`: by the tracker).
struct MetricOut<'a> {
    metric: &'a Metric,
    converted: bool,
    /// Its place among the scrape's output metrics.
    index: usize,
}

impl MetricOut<'_> {
    /// The output metric, without points (the aggregation drops the metadata).
    fn build(&self) -> Metric {
        let m = self.metric;
        let data = match &m.data {
            MetricData::Gauge { .. } => MetricData::Gauge { points: Vec::new() },
            MetricData::Sum {
                temporality,
                monotonic,
                ..
            } => MetricData::Sum {
                points: Vec::new(),
                temporality: self.temporality(*temporality),
                monotonic: *monotonic,
            },
        };
        Metric {
            name: m.name.clone(),
            description: m.description.clone(),
            unit: m.unit.clone(),
            metadata: Attributes::new(),
            data,
        }
    }

    fn temporality(&self, input: Temporality) -> Temporality {
        if self.converted {
            Temporality::Delta
        } else {
            input
        }
    }

    /// Whether its points group by start time too (delta sums).
    fn by_start(&self) -> bool {
        match &self.metric.data {
            MetricData::Gauge { .. } => false,
            MetricData::Sum { temporality, .. } => {
                self.temporality(*temporality) == Temporality::Delta
            }
        }
    }

    /// What the output metric adds to its scope's encoding, with points that add
    /// `points_len`.
    fn encoded_len(&self, points_len: usize, no_metadata: &Attributes) -> usize {
        let m = self.metric;
        let header = otlp::MetricHeader {
            name: m.name.as_str(),
            description: &m.description,
            unit: &m.unit,
            metadata: no_metadata,
            sum: match &m.data {
                MetricData::Gauge { .. } => None,
                MetricData::Sum {
                    temporality,
                    monotonic,
                    ..
                } => Some((self.temporality(*temporality), *monotonic)),
            },
        };
        otlp::metric_encoded_len(&header, points_len)
    }
}

/// One aggregation group: its first point (whose attributes it keeps), and its values.
struct Group<'a> {
    /// Where its metric is in the output: resource, scope and metric place.
    at: (usize, usize, usize),
    family: usize,
    first: DataPoint,
    attributes: &'a Attributes,
    /// The group created before it in the same attribute set at this scrape.
    previous: Option<usize>,
    /// The places of its first and last value in [`Scrape::values`].
    head: usize,
    tail: usize,
}

impl Group<'_> {
    /// The merged point.
    fn point(
        &self,
        values: &[(NumberValue, usize)],
        function: AggregationFunction,
        scratch: &mut Vec<NumberValue>,
    ) -> DataPoint {
        scratch.clear();
        let mut next = self.head;
        while let Some(&(value, after)) = values.get(next) {
            scratch.push(value);
            next = after;
        }
        let mut point = DataPoint {
            attributes: self.attributes.clone(),
            ..self.first
        };
        point.value = ottl::merge_values(point.value, scratch, function);
        point
    }
}

/// The end of a list of values.
const NO_VALUE: usize = usize::MAX;

impl<'a> Scrape<'a> {
    fn new(sink: &mut Sink) -> Self {
        sink.stamp += 1;
        let mut values = std::mem::take(&mut sink.values);
        values.clear();
        Self {
            stamp: sink.stamp,
            resources: Vec::with_capacity(sink.resources.len()),
            metrics: 0,
            groups: Vec::with_capacity(sink.groups),
            values,
            touched: 0,
        }
    }

    /// Adds a point with attributes `attributes` (of attribute set `family`) and the time,
    /// start time, value and flags of `scalars` to its group. The point came from metric `m`
    /// of scope `sm` (`converted`: by the tracker) of a resource planned at `plan`: they make
    /// the output resource, scope and metric when the point is the first to reach them at
    /// this scrape.
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        sink: &mut Sink,
        family: usize,
        plan: usize,
        sm: &'a ScopeMetrics,
        m: &'a Metric,
        converted: bool,
        attributes: &'a Attributes,
        scalars: &DataPoint,
    ) {
        let stamp = self.stamp;
        let f = &sink.families[family];
        let slot = f.slot;
        if f.stamp == stamp {
            let by_start = sink.slots[slot].by_start;
            let mut next = Some(f.last);
            while let Some(g) = next {
                let group = &mut self.groups[g];
                if group.first.time == scalars.time
                    && (!by_start || group.first.start_time == scalars.start_time)
                {
                    if scalars.start_time < group.first.start_time {
                        group.first.start_time = scalars.start_time;
                    }
                    self.values.push((scalars.value, NO_VALUE));
                    let v = self.values.len() - 1;
                    self.values[group.tail].1 = v;
                    group.tail = v;
                    return;
                }
                next = group.previous;
            }
        }
        let at = self.place(sink, slot, plan, sm, m, converted);
        let f = &mut sink.families[family];
        let previous = if f.stamp == stamp {
            Some(f.last)
        } else {
            f.stamp = stamp;
            None
        };
        f.last = self.groups.len();
        self.values.push((scalars.value, NO_VALUE));
        let v = self.values.len() - 1;
        self.groups.push(Group {
            at,
            family,
            first: DataPoint {
                attributes: Attributes::new(),
                ..*scalars
            },
            attributes,
            previous,
            head: v,
            tail: v,
        });
    }

    /// Where output metric `slot` is in the output, put there (after its resource and scope,
    /// when they are not there yet) from the point's resource, scope and metric.
    fn place(
        &mut self,
        sink: &mut Sink,
        slot: usize,
        plan: usize,
        sm: &'a ScopeMetrics,
        m: &'a Metric,
        converted: bool,
    ) -> (usize, usize, usize) {
        let stamp = self.stamp;
        let s = &sink.slots[slot];
        if s.stamp == stamp {
            return s.at;
        }
        let resource = &mut sink.resources[s.resource];
        if resource.stamp != stamp {
            self.touched += 1;
            resource.stamp = stamp;
            resource.at = self.resources.len();
            self.resources.push(ResourceOut {
                resource: s.resource,
                plan,
                scopes: Vec::with_capacity(resource.scopes.len()),
            });
        }
        let out = &mut self.resources[resource.at];
        let scope = &mut resource.scopes[s.scope];
        if scope.2 != stamp {
            scope.2 = stamp;
            scope.3 = out.scopes.len();
            out.scopes.push(ScopeOut {
                scope: &sm.scope,
                // As many as the input scope has, most likely.
                metrics: Vec::with_capacity(sm.metrics.len()),
            });
        }
        let metrics = &mut out.scopes[scope.3].metrics;
        let metric = MetricOut {
            metric: m,
            converted,
            index: self.metrics,
        };
        self.metrics += 1;
        let by_start = metric.by_start();
        metrics.push(metric);
        let at = (resource.at, scope.3, metrics.len() - 1);
        let s = &mut sink.slots[slot];
        s.stamp = stamp;
        s.at = at;
        s.by_start = by_start;
        at
    }

    /// Notes that a point of attribute set `family` came in (it may not stay).
    fn reference(&mut self, sink: &mut Sink, family: usize) {
        let f = &mut sink.families[family];
        if f.referenced != self.stamp {
            f.referenced = self.stamp;
            self.touched += 1;
        }
    }

    /// Ends the scrape in the sink.
    fn settle(&mut self, sink: &mut Sink) {
        sink.touched = self.touched;
        sink.groups = self.groups.len();
    }

    /// The output resource `r` with its scopes and metrics, without points, with
    /// `attributes`.
    fn build(&self, r: usize, attributes: Attributes) -> Resource {
        let mut out = Resource::new(attributes);
        out.scopes = self.resources[r]
            .scopes
            .iter()
            .map(|s| ScopeMetrics {
                scope: s.scope.clone(),
                metrics: s.metrics.iter().map(MetricOut::build).collect(),
                ..ScopeMetrics::default()
            })
            .collect();
        out
    }

    /// The aggregation's output.
    fn finish(
        mut self,
        sink: &mut Sink,
        plans: &ResourceMemo<Plan>,
        function: AggregationFunction,
    ) -> Snapshot {
        self.settle(sink);
        let mut out: Vec<Resource> = (0..self.resources.len())
            .map(|r| {
                let edited = plans.get(self.resources[r].plan).map(|p| p.edited.clone());
                self.build(r, Attributes::from(edited.unwrap_or_default()))
            })
            .collect();
        let mut scratch = Vec::new();
        for group in &self.groups {
            let (r, s, m) = group.at;
            let point = group.point(&self.values, function, &mut scratch);
            out[r].scopes[s].metrics[m].data.points_mut().push(point);
        }
        sink.values = self.values;
        Snapshot::new(out)
    }

    /// What the relabelling `stages` export of the aggregation's output, counted without
    /// building it; the resources to copy (when `copy`, those whose attributes as exported
    /// satisfy `keep`) are built.
    fn finish_relabelled(
        mut self,
        sink: &mut Sink,
        plans: &ResourceMemo<Plan>,
        function: AggregationFunction,
        stages: &[Stage],
        copy: bool,
        keep: &dyn Fn(&Attributes) -> bool,
    ) -> Exported {
        self.settle(sink);
        let mut exported = Exported {
            resources: self.resources.len(),
            points: self.groups.len(),
            first_filter_points: 0,
            series: Vec::with_capacity(self.groups.len()),
            bytes: 0,
            data: copy.then(Snapshot::default),
        };
        // Per output resource: its relabelling, and where it is among the copies.
        let mut tails = Vec::with_capacity(self.resources.len());
        for r in 0..self.resources.len() {
            let ResourceOut { resource, plan, .. } = self.resources[r];
            let edited = plans.get(plan).map_or(&[][..], |p| p.edited.as_slice());
            let tail = sink.tail(resource, edited, stages);
            let copied = match &mut exported.data {
                Some(data) if keep(&tail.attributes) => {
                    data.resources.push(self.build(r, tail.attributes.clone()));
                    Some(data.resources.len() - 1)
                }
                _ => None,
            };
            tails.push((tail.made, tail.key, copied));
        }
        let mut points_len = vec![0_usize; self.metrics];
        let mut scratch = Vec::new();
        for group in &self.groups {
            let (r, s, m) = group.at;
            let (made, key, copied) = tails[r];
            let metric = &self.resources[r].scopes[s].metrics[m];
            let family = &mut sink.families[group.family];
            let (series, attributes_len) = match family.exported {
                Some((from, series, len))
                    if from == made && family.attributes.same_as(group.attributes) =>
                {
                    (series, len)
                }
                _ => {
                    let series = key.metric(&metric.metric.name).series(group.attributes);
                    let len = otlp::attributes_encoded_len(group.attributes);
                    if family.attributes.same_as(group.attributes) {
                        family.exported = Some((made, series, len));
                    }
                    (series, len)
                }
            };
            exported.series.push(series);
            points_len[metric.index] += otlp::point_encoded_len_with(&group.first, attributes_len);
            if let (Some(c), Some(data)) = (copied, &mut exported.data) {
                let point = group.point(&self.values, function, &mut scratch);
                data.resources[c].scopes[s].metrics[m]
                    .data
                    .points_mut()
                    .push(point);
            }
        }
        let no_metadata = Attributes::new();
        for out in &self.resources {
            let scopes = out
                .scopes
                .iter()
                .map(|s| {
                    let metrics = s
                        .metrics
                        .iter()
                        .map(|m| m.encoded_len(points_len[m.index], &no_metadata))
                        .sum();
                    otlp::scope_metrics_encoded_len(s.scope, "", metrics)
                })
                .sum();
            let tail = &sink.resources[out.resource].tail;
            exported.bytes += otlp::resource_metrics_encoded_len(&tail.attributes, 0, "", scopes);
        }
        sink.values = self.values;
        exported
    }
}

#[cfg(test)]
mod tests {
    use phoenix_core::experiment::ProfilePreset;

    use crate::catalog::{TemplateId, render};
    use crate::config::Config;
    use crate::emulator::Emulator;

    fn template(t: TemplateId, critical: bool) -> Config {
        let params = if critical {
            serde_json::json!({
                "criticalProcesses": ["^systemd$", "^sshd$", "^postgres$"],
                "experimentId": "exp-rollup01",
            })
        } else {
            serde_json::json!({"experimentId": "exp-rollup01"})
        };
        let serde_json::Value::Object(params) = params else {
            panic!("an object")
        };
        render(t, &params).unwrap()
    }

    /// A config with the other shapes a rollup takes: key edits before the tracker (which
    /// then hashes the edited attributes), `initial_value: auto`, point edits reading and
    /// writing values, pass-through stages in between, another aggregation function.
    const SHAPES: &str = r#"
receivers:
  otlp:
    protocols:
      grpc: {}
processors:
  batch: {}
  filter/a:
    metrics:
      resource:
        - 'attributes["process.pid"] == 3'
  filter/b:
    metrics:
      datapoint:
        - 'IsMatch(resource.attributes["process.executable.name"], "^kworker")'
  transform/keys:
    metric_statements:
      - context: resource
        statements:
          - 'delete_matching_keys(attributes, "^process\\.(command|owner)")'
          - 'keep_keys(attributes, ["process.executable.name", "process.pid", "process.command_line"])'
  cumulativetodelta: {}
  transform/values:
    metric_statements:
      - context: datapoint
        conditions:
          - 'datapoint.value_double > 1.0'
        statements:
          - 'set(datapoint.value_double, datapoint.value_double)'
      - 'set(datapoint.time, TruncateTime(datapoint.time, Duration("60s")))'
  transform/strip:
    metric_statements:
      - 'delete_key(resource.attributes, "process.pid")'
      - 'delete_key(resource.attributes, "process.command_line")'
  groupbyattrs: {}
  transform/max:
    metric_statements:
      - context: metric
        statements:
          - 'aggregate_on_attributes("max")'
exporters:
  debug: {}
  otlp:
    endpoint: localhost:4317
service:
  pipelines:
    metrics/rolled:
      receivers: [otlp]
      processors: [filter/a, batch, filter/b, transform/keys, cumulativetodelta, transform/strip, transform/values, groupbyattrs, batch, transform/max, batch]
      exporters: [debug, otlp]
    metrics/plain:
      receivers: [otlp]
      processors: [filter/a]
      exporters: [otlp]
"#;

    fn snapshots(preset: ProfilePreset, scrapes: usize) -> Vec<phoenix_core::telemetry::Snapshot> {
        let profile = phoenix_sim::Profile::preset(preset);
        let mut sim =
            phoenix_sim::Simulator::new(&profile, phoenix_sim::SimConfig::default()).unwrap();
        (0..scrapes).map(|_| sim.next_snapshot().clone()).collect()
    }

    /// Runs `config` over the workload three ways (rolled up and reading the snapshot, rolled
    /// up and owning it, stage by stage) and checks the outputs are identical.
    fn assert_same(config: &Config, workload: &[phoenix_core::telemetry::Snapshot]) -> bool {
        let mut rolled = Emulator::new(config).unwrap();
        let mut owning = Emulator::new(config).unwrap();
        let mut staged = Emulator::new(config).unwrap();
        let used = rolled.pipelines.iter().any(|p| p.rollup.is_some());
        for p in &mut staged.pipelines {
            p.rollup = None;
            p.relabel = None;
            p.tail_relabels = false;
        }
        for (i, s) in workload.iter().enumerate() {
            let expected = staged.process(s).unwrap().clone();
            let got = rolled.process(s).unwrap();
            assert_eq!(got, &expected, "scrape {i}");
            assert_eq!(
                owning.process_owned(s.clone()).unwrap(),
                &expected,
                "scrape {i}"
            );
        }
        used
    }

    #[test]
    fn rollups_give_what_the_stages_give() {
        let workloads = [
            snapshots(ProfilePreset::Realistic, 6),
            snapshots(ProfilePreset::HighChurn, 6),
            snapshots(ProfilePreset::Chaos, 6),
            snapshots(ProfilePreset::HighCardinality, 2),
        ];
        let mut configs: Vec<Config> = TemplateId::ALL
            .iter()
            .flat_map(|t| [template(*t, false), template(*t, true)])
            .collect();
        configs.push(Config::from_yaml(SHAPES).unwrap());
        // A filter after the aggregation: the rollup then leaves the rest to the stages.
        configs.push(
            Config::from_yaml(
                &SHAPES
                    .replace(
                        "  groupbyattrs: {}\n",
                        "  groupbyattrs: {}\n  filter/after:\n    metrics:\n      resource:\n        - 'attributes[\"process.executable.name\"] == \"systemd\"'\n",
                    )
                    .replace("transform/max, batch]", "transform/max, filter/after, batch]"),
            )
            .unwrap(),
        );
        let mut used = 0;
        for config in &configs {
            for workload in &workloads {
                if assert_same(config, workload) {
                    used += 1;
                }
            }
        }
        // The aggregated template (twice) and the two shapes configs, over every workload.
        assert!(used >= 4 * workloads.len(), "{used}");
    }

    /// The exporters' byte counts come from `encoded_len`: it must be the length of the
    /// encoding, on the hand-written fixture, on simulator output and on what templates
    /// export.
    #[test]
    fn encoded_len_is_the_length_of_the_encoding() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/workload-small.jsonl");
        let fixture = crate::predict::Workload::from_recording(&path).unwrap();
        let mut inputs: Vec<_> = fixture.snapshots().collect();
        inputs.extend(snapshots(ProfilePreset::Chaos, 3));
        inputs.extend(snapshots(ProfilePreset::HighCardinality, 1));
        for t in TemplateId::ALL {
            let mut emulator = Emulator::new(&template(t, true)).unwrap();
            let mut outputs = Vec::new();
            for s in &inputs {
                for e in emulator.process(s).unwrap().exporters.values() {
                    assert_eq!(
                        e.bytes,
                        phoenix_core::otlp::encode_protobuf(&e.snapshot).len()
                    );
                    outputs.push(e.snapshot.clone());
                }
            }
            inputs.extend(outputs);
        }
        for s in &inputs {
            assert_eq!(
                phoenix_core::otlp::encoded_len(s),
                phoenix_core::otlp::encode_protobuf(s).len()
            );
        }
    }

    /// Changes a scrape as processes and producers might: resources dropped, moved,
    /// duplicated, emptied, given empty scopes or metrics without points, metrics changing
    /// unit or shape, point attributes changing, attribute lists holding a key twice.
    fn perturb(s: &mut phoenix_core::telemetry::Snapshot, edits: &[(u8, u16)]) {
        use phoenix_core::telemetry::{
            Attributes, KeyValue, MetricData, ScopeMetrics, Temporality,
        };
        for &(kind, at) in edits {
            let n = s.resources.len();
            if n == 0 {
                return;
            }
            let i = usize::from(at) % n;
            match kind {
                0 => {
                    s.resources.remove(i);
                }
                1 => s.resources.swap(i, (i * 7 + 3) % n),
                2 => {
                    let copy = s.resources[i].clone();
                    s.resources.insert((i * 5 + 1) % n, copy);
                }
                3 => s.resources[i].scopes.push(ScopeMetrics::default()),
                4 => {
                    if let Some(m) = s.resources[i]
                        .scopes
                        .iter_mut()
                        .flat_map(|sc| sc.metrics.iter_mut())
                        .nth(usize::from(at) % 5)
                    {
                        m.data.points_mut().clear();
                    }
                }
                5 => s.resources[i].scopes.clear(),
                // A metric that keeps its name but changes unit or shape, and a point whose
                // attributes change: what was planned for them no longer holds.
                6..=8 => {
                    let Some(m) = s.resources[i]
                        .scopes
                        .iter_mut()
                        .flat_map(|sc| sc.metrics.iter_mut())
                        .nth(usize::from(at) % 5)
                    else {
                        continue;
                    };
                    match (kind, &mut m.data) {
                        (6, _) => m.unit.push('x'),
                        (7, MetricData::Sum { monotonic, .. }) => *monotonic = !*monotonic,
                        (7, data) => {
                            *data = MetricData::Sum {
                                points: std::mem::take(data.points_mut()),
                                temporality: Temporality::Cumulative,
                                monotonic: true,
                            }
                        }
                        (_, data) => {
                            if let Some(p) = data.points_mut().first_mut() {
                                p.attributes.insert("state", "perturbed");
                            }
                        }
                    }
                }
                // A key twice, in a point's attributes and in the resource's.
                9 => {
                    let r = &mut s.resources[i];
                    let twice = |a: &Attributes| {
                        let mut pairs: Vec<KeyValue> = a.iter().cloned().collect();
                        if let Some(first) = pairs.first().cloned() {
                            pairs.push(first);
                        }
                        Attributes::from(pairs)
                    };
                    r.attributes = twice(&r.attributes);
                    if let Some(p) = r
                        .scopes
                        .iter_mut()
                        .flat_map(|sc| sc.metrics.iter_mut())
                        .flat_map(|m| m.data.points_mut().iter_mut())
                        .find(|p| !p.attributes.is_empty())
                    {
                        p.attributes = twice(&p.attributes);
                    }
                }
                _ => {
                    let last = s.resources.remove(n - 1);
                    s.resources.insert(0, last);
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        /// The fast paths (rollup, relabelling, remembered resources) give exactly what the
        /// stages give, over random simulator workloads changed at random between scrapes.
        #[test]
        fn fast_paths_give_what_the_stages_give_on_random_workloads(
            seed in proptest::prelude::any::<u64>(),
            preset in 0_usize..4,
            processes in 3_u32..40,
            config in 0_usize..11,
            scrapes in proptest::collection::vec(
                proptest::collection::vec((0_u8..11, proptest::prelude::any::<u16>()), 0..4),
                2..6,
            ),
        ) {
            let preset = [
                ProfilePreset::Realistic,
                ProfilePreset::HighChurn,
                ProfilePreset::Chaos,
                ProfilePreset::HighCardinality,
            ][preset];
            let profile = phoenix_sim::Profile::preset(preset).with_processes(processes).unwrap();
            let sim_config = phoenix_sim::SimConfig {
                seed,
                ..phoenix_sim::SimConfig::default()
            };
            let mut sim = phoenix_sim::Simulator::new(&profile, sim_config).unwrap();
            let workload: Vec<_> = scrapes
                .iter()
                .map(|edits| {
                    let mut s = sim.next_snapshot().clone();
                    perturb(&mut s, edits);
                    s
                })
                .collect();
            let config = match config {
                10 => Config::from_yaml(SHAPES).unwrap(),
                i => template(TemplateId::ALL[i / 2], i % 2 == 0),
            };
            assert_same(&config, &workload);
        }
    }

    #[test]
    fn other_shapes_are_not_rolled_up() {
        let config = Config::from_yaml(
            &SHAPES.replace("groupbyattrs: {}", "groupbyattrs:\n    keys: [state]"),
        )
        .unwrap();
        let emulator = Emulator::new(&config).unwrap();
        assert!(emulator.pipelines.iter().all(|p| p.rollup.is_none()));
        let workload = snapshots(ProfilePreset::Realistic, 3);
        assert!(!assert_same(&config, &workload));
    }
}
