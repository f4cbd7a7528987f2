//! A drain that outlasts its first command is handed to later invocations (the drain-check
//! function, fed by an SQS queue with a delay): the message one check leaves for the next, and
//! what a check does with the drain command's answer; the retirement after it is checked the
//! same way (`Phase::Retiring`). Pure: no I/O.
//!
//! The message says where to look (the command and the manager it ran on) and what was told;
//! the swarm's state is read again by every check, so a message delivered twice, late, or after
//! the action ended does no harm.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::event::LifecycleAction;
use crate::model::Role;
use crate::plan::{NodeRetirement, RetireAnswer};

/// SQS: "DelaySeconds … Valid values: 0 to 900" (SendMessage, SQS API reference).
pub const MAX_DELAY: Duration = Duration::from_secs(900);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrainCheck {
    pub action: LifecycleAction,
    pub role: Role,
    pub node: NodeRetirement,
    /// The manager the last drain command was sent to, and its command id.
    pub operator: String,
    pub command_id: String,
    /// Unix seconds: when the drain began, and when it may wait no longer (DrainTimeout).
    pub began_unix: u64,
    pub deadline_unix: u64,
    /// A held manager (its record removed): when its hold began. The action ends no earlier
    /// than TTL + HoldExtra after it.
    pub holds: bool,
    pub hold_started_unix: Option<u64>,
    /// What was told already, once per retirement each.
    pub told: Told,
    /// How many checks came before this one (logged).
    pub checks: u32,
    /// Which command the check reads: a drain's, or the retirement's.
    #[serde(default)]
    pub phase: Phase,
    /// The retirement changed something already (a record removed, the node drained): it is
    /// announced when it ends.
    #[serde(default)]
    pub acted: bool,
    /// Unix seconds: when the action was last re-armed (None: unknown, re-arm now).
    #[serde(default)]
    pub armed_unix: Option<u64>,
}

/// What the last command sent does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "kebab-case")]
pub enum Phase {
    /// A drain command (scripts/drain.sh) moves the node's tasks.
    #[default]
    Draining,
    /// The retire-node command (drained first when `drains`) demotes, removes the node and, when
    /// `leave`, has the instance leave; a node not removed (no leader, a refused demotion) is
    /// asked again until `retry_until_unix`; `looks`: the checks that found it running.
    Retiring {
        drains: bool,
        leave: bool,
        // The name of the version before a refused demotion was asked again too.
        #[serde(alias = "leaderless_until_unix")]
        retry_until_unix: u64,
        looks: u32,
        /// A look already waited for the leaving instance's half (`waits_for_leave`).
        #[serde(default)]
        leave_waited: bool,
    },
    /// The node is out and the hold runs: the check completes the action when the hold ends
    /// (the hook's timeout would release it later, re-armed while the retirement ran).
    Releasing,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Told {
    pub blocked: bool,
    pub budget_broken: bool,
    pub budget_invalid: bool,
}

/// What the last drain command said, as far as a check's decision goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainAnswer {
    /// Still running (no final status yet).
    Running,
    /// Its tasks have moved and no service of it is short of its count.
    Drained,
    /// Tasks still moving (or the command failed): `blocked_proceeds` when services were found
    /// unplaceable and the policy (BlockedDrain=proceed) lets the instance go.
    Moving { blocked_proceeds: bool },
    /// The manager could not act (unreachable, no longer a manager): another one drains.
    CannotOperate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStep {
    /// Look again later; nothing sent.
    Later,
    /// Send the next drain command (through the next manager when `hand_over`).
    Again { hand_over: bool },
    /// Retire the node now: drained, or a blocked drain the policy does not wait for.
    Retire,
    /// Retire the node now: the drain timed out.
    TimedOut,
}

/// The step after a check has read the drain command's answer.
pub fn next_step(answer: DrainAnswer, now_unix: u64, deadline_unix: u64) -> CheckStep {
    let past = now_unix >= deadline_unix;
    match answer {
        DrainAnswer::Drained | DrainAnswer::Moving { blocked_proceeds: true } => CheckStep::Retire,
        _ if past => CheckStep::TimedOut,
        DrainAnswer::Running => CheckStep::Later,
        DrainAnswer::Moving { .. } => CheckStep::Again { hand_over: false },
        DrainAnswer::CannotOperate => CheckStep::Again { hand_over: true },
    }
}

/// The time between checks: a check re-arms the action, so one must come before the hook's
/// heartbeat timeout runs out (less the re-arm margin), with room for a failed check to be
/// delivered once more after the queue's visibility timeout (`redelivery`); never longer than a
/// command may wait nor than SQS can delay. A hook too short for that room (the local cloud's
/// 10 s; AWS allows 30 s) is checked twice per heartbeat timeout instead: a failed check then
/// lets the action lapse to the hook's DefaultResult (the reconcile removes the node).
pub fn period(
    heartbeat_timeout: Duration,
    rearm_margin: Duration,
    redelivery: Duration,
    wait_max: Duration,
) -> Duration {
    let room = heartbeat_timeout.saturating_sub(rearm_margin);
    let period = if room >= redelivery + FIRST_DELAY {
        room - redelivery
    } else {
        room / 2
    };
    period.min(wait_max).min(MAX_DELAY).max(Duration::from_secs(1))
}

/// How long after its last re-arm an action may go before the check that re-arms it next: the
/// heartbeat timeout less the re-arm margin, less the room for one redelivery when it fits.
pub fn rearm_bound(heartbeat_timeout: Duration, rearm_margin: Duration, redelivery: Duration) -> Duration {
    let room = heartbeat_timeout.saturating_sub(rearm_margin);
    if room >= redelivery + FIRST_DELAY {
        room - redelivery
    } else {
        room
    }
}

/// Whether a check re-arms the action: it must when the next check (`next` away at most) might
/// come after the bound since the last re-arm (`armed_age` ago). A check that need not saves the
/// heartbeat; the action is found gone then by the retirement's own calls.
pub fn must_rearm(armed_age: Option<Duration>, next: Duration, bound: Duration) -> bool {
    match armed_age {
        // The delay is rounded up to whole seconds on the queue.
        Some(age) => age + next + Duration::from_secs(1) > bound,
        None => true,
    }
}

/// The first check comes this soon after the hand-over: most drains that outlast their first
/// command end within seconds more (docker's default stop grace period is 10 s).
pub const FIRST_DELAY: Duration = Duration::from_secs(5);

/// A worker's retire-node command takes about this long: the node leaves (~1 s), and the
/// operator waits until the swarm marks it Down before it removes it (its half ran 14.2-14.5 s,
/// measured: the swarm marks a node that left Down ~13 s later). Its first check comes then,
/// not at FIRST_DELAY: one look instead of two (at 12 s it found the command running about
/// every other time: a check more, two calls).
pub const RETIRE_FIRST_LOOK: Duration = Duration::from_secs(16);
/// A manager's takes longer when it led: its demotion reaches it and it steps down (~8.5 s
/// after its demotion, measured) before it leaves. Its action is held TTL + HoldExtra anyway.
pub const RETIRE_FIRST_LOOK_MANAGER: Duration = Duration::from_secs(20);

/// The delay before the retirement's look number `looks` (0: the first), within `period`.
pub fn retire_delay(looks: u32, period: Duration, role: Role) -> Duration {
    let first = match role {
        Role::Manager => RETIRE_FIRST_LOOK_MANAGER,
        Role::Worker => RETIRE_FIRST_LOOK,
    };
    match looks {
        0 => first.min(period),
        n => delay(n, period),
    }
}

/// How long a check waits, once, for the leaving instance's half of a retirement whose
/// operator's half has ended: the instance's `docker swarm leave` reports seconds after its node
/// went down, the operator's may end first (it removes the node once it is down, or when its
/// wait runs out).
pub const LEAVE_REPORT_WAIT: Duration = Duration::from_secs(4);

/// What a retirement's check does about the leaving instance's half of the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveLook {
    /// The node is out (`answer` ended), the instance runs its half (`leave`), that half has
    /// not reported, and no look has waited for it yet: one look more, LEAVE_REPORT_WAIT later.
    Again,
    /// Waited once and still silent: the action ends without its answer (an instance whose
    /// half never reports keeps no action).
    Unreported,
    /// Nothing to wait for: read what there is.
    Read,
}

pub fn leave_look(answer: &RetireAnswer, leave: bool, reported: bool, waited: bool) -> LeaveLook {
    let out = matches!(answer, RetireAnswer::Ended { .. });
    match (out && leave && !reported, waited) {
        (true, false) => LeaveLook::Again,
        (true, true) => LeaveLook::Unreported,
        (false, _) => LeaveLook::Read,
    }
}

/// The delay before check number `checks` (0: the first): doubling from FIRST_DELAY up to
/// `period`, so a drain is seen done within about its own length again, and a drain of hours
/// costs one check a period.
pub fn delay(checks: u32, period: Duration) -> Duration {
    FIRST_DELAY
        .saturating_mul(1u32 << checks.min(16))
        .min(period)
        .max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_waits_once_for_a_silent_leave_and_only_when_the_node_is_out() {
        let out = RetireAnswer::Ended {
            drained: true,
            removed: Some("true".into()),
        };
        assert_eq!(leave_look(&out, true, false, false), LeaveLook::Again);
        assert_eq!(leave_look(&out, true, false, true), LeaveLook::Unreported);
        assert_eq!(leave_look(&out, true, true, false), LeaveLook::Read);
        assert_eq!(leave_look(&out, false, false, false), LeaveLook::Read);
        for not_out in [
            RetireAnswer::NotRemoved,
            RetireAnswer::CannotOperate,
            RetireAnswer::Draining { failed: false },
        ] {
            assert_eq!(leave_look(&not_out, true, false, false), LeaveLook::Read);
        }
    }

    #[test]
    fn a_drained_node_or_a_blocked_drain_that_proceeds_is_retired_even_past_the_deadline() {
        for now in [10, 100] {
            assert_eq!(next_step(DrainAnswer::Drained, now, 50), CheckStep::Retire);
            let proceed = DrainAnswer::Moving { blocked_proceeds: true };
            assert_eq!(next_step(proceed, now, 50), CheckStep::Retire);
        }
    }

    #[test]
    fn before_the_deadline_a_moving_drain_goes_on_and_a_running_command_is_looked_at_later() {
        let moving = DrainAnswer::Moving {
            blocked_proceeds: false,
        };
        assert_eq!(next_step(moving, 10, 50), CheckStep::Again { hand_over: false });
        assert_eq!(
            next_step(DrainAnswer::CannotOperate, 10, 50),
            CheckStep::Again { hand_over: true }
        );
        assert_eq!(next_step(DrainAnswer::Running, 10, 50), CheckStep::Later);
    }

    #[test]
    fn at_the_deadline_whatever_is_not_drained_times_out() {
        let moving = DrainAnswer::Moving {
            blocked_proceeds: false,
        };
        for a in [moving, DrainAnswer::Running, DrainAnswer::CannotOperate] {
            assert_eq!(next_step(a, 50, 50), CheckStep::TimedOut, "{a:?}");
        }
    }

    #[test]
    fn the_period_leaves_room_for_one_redelivery_before_the_hook_times_out() {
        let s = Duration::from_secs;
        // AWS defaults: a 180 s hook, re-armed 30 s early, a 60 s visibility timeout.
        assert_eq!(period(s(180), s(30), s(60), s(115)), s(90));
        // A command cannot wait longer than its execution timeout allows.
        assert_eq!(period(s(600), s(30), s(60), s(115)), s(115));
        // A hook too short for a redelivery's room: twice per heartbeat timeout (not every
        // second), never below a second, never above SQS's 15 minutes.
        assert_eq!(period(s(30), s(9), s(60), s(115)), Duration::from_millis(10_500));
        assert_eq!(period(s(10), s(3), s(60), s(115)), Duration::from_millis(3_500));
        assert_eq!(period(s(2), s(1), s(60), s(115)), s(1));
        assert_eq!(period(s(7200), s(30), s(60), s(3600)), MAX_DELAY);
    }

    #[test]
    fn a_check_re_arms_only_when_the_next_one_might_come_too_late() {
        let s = Duration::from_secs;
        // AWS defaults: 180 s hook, 30 s margin: re-armed within 90 s (a redelivery fits after).
        let bound = rearm_bound(s(180), s(30), s(60));
        assert_eq!(bound, s(90));
        assert!(!must_rearm(Some(s(6)), s(10), bound), "a manager's first look");
        assert!(!must_rearm(Some(s(16)), s(20), bound));
        assert!(must_rearm(Some(s(76)), s(20), bound));
        assert!(must_rearm(None, s(1), bound), "unknown: re-armed");
        // The local cloud's 10 s hook: no room for a redelivery; every second check re-arms.
        let bound = rearm_bound(s(10), s(3), s(60));
        assert_eq!(bound, s(7));
        assert!(!must_rearm(Some(s(2)), Duration::from_millis(3_500), bound));
        assert!(must_rearm(Some(s(4)), Duration::from_millis(3_500), bound));
    }

    #[test]
    fn a_retirement_is_looked_at_once_it_is_usually_done_then_as_a_drain() {
        let s = Duration::from_secs;
        let delays = |role| {
            (0..4)
                .map(|n| retire_delay(n, s(90), role).as_secs())
                .collect::<Vec<u64>>()
        };
        assert_eq!(delays(Role::Worker), vec![16, 10, 20, 40]);
        // A manager steps down before it leaves.
        assert_eq!(delays(Role::Manager), vec![20, 10, 20, 40]);
        assert_eq!(
            retire_delay(0, Duration::from_millis(3_500), Role::Manager),
            Duration::from_millis(3_500)
        );
    }

    #[test]
    fn checks_come_soon_then_every_period() {
        let s = Duration::from_secs;
        let delays: Vec<u64> = (0..7).map(|n| delay(n, s(90)).as_secs()).collect();
        assert_eq!(delays, vec![5, 10, 20, 40, 80, 90, 90]);
        // A short hook (the local cloud's 10 s): every period, never below a second.
        assert_eq!(delay(0, s(1)), s(1));
        assert_eq!(delay(40, s(90)), s(90));
        // A 10-minute drain with AWS's defaults takes ten checks.
        let mut t = 0;
        let mut n = 0;
        while t < 600 {
            t += delay(n, s(90)).as_secs();
            n += 1;
        }
        assert_eq!(n, 10);
    }

    #[test]
    fn the_message_survives_the_queue() {
        let c = DrainCheck {
            action: LifecycleAction {
                group: "g".into(),
                hook: "h".into(),
                token: "t".into(),
                instance_id: "i-1".into(),
                started_unix: Some(5),
            },
            role: Role::Manager,
            node: NodeRetirement {
                node_id: "n1".into(),
                drain: true,
                demote: true,
                leave: true,
            },
            operator: "i-2".into(),
            command_id: "c1".into(),
            began_unix: 10,
            deadline_unix: 310,
            holds: true,
            hold_started_unix: Some(9),
            told: Told {
                blocked: true,
                ..Told::default()
            },
            checks: 3,
            phase: Phase::Retiring {
                drains: false,
                leave: true,
                retry_until_unix: 70,
                looks: 1,
                leave_waited: true,
            },
            acted: true,
            armed_unix: Some(12),
        };
        let body = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<DrainCheck>(&body).unwrap(), c);
        // A check left by the version before phases is a drain's.
        let mut old: serde_json::Value = serde_json::from_str(&body).unwrap();
        old.as_object_mut().unwrap().remove("phase");
        old.as_object_mut().unwrap().remove("acted");
        old.as_object_mut().unwrap().remove("armed_unix");
        let old: DrainCheck = serde_json::from_value(old).unwrap();
        assert_eq!((old.phase, old.acted, old.armed_unix), (Phase::Draining, false, None));
    }
}
