//! Join: an instance into the swarm (launch hook, ECS ACTIVE, a reconcile's stray), and the
//! record of a manager. Owns the launch action's clock; never removes a node itself.

use super::kept_alive::KeptAlive;
use super::*;

impl<F: Fleet, R: Remote, D: Dns, P: Parameters, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    pub(super) async fn join(
        &self,
        intent: &Intent,
        m: &Member,
        started: Instant,
        end: Instant,
    ) -> Result<Outcome, PortError> {
        let id = intent.instance_id();
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
        let mut backoff = Backoff::new(self.cfg.poll_max);
        // The agent needs 30-90 s after launch on AWS: wait for it with bounded backoff.
        let agent_end = clamp(Instant::now() + self.cfg.agent_wait, Some(end));
        let mut polls: u32 = 0;
        // The same call tells which of the cluster's managers can take a command.
        let mut ask = vec![id.to_string()];
        ask.extend(manager_ids(&m.groups, &self.cfg, id));
        let online_managers = loop {
            match self.remote.online(&ask).await {
                Ok(on) if on.iter().any(|x| x == id) => break on,
                Ok(_) => {}
                Err(e) if e.is_final() => return Err(e),
                Err(e) => warn!(step = "wait-agent", outcome = "retry", error = %e),
            }
            if !self.rearm_if_due(&alive).await {
                return Ok(self.ended(intent));
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
                    return self.finish(intent, ActionResult::Abandon, "instance is gone").await;
                }
                if self.cfg.dry_run {
                    info!(
                        step = "wait-agent",
                        outcome = "dry-run",
                        "agent offline; would wait for it"
                    );
                    return Ok(Outcome::new(OutcomeKind::DryRun, Some(id), "agent offline; would wait"));
                }
                if Instant::now() >= agent_end {
                    let reason = format!("SSM agent not Online after {}s", self.cfg.agent_wait.as_secs());
                    return self.finish(intent, ActionResult::Abandon, &reason).await;
                }
            }
            backoff.wait(agent_end).await;
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

        let mut backoff = Backoff::new(self.cfg.poll_max);
        let mut groups = Some(m.groups.clone());
        loop {
            if !self.rearm_if_due(&alive).await {
                return Ok(self.ended(intent));
            }
            if Instant::now() >= end {
                let reason = format!("could not join within budget: {last_reason}");
                return self.finish(intent, ActionResult::Abandon, &reason).await;
            }
            let snap = match self.observe_join(id, m, groups.take()).await {
                Ok(s) => s,
                Err(e) if e.is_final() => return Err(e),
                Err(e) => {
                    warn!(step = "observe", outcome = "retry", error = %e);
                    last_reason = e.to_string();
                    backoff.wait(end).await;
                    continue;
                }
            };
            let mut decision = plan::decide_join(&snap);
            let mut snap = snap;
            if decision == JoinDecision::NeedLocks {
                let path = self.cfg.lock_path(&m.cluster);
                match self.params.list(&path).await {
                    Ok(list) => {
                        snap.locks = Some(list.iter().filter_map(|(n, v)| LockEntry::parse(&path, n, v)).collect());
                        decision = plan::decide_join(&snap);
                    }
                    Err(e) => {
                        warn!(step = "read-lock", outcome = "retry", error = %e);
                        backoff.wait(end).await;
                        continue;
                    }
                }
            }
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
                JoinDecision::NeedLocks => unreachable!("locks were read above"),
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
                Ok(()) => {}
                Err(Retry::Refused(e)) => return Err(e),
                Err(Retry::Retiring) => {
                    return self
                        .finish(intent, ActionResult::Abandon, "the instance is being retired")
                        .await
                }
                Err(Retry::Unfit(reason)) => {
                    error!(step = "join", outcome = "unfit", %reason, "this instance cannot join the swarm");
                    return self.finish(intent, ActionResult::Abandon, &reason).await;
                }
                Err(Retry::Again(reason)) => {
                    warn!(step = "join", outcome = "retry", %reason);
                    last_reason = reason;
                    backoff.wait(end).await;
                    continue;
                }
            }
            return self.joined(intent, m, ip, already, end).await;
        }
    }

    /// The node is Ready: a manager's address goes into the manager name, then CONTINUE.
    /// `already`: the node was a member before this invocation; without a lifecycle action
    /// (ECS, the reconcile) nothing was joined, so nothing is announced or counted.
    async fn joined(
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

    fn ended(&self, intent: &Intent) -> Outcome {
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

    /// The common case in one command: the cluster has managers, so the instance joins
    /// through whichever accepts it while those managers wait for its node to be Ready
    /// (scripts/join-ready.sh). None when that did not settle it (no swarm yet, agent
    /// offline, token missing, …): the observing loop takes over and decides, and a command
    /// that ran and failed leaves its result in `why`.
    async fn join_fast(
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
                    ("NODE_LABELS", labels.clone()),
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
        let results = match self.remote.run(&targets, cmds, timeout, USUAL_JOIN, "swarm join").await {
            Ok(r) => r,
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
                    .ok()?
            }
            Err(e) => {
                warn!(step = "join", outcome = "retry", error = %e);
                *why = e.to_string();
                return None;
            }
        };
        let mine = results.iter().find(|r| r.instance_id == id)?;
        let said = NodeSaid::of(&mine.stdout);
        if mine.exit() == Some(ScriptExit::Retiring) {
            return Some(
                self.finish(intent, ActionResult::Abandon, "the instance is being retired")
                    .await,
            );
        }
        if let Err(Retry::Unfit(reason)) = unfit(mine) {
            error!(step = "join", outcome = "unfit", %reason, "this instance cannot join the swarm");
            return Some(self.finish(intent, ActionResult::Abandon, &reason).await);
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
                let own = said.node_id;
                let confirmed = NodeSaid::of(&r.stdout);
                let labelled = confirmed.node_id;
                if own.is_some() && own != labelled {
                    // The manager found another Ready node at this address (a ghost of an
                    // earlier join that has not timed out yet): the instance's own node is
                    // the one to wait for and label.
                    warn!(step = "ready", outcome = "other-node", node_id = labelled.unwrap_or(""),
                          own = own.unwrap_or(""), via = %r.instance_id);
                    if let Err(e) = self
                        .verify_ready(id, own.map(str::to_string), &r.instance_id, &labels, end)
                        .await
                    {
                        warn!(step = "ready", outcome = "retry", error = %e);
                        return None;
                    }
                } else {
                    info!(step = "ready", outcome = "ok", node_id = labelled.unwrap_or(""), via = %r.instance_id);
                }
                if confirmed.reactivated {
                    info!(step = "reactivate", outcome = "ok", "drained node set active again");
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
                if let Err(e) = self.verify_ready(id, own, &confirmer.instance_id, &labels, end).await {
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

    /// An ECS ACTIVE (or a reconcile) of an instance in service undoes an earlier ECS
    /// DRAINING; never for a launch, nor for an instance that is leaving.
    fn reactivates(&self, intent: &Intent, m: &Member) -> bool {
        let id = intent.instance_id();
        !self.cfg.dry_run
            && intent.action().is_none()
            && m.groups
                .iter()
                .flat_map(|g| &g.instances)
                .any(|i| i.id == id && i.lifecycle_state == LifecycleState::InService)
    }

    /// The cheap check of an action-less join: Some(outcome) when the instance's node is Ready
    /// and labelled (and a manager's record is there); None sends the join the whole way.
    async fn already_member(
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

    async fn init(&self, me: &Joiner<'_>, m: &Member, generation: u32, held: bool, end: Instant) -> Result<(), Retry> {
        let Joiner { id, ip, labels } = *me;
        let ip = ip.ok_or_else(|| Retry::Again("no private IP".into()))?;
        if !held {
            let name = format!("{}/{}", self.cfg.lock_path(&m.cluster), generation);
            let won = self
                .params
                .create(&name, &LockEntry::value(id, unix_now()))
                .await
                .map_err(retry)?;
            if !won {
                info!(
                    step = "init-lock",
                    outcome = "lost",
                    generation,
                    "another manager initialises the swarm"
                );
                return Err(Retry::Again("init lock taken by another manager".into()));
            }
            info!(step = "init-lock", outcome = "acquired", generation);
        }
        let cmds = script_commands(
            &[
                ("ADVERTISE_ADDR", ip.to_string()),
                ("TOKEN_PREFIX", self.token_prefix(&m.cluster)),
                ("TOKEN_KMS_KEY", self.cfg.token_kms_key.clone().unwrap_or_default()),
                shared_storage_var(&self.cfg),
            ],
            scripts::INIT,
        );
        let r = self.run_raw(id, cmds, USUAL_JOIN, "swarm init").await?;
        if r.exit() == Some(ScriptExit::Retiring) {
            return Err(Retry::Retiring);
        }
        unfit(&r)?;
        if !r.ok() {
            return Err(Retry::Again(format!("swarm init on {id}: {}", r.summary())));
        }
        info!(step = "init", outcome = "ok");
        metric(&m.cluster, m.role.as_str(), "SwarmInits", 1.0, "Count");
        let node_id = NodeSaid::of(&r.stdout).node_id.map(str::to_string);
        self.verify_ready(id, node_id, id, labels, end).await
    }

    async fn join_via(
        &self,
        me: &Joiner<'_>,
        m: &Member,
        manager: &str,
        manager_ip: Ipv4Addr,
        end: Instant,
    ) -> Result<(), Retry> {
        let Joiner { id, ip, labels } = *me;
        let ip = ip.ok_or_else(|| Retry::Again("no private IP".into()))?;
        let cmds = script_commands(
            &[
                ("MANAGER_ADDR", manager_ip.to_string()),
                ("ADVERTISE_ADDR", ip.to_string()),
                ("TOKEN_PARAMETER", self.cfg.token_parameter(&m.cluster, m.role)),
                shared_storage_var(&self.cfg),
            ],
            scripts::JOIN,
        );
        let mut r = self.run_raw(id, cmds.clone(), USUAL_JOIN, "swarm join").await?;
        if r.exit() == Some(ScriptExit::TokenMissing) {
            // Token missing or rotated: publish it again from the manager, then retry once.
            info!(step = "publish-tokens", outcome = "needed", via = manager);
            let publish = script_commands(
                &[
                    ("TOKEN_PREFIX", self.token_prefix(&m.cluster)),
                    ("TOKEN_KMS_KEY", self.cfg.token_kms_key.clone().unwrap_or_default()),
                ],
                scripts::PUBLISH_TOKENS,
            );
            self.run_one(manager, publish, "publish join tokens").await?;
            r = self.run_raw(id, cmds, USUAL_JOIN, "swarm join").await?;
        }
        if r.exit() == Some(ScriptExit::Retiring) {
            return Err(Retry::Retiring);
        }
        unfit(&r)?;
        if !r.ok() {
            return Err(Retry::Again(format!("join via {manager} failed: {}", r.summary())));
        }
        info!(step = "join", outcome = "ok", via = manager, role = %m.role);
        let node_id = NodeSaid::of(&r.stdout).node_id.map(str::to_string);
        self.verify_ready(id, node_id, manager, labels, end).await
    }

    fn token_prefix(&self, cluster: &str) -> String {
        format!("{}/{}/join-token", self.cfg.parameter_prefix, cluster)
    }

    /// Waits on a manager until the node is Ready, and labels it with its instance id and
    /// `labels` (`plan::labels::encode`).
    pub(super) async fn verify_ready(
        &self,
        id: &str,
        node_id: Option<String>,
        on: &str,
        labels: &str,
        end: Instant,
    ) -> Result<(), Retry> {
        let node_id = node_id
            .filter(|n| crate::safe::is_node_id(n))
            .ok_or_else(|| Retry::Again("node id unknown".into()))?;
        let wait = end
            .saturating_duration_since(Instant::now())
            .min(Duration::from_secs(60))
            .min(self.cfg.script_wait_max())
            .as_secs()
            .max(1);
        let cmds = script_commands(
            &[
                ("NODE_ID", node_id.clone()),
                ("INSTANCE_ID", id.to_string()),
                ("WAIT_SECONDS", wait.to_string()),
                ("NODE_LABELS", labels.to_string()),
            ],
            scripts::NODE_READY,
        );
        self.run_one(on, cmds, "wait for node Ready").await?;
        info!(step = "ready", outcome = "ok", node_id = %node_id, via = on);
        Ok(())
    }
}

/// The instance a join or init is for: its id, its address and its labels (encoded).
#[derive(Clone, Copy)]
struct Joiner<'a> {
    id: &'a str,
    ip: Option<Ipv4Addr>,
    labels: &'a str,
}

/// Some manager of the cluster has completed its launch (and so the swarm's tokens exist).
fn has_manager_in_service(groups: &[Group], cfg: &Config) -> bool {
    let ids = manager_ids(groups, cfg, "");
    groups
        .iter()
        .flat_map(|g| &g.instances)
        .any(|i| i.lifecycle_state == LifecycleState::InService && ids.contains(&i.id))
}

impl<F: Fleet, R: Remote, D: Dns, P: Parameters, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// Waits until a manager of the cluster is in service (its groups read again at each step,
    /// the launch action kept alive), or until `end`: the groups as last read. None: the
    /// action ended meanwhile.
    async fn manager_in_service(
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

    /// The placement labels of instance `id` (as EC2 described it) in its group, encoded for
    /// the scripts; "" when it was not described (its instance-id label is set regardless).
    /// Err: its group's own labels are malformed.
    fn labels_of(&self, id: &str, instance: Option<&Instance>, m: &Member) -> Result<String, String> {
        let Some(i) = instance else { return Ok(String::new()) };
        let group = m.groups.iter().find(|g| g.instances.iter().any(|x| x.id == id));
        let labels = match group {
            Some(g) => plan::labels::node_labels(i, g)?,
            None => plan::labels::well_known(i, ""),
        };
        Ok(plan::labels::encode(&labels))
    }

    /// A launch whose group gives malformed labels is abandoned, never joined half-labelled.
    async fn unlabellable(&self, intent: &Intent, reason: &str) -> Result<Outcome, PortError> {
        error!(step = "labels", outcome = "malformed", %reason, "the group's node labels are malformed");
        self.finish(intent, ActionResult::Abandon, reason).await
    }
}

/// A join or init that the instance can never run: its daemon's firewall backend
/// (`refuse_nftables`), or its shared storage not mounted (`require_shared_storage`).
fn unfit(r: &CommandResult) -> Result<(), Retry> {
    if matches!(
        r.exit(),
        Some(ScriptExit::FirewallBackend | ScriptExit::SharedStorageMissing)
    ) {
        return Err(Retry::Unfit(r.summary()));
    }
    Ok(())
}

/// The scripts' SHARED_STORAGE: the path every node mounts the cluster's file system at (or
/// empty: none), checked before a node joins.
fn shared_storage_var(cfg: &crate::Config) -> (&'static str, String) {
    ("SHARED_STORAGE", cfg.shared_storage.clone().unwrap_or_default())
}
