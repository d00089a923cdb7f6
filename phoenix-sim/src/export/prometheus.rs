//! A Prometheus endpoint serving the current snapshot and the simulator's own metrics.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use phoenix_core::telemetry::{AnyValue, KeyValue, MetricData, NumberValue, Snapshot};

use crate::output::Sink;
use crate::{Error, Result, SimStats};

/// Serves `GET /metrics` on a background thread until dropped.
pub struct PrometheusServer {
    addr: SocketAddr,
    page: Arc<Mutex<String>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for PrometheusServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl PrometheusServer {
    /// Listens on `addr` (port 0 picks a free port; see [`local_addr`](Self::local_addr)).
    ///
    /// # Errors
    ///
    /// [`Error::Export`] if the address cannot be bound.
    pub fn start(addr: SocketAddr) -> Result<Self> {
        let bind_error = |e: std::io::Error| Error::Export {
            endpoint: addr.to_string(),
            message: e.to_string(),
        };
        let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(bind_error)?;
        let page = Arc::new(Mutex::new(render(
            &Snapshot::default(),
            &SimStats::default(),
        )));
        let shared = Arc::clone(&page);
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("prometheus".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let app = axum::Router::new().route(
                        "/metrics",
                        axum::routing::get(move || {
                            let page = Arc::clone(&shared);
                            async move {
                                let body = page.lock().map(|p| p.clone()).unwrap_or_default();
                                (
                                    [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                                    body,
                                )
                            }
                        }),
                    );
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                });
            })
            .map_err(bind_error)?;
        Ok(Self {
            addr,
            page,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The address the endpoint listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the page with this snapshot and these counters.
    pub fn publish(&self, snapshot: &Snapshot, stats: &SimStats) {
        let text = render(snapshot, stats);
        if let Ok(mut page) = self.page.lock() {
            *page = text;
        }
    }
}

impl Sink for PrometheusServer {
    fn send(&mut self, snapshot: &Snapshot, stats: &SimStats) -> Result<()> {
        self.publish(snapshot, stats);
        Ok(())
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The Prometheus text exposition of a snapshot and the simulator's counters.
///
/// Names follow the collector's `prometheus` exporter: dots become underscores, the unit
/// becomes a suffix (`s` → `_seconds`, `By` → `_bytes`, `1` → `_ratio`; units in braces are
/// dropped) and monotonic cumulative sums get `_total`. Resource attributes become labels,
/// as with the exporter's `resource_to_telemetry_conversion` enabled (without it, every
/// process's series would collide).
pub fn render(snapshot: &Snapshot, stats: &SimStats) -> String {
    let mut families: Vec<(String, &'static str, String, Vec<String>)> = Vec::new();
    for resource in &snapshot.resources {
        let mut resource_labels = String::new();
        for kv in &resource.attributes {
            push_label(&mut resource_labels, kv);
        }
        for metric in resource.metrics() {
            let (kind, monotonic) = match &metric.data {
                MetricData::Gauge { .. } => ("gauge", false),
                MetricData::Sum { monotonic, .. } => {
                    (if *monotonic { "counter" } else { "gauge" }, *monotonic)
                }
            };
            let name = prometheus_name(metric.name.as_str(), &metric.unit, monotonic);
            let index = match families.iter().position(|f| f.0 == name) {
                Some(i) => i,
                None => {
                    families.push((name.clone(), kind, metric.description.clone(), Vec::new()));
                    families.len() - 1
                }
            };
            for point in metric.data.points() {
                let mut labels = resource_labels.clone();
                for kv in &point.attributes {
                    push_label(&mut labels, kv);
                }
                let value = match point.value {
                    NumberValue::Int(i) => i.to_string(),
                    NumberValue::Double(d) => format_double(d),
                };
                families[index].3.push(format!(
                    "{name}{{{}}} {value}",
                    labels.trim_end_matches(',')
                ));
            }
        }
    }
    let mut out = String::new();
    for (name, kind, help, samples) in families {
        let _ = writeln!(
            out,
            "# HELP {name} {}",
            help.replace('\\', "\\\\").replace('\n', "\\n")
        );
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for sample in samples {
            out.push_str(&sample);
            out.push('\n');
        }
    }
    let own = [
        (
            "phoenix_sim_active_processes",
            "gauge",
            "Processes alive at the last scrape.",
            stats.live_processes,
        ),
        (
            "phoenix_sim_process_starts_total",
            "counter",
            "Processes started.",
            stats.starts,
        ),
        (
            "phoenix_sim_process_exits_total",
            "counter",
            "Processes that exited, crashes included.",
            stats.exits,
        ),
        (
            "phoenix_sim_process_crashes_total",
            "counter",
            "Processes that crashed or were OOM-killed.",
            stats.crashes,
        ),
        (
            "phoenix_sim_series_emitted_total",
            "counter",
            "Series emitted.",
            stats.series_emitted,
        ),
        (
            "phoenix_sim_data_points_total",
            "counter",
            "Data points emitted.",
            stats.data_points,
        ),
        (
            "phoenix_sim_scrapes_total",
            "counter",
            "Snapshots produced.",
            stats.scrapes,
        ),
    ];
    for (name, kind, help, value) in own {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    out
}

fn prometheus_name(name: &str, unit: &str, monotonic: bool) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let suffix = match unit {
        "s" => "seconds",
        "By" => "bytes",
        "1" => "ratio",
        _ => "",
    };
    if !suffix.is_empty() && !out.ends_with(suffix) {
        out.push('_');
        out.push_str(suffix);
    }
    if monotonic {
        out.push_str("_total");
    }
    out
}

fn push_label(out: &mut String, kv: &KeyValue) {
    let key: String = kv
        .key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let value = match &kv.value {
        AnyValue::String(s) => s.clone(),
        other => other.to_string(),
    };
    let escaped = value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    let _ = write!(out, "{key}=\"{escaped}\",");
}

fn format_double(d: f64) -> String {
    if d.is_nan() {
        "NaN".to_owned()
    } else if d.is_infinite() {
        if d > 0.0 {
            "+Inf".to_owned()
        } else {
            "-Inf".to_owned()
        }
    } else {
        d.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_collector_exporter() {
        assert_eq!(
            prometheus_name("process.cpu.time", "s", true),
            "process_cpu_time_seconds_total"
        );
        assert_eq!(
            prometheus_name("process.memory.usage", "By", false),
            "process_memory_usage_bytes"
        );
        assert_eq!(
            prometheus_name("process.threads", "{threads}", false),
            "process_threads"
        );
        assert_eq!(
            prometheus_name("process.cpu.utilization", "1", false),
            "process_cpu_utilization_ratio"
        );
    }
}
