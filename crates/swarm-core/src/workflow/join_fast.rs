//! A join in one command, the common case: the instance joins through whichever manager
//! accepts it while those managers wait for its node (scripts/join-ready.sh); and the cheap
//! check that an action-less join (ECS, a reconcile) is already done.

use super::join_commands::{shared_storage_var, unfit};
use super::*;

/// A one-command join under way: the instance's address, its node's labels, the budget's end.
#[derive(Clone, Copy)]
struct JoinAt<'a> {
    labels: &'a str,
    ip: Ipv4Addr,
    end: Instant,
}

impl<F: Fleet, R: Remote, D: Dns, P, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// The common case in one command: the cluster has managers, so the instance joins
    /// through whichever accepts it while those managers wait for its node to be Ready
    /// (scripts/join-ready.sh). None when that did not settle it (no swarm yet, agent
    /// offline, token missing, …): the observing loop takes over and decides, and a command
    /// that ran and failed leaves its result in `why`.
    pub(super) async fn join_fast(
        &self,
        intent: &Intent,
        m: &Member,
        online: &[String],
        end: Instant,
        why: &mut String,
    ) -> Option<Result<Outcome, PortError>> {
        let id = intent.instance_id();
        let peer_ids: Vec<String> = manager_ids(&m.groups, &self.cfg, id)
            .into_iter()
            .filter(|p| online.contains(p))
            .collect();
        // It joins and labels: a dry run plans from the observation instead.
        if peer_ids.is_empty() || self.cfg.dry_run {
            return None;
        }
        let mut ids = vec![id.to_string()];
        ids.extend(peer_ids.iter().cloned());
        let instances = self.fleet.describe_instances(&ids).await.ok()?;
        // In the managers' order (lowest id first), whatever order EC2 answers in.
        let managers: Vec<Instance> = peer_ids
            .iter()
            .filter_map(|p| instances.iter().find(|i| &i.id == p).cloned())
            .collect();
        let in_service: Vec<String> = m
            .groups
            .iter()
            .flat_map(|g| &g.instances)
            .filter(|i| i.lifecycle_state == LifecycleState::InService)
            .map(|i| i.id.clone())
            .collect();
        let me = instances.iter().find(|i| i.id == id);
        let labels = match self.labels_of(id, me, m) {
            Ok(l) => l,
            Err(reason) => return Some(self.unlabellable(intent, &reason).await),
        };
        let plan::FastJoin { ip, through } = plan::plan_fast_join(me, &managers, &in_service)?;
        let at = JoinAt {
            labels: &labels,
            ip,
            end,
        };
        let results = self.run_fast_join(intent, m, &at, &through, why).await?;
        self.read_fast_join(intent, m, &results, &at, why).await
    }
}

impl<F, R: Remote, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// Sends the one-command join to the instance and the first of `through` (the managers
    /// that confirm its node Ready), again without those whose agent is offline. None: it
    /// could not run (the observing loop decides; an error's words in `why`).
    async fn run_fast_join(
        &self,
        intent: &Intent,
        m: &Member,
        at: &JoinAt<'_>,
        through: &[(String, Ipv4Addr)],
        why: &mut String,
    ) -> Option<Vec<CommandResult>> {
        let id = intent.instance_id();
        let JoinAt { labels, ip, end } = *at;
        let mut peers: Vec<(&String, Ipv4Addr)> = through.iter().map(|(p, a)| (p, *a)).collect();
        let wait = end
            .saturating_duration_since(Instant::now())
            .min(self.cfg.script_wait_max())
            .min(Duration::from_secs(30))
            .as_secs()
            .max(1);
        let reactivate = self.reactivates(intent, m);
        let command = |peers: &[(&String, Ipv4Addr)]| {
            let addrs: Vec<String> = peers.iter().map(|(_, a)| a.to_string()).collect();
            let cmds = script_commands(
                &[
                    ("JOIN_INSTANCE", id.to_string()),
                    ("JOIN_ADDR", ip.to_string()),
                    ("MANAGER_ADDRS", addrs.join(" ")),
                    ("TOKEN_PARAMETER", self.cfg.token_parameter(&m.cluster, m.role)),
                    ("WAIT_SECONDS", wait.to_string()),
                    ("REACTIVATE", reactivate.to_string()),
                    ("NODE_LABELS", labels.to_string()),
                    shared_storage_var(&self.cfg),
                ],
                scripts::JOIN_READY,
            );
            // One manager confirms the node Ready: every manager polling the node list for
            // every join made a scale-out's confirmations cost managers × joins.
            let targets = vec![id.to_string(), peers[0].0.clone()];
            (targets, cmds)
        };
        let timeout = self.cfg.command_timeout;
        let (targets, cmds) = command(&peers);
        match self.remote.run(&targets, cmds, timeout, USUAL_JOIN, "swarm join").await {
            Ok(r) => Some(r),
            Err(PortError::NotOnline(_)) => {
                // Some agent is offline (or the instance's own is not up yet): go on with the
                // managers that answer, if the instance is online; else the agent wait decides.
                let online = self.remote.online(&targets).await.ok()?;
                peers.retain(|(p, _)| online.contains(p));
                if !online.iter().any(|o| o == id) || peers.is_empty() {
                    return None;
                }
                let (targets, cmds) = command(&peers);
                self.remote
                    .run(&targets, cmds, timeout, USUAL_JOIN, "swarm join")
                    .await
                    .ok()
            }
            Err(e) => {
                warn!(step = "join", outcome = "retry", error = %e);
                *why = e.to_string();
                None
            }
        }
    }
}

impl<F: Fleet, R: Remote, D: Dns, P, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// Reads the one-command join's answers: joined and confirmed Ready (or waited for), the
    /// instance retiring or unfit, or None: not settled (the observing loop decides).
    async fn read_fast_join(
        &self,
        intent: &Intent,
        m: &Member,
        results: &[CommandResult],
        at: &JoinAt<'_>,
        why: &mut String,
    ) -> Option<Result<Outcome, PortError>> {
        let id = intent.instance_id();
        let JoinAt { labels, ip, end } = *at;
        let mine = results.iter().find(|r| r.instance_id == id)?;
        let said = NodeSaid::of(&mine.stdout);
        if mine.exit() == Some(ScriptExit::Retiring) {
            return Some(self.join_failed(intent, Retry::Retiring).await);
        }
        if let Err(failed @ Retry::Unfit(_)) = unfit(mine) {
            return Some(self.join_failed(intent, failed).await);
        }
        let ready = results
            .iter()
            .find(|r| r.instance_id != id && r.ok() && NodeSaid::of(&r.stdout).ready());
        match ready {
            Some(r) if mine.ok() => {
                info!(
                    step = "join",
                    outcome = "ok",
                    via = said.via.unwrap_or("already a member"),
                    role = %m.role
                );
                if !self.confirmed_ready(id, said.node_id, r, labels, end).await {
                    return None;
                }
                Some(self.joined(intent, m, Some(ip), said.already, end).await)
            }
            // The instance joined but its node was not Ready within the confirming manager's
            // wait (a busy machine: joins of 30 s and more): that manager waits for the node
            // it now knows, rather than the join being observed and planned from the start.
            None if mine.ok() => {
                let own = said.node_id.map(str::to_string);
                let confirmer = results
                    .iter()
                    .find(|r| r.instance_id != id && r.ok() && NodeSaid::of(&r.stdout).waiting())?;
                info!(step = "ready", outcome = "waiting", via = %confirmer.instance_id,
                      "joined; its node was not Ready within the first wait");
                if let Err(e) = self.verify_ready(id, own, &confirmer.instance_id, labels, end).await {
                    warn!(step = "ready", outcome = "retry", error = %e);
                    *why = e.to_string();
                    return None;
                }
                Some(self.joined(intent, m, Some(ip), said.already, end).await)
            }
            _ => {
                info!(
                    step = "join",
                    outcome = "observe",
                    result = %mine.summary(),
                    "one-command join did not settle it"
                );
                *why = match results.iter().find(|r| !r.ok()) {
                    Some(r) => format!("the join command on {}: {}", r.instance_id, r.summary()),
                    None => "the join command ended without the node Ready".into(),
                };
                None
            }
        }
    }
}

impl<F, R: Remote, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// A manager confirmed the node Ready (`r`, its half of the join command). When the node
    /// it found is not the instance's own (`own`: a ghost of an earlier join at this address
    /// that has not timed out yet), the instance's own node is waited for and labelled.
    /// false: not seen Ready; the join is observed again.
    async fn confirmed_ready(
        &self,
        id: &str,
        own: Option<&str>,
        r: &CommandResult,
        labels: &str,
        end: Instant,
    ) -> bool {
        let confirmed = NodeSaid::of(&r.stdout);
        let labelled = confirmed.node_id;
        if own.is_some() && own != labelled {
            warn!(step = "ready", outcome = "other-node", node_id = labelled.unwrap_or(""),
                  own = own.unwrap_or(""), via = %r.instance_id);
            if let Err(e) = self
                .verify_ready(id, own.map(str::to_string), &r.instance_id, labels, end)
                .await
            {
                warn!(step = "ready", outcome = "retry", error = %e);
                return false;
            }
        } else {
            info!(step = "ready", outcome = "ok", node_id = labelled.unwrap_or(""), via = %r.instance_id);
        }
        if confirmed.reactivated {
            info!(step = "reactivate", outcome = "ok", "drained node set active again");
        }
        true
    }
}

impl<F, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// An ECS ACTIVE (or a reconcile) of an instance in service undoes an earlier ECS
    /// DRAINING; never for a launch, nor for an instance that is leaving.
    pub(super) fn reactivates(&self, intent: &Intent, m: &Member) -> bool {
        let id = intent.instance_id();
        !self.cfg.dry_run
            && intent.action().is_none()
            && m.groups
                .iter()
                .flat_map(|g| &g.instances)
                .any(|i| i.id == id && i.lifecycle_state == LifecycleState::InService)
    }
}

impl<F, R: Remote, D: Dns, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// The cheap check of an action-less join: Some(outcome) when the instance's node is Ready
    /// and labelled (and a manager's record is there); None sends the join the whole way.
    pub(super) async fn already_member(
        &self,
        intent: &Intent,
        m: &Member,
        online: &[String],
    ) -> Option<Result<Outcome, PortError>> {
        let id = intent.instance_id();
        let op = manager_ids(&m.groups, &self.cfg, id)
            .into_iter()
            .find(|p| online.contains(p))?;
        let cmds = script_commands(
            &[
                ("INSTANCE_ID", id.to_string()),
                ("REACTIVATE", self.reactivates(intent, m).to_string()),
            ],
            scripts::NODE_STATUS,
        );
        // Inconclusive is not an error: the full join path decides (and says what it finds).
        let inconclusive = |why: &str| info!(step = "already-member", outcome = "inconclusive", via = %op, why);
        let r = match self.run_one(&op, cmds, "node status").await {
            Ok(r) => r,
            Err(e) => {
                inconclusive(&format!("node status failed: {e}"));
                return None;
            }
        };
        let said = NodeSaid::of(&r.stdout);
        if !said.ready() {
            inconclusive(&format!("node state {:?}", said.state.unwrap_or("unknown")));
            return None;
        }
        if let (Role::Manager, Some(name)) = (m.role, &m.dns_name) {
            let records = self.dns.manager_records(&self.cfg.hosted_zone_id, name).await.ok()?;
            if !records.iter().any(|x| x.set_identifier == id) {
                inconclusive("no manager record");
                return None;
            }
        }
        if said.reactivated {
            info!(step = "reactivate", outcome = "ok", "drained node set active again");
        }
        info!(step = "join", outcome = "already-member", via = %op, "node Ready and labelled: nothing to do");
        Some(Ok(Outcome::new(
            OutcomeKind::AlreadyMember,
            Some(id),
            "node Ready and labelled",
        )))
    }
}
