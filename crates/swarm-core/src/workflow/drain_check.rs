//! Drains as long as the services need, and no invocation waits for a command: a terminate
//! hook sends the node's retire-node command (a drain slice first) and leaves a check on the
//! queue (delayed); each check (the drain-check function) re-arms the action, reads the last
//! command's answer and looks again later, drains on (a drain command that runs until the next
//! check), sends the retirement once the drain is over, or, when the node is out, ends the
//! action (or leaves a held manager to its hook's timeout).

use super::held::{Held, Operators};
use super::*;
use crate::plan::drain_check::{self, CheckStep, DrainAnswer, DrainCheck, Phase, Told};

/// How long a failed check stays invisible before SQS delivers it again: the queue's
/// VisibilityTimeout in infra/template.yaml (DrainChecks), at least the function's Timeout.
pub const CHECK_REDELIVERY: Duration = Duration::from_secs(60);

fn instant_of(unix: u64) -> Instant {
    Instant::now() - Duration::from_secs(unix_now().saturating_sub(unix))
}

impl<F, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// Whether a retirement's drain may be handed over: there is a queue and an action to keep.
    pub(super) fn can_hand_over(&self, held: &Held<'_>) -> bool {
        self.cfg.drain_check_queue.is_some() && held.alive.intent.action().is_some() && !self.cfg.dry_run
    }

    pub(super) fn rearm_bound(&self) -> Duration {
        drain_check::rearm_bound(
            self.cfg.terminate_heartbeat_timeout,
            self.cfg.rearm_margin(),
            CHECK_REDELIVERY,
        )
    }

    pub(super) fn check_period(&self) -> Duration {
        drain_check::period(
            self.cfg.terminate_heartbeat_timeout,
            self.cfg.rearm_margin(),
            CHECK_REDELIVERY,
            self.cfg.script_wait_max(),
        )
    }
}

impl<F: Fleet, R: Remote, D, P, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// One check of a handed-over drain: `act_as` for the check's retirement.
    pub(super) async fn check_drain(
        &self,
        intent: &Intent,
        m: &Member,
        mut check: DrainCheck,
        end: Instant,
    ) -> Result<Outcome, PortError> {
        let id = intent.instance_id();
        // The groups read for a drain's check say whether the action still waits: no call to
        // ask. A retirement's check reads none; its re-arm or completion finds an ended action.
        if m.listed().is_some_and(|groups| !action_waits(groups, id)) {
            return Ok(action_ended(id));
        }
        if check.phase == Phase::Releasing {
            // Told by the check that found the node out.
            return self.end_hold(intent, true).await;
        }
        check.checks += 1;
        // The next check comes at most this long from now (the delays only grow).
        let next = drain_check::delay(check.checks, self.check_period());
        let age = check
            .armed_unix
            .map(|at| Duration::from_secs(unix_now().saturating_sub(at)));
        let bound = self.rearm_bound();
        let armed = match age {
            Some(age) if !drain_check::must_rearm(Some(age), next, bound) => Instant::now() - age,
            _ => Instant::now(),
        };
        let mut held = Held::new(self.keep_alive(intent, armed), m.role);
        if drain_check::must_rearm(age, next, bound) {
            if self.rearm(&held.alive).await {
                check.armed_unix = Some(unix_now());
            } else if !matches!(check.phase, Phase::Retiring { .. }) {
                return Ok(action_ended(id));
            }
            // A retirement sent is read even so: when its command removed the node, telling it
            // is this check's (the invocation that completed the action found it done).
        }
        held.drain_began = Some(instant_of(check.began_unix));
        if let Some(at) = check.hold_started_unix {
            held.alive.held_since(instant_of(at));
        }
        restore_told(&mut held, check.told);
        held.acted = check.acted;
        if let Phase::Retiring { .. } = check.phase {
            return or_ended(id, self.check_retirement(intent, m, &mut held, check, end).await);
        }
        let answer = match self.remote.result(&check.command_id, &check.operator).await {
            Ok(None) => DrainAnswer::Running,
            Ok(Some(r)) => self.read_drain(&mut held, &r).await,
            // The command is not known (expired from SSM's history, or never delivered): drain on.
            Err(PortError::Invalid { message, .. }) => {
                warn!(step = "drain-check", outcome = "command-lost", command_id = %check.command_id, %message);
                DrainAnswer::Moving {
                    blocked_proceeds: false,
                }
            }
            Err(e) => return Err(e),
        };
        let step = drain_check::next_step(answer, unix_now(), check.deadline_unix);
        info!(step = "drain-check", outcome = ?step, answer = ?answer, checks = check.checks, via = %check.operator);
        or_ended(id, self.after_drain(&mut held, m, check, step).await)
    }

    /// What a check does once it knows how the drain stands: looks again later, drains on, or
    /// sends the retirement (the drain over, or out of time: told).
    pub(super) async fn after_drain(
        &self,
        held: &mut Held<'_>,
        m: &Member,
        mut check: DrainCheck,
        step: CheckStep,
    ) -> Result<Outcome, PortError> {
        let id = check.action.instance_id.clone();
        check.told = told_of(held);
        match step {
            CheckStep::Later => {
                let wait = drain_check::delay(check.checks, self.check_period());
                self.leave_check(&check, wait).await?;
                Ok(draining(&id))
            }
            CheckStep::Again { hand_over } => {
                let mut ops = self.operators(&check, m).await?;
                if hand_over {
                    ops.hand_over("drain", "it could not operate");
                }
                check.phase = Phase::Draining;
                self.send_check(check, &mut ops).await?;
                Ok(draining(&id))
            }
            CheckStep::Retire | CheckStep::TimedOut => {
                if step == CheckStep::TimedOut {
                    self.drain_timed_out(held).await;
                    self.announce_drain_timeout(held, m).await;
                }
                // The drain is this retirement's: it is announced when it ends.
                check.acted = true;
                let mut ops = self.operators(&check, m).await?;
                self.send_retire(held, &mut check, &mut ops, None).await?;
                Ok(retiring(&id))
            }
        }
    }
}

impl<F: Fleet, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// The managers a check works through, without a new observation: the one that drained
    /// last first, the cluster's other managers behind it (one that cannot be reached or cannot
    /// act is passed over). A retirement's check read no groups: they are read here, only when
    /// it sends a command, and no command is sent for an action that no longer waits
    /// (NoActiveAction: `check_drain` says so).
    pub(super) async fn operators(&self, check: &DrainCheck, m: &Member) -> Result<Operators, PortError> {
        let id = check.action.instance_id.as_str();
        let read;
        let groups = match m.listed() {
            Some(groups) => groups,
            None => {
                read = self
                    .fleet
                    .groups_tagged(&self.cfg.cluster_tag, &self.cfg.cluster_name)
                    .await?;
                if !action_waits(&read, id) {
                    return Err(PortError::NoActiveAction(id.to_string()));
                }
                &read
            }
        };
        let mut managers = vec![check.operator.clone()];
        managers.extend(
            manager_ids(groups, &self.cfg, id)
                .into_iter()
                .filter(|i| *i != check.operator),
        );
        Ok(Operators::new(managers))
    }
}

impl<F, R, D, P, A: Announce, Q> Lifecycle<F, R, D, P, A, Q> {
    /// Reads a drain command's answer into the retirement (blocked services, budgets: told as
    /// in one invocation) and says what it means for the check.
    async fn read_drain(&self, held: &mut Held<'_>, r: &CommandResult) -> DrainAnswer {
        if plan::cannot_operate(r) {
            return DrainAnswer::CannotOperate;
        }
        if !r.ok() {
            warn!(step = "drain", outcome = "retry", result = %r.summary());
            return DrainAnswer::Moving {
                blocked_proceeds: false,
            };
        }
        if self.note_drain(held, &r.stdout).await == (0, 0) {
            info!(step = "drain", outcome = "ok", "tasks moved");
            return DrainAnswer::Drained;
        }
        held.last_drain = DrainSaid::of(&r.stdout).left();
        let blocked_proceeds = self.tell_blocked(held).await && self.cfg.blocked_drain_proceeds;
        DrainAnswer::Moving { blocked_proceeds }
    }
}

/// Whether `id`'s terminate action still waits, as `groups` list it.
fn action_waits(groups: &[Group], id: &str) -> bool {
    groups
        .iter()
        .flat_map(|g| g.instances.iter())
        .any(|i| i.id == id && i.lifecycle_state == LifecycleState::TerminatingWait)
}

/// A check that found the action ended before it sent a command (`operators`) ends there.
fn or_ended(id: &str, r: Result<Outcome, PortError>) -> Result<Outcome, PortError> {
    match r {
        Err(PortError::NoActiveAction(_)) => Ok(action_ended(id)),
        other => other,
    }
}

fn action_ended(id: &str) -> Outcome {
    info!(
        step = "drain-check",
        outcome = "no-action",
        "the lifecycle action has ended: nothing left to check"
    );
    Outcome::new(OutcomeKind::AlreadyEnded, Some(id), "the action ended during the drain")
}

pub(super) fn retiring(id: &str) -> Outcome {
    Outcome::new(
        OutcomeKind::Retiring,
        Some(id),
        "the node is retiring: drain-check ends the action",
    )
}

pub(super) fn draining(id: &str) -> Outcome {
    Outcome::new(
        OutcomeKind::Draining,
        Some(id),
        "tasks still moving: drain-check goes on",
    )
}

pub(super) fn told_of(held: &Held<'_>) -> Told {
    Told {
        blocked: held.blocked_told,
        budget_broken: held.budget_broken_told,
        budget_invalid: held.budget_invalid_told,
    }
}

fn restore_told(held: &mut Held<'_>, told: Told) {
    held.blocked_told = told.blocked;
    held.budget_broken_told = told.budget_broken;
    held.budget_invalid_told = told.budget_invalid;
}
