//! Measuring experiment variants through the Prometheus HTTP API.
//!
//! On Kubernetes, each variant's collector DaemonSet exports its pipeline output through the
//! collector's `prometheus` exporter, with `resource_to_telemetry_conversion` enabled, so the
//! resource attributes the generated configs add, `phoenix.experiment.id` and
//! `phoenix.variant`, become the labels [`EXPERIMENT_LABEL`] and [`VARIANT_LABEL`] on every
//! exported series. The collector's own metrics (`otelcol_process_cpu_seconds`,
//! `otelcol_process_memory_rss`, `otelcol_exporter_sent_metric_points`, served on the
//! telemetry port) carry no such labels: Prometheus must attach them to those scrape targets,
//! for example by relabelling the collector pods' labels (see `docs/deploy.md`).
//!
//! [`PrometheusClient`] runs instant and range queries (`/api/v1/query`,
//! `/api/v1/query_range`) over plain HTTP with a timeout, and computes the figures of one
//! variant over a time window ([`VariantFigures`]): active, mean and distinct series, samples
//! scraped per second, data points the collectors exported per second, and collector CPU and
//! memory. The PromQL behind each figure is available from [`VariantSelector`].
//!
//! ```no_run
//! use std::time::{Duration, SystemTime};
//!
//! use phoenix_core::measurement::VariantRole;
//! use phoenix_operator::prometheus::{PrometheusClient, TimeWindow, VariantSelector};
//!
//! # async fn run() -> phoenix_operator::Result<()> {
//! let client = PrometheusClient::new("http://prometheus.monitoring:9090")?
//!     .with_timeout(Duration::from_secs(10));
//! let end = SystemTime::now();
//! let window = TimeWindow::new(end - Duration::from_secs(300), end)?;
//! let candidate = VariantSelector::new("exp-1234abcd", VariantRole::Candidate);
//! let figures = client.variant_figures(&candidate, window).await?;
//! println!("{} series, {:?} cores", figures.distinct_series, figures.collector_cpu_cores);
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use phoenix_core::measurement::VariantRole;
use serde::Deserialize;

use crate::error::{Error, Result};

/// The label that carries the experiment id (the exporter's rendering of the resource
/// attribute `phoenix.experiment.id`).
pub const EXPERIMENT_LABEL: &str = "phoenix_experiment_id";

/// The label that carries the variant, `baseline` or `candidate` (the exporter's rendering of
/// the resource attribute `phoenix.variant`).
pub const VARIANT_LABEL: &str = "phoenix_variant";

/// Metric names that are not pipeline output even when they carry the variant labels: the
/// series Prometheus writes for each scrape target, and everything the collector serves on
/// its telemetry port.
pub const NON_EXPORTED_METRICS: &str = "up|scrape_.+|otelcol_.+|promhttp_.+|target_info";

/// The collector's CPU time counter (collector 0.155 serves it without the `_total` suffix;
/// other reader settings add it, so both spellings match).
pub const COLLECTOR_CPU_METRIC: &str = "otelcol_process_cpu_seconds(_total)?";

/// The collector's resident memory gauge (`_bytes` is added by some reader settings).
pub const COLLECTOR_MEMORY_METRIC: &str = "otelcol_process_memory_rss(_bytes)?";

/// The collector's counter of data points its exporters sent, labelled by `exporter`.
pub const COLLECTOR_SENT_POINTS_METRIC: &str = "otelcol_exporter_sent_metric_points(_total)?";

/// How long a request may take unless [`PrometheusClient::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The default resolution of the mean-active-series subquery: Prometheus's default scrape
/// interval.
pub const DEFAULT_RESOLUTION: Duration = Duration::from_secs(15);

/// Responses larger than this are refused rather than buffered.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// An instant-vector sample: a series' labels and its value at the evaluation time.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels (`__name__` included when the expression keeps it).
    pub labels: BTreeMap<String, String>,
    /// Evaluation time, in seconds since the Unix epoch.
    pub timestamp: f64,
    /// The value.
    pub value: f64,
}

/// A series of a range query: its labels and its `(timestamp, value)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// The series' labels.
    pub labels: BTreeMap<String, String>,
    /// `(seconds since the Unix epoch, value)`, in time order.
    pub points: Vec<(f64, f64)>,
}

/// A time window `[start, end]` to measure over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    start: SystemTime,
    end: SystemTime,
}

impl TimeWindow {
    /// The window from `start` to `end`.
    ///
    /// # Errors
    ///
    /// [`Error::Prometheus`] if `end` is not after `start`, or `start` is before the Unix
    /// epoch.
    pub fn new(start: SystemTime, end: SystemTime) -> Result<Self> {
        let invalid = |reason: &str| Error::Prometheus {
            query: "time window".to_owned(),
            reason: reason.to_owned(),
        };
        if start < SystemTime::UNIX_EPOCH {
            return Err(invalid("the window's start is before the Unix epoch"));
        }
        if end <= start {
            return Err(invalid("the window's end must be after its start"));
        }
        Ok(Self { start, end })
    }

    /// The window's start.
    pub fn start(&self) -> SystemTime {
        self.start
    }

    /// The window's end.
    pub fn end(&self) -> SystemTime {
        self.end
    }

    /// The window's length.
    pub fn length(&self) -> Duration {
        self.end.duration_since(self.start).unwrap_or_default()
    }
}

/// One variant of one experiment, as its series are labelled in Prometheus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantSelector {
    experiment_id: String,
    role: VariantRole,
}

impl VariantSelector {
    /// The `role` variant of experiment `experiment_id`.
    pub fn new(experiment_id: impl Into<String>, role: VariantRole) -> Self {
        Self {
            experiment_id: experiment_id.into(),
            role,
        }
    }

    /// The experiment id.
    pub fn experiment_id(&self) -> &str {
        &self.experiment_id
    }

    /// The variant.
    pub fn role(&self) -> VariantRole {
        self.role
    }

    /// The label matchers of the variant, `phoenix_experiment_id="…",phoenix_variant="…"`.
    pub fn matchers(&self) -> String {
        format!(
            "{EXPERIMENT_LABEL}=\"{}\",{VARIANT_LABEL}=\"{}\"",
            escape(&self.experiment_id),
            self.role.as_str()
        )
    }

    /// The selector of every series the variant's collectors export (pipeline output only).
    pub fn exported_series(&self) -> String {
        format!(
            "{{{},__name__!~\"{NON_EXPORTED_METRICS}\"}}",
            self.matchers()
        )
    }

    /// Series exported at the evaluation time (not stale).
    pub fn active_series_query(&self) -> String {
        format!("count({})", self.exported_series())
    }

    /// Mean of the active-series count over `range`, sampled every `resolution`.
    pub fn mean_active_series_query(&self, range: Duration, resolution: Duration) -> String {
        format!(
            "avg_over_time({}[{}:{}])",
            self.active_series_query(),
            promql_duration(range),
            promql_duration(resolution)
        )
    }

    /// Distinct series per metric name with at least one sample in `range`
    /// (`last_over_time` keeps the metric name, so series of different metrics with the same
    /// labels stay apart).
    pub fn distinct_series_by_name_query(&self, range: Duration) -> String {
        format!(
            "count by (__name__) (last_over_time({}[{}]))",
            self.exported_series(),
            promql_duration(range)
        )
    }

    /// Samples Prometheus stored for the variant's series in `range`, summed over the given
    /// metric names. One `count_over_time` per name: range functions drop the metric name, so
    /// a single selector over several metrics would fail with "vector cannot contain metrics
    /// with the same labelset". `None` when `names` is empty.
    pub fn scraped_samples_query(&self, names: &[String], range: Duration) -> Option<String> {
        let range = promql_duration(range);
        let mut parts = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            parts.push(format!(
                "label_replace(sum(count_over_time({{__name__=\"{}\",{}}}[{range}])), \
                 \"phoenix_part\", \"{i}\", \"\", \"\")",
                escape(name),
                self.matchers()
            ));
        }
        if parts.is_empty() {
            None
        } else {
            Some(format!("sum({})", parts.join(" or ")))
        }
    }

    /// Data points the variant's collectors exported in `range`: the increase of the sent
    /// points counter summed over collectors per exporter, then the largest exporter (every
    /// exporter of a pipeline receives the same points, so summing exporters would count
    /// them twice).
    pub fn exported_points_query(&self, range: Duration) -> String {
        format!(
            "max(sum by (exporter) (increase({{__name__=~\"{COLLECTOR_SENT_POINTS_METRIC}\",{}}}[{}])))",
            self.matchers(),
            promql_duration(range)
        )
    }

    /// CPU cores the variant's collectors used in `range`, summed over collectors.
    pub fn collector_cpu_query(&self, range: Duration) -> String {
        format!(
            "sum(rate({{__name__=~\"{COLLECTOR_CPU_METRIC}\",{}}}[{}]))",
            self.matchers(),
            promql_duration(range)
        )
    }

    /// Mean resident memory of the variant's collectors in `range`, summed over collectors.
    pub fn collector_memory_query(&self, range: Duration) -> String {
        format!(
            "sum(avg_over_time({{__name__=~\"{COLLECTOR_MEMORY_METRIC}\",{}}}[{}]))",
            self.matchers(),
            promql_duration(range)
        )
    }
}

/// What one variant did over one [`TimeWindow`].
#[derive(Debug, Clone, PartialEq)]
pub struct VariantFigures {
    /// Exported series present at the window's end.
    pub active_series: u64,
    /// Mean number of exported series present over the window.
    pub mean_active_series: f64,
    /// Distinct exported series with at least one sample in the window.
    pub distinct_series: u64,
    /// Distinct exported series per metric name.
    pub series_by_metric: BTreeMap<String, u64>,
    /// Samples Prometheus scraped from the variant's exporters in the window.
    pub scraped_samples: u64,
    /// `scraped_samples` per second of the window.
    pub scraped_samples_per_second: f64,
    /// Data points the collectors' exporters sent in the window; `None` when Prometheus has
    /// no collector telemetry labelled with the variant.
    pub exported_points: Option<f64>,
    /// `exported_points` per second of the window.
    pub exported_points_per_second: Option<f64>,
    /// CPU cores used by the variant's collectors, summed over collectors; `None` without
    /// collector telemetry.
    pub collector_cpu_cores: Option<f64>,
    /// Mean resident memory of the variant's collectors in bytes, summed over collectors;
    /// `None` without collector telemetry.
    pub collector_memory_bytes: Option<f64>,
}

/// A client of one Prometheus server's HTTP API.
#[derive(Debug, Clone)]
pub struct PrometheusClient {
    base_url: String,
    http: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
    resolution: Duration,
}

impl PrometheusClient {
    /// A client of the server at `base_url`, e.g. `http://prometheus.monitoring:9090` (a path
    /// prefix, as with `--web.route-prefix`, is kept). Plain HTTP only.
    ///
    /// # Errors
    ///
    /// [`Error::Prometheus`] naming the URL if it is not an absolute `http://` URL.
    pub fn new(base_url: &str) -> Result<Self> {
        let invalid = |reason: String| Error::Prometheus {
            query: format!("base URL {base_url}"),
            reason,
        };
        let uri: http::Uri = base_url
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(e.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(invalid(format!(
                    "scheme `{other}` is not supported; use an http:// address of the server"
                )));
            }
            None => return Err(invalid("expected an absolute http:// URL".to_owned())),
        }
        if uri.authority().is_none() {
            return Err(invalid("the URL names no host".to_owned()));
        }
        if uri.query().is_some() {
            return Err(invalid("the URL must not have a query string".to_owned()));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(DEFAULT_TIMEOUT));
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            http,
            timeout: DEFAULT_TIMEOUT,
            resolution: DEFAULT_RESOLUTION,
        })
    }

    /// Sets how long one request (connection, evaluation and response) may take.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the resolution of the mean-active-series subquery (use the scrape interval); zero
    /// keeps the current one.
    #[must_use]
    pub fn with_resolution(mut self, resolution: Duration) -> Self {
        if !resolution.is_zero() {
            self.resolution = resolution;
        }
        self
    }

    /// The server's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Evaluates `promql` at `at` (`/api/v1/query`). A scalar result comes back as one sample
    /// without labels.
    ///
    /// # Errors
    ///
    /// [`Error::Prometheus`] naming the query: unreachable server, timeout, an error
    /// response (bad PromQL, execution error), or a result that is not a vector or scalar.
    pub async fn query(&self, promql: &str, at: SystemTime) -> Result<Vec<Sample>> {
        let time = unix_seconds(at).map_err(|reason| failed(promql, reason))?;
        let data = self
            .call(
                "/api/v1/query",
                promql,
                &[("query", promql), ("time", &time)],
            )
            .await?;
        let result: QueryData =
            serde_json::from_value(data).map_err(|e| failed(promql, unexpected(&e)))?;
        match result {
            QueryData::Vector(samples) => samples
                .into_iter()
                .map(|s| {
                    let (timestamp, value) = s.value.parse().map_err(|r| failed(promql, r))?;
                    Ok(Sample {
                        labels: s.metric,
                        timestamp,
                        value,
                    })
                })
                .collect(),
            QueryData::Scalar(point) => {
                let (timestamp, value) = point.parse().map_err(|r| failed(promql, r))?;
                Ok(vec![Sample {
                    labels: BTreeMap::new(),
                    timestamp,
                    value,
                }])
            }
            QueryData::Matrix(_) => Err(failed(
                promql,
                "the result is a range vector; an instant query needs an instant vector or a \
                 scalar"
                    .to_owned(),
            )),
            QueryData::String(_) => Err(failed(
                promql,
                "the result is a string, not a number".to_owned(),
            )),
        }
    }

    /// Evaluates `promql` over `window` every `step` (`/api/v1/query_range`).
    ///
    /// # Errors
    ///
    /// [`Error::Prometheus`] naming the query, as for [`query`](Self::query); also when
    /// `step` is zero.
    pub async fn query_range(
        &self,
        promql: &str,
        window: TimeWindow,
        step: Duration,
    ) -> Result<Vec<RangeSeries>> {
        if step.is_zero() {
            return Err(failed(promql, "the step must be positive".to_owned()));
        }
        let start = unix_seconds(window.start).map_err(|r| failed(promql, r))?;
        let end = unix_seconds(window.end).map_err(|r| failed(promql, r))?;
        let step = promql_duration(step);
        let data = self
            .call(
                "/api/v1/query_range",
                promql,
                &[
                    ("query", promql),
                    ("start", &start),
                    ("end", &end),
                    ("step", &step),
                ],
            )
            .await?;
        let result: QueryData =
            serde_json::from_value(data).map_err(|e| failed(promql, unexpected(&e)))?;
        let QueryData::Matrix(series) = result else {
            return Err(failed(
                promql,
                "a range query returned something other than a matrix".to_owned(),
            ));
        };
        series
            .into_iter()
            .map(|s| {
                let points = s
                    .values
                    .into_iter()
                    .map(|p| p.parse())
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|r| failed(promql, r))?;
                Ok(RangeSeries {
                    labels: s.metric,
                    points,
                })
            })
            .collect()
    }

    /// Evaluates `promql` at `at` and returns the value of its single sample, or `None` when
    /// the result is empty (no matching series).
    ///
    /// # Errors
    ///
    /// As [`query`](Self::query); also when the result has more than one sample.
    pub async fn query_value(&self, promql: &str, at: SystemTime) -> Result<Option<f64>> {
        let samples = self.query(promql, at).await?;
        match samples.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.value)),
            many => Err(failed(
                promql,
                format!("expected at most one sample, got {}", many.len()),
            )),
        }
    }

    /// Exported series of `variant` present at `at`.
    ///
    /// # Errors
    ///
    /// [`Error::Prometheus`] naming the query when it fails.
    pub async fn active_series(&self, variant: &VariantSelector, at: SystemTime) -> Result<u64> {
        let query = variant.active_series_query();
        let value = self.query_value(&query, at).await?;
        count(&query, value)
    }

    /// Mean number of exported series of `variant` present over `window`.
    ///
    /// # Errors
    ///
    /// [`Error::Prometheus`] naming the query when it fails.
    pub async fn mean_active_series(
        &self,
        variant: &VariantSelector,
        window: TimeWindow,
    ) -> Result<f64> {
        let query = variant.mean_active_series_query(window.length(), self.resolution);
        Ok(self.query_value(&query, window.end).await?.unwrap_or(0.0))
    }

    /// Distinct exported series of `variant` with a sample in `window`, per metric name.
    ///
    /// # Errors
    ///
    /// [`Error::Prometheus`] naming the query when it fails or a sample has no metric name.
    pub async fn distinct_series_by_metric(
        &self,
        variant: &VariantSelector,
        window: TimeWindow,
    ) -> Result<BTreeMap<String, u64>> {
        let query = variant.distinct_series_by_name_query(window.length());
        let mut by_name = BTreeMap::new();
        for sample in self.query(&query, window.end).await? {
            let Some(name) = sample.labels.get("__name__") else {
                return Err(failed(&query, "a sample has no __name__ label".to_owned()));
            };
            by_name.insert(name.clone(), count(&query, Some(sample.value))?);
        }
        Ok(by_name)
    }

    /// Distinct exported series of `variant` with a sample in `window`. For the distinct
    /// series of a whole run so far, pass the window from the run's start.
    ///
    /// # Errors
    ///
    /// [`Error::Prometheus`] naming the query when it fails.
    pub async fn distinct_series(
        &self,
        variant: &VariantSelector,
        window: TimeWindow,
    ) -> Result<u64> {
        Ok(self
            .distinct_series_by_metric(variant, window)
            .await?
            .values()
            .sum())
    }

    /// Samples Prometheus scraped from the exporters of `variant` in `window`, for the given
    /// metric names (see [`distinct_series_by_metric`](Self::distinct_series_by_metric)).
    ///
    /// # Errors
    ///
    /// [`Error::Prometheus`] naming the query when it fails.
    pub async fn scraped_samples(
        &self,
        variant: &VariantSelector,
        names: &[String],
        window: TimeWindow,
    ) -> Result<u64> {
        let Some(query) = variant.scraped_samples_query(names, window.length()) else {
            return Ok(0);
        };
        let value = self.query_value(&query, window.end).await?;
        count(&query, value)
    }

    /// Data points the collectors of `variant` exported in `window`; `None` without collector
    /// telemetry.
    ///
    /// # Errors
    ///
    /// [`Error::Prometheus`] naming the query when it fails.
    pub async fn exported_points(
        &self,
        variant: &VariantSelector,
        window: TimeWindow,
    ) -> Result<Option<f64>> {
        self.query_value(&variant.exported_points_query(window.length()), window.end)
            .await
    }

    /// CPU cores the collectors of `variant` used over `window`, summed over collectors;
    /// `None` without collector telemetry.
    ///
    /// # Errors
    ///
    /// [`Error::Prometheus`] naming the query when it fails.
    pub async fn collector_cpu_cores(
        &self,
        variant: &VariantSelector,
        window: TimeWindow,
    ) -> Result<Option<f64>> {
        self.query_value(&variant.collector_cpu_query(window.length()), window.end)
            .await
    }

    /// Mean resident memory of the collectors of `variant` over `window` in bytes, summed
    /// over collectors; `None` without collector telemetry.
    ///
    /// # Errors
    ///
    /// [`Error::Prometheus`] naming the query when it fails.
    pub async fn collector_memory_bytes(
        &self,
        variant: &VariantSelector,
        window: TimeWindow,
    ) -> Result<Option<f64>> {
        self.query_value(&variant.collector_memory_query(window.length()), window.end)
            .await
    }

    /// Every figure of `variant` over `window`.
    ///
    /// # Errors
    ///
    /// [`Error::Prometheus`] naming the first query that failed.
    pub async fn variant_figures(
        &self,
        variant: &VariantSelector,
        window: TimeWindow,
    ) -> Result<VariantFigures> {
        let seconds = window.length().as_secs_f64();
        let (series_by_metric, active_series, mean_active_series, exported_points, cpu, memory) = futures::try_join!(
            self.distinct_series_by_metric(variant, window),
            self.active_series(variant, window.end),
            self.mean_active_series(variant, window),
            self.exported_points(variant, window),
            self.collector_cpu_cores(variant, window),
            self.collector_memory_bytes(variant, window),
        )?;
        let names: Vec<String> = series_by_metric.keys().cloned().collect();
        let scraped_samples = self.scraped_samples(variant, &names, window).await?;
        Ok(VariantFigures {
            active_series,
            mean_active_series,
            distinct_series: series_by_metric.values().sum(),
            series_by_metric,
            scraped_samples,
            scraped_samples_per_second: scraped_samples as f64 / seconds,
            exported_points,
            exported_points_per_second: exported_points.map(|p| p / seconds),
            collector_cpu_cores: cpu,
            collector_memory_bytes: memory,
        })
    }

    /// POSTs `form` to `path` and returns the `data` member of a successful response.
    async fn call(
        &self,
        path: &str,
        promql: &str,
        form: &[(&str, &str)],
    ) -> Result<serde_json::Value> {
        let timeout = promql_duration(self.timeout);
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().copied())
            .append_pair("timeout", &timeout)
            .finish();
        let url = format!("{}{path}", self.base_url);
        let request = http::Request::post(&url)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| failed(promql, format!("cannot build a request to {url}: {e}")))?;
        let exchange = async {
            let response =
                self.http.request(request).await.map_err(|e| {
                    failed(promql, format!("request to {url} failed: {}", chain(&e)))
                })?;
            let status = response.status();
            let bytes = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    failed(
                        promql,
                        format!("reading the response from {url} failed: {e}"),
                    )
                })?
                .to_bytes();
            Ok::<_, Error>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                failed(
                    promql,
                    format!("no response from {url} within {:?}", self.timeout),
                )
            })??;
        let envelope: Envelope = serde_json::from_slice(&bytes).map_err(|_| {
            let text = String::from_utf8_lossy(&bytes);
            let excerpt: String = text.chars().take(200).collect();
            failed(
                promql,
                format!(
                    "HTTP {status} from {url} with a body that is not the API's JSON: {excerpt}"
                ),
            )
        })?;
        match (envelope.status.as_str(), envelope.data) {
            ("success", Some(data)) if status.is_success() => Ok(data),
            ("success", None) => Err(failed(promql, "a success response without data".to_owned())),
            _ => Err(failed(
                promql,
                format!(
                    "HTTP {status}: {}{}",
                    envelope
                        .error_type
                        .map(|t| format!("{t}: "))
                        .unwrap_or_default(),
                    envelope
                        .error
                        .unwrap_or_else(|| "no error message".to_owned())
                ),
            )),
        }
    }
}

/// The API's response envelope.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// The `data` of a query response.
#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum QueryData {
    Vector(Vec<VectorSample>),
    Matrix(Vec<MatrixSeries>),
    Scalar(Point),
    String(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct VectorSample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: Point,
}

#[derive(Deserialize)]
struct MatrixSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<Point>,
}

/// `[<unix seconds>, "<value>"]`.
#[derive(Deserialize)]
struct Point(f64, String);

impl Point {
    fn parse(self) -> std::result::Result<(f64, f64), String> {
        let value = match self.1.as_str() {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            text => text
                .parse()
                .map_err(|_| format!("the sample value `{text}` is not a number"))?,
        };
        Ok((self.0, value))
    }
}

fn failed(query: &str, reason: String) -> Error {
    Error::Prometheus {
        query: query.to_owned(),
        reason,
    }
}

fn unexpected(e: &serde_json::Error) -> String {
    format!("unexpected result shape: {e}")
}

/// A non-negative whole count from a query value (an empty result counts as zero).
fn count(query: &str, value: Option<f64>) -> Result<u64> {
    let value = value.unwrap_or(0.0);
    if !value.is_finite() || value < 0.0 || value.fract() != 0.0 || value > u64::MAX as f64 {
        return Err(failed(
            query,
            format!("expected a whole non-negative count, got {value}"),
        ));
    }
    // The checks above make this conversion exact.
    Ok(value as u64)
}

/// `at` as Unix seconds with millisecond precision, as the API takes it.
fn unix_seconds(at: SystemTime) -> std::result::Result<String, String> {
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| "the time is before the Unix epoch".to_owned())?;
    Ok(format!("{}.{:03}", since.as_secs(), since.subsec_millis()))
}

/// A PromQL duration in whole milliseconds (at least 1 ms).
fn promql_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

/// Escapes a PromQL double-quoted string's content.
pub(crate) fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// An error and its sources, `a: b: c`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let _ = write!(text, ": {e}");
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate() -> VariantSelector {
        VariantSelector::new("exp-1", VariantRole::Candidate)
    }

    #[test]
    fn selectors_name_the_variant_and_skip_non_output() {
        assert_eq!(
            candidate().exported_series(),
            "{phoenix_experiment_id=\"exp-1\",phoenix_variant=\"candidate\",\
             __name__!~\"up|scrape_.+|otelcol_.+|promhttp_.+|target_info\"}"
        );
        assert_eq!(
            VariantSelector::new("a\"b\\c", VariantRole::Baseline).matchers(),
            "phoenix_experiment_id=\"a\\\"b\\\\c\",phoenix_variant=\"baseline\""
        );
    }

    #[test]
    fn figure_queries_use_the_window_length() {
        let five_minutes = Duration::from_secs(300);
        let v = candidate();
        assert_eq!(
            v.collector_cpu_query(five_minutes),
            "sum(rate({__name__=~\"otelcol_process_cpu_seconds(_total)?\",\
             phoenix_experiment_id=\"exp-1\",phoenix_variant=\"candidate\"}[300000ms]))"
        );
        assert!(
            v.mean_active_series_query(five_minutes, Duration::from_secs(15))
                .ends_with("[300000ms:15000ms])")
        );
        assert!(
            v.distinct_series_by_name_query(five_minutes)
                .starts_with("count by (__name__) (last_over_time({")
        );
        assert_eq!(v.scraped_samples_query(&[], five_minutes), None);
        let two = v
            .scraped_samples_query(&["a".to_owned(), "b".to_owned()], five_minutes)
            .unwrap_or_default();
        assert_eq!(two.matches("count_over_time({__name__=").count(), 2);
        assert!(two.contains(" or "));
    }

    #[test]
    fn base_urls_must_be_plain_http() {
        assert!(PrometheusClient::new("http://127.0.0.1:9090/").is_ok());
        assert_eq!(
            PrometheusClient::new("http://prom:9090/prefix/")
                .map(|c| c.base_url().to_owned())
                .ok(),
            Some("http://prom:9090/prefix".to_owned())
        );
        for bad in [
            "https://prom:9090",
            "prom:9090",
            "/api",
            "http://prom:9090/?x=1",
            "",
        ] {
            let err = PrometheusClient::new(bad).err().map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|e| e.contains("base URL")),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn windows_must_be_forward() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert!(TimeWindow::new(t, t).is_err());
        assert!(TimeWindow::new(t + Duration::from_secs(1), t).is_err());
        let w = TimeWindow::new(t, t + Duration::from_millis(1_500));
        assert_eq!(
            w.map(|w| w.length()).ok(),
            Some(Duration::from_millis(1_500))
        );
    }

    #[test]
    fn counts_must_be_whole() {
        assert_eq!(count("q", None).ok(), Some(0));
        assert_eq!(count("q", Some(42.0)).ok(), Some(42));
        for bad in [-1.0, 1.5, f64::NAN, f64::INFINITY] {
            assert!(count("q", Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn results_parse() {
        let vector: QueryData = serde_json::from_str(
            r#"{"resultType":"vector","result":[{"metric":{"a":"b"},"value":[1.5,"NaN"]}]}"#,
        )
        .unwrap_or(QueryData::Vector(Vec::new()));
        let QueryData::Vector(samples) = vector else {
            panic!("not a vector");
        };
        assert_eq!(samples.len(), 1);
        let point = Point(2.0, "+Inf".to_owned()).parse();
        assert_eq!(point, Ok((2.0, f64::INFINITY)));
        assert!(Point(2.0, "x".to_owned()).parse().is_err());
        assert_eq!(
            unix_seconds(SystemTime::UNIX_EPOCH + Duration::from_millis(1_234_567)).ok(),
            Some("1234.567".to_owned())
        );
    }
}
