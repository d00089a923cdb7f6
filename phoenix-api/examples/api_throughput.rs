//! Throughput of `GET /api/v1/experiments/{id}` against the same JSON served from memory by a
//! bare axum handler, measured with `wrk` on this machine in one run.
//!
//! ```text
//! cargo run --release -p phoenix-api --example api_throughput [-- SECONDS CONNECTIONS THREADS]
//! ```
//!
//! Starts the Phoenix server on 127.0.0.1 (SQLite in a temporary directory), runs a small
//! experiment to completion so that the document has its windows and results, starts a bare
//! axum server answering the same bytes, then runs `wrk` against each, alternating, three
//! rounds, and prints the median requests per second of both and their ratio. Needs `wrk` on
//! the `PATH`.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::routing::get;
use phoenix_api::{JwtSecret, ServerConfig};
use serde_json::{Value, json};

const PASSWORD: &str = "throughput benchmark";
const SPEC: &str = r#"{
  "name": "throughput-doc",
  "baseline": {"template": "process-baseline-v1"},
  "candidate": {"template": "process-topk-v1", "parameters": {"topK": 10}},
  "workload": {"profile": "realistic", "processes": 40, "seed": 5},
  "duration": "1h",
  "criticalProcesses": ["^postgres$"]
}"#;

fn request(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: &str,
) -> Result<Value> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut response = if method == "GET" {
        let mut r = agent.get(url);
        if let Some(auth) = &auth {
            r = r.header("Authorization", auth);
        }
        r.call()?
    } else {
        let mut r = agent.post(url).content_type("application/json");
        if let Some(auth) = &auth {
            r = r.header("Authorization", auth);
        }
        r.send(body)?
    };
    let text = response.body_mut().read_to_string()?;
    Ok(serde_json::from_str(&text)?)
}

/// Requests per second that `wrk` measured.
fn wrk(url: &str, token: &str, seconds: u32, connections: u32, threads: u32) -> Result<f64> {
    let output = Command::new("wrk")
        .args([
            "--latency",
            "-t",
            &threads.to_string(),
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "-H",
            &format!("Authorization: Bearer {token}"),
            url,
        ])
        .output()
        .context("running wrk (is it installed?)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    if text.contains("Non-2xx") {
        bail!("wrk saw error responses:\n{text}");
    }
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("Requests/sec:"))
        .context("no Requests/sec in wrk's output")?;
    let value = line.split_whitespace().nth(1).context("no figure")?;
    Ok(value.parse()?)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[allow(clippy::print_stdout)]
fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: u32 = args.first().map_or(Ok(10), |a| a.parse())?;
    let connections: u32 = args.get(1).map_or(Ok(32), |a| a.parse())?;
    let threads: u32 = args.get(2).map_or(Ok(2), |a| a.parse())?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let config = ServerConfig::default()
        .with_database_url(format!(
            "sqlite://{}",
            dir.path().join("phoenix.db").display()
        ))
        .with_jwt_secret(JwtSecret::new(
            b"a throughput benchmark secret, 32+ bytes".to_vec(),
        )?)
        .with_admin_password(PASSWORD);

    let api_addr = runtime.block_on(async {
        let api = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let api_addr = api.local_addr()?;
        tokio::spawn(phoenix_api::serve_on(api, config, std::future::pending()));
        Ok::<_, anyhow::Error>(api_addr)
    })?;

    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let base = format!("http://{api_addr}");
    // The server is up once it answers /health.
    let mut tries = 0;
    while request(&agent, "GET", &format!("{base}/health"), None, "").is_err() {
        tries += 1;
        if tries > 200 {
            bail!("the server did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let login = json!({"username": "admin", "password": PASSWORD}).to_string();
    let tokens = request(
        &agent,
        "POST",
        &format!("{base}/api/v1/auth/login"),
        None,
        &login,
    )?;
    let token = tokens["access_token"]
        .as_str()
        .context("no token")?
        .to_owned();
    let created = request(
        &agent,
        "POST",
        &format!("{base}/api/v1/experiments"),
        Some(&token),
        SPEC,
    )?;
    let id = created["id"].as_str().context("no id")?.to_owned();
    request(
        &agent,
        "POST",
        &format!("{base}/api/v1/experiments/{id}/start"),
        Some(&token),
        "",
    )?;
    let url = format!("{base}/api/v1/experiments/{id}");
    let document = loop {
        let experiment = request(&agent, "GET", &url, Some(&token), "")?;
        match experiment["status"]["phase"].as_str() {
            Some("completed") => break experiment,
            Some("failed") => bail!("the experiment failed: {}", experiment["status"]),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let bytes = Bytes::from(serde_json::to_vec(&document)?);
    let size = bytes.len();

    // The bare server: the same bytes from memory, no auth, no store.
    let bare_addr: SocketAddr = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let router = Router::new().route(
            "/api/v1/experiments/{id}",
            get(move || {
                let bytes = bytes.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], bytes) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok::<_, anyhow::Error>(addr)
    })?;
    let bare_url = format!("http://{bare_addr}/api/v1/experiments/{id}");

    println!(
        "document: {size} bytes (experiment {id}, {} windows); wrk -t{threads} -c{connections} -d{seconds}s, 3 alternating rounds",
        document["status"]["windows"].as_array().map_or(0, Vec::len)
    );
    let (mut bare, mut api) = (Vec::new(), Vec::new());
    for round in 1..=3 {
        let b = wrk(&bare_url, &token, seconds, connections, threads)?;
        let a = wrk(&url, &token, seconds, connections, threads)?;
        println!("round {round}: bare {b:.0} req/s, phoenix {a:.0} req/s");
        bare.push(b);
        api.push(a);
    }
    let (bare, api) = (median(bare), median(api));
    println!(
        "median: bare axum {bare:.0} req/s; phoenix GET /api/v1/experiments/{{id}} {api:.0} req/s"
    );
    println!(
        "ratio: {:.1}% of bare throughput (target at least 50%)",
        100.0 * api / bare
    );
    Ok(())
}
