//! The `phoenix` binary for end-to-end tests: `phoenix serve` on a free loopback port
//! (`--bind 127.0.0.1:0`) with a SQLite store in a directory the test owns, its address read
//! from the `listening on http://ADDR` log line, SIGTERM for a graceful stop, and a kill when
//! the test drops it without stopping it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_phoenix");
/// The JWT secret the servers are started with.
pub const JWT_SECRET: &str = "end-to-end-tests-secret-of-at-least-thirty-two-bytes";

/// A running `phoenix serve`.
pub struct PhoenixServer {
    child: Child,
    /// Every line the server logged so far, shown when it fails to stop.
    log: Arc<Mutex<Vec<String>>>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The directory holding the database, the server's working directory.
    pub dir: PathBuf,
    /// The temporary directory, when the server made its own.
    _temp: Option<tempfile::TempDir>,
}

impl PhoenixServer {
    /// A server with a fresh database in a temporary directory; the bootstrap admin's
    /// password is `admin_password`.
    pub fn start(admin_password: &str) -> Result<Self> {
        Self::start_logging("info", admin_password)
    }

    /// [`start`](Self::start), with the log filter `log` (`RUST_LOG`).
    pub fn start_logging(log: &str, admin_password: &str) -> Result<Self> {
        let temp = tempfile::tempdir()?;
        let mut server = Self::launch(temp.path(), "127.0.0.1:0", log, admin_password)?;
        server._temp = Some(temp);
        Ok(server)
    }

    /// A server on the database `phoenix.db` in `dir` (which may hold one from a previous
    /// server, to test restarts).
    pub fn start_in(dir: &Path, admin_password: &str) -> Result<Self> {
        Self::launch(dir, "127.0.0.1:0", "info", admin_password)
    }

    /// A server listening on `bind` with its store in `dir`, logging at `log` (`RUST_LOG`).
    pub fn launch(dir: &Path, bind: &str, log: &str, admin_password: &str) -> Result<Self> {
        let db = format!("sqlite://{}", dir.join("phoenix.db").display());
        let mut child = Command::new(BIN)
            .args(["serve", "--bind", bind, "--database", &db])
            .current_dir(dir)
            .env("PHOENIX_ADMIN_PASSWORD", admin_password)
            .env("PHOENIX_JWT_SECRET", JWT_SECRET)
            .env_remove("PHOENIX_JWT_SECRET_FILE")
            .env_remove("PHOENIX_GITOPS_REPO")
            .env_remove("PHOENIX_BIND")
            .env_remove("PHOENIX_DATABASE_URL")
            .env("RUST_LOG", log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        // Read the log on a thread for the whole run, so that the pipe never fills up.
        let stderr = child
            .stderr
            .take()
            .context("the server's stderr is piped")?;
        let (tx, rx) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut lines) = lines.lock() {
                    lines.push(line.clone());
                }
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(rest.trim().to_owned());
                }
            }
        });
        // From here on, dropping `server` kills the child.
        let mut server = Self {
            child,
            log,
            url: String::new(),
            dir: dir.to_path_buf(),
            _temp: None,
        };
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .context("the server logs `listening on http://ADDR`")?;
        ensure!(url.starts_with("http://127.0.0.1:"), "{url}");
        server.url = url;
        Ok(server)
    }

    /// An access token for `username`, from `POST /api/v1/auth/login`.
    pub fn login(&self, username: &str, password: &str) -> Result<String> {
        let body = serde_json::json!({"username": username, "password": password});
        let mut response = ureq::post(format!("{}/api/v1/auth/login", self.url)).send_json(body)?;
        let tokens: serde_json::Value = response.body_mut().read_json()?;
        tokens["access_token"]
            .as_str()
            .map(str::to_owned)
            .context("the login answer has an access_token")
    }

    /// Sends SIGTERM and waits for a clean exit (status 0) within 30 s.
    pub fn stop(mut self) -> Result<()> {
        kill(
            Pid::from_raw(i32::try_from(self.child.id())?),
            Signal::SIGTERM,
        )?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                ensure!(status.success(), "graceful shutdown exits 0: {status}");
                return Ok(());
            }
            if Instant::now() > deadline {
                let log = self.log.lock().map(|l| l.join("\n")).unwrap_or_default();
                bail!("the server did not stop within 30 s of SIGTERM; its log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server (SIGKILL) and waits for it, as a crash would end it.
    pub fn kill(mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for PhoenixServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
