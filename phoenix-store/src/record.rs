//! How experiments and events are laid out in database rows: the record as JSON plus the
//! columns that listing filters and orders by. Shared by the SQLite and PostgreSQL stores,
//! and checked the same way by the memory store so that all three accept the same input.

use chrono::{DateTime, Utc};
use phoenix_core::experiment::{EventKind, Experiment, ExperimentEvent, ExperimentId};
use phoenix_core::store::{Cursor, ListQuery};

use crate::error::core_store_message;

/// An experiment as written to the `experiments` table.
pub(crate) struct ExperimentRow {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub phase: &'static str,
    pub version: i64,
    pub created_at_ns: i64,
    pub updated_at_ns: i64,
    pub body: String,
}

impl ExperimentRow {
    /// The row for `experiment` as it will be stored, at `version`.
    pub fn encode(experiment: &Experiment, version: u64) -> phoenix_core::Result<Self> {
        let id = &experiment.id;
        check_experiment(experiment, version)?;
        let stored_version = i64::try_from(version).unwrap_or(i64::MAX);
        let body = if experiment.version == version {
            serde_json::to_string(experiment)
        } else {
            serde_json::to_string(&Experiment {
                version,
                ..experiment.clone()
            })
        }
        .map_err(|e| phoenix_core::Error::store(format!("encoding experiment {id}"), e))?;
        Ok(Self {
            id: id.to_string(),
            name: experiment.spec.name.clone(),
            owner: experiment.spec.owner.clone(),
            phase: experiment.status.phase.as_str(),
            version: stored_version,
            created_at_ns: timestamp_nanos(experiment.created_at, id, "createdAt")?,
            updated_at_ns: timestamp_nanos(experiment.updated_at, id, "updatedAt")?,
            body,
        })
    }
}

/// Reads an experiment back from its JSON body; the version column is authoritative.
pub(crate) fn decode_experiment(
    id: &str,
    body: &str,
    version: i64,
) -> phoenix_core::Result<Experiment> {
    let mut experiment: Experiment = serde_json::from_str(body).map_err(|e| {
        phoenix_core::Error::store(format!("stored experiment {id} cannot be read"), e)
    })?;
    experiment.version = u64::try_from(version).map_err(|_| {
        core_store_message(format!(
            "stored experiment {id} has a negative version {version}"
        ))
    })?;
    Ok(experiment)
}

/// An event as written to the `experiment_events` table.
pub(crate) struct EventRow {
    pub at_ns: i64,
    pub actor: String,
    pub kind: &'static str,
    pub body: String,
}

impl EventRow {
    /// The row for `event`, which must be about `id` when given.
    pub fn encode(
        event: &ExperimentEvent,
        id: Option<&ExperimentId>,
    ) -> phoenix_core::Result<Self> {
        check_event_subject(event, id)?;
        let subject = &event.experiment_id;
        let body = serde_json::to_string(event).map_err(|e| {
            phoenix_core::Error::store(format!("encoding an event of experiment {subject}"), e)
        })?;
        Ok(Self {
            at_ns: timestamp_nanos(event.at, subject, "event time")?,
            actor: event.actor.clone(),
            kind: event_kind_name(&event.kind),
            body,
        })
    }
}

/// Refuses an event about another experiment than the one written with it, and an event
/// whose time cannot be stored.
pub(crate) fn check_event_subject(
    event: &ExperimentEvent,
    id: Option<&ExperimentId>,
) -> phoenix_core::Result<()> {
    if let Some(id) = id
        && &event.experiment_id != id
    {
        return Err(core_store_message(format!(
            "an event about experiment {} cannot be written with experiment {id}",
            event.experiment_id
        )));
    }
    refuse_nul(&event.experiment_id, "event actor", &event.actor)?;
    timestamp_nanos(event.at, &event.experiment_id, "event time").map(drop)
}

/// Refuses text with a NUL character in a field that has a column of its own: PostgreSQL
/// text cannot hold NUL, so every backend refuses it alike, naming the field.
fn refuse_nul(id: &ExperimentId, field: &str, text: &str) -> phoenix_core::Result<()> {
    if text.contains('\0') {
        return Err(core_store_message(format!(
            "experiment {id}: {field} {text:?} contains a NUL character, which cannot be stored"
        )));
    }
    Ok(())
}

/// Refuses an experiment whose timestamps or version cannot be stored, without encoding it.
pub(crate) fn check_experiment(experiment: &Experiment, version: u64) -> phoenix_core::Result<()> {
    let id = &experiment.id;
    if i64::try_from(version).is_err() {
        return Err(core_store_message(format!(
            "experiment {id}: version {version} is beyond the storable range"
        )));
    }
    refuse_nul(id, "name", &experiment.spec.name)?;
    refuse_nul(id, "owner", &experiment.spec.owner)?;
    timestamp_nanos(experiment.created_at, id, "createdAt")?;
    timestamp_nanos(experiment.updated_at, id, "updatedAt")?;
    Ok(())
}

/// Reads an event back from its JSON body.
pub(crate) fn decode_event(id: &ExperimentId, body: &str) -> phoenix_core::Result<ExperimentEvent> {
    serde_json::from_str(body).map_err(|e| {
        phoenix_core::Error::store(
            format!("a stored event of experiment {id} cannot be read"),
            e,
        )
    })
}

fn event_kind_name(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Created => "created",
        EventKind::Transition { .. } => "transition",
        EventKind::Updated => "updated",
    }
}

/// Nanoseconds since the epoch: the stored form of every timestamp. It orders exactly like
/// the timestamp and keeps its full precision, which the listing cursor relies on.
fn timestamp_nanos(at: DateTime<Utc>, id: &ExperimentId, field: &str) -> phoenix_core::Result<i64> {
    at.timestamp_nanos_opt().ok_or_else(|| {
        core_store_message(format!(
            "experiment {id}: {field} {at} is outside the storable range (years 1678 to 2261)"
        ))
    })
}

/// The current time in nanoseconds since the epoch.
pub(crate) fn now_nanos() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// A timestamp read back from nanoseconds since the epoch.
pub(crate) fn from_nanos(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(nanos)
}

/// The listing position as stored columns: `(created_at_ns, id)`.
pub(crate) fn cursor_columns(cursor: &Cursor) -> phoenix_core::Result<(i64, String)> {
    let nanos = timestamp_nanos(cursor.created_at, &cursor.id, "cursor time")?;
    Ok((nanos, cursor.id.to_string()))
}

/// How many rows to fetch for one page: one more than the limit, to know whether another
/// page follows.
pub(crate) fn fetch_count(query: &ListQuery) -> i64 {
    i64::from(query.effective_limit()) + 1
}

/// Cuts the rows fetched for a page down to the limit and works out the next cursor.
pub(crate) fn into_page(
    mut items: Vec<Experiment>,
    query: &ListQuery,
) -> phoenix_core::store::Page {
    let limit = query.effective_limit() as usize;
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(Cursor::after)
    } else {
        None
    };
    phoenix_core::store::Page { items, next }
}

/// The error for an update that matched no row: the experiment is gone, or newer.
pub(crate) fn stale(experiment: &Experiment, found: Option<i64>) -> phoenix_core::Error {
    let id = experiment.id.clone();
    match found {
        None => phoenix_core::Error::NotFound { id },
        Some(found) => phoenix_core::Error::Conflict {
            id,
            expected: experiment.version,
            found: u64::try_from(found).unwrap_or(0),
        },
    }
}
