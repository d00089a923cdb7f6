//! The collector figures (exported data points, CPU, memory) against the real pinned
//! collector, scraped by a real Prometheus with the relabelling rules of
//! `deploy/prometheus/scrape-config.yaml`, all on 127.0.0.1.
//!
//! The collector runs a config rendered from the catalog (`process-baseline-v1` with its
//! `prometheus` exporter and telemetry ports), its `hostmetrics` receiver swapped for an OTLP
//! receiver that the simulator pushes a fixed snapshot to, so every figure is known.
//!
//! Needs `PHOENIX_OTELCOL` (the collector from `tools/otelcol/build.sh`; skipped with a
//! message without it) and `PHOENIX_PROMETHEUS` (skipped without it unless
//! `PHOENIX_REQUIRE_PROMETHEUS=1`).
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use phoenix_core::experiment::ProfilePreset;
use phoenix_core::measurement::VariantRole;
use phoenix_generator::catalog::{TemplateId, render};
use phoenix_operator::prometheus::{PrometheusClient, TimeWindow, VariantSelector};
use phoenix_sim::export::OtlpHttp;
use phoenix_sim::{Profile, SimConfig, Simulator};
use serde_yaml::{Mapping, Value};

const EXPERIMENT: &str = "exp-coll0001";
const SCRAPE: Duration = Duration::from_secs(1);
const PUSH_EVERY: Duration = Duration::from_millis(500);

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped, with its output in a log file.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn start(program: &Path, args: &[String], log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        Self { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `line`; panics with the log if the process exits or
    /// `limit` passes first.
    fn wait_for_log(&mut self, line: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.log().contains(line) {
            assert!(
                self.child.try_wait().unwrap().is_none() && Instant::now() < deadline,
                "{} did not log {line:?}; its log:\n{}",
                self.log.display(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The catalog's baseline config for the candidate side, made runnable here: an OTLP/HTTP
/// receiver on 127.0.0.1 instead of `hostmetrics`, and the exporter and telemetry endpoints on
/// 127.0.0.1 instead of every interface.
fn collector_config(otlp: u16, exporter: u16, telemetry: u16) -> String {
    let params = serde_json::json!({
        "experimentId": EXPERIMENT,
        "variant": "candidate",
        "otlpEndpoint": null,
        "prometheus": true,
        "prometheusPort": exporter,
        "telemetryPort": telemetry,
    });
    let config = render(TemplateId::Baseline, params.as_object().unwrap()).unwrap();
    let mut doc: Value = serde_yaml::from_str(&config.to_yaml().unwrap()).unwrap();
    let mut otlp_receiver = Mapping::new();
    otlp_receiver.insert(
        "protocols".into(),
        serde_yaml::from_str(&format!("{{http: {{endpoint: '127.0.0.1:{otlp}'}}}}")).unwrap(),
    );
    let mut receivers = Mapping::new();
    receivers.insert("otlp".into(), Value::Mapping(otlp_receiver));
    doc["receivers"] = Value::Mapping(receivers);
    for (_, pipeline) in doc["service"]["pipelines"].as_mapping_mut().unwrap() {
        pipeline["receivers"] = serde_yaml::from_str("[otlp]").unwrap();
    }
    let endpoint = &mut doc["exporters"]["prometheus"]["endpoint"];
    assert_eq!(
        endpoint.as_str(),
        Some(format!("0.0.0.0:{exporter}").as_str())
    );
    *endpoint = format!("127.0.0.1:{exporter}").into();
    let reader =
        &mut doc["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"];
    assert_eq!(reader["port"].as_u64(), Some(u64::from(telemetry)));
    reader["host"] = "127.0.0.1".into();
    serde_yaml::to_string(&doc).unwrap()
}

/// A Prometheus config with the job of `deploy/prometheus/scrape-config.yaml`: its relabelling
/// rules, with static targets standing in for Kubernetes pod discovery (the `__meta_*` labels
/// pod discovery would set), plus a pod that the rules must drop.
fn prometheus_config(exporter: u16, telemetry: u16) -> String {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/scrape-config.yaml");
    let deployed: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let job = &deployed["scrape_configs"][0];
    assert_eq!(job["job_name"].as_str(), Some("phoenix-collectors"));
    let target = |port: u16, port_name: &str, component: &str| {
        serde_yaml::from_str::<Value>(&format!(
            "targets: ['127.0.0.1:{port}']\n\
             labels:\n  \
               __meta_kubernetes_namespace: phoenix-system\n  \
               __meta_kubernetes_pod_name: topk-candidate-collector-x7k2p\n  \
               __meta_kubernetes_pod_node_name: node-1\n  \
               __meta_kubernetes_pod_container_port_name: {port_name}\n  \
               __meta_kubernetes_pod_label_app_kubernetes_io_managed_by: phoenix-operator\n  \
               __meta_kubernetes_pod_label_app_kubernetes_io_component: {component}\n  \
               __meta_kubernetes_pod_label_phoenix_dev_experiment: {EXPERIMENT}\n  \
               __meta_kubernetes_pod_label_phoenix_dev_variant: candidate\n"
        ))
        .unwrap()
    };
    let mut scrape = Mapping::new();
    scrape.insert("job_name".into(), "phoenix-collectors".into());
    scrape.insert(
        "static_configs".into(),
        Value::Sequence(vec![
            target(exporter, "metrics", "collector"),
            target(telemetry, "telemetry", "collector"),
            // Not a collector: dropped by the rules (it would double every figure).
            target(telemetry, "telemetry", "load-simulator"),
        ]),
    );
    scrape.insert("relabel_configs".into(), job["relabel_configs"].clone());
    let mut global = Mapping::new();
    global.insert(
        "scrape_interval".into(),
        format!("{}s", SCRAPE.as_secs()).into(),
    );
    global.insert(
        "scrape_timeout".into(),
        format!("{}s", SCRAPE.as_secs()).into(),
    );
    let mut config = Mapping::new();
    config.insert("global".into(), Value::Mapping(global));
    config.insert(
        "scrape_configs".into(),
        Value::Sequence(vec![Value::Mapping(scrape)]),
    );
    serde_yaml::to_string(&Value::Mapping(config)).unwrap()
}

/// Resident memory of `pid` in bytes, from /proc.
fn rss_bytes(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_figures_match_what_it_was_sent() {
    let Some(otelcol) = env_path("PHOENIX_OTELCOL") else {
        eprintln!(
            "skipped: PHOENIX_OTELCOL is not set; run tools/otelcol/build.sh and export \
             PHOENIX_OTELCOL=<the path it prints> to measure a real collector"
        );
        return;
    };
    let Some(prometheus_bin) = env_path("PHOENIX_PROMETHEUS") else {
        assert!(
            std::env::var("PHOENIX_REQUIRE_PROMETHEUS").as_deref() != Ok("1"),
            "PHOENIX_REQUIRE_PROMETHEUS=1 but PHOENIX_PROMETHEUS does not name a prometheus \
             binary"
        );
        eprintln!("skipped: set PHOENIX_PROMETHEUS to the prometheus binary");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (otlp, exporter, telemetry) = (free_port(), free_port(), free_port());

    let config = dir.path().join("collector.yaml");
    std::fs::write(&config, collector_config(otlp, exporter, telemetry)).unwrap();
    let mut collector = Process::start(
        &otelcol,
        &[format!("--config={}", config.display())],
        dir.path().join("collector.log"),
    );
    collector.wait_for_log("Everything is ready", Duration::from_secs(60));

    let prometheus_yml = dir.path().join("prometheus.yml");
    std::fs::write(&prometheus_yml, prometheus_config(exporter, telemetry)).unwrap();
    let port = free_port();
    let mut prometheus = Process::start(
        &prometheus_bin,
        &[
            format!("--config.file={}", prometheus_yml.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
        dir.path().join("prometheus.log"),
    );
    prometheus.wait_for_log(
        "Server is ready to receive web requests",
        Duration::from_secs(60),
    );

    // The simulator pushes one fixed snapshot every PUSH_EVERY: the exported series are its
    // data points, and every push adds that many exported points.
    let profile = Profile::preset(ProfilePreset::Realistic)
        .with_processes(25)
        .unwrap();
    let mut sim = Simulator::new(
        &profile,
        SimConfig {
            seed: 5,
            ..SimConfig::default()
        },
    )
    .unwrap();
    let snapshot = sim.next_snapshot().clone();
    let points = snapshot.data_point_count() as u64;
    let pushed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let pusher = {
        let (pushed, stop) = (Arc::clone(&pushed), Arc::clone(&stop));
        let mut sink = OtlpHttp::new(&format!("http://127.0.0.1:{otlp}")).unwrap();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                sink.export(&snapshot).unwrap();
                pushed.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(PUSH_EVERY);
            }
        })
    };

    let client = PrometheusClient::new(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .with_resolution(SCRAPE);
    let candidate = VariantSelector::new(EXPERIMENT, VariantRole::Candidate);
    // Wait for the exporter to serve every series and for several scrapes of both ports.
    let deadline = Instant::now() + Duration::from_secs(60);
    let start = loop {
        let now = SystemTime::now();
        let up = client
            .query("up{job=\"phoenix-collectors\"} == 1", now)
            .await
            .unwrap();
        if up.len() == 2 && client.active_series(&candidate, now).await.unwrap() == points {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "no complete scrape in 60 s; up: {up:?}\ncollector log:\n{}\nPrometheus log:\n{}",
            collector.log(),
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    tokio::time::sleep(6 * SCRAPE).await;
    let end = SystemTime::now();
    let window = TimeWindow::new(start, end).unwrap();
    let figures = client.variant_figures(&candidate, window).await.unwrap();
    let collector_rss = rss_bytes(collector.child.id());
    eprintln!("{points} points per push; over {window:?}: {figures:#?}");
    stop.store(true, Ordering::SeqCst);
    pusher.join().unwrap();

    // Series: exactly the snapshot's data points, and only the exporter's (the rules dropped
    // the other pod, and the telemetry series are not pipeline output).
    assert_eq!(figures.active_series, points, "{figures:?}");
    assert_eq!(figures.distinct_series, points, "{figures:?}");
    assert_eq!(
        client
            .query("count(up{job=\"phoenix-collectors\"})", end)
            .await
            .unwrap()[0]
            .value,
        2.0
    );
    // The telemetry target got the variant's labels from the pod's; the exporter's series
    // kept their own (no exported_* renames).
    let renamed = client
        .query("count({exported_phoenix_variant!=\"\"})", end)
        .await
        .unwrap();
    assert!(renamed.is_empty(), "{renamed:?}");

    // Exported points: the counter's increase over the window, which Prometheus
    // extrapolates; it must be close to one snapshot per push interval.
    let expected_rate = points as f64 / PUSH_EVERY.as_secs_f64();
    let rate = figures.exported_points_per_second.unwrap();
    assert!(
        (rate - expected_rate).abs() <= 0.35 * expected_rate,
        "exported {rate:.1} points/s, pushed {expected_rate:.1}: {figures:?}"
    );
    // And the counter itself counts every pushed point, exactly.
    let total = client
        .query_value(
            &format!(
                "max(sum by (exporter) (otelcol_exporter_sent_metric_points{{{}}}))",
                candidate.matchers()
            ),
            end,
        )
        .await
        .unwrap()
        .unwrap();
    let pushes_by_end = pushed.load(Ordering::SeqCst);
    assert!(
        total <= (pushes_by_end * points) as f64
            && total >= points as f64
            && total % points as f64 == 0.0,
        "sent-points counter {total} for {pushes_by_end} pushes of {points} points"
    );

    // CPU: some, and no more than the machine has.
    let cores = figures.collector_cpu_cores.unwrap();
    let available = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    assert!(cores > 0.0 && cores <= available, "{cores} cores");
    // Memory: the collector's own RSS, as /proc tells it now (it moves a little).
    let memory = figures.collector_memory_bytes.unwrap();
    assert!(
        (memory - collector_rss).abs() <= 0.5 * collector_rss,
        "collector memory {memory} vs /proc {collector_rss}"
    );
    drop(prometheus);
    drop(collector);
}
