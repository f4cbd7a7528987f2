//! The drain-check function's entry: a check's message, and its retirement's next step,
//! reaching no other verb.

use super::act::{answered, log_start};
use super::*;

impl<F: Fleet, R: Remote, D, P, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// Handles one drain check (the drain-check function's SQS message): a drain handed over
    /// by a terminate hook, looked at again. A body that is not a check is logged and dropped.
    pub async fn handle_drain_check(&self, body: &str, deadline: Option<Instant>) -> Result<Outcome, PortError> {
        let check: plan::drain_check::DrainCheck = match serde_json::from_str(body) {
            Ok(c) => c,
            Err(e) => {
                error!(step = "parse", outcome = "invalid", error = %e, "drain check rejected");
                return Ok(Outcome::new(
                    OutcomeKind::Invalid,
                    None,
                    format!("not a drain check: {e}"),
                ));
            }
        };
        let intent = Intent::Retire {
            instance_id: check.action.instance_id.clone(),
            group: check.action.group.clone(),
            action: Some(check.action.clone()),
        };
        let span = info_span!(
            "lifecycle",
            instance_id = %intent.instance_id(),
            group = %intent.group(),
            intent = "drain-check",
        );
        let id = intent.instance_id().to_string();
        async { answered(&id, self.check_on(intent, deadline, check).await) }
            .instrument(span)
            .await
    }

    /// A drain check: its retirement's next step. A retirement already sent reads no groups:
    /// the message says the node and the manager; the other managers are read only when it
    /// hands over (`operators`). Nothing here reaches the other verbs: the drain-check
    /// function's binary holds only what checks call (scripts/reachable-actions.py).
    async fn check_on(
        &self,
        intent: Intent,
        deadline: Option<Instant>,
        check: plan::drain_check::DrainCheck,
    ) -> Result<Outcome, PortError> {
        let started = Instant::now();
        let member = if check.phase != plan::drain_check::Phase::Draining {
            Member {
                cluster: self.cfg.cluster_name.clone(),
                role: check.role,
                dns_name: None,
                groups: vec![],
            }
        } else {
            match self.member_of(&intent, None).await? {
                Ok(m) => m,
                Err(o) => return Ok(o),
            }
        };
        log_start(&member);
        let budget_end = self.retire_end(deadline);
        let outcome = self.check_drain(&intent, &member, check, budget_end).await;
        self.account(&intent, &member, started, outcome).await
    }
}
