//! The retire-node command (drain slice, demote, leave, remove) and the drain commands, sent
//! through a manager that can operate and read back; for the invocation that waits for them
//! and for the drain checks alike.

use super::held::{Held, Operators};
use super::*;
use crate::announce::BlockedService;
use crate::plan::{cannot_operate, LeaveAnswer, NodeRetirement, RetireAnswer};

impl<F, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// The retire-node command through the current operator (draining first for `drain`, the
    /// instance's half when it `leave`s): its commands, how long it may run, its name.
    pub(super) fn retire_command(
        &self,
        held: &Held<'_>,
        ops: &Operators,
        node: &NodeRetirement,
        drain: Option<Duration>,
        leave: bool,
    ) -> (Vec<String>, Duration, &'static str) {
        let drain_secs = drain.map(|d| d.as_secs().max(1)).unwrap_or(0);
        // The instance leaves once it has stepped down: a demoted follower does so at once, a
        // demoted leader only after its daemon has shut its manager down, ~8.5 s later
        // (measured, docker 28), and the daemon does not answer meanwhile. The wait is a
        // condition: a slice of the hook timeout, at least STEP_DOWN for a manager. If that is
        // not enough, the node is still removed and the missed leave is logged.
        let floor = if node.demote { STEP_DOWN } else { Duration::from_secs(3) };
        let wait = self.hook_slice().max(floor).min(self.cfg.script_wait_max());
        let limit = Self::command_limit(wait + Duration::from_secs(drain_secs));
        // Its own name, so that a fault (or a reader of the SSM history) can tell it apart.
        let what = if drain.is_some() {
            "drain and retire node"
        } else {
            "retire node"
        };
        let cmds = script_commands(
            &[
                ("NODE_ID", node.node_id.clone()),
                ("LEAVING_INSTANCE", held.alive.intent.instance_id().to_string()),
                ("DEMOTE", node.demote.to_string()),
                ("DRAIN_SECONDS", drain_secs.to_string()),
                ("WAIT_SECONDS", wait.as_secs().max(1).to_string()),
                ("INSTANCE_LEAVES", leave.to_string()),
                ("SPARE_OPERATORS", ops.spare().to_string()),
                ("STOP_WHEN_BLOCKED", (!held.blocked_told).to_string()),
                ("BUDGET", held.budget().to_string()),
            ],
            scripts::RETIRE_NODE,
        );
        (cmds, limit, what)
    }
}

impl<F: Fleet, R: Remote, D, P, A: Announce, Q> Lifecycle<F, R, D, P, A, Q> {
    /// Drains (for `drain` at most, if given), demotes (if asked), has the instance leave (if
    /// it is up) and removes its node, in one command to the operator and the instance;
    /// another manager takes over from an unreachable operator, and an instance that cannot
    /// be reached is removed all the same; a node not removed (no leader, a refused demotion)
    /// is asked again (until `end`, REMOVAL_RETRY_WAIT at most). False: the drain did not
    /// finish, nothing else done.
    pub(super) async fn retire_node(
        &self,
        held: &mut Held<'_>,
        ops: &mut Operators,
        node: &NodeRetirement,
        drain: Option<Duration>,
        end: Instant,
    ) -> bool {
        let id = held.alive.intent.instance_id();
        let mut leave = node.leave;
        let retry_end = clamp(Instant::now() + REMOVAL_RETRY_WAIT, Some(end));
        let mut backoff = Backoff::new(self.cfg.poll_max);
        while let Some(op) = ops.current() {
            let (cmds, limit, what) = self.retire_command(held, ops, node, drain, leave);
            let mut targets = vec![op.clone()];
            if leave {
                targets.push(id.to_string());
            }
            let results = match self
                .while_alive(&held.alive, self.remote.run(&targets, cmds, limit, USUAL_COMMAND, what))
                .await
            {
                Ok(r) => r,
                Err(PortError::NotOnline(e)) if leave => {
                    warn!(step = "leave", outcome = "unreachable", error = %e, "removing the node without it");
                    leave = false;
                    continue;
                }
                Err(PortError::NotOnline(e)) => {
                    ops.hand_over("remove", &e);
                    continue;
                }
                Err(e) if drain.is_some() => {
                    warn!(step = "drain", outcome = "retry", error = %e);
                    return false;
                }
                Err(e) => {
                    error!(step = "remove", outcome = "failed", error = %e);
                    return true;
                }
            };
            let Some(r) = results.iter().find(|r| r.instance_id == op) else {
                error!(step = "remove", outcome = "failed", "no result from {op}");
                return true;
            };
            let me = results.iter().find(|r| r.instance_id == id);
            match self.read_retire(held, node, &op, r, me, drain.is_some()).await {
                RetireAnswer::CannotOperate => {
                    ops.hand_over("remove", &r.summary());
                    continue;
                }
                RetireAnswer::Draining { .. } => return false,
                RetireAnswer::NotRemoved if Instant::now() < retry_end => {
                    self.while_alive(&held.alive, backoff.wait(retry_end)).await;
                    continue;
                }
                RetireAnswer::NotRemoved => {
                    not_removed(&op);
                    return true;
                }
                RetireAnswer::Ended { .. } => return true,
            }
        }
        error!(step = "remove", outcome = "failed", "no reachable manager left");
        true
    }
}

impl<F, R, D, P, A: Announce, Q> Lifecycle<F, R, D, P, A, Q> {
    /// Reads a retire-node command's answers (the operator's, and the leaving instance's when
    /// it ran its half) and says what they mean, for the invocation that waited for them and
    /// for the drain check that reads them later alike: logged, budgets noted, acted marked.
    pub(super) async fn read_retire(
        &self,
        held: &mut Held<'_>,
        node: &NodeRetirement,
        op: &str,
        r: &CommandResult,
        me: Option<&CommandResult>,
        drains: bool,
    ) -> RetireAnswer {
        let answer = plan::read_retire(r, drains);
        if answer == RetireAnswer::CannotOperate {
            return answer;
        }
        if drains {
            self.note_budgets(held, &r.stdout).await;
        }
        if let Some(me) = me {
            let settled = !matches!(answer, RetireAnswer::Draining { .. });
            match plan::read_leave(me, settled) {
                LeaveAnswer::AfterDrain if me.ok() => info!(step = "leave", outcome = "after-drain"),
                LeaveAnswer::AfterDrain => info!(step = "leave", outcome = "after-drain", result = %me.summary()),
                LeaveAnswer::Left => info!(step = "leave", outcome = "ok"),
                LeaveAnswer::Failed => warn!(step = "leave", outcome = "failed", result = %me.summary()),
            }
        }
        match &answer {
            RetireAnswer::Draining { failed: false } => {
                held.blocked = BlockedService::of_output(&r.stdout);
                let said = DrainSaid::of(&r.stdout);
                info!(
                    step = "drain",
                    outcome = "in-progress",
                    remaining = said.remaining,
                    pending = said.pending,
                    waiting_for = said.waiting_for,
                    "tasks still moving; the drain goes on by itself"
                );
            }
            RetireAnswer::Draining { failed: true } => {
                held.blocked = BlockedService::of_output(&r.stdout);
                warn!(step = "drain", outcome = "retry", via = %op, result = %r.summary());
            }
            RetireAnswer::NotRemoved => warn!(step = "remove", outcome = "retry", via = %op, result = %r.summary()),
            RetireAnswer::Ended { drained, removed } => {
                if *drained {
                    info!(step = "drain", outcome = "ok", "tasks moved");
                }
                if node.demote {
                    info!(step = "demote", outcome = "ok");
                }
                // Removed by this command, not found gone: this retirement removed it (a copy
                // of the event running beside it finds removed=already).
                held.acted |= removed.as_deref() == Some("true");
                info!(step = "remove", outcome = "ok", via = %op, removed = removed.as_deref().unwrap_or(""));
            }
            RetireAnswer::CannotOperate => {}
        }
        answer
    }
}

impl<F, R: Remote, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// Runs a script through the first operator; when that manager cannot be reached (agent
    /// offline, instance gone, daemon down, no longer a manager) the next one takes over.
    pub(super) async fn on_operator(
        &self,
        ops: &mut Operators,
        env: &[(&str, String)],
        script: &str,
        timeout: Duration,
        what: &str,
    ) -> Result<CommandResult, Retry> {
        while let Some(op) = ops.current() {
            let mut env = env.to_vec();
            env.push(("SPARE_OPERATORS", ops.spare().to_string()));
            let cmds = script_commands(&env, script);
            let reason = match self
                .remote
                .run(std::slice::from_ref(&op), cmds, timeout, USUAL_COMMAND, what)
                .await
            {
                Ok(rs) => match rs.into_iter().find(|r| r.instance_id == op) {
                    Some(r) if r.ok() => return Ok(r),
                    Some(r) if cannot_operate(&r) => r.summary(),
                    Some(r) => {
                        return Err(Retry::Again(Again::Failed {
                            what: what.into(),
                            on: op,
                            result: r.summary(),
                        }))
                    }
                    None => {
                        return Err(Retry::Again(Again::NoResult {
                            what: what.into(),
                            on: op,
                        }))
                    }
                },
                Err(e @ PortError::NotOnline(_)) => e.to_string(),
                Err(e) => return Err(retry(e)),
            };
            ops.hand_over(what, &reason);
        }
        Err(Retry::Again(Again::NoManager { what: what.into() }))
    }
}

impl<F: Fleet, R: Remote, D, P, A: Announce, Q> Lifecycle<F, R, D, P, A, Q> {
    pub(super) async fn drain(&self, held: &mut Held<'_>, ops: &mut Operators, node_id: &str, end: Instant) {
        drain_started(ops);
        held.drain_began.get_or_insert_with(Instant::now);
        let mut backoff = Backoff::new(self.cfg.poll_max);
        // The node's own services still short of their count (the drain waits for no other).
        let mut waiting_for = String::new();
        loop {
            // One command waits out the drain (the held action is re-armed while it runs); a
            // failed one is sent again, through the next manager if this one cannot operate.
            let wait = end.saturating_duration_since(Instant::now());
            let env = [
                ("NODE_ID", node_id.to_string()),
                ("WAIT_SECONDS", wait.as_secs().to_string()),
                ("STOP_WHEN_BLOCKED", (!held.blocked_told).to_string()),
                ("BUDGET", held.budget().to_string()),
            ];
            let limit = Self::command_limit(wait);
            let drained = self.on_operator(ops, &env, scripts::DRAIN, limit, "drain");
            let (remaining, pending) = match self.while_alive(&held.alive, drained).await {
                Ok(r) => {
                    waiting_for = DrainSaid::of(&r.stdout).waiting_for.to_string();
                    self.note_drain(held, &r.stdout).await
                }
                Err(e) if ops.is_empty() || matches!(e, Retry::Refused(_)) => {
                    warn!(step = "drain", outcome = "failed", error = %e, "no manager can drain");
                    return;
                }
                Err(e) => {
                    warn!(step = "drain", outcome = "retry", error = %e);
                    // A failing command returns at once: pace the retries.
                    backoff.wait(end).await;
                    (u32::MAX, u32::MAX)
                }
            };
            if remaining == 0 && pending == 0 {
                info!(step = "drain", outcome = "ok", "tasks moved");
                return;
            }
            if self.tell_blocked(held).await && self.cfg.blocked_drain_proceeds {
                info!(
                    step = "drain",
                    outcome = "proceed",
                    "blocked services are not waited for"
                );
                return;
            }
            if Instant::now() >= end {
                let count = |n: u32| if n == u32::MAX { "?".to_string() } else { n.to_string() };
                let short = if waiting_for.is_empty() {
                    String::new()
                } else {
                    format!(" ({waiting_for})")
                };
                held.last_drain = format!(
                    "{} task(s) still running, {} service(s) short of their replicas{short}",
                    count(remaining),
                    count(pending)
                );
                self.drain_timed_out(held).await;
                return;
            }
        }
    }
}

/// How long a removal is asked again while the node is not removed: an election after the
/// leader is lost can be split and take tens of seconds (27 s seen on the local cloud); a
/// demotion refused while raft changes succeeds when asked again.
pub(super) const REMOVAL_RETRY_WAIT: Duration = Duration::from_secs(60);

/// Asked again until the retry window ended: the action is released with the node still in
/// the swarm (the reconcile removes it once it is down).
pub(super) fn not_removed(op: &str) {
    error!(
        step = "remove",
        outcome = "failed",
        via = %op,
        "not removed within the retry window: released; the reconcile removes the node"
    );
}

/// How long a demoted manager may take to step down and leave (a leader: ~8.5 s measured).
const STEP_DOWN: Duration = Duration::from_secs(15);

/// Which manager a drain goes through (read by the operator-killed scenario).
pub(super) fn drain_started(ops: &Operators) {
    info!(
        step = "drain",
        outcome = "started",
        via = ops.current().as_deref().unwrap_or("none")
    );
}
