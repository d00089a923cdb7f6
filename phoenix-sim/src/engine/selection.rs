//! Which of the scraper's metrics a simulation emits.

use phoenix_core::telemetry::ProcessMetric;

/// Which process metrics are on, like the `metrics:` section of the scraper's config.
///
/// The default is the scraper's: `process.cpu.time`, `process.memory.usage`,
/// `process.memory.virtual` and `process.disk.io` on, the rest off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetricSelection {
    enabled: [bool; ProcessMetric::ALL.len()],
}

impl Default for MetricSelection {
    fn default() -> Self {
        Self::scraper_defaults()
    }
}

impl MetricSelection {
    /// The scraper's defaults.
    pub fn scraper_defaults() -> Self {
        Self {
            enabled: ProcessMetric::ALL.map(ProcessMetric::enabled_by_default),
        }
    }

    /// Every metric on.
    pub fn all() -> Self {
        Self {
            enabled: [true; ProcessMetric::ALL.len()],
        }
    }

    /// This selection with `metric` switched on or off.
    #[must_use]
    pub fn with(mut self, metric: ProcessMetric, on: bool) -> Self {
        self.enabled[position(metric)] = on;
        self
    }

    /// Whether `metric` is on.
    pub fn is_enabled(&self, metric: ProcessMetric) -> bool {
        self.enabled[position(metric)]
    }

    /// The metrics that are on, in the order the scraper emits them (by name).
    pub fn emission_order(&self) -> Vec<ProcessMetric> {
        let mut metrics: Vec<ProcessMetric> = ProcessMetric::ALL
            .into_iter()
            .filter(|m| self.is_enabled(*m))
            .collect();
        metrics.sort_by_key(|m| m.name());
        metrics
    }

    /// Data points per process per scrape once a process has been seen twice.
    pub fn points_per_process(&self) -> usize {
        ProcessMetric::ALL
            .into_iter()
            .filter(|m| self.is_enabled(*m))
            .map(ProcessMetric::points_per_scrape)
            .sum()
    }
}

fn position(metric: ProcessMetric) -> usize {
    ProcessMetric::ALL
        .iter()
        .position(|m| *m == metric)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_scraper() {
        let s = MetricSelection::default();
        assert_eq!(s.points_per_process(), 7);
        let names: Vec<_> = s.emission_order().iter().map(|m| m.name()).collect();
        assert_eq!(
            names,
            [
                "process.cpu.time",
                "process.disk.io",
                "process.memory.usage",
                "process.memory.virtual"
            ]
        );
        let all = MetricSelection::all();
        assert_eq!(all.emission_order().len(), 11);
        assert!(
            !s.with(ProcessMetric::DiskIo, false)
                .is_enabled(ProcessMetric::DiskIo)
        );
    }
}
