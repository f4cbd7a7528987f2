//! A held lifecycle action's clock (`Held`): how long a command may wait inside it, when it
//! must be re-armed, when its hold began; and the managers that operate (`Operators`).
//! Heartbeats only; completes nothing.

use super::*;

/// One lifecycle action while the workflow works inside it: when it was last re-armed and,
/// for a terminating manager, when its hold (TTL + extra after the record change) began.
pub(super) struct Held<'a> {
    pub intent: &'a Intent,
    pub last_heartbeat: Instant,
    pub hold_started: Option<Instant>,
    /// When the node's drain began (its first command), and, when it ran out of time, how long
    /// it ran and what it left (told as an action event).
    pub drain_began: Option<Instant>,
    pub drain_timed_out: Option<(Duration, String)>,
    /// This invocation changed something: a record removed, a node drained or removed here
    /// (not found gone already). Only such a retirement is announced.
    pub acted: bool,
    /// The leaving node's role (for the events told while it is held).
    pub role: &'static str,
    /// Services the drain found it cannot place (the last command's answer), and whether
    /// that was told already (once per retirement).
    pub blocked: Vec<crate::announce::BlockedService>,
    pub blocked_told: bool,
    /// Budgets the drain waits for (the last command's answer), and which were told already:
    /// broken ones, unreadable labels (once per retirement each).
    pub budget_short: Vec<crate::announce::BlockedService>,
    pub budget_broken_told: bool,
    pub budget_invalid_told: bool,
}

impl<'a> Held<'a> {
    pub fn new(intent: &'a Intent, role: Role) -> Self {
        Held {
            intent,
            last_heartbeat: Instant::now(),
            hold_started: None,
            drain_began: None,
            drain_timed_out: None,
            acted: false,
            role: role.as_str(),
            blocked: vec![],
            blocked_told: false,
            budget_short: vec![],
            budget_broken_told: false,
            budget_invalid_told: false,
        }
    }
}

impl Held<'_> {
    /// The drain scripts' BUDGET: "respect", the drain waits for the services' disruption
    /// budgets (a termination by the hook, a drain in place); "report", it cannot wait (Spot, a
    /// stopping instance: no lifecycle action) and tells the budgets it breaks.
    pub fn budget(&self) -> &'static str {
        if self.intent.action().is_some() || matches!(self.intent, Intent::Drain { .. }) {
            "respect"
        } else {
            "report"
        }
    }
}

/// The live managers that can run a command on the swarm, the current one first; one that
/// cannot (unreachable, daemon down, no longer a manager) hands over to the next.
pub(super) struct Operators(Vec<String>);

impl Operators {
    pub fn new(ids: Vec<String>) -> Self {
        Operators(ids)
    }
    pub fn current(&self) -> Option<String> {
        self.0.first().cloned()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// How many could take over from the current one (its script's SPARE_OPERATORS: a manager
    /// being retired itself refuses while another can act).
    pub fn spare(&self) -> usize {
        self.0.len().saturating_sub(1)
    }
    /// Gives up on the current operator, saying why and who takes over.
    pub fn hand_over(&mut self, what: &str, reason: &str) {
        if self.0.is_empty() {
            return;
        }
        let op = self.0.remove(0);
        warn!(step = what, outcome = "manager-unreachable", manager = %op, %reason,
              next = self.0.first().map(String::as_str).unwrap_or("none"));
    }
}

impl<F: Fleet, R: Remote, D: Dns, P: Parameters, A: Announce> Lifecycle<F, R, D, P, A> {
    /// How long the first command of a retirement may drain before the instance's own half
    /// gives up and the drain goes on through the operator alone: a slice of the hook's
    /// heartbeat timeout (the instance's half ends only when the slice does, even when the
    /// operator is lost meanwhile).
    pub(super) fn hook_slice(&self) -> Duration {
        self.cfg
            .terminate_heartbeat_timeout
            .mul_f64(0.3)
            .clamp(Duration::from_secs(1), Duration::from_secs(20))
            .min(self.cfg.script_wait_max())
    }

    /// The execution timeout of a command that waits `wait`: SSM kills it soon after.
    pub(super) fn command_limit(wait: Duration) -> Duration {
        wait + Duration::from_secs(10)
    }

    /// Runs `work` while the held action is kept alive: whenever less than a margin of its
    /// heartbeat timeout is left, it is re-armed, so a command of any length (a drain of
    /// minutes, a slow Route 53) never outlives the hook. No heartbeat is sent when the work
    /// ends in time, so a manager's hold still ends TTL + extra after its record change.
    pub(super) async fn while_held<T>(&self, held: &mut Held<'_>, work: impl std::future::Future<Output = T>) -> T {
        tokio::pin!(work);
        loop {
            let due = held.last_heartbeat
                + self
                    .cfg
                    .terminate_heartbeat_timeout
                    .saturating_sub(self.cfg.rearm_margin());
            tokio::select! {
                out = &mut work => return out,
                _ = tokio::time::sleep_until(due) => {
                    info!(step = "heartbeat", reason = "work-running");
                    self.beat(held).await;
                    // Terminations throttled behind this one wait with their actions (queued.rs).
                    let margin = self.cfg.rearm_margin();
                    let _ = tokio::time::timeout(margin, self.keep_waiting_alive(held.intent)).await;
                }
            }
        }
    }

    /// Re-arms the action now. The call may take the re-arm margin at most: one that hangs (a
    /// stuck connection) is given up so the work goes on (the node still leaves cleanly) and
    /// the next re-arm is due a period later.
    pub(super) async fn beat(&self, held: &mut Held<'_>) {
        let margin = self.cfg.rearm_margin();
        if tokio::time::timeout(margin, self.heartbeat(held.intent)).await.is_err() {
            warn!(
                step = "heartbeat",
                outcome = "timeout",
                secs = margin.as_secs_f64(),
                "no answer within the re-arm margin: given up"
            );
        }
        held.last_heartbeat = Instant::now();
    }

    /// The record change is in sync: the hold starts now (never earlier), re-armed.
    pub(super) async fn start_hold(&self, held: &mut Held<'_>) {
        held.hold_started = Some(Instant::now());
        self.beat(held).await;
    }

    /// Re-arms the intent's action, if it has one. False: the action has ended (completed,
    /// timed out, or superseded by a termination); a failed call is logged and counts as alive.
    pub(super) async fn heartbeat(&self, intent: &Intent) -> bool {
        let Some(action) = intent.action() else {
            return true;
        };
        match self.fleet.record_heartbeat(action).await {
            Ok(()) => info!(step = "heartbeat", outcome = "ok"),
            Err(PortError::NoActiveAction(_)) => {
                info!(
                    step = "heartbeat",
                    outcome = "no-action",
                    "lifecycle action already ended"
                );
                return false;
            }
            Err(e) => error!(step = "heartbeat", outcome = "failed", error = %e),
        }
        true
    }
}
