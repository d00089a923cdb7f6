//! Reconciler scenarios against a fake Kubernetes API server (tower-test's mock service):
//! first creation, an update, deletion with finalizer cleanup, an API error that leads to a
//! requeue, and invalid input ending Degraded, for each of the three kinds.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod experiment;
mod fake_api;
mod pipeline;
mod simulation;
mod store;

use std::sync::Arc;
use std::time::Duration;

use phoenix_operator::objects::Defaults;
use phoenix_operator::reconciler::{Context, Timing};
use serde_json::Value;

pub use fake_api::FakeApi;

/// The namespace of every scenario.
pub const NS: &str = "obs";

/// A fake API server and a context on it, with short waits and no Prometheus.
pub fn setup() -> (FakeApi, Arc<Context>) {
    context(None)
}

/// A fake API server and a context on it that measures through the Prometheus at `url`.
pub fn setup_with_prometheus(url: &str) -> (FakeApi, Arc<Context>) {
    context(Some(
        phoenix_operator::prometheus::PrometheusClient::new(url).unwrap(),
    ))
}

fn context(
    prometheus: Option<phoenix_operator::prometheus::PrometheusClient>,
) -> (FakeApi, Arc<Context>) {
    let (client, api) = FakeApi::start();
    let timing = Timing {
        waiting: Duration::from_secs(10),
        ready: Duration::from_secs(300),
        ready_timeout: Duration::from_secs(30),
        poll: Duration::from_millis(20),
        scrape_lag: Duration::ZERO,
    };
    let ctx = Context::new(client, Defaults::default(), prometheus).with_timing(timing);
    (api, Arc::new(ctx))
}

/// The path of a namespaced Phoenix resource.
pub fn phoenix_path(plural: &str, name: &str) -> String {
    format!("/apis/phoenix.io/v1alpha1/namespaces/{NS}/{plural}/{name}")
}

/// Reads the object at `path` as `K`.
pub fn load<K: serde::de::DeserializeOwned>(api: &FakeApi, path: &str) -> Arc<K> {
    Arc::new(serde_json::from_value(api.get(path).unwrap()).unwrap())
}

/// The condition of `type_` in a status value.
pub fn condition(status: &Value, type_: &str) -> Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
        .unwrap()
}
