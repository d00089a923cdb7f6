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
//! What the filters and key edits make of a resource depends on its attributes only, and
//! processes persist from one scrape to the next: [`Rollup`] remembers it per resource
//! ([`KnownResources`]), and uses it again only for equal attributes.

use phoenix_core::telemetry::{
    Attributes, DataPoint, KeyValue, Metric, MetricData, NumberValue, Resource, Scope,
    ScopeMetrics, Snapshot, Temporality,
};

use super::delta::CumulativeToDelta;
use super::stage::{FilterStage, Stage, TransformGroup};
use crate::ottl::{self, AggregationFunction, MetricView, PointScalars, PrehashedMap};

/// A pipeline segment run as one pass; see the module documentation.
#[derive(Debug)]
pub(crate) struct Rollup {
    /// The stages before the `groupbyattrs`, by index in the pipeline, in order.
    ops: Vec<Op>,
    /// The index of the first stage after the aggregation.
    end: usize,
    function: AggregationFunction,
    /// What the stages made of each resource seen at the last scrape.
    known: KnownResources,
}

/// What the filters and key edits make of resources, remembered from one scrape to the
/// next: processes persist with the same attributes, and everything the segment does to a
/// resource's attributes depends on those attributes only. An entry is used only when the
/// attributes are equal to the ones it was made from.
#[derive(Debug, Default)]
struct KnownResources {
    /// By hash of the resource attributes as received.
    entries: PrehashedMap<u64, Known>,
    /// The hash each place of the previous scrape's input was looked up with: a resource at
    /// the same place with attributes equal to that entry's needs no hashing.
    by_place: Vec<u64>,
    /// The scrape being run, counted from 1.
    scrape: u64,
}

/// What the segment makes of one resource.
#[derive(Debug)]
struct Known {
    /// The attributes as received.
    attributes: Attributes,
    /// Whether the first filter keeps it (true when there is none).
    first_keeps: bool,
    /// Whether every filter keeps it.
    keeps: bool,
    /// The tracker's hash of the attributes as the tracker sees them (0 without tracker).
    tracker_hash: u64,
    /// The attributes after every key edit, and their hash.
    edited: Vec<KeyValue>,
    edited_hash: u64,
    /// The last scrape that saw it.
    seen: u64,
}

/// Where the decisions for one resource of the current scrape are.
#[derive(Clone, Copy)]
enum KnownAt {
    /// In [`KnownResources::entries`], under this hash.
    Entry(u64),
    /// In the scrape's own list, at this index (a hash shared with another resource).
    Local(usize),
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
                        known: KnownResources::default(),
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
    pub(crate) fn run(&mut self, stages: &mut [Stage], input: &Snapshot) -> (Snapshot, usize) {
        let (kept, local, first_filter_points) = self.judge(stages, input);
        let known = &self.known.entries;
        let kept: Vec<(&Resource, &Known)> = kept
            .into_iter()
            .filter_map(|(r, at)| match at {
                KnownAt::Entry(h) => known.get(&h).map(|k| (r, k)),
                KnownAt::Local(i) => local.get(i).map(|k| (r, k)),
            })
            .collect();
        let Some(now) = kept
            .iter()
            .flat_map(|(r, _)| r.metrics())
            .flat_map(|m| m.data.points())
            .map(|p| p.time)
            .max()
        else {
            // No points: every stage leaves the batch empty, and the tracker untouched.
            return (Snapshot::default(), first_filter_points);
        };
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
        let out = Self::run_points(
            &self.ops,
            self.function,
            stages,
            kept,
            delta.as_deref_mut(),
            now,
        );
        if let (Some(i), Some(d)) = (delta_at, delta) {
            stages[i] = Stage::CumulativeToDelta(d);
        }
        (out, first_filter_points)
    }

    /// The resources of `input` that the filters keep, each with where the segment's
    /// decisions about it are (remembered ones when its attributes were seen before), the
    /// decisions made for resources whose hash another one holds, and the number of points
    /// the first filter keeps.
    fn judge<'a>(
        &mut self,
        stages: &[Stage],
        input: &'a Snapshot,
    ) -> (Vec<(&'a Resource, KnownAt)>, Vec<Known>, usize) {
        let mut filters: Vec<&FilterStage> = Vec::new();
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
        let mut decide = |attributes: &Attributes, scrape: u64| {
            let mut filters = filters.iter();
            let first_keeps = filters.next().is_none_or(|f| f.keeps_resource(attributes));
            let keeps = first_keeps && filters.all(|f| f.keeps_resource(attributes));
            let (mut tracker_hash, mut edited, mut edited_hash) = (0, Vec::new(), 0);
            if keeps {
                let mut view: Vec<&KeyValue> = attributes.iter().collect();
                for edit in &edits_before_delta {
                    edit.apply(&mut view);
                }
                if tracked {
                    tracker_hash = ottl::key_values_hash(view.iter().copied(), &mut buf);
                }
                for edit in &edits {
                    edit.apply(&mut view);
                }
                edited = view.iter().map(|kv| (*kv).clone()).collect();
                edited_hash = ottl::key_values_hash(edited.iter(), &mut buf);
            }
            Known {
                attributes: attributes.clone(),
                first_keeps,
                keeps,
                tracker_hash,
                edited,
                edited_hash,
                seen: scrape,
            }
        };
        self.known.scrape += 1;
        let scrape = self.known.scrape;
        let entries = &mut self.known.entries;
        let (mut kept, mut local, mut first_filter_points) = (Vec::new(), Vec::new(), 0);
        let mut hash_buf = Vec::with_capacity(256);
        let by_place = std::mem::take(&mut self.known.by_place);
        let mut places = Vec::with_capacity(input.resources.len());
        for (i, r) in input.resources.iter().enumerate() {
            // Equal to the entry the resource at this place had last time: no hashing, and
            // no second comparison.
            let placed = by_place
                .get(i)
                .copied()
                .filter(|h| entries.get(h).is_some_and(|k| k.attributes == r.attributes));
            let hash =
                placed.unwrap_or_else(|| ottl::attributes_hash(&r.attributes, &mut hash_buf));
            places.push(hash);
            let (known, at) = match entries.entry(hash) {
                std::collections::hash_map::Entry::Vacant(e) => (
                    &*e.insert(decide(&r.attributes, scrape)),
                    KnownAt::Entry(hash),
                ),
                std::collections::hash_map::Entry::Occupied(e) => {
                    let known = e.into_mut();
                    if placed.is_some() || known.attributes == r.attributes {
                        known.seen = scrape;
                        (&*known, KnownAt::Entry(hash))
                    } else if known.seen != scrape {
                        // Another resource held the hash before: nothing refers to it now.
                        *known = decide(&r.attributes, scrape);
                        (&*known, KnownAt::Entry(hash))
                    } else {
                        local.push(decide(&r.attributes, scrape));
                        let i = local.len() - 1;
                        (&local[i], KnownAt::Local(i))
                    }
                }
            };
            if known.first_keeps {
                first_filter_points += r.data_point_count();
            }
            if known.keeps {
                kept.push((r, at));
            }
        }
        entries.retain(|_, k| k.seen == scrape);
        self.known.by_place = places;
        (kept, local, first_filter_points)
    }

    fn run_points(
        ops: &[Op],
        function: AggregationFunction,
        stages: &[Stage],
        kept: Vec<(&Resource, &Known)>,
        mut delta: Option<&mut CumulativeToDelta>,
        now: phoenix_core::telemetry::Timestamp,
    ) -> Snapshot {
        let delta_start = delta.as_deref_mut().map(|d| d.begin(now));
        // Per point, after the tracker: the point edits, each with its memo (points of one
        // process mostly share their times).
        let mut point_edits: Vec<(&TransformGroup, Memo)> = Vec::new();
        for op in ops {
            if let (Op::PointEdits(_), Stage::Transform(groups)) = (op, &stages[op_stage(*op)]) {
                point_edits.extend(groups.iter().map(|g| (g, Memo::new(g.point_scalars()))));
            }
        }
        let mut sink = Sink::default();
        let mut buf = Vec::with_capacity(256);
        let mut point_hashes = HashMemo::default();
        let (mut no_attributes, mut no_scope) = (Attributes::new(), Scope::default());
        for (r, known) in kept {
            let resource_hash = known.tracker_hash;
            let mut target = None;
            let mut place = 0;
            for sm in &r.scopes {
                let scope_identity = match delta {
                    Some(_) => CumulativeToDelta::scope_identity(&sm.scope, &mut buf),
                    None => 0,
                };
                for m in &sm.metrics {
                    let identity = match (&delta, delta_start) {
                        (Some(d), Some(start)) if d.converts(m) => Some((
                            CumulativeToDelta::metric_identity(
                                scope_identity,
                                m,
                                resource_hash,
                                &mut buf,
                            ),
                            start,
                        )),
                        _ => None,
                    };
                    let view_of_metric = MetricView::without_points(m);
                    let mut slot = None;
                    for p in m.data.points() {
                        let attributes_hash = point_hashes.hash(place, &p.attributes, &mut buf);
                        place += 1;
                        // The point as the stages change it, without its attributes (which
                        // none of them reads or writes).
                        let mut scratch = DataPoint {
                            attributes: Attributes::new(),
                            ..*p
                        };
                        if let (Some((identity, start)), Some(d)) = (identity, delta.as_deref_mut())
                            && !d.convert_point(start, identity, attributes_hash, &mut scratch)
                        {
                            continue;
                        }
                        for (group, memo) in &mut point_edits {
                            memo.apply(&mut scratch, |p| {
                                group.run_point_scalars(
                                    &mut no_attributes,
                                    &mut no_scope,
                                    view_of_metric,
                                    p,
                                );
                            });
                        }
                        let target = *target
                            .get_or_insert_with(|| sink.resource(&known.edited, known.edited_hash));
                        let slot = *slot.get_or_insert_with(|| {
                            sink.slot(target, &sm.scope, m, identity.is_some())
                        });
                        sink.add(slot, attributes_hash, &p.attributes, &scratch);
                    }
                }
            }
        }
        sink.finish(function)
    }
}

/// The hash of each point's attributes, remembered by the point's place in its resource:
/// every process carries the same metrics with the same attribute lists in the same order,
/// so the point at the same place in the previous resource mostly has equal attributes.
#[derive(Default)]
struct HashMemo<'a> {
    /// By place in the resource: the attributes last hashed there, and their hash.
    by_place: Vec<(&'a Attributes, u64)>,
}

impl<'a> HashMemo<'a> {
    /// `ottl::attributes_hash(attributes)` of the point at `place` in its resource.
    fn hash(&mut self, place: usize, attributes: &'a Attributes, buf: &mut Vec<u8>) -> u64 {
        match self.by_place.get_mut(place) {
            Some((seen, hash)) if *seen == attributes => *hash,
            Some(entry) => {
                *entry = (attributes, ottl::attributes_hash(attributes, buf));
                entry.1
            }
            None => {
                let hash = ottl::attributes_hash(attributes, buf);
                self.by_place.push((attributes, hash));
                hash
            }
        }
    }
}

/// The last few results of a point-edit group, which depend only on the point fields it reads
/// or writes (`fields`): a point that agrees with a remembered one on those fields gets the
/// same result without running the stage.
struct Memo {
    fields: PointScalars,
    /// Remembered (fields before, point after), the most recently used first.
    recent: Vec<(MemoKey, Scalars)>,
}

/// The fields of a point a group depends on; the others are zero.
#[derive(Clone, Copy, PartialEq, Eq)]
struct MemoKey {
    time: u64,
    start_time: u64,
    value_kind: u8,
    value: u64,
    flags: u32,
}

/// A point's time, start time, value and flags.
#[derive(Clone, Copy)]
struct Scalars {
    time: phoenix_core::telemetry::Timestamp,
    start_time: phoenix_core::telemetry::Timestamp,
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

    /// Runs the group (`stage`) on `p`, or does what it did to a point with the same fields.
    fn apply(&mut self, p: &mut DataPoint, stage: impl FnOnce(&mut DataPoint)) {
        let key = self.key(p);
        let after = if let Some(i) = self.recent.iter().position(|(k, _)| *k == key) {
            self.recent[..=i].rotate_right(1);
            self.recent[0].1
        } else {
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
}

fn op_stage(op: Op) -> usize {
    match op {
        Op::Filter(i) | Op::Delta(i) | Op::KeyEdits(i) | Op::PointEdits(i) => i,
    }
}

/// The output of `groupbyattrs` and `aggregate_on_attributes`, built as points arrive.
#[derive(Default)]
struct Sink {
    out: Vec<Resource>,
    /// Resources by attribute hash, as `groupbyattrs` finds them.
    resources: PrehashedMap<u64, Vec<usize>>,
    /// The slot of every output metric, by resource, scope and metric index.
    slot_of: Vec<Vec<Vec<usize>>>,
    slots: Vec<Slot>,
    groups: Vec<Group>,
    /// The latest group created with each key; earlier ones are chained from it.
    index: PrehashedMap<u128, usize>,
}

/// One output metric.
struct Slot {
    resource: usize,
    scope: usize,
    metric: usize,
    /// Whether points group by start time too (delta sums).
    by_start: bool,
}

/// One aggregation group: its first point and every value.
struct Group {
    slot: usize,
    first: DataPoint,
    /// The values after the first one's (which is `first.value` until the merge).
    more: Vec<NumberValue>,
    /// The group created before it with the same key.
    previous: Option<usize>,
}

impl Sink {
    /// The output resource with the attributes `view` lists (whose hash is `key`), created
    /// when missing.
    fn resource(&mut self, view: &[KeyValue], key: u64) -> usize {
        let slot = self.resources.entry(key).or_default();
        let same = |stored: &Attributes| {
            stored.len() == view.len()
                && stored.iter().all(|kv| {
                    view.iter()
                        .find(|x| x.key == kv.key)
                        .is_some_and(|x| x.value == kv.value)
                })
        };
        if let Some(&i) = slot.iter().find(|&&i| same(&self.out[i].attributes)) {
            return i;
        }
        slot.push(self.out.len());
        self.out
            .push(Resource::new(Attributes::from(view.to_vec())));
        self.slot_of.push(Vec::new());
        self.out.len() - 1
    }

    /// The slot of the metric matching `m` (name and type) in the scope matching `scope`
    /// (name and version) of output resource `target`, created from `m` when missing.
    /// `converted`: whether `cumulativetodelta` turned `m` into a delta sum.
    fn slot(&mut self, target: usize, scope: &Scope, m: &Metric, converted: bool) -> usize {
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
                self.slot_of[target].push(Vec::new());
                resource.scopes.len() - 1
            }
        };
        let sm = &mut resource.scopes[si];
        let kind = m.data.kind();
        if let Some(mi) = sm
            .metrics
            .iter()
            .position(|x| x.name == m.name && x.data.kind() == kind)
        {
            return self.slot_of[target][si][mi];
        }
        let data = match &m.data {
            MetricData::Gauge { .. } => MetricData::Gauge { points: Vec::new() },
            MetricData::Sum {
                temporality,
                monotonic,
                ..
            } => MetricData::Sum {
                points: Vec::new(),
                temporality: if converted {
                    Temporality::Delta
                } else {
                    *temporality
                },
                monotonic: *monotonic,
            },
        };
        let by_start = matches!(
            data,
            MetricData::Sum {
                temporality: Temporality::Delta,
                ..
            }
        );
        // The aggregation drops the metadata.
        sm.metrics.push(Metric {
            name: m.name.clone(),
            description: m.description.clone(),
            unit: m.unit.clone(),
            metadata: Attributes::new(),
            data,
        });
        let slot = self.slots.len();
        self.slots.push(Slot {
            resource: target,
            scope: si,
            metric: sm.metrics.len() - 1,
            by_start,
        });
        self.slot_of[target][si].push(slot);
        slot
    }

    /// Adds a point with attributes `attributes` (hashing to `hash`) and the time, start
    /// time, value and flags of `scalars` to its group in `slot`.
    fn add(&mut self, slot: usize, hash: u64, attributes: &Attributes, scalars: &DataPoint) {
        let by_start = self.slots[slot].by_start;
        let key = ottl::group_key_of(hash, scalars, by_start) ^ (slot as u128);
        let mut next = self.index.get(&key).copied();
        while let Some(g) = next {
            let group = &mut self.groups[g];
            if group.slot == slot
                && group.first.time == scalars.time
                && (!by_start || group.first.start_time == scalars.start_time)
                && ottl::attrs_equal(&group.first.attributes, attributes)
            {
                if scalars.start_time < group.first.start_time {
                    group.first.start_time = scalars.start_time;
                }
                group.more.push(scalars.value);
                return;
            }
            next = group.previous;
        }
        let previous = self.index.insert(key, self.groups.len());
        self.groups.push(Group {
            slot,
            more: Vec::new(),
            first: DataPoint {
                attributes: attributes.clone(),
                ..*scalars
            },
            previous,
        });
    }

    fn finish(mut self, function: AggregationFunction) -> Snapshot {
        let mut per_slot = vec![0_usize; self.slots.len()];
        for group in &self.groups {
            per_slot[group.slot] += 1;
        }
        for (slot, n) in self.slots.iter().zip(per_slot) {
            self.out[slot.resource].scopes[slot.scope].metrics[slot.metric]
                .data
                .points_mut()
                .reserve_exact(n);
        }
        for group in self.groups {
            let slot = &self.slots[group.slot];
            let mut point = group.first;
            point.value = if group.more.is_empty() {
                ottl::merge_values(point.value, std::slice::from_ref(&point.value), function)
            } else {
                let mut values = group.more;
                values.insert(0, point.value);
                ottl::merge_values(point.value, &values, function)
            };
            self.out[slot.resource].scopes[slot.scope].metrics[slot.metric]
                .data
                .points_mut()
                .push(point);
        }
        Snapshot::new(self.out)
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
            p.tail = None;
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
        let mut used = 0;
        for config in &configs {
            for workload in &workloads {
                if assert_same(config, workload) {
                    used += 1;
                }
            }
        }
        // The aggregated template (twice) and the shapes config, over every workload.
        assert!(used >= 3 * workloads.len(), "{used}");
    }

    /// What is remembered of a resource is used only for equal attributes: entries whose
    /// hash another resource now holds (seen at the current scrape or earlier) are not.
    #[test]
    fn remembered_resources_are_used_only_for_equal_attributes() {
        let config = template(TemplateId::Aggregated, true);
        let mut rolled = Emulator::new(&config).unwrap();
        let mut staged = Emulator::new(&config).unwrap();
        for p in &mut staged.pipelines {
            p.rollup = None;
            p.relabel = None;
            p.tail = None;
        }
        for (i, s) in snapshots(ProfilePreset::HighChurn, 4).iter().enumerate() {
            // File every remembered entry under another entry's hash; half of them look as if
            // a resource of the coming scrape already held that hash.
            for p in &mut rolled.pipelines {
                let Some(rollup) = p.rollup.as_mut() else {
                    continue;
                };
                let next = rollup.known.scrape + 1;
                let (hashes, mut known): (Vec<u64>, Vec<super::Known>) =
                    rollup.known.entries.drain().unzip();
                if !known.is_empty() {
                    known.rotate_left(1);
                }
                for (j, k) in known.iter_mut().enumerate() {
                    if j % 2 == 0 {
                        k.seen = next;
                    }
                }
                rollup.known.entries = hashes.into_iter().zip(known).collect();
            }
            let expected = staged.process(s).unwrap().clone();
            assert_eq!(rolled.process(s).unwrap(), &expected, "scrape {i}");
        }
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
    /// duplicated, emptied, given empty scopes or metrics without points.
    fn perturb(s: &mut phoenix_core::telemetry::Snapshot, edits: &[(u8, u16)]) {
        use phoenix_core::telemetry::ScopeMetrics;
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
                proptest::collection::vec((0_u8..7, proptest::prelude::any::<u16>()), 0..4),
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
