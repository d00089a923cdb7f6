//! Rows of the user and pipeline tables, shared by the SQLite and PostgreSQL stores.

use phoenix_core::measurement::VariantRole;

use crate::pipeline::{PipelineOrigin, PipelineRevision, RevisionState};
use crate::record::from_nanos;
use crate::user::User;
use crate::{Error, Result};

/// A row of the `users` table.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct UserRow {
    pub name: String,
    pub password_hash: String,
    pub role: String,
    pub disabled: bool,
    pub created_at_ns: i64,
    pub updated_at_ns: i64,
}

impl UserRow {
    pub fn decode(self) -> Result<User> {
        let role = self
            .role
            .parse()
            .map_err(|e: Error| Error::corrupt(format!("user {:?}", self.name), e))?;
        Ok(User {
            role,
            name: self.name,
            password_hash: self.password_hash,
            disabled: self.disabled,
            created_at: from_nanos(self.created_at_ns),
            updated_at: from_nanos(self.updated_at_ns),
        })
    }
}

/// A row of the `pipeline_revisions` table.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RevisionRow {
    pub target: String,
    pub revision: i64,
    pub config: String,
    pub experiment_id: Option<String>,
    pub variant: Option<String>,
    pub state: String,
    pub created_at_ns: i64,
    pub updated_at_ns: i64,
}

impl RevisionRow {
    pub fn decode(self) -> Result<PipelineRevision> {
        let what = || {
            format!(
                "pipeline revision {} of target {:?}",
                self.revision, self.target
            )
        };
        let target = self.target.parse().map_err(|e| Error::corrupt(what(), e))?;
        let revision = u64::try_from(self.revision)
            .map_err(|_| Error::corrupt(what(), "negative revision number"))?;
        let state = RevisionState::parse(&self.state)
            .ok_or_else(|| Error::corrupt(what(), format!("unknown state {:?}", self.state)))?;
        let origin = match (&self.experiment_id, &self.variant) {
            (Some(id), Some(variant)) => Some(PipelineOrigin {
                experiment_id: id.parse().map_err(|e| Error::corrupt(what(), e))?,
                variant: parse_variant(variant).ok_or_else(|| {
                    Error::corrupt(what(), format!("unknown variant {variant:?}"))
                })?,
            }),
            (None, None) => None,
            _ => return Err(Error::corrupt(what(), "an experiment id without a variant")),
        };
        Ok(PipelineRevision {
            target,
            revision,
            config: self.config,
            origin,
            state,
            created_at: from_nanos(self.created_at_ns),
            updated_at: from_nanos(self.updated_at_ns),
        })
    }
}

fn parse_variant(text: &str) -> Option<VariantRole> {
    VariantRole::BOTH.into_iter().find(|v| v.as_str() == text)
}

/// The `experiment_id` and `variant` columns for an origin.
pub(crate) fn origin_columns(
    origin: Option<&PipelineOrigin>,
) -> (Option<&str>, Option<&'static str>) {
    match origin {
        Some(o) => (Some(o.experiment_id.as_str()), Some(o.variant.as_str())),
        None => (None, None),
    }
}
