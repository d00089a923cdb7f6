//! The cost model: what a backend charges for the telemetry a pipeline exports.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::experiment::ValidationErrors;
use crate::experiment::validation::Violations;

use crate::analysis::{MonthlyCost, finite};

/// Prices a backend charges. Any price may be zero; the report always shows the raw units
/// (data points, bytes, series) beside the money.
///
/// The defaults are list prices typical of hosted metrics backends in 2026: $8 per 1,000
/// active series per month, $0.30 per GB ingested and $0.10 per million data points. They are
/// a starting point, not a quote: set the prices of your own contract per experiment
/// (`spec.costModel`) or globally.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CostModel {
    /// Currency code the prices are in, for display only.
    pub currency: String,
    /// Price per million data points ingested.
    pub per_million_data_points: f64,
    /// Price per GB (10^9 bytes) of encoded OTLP ingested.
    pub per_gb_ingested: f64,
    /// Price per active series per month.
    pub per_active_series_month: f64,
}

impl Default for CostModel {
    fn default() -> Self {
        Self {
            currency: "USD".to_owned(),
            per_million_data_points: 0.10,
            per_gb_ingested: 0.30,
            per_active_series_month: 0.008,
        }
    }
}

/// Hours in a billing month: 365 days × 24 hours / 12 months.
pub const HOURS_PER_MONTH: f64 = 730.0;
/// Minutes in a billing month: [`HOURS_PER_MONTH`] × 60 = 43,800.
pub const MINUTES_PER_MONTH: f64 = HOURS_PER_MONTH * 60.0;

impl CostModel {
    /// Checks that every price is a finite number of at least 0. `path` names the model in
    /// the errors, e.g. `spec.costModel`.
    pub fn validate(&self, path: &str) -> Result<(), ValidationErrors> {
        let mut v = Violations::default();
        self.check(&mut v, path);
        v.finish()
    }

    pub(crate) fn check(&self, v: &mut Violations, path: &str) {
        v.non_negative(
            self.per_million_data_points,
            format!("{path}.perMillionDataPoints"),
        );
        v.non_negative(self.per_gb_ingested, format!("{path}.perGbIngested"));
        v.non_negative(
            self.per_active_series_month,
            format!("{path}.perActiveSeriesMonth"),
        );
    }
}

impl CostModel {
    /// What a pipeline's export rate costs per month of [`MINUTES_PER_MONTH`] (730 hours):
    ///
    /// - data points: `data_points_per_minute × 43,800 / 10⁶ × per_million_data_points`;
    /// - bytes: `bytes_per_minute × 43,800 / 10⁹ × per_gb_ingested`;
    /// - series: `mean_active_series × per_active_series_month`;
    /// - total: the sum of the three.
    ///
    /// Every part is finite: a figure that overflows is clamped to `±f64::MAX`, and a
    /// non-finite input or price counts as 0.
    pub fn monthly_cost(
        &self,
        data_points_per_minute: f64,
        bytes_per_minute: f64,
        mean_active_series: f64,
    ) -> MonthlyCost {
        let data_points = finite(
            finite(data_points_per_minute)
                * (MINUTES_PER_MONTH / 1e6)
                * finite(self.per_million_data_points),
        );
        let bytes = finite(
            finite(bytes_per_minute) * (MINUTES_PER_MONTH / 1e9) * finite(self.per_gb_ingested),
        );
        let series = finite(finite(mean_active_series) * finite(self.per_active_series_month));
        MonthlyCost {
            data_points,
            bytes,
            series,
            total: finite(data_points + bytes + series),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn a_month_is_730_hours() {
        assert!(close(MINUTES_PER_MONTH, 43_800.0));
    }

    #[test]
    fn monthly_cost_with_the_default_prices() {
        // 10,000 points/min × 43,800 = 438 M points × $0.10/M = $43.80;
        // 1 MB/min × 43,800 = 43.8 GB × $0.30 = $13.14; 1,000 series × $0.008 = $8.00.
        let cost = CostModel::default().monthly_cost(10_000.0, 1_000_000.0, 1_000.0);
        assert!(close(cost.data_points, 43.80), "{cost:?}");
        assert!(close(cost.bytes, 13.14), "{cost:?}");
        assert!(close(cost.series, 8.00), "{cost:?}");
        assert!(close(cost.total, 64.94), "{cost:?}");
    }

    #[test]
    fn zero_prices_cost_nothing() {
        let model = CostModel {
            currency: "EUR".to_owned(),
            per_million_data_points: 0.0,
            per_gb_ingested: 0.0,
            per_active_series_month: 0.0,
        };
        assert_eq!(model.monthly_cost(1e6, 1e9, 1e5), MonthlyCost::default());
    }

    #[test]
    fn monthly_cost_is_always_finite() {
        let model = CostModel {
            per_gb_ingested: f64::MAX,
            ..CostModel::default()
        };
        let cost = model.monthly_cost(f64::NAN, f64::MAX, f64::INFINITY);
        assert!(close(cost.data_points, 0.0));
        for x in [cost.data_points, cost.bytes, cost.series, cost.total] {
            assert!(x.is_finite(), "{cost:?}");
        }
    }
}
