//! Drain and cordon in place: the node stays in the swarm (ECS DRAINING, a notice's drain, a
//! rebalance recommendation's cordon), changed through a manager that can operate.

use super::held::{Held, Operators};
use super::*;
use crate::model::SwarmNode;

impl<F: Fleet, R: Remote, D: Dns, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// The node of an instance that stays in the swarm, and the managers that can change it;
    /// Err: the outcome when there is nothing to `verb` (no node, no live manager, dry run).
    async fn node_in_place(
        &self,
        intent: &Intent,
        m: &Member,
        verb: &'static str,
    ) -> Result<Result<(SwarmNode, Operators), Outcome>, PortError> {
        let id = intent.instance_id();
        let (snap, ops) = self.observe_retire(id, m, false).await?;
        let (Some(_), Some(node)) = (snap.operator, snap.node) else {
            info!(step = verb, outcome = "skipped", "no node or no live manager");
            return Ok(Err(Outcome::new(
                OutcomeKind::Done,
                Some(id),
                format!("nothing to {verb}"),
            )));
        };
        if self.cfg.dry_run {
            let o = Outcome::new(OutcomeKind::DryRun, Some(id), format!("would {verb} {}", node.id));
            return Ok(Err(o));
        }
        Ok(Ok((node, ops)))
    }
}

impl<F: Fleet, R: Remote, D: Dns, P, A: Announce, Q> Lifecycle<F, R, D, P, A, Q> {
    /// ECS DRAINING: the node stops taking tasks, its tasks move; it stays in the swarm.
    pub(super) async fn drain_only(&self, intent: &Intent, m: &Member, end: Instant) -> Result<Outcome, PortError> {
        let id = intent.instance_id();
        let (node, mut ops) = match self.node_in_place(intent, m, "drain").await? {
            Ok(x) => x,
            Err(done) => return Ok(done),
        };
        let mut held = Held::new(self.keep_alive(intent, Instant::now()), m.role);
        self.drain(&mut held, &mut ops, &node.id, end).await;
        metric(&m.cluster, m.role.as_str(), "Drains", 1.0, "Count");
        self.announce_drain_timeout(&mut held, m).await;
        Ok(Outcome::new(OutcomeKind::Done, Some(id), "node drained"))
    }
}

impl<F: Fleet, R: Remote, D: Dns, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// A rebalance recommendation (when so configured): the node takes no new tasks and keeps
    /// the ones it runs (availability pause).
    pub(super) async fn cordon(&self, intent: &Intent, m: &Member) -> Result<Outcome, PortError> {
        let id = intent.instance_id();
        let (node, mut ops) = match self.node_in_place(intent, m, "cordon").await? {
            Ok(x) => x,
            Err(done) => return Ok(done),
        };
        match self
            .on_operator(
                &mut ops,
                &[("NODE_ID", node.id.clone())],
                scripts::CORDON,
                self.cfg.command_timeout,
                "cordon",
            )
            .await
        {
            Ok(_) => {
                info!(step = "cordon", outcome = "ok", node_id = %node.id);
                metric(&m.cluster, m.role.as_str(), "Cordons", 1.0, "Count");
                Ok(Outcome::new(OutcomeKind::Done, Some(id), "node cordoned"))
            }
            Err(Retry::Refused(e)) => Err(e),
            Err(e) => Err(PortError::aws("cordon", e.to_string())),
        }
    }
}
