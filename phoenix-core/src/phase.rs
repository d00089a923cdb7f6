//! Experiment phases and the pure transition function between them.
//!
//! ```text
//! Pending ──Start──▶ Initializing ──Prepared──▶ Running ──RunFinished──▶ Analyzing ──Analyzed──▶ Completed
//!                                               │    ▲                                            │
//!                                               └────┘ WindowMeasured                  Promote ───┤─── Rollback
//!                                                                                        ▼        ▼
//!   Fail:   any active phase ──▶ Failed                                              Promoted ──▶ RolledBack
//!   Cancel: any active phase ──▶ Cancelled                                                Rollback
//! ```
//!
//! Active phases are Pending, Initializing, Running and Analyzing. Failed, Cancelled and
//! RolledBack are terminal. [`transition`] decides; it performs nothing. The caller (the
//! [`ExperimentController`](crate::controller::ExperimentController)) persists the new phase
//! and performs the returned [`Effect`]s.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where an experiment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// Created, not started.
    Pending,
    /// The variants are being prepared.
    Initializing,
    /// The variants run and are measured window by window.
    Running,
    /// The run is over; results are being computed.
    Analyzing,
    /// Results and a recommendation are available.
    Completed,
    /// Ended by an error; the reason is in the status. Terminal.
    Failed,
    /// Stopped on request before completing. Terminal.
    Cancelled,
    /// The candidate was made the target's active pipeline.
    Promoted,
    /// The candidate was rejected, or its promotion undone. Terminal.
    RolledBack,
}

impl Phase {
    /// Every phase, in life-cycle order.
    pub const ALL: [Self; 9] = [
        Self::Pending,
        Self::Initializing,
        Self::Running,
        Self::Analyzing,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
        Self::Promoted,
        Self::RolledBack,
    ];

    /// Whether the run is not over yet: it can still be driven, failed or cancelled.
    pub const fn is_active(self) -> bool {
        matches!(
            self,
            Self::Pending | Self::Initializing | Self::Running | Self::Analyzing
        )
    }

    /// Whether no transition leaves this phase.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Failed | Self::Cancelled | Self::RolledBack)
    }

    /// What must have been done for a run to be in this phase: the effects a controller
    /// performs again when it resumes an experiment stored here. All are idempotent.
    ///
    /// Initializing and Running need the variants deployed; Analyzing needs them gone.
    pub const fn resume_effects(self) -> &'static [Effect] {
        match self {
            Self::Initializing | Self::Running => &[Effect::Prepare],
            Self::Analyzing => &[Effect::TearDown],
            _ => &[],
        }
    }

    /// The phase as written in APIs and stores (`pending`, `rolledBack`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Initializing => "initializing",
            Self::Running => "running",
            Self::Analyzing => "analyzing",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Promoted => "promoted",
            Self::RolledBack => "rolledBack",
        }
    }

    /// The phase written as [`Phase::as_str`] writes it.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened to an experiment and may move it to another phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", tag = "event")]
pub enum PhaseEvent {
    /// A user started the experiment.
    Start,
    /// Both variants are deployed and running.
    Prepared,
    /// One measurement window was recorded (progress; the phase stays Running).
    WindowMeasured,
    /// The last window was measured.
    RunFinished,
    /// Results were computed.
    Analyzed,
    /// Something went wrong.
    Fail {
        /// What went wrong.
        reason: String,
    },
    /// A user stopped the experiment.
    Cancel,
    /// A user promoted the candidate.
    Promote,
    /// A user rejected the candidate, or undid its promotion.
    Rollback,
}

impl PhaseEvent {
    /// The event's name, for messages (`start`, `fail`, …).
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Prepared => "prepared",
            Self::WindowMeasured => "windowMeasured",
            Self::RunFinished => "runFinished",
            Self::Analyzed => "analyzed",
            Self::Fail { .. } => "fail",
            Self::Cancel => "cancel",
            Self::Promote => "promote",
            Self::Rollback => "rollback",
        }
    }
}

/// Work the caller must perform after a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Effect {
    /// Deploy and start both variants (idempotent: also used when resuming).
    Prepare,
    /// Remove both variants.
    TearDown,
    /// Make the candidate the target's active pipeline.
    Promote,
    /// Restore the target's pipeline from before the promotion.
    Rollback,
}

/// An event that is not allowed in the current phase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot apply `{event}` to an experiment that is {from}")]
pub struct TransitionError {
    /// The phase the experiment was in.
    pub from: Phase,
    /// The name of the refused event.
    pub event: &'static str,
}

/// The phase that follows `event` in `from`, and the effects the caller must perform.
///
/// Pure: it decides and performs nothing. Any pair not in the table above is refused.
pub fn transition(
    from: Phase,
    event: &PhaseEvent,
) -> Result<(Phase, &'static [Effect]), TransitionError> {
    use Effect::{Prepare, Promote, Rollback, TearDown};
    use Phase::*;
    let next: (Phase, &'static [Effect]) = match (from, event) {
        (Pending, PhaseEvent::Start) => (Initializing, &[Prepare]),
        (Initializing, PhaseEvent::Prepared) => (Running, &[]),
        (Running, PhaseEvent::WindowMeasured) => (Running, &[]),
        (Running, PhaseEvent::RunFinished) => (Analyzing, &[TearDown]),
        (Analyzing, PhaseEvent::Analyzed) => (Completed, &[]),
        (Pending, PhaseEvent::Fail { .. }) => (Failed, &[]),
        (Initializing | Running | Analyzing, PhaseEvent::Fail { .. }) => (Failed, &[TearDown]),
        (Pending, PhaseEvent::Cancel) => (Cancelled, &[]),
        (Initializing | Running | Analyzing, PhaseEvent::Cancel) => (Cancelled, &[TearDown]),
        (Completed, PhaseEvent::Promote) => (Promoted, &[Promote]),
        (Completed, PhaseEvent::Rollback) => (RolledBack, &[]),
        (Promoted, PhaseEvent::Rollback) => (RolledBack, &[Rollback]),
        _ => {
            return Err(TransitionError {
                from,
                event: event.name(),
            });
        }
    };
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn events() -> Vec<PhaseEvent> {
        vec![
            PhaseEvent::Start,
            PhaseEvent::Prepared,
            PhaseEvent::WindowMeasured,
            PhaseEvent::RunFinished,
            PhaseEvent::Analyzed,
            PhaseEvent::Fail {
                reason: "boom".into(),
            },
            PhaseEvent::Cancel,
            PhaseEvent::Promote,
            PhaseEvent::Rollback,
        ]
    }

    /// The transition table, written out independently of `transition`.
    const TABLE: &[(Phase, &str, Phase)] = &[
        (Phase::Pending, "start", Phase::Initializing),
        (Phase::Initializing, "prepared", Phase::Running),
        (Phase::Running, "windowMeasured", Phase::Running),
        (Phase::Running, "runFinished", Phase::Analyzing),
        (Phase::Analyzing, "analyzed", Phase::Completed),
        (Phase::Pending, "fail", Phase::Failed),
        (Phase::Initializing, "fail", Phase::Failed),
        (Phase::Running, "fail", Phase::Failed),
        (Phase::Analyzing, "fail", Phase::Failed),
        (Phase::Pending, "cancel", Phase::Cancelled),
        (Phase::Initializing, "cancel", Phase::Cancelled),
        (Phase::Running, "cancel", Phase::Cancelled),
        (Phase::Analyzing, "cancel", Phase::Cancelled),
        (Phase::Completed, "promote", Phase::Promoted),
        (Phase::Completed, "rollback", Phase::RolledBack),
        (Phase::Promoted, "rollback", Phase::RolledBack),
    ];

    fn expected(from: Phase, event: &PhaseEvent) -> Option<Phase> {
        TABLE
            .iter()
            .find(|(f, e, _)| *f == from && *e == event.name())
            .map(|(_, _, to)| *to)
    }

    #[test]
    fn every_pair_follows_the_table() {
        let mut allowed = 0;
        for from in Phase::ALL {
            for event in events() {
                match (transition(from, &event), expected(from, &event)) {
                    (Ok((to, _)), Some(want)) => {
                        assert_eq!(to, want, "{from} + {}", event.name());
                        allowed += 1;
                    }
                    (Err(e), None) => {
                        assert_eq!(
                            e,
                            TransitionError {
                                from,
                                event: event.name()
                            }
                        );
                    }
                    (got, want) => panic!("{from} + {}: got {got:?}, want {want:?}", event.name()),
                }
            }
        }
        assert_eq!(allowed, TABLE.len());
    }

    #[test]
    fn teardown_follows_deployment() {
        for from in [Phase::Initializing, Phase::Running] {
            for event in [
                PhaseEvent::Cancel,
                PhaseEvent::Fail {
                    reason: String::new(),
                },
            ] {
                let (_, effects) = transition(from, &event).unwrap();
                assert_eq!(effects, [Effect::TearDown], "{from} + {}", event.name());
            }
        }
        assert_eq!(
            transition(Phase::Pending, &PhaseEvent::Cancel).unwrap().1,
            []
        );
        assert_eq!(
            transition(Phase::Running, &PhaseEvent::RunFinished)
                .unwrap()
                .1,
            [Effect::TearDown]
        );
        assert_eq!(
            transition(Phase::Pending, &PhaseEvent::Start).unwrap().1,
            [Effect::Prepare]
        );
        assert_eq!(
            transition(Phase::Promoted, &PhaseEvent::Rollback)
                .unwrap()
                .1,
            [Effect::Rollback]
        );
    }

    #[test]
    fn resume_effects_are_what_the_path_into_each_active_phase_performed() {
        // Along the happy path, a phase's resume effects are its predecessor's plus what the
        // step into it did, with a tear-down cancelling an earlier preparation.
        let path = [
            (Phase::Pending, PhaseEvent::Start),
            (Phase::Initializing, PhaseEvent::Prepared),
            (Phase::Running, PhaseEvent::RunFinished),
        ];
        for (from, event) in path {
            let (to, effects) = transition(from, &event).unwrap();
            let mut held: Vec<Effect> = from.resume_effects().to_vec();
            for effect in effects {
                if *effect == Effect::TearDown {
                    held.retain(|e| *e != Effect::Prepare);
                }
                if !held.contains(effect) {
                    held.push(*effect);
                }
            }
            assert_eq!(held, to.resume_effects(), "{from} -> {to}");
        }
        for phase in Phase::ALL.into_iter().filter(|p| !p.is_active()) {
            assert!(
                phase.resume_effects().is_empty(),
                "{phase} is never resumed"
            );
        }
    }

    #[test]
    fn phase_names_round_trip() {
        for phase in Phase::ALL {
            assert_eq!(Phase::parse(phase.as_str()), Some(phase));
            let json = serde_json::to_string(&phase).unwrap();
            assert_eq!(json, format!("\"{}\"", phase.as_str()));
        }
    }

    #[test]
    fn the_error_names_event_and_phase() {
        let err = transition(Phase::Completed, &PhaseEvent::Start).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot apply `start` to an experiment that is completed"
        );
    }

    fn any_phase() -> impl Strategy<Value = Phase> {
        proptest::sample::select(Phase::ALL.to_vec())
    }

    fn any_event() -> impl Strategy<Value = PhaseEvent> {
        proptest::sample::select(events())
    }

    proptest! {
        #[test]
        fn applying_an_event_changes_only_what_it_should(
            start in any_phase(),
            event in any_event(),
        ) {
            let spec = serde_json::from_value(serde_json::json!({
                "name": "trial",
                "baseline": {"template": "process-baseline-v1"},
                "candidate": {"template": "process-topk-v1"},
            }))
            .unwrap();
            let mut experiment = crate::experiment::Experiment::new(spec);
            experiment.status.phase = start;
            let before = experiment.clone();
            match experiment.apply(&event) {
                Err(_) => prop_assert_eq!(experiment, before, "a refused event changes nothing"),
                Ok(_) => {
                    let failed = matches!(event, PhaseEvent::Fail { .. });
                    prop_assert_eq!(experiment.status.failure.is_some(), failed);
                    prop_assert_eq!(experiment.spec, before.spec);
                    prop_assert_eq!(experiment.version, before.version);
                }
            }
        }

        #[test]
        fn random_event_sequences_never_reach_an_illegal_phase(
            start in any_phase(),
            sequence in proptest::collection::vec(any_event(), 0..40),
        ) {
            let mut phase = start;
            let mut left_active = !start.is_active();
            for event in &sequence {
                match transition(phase, event) {
                    Ok((next, effects)) => {
                        // Every step is in the table.
                        prop_assert_eq!(Some(next), expected(phase, event));
                        // Once the run is over it never becomes active again.
                        if left_active {
                            prop_assert!(!next.is_active());
                        }
                        // Only a run that deployed something tears it down.
                        if effects.contains(&Effect::TearDown) {
                            prop_assert!(matches!(
                                phase,
                                Phase::Initializing | Phase::Running | Phase::Analyzing
                            ));
                        }
                        left_active |= !next.is_active();
                        phase = next;
                    }
                    Err(e) => {
                        prop_assert_eq!(expected(phase, event), None);
                        prop_assert_eq!(e.from, phase);
                    }
                }
            }
        }
    }
}
