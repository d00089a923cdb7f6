//! What an executor measures: per-window samples of both variants.
//!
//! A run is split into measurement windows after its warm-up. For each window the
//! [`Executor`](crate::executor::Executor) reports one [`VariantSample`] per variant; the
//! controller persists them as they arrive and [`analysis`](crate::analysis) turns them into
//! results.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The two sides of an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum VariantRole {
    /// The reference pipeline.
    Baseline,
    /// The pipeline under test.
    Candidate,
}

impl VariantRole {
    /// Both roles, baseline first.
    pub const BOTH: [Self; 2] = [Self::Baseline, Self::Candidate];

    /// The role as written in configs and labels (`baseline`, `candidate`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::Candidate => "candidate",
        }
    }
}

impl std::fmt::Display for VariantRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether measurements repeat exactly when the run is repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Noise {
    /// The same inputs give the same figures (the local simulator and emulator): any
    /// difference between the variants is real, and no significance test is needed.
    Deterministic,
    /// Figures carry measurement noise (a live cluster scraped by Prometheus): differences
    /// are tested per window for significance.
    Noisy,
}

/// One measurement window: offsets `[start, end)` from the start of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    /// Zero-based index among the run's windows.
    pub index: u32,
    /// Offset of the window's start from the start of the run.
    #[serde(with = "crate::duration")]
    #[schemars(with = "String")]
    pub start: Duration,
    /// Offset of the window's end from the start of the run.
    #[serde(with = "crate::duration")]
    #[schemars(with = "String")]
    pub end: Duration,
}

impl Window {
    /// The window's length.
    pub fn length(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }

    /// The windows of a run: from `warm_up` to `duration` in steps of `length`; the last
    /// window is shorter when `length` does not divide the measured time. Empty when
    /// `length` is zero or nothing is left after the warm-up. Validated specs keep the count
    /// within [`MAX_WINDOWS`](crate::experiment::MAX_WINDOWS).
    pub fn plan(duration: Duration, warm_up: Duration, length: Duration) -> Vec<Self> {
        let mut windows = Vec::new();
        if length.is_zero() {
            return windows;
        }
        let mut start = warm_up;
        let mut index = 0_u32;
        while start < duration {
            let end = start.saturating_add(length).min(duration);
            windows.push(Self { index, start, end });
            start = end;
            let Some(next) = index.checked_add(1) else {
                break;
            };
            index = next;
        }
        windows
    }
}

/// What one variant emitted during one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VariantSample {
    /// Scrapes that fell in the window.
    pub scrapes: u32,
    /// Mean number of distinct series exported per scrape.
    pub mean_active_series: f64,
    /// Distinct series exported from the first window up to the end of this one.
    pub distinct_series_to_date: u64,
    /// Series exported for the first time in this window.
    pub new_series: u64,
    /// Data points exported.
    pub data_points: u64,
    /// Bytes exported, as encoded OTLP protobuf.
    pub bytes: u64,
    /// Critical-process observations in the input: one per critical process per scrape.
    pub critical_expected: u64,
    /// Of those, the observations the variant's output kept (all of the process's input
    /// points present).
    pub critical_seen: u64,
    /// Mean collector CPU use in cores, where the executor can measure it (Kubernetes).
    pub cpu_cores: Option<f64>,
    /// Mean collector memory use in bytes, where the executor can measure it (Kubernetes).
    pub memory_bytes: Option<f64>,
}

/// Both variants' samples for one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WindowMeasurement {
    /// The window measured.
    pub window: Window,
    /// The baseline's sample.
    pub baseline: VariantSample,
    /// The candidate's sample.
    pub candidate: VariantSample,
}

impl WindowMeasurement {
    /// The sample of `role`.
    pub fn sample(&self, role: VariantRole) -> &VariantSample {
        match role {
            VariantRole::Baseline => &self.baseline,
            VariantRole::Candidate => &self.candidate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn plan_covers_the_run_after_warm_up() {
        let windows = Window::plan(10 * MIN, 2 * MIN, 3 * MIN);
        let bounds: Vec<_> = windows.iter().map(|w| (w.index, w.start, w.end)).collect();
        assert_eq!(
            bounds,
            [
                (0, 2 * MIN, 5 * MIN),
                (1, 5 * MIN, 8 * MIN),
                (2, 8 * MIN, 10 * MIN)
            ]
        );
        assert_eq!(windows[2].length(), 2 * MIN);
    }

    #[test]
    fn plan_is_empty_without_measured_time() {
        assert!(Window::plan(MIN, MIN, MIN).is_empty());
        assert!(Window::plan(MIN, Duration::ZERO, Duration::ZERO).is_empty());
    }
}
