//! Pipelines that change nothing but resource attributes, or drop whole resources: any of
//! pass-through stages, `resource` processors, unconditional transforms of resource attribute
//! keys, and filters whose conditions read resource attributes only (the shape of
//! `process-baseline-v1`, of the critical pipeline of `process-aggregated-v1`, and of what
//! follows its aggregation, which the rollup counts itself).
//!
//! What such a pipeline exports is its input with each resource's attributes replaced (or
//! the resource dropped), and what it makes of a resource depends on the resource's
//! attributes only. [`Relabel`] works that out once per distinct resource and remembers it
//! across scrapes ([`ResourceMemo`]), with the resource's key for series, and the series key
//! and encoded size of each point's attributes (recomputed only where a point's metric name
//! or attributes differ from the ones remembered at its place). It counts data points,
//! series and encoded bytes from the input where it is, and copies a resource only for the
//! exporters whose data is kept.
//!
//! Looking a resource up costs a pointer comparison when the producer kept its attributes
//! from the previous snapshot (see [`Attributes::same_as`]); otherwise it compares them all.
//!
//! A filter also tidies what it keeps: it removes scopes without metrics and resources left
//! without scopes (and, with data-point conditions, metrics without points). A scrape in which
//! the filters keep such a resource runs stage by stage instead (one they drop is gone either
//! way).

use phoenix_core::otlp;
use phoenix_core::telemetry::{
    Attributes, KeyValue, MetricName, Resource, ResourceKey, SeriesKey, Snapshot,
};

use super::resource_memo::ResourceMemo;
use super::stage::Stage;

/// A pipeline run as relabelling; see the module documentation.
#[derive(Debug)]
pub(crate) struct Relabel {
    memo: ResourceMemo<Relabelled>,
    /// With filters that drop something, how they tidy the resources they keep.
    tidying: Option<Tidying>,
    /// The index of the filter the pipeline starts with (past pass-through stages), when it
    /// drops something.
    leading: Option<usize>,
    /// The number of series the last scrape exported.
    series: usize,
}

/// What a filter does to the resources it keeps: it removes scopes without metrics and
/// resources without scopes, and some filters metrics without points first.
#[derive(Debug, Clone, Copy)]
struct Tidying {
    empty_metrics: bool,
}

impl Tidying {
    /// Whether the filters would leave `r` as it is when they keep it.
    fn leaves(self, r: &Resource) -> bool {
        !r.scopes.is_empty()
            && r.scopes.iter().all(|s| {
                !s.metrics.is_empty()
                    && (!self.empty_metrics
                        || s.metrics.iter().all(|m| !m.data.points().is_empty()))
            })
    }
}

/// What the pipeline makes of one resource.
#[derive(Debug)]
struct Relabelled {
    /// Whether the filter the pipeline starts with keeps it (true without one).
    first_keeps: bool,
    /// Whether the filters keep it.
    keeps: bool,
    /// The attributes it leaves the pipeline with.
    attributes: Attributes,
    key: ResourceKey,
    /// What is known of the point at each place in the resource.
    series: Vec<Point>,
}

/// The series key of a point, and the encoded size of its attributes, with the metric name
/// and point attributes they were computed from.
#[derive(Debug)]
struct Point {
    name: MetricName,
    attributes: Attributes,
    key: SeriesKey,
    attributes_len: usize,
}

/// What one scrape through a [`Relabel`] pipeline gives.
pub(crate) struct Exported {
    /// Resources exported.
    pub(crate) resources: usize,
    /// Data points exported.
    pub(crate) points: usize,
    /// Data points the pipeline's first stage (past pass-through ones) kept, when it is a
    /// filter; all of them otherwise.
    pub(crate) first_filter_points: usize,
    /// Their series keys, in order.
    pub(crate) series: Vec<SeriesKey>,
    /// Encoded size.
    pub(crate) bytes: usize,
    /// The exported resources, when asked for.
    pub(crate) data: Option<Snapshot>,
}

impl Relabel {
    /// The relabelling of a pipeline's stages, when every stage has the shape for it.
    pub(crate) fn plan(stages: &[Stage]) -> Option<Self> {
        let mut tidying: Option<Tidying> = None;
        for stage in stages {
            match stage {
                Stage::PassThrough | Stage::Resource(_) => {}
                Stage::Filter(f) if f.is_noop() => {}
                Stage::Filter(f) if f.is_resource_level() => {
                    let empty_metrics = tidying.is_some_and(|t| t.empty_metrics);
                    tidying = Some(Tidying {
                        empty_metrics: empty_metrics || f.drops_empty_metrics(),
                    });
                }
                Stage::Transform(groups)
                    if groups.iter().all(|g| g.resource_key_edits().is_some()) => {}
                _ => return None,
            }
        }
        let leading = stages
            .iter()
            .position(|s| !matches!(s, Stage::PassThrough))
            .filter(|&i| matches!(&stages[i], Stage::Filter(f) if !f.is_noop()));
        Some(Self {
            memo: ResourceMemo::default(),
            tidying,
            leading,
            series: 0,
        })
    }

    /// The attributes a resource with `attributes` leaves the stages with.
    pub(crate) fn attributes_after(stages: &[Stage], attributes: &Attributes) -> Attributes {
        Self::relabel(stages, None, attributes).attributes
    }

    /// What the stages make of a resource with `attributes` (`leading`: the index of the
    /// filter they start with, if any).
    fn relabel(stages: &[Stage], leading: Option<usize>, attributes: &Attributes) -> Relabelled {
        let mut current = attributes.clone();
        for (i, stage) in stages.iter().enumerate() {
            match stage {
                Stage::Filter(f) if !f.is_noop() && !f.keeps_resource(&current) => {
                    return Relabelled {
                        first_keeps: leading != Some(i),
                        keeps: false,
                        key: ResourceKey::new(&current),
                        attributes: current,
                        series: Vec::new(),
                    };
                }
                Stage::Resource(actions) => {
                    for a in actions {
                        a.apply(&mut current);
                    }
                }
                Stage::Transform(groups) => {
                    for g in groups {
                        let mut view: Vec<&KeyValue> = current.iter().collect();
                        for edit in g.resource_key_edits().into_iter().flatten() {
                            edit.apply(&mut view);
                        }
                        current = Attributes::from(view.into_iter().cloned().collect::<Vec<_>>());
                    }
                }
                _ => {}
            }
        }
        Relabelled {
            first_keeps: true,
            keeps: true,
            key: ResourceKey::new(&current),
            attributes: current,
            series: Vec::new(),
        }
    }

    /// Runs one scrape over `input`; `copy`: whether to copy the exported resources (those
    /// whose attributes as exported satisfy `keep`). `None` when the pipeline's filters would
    /// tidy some resource of `input` they keep (see [`Tidying`]): the stages then run one by
    /// one.
    pub(crate) fn run(
        &mut self,
        stages: &[Stage],
        input: &Snapshot,
        copy: bool,
        keep: &dyn Fn(&Attributes) -> bool,
    ) -> Option<Exported> {
        let (mut out, picked) = self.count(stages, input, copy, keep)?;
        if let Some(data) = &mut out.data {
            for (i, attributes) in picked {
                let r = &input.resources[i];
                data.resources.push(Resource {
                    attributes,
                    dropped_attributes_count: r.dropped_attributes_count,
                    schema_url: r.schema_url.clone(),
                    scopes: r.scopes.clone(),
                });
            }
        }
        Some(out)
    }

    /// Counts what the pipeline exports of `input`, and lists the resources to copy (when
    /// `copy`) by index, with their attributes as exported. `None` as for [`Relabel::run`].
    fn count(
        &mut self,
        stages: &[Stage],
        input: &Snapshot,
        copy: bool,
        keep: &dyn Fn(&Attributes) -> bool,
    ) -> Option<(Exported, Vec<(usize, Attributes)>)> {
        let memo = &mut self.memo;
        memo.begin();
        let mut out = Exported {
            resources: 0,
            points: 0,
            first_filter_points: 0,
            series: Vec::with_capacity(self.series),
            bytes: 0,
            data: copy.then(Snapshot::default),
        };
        let mut picked = Vec::new();
        let leading = self.leading;
        for (i, r) in input.resources.iter().enumerate() {
            let at = memo.next(&r.attributes, |a| Self::relabel(stages, leading, a));
            let Some(entry) = memo.get_mut(at) else {
                continue;
            };
            if entry.first_keeps {
                out.first_filter_points += r.data_point_count();
            }
            if !entry.keeps {
                continue;
            }
            if self.tidying.is_some_and(|t| !t.leaves(r)) {
                return None;
            }
            let mut place = 0;
            let mut scopes_len = 0;
            for sm in &r.scopes {
                let mut metrics_len = 0;
                for m in &sm.metrics {
                    let mut metric_key = None;
                    let mut points_len = 0;
                    for p in m.data.points() {
                        let (series, attributes_len) = match entry.series.get_mut(place) {
                            Some(known)
                                if known.name == m.name
                                    && known.attributes.same_as(&p.attributes) =>
                            {
                                (known.key, known.attributes_len)
                            }
                            slot => {
                                let fresh = Point {
                                    key: metric_key
                                        .get_or_insert_with(|| entry.key.metric(&m.name))
                                        .series(&p.attributes),
                                    attributes_len: otlp::attributes_encoded_len(&p.attributes),
                                    name: m.name.clone(),
                                    attributes: p.attributes.clone(),
                                };
                                let known = (fresh.key, fresh.attributes_len);
                                match slot {
                                    Some(s) => *s = fresh,
                                    None => entry.series.push(fresh),
                                }
                                known
                            }
                        };
                        out.series.push(series);
                        points_len += otlp::point_encoded_len_with(p, attributes_len);
                        place += 1;
                    }
                    metrics_len += otlp::metric_encoded_len(&otlp::MetricHeader::of(m), points_len);
                }
                scopes_len +=
                    otlp::scope_metrics_encoded_len(&sm.scope, &sm.schema_url, metrics_len);
            }
            out.bytes += otlp::resource_metrics_encoded_len(
                &entry.attributes,
                r.dropped_attributes_count,
                &r.schema_url,
                scopes_len,
            );
            out.resources += 1;
            out.points += place;
            if copy && keep(&entry.attributes) {
                picked.push((i, entry.attributes.clone()));
            }
        }
        memo.end();
        self.series = out.series.len();
        Some((out, picked))
    }
}
