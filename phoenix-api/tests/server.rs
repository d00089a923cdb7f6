//! End to end: the `phoenix` binary serving on a port it picks, with an SQLite file. An
//! experiment is created over REST, followed over the WebSocket to completion, and its
//! results read; and a server killed mid-run resumes the experiment on restart.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, http::HeaderValue};

#[allow(dead_code)]
mod support;

use support::process::PhoenixServer;

const PASSWORD: &str = "correct horse battery";
const SMALL_SPEC: &str = include_str!("fixtures/small-spec.json");
const LONG_SPEC: &str = include_str!("fixtures/long-spec.json");

/// A running `phoenix serve` and a client that reads every status as an answer.
struct Server {
    process: PhoenixServer,
    agent: ureq::Agent,
}

impl Server {
    /// A server on the database `phoenix.db` in `dir`.
    fn start(dir: &Path) -> Result<Self> {
        let process = PhoenixServer::start_in(dir, PASSWORD)?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Self { process, agent })
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Result<(u16, Value)> {
        let url = format!("{}{path}", self.process.url);
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut response = match (method, body) {
            ("GET", _) => {
                let mut request = self.agent.get(&url);
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.call()?
            }
            (_, body) => {
                let mut request = self.agent.post(&url).content_type("application/json");
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.send(body.unwrap_or(""))?
            }
        };
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string()?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    fn login(&self) -> Result<String> {
        let body = json!({"username": "admin", "password": PASSWORD}).to_string();
        let (status, tokens) = self.request("POST", "/api/v1/auth/login", None, Some(&body))?;
        anyhow::ensure!(status == 200, "login: {status} {tokens}");
        Ok(tokens["access_token"]
            .as_str()
            .context("no token")?
            .to_owned())
    }

    fn create(&self, token: &str, spec: &str) -> Result<String> {
        let (status, experiment) =
            self.request("POST", "/api/v1/experiments", Some(token), Some(spec))?;
        anyhow::ensure!(status == 201, "create: {status} {experiment}");
        Ok(experiment["id"].as_str().context("no id")?.to_owned())
    }

    fn experiment(&self, token: &str, id: &str) -> Result<Value> {
        let (status, experiment) = self.request(
            "GET",
            &format!("/api/v1/experiments/{id}"),
            Some(token),
            None,
        )?;
        anyhow::ensure!(status == 200, "get: {status} {experiment}");
        Ok(experiment)
    }

    /// Starts the experiment `id`, which must answer 200.
    fn start_experiment(&self, token: &str, id: &str) -> Result<()> {
        let (status, body) = self.request(
            "POST",
            &format!("/api/v1/experiments/{id}/start"),
            Some(token),
            None,
        )?;
        assert_eq!(status, 200, "{body}");
        Ok(())
    }

    /// Stops the server with SIGTERM and waits for it to exit successfully.
    fn terminate(self) -> Result<()> {
        self.process.stop()
    }

    /// Stops the server with SIGKILL: no graceful anything.
    fn kill(self) -> Result<()> {
        self.process.kill()
    }
}

#[test]
fn an_experiment_runs_to_completion_over_rest_and_websocket() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    let token = server.login()?;
    let id = server.create(&token, SMALL_SPEC)?;

    // Connect first, then start: every event of the run arrives over the socket.
    let url = format!(
        "{}/api/v1/experiments/{id}/watch",
        server.process.url.replace("http://", "ws://")
    );
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {token}"))?,
    );
    let (mut socket, _) = tungstenite::connect(request)?;
    server.start_experiment(&token, &id)?;

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut events = Vec::new();
    let close = loop {
        assert!(Instant::now() < deadline, "no end of run after {events:?}");
        match socket.read()? {
            Message::Text(text) => events.push(serde_json::from_str::<Value>(&text)?),
            Message::Close(frame) => break frame,
            _ => {}
        }
    };
    let close = close.context("a close frame")?;
    assert_eq!(u16::from(close.code), 1000, "{close:?}");
    assert_eq!(events[0]["kind"]["type"], "created");
    let last = events.last().context("events")?;
    assert_eq!(last["kind"]["to"], "completed", "{events:#?}");
    let windows = events
        .iter()
        .filter(|e| e["kind"]["event"] == "windowMeasured")
        .count();
    assert!(windows > 0, "{events:#?}");

    let (status, results) = server.request(
        "GET",
        &format!("/api/v1/experiments/{id}/results"),
        Some(&token),
        None,
    )?;
    assert_eq!(status, 200, "{results}");
    assert!(
        results["comparison"]["cardinalityReduction"]
            .as_f64()
            .context("reduction")?
            > 0.0,
        "{results}"
    );
    assert_eq!(results["candidate"]["criticalCoverage"], 1.0);

    // The REST event log is the same as what the socket sent.
    let (_, logged) = server.request(
        "GET",
        &format!("/api/v1/experiments/{id}/events"),
        Some(&token),
        None,
    )?;
    assert_eq!(logged.as_array().context("events")?.len(), events.len());

    // A finished run's socket replays the log and closes.
    let url = format!(
        "{}/api/v1/experiments/{id}/watch?access_token={token}",
        server.process.url.replace("http://", "ws://")
    );
    let (mut socket, _) = tungstenite::connect(url)?;
    let mut replayed = 0;
    loop {
        match socket.read()? {
            Message::Text(_) => replayed += 1,
            Message::Close(_) => break,
            _ => {}
        }
    }
    assert_eq!(replayed, events.len());
    Ok(())
}

#[test]
fn a_killed_server_resumes_its_experiments() -> Result<()> {
    resumes_after(Server::kill)
}

#[test]
fn a_terminated_server_resumes_its_experiments() -> Result<()> {
    resumes_after(Server::terminate)
}

/// Starts the long spec, stops the server mid-run with `stop`, starts it again: the run
/// completes with every window measured exactly once.
fn resumes_after(stop: fn(Server) -> Result<()>) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    let token = server.login()?;
    let id = server.create(&token, LONG_SPEC)?;
    let pending = server.create(&token, SMALL_SPEC)?;
    server.start_experiment(&token, &id)?;

    // Kill it mid-run: after some windows, before the last.
    let deadline = Instant::now() + Duration::from_secs(120);
    let measured_before = loop {
        let experiment = server.experiment(&token, &id)?;
        let windows = experiment["status"]["windows"]
            .as_array()
            .map_or(0, Vec::len);
        if windows >= 2 {
            assert_eq!(
                experiment["status"]["phase"], "running",
                "the run must still be going"
            );
            break windows;
        }
        assert!(
            Instant::now() < deadline,
            "no window measured: {experiment}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    stop(server)?;

    let server = Server::start(dir.path())?;
    let token = server.login()?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let experiment = loop {
        let experiment = server.experiment(&token, &id)?;
        let phase = experiment["status"]["phase"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if phase != "running" && phase != "initializing" && phase != "analyzing" {
            break experiment;
        }
        assert!(Instant::now() < deadline, "not resumed: {experiment}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        experiment["status"]["phase"], "completed",
        "{}",
        experiment["status"]
    );
    let windows = experiment["status"]["windows"]
        .as_array()
        .context("windows")?;
    assert_eq!(windows.len(), 24, "every window measured once");
    assert!(windows.len() > measured_before);
    for (i, window) in windows.iter().enumerate() {
        assert_eq!(window["window"]["index"], i, "windows in order, none twice");
    }
    // Nothing was lost: both experiments are listed, the pending one still pending.
    let (_, list) = server.request("GET", "/api/v1/experiments", Some(&token), None)?;
    let ids: Vec<&str> = list["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert!(
        ids.contains(&id.as_str()) && ids.contains(&pending.as_str()),
        "{ids:?}"
    );
    assert_eq!(
        server.experiment(&token, &pending)?["status"]["phase"],
        "pending"
    );
    let (_, events) = server.request(
        "GET",
        &format!("/api/v1/experiments/{id}/events"),
        Some(&token),
        None,
    )?;
    let resumed_windows = events
        .as_array()
        .context("events")?
        .iter()
        .filter(|e| e["kind"]["event"] == "windowMeasured")
        .count();
    assert_eq!(
        resumed_windows, 24,
        "one event per window, across both servers"
    );
    Ok(())
}

#[test]
fn sigterm_stops_the_server_gracefully() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    let (status, _) = server.request("GET", "/ready", None, None)?;
    assert_eq!(status, 200);
    // SIGTERM: a successful exit within 30 s.
    server.terminate()?;
    Ok(())
}
