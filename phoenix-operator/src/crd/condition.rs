//! Status conditions: Ready, Progressing and Degraded.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The kinds of condition every Phoenix resource reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ConditionType {
    /// Everything the resource asks for runs as asked.
    Ready,
    /// The operator is bringing the cluster towards the spec (rolling pods, waiting).
    Progressing,
    /// The spec cannot be carried out; the message says which field and why.
    Degraded,
}

impl ConditionType {
    /// The type as written in the status.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "Ready",
            Self::Progressing => "Progressing",
            Self::Degraded => "Degraded",
        }
    }
}

/// Whether a condition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// It holds.
    True,
    /// It does not hold.
    False,
    /// Not known yet.
    Unknown,
}

impl From<bool> for ConditionStatus {
    fn from(value: bool) -> Self {
        if value { Self::True } else { Self::False }
    }
}

/// One condition, shaped like Kubernetes' `metav1.Condition`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Which condition.
    #[serde(rename = "type")]
    pub type_: ConditionType,
    /// Whether it holds.
    pub status: ConditionStatus,
    /// A PascalCase reason, e.g. `InvalidParameter`.
    pub reason: String,
    /// Details for people; for Degraded it names the field at fault.
    #[serde(default)]
    pub message: String,
    /// When `status` last changed.
    pub last_transition_time: DateTime<Utc>,
    /// The resource generation the condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Helpers on a list of conditions.
pub trait Conditions {
    /// The condition of this type, if present.
    fn condition(&self, type_: ConditionType) -> Option<&Condition>;

    /// Sets a condition, keeping its transition time when the status did not change.
    fn set_condition(
        &mut self,
        type_: ConditionType,
        status: ConditionStatus,
        reason: &str,
        message: &str,
        generation: Option<i64>,
        now: DateTime<Utc>,
    );

    /// Whether the condition of this type is True.
    fn is_true(&self, type_: ConditionType) -> bool {
        self.condition(type_)
            .is_some_and(|c| c.status == ConditionStatus::True)
    }
}

impl Conditions for Vec<Condition> {
    fn condition(&self, type_: ConditionType) -> Option<&Condition> {
        self.iter().find(|c| c.type_ == type_)
    }

    fn set_condition(
        &mut self,
        type_: ConditionType,
        status: ConditionStatus,
        reason: &str,
        message: &str,
        generation: Option<i64>,
        now: DateTime<Utc>,
    ) {
        let last_transition_time = self
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map_or(now, |c| c.last_transition_time);
        let condition = Condition {
            type_,
            status,
            reason: reason.to_owned(),
            message: message.to_owned(),
            last_transition_time,
            observed_generation: generation,
        };
        match self.iter_mut().find(|c| c.type_ == type_) {
            Some(existing) => *existing = condition,
            None => self.push(condition),
        }
        self.sort_by_key(|c| c.type_ as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_changes_only_with_the_status() {
        let t0 = DateTime::from_timestamp(1_000, 0).unwrap();
        let t1 = DateTime::from_timestamp(2_000, 0).unwrap();
        let mut conditions = Vec::new();
        conditions.set_condition(
            ConditionType::Ready,
            false.into(),
            "Waiting",
            "",
            Some(1),
            t0,
        );
        conditions.set_condition(
            ConditionType::Ready,
            false.into(),
            "Still",
            "x",
            Some(2),
            t1,
        );
        let ready = conditions.condition(ConditionType::Ready).unwrap();
        assert_eq!(
            (ready.last_transition_time, ready.reason.as_str()),
            (t0, "Still")
        );
        conditions.set_condition(ConditionType::Ready, true.into(), "Ready", "", Some(2), t1);
        assert_eq!(conditions[0].last_transition_time, t1);
        assert!(conditions.is_true(ConditionType::Ready));
        conditions.set_condition(ConditionType::Degraded, false.into(), "Ok", "", None, t1);
        assert_eq!(conditions.len(), 2);
    }
}
