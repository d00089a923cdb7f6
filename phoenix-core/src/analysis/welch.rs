//! Welch's unequal-variance t-test, two-sided.

use std::fmt;

use statrs::distribution::{ContinuousCDF, StudentsT};

use super::results::WelchTest;

/// Why [`welch_t_test`] could not test two samples.
#[derive(Debug, Clone, PartialEq)]
pub enum Untestable {
    /// A sample has fewer than two values, so its variance is unknown.
    TooFewSamples {
        /// Values in the baseline sample.
        baseline: usize,
        /// Values in the candidate sample.
        candidate: usize,
    },
    /// Neither sample varies, so the standard error is zero: the means differ exactly or not
    /// at all, and no test is needed.
    NoVariance {
        /// The baseline's (constant) value.
        baseline_mean: f64,
        /// The candidate's (constant) value.
        candidate_mean: f64,
    },
    /// A value, or a figure computed from the values, is not finite.
    NotFinite,
}

impl Untestable {
    /// Whether the samples certainly differ: both are constant and their values differ.
    pub fn exact_difference(&self) -> bool {
        matches!(self, Self::NoVariance { baseline_mean, candidate_mean } if baseline_mean != candidate_mean)
    }
}

impl fmt::Display for Untestable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooFewSamples {
                baseline,
                candidate,
            } => write!(
                f,
                "Welch's t-test needs at least 2 windows per variant \
                 (baseline {baseline}, candidate {candidate})"
            ),
            Self::NoVariance {
                baseline_mean,
                candidate_mean,
            } if baseline_mean == candidate_mean => {
                write!(
                    f,
                    "neither variant varies between windows and both have the same value \
                     ({baseline_mean}), so there is no difference to test"
                )
            }
            Self::NoVariance {
                baseline_mean,
                candidate_mean,
            } => write!(
                f,
                "neither variant varies between windows, so the difference \
                 ({baseline_mean} vs {candidate_mean}) is exact and needs no test"
            ),
            Self::NotFinite => {
                f.write_str("the samples contain values too large or not finite to test")
            }
        }
    }
}

/// Welch's unequal-variance t-test, two-sided, of `baseline` against `candidate`.
///
/// With sample means `m₁, m₂`, unbiased sample variances `s₁², s₂²` and sizes `n₁, n₂`:
/// `t = (m₁ − m₂) / √(s₁²/n₁ + s₂²/n₂)` (positive when the candidate's mean is lower), the
/// Welch–Satterthwaite degrees of freedom
/// `ν = (s₁²/n₁ + s₂²/n₂)² / ((s₁²/n₁)²/(n₁−1) + (s₂²/n₂)²/(n₂−1))`, and the p-value
/// `2·P(T_ν > |t|)`. The difference is significant when `p < alpha`.
///
/// # Errors
///
/// [`Untestable`] when a sample has fewer than two values, when neither sample varies (the
/// standard error is zero), or when a value or intermediate figure is not finite.
pub fn welch_t_test(
    metric: &str,
    baseline: &[f64],
    candidate: &[f64],
    alpha: f64,
) -> Result<WelchTest, Untestable> {
    if baseline.len() < 2 || candidate.len() < 2 {
        return Err(Untestable::TooFewSamples {
            baseline: baseline.len(),
            candidate: candidate.len(),
        });
    }
    let (m1, v1) = mean_and_variance(baseline).ok_or(Untestable::NotFinite)?;
    let (m2, v2) = mean_and_variance(candidate).ok_or(Untestable::NotFinite)?;
    if v1 == 0.0 && v2 == 0.0 {
        return Err(Untestable::NoVariance {
            baseline_mean: m1,
            candidate_mean: m2,
        });
    }
    let (n1, n2) = (len_f64(baseline), len_f64(candidate));
    let (a, b) = (v1 / n1, v2 / n2);
    let se2 = a + b;
    // ν = 1 / ((a/s)²/(n₁−1) + (b/s)²/(n₂−1)) with s = a + b: the scaled form cannot
    // overflow or underflow, and its denominator is positive because a/s + b/s = 1.
    let (fa, fb) = (a / se2, b / se2);
    let df = 1.0 / (fa * fa / (n1 - 1.0) + fb * fb / (n2 - 1.0));
    let t = (m1 - m2) / se2.sqrt();
    if !(se2.is_finite() && se2 > 0.0 && df.is_finite() && df > 0.0 && t.is_finite()) {
        return Err(Untestable::NotFinite);
    }
    let dist = StudentsT::new(0.0, 1.0, df).map_err(|_| Untestable::NotFinite)?;
    let p_value = (2.0 * dist.sf(t.abs())).clamp(0.0, 1.0);
    if p_value.is_nan() {
        return Err(Untestable::NotFinite);
    }
    Ok(WelchTest {
        metric: metric.to_owned(),
        baseline_mean: m1,
        candidate_mean: m2,
        t,
        degrees_of_freedom: df,
        p_value,
        alpha,
        significant: p_value < alpha,
    })
}

/// The mean and the unbiased (n − 1) variance of at least two values, or `None` when a
/// figure is not finite.
fn mean_and_variance(values: &[f64]) -> Option<(f64, f64)> {
    let n = len_f64(values);
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean.is_finite() && variance.is_finite()).then_some((mean, variance))
}

/// A slice's length as `f64`.
// Sample sizes are window counts, far below 2^53, so the conversion is exact.
#[allow(clippy::cast_precision_loss)]
fn len_f64<T>(values: &[T]) -> f64 {
    values.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference figures computed with SciPy 1.17.1:
    /// `scipy.stats.ttest_ind(baseline, candidate, equal_var=False)` for t and p, and the
    /// Welch–Satterthwaite formula with `numpy.var(ddof=1)` for the degrees of freedom
    /// (equal to SciPy's `result.df`).
    struct Reference {
        baseline: &'static [f64],
        candidate: &'static [f64],
        t: f64,
        df: f64,
        p: f64,
    }

    /// Wikipedia's first Welch's t-test example (t = −2.46, ν = 24.99, p = 0.021).
    const WIKIPEDIA: Reference = Reference {
        baseline: &[
            27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7,
            21.4,
        ],
        candidate: &[
            27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5,
            24.4,
        ],
        t: -2.455_356_398_286_006,
        df: 24.988_529_290_231_416,
        p: 0.021_378_001_462_866_992,
    };

    /// Unequal sizes, a large difference: data points per minute of a typical reduction.
    const LARGE_DIFFERENCE: Reference = Reference {
        baseline: &[12000.0, 12500.0, 11800.0, 12300.0, 12100.0, 11900.0],
        candidate: &[4600.0, 4700.0, 4550.0, 4800.0],
        t: 61.965_720_703_461_11,
        df: 7.197_131_365_805_922,
        p: 4.384_382_134_633_446e-11,
    };

    /// Unequal sizes, a difference well within the noise.
    const NOISE: Reference = Reference {
        baseline: &[100.0, 104.0, 98.0, 101.0],
        candidate: &[99.0, 103.0, 97.5, 102.0, 100.5],
        t: 0.219_286_021_386_819_93,
        df: 6.143_517_824_601_815,
        p: 0.833_531_854_926_945_7,
    };

    /// One sample constant: ν falls to n₂ − 1.
    const ONE_CONSTANT: Reference = Reference {
        baseline: &[10.0, 10.0, 10.0],
        candidate: &[8.0, 9.0, 11.0, 7.5],
        t: 1.453_631_135_557_047,
        df: 3.0,
        p: 0.242_013_694_624_568_54,
    };

    fn check(reference: &Reference) -> WelchTest {
        let test = welch_t_test("x", reference.baseline, reference.candidate, 0.05)
            .expect("testable samples");
        assert!(
            (test.t - reference.t).abs() < 1e-6,
            "t {} vs {}",
            test.t,
            reference.t
        );
        assert!(
            (test.degrees_of_freedom - reference.df).abs() < 1e-6,
            "df {} vs {}",
            test.degrees_of_freedom,
            reference.df
        );
        // Relative tolerance, for the tiny p-value of the large difference.
        assert!(
            (test.p_value - reference.p).abs() <= 1e-6 * reference.p,
            "p {} vs {}",
            test.p_value,
            reference.p
        );
        test
    }

    #[test]
    fn matches_the_wikipedia_example() {
        let test = check(&WIKIPEDIA);
        assert!((test.baseline_mean - 20.82).abs() < 1e-9);
        assert!((test.candidate_mean - 22.986_666_666_666_665).abs() < 1e-9);
        assert!(test.significant);
        assert_eq!(test.metric, "x");
        assert!((test.alpha - 0.05).abs() < f64::EPSILON);
    }

    #[test]
    fn matches_scipy_on_a_large_difference() {
        let test = check(&LARGE_DIFFERENCE);
        assert!((test.baseline_mean - 12100.0).abs() < 1e-9);
        assert!((test.candidate_mean - 4662.5).abs() < 1e-9);
        assert!(test.significant);
    }

    #[test]
    fn matches_scipy_on_noise() {
        let test = check(&NOISE);
        assert!(!test.significant);
    }

    #[test]
    fn matches_scipy_when_one_sample_is_constant() {
        let test = check(&ONE_CONSTANT);
        assert!(!test.significant);
    }

    #[test]
    fn swapping_the_samples_negates_t_only() {
        let forward = check(&LARGE_DIFFERENCE);
        let backward = welch_t_test(
            "x",
            LARGE_DIFFERENCE.candidate,
            LARGE_DIFFERENCE.baseline,
            0.05,
        )
        .expect("testable");
        assert!((forward.t + backward.t).abs() < 1e-9);
        assert!((forward.degrees_of_freedom - backward.degrees_of_freedom).abs() < 1e-9);
        assert!((forward.p_value - backward.p_value).abs() < 1e-15);
    }

    #[test]
    fn needs_two_values_per_sample() {
        assert_eq!(
            welch_t_test("x", &[1.0], &[1.0, 2.0], 0.05),
            Err(Untestable::TooFewSamples {
                baseline: 1,
                candidate: 2
            })
        );
        assert_eq!(
            welch_t_test("x", &[1.0, 2.0], &[], 0.05),
            Err(Untestable::TooFewSamples {
                baseline: 2,
                candidate: 0
            })
        );
    }

    #[test]
    fn constant_samples_are_exactly_different_or_equal() {
        let different = welch_t_test("x", &[5.0, 5.0], &[3.0, 3.0, 3.0], 0.05).unwrap_err();
        assert_eq!(
            different,
            Untestable::NoVariance {
                baseline_mean: 5.0,
                candidate_mean: 3.0
            }
        );
        assert!(different.exact_difference());
        assert!(different.to_string().contains("exact"));

        let equal = welch_t_test("x", &[4.0, 4.0], &[4.0, 4.0], 0.05).unwrap_err();
        assert!(!equal.exact_difference());
        assert!(equal.to_string().contains("no difference"));
    }

    #[test]
    fn refuses_values_that_are_not_finite() {
        assert_eq!(
            welch_t_test("x", &[f64::NAN, 1.0], &[1.0, 2.0], 0.05),
            Err(Untestable::NotFinite)
        );
        assert_eq!(
            welch_t_test("x", &[f64::MAX, -f64::MAX], &[1.0, 2.0], 0.05),
            Err(Untestable::NotFinite)
        );
    }
}
