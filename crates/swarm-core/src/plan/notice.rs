//! Deciding what an EC2 notice asks of the swarm: a Spot interruption warning, a rebalance
//! recommendation, or an instance stopped, terminated or started outside the lifecycle hooks.
//! Pure: no I/O (the workflow is workflow/notice.rs).

use crate::config::RebalanceAction;
use crate::event::Ec2Notice;
use crate::model::{LifecycleState, Role};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeDecision {
    /// Take the node out of the swarm (record first, drain, demote, leave, remove), done by
    /// `by_unix` when the notice says when the instance goes: that time less the room kept
    /// for what follows the drain (`removal_reserve`).
    Retire {
        by_unix: Option<u64>,
    },
    /// Move its tasks; the node stays (a replacement is coming).
    Drain,
    /// No new tasks; its tasks stay.
    Cordon,
    /// Back in service: it belongs in the swarm.
    Join,
    /// Nothing to change in the swarm; logged, and counted in `metric` when given.
    Note {
        reason: String,
        metric: Option<&'static str>,
    },
    Ignore(String),
}

/// Seconds kept free before a Spot interruption for what follows the drain (demote, leave,
/// remove: a demoted leader steps down in ~8.5 s); a quarter of a shorter notice.
const SPOT_REMOVAL_RESERVE: u64 = 25;

/// The time a retirement must be done by when the instance goes at `goes_unix`.
fn done_by(goes_unix: Option<u64>, p: NoticePolicy) -> Option<u64> {
    let reserve = SPOT_REMOVAL_RESERVE.min(p.spot_notice / 4);
    goes_unix.map(|t| t.saturating_sub(reserve))
}

/// What the deployment asks of notices, and the time now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoticePolicy {
    pub rebalance: RebalanceAction,
    /// A Spot interruption comes this many seconds after its warning (hibernation: at once).
    pub spot_notice: u64,
    /// A scheduled change's node is retired this many seconds before the change begins.
    pub scheduled_lead: u64,
    pub now_unix: u64,
}

/// What the notice `n` about an instance of `role` in lifecycle state `state` asks for.
pub fn decide_notice(n: &Ec2Notice, role: Role, state: &LifecycleState, p: NoticePolicy) -> NoticeDecision {
    // The terminate hook is retiring it (and holds it as long as the record needs): one owner.
    if state.is_terminating() && !matches!(n, Ec2Notice::Other(_)) {
        return NoticeDecision::Ignore(format!("{state}: the terminate hook retires it"));
    }
    match n {
        Ec2Notice::SpotInterruption { action, warned_unix } => NoticeDecision::Retire {
            by_unix: done_by(
                warned_unix.map(|t| if action == "hibernate" { t } else { t + p.spot_notice }),
                p,
            ),
        },
        Ec2Notice::Leaving(_) => NoticeDecision::Retire { by_unix: None },
        Ec2Notice::Running if *state == LifecycleState::InService => NoticeDecision::Join,
        Ec2Notice::Running => NoticeDecision::Ignore(format!("{state}: not in service")),
        Ec2Notice::RebalanceRecommendation if role == Role::Manager => NoticeDecision::Note {
            reason: "a manager at elevated risk of interruption: kept as it is (its replacement joins first, \
                     the interruption notice retires it)"
                .into(),
            metric: Some("RebalanceRecommendations"),
        },
        // A closed event is a change that is over (done, or cancelled): a node retired now
        // would be a healthy node drained and removed for nothing.
        Ec2Notice::ScheduledChange { code, closed: true, .. } => {
            NoticeDecision::Ignore(format!("{code} is closed: the change is over"))
        }
        Ec2Notice::ScheduledChange {
            code,
            starts_unix: Some(t),
            ..
        } if *t > p.now_unix + p.scheduled_lead => NoticeDecision::Note {
            reason: format!(
                "{code} begins at {t}: the reconcile retires it from {}",
                t - p.scheduled_lead
            ),
            metric: None, // counted when it arrives, as a Spot warning is
        },
        Ec2Notice::ScheduledChange { starts_unix, .. } => NoticeDecision::Retire {
            by_unix: done_by(*starts_unix, p),
        },
        Ec2Notice::RebalanceRecommendation => match p.rebalance {
            RebalanceAction::Drain => NoticeDecision::Drain,
            RebalanceAction::Cordon => NoticeDecision::Cordon,
            RebalanceAction::Ignore => NoticeDecision::Note {
                reason: "REBALANCE_ACTION=ignore".into(),
                metric: Some("RebalanceRecommendations"),
            },
        },
        Ec2Notice::Other(s) => NoticeDecision::Ignore(format!("instance state {s}: nothing to do")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The planner over a state written as AWS writes it.
    fn decide_notice(n: &Ec2Notice, role: Role, state: &str, p: NoticePolicy) -> NoticeDecision {
        super::decide_notice(n, role, &state.into(), p)
    }

    fn policy(rebalance: RebalanceAction) -> NoticePolicy {
        NoticePolicy {
            rebalance,
            spot_notice: 120,
            scheduled_lead: 600,
            now_unix: 1000,
        }
    }

    #[test]
    fn a_scheduled_change_retires_within_the_lead_and_is_noted_before() {
        let at = |t| Ec2Notice::ScheduledChange {
            code: "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED".into(),
            starts_unix: Some(t),
            closed: false,
        };
        let p = policy(RebalanceAction::Drain);
        assert_eq!(
            decide_notice(&at(1600), Role::Manager, "InService", p),
            NoticeDecision::Retire { by_unix: Some(1575) }
        );
        assert!(matches!(
            decide_notice(&at(1601), Role::Worker, "InService", p),
            NoticeDecision::Note { metric: None, .. }
        ));
        assert!(matches!(
            decide_notice(&at(1200), Role::Worker, "Terminating:Wait", p),
            NoticeDecision::Ignore(_)
        ));
    }

    #[test]
    fn a_closed_scheduled_change_leaves_the_node_alone_whenever_it_began() {
        let p = policy(RebalanceAction::Drain);
        for starts in [Some(500), Some(1200), None] {
            let closed = Ec2Notice::ScheduledChange {
                code: "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED".into(),
                starts_unix: starts,
                closed: true,
            };
            for role in [Role::Manager, Role::Worker] {
                assert!(matches!(
                    decide_notice(&closed, role, "InService", p),
                    NoticeDecision::Ignore(_)
                ));
            }
        }
    }

    fn spot() -> Ec2Notice {
        Ec2Notice::SpotInterruption {
            action: "terminate".into(),
            warned_unix: Some(880),
        }
    }

    #[test]
    fn a_spot_warning_retires_by_the_interruption() {
        for role in [Role::Manager, Role::Worker] {
            for state in ["InService", "Pending:Wait", "Standby"] {
                // Two minutes after the warning (880 + 120), less 25 s for what follows the drain.
                assert_eq!(
                    decide_notice(&spot(), role, state, policy(RebalanceAction::Drain)),
                    NoticeDecision::Retire { by_unix: Some(975) }
                );
            }
        }
    }

    #[test]
    fn a_hibernation_gives_no_notice() {
        let n = Ec2Notice::SpotInterruption {
            action: "hibernate".into(),
            warned_unix: Some(880),
        };
        assert_eq!(
            decide_notice(&n, Role::Worker, "InService", policy(RebalanceAction::Drain)),
            NoticeDecision::Retire { by_unix: Some(855) }
        );
    }

    #[test]
    fn a_short_notice_keeps_a_quarter_of_it_for_what_follows_the_drain() {
        let p = NoticePolicy {
            spot_notice: 40,
            ..policy(RebalanceAction::Drain)
        };
        // 880 + 40 less a quarter of 40.
        assert_eq!(
            decide_notice(&spot(), Role::Worker, "InService", p),
            NoticeDecision::Retire { by_unix: Some(910) }
        );
    }

    #[test]
    fn the_terminate_hook_owns_a_terminating_instance() {
        for n in [
            spot(),
            Ec2Notice::Leaving("shutting-down".into()),
            Ec2Notice::RebalanceRecommendation,
        ] {
            for state in ["Terminating:Wait", "Terminating:Proceed"] {
                assert!(matches!(
                    decide_notice(&n, Role::Manager, state, policy(RebalanceAction::Drain)),
                    NoticeDecision::Ignore(_)
                ));
            }
        }
    }

    #[test]
    fn an_out_of_band_stop_or_termination_retires_and_a_start_rejoins() {
        for s in ["stopping", "stopped", "shutting-down", "terminated"] {
            assert_eq!(
                decide_notice(
                    &Ec2Notice::Leaving(s.into()),
                    Role::Worker,
                    "InService",
                    policy(RebalanceAction::Drain)
                ),
                NoticeDecision::Retire { by_unix: None }
            );
        }
        assert_eq!(
            decide_notice(
                &Ec2Notice::Running,
                Role::Manager,
                "InService",
                policy(RebalanceAction::Drain)
            ),
            NoticeDecision::Join
        );
        // A launch's own "running": the launch hook joins it.
        assert!(matches!(
            decide_notice(
                &Ec2Notice::Running,
                Role::Worker,
                "Pending:Wait",
                policy(RebalanceAction::Drain)
            ),
            NoticeDecision::Ignore(_)
        ));
        assert!(matches!(
            decide_notice(
                &Ec2Notice::Other("pending".into()),
                Role::Worker,
                "InService",
                policy(RebalanceAction::Drain)
            ),
            NoticeDecision::Ignore(_)
        ));
    }

    #[test]
    fn a_rebalance_recommendation_drains_cordons_or_notes_a_worker_and_notes_a_manager() {
        let r = Ec2Notice::RebalanceRecommendation;
        assert_eq!(
            decide_notice(&r, Role::Worker, "InService", policy(RebalanceAction::Drain)),
            NoticeDecision::Drain
        );
        assert_eq!(
            decide_notice(&r, Role::Worker, "InService", policy(RebalanceAction::Cordon)),
            NoticeDecision::Cordon
        );
        assert!(matches!(
            decide_notice(&r, Role::Worker, "InService", policy(RebalanceAction::Ignore)),
            NoticeDecision::Note { .. }
        ));
        assert!(matches!(
            decide_notice(&r, Role::Manager, "InService", policy(RebalanceAction::Drain)),
            NoticeDecision::Note {
                metric: Some("RebalanceRecommendations"),
                ..
            }
        ));
    }
}
