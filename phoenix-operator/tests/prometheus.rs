//! The Prometheus queries against a real Prometheus server scraping the simulator's
//! Prometheus endpoint, all on 127.0.0.1.
//!
//! `PHOENIX_PROMETHEUS` names the `prometheus` binary (the Debian package installs
//! `/usr/bin/prometheus`); without it the server tests are skipped with a message, unless
//! `PHOENIX_REQUIRE_PROMETHEUS=1`, which turns the skip into a failure (CI sets both, see
//! `.ci/prometheus.sh`). The error tests need no server.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::collections::BTreeSet;
use std::io::Read as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use phoenix_core::experiment::{CriticalProcess, ProfilePreset};
use phoenix_core::measurement::VariantRole;
use phoenix_operator::Error;
use phoenix_operator::executor::{critical_coverage, critical_query};
use phoenix_operator::prometheus::{PrometheusClient, TimeWindow, VariantSelector};
use phoenix_sim::export::{PrometheusServer, render};
use phoenix_sim::{Profile, SimConfig, Simulator};

const EXPERIMENT: &str = "exp-prom0001";
const SCRAPE: Duration = Duration::from_secs(1);

/// The `prometheus` binary, or `None` (with the reason printed) when the test is to be
/// skipped.
fn prometheus_binary() -> Option<PathBuf> {
    match std::env::var_os("PHOENIX_PROMETHEUS") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ if std::env::var("PHOENIX_REQUIRE_PROMETHEUS").as_deref() == Ok("1") => {
            panic!(
                "PHOENIX_REQUIRE_PROMETHEUS=1 but PHOENIX_PROMETHEUS does not name a \
                 prometheus binary"
            )
        }
        _ => {
            eprintln!(
                "skipped: set PHOENIX_PROMETHEUS to the prometheus binary (e.g. \
                 /usr/bin/prometheus from the Debian package) to run the Prometheus tests"
            );
            None
        }
    }
}

/// A Prometheus server in a temporary directory, killed when dropped.
struct PrometheusProcess {
    child: Child,
    dir: tempfile::TempDir,
    url: String,
}

impl PrometheusProcess {
    /// Starts `binary` with `config` (a prometheus.yml), listening on a free port of
    /// 127.0.0.1.
    fn start(binary: &Path, config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let mut last_log = String::new();
        // The port is free when picked; retry should something take it before Prometheus
        // binds it.
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let log_path = dir.path().join("prometheus.log");
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new(binary)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
            // Prometheus logs "Server is ready to receive web requests." once it serves.
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
                if last_log.contains("Server is ready to receive web requests") {
                    return Self {
                        child,
                        dir,
                        url: format!("http://127.0.0.1:{port}"),
                    };
                }
                if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("Prometheus did not start; its log:\n{last_log}");
    }

    fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.path().join("prometheus.log")) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for PrometheusProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scrape config with one job per `(address, variant)` target, labelled as the collector's
/// exporter labels its series (here the labels come from the target, as the simulator's
/// page carries no phoenix.* attributes).
fn scrape_config(targets: &[(SocketAddr, VariantRole)]) -> String {
    let mut config = format!(
        "global:\n  scrape_interval: {0}s\n  scrape_timeout: {0}s\n  evaluation_interval: {0}s\n\
         scrape_configs:\n",
        SCRAPE.as_secs()
    );
    for (addr, role) in targets {
        config.push_str(&format!(
            "  - job_name: sim-{role}\n    static_configs:\n      - targets: ['{addr}']\n        \
             labels:\n          phoenix_experiment_id: {EXPERIMENT}\n          \
             phoenix_variant: {role}\n"
        ));
    }
    config
}

/// The series of a Prometheus text page (`name{labels}` of every sample line).
fn page_series(page: &str) -> BTreeSet<String> {
    page.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l[..l.rfind(' ').unwrap()].to_owned())
        .collect()
}

fn simulator(preset: ProfilePreset, processes: u32, seed: u64) -> Simulator {
    let profile = Profile::preset(preset).with_processes(processes).unwrap();
    Simulator::new(
        &profile,
        SimConfig {
            seed,
            ..SimConfig::default()
        },
    )
    .unwrap()
}

/// Publishes the simulator's next snapshot; returns the page's series.
fn publish(server: &PrometheusServer, sim: &mut Simulator) -> BTreeSet<String> {
    let (snapshot, stats) = sim.next_with_stats();
    server.publish(snapshot, stats);
    page_series(&render(snapshot, stats))
}

/// Waits until Prometheus has scraped every job successfully at least `scrapes` times since
/// `since`, and returns the time of that check.
async fn wait_for_scrapes(
    client: &PrometheusClient,
    prometheus: &PrometheusProcess,
    jobs: usize,
    since: SystemTime,
    scrapes: u64,
) -> SystemTime {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = SystemTime::now();
        if let Ok(window) = TimeWindow::new(since, now) {
            let query = format!(
                "sum_over_time(up{{phoenix_experiment_id=\"{EXPERIMENT}\"}}[{}ms]) >= {scrapes}",
                window.length().as_millis()
            );
            let ready = client.query(&query, now).await.unwrap();
            if ready.len() == jobs && ready.iter().all(|s| s.value >= scrapes as f64) {
                return now;
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus did not scrape the simulator {scrapes} times in 60 s; its log:\n{}",
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Successful scrapes of the `role` target within `window` (`up` is 1 for each).
async fn scrapes_in(client: &PrometheusClient, role: VariantRole, window: TimeWindow) -> u64 {
    let query = format!(
        "sum_over_time(up{{phoenix_variant=\"{role}\"}}[{}ms])",
        window.length().as_millis()
    );
    let value = client.query_value(&query, window.end()).await.unwrap();
    value.unwrap() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_match_what_the_simulator_served() {
    let Some(binary) = prometheus_binary() else {
        return;
    };
    // Two variants, each a simulator endpoint of its own with a different process count.
    let candidate_server = PrometheusServer::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let baseline_server = PrometheusServer::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut candidate_sim = simulator(ProfilePreset::Chaos, 30, 11);
    let mut baseline_sim = simulator(ProfilePreset::Realistic, 12, 12);
    let first_page = publish(&candidate_server, &mut candidate_sim);
    let baseline_page = publish(&baseline_server, &mut baseline_sim);
    assert_ne!(first_page.len(), baseline_page.len());

    let prometheus = PrometheusProcess::start(
        &binary,
        &scrape_config(&[
            (candidate_server.local_addr(), VariantRole::Candidate),
            (baseline_server.local_addr(), VariantRole::Baseline),
        ]),
    );
    let client = PrometheusClient::new(&prometheus.url)
        .unwrap()
        .with_timeout(Duration::from_secs(10))
        .with_resolution(SCRAPE);
    let candidate = VariantSelector::new(EXPERIMENT, VariantRole::Candidate);
    let baseline = VariantSelector::new(EXPERIMENT, VariantRole::Baseline);

    // A window that starts after the first scrape of both targets and holds several scrapes
    // of the unchanged pages.
    let first_scrape = wait_for_scrapes(
        &client,
        &prometheus,
        2,
        SystemTime::now() - Duration::from_secs(60),
        1,
    )
    .await;
    let start = first_scrape + Duration::from_millis(100);
    let end = wait_for_scrapes(&client, &prometheus, 2, start, 3).await;
    let window = TimeWindow::new(start, end).unwrap();

    for (selector, page, role) in [
        (&candidate, &first_page, VariantRole::Candidate),
        (&baseline, &baseline_page, VariantRole::Baseline),
    ] {
        let figures = client.variant_figures(selector, window).await.unwrap();
        let scrapes = scrapes_in(&client, role, window).await;
        assert!(scrapes >= 3, "{role}: {scrapes} scrapes");
        let served = page.len() as u64;
        assert_eq!(figures.active_series, served, "{role}: {figures:?}");
        assert_eq!(figures.distinct_series, served, "{role}: {figures:?}");
        assert!(
            (figures.mean_active_series - served as f64).abs() < 1e-9,
            "{role}: {figures:?}"
        );
        // One sample per served series per scrape.
        assert_eq!(
            figures.scraped_samples,
            served * scrapes,
            "{role}: {figures:?}"
        );
        let per_second = figures.scraped_samples as f64 / window.length().as_secs_f64();
        assert!((figures.scraped_samples_per_second - per_second).abs() < 1e-9);
        // The per-metric split adds up and names the metrics the page served.
        let names: BTreeSet<&str> = page.iter().map(|s| s.split('{').next().unwrap()).collect();
        assert_eq!(
            figures
                .series_by_metric
                .keys()
                .map(String::as_str)
                .collect::<BTreeSet<_>>(),
            names
        );
        // Prometheus counts the same samples per scrape.
        let scraped = client
            .query_value(
                &format!("scrape_samples_scraped{{phoenix_variant=\"{role}\"}}"),
                window.end(),
            )
            .await
            .unwrap();
        assert_eq!(scraped, Some(served as f64));
        // No collector telemetry is scraped here: those figures are absent, not zero.
        assert_eq!(figures.exported_points, None);
        assert_eq!(figures.collector_cpu_cores, None);
        assert_eq!(figures.collector_memory_bytes, None);
    }

    // Churn: the candidate's page moves on (chaos restarts processes with new pids); the
    // distinct series over both pages are their union, the active ones the new page's.
    let mut second_page = first_page.clone();
    for _ in 0..40 {
        second_page = publish(&candidate_server, &mut candidate_sim);
    }
    let union: BTreeSet<&String> = first_page.union(&second_page).collect();
    assert!(
        union.len() > second_page.len() && union.len() > first_page.len(),
        "the simulator's pages should differ in series"
    );
    let switched = SystemTime::now();
    let after = wait_for_scrapes(&client, &prometheus, 2, switched + SCRAPE, 2).await;
    let whole = TimeWindow::new(start, after).unwrap();
    assert_eq!(
        client.distinct_series(&candidate, whole).await.unwrap(),
        union.len() as u64
    );
    assert_eq!(
        client.active_series(&candidate, after).await.unwrap(),
        second_page.len() as u64
    );
    let recent = TimeWindow::new(switched + SCRAPE, after).unwrap();
    assert_eq!(
        client.distinct_series(&candidate, recent).await.unwrap(),
        second_page.len() as u64
    );
    // The baseline did not change.
    assert_eq!(
        client.distinct_series(&baseline, whole).await.unwrap(),
        baseline_page.len() as u64
    );

    // Range queries: the active-series count at every step.
    let series = client
        .query_range(&candidate.active_series_query(), window, SCRAPE)
        .await
        .unwrap();
    assert_eq!(series.len(), 1);
    assert!(!series[0].points.is_empty());
    assert!(
        series[0]
            .points
            .iter()
            .all(|&(_, v)| v == first_page.len() as f64)
    );

    // Bad PromQL: the error names the query and carries Prometheus's reason.
    let err = client
        .query("sum(rate(up[1m])", SystemTime::now())
        .await
        .unwrap_err();
    let Error::Prometheus { query, reason } = &err else {
        panic!("unexpected error {err:?}");
    };
    assert_eq!(query, "sum(rate(up[1m])");
    assert!(reason.contains("bad_data"), "{reason}");
    // A range vector is not an instant result.
    let err = client.query("up[1m]", SystemTime::now()).await.unwrap_err();
    assert!(err.to_string().contains("range vector"), "{err}");
    drop(prometheus);
    drop(candidate_server);
    drop(baseline_server);
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_naming_the_query() {
    // A port that was free a moment ago: nothing listens there.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let client = PrometheusClient::new(&format!("http://{addr}"))
        .unwrap()
        .with_timeout(Duration::from_secs(5));
    let err = client.query("up", SystemTime::now()).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("`up`") && text.contains("request to"),
        "{text}"
    );
}

#[tokio::test]
async fn a_silent_server_times_out() {
    // Accepts connections (the kernel's backlog does) but never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = PrometheusClient::new(&format!("http://{addr}"))
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let err = client.query("up", SystemTime::now()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(err.to_string().contains("no response"), "{err}");
    drop(listener);
}

#[tokio::test]
async fn a_server_that_is_not_prometheus_is_an_error() {
    // The simulator's endpoint answers 404 with a body that is not the API's JSON.
    let server = PrometheusServer::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let client = PrometheusClient::new(&format!("http://{}", server.local_addr())).unwrap();
    let err = client.query("up", SystemTime::now()).await.unwrap_err();
    assert!(err.to_string().contains("HTTP 404"), "{err}");
}

/// Serves `page` as a Prometheus text page on 127.0.0.1 until the returned handle is aborted.
async fn static_page(page: &'static str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let app =
        axum::Router::new().route("/metrics", axum::routing::get(move || async move { page }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn critical_coverage_counts_instances_per_node_and_per_scrape() {
    let Some(binary) = prometheus_binary() else {
        return;
    };
    // postgres runs with the same pid on two nodes; both are instances to keep. The
    // candidate's pipeline drops the one on node-b; nginx survives everywhere.
    const BOTH: &str = "# TYPE process_memory_usage gauge\n\
        process_memory_usage{process_executable_name=\"postgres\",process_pid=\"10\"} 1024\n\
        process_memory_usage{process_executable_name=\"nginx\",process_pid=\"11\"} 2048\n";
    const NGINX_ONLY: &str = "# TYPE process_memory_usage gauge\n\
        process_memory_usage{process_executable_name=\"nginx\",process_pid=\"11\"} 2048\n";
    let targets = [
        (VariantRole::Baseline, "node-a", BOTH),
        (VariantRole::Baseline, "node-b", BOTH),
        (VariantRole::Candidate, "node-a", BOTH),
        (VariantRole::Candidate, "node-b", NGINX_ONLY),
    ];
    let mut servers = Vec::new();
    let mut config = format!(
        "global:\n  scrape_interval: {0}s\n  scrape_timeout: {0}s\n  evaluation_interval: {0}s\n\
         scrape_configs:\n",
        SCRAPE.as_secs()
    );
    for (role, node, page) in targets {
        let (addr, server) = static_page(page).await;
        servers.push(server);
        config.push_str(&format!(
            "  - job_name: {role}-{node}\n    static_configs:\n      - targets: ['{addr}']\n        \
             labels:\n          phoenix_experiment_id: {EXPERIMENT}\n          \
             phoenix_variant: {role}\n          node: {node}\n"
        ));
    }
    let prometheus = PrometheusProcess::start(&binary, &config);
    let client = PrometheusClient::new(&prometheus.url)
        .unwrap()
        .with_timeout(Duration::from_secs(10))
        .with_resolution(SCRAPE);
    let first = wait_for_scrapes(
        &client,
        &prometheus,
        targets.len(),
        SystemTime::now() - Duration::from_secs(60),
        1,
    )
    .await;
    let start = first + Duration::from_millis(100);
    let end = wait_for_scrapes(&client, &prometheus, targets.len(), start, 5).await;
    let window = TimeWindow::new(start, end).unwrap();

    let processes = [
        CriticalProcess {
            name: "^postgres$".to_owned(),
            path: None,
        },
        CriticalProcess {
            name: "^nginx$".to_owned(),
            path: None,
        },
    ];
    let mut presence = Vec::new();
    for role in VariantRole::BOTH {
        let selector = VariantSelector::new(EXPERIMENT, role);
        let mut per_process = Vec::new();
        for process in &processes {
            let query = critical_query(&selector, process, window.length(), SCRAPE);
            let value = client.query_value(&query, window.end()).await.unwrap();
            per_process.push(value.unwrap_or_default() as u64);
        }
        presence.push(per_process);
    }
    let (baseline, candidate) = (&presence[0], &presence[1]);
    // Same pid on two nodes: two instances at every step, not one.
    let steps = baseline[1] / 2;
    assert!(steps >= 3, "{presence:?}\n{}", prometheus.log());
    assert_eq!(baseline, &vec![2 * steps, 2 * steps], "{presence:?}");
    assert_eq!(candidate, &vec![steps, 2 * steps], "{presence:?}");
    let (expected, seen) = critical_coverage(baseline, candidate);
    assert_eq!((expected, seen), (4 * steps, 3 * steps));
    assert!(seen < expected, "losing one instance lowers the coverage");
    drop(prometheus);
    for server in servers {
        server.abort();
    }
}
