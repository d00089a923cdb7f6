//! Shared machinery of the conformance tests against the pinned collector build
//! (`tools/otelcol/build.sh`): finding the binary, running `validate`, deriving a runnable
//! config from a rendered template, running the collector over a workload, and comparing its
//! output with the emulator's prediction.
#![allow(dead_code, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use phoenix_core::telemetry::{
    MetricData, NumberValue, SeriesKey, Snapshot, Temporality, Timestamp,
};
use phoenix_generator::config::Config;
use phoenix_generator::emulator::Emulator;
use serde_yaml::{Mapping, Value};

/// The environment variable naming the collector binary.
pub const COLLECTOR_ENV: &str = "PHOENIX_OTELCOL";

/// The collector binary, or `None` (with the reason printed) when `PHOENIX_OTELCOL` is not
/// set. A set variable that does not name an executable file fails the test.
pub fn collector(test: &str) -> Option<PathBuf> {
    match std::env::var_os(COLLECTOR_ENV) {
        None => {
            eprintln!(
                "{test}: skipped: {COLLECTOR_ENV} is not set; run tools/otelcol/build.sh and \
                 export {COLLECTOR_ENV}=<the path it prints> to compare with the real collector"
            );
            None
        }
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "{COLLECTOR_ENV}={} is not a file; run tools/otelcol/build.sh",
                path.display()
            );
            Some(path)
        }
    }
}

/// How many worker threads to run collector processes on.
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4))
}

/// Runs `f` over `items` on a few threads, keeping the order of the results.
pub fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers().min(items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().unwrap();
                        let i = *n;
                        *n += 1;
                        i
                    };
                    if i >= items.len() {
                        break;
                    }
                    let r = f(&items[i]);
                    results.lock().unwrap()[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

/// Runs `<collector> validate --config <file>` on `yaml`; `Err` holds the collector's message.
pub fn collector_validate(bin: &Path, dir: &Path, name: &str, yaml: &str) -> Result<(), String> {
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, yaml).unwrap();
    let out = Command::new(bin)
        .arg("validate")
        .arg(format!("--config={}", file.display()))
        .env_remove("PHOENIX_OTLP_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Err(if text.is_empty() { stdout } else { text })
    }
}

/// A free TCP port on 127.0.0.1 (the listener is closed again; the collector binds it next).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn component_type(id: &str) -> &str {
    id.split('/').next().unwrap_or(id)
}

/// A config derived from a rendered one so that it runs in a test: every receiver replaced by
/// one `otlp` receiver on 127.0.0.1, every exporter by a `file` exporter (JSON), no
/// extensions, and no internal telemetry listener. Processors, connectors and pipelines are
/// kept as they are.
#[derive(Debug)]
pub struct Derived {
    /// The derived config as YAML.
    pub yaml: String,
    /// The derived config, parsed.
    pub config: Config,
    /// The OTLP/HTTP port of the receiver.
    pub port: u16,
    /// Original exporter id → (file exporter id, output file).
    pub exporters: BTreeMap<String, (String, PathBuf)>,
}

/// Derives the test config from `yaml`, writing the exporters' files into `dir`.
pub fn derive(yaml: &str, dir: &Path) -> Derived {
    let mut doc: Value = serde_yaml::from_str(yaml).unwrap();
    let root = doc.as_mapping_mut().unwrap();
    let port = free_port();

    let receiver_id = "otlp/conformance";
    let mut receivers = Mapping::new();
    receivers.insert(
        receiver_id.into(),
        serde_yaml::from_str(&format!(
            "protocols:\n  http:\n    endpoint: 127.0.0.1:{port}\n"
        ))
        .unwrap(),
    );
    root.insert("receivers".into(), Value::Mapping(receivers));

    let mut exporters = BTreeMap::new();
    let mut section = Mapping::new();
    if let Some(Value::Mapping(old)) = root.get("exporters") {
        for id in old.keys() {
            let id = id.as_str().unwrap().to_owned();
            let name = id.replace('/', "-");
            let file_id = format!("file/{name}");
            let path = dir.join(format!("{name}.jsonl"));
            let mut file = Mapping::new();
            file.insert("path".into(), path.display().to_string().into());
            file.insert("format".into(), "json".into());
            section.insert(file_id.clone().into(), Value::Mapping(file));
            exporters.insert(id, (file_id, path));
        }
    }
    root.insert("exporters".into(), Value::Mapping(section));
    root.remove("extensions");

    let service = root.get_mut("service").unwrap().as_mapping_mut().unwrap();
    service.remove("extensions");
    service.insert(
        "telemetry".into(),
        serde_yaml::from_str("metrics:\n  level: none\nlogs:\n  level: warn\n").unwrap(),
    );
    let pipelines = service
        .get_mut("pipelines")
        .unwrap()
        .as_mapping_mut()
        .unwrap();
    for (_, pipeline) in pipelines.iter_mut() {
        let pipeline = pipeline.as_mapping_mut().unwrap();
        if let Some(Value::Sequence(list)) = pipeline.get_mut("receivers") {
            let mut out: Vec<Value> = Vec::new();
            for r in &*list {
                let r = r.as_str().unwrap();
                // Connectors stay; every receiver becomes the test's otlp receiver.
                let new: Value = if component_type(r) == "forward" {
                    r.into()
                } else {
                    receiver_id.into()
                };
                if !out.contains(&new) {
                    out.push(new);
                }
            }
            *list = out;
        }
        if let Some(Value::Sequence(list)) = pipeline.get_mut("exporters") {
            for e in list.iter_mut() {
                if let Some((file_id, _)) = exporters.get(e.as_str().unwrap()) {
                    *e = file_id.as_str().into();
                }
            }
        }
    }
    let yaml = serde_yaml::to_string(&doc).unwrap();
    let config = Config::from_yaml(&yaml)
        .unwrap_or_else(|e| panic!("the derived config does not parse: {e}\n{yaml}"));
    Derived {
        yaml,
        config,
        port,
        exporters,
    }
}

/// A running collector on a derived config.
pub struct Collector {
    child: Child,
    log_file: PathBuf,
    port: u16,
    /// A time before the collector started (before its processors were created).
    pub started_before: Timestamp,
    /// A time after its receiver started listening (after its processors were created).
    pub ready_after: Timestamp,
}

impl Drop for Collector {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The wall-clock time.
pub fn now() -> Timestamp {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    Timestamp::from(u64::try_from(nanos).unwrap())
}

impl Collector {
    /// Starts the collector on the derived config and waits until its receiver listens.
    pub fn start(bin: &Path, dir: &Path, derived: &Derived) -> Self {
        let config_file = dir.join("collector.yaml");
        std::fs::write(&config_file, &derived.yaml).unwrap();
        let log_file = dir.join("collector.log");
        let log = std::fs::File::create(&log_file).unwrap();
        let started_before = now();
        let child = Command::new(bin)
            .arg(format!("--config={}", config_file.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut collector = Self {
            child,
            log_file,
            port: derived.port,
            started_before,
            ready_after: started_before,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = collector.child.try_wait().unwrap() {
                panic!(
                    "the collector exited early ({status}):\n{}",
                    collector.log()
                );
            }
            if TcpStream::connect(("127.0.0.1", derived.port)).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the collector did not listen on 127.0.0.1:{} within 30 s:\n{}",
                derived.port,
                collector.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        collector.ready_after = now();
        collector
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// Posts each request (OTLP/HTTP protobuf) in order, waiting for each response.
    pub fn send(&self, requests: &[Vec<u8>]) {
        let url = format!("http://127.0.0.1:{}/v1/metrics", self.port);
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .new_agent();
        for (i, body) in requests.iter().enumerate() {
            let response = agent
                .post(&url)
                .header("Content-Type", "application/x-protobuf")
                .send(body.as_slice());
            match response {
                Ok(mut r) => {
                    let mut sink = Vec::new();
                    r.body_mut().as_reader().read_to_end(&mut sink).unwrap();
                }
                Err(e) => panic!("request {i} to the collector failed: {e}\n{}", self.log()),
            }
        }
    }

    /// Stops the collector with SIGTERM (so the exporters flush), waits for it, and reads
    /// back what every file exporter wrote, per original exporter id.
    pub fn stop(mut self, derived: &Derived) -> BTreeMap<String, Vec<Snapshot>> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the collector did not stop within 60 s of SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            status.success(),
            "the collector failed ({status}):\n{}",
            self.log()
        );
        let mut outputs = BTreeMap::new();
        for (id, (_, path)) in &derived.exporters {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let snapshots = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .enumerate()
                .map(|(n, line)| {
                    phoenix_core::otlp::from_json(line)
                        .unwrap_or_else(|e| panic!("{}: line {}: {e}", path.display(), n + 1))
                })
                .collect();
            outputs.insert(id.clone(), snapshots);
        }
        outputs
    }
}

/// Runs the emulator on the derived config over `inputs`, collecting every exporter's data
/// per original exporter id.
pub fn run_emulator(
    derived: &Derived,
    inputs: &[Snapshot],
    collector_start: Timestamp,
) -> BTreeMap<String, Vec<Snapshot>> {
    let mut emulator = Emulator::new(&derived.config).unwrap();
    emulator.set_collector_start(collector_start);
    let mut outputs: BTreeMap<String, Vec<Snapshot>> = derived
        .exporters
        .keys()
        .map(|id| (id.clone(), Vec::new()))
        .collect();
    for input in inputs {
        let output = emulator.process(input).unwrap();
        for (id, (file_id, _)) in &derived.exporters {
            if let Some(e) = output.exporters.get(&file_id.parse().unwrap()) {
                outputs.get_mut(id).unwrap().push(e.snapshot.clone());
            }
        }
    }
    outputs
}

/// One data point's identity apart from its value: series, metric shape, scope, resource
/// schema URL, times and flags.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct PointKey {
    series: u128,
    metric: String,
    scope: String,
    start_time: u64,
    time: u64,
    flags: u32,
}

fn temporality_name(t: Temporality) -> &'static str {
    match t {
        Temporality::Unspecified => "unspecified",
        Temporality::Delta => "delta",
        Temporality::Cumulative => "cumulative",
    }
}

fn points(snapshots: &[Snapshot]) -> BTreeMap<PointKey, Vec<NumberValue>> {
    let mut out: BTreeMap<PointKey, Vec<NumberValue>> = BTreeMap::new();
    for snapshot in snapshots {
        for resource in &snapshot.resources {
            for scope in &resource.scopes {
                let scope_text = format!(
                    "{} {} {:?} schema={:?} resource_schema={:?}",
                    scope.scope.name,
                    scope.scope.version,
                    scope.scope.attributes,
                    scope.schema_url,
                    resource.schema_url
                );
                for metric in &scope.metrics {
                    let shape = match &metric.data {
                        MetricData::Gauge { .. } => "gauge".to_owned(),
                        MetricData::Sum {
                            temporality,
                            monotonic,
                            ..
                        } => format!(
                            "sum {} monotonic={monotonic}",
                            temporality_name(*temporality)
                        ),
                    };
                    let metric_text = format!(
                        "{} [{shape}] unit={:?} description={:?}",
                        metric.name.as_str(),
                        metric.unit,
                        metric.description
                    );
                    for p in metric.data.points() {
                        let key = PointKey {
                            series: SeriesKey::new(
                                &metric.name,
                                &resource.attributes,
                                &p.attributes,
                            )
                            .as_u128(),
                            metric: metric_text.clone(),
                            scope: scope_text.clone(),
                            start_time: p.start_time.as_nanos(),
                            time: p.time.as_nanos(),
                            flags: p.flags,
                        };
                        out.entry(key).or_default().push(p.value);
                    }
                }
            }
        }
    }
    out
}

fn value_order(a: &NumberValue, b: &NumberValue) -> std::cmp::Ordering {
    match (a, b) {
        (NumberValue::Int(x), NumberValue::Int(y)) => x.cmp(y),
        (NumberValue::Double(x), NumberValue::Double(y)) => x.total_cmp(y),
        (NumberValue::Int(_), NumberValue::Double(_)) => std::cmp::Ordering::Less,
        (NumberValue::Double(_), NumberValue::Int(_)) => std::cmp::Ordering::Greater,
    }
}

/// The relative error between two values of the same type, `None` for a type mismatch.
fn relative_error(a: NumberValue, b: NumberValue) -> Option<f64> {
    match (a, b) {
        (NumberValue::Int(x), NumberValue::Int(y)) => {
            if x == y {
                Some(0.0)
            } else {
                #[allow(clippy::cast_precision_loss)]
                let (x, y) = (x as f64, y as f64);
                Some((x - y).abs() / x.abs().max(y.abs()))
            }
        }
        (NumberValue::Double(x), NumberValue::Double(y)) => {
            if x == y || (x.is_nan() && y.is_nan()) {
                Some(0.0)
            } else {
                Some((x - y).abs() / x.abs().max(y.abs()))
            }
        }
        _ => None,
    }
}

/// How one exporter's output compared.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Original exporter id.
    pub exporter: String,
    /// Distinct series from the collector / the emulator.
    pub series: (usize, usize),
    /// Data points from the collector / the emulator.
    pub data_points: (usize, usize),
    /// The largest relative error between matched values.
    pub max_relative_error: f64,
    /// What differed (empty when they agree).
    pub differences: Vec<String>,
}

impl Comparison {
    /// Whether the two sides agree within the tolerance.
    pub fn agrees(&self) -> bool {
        self.differences.is_empty()
    }
}

/// The tolerance on values.
pub const RELATIVE_TOLERANCE: f64 = 1e-9;

/// Compares what the collector and the emulator exported, independently of how the
/// collector's batch processor grouped requests.
pub fn compare(exporter: &str, collector: &[Snapshot], emulator: &[Snapshot]) -> Comparison {
    let series = |s: &[Snapshot]| {
        s.iter()
            .flat_map(Snapshot::series_keys)
            .collect::<std::collections::HashSet<_>>()
    };
    let (cs, es) = (series(collector), series(emulator));
    let count = |s: &[Snapshot]| s.iter().map(Snapshot::data_point_count).sum::<usize>();
    let (cp, ep) = (points(collector), points(emulator));
    let mut differences = Vec::new();
    let only_c = cs.difference(&es).count();
    let only_e = es.difference(&cs).count();
    if only_c + only_e > 0 {
        differences.push(format!(
            "series: {only_c} only from the collector, {only_e} only from the emulator"
        ));
    }
    let mut max_rel = 0.0f64;
    let mut shown = 0;
    let mut note = |differences: &mut Vec<String>, text: String| {
        if shown < 8 {
            differences.push(text);
        } else if shown == 8 {
            differences.push("…".to_owned());
        }
        shown += 1;
    };
    for (key, cv) in &cp {
        match ep.get(key) {
            None => note(
                &mut differences,
                format!("only from the collector: {key:?} = {cv:?}"),
            ),
            Some(ev) => {
                if cv.len() != ev.len() {
                    note(
                        &mut differences,
                        format!("{key:?}: collector {cv:?}, emulator {ev:?}"),
                    );
                    continue;
                }
                let mut cv = cv.clone();
                let mut ev = ev.clone();
                cv.sort_by(value_order);
                ev.sort_by(value_order);
                for (a, b) in cv.iter().zip(&ev) {
                    match relative_error(*a, *b) {
                        Some(r) if r <= RELATIVE_TOLERANCE => max_rel = max_rel.max(r),
                        Some(r) => {
                            max_rel = max_rel.max(r);
                            note(
                                &mut differences,
                                format!(
                                    "{key:?}: collector {a:?}, emulator {b:?} (relative error {r:e})"
                                ),
                            );
                        }
                        None => note(
                            &mut differences,
                            format!(
                                "{key:?}: collector {a:?}, emulator {b:?} (value types differ)"
                            ),
                        ),
                    }
                }
            }
        }
    }
    for (key, ev) in &ep {
        if !cp.contains_key(key) {
            note(
                &mut differences,
                format!("only from the emulator: {key:?} = {ev:?}"),
            );
        }
    }
    let (cn, en) = (count(collector), count(emulator));
    if cn != en {
        differences.insert(0, format!("data points: collector {cn}, emulator {en}"));
    }
    Comparison {
        exporter: exporter.to_owned(),
        series: (cs.len(), es.len()),
        data_points: (cn, en),
        max_relative_error: max_rel,
        differences,
    }
}

/// Formats rows as a Markdown table.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out
}
