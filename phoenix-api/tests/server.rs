//! End to end: the `phoenix` binary serving on a port it picks, with an SQLite file. An
//! experiment is created over REST, followed over the WebSocket to completion, and its
//! results read; and a server killed mid-run resumes the experiment on restart.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, http::HeaderValue};

const PASSWORD: &str = "correct horse battery";
const SECRET: &str = "an-end-to-end-test-secret-of-32-bytes-or-more";
const SMALL_SPEC: &str = include_str!("fixtures/small-spec.json");
const LONG_SPEC: &str = include_str!("fixtures/long-spec.json");

/// A running `phoenix serve`, killed when dropped.
struct Server {
    child: Child,
    base: String,
    agent: ureq::Agent,
}

impl Server {
    fn start(database: &Path) -> Result<Self> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_phoenix"))
            .args(["serve", "--bind", "127.0.0.1:0", "--database"])
            .arg(format!("sqlite://{}", database.display()))
            .env("PHOENIX_JWT_SECRET", SECRET)
            .env("PHOENIX_ADMIN_PASSWORD", PASSWORD)
            .env_remove("PHOENIX_JWT_SECRET_FILE")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting phoenix serve")?;
        let stderr = child.stderr.take().context("no stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let Ok(addr) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            bail!("the server did not log its address");
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Self {
            child,
            base: format!("http://{addr}"),
            agent,
        })
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
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

    /// Stops the server with SIGTERM and waits for it to exit successfully.
    fn terminate(mut self) -> Result<()> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status()?;
        anyhow::ensure!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(exit) = self.child.try_wait()? {
                anyhow::ensure!(exit.success(), "the server exited with {exit:?}");
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < deadline, "still running after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server with SIGKILL: no graceful anything.
    fn kill(mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_experiment_runs_to_completion_over_rest_and_websocket() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(&dir.path().join("phoenix.db"))?;
    let token = server.login()?;
    let id = server.create(&token, SMALL_SPEC)?;

    // Connect first, then start: every event of the run arrives over the socket.
    let url = format!(
        "{}/api/v1/experiments/{id}/watch",
        server.base.replace("http://", "ws://")
    );
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {token}"))?,
    );
    let (mut socket, _) = tungstenite::connect(request)?;
    let (status, started) = server.request(
        "POST",
        &format!("/api/v1/experiments/{id}/start"),
        Some(&token),
        None,
    )?;
    assert_eq!(status, 200, "{started}");

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
        server.base.replace("http://", "ws://")
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
    let database = dir.path().join("phoenix.db");
    let server = Server::start(&database)?;
    let token = server.login()?;
    let id = server.create(&token, LONG_SPEC)?;
    let pending = server.create(&token, SMALL_SPEC)?;
    let (status, body) = server.request(
        "POST",
        &format!("/api/v1/experiments/{id}/start"),
        Some(&token),
        None,
    )?;
    assert_eq!(status, 200, "{body}");

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

    let server = Server::start(&database)?;
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
    let mut server = Server::start(&dir.path().join("phoenix.db"))?;
    let (status, _) = server.request("GET", "/ready", None, None)?;
    assert_eq!(status, 200);
    let pid = server.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status()?;
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = server.child.try_wait()? {
            break exit;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    Ok(())
}
