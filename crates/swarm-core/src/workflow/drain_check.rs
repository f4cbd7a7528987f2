//! Drains as long as the services need: a terminate hook's drain that outlasts its first
//! command is handed to later invocations. The hook sends a drain command that runs until the
//! next check and leaves the check on the queue (delayed); each check (the drain-check
//! function) re-arms the action, reads the command's answer and either looks again later,
//! drains on, or retires the node and ends the action. No invocation waits for the drain.

use super::held::{Held, Operators};
use super::*;
use crate::plan::drain_check::{self, CheckStep, DrainAnswer, DrainCheck, Told};
use crate::plan::NodeRetirement;

/// How long a failed check stays invisible before SQS delivers it again: the queue's
/// VisibilityTimeout in infra/template.yaml (DrainChecks), at least the function's Timeout.
pub const CHECK_REDELIVERY: Duration = Duration::from_secs(60);

fn unix_of(at: Instant) -> u64 {
    let now = Instant::now();
    if at <= now {
        unix_now().saturating_sub((now - at).as_secs())
    } else {
        unix_now() + (at - now).as_secs()
    }
}

fn instant_of(unix: u64) -> Instant {
    Instant::now() - Duration::from_secs(unix_now().saturating_sub(unix))
}

impl<F: Fleet, R: Remote, D: Dns, P: Parameters, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// Whether a retirement's drain may be handed over: there is a queue and an action to keep.
    pub(super) fn can_hand_over(&self, held: &Held<'_>) -> bool {
        self.cfg.drain_check_queue.is_some() && held.alive.intent.action().is_some() && !self.cfg.dry_run
    }

    /// The first command's drain when the drain can be handed over: short, since what is not
    /// done by then is checked without anyone waiting.
    pub(super) fn handover_slice(&self) -> Duration {
        self.hook_slice().min(drain_check::FIRST_DELAY)
    }

    fn check_period(&self) -> Duration {
        drain_check::period(
            self.cfg.terminate_heartbeat_timeout,
            self.cfg.rearm_margin(),
            CHECK_REDELIVERY,
            self.cfg.script_wait_max(),
        )
    }

    /// Hands the drain to the drain-check function. Err: it could not (the caller drains on).
    pub(super) async fn hand_over_drain(
        &self,
        held: &Held<'_>,
        ops: &mut Operators,
        node: &NodeRetirement,
        holds: bool,
    ) -> Result<(), PortError> {
        let intent = held.alive.intent;
        let Some(action) = intent.action() else {
            return Err(PortError::aws("drain-check", "no lifecycle action to keep"));
        };
        // The drain's own deadline: the invocation's no longer bounds it.
        let check = DrainCheck {
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
        };
        // Kept alive while the command and the check are sent (a busy moment: 4 s seen under
        // load, past the action's release), then re-armed: the first check comes a delay later.
        self.while_alive(&held.alive, self.send_check(check, ops)).await?;
        self.rearm(&held.alive).await;
        info!(
            step = "drain",
            outcome = "handed-over",
            period_secs = self.check_period().as_secs(),
            "tasks still moving; the drain goes on, checked by drain-check"
        );
        Ok(())
    }

    /// Sends the next drain command (through the first manager that takes it) and leaves the
    /// check for it on the queue, delayed until the command has had its wait.
    async fn send_check(&self, mut check: DrainCheck, ops: &mut Operators) -> Result<(), PortError> {
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
            match self.remote.send(&op, cmds, Self::command_limit(wait), "drain").await {
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

    async fn leave_check(&self, check: &DrainCheck, wait: Duration) -> Result<(), PortError> {
        let body = serde_json::to_string(check).map_err(|e| PortError::aws("drain-check", e))?;
        self.checks.later(&body, wait + Duration::from_secs(1)).await
    }

    /// One check of a handed-over drain (`act_on` with the check's retirement).
    pub(super) async fn check_drain(
        &self,
        intent: &Intent,
        m: &Member,
        mut check: DrainCheck,
        end: Instant,
    ) -> Result<Outcome, PortError> {
        let id = intent.instance_id();
        let mut held = Held::new(self.keep_alive(intent, Instant::now()), m.role);
        if !self.rearm(&held.alive).await {
            info!(
                step = "drain-check",
                outcome = "no-action",
                "the lifecycle action has ended: nothing left to check"
            );
            return Ok(Outcome::new(
                OutcomeKind::AlreadyEnded,
                Some(id),
                "the action ended during the drain",
            ));
        }
        held.drain_began = Some(instant_of(check.began_unix));
        if let Some(at) = check.hold_started_unix {
            held.alive.held_since(instant_of(at));
        }
        restore_told(&mut held, check.told);
        check.checks += 1;
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
        check.told = told_of(&held);
        match step {
            CheckStep::Later => {
                let wait = drain_check::delay(check.checks, self.check_period());
                self.leave_check(&check, wait).await?;
                Ok(draining(id))
            }
            CheckStep::Again { hand_over } => {
                let mut ops = operators_of(&check, m, &self.cfg);
                if hand_over {
                    ops.hand_over("drain", "it could not operate");
                }
                self.send_check(check, &mut ops).await?;
                Ok(draining(id))
            }
            CheckStep::Retire | CheckStep::TimedOut => {
                if step == CheckStep::TimedOut {
                    self.drain_timed_out(&mut held).await;
                }
                self.retire_after_check(intent, m, &mut held, check, end).await
            }
        }
    }

    /// Reads a drain command's answer into the retirement (blocked services, budgets: told as
    /// in one invocation) and says what it means for the check.
    async fn read_drain(&self, held: &mut Held<'_>, r: &CommandResult) -> DrainAnswer {
        if super::retire::cannot_operate(r) {
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
        held.last_drain = format!(
            "{} task(s) still running, {} service(s) short of their replicas",
            output_value(&r.stdout, "remaining").unwrap_or("?"),
            output_value(&r.stdout, "pending").unwrap_or("?")
        );
        let blocked_proceeds = self.tell_blocked(held).await && self.cfg.blocked_drain_proceeds;
        DrainAnswer::Moving { blocked_proceeds }
    }

    /// The drain is over: the node is demoted, leaves and is removed as in one invocation, and
    /// the action ends (or its hold runs out).
    async fn retire_after_check(
        &self,
        intent: &Intent,
        m: &Member,
        held: &mut Held<'_>,
        check: DrainCheck,
        end: Instant,
    ) -> Result<Outcome, PortError> {
        // The script finds a node already removed (a check delivered twice) or an instance
        // already gone.
        let mut ops = operators_of(&check, m, &self.cfg);
        let node = NodeRetirement {
            drain: false,
            ..check.node.clone()
        };
        self.retire_node(held, &mut ops, &node, None, end).await;
        metric(&m.cluster, m.role.as_str(), "Removals", 1.0, "Count");
        self.announce_drain_timeout(held, m).await;
        held.acted = true;
        self.release(intent, held, check.holds, end).await
    }
}

/// The managers a check works through, without a new observation: the one that drained last
/// first, the cluster's other managers behind it (one that cannot be reached or cannot act
/// hands over to the next).
fn operators_of(check: &DrainCheck, m: &Member, cfg: &Config) -> Operators {
    let id = check.action.instance_id.as_str();
    let mut managers = vec![check.operator.clone()];
    managers.extend(
        manager_ids(&m.groups, cfg, id)
            .into_iter()
            .filter(|i| *i != check.operator),
    );
    Operators::new(managers)
}

fn draining(id: &str) -> Outcome {
    Outcome::new(
        OutcomeKind::Draining,
        Some(id),
        "tasks still moving: drain-check goes on",
    )
}

fn told_of(held: &Held<'_>) -> Told {
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
