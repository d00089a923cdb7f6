//! The active collector pipeline of each target, with its history, so that a promotion can
//! be rolled back to the pipeline it replaced.
//!
//! Every [`PipelineStore::activate`] adds a revision (numbered from 1 per target) and makes it
//! the active one; the one it replaces becomes [`RevisionState::Superseded`].
//! [`PipelineStore::rollback`] marks the active revision [`RevisionState::RolledBack`] and
//! makes the newest earlier revision that was not rolled back active again — the one that
//! was active before it. Rolling back repeatedly walks further back.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use phoenix_core::experiment::{ExperimentId, Target};
use phoenix_core::measurement::VariantRole;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Result};

/// Where a pipeline runs: written `local` or `k8s/<namespace>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PipelineTarget {
    /// This host: the local executor.
    Local,
    /// A Kubernetes namespace.
    Kubernetes {
        /// The namespace.
        namespace: String,
    },
}

const KUBERNETES_PREFIX: &str = "k8s/";

impl fmt::Display for PipelineTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local => f.write_str("local"),
            Self::Kubernetes { namespace } => write!(f, "{KUBERNETES_PREFIX}{namespace}"),
        }
    }
}

impl FromStr for PipelineTarget {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        if s == "local" {
            return Ok(Self::Local);
        }
        let invalid = |message: &str| Error::InvalidTarget {
            text: s.to_owned(),
            message: message.to_owned(),
        };
        let namespace = s
            .strip_prefix(KUBERNETES_PREFIX)
            .ok_or_else(|| invalid("expected `local` or `k8s/<namespace>`"))?;
        let label_ok = (1..=63).contains(&namespace.len())
            && namespace
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !namespace.starts_with('-')
            && !namespace.ends_with('-');
        if !label_ok {
            return Err(invalid(
                "the namespace must be 1-63 lowercase letters, digits and dashes, starting and ending with a letter or digit",
            ));
        }
        Ok(Self::Kubernetes {
            namespace: namespace.to_owned(),
        })
    }
}

impl From<&Target> for PipelineTarget {
    fn from(target: &Target) -> Self {
        match target {
            Target::Local => Self::Local,
            Target::Kubernetes { namespace, .. } => Self::Kubernetes {
                namespace: namespace.clone(),
            },
        }
    }
}

impl Serialize for PipelineTarget {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PipelineTarget {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Where an activated pipeline came from: a variant of an experiment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineOrigin {
    /// The experiment.
    pub experiment_id: ExperimentId,
    /// Which of its variants.
    pub variant: VariantRole,
}

/// Where a revision stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RevisionState {
    /// The target's pipeline now; at most one revision per target.
    Active,
    /// Replaced by a later activation; a rollback may restore it.
    Superseded,
    /// Undone by a rollback; never restored again.
    RolledBack,
}

impl RevisionState {
    /// Every state.
    pub const ALL: [Self; 3] = [Self::Active, Self::Superseded, Self::RolledBack];

    /// The state as written in APIs and stores: `active`, `superseded`, `rolledBack`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Superseded => "superseded",
            Self::RolledBack => "rolledBack",
        }
    }

    /// The state written as [`RevisionState::as_str`] writes it.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for RevisionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One activation of a pipeline config on a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineRevision {
    /// The target.
    pub target: PipelineTarget,
    /// Numbered from 1 per target, in activation order.
    pub revision: u64,
    /// The collector config, as YAML.
    pub config: String,
    /// The experiment variant it came from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<PipelineOrigin>,
    /// Where it stands.
    pub state: RevisionState,
    /// When it was activated.
    pub created_at: DateTime<Utc>,
    /// When its state last changed.
    pub updated_at: DateTime<Utc>,
}

/// Why a rollback has nothing to restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RollbackGap {
    /// The target has no active revision.
    NoActivePipeline,
    /// Every earlier revision of the target was rolled back already, or there is none.
    NoEarlierPipeline,
}

impl fmt::Display for RollbackGap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoActivePipeline => "it has no active pipeline",
            Self::NoEarlierPipeline => "no earlier pipeline is left to restore",
        })
    }
}

impl PipelineTarget {
    /// Checks that the target reads back from its text form, [`PipelineTarget::from_str`]'s
    /// rules: a [`PipelineTarget::Kubernetes`] namespace built in code may be anything, but
    /// only a valid one can be stored and read back.
    ///
    /// Fails with [`Error::InvalidTarget`].
    pub fn validate(&self) -> Result<()> {
        self.to_string().parse::<Self>().map(drop)
    }
}

/// Refuses, before anything is written, a target that cannot be stored and read back and a
/// config that is empty, only whitespace, or holds a NUL character (which PostgreSQL text
/// cannot store). Shared by every backend's `activate`.
pub(crate) fn check_activation(target: &PipelineTarget, config: &str) -> Result<()> {
    target.validate()?;
    let invalid = |message: &str| {
        Err(Error::InvalidPipeline {
            target: target.clone(),
            message: message.to_owned(),
        })
    };
    if config.trim().is_empty() {
        return invalid("the config is empty");
    }
    if config.contains('\0') {
        return invalid("the config contains a NUL character, which cannot be stored");
    }
    Ok(())
}

/// Keeps each target's active pipeline and its history.
///
/// Errors: [`Error::InvalidTarget`] for a target that fails [`PipelineTarget::validate`]
/// (checked before anything is written), [`Error::InvalidPipeline`],
/// [`Error::NothingToRollBack`], and
/// [`Error::Database`] for anything the backend reports.
#[async_trait]
pub trait PipelineStore: Send + Sync {
    /// Makes `config` the target's active pipeline as a new revision, superseding the active
    /// one; returns the new revision.
    async fn activate(
        &self,
        target: &PipelineTarget,
        config: &str,
        origin: Option<&PipelineOrigin>,
    ) -> Result<PipelineRevision>;

    /// The target's active revision, if it has one.
    async fn active(&self, target: &PipelineTarget) -> Result<Option<PipelineRevision>>;

    /// Every revision of the target, newest first.
    async fn history(&self, target: &PipelineTarget) -> Result<Vec<PipelineRevision>>;

    /// Rolls the active revision back and makes the previously active one active again;
    /// returns the restored revision. Fails with [`Error::NothingToRollBack`], changing
    /// nothing, when there is no active revision or no earlier one to restore.
    async fn rollback(&self, target: &PipelineTarget) -> Result<PipelineRevision>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_round_trip_as_text() {
        for text in ["local", "k8s/default", "k8s/team-a1"] {
            let target: PipelineTarget = text.parse().unwrap();
            assert_eq!(target.to_string(), text);
        }
        for bad in ["", "k8s/", "k8s/-a", "k8s/A", "kubernetes/x", "Local"] {
            let err = bad.parse::<PipelineTarget>().unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn targets_built_in_code_are_validated() {
        assert!(PipelineTarget::Local.validate().is_ok());
        let good = PipelineTarget::Kubernetes {
            namespace: "team-a".into(),
        };
        assert!(good.validate().is_ok());
        for namespace in ["", "Team", "a/b", "-a", "a\0b", &"a".repeat(64)] {
            let target = PipelineTarget::Kubernetes {
                namespace: namespace.to_owned(),
            };
            let err = target.validate().unwrap_err();
            assert!(matches!(err, Error::InvalidTarget { .. }), "{err}");
        }
    }

    #[test]
    fn activations_are_checked_before_writing() {
        let local = PipelineTarget::Local;
        assert!(check_activation(&local, "receivers: {}").is_ok());
        for config in ["", " \n\t", "receivers: {}\0"] {
            let err = check_activation(&local, config).unwrap_err();
            assert!(matches!(err, Error::InvalidPipeline { .. }), "{err}");
        }
        let bad = PipelineTarget::Kubernetes {
            namespace: "Bad Namespace".into(),
        };
        let err = check_activation(&bad, "receivers: {}").unwrap_err();
        assert!(matches!(err, Error::InvalidTarget { .. }), "{err}");
    }

    #[test]
    fn targets_follow_experiment_targets() {
        let target = Target::Kubernetes {
            namespace: "perf".into(),
            node_selector: Default::default(),
        };
        assert_eq!(PipelineTarget::from(&target).to_string(), "k8s/perf");
        assert_eq!(PipelineTarget::from(&Target::Local), PipelineTarget::Local);
    }

    #[test]
    fn states_round_trip_as_text() {
        for state in RevisionState::ALL {
            assert_eq!(RevisionState::parse(state.as_str()), Some(state));
        }
        assert_eq!(RevisionState::parse("gone"), None);
    }
}
