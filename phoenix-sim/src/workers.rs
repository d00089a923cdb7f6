//! Real mode (Linux): bounded worker processes with distinct names that burn CPU and hold
//! memory by pattern.
//!
//! [`plan`] turns a profile's counted groups into worker specs and refuses, before anything
//! starts, a profile that would exceed the [`Caps`] (process count, total peak memory, total
//! peak CPU as a share of this host's cores) or that real mode cannot run (spawn rates,
//! kernel threads, names longer than the 15 bytes of `/proc/<pid>/comm`, duplicate names,
//! more than one core per worker, unbounded leaks).
//!
//! [`Supervisor::spawn`] starts each worker by running an executable (normally the
//! `phoenix-sim` binary itself) with the hidden argument [`WORKER_COMMAND`] and the spec as
//! JSON; that executable calls [`worker_main`]. The worker names itself with
//! `prctl(PR_SET_NAME)` (what `/proc/<pid>/comm` and the scraper's
//! `process.executable.name` show), asks for `SIGKILL` when its parent dies
//! (`prctl(PR_SET_PDEATHSIG)`), then checks that its parent is still the supervisor (it
//! exits otherwise, closing the race with a parent that died first). So every worker dies
//! with the supervisor, even when the supervisor is killed with `SIGKILL`; a supervisor that
//! stops normally kills and reaps its workers itself. Workers whose lifetime ends, or that
//! pass their memory limit, exit and are replaced with new pids, after the group's
//! `restartDelay`, if their group restarts.
//!
//! Real mode runs a profile's names, CPU and memory patterns, lifetimes, memory limits and
//! restart policy (`restart`, `restartDelay`). Fields that describe what the scraper would
//! see of a simulated process but that a worker cannot be made to show are not applied:
//! [`ignored_fields`] lists them for a profile (the CLI prints them as warnings). They are
//! `commandLine` and `path` (a worker's command line and executable are the supervising
//! binary's), `owner` (workers run as the supervisor's user), `threads` (one thread),
//! `io` (no disk I/O), `startedAgo` (workers start now), `churnRate` (no scrape interval to
//! apply it to) and `chaos`.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::engine::process::{Origin, Proc};
use crate::profile::{MemoryPatternKind, ProcessGroup, Profile, Template, TemplateField};
use crate::{Error, Result};

/// The hidden first argument that makes the `phoenix-sim` binary run as a worker.
pub const WORKER_COMMAND: &str = "__worker";

/// The most workers real mode ever runs, whatever the caps say.
pub const HARD_MAX_PROCESSES: u32 = 1024;

/// The longest name `/proc/<pid>/comm` holds.
pub const MAX_NAME_BYTES: usize = 15;

/// The resident memory of a worker that holds nothing, in MiB: the supervising binary's
/// mapped code and libc (about 4.5 MiB for a release build, 9 MiB for a debug build, as
/// `/proc/<pid>/status` `VmRSS` shows). The memory cap counts it once per worker on top of
/// the memory the profile makes the worker hold.
pub const WORKER_BASELINE_MIB: f64 = 10.0;

/// A profile field real mode does not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredField {
    /// The field's path, e.g. `groups[1].commandLine`.
    pub field: String,
    /// Why real mode does not apply it.
    pub reason: &'static str,
}

/// The fields of `profile` that real mode does not apply (see the module documentation):
/// those set to something other than their defaults.
pub fn ignored_fields(profile: &Profile) -> Vec<IgnoredField> {
    let mut ignored = Vec::new();
    let mut push =
        |field: String, reason: &'static str| ignored.push(IgnoredField { field, reason });
    for (i, group) in profile.groups.iter().enumerate() {
        let at = |field: &str| format!("groups[{i}].{field}");
        if group.command_line.is_some() {
            push(
                at("commandLine"),
                "a worker's command line is the supervising binary's",
            );
        }
        if group.path.is_some() {
            push(
                at("path"),
                "a worker's executable is the supervising binary",
            );
        }
        if group.owner != ProcessGroup::new("", 0).owner {
            push(at("owner"), "workers run as the supervisor's user");
        }
        if group.threads > 1 {
            push(at("threads"), "a worker runs one thread");
        }
        if !group.io.is_idle() {
            push(at("io"), "workers do no disk I/O");
        }
        if group.started_ago.is_some() {
            push(at("startedAgo"), "workers start now");
        }
        if group.churn_rate > 0.0 {
            push(
                at("churnRate"),
                "real mode has no scrape interval to apply it to",
            );
        }
    }
    if profile.chaos.is_some() {
        push("chaos".to_owned(), "real mode does not inject chaos");
    }
    ignored
}

/// Hard limits real mode checks before starting anything.
#[derive(Debug, Clone, PartialEq)]
pub struct Caps {
    /// Most workers alive at once (at most [`HARD_MAX_PROCESSES`]).
    pub max_processes: u32,
    /// Most memory all workers may hold together at their peaks, in MiB.
    pub max_memory_mib: u64,
    /// Most CPU all workers may use together at their peaks, as a share of this host's
    /// cores (0..=1).
    pub max_cpu_share: f64,
}

impl Default for Caps {
    /// 64 processes, 1 GiB, half of the cores.
    fn default() -> Self {
        Self {
            max_processes: 64,
            max_memory_mib: 1024,
            max_cpu_share: 0.5,
        }
    }
}

/// One worker to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerSpec {
    /// Its name (`/proc/<pid>/comm`).
    pub name: String,
    /// The group it belongs to (its CPU and memory patterns, lifetime, restart policy).
    pub group: ProcessGroup,
    /// The instance index within the group.
    pub index: u32,
    /// Seed of its noise.
    pub seed: u64,
}

/// What the worker receives on its command line.
#[derive(Debug, Serialize, Deserialize)]
struct WorkerArgs {
    spec: WorkerSpec,
    parent: u32,
}

/// Turns `profile` into worker specs, refusing it if it breaks a cap or real mode's rules.
///
/// # Errors
///
/// [`Error::InvalidField`] naming the field real mode cannot run, [`Error::InvalidOption`]
/// for caps out of range, [`Error::CapExceeded`] for a profile above a cap.
pub fn plan(profile: &Profile, caps: &Caps, seed: u64) -> Result<Vec<WorkerSpec>> {
    profile.validate()?;
    if caps.max_processes == 0 || caps.max_processes > HARD_MAX_PROCESSES {
        return Err(Error::option(
            "--max-processes",
            format!(
                "must be within 1..={HARD_MAX_PROCESSES}, got {}",
                caps.max_processes
            ),
        ));
    }
    if !(caps.max_cpu_share > 0.0 && caps.max_cpu_share <= 1.0) {
        return Err(Error::option(
            "--max-cpu",
            format!(
                "must be within 0..=1 (a share of the cores), got {}",
                caps.max_cpu_share
            ),
        ));
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut specs = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    let (mut memory, mut cpu) = (0.0_f64, 0.0_f64);
    for (i, group) in profile.groups.iter().enumerate() {
        let at = |field: &str| format!("groups[{i}].{field}");
        if group.spawn_per_second.is_some() {
            return Err(Error::field(
                at("spawnPerSecond"),
                "real mode runs counted groups only",
            ));
        }
        if group.kernel_thread {
            return Err(Error::field(
                at("kernelThread"),
                "real mode cannot start kernel threads",
            ));
        }
        if group.cpu.peak_cores() > 1.0 {
            return Err(Error::field(
                at("cpu.peak"),
                "a worker burns at most one core",
            ));
        }
        let peak_mib = match group.memory.pattern {
            MemoryPatternKind::Leaking => group.memory.limit_mib.ok_or_else(|| {
                Error::field(
                    at("memory.limitMib"),
                    "real mode needs a limit for a leaking worker",
                )
            })?,
            _ => group.memory.peak(),
        };
        let template = Template::compile(&group.name, TemplateField::Name)
            .map_err(|m| Error::field(at("name"), m))?;
        for index in 0..group.count {
            let mut name = String::new();
            template.render(&mut name, u64::from(index), "", "", &mut rng);
            if name.len() > MAX_NAME_BYTES || name.contains('\0') {
                return Err(Error::field(
                    at("name"),
                    format!("{name:?} does not fit the {MAX_NAME_BYTES} bytes of /proc/<pid>/comm"),
                ));
            }
            if !names.insert(name.clone()) {
                return Err(Error::field(
                    at("name"),
                    format!("{name:?} is not distinct; use {{index}} in the name"),
                ));
            }
            // Workers vary by ±30% around the pattern, as simulated processes do, on top of
            // their own baseline.
            memory += peak_mib * 1.3 + WORKER_BASELINE_MIB;
            cpu += group.cpu.peak_cores().min(1.0) * 1.3;
            specs.push(WorkerSpec {
                name,
                group: group.clone(),
                index,
                seed: rng.u64(..),
            });
        }
    }
    let count = u32::try_from(specs.len()).unwrap_or(u32::MAX);
    if count > caps.max_processes {
        return Err(Error::CapExceeded {
            message: format!(
                "the profile needs {count} processes, above the cap of {} (--max-processes)",
                caps.max_processes
            ),
        });
    }
    #[allow(clippy::cast_precision_loss)]
    if memory > caps.max_memory_mib as f64 {
        return Err(Error::CapExceeded {
            message: format!(
                "the workers may hold up to {memory:.0} MiB together ({WORKER_BASELINE_MIB} MiB baseline each included), above the cap of {} MiB (--max-memory-mib)",
                caps.max_memory_mib
            ),
        });
    }
    #[allow(clippy::cast_precision_loss)]
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get) as f64;
    if cpu > caps.max_cpu_share * cores {
        return Err(Error::CapExceeded {
            message: format!(
                "the workers may use up to {cpu:.2} cores together, above the cap of {:.0}% of {cores} cores (--max-cpu)",
                caps.max_cpu_share * 100.0
            ),
        });
    }
    Ok(specs)
}

/// A running worker.
#[derive(Debug)]
pub struct Worker {
    /// Its spec.
    pub spec: WorkerSpec,
    /// Its pid.
    pub pid: u32,
    child: Child,
}

/// Starts, replaces and finally kills the workers.
///
/// Workers ask the kernel for `SIGKILL` when their parent dies (`PR_SET_PDEATHSIG`). On
/// Linux that parent is the *thread* that spawned them, not the process: a worker is
/// killed as soon as the thread that called [`Supervisor::spawn`] (or, for replacements,
/// [`Supervisor::run`]) exits, even while the process lives on. Call both from a thread
/// that lives as long as the workers should, such as the main thread or a dedicated
/// `std::thread`; never from a pooled thread (for example a tokio blocking-pool thread),
/// which may be retired at any time and take the workers with it.
#[derive(Debug)]
pub struct Supervisor {
    exe: PathBuf,
    workers: Vec<Worker>,
    /// Exited workers waiting for their restart delay: (when, spec).
    restarts: Vec<(Instant, WorkerSpec)>,
    rng: fastrand::Rng,
    starts: u64,
    exits: u64,
}

impl Supervisor {
    /// Starts one worker per spec by running `exe WORKER_COMMAND <spec>`, and waits until
    /// every worker carries its name (at most 5 s).
    ///
    /// # Errors
    ///
    /// [`Error::Worker`] if a worker cannot be started or does not name itself in time; the
    /// workers already started are killed.
    pub fn spawn(exe: &Path, specs: Vec<WorkerSpec>) -> Result<Supervisor> {
        let seed = specs.first().map_or(0, |s| s.seed);
        let mut supervisor = Supervisor {
            exe: exe.to_path_buf(),
            workers: Vec::with_capacity(specs.len()),
            restarts: Vec::new(),
            rng: fastrand::Rng::with_seed(seed),
            starts: 0,
            exits: 0,
        };
        for spec in specs {
            let worker = supervisor.start(spec)?;
            supervisor.workers.push(worker);
        }
        supervisor.wait_named(Duration::from_secs(5))?;
        Ok(supervisor)
    }

    fn start(&mut self, spec: WorkerSpec) -> Result<Worker> {
        let args = WorkerArgs {
            spec,
            parent: std::process::id(),
        };
        let json = serde_json::to_string(&args).map_err(|e| Error::Worker {
            message: format!("encoding the worker spec: {e}"),
        })?;
        let child = Command::new(&self.exe)
            .arg(WORKER_COMMAND)
            .arg(json)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| Error::Worker {
                message: format!("starting {}: {e}", self.exe.display()),
            })?;
        self.starts += 1;
        Ok(Worker {
            pid: child.id(),
            spec: args.spec,
            child,
        })
    }

    fn wait_named(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let missing: Vec<&Worker> = self
                .workers
                .iter()
                .filter(|w| comm(w.pid).as_deref() != Some(w.spec.name.as_str()))
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Worker {
                    message: format!(
                        "{} workers did not name themselves within {timeout:?} (first: {})",
                        missing.len(),
                        missing[0].spec.name
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The running workers.
    pub fn workers(&self) -> &[Worker] {
        &self.workers
    }

    /// Workers started so far (replacements included).
    pub fn starts(&self) -> u64 {
        self.starts
    }

    /// Workers that exited so far.
    pub fn exits(&self) -> u64 {
        self.exits
    }

    /// Supervises until `duration` passes (for ever with `None`), `stop` is set, or no
    /// worker is left running or waiting to restart: reaps workers that exit and drops them
    /// from [`workers`](Self::workers); if their group restarts, starts a replacement (new
    /// pid) once the group's `restartDelay` has passed and calls `on_change` with it. Then
    /// kills and reaps every worker.
    ///
    /// # Errors
    ///
    /// [`Error::Worker`] if a replacement cannot be started.
    pub fn run(
        &mut self,
        duration: Option<Duration>,
        stop: &AtomicBool,
        on_change: &mut dyn FnMut(&Worker),
    ) -> Result<()> {
        let started = Instant::now();
        while !stop.load(Ordering::Relaxed) && duration.is_none_or(|d| started.elapsed() < d) {
            self.reap();
            let now = Instant::now();
            let mut k = 0;
            while k < self.restarts.len() {
                if self.restarts[k].0 <= now {
                    let (_, spec) = self.restarts.swap_remove(k);
                    let worker = self.start(spec)?;
                    self.workers.push(worker);
                    if let Some(worker) = self.workers.last() {
                        on_change(worker);
                    }
                } else {
                    k += 1;
                }
            }
            if self.workers.is_empty() && self.restarts.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop();
        Ok(())
    }

    /// Reaps the workers that exited, counts them, drops them from the list and queues the
    /// restart of those whose group restarts.
    fn reap(&mut self) {
        let mut i = 0;
        while i < self.workers.len() {
            if matches!(self.workers[i].child.try_wait(), Ok(Some(_))) {
                let worker = self.workers.remove(i);
                self.exits += 1;
                let group = &worker.spec.group;
                if group.restart {
                    let (lo, hi) = (group.restart_delay.min, group.restart_delay.max);
                    let delay = lo + hi.saturating_sub(lo).mul_f64(self.rng.f64());
                    let at = Instant::now()
                        .checked_add(delay)
                        .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365));
                    self.restarts.push((at, worker.spec));
                }
            } else {
                i += 1;
            }
        }
    }

    /// Kills and reaps every worker and forgets pending restarts.
    pub fn stop(&mut self) {
        self.restarts.clear();
        for worker in &mut self.workers {
            let _ = worker.child.kill();
        }
        for worker in &mut self.workers {
            let _ = worker.child.wait();
        }
        self.workers.clear();
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The name in `/proc/<pid>/comm`, if the process exists.
pub fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end_matches('\n').to_owned())
}

/// The body of a worker process: `args` is the JSON spec the supervisor passed after
/// [`WORKER_COMMAND`]. Returns when the worker's lifetime ends or its memory passes its
/// limit (a simulated OOM kill), or never.
///
/// # Errors
///
/// [`Error::Worker`] if the spec is not valid or the process cannot name itself; the
/// worker also returns (as an error) if its parent is no longer the supervisor.
pub fn worker_main(args: &str) -> Result<()> {
    let worker_error = |message: String| Error::Worker { message };
    let args: WorkerArgs = serde_json::from_str(args)
        .map_err(|e| worker_error(format!("invalid worker spec: {e}")))?;
    let name = CString::new(args.spec.name.clone())
        .map_err(|_| worker_error("worker name holds a NUL byte".to_owned()))?;
    nix::sys::prctl::set_name(&name).map_err(|e| worker_error(format!("PR_SET_NAME: {e}")))?;
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| worker_error(format!("PR_SET_PDEATHSIG: {e}")))?;
    if nix::unistd::getppid().as_raw() != i32::try_from(args.parent).unwrap_or(-1) {
        return Err(worker_error("the supervisor is gone".to_owned()));
    }
    let group = &args.spec.group;
    let mut rng = fastrand::Rng::with_seed(args.spec.seed);
    let start_ns = unix_nanos();
    let proc = Proc::new(
        0,
        group,
        args.spec.index,
        Origin::Counted,
        start_ns,
        &mut rng,
    );
    let lifetime = group.lifetime.map(|l| {
        let span = l.max.saturating_sub(l.min);
        l.min + span.mul_f64(rng.f64())
    });
    let started = Instant::now();
    let mut memory: Vec<u8> = Vec::new();
    let slice = Duration::from_millis(100);
    loop {
        if lifetime.is_some_and(|l| started.elapsed() >= l) {
            return Ok(());
        }
        let now = unix_nanos();
        let rss_mib = proc.rss_mib(group, now, &mut rng);
        if group.memory.limit_mib.is_some_and(|limit| rss_mib > limit) {
            return Ok(());
        }
        let bytes = usize::try_from(crate::engine::process::mib_to_bytes(rss_mib)).unwrap_or(0);
        if bytes > memory.len() {
            memory.resize(bytes, 0);
            // Touch every page so that it is resident.
            for i in (0..memory.len()).step_by(4096) {
                memory[i] = 1;
            }
        } else {
            memory.truncate(bytes);
            memory.shrink_to(bytes);
        }
        let cores = proc.cores(group, now, &mut rng).clamp(0.0, 1.0);
        let busy = slice.mul_f64(cores);
        let slice_start = Instant::now();
        let mut x = 0_u64;
        while slice_start.elapsed() < busy {
            for i in 0..1000_u64 {
                x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
            }
        }
        if let Some(rest) = slice.checked_sub(slice_start.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(yaml: &str) -> Profile {
        Profile::from_yaml(yaml).unwrap()
    }

    const TWENTY: &str = r#"
name: real
groups:
  - name: "phx-w{index}"
    count: 20
    cpu: { pattern: steady, cores: 0.01 }
    memory: { pattern: steady, rssMib: 4 }
"#;

    #[test]
    fn plans_name_every_worker() {
        let specs = plan(&profile(TWENTY), &Caps::default(), 1).unwrap();
        assert_eq!(specs.len(), 20);
        assert_eq!(specs[7].name, "phx-w7");
    }

    #[test]
    fn caps_are_enforced_up_front() {
        let caps = Caps {
            max_processes: 10,
            ..Caps::default()
        };
        assert!(matches!(
            plan(&profile(TWENTY), &caps, 1),
            Err(Error::CapExceeded { .. })
        ));
        let big = TWENTY.replace("rssMib: 4", "rssMib: 100");
        assert!(matches!(
            plan(&profile(&big), &Caps::default(), 1),
            Err(Error::CapExceeded { .. })
        ));
        let busy = TWENTY.replace("cores: 0.01", "cores: 0.9");
        assert!(matches!(
            plan(&profile(&busy), &Caps::default(), 1),
            Err(Error::CapExceeded { .. })
        ));
        let caps = Caps {
            max_processes: 5000,
            ..Caps::default()
        };
        assert_eq!(
            plan(&profile(TWENTY), &caps, 1).unwrap_err().field_name(),
            Some("--max-processes")
        );
    }

    #[test]
    fn real_mode_rules_name_the_field() {
        let long = TWENTY.replace("phx-w{index}", "a-very-long-worker-{index}");
        assert_eq!(
            plan(&profile(&long), &Caps::default(), 1)
                .unwrap_err()
                .field_name(),
            Some("groups[0].name")
        );
        let same = TWENTY.replace("phx-w{index}", "phx-w");
        assert_eq!(
            plan(&profile(&same), &Caps::default(), 1)
                .unwrap_err()
                .field_name(),
            Some("groups[0].name")
        );
        let leak = TWENTY.replace(
            "pattern: steady, rssMib: 4",
            "pattern: leaking, rssMib: 4, leakMibPerHour: 10",
        );
        assert_eq!(
            plan(&profile(&leak), &Caps::default(), 1)
                .unwrap_err()
                .field_name(),
            Some("groups[0].memory.limitMib")
        );
    }

    #[test]
    fn the_memory_cap_counts_each_workers_baseline() {
        // 20 workers holding 4 MiB (+30%) need 104 MiB, plus 20 baselines.
        let caps = Caps {
            max_memory_mib: 200,
            ..Caps::default()
        };
        let err = plan(&profile(TWENTY), &caps, 1).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Error::CapExceeded { .. }), "{message}");
        assert!(message.contains("304 MiB"), "{message}");
        assert!(message.contains("(--max-memory-mib)"), "{message}");
        let caps = Caps {
            max_memory_mib: 304,
            ..Caps::default()
        };
        assert_eq!(plan(&profile(TWENTY), &caps, 1).unwrap().len(), 20);
    }

    #[test]
    fn invalid_caps_name_the_flags() {
        let caps = Caps {
            max_cpu_share: 1.5,
            ..Caps::default()
        };
        assert_eq!(
            plan(&profile(TWENTY), &caps, 1).unwrap_err().field_name(),
            Some("--max-cpu")
        );
    }

    #[test]
    fn ignored_fields_are_listed() {
        assert!(ignored_fields(&profile(TWENTY)).is_empty());
        let custom =
            Profile::from_yaml(include_str!("../tests/fixtures/custom-profile.yaml")).unwrap();
        let fields: Vec<String> = ignored_fields(&custom)
            .into_iter()
            .map(|f| f.field)
            .collect();
        assert_eq!(
            fields,
            [
                "groups[1].commandLine",
                "groups[1].path",
                "groups[1].owner",
                "groups[1].threads",
                "groups[1].io",
                "groups[1].startedAgo",
                "groups[1].churnRate",
                "chaos"
            ]
        );
    }
}
