//! Workload profiles: which processes a host runs and how they behave.
//!
//! A [`Profile`] is a list of process [`ProcessGroup`]s on a [`HostSpec`], with optional
//! [`Chaos`]. The four presets (see [`Profile::preset`] and `docs/simulator.md`) are built-in
//! profiles of the same shape; a custom profile is the same document written in YAML or JSON
//! (`phoenix-sim profiles show realistic` prints a preset as a starting point, and
//! [`Profile::json_schema`] is its JSON Schema).
//!
//! ```yaml
//! name: workers
//! groups:
//!   - name: "worker-{index}"
//!     count: 20
//!     commandLine: "{path} --shard {index}"
//!     cpu: { pattern: sine, cores: 0.2, peak: 0.6, period: 10m }
//!     memory: { pattern: leaking, rssMib: 64, leakMibPerHour: 30, limitMib: 512 }
//!     lifetime: 10m..2h
//!     churnRate: 0.01
//! ```
//!
//! Errors name the field at fault (`groups[0].cpu.pattern`, `groups[1].churnRate`, ...).

mod presets;
mod spans;
mod template;

use std::collections::BTreeSet;
use std::time::Duration;

use phoenix_core::experiment::ProfilePreset;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub(crate) use spans::parse_duration;
pub use spans::{DurationRange, HumanDuration, NumberRange};
pub use template::TEMPLATE_VARIABLES;
pub(crate) use template::{Template, TemplateField};

use crate::{Error, Result};

/// The most processes (alive at once, counting the steady populations of groups) a profile
/// may describe.
pub const MAX_PROCESSES: u32 = 100_000;

/// The most processes a group may start per second.
pub const MAX_SPAWN_PER_SECOND: f64 = 10_000.0;

/// The longest duration any profile field may hold: 100 years (of 365.25 days), so that
/// every simulated timestamp stays far inside the `u64` nanoseconds it is counted in.
pub const MAX_DURATION: Duration = Duration::from_secs(3_155_760_000);

/// A workload profile: a host and the groups of processes it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    /// The profile's name.
    pub name: String,
    /// What the profile models.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The simulated host.
    #[serde(default)]
    pub host: HostSpec,
    /// The process groups, in start order: a group's `parent` must be listed before it.
    pub groups: Vec<ProcessGroup>,
    /// Crashes, CPU spikes and fork bursts on top of the groups' own behaviour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chaos: Option<Chaos>,
}

/// The simulated host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostSpec {
    /// Physical memory in MiB (for `process.memory.utilization`). Default 16384.
    #[serde(default = "default_memory_mib")]
    pub memory_mib: u64,
    /// CPU cores (for `process.cpu.utilization`). Default 8.
    #[serde(default = "default_cpus")]
    pub cpus: u32,
    /// The largest pid plus one (`/proc/sys/kernel/pid_max`); pids wrap to 300 past it.
    /// Default 32768.
    #[serde(default = "default_pid_max")]
    pub pid_max: u32,
    /// How long the host has been up when the simulation starts. Default 3 days.
    #[serde(default = "default_uptime")]
    pub uptime: HumanDuration,
}

fn default_memory_mib() -> u64 {
    16_384
}
fn default_cpus() -> u32 {
    8
}
fn default_pid_max() -> u32 {
    32_768
}
fn default_uptime() -> HumanDuration {
    HumanDuration::from_secs(3 * 86_400)
}

impl Default for HostSpec {
    fn default() -> Self {
        Self {
            memory_mib: default_memory_mib(),
            cpus: default_cpus(),
            pid_max: default_pid_max(),
            uptime: default_uptime(),
        }
    }
}

/// A group of processes of one program.
///
/// A group keeps `count` processes alive (replacing those that exit or crash, with new
/// pids), starts `spawnPerSecond` short-lived ones, or both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessGroup {
    /// Identifies the group for `parent` and `chaos.forkBursts.parents`; defaults to `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Executable name template (`process.executable.name`, `/proc/<pid>/comm`), e.g.
    /// `"worker-{index}"`.
    pub name: String,
    /// How many processes of the group are alive at any time.
    #[serde(default)]
    pub count: u32,
    /// Short-lived processes started per second, e.g. `"20..30"` (drawn every second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawn_per_second: Option<NumberRange>,
    /// Executable path template; default `/usr/bin/{name}` (empty for kernel threads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Command-line template; default `{path}`. The first word is `process.command`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_line: Option<String>,
    /// The owner's user name; empty to leave `process.owner` out (an unknown uid).
    #[serde(default = "default_owner")]
    pub owner: String,
    /// The `id` of the group whose processes are the parents (instance `i` of this group is
    /// a child of instance `i mod count` of the parent group); default pid 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// A kernel thread: no executable path, an empty command line, no memory, parent
    /// `kthreadd` (pid 2).
    #[serde(default, skip_serializing_if = "is_false")]
    pub kernel_thread: bool,
    /// How CPU use evolves.
    #[serde(default)]
    pub cpu: CpuPattern,
    /// How memory use evolves.
    #[serde(default)]
    pub memory: MemoryPattern,
    /// Disk I/O rates.
    #[serde(default, skip_serializing_if = "IoRates::is_idle")]
    pub io: IoRates,
    /// Threads per process. Default 1.
    #[serde(default = "default_threads")]
    pub threads: u32,
    /// How long each process lives, e.g. `"1s..8s"`; default for ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime: Option<DurationRange>,
    /// For processes alive when the simulation starts: how long ago they started; default
    /// at boot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ago: Option<DurationRange>,
    /// Probability, per process and scrape interval, that a process exits and is replaced
    /// by a new one (new pid): 0 (never) to 1 (every interval).
    #[serde(default)]
    pub churn_rate: f64,
    /// Whether a process that exits or crashes is replaced (counted groups only). Default
    /// true.
    #[serde(default = "default_true")]
    pub restart: bool,
    /// Delay before a replacement starts. Default `"1s"`.
    #[serde(default = "default_restart_delay")]
    pub restart_delay: DurationRange,
}

fn default_owner() -> String {
    "root".to_owned()
}
fn default_threads() -> u32 {
    1
}
fn default_true() -> bool {
    true
}
fn default_restart_delay() -> DurationRange {
    DurationRange::secs(1)
}
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_false(b: &bool) -> bool {
    !*b
}

impl ProcessGroup {
    /// A group of `count` processes named `name`, idle, owned by root.
    pub fn new(name: impl Into<String>, count: u32) -> Self {
        Self {
            id: None,
            name: name.into(),
            count,
            spawn_per_second: None,
            path: None,
            command_line: None,
            owner: default_owner(),
            parent: None,
            kernel_thread: false,
            cpu: CpuPattern::default(),
            memory: MemoryPattern::default(),
            io: IoRates::default(),
            threads: 1,
            lifetime: None,
            started_ago: None,
            churn_rate: 0.0,
            restart: true,
            restart_delay: default_restart_delay(),
        }
    }

    /// The group's identity: `id`, or `name` without one.
    pub fn key(&self) -> &str {
        self.id.as_deref().unwrap_or(&self.name)
    }
}

/// CPU pattern kinds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CpuPatternKind {
    /// `cores`, with ±10% noise.
    #[default]
    Steady,
    /// `cores`, jumping to `peak` with `spikeProbability` per scrape interval.
    Spiky,
    /// From `cores` to `peak` linearly over `period` of the process's life, then `peak`.
    Growing,
    /// Uniformly between `cores` and `peak`, redrawn every interval.
    Random,
    /// `cores` plus a sine of amplitude `peak - cores` and period `period`.
    Sine,
}

/// How a process's CPU use evolves, in cores (1.0 = one core fully busy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CpuPattern {
    /// The pattern.
    #[serde(default)]
    pub pattern: CpuPatternKind,
    /// Base CPU use in cores.
    #[serde(default)]
    pub cores: f64,
    /// Peak CPU use in cores (spiky, growing, random, sine); default `cores`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak: Option<f64>,
    /// Probability of a spike per scrape interval (spiky). Default 0.05.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spike_probability: Option<f64>,
    /// Period (sine) or ramp time (growing). Default 10m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<HumanDuration>,
    /// Share of CPU time in kernel mode (`state: system`). Default 0.2.
    #[serde(default = "default_system_share")]
    pub system_share: f64,
    /// CPU time spent waiting for I/O (`state: wait`), as a share of busy time. Default 0.
    #[serde(default)]
    pub wait_share: f64,
}

fn default_system_share() -> f64 {
    0.2
}

impl Default for CpuPattern {
    fn default() -> Self {
        Self::steady(0.0)
    }
}

impl CpuPattern {
    /// Steady use of `cores`.
    pub fn steady(cores: f64) -> Self {
        Self {
            pattern: CpuPatternKind::Steady,
            cores,
            peak: None,
            spike_probability: None,
            period: None,
            system_share: default_system_share(),
            wait_share: 0.0,
        }
    }

    /// A pattern of `kind` between `cores` and `peak`.
    pub fn between(kind: CpuPatternKind, cores: f64, peak: f64) -> Self {
        Self {
            pattern: kind,
            peak: Some(peak),
            ..Self::steady(cores)
        }
    }

    /// The peak, defaulting to `cores`.
    pub fn peak_cores(&self) -> f64 {
        self.peak.unwrap_or(self.cores).max(self.cores)
    }
}

/// Memory pattern kinds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MemoryPatternKind {
    /// `rssMib`, with ±2% noise.
    #[default]
    Steady,
    /// `rssMib`, jumping to `peakMib` with `spikeProbability` per scrape interval.
    Spiky,
    /// From `rssMib` to `peakMib` linearly over `period`, then `peakMib`.
    Growing,
    /// Uniformly between `rssMib` and `peakMib`, redrawn every interval.
    Random,
    /// `rssMib` plus a sine of amplitude `peakMib - rssMib` and period `period`.
    Sine,
    /// `rssMib` plus `leakMibPerHour` for every hour of life, without bound; above
    /// `limitMib` the process is killed (OOM) and counts as a crash.
    Leaking,
}

/// How a process's resident memory evolves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemoryPattern {
    /// The pattern.
    #[serde(default)]
    pub pattern: MemoryPatternKind,
    /// Base resident set size in MiB.
    #[serde(default)]
    pub rss_mib: f64,
    /// Peak resident set size in MiB (spiky, growing, random, sine); default `rssMib`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_mib: Option<f64>,
    /// Probability of a spike per scrape interval (spiky). Default 0.05.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spike_probability: Option<f64>,
    /// Leak rate (leaking), in MiB per hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leak_mib_per_hour: Option<f64>,
    /// Resident size above which the process is OOM-killed (leaking, growing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_mib: Option<f64>,
    /// Period (sine) or ramp time (growing). Default 10m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<HumanDuration>,
    /// Virtual memory size in MiB; default `4 × rssMib + 64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_mib: Option<f64>,
}

impl Default for MemoryPattern {
    fn default() -> Self {
        Self::steady(0.0)
    }
}

impl MemoryPattern {
    /// Steady resident memory of `rss_mib`.
    pub fn steady(rss_mib: f64) -> Self {
        Self {
            pattern: MemoryPatternKind::Steady,
            rss_mib,
            peak_mib: None,
            spike_probability: None,
            leak_mib_per_hour: None,
            limit_mib: None,
            period: None,
            virtual_mib: None,
        }
    }

    /// The peak, defaulting to `rssMib`.
    pub fn peak(&self) -> f64 {
        self.peak_mib.unwrap_or(self.rss_mib).max(self.rss_mib)
    }

    /// The virtual size in MiB.
    pub fn virtual_size(&self) -> f64 {
        self.virtual_mib
            .unwrap_or(4.0 * self.peak() + 64.0)
            .max(self.peak())
    }
}

/// Disk I/O rates of a process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IoRates {
    /// Bytes read per second, in KiB.
    #[serde(default)]
    pub read_kib_per_second: f64,
    /// Bytes written per second, in KiB.
    #[serde(default)]
    pub write_kib_per_second: f64,
}

impl IoRates {
    /// Whether the process does no I/O.
    pub fn is_idle(&self) -> bool {
        self.read_kib_per_second == 0.0 && self.write_kib_per_second == 0.0
    }
}

/// Failures on top of the groups' own behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Chaos {
    /// Probability per process and hour that a process of a counted, restartable group
    /// (kernel threads and pid 1 excepted) crashes; it is restarted with a new pid after
    /// its group's `restartDelay`.
    #[serde(default)]
    pub crashes_per_process_hour: f64,
    /// CPU spikes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_spikes: Option<CpuSpikes>,
    /// Bursts of forks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fork_bursts: Option<ForkBursts>,
}

/// Sudden CPU spikes of random processes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CpuSpikes {
    /// Probability per process and scrape interval that a spike starts.
    pub probability: f64,
    /// CPU use during a spike, in cores.
    pub cores: NumberRange,
    /// How long a spike lasts.
    pub duration: DurationRange,
}

/// Bursts of forked children (same name and command line as the parent, new pids).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForkBursts {
    /// Bursts per hour.
    pub per_hour: f64,
    /// Children per burst.
    pub size: NumberRange,
    /// How long each child lives.
    pub lifetime: DurationRange,
    /// Group ids whose processes fork; default every non-kernel counted group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<String>,
}

impl Profile {
    /// A built-in preset (`phoenix-sim profiles show NAME` prints it in full; numbers also in
    /// `docs/simulator.md`):
    ///
    /// | preset | processes alive | churn |
    /// |---|---|---|
    /// | `realistic` | 139 on an 8-core, 16 GiB server: systemd, 55 kernel threads, 19 daemons, nginx, PostgreSQL (26), Redis, memcached, Java, Node.js, gunicorn, PHP-FPM, Sidekiq, 4 Docker containers, an SSH session | ≈ 100 starts an hour, 60 of them cron jobs living 2–90 s |
    /// | `high-cardinality` | 1,539: realistic plus 500 containerd shims with unique ids, 500 pause processes, 400 idle workers with unique arguments | low |
    /// | `high-churn` | ≈ 230: realistic plus ≈ 90 short-lived | 20–30 starts per second (`sh`, `curl`, `python3`, `git`, 0.1–20 s each) |
    /// | `chaos` | 139 plus fork bursts | crashes 0.1 per process-hour with restarts, CPU spikes (1% per process and scrape, 0.5–3.5 cores, 10 s–2 min), a 400 MiB/h leak OOM-killed at 1.5 GiB, 12 fork bursts an hour of 20–200 children living 1–60 s |
    pub fn preset(preset: ProfilePreset) -> Profile {
        presets::build(preset)
    }

    /// A preset by its name (`realistic`, `high-cardinality`, `high-churn`, `chaos`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] naming `profile` for an unknown name.
    pub fn preset_named(name: &str) -> Result<Profile> {
        ProfilePreset::ALL
            .into_iter()
            .find(|p| p.as_str() == name)
            .map(Self::preset)
            .ok_or_else(|| {
                let known: Vec<_> = ProfilePreset::ALL.iter().map(|p| p.as_str()).collect();
                Error::option(
                    "profile",
                    format!("unknown preset {name:?} (known: {})", known.join(", ")),
                )
            })
    }

    /// Reads and validates a custom profile written in YAML (or JSON, which is YAML).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidField`] naming the field, or [`Error::Document`] for text that is not
    /// YAML.
    pub fn from_yaml(text: &str) -> Result<Profile> {
        let profile: Profile = serde_yaml::from_str(text).map_err(|e| yaml_error(&e))?;
        profile.validate()?;
        Ok(profile)
    }

    /// Reads and validates a custom profile file (YAML or JSON).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be read, else as [`Profile::from_yaml`].
    pub fn from_file(path: &std::path::Path) -> Result<Profile> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_yaml(&text)
    }

    /// A profile named on a command line: a preset by its name, or a profile file when the
    /// text looks like a path, i.e. contains a path separator or has an extension
    /// (`./host`, `profiles/db.yaml`, `host.yaml`). A bare word is never read as a file, so a
    /// file named `chaos` in the working directory does not shadow the `chaos` preset.
    ///
    /// ```
    /// let p = phoenix_sim::Profile::from_reference("chaos").unwrap();
    /// assert_eq!(p.name, "chaos");
    /// assert!(phoenix_sim::Profile::from_reference("./no-such-file.yaml").is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Profile::preset_named`] for a name, as [`Profile::from_file`] for a path.
    pub fn from_reference(text: &str) -> Result<Profile> {
        let path = std::path::Path::new(text);
        let looks_like_path = text.contains(std::path::MAIN_SEPARATOR)
            || text.contains('/')
            || path.extension().is_some();
        if looks_like_path {
            Self::from_file(path)
        } else {
            Self::preset_named(text)
        }
    }

    /// The profile of a command line: `file` when given, else `reference` (see
    /// [`Profile::from_reference`]), scaled to `processes` when given (see
    /// [`Profile::with_processes`]).
    ///
    /// # Errors
    ///
    /// As [`Profile::from_file`], [`Profile::from_reference`] and [`Profile::with_processes`].
    pub fn load(
        reference: &str,
        file: Option<&std::path::Path>,
        processes: Option<u32>,
    ) -> Result<Profile> {
        let profile = match file {
            Some(path) => Self::from_file(path)?,
            None => Self::from_reference(reference)?,
        };
        match processes {
            Some(n) => profile.with_processes(n),
            None => Ok(profile),
        }
    }

    /// Reads and validates a custom profile from a JSON value, as phoenix-core's
    /// `WorkloadSource::Custom { definition }` holds it.
    ///
    /// # Errors
    ///
    /// As [`Profile::from_yaml`].
    pub fn from_value(value: &serde_json::Value) -> Result<Profile> {
        // Going through YAML text gives errors with the path of the field.
        let text = serde_yaml::to_string(value).map_err(|e| Error::Document {
            message: e.to_string(),
        })?;
        Self::from_yaml(&text).map_err(|e| match e {
            Error::InvalidField { field, message } => Error::InvalidField {
                field,
                message: strip_location(&message),
            },
            other => other,
        })
    }

    /// The profile with its counted groups scaled to exactly `n` processes in all, keeping
    /// their proportions (largest remainders first); the first group, which holds pid 1,
    /// keeps at least one process. Groups that end up empty are dropped
    /// (their children's parent becomes pid 1); short-lived spawners are unchanged.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidField`] naming `processes` when `n` is 0 or above [`MAX_PROCESSES`],
    /// or when the profile has no counted group.
    pub fn with_processes(mut self, n: u32) -> Result<Profile> {
        if n == 0 || n > MAX_PROCESSES {
            return Err(Error::field(
                "processes",
                format!("must be within 1..={MAX_PROCESSES}, got {n}"),
            ));
        }
        let total: u64 = self.groups.iter().map(|g| u64::from(g.count)).sum();
        if total == 0 {
            return Err(Error::field(
                "processes",
                "the profile has no counted group to scale",
            ));
        }
        let n64 = u64::from(n);
        let mut shares: Vec<(u64, u64, usize)> = Vec::new();
        let mut assigned = 0_u64;
        for (i, group) in self.groups.iter().enumerate() {
            let exact = n64 * u64::from(group.count);
            shares.push((exact / total, exact % total, i));
            assigned += exact / total;
        }
        let mut by_remainder: Vec<(u64, usize)> = shares
            .iter()
            .filter(|(_, _, i)| self.groups[*i].count > 0)
            .map(|(_, r, i)| (*r, *i))
            .collect();
        by_remainder.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut extra = vec![0_u64; self.groups.len()];
        for (_, i) in by_remainder
            .iter()
            .take(usize::try_from(n64 - assigned).unwrap_or(0))
        {
            extra[*i] += 1;
        }
        for ((base, _, i), add) in shares.iter().zip(&extra) {
            if self.groups[*i].count > 0 {
                self.groups[*i].count = u32::try_from(base + add).unwrap_or(u32::MAX);
            }
        }
        // The first group holds pid 1 (init): it keeps a process.
        if self.groups[0].count == 0
            && self.groups[0].spawn_per_second.is_none()
            && let Some(largest) =
                (1..self.groups.len()).max_by_key(|&i| (self.groups[i].count, usize::MAX - i))
            && self.groups[largest].count > 1
        {
            self.groups[0].count = 1;
            self.groups[largest].count -= 1;
        }
        // Groups that scaled to nothing are dropped; their children's parent becomes pid 1.
        self.groups
            .retain(|g| g.count > 0 || g.spawn_per_second.is_some());
        let keys: BTreeSet<String> = self.groups.iter().map(|g| g.key().to_owned()).collect();
        for group in &mut self.groups {
            if group.parent.as_ref().is_some_and(|p| !keys.contains(p)) {
                group.parent = None;
            }
        }
        if let Some(chaos) = &mut self.chaos
            && let Some(bursts) = &mut chaos.fork_bursts
        {
            let keys: BTreeSet<&str> = self.groups.iter().map(ProcessGroup::key).collect();
            bursts.parents.retain(|p| keys.contains(p.as_str()));
        }
        self.validate()?;
        Ok(self)
    }

    /// How many processes the counted groups keep alive.
    pub fn steady_processes(&self) -> u64 {
        self.groups.iter().map(|g| u64::from(g.count)).sum()
    }

    /// The profile as YAML.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_default()
    }

    /// The JSON Schema of profile documents.
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(Profile)).unwrap_or_default()
    }

    /// Checks every field; the first problem is returned, naming its field.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidField`].
    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() {
            return Err(Error::field("name", "must not be empty"));
        }
        let host = &self.host;
        check(host.memory_mib > 0, "host.memoryMib", "must be positive")?;
        check(
            (1..=1024).contains(&host.cpus),
            "host.cpus",
            format!("must be within 1..=1024, got {}", host.cpus),
        )?;
        at_most(host.uptime.get(), "host.uptime")?;
        check(
            (1024..=4_194_304).contains(&host.pid_max),
            "host.pidMax",
            format!("must be within 1024..=4194304, got {}", host.pid_max),
        )?;
        if self.groups.is_empty() {
            return Err(Error::field("groups", "must list at least one group"));
        }
        let mut keys: BTreeSet<&str> = BTreeSet::new();
        let mut total: u64 = 0;
        for (i, group) in self.groups.iter().enumerate() {
            let at = |field: &str| format!("groups[{i}].{field}");
            group.validate(i, &keys, host)?;
            if !keys.insert(group.key()) {
                let field = if group.id.is_some() { "id" } else { "name" };
                return Err(Error::field(
                    at(field),
                    format!(
                        "duplicate group {:?}; give the group a distinct id",
                        group.key()
                    ),
                ));
            }
            total += u64::from(group.count);
        }
        if total > u64::from(MAX_PROCESSES) {
            return Err(Error::field(
                "groups",
                format!("{total} processes in all, above the maximum of {MAX_PROCESSES}"),
            ));
        }
        if total + 300 >= u64::from(host.pid_max) {
            return Err(Error::field(
                "host.pidMax",
                format!("{} leaves no room for {total} processes", host.pid_max),
            ));
        }
        if let Some(chaos) = &self.chaos {
            chaos.validate(&keys)?;
        }
        Ok(())
    }
}

impl ProcessGroup {
    fn validate(&self, i: usize, earlier: &BTreeSet<&str>, host: &HostSpec) -> Result<()> {
        let at = |field: &str| format!("groups[{i}].{field}");
        if self.name.is_empty() {
            return Err(Error::field(at("name"), "must not be empty"));
        }
        if let Some(id) = &self.id {
            check(!id.is_empty(), at("id"), "must not be empty")?;
        }
        Template::compile(&self.name, TemplateField::Name)
            .map_err(|m| Error::field(at("name"), m))?;
        if let Some(path) = &self.path {
            Template::compile(path, TemplateField::Path)
                .map_err(|m| Error::field(at("path"), m))?;
        }
        if let Some(cmd) = &self.command_line {
            Template::compile(cmd, TemplateField::CommandLine)
                .map_err(|m| Error::field(at("commandLine"), m))?;
        }
        check(
            self.count <= MAX_PROCESSES,
            at("count"),
            format!("must be within 0..={MAX_PROCESSES}, got {}", self.count),
        )?;
        match &self.spawn_per_second {
            None => check(
                self.count > 0,
                at("count"),
                "must be positive unless the group has spawnPerSecond",
            )?,
            Some(rate) => range(
                rate.min,
                rate.max,
                0.0,
                MAX_SPAWN_PER_SECOND,
                &at("spawnPerSecond"),
            )?,
        }
        if self.spawn_per_second.is_some() && self.lifetime.is_none() {
            return Err(Error::field(
                at("lifetime"),
                "is required for groups with spawnPerSecond",
            ));
        }
        check(
            (1..=100_000).contains(&self.threads),
            at("threads"),
            format!("must be within 1..=100000, got {}", self.threads),
        )?;
        probability(self.churn_rate, &at("churnRate"))?;
        if let Some(parent) = &self.parent {
            check(
                earlier.contains(parent.as_str()),
                at("parent"),
                format!("{parent:?} must be the id of a group listed before this one"),
            )?;
        }
        for (field, span) in [
            ("lifetime", self.lifetime),
            ("startedAgo", self.started_ago),
            ("restartDelay", Some(self.restart_delay)),
        ] {
            if let Some(span) = span {
                check(
                    span.min <= span.max,
                    at(field),
                    format!("minimum {span} is above the maximum"),
                )?;
                at_most(span.max, &at(field))?;
            }
        }
        if let Some(lifetime) = self.lifetime {
            check(
                !lifetime.min.is_zero(),
                at("lifetime"),
                "must be longer than zero",
            )?;
        }
        if let Some(ago) = self.started_ago {
            check(
                ago.max <= host.uptime.get(),
                at("startedAgo"),
                format!("{ago} is longer than the host's uptime {}", host.uptime),
            )?;
        }
        self.cpu.validate(&at("cpu"), host)?;
        self.memory.validate(&at("memory"), host)?;
        let io = &self.io;
        for (field, v) in [
            ("readKibPerSecond", io.read_kib_per_second),
            ("writeKibPerSecond", io.write_kib_per_second),
        ] {
            range(
                v,
                v,
                0.0,
                16.0 * 1024.0 * 1024.0,
                &format!("groups[{i}].io.{field}"),
            )?;
        }
        Ok(())
    }
}

impl CpuPattern {
    fn validate(&self, at: &str, host: &HostSpec) -> Result<()> {
        let max = f64::from(host.cpus);
        range(self.cores, self.cores, 0.0, max, &format!("{at}.cores"))?;
        if let Some(peak) = self.peak {
            range(peak, peak, self.cores, max, &format!("{at}.peak"))?;
        }
        if let Some(p) = self.spike_probability {
            probability(p, &format!("{at}.spikeProbability"))?;
        }
        if let Some(period) = self.period {
            check(
                !period.get().is_zero(),
                format!("{at}.period"),
                "must be longer than zero",
            )?;
            at_most(period.get(), &format!("{at}.period"))?;
        }
        probability(self.system_share, &format!("{at}.systemShare"))?;
        probability(self.wait_share, &format!("{at}.waitShare"))?;
        check(
            self.system_share + self.wait_share <= 1.0,
            format!("{at}.waitShare"),
            "systemShare + waitShare must not exceed 1",
        )
    }
}

impl MemoryPattern {
    fn validate(&self, at: &str, host: &HostSpec) -> Result<()> {
        #[allow(clippy::cast_precision_loss)]
        let max = (host.memory_mib as f64) * 64.0;
        range(
            self.rss_mib,
            self.rss_mib,
            0.0,
            max,
            &format!("{at}.rssMib"),
        )?;
        if let Some(peak) = self.peak_mib {
            range(peak, peak, self.rss_mib, max, &format!("{at}.peakMib"))?;
        }
        if let Some(p) = self.spike_probability {
            probability(p, &format!("{at}.spikeProbability"))?;
        }
        if let Some(limit) = self.limit_mib {
            range(limit, limit, self.rss_mib, max, &format!("{at}.limitMib"))?;
        }
        if let Some(v) = self.virtual_mib {
            range(v, v, self.peak(), max * 16.0, &format!("{at}.virtualMib"))?;
        }
        if let Some(period) = self.period {
            check(
                !period.get().is_zero(),
                format!("{at}.period"),
                "must be longer than zero",
            )?;
            at_most(period.get(), &format!("{at}.period"))?;
        }
        match (self.pattern, self.leak_mib_per_hour) {
            (MemoryPatternKind::Leaking, None) => Err(Error::field(
                format!("{at}.leakMibPerHour"),
                "is required for the leaking pattern",
            )),
            (_, Some(leak)) => range(leak, leak, 0.0, max, &format!("{at}.leakMibPerHour")),
            _ => Ok(()),
        }
    }
}

impl Chaos {
    fn validate(&self, keys: &BTreeSet<&str>) -> Result<()> {
        range(
            self.crashes_per_process_hour,
            self.crashes_per_process_hour,
            0.0,
            3600.0,
            "chaos.crashesPerProcessHour",
        )?;
        if let Some(spikes) = &self.cpu_spikes {
            probability(spikes.probability, "chaos.cpuSpikes.probability")?;
            range(
                spikes.cores.min,
                spikes.cores.max,
                0.0,
                1024.0,
                "chaos.cpuSpikes.cores",
            )?;
            check(
                spikes.duration.min <= spikes.duration.max && !spikes.duration.max.is_zero(),
                "chaos.cpuSpikes.duration",
                "must be a positive range",
            )?;
            at_most(spikes.duration.max, "chaos.cpuSpikes.duration")?;
        }
        if let Some(bursts) = &self.fork_bursts {
            range(
                bursts.per_hour,
                bursts.per_hour,
                0.0,
                3600.0,
                "chaos.forkBursts.perHour",
            )?;
            range(
                bursts.size.min,
                bursts.size.max,
                0.0,
                10_000.0,
                "chaos.forkBursts.size",
            )?;
            check(
                bursts.lifetime.min <= bursts.lifetime.max && !bursts.lifetime.min.is_zero(),
                "chaos.forkBursts.lifetime",
                "must be a positive range",
            )?;
            at_most(bursts.lifetime.max, "chaos.forkBursts.lifetime")?;
            for (i, parent) in bursts.parents.iter().enumerate() {
                check(
                    keys.contains(parent.as_str()),
                    format!("chaos.forkBursts.parents[{i}]"),
                    format!("{parent:?} is not the id of a group"),
                )?;
            }
        }
        Ok(())
    }
}

fn check(ok: bool, field: impl Into<String>, message: impl Into<String>) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::field(field, message))
    }
}

fn at_most(d: Duration, field: &str) -> Result<()> {
    check(
        d <= MAX_DURATION,
        field,
        format!(
            "{} is longer than the maximum of {}",
            humantime::format_duration(d),
            humantime::format_duration(MAX_DURATION)
        ),
    )
}

fn probability(p: f64, field: &str) -> Result<()> {
    check(
        p.is_finite() && (0.0..=1.0).contains(&p),
        field,
        format!("must be within 0..=1, got {p}"),
    )
}

fn range(min: f64, max: f64, lowest: f64, highest: f64, field: &str) -> Result<()> {
    check(
        min.is_finite() && max.is_finite() && min >= lowest && max <= highest && min <= max,
        field,
        if min == max {
            format!("must be within {lowest}..={highest}, got {min}")
        } else {
            format!("must be a range within {lowest}..={highest}, got {min}..{max}")
        },
    )
}

/// Turns a serde_yaml error into one naming the field: `groups[0].count: invalid value...`.
fn yaml_error(e: &serde_yaml::Error) -> Error {
    let text = e.to_string();
    // serde_yaml writes "path.to.field: message at line L column C" when it knows the path.
    if let Some((path, message)) = text.split_once(": ")
        && !path.contains(' ')
        && !path.is_empty()
        && path != "."
    {
        return Error::field(path, message);
    }
    if let Some(field) = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| text.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next())
    {
        return Error::field(field, text.clone());
    }
    Error::Document { message: text }
}

fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Parses a humantime duration for a field or option, naming it in the error.
///
/// # Errors
///
/// [`Error::InvalidOption`] naming `option`.
pub fn parse_duration_option(option: &str, text: &str) -> Result<Duration> {
    parse_duration(text).map_err(|m| Error::option(option, m))
}

/// Parses a command line's duration such as `30s`, `10m` or `1h 30m`; zero is refused. Made
/// for clap's `value_parser`.
///
/// ```
/// use std::time::Duration;
/// use phoenix_sim::profile::parse_positive_duration;
///
/// assert_eq!(parse_positive_duration("1m").unwrap(), Duration::from_secs(60));
/// assert!(parse_positive_duration("0s").is_err());
/// assert!(parse_positive_duration("soon").is_err());
/// ```
///
/// # Errors
///
/// [`Error::InvalidOption`] for text that is not a duration, or a zero duration.
pub fn parse_positive_duration(text: &str) -> Result<Duration> {
    let d = parse_duration_option("duration", text)?;
    if d.is_zero() {
        return Err(Error::option("duration", "must be longer than zero"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests;
