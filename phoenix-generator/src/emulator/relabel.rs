//! Pipelines that change nothing but resource attributes: any of pass-through stages,
//! `resource` processors, unconditional transforms of resource attribute keys and filters
//! without conditions (the shape of `process-baseline-v1`, and of what follows the
//! aggregation in `process-aggregated-v1`).
//!
//! What such a pipeline exports is its input with each resource's attributes replaced (or
//! the resource dropped), and what it makes of a resource depends on the resource's
//! attributes only. [`Relabel`] works that out once per distinct resource and remembers it
//! across scrapes ([`ResourceMemo`]), with the resource's key for series and the series key
//! of each point (recomputed only where a point's metric name or attributes differ from the
//! ones remembered at its place). It counts data points, series and encoded bytes from the
//! input where it is, and copies a resource only for the exporters whose data is kept.
//!
//! Pipelines with a filter that drops something run stage by stage: a filter reads one
//! attribute per resource and copies only what it keeps, which is cheaper than reading every
//! attribute of every resource to find what was remembered of it (it also removes empty
//! scopes, metrics without points and resources left empty, which a relabelling does not).

use phoenix_core::telemetry::{
    Attributes, KeyValue, MetricName, Resource, ResourceKey, SeriesKey, Snapshot,
};

use super::resource_memo::ResourceMemo;
use super::stage::Stage;

/// A pipeline run as relabelling; see the module documentation.
#[derive(Debug)]
pub(crate) struct Relabel {
    memo: ResourceMemo<Relabelled>,
}

/// What the pipeline makes of one resource.
#[derive(Debug)]
struct Relabelled {
    /// The attributes it leaves the pipeline with.
    attributes: Attributes,
    key: ResourceKey,
    /// The series key of the point at each place in the resource, with the metric name and
    /// point attributes it was computed from.
    series: Vec<(MetricName, Attributes, SeriesKey)>,
}

/// What one scrape through a [`Relabel`] pipeline gives.
pub(crate) struct Exported {
    /// Resources exported.
    pub(crate) resources: usize,
    /// Data points exported.
    pub(crate) points: usize,
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
        for stage in stages {
            match stage {
                Stage::PassThrough | Stage::Resource(_) => {}
                Stage::Filter(f) if f.is_noop() => {}
                Stage::Transform(groups)
                    if groups.iter().all(|g| g.resource_key_edits().is_some()) => {}
                _ => return None,
            }
        }
        Some(Self {
            memo: ResourceMemo::default(),
        })
    }

    /// What the stages make of a resource with `attributes`.
    fn relabel(stages: &[Stage], attributes: &Attributes) -> Relabelled {
        let mut current = attributes.clone();
        for stage in stages {
            match stage {
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
            key: ResourceKey::new(&current),
            attributes: current,
            series: Vec::new(),
        }
    }

    /// Runs one scrape over `input`; `copy`: whether to copy the exported resources (those
    /// whose attributes as exported satisfy `keep`).
    pub(crate) fn run(
        &mut self,
        stages: &[Stage],
        input: &Snapshot,
        copy: bool,
        keep: &dyn Fn(&Attributes) -> bool,
    ) -> Exported {
        let (mut out, picked) = self.count(stages, input, copy, keep);
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
        out
    }

    /// As [`Relabel::run`], taking `input` by value: the exported resources are moved, not
    /// copied.
    pub(crate) fn run_owned(
        &mut self,
        stages: &[Stage],
        input: Snapshot,
        copy: bool,
        keep: &dyn Fn(&Attributes) -> bool,
    ) -> Exported {
        let (mut out, picked) = self.count(stages, &input, copy, keep);
        if let Some(data) = &mut out.data {
            let mut picked = picked.into_iter().peekable();
            for (i, mut r) in input.resources.into_iter().enumerate() {
                if let Some((_, attributes)) = picked.next_if(|(j, _)| *j == i) {
                    r.attributes = attributes;
                    data.resources.push(r);
                }
            }
        }
        out
    }

    /// Counts what the pipeline exports of `input`, and lists the resources to copy (when
    /// `copy`) by index, with their attributes as exported.
    fn count(
        &mut self,
        stages: &[Stage],
        input: &Snapshot,
        copy: bool,
        keep: &dyn Fn(&Attributes) -> bool,
    ) -> (Exported, Vec<(usize, Attributes)>) {
        let memo = &mut self.memo;
        memo.begin();
        let mut out = Exported {
            resources: 0,
            points: 0,
            series: Vec::with_capacity(input.data_point_count()),
            bytes: 0,
            data: copy.then(Snapshot::default),
        };
        let mut picked = Vec::new();
        for (i, r) in input.resources.iter().enumerate() {
            let at = memo.next(&r.attributes, |a| Self::relabel(stages, a));
            let Some(entry) = memo.get_mut(at) else {
                continue;
            };
            let mut place = 0;
            for m in r.metrics() {
                let mut metric_key = None;
                for p in m.data.points() {
                    let series = match entry.series.get_mut(place) {
                        Some((name, attributes, key))
                            if *name == m.name && *attributes == p.attributes =>
                        {
                            *key
                        }
                        slot => {
                            let key = metric_key
                                .get_or_insert_with(|| entry.key.metric(&m.name))
                                .series(&p.attributes);
                            let fresh = (m.name.clone(), p.attributes.clone(), key);
                            match slot {
                                Some(s) => *s = fresh,
                                None => entry.series.push(fresh),
                            }
                            key
                        }
                    };
                    out.series.push(series);
                    place += 1;
                }
            }
            out.resources += 1;
            out.points += place;
            out.bytes += phoenix_core::otlp::resource_encoded_len(r, &entry.attributes);
            if copy && keep(&entry.attributes) {
                picked.push((i, entry.attributes.clone()));
            }
        }
        memo.end();
        (out, picked)
    }
}
