//! One simulated process: its behaviour parameters and cumulative counters.

use crate::profile::{CpuPatternKind, MemoryPatternKind, ProcessGroup};

const NANOS: f64 = 1e9;
const MIB: f64 = 1_048_576.0;
const PAGE: u64 = 4096;

/// How a process came to be, which decides what happens when it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Instance `index` of a counted group: replaced on exit if the group restarts.
    Counted,
    /// Started by a group's spawn rate.
    Spawned,
    /// Forked by a burst; never replaced.
    Forked,
}

/// Why a process leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Its lifetime ended, or it churned.
    Normal,
    /// It crashed or was OOM-killed.
    Crash,
}

/// A live process.
#[derive(Debug, Clone)]
pub(crate) struct Proc {
    pub pid: u32,
    pub ppid: u32,
    pub group: u32,
    pub index: u32,
    pub origin: Origin,
    pub kernel: bool,
    pub start_ns: u64,
    pub end_ns: u64,
    pub exit: Option<(u64, Exit)>,
    pub children: u32,
    // Behaviour, drawn once per process.
    pub scale: f64,
    pub phase: f64,
    pub vms_extra: u64,
    pub fds: u32,
    pub threads: u32,
    pub spike_until_ns: u64,
    pub spike_cores: f64,
    // Counters.
    pub cpu: [f64; 3],
    pub rss: u64,
    pub vms: u64,
    pub io: [u64; 2],
    pub ops: [u64; 2],
    pub ctx: [u64; 2],
    pub faults: [u64; 2],
    pub prev_cpu: [f64; 3],
    pub prev_ns: u64,
    pub scrapes: u32,
}

impl Proc {
    /// A process of `group` started at `start_ns`, counters at zero.
    pub(crate) fn new(
        group_index: u32,
        group: &ProcessGroup,
        index: u32,
        origin: Origin,
        start_ns: u64,
        rng: &mut fastrand::Rng,
    ) -> Self {
        let kernel = group.kernel_thread;
        let vms_extra = if kernel {
            0
        } else {
            mib_to_bytes(group.memory.virtual_size() - group.memory.rss_mib) / PAGE * PAGE
        };
        Self {
            pid: 0,
            ppid: 0,
            group: group_index,
            index,
            origin,
            kernel,
            start_ns,
            end_ns: u64::MAX,
            exit: None,
            children: 0,
            scale: 0.7 + 0.6 * rng.f64(),
            phase: rng.f64(),
            vms_extra,
            fds: if kernel {
                0
            } else {
                4 + 2 * group.threads + rng.u32(0..16)
            },
            threads: if kernel { 1 } else { group.threads },
            spike_until_ns: 0,
            spike_cores: 0.0,
            cpu: [0.0; 3],
            rss: 0,
            vms: 0,
            io: [0; 2],
            ops: [0; 2],
            ctx: [0; 2],
            faults: [0; 2],
            prev_cpu: [0.0; 3],
            prev_ns: 0,
            scrapes: 0,
        }
    }

    /// Seconds of life at `t_ns`.
    fn age_secs(&self, t_ns: u64) -> f64 {
        nanos_to_secs(t_ns.saturating_sub(self.start_ns))
    }

    /// CPU use in cores at `t_ns`.
    pub(crate) fn cores(&self, group: &ProcessGroup, t_ns: u64, rng: &mut fastrand::Rng) -> f64 {
        let cpu = &group.cpu;
        let base = cpu.cores * self.scale;
        let peak = cpu.peak_cores() * self.scale;
        let cores = match cpu.pattern {
            CpuPatternKind::Steady => base * (0.9 + 0.2 * rng.f64()),
            CpuPatternKind::Spiky => {
                if rng.f64() < cpu.spike_probability.unwrap_or(0.05) {
                    peak * (0.8 + 0.2 * rng.f64())
                } else {
                    base * (0.9 + 0.2 * rng.f64())
                }
            }
            CpuPatternKind::Growing => {
                let ramp = period_secs(cpu.period);
                base + (peak - base) * (self.age_secs(t_ns) / ramp).min(1.0)
            }
            CpuPatternKind::Random => base + (peak - base) * rng.f64(),
            CpuPatternKind::Sine => {
                let turns = nanos_to_secs(t_ns) / period_secs(cpu.period) + self.phase;
                base + (peak - base) * (0.5 + 0.5 * sin_turns(turns))
            }
        };
        if self.spike_until_ns > t_ns {
            cores.max(self.spike_cores)
        } else {
            cores
        }
    }

    /// Resident memory in MiB at `t_ns`.
    pub(crate) fn rss_mib(&self, group: &ProcessGroup, t_ns: u64, rng: &mut fastrand::Rng) -> f64 {
        let mem = &group.memory;
        let base = mem.rss_mib * self.scale;
        let peak = mem.peak() * self.scale;
        match mem.pattern {
            MemoryPatternKind::Steady => base * (0.98 + 0.04 * rng.f64()),
            MemoryPatternKind::Spiky => {
                if rng.f64() < mem.spike_probability.unwrap_or(0.05) {
                    peak
                } else {
                    base * (0.98 + 0.04 * rng.f64())
                }
            }
            MemoryPatternKind::Growing => {
                base + (peak - base) * (self.age_secs(t_ns) / period_secs(mem.period)).min(1.0)
            }
            MemoryPatternKind::Random => base + (peak - base) * rng.f64(),
            MemoryPatternKind::Sine => {
                let turns = nanos_to_secs(t_ns) / period_secs(mem.period) + self.phase;
                base + (peak - base) * (0.5 + 0.5 * sin_turns(turns))
            }
            MemoryPatternKind::Leaking => {
                base + mem.leak_mib_per_hour.unwrap_or(0.0) * self.age_secs(t_ns) / 3600.0
            }
        }
    }

    /// The mean CPU use of the pattern, for the history of processes alive at the start.
    pub(crate) fn mean_cores(&self, group: &ProcessGroup) -> f64 {
        let cpu = &group.cpu;
        let base = cpu.cores * self.scale;
        let peak = cpu.peak_cores() * self.scale;
        match cpu.pattern {
            CpuPatternKind::Steady => base,
            CpuPatternKind::Spiky => {
                let p = cpu.spike_probability.unwrap_or(0.05);
                base * (1.0 - p) + peak * 0.9 * p
            }
            CpuPatternKind::Growing | CpuPatternKind::Random | CpuPatternKind::Sine => {
                (base + peak) / 2.0
            }
        }
    }

    /// Advances the counters by `secs` seconds of life at `cores`, and sets memory to
    /// `rss_mib`.
    pub(crate) fn advance(
        &mut self,
        group: &ProcessGroup,
        secs: f64,
        cores: f64,
        rss_mib: f64,
        rng: &mut fastrand::Rng,
    ) {
        let busy = cores * secs;
        let system = group.cpu.system_share;
        let wait = group.cpu.wait_share;
        self.cpu[0] += busy * (1.0 - system - wait);
        self.cpu[1] += busy * system;
        self.cpu[2] += busy * wait;
        if self.kernel {
            self.ctx[1] += to_count(secs * (2.0 + 200.0 * busy));
            return;
        }
        let new_rss = mib_to_bytes(rss_mib) / PAGE * PAGE;
        let grown_pages = new_rss.saturating_sub(self.rss) / PAGE;
        self.rss = new_rss;
        self.vms = new_rss + self.vms_extra;
        let jitter = 0.5 + rng.f64();
        let read = to_count(group.io.read_kib_per_second * 1024.0 * secs * jitter);
        let write = to_count(group.io.write_kib_per_second * 1024.0 * secs * jitter);
        self.io[0] += read / 4096 * 4096;
        self.io[1] += write / 4096 * 4096;
        self.ops[0] += read / 16_384 + u64::from(read > 0);
        self.ops[1] += write / 8192 + u64::from(write > 0);
        let threads = f64::from(group.threads);
        self.ctx[0] += to_count(busy * 40.0 + secs * 0.05 * threads);
        self.ctx[1] += to_count(busy * 300.0 + secs * 0.5 * threads);
        self.faults[0] += u64::from(rng.f64() < 0.002 * secs);
        self.faults[1] += grown_pages + to_count(busy * 150.0);
    }

    /// The CPU counters as the scraper reports them: whole clock ticks (1/100 s).
    pub(crate) fn cpu_ticks(&self) -> [f64; 3] {
        self.cpu.map(|s| (s * 100.0).floor() / 100.0)
    }
}

/// The period of a pattern in seconds, default 10 minutes.
fn period_secs(period: Option<crate::profile::HumanDuration>) -> f64 {
    period.map_or(600.0, |p| p.get().as_secs_f64().max(1e-3))
}

pub(crate) fn nanos_to_secs(nanos: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let n = nanos as f64;
    n / NANOS
}

pub(crate) fn mib_to_bytes(mib: f64) -> u64 {
    to_count(mib * MIB)
}

/// A non-negative float as a count (saturating; negative and NaN give 0).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub(crate) fn to_count(x: f64) -> u64 {
    if x > 0.0 { x as u64 } else { 0 }
}

/// `sin(2π·turns)` from plain arithmetic (Bhaskara's approximation, error below 0.2%), so
/// that results never depend on the platform's math library.
pub(crate) fn sin_turns(turns: f64) -> f64 {
    let x = turns - turns.floor();
    let (x, sign) = if x < 0.5 { (x, 1.0) } else { (x - 0.5, -1.0) };
    // x in [0, 0.5) turns = [0, π) radians; Bhaskara: 16u(π-u) / (5π² - 4u(π-u)), with u in turns.
    let p = x * (0.5 - x);
    sign * 16.0 * p / (1.25 - 4.0 * p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_approximation_is_close() {
        for i in 0..1000 {
            let t = f64::from(i) / 997.0 * 3.0 - 1.0;
            let exact = (t * std::f64::consts::TAU).sin();
            assert!(
                (sin_turns(t) - exact).abs() < 0.002,
                "{t}: {} vs {exact}",
                sin_turns(t)
            );
        }
    }

    #[test]
    fn counts_saturate() {
        assert_eq!(to_count(-1.0), 0);
        assert_eq!(to_count(f64::NAN), 0);
        assert_eq!(to_count(2.9), 2);
    }
}
