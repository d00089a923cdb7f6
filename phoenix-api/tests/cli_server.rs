//! The `phoenix` binary end to end: `phoenix serve` on a free loopback port with a temporary
//! SQLite store, then `login`, `experiment create/start/watch/get/list`, bad input, and
//! `logout`, each as a separate process; SIGTERM stops the server gracefully.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

#[allow(dead_code)]
mod support;

use support::process::{BIN, PhoenixServer};

const ADMIN_PASSWORD: &str = "cli-test-password";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("cli-fixtures")
        .join(name)
}

/// The CLI of one user: a config directory of its own, pointed at a server.
struct User {
    config: tempfile::TempDir,
    server: String,
}

impl User {
    fn new(server: &PhoenixServer) -> Self {
        Self {
            config: tempfile::tempdir().unwrap(),
            server: server.url.clone(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env("PHOENIX_CONFIG_DIR", self.config.path())
            .env("PHOENIX_SERVER", &self.server);
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs a command that must succeed and parses its JSON output.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.run(&all);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Runs a command that must fail with exit 1, saying `reason` on standard error.
    fn fails(&self, args: &[&str], reason: &str) {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            text(&out.stderr).contains(reason),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }

    /// Creates an experiment from the fixture `name`; its id.
    fn create(&self, name: &str) -> String {
        let path = fixture(name);
        let created = self.json(&["experiment", "create", "-f", path.to_str().unwrap()]);
        created["id"].as_str().unwrap().to_owned()
    }

    /// Starts the experiment `id`.
    fn start(&self, id: &str) {
        let out = self.run(&["experiment", "start", id]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }

    /// Watches the experiment `id` to its end: the events printed, one JSON line each.
    fn watch_json(&self, id: &str) -> Vec<Value> {
        let out = self.run(&["experiment", "watch", id, "--output", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    fn login(&self) {
        let out = self.run_with_stdin(
            &["login", "--password-stdin"],
            &format!("{ADMIN_PASSWORD}\n"),
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let said = text(&out.stdout);
        assert!(said.contains("as admin (role admin)"), "{said}");
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn an_experiment_from_login_to_results() {
    let server = PhoenixServer::start(ADMIN_PASSWORD).unwrap();
    let user = User::new(&server);

    // Nothing works before login, and the message says what to do.
    let out = user.run(&["experiment", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: not logged in to http://127.0.0.1:"),
        "{err}"
    );
    assert!(err.contains("phoenix login"), "{err}");

    // A wrong password: exit 1 with the server's reason, and no token file.
    let out = user.run_with_stdin(&["login", "--password-stdin"], "wrong\n");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("login failed") && err.contains("HTTP 401"),
        "{err}"
    );
    let token_file = user.config.path().join("credentials.json");
    assert!(!token_file.exists());

    user.login();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the token file is private");
    }
    // `--password-stdin` with no input reads an empty password: refused before any request.
    user.fails(&["login", "--password-stdin"], "password is empty");

    // An invalid spec: exit 1, the problem's detail and every field error.
    let out = user.run(&[
        "experiment",
        "create",
        "-f",
        fixture("invalid-spec.yaml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("HTTP 400"),
        "{err}"
    );
    assert!(err.contains("spec.name"), "{err}");
    assert!(
        err.contains("spec.successCriteria.minCardinalityReduction"),
        "{err}"
    );

    // Create (the spec on standard input), start, watch to the end.
    let spec = std::fs::read_to_string(fixture("aggregated-short.yaml")).unwrap();
    let out = user.run_with_stdin(
        &["experiment", "create", "-f", "-", "--output", "json"],
        &spec,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["spec"]["name"], "aggregated-short");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["status"]["phase"], "pending");
    let started = user.run(&["experiment", "start", &id]);
    assert_eq!(started.status.code(), Some(0), "{}", text(&started.stderr));
    assert!(text(&started.stdout).contains(&id));

    let events = user.watch_json(&id);
    assert!(!events.is_empty());
    let last = events.last().unwrap();
    assert_eq!(last["kind"]["to"], "completed", "{last}");

    // The finished experiment, machine-readable and for people.
    let got = user.json(&["experiment", "get", &id]);
    assert_eq!(got["id"], id.as_str());
    assert_eq!(got["status"]["phase"], "completed");
    let results = &got["status"]["results"];
    assert!(
        results["comparison"]["cardinalityReduction"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    let out = user.run(&["experiment", "get", &id, "--output", "yaml"]);
    let yaml: Value = serde_yaml::from_slice(&out.stdout).unwrap();
    assert_eq!(yaml, got);
    let out = user.run(&["experiment", "get", &id]);
    let table = text(&out.stdout);
    assert!(
        table.contains("phase:") && table.contains("completed"),
        "{table}"
    );
    assert!(table.contains("recommendation:"), "{table}");

    // Watching a finished run returns at once with its outcome.
    let again = user.run(&["experiment", "watch", &id]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert!(text(&again.stdout).contains("completed"));

    // The list holds it, in every format.
    let list = user.json(&["experiment", "list"]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == id.as_str())
    );
    let list = user.json(&["experiment", "list", "--phase", "completed", "--limit", "5"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let out = user.run(&["experiment", "list"]);
    let table = text(&out.stdout);
    assert!(table.starts_with("ID "), "{table}");
    assert!(table.contains(&id), "{table}");

    // The event log and the results on their own.
    let log = user.json(&["experiment", "events", &id]);
    assert_eq!(log.as_array().unwrap().len(), events.len());
    let out = user.run(&["experiment", "events", &id]);
    assert!(
        text(&out.stdout).contains("analyzing -> completed"),
        "{}",
        text(&out.stdout)
    );
    let results = user.json(&["experiment", "results", &id]);
    assert_eq!(results, got["status"]["results"]);
    let out = user.run(&["experiment", "results", &id]);
    assert!(
        text(&out.stdout).contains("recommendation:"),
        "{}",
        text(&out.stdout)
    );

    // Promote the winner: watching it now prints the whole log, the promotion included,
    // up to the server closing the stream (not just up to `completed`).
    let promoted = user.json(&["experiment", "promote", &id]);
    assert_eq!(promoted["status"]["phase"], "promoted", "{promoted}");
    let lines = user.watch_json(&id);
    let log = user.json(&["experiment", "events", &id]);
    assert_eq!(
        &Value::from(lines.clone()),
        &log,
        "every event, once, in order"
    );
    assert_eq!(lines.last().unwrap()["kind"]["to"], "promoted", "{lines:?}");
    let out = user.run(&["experiment", "watch", &id]);
    assert!(
        text(&out.stdout).contains(&format!("{id} ended: promoted")),
        "{}",
        text(&out.stdout)
    );

    // Then roll it back.
    let rolled = user.json(&["experiment", "rollback", &id]);
    assert_eq!(rolled["status"]["phase"], "rolledBack", "{rolled}");
    let watched = user.watch_json(&id);
    let last = watched.last().unwrap();
    assert_eq!(last["kind"]["to"], "rolledBack", "{last}");
    let out = user.run(&["experiment", "promote", &id]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a rolled-back experiment cannot be promoted"
    );
    assert!(
        text(&out.stderr).contains("HTTP 409"),
        "{}",
        text(&out.stderr)
    );

    // A missing experiment: exit 1 and the server's reason.
    user.fails(&["experiment", "get", "exp-zzzzzzzz"], "HTTP 404");

    // A run that fails: watch exits 1 with the reason.
    let failing = user.create("missing-recording.yaml");
    user.start(&failing);
    let out = user.run(&["experiment", "watch", &failing]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("experiment {failing} failed")),
        "{err}"
    );
    assert!(err.contains("recording"), "{err}");

    // A run stopped while it runs: cancelled, and watch exits 1.
    let long = user.create("long-run.yaml");
    user.start(&long);
    // A run that does not end in time: watch --timeout gives up with exit 1.
    let out = user.run(&["experiment", "watch", &long, "--timeout", "1s"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("experiment {long} has not ended after 1s")),
        "{}",
        text(&out.stderr)
    );
    let stopped = user.json(&["experiment", "stop", &long]);
    assert_eq!(stopped["status"]["phase"], "cancelled", "{stopped}");
    user.fails(&["experiment", "watch", &long], "cancelled");

    // A pending experiment: its spec replaced, then deleted.
    let pending = user.create("long-run.yaml");
    let updated = user.json(&[
        "experiment",
        "update",
        &pending,
        "-f",
        fixture("aggregated-short.yaml").to_str().unwrap(),
    ]);
    assert_eq!(updated["spec"]["name"], "aggregated-short", "{updated}");
    assert_eq!(updated["id"], pending.as_str());
    let deleted = user.json(&["experiment", "delete", &pending]);
    assert_eq!(deleted["deleted"], true);
    user.fails(&["experiment", "get", &pending], "HTTP 404");

    // A reader that goes away early (`phoenix experiment list | head -1`): exit 0, quietly.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = user
        .command(&["experiment", "list"])
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));

    // Logged out, commands fail again.
    let out = user.run(&["logout"]);
    assert_eq!(out.status.code(), Some(0));
    user.fails(&["experiment", "get", &id], "not logged in");

    server.stop().unwrap();
}

#[test]
fn whoami_and_users() {
    let server = PhoenixServer::start(ADMIN_PASSWORD).unwrap();
    let admin = User::new(&server);
    admin.login();
    let me = admin.json(&["whoami"]);
    assert_eq!(me["username"], "admin");
    assert_eq!(me["role"], "admin");

    let out = admin.run_with_stdin(
        &[
            "user",
            "create",
            "bob",
            "--role",
            "viewer",
            "--password-stdin",
            "-o",
            "json",
        ],
        "bob-password-1\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let bob: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        bob,
        serde_json::json!({"username": "bob", "role": "viewer"})
    );
    let users = admin.json(&["user", "list"]);
    assert!(users.as_array().unwrap().contains(&bob), "{users}");
    let table = text(&admin.run(&["user", "list"]).stdout);
    assert!(
        table.starts_with("USERNAME") && table.contains("viewer"),
        "{table}"
    );

    // Bob is a viewer: he may look, not create users or experiments.
    let viewer = User::new(&server);
    let out = viewer.run_with_stdin(
        &["login", "-u", "bob", "--password-stdin"],
        "bob-password-1\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(viewer.json(&["whoami"])["role"], "viewer");
    viewer.fails(&["user", "list"], "HTTP 403");
    viewer.fails(
        &[
            "experiment",
            "create",
            "-f",
            fixture("aggregated-short.yaml").to_str().unwrap(),
        ],
        "HTTP 403",
    );
    server.stop().unwrap();
}

#[test]
fn expired_access_tokens_are_refreshed() {
    // A quiet log (warn): `serve` still says where it listens.
    let server = PhoenixServer::start_logging("warn", ADMIN_PASSWORD).unwrap();
    let user = User::new(&server);
    user.login();

    // Age the saved access token: the next command must refresh it and carry on.
    let path = user.config.path().join("credentials.json");
    let mut file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let session = file["servers"][server.url.as_str()]
        .as_object_mut()
        .unwrap();
    session["accessExpiresAt"] = Value::from(0);
    std::fs::write(&path, serde_json::to_string(&file).unwrap()).unwrap();

    let list = user.json(&["experiment", "list"]);
    assert!(list.as_array().unwrap().is_empty());
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let session = &file["servers"][server.url.as_str()];
    assert!(
        session["accessExpiresAt"].as_u64().unwrap() > 0,
        "renewed and saved"
    );

    // An access token the server refuses although it has not expired (a server restarted
    // with another key, say): 401, one refresh, the request again.
    let mut file = file;
    let session = file["servers"][server.url.as_str()]
        .as_object_mut()
        .unwrap();
    session["accessToken"] = Value::from("garbage");
    std::fs::write(&path, serde_json::to_string(&file).unwrap()).unwrap();
    let list = user.json(&["experiment", "list"]);
    assert!(list.as_array().unwrap().is_empty());
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let token = file["servers"][server.url.as_str()]["accessToken"]
        .as_str()
        .unwrap();
    assert_ne!(token, "garbage", "renewed and saved");

    // A refresh token the server refuses: exit 1, asking for a new login.
    let mut file = file;
    let session = file["servers"][server.url.as_str()]
        .as_object_mut()
        .unwrap();
    session["accessExpiresAt"] = Value::from(0);
    session["refreshToken"] = Value::from("not-a-token");
    std::fs::write(&path, serde_json::to_string(&file).unwrap()).unwrap();
    let out = user.run(&["experiment", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("expired") && err.contains("phoenix login"),
        "{err}"
    );

    server.stop().unwrap();
}

#[test]
fn watch_follows_a_run_across_a_server_crash() {
    let dir = tempfile::tempdir().unwrap();
    let server = PhoenixServer::start_in(dir.path(), ADMIN_PASSWORD).unwrap();
    let addr = server.url.trim_start_matches("http://").to_owned();
    let user = User::new(&server);
    user.login();
    let id = user.create("restartable.yaml");
    user.start(&id);
    let mut watcher = user
        .command(&["experiment", "watch", &id, "--output", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the events on a thread, so that no read can hang the test.
    let stdout = watcher.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    // Kill the server outright once the first window is measured (the run is far from over),
    // then start it again on the same address: it resumes the run, and the watcher reconnects.
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("a windowMeasured event within two minutes");
        let measured = line.contains("windowMeasured");
        lines.push(line);
        if measured {
            break;
        }
    }
    server.kill().unwrap();
    let server = PhoenixServer::launch(dir.path(), &addr, "info", ADMIN_PASSWORD).unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = watcher.kill();
                panic!("watch did not end within ten minutes; printed {lines:?}");
            }
        }
    }
    let out = watcher.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("reconnecting"),
        "{}",
        text(&out.stderr)
    );
    let printed: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let log = user.json(&["experiment", "events", &id]);
    assert_eq!(
        Value::from(printed.clone()),
        log,
        "every event once, in order"
    );
    let last = printed.last().unwrap();
    assert_eq!(last["kind"]["to"], "completed", "{last}");
    let got = user.json(&["experiment", "get", &id]);
    assert_eq!(got["status"]["phase"], "completed");
    server.stop().unwrap();
}
