//! This host's `/proc`, read into a snapshot as the hostmetrics `process` scraper would.
//!
//! What is read, per process, in pid order (as the scraper lists `/proc`):
//!
//! | attribute / metric | source |
//! |---|---|
//! | `process.pid`, `process.parent_pid` | `/proc/<pid>/stat` |
//! | `process.executable.name` | `Name:` of `/proc/<pid>/status` (the `comm`, at most 15 bytes); a 15-byte name is extended to the base name of the command's first word when that starts with it, as gopsutil does |
//! | `process.executable.path` | the target of `/proc/<pid>/exe` |
//! | `process.command`, `process.command_line` | `/proc/<pid>/cmdline`: the first argument, and all arguments joined by spaces |
//! | `process.owner` | the name of the real uid (`Uid:` of `status`) |
//! | start time of every point | `starttime` of `stat` plus the boot time, in milliseconds |
//! | `process.cpu.time` (s) | `utime`, `stime` and `delayacct_blkio_ticks` of `stat`, in clock ticks |
//! | `process.memory.usage` / `.virtual` (By) | `resident` and `size` of `/proc/<pid>/statm`, in pages |
//! | `process.disk.io` (By), `process.disk.operations` | `read_bytes`/`write_bytes` and `syscr`/`syscw` of `/proc/<pid>/io` |
//! | `process.cpu.utilization` | CPU time difference since the previous capture, per elapsed second and CPU |
//! | `process.memory.utilization` | RSS as a percentage of `MemTotal` (a float32, as gopsutil computes it) |
//! | `process.threads`, `process.context_switches` | `Threads:`, `voluntary_ctxt_switches`, `nonvoluntary_ctxt_switches` of `status` |
//! | `process.open_file_descriptors` | entries of `/proc/<pid>/fd` |
//! | `process.paging.faults` | `majflt`, `minflt` of `stat` |
//!
//! The scraper's behaviour on errors is kept: a process whose name cannot be read (it
//! exited meanwhile) is skipped; an unreadable executable path (`/proc/<pid>/exe` of
//! another user's process or of a kernel thread, without privileges) is reported as an
//! empty path; an unreadable command line leaves `process.command` and
//! `process.command_line` out; an unknown uid leaves `process.owner` out; a metric whose
//! source cannot be read (typically `/proc/<pid>/io` of another user's process, which
//! needs `CAP_SYS_PTRACE`) is left out of that process's metrics. The scraper reports such
//! problems as partial scrape errors (unless muted with `mute_process_io_error` and
//! friends); here they are counted in [`CaptureReport`].

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use phoenix_core::telemetry::schema::{
    PROCESS_SCHEMA_URL, PROCESS_SCRAPER_SCOPE, ResourceAttribute,
};
use phoenix_core::telemetry::{
    AnyValue, Attributes, DataPoint, Metric, NumberValue, ProcessMetric, Resource, Scope,
    ScopeMetrics, Snapshot, Timestamp,
};
use procfs::Current as _;
use procfs::process::Process;

use crate::{Error, MetricSelection, Result, SCRAPER_VERSION};

/// What to capture.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaptureOptions {
    /// Which metrics to read.
    pub metrics: MetricSelection,
}

/// Problems met during a capture, which the scraper reports as partial errors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureReport {
    /// Processes skipped because their name could not be read (they exited meanwhile).
    pub skipped_processes: u64,
    /// Processes whose executable path could not be read.
    pub unreadable_paths: u64,
    /// Metrics left out of a process because their source could not be read.
    pub unreadable_metrics: u64,
}

/// Captures snapshots of this host, remembering CPU times between captures for
/// `process.cpu.utilization` (no point on a process's first capture, as the scraper).
#[derive(Debug)]
pub struct Capturer {
    options: CaptureOptions,
    previous: BTreeMap<(i32, u64), ([f64; 3], u64)>,
    report: CaptureReport,
}

/// Captures one snapshot of this host.
///
/// # Errors
///
/// [`Error::Proc`] if `/proc` cannot be listed or the boot time cannot be read.
pub fn capture(options: &CaptureOptions) -> Result<Snapshot> {
    Capturer::new(options.clone()).capture()
}

impl Capturer {
    /// A capturer with these options.
    pub fn new(options: CaptureOptions) -> Self {
        Self {
            options,
            previous: BTreeMap::new(),
            report: CaptureReport::default(),
        }
    }

    /// What the last capture could not read.
    pub fn report(&self) -> &CaptureReport {
        &self.report
    }

    /// Captures one snapshot.
    ///
    /// # Errors
    ///
    /// [`Error::Proc`] if `/proc` cannot be listed or the boot time cannot be read.
    pub fn capture(&mut self) -> Result<Snapshot> {
        let proc_error = |what: &str, e: procfs::ProcError| Error::Proc {
            message: format!("{what}: {e}"),
        };
        self.report = CaptureReport::default();
        let boot_ms = procfs::boot_time_secs().map_err(|e| proc_error("boot time", e))? * 1000;
        let ticks = procfs::ticks_per_second().max(1);
        let page = procfs::page_size();
        let mem_total = procfs::Meminfo::current().map_or(0, |m| m.mem_total);
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let mut processes: Vec<Process> = procfs::process::all_processes()
            .map_err(|e| proc_error("listing /proc", e))?
            .filter_map(std::result::Result::ok)
            .collect();
        processes.sort_by_key(|p| p.pid);
        let emission = self.options.metrics.emission_order();
        let mut resources = Vec::with_capacity(processes.len());
        let mut seen = BTreeMap::new();
        for process in processes {
            let Some(resource) = self.read_process(
                &process, &emission, boot_ms, ticks, page, mem_total, cpus, &mut seen,
            ) else {
                self.report.skipped_processes += 1;
                continue;
            };
            resources.push(resource);
        }
        self.previous = seen;
        Ok(Snapshot::new(resources))
    }

    #[allow(
        clippy::too_many_arguments,
        clippy::cast_precision_loss,
        clippy::cast_possible_wrap
    )]
    fn read_process(
        &mut self,
        process: &Process,
        emission: &[ProcessMetric],
        boot_ms: u64,
        ticks: u64,
        page: u64,
        mem_total: u64,
        cpus: usize,
        seen: &mut BTreeMap<(i32, u64), ([f64; 3], u64)>,
    ) -> Option<Resource> {
        let status = process.status().ok()?;
        let stat = process.stat().ok()?;
        let cmdline = process.cmdline().ok();
        let mut name = status.name.clone();
        if name.len() >= 15
            && let Some(first) = cmdline.as_ref().and_then(|c| c.first())
        {
            let base = first.rsplit('/').next().unwrap_or(first);
            if base.starts_with(&name) {
                base.clone_into(&mut name);
            }
        }
        let path = match process.exe() {
            Ok(p) => p.to_string_lossy().into_owned(),
            Err(_) => {
                self.report.unreadable_paths += 1;
                String::new()
            }
        };
        let mut attributes = Attributes::with_capacity(7);
        attributes.insert(
            ResourceAttribute::Pid,
            AnyValue::Int(i64::from(process.pid)),
        );
        attributes.insert(
            ResourceAttribute::ParentPid,
            AnyValue::Int(i64::from(stat.ppid)),
        );
        attributes.insert(ResourceAttribute::ExecutableName, AnyValue::String(name));
        attributes.insert(ResourceAttribute::ExecutablePath, AnyValue::String(path));
        if let Some(args) = &cmdline {
            let command = args.first().cloned().unwrap_or_default();
            attributes.insert(ResourceAttribute::Command, AnyValue::String(command));
            attributes.insert(
                ResourceAttribute::CommandLine,
                AnyValue::String(args.join(" ")),
            );
        }
        if let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(status.ruid))
        {
            attributes.insert(ResourceAttribute::Owner, AnyValue::String(user.name));
        }
        let start_ms = boot_ms + stat.starttime * 1000 / ticks;
        let start = Timestamp::from_nanos(start_ms * 1_000_000);
        let now = now();
        let per_tick = |t: u64| t as f64 / ticks as f64;
        let cpu = [
            per_tick(stat.utime),
            per_tick(stat.stime),
            per_tick(stat.delayacct_blkio_ticks.unwrap_or(0)),
        ];
        let key = (process.pid, start_ms);
        let previous = self.previous.get(&key).copied();
        seen.insert(key, (cpu, now.as_nanos()));
        let statm = process.statm().ok();
        let io = process.io().ok();
        let mut metrics = Vec::with_capacity(emission.len());
        for &m in emission {
            let values: Option<Vec<NumberValue>> = match m {
                ProcessMetric::CpuTime => {
                    Some(cpu.iter().map(|v| NumberValue::Double(*v)).collect())
                }
                ProcessMetric::CpuUtilization => match previous {
                    Some((before, at)) => {
                        let elapsed = (now.as_nanos().saturating_sub(at)) as f64 / 1e9;
                        let elapsed = elapsed.max(1e-9) * cpus as f64;
                        Some(
                            cpu.iter()
                                .zip(before)
                                .map(|(c, b)| NumberValue::Double(((c - b) / elapsed).max(0.0)))
                                .collect(),
                        )
                    }
                    // No point on a process's first scrape; not an error.
                    None => continue,
                },
                ProcessMetric::MemoryUsage => statm.as_ref().map(|s| vec![int(s.resident * page)]),
                ProcessMetric::MemoryVirtual => statm.as_ref().map(|s| vec![int(s.size * page)]),
                ProcessMetric::MemoryUtilization => {
                    statm.as_ref().filter(|_| mem_total > 0).map(|s| {
                        #[allow(clippy::cast_possible_truncation)]
                        let percent =
                            (100.0 * (s.resident * page) as f64 / mem_total as f64) as f32;
                        vec![NumberValue::Double(f64::from(percent))]
                    })
                }
                ProcessMetric::DiskIo => io
                    .as_ref()
                    .map(|io| vec![int(io.read_bytes), int(io.write_bytes)]),
                ProcessMetric::DiskOperations => {
                    io.as_ref().map(|io| vec![int(io.syscr), int(io.syscw)])
                }
                ProcessMetric::Threads => Some(vec![int(status.threads)]),
                ProcessMetric::OpenFileDescriptors => {
                    process.fd_count().ok().map(|n| vec![int(n as u64)])
                }
                ProcessMetric::ContextSwitches => match (
                    status.nonvoluntary_ctxt_switches,
                    status.voluntary_ctxt_switches,
                ) {
                    (Some(i), Some(v)) => Some(vec![int(i), int(v)]),
                    _ => None,
                },
                ProcessMetric::PagingFaults => Some(vec![int(stat.majflt), int(stat.minflt)]),
            };
            let Some(values) = values else {
                self.report.unreadable_metrics += 1;
                continue;
            };
            let mut metric = Metric::process(m);
            let points = metric.data.points_mut();
            let names = m.point_values();
            for (i, value) in values.into_iter().enumerate() {
                let mut point = DataPoint::new(start, now, value);
                if let (Some(attr), Some(v)) = (m.point_attribute(), names.get(i)) {
                    point.attributes.insert(attr, *v);
                }
                points.push(point);
            }
            metrics.push(metric);
        }
        Some(Resource {
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
        })
    }
}

#[allow(clippy::cast_possible_wrap)]
fn int(v: u64) -> NumberValue {
    NumberValue::Int(v.min(i64::MAX as u64) as i64)
}

fn now() -> Timestamp {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    Timestamp::from_nanos(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_holds_this_process() {
        let snapshot = capture(&CaptureOptions::default()).unwrap();
        let me = i64::from(std::process::id());
        let resource = snapshot
            .resources
            .iter()
            .find(|r| {
                r.attributes
                    .get(ResourceAttribute::Pid)
                    .and_then(AnyValue::as_int)
                    == Some(me)
            })
            .expect("this process is in the capture");
        let exe = std::env::current_exe().unwrap();
        let base = exe.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            resource
                .attributes
                .get_str(ResourceAttribute::ExecutableName),
            Some(base.as_str())
        );
        assert_eq!(
            resource
                .attributes
                .get_str(ResourceAttribute::ExecutablePath),
            Some(exe.to_string_lossy().as_ref())
        );
        let rss = resource
            .metrics()
            .find(|m| m.name.as_str() == "process.memory.usage")
            .and_then(|m| m.data.points().first())
            .map(|p| p.value.as_f64())
            .unwrap();
        assert!(rss > 0.0);
        let ppid = resource
            .attributes
            .get(ResourceAttribute::ParentPid)
            .and_then(AnyValue::as_int);
        assert_eq!(ppid, Some(i64::from(nix::unistd::getppid().as_raw())));
        // The same shape as the simulator's snapshots, and it converts to OTLP and back.
        let json = phoenix_core::otlp::to_json(&snapshot);
        assert_eq!(
            phoenix_core::otlp::from_json(&json)
                .unwrap()
                .resources
                .len(),
            snapshot.resources.len()
        );
    }

    #[test]
    fn utilization_appears_from_the_second_capture() {
        let mut capturer = Capturer::new(CaptureOptions {
            metrics: MetricSelection::all(),
        });
        let has_utilization = |s: &Snapshot| {
            s.resources.iter().any(|r| {
                r.metrics()
                    .any(|m| m.name.as_str() == "process.cpu.utilization")
            })
        };
        assert!(!has_utilization(&capturer.capture().unwrap()));
        assert!(has_utilization(&capturer.capture().unwrap()));
    }
}
