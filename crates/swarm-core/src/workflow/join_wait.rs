//! What a launch waits for before it joins: its instance's SSM agent Online, and, while the
//! cluster forms, a manager whose launch has completed (the swarm's tokens exist then).

use std::ops::ControlFlow;

use super::kept_alive::KeptAlive;
use super::*;

impl<F: Fleet, R: Remote, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// Waits (bounded backoff, up to AGENT_WAIT) for the instance's SSM agent: the managers
    /// online beside it, or how the join ended (the instance gone, the agent never Online, the
    /// action ended, a dry run).
    pub(super) async fn wait_for_agent(
        &self,
        intent: &Intent,
        m: &Member,
        alive: &KeptAlive<'_>,
        end: Instant,
    ) -> ControlFlow<Result<Outcome, PortError>, Vec<String>> {
        let id = intent.instance_id();
        let mut backoff = Backoff::new(self.cfg.poll_max);
        // The agent needs 30-90 s after launch on AWS: wait for it with bounded backoff.
        let agent_end = clamp(Instant::now() + self.cfg.agent_wait, Some(end));
        let mut polls: u32 = 0;
        // The same call tells which of the cluster's managers can take a command.
        let mut ask = vec![id.to_string()];
        ask.extend(manager_ids(&m.groups, &self.cfg, id));
        loop {
            match self.remote.online(&ask).await {
                Ok(on) if on.iter().any(|x| x == id) => return ControlFlow::Continue(on),
                Ok(_) => {}
                Err(e) if e.is_final() => return ControlFlow::Break(Err(e)),
                Err(e) => warn!(step = "wait-agent", outcome = "retry", error = %e),
            }
            if !self.rearm_if_due(alive).await {
                return ControlFlow::Break(Ok(self.ended(intent)));
            }
            // An instance that is gone never comes Online: look at once, then now and then.
            let check = polls.is_multiple_of(8);
            polls += 1;
            if self.cfg.dry_run || check || Instant::now() >= agent_end {
                let inst = self
                    .fleet
                    .describe_instances(&[id.to_string()])
                    .await
                    .ok()
                    .and_then(|v| v.into_iter().next());
                if !inst.as_ref().is_some_and(|i| i.state.is_alive()) {
                    info!(step = "wait-agent", outcome = "gone", "instance is gone");
                    return ControlFlow::Break(self.finish(intent, ActionResult::Abandon, "instance is gone").await);
                }
                if self.cfg.dry_run {
                    info!(
                        step = "wait-agent",
                        outcome = "dry-run",
                        "agent offline; would wait for it"
                    );
                    let o = Outcome::new(OutcomeKind::DryRun, Some(id), "agent offline; would wait");
                    return ControlFlow::Break(Ok(o));
                }
                if Instant::now() >= agent_end {
                    let reason = format!("SSM agent not Online after {}s", self.cfg.agent_wait.as_secs());
                    return ControlFlow::Break(self.finish(intent, ActionResult::Abandon, &reason).await);
                }
            }
            backoff.wait(agent_end).await;
        }
    }
}

impl<F: Fleet, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// Waits until a manager of the cluster is in service (its groups read again at each step,
    /// the launch action kept alive), or until `end`: the groups as last read. None: the
    /// action ended meanwhile.
    pub(super) async fn manager_in_service(
        &self,
        alive: &KeptAlive<'_>,
        m: &Member,
        end: Instant,
    ) -> Result<Option<Vec<Group>>, PortError> {
        info!(
            step = "wait-manager",
            outcome = "waiting",
            "no manager has completed its launch: the cluster is forming"
        );
        let mut backoff = Backoff::new(self.cfg.poll_max);
        let mut groups = m.groups.clone();
        loop {
            if has_manager_in_service(&groups, &self.cfg) || Instant::now() >= end {
                return Ok(Some(groups));
            }
            if !self.rearm_if_due(alive).await {
                return Ok(None);
            }
            backoff.wait(end).await;
            match self.fleet.groups_tagged(&self.cfg.cluster_tag, &m.cluster).await {
                Ok(g) => groups = g,
                Err(e) if e.is_final() => return Err(e),
                Err(e) => warn!(step = "wait-manager", outcome = "retry", error = %e),
            }
        }
    }
}

/// Some manager of the cluster has completed its launch (and so the swarm's tokens exist).
pub(super) fn has_manager_in_service(groups: &[Group], cfg: &Config) -> bool {
    let ids = manager_ids(groups, cfg, "");
    groups
        .iter()
        .flat_map(|g| &g.instances)
        .any(|i| i.lifecycle_state == LifecycleState::InService && ids.contains(&i.id))
}
