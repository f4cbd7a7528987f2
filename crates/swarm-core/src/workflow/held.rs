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
}

impl<'a> Held<'a> {
    pub fn new(intent: &'a Intent) -> Self {
        Held {
            intent,
            last_heartbeat: Instant::now(),
            hold_started: None,
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

impl<F: Fleet, R: Remote, D: Dns, P: Parameters> Lifecycle<F, R, D, P> {
    /// How long a script may wait inside a held lifecycle action: a slice of the hook's
    /// heartbeat timeout, so that a heartbeat sent before the command always covers it.
    pub(super) fn hook_slice(&self) -> Duration {
        self.cfg
            .terminate_heartbeat_timeout
            .mul_f64(0.3)
            .clamp(Duration::from_secs(1), Duration::from_secs(20))
            .min(self.cfg.script_wait_max())
    }

    /// The execution timeout of a command that waits `wait`: SSM kills it soon after.
    pub(super) fn slice_limit(&self, wait: Duration) -> Duration {
        wait + self
            .cfg
            .terminate_heartbeat_timeout
            .mul_f64(0.2)
            .clamp(Duration::from_secs(1), Duration::from_secs(10))
    }

    /// Re-arms the action unless its deadline outlasts a command that may take `worst_case`.
    pub(super) async fn rearm(&self, held: &mut Held<'_>, worst_case: Duration) {
        // One second for the command's delivery: the script is killed `worst_case` after it starts.
        if held.last_heartbeat.elapsed() + worst_case + Duration::from_secs(1) >= self.cfg.terminate_heartbeat_timeout {
            self.beat(held).await;
        }
    }

    /// Re-arms the action now.
    pub(super) async fn beat(&self, held: &mut Held<'_>) {
        self.heartbeat(held.intent).await;
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
