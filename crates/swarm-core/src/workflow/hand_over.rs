//! A retirement handed over to the drain checks: the retire-node or drain command sent, not
//! waited for, and the check that reads it left on the queue, delayed.

use super::drain_check::told_of;
use super::held::{Held, Operators};
use super::*;
use crate::plan::drain_check::{self, DrainCheck, Phase};
use crate::plan::NodeRetirement;

pub(super) fn unix_of(at: Instant) -> u64 {
    let now = Instant::now();
    if at <= now {
        unix_now().saturating_sub((now - at).as_secs())
    } else {
        unix_now() + (at - now).as_secs()
    }
}

impl<F: Fleet, R: Remote, D, P, A, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// Hands the retirement to the drain-check function: the retire-node command (draining first
    /// for `drain`) is sent, not waited for, and its check left on the queue. Err: it could
    /// not (the caller retires here).
    pub(super) async fn hand_over_retire(
        &self,
        held: &Held<'_>,
        ops: &mut Operators,
        node: &NodeRetirement,
        drain: Option<Duration>,
        holds: bool,
    ) -> Result<(), PortError> {
        let intent = held.alive.intent;
        let Some(action) = intent.action() else {
            return Err(PortError::aws("drain-check", "no lifecycle action to keep"));
        };
        // The drain's own deadline: the invocation's no longer bounds it.
        let mut check = DrainCheck {
            action: action.clone(),
            role: held.role,
            node: node.clone(),
            operator: String::new(),
            command_id: String::new(),
            began_unix: unix_of(held.drain_began.unwrap_or_else(Instant::now)),
            deadline_unix: unix_of(held.drain_deadline(&self.cfg)),
            holds,
            hold_started_unix: held.alive.hold_started().map(unix_of),
            told: told_of(held),
            checks: 0,
            phase: Phase::Draining,
            acted: held.acted,
            armed_unix: None,
        };
        // Kept alive while the command and the check are sent (a busy moment: 4 s seen under
        // load, past the action's release), then re-armed: the first check comes a delay later.
        // Re-armed first unless it was just now (at INSYNC, on entry): the message says when, and
        // a check that need not re-arm saves the call too.
        let age = held.alive.last_heartbeat().elapsed();
        let first = drain_check::retire_delay(0, self.check_period(), check.role);
        if drain_check::must_rearm(Some(age), first, self.rearm_bound()) {
            self.rearm(&held.alive).await;
        }
        check.armed_unix = Some(unix_of(held.alive.last_heartbeat()));
        self.while_alive(&held.alive, self.send_retire(held, &mut check, ops, drain))
            .await?;
        info!(
            step = "retire",
            outcome = "handed-over",
            via = %check.operator,
            period_secs = self.check_period().as_secs(),
            "the node's retirement runs; drain-check reads it and ends the action"
        );
        Ok(())
    }
}

impl<F, R: Remote, D, P, A, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// Sends the retire-node command through the first manager that takes it (to the leaving
    /// instance too while it is up) and leaves the check that reads it.
    pub(super) async fn send_retire(
        &self,
        held: &Held<'_>,
        check: &mut DrainCheck,
        ops: &mut Operators,
        drain: Option<Duration>,
    ) -> Result<(), PortError> {
        let id = check.action.instance_id.clone();
        let mut leave = match check.phase {
            Phase::Retiring { leave, .. } => leave,
            Phase::Draining | Phase::Releasing => check.node.leave,
        };
        loop {
            let Some(op) = ops.current() else {
                return Err(PortError::aws("remove", "no reachable manager left"));
            };
            let (cmds, limit, what) = self.retire_command(held, ops, &check.node, drain, leave);
            let mut targets = vec![op.clone()];
            if leave {
                targets.push(id.clone());
            }
            match self.remote.send(&targets, cmds, limit, what).await {
                Ok(command_id) => {
                    check.operator = op;
                    check.command_id = command_id;
                    break;
                }
                Err(PortError::NotOnline(e)) if leave => {
                    warn!(step = "leave", outcome = "unreachable", error = %e, "removing the node without it");
                    leave = false;
                }
                Err(PortError::NotOnline(e)) => ops.hand_over("remove", &e),
                Err(e) => return Err(e),
            }
        }
        // The retry window opens with the first ask that has no drain in it (a drain may have
        // taken minutes) and is kept while the same ask is sent again.
        let retry_until_unix = match check.phase {
            Phase::Retiring {
                drains: false,
                retry_until_unix,
                ..
            } if drain.is_none() => retry_until_unix,
            _ => unix_now() + super::retire_node::REMOVAL_RETRY_WAIT.as_secs(),
        };
        check.phase = Phase::Retiring {
            drains: drain.is_some(),
            leave,
            retry_until_unix,
            looks: 0,
            leave_waited: false,
        };
        self.leave_check(check, drain_check::retire_delay(0, self.check_period(), check.role))
            .await
    }

    /// Sends the next drain command (through the first manager that takes it) and leaves the
    /// check for it on the queue, delayed until the command has had its wait.
    pub(super) async fn send_check(&self, mut check: DrainCheck, ops: &mut Operators) -> Result<(), PortError> {
        let left = Duration::from_secs(check.deadline_unix.saturating_sub(unix_now()));
        let wait = drain_check::delay(check.checks, self.check_period())
            .min(left)
            .max(Duration::from_secs(1));
        loop {
            let Some(op) = ops.current() else {
                return Err(PortError::aws("drain", "no reachable manager left"));
            };
            let env = [
                ("NODE_ID", check.node.node_id.clone()),
                ("WAIT_SECONDS", wait.as_secs().to_string()),
                ("STOP_WHEN_BLOCKED", (!check.told.blocked).to_string()),
                ("BUDGET", "respect".to_string()),
                ("SPARE_OPERATORS", ops.spare().to_string()),
            ];
            let cmds = script_commands(&env, scripts::DRAIN);
            match self
                .remote
                .send(std::slice::from_ref(&op), cmds, Self::command_limit(wait), "drain")
                .await
            {
                Ok(id) => {
                    check.operator = op;
                    check.command_id = id;
                    break;
                }
                Err(PortError::NotOnline(e)) => ops.hand_over("drain", &e),
                Err(e) => return Err(e),
            }
        }
        self.leave_check(&check, wait).await
    }
}

impl<F, R, D, P, A, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    pub(super) async fn leave_check(&self, check: &DrainCheck, wait: Duration) -> Result<(), PortError> {
        let body = serde_json::to_string(check).map_err(|e| PortError::aws("drain-check", e))?;
        self.checks.later(&body, wait + Duration::from_secs(1)).await
    }
}
