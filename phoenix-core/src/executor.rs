//! What runs the variants: the [`Executor`] trait.
//!
//! The local executor (the root `phoenix` package) runs the simulator and the pipeline
//! emulator in-process; the Kubernetes executor (`phoenix-operator`) deploys collectors and
//! measures them through Prometheus. The controller drives either through this trait.

use async_trait::async_trait;

use crate::Result;
use crate::experiment::Experiment;
use crate::measurement::{Noise, Window, WindowMeasurement};

/// Runs an experiment's variants and measures them.
///
/// `prepare`, `start` and `tear_down` must be idempotent: a controller that resumes an
/// interrupted experiment calls them again. Errors are reported as
/// [`Error::Executor`](crate::Error::Executor) and fail the experiment.
#[async_trait]
pub trait Executor: Send + Sync {
    /// Whether this executor's measurements repeat exactly.
    fn noise(&self) -> Noise;

    /// Deploys both variants (renders and validates their configs, creates what they need).
    async fn prepare(&self, experiment: &Experiment) -> Result<()>;

    /// Starts the workload and the variants.
    async fn start(&self, experiment: &Experiment) -> Result<()>;

    /// Measures both variants over `window`, returning once the window is over.
    ///
    /// Windows are asked for in order, but after a resume the first window asked for may be
    /// any window, of an executor instance that measured none before. Cumulative figures
    /// (`distinct_series_to_date`, `new_series`) still count from the first window of the
    /// run, so an executor must be able to reconstruct them: the local executor replays its
    /// deterministic workload up to the window, the Kubernetes executor queries Prometheus
    /// over the whole measured range.
    async fn measure(&self, experiment: &Experiment, window: Window) -> Result<WindowMeasurement>;

    /// Removes both variants and the workload.
    async fn tear_down(&self, experiment: &Experiment) -> Result<()>;

    /// Makes the candidate the active pipeline of the experiment's target.
    async fn promote(&self, experiment: &Experiment) -> Result<()>;

    /// Restores the target's pipeline from before the candidate was promoted.
    async fn rollback(&self, experiment: &Experiment) -> Result<()>;
}
