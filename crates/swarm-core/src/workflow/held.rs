//! A held lifecycle action's clock: how long a command may wait inside it and when it must be
//! re-armed. Heartbeats only; completes nothing.

use super::*;

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
    pub(super) async fn rearm(&self, intent: &Intent, last_heartbeat: &mut Instant, worst_case: Duration) {
        // One second for the command's delivery: the script is killed `worst_case` after it starts.
        if last_heartbeat.elapsed() + worst_case + Duration::from_secs(1) >= self.cfg.terminate_heartbeat_timeout {
            self.heartbeat(intent).await;
            *last_heartbeat = Instant::now();
        }
    }

    pub(super) async fn heartbeat(&self, intent: &Intent) {
        let Some(action) = intent.action() else {
            return;
        };
        match self.fleet.record_heartbeat(action).await {
            Ok(()) => info!(step = "heartbeat", outcome = "ok"),
            Err(PortError::NoActiveAction(_)) => info!(
                step = "heartbeat",
                outcome = "no-action",
                "lifecycle action already ended"
            ),
            Err(e) => error!(step = "heartbeat", outcome = "failed", error = %e),
        }
    }
}
