//! Turning per-window measurements into results: figures per variant, the comparison, a
//! significance test where measurements are noisy, and a recommendation.
//!
//! [`analyze`] is the entry point; [`welch_t_test`] is the significance test it runs on
//! noisy measurements.

mod compute;
mod figures;
mod results;
mod welch;

pub(crate) use compute::finite;
pub use compute::{ALPHA, TESTED_METRIC, analyze};
pub use figures::fixed;
pub use results::{
    Comparison, ExperimentResults, MonthlyCost, Reason, Recommendation, Significance,
    VariantSummary, WelchTest,
};
pub use welch::{Untestable, welch_t_test};
