//! Tests of [`analyze`](super::analyze): expected figures are computed by hand in the
//! comments beside them.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::analysis::MonthlyCost;
use crate::measurement::Window;

const MIB: f64 = 1024.0 * 1024.0;

/// Consecutive windows of the given lengths in seconds, with the baseline's and candidate's
/// samples.
fn run(windows: Vec<(u64, VariantSample, VariantSample)>) -> Vec<WindowMeasurement> {
    let mut start = Duration::ZERO;
    windows
        .into_iter()
        .enumerate()
        .map(|(i, (seconds, baseline, candidate))| {
            let end = start + Duration::from_secs(seconds);
            let window = Window {
                index: u32::try_from(i).unwrap(),
                start,
                end,
            };
            start = end;
            WindowMeasurement {
                window,
                baseline,
                candidate,
            }
        })
        .collect()
}

/// A sample with data points only, and enough of the rest to pass the default criteria when
/// `series` falls enough.
fn points(data_points: u64, series: u64) -> VariantSample {
    VariantSample {
        scrapes: 6,
        mean_active_series: to_f64(series),
        distinct_series_to_date: series,
        data_points,
        ..VariantSample::default()
    }
}

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0)
}

macro_rules! assert_close {
    ($actual:expr, $expected:expr) => {{
        let (actual, expected): (f64, f64) = ($actual, $expected);
        assert!(
            close(actual, expected),
            "{} = {actual}, expected {expected}",
            stringify!($actual)
        );
    }};
}

fn deterministic(windows: &[WindowMeasurement], criteria: &SuccessCriteria) -> ExperimentResults {
    analyze(
        windows,
        criteria,
        &CostModel::default(),
        Noise::Deterministic,
    )
}

fn noisy(windows: &[WindowMeasurement], criteria: &SuccessCriteria) -> ExperimentResults {
    analyze(windows, criteria, &CostModel::default(), Noise::Noisy)
}

/// Two 10-minute windows (20 measured minutes = 1/3 hour).
///
/// Baseline: scrapes 30 and 90 with 1,000 and 1,100 mean active series → weighted mean
/// (30·1,000 + 90·1,100) / 120 = 1,075; 250,000 points / 20 min = 12,500 per minute;
/// 12,500,000 bytes / 20 = 625,000 per minute; 1,500 new series / (1/3 h) = 4,500 per hour.
///
/// Candidate: weighted mean (30·400 + 90·440) / 120 = 430; 100,000 / 20 = 5,000 points per
/// minute; 5,000,000 / 20 = 250,000 bytes per minute; 600 · 3 = 1,800 new series per hour.
fn reference_run() -> Vec<WindowMeasurement> {
    let sample = |scrapes, mean, to_date, new, points, bytes| VariantSample {
        scrapes,
        mean_active_series: mean,
        distinct_series_to_date: to_date,
        new_series: new,
        data_points: points,
        bytes,
        critical_expected: 180,
        critical_seen: 180,
        cpu_cores: None,
        memory_bytes: None,
    };
    run(vec![
        (
            600,
            sample(30, 1000.0, 1200, 1200, 120_000, 6_000_000),
            sample(30, 400.0, 500, 500, 40_000, 2_000_000),
        ),
        (
            600,
            sample(90, 1100.0, 1500, 300, 130_000, 6_500_000),
            sample(90, 440.0, 600, 100, 60_000, 3_000_000),
        ),
    ])
}

#[test]
fn variant_figures_by_hand() {
    let results = deterministic(&reference_run(), &SuccessCriteria::default());
    assert_eq!(results.windows, 2);
    assert_eq!(results.measured, Duration::from_secs(1200));

    let b = &results.baseline;
    assert_eq!(b.distinct_series, 1500);
    assert_close!(b.mean_active_series, 1075.0);
    assert_close!(b.data_points_per_minute, 12_500.0);
    assert_close!(b.bytes_per_minute, 625_000.0);
    assert_close!(b.series_churn_per_hour, 4_500.0);
    assert_eq!((b.critical_seen, b.critical_expected), (360, 360));
    assert_close!(b.critical_coverage, 1.0);
    assert_eq!((b.cpu_cores, b.memory_bytes), (None, None));

    let c = &results.candidate;
    assert_eq!(c.distinct_series, 600);
    assert_close!(c.mean_active_series, 430.0);
    assert_close!(c.data_points_per_minute, 5_000.0);
    assert_close!(c.bytes_per_minute, 250_000.0);
    assert_close!(c.series_churn_per_hour, 1_800.0);
}

#[test]
fn monthly_costs_by_hand_with_the_default_prices() {
    let results = deterministic(&reference_run(), &SuccessCriteria::default());
    // Baseline: 12,500 × 43,800 / 1e6 × 0.10 = 54.75; 625,000 × 43,800 / 1e9 × 0.30 = 8.2125;
    // 1,075 × 0.008 = 8.60; total 71.5625.
    let b = results.baseline.monthly_cost;
    assert_close!(b.data_points, 54.75);
    assert_close!(b.bytes, 8.2125);
    assert_close!(b.series, 8.6);
    assert_close!(b.total, 71.5625);
    // Candidate: 5,000 → 21.90; 250,000 → 3.285; 430 × 0.008 = 3.44; total 28.625.
    let c = results.candidate.monthly_cost;
    assert_close!(c.data_points, 21.9);
    assert_close!(c.bytes, 3.285);
    assert_close!(c.series, 3.44);
    assert_close!(c.total, 28.625);
}

#[test]
fn comparison_by_hand() {
    let results = deterministic(&reference_run(), &SuccessCriteria::default());
    let cmp = &results.comparison;
    assert_close!(cmp.cardinality_reduction, 0.6); // 1 − 600/1,500
    assert_close!(cmp.data_point_reduction, 0.6); // 1 − 5,000/12,500
    assert_close!(cmp.byte_reduction, 0.6); // 1 − 250,000/625,000
    assert_close!(cmp.cost_reduction, 0.6); // 1 − 28.625/71.5625
    assert_close!(cmp.monthly_saving, 42.9375); // 71.5625 − 28.625
    assert_close!(cmp.critical_process_loss, 0.0);
    assert_eq!((cmp.cpu_overhead, cmp.memory_overhead), (None, None));
}

#[test]
fn a_deterministic_run_meeting_every_criterion_is_promoted() {
    let results = deterministic(&reference_run(), &SuccessCriteria::default());
    assert_eq!(results.noise, Noise::Deterministic);
    assert_eq!(results.significance, Significance::Deterministic);
    assert_eq!(results.recommendation, Recommendation::Promote);
    assert_eq!(results.cost_model, CostModel::default());
}

#[test]
fn findings_state_the_key_numbers() {
    let results = deterministic(&reference_run(), &SuccessCriteria::default());
    let findings = &results.findings;
    for expected in [
        "candidate exports 60.0% fewer data points (12,500 → 5,000 per minute)",
        "candidate exports 60.0% fewer distinct series (1,500 → 600 over the run)",
        "candidate exports 60.0% fewer bytes (625,000 → 250,000 per minute)",
        "critical processes stayed fully visible in the candidate (360/360 observations)",
        "series churn: the candidate creates 1,800 new series per hour, the baseline 4,500",
        "measurements are deterministic: no significance test needed",
    ] {
        assert!(
            findings.iter().any(|f| f == expected),
            "missing {expected:?} in {findings:#?}"
        );
    }
    assert!(
        findings.iter().any(|f| f
            .starts_with("monthly cost falls 60.0% under the cost model (USD 71.56 → USD 28.6")),
        "{findings:#?}"
    );
}

#[test]
fn no_windows_is_inconclusive() {
    let results = deterministic(&[], &SuccessCriteria::default());
    assert_eq!(
        results.recommendation,
        Recommendation::Inconclusive {
            reasons: vec![Reason::NoMeasurements]
        }
    );
    assert_eq!(results.windows, 0);
    assert_eq!(results.measured, Duration::ZERO);
    let b = &results.baseline;
    assert_eq!(b.distinct_series, 0);
    assert_close!(b.data_points_per_minute, 0.0);
    assert_close!(b.series_churn_per_hour, 0.0);
    assert_close!(b.critical_coverage, 1.0);
    assert_eq!(b.monthly_cost, MonthlyCost::default());
    assert_close!(results.comparison.cardinality_reduction, 0.0);
    assert_close!(results.comparison.critical_process_loss, 0.0);
    assert_eq!(
        results.findings,
        ["no measurement window was recorded, so there is nothing to compare"]
    );
    // Noisy and no windows: the same recommendation, and the test is not run.
    let results = noisy(&[], &SuccessCriteria::default());
    assert_eq!(
        results.recommendation,
        Recommendation::Inconclusive {
            reasons: vec![Reason::NoMeasurements]
        }
    );
    assert!(matches!(
        results.significance,
        Significance::NotTestable { .. }
    ));
}

#[test]
fn an_empty_baseline_is_inconclusive_and_reductions_are_zero() {
    let windows = run(vec![(60, VariantSample::default(), points(100, 10))]);
    let results = deterministic(&windows, &SuccessCriteria::default());
    assert_eq!(
        results.recommendation,
        Recommendation::Inconclusive {
            reasons: vec![Reason::EmptyBaseline]
        }
    );
    let cmp = &results.comparison;
    assert_close!(cmp.cardinality_reduction, 0.0);
    assert_close!(cmp.data_point_reduction, 0.0);
    assert_close!(cmp.byte_reduction, 0.0);
    assert_close!(cmp.cost_reduction, 0.0);
    assert!(cmp.monthly_saving < 0.0);
    assert!(
        results
            .findings
            .iter()
            .any(|f| f == "the baseline exported no data points, so reductions are undefined")
    );
    assert!(results.findings.iter().any(|f| {
        f == "candidate exports data points where the baseline exports none (0 → 100 per minute)"
    }));
}

/// One 10-minute window that fails every criterion.
///
/// Critical: 90 of 100 kept → loss 0.1 > 0.05. Series 1,000 → 950: reduction 0.05 < 0.1.
/// Same points, bytes and active series: cost reduction 0 < 0.05. CPU 1.0 → 1.5 cores:
/// overhead 0.5 > 0.2. Memory 100 → 150 MiB: overhead 0.5 > 0.25.
#[test]
fn every_failed_criterion_is_a_reason_to_reject() {
    let baseline = VariantSample {
        critical_expected: 100,
        critical_seen: 100,
        cpu_cores: Some(1.0),
        memory_bytes: Some(100.0 * MIB),
        ..points(10_000, 1000)
    };
    let candidate = VariantSample {
        distinct_series_to_date: 950,
        critical_expected: 100,
        critical_seen: 90,
        cpu_cores: Some(1.5),
        memory_bytes: Some(150.0 * MIB),
        ..points(10_000, 1000)
    };
    let criteria = SuccessCriteria {
        min_cardinality_reduction: 0.1,
        max_critical_process_loss: 0.05,
        min_cost_reduction: 0.05,
        max_cpu_overhead: Some(0.2),
        max_memory_overhead: Some(0.25),
    };
    let results = deterministic(&run(vec![(600, baseline, candidate)]), &criteria);
    let Recommendation::Reject { reasons } = &results.recommendation else {
        panic!("expected a rejection, got {:?}", results.recommendation);
    };
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    let Reason::CriticalProcessLoss { observed, allowed } = reasons[0] else {
        panic!("{reasons:?}")
    };
    assert_close!(observed, 0.1);
    assert_close!(allowed, 0.05);
    let Reason::CardinalityReductionTooSmall { observed, required } = reasons[1] else {
        panic!("{reasons:?}")
    };
    assert_close!(observed, 0.05);
    assert_close!(required, 0.1);
    let Reason::CostReductionTooSmall { observed, required } = reasons[2] else {
        panic!("{reasons:?}")
    };
    assert_close!(observed, 0.0);
    assert_close!(required, 0.05);
    let Reason::CpuOverheadTooHigh { observed, allowed } = reasons[3] else {
        panic!("{reasons:?}")
    };
    assert_close!(observed, 0.5);
    assert_close!(allowed, 0.2);
    let Reason::MemoryOverheadTooHigh { observed, allowed } = reasons[4] else {
        panic!("{reasons:?}")
    };
    assert_close!(observed, 0.5);
    assert_close!(allowed, 0.25);

    assert!(
        results
            .findings
            .iter()
            .any(|f| f == "critical processes lost 10 of 100 observations in the candidate (10.0%)"),
        "{:#?}",
        results.findings
    );
    assert!(
        results
            .findings
            .iter()
            .any(|f| f == "collector CPU: 1.000 → 1.500 cores (+50.0%)")
    );
    assert!(
        results
            .findings
            .iter()
            .any(|f| f == "collector memory: 100.0 → 150.0 MiB (+50.0%)")
    );
}

#[test]
fn any_lost_critical_observation_rejects_under_the_default_criteria() {
    // 12 of 1,080 lost over three windows (4 + 4 + 4).
    let windows = run((0..3)
        .map(|_| {
            let baseline = VariantSample {
                critical_expected: 360,
                critical_seen: 360,
                ..points(600, 100)
            };
            let candidate = VariantSample {
                critical_expected: 360,
                critical_seen: 356,
                ..points(300, 50)
            };
            (60, baseline, candidate)
        })
        .collect());
    let results = deterministic(&windows, &SuccessCriteria::default());
    let Recommendation::Reject { reasons } = &results.recommendation else {
        panic!("{:?}", results.recommendation)
    };
    assert_eq!(reasons.len(), 1);
    let Reason::CriticalProcessLoss { observed, allowed } = reasons[0] else {
        panic!("{reasons:?}")
    };
    assert_close!(observed, 12.0 / 1080.0);
    assert_close!(allowed, 0.0);
    assert_close!(results.candidate.critical_coverage, 1068.0 / 1080.0);
    assert!(
        results.findings.iter().any(
            |f| f == "critical processes lost 12 of 1,080 observations in the candidate (1.1%)"
        ),
        "{:#?}",
        results.findings
    );

    // Allowing 2% of observations to go missing lets the same run through.
    let lenient = SuccessCriteria {
        max_critical_process_loss: 0.02,
        ..SuccessCriteria::default()
    };
    assert_eq!(
        deterministic(&windows, &lenient).recommendation,
        Recommendation::Promote
    );
}

#[test]
fn critical_loss_rejects_even_when_the_difference_is_not_significant() {
    let mut windows = not_significant_run();
    windows[0].candidate.critical_expected = 10;
    windows[0].candidate.critical_seen = 9;
    let results = noisy(&windows, &SuccessCriteria::default());
    let Recommendation::Reject { reasons } = &results.recommendation else {
        panic!("{:?}", results.recommendation)
    };
    assert!(
        matches!(reasons.as_slice(), [Reason::CriticalProcessLoss { .. }]),
        "{reasons:?}"
    );
}

#[test]
fn exactly_the_required_reduction_passes() {
    // 1 − 90/100 is 0.09999999999999998 in floating point: still 10%.
    let windows = run(vec![(60, points(100, 100), points(90, 90))]);
    let criteria = SuccessCriteria {
        min_cost_reduction: 0.1,
        ..SuccessCriteria::default()
    };
    let results = deterministic(&windows, &criteria);
    assert_close!(results.comparison.cardinality_reduction, 0.1);
    assert_close!(results.comparison.cost_reduction, 0.1);
    assert_eq!(results.recommendation, Recommendation::Promote);
}

#[test]
fn resources_within_their_limits_are_promoted() {
    // CPU means over the windows that measured it: baseline (0.4 + 0.6)/2 = 0.5, candidate
    // (0.5 + 0.55)/2 = 0.525 → overhead 0.05. Memory 100 → 110 MiB → overhead 0.1.
    let sample = |cpu: Option<f64>, memory: f64, series: u64| VariantSample {
        cpu_cores: cpu,
        memory_bytes: Some(memory * MIB),
        ..points(100 * series, series)
    };
    let windows = run(vec![
        (
            60,
            sample(Some(0.4), 100.0, 100),
            sample(Some(0.5), 110.0, 50),
        ),
        (60, sample(None, 100.0, 100), sample(Some(0.55), 110.0, 50)),
        (60, sample(Some(0.6), 100.0, 100), sample(None, 110.0, 50)),
    ]);
    let criteria = SuccessCriteria {
        max_cpu_overhead: Some(0.2),
        max_memory_overhead: Some(0.25),
        ..SuccessCriteria::default()
    };
    let results = deterministic(&windows, &criteria);
    assert_close!(results.baseline.cpu_cores.unwrap(), 0.5);
    assert_close!(results.candidate.cpu_cores.unwrap(), 0.525);
    assert_close!(results.baseline.memory_bytes.unwrap(), 100.0 * MIB);
    assert_close!(results.comparison.cpu_overhead.unwrap(), 0.05);
    assert_close!(results.comparison.memory_overhead.unwrap(), 0.1);
    assert_eq!(results.recommendation, Recommendation::Promote);
    assert!(
        results
            .findings
            .iter()
            .any(|f| f == "collector CPU: 0.500 → 0.525 cores (+5.0%)"),
        "{:#?}",
        results.findings
    );
    assert!(
        results
            .findings
            .iter()
            .any(|f| f == "collector memory: 100.0 → 110.0 MiB (+10.0%)")
    );
}

#[test]
fn resource_criteria_without_measurements_are_inconclusive() {
    // CPU measured for the baseline only; memory not at all.
    let baseline = VariantSample {
        cpu_cores: Some(0.5),
        ..points(1000, 100)
    };
    let windows = run(vec![(60, baseline, points(500, 50))]);
    let criteria = SuccessCriteria {
        max_cpu_overhead: Some(0.2),
        max_memory_overhead: Some(0.2),
        ..SuccessCriteria::default()
    };
    let results = deterministic(&windows, &criteria);
    assert_eq!(results.comparison.cpu_overhead, None);
    assert_eq!(results.candidate.cpu_cores, None);
    assert_eq!(
        results.recommendation,
        Recommendation::Inconclusive {
            reasons: vec![
                Reason::ResourceNotMeasured {
                    resource: "cpu".to_owned()
                },
                Reason::ResourceNotMeasured {
                    resource: "memory".to_owned()
                },
            ]
        }
    );
    // Without resource criteria, unmeasured resources do not matter.
    let results = deterministic(&windows, &SuccessCriteria::default());
    assert_eq!(results.recommendation, Recommendation::Promote);
}

/// Four 2-minute windows. Baseline points per minute 12,000, 12,500, 11,800, 12,300;
/// candidate 4,600, 4,700, 4,550, 4,800.
fn significant_run() -> Vec<WindowMeasurement> {
    run([
        (24_000, 9_200),
        (25_000, 9_400),
        (23_600, 9_100),
        (24_600, 9_600),
    ]
    .into_iter()
    .map(|(b, c)| (120, points(b, 1000), points(c, 400)))
    .collect())
}

/// Four 2-minute windows. Baseline points per minute 100, 104, 98, 101; candidate 99, 103,
/// 97.5, 102. Active series halve, so every criterion but significance is met.
fn not_significant_run() -> Vec<WindowMeasurement> {
    run([(200, 198), (208, 206), (196, 195), (202, 204)]
        .into_iter()
        .map(|(b, c)| (120, points(b, 1000), points(c, 500)))
        .collect())
}

#[test]
fn a_significant_noisy_difference_is_promoted() {
    let results = noisy(&significant_run(), &SuccessCriteria::default());
    let Significance::Tested(test) = &results.significance else {
        panic!("{:?}", results.significance)
    };
    // scipy.stats.ttest_ind([12000, 12500, 11800, 12300], [4600, 4700, 4550, 4800],
    // equal_var=False), SciPy 1.17.1.
    assert_eq!(test.metric, "dataPointsPerMinute");
    assert_close!(test.baseline_mean, 12_150.0);
    assert_close!(test.candidate_mean, 4_662.5);
    assert!((test.t - 45.366_638_967_046_57).abs() < 1e-6, "{test:?}");
    assert!(
        (test.degrees_of_freedom - 3.750_791_902_256_636).abs() < 1e-6,
        "{test:?}"
    );
    assert!(
        (test.p_value - 2.803_229_033_079_885e-6).abs() < 1e-6 * 2.8e-6,
        "{test:?}"
    );
    assert_close!(test.alpha, 0.05);
    assert!(test.significant);
    assert_eq!(results.recommendation, Recommendation::Promote);
    assert!(
        results.findings.iter().any(|f| f
            == "the difference in data points per minute is significant \
                (Welch's t-test: t = 45.37, df = 3.8, p < 0.001, alpha = 0.05)"),
        "{:#?}",
        results.findings
    );
}

#[test]
fn a_noisy_difference_that_is_not_significant_is_inconclusive() {
    let results = noisy(&not_significant_run(), &SuccessCriteria::default());
    let Significance::Tested(test) = &results.significance else {
        panic!("{:?}", results.significance)
    };
    // scipy.stats.ttest_ind([100, 104, 98, 101], [99, 103, 97.5, 102], equal_var=False).
    assert!((test.t - 0.209_529_088_730_873_45).abs() < 1e-6, "{test:?}");
    assert!(
        (test.degrees_of_freedom - 5.996_432_818_073_721).abs() < 1e-6,
        "{test:?}"
    );
    assert!(
        (test.p_value - 0.840_972_468_012_002_5).abs() < 1e-6,
        "{test:?}"
    );
    assert!(!test.significant);
    let Recommendation::Inconclusive { reasons } = &results.recommendation else {
        panic!("{:?}", results.recommendation)
    };
    let [Reason::NotSignificant { p_value, alpha }] = reasons.as_slice() else {
        panic!("{reasons:?}")
    };
    assert!((p_value - 0.840_972_468_012_002_5).abs() < 1e-6);
    assert_close!(*alpha, 0.05);
    assert!(results.findings.iter().any(|f| f
        == "the difference in data points per minute is not significant \
            (Welch's t-test: t = 0.21, df = 6.0, p = 0.841, alpha = 0.05)"));
}

#[test]
fn the_same_figures_measured_deterministically_need_no_test() {
    let results = deterministic(&not_significant_run(), &SuccessCriteria::default());
    assert_eq!(results.significance, Significance::Deterministic);
    assert_eq!(results.recommendation, Recommendation::Promote);
}

#[test]
fn one_noisy_window_cannot_be_tested() {
    let windows = run(vec![(60, points(1000, 100), points(500, 50))]);
    let results = noisy(&windows, &SuccessCriteria::default());
    let Significance::NotTestable { reason } = &results.significance else {
        panic!("{:?}", results.significance)
    };
    assert!(reason.contains("at least 2 windows"), "{reason}");
    assert_eq!(
        results.recommendation,
        Recommendation::Inconclusive {
            reasons: vec![Reason::NotSignificant {
                p_value: 1.0,
                alpha: 0.05
            }]
        }
    );
    assert!(
        results
            .findings
            .iter()
            .any(|f| f.starts_with("no significance test: Welch's t-test needs at least 2 windows"))
    );
}

#[test]
fn constant_noisy_samples_that_differ_are_an_exact_difference() {
    let windows = run((0..3)
        .map(|_| (60, points(1000, 100), points(400, 40)))
        .collect());
    let results = noisy(&windows, &SuccessCriteria::default());
    let Significance::NotTestable { reason } = &results.significance else {
        panic!("{:?}", results.significance)
    };
    assert!(reason.contains("exact"), "{reason}");
    assert_eq!(results.recommendation, Recommendation::Promote);
}

#[test]
fn constant_noisy_samples_that_agree_are_not_significant() {
    // Same points, fewer series: the criteria pass, but there is no difference in points.
    let windows = run((0..3)
        .map(|_| (60, points(1000, 100), points(1000, 40)))
        .collect());
    let results = noisy(&windows, &SuccessCriteria::default());
    let Significance::NotTestable { reason } = &results.significance else {
        panic!("{:?}", results.significance)
    };
    assert!(reason.contains("no difference"), "{reason}");
    assert_eq!(
        results.recommendation,
        Recommendation::Inconclusive {
            reasons: vec![Reason::NotSignificant {
                p_value: 1.0,
                alpha: 0.05
            }]
        }
    );
}

#[test]
fn zero_length_windows_are_left_out_of_the_test() {
    // The middle window has no length; its points count towards the totals only.
    let windows = run(vec![
        (60, points(1000, 100), points(400, 40)),
        (0, points(999_999, 100), points(1, 40)),
        (60, points(1100, 100), points(420, 40)),
    ]);
    let results = noisy(&windows, &SuccessCriteria::default());
    let Significance::Tested(test) = &results.significance else {
        panic!("{:?}", results.significance)
    };
    assert_close!(test.baseline_mean, 1050.0); // (1,000 + 1,100) / 2
    assert_close!(test.candidate_mean, 410.0); // (400 + 420) / 2
    // (1,000 + 999,999 + 1,100) / 2 minutes.
    assert_close!(results.baseline.data_points_per_minute, 1_002_099.0 / 2.0);
}

#[test]
fn windows_without_scrapes_fall_back_to_the_plain_mean() {
    let sample = |mean: f64| VariantSample {
        scrapes: 0,
        mean_active_series: mean,
        ..points(10, 5)
    };
    let windows = run(vec![
        (60, sample(10.0), sample(4.0)),
        (60, sample(20.0), sample(f64::NAN)),
    ]);
    let results = deterministic(&windows, &SuccessCriteria::default());
    assert_close!(results.baseline.mean_active_series, 15.0);
    assert_close!(results.candidate.mean_active_series, 4.0); // NaN skipped
}

#[test]
fn distinct_series_come_from_the_last_window_by_index() {
    let mut windows = reference_run();
    windows.reverse();
    let results = deterministic(&windows, &SuccessCriteria::default());
    assert_eq!(results.baseline.distinct_series, 1500);
    assert_eq!(results.candidate.distinct_series, 600);
}

/// Whether two JSON documents are equal, numbers within a few units in the last place.
fn json_close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs()),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_close(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, x)| y.get(key).is_some_and(|y| json_close(x, y)))
        }
        _ => a == b,
    }
}

#[test]
fn results_round_trip_through_json() {
    let mut with_resources = reference_run();
    for w in &mut with_resources {
        w.baseline.cpu_cores = Some(0.25);
        w.candidate.memory_bytes = Some(64.0 * MIB);
    }
    let criteria = SuccessCriteria {
        max_cpu_overhead: Some(0.1),
        ..SuccessCriteria::default()
    };
    let mut lossy = reference_run();
    lossy[1].candidate.critical_seen = 170;
    for results in [
        deterministic(&reference_run(), &SuccessCriteria::default()),
        deterministic(&with_resources, &criteria),
        deterministic(&lossy, &SuccessCriteria::default()),
        noisy(&significant_run(), &SuccessCriteria::default()),
        noisy(&not_significant_run(), &SuccessCriteria::default()),
        noisy(
            &run(vec![(60, points(10, 10), points(5, 5))]),
            &SuccessCriteria::default(),
        ),
        deterministic(&[], &SuccessCriteria::default()),
    ] {
        let json = serde_json::to_string(&results).unwrap();
        let back: ExperimentResults = serde_json::from_str(&json).unwrap();
        // serde_json's default float parser may be off by one unit in the last place for
        // 17-digit numbers (exact with its `float_roundtrip` feature), so figures are compared
        // within a few units in the last place and everything else exactly.
        let again = serde_json::to_value(&back).unwrap();
        assert!(
            json_close(&again, &serde_json::to_value(&results).unwrap()),
            "{json}"
        );
        assert_eq!(back.recommendation, results.recommendation);
        assert_eq!(back.findings, results.findings);
        assert_eq!(
            (back.windows, back.measured),
            (results.windows, results.measured)
        );
        assert_eq!(back.noise, results.noise);
    }
}

#[test]
fn numbers_are_grouped_and_rounded() {
    assert_eq!(number(12_345.4), "12,345");
    assert_eq!(number(4_640.0), "4,640");
    assert_eq!(number(1_234_567.0), "1,234,567");
    assert_eq!(number(12.34), "12.3");
    assert_eq!(number(0.125), "0.12");
    assert_eq!(number(0.0), "0");
    assert_eq!(number(-1_500.0), "-1,500");
    assert_eq!(fixed(-1234.5, 2), "-1,234.50");
    assert_eq!(fixed(-0.001, 2), "0.00");
    assert_eq!(fixed(999.996, 2), "1,000.00");
    assert_eq!(count(1080), "1,080");
    assert_eq!(count(100), "100");
    assert_eq!(count(u64::MAX), "18,446,744,073,709,551,615");
    assert_eq!(percent(0.624), "62.4%");
    assert_eq!(signed_percent(-0.05), "-5.0%");
}

/// A measured figure: usually plausible, sometimes zero, NaN or infinite.
fn measured_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => 0.0..1e9_f64,
        1 => Just(0.0),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::MAX),
    ]
}

fn count_strategy() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0..1_000_000_u64, 1 => Just(0_u64), 1 => any::<u64>()]
}

fn sample_strategy() -> impl Strategy<Value = VariantSample> {
    (
        any::<u32>(),
        measured_f64(),
        count_strategy(),
        count_strategy(),
        count_strategy(),
        count_strategy(),
        count_strategy(),
        count_strategy(),
        proptest::option::of(measured_f64()),
        proptest::option::of(measured_f64()),
    )
        .prop_map(
            |(scrapes, mean, to_date, new, points, bytes, expected, seen, cpu, memory)| {
                VariantSample {
                    scrapes,
                    mean_active_series: mean,
                    distinct_series_to_date: to_date,
                    new_series: new,
                    data_points: points,
                    bytes,
                    critical_expected: expected,
                    critical_seen: seen,
                    cpu_cores: cpu,
                    memory_bytes: memory,
                }
            },
        )
}

/// Fails on any JSON null: serde_json writes NaN and infinities as null, and the results
/// skip absent options rather than writing null.
fn assert_no_null(value: &serde_json::Value, path: &str) {
    match value {
        serde_json::Value::Null => panic!("null (NaN or infinity) at {path}"),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                assert_no_null(item, &format!("{path}[{i}]"));
            }
        }
        serde_json::Value::Object(fields) => {
            for (key, item) in fields {
                assert_no_null(item, &format!("{path}.{key}"));
            }
        }
        _ => {}
    }
}

proptest! {
    #[test]
    fn results_are_always_finite_and_bounded(
        windows in proptest::collection::vec(
            (0..7200_u64, sample_strategy(), sample_strategy()),
            0..6,
        ),
        noise in prop_oneof![Just(Noise::Deterministic), Just(Noise::Noisy)],
        prices in (0.0..10.0_f64, 0.0..10.0_f64, 0.0..1.0_f64),
        resource_limits in any::<bool>(),
    ) {
        let windows = run(windows);
        let cost_model = CostModel {
            currency: "USD".to_owned(),
            per_million_data_points: prices.0,
            per_gb_ingested: prices.1,
            per_active_series_month: prices.2,
        };
        let criteria = SuccessCriteria {
            max_cpu_overhead: resource_limits.then_some(0.2),
            max_memory_overhead: resource_limits.then_some(0.2),
            ..SuccessCriteria::default()
        };
        let results = analyze(&windows, &criteria, &cost_model, noise);

        assert_no_null(&serde_json::to_value(&results).unwrap(), "results");
        for summary in [&results.baseline, &results.candidate] {
            let cost = summary.monthly_cost;
            for x in [
                summary.mean_active_series,
                summary.data_points_per_minute,
                summary.bytes_per_minute,
                summary.series_churn_per_hour,
                cost.data_points,
                cost.bytes,
                cost.series,
                cost.total,
            ] {
                prop_assert!(x.is_finite() && x >= 0.0, "{summary:?}");
            }
            prop_assert!((0.0..=1.0).contains(&summary.critical_coverage), "{summary:?}");
            for x in [summary.cpu_cores, summary.memory_bytes].into_iter().flatten() {
                prop_assert!(x.is_finite(), "{summary:?}");
            }
        }
        let cmp = &results.comparison;
        for x in [cmp.cardinality_reduction, cmp.data_point_reduction, cmp.byte_reduction, cmp.cost_reduction] {
            prop_assert!(x.is_finite() && x <= 1.0, "{cmp:?}");
        }
        prop_assert!(cmp.monthly_saving.is_finite());
        prop_assert!((0.0..=1.0).contains(&cmp.critical_process_loss), "{cmp:?}");
        for x in [cmp.cpu_overhead, cmp.memory_overhead].into_iter().flatten() {
            prop_assert!(x.is_finite() && x >= -1.0, "{cmp:?}");
        }
        if let Significance::Tested(test) = &results.significance {
            prop_assert!((0.0..=1.0).contains(&test.p_value), "{test:?}");
            prop_assert!(test.degrees_of_freedom > 0.0, "{test:?}");
        }
        prop_assert!(!results.findings.is_empty());
        if windows.is_empty() {
            prop_assert_eq!(
                &results.recommendation,
                &Recommendation::Inconclusive { reasons: vec![Reason::NoMeasurements] }
            );
        }
    }
}
