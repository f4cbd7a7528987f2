//! A check of a retirement sent (`Phase::Retiring`): reads the retire-node command's two
//! halves, looks again while it runs, drains on when its slice was not enough, asks again
//! when the node was not removed, and ends the action (or leaves it to the hold's end).

use super::drain_check::retiring;
use super::held::Held;
use super::*;
use crate::plan::drain_check::{self, DrainAnswer, DrainCheck, LeaveLook, Phase};
use crate::plan::RetireAnswer;

impl<F: Fleet, R: Remote, D, P, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// A check of the retire-node command: still running → later; the manager could not act →
    /// through the next; its drain slice not enough → the drain goes on; no leader → asked
    /// again; done → the action ends (or a held manager's hold runs out).
    pub(super) async fn check_retirement(
        &self,
        intent: &Intent,
        m: &Member,
        held: &mut Held<'_>,
        check: DrainCheck,
        end: Instant,
    ) -> Result<Outcome, PortError> {
        let id = intent.instance_id();
        let Phase::Retiring {
            drains,
            leave,
            retry_until_unix,
            leave_waited,
            ..
        } = check.phase
        else {
            unreachable!("a retirement's check");
        };
        let drain = drains.then(|| self.hook_slice());
        // The operator's half and, when the instance leaves, its own: one call for both.
        let mut halves = vec![check.operator.clone()];
        if leave {
            halves.push(id.to_string());
        }
        let found = match self.remote.results(&check.command_id, &halves).await {
            Ok(found) => found,
            Err(PortError::Invalid { message, .. }) => {
                warn!(step = "drain-check", outcome = "command-lost", command_id = %check.command_id, %message);
                return self.send_again(held, m, check, None, drain).await;
            }
            Err(e) => return Err(e),
        };
        let mut found = found.into_iter();
        let (Some(r), me) = (found.next().flatten(), found.next().flatten()) else {
            info!(step = "drain-check", outcome = "retiring", checks = check.checks, via = %check.operator);
            return self.look_again(check, false).await;
        };
        match drain_check::leave_look(&plan::read_retire(&r, drains), leave, me.is_some(), leave_waited) {
            LeaveLook::Again => {
                info!(
                    step = "leave",
                    outcome = "awaited",
                    "the node is out; its instance's half has not reported yet: one look more"
                );
                return self.look_again(check, true).await;
            }
            LeaveLook::Unreported => warn!(
                step = "leave",
                outcome = "unreported",
                "the instance's half did not report: the node was removed without its answer"
            ),
            LeaveLook::Read => {}
        }
        let node = check.node.clone();
        let op = check.operator.clone();
        match self.read_retire(held, &node, &op, &r, me.as_ref(), drains).await {
            RetireAnswer::CannotOperate => self.send_again(held, m, check, Some(&r), drain).await,
            RetireAnswer::Draining { failed } => self.drain_goes_on(held, m, check, &r, failed).await,
            RetireAnswer::NotRemoved if unix_now() < retry_until_unix => {
                self.send_again(held, m, check, None, None).await
            }
            answer => {
                if answer == RetireAnswer::NotRemoved {
                    super::retire_node::not_removed(&op);
                }
                self.retirement_over(intent, m, held, check, end).await
            }
        }
    }
}

impl<F: Fleet, R: Remote, D, P, A, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// The retire-node command sent again: through the next manager when this one could not
    /// act (`cannot`: its answer), else through the same operators.
    async fn send_again(
        &self,
        held: &mut Held<'_>,
        m: &Member,
        mut check: DrainCheck,
        cannot: Option<&CommandResult>,
        drain: Option<Duration>,
    ) -> Result<Outcome, PortError> {
        let mut ops = self.operators(&check, m).await?;
        if let Some(r) = cannot {
            ops.hand_over("remove", &r.summary());
        }
        self.send_retire(held, &mut check, &mut ops, drain).await?;
        Ok(retiring(held.alive.intent.instance_id()))
    }
}

impl<F: Fleet, R: Remote, D, P, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// The command's drain slice was not enough: the drain goes on (or proceeds past services
    /// that block it, with BLOCKED_DRAIN=proceed).
    async fn drain_goes_on(
        &self,
        held: &mut Held<'_>,
        m: &Member,
        check: DrainCheck,
        r: &CommandResult,
        failed: bool,
    ) -> Result<Outcome, PortError> {
        held.drain_began.get_or_insert_with(Instant::now);
        held.last_drain = DrainSaid::of(&r.stdout).left();
        let blocked_proceeds = !failed && self.tell_blocked(held).await && self.cfg.blocked_drain_proceeds;
        if blocked_proceeds {
            info!(
                step = "drain",
                outcome = "proceed",
                "blocked services are not waited for"
            );
        }
        let answer = DrainAnswer::Moving { blocked_proceeds };
        let step = drain_check::next_step(answer, unix_now(), check.deadline_unix);
        self.after_drain(held, m, check, step).await
    }
}

impl<F, R, D, P, A, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// The retire-node command is still running (or, `for_leave`, the instance's half has not
    /// reported): the check looks again later.
    async fn look_again(&self, mut check: DrainCheck, for_leave: bool) -> Result<Outcome, PortError> {
        let Phase::Retiring {
            looks, leave_waited, ..
        } = &mut check.phase
        else {
            unreachable!("a retirement's check");
        };
        let wait = if for_leave {
            *leave_waited = true;
            drain_check::LEAVE_REPORT_WAIT
        } else {
            *looks += 1;
            drain_check::retire_delay(*looks, self.check_period(), check.role)
        };
        self.leave_check(&check, wait).await?;
        Ok(retiring(&check.action.instance_id))
    }
}

impl<F: Fleet, R, D, P, A, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// The node is out (or was asked for long enough): the action ends now, or when the hold
    /// ends (a later check completes it).
    async fn retirement_over(
        &self,
        intent: &Intent,
        m: &Member,
        held: &mut Held<'_>,
        mut check: DrainCheck,
        end: Instant,
    ) -> Result<Outcome, PortError> {
        metric(&m.cluster, m.role.as_str(), "Removals", 1.0, "Count");
        let Some(wait) = self.release_later(held, check.holds) else {
            return self.release(intent, held, check.holds, end, "node retired").await;
        };
        // No check sleeps: the next one completes the action when the hold ends.
        check.phase = Phase::Releasing;
        self.leave_check(&check, wait).await?;
        let secs = wait.as_secs_f64();
        info!(
            step = "hold",
            outcome = "ends-later",
            release_in_secs = secs,
            "re-armed while the retirement ran: a check completes it when the hold ends"
        );
        Ok(super::retire::held_outcome(
            intent.instance_id(),
            format!("completed when the hold ends in {secs:.1}s"),
            !held.acted,
        ))
    }
}

impl<F, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// A held retirement whose hook would release it later than its hold ends (re-armed while
    /// it ran): how long until the hold ends.
    fn release_later(&self, held: &Held<'_>, holds: bool) -> Option<Duration> {
        let started = held.alive.hold_started()?;
        let hold_end = started + self.cfg.hold();
        let late = held.alive.released_at().saturating_duration_since(hold_end) > Duration::from_secs(1);
        (holds && late)
            .then(|| hold_end.saturating_duration_since(Instant::now()))
            .filter(|w| !w.is_zero())
    }
}
