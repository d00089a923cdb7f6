//! From per-window measurements to [`ExperimentResults`].

use std::time::Duration;

use super::figures::{fixed, group};
use super::results::{
    Comparison, ExperimentResults, Reason, Recommendation, Significance, VariantSummary,
};
use super::welch::welch_t_test;
use crate::cost::CostModel;
use crate::experiment::SuccessCriteria;
use crate::measurement::{Noise, VariantRole, VariantSample, WindowMeasurement};

/// The significance level Welch's t-test is run at.
pub const ALPHA: f64 = 0.05;

/// The per-window figure Welch's t-test compares: data points per minute.
pub const TESTED_METRIC: &str = "dataPointsPerMinute";

/// Slack for floating-point rounding when a figure is compared with a criterion, so that a
/// reduction of exactly the required 10% (computed as `0.09999999999999998`) passes.
const TOLERANCE: f64 = 1e-12;

/// Analyses an experiment's measurement windows.
///
/// Per variant ([`VariantSummary`]):
/// - `distinct_series`: the last window's (highest index) cumulative distinct series;
/// - `mean_active_series`: the windows' means weighted by their scrapes (the plain mean where
///   no window has a scrape; values that are not finite are skipped);
/// - `data_points_per_minute`, `bytes_per_minute`: totals over the measured time (the sum of
///   the windows' lengths), 0 when nothing was measured;
/// - `series_churn_per_hour`: new series over the measured hours;
/// - `critical_coverage`: seen over expected critical-process observations, 1 when none was
///   expected, at most 1;
/// - `cpu_cores`, `memory_bytes`: the mean over the windows that measured them;
/// - `monthly_cost`: [`CostModel::monthly_cost`] of the above.
///
/// The [`Comparison`] takes reductions as `1 − candidate / baseline` (0 where the baseline's
/// figure is 0) and overheads as `candidate / baseline − 1` (where both were measured and the
/// baseline's is positive).
///
/// Significance: [`Noise::Deterministic`] needs no test. [`Noise::Noisy`] runs Welch's t-test
/// ([`welch_t_test`]) at [`ALPHA`] on each variant's per-window data points per minute
/// (windows of zero length are left out). Where it cannot run, the reason is given; samples
/// that are both constant but differ count as an exact, significant difference, and every
/// other untestable case as not significant (p taken as 1).
///
/// Recommendation: no windows, or a baseline that exported no data points, is
/// [`Recommendation::Inconclusive`]. Otherwise every failed criterion is a reason to
/// [`Recommendation::Reject`] (any lost critical-process observation fails a criterion of 0);
/// without one, an unmeasured resource with a criterion or a noisy difference that is not
/// significant is inconclusive; otherwise [`Recommendation::Promote`].
///
/// Never panics, and every figure in the results is finite.
pub fn analyze(
    windows: &[WindowMeasurement],
    criteria: &SuccessCriteria,
    cost_model: &CostModel,
    noise: Noise,
) -> ExperimentResults {
    let measured = windows.iter().fold(Duration::ZERO, |total, w| {
        total.saturating_add(w.window.length())
    });
    let minutes = measured.as_secs_f64() / 60.0;
    let baseline = summarize(windows, VariantRole::Baseline, minutes, cost_model);
    let candidate = summarize(windows, VariantRole::Candidate, minutes, cost_model);
    let comparison = compare(&baseline, &candidate);
    let (significance, evidence) = significance(windows, noise);
    let baseline_empty = windows.iter().all(|w| w.baseline.data_points == 0);
    let recommendation = recommend(
        windows.is_empty(),
        baseline_empty,
        &candidate,
        &comparison,
        criteria,
        evidence,
    );
    let findings = if windows.is_empty() {
        vec!["no measurement window was recorded, so there is nothing to compare".to_owned()]
    } else {
        findings(
            &baseline,
            &candidate,
            &comparison,
            &significance,
            cost_model,
            baseline_empty,
        )
    };
    ExperimentResults {
        noise,
        windows: u32::try_from(windows.len()).unwrap_or(u32::MAX),
        measured,
        cost_model: cost_model.clone(),
        baseline,
        candidate,
        comparison,
        significance,
        recommendation,
        findings,
    }
}

/// What the significance analysis says about the difference, for the recommendation.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Evidence {
    /// The difference is exact (deterministic, or both samples constant).
    Exact,
    /// The test found the difference significant.
    Significant,
    /// The difference is not significant, or could not be tested.
    NotSignificant {
        /// The test's p-value; 1 where no test could run.
        p_value: f64,
    },
}

fn summarize(
    windows: &[WindowMeasurement],
    role: VariantRole,
    minutes: f64,
    cost_model: &CostModel,
) -> VariantSummary {
    let samples = || windows.iter().map(move |w| w.sample(role));
    let distinct_series = windows
        .iter()
        .max_by_key(|w| w.window.index)
        .map_or(0, |w| w.sample(role).distinct_series_to_date);
    let data_points: f64 = samples().map(|s| to_f64(s.data_points)).sum();
    let bytes: f64 = samples().map(|s| to_f64(s.bytes)).sum();
    let new_series: f64 = samples().map(|s| to_f64(s.new_series)).sum();
    let critical_seen = samples().fold(0_u64, |sum, s| sum.saturating_add(s.critical_seen));
    let critical_expected = samples().fold(0_u64, |sum, s| sum.saturating_add(s.critical_expected));

    let data_points_per_minute = ratio(data_points, minutes);
    let bytes_per_minute = ratio(bytes, minutes);
    let mean_active_series = scrape_weighted_mean(windows, role);
    VariantSummary {
        distinct_series,
        mean_active_series,
        data_points_per_minute,
        bytes_per_minute,
        series_churn_per_hour: ratio(new_series, minutes / 60.0),
        critical_seen,
        critical_expected,
        critical_coverage: coverage(critical_seen, critical_expected),
        cpu_cores: mean(samples().filter_map(|s| s.cpu_cores)),
        memory_bytes: mean(samples().filter_map(|s| s.memory_bytes)),
        monthly_cost: cost_model.monthly_cost(
            data_points_per_minute,
            bytes_per_minute,
            mean_active_series,
        ),
    }
}

/// The windows' mean active series weighted by their scrapes; the plain mean where no window
/// with a finite value has a scrape; 0 without a finite value.
fn scrape_weighted_mean(windows: &[WindowMeasurement], role: VariantRole) -> f64 {
    let finite_samples = || {
        windows
            .iter()
            .map(move |w| w.sample(role))
            .filter(|s| s.mean_active_series.is_finite())
    };
    let (weighted, scrapes) = finite_samples().fold((0.0, 0.0), |(sum, n), s: &VariantSample| {
        let k = f64::from(s.scrapes);
        (sum + k * s.mean_active_series, n + k)
    });
    if scrapes > 0.0 {
        finite(weighted / scrapes)
    } else {
        mean(finite_samples().map(|s| s.mean_active_series)).unwrap_or(0.0)
    }
}

fn compare(baseline: &VariantSummary, candidate: &VariantSummary) -> Comparison {
    let (b_cost, c_cost) = (baseline.monthly_cost.total, candidate.monthly_cost.total);
    Comparison {
        cardinality_reduction: reduction(
            to_f64(baseline.distinct_series),
            to_f64(candidate.distinct_series),
        ),
        data_point_reduction: reduction(
            baseline.data_points_per_minute,
            candidate.data_points_per_minute,
        ),
        byte_reduction: reduction(baseline.bytes_per_minute, candidate.bytes_per_minute),
        cost_reduction: reduction(b_cost, c_cost),
        monthly_saving: finite(b_cost - c_cost),
        critical_process_loss: (1.0 - candidate.critical_coverage).clamp(0.0, 1.0),
        cpu_overhead: overhead(baseline.cpu_cores, candidate.cpu_cores),
        memory_overhead: overhead(baseline.memory_bytes, candidate.memory_bytes),
    }
}

fn significance(windows: &[WindowMeasurement], noise: Noise) -> (Significance, Evidence) {
    if noise == Noise::Deterministic {
        return (Significance::Deterministic, Evidence::Exact);
    }
    let (baseline, candidate): (Vec<f64>, Vec<f64>) = windows
        .iter()
        .filter(|w| !w.window.length().is_zero())
        .map(|w| {
            let minutes = w.window.length().as_secs_f64() / 60.0;
            (
                ratio(to_f64(w.baseline.data_points), minutes),
                ratio(to_f64(w.candidate.data_points), minutes),
            )
        })
        .unzip();
    match welch_t_test(TESTED_METRIC, &baseline, &candidate, ALPHA) {
        Ok(test) => {
            let evidence = if test.significant {
                Evidence::Significant
            } else {
                Evidence::NotSignificant {
                    p_value: test.p_value,
                }
            };
            (Significance::Tested(test), evidence)
        }
        Err(untestable) => {
            let evidence = if untestable.exact_difference() {
                Evidence::Exact
            } else {
                Evidence::NotSignificant { p_value: 1.0 }
            };
            (
                Significance::NotTestable {
                    reason: untestable.to_string(),
                },
                evidence,
            )
        }
    }
}

fn recommend(
    no_windows: bool,
    baseline_empty: bool,
    candidate: &VariantSummary,
    comparison: &Comparison,
    criteria: &SuccessCriteria,
    evidence: Evidence,
) -> Recommendation {
    if no_windows {
        return Recommendation::Inconclusive {
            reasons: vec![Reason::NoMeasurements],
        };
    }
    if baseline_empty {
        return Recommendation::Inconclusive {
            reasons: vec![Reason::EmptyBaseline],
        };
    }
    let mut reject = Vec::new();
    let mut inconclusive = Vec::new();

    let lost = candidate
        .critical_expected
        .saturating_sub(candidate.critical_seen);
    let loss = comparison.critical_process_loss;
    let allowed = criteria.max_critical_process_loss;
    if lost > 0 && (allowed <= 0.0 || loss > allowed + TOLERANCE) {
        reject.push(Reason::CriticalProcessLoss {
            observed: loss,
            allowed: finite(allowed),
        });
    }
    let required = criteria.min_cardinality_reduction;
    if comparison.cardinality_reduction < required - TOLERANCE {
        reject.push(Reason::CardinalityReductionTooSmall {
            observed: comparison.cardinality_reduction,
            required: finite(required),
        });
    }
    let required = criteria.min_cost_reduction;
    if comparison.cost_reduction < required - TOLERANCE {
        reject.push(Reason::CostReductionTooSmall {
            observed: comparison.cost_reduction,
            required: finite(required),
        });
    }
    if let Some(allowed) = criteria.max_cpu_overhead {
        match comparison.cpu_overhead {
            Some(observed) if observed > allowed + TOLERANCE => {
                reject.push(Reason::CpuOverheadTooHigh {
                    observed,
                    allowed: finite(allowed),
                });
            }
            Some(_) => {}
            None => inconclusive.push(Reason::ResourceNotMeasured {
                resource: "cpu".to_owned(),
            }),
        }
    }
    if let Some(allowed) = criteria.max_memory_overhead {
        match comparison.memory_overhead {
            Some(observed) if observed > allowed + TOLERANCE => {
                reject.push(Reason::MemoryOverheadTooHigh {
                    observed,
                    allowed: finite(allowed),
                });
            }
            Some(_) => {}
            None => {
                inconclusive.push(Reason::ResourceNotMeasured {
                    resource: "memory".to_owned(),
                });
            }
        }
    }
    if let Evidence::NotSignificant { p_value } = evidence {
        inconclusive.push(Reason::NotSignificant {
            p_value,
            alpha: ALPHA,
        });
    }

    if !reject.is_empty() {
        Recommendation::Reject { reasons: reject }
    } else if !inconclusive.is_empty() {
        Recommendation::Inconclusive {
            reasons: inconclusive,
        }
    } else {
        Recommendation::Promote
    }
}

fn findings(
    baseline: &VariantSummary,
    candidate: &VariantSummary,
    comparison: &Comparison,
    significance: &Significance,
    cost_model: &CostModel,
    baseline_empty: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    if baseline_empty {
        out.push("the baseline exported no data points, so reductions are undefined".to_owned());
    }
    out.push(change(
        "data points",
        baseline.data_points_per_minute,
        candidate.data_points_per_minute,
        comparison.data_point_reduction,
        "per minute",
    ));
    out.push(change(
        "distinct series",
        to_f64(baseline.distinct_series),
        to_f64(candidate.distinct_series),
        comparison.cardinality_reduction,
        "over the run",
    ));
    out.push(change(
        "bytes",
        baseline.bytes_per_minute,
        candidate.bytes_per_minute,
        comparison.byte_reduction,
        "per minute",
    ));
    out.push(cost_finding(
        baseline,
        candidate,
        comparison,
        &cost_model.currency,
    ));
    out.extend(critical_findings(baseline, candidate));
    out.push(churn_finding(
        baseline.series_churn_per_hour,
        candidate.series_churn_per_hour,
    ));
    if let (Some(b), Some(c), Some(o)) = (
        baseline.cpu_cores,
        candidate.cpu_cores,
        comparison.cpu_overhead,
    ) {
        out.push(format!(
            "collector CPU: {} → {} cores ({})",
            fixed(b, 3),
            fixed(c, 3),
            signed_percent(o)
        ));
    }
    if let (Some(b), Some(c), Some(o)) = (
        baseline.memory_bytes,
        candidate.memory_bytes,
        comparison.memory_overhead,
    ) {
        const MIB: f64 = 1024.0 * 1024.0;
        out.push(format!(
            "collector memory: {} → {} MiB ({})",
            fixed(b / MIB, 1),
            fixed(c / MIB, 1),
            signed_percent(o)
        ));
    }
    out.push(significance_finding(significance));
    out
}

/// "candidate exports 62.4% fewer data points (12,345 → 4,640 per minute)" and its variants.
fn change(what: &str, baseline: f64, candidate: f64, reduction: f64, unit: &str) -> String {
    let (b, c) = (number(baseline), number(candidate));
    if baseline == candidate {
        format!("both variants export {b} {what} {unit}")
    } else if baseline == 0.0 {
        format!("candidate exports {what} where the baseline exports none ({b} → {c} {unit})")
    } else if reduction >= 0.0 {
        format!(
            "candidate exports {} fewer {what} ({b} → {c} {unit})",
            percent(reduction)
        )
    } else {
        format!(
            "candidate exports {} more {what} ({b} → {c} {unit})",
            percent(-reduction)
        )
    }
}

fn cost_finding(
    baseline: &VariantSummary,
    candidate: &VariantSummary,
    comparison: &Comparison,
    currency: &str,
) -> String {
    let (b, c) = (baseline.monthly_cost.total, candidate.monthly_cost.total);
    let money = |x: f64| format!("{currency} {}", fixed(x, 2));
    if b == c {
        format!(
            "both variants cost {} per month under the cost model",
            money(b)
        )
    } else if b == 0.0 {
        format!(
            "monthly cost rises from {} to {} under the cost model",
            money(b),
            money(c)
        )
    } else if comparison.cost_reduction >= 0.0 {
        format!(
            "monthly cost falls {} under the cost model ({} → {}, saving {} per month)",
            percent(comparison.cost_reduction),
            money(b),
            money(c),
            money(comparison.monthly_saving)
        )
    } else {
        format!(
            "monthly cost rises {} under the cost model ({} → {}, {} more per month)",
            percent(-comparison.cost_reduction),
            money(b),
            money(c),
            money(-comparison.monthly_saving)
        )
    }
}

fn critical_findings(baseline: &VariantSummary, candidate: &VariantSummary) -> Vec<String> {
    let (seen, expected) = (candidate.critical_seen, candidate.critical_expected);
    let mut out = Vec::new();
    if expected == 0 {
        out.push(
            "no critical-process observation was expected, so critical visibility was not checked"
                .to_owned(),
        );
        return out;
    }
    let lost = expected.saturating_sub(seen);
    if lost == 0 {
        out.push(format!(
            "critical processes stayed fully visible in the candidate ({}/{} observations)",
            count(expected),
            count(expected)
        ));
    } else {
        out.push(format!(
            "critical processes lost {} of {} observations in the candidate ({})",
            count(lost),
            count(expected),
            percent(1.0 - candidate.critical_coverage)
        ));
    }
    let baseline_lost = baseline
        .critical_expected
        .saturating_sub(baseline.critical_seen);
    if baseline_lost > 0 {
        out.push(format!(
            "the baseline itself lost {} of {} critical-process observations",
            count(baseline_lost),
            count(baseline.critical_expected)
        ));
    }
    out
}

fn churn_finding(baseline: f64, candidate: f64) -> String {
    if baseline == candidate {
        format!(
            "both variants create {} new series per hour",
            number(baseline)
        )
    } else {
        format!(
            "series churn: the candidate creates {} new series per hour, the baseline {}",
            number(candidate),
            number(baseline)
        )
    }
}

fn significance_finding(significance: &Significance) -> String {
    match significance {
        Significance::Deterministic => {
            "measurements are deterministic: no significance test needed".to_owned()
        }
        Significance::Tested(test) => {
            let p = if test.p_value < 0.001 {
                "p < 0.001".to_owned()
            } else {
                format!("p = {:.3}", test.p_value)
            };
            let verdict = if test.significant {
                "significant"
            } else {
                "not significant"
            };
            format!(
                "the difference in data points per minute is {verdict} \
                 (Welch's t-test: t = {:.2}, df = {:.1}, {p}, alpha = {})",
                test.t, test.degrees_of_freedom, test.alpha
            )
        }
        Significance::NotTestable { reason } => {
            format!("no significance test: {reason}")
        }
    }
}

/// `numerator / denominator`, 0 when the denominator is not positive, never infinite.
fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        finite(numerator / denominator)
    } else {
        0.0
    }
}

/// `1 − candidate / baseline`, 0 when the baseline is 0.
fn reduction(baseline: f64, candidate: f64) -> f64 {
    if baseline == 0.0 {
        0.0
    } else {
        finite(1.0 - candidate / baseline)
    }
}

/// `candidate / baseline − 1` where both were measured and the baseline is positive.
fn overhead(baseline: Option<f64>, candidate: Option<f64>) -> Option<f64> {
    match (baseline, candidate) {
        (Some(b), Some(c)) if b > 0.0 && c.is_finite() => Some(finite(c / b - 1.0)),
        _ => None,
    }
}

/// `seen / expected` within 0..=1, 1 when nothing was expected.
fn coverage(seen: u64, expected: u64) -> f64 {
    if expected == 0 {
        1.0
    } else {
        (to_f64(seen) / to_f64(expected)).clamp(0.0, 1.0)
    }
}

/// The mean of the finite values, `None` without one.
fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values
        .filter(|x| x.is_finite())
        .fold((0.0, 0.0), |(sum, n), x| (sum + x, n + 1.0));
    (n > 0.0).then(|| finite(sum / n))
}

/// `x` where it is finite; 0 for NaN and `±f64::MAX` for `±∞`. Results are serialised to
/// JSON, which has no NaN or infinity, so every figure goes through this.
pub(crate) fn finite(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(-f64::MAX, f64::MAX)
    }
}

/// A count as `f64`.
// Exact below 2^53; beyond, the relative rounding error (< 1e-16) is immaterial to rates
// and ratios.
#[allow(clippy::cast_precision_loss)]
fn to_f64(n: u64) -> f64 {
    n as f64
}

/// A fraction as a percentage with one decimal: `0.624` → `62.4%`.
fn percent(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}

/// A fraction as a signed percentage: `0.25` → `+25.0%`.
fn signed_percent(fraction: f64) -> String {
    let sign = if fraction > 0.0 { "+" } else { "" };
    format!("{sign}{:.1}%", fraction * 100.0)
}

/// A count with thousands separators: `1080` → `1,080`.
fn count(n: u64) -> String {
    group(&n.to_string())
}

/// A figure with thousands separators, whole from 100 up (or when whole), else with one
/// decimal from 1 up, else two: `12345.4` → `12,345`, `12.34` → `12.3`, `0.125` → `0.13`.
fn number(x: f64) -> String {
    let decimals = if x.abs() >= 100.0 || x.fract() == 0.0 {
        0
    } else if x.abs() >= 1.0 {
        1
    } else {
        2
    };
    fixed(x, decimals)
}

#[cfg(test)]
mod tests;
