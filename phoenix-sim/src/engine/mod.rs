//! The simulation engine: a population of processes and the snapshots a scraper would take.

pub(crate) mod process;
mod selection;

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Duration;

use phoenix_core::telemetry::schema::{
    PROCESS_SCHEMA_URL, PROCESS_SCRAPER_SCOPE, ResourceAttribute,
};
use phoenix_core::telemetry::{
    AnyValue, Attributes, DataPoint, Metric, NumberValue, ProcessMetric, Resource, Scope,
    ScopeMetrics, Snapshot, Timestamp,
};

pub use selection::MetricSelection;

use crate::profile::{Profile, Template, TemplateField};
use crate::{Error, Result};
use process::{Exit, Origin, Proc, mib_to_bytes, nanos_to_secs, to_count};

/// The scope version the simulated scraper reports: the collector release whose process
/// scraper output the simulator follows.
pub const SCRAPER_VERSION: &str = "0.139.0";

/// Where pids restart after passing `pid_max` (the kernel's `RESERVED_PIDS`).
pub const PID_WRAP_TO: u32 = 300;

/// Time between two processes' scrape times within one scrape.
const SCRAPE_STEP_NS: u64 = 20_000;

/// Spawns are drawn (and started) one chunk of simulated time at a time.
const SPAWN_CHUNK_NS: u64 = 1_000_000_000;

/// The seed command lines use when none is given.
pub const DEFAULT_SEED: u64 = 0;

/// The default start of a simulation: 2026-01-01T00:00:00Z.
pub const DEFAULT_START: Timestamp = Timestamp::from_secs(1_767_225_600);

/// The latest simulated start a simulation accepts: 2200-01-01T00:00:00Z. With every
/// profile duration at most [`MAX_DURATION`](crate::profile::MAX_DURATION), all timestamps
/// stay within `u64` nanoseconds (they saturate rather than wrap beyond).
pub const MAX_START: Timestamp = Timestamp::from_secs(7_258_118_400);

/// How a simulation runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimConfig {
    /// The seed: the same seed, profile and duration give the same snapshots.
    pub seed: u64,
    /// Time between two scrapes (the scraper's `collection_interval`).
    pub scrape_interval: Duration,
    /// Simulated time at the start; the first snapshot is one interval later. It must
    /// leave room for the host's uptime (processes alive at the start began after boot)
    /// and be at most [`MAX_START`].
    pub start: Timestamp,
    /// Which metrics are on.
    pub metrics: MetricSelection,
}

impl Default for SimConfig {
    /// Seed 0, 10 s scrapes, starting at [`DEFAULT_START`], the scraper's default metrics.
    fn default() -> Self {
        Self {
            seed: 0,
            scrape_interval: Duration::from_secs(10),
            start: DEFAULT_START,
            metrics: MetricSelection::default(),
        }
    }
}

/// Counters of a simulation so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Processes alive at the last scrape.
    pub live_processes: u64,
    /// Processes started (including those that lived and died between two scrapes).
    pub starts: u64,
    /// Processes that exited, crashes included.
    pub exits: u64,
    /// Processes that crashed or were OOM-killed.
    pub crashes: u64,
    /// Series emitted: for every process instance seen by a scrape, its series. (A process
    /// whose attributes repeat an earlier one's after pid reuse counts again.)
    pub series_emitted: u64,
    /// Data points emitted.
    pub data_points: u64,
    /// Snapshots produced.
    pub scrapes: u64,
}

/// A compiled group.
struct GroupRt {
    spec: crate::profile::ProcessGroup,
    name: Template,
    path: Option<Template>,
    command_line: Option<Template>,
    parent: Option<usize>,
    /// Pid of each live instance of a counted group (0 when not alive).
    instances: Vec<u32>,
    spawned: u64,
    crashable: bool,
    forks: bool,
}

/// Identity copied from a parent for a forked child.
#[derive(Debug, Clone)]
struct Identity {
    group: u32,
    attributes: Attributes,
}

enum StartSource {
    Counted {
        group: u32,
        index: u32,
    },
    Spawned {
        group: u32,
    },
    Forked {
        parent: u32,
        lifetime_ns: u64,
        identity: Box<Identity>,
    },
}

struct StartReq {
    time_ns: u64,
    seq: u64,
    source: StartSource,
}

impl PartialEq for StartReq {
    fn eq(&self, other: &Self) -> bool {
        (self.time_ns, self.seq) == (other.time_ns, other.seq)
    }
}
impl Eq for StartReq {}
impl PartialOrd for StartReq {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for StartReq {
    /// Reversed, so that the max-heap pops the earliest request first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time_ns, other.seq).cmp(&(self.time_ns, self.seq))
    }
}

/// Pid allocation: increasing, wrapping to [`PID_WRAP_TO`] past `pid_max`, skipping pids
/// in use.
struct Pids {
    next: u32,
    max: u32,
    live: Vec<u64>,
}

impl Pids {
    fn new(max: u32) -> Self {
        Self {
            next: 1,
            max,
            live: vec![0; (max as usize).div_ceil(64)],
        }
    }

    fn is_live(&self, pid: u32) -> bool {
        self.live[(pid / 64) as usize] & (1 << (pid % 64)) != 0
    }

    fn set(&mut self, pid: u32, live: bool) {
        let word = &mut self.live[(pid / 64) as usize];
        if live {
            *word |= 1 << (pid % 64);
        } else {
            *word &= !(1 << (pid % 64));
        }
    }

    /// Skips `n` pids (other processes started meanwhile).
    fn skip(&mut self, n: u32) {
        let span = self.max - PID_WRAP_TO;
        let mut next = self.next + n % span;
        if next >= self.max {
            next = PID_WRAP_TO + (next - self.max);
        }
        self.next = next;
    }

    /// The next free pid, or `None` when every pid is taken.
    fn allocate(&mut self) -> Option<u32> {
        for _ in 0..self.max {
            if self.next >= self.max {
                self.next = PID_WRAP_TO;
            }
            let pid = self.next;
            self.next += 1;
            if !self.is_live(pid) {
                self.set(pid, true);
                return Some(pid);
            }
        }
        None
    }
}

/// The engine: a population of simulated processes scraped every interval.
///
/// Each call of [`next_snapshot`](Simulator::next_snapshot) advances simulated time by
/// one scrape interval: processes exit, crash, restart and start; counters advance; the
/// snapshot (kept between calls and updated in place) is what the hostmetrics `process`
/// scraper would emit at that moment. Runs are deterministic: the same profile, config and
/// number of steps give the same snapshots on every platform.
pub struct Simulator {
    profile: Profile,
    groups: Vec<GroupRt>,
    procs: Vec<Proc>,
    snapshot: Snapshot,
    rng: fastrand::Rng,
    pids: Pids,
    pending: BinaryHeap<StartReq>,
    seq: u64,
    now_ns: u64,
    interval_ns: u64,
    emission: Vec<ProcessMetric>,
    selection: MetricSelection,
    first_series: u64,
    kthreadd: Option<u32>,
    stats: SimStats,
    scratch: String,
    reparent: Vec<u32>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("profile", &self.profile.name)
            .field("now", &self.now_ns)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// A simulation of `profile`, with its processes alive at `config.start`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidField`] if the profile is invalid; [`Error::InvalidOption`] naming
    /// `scrape_interval` if it is not within 1 ms..=1 day, or `start` if it is earlier than
    /// the host's uptime after the Unix epoch (the host would have booted before 1970) or
    /// later than [`MAX_START`].
    pub fn new(profile: &Profile, config: SimConfig) -> Result<Simulator> {
        profile.validate()?;
        let uptime = profile.host.uptime.get();
        if config.start.as_nanos() < duration_ns(uptime) {
            return Err(Error::option(
                "start",
                format!(
                    "{} s after the Unix epoch is earlier than the host's uptime ({}): start at {} s or later, or shorten host.uptime",
                    config.start.as_nanos() / 1_000_000_000,
                    humantime::format_duration(uptime),
                    uptime.as_secs_f64().ceil()
                ),
            ));
        }
        if config.start > MAX_START {
            return Err(Error::option(
                "start",
                format!(
                    "{} s is later than the latest start {} s (2200-01-01T00:00:00Z)",
                    config.start.as_nanos() / 1_000_000_000,
                    MAX_START.as_nanos() / 1_000_000_000
                ),
            ));
        }
        let interval = config.scrape_interval;
        if interval < Duration::from_millis(1) || interval > Duration::from_secs(86_400) {
            return Err(Error::option(
                "scrape_interval",
                format!(
                    "must be within 1ms..=1day, got {}",
                    humantime::format_duration(interval)
                ),
            ));
        }
        let mut groups = Vec::with_capacity(profile.groups.len());
        for (i, spec) in profile.groups.iter().enumerate() {
            let compile = |text: &str, field: TemplateField, name: &str| {
                Template::compile(text, field)
                    .map_err(|m| Error::field(format!("groups[{i}].{name}"), m))
            };
            let parent = spec
                .parent
                .as_ref()
                .and_then(|p| profile.groups.iter().position(|g| g.key() == p));
            let fork_parents = profile
                .chaos
                .as_ref()
                .and_then(|c| c.fork_bursts.as_ref())
                .map(|b| &b.parents);
            groups.push(GroupRt {
                name: compile(&spec.name, TemplateField::Name, "name")?,
                path: spec
                    .path
                    .as_deref()
                    .map(|p| compile(p, TemplateField::Path, "path"))
                    .transpose()?,
                command_line: spec
                    .command_line
                    .as_deref()
                    .map(|c| compile(c, TemplateField::CommandLine, "commandLine"))
                    .transpose()?,
                parent,
                instances: vec![0; spec.count as usize],
                spawned: 0,
                crashable: spec.count > 0 && spec.restart && !spec.kernel_thread && i > 0,
                forks: match fork_parents {
                    Some(list) if !list.is_empty() => list.iter().any(|p| p == spec.key()),
                    _ => spec.count > 0 && !spec.kernel_thread,
                },
                spec: spec.clone(),
            });
        }
        let selection = config.metrics;
        let emission = selection.emission_order();
        let first_series = emission
            .iter()
            .filter(|m| **m != ProcessMetric::CpuUtilization)
            .map(|m| m.points_per_scrape() as u64)
            .sum();
        let mut sim = Simulator {
            profile: profile.clone(),
            groups,
            procs: Vec::new(),
            snapshot: Snapshot::default(),
            rng: fastrand::Rng::with_seed(config.seed),
            pids: Pids::new(profile.host.pid_max),
            pending: BinaryHeap::new(),
            seq: 0,
            now_ns: config.start.as_nanos(),
            interval_ns: u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX),
            emission,
            selection,
            first_series,
            kthreadd: None,
            stats: SimStats::default(),
            scratch: String::new(),
            reparent: Vec::new(),
        };
        sim.populate();
        Ok(sim)
    }

    /// The profile being simulated.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The metric selection.
    pub fn metrics(&self) -> MetricSelection {
        self.selection
    }

    /// Time between two scrapes.
    pub fn scrape_interval(&self) -> Duration {
        Duration::from_nanos(self.interval_ns)
    }

    /// Simulated time of the last scrape (the start before the first).
    pub fn now(&self) -> Timestamp {
        Timestamp::from_nanos(self.now_ns)
    }

    /// The counters so far.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// The last snapshot (empty before the first step).
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Advances one scrape interval and returns the snapshot of that scrape (reused buffer).
    pub fn next_snapshot(&mut self) -> &Snapshot {
        let t0 = self.now_ns;
        let t1 = t0.saturating_add(self.interval_ns);
        self.stage_exits(t0, t1);
        self.stage_chaos(t0, t1);
        self.remove_exited();
        // Spawns are drawn one second at a time and started before the next second is
        // drawn, so the queue holds at most about a second of them, whatever the interval.
        let mut from = t0;
        while from < t1 {
            let to = from.saturating_add(SPAWN_CHUNK_NS).min(t1);
            self.stage_spawns(from, to);
            self.start_pending(to, t1);
            from = to;
        }
        self.start_pending(t1, t1);
        self.sort_by_pid();
        self.advance(t0, t1);
        self.now_ns = t1;
        self.stats.scrapes += 1;
        self.stats.live_processes = self.procs.len() as u64;
        &self.snapshot
    }

    /// As [`next_snapshot`](Self::next_snapshot), with the counters after the scrape.
    pub fn next_with_stats(&mut self) -> (&Snapshot, &SimStats) {
        self.next_snapshot();
        (&self.snapshot, &self.stats)
    }

    /// The next `n` snapshots, owned.
    pub fn snapshots(&mut self, n: usize) -> impl Iterator<Item = Snapshot> + '_ {
        (0..n).map(move |_| self.next_snapshot().clone())
    }

    /// How many scrapes `duration` holds at this simulation's interval (rounded down).
    pub fn scrapes_in(&self, duration: Duration) -> u64 {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        nanos / self.interval_ns.max(1)
    }

    // -----------------------------------------------------------------------------------
    // Start-up.

    /// Creates the processes alive at the start, oldest first so that pids follow start
    /// times, with counters as if they had run since they started.
    fn populate(&mut self) {
        let t0 = self.now_ns;
        let uptime_ns = u64::try_from(self.profile.host.uptime.get().as_nanos()).unwrap_or(0);
        let boot = t0.saturating_sub(uptime_ns);
        let mut initial: Vec<(u64, u32, u32)> = Vec::new();
        let mut kthreadd = false;
        for (g, group) in self.groups.iter().enumerate() {
            let spec = &group.spec;
            for index in 0..spec.count {
                let start = if g == 0 && index == 0 {
                    boot
                } else if spec.kernel_thread && !kthreadd {
                    // The first kernel thread is kthreadd, started right after init (pid 2).
                    kthreadd = true;
                    boot.saturating_add(1_000_000)
                } else if let Some(life) = spec.lifetime {
                    let span = duration_ns(life.max).min(uptime_ns);
                    t0.saturating_sub(uniform_u64(&mut self.rng, 0, span))
                } else if let Some(ago) = spec.started_ago {
                    let ago =
                        uniform_u64(&mut self.rng, duration_ns(ago.min), duration_ns(ago.max));
                    t0.saturating_sub(ago.min(uptime_ns))
                } else if spec.kernel_thread {
                    boot.saturating_add(uniform_u64(&mut self.rng, 20_000_000, 1_500_000_000))
                } else {
                    boot.saturating_add(uniform_u64(&mut self.rng, 2_000_000_000, 60_000_000_000))
                };
                initial.push((start, g as u32, index));
            }
        }
        // Parents start before their children (parent groups are listed first).
        let mut first_of_group = vec![0_usize; self.groups.len()];
        let mut k = 0;
        for (g, group) in self.groups.iter().enumerate() {
            first_of_group[g] = k;
            k += group.spec.count as usize;
        }
        for i in 0..initial.len() {
            let (_, g, index) = initial[i];
            if let Some(parent) = self.groups[g as usize].parent {
                let count = self.groups[parent].spec.count.max(1);
                let p = first_of_group[parent] + (index % count) as usize;
                if p < i {
                    initial[i].0 = initial[i]
                        .0
                        .max(initial[p].0.saturating_add(10_000_000))
                        .min(t0);
                }
            }
        }
        let mut order: Vec<usize> = (0..initial.len()).collect();
        order.sort_by_key(|&i| (initial[i].0, initial[i].1, initial[i].2));
        let mut last = boot;
        for i in order {
            let (start, g, index) = initial[i];
            // Pids other processes took meanwhile: about one every 50 s of uptime.
            let gap = to_count(nanos_to_secs(start.saturating_sub(last)) * 0.02);
            self.pids.skip(u32::try_from(gap).unwrap_or(0));
            last = last.max(start);
            let source = StartSource::Counted { group: g, index };
            let end = match self.groups[g as usize].spec.lifetime {
                Some(life) => {
                    let span =
                        uniform_u64(&mut self.rng, duration_ns(life.min), duration_ns(life.max));
                    let soonest =
                        t0.saturating_add(uniform_u64(&mut self.rng, 1, self.interval_ns.max(1)));
                    start.saturating_add(span).max(soonest)
                }
                None => u64::MAX,
            };
            if let Some(idx) = self.create(source, start, end) {
                let proc = &mut self.procs[idx];
                let spec = &self.groups[proc.group as usize].spec;
                let age = nanos_to_secs(t0.saturating_sub(proc.start_ns));
                let cores = proc.mean_cores(spec);
                let rss = proc.rss_mib(spec, t0, &mut self.rng);
                proc.advance(spec, age, cores, rss, &mut self.rng);
            }
        }
        self.sort_by_pid();
    }

    // -----------------------------------------------------------------------------------
    // One tick.

    fn stage_exits(&mut self, t0: u64, t1: u64) {
        let interval_h = nanos_to_secs(self.interval_ns) / 3600.0;
        let crash_p = self
            .profile
            .chaos
            .as_ref()
            .map_or(0.0, |c| (c.crashes_per_process_hour * interval_h).min(1.0));
        let spikes = self
            .profile
            .chaos
            .as_ref()
            .and_then(|c| c.cpu_spikes.clone());
        for i in 0..self.procs.len() {
            let proc = &self.procs[i];
            let group = &self.groups[proc.group as usize];
            let spec = &group.spec;
            let mut exit = None;
            if proc.end_ns <= t1 {
                exit = Some((proc.end_ns.max(t0), Exit::Normal));
            } else if spec.churn_rate > 0.0 && self.rng.f64() < spec.churn_rate {
                exit = Some((uniform_u64(&mut self.rng, t0, t1), Exit::Normal));
            } else if crash_p > 0.0
                && group.crashable
                && proc.pid != 1
                && proc.origin == Origin::Counted
                && self.rng.f64() < crash_p
            {
                exit = Some((uniform_u64(&mut self.rng, t0, t1), Exit::Crash));
            } else if let Some(limit) = spec.memory.limit_mib
                && !proc.kernel
                && proc.pid != 1
                && proc.rss_mib(spec, t1, &mut self.rng) > limit
            {
                exit = Some((t1.saturating_sub(self.interval_ns / 10), Exit::Crash));
            }
            if let Some(spikes) = &spikes
                && !proc.kernel
                && exit.is_none()
                && self.rng.f64() < spikes.probability
            {
                let at = uniform_u64(&mut self.rng, t0, t1);
                let len = uniform_u64(
                    &mut self.rng,
                    duration_ns(spikes.duration.min),
                    duration_ns(spikes.duration.max),
                );
                let cores = uniform_f64(&mut self.rng, spikes.cores.min, spikes.cores.max);
                let proc = &mut self.procs[i];
                proc.spike_until_ns = at.saturating_add(len);
                proc.spike_cores = cores;
            }
            if let Some((time, kind)) = exit {
                self.procs[i].exit = Some((time, kind));
                self.schedule_restart(i, time);
            }
        }
    }

    fn schedule_restart(&mut self, i: usize, time: u64) {
        let proc = &self.procs[i];
        let (group, index) = (proc.group, proc.index);
        let spec = &self.groups[group as usize].spec;
        if proc.origin != Origin::Counted || !spec.restart {
            return;
        }
        let delay = uniform_u64(
            &mut self.rng,
            duration_ns(spec.restart_delay.min),
            duration_ns(spec.restart_delay.max),
        );
        self.push(
            time.saturating_add(delay),
            StartSource::Counted { group, index },
        );
    }

    fn push(&mut self, time_ns: u64, source: StartSource) {
        self.seq += 1;
        self.pending.push(StartReq {
            time_ns,
            seq: self.seq,
            source,
        });
    }

    /// Queues the spawns of `from..to`, at most [`SPAWN_CHUNK_NS`] long: one draw of the
    /// rate per group.
    fn stage_spawns(&mut self, from: u64, to: u64) {
        for g in 0..self.groups.len() {
            let Some(rate) = self.groups[g].spec.spawn_per_second else {
                continue;
            };
            let expected =
                uniform_f64(&mut self.rng, rate.min, rate.max) * nanos_to_secs(to - from);
            let mut n = to_count(expected.floor());
            if self.rng.f64() < expected - expected.floor() {
                n += 1;
            }
            for _ in 0..n {
                let at = uniform_u64(&mut self.rng, from, to);
                self.push(at, StartSource::Spawned { group: g as u32 });
            }
        }
    }

    fn stage_chaos(&mut self, t0: u64, t1: u64) {
        let Some(bursts) = self
            .profile
            .chaos
            .as_ref()
            .and_then(|c| c.fork_bursts.clone())
        else {
            return;
        };
        let expected = bursts.per_hour * nanos_to_secs(t1 - t0) / 3600.0;
        let mut n = to_count(expected.floor());
        if self.rng.f64() < expected - expected.floor() {
            n += 1;
        }
        for _ in 0..n {
            let candidates: Vec<usize> = (0..self.procs.len())
                .filter(|&i| {
                    let p = &self.procs[i];
                    p.exit.is_none() && !p.kernel && self.groups[p.group as usize].forks
                })
                .collect();
            if candidates.is_empty() {
                return;
            }
            let parent = candidates[self.rng.usize(0..candidates.len())];
            let size =
                to_count(uniform_f64(&mut self.rng, bursts.size.min, bursts.size.max).round());
            let at = uniform_u64(&mut self.rng, t0, t1);
            let identity = Box::new(Identity {
                group: self.procs[parent].group,
                attributes: self.snapshot.resources[parent].attributes.clone(),
            });
            let parent_pid = self.procs[parent].pid;
            let added = u32::try_from(size).unwrap_or(u32::MAX);
            self.procs[parent].children = self.procs[parent].children.saturating_add(added);
            for k in 0..size {
                let lifetime_ns = uniform_u64(
                    &mut self.rng,
                    duration_ns(bursts.lifetime.min),
                    duration_ns(bursts.lifetime.max),
                );
                let source = StartSource::Forked {
                    parent: parent_pid,
                    lifetime_ns,
                    identity: identity.clone(),
                };
                self.push(at.saturating_add(k.saturating_mul(2_000_000)), source);
            }
        }
    }

    /// Drops exited processes from the population and the snapshot, keeping order, and
    /// hands their live children to pid 1.
    fn remove_exited(&mut self) {
        self.reparent.clear();
        let mut w = 0;
        for r in 0..self.procs.len() {
            if let Some((_, kind)) = self.procs[r].exit {
                let proc = &self.procs[r];
                self.stats.exits += 1;
                if kind == Exit::Crash {
                    self.stats.crashes += 1;
                }
                if proc.children > 0 {
                    self.reparent.push(proc.pid);
                }
                self.pids.set(proc.pid, false);
                let group = &mut self.groups[proc.group as usize];
                if proc.origin == Origin::Counted
                    && let Some(slot) = group.instances.get_mut(proc.index as usize)
                    && *slot == proc.pid
                {
                    *slot = 0;
                }
                continue;
            }
            if w != r {
                self.procs.swap(w, r);
                self.snapshot.resources.swap(w, r);
            }
            w += 1;
        }
        self.procs.truncate(w);
        self.snapshot.resources.truncate(w);
        if !self.reparent.is_empty() {
            self.reparent.sort_unstable();
            for (proc, resource) in self.procs.iter_mut().zip(&mut self.snapshot.resources) {
                if self.reparent.binary_search(&proc.ppid).is_ok() {
                    proc.ppid = 1;
                    resource
                        .attributes
                        .insert(ResourceAttribute::ParentPid, AnyValue::Int(1));
                }
            }
        }
    }

    /// Starts every pending process due by `due`, in start-time order; those that also end
    /// by `t1`, the next scrape, are only counted.
    fn start_pending(&mut self, due: u64, t1: u64) {
        while self.pending.peek().is_some_and(|r| r.time_ns <= due) {
            let Some(req) = self.pending.pop() else {
                break;
            };
            let start = req.time_ns;
            let end = match &req.source {
                StartSource::Counted { group, .. } | StartSource::Spawned { group } => {
                    match self.groups[*group as usize].spec.lifetime {
                        Some(life) => {
                            let span = uniform_u64(
                                &mut self.rng,
                                duration_ns(life.min),
                                duration_ns(life.max),
                            );
                            start.saturating_add(span.max(10_000_000))
                        }
                        None => u64::MAX,
                    }
                }
                StartSource::Forked { lifetime_ns, .. } => start.saturating_add(*lifetime_ns),
            };
            if end <= t1 {
                // Lived and died between two scrapes: no scrape ever sees it.
                if self.pids.allocate().is_some_and(|pid| {
                    self.pids.set(pid, false);
                    true
                }) {
                    self.stats.starts += 1;
                    self.stats.exits += 1;
                }
                if let StartSource::Counted { group, index } = req.source {
                    self.groups[group as usize].spawned += 1;
                    let spec = &self.groups[group as usize].spec;
                    if spec.restart {
                        let delay = uniform_u64(
                            &mut self.rng,
                            duration_ns(spec.restart_delay.min),
                            duration_ns(spec.restart_delay.max),
                        );
                        self.push(
                            end.saturating_add(delay),
                            StartSource::Counted { group, index },
                        );
                    }
                } else if let StartSource::Spawned { group } = req.source {
                    self.groups[group as usize].spawned += 1;
                }
                continue;
            }
            self.create(req.source, start, end);
        }
    }

    /// Creates a process and its resource; returns its index, or `None` if no pid is free.
    fn create(&mut self, source: StartSource, start_ns: u64, end_ns: u64) -> Option<usize> {
        let pid = self.pids.allocate()?;
        // The scraper reports create times in milliseconds; Linux counts them in 10 ms ticks.
        let start_ns = start_ns / 10_000_000 * 10_000_000;
        let (group_index, index, origin, ppid, attributes) = match source {
            StartSource::Counted { group, index } => {
                let ppid = self.parent_pid(group as usize, index as usize, pid);
                let attrs = self.render_identity(group as usize, u64::from(index), pid, ppid);
                if let Some(slot) = self.groups[group as usize]
                    .instances
                    .get_mut(index as usize)
                {
                    *slot = pid;
                }
                (group, index, Origin::Counted, ppid, attrs)
            }
            StartSource::Spawned { group } => {
                let g = &mut self.groups[group as usize];
                let seq = g.spawned;
                g.spawned += 1;
                let parent_count = g.parent.map_or(0, |p| self.groups[p].instances.len());
                let pick = if parent_count > 0 {
                    self.rng.usize(0..parent_count)
                } else {
                    0
                };
                let ppid = self.parent_pid(group as usize, pick, pid);
                let attrs = self.render_identity(group as usize, seq, pid, ppid);
                (
                    group,
                    u32::try_from(seq).unwrap_or(u32::MAX),
                    Origin::Spawned,
                    ppid,
                    attrs,
                )
            }
            StartSource::Forked {
                parent, identity, ..
            } => {
                let ppid = if self.pids.is_live(parent) { parent } else { 1 };
                let mut attrs = identity.attributes;
                attrs.insert(ResourceAttribute::Pid, AnyValue::Int(i64::from(pid)));
                attrs.insert(ResourceAttribute::ParentPid, AnyValue::Int(i64::from(ppid)));
                (identity.group, 0, Origin::Forked, ppid, attrs)
            }
        };
        let spec = &self.groups[group_index as usize].spec;
        let mut proc = Proc::new(group_index, spec, index, origin, start_ns, &mut self.rng);
        proc.pid = pid;
        proc.ppid = ppid;
        proc.end_ns = end_ns;
        proc.prev_ns = start_ns;
        if spec.kernel_thread && self.kthreadd.is_none() {
            self.kthreadd = Some(pid);
        }
        if let Some(parent) = self.procs.iter_mut().rev().find(|p| p.pid == ppid) {
            parent.children = parent
                .children
                .saturating_add(u32::from(origin != Origin::Forked));
        }
        self.stats.starts += 1;
        self.stats.series_emitted += self.first_series;
        let resource = self.build_resource(attributes, Timestamp::from_nanos(start_ns), false);
        self.procs.push(proc);
        self.snapshot.resources.push(resource);
        Some(self.procs.len() - 1)
    }

    /// The parent pid of instance `index` of `group`'s next process.
    fn parent_pid(&self, group: usize, index: usize, pid: u32) -> u32 {
        let g = &self.groups[group];
        if pid == 1 {
            return 0;
        }
        if g.spec.kernel_thread {
            return self.kthreadd.unwrap_or(0);
        }
        match g.parent {
            Some(p) => {
                let instances = &self.groups[p].instances;
                match instances.get(index % instances.len().max(1)) {
                    Some(&ppid) if ppid != 0 => ppid,
                    _ => 1,
                }
            }
            None => 1,
        }
    }

    /// Renders a group's name, path and command line into resource attributes.
    fn render_identity(&mut self, group: usize, index: u64, pid: u32, ppid: u32) -> Attributes {
        let g = &self.groups[group];
        let rng = &mut self.rng;
        let mut name = String::new();
        g.name.render(&mut name, index, "", "", rng);
        let mut path = String::new();
        let mut command_line = String::new();
        if !g.spec.kernel_thread {
            match &g.path {
                Some(t) => t.render(&mut path, index, &name, "", rng),
                None => {
                    path.push_str("/usr/bin/");
                    path.push_str(&name);
                }
            }
            match &g.command_line {
                Some(t) => t.render(&mut command_line, index, &name, &path, rng),
                None => command_line.push_str(&path),
            }
        }
        self.scratch.clear();
        let command = command_line
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_owned();
        let mut attrs = Attributes::with_capacity(7);
        attrs.insert(ResourceAttribute::Pid, AnyValue::Int(i64::from(pid)));
        attrs.insert(ResourceAttribute::ParentPid, AnyValue::Int(i64::from(ppid)));
        attrs.insert(ResourceAttribute::ExecutableName, AnyValue::String(name));
        attrs.insert(ResourceAttribute::ExecutablePath, AnyValue::String(path));
        attrs.insert(ResourceAttribute::Command, AnyValue::String(command));
        attrs.insert(
            ResourceAttribute::CommandLine,
            AnyValue::String(command_line),
        );
        if !g.spec.owner.is_empty() {
            attrs.insert(
                ResourceAttribute::Owner,
                AnyValue::String(g.spec.owner.clone()),
            );
        }
        attrs
    }

    /// A resource with every enabled metric's points at zero.
    fn build_resource(
        &self,
        attributes: Attributes,
        start: Timestamp,
        utilization: bool,
    ) -> Resource {
        let metrics = build_metrics_for(&self.emission, start, utilization);
        Resource {
            attributes,
            dropped_attributes_count: 0,
            schema_url: PROCESS_SCHEMA_URL.to_owned(),
            scopes: vec![ScopeMetrics {
                scope: Scope {
                    name: PROCESS_SCRAPER_SCOPE.to_owned(),
                    version: SCRAPER_VERSION.to_owned(),
                    ..Scope::default()
                },
                schema_url: String::new(),
                metrics,
            }],
        }
    }

    /// Keeps the population and the snapshot ordered by pid, as `/proc` lists processes.
    fn sort_by_pid(&mut self) {
        if self.procs.windows(2).all(|w| w[0].pid < w[1].pid) {
            return;
        }
        let procs = std::mem::take(&mut self.procs);
        let resources = std::mem::take(&mut self.snapshot.resources);
        let mut pairs: Vec<(Proc, Resource)> = procs.into_iter().zip(resources).collect();
        pairs.sort_by_key(|(p, _)| p.pid);
        (self.procs, self.snapshot.resources) = pairs.into_iter().unzip();
    }

    /// Advances every process's counters to `t1` and writes them into the snapshot.
    fn advance(&mut self, t0: u64, t1: u64) {
        let host_memory = mib_to_bytes(1.0) as f64 * self.profile.host.memory_mib as f64;
        let cpus = f64::from(self.profile.host.cpus);
        let mut points = 0_u64;
        for (i, (proc, resource)) in self
            .procs
            .iter_mut()
            .zip(&mut self.snapshot.resources)
            .enumerate()
        {
            let spec = &self.groups[proc.group as usize].spec;
            let from = proc.start_ns.max(t0);
            let secs = nanos_to_secs(t1.saturating_sub(from));
            let cores = proc.cores(spec, t1, &mut self.rng);
            let rss = if proc.kernel {
                0.0
            } else {
                proc.rss_mib(spec, t1, &mut self.rng)
            };
            proc.advance(spec, secs, cores, rss, &mut self.rng);
            let time =
                Timestamp::from_nanos(t1.saturating_add((i as u64).saturating_mul(SCRAPE_STEP_NS)));
            if proc.scrapes == 1 && self.selection.is_enabled(ProcessMetric::CpuUtilization) {
                // The scraper emits utilization from a process's second scrape on.
                let start = Timestamp::from_nanos(proc.start_ns);
                let metrics = build_metrics_for(&self.emission, start, true);
                resource.scopes[0].metrics = metrics;
                self.stats.series_emitted +=
                    ProcessMetric::CpuUtilization.points_per_scrape() as u64;
            }
            points += write_points(resource, proc, time, host_memory, cpus) as u64;
            proc.prev_cpu = proc.cpu_ticks();
            proc.prev_ns = time.as_nanos();
            proc.scrapes += 1;
        }
        self.stats.data_points += points;
    }
}

fn build_metrics_for(
    emission: &[ProcessMetric],
    start: Timestamp,
    utilization: bool,
) -> Vec<Metric> {
    let mut metrics = Vec::with_capacity(emission.len());
    for &m in emission {
        if m == ProcessMetric::CpuUtilization && !utilization {
            continue;
        }
        let mut metric = Metric::process(m);
        let zero = match m.value_type() {
            phoenix_core::telemetry::schema::ValueType::Int => NumberValue::Int(0),
            phoenix_core::telemetry::schema::ValueType::Double => NumberValue::Double(0.0),
        };
        let points = metric.data.points_mut();
        match m.point_attribute() {
            Some(attr) => {
                for v in m.point_values() {
                    let mut p = DataPoint::new(start, start, zero);
                    p.attributes.insert(attr, *v);
                    points.push(p);
                }
            }
            None => points.push(DataPoint::new(start, start, zero)),
        }
        metrics.push(metric);
    }
    metrics
}

/// Writes a process's counters into its resource's points; returns how many points.
#[allow(clippy::cast_possible_wrap, clippy::cast_precision_loss)]
fn write_points(
    resource: &mut Resource,
    proc: &Proc,
    time: Timestamp,
    host_memory: f64,
    cpus: f64,
) -> usize {
    let mut count = 0;
    let cpu = proc.cpu_ticks();
    for metric in &mut resource.scopes[0].metrics {
        let Some(m) = metric.name.process_metric() else {
            continue;
        };
        let points = metric.data.points_mut();
        count += points.len();
        let ints = |points: &mut Vec<DataPoint>, values: &[u64]| {
            for (p, v) in points.iter_mut().zip(values) {
                p.time = time;
                p.value = NumberValue::Int(*v as i64);
            }
        };
        match m {
            ProcessMetric::CpuTime => {
                for (p, v) in points.iter_mut().zip(cpu) {
                    p.time = time;
                    p.value = NumberValue::Double(v);
                }
            }
            ProcessMetric::CpuUtilization => {
                let elapsed = nanos_to_secs(time.as_nanos().saturating_sub(proc.prev_ns)).max(1e-9);
                for ((p, now), before) in points.iter_mut().zip(cpu).zip(proc.prev_cpu) {
                    p.time = time;
                    p.value = NumberValue::Double(((now - before) / elapsed / cpus).max(0.0));
                }
            }
            ProcessMetric::MemoryUsage => ints(points, &[proc.rss]),
            ProcessMetric::MemoryVirtual => ints(points, &[proc.vms]),
            ProcessMetric::MemoryUtilization => {
                // The scraper reports gopsutil's MemoryPercent: a float32 percentage.
                #[allow(clippy::cast_possible_truncation)]
                let percent = (100.0 * proc.rss as f64 / host_memory) as f32;
                for p in points.iter_mut() {
                    p.time = time;
                    p.value = NumberValue::Double(f64::from(percent));
                }
            }
            ProcessMetric::DiskIo => ints(points, &proc.io),
            ProcessMetric::DiskOperations => ints(points, &proc.ops),
            ProcessMetric::ContextSwitches => ints(points, &proc.ctx),
            ProcessMetric::PagingFaults => ints(points, &proc.faults),
            ProcessMetric::Threads => ints(points, &[u64::from(proc.threads)]),
            ProcessMetric::OpenFileDescriptors => ints(points, &[u64::from(proc.fds)]),
        }
    }
    count
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Uniform in `lo..=hi` (just `lo` when the range is empty).
fn uniform_u64(rng: &mut fastrand::Rng, lo: u64, hi: u64) -> u64 {
    if hi <= lo { lo } else { rng.u64(lo..=hi) }
}

fn uniform_f64(rng: &mut fastrand::Rng, lo: f64, hi: f64) -> f64 {
    if hi <= lo {
        lo
    } else {
        lo + (hi - lo) * rng.f64()
    }
}

#[cfg(test)]
mod tests;
