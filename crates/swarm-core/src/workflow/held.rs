//! A retirement's state while it works inside its action (`Held`: the action kept alive, what
//! the drain found and told), how long a command may wait inside the action, and the managers
//! that operate (`Operators`). Completes nothing.

use super::kept_alive::KeptAlive;
use super::*;

/// One retirement while the workflow works inside its action (kept alive as a launch is:
/// `KeptAlive`), and what its drain found and told.
pub(super) struct Held<'a> {
    pub alive: KeptAlive<'a>,
    /// When the node's drain began (its first command), and, when it ran out of time, how long
    /// it ran and what it left (told as an action event).
    pub drain_began: Option<Instant>,
    pub drain_timed_out: Option<(Duration, String)>,
    /// What the last drain command left (tasks running, services short): said at a timeout.
    pub last_drain: String,
    /// This invocation changed something: a record removed, a node drained or removed here
    /// (not found gone already). Only such a retirement is announced.
    pub acted: bool,
    /// The leaving node's role (for the events told while it is held).
    pub role: Role,
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
    pub fn new(alive: KeptAlive<'a>, role: Role) -> Self {
        Held {
            alive,
            drain_began: None,
            drain_timed_out: None,
            last_drain: String::new(),
            acted: false,
            role,
            blocked: vec![],
            blocked_told: false,
            budget_short: vec![],
            budget_broken_told: false,
            budget_invalid_told: false,
        }
    }
}

impl Held<'_> {
    /// When the drain times out: DrainTimeout after it began (now, if it has not).
    pub fn drain_deadline(&self, cfg: &crate::Config) -> Instant {
        self.drain_began.unwrap_or_else(Instant::now) + cfg.drain_timeout
    }

    /// The drain scripts' BUDGET: "respect", the drain waits for the services' disruption
    /// budgets (a termination by the hook, a drain in place); "report", it cannot wait (Spot, a
    /// stopping instance: no lifecycle action) and tells the budgets it breaks.
    pub fn budget(&self) -> &'static str {
        let intent = self.alive.intent;
        if intent.action().is_some() || matches!(intent, Intent::Drain { .. }) {
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

impl<F, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
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
}
