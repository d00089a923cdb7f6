//! The `phoenix-operator` binary: parses its settings and runs the operator.

use clap::Parser;
use phoenix_operator::Settings;
use phoenix_operator::objects::Defaults;

/// Kubernetes operator for Phoenix experiments, pipelines and load simulations.
#[derive(Debug, Parser)]
#[command(name = "phoenix-operator", version)]
struct Args {
    /// Base URL of the Prometheus HTTP API experiments are measured through.
    #[arg(long, env = "PHOENIX_PROMETHEUS_URL")]
    prometheus_url: Option<String>,
    /// Collector image for pipelines that name none.
    #[arg(long, env = "PHOENIX_COLLECTOR_IMAGE")]
    collector_image: Option<String>,
    /// Simulator image for load simulations that name none.
    #[arg(long, env = "PHOENIX_SIM_IMAGE")]
    sim_image: Option<String>,
    /// Service account of collector pods for pipelines that name none.
    #[arg(long, env = "PHOENIX_COLLECTOR_SERVICE_ACCOUNT")]
    collector_service_account: Option<String>,
    /// Watch only this namespace [default: every namespace].
    #[arg(long, env = "PHOENIX_WATCH_NAMESPACE")]
    namespace: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let mut defaults = Defaults::default();
    if let Some(image) = args.collector_image {
        defaults.collector_image = image;
    }
    if let Some(image) = args.sim_image {
        defaults.simulator_image = image;
    }
    defaults.collector_service_account = args.collector_service_account;
    let client = kube::Client::try_default().await?;
    let settings = Settings {
        prometheus_url: args.prometheus_url,
        defaults,
        namespace: args.namespace,
    };
    phoenix_operator::run(client, settings).await?;
    Ok(())
}
