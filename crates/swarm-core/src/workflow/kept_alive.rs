//! A lifecycle action kept alive while a workflow works inside it — a launch or a termination
//! alike (`KeptAlive`): when it was last re-armed, the rule that re-arms it (before less than
//! a margin of the hook's heartbeat timeout is left) and, for a held termination, when its
//! hold began. Heartbeats only; completes nothing.

use std::cell::Cell;

use super::*;

pub(super) struct KeptAlive<'a> {
    pub intent: &'a Intent,
    /// The hook's heartbeat timeout: the action ends this long after its last re-arm.
    timeout: Duration,
    /// It is re-armed once less than this is left (a launch: half its timeout; a termination:
    /// the re-arm margin, so a hold is never stretched by more than that).
    margin: Duration,
    last: Cell<Instant>,
    hold_started: Cell<Option<Instant>>,
}

impl KeptAlive<'_> {
    /// When it is re-armed next, if the work still runs.
    pub fn due(&self) -> Instant {
        self.last.get() + self.timeout.saturating_sub(self.margin)
    }
    pub fn last_heartbeat(&self) -> Instant {
        self.last.get()
    }
    /// When the hook's timeout lets the action go, unless it is re-armed again.
    pub fn released_at(&self) -> Instant {
        self.last.get() + self.timeout
    }
    /// When the hold (TTL + extra after the record change) began, if it has.
    pub fn hold_started(&self) -> Option<Instant> {
        self.hold_started.get()
    }
    /// The hold began in an earlier invocation (a drain check).
    pub fn held_since(&self, at: Instant) {
        self.hold_started.set(Some(at));
    }
}

impl<F, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// The intent's action, last armed at `since` (its start: the event may have waited).
    pub(super) fn keep_alive<'a>(&self, intent: &'a Intent, since: Instant) -> KeptAlive<'a> {
        let (timeout, margin) = match intent {
            Intent::Join { .. } => {
                let t = self.cfg.launch_heartbeat_timeout;
                (t, t / 2)
            }
            _ => (self.cfg.terminate_heartbeat_timeout, self.cfg.rearm_margin()),
        };
        KeptAlive {
            intent,
            timeout,
            margin,
            last: Cell::new(since),
            hold_started: Cell::new(None),
        }
    }
}

impl<F: Fleet, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// Re-arms the action now. The call may take its margin at most: one that hangs (a stuck
    /// connection) is given up so the work goes on, and the next re-arm is due a period later.
    /// False: the action has ended (completed, timed out, or superseded).
    pub(super) async fn rearm(&self, alive: &KeptAlive<'_>) -> bool {
        let margin = alive.margin;
        let live = match tokio::time::timeout(margin, self.heartbeat(alive.intent)).await {
            Ok(live) => live,
            Err(_) => {
                warn!(
                    step = "heartbeat",
                    outcome = "timeout",
                    secs = margin.as_secs_f64(),
                    "no answer within the re-arm margin: given up"
                );
                true
            }
        };
        alive.last.set(Instant::now());
        live
    }

    /// Re-arms the action if it is due (a launch's checkpoints between steps). False: it has
    /// ended. A dry run re-arms nothing.
    pub(super) async fn rearm_if_due(&self, alive: &KeptAlive<'_>) -> bool {
        if self.cfg.dry_run || Instant::now() < alive.due() {
            return true;
        }
        self.rearm(alive).await
    }

    /// The record change is in sync: the hold starts now (never earlier), re-armed.
    pub(super) async fn start_hold(&self, alive: &KeptAlive<'_>) {
        alive.hold_started.set(Some(Instant::now()));
        self.rearm(alive).await;
    }

    /// Runs `work` while the action is kept alive: re-armed whenever it is due, so a command
    /// of any length (a drain of minutes, a slow Route 53) never outlives the hook. No
    /// heartbeat is sent when the work ends in time, so a manager's hold still ends TTL +
    /// extra after its record change. Terminations throttled behind this one are re-armed
    /// with it (queued.rs).
    pub(super) async fn while_alive<T>(&self, alive: &KeptAlive<'_>, work: impl std::future::Future<Output = T>) -> T {
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = tokio::time::sleep_until(alive.due()) => {
                    info!(step = "heartbeat", reason = "work-running");
                    self.rearm(alive).await;
                    let margin = self.cfg.rearm_margin();
                    let _ = tokio::time::timeout(margin, self.keep_waiting_alive(alive.intent)).await;
                }
            }
        }
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
