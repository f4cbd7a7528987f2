//! Join: an instance into the swarm (launch hook, ECS ACTIVE, a reconcile's stray), and the
//! record of a manager. Owns the launch action's clock; never removes a node itself.

use super::join_commands::Joiner;
use super::join_wait::has_manager_in_service;
use std::ops::ControlFlow;

use super::kept_alive::KeptAlive;
use super::*;
use crate::plan::JoinSnapshot;

impl<F: Fleet, R: Remote, D: Dns, P: Parameters, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    pub(super) async fn join(
        &self,
        intent: &Intent,
        m: &Member,
        started: Instant,
        end: Instant,
    ) -> Result<Outcome, PortError> {
        if intent.action().is_some() && Instant::now() >= end {
            let reason = format!(
                "the launch budget was spent before the event was handled ({}s after the action began)",
                started.elapsed().as_secs()
            );
            return self.finish(intent, ActionResult::Abandon, &reason).await;
        }
        // The hook's heartbeat timeout runs from the action's start: a join that outlasts half
        // of it re-arms the action (and learns when the action has ended meanwhile).
        let alive = self.keep_alive(intent, started);
        let online_managers = match self.wait_for_agent(intent, m, &alive, end).await {
            ControlFlow::Continue(on) => on,
            ControlFlow::Break(done) => return done,
        };
        info!(step = "wait-agent", outcome = "online");
        // An action found late (a reconcile's repair of a lost launch event) may be past half
        // its timeout already: re-armed before the join's first command, not after it.
        if !self.rearm_if_due(&alive).await {
            return Ok(self.ended(intent));
        }
        // ECS says ACTIVE whenever its agent reconnects or tasks start and stop: for a node that
        // is Ready and labelled already (and a manager's record in place), one command to one
        // manager is all the event costs.
        if intent.action().is_none() {
            if let Some(done) = self.already_member(intent, m, &online_managers).await {
                return done;
            }
        }
        // The join budget starts once the agent answers.
        let end = clamp(Instant::now() + self.cfg.join_budget, Some(end));
        // What the abandon says when the budget runs out: the last attempt's own words.
        let mut last_reason = String::from("no attempt finished");
        // A cluster created at full size: no manager has completed its launch, so no join token
        // exists yet and a join sent now could only fail. A worker waits for the first manager
        // in service (one group listing a step), then joins once; managers go on to the
        // observing loop, where one of them forms the swarm.
        let forming;
        let m = if m.role == Role::Worker && !self.cfg.dry_run && !has_manager_in_service(&m.groups, &self.cfg) {
            match self.manager_in_service(&alive, m, end).await? {
                Some(groups) => {
                    last_reason = "no manager of the cluster is in service yet".into();
                    forming = Member { groups, ..m.clone() };
                    &forming
                }
                None => return Ok(self.ended(intent)),
            }
        } else {
            m
        };
        if let Some(done) = self.join_fast(intent, m, &online_managers, end, &mut last_reason).await {
            return done;
        }
        self.join_observing(intent, m, &alive, end, last_reason).await
    }

    /// The join by observation: observe, decide (plan::decide_join), act (init, join through a
    /// manager, verify), until the node is Ready or the budget (`end`) is spent.
    async fn join_observing(
        &self,
        intent: &Intent,
        m: &Member,
        alive: &KeptAlive<'_>,
        end: Instant,
        mut last_reason: String,
    ) -> Result<Outcome, PortError> {
        let id = intent.instance_id();
        let mut backoff = Backoff::new(self.cfg.poll_max);
        let mut groups = Some(m.groups.clone());
        loop {
            if !self.rearm_if_due(alive).await {
                return Ok(self.ended(intent));
            }
            if Instant::now() >= end {
                let reason = format!("could not join within budget: {last_reason}");
                return self.finish(intent, ActionResult::Abandon, &reason).await;
            }
            let (snap, decision) = match self.observe_and_decide(id, m, groups.take()).await {
                Ok(x) => x,
                Err((_, e)) if e.is_final() => return Err(e),
                Err((step, e)) => {
                    warn!(step, outcome = "retry", error = %e);
                    last_reason = e.to_string();
                    backoff.wait(end).await;
                    continue;
                }
            };
            info!(step = "plan", decision = ?decision);
            let labels = match self.labels_of(id, snap.instance.as_ref(), m) {
                Ok(l) => l,
                Err(reason) => return self.unlabellable(intent, &reason).await,
            };
            if self.cfg.dry_run {
                return Ok(Outcome::new(
                    OutcomeKind::DryRun,
                    Some(id),
                    format!("would {decision:?}"),
                ));
            }
            let ip = snap.instance.as_ref().and_then(|i| i.private_ip);
            let me = Joiner {
                id,
                ip,
                labels: &labels,
            };
            let already = matches!(decision, JoinDecision::AlreadyMember { .. });
            let attempt = match decision {
                JoinDecision::Gone(reason) => return self.finish(intent, ActionResult::Abandon, &reason).await,
                JoinDecision::NeedLocks => unreachable!("locks were read by decide_with_locks"),
                JoinDecision::Wait(reason) => {
                    info!(step = "wait-swarm", outcome = "waiting", %reason);
                    last_reason = reason;
                    backoff.wait(end).await;
                    continue;
                }
                JoinDecision::AlreadyMember { verify_on } => {
                    let node_id = snap.self_probe.as_ref().and_then(|p| p.node_id.clone());
                    self.verify_ready(id, node_id, &verify_on, &labels, end).await
                }
                JoinDecision::Init { generation, held } => self.init(&me, m, generation, held, end).await,
                JoinDecision::JoinVia { manager, manager_ip } => self.join_via(&me, m, &manager, manager_ip, end).await,
            };
            match attempt {
                Ok(()) => return self.joined(intent, m, ip, already, end).await,
                Err(Retry::Again(reason)) => {
                    warn!(step = "join", outcome = "retry", %reason);
                    last_reason = reason.to_string();
                    backoff.wait(end).await;
                }
                Err(failed) => return self.join_failed(intent, failed).await,
            }
        }
    }
}

impl<F: Fleet, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// A join attempt that asking again cannot help: AWS refused the caller (Err), or the
    /// instance is leaving or unfit (the action is abandoned).
    pub(super) async fn join_failed(&self, intent: &Intent, failed: Retry) -> Result<Outcome, PortError> {
        match failed {
            Retry::Refused(e) => Err(e),
            Retry::Unfit(reason) => {
                error!(step = "join", outcome = "unfit", %reason, "this instance cannot join the swarm");
                self.finish(intent, ActionResult::Abandon, &reason).await
            }
            // `Again` is the loop's own (it asks again); here only for completeness.
            Retry::Retiring | Retry::Again(_) => self.finish(intent, ActionResult::Abandon, &failed.to_string()).await,
        }
    }
}

impl<F: Fleet, R: Remote, D, P: Parameters, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// The instance and the swarm observed, and what the join does next. Err: the step that
    /// failed (the observation, or the init locks' read) and why.
    async fn observe_and_decide(
        &self,
        id: &str,
        m: &Member,
        groups: Option<Vec<Group>>,
    ) -> Result<(JoinSnapshot, JoinDecision), (&'static str, PortError)> {
        let mut snap = self.observe_join(id, m, groups).await.map_err(|e| ("observe", e))?;
        let decision = self
            .decide_with_locks(m, &mut snap)
            .await
            .map_err(|e| ("read-lock", e))?;
        Ok((snap, decision))
    }
}

impl<F, R, D, P: Parameters, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// What the join does next (plan::decide_join), the init locks read first when the plan
    /// needs them. Err: the locks could not be read (the caller looks again).
    async fn decide_with_locks(&self, m: &Member, snap: &mut JoinSnapshot) -> Result<JoinDecision, PortError> {
        let decision = plan::decide_join(snap);
        if decision != JoinDecision::NeedLocks {
            return Ok(decision);
        }
        let path = self.cfg.lock_path(&m.cluster);
        let list = self.params.list(&path).await?;
        snap.locks = Some(list.iter().filter_map(|(n, v)| LockEntry::parse(&path, n, v)).collect());
        Ok(plan::decide_join(snap))
    }
}

impl<F: Fleet, R: Remote, D: Dns, P, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// The node is Ready: a manager's address goes into the manager name, then CONTINUE.
    /// `already`: the node was a member before this invocation; without a lifecycle action
    /// (ECS, the reconcile) nothing was joined, so nothing is announced or counted.
    pub(super) async fn joined(
        &self,
        intent: &Intent,
        m: &Member,
        ip: Option<Ipv4Addr>,
        already: bool,
        end: Instant,
    ) -> Result<Outcome, PortError> {
        let id = intent.instance_id();
        // CONTINUE first: an answer that the action has ended tells whether the instance is
        // still coming into service (a redelivery) or leaving (the hook timed out, or it was
        // terminated mid-join). A leaving instance gets no record, and its node goes.
        let done = self.finish(intent, ActionResult::Continue, "node is Ready").await?;
        if done.outcome == OutcomeKind::AlreadyEnded && self.is_leaving(intent).await {
            warn!(
                step = "dns-add",
                outcome = "skipped",
                "the launch action ended and the instance is leaving: no record; its node is retired"
            );
            let retire = Intent::Retire {
                instance_id: id.to_string(),
                group: intent.group().to_string(),
                action: None,
            };
            self.retire(&retire, m, end).await?;
            return Ok(Outcome::new(
                OutcomeKind::AlreadyEnded,
                Some(id),
                "the launch action ended and the instance is leaving: node retired",
            ));
        }
        if m.role == Role::Manager {
            if let (Some(name), Some(ip)) = (&m.dns_name, ip) {
                let record = ManagerRecord {
                    set_identifier: id.to_string(),
                    ip,
                    ttl: self.cfg.dns_ttl.as_secs(),
                };
                if let Err(e) = self.change_and_wait(name, RecordChange::Upsert(record), end).await {
                    // The node is in the swarm; the reconcile repairs the record.
                    error!(step = "dns-add", outcome = "failed", error = %e);
                } else {
                    metric(&m.cluster, m.role.as_str(), "DnsChanges", 1.0, "Count");
                }
            }
        }
        let mut done = done;
        if already && intent.action().is_none() {
            info!(
                step = "join",
                outcome = "already-member",
                "the node was a member already: not announced"
            );
            done.quiet = true;
        } else {
            self.names_after_join(m, id).await;
            metric(&m.cluster, m.role.as_str(), "Joins", 1.0, "Count");
        }
        Ok(done)
    }
}

impl<F: Fleet, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// True when the instance is on its way out of its group (or gone): its launch action
    /// ended without putting it in service. A failed read answers false: the record is
    /// written and the reconcile repairs it, rather than a live node being removed.
    async fn is_leaving(&self, intent: &Intent) -> bool {
        let group = intent.group().to_string();
        match self.fleet.describe_groups(std::slice::from_ref(&group)).await {
            Ok(groups) => !groups
                .iter()
                .flat_map(|g| &g.instances)
                .any(|i| i.id == intent.instance_id() && !i.is_leaving()),
            Err(e) => {
                warn!(step = "lifecycle-state", outcome = "unknown", error = %e);
                false
            }
        }
    }
}

impl<F, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    pub(super) fn ended(&self, intent: &Intent) -> Outcome {
        info!(
            step = "join",
            outcome = "already-ended",
            "the launch action ended meanwhile: nothing joined, nothing written"
        );
        Outcome::new(
            OutcomeKind::AlreadyEnded,
            Some(intent.instance_id()),
            "the launch action ended before the join",
        )
    }

    /// The placement labels of instance `id` (as EC2 described it) in its group, encoded for
    /// the scripts; "" when it was not described (its instance-id label is set regardless).
    /// Err: its group's own labels are malformed.
    pub(super) fn labels_of(&self, id: &str, instance: Option<&Instance>, m: &Member) -> Result<String, String> {
        let Some(i) = instance else { return Ok(String::new()) };
        let group = m.groups.iter().find(|g| g.instances.iter().any(|x| x.id == id));
        let labels = match group {
            Some(g) => plan::labels::node_labels(i, g)?,
            None => plan::labels::well_known(i, ""),
        };
        Ok(plan::labels::encode(&labels))
    }
}

impl<F: Fleet, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// A launch whose group gives malformed labels is abandoned, never joined half-labelled.
    pub(super) async fn unlabellable(&self, intent: &Intent, reason: &str) -> Result<Outcome, PortError> {
        error!(step = "labels", outcome = "malformed", %reason, "the group's node labels are malformed");
        self.finish(intent, ActionResult::Abandon, reason).await
    }
}
