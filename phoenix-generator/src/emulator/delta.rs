//! The `cumulativetodelta` processor: stateful across scrapes, one state per series.
//!
//! Semantics as in `processor/cumulativetodeltaprocessor` (`processor.go` and
//! `internal/tracking/tracker.go`, `identity.go`):
//!
//! - only monotonic cumulative sums are converted (non-monotonic sums pass unchanged);
//! - a series is identified by resource attributes, scope name and version, metric name,
//!   unit, monotonicity, value type, data-point attributes and **start time** (a restarted
//!   process gets a new series);
//! - the first point of a series: `initial_value: auto` (the default) drops it when the
//!   series started before the collector (start time < the tracker's start) or when its time
//!   equals its start time, and otherwise keeps its cumulative value with its own start time;
//!   `keep` keeps the cumulative value (with a zero start time, as the tracker returns it);
//!   `drop` drops it;
//! - later points carry `value - previous` with the previous point's time as start time; a
//!   value below the previous one is a reset: the point is dropped and becomes the new
//!   reference;
//! - points flagged "no recorded value" are dropped; NaN doubles pass unchanged;
//! - the metric becomes delta; metrics left without points, then scopes and resources left
//!   empty, are removed.

use std::time::Duration;

use phoenix_core::telemetry::{
    DataPoint, Metric, MetricData, NumberValue, Scope, Snapshot, Temporality, Timestamp,
};
use regex::Regex;

use crate::config::{
    CumulativeToDeltaProcessor, DeltaMatch, DeltaMetricType, InitialValue, MatchType,
};
use crate::{Error, Result};

#[derive(Debug)]
enum NameMatch {
    Strict(Vec<String>),
    Regexp(Vec<Regex>),
}

#[derive(Debug)]
struct Selector {
    names: Option<NameMatch>,
    sums: bool,
    typed: bool,
}

impl Selector {
    fn compile(component: &str, path: &str, m: &DeltaMatch) -> Result<Self> {
        let names = if m.metrics.is_empty() {
            None
        } else {
            Some(match m.match_type.unwrap_or(MatchType::Strict) {
                MatchType::Strict => NameMatch::Strict(m.metrics.clone()),
                MatchType::Regexp => NameMatch::Regexp(
                    m.metrics
                        .iter()
                        .map(|p| {
                            crate::ottl::regex::compile(p).map_err(|e| Error::Config {
                                path: format!("{component}.{path}.metrics"),
                                message: format!("invalid regexp \"{p}\": {e}"),
                            })
                        })
                        .collect::<Result<_>>()?,
                ),
            })
        };
        Ok(Self {
            names,
            sums: m.metric_types.contains(&DeltaMetricType::Sum),
            typed: !m.metric_types.is_empty(),
        })
    }

    fn matches(&self, name: &str) -> bool {
        let by_name = match &self.names {
            None => true,
            Some(NameMatch::Strict(list)) => list.iter().any(|n| n == name),
            Some(NameMatch::Regexp(list)) => list.iter().any(|re| re.is_match(name)),
        };
        by_name && (!self.typed || self.sums)
    }

    fn is_empty(&self) -> bool {
        self.names.is_none() && !self.typed
    }
}

#[derive(Debug, Clone, Copy)]
struct State {
    previous: NumberValue,
    seen: Timestamp,
}

/// A place for one series' state.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The series identity.
    key: u128,
    state: State,
    /// Whether the place holds a series' state (it is free otherwise).
    used: bool,
}

/// No place: a [`CumulativeToDelta::convert_point`] hint that finds nothing.
pub(crate) const NO_SLOT: usize = usize::MAX;

/// Compiled `cumulativetodelta` with its per-series state.
#[derive(Debug)]
pub(crate) struct CumulativeToDelta {
    include: Option<Selector>,
    exclude: Option<Selector>,
    initial: InitialValue,
    max_staleness: Option<Duration>,
    /// The place of each series' state in `slots`, by identity.
    states: crate::ottl::PrehashedMap<u128, usize>,
    /// The states, where they were made, so that a caller that remembers a series' place
    /// reaches its state without a lookup.
    slots: Vec<Slot>,
    /// Free places in `slots`.
    free: Vec<usize>,
    start: Option<Timestamp>,
}

impl CumulativeToDelta {
    pub(crate) fn compile(component: &str, p: &CumulativeToDeltaProcessor) -> Result<Self> {
        Ok(Self {
            include: p
                .include
                .as_ref()
                .map(|m| Selector::compile(component, "include", m))
                .transpose()?
                .filter(|s| !s.is_empty()),
            exclude: p
                .exclude
                .as_ref()
                .map(|m| Selector::compile(component, "exclude", m))
                .transpose()?
                .filter(|s| !s.is_empty()),
            initial: p.initial_value.unwrap_or(InitialValue::Auto),
            max_staleness: p
                .max_staleness
                .map(|d| d.as_duration())
                .filter(|d| !d.is_zero()),
            states: crate::ottl::PrehashedMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            start: None,
        })
    }

    /// Sets the time the collector (and so the tracker) started. Without it, the time of the
    /// first batch is used.
    pub(crate) fn set_start(&mut self, start: Timestamp) {
        self.start = Some(start);
    }

    /// Starts a batch whose latest point time is `now`: sets the tracker's start time on the
    /// first batch and forgets series not seen within `max_staleness`. Returns the tracker's
    /// start time.
    pub(crate) fn begin(&mut self, now: Timestamp) -> Timestamp {
        let start = *self.start.get_or_insert(now);
        if let Some(stale) = self.max_staleness {
            let cutoff = Timestamp::from_nanos(
                now.as_nanos()
                    .saturating_sub(u64::try_from(stale.as_nanos()).unwrap_or(u64::MAX)),
            );
            // The slots in order rather than the map: a sequential read, and the map is
            // touched only for the states that go.
            let Self {
                states,
                slots,
                free,
                ..
            } = self;
            for (at, slot) in slots.iter_mut().enumerate() {
                if slot.used && slot.state.seen < cutoff {
                    slot.used = false;
                    states.remove(&slot.key);
                    free.push(at);
                }
            }
        }
        start
    }

    /// Whether the processor converts `m`: a monotonic cumulative sum selected by
    /// include/exclude.
    pub(crate) fn converts(&self, m: &Metric) -> bool {
        let MetricData::Sum {
            temporality,
            monotonic,
            ..
        } = &m.data
        else {
            return false;
        };
        *temporality == Temporality::Cumulative
            && *monotonic
            && self
                .include
                .as_ref()
                .is_none_or(|s| s.matches(m.name.as_str()))
            && self
                .exclude
                .as_ref()
                .is_none_or(|s| !s.matches(m.name.as_str()))
    }

    /// The identity of a scope (its name and version), part of its metrics' identities.
    pub(crate) fn scope_identity(scope: &Scope, buf: &mut Vec<u8>) -> u64 {
        buf.clear();
        buf.extend_from_slice(scope.name.as_bytes());
        buf.push(0x1e);
        buf.extend_from_slice(scope.version.as_bytes());
        xxhash_rust::xxh3::xxh3_64(buf)
    }

    /// The identity of metric `m` of a scope whose identity is `scope`
    /// ([`CumulativeToDelta::scope_identity`]) on a resource whose attributes hash to
    /// `resource` ([`crate::ottl::attributes_hash`]), shared by its series. `buf` is scratch
    /// space.
    pub(crate) fn metric_identity(scope: u64, m: &Metric, resource: u64, buf: &mut Vec<u8>) -> u64 {
        buf.clear();
        buf.extend_from_slice(&scope.to_le_bytes());
        buf.extend_from_slice(m.unit.as_bytes());
        buf.push(0x1e);
        buf.extend_from_slice(m.name.as_str().as_bytes());
        buf.extend_from_slice(&resource.to_le_bytes());
        xxhash_rust::xxh3::xxh3_64(buf)
    }

    /// Converts one point of a converted metric whose identity is `metric` and whose
    /// attributes hash to `attributes`; `start` is what [`CumulativeToDelta::begin`] returned.
    /// `place` is where the series' state was the last time the caller asked (a hint,
    /// [`NO_SLOT`] when there is none): it is checked, updated, and spares the lookup when
    /// right. Returns whether the point stays.
    pub(crate) fn convert_point(
        &mut self,
        start: Timestamp,
        metric: u64,
        attributes: u64,
        p: &mut DataPoint,
        place: &mut usize,
    ) -> bool {
        if p.flags & 1 == 1 {
            return false;
        }
        if let NumberValue::Double(d) = p.value
            && d.is_nan()
        {
            return true;
        }
        let key = identity(attributes, metric, p.value, p.start_time);
        let at = match self.slots.get(*place) {
            Some(slot) if slot.used && slot.key == key => Some(*place),
            _ => self.states.get(&key).copied(),
        };
        let fresh = State {
            previous: p.value,
            seen: p.time,
        };
        match at.and_then(|at| self.slots.get_mut(at).map(|slot| (at, slot))) {
            Some((at, slot)) => {
                *place = at;
                let state = &mut slot.state;
                let (delta, reset) = match (p.value, state.previous) {
                    (NumberValue::Int(v), NumberValue::Int(prev)) => {
                        (NumberValue::Int(v.wrapping_sub(prev)), v < prev)
                    }
                    (v, prev) => (
                        NumberValue::Double(v.as_f64() - prev.as_f64()),
                        v.as_f64() < prev.as_f64(),
                    ),
                };
                p.start_time = state.seen;
                *state = fresh;
                p.value = delta;
                return !reset;
            }
            None => {
                let slot = Slot {
                    key,
                    state: fresh,
                    used: true,
                };
                let at = match self.free.pop() {
                    Some(at) => {
                        self.slots[at] = slot;
                        at
                    }
                    None => {
                        self.slots.push(slot);
                        self.slots.len() - 1
                    }
                };
                self.states.insert(key, at);
                *place = at;
            }
        }
        match self.initial {
            InitialValue::Auto => !(p.start_time < start || p.time == p.start_time),
            InitialValue::Keep => {
                p.start_time = Timestamp::UNSET;
                true
            }
            InitialValue::Drop => false,
        }
    }

    pub(crate) fn run(&mut self, data: &mut Snapshot) {
        let Some(now) = data.time() else { return };
        let start = self.begin(now);
        let mut buf = Vec::with_capacity(256);
        data.resources.retain_mut(|r| {
            let resource_hash = crate::ottl::attributes_hash(&r.attributes, &mut buf);
            r.scopes.retain_mut(|sm| {
                let scope = Self::scope_identity(&sm.scope, &mut buf);
                sm.metrics.retain_mut(|m| {
                    if !self.converts(m) {
                        return true;
                    }
                    let base = Self::metric_identity(scope, m, resource_hash, &mut buf);
                    let MetricData::Sum {
                        points,
                        temporality,
                        ..
                    } = &mut m.data
                    else {
                        return true;
                    };
                    points.retain_mut(|p| {
                        let series = crate::ottl::attributes_hash(&p.attributes, &mut buf);
                        let mut place = NO_SLOT;
                        self.convert_point(start, base, series, p, &mut place)
                    });
                    *temporality = Temporality::Delta;
                    !points.is_empty()
                });
                !sm.metrics.is_empty()
            });
            !r.scopes.is_empty()
        });
    }
}

/// The series identity: the hash of the resource, scope, metric name and unit (`base`) mixed
/// with the point attributes' hash, the value type and the start time, in 128 bits.
fn identity(series: u64, base: u64, value: NumberValue, start: Timestamp) -> u128 {
    let kind = u64::from(matches!(value, NumberValue::Double(_)));
    let low = (series ^ base.rotate_left(21) ^ kind.wrapping_mul(0xA24B_AED4_963E_E407))
        .wrapping_mul(0x9FB2_1C65_1E98_DF25);
    let high =
        (base ^ start.as_nanos().wrapping_mul(0xC2B2_AE3D_27D4_EB4F) ^ series.rotate_left(33))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (u128::from(high) << 64) | u128::from(low)
}

#[cfg(test)]
mod tests {
    use super::*;
    use phoenix_core::telemetry::{
        AnyValue, DataPoint, Metric, ProcessMetric, Resource, ScopeMetrics,
    };

    fn scrape(t: u64, procs: &[(i64, u64, i64)]) -> Snapshot {
        Snapshot::new(
            procs
                .iter()
                .map(|&(pid, start, io)| {
                    let mut m = Metric::process(ProcessMetric::DiskIo);
                    m.data.points_mut().push(DataPoint::new(
                        Timestamp::from_secs(start),
                        Timestamp::from_secs(t),
                        io,
                    ));
                    let mut mem = Metric::process(ProcessMetric::MemoryUsage);
                    mem.data.points_mut().push(DataPoint::new(
                        Timestamp::from_secs(start),
                        Timestamp::from_secs(t),
                        5_i64,
                    ));
                    Resource {
                        scopes: vec![ScopeMetrics {
                            metrics: vec![m, mem],
                            ..ScopeMetrics::default()
                        }],
                        ..Resource::new([("process.pid", AnyValue::Int(pid))].into_iter().collect())
                    }
                })
                .collect(),
        )
    }

    fn io_points(s: &Snapshot) -> Vec<(i64, u64, NumberValue)> {
        s.data_points()
            .filter(|(_, m, _)| m.name.as_str() == "process.disk.io")
            .map(|(r, _, p)| {
                (
                    r.attributes
                        .get("process.pid")
                        .and_then(AnyValue::as_int)
                        .unwrap_or(0),
                    p.start_time.as_nanos() / 1_000_000_000,
                    p.value,
                )
            })
            .collect()
    }

    #[test]
    fn auto_drops_first_points_of_old_series_and_keeps_new_ones() {
        let mut d = CumulativeToDelta::compile(
            "processors.cumulativetodelta",
            &CumulativeToDeltaProcessor::default(),
        )
        .unwrap();
        let mut s1 = scrape(100, &[(1, 10, 1000)]);
        d.run(&mut s1);
        assert!(
            io_points(&s1).is_empty(),
            "a series older than the collector loses its first point"
        );
        assert_eq!(
            s1.data_point_count(),
            1,
            "non-monotonic sums are not converted"
        );
        let mut s2 = scrape(110, &[(1, 10, 1500), (2, 105, 40)]);
        d.run(&mut s2);
        assert_eq!(
            io_points(&s2),
            vec![
                (1, 100, NumberValue::Int(500)),
                (2, 105, NumberValue::Int(40))
            ]
        );
        // A counter going down is a reset: dropped, and the new value is the reference.
        let mut s3 = scrape(120, &[(1, 10, 1200), (2, 105, 50)]);
        d.run(&mut s3);
        assert_eq!(io_points(&s3), vec![(2, 110, NumberValue::Int(10))]);
        let mut s4 = scrape(130, &[(1, 10, 1300)]);
        d.run(&mut s4);
        assert_eq!(io_points(&s4), vec![(1, 120, NumberValue::Int(100))]);
        // A restarted process (new start time) is a new series.
        let mut s5 = scrape(140, &[(1, 135, 7)]);
        d.run(&mut s5);
        assert_eq!(io_points(&s5), vec![(1, 135, NumberValue::Int(7))]);
        let delta = s5.resources[0].scopes[0]
            .metrics
            .iter()
            .find(|m| m.name.as_str() == "process.disk.io")
            .unwrap();
        assert!(matches!(
            delta.data,
            MetricData::Sum {
                temporality: Temporality::Delta,
                ..
            }
        ));
    }

    /// One process's disk I/O counter at a time: (time in seconds, pid, value).
    type Reading = (u64, i64, i64);

    /// Runs batches of readings through a tracker with `initial_value: keep` and
    /// `max_staleness: 30s`; returns the disk I/O points of each batch.
    fn tracked(batches: &[Vec<Reading>]) -> Vec<Vec<(i64, u64, NumberValue)>> {
        let p: CumulativeToDeltaProcessor =
            serde_yaml::from_str("initial_value: keep\nmax_staleness: 30s\n").unwrap();
        let mut d = CumulativeToDelta::compile("c", &p).unwrap();
        batches
            .iter()
            .map(|batch| {
                let mut s = Snapshot::default();
                for &(t, pid, io) in batch {
                    s.resources.extend(scrape(t, &[(pid, 10, io)]).resources);
                }
                d.run(&mut s);
                io_points(&s)
            })
            .collect()
    }

    /// The same, as a tracker that removes stale states at the start of every batch would
    /// give it: the reference.
    fn swept_every_batch(batches: &[Vec<Reading>]) -> Vec<Vec<(i64, u64, NumberValue)>> {
        let mut states = std::collections::HashMap::<i64, (i64, u64)>::new();
        batches
            .iter()
            .map(|batch| {
                if let Some(now) = batch.iter().map(|r| r.0).max() {
                    states.retain(|_, &mut (_, seen)| seen >= now.saturating_sub(30));
                }
                batch
                    .iter()
                    .filter_map(|&(t, pid, io)| match states.insert(pid, (io, t)) {
                        None => Some((pid, 0, NumberValue::Int(io))),
                        Some((previous, _)) if io < previous => None,
                        Some((previous, seen)) => {
                            Some((pid, seen, NumberValue::Int(io - previous)))
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// States not seen within `max_staleness` are forgotten at the next batch, also when point
    /// times go back; a state written in a batch stays for the rest of it.
    #[test]
    fn stale_series_start_again() {
        // A series that starts again shows its cumulative value with a zero start time.
        let fresh = |pid, io| vec![(pid, 0, NumberValue::Int(io))];
        let one = |readings: &[Reading]| readings.iter().map(|&r| vec![r]).collect::<Vec<_>>();
        // Process 1 last seen at 100, then process 2 alone at 130 and 135, then process 1.
        for (last, io, why) in [
            (140, 1400, "last seen 100, stale from 131 on"),
            (110, 1100, "stale at 135, though not at 110"),
        ] {
            let seen = tracked(&one(&[
                (100, 1, 1000),
                (130, 2, 1),
                (135, 2, 2),
                (last, 1, io),
            ]));
            assert_eq!(seen[3], fresh(1, io), "{why}");
        }
        let seen = tracked(&one(&[(100, 1, 1000), (125, 1, 1250)]));
        assert_eq!(seen[1], vec![(1, 100, NumberValue::Int(250))]);
        // Written in a batch whose cutoff (170) is past its time: kept, and judged by the
        // next batch's cutoff (135).
        let seen = tracked(&[vec![(160, 1, 1000), (200, 2, 5)], vec![(165, 1, 1100)]]);
        assert_eq!(seen[1], vec![(1, 160, NumberValue::Int(100))]);
        // Twice in one batch, before its cutoff: the second point follows the first.
        let seen = tracked(&[vec![(100, 1, 1000), (100, 1, 1000), (200, 2, 5)]]);
        assert_eq!(
            seen[0],
            vec![
                (1, 0, NumberValue::Int(1000)),
                (1, 100, NumberValue::Int(0)),
                (2, 0, NumberValue::Int(5)),
            ]
        );
    }

    /// Stale states are freed as time passes, also after point times went back: the tracker
    /// holds the series seen within about two staleness periods, not every series ever seen,
    /// and every place is either in use or free.
    #[test]
    fn stale_states_are_swept_out_after_times_go_back() {
        let p: CumulativeToDeltaProcessor = serde_yaml::from_str("max_staleness: 30s\n").unwrap();
        let mut d = CumulativeToDelta::compile("c", &p).unwrap();
        d.run(&mut scrape(1000, &[(1_000, 10, 1)]));
        for t in 0..200 {
            d.run(&mut scrape(t, &[(t.cast_signed(), 10, 1)]));
        }
        // One new series a second, with a 30 s staleness: at most 61 (and the one at 1000).
        assert!(d.states.len() <= 62, "{} states", d.states.len());
        assert_eq!(d.states.len() + d.free.len(), d.slots.len());
    }

    proptest::proptest! {
        /// The slab of states gives what a map swept at every batch gives, whatever the order
        /// of point times.
        #[test]
        fn staleness_is_as_if_swept_every_batch(
            batches in proptest::collection::vec(
                proptest::collection::vec((0_u64..200, 1_i64..4, 0_i64..50), 1..5),
                1..12,
            ),
        ) {
            proptest::prop_assert_eq!(tracked(&batches), swept_every_batch(&batches));
        }
    }

    #[test]
    fn keep_and_drop_initial_values_and_selection() {
        let p: CumulativeToDeltaProcessor = serde_yaml::from_str("initial_value: keep\n").unwrap();
        let mut d = CumulativeToDelta::compile("c", &p).unwrap();
        let mut s = scrape(100, &[(1, 10, 1000)]);
        d.run(&mut s);
        assert_eq!(io_points(&s), vec![(1, 0, NumberValue::Int(1000))]);

        let p: CumulativeToDeltaProcessor = serde_yaml::from_str("initial_value: drop\n").unwrap();
        let mut d = CumulativeToDelta::compile("c", &p).unwrap();
        d.set_start(Timestamp::from_secs(1));
        let mut s = scrape(100, &[(1, 10, 1000)]);
        d.run(&mut s);
        assert!(io_points(&s).is_empty());

        let p: CumulativeToDeltaProcessor =
            serde_yaml::from_str("exclude:\n  metrics: ['disk']\n  match_type: regexp\n").unwrap();
        let mut d = CumulativeToDelta::compile("c", &p).unwrap();
        let mut s = scrape(100, &[(1, 10, 1000)]);
        d.run(&mut s);
        assert_eq!(
            io_points(&s),
            vec![(1, 10, NumberValue::Int(1000))],
            "excluded metrics pass unchanged"
        );
    }
}
