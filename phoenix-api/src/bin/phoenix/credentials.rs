//! The token file: the sessions `phoenix login` opened, one per server, readable by the user
//! alone.
//!
//! It lives at `$PHOENIX_CONFIG_DIR/credentials.json` when that variable is set, else at
//! `$XDG_CONFIG_HOME/phoenix/credentials.json`, else at `$HOME/.config/phoenix/credentials.json`.
//! The file is written with mode 0600 (its directory 0700), replaced atomically (a fresh
//! temporary file in the same directory, renamed over it). Changes are read-modify-write
//! under an advisory lock on `credentials.json.lock` beside it, so that two commands
//! refreshing tokens at once do not lose each other's sessions.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// The file's name inside the config directory.
const FILE_NAME: &str = "credentials.json";

/// The lock file's name inside the config directory.
const LOCK_NAME: &str = "credentials.json.lock";

/// One server's tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// Who logged in.
    pub username: String,
    /// The bearer token sent with requests.
    pub access_token: String,
    /// The token that buys a new access token.
    pub refresh_token: String,
    /// When the access token expires, in Unix seconds.
    pub access_expires_at: u64,
}

impl Session {
    /// Whether the access token has expired or will within `margin_secs`.
    pub fn access_expired(&self, margin_secs: u64) -> bool {
        unix_now().saturating_add(margin_secs) >= self.access_expires_at
    }
}

/// The whole file.
#[derive(Debug, Default, Serialize, Deserialize)]
struct CredentialFile {
    /// Sessions by server URL.
    #[serde(default)]
    servers: BTreeMap<String, Session>,
}

/// The token file of this user.
#[derive(Debug, Clone)]
pub struct Credentials {
    path: PathBuf,
}

impl Credentials {
    /// The file in the user's config directory (see the module docs).
    pub fn locate() -> Result<Self> {
        let dir = config_dir(|name| std::env::var_os(name))?;
        Ok(Self {
            path: dir.join(FILE_NAME),
        })
    }

    /// The token file at `path`.
    #[cfg(test)]
    pub fn at(path: PathBuf) -> Self {
        Self { path }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The session kept for `server`, if any.
    pub fn get(&self, server: &str) -> Result<Option<Session>> {
        Ok(self.read()?.servers.remove(&server_key(server)))
    }

    /// Keeps `session` for `server`, replacing an earlier one.
    pub fn put(&self, server: &str, session: Session) -> Result<()> {
        self.update(|file| {
            file.servers.insert(server_key(server), session);
            ((), true)
        })
    }

    /// Forgets the session for `server`; whether there was one.
    pub fn remove(&self, server: &str) -> Result<bool> {
        self.update(|file| {
            let had = file.servers.remove(&server_key(server)).is_some();
            (had, had)
        })
    }

    /// Reads the file, applies `change` and writes the file back when `change` says it
    /// changed it, all under the lock.
    fn update<R>(&self, change: impl FnOnce(&mut CredentialFile) -> (R, bool)) -> Result<R> {
        let dir = self.dir()?;
        create_private_dir(dir)?;
        let lock_path = dir.join(LOCK_NAME);
        let lock = open_private(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        lock.lock()
            .with_context(|| format!("cannot lock {}", lock_path.display()))?;
        let mut file = self.read()?;
        let (result, changed) = change(&mut file);
        if changed {
            self.write(&file)?;
        }
        // Closing the file releases the lock; unlocking first reports nothing more.
        drop(lock);
        Ok(result)
    }

    fn dir(&self) -> Result<&Path> {
        self.path
            .parent()
            .context("the token file has no parent directory")
    }

    fn read(&self) -> Result<CredentialFile> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not a valid token file; delete it and log in again",
                    self.path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CredentialFile::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", self.path.display())),
        }
    }

    /// Replaces the file: a new temporary file (mode 0600) in the same directory, renamed
    /// over the old one.
    fn write(&self, file: &CredentialFile) -> Result<()> {
        let dir = self.dir()?;
        let text = serde_json::to_string_pretty(file).context("cannot encode the token file")?;
        let result = (|| -> std::io::Result<()> {
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            make_private(tmp.as_file())?;
            tmp.write_all(text.as_bytes())?;
            tmp.as_file().sync_all()?;
            tmp.persist(&self.path).map_err(|e| e.error)?;
            Ok(())
        })();
        result.with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// The servers' URLs are compared without a trailing slash.
fn server_key(server: &str) -> String {
    server.trim_end_matches('/').to_owned()
}

/// The config directory from the environment (`var` looks a variable up).
fn config_dir(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Result<PathBuf> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set("PHOENIX_CONFIG_DIR") {
        return Ok(dir);
    }
    if let Some(dir) = set("XDG_CONFIG_HOME") {
        return Ok(dir.join("phoenix"));
    }
    if let Some(home) = set("HOME") {
        return Ok(home.join(".config").join("phoenix"));
    }
    bail!("cannot find a config directory: set PHOENIX_CONFIG_DIR, XDG_CONFIG_HOME or HOME")
}

/// The current time in Unix seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// Opens (creating) a file readable by the user alone.
#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    make_private(&file)?;
    Ok(file)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// Mode 0600: a file left over with looser permissions keeps them through `open`.
#[cfg(unix)]
fn make_private(file: &File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn make_private(_file: &File) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(token: &str) -> Session {
        Session {
            username: "alice".to_owned(),
            access_token: token.to_owned(),
            refresh_token: "r".to_owned(),
            access_expires_at: unix_now() + 3600,
        }
    }

    #[test]
    fn sessions_round_trip_per_server() {
        let dir = tempfile::tempdir().unwrap();
        let creds = Credentials {
            path: dir.path().join("sub").join(FILE_NAME),
        };
        assert_eq!(creds.get("http://a").unwrap(), None);
        creds.put("http://a/", session("1")).unwrap();
        creds.put("http://b", session("2")).unwrap();
        assert_eq!(creds.get("http://a").unwrap(), Some(session("1")));
        assert!(creds.remove("http://a").unwrap());
        assert!(!creds.remove("http://a").unwrap());
        assert_eq!(creds.get("http://b").unwrap(), Some(session("2")));
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, "{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let creds = Credentials { path: path.clone() };
        creds.put("http://a", session("1")).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn concurrent_updates_keep_every_session() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let creds = Credentials { path: path.clone() };
                std::thread::spawn(move || {
                    for j in 0..10 {
                        creds
                            .put(&format!("http://s{i}-{j}"), session(&i.to_string()))
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let creds = Credentials { path };
        for i in 0..8 {
            for j in 0..10 {
                assert!(creds.get(&format!("http://s{i}-{j}")).unwrap().is_some());
            }
        }
        // Only the file and its lock remain: no temporary file is left behind.
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [FILE_NAME, LOCK_NAME]);
    }

    #[test]
    fn expiry_counts_the_margin() {
        let mut s = session("1");
        assert!(!s.access_expired(60));
        s.access_expires_at = unix_now() + 30;
        assert!(s.access_expired(60));
    }

    #[test]
    fn the_config_dir_follows_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        assert_eq!(
            config_dir(env(&[("PHOENIX_CONFIG_DIR", "/p"), ("HOME", "/h")])).unwrap(),
            PathBuf::from("/p")
        );
        assert_eq!(
            config_dir(env(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")])).unwrap(),
            PathBuf::from("/x/phoenix")
        );
        assert_eq!(
            config_dir(env(&[("XDG_CONFIG_HOME", ""), ("HOME", "/h")])).unwrap(),
            PathBuf::from("/h/.config/phoenix")
        );
        assert!(config_dir(env(&[])).is_err());
    }
}
