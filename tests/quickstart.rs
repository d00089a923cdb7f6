//! The quickstart's run and table, on a small workload.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use phoenix::core::phase::Phase;
use phoenix::core::store::{ExperimentStore, ListQuery};
use phoenix::quickstart::{self, Options, Progress};
use phoenix::store::MemoryStore;

#[tokio::test]
async fn every_candidate_is_run_and_tabulated() {
    let store = Arc::new(MemoryStore::new());
    let options = Options {
        processes: Some(30),
        duration: Duration::from_secs(300),
        ..Options::default()
    };
    let mut started = Vec::new();
    let mut finished = 0;
    let mut progress = |event: Progress<'_>| match event {
        Progress::Started { template, .. } => started.push(template),
        Progress::Finished(_) => finished += 1,
    };
    let report = quickstart::run(store.clone(), &options, &mut progress)
        .await
        .unwrap();
    assert_eq!(started, quickstart::candidates());
    assert_eq!(finished, started.len());
    assert_eq!(report.outcomes.len(), 4);
    for outcome in &report.outcomes {
        assert_eq!(outcome.phase, Phase::Completed, "{:?}", outcome.failure);
        let stored = store.get(&outcome.experiment).await.unwrap();
        assert_eq!(
            stored.status.results, outcome.results,
            "figures come from the store"
        );
    }
    let page = store.list(&ListQuery::default()).await.unwrap();
    assert_eq!(page.items.len(), 4);

    let table = report.to_string();
    let first = report.outcomes[0].results.as_ref().unwrap();
    let baseline_row = table
        .lines()
        .find(|l| l.starts_with("process-baseline-v1"))
        .unwrap();
    assert!(
        baseline_row.contains(&format!("{:.1}", first.baseline.mean_active_series)),
        "{table}"
    );
    for template in quickstart::candidates() {
        let row = table
            .lines()
            .find(|l| l.starts_with(template.name()))
            .unwrap();
        assert!(
            row.ends_with("promote") || row.ends_with("reject") || row.ends_with("inconclusive"),
            "{row}"
        );
    }
}
