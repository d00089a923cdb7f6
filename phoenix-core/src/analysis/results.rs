//! What an experiment concludes: per-variant figures, the comparison and the recommendation.

use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cost::CostModel;
use crate::measurement::Noise;

/// The results of a run. Every figure is finite (never NaN): ratios with a zero denominator
/// are defined where they are computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentResults {
    /// Whether the measurements repeat exactly.
    pub noise: Noise,
    /// How many measurement windows were analysed.
    pub windows: u32,
    /// Measured time, the sum of the windows' lengths.
    #[serde(with = "crate::duration")]
    #[schemars(with = "String")]
    pub measured: Duration,
    /// The prices the monthly costs were computed with.
    pub cost_model: CostModel,
    /// The baseline's figures.
    pub baseline: VariantSummary,
    /// The candidate's figures.
    pub candidate: VariantSummary,
    /// The candidate relative to the baseline.
    pub comparison: Comparison,
    /// Whether the difference in data points is beyond measurement noise.
    pub significance: Significance,
    /// What to do with the candidate, and why.
    pub recommendation: Recommendation,
    /// Notable observations, one sentence each.
    pub findings: Vec<String>,
}

/// One variant's figures over the measured time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VariantSummary {
    /// Distinct series exported over the run.
    pub distinct_series: u64,
    /// Mean distinct series per scrape.
    pub mean_active_series: f64,
    /// Data points exported per minute.
    pub data_points_per_minute: f64,
    /// Encoded OTLP bytes exported per minute.
    pub bytes_per_minute: f64,
    /// New series per hour.
    pub series_churn_per_hour: f64,
    /// Critical-process observations kept in the output.
    pub critical_seen: u64,
    /// Critical-process observations in the input.
    pub critical_expected: u64,
    /// `critical_seen / critical_expected`, 1 when no critical process was observed.
    pub critical_coverage: f64,
    /// Mean collector CPU in cores, where measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_cores: Option<f64>,
    /// Mean collector memory in bytes, where measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<f64>,
    /// What the exported telemetry costs per month under the cost model.
    pub monthly_cost: MonthlyCost,
}

/// A monthly cost split by what is billed. A month is 730 hours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonthlyCost {
    /// For data points.
    pub data_points: f64,
    /// For bytes ingested.
    pub bytes: f64,
    /// For active series.
    pub series: f64,
    /// The sum of the three.
    pub total: f64,
}

/// The candidate relative to the baseline. Reductions are fractions of the baseline's
/// figure (0.6 = 60% less; negative when the candidate exports more) and 0 when the baseline
/// figure is 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    /// Reduction of distinct series over the run.
    pub cardinality_reduction: f64,
    /// Reduction of data points per minute.
    pub data_point_reduction: f64,
    /// Reduction of bytes per minute.
    pub byte_reduction: f64,
    /// Reduction of the monthly cost.
    pub cost_reduction: f64,
    /// Baseline monthly cost minus candidate monthly cost.
    pub monthly_saving: f64,
    /// Fraction of critical-process observations the candidate lost: `1 - coverage`.
    pub critical_process_loss: f64,
    /// Candidate CPU over baseline CPU, minus 1, where both were measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_overhead: Option<f64>,
    /// Candidate memory over baseline memory, minus 1, where both were measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_overhead: Option<f64>,
}

/// Whether the difference between the variants is beyond noise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Significance {
    /// The measurements are deterministic, so no test is needed: differences are exact.
    Deterministic,
    /// Welch's t-test over the per-window samples.
    Tested(WelchTest),
    /// The test could not be run.
    NotTestable {
        /// Why, e.g. fewer than two windows.
        reason: String,
    },
}

/// The outcome of Welch's unequal-variance t-test on per-window samples of both variants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WelchTest {
    /// What was compared, e.g. `dataPointsPerMinute`.
    pub metric: String,
    /// Baseline sample mean.
    pub baseline_mean: f64,
    /// Candidate sample mean.
    pub candidate_mean: f64,
    /// The t statistic.
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub degrees_of_freedom: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// The significance level the p-value was compared with.
    pub alpha: f64,
    /// Whether `p_value < alpha`.
    pub significant: bool,
}

/// What to do with the candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", tag = "decision")]
pub enum Recommendation {
    /// The candidate meets every success criterion.
    Promote,
    /// The candidate fails at least one criterion.
    Reject {
        /// Every criterion it fails.
        reasons: Vec<Reason>,
    },
    /// The data cannot support a decision.
    Inconclusive {
        /// Why.
        reasons: Vec<Reason>,
    },
}

impl Recommendation {
    /// The decision in one word, as serialized: `promote`, `reject` or `inconclusive`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Promote => "promote",
            Self::Reject { .. } => "reject",
            Self::Inconclusive { .. } => "inconclusive",
        }
    }

    /// Why the candidate is not promoted: empty for [`Promote`](Self::Promote).
    pub fn reasons(&self) -> &[Reason] {
        match self {
            Self::Promote => &[],
            Self::Reject { reasons } | Self::Inconclusive { reasons } => reasons,
        }
    }
}

/// Why a candidate is rejected or the result is inconclusive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "kind"
)]
pub enum Reason {
    /// Critical processes went missing from the candidate's output.
    CriticalProcessLoss {
        /// Fraction of observations lost.
        observed: f64,
        /// Largest fraction allowed.
        allowed: f64,
    },
    /// Distinct series did not fall enough.
    CardinalityReductionTooSmall {
        /// Reduction achieved.
        observed: f64,
        /// Reduction required.
        required: f64,
    },
    /// Monthly cost did not fall enough.
    CostReductionTooSmall {
        /// Reduction achieved.
        observed: f64,
        /// Reduction required.
        required: f64,
    },
    /// The candidate collector uses too much more CPU.
    CpuOverheadTooHigh {
        /// Overhead measured.
        observed: f64,
        /// Largest overhead allowed.
        allowed: f64,
    },
    /// The candidate collector uses too much more memory.
    MemoryOverheadTooHigh {
        /// Overhead measured.
        observed: f64,
        /// Largest overhead allowed.
        allowed: f64,
    },
    /// A CPU or memory criterion is set but the executor did not measure it.
    ResourceNotMeasured {
        /// `cpu` or `memory`.
        resource: String,
    },
    /// No measurement window was recorded.
    NoMeasurements,
    /// The baseline exported nothing, so reductions are undefined.
    EmptyBaseline,
    /// Noisy measurements whose difference is not significant.
    NotSignificant {
        /// The test's p-value.
        p_value: f64,
        /// The significance level.
        alpha: f64,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |x: f64| x * 100.0;
        match self {
            Self::CriticalProcessLoss { observed, allowed } => write!(
                f,
                "critical-process loss {:.2}% exceeds the allowed {:.2}%",
                pct(*observed),
                pct(*allowed)
            ),
            Self::CardinalityReductionTooSmall { observed, required } => write!(
                f,
                "cardinality reduction {:.1}% is below the required {:.1}%",
                pct(*observed),
                pct(*required)
            ),
            Self::CostReductionTooSmall { observed, required } => write!(
                f,
                "cost reduction {:.1}% is below the required {:.1}%",
                pct(*observed),
                pct(*required)
            ),
            Self::CpuOverheadTooHigh { observed, allowed } => write!(
                f,
                "collector CPU overhead {:.1}% exceeds the allowed {:.1}%",
                pct(*observed),
                pct(*allowed)
            ),
            Self::MemoryOverheadTooHigh { observed, allowed } => write!(
                f,
                "collector memory overhead {:.1}% exceeds the allowed {:.1}%",
                pct(*observed),
                pct(*allowed)
            ),
            Self::ResourceNotMeasured { resource } => {
                write!(
                    f,
                    "a {resource} overhead criterion is set but {resource} was not measured"
                )
            }
            Self::NoMeasurements => f.write_str("no measurement window was recorded"),
            Self::EmptyBaseline => {
                f.write_str("the baseline exported no data, so reductions are undefined")
            }
            Self::NotSignificant { p_value, alpha } => write!(
                f,
                "the difference in data points is not significant (p = {p_value:.3}, alpha = {alpha})"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decision_word_is_the_serialized_tag_and_reasons_are_the_variants() {
        let reason = Reason::CostReductionTooSmall {
            observed: 0.1,
            required: 0.2,
        };
        let cases = [
            (Recommendation::Promote, Vec::new()),
            (
                Recommendation::Reject {
                    reasons: vec![reason.clone()],
                },
                vec![reason.clone()],
            ),
            (
                Recommendation::Inconclusive {
                    reasons: vec![reason.clone()],
                },
                vec![reason],
            ),
        ];
        for (recommendation, reasons) in cases {
            let json = serde_json::to_value(&recommendation).expect("serializes");
            assert_eq!(json["decision"], recommendation.as_str());
            assert_eq!(recommendation.reasons(), reasons.as_slice());
        }
    }
}
