//! `/metrics`: Prometheus text format. Request counts and latency histograms by method,
//! route and status; experiments by phase; the latest results of each experiment.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use phoenix_core::analysis::{ExperimentResults, VariantSummary};
use phoenix_core::phase::Phase;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::events::Summary;

/// The labels of one request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    /// The HTTP method.
    pub(crate) method: String,
    /// The route pattern, e.g. `/api/v1/experiments/{id}`; `unmatched` for unknown paths.
    pub(crate) route: String,
    /// The response status code.
    pub(crate) status: String,
}

/// The label of an HTTP method: one of the standard methods, or `other`, so that clients
/// cannot add series by sending made-up methods.
pub(crate) fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VariantLabels {
    experiment: String,
    variant: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExperimentLabels {
    experiment: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Which per-variant figure of the results a gauge holds.
#[derive(Debug, Clone, Copy)]
enum VariantFigure {
    DistinctSeries,
    DataPointsPerMinute,
    BytesPerMinute,
    MonthlyCost,
    CriticalCoverage,
}

impl VariantFigure {
    const ALL: [Self; 5] = [
        Self::DistinctSeries,
        Self::DataPointsPerMinute,
        Self::BytesPerMinute,
        Self::MonthlyCost,
        Self::CriticalCoverage,
    ];

    const fn name(self) -> &'static str {
        match self {
            Self::DistinctSeries => "phoenix_experiment_distinct_series",
            Self::DataPointsPerMinute => "phoenix_experiment_data_points_per_minute",
            Self::BytesPerMinute => "phoenix_experiment_bytes_per_minute",
            Self::MonthlyCost => "phoenix_experiment_monthly_cost",
            Self::CriticalCoverage => "phoenix_experiment_critical_coverage",
        }
    }

    const fn help(self) -> &'static str {
        match self {
            Self::DistinctSeries => {
                "Distinct series over the run, per variant, from the latest results"
            }
            Self::DataPointsPerMinute => {
                "Data points per minute, per variant, from the latest results"
            }
            Self::BytesPerMinute => {
                "Encoded OTLP bytes per minute, per variant, from the latest results"
            }
            Self::MonthlyCost => {
                "Monthly cost at the experiment's prices, per variant, from the latest results"
            }
            Self::CriticalCoverage => "Fraction of critical-process observations kept, per variant",
        }
    }

    #[allow(clippy::cast_precision_loss)]
    fn value(self, summary: &VariantSummary) -> f64 {
        match self {
            Self::DistinctSeries => summary.distinct_series as f64,
            Self::DataPointsPerMinute => summary.data_points_per_minute,
            Self::BytesPerMinute => summary.bytes_per_minute,
            Self::MonthlyCost => summary.monthly_cost.total,
            Self::CriticalCoverage => summary.critical_coverage,
        }
    }
}

/// Which comparison figure of the results a gauge holds.
#[derive(Debug, Clone, Copy)]
enum ComparisonFigure {
    CardinalityReduction,
    CostReduction,
    MonthlySaving,
}

impl ComparisonFigure {
    const ALL: [Self; 3] = [
        Self::CardinalityReduction,
        Self::CostReduction,
        Self::MonthlySaving,
    ];

    const fn name(self) -> &'static str {
        match self {
            Self::CardinalityReduction => "phoenix_experiment_cardinality_reduction",
            Self::CostReduction => "phoenix_experiment_cost_reduction",
            Self::MonthlySaving => "phoenix_experiment_monthly_saving",
        }
    }

    const fn help(self) -> &'static str {
        match self {
            Self::CardinalityReduction => "Fraction by which the candidate reduces distinct series",
            Self::CostReduction => "Fraction by which the candidate reduces the monthly cost",
            Self::MonthlySaving => "Monthly saving of the candidate over the baseline",
        }
    }

    fn value(self, results: &ExperimentResults) -> f64 {
        match self {
            Self::CardinalityReduction => results.comparison.cardinality_reduction,
            Self::CostReduction => results.comparison.cost_reduction,
            Self::MonthlySaving => results.comparison.monthly_saving,
        }
    }
}

/// The server's metrics.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
    phases: Family<PhaseLabels, Gauge>,
    runs: Gauge,
    variant_figures: Vec<(VariantFigure, Family<VariantLabels, FloatGauge>)>,
    comparison_figures: Vec<(ComparisonFigure, Family<ExperimentLabels, FloatGauge>)>,
    /// The last text rendered, and when: scrapes within [`RENDER_CACHE`] get it again.
    rendered: Mutex<Option<(Instant, String)>>,
}

/// How long a rendered exposition is served again before the next render.
pub(crate) const RENDER_CACHE: Duration = Duration::from_secs(2);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "phoenix_http_requests",
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "phoenix_http_request_duration_seconds",
            "Time to answer HTTP requests, by method, route and status",
            latency.clone(),
        );
        let phases = Family::<PhaseLabels, Gauge>::default();
        registry.register(
            "phoenix_experiments",
            "Experiments by phase",
            phases.clone(),
        );
        let runs = Gauge::default();
        registry.register(
            "phoenix_experiment_runs_active",
            "Experiment runs in progress in this server",
            runs.clone(),
        );
        let variant_figures = VariantFigure::ALL
            .into_iter()
            .map(|figure| {
                let family = Family::<VariantLabels, FloatGauge>::default();
                registry.register(figure.name(), figure.help(), family.clone());
                (figure, family)
            })
            .collect();
        let comparison_figures = ComparisonFigure::ALL
            .into_iter()
            .map(|figure| {
                let family = Family::<ExperimentLabels, FloatGauge>::default();
                registry.register(figure.name(), figure.help(), family.clone());
                (figure, family)
            })
            .collect();
        Self {
            registry,
            requests,
            latency,
            phases,
            runs,
            variant_figures,
            comparison_figures,
            rendered: Mutex::new(None),
        }
    }

    /// Counts one answered request.
    pub(crate) fn observe(&self, labels: &RequestLabels, elapsed: Duration) {
        self.requests.get_or_create(labels).inc();
        self.latency
            .get_or_create(labels)
            .observe(elapsed.as_secs_f64());
    }

    /// The text exposition: the one rendered less than [`RENDER_CACHE`] ago, else a fresh
    /// one from what `current` returns (the summaries and the number of active runs).
    pub(crate) fn render_cached(
        &self,
        current: impl FnOnce() -> (
            Vec<(phoenix_core::experiment::ExperimentId, Summary)>,
            usize,
        ),
    ) -> String {
        let mut rendered = self
            .rendered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, text)) = rendered.as_ref()
            && at.elapsed() < RENDER_CACHE
        {
            return text.clone();
        }
        let (summaries, runs) = current();
        let text = self.render(&summaries, runs);
        *rendered = Some((Instant::now(), text.clone()));
        text
    }

    /// The text exposition, with the experiment gauges set from `summaries`. Called with the
    /// `rendered` lock held, so renders never interleave.
    fn render(
        &self,
        summaries: &[(phoenix_core::experiment::ExperimentId, Summary)],
        runs: usize,
    ) -> String {
        for phase in Phase::ALL {
            let count = summaries.iter().filter(|(_, s)| s.phase == phase).count();
            self.phases
                .get_or_create(&PhaseLabels {
                    phase: phase.as_str().to_owned(),
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        self.runs.set(i64::try_from(runs).unwrap_or(i64::MAX));
        for (_, family) in &self.variant_figures {
            family.clear();
        }
        for (_, family) in &self.comparison_figures {
            family.clear();
        }
        for (id, summary) in summaries {
            let Some(results) = &summary.results else {
                continue;
            };
            for (figure, family) in &self.variant_figures {
                for (variant, values) in [
                    ("baseline", &results.baseline),
                    ("candidate", &results.candidate),
                ] {
                    let labels = VariantLabels {
                        experiment: id.to_string(),
                        variant: variant.to_owned(),
                    };
                    family.get_or_create(&labels).set(figure.value(values));
                }
            }
            for (figure, family) in &self.comparison_figures {
                let labels = ExperimentLabels {
                    experiment: id.to_string(),
                };
                family.get_or_create(&labels).set(figure.value(results));
            }
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(%e, "encoding metrics failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_share_one_label() {
        let odd = axum::http::Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&odd), "other");
        assert_eq!(method_label(&axum::http::Method::PUT), "PUT");
    }

    #[test]
    fn renders_are_cached_briefly() {
        let metrics = Metrics::new();
        let first = metrics.render_cached(|| (Vec::new(), 1));
        assert!(
            first.contains("phoenix_experiment_runs_active 1"),
            "{first}"
        );
        let second = metrics.render_cached(|| (Vec::new(), 7));
        assert_eq!(first, second, "served from the cache");
    }
}
