//! The GitOps writer: rendered configs and ConfigMaps written into a local Git working tree at
//! a deterministic layout, then committed with the `git` command line. Pushing is left to the
//! user (or their CI).
//!
//! Layout:
//!
//! ```text
//! experiments/<experiment id>/<variant>.yaml            collector config
//! experiments/<experiment id>/<variant>.configmap.yaml  the same as a v1 ConfigMap
//! targets/<target>/active.yaml                          the promoted config of a target
//! targets/<target>/active.configmap.yaml
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::catalog::Rendered;
use crate::error::{Error, Result};
use crate::kubernetes::ConfigMap;
use crate::validate::validate_pair;

/// Identity used for commits when the repository and the user have none configured.
pub const DEFAULT_AUTHOR: (&str, &str) = ("Phoenix", "phoenix@localhost");

/// A Git working tree that receives rendered configs.
#[derive(Debug, Clone)]
pub struct GitOpsRepo {
    root: PathBuf,
    namespace: Option<String>,
}

/// A commit made by the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The commit hash, or `None` when the files were already up to date.
    pub hash: Option<String>,
    /// The files written, relative to the working tree.
    pub files: Vec<PathBuf>,
    /// The commit message.
    pub message: String,
}

impl GitOpsRepo {
    /// Opens the working tree at `root` (which must already be a Git working tree).
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let repo = Self {
            root: root.into(),
            namespace: None,
        };
        let inside = repo.git(&["rev-parse", "--is-inside-work-tree"])?;
        if inside.trim() != "true" {
            return Err(Error::Git {
                command: "rev-parse".to_owned(),
                message: format!("{} is not a Git working tree", repo.root.display()),
            });
        }
        Ok(repo)
    }

    /// Creates a new repository at `root` (`git init`) and opens it.
    pub fn init(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|source| Error::Io {
            path: root.clone(),
            source,
        })?;
        let repo = Self {
            root,
            namespace: None,
        };
        repo.git(&["init", "--quiet"])?;
        Ok(repo)
    }

    /// ConfigMaps get this namespace.
    #[must_use]
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// The working tree.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes both variants of an experiment and commits them. Refuses two variants of
    /// different experiments, the same variant twice, or variants that would bind the same port
    /// on one node.
    pub fn publish_experiment(&self, baseline: &Rendered, candidate: &Rendered) -> Result<Commit> {
        if baseline.experiment_id() != candidate.experiment_id() {
            return Err(Error::Config {
                path: "experimentId".to_owned(),
                message: format!(
                    "the variants belong to different experiments: {} and {}",
                    baseline.experiment_id(),
                    candidate.experiment_id()
                ),
            });
        }
        if baseline.variant() == candidate.variant() {
            return Err(Error::Config {
                path: "variant".to_owned(),
                message: format!("both configs are the {} variant", baseline.variant()),
            });
        }
        let clashes = validate_pair(&baseline.config, &candidate.config);
        if !clashes.is_empty() {
            return Err(Error::Invalid(clashes));
        }
        let mut files = self.write_variant(baseline)?;
        files.extend(self.write_variant(candidate)?);
        let message = format!(
            "phoenix: experiment {}: {} {}, {} {}",
            baseline.experiment_id(),
            baseline.variant(),
            baseline.template(),
            candidate.variant(),
            candidate.template()
        );
        self.commit(files, message)
    }

    /// Writes `rendered` as the active config of `target` and commits it.
    pub fn promote(&self, target: &str, rendered: &Rendered) -> Result<Commit> {
        check_segment("target", target)?;
        let dir = PathBuf::from("targets").join(target);
        let files = self.write_pair(&dir, "active", rendered)?;
        let message = format!(
            "phoenix: promote {} ({} {}) to {target}",
            rendered.experiment_id(),
            rendered.variant(),
            rendered.template()
        );
        self.commit(files, message)
    }

    /// Writes one variant's config and ConfigMap (no commit); returns the relative paths.
    pub fn write_variant(&self, rendered: &Rendered) -> Result<Vec<PathBuf>> {
        check_segment("experimentId", rendered.experiment_id())?;
        let dir = PathBuf::from("experiments").join(rendered.experiment_id());
        self.write_pair(&dir, rendered.variant().as_str(), rendered)
    }

    fn write_pair(&self, dir: &Path, stem: &str, rendered: &Rendered) -> Result<Vec<PathBuf>> {
        let config = dir.join(format!("{stem}.yaml"));
        let config_map = dir.join(format!("{stem}.configmap.yaml"));
        self.write(&config, &rendered.to_yaml()?)?;
        let cm = ConfigMap::for_rendered(rendered, self.namespace.as_deref())?;
        self.write(&config_map, &cm.to_yaml()?)?;
        Ok(vec![config, config_map])
    }

    fn write(&self, relative: &Path, text: &str) -> Result<()> {
        self.refuse_symlinks(relative)?;
        let path = self.root.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| Error::Io {
                path: parent.to_owned(),
                source,
            })?;
        }
        std::fs::write(&path, text).map_err(|source| Error::Io { path, source })
    }

    /// Refuses a path whose existing components below the root (the file included) are
    /// symbolic links, so that nothing is written outside the working tree.
    fn refuse_symlinks(&self, relative: &Path) -> Result<()> {
        let mut path = self.root.clone();
        for component in relative.components() {
            match component {
                std::path::Component::Normal(part) => path.push(part),
                _ => {
                    return Err(Error::Config {
                        path: relative.display().to_string(),
                        message: "the path must be relative and plain".to_owned(),
                    });
                }
            }
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(Error::Config {
                        path: relative.display().to_string(),
                        message: format!(
                            "{} is a symbolic link; refusing to write through it",
                            path.display()
                        ),
                    });
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(source) => return Err(Error::Io { path, source }),
            }
        }
        Ok(())
    }

    /// Stages `files` and commits them with `message`; nothing is committed when they did not
    /// change.
    pub fn commit(&self, files: Vec<PathBuf>, message: String) -> Result<Commit> {
        let paths: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        let mut add = vec!["add", "--"];
        add.extend(paths.iter().map(String::as_str));
        self.git(&add)?;
        let mut diff = vec!["diff", "--cached", "--quiet", "--"];
        diff.extend(paths.iter().map(String::as_str));
        let unchanged = self.git_status(&diff)?;
        if unchanged {
            return Ok(Commit {
                hash: None,
                files,
                message,
            });
        }
        let mut commit = vec!["commit", "--quiet", "-m", message.as_str(), "--"];
        commit.extend(paths.iter().map(String::as_str));
        if let Err(e) = self.git(&commit) {
            // Leave the index as it was: unstage what was added.
            let has_head = self.git_status(&["rev-parse", "--verify", "--quiet", "HEAD"]);
            let mut unstage = if matches!(has_head, Ok(true)) {
                vec!["reset", "--quiet", "--"]
            } else {
                vec!["rm", "--cached", "--quiet", "--ignore-unmatch", "--"]
            };
            unstage.extend(paths.iter().map(String::as_str));
            // The commit's error is what the user needs; a failing unstage adds nothing to it.
            let _ = self.git(&unstage);
            return Err(e);
        }
        let hash = self.git(&["rev-parse", "HEAD"])?.trim().to_owned();
        Ok(Commit {
            hash: Some(hash),
            files,
            message,
        })
    }

    /// `git -C <root> [identity defaults] <args>`; the output, or an error with git's message.
    fn git(&self, args: &[&str]) -> Result<String> {
        let output = self.command(args)?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(git_error(args, &output))
        }
    }

    /// Runs git and returns whether it exited 0 (1 is `false`; anything else is an error).
    fn git_status(&self, args: &[&str]) -> Result<bool> {
        let output = self.command(args)?;
        match output.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(git_error(args, &output)),
        }
    }

    fn command(&self, args: &[&str]) -> Result<std::process::Output> {
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(&self.root);
        if args.first() == Some(&"commit") {
            for (key, default) in [
                ("user.name", DEFAULT_AUTHOR.0),
                ("user.email", DEFAULT_AUTHOR.1),
            ] {
                if !self.has_config(key) {
                    cmd.arg("-c").arg(format!("{key}={default}"));
                }
            }
        }
        cmd.args(args);
        cmd.output().map_err(|e| Error::Git {
            command: args.first().copied().unwrap_or_default().to_owned(),
            message: format!("cannot run git: {e}"),
        })
    }

    fn has_config(&self, key: &str) -> bool {
        Command::new("git")
            .arg("-C")
            .arg(&self.root)
            .args(["config", "--get", key])
            .output()
            .is_ok_and(|o| o.status.success() && !o.stdout.trim_ascii().is_empty())
    }
}

fn git_error(args: &[&str], output: &std::process::Output) -> Error {
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    Error::Git {
        command: args.first().copied().unwrap_or_default().to_owned(),
        message: if stderr.is_empty() { stdout } else { stderr },
    }
}

/// A path segment chosen by the user: lowercase letters, digits, `.`, `_`, `-`; not starting
/// with `.` (so neither `.`, `..` nor `.git`).
fn check_segment(field: &str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && !value.starts_with('.')
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Parameter {
            field: field.to_owned(),
            message: format!(
                "`{value}` must be lowercase letters, digits, `.`, `_` or `-`, not starting with `.` (it becomes a directory name)"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{TemplateId, render_template};

    fn rendered(t: TemplateId, variant: &str) -> Rendered {
        let mut params = serde_json::Map::new();
        params.insert("experimentId".into(), "exp-abc12345".into());
        params.insert("variant".into(), variant.into());
        render_template(t, &params).unwrap()
    }

    fn repo() -> (tempfile::TempDir, GitOpsRepo) {
        let dir = tempfile::tempdir().unwrap();
        let repo = GitOpsRepo::init(dir.path()).unwrap();
        repo.git(&["config", "commit.gpgsign", "false"]).unwrap();
        (dir, repo)
    }

    #[test]
    fn publishes_an_experiment_and_promotes_the_winner() {
        let (_dir, repo) = repo();
        let baseline = rendered(TemplateId::Baseline, "baseline");
        let candidate = rendered(TemplateId::Aggregated, "candidate");
        let commit = repo.publish_experiment(&baseline, &candidate).unwrap();
        assert!(commit.hash.is_some());
        let names: Vec<String> = commit
            .files
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "experiments/exp-abc12345/baseline.yaml",
                "experiments/exp-abc12345/baseline.configmap.yaml",
                "experiments/exp-abc12345/candidate.yaml",
                "experiments/exp-abc12345/candidate.configmap.yaml",
            ]
        );
        let text = std::fs::read_to_string(repo.root().join(&commit.files[2])).unwrap();
        assert_eq!(
            crate::config::Config::from_yaml(&text).unwrap(),
            candidate.config
        );
        let log = repo.git(&["log", "--format=%s"]).unwrap();
        assert!(log.contains("experiment exp-abc12345"), "{log}");

        // Writing the same thing again commits nothing.
        let again = repo.publish_experiment(&baseline, &candidate).unwrap();
        assert_eq!(again.hash, None);

        let promoted = repo.promote("prod-nodes", &candidate).unwrap();
        assert!(promoted.hash.is_some());
        assert!(repo.root().join("targets/prod-nodes/active.yaml").exists());
        assert!(repo.promote("../etc", &candidate).is_err());
    }

    #[test]
    fn refuses_hidden_segments_and_symlinks() {
        let (_dir, repo) = repo();
        let candidate = rendered(TemplateId::Baseline, "candidate");
        for bad in [".git", ".hidden", ".", ".."] {
            let err = repo.promote(bad, &candidate).unwrap_err().to_string();
            assert!(err.contains("target"), "{bad}: {err}");
        }
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), repo.root().join("targets")).unwrap();
        let err = repo.promote("prod", &candidate).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        // A link deeper down is refused too.
        std::fs::remove_file(repo.root().join("targets")).unwrap();
        std::fs::create_dir_all(repo.root().join("targets")).unwrap();
        std::os::unix::fs::symlink(outside.path(), repo.root().join("targets/prod")).unwrap();
        assert!(repo.promote("prod", &candidate).is_err());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_failed_commit_leaves_the_index_as_it_was() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, repo) = repo();
        let candidate = rendered(TemplateId::Baseline, "candidate");
        let hook = repo.root().join(".git/hooks/pre-commit");
        std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
        std::fs::write(&hook, "#!/bin/sh\nexit 1\n").unwrap();
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(repo.promote("prod", &candidate).is_err());
        let staged = repo.git(&["diff", "--cached", "--name-only"]).unwrap();
        assert_eq!(staged.trim(), "", "still staged: {staged}");
        // With a first commit in place, the reset path is taken.
        std::fs::remove_file(&hook).unwrap();
        repo.promote("prod", &candidate).unwrap();
        std::fs::write(&hook, "#!/bin/sh\nexit 1\n").unwrap();
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        let other = rendered(TemplateId::TopK, "candidate");
        assert!(repo.promote("prod", &other).is_err());
        let staged = repo.git(&["diff", "--cached", "--name-only"]).unwrap();
        assert_eq!(staged.trim(), "", "still staged: {staged}");
    }

    #[test]
    fn refuses_clashing_variants() {
        let (_dir, repo) = repo();
        let a = rendered(TemplateId::Baseline, "candidate");
        let b = rendered(TemplateId::TopK, "candidate");
        assert!(repo.publish_experiment(&a, &b).is_err());
    }

    #[test]
    fn open_refuses_a_plain_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(GitOpsRepo::open(dir.path()).is_err());
    }
}
