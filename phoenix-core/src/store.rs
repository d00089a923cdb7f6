//! Where experiments are kept: the [`ExperimentStore`] trait.
//!
//! Implementations live in `phoenix-store` (in-memory, SQLite, PostgreSQL). Every change is
//! written together with an event, so the event log is a complete history, and updates are
//! guarded by the experiment's version so that concurrent writers never lose each other's
//! changes.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::Result;
use crate::experiment::{Experiment, ExperimentEvent, ExperimentId};
use crate::phase::Phase;

/// The most experiments one [`ListQuery`] may ask for.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Keeps experiments and their event logs.
///
/// Errors: [`Error::NotFound`](crate::Error::NotFound) for an unknown id,
/// [`Error::AlreadyExists`](crate::Error::AlreadyExists) when creating an existing id,
/// [`Error::Conflict`](crate::Error::Conflict) for a stale update, and
/// [`Error::Store`](crate::Error::Store) for anything the backend reports.
#[async_trait]
pub trait ExperimentStore: Send + Sync {
    /// Stores a new experiment with its first event, atomically.
    async fn create(&self, experiment: &Experiment, event: &ExperimentEvent) -> Result<()>;

    /// The experiment with this id.
    async fn get(&self, id: &ExperimentId) -> Result<Experiment>;

    /// Experiments matching the query, oldest first (by creation time, then id).
    async fn list(&self, query: &ListQuery) -> Result<Page>;

    /// Replaces the stored experiment with `experiment` and appends `event`, atomically, if
    /// the stored version equals `experiment.version`; returns what was stored, with the
    /// version incremented. A stale version fails with `Conflict` and changes nothing.
    async fn update(&self, experiment: &Experiment, event: &ExperimentEvent) -> Result<Experiment>;

    /// Appends an event that changes no data.
    async fn append_event(&self, event: &ExperimentEvent) -> Result<()>;

    /// The experiment's events in the order they were written.
    async fn events(&self, id: &ExperimentId) -> Result<Vec<ExperimentEvent>>;

    /// Removes the experiment and its events.
    async fn delete(&self, id: &ExperimentId) -> Result<()>;
}

/// Which experiments to list, and which page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Only experiments in this phase.
    pub phase: Option<Phase>,
    /// Only experiments of this owner.
    pub owner: Option<String>,
    /// Only experiments whose name starts with this.
    pub name_prefix: Option<String>,
    /// At most this many, up to [`MAX_PAGE_SIZE`].
    pub limit: u32,
    /// Start after this position (from [`Page::next`]).
    pub after: Option<Cursor>,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            phase: None,
            owner: None,
            name_prefix: None,
            limit: 100,
            after: None,
        }
    }
}

impl ListQuery {
    /// The limit, clamped to `1..=MAX_PAGE_SIZE`.
    pub fn effective_limit(&self) -> u32 {
        self.limit.clamp(1, MAX_PAGE_SIZE)
    }

    /// Whether `experiment` passes the filters (not the paging).
    pub fn matches(&self, experiment: &Experiment) -> bool {
        self.phase.is_none_or(|p| experiment.status.phase == p)
            && self
                .owner
                .as_ref()
                .is_none_or(|o| &experiment.spec.owner == o)
            && self
                .name_prefix
                .as_ref()
                .is_none_or(|p| experiment.spec.name.starts_with(p.as_str()))
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The experiments, oldest first.
    pub items: Vec<Experiment>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// A position in the listing order: after the experiment with this creation time and id.
///
/// Written as text (`<nanoseconds since the epoch>.<id>`) so that APIs can hand it out as an
/// opaque token.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    /// Creation time of the last experiment of the previous page.
    pub created_at: DateTime<Utc>,
    /// Its id.
    pub id: ExperimentId,
}

impl Cursor {
    /// The position just after `experiment`.
    pub fn after(experiment: &Experiment) -> Self {
        Self {
            created_at: experiment.created_at,
            id: experiment.id.clone(),
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.created_at.timestamp_nanos_opt().unwrap_or(i64::MAX);
        write!(f, "{nanos}.{}", self.id)
    }
}

/// A cursor token that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid page cursor {0:?}")]
pub struct InvalidCursor(String);

impl FromStr for Cursor {
    type Err = InvalidCursor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidCursor(s.to_owned());
        let (nanos, id) = s.split_once('.').ok_or_else(invalid)?;
        let nanos: i64 = nanos.parse().map_err(|_| invalid())?;
        let id = id.parse().map_err(|_| invalid())?;
        Ok(Self {
            created_at: DateTime::from_timestamp_nanos(nanos),
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_as_text() {
        let cursor = Cursor {
            created_at: DateTime::from_timestamp_nanos(1_700_000_000_123_456_789),
            id: "exp-abcd1234".parse().unwrap(),
        };
        assert_eq!(cursor.to_string().parse::<Cursor>(), Ok(cursor));
        for bad in ["", "12", "x.exp-abcd1234", "12.exp-bad"] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limits_are_clamped() {
        let q = |limit| ListQuery {
            limit,
            ..ListQuery::default()
        };
        assert_eq!(q(0).effective_limit(), 1);
        assert_eq!(q(5000).effective_limit(), MAX_PAGE_SIZE);
        assert_eq!(q(7).effective_limit(), 7);
    }
}
