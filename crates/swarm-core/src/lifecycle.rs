//! The join and retire workflows: observe, ask the planner, act through the ports.
//! Every step is idempotent, so a redelivered event or a killed invocation is finished
//! by the next delivery.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;
use tracing::{error, info, info_span, warn, Instrument};

use crate::event::{self, EventError, Intent};
use crate::model::{membership, Group, Instance, ManagerRecord, Membership, NodeStatus, Probe, Role, SwarmView};
use crate::plan::{self, JoinDecision, JoinSnapshot, LockEntry, Peer, RetireSnapshot, RetireStep};
use crate::ports::{
    ActionResult, CommandResult, CommandStatus, Dns, Fleet, Parameters, PortError, PortResult, RecordChange, Remote,
};
use crate::safe::script_commands;
use crate::scripts::{self, output_value, ScriptExit};
use crate::telemetry::metric;
use crate::Config;

/// What an invocation did; also the function's response payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub outcome: OutcomeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// How the lifecycle action was (or will be, for a held one) completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ActionResult>,
    pub detail: String,
}

/// The kinds of outcome, serialized as the response's `outcome` ("already-ended", …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeKind {
    /// The lifecycle action was completed with `result`.
    Completed,
    /// A terminating manager is held; the hook's timeout releases it.
    Held,
    /// Work without a lifecycle action was done.
    Done,
    /// The lifecycle action had ended before this invocation could complete it.
    AlreadyEnded,
    /// The instance's node is Ready and labelled already.
    AlreadyMember,
    Ignored,
    Invalid,
    DryRun,
    /// AWS refused the function's role: not retried.
    Denied,
}

impl Outcome {
    fn new(outcome: OutcomeKind, instance_id: Option<&str>, detail: impl Into<String>) -> Self {
        Outcome {
            outcome,
            instance_id: instance_id.map(str::to_string),
            result: None,
            detail: detail.into(),
        }
    }
}

/// The ports plus configuration: everything a workflow needs.
pub struct Lifecycle<F, R, D, P> {
    pub fleet: F,
    pub remote: R,
    pub dns: D,
    pub params: P,
    pub cfg: Config,
}

struct Member {
    cluster: String,
    role: Role,
    dns_name: Option<String>,
    /// The cluster's groups as read at the start of the invocation.
    groups: Vec<Group>,
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Exponential backoff with full jitter, capped.
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    fn new(max: Duration) -> Self {
        Backoff {
            next: Duration::from_millis(250).min(max),
            max,
        }
    }
    async fn wait(&mut self, deadline: Instant) {
        let jittered = self.next.mul_f64(0.5 + rand::random::<f64>() * 0.5);
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(jittered.min(left)).await;
        self.next = (self.next * 2).min(self.max);
    }
}

impl<F: Fleet, R: Remote, D: Dns, P: Parameters> Lifecycle<F, R, D, P> {
    /// Handles one lifecycle event. Bad input is logged and answered with success (an
    /// error would make Lambda retry an event that can never succeed). Err is returned
    /// only for failures a later delivery can fix.
    pub async fn handle(&self, raw: &Value, deadline: Option<Instant>) -> Result<Outcome, PortError> {
        let (meta, intent) = match event::lifecycle_intent(raw) {
            Ok(x) => x,
            Err(EventError::TestNotification) => {
                info!(step = "parse", outcome = "ignored", "test notification");
                return Ok(Outcome::new(OutcomeKind::Ignored, None, "test notification"));
            }
            Err(e) => {
                error!(step = "parse", outcome = "invalid", error = %e, "event rejected");
                return Ok(Outcome::new(OutcomeKind::Invalid, None, e.to_string()));
            }
        };
        let span = info_span!(
            "lifecycle",
            event_id = %meta.id,
            instance_id = %intent.instance_id(),
            group = %intent.group(),
            intent = intent.kind(),
        );
        self.handle_intent(intent, deadline).instrument(span).await
    }

    /// Handles an ECS "Container Instance State Change": the instance's group (and so its
    /// cluster and role) is looked up; instances outside any cluster get one log line.
    pub async fn handle_ecs(&self, raw: &Value, deadline: Option<Instant>) -> Result<Outcome, PortError> {
        let (meta, instance_id, change) = match event::ecs_change(raw) {
            Ok(x) => x,
            Err(e) => {
                error!(step = "parse", outcome = "invalid", error = %e, "event rejected");
                return Ok(Outcome::new(OutcomeKind::Invalid, None, e.to_string()));
            }
        };
        let span = info_span!("ecs", event_id = %meta.id, instance_id = %instance_id, change = ?change);
        async {
            if change == event::EcsChange::Transitional {
                info!(step = "parse", outcome = "ignored", "transitional status");
                return Ok(Outcome::new(
                    OutcomeKind::Ignored,
                    Some(&instance_id),
                    "transitional status",
                ));
            }
            let groups = self
                .retry("describe_instance_group", || {
                    self.fleet.instance_groups(std::slice::from_ref(&instance_id))
                })
                .await?;
            let Some((group, member)) = groups.into_iter().next() else {
                info!(
                    step = "group",
                    outcome = "ignored",
                    "instance is in no Auto Scaling group"
                );
                return Ok(Outcome::new(
                    OutcomeKind::Ignored,
                    Some(&instance_id),
                    "instance is in no Auto Scaling group",
                ));
            };
            let intent = match change {
                event::EcsChange::Active => Intent::Join {
                    instance_id,
                    group,
                    action: None,
                },
                event::EcsChange::Draining => Intent::Drain { instance_id, group },
                // Deregistered from ECS but still in service: an agent re-registering (an
                // ACTIVE follows and reactivates it) or taken off ECS by hand. Its tasks move,
                // the node stays; it leaves the swarm when its instance goes (terminate hook,
                // or the reconcile).
                event::EcsChange::Deregistered if member.lifecycle_state == "InService" => {
                    info!(
                        step = "deregistered",
                        outcome = "drain-only",
                        "instance still in service: drained, kept"
                    );
                    Intent::Drain { instance_id, group }
                }
                event::EcsChange::Deregistered | event::EcsChange::Transitional => Intent::Retire {
                    instance_id,
                    group,
                    action: None,
                },
            };
            self.handle_intent(intent, deadline).await
        }
        .instrument(span)
        .await
    }

    pub async fn handle_intent(&self, intent: Intent, deadline: Option<Instant>) -> Result<Outcome, PortError> {
        let started = Instant::now();
        let group_name = intent.group().to_string();
        let id = intent.instance_id().to_string();
        // One call finds the event's group and its cluster's other groups.
        let tagged = self
            .retry("describe_groups", || {
                self.fleet.groups_with_tag_key(&self.cfg.cluster_tag)
            })
            .await?;
        let group = match tagged.iter().find(|g| g.name == group_name) {
            Some(g) => Some(g.clone()),
            // Untagged or gone: ask for it by name to tell which.
            None => self
                .retry("describe_group", || {
                    self.fleet.describe_groups(std::slice::from_ref(&group_name))
                })
                .await?
                .into_iter()
                .next(),
        };
        let Some(group) = group else {
            warn!(step = "group", outcome = "ignored", "Auto Scaling group not found");
            return Ok(Outcome::new(OutcomeKind::Ignored, Some(&id), "group not found"));
        };
        let member = match membership(&group, &self.cfg) {
            Membership::Unmanaged => {
                info!(
                    step = "group",
                    outcome = "ignored",
                    "group has no {} tag",
                    self.cfg.cluster_tag
                );
                return Ok(Outcome::new(
                    OutcomeKind::Ignored,
                    Some(&id),
                    "group is not part of a swarm cluster",
                ));
            }
            Membership::Misconfigured(reason) => {
                error!(step = "group", outcome = "misconfigured", %reason);
                let result = if matches!(intent, Intent::Join { .. }) {
                    ActionResult::Abandon
                } else {
                    ActionResult::Continue
                };
                return self.finish(&intent, result, &reason).await;
            }
            Membership::Member {
                cluster,
                role,
                dns_name,
            } => Member {
                groups: tagged
                    .into_iter()
                    .filter(|g| g.tag(&self.cfg.cluster_tag) == Some(cluster.as_str()))
                    .collect(),
                cluster,
                role,
                dns_name,
            },
        };
        tracing::Span::current().record("cluster", member.cluster.as_str());
        info!(step = "start", cluster = %member.cluster, role = %member.role, "handling");
        let outcome = match &intent {
            Intent::Join { .. } => {
                // The budget counts from the action's start: the event may have waited in
                // Lambda's queue, and the hook's clock has run all along.
                let started = action_started(&intent);
                let budget_end = clamp(started + self.cfg.agent_wait + self.cfg.join_budget, deadline);
                self.join(&intent, &member, started, budget_end).await
            }
            Intent::Retire { .. } => {
                let budget_end = clamp(
                    Instant::now() + self.cfg.drain_timeout + Duration::from_secs(120),
                    deadline,
                );
                self.retire(&intent, &member, budget_end).await
            }
            Intent::Drain { .. } => {
                let budget_end = clamp(
                    Instant::now() + self.cfg.drain_timeout + Duration::from_secs(30),
                    deadline,
                );
                self.drain_only(&intent, &member, budget_end).await
            }
        };
        metric(
            &member.cluster,
            member.role.as_str(),
            "StepDuration",
            started.elapsed().as_secs_f64() * 1000.0,
            "Milliseconds",
        );
        if let Ok(o) = &outcome {
            metric(&member.cluster, member.role.as_str(), metric_name(o), 1.0, "Count");
        } else {
            metric(&member.cluster, member.role.as_str(), "Failures", 1.0, "Count");
        }
        match outcome {
            // No retry can succeed (Lambda's own two included): say so once and stop. The
            // action is left to the hook's DefaultResult; the Failures alarm tells someone.
            Err(e @ PortError::Denied { .. }) => {
                error!(step = "permission", outcome = "denied", error = %e, "a permission is missing from the function's role");
                Ok(Outcome::new(OutcomeKind::Denied, Some(&id), e.to_string()))
            }
            other => other,
        }
    }

    // ---------------------------------------------------------------- join

    async fn join(&self, intent: &Intent, m: &Member, started: Instant, end: Instant) -> Result<Outcome, PortError> {
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
        let mut armed = started;
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
                Err(e @ PortError::Denied { .. }) => return Err(e),
                Err(e) => warn!(step = "wait-agent", outcome = "retry", error = %e),
            }
            if !self.keep_launch_alive(intent, &mut armed).await {
                return Ok(self.ended(intent));
            }
            // An instance that is gone never comes Online: look at once, then now and then.
            let check = polls % 8 == 0;
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
        if let Some(done) = self.join_fast(intent, m, &online_managers, end).await {
            return done;
        }

        let mut backoff = Backoff::new(self.cfg.poll_max);
        let mut last_reason = String::from("no attempt finished");
        let mut groups = Some(m.groups.clone());
        loop {
            if !self.keep_launch_alive(intent, &mut armed).await {
                return Ok(self.ended(intent));
            }
            if Instant::now() >= end {
                let reason = format!("could not join within budget: {last_reason}");
                return self.finish(intent, ActionResult::Abandon, &reason).await;
            }
            let snap = match self.observe_join(id, m, groups.take()).await {
                Ok(s) => s,
                Err(e @ PortError::Denied { .. }) => return Err(e),
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
            if self.cfg.dry_run {
                return Ok(Outcome::new(
                    OutcomeKind::DryRun,
                    Some(id),
                    format!("would {decision:?}"),
                ));
            }
            let ip = snap.instance.as_ref().and_then(|i| i.private_ip);
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
                    self.verify_ready(id, node_id, &verify_on, end).await
                }
                JoinDecision::Init { generation, held } => self.init(id, m, ip, generation, held, end).await,
                JoinDecision::JoinVia { manager, manager_ip } => {
                    self.join_via(id, m, ip, &manager, manager_ip, end).await
                }
            };
            match attempt {
                Ok(()) => {}
                Err(Retry::Refused(e)) => return Err(e),
                Err(Retry::Retiring) => {
                    return self
                        .finish(intent, ActionResult::Abandon, "the instance is being retired")
                        .await
                }
                Err(Retry::Again(reason)) => {
                    warn!(step = "join", outcome = "retry", %reason);
                    last_reason = reason;
                    backoff.wait(end).await;
                    continue;
                }
            }
            return self.joined(intent, m, ip, end).await;
        }
    }

    /// The node is Ready: a manager's address goes into the manager name, then CONTINUE.
    async fn joined(
        &self,
        intent: &Intent,
        m: &Member,
        ip: Option<Ipv4Addr>,
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
                if let Err(e) = self
                    .change_and_wait(name, RecordChange::Upsert(record), end, None)
                    .await
                {
                    // The node is in the swarm; the reconcile repairs the record.
                    error!(step = "dns-add", outcome = "failed", error = %e);
                } else {
                    metric(&m.cluster, m.role.as_str(), "DnsChanges", 1.0, "Count");
                }
            }
        }
        metric(&m.cluster, m.role.as_str(), "Joins", 1.0, "Count");
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

    /// Re-arms a launch action once half its heartbeat timeout has passed since it was last
    /// armed. False: the action has ended (timed out, or superseded by a termination).
    async fn keep_launch_alive(&self, intent: &Intent, armed: &mut Instant) -> bool {
        let Some(action) = intent.action() else { return true };
        if self.cfg.dry_run || armed.elapsed() < self.cfg.launch_heartbeat_timeout / 2 {
            return true;
        }
        match self.fleet.record_heartbeat(action).await {
            Ok(()) => {
                info!(step = "heartbeat", outcome = "ok", "long join: launch action re-armed");
                *armed = Instant::now();
                true
            }
            Err(PortError::NoActiveAction(_)) => false,
            Err(e) => {
                warn!(step = "heartbeat", outcome = "failed", error = %e);
                true
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
    /// offline, token missing, …): the observing loop takes over and decides.
    async fn join_fast(
        &self,
        intent: &Intent,
        m: &Member,
        online: &[String],
        end: Instant,
    ) -> Option<Result<Outcome, PortError>> {
        let id = intent.instance_id();
        let peer_ids: Vec<String> = manager_ids(&m.groups, &self.cfg, id)
            .into_iter()
            .filter(|p| online.contains(p))
            .collect();
        if peer_ids.is_empty() {
            return None;
        }
        let mut ids = vec![id.to_string()];
        ids.extend(peer_ids.iter().cloned());
        let instances = self.fleet.describe_instances(&ids).await.ok()?;
        let alive_ip = |i: &str| {
            instances
                .iter()
                .find(|x| x.id == i && x.state.is_alive())
                .and_then(|x| x.private_ip)
        };
        let ip = alive_ip(id)?;
        let mut peers: Vec<(&String, Ipv4Addr)> = peer_ids.iter().filter_map(|p| Some((p, alive_ip(p)?))).collect();
        if peers.is_empty() {
            return None;
        }
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
                ],
                scripts::JOIN_READY,
            );
            let mut targets = vec![id.to_string()];
            targets.extend(peers.iter().map(|(p, _)| (*p).clone()));
            (targets, cmds)
        };
        let timeout = self.cfg.command_timeout;
        let (targets, cmds) = command(&peers);
        let results = match self.remote.run(&targets, cmds, timeout, "swarm join").await {
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
                self.remote.run(&targets, cmds, timeout, "swarm join").await.ok()?
            }
            Err(e) => {
                warn!(step = "join", outcome = "retry", error = %e);
                return None;
            }
        };
        let mine = results.iter().find(|r| r.instance_id == id)?;
        if mine.exit() == Some(ScriptExit::Retiring) {
            return Some(
                self.finish(intent, ActionResult::Abandon, "the instance is being retired")
                    .await,
            );
        }
        let ready = results
            .iter()
            .find(|r| r.instance_id != id && r.ok() && output_value(&r.stdout, "state") == Some("ready"));
        match ready {
            Some(r) if mine.ok() => {
                info!(
                    step = "join",
                    outcome = "ok",
                    via = output_value(&mine.stdout, "via").unwrap_or("already a member"),
                    role = %m.role
                );
                let own = output_value(&mine.stdout, "nodeid");
                let labelled = output_value(&r.stdout, "nodeid");
                if own.is_some() && own != labelled {
                    // The manager found another Ready node at this address (a ghost of an
                    // earlier join that has not timed out yet): the instance's own node is
                    // the one to wait for and label.
                    warn!(step = "ready", outcome = "other-node", node_id = labelled.unwrap_or(""),
                          own = own.unwrap_or(""), via = %r.instance_id);
                    if let Err(e) = self
                        .verify_ready(id, own.map(str::to_string), &r.instance_id, end)
                        .await
                    {
                        warn!(step = "ready", outcome = "retry", error = %e);
                        return None;
                    }
                } else {
                    info!(step = "ready", outcome = "ok", node_id = labelled.unwrap_or(""), via = %r.instance_id);
                }
                if output_value(&r.stdout, "reactivated") == Some("true") {
                    info!(step = "reactivate", outcome = "ok", "drained node set active again");
                }
                Some(self.joined(intent, m, Some(ip), end).await)
            }
            _ => {
                info!(
                    step = "join",
                    outcome = "observe",
                    result = %mine.summary(),
                    "one-command join did not settle it"
                );
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
                .any(|i| i.id == id && i.lifecycle_state == "InService")
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
        let r = self.run_one(&op, cmds, "node status").await.ok()?;
        if output_value(&r.stdout, "state") != Some("ready") {
            return None;
        }
        if let (Role::Manager, Some(name)) = (m.role, &m.dns_name) {
            let records = self.dns.manager_records(&self.cfg.hosted_zone_id, name).await.ok()?;
            if !records.iter().any(|x| x.set_identifier == id) {
                return None;
            }
        }
        if output_value(&r.stdout, "reactivated") == Some("true") {
            info!(step = "reactivate", outcome = "ok", "drained node set active again");
        }
        info!(step = "join", outcome = "already-member", via = %op, "node Ready and labelled: nothing to do");
        Some(Ok(Outcome::new(
            OutcomeKind::AlreadyMember,
            Some(id),
            "node Ready and labelled",
        )))
    }

    async fn observe_join(&self, id: &str, m: &Member, groups: Option<Vec<Group>>) -> PortResult<JoinSnapshot> {
        let groups = match groups {
            Some(g) => g,
            None => self.fleet.groups_tagged(&self.cfg.cluster_tag, &m.cluster).await?,
        };
        let peer_ids = manager_ids(&groups, &self.cfg, id);
        let mut ids = vec![id.to_string()];
        ids.extend(peer_ids.iter().cloned());
        let instances = self.fleet.describe_instances(&ids).await?;
        let by_id: HashMap<&str, &Instance> = instances.iter().map(|i| (i.id.as_str(), i)).collect();
        let alive: Vec<String> = ids
            .iter()
            .filter(|i| by_id.get(i.as_str()).is_some_and(|x| x.state.is_alive()))
            .cloned()
            .collect();
        let probes = self.probe(&alive).await?;
        Ok(JoinSnapshot {
            role: m.role,
            instance: by_id.get(id).map(|i| (*i).clone()),
            self_probe: probes.get(id).cloned(),
            peers: peer_ids
                .iter()
                .filter(|p| by_id.get(p.as_str()).is_some_and(|x| x.state.is_alive()))
                .map(|p| Peer {
                    id: p.clone(),
                    ip: by_id.get(p.as_str()).and_then(|i| i.private_ip),
                    probe: probes.get(p).cloned(),
                })
                .collect(),
            locks: None,
            now_unix: unix_now(),
            lock_lease_secs: self.cfg.init_lock_lease.as_secs(),
        })
    }

    /// Probes the online subset of `ids` in one command.
    async fn probe(&self, ids: &[String]) -> PortResult<HashMap<String, Probe>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let online = self.remote.online(ids).await?;
        Ok(self.probe_and_list(&online, None, None).await?.0)
    }

    /// Probes instances already known to be online and, in the same command, has `list_on`
    /// list the swarm's nodes when it is a live manager.
    /// `fence`: a leaving instance that first waits for a join in flight and refuses later
    /// ones (`fence.sh`), so that its probe tells the node the retirement must remove.
    pub(crate) async fn probe_and_list(
        &self,
        online: &[String],
        list_on: Option<&str>,
        fence: Option<&str>,
    ) -> PortResult<(HashMap<String, Probe>, Option<(String, SwarmView)>)> {
        if online.is_empty() {
            return Ok((HashMap::new(), None));
        }
        let cmds = script_commands(
            &[
                ("FENCE", fence.unwrap_or("-").to_string()),
                ("LIST_ON", list_on.unwrap_or("-").to_string()),
                ("OFFSET", "0".into()),
                ("LIMIT", NODE_PAGE.to_string()),
            ],
            scripts::PROBE_LIST,
        );
        let results = self
            .remote
            .run(
                online,
                cmds,
                self.cfg.command_timeout.min(Duration::from_secs(30)),
                "swarm probe",
            )
            .await?;
        let mut listed = None;
        let mut probes = HashMap::new();
        for r in results.into_iter().filter(|r| r.ok()) {
            let Some(p) = Probe::parse(&r.stdout) else { continue };
            if Some(r.instance_id.as_str()) == list_on && p.is_live_manager() {
                if let Some(total) = output_value(&r.stdout, "total").and_then(|t| t.parse::<usize>().ok()) {
                    let first = SwarmView::parse(&r.stdout);
                    match self.node_pages(&r.instance_id, first, NODE_PAGE, total).await {
                        Ok(view) => listed = Some((r.instance_id.clone(), view)),
                        Err(e) => {
                            warn!(step = "observe", outcome = "manager-unusable", manager = %r.instance_id, error = %e)
                        }
                    }
                }
            }
            probes.insert(r.instance_id, p);
        }
        Ok((probes, listed))
    }

    async fn init(
        &self,
        id: &str,
        m: &Member,
        ip: Option<Ipv4Addr>,
        generation: u32,
        held: bool,
        end: Instant,
    ) -> Result<(), Retry> {
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
            ],
            scripts::INIT,
        );
        let r = self.run_raw(id, cmds, "swarm init").await?;
        if r.exit() == Some(ScriptExit::Retiring) {
            return Err(Retry::Retiring);
        }
        if !r.ok() {
            return Err(Retry::Again(format!("swarm init on {id}: {}", r.summary())));
        }
        info!(step = "init", outcome = "ok");
        metric(&m.cluster, m.role.as_str(), "SwarmInits", 1.0, "Count");
        let node_id = output_value(&r.stdout, "nodeid").map(str::to_string);
        self.verify_ready(id, node_id, id, end).await
    }

    async fn join_via(
        &self,
        id: &str,
        m: &Member,
        ip: Option<Ipv4Addr>,
        manager: &str,
        manager_ip: Ipv4Addr,
        end: Instant,
    ) -> Result<(), Retry> {
        let ip = ip.ok_or_else(|| Retry::Again("no private IP".into()))?;
        let cmds = script_commands(
            &[
                ("MANAGER_ADDR", manager_ip.to_string()),
                ("ADVERTISE_ADDR", ip.to_string()),
                ("TOKEN_PARAMETER", self.cfg.token_parameter(&m.cluster, m.role)),
            ],
            scripts::JOIN,
        );
        let mut r = self.run_raw(id, cmds.clone(), "swarm join").await?;
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
            r = self.run_raw(id, cmds, "swarm join").await?;
        }
        if r.exit() == Some(ScriptExit::Retiring) {
            return Err(Retry::Retiring);
        }
        if !r.ok() {
            return Err(Retry::Again(format!("join via {manager} failed: {}", r.summary())));
        }
        info!(step = "join", outcome = "ok", via = manager, role = %m.role);
        let node_id = output_value(&r.stdout, "nodeid").map(str::to_string);
        self.verify_ready(id, node_id, manager, end).await
    }

    fn token_prefix(&self, cluster: &str) -> String {
        format!("{}/{}/join-token", self.cfg.parameter_prefix, cluster)
    }

    /// Waits on a manager until the node is Ready, and labels it with its instance id.
    async fn verify_ready(&self, id: &str, node_id: Option<String>, on: &str, end: Instant) -> Result<(), Retry> {
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
            ],
            scripts::NODE_READY,
        );
        self.run_one(on, cmds, "wait for node Ready").await?;
        info!(step = "ready", outcome = "ok", node_id = %node_id, via = on);
        Ok(())
    }

    // ---------------------------------------------------------------- retire

    async fn retire(&self, intent: &Intent, m: &Member, end: Instant) -> Result<Outcome, PortError> {
        let id = intent.instance_id();
        let (snap, mut operators) = self.observe_retire(id, m, true).await?;
        let steps = plan::plan_retire(&snap);
        info!(step = "plan", steps = ?steps);
        if self.cfg.dry_run {
            return Ok(Outcome::new(OutcomeKind::DryRun, Some(id), format!("would {steps:?}")));
        }
        // Only a terminating instance is held; an ECS deregistration has nothing to hold.
        let holds = m.role == Role::Manager && m.dns_name.is_some() && intent.action().is_some();
        let mut hold_started: Option<Instant> = None;
        if holds {
            // The action has waited since the event (and Route 53 may be slow): re-arm it now;
            // the heartbeat at INSYNC still defines the hold.
            self.heartbeat(intent).await;
        }
        let mut last_heartbeat = Instant::now();
        let (mut demote, mut leave) = (false, false);
        // The drain waits for the removal step, so both usually go in one command.
        let mut drain: Option<String> = None;
        for step in steps {
            match step {
                RetireStep::RemoveRecords(records) => {
                    let name = m.dns_name.clone().unwrap_or_default();
                    let mut removed = false;
                    for r in records {
                        removed |= self.remove_record(&name, intent, r, end).await?;
                    }
                    if removed {
                        info!(step = "dns-remove", outcome = "insync");
                        metric(&m.cluster, m.role.as_str(), "DnsChanges", 1.0, "Count");
                    } else {
                        info!(step = "dns-remove", outcome = "already-absent");
                    }
                    hold_started = Some(Instant::now());
                    self.heartbeat(intent).await;
                    last_heartbeat = Instant::now();
                }
                RetireStep::StartHold => {
                    info!(step = "dns-remove", outcome = "already-absent");
                    hold_started = Some(Instant::now());
                    self.heartbeat(intent).await;
                    last_heartbeat = Instant::now();
                }
                RetireStep::Drain { node_id } => {
                    if !holds {
                        // The action has waited an unknown time already: re-arm it before a drain.
                        self.heartbeat(intent).await;
                        last_heartbeat = Instant::now();
                    }
                    drain = Some(node_id);
                }
                // Drain, demote, leave and remove run as one command (scripts/retire-node.sh).
                RetireStep::Demote { .. } => demote = true,
                RetireStep::Leave => leave = true,
                RetireStep::RemoveNode { node_id } => {
                    let tail = Tail { node_id, demote, leave };
                    if drain.take().is_some() {
                        let drain_end = clamp(Instant::now() + self.cfg.drain_timeout, Some(end));
                        metric(&m.cluster, m.role.as_str(), "Drains", 1.0, "Count");
                        self.drain_and_retire(intent, &mut operators, tail, drain_end, &mut last_heartbeat)
                            .await;
                    } else {
                        self.retire_node(intent, &mut operators, &tail, None, &mut last_heartbeat)
                            .await;
                    }
                    metric(&m.cluster, m.role.as_str(), "Removals", 1.0, "Count");
                }
                RetireStep::Note(note) => info!(step = "swarm", outcome = "skipped", %note),
                RetireStep::Finish => {}
            }
        }
        if let Some(node_id) = drain {
            // Nothing removes the node (the last ready manager): it is drained all the same.
            let drain_end = clamp(Instant::now() + self.cfg.drain_timeout, Some(end));
            self.drain(intent, &mut operators, &node_id, drain_end, &mut last_heartbeat)
                .await;
            metric(&m.cluster, m.role.as_str(), "Drains", 1.0, "Count");
        }
        if holds {
            let started = hold_started.unwrap_or(last_heartbeat);
            let release = started + self.cfg.hold();
            if Instant::now() < release {
                // No sleeping: the hook's heartbeat timeout (= TTL + extra, DefaultResult
                // CONTINUE), re-armed at INSYNC, releases the instance.
                let secs = release.saturating_duration_since(Instant::now()).as_secs_f64();
                info!(
                    step = "hold",
                    outcome = "held",
                    release_in_secs = secs,
                    "termination held by the hook timeout"
                );
                let mut o = Outcome::new(
                    OutcomeKind::Held,
                    Some(id),
                    format!("released by the hook timeout in {secs:.1}s"),
                );
                o.result = Some(ActionResult::Continue);
                return Ok(o);
            }
        }
        self.finish(intent, ActionResult::Continue, "node retired").await
    }

    /// ECS DRAINING: the node stops taking tasks, its tasks move; it stays in the swarm.
    async fn drain_only(&self, intent: &Intent, m: &Member, end: Instant) -> Result<Outcome, PortError> {
        let id = intent.instance_id();
        let (snap, mut operators) = self.observe_retire(id, m, false).await?;
        let (Some(_), Some(node)) = (snap.operator, snap.node) else {
            info!(step = "drain", outcome = "skipped", "no node or no live manager");
            return Ok(Outcome::new(OutcomeKind::Done, Some(id), "nothing to drain"));
        };
        if self.cfg.dry_run {
            return Ok(Outcome::new(
                OutcomeKind::DryRun,
                Some(id),
                format!("would drain {}", node.id),
            ));
        }
        let mut last = Instant::now();
        self.drain(intent, &mut operators, &node.id, end, &mut last).await;
        metric(&m.cluster, m.role.as_str(), "Drains", 1.0, "Count");
        Ok(Outcome::new(OutcomeKind::Done, Some(id), "node drained"))
    }

    /// The snapshot for the planner, and the live managers that can operate, the chosen
    /// one first (the others take over if it becomes unreachable).
    /// `fence`: the instance is leaving; a join in flight on it ends before it is probed, and
    /// no later join is accepted.
    async fn observe_retire(&self, id: &str, m: &Member, fence: bool) -> PortResult<(RetireSnapshot, Vec<String>)> {
        let peer_ids = manager_ids(&m.groups, &self.cfg, id);
        let mut ids = vec![id.to_string()];
        ids.extend(peer_ids.iter().cloned());
        let instances = self.fleet.describe_instances(&ids).await?;
        let by_id: HashMap<&str, &Instance> = instances.iter().map(|i| (i.id.as_str(), i)).collect();
        let me = by_id.get(id).map(|i| (*i).clone());
        let alive: Vec<String> = ids
            .iter()
            .filter(|i| by_id.get(i.as_str()).is_some_and(|x| x.state.is_alive()))
            .cloned()
            .collect();
        // Only Online agents are sent the probe: on AWS a command to a disconnected agent
        // waits out its delivery timeout.
        let online: HashSet<String> = if alive.is_empty() {
            HashSet::new()
        } else {
            self.remote.online(&alive).await?.into_iter().collect()
        };
        // One command probes every online instance; the first online manager also lists the nodes.
        let mut online_ids: Vec<String> = online.iter().cloned().collect();
        online_ids.sort();
        let list_on = peer_ids.iter().find(|p| online.contains(*p)).cloned();
        let (probes, listed) = self
            .probe_and_list(&online_ids, list_on.as_deref(), fence.then_some(id))
            .await?;
        let mut live: Vec<&String> = peer_ids
            .iter()
            .filter(|p| probes.get(*p).is_some_and(Probe::is_live_manager))
            .collect();
        live.sort();
        let mut operator = None;
        let mut view = SwarmView::default();
        if let Some((on, v)) = listed {
            view = v;
            operator = Some(on);
        }
        // Else the first live manager that answers the node list operates; others are fallbacks.
        for candidate in live.iter().copied().filter(|_| operator.is_none()) {
            match self.node_list(candidate).await {
                Ok(v) => {
                    view = v;
                    operator = Some(candidate.clone());
                    break;
                }
                Err(e) => {
                    warn!(step = "observe", outcome = "manager-unusable", manager = %candidate, error = %e)
                }
            }
        }
        let ip = me.as_ref().and_then(|i| i.private_ip);
        let mut node = view.node_of(id, ip).cloned();
        // The list ran while the instance waited for a join in flight: a node that join just
        // made is not in it. Read the list again.
        let joined_meanwhile = probes.get(id).and_then(|p| p.node_id.clone());
        if let (None, Some(node_id), Some(op)) = (&node, &joined_meanwhile, &operator) {
            info!(step = "observe", outcome = "joined-meanwhile", node_id = %node_id, "a join in flight ended before the retirement");
            match self.node_list(op).await {
                Ok(v) => {
                    view = v;
                    node = view
                        .node_of(id, ip)
                        .or_else(|| view.nodes.iter().find(|n| n.id == *node_id))
                        .cloned();
                }
                Err(e) => warn!(step = "observe", outcome = "manager-unusable", manager = %op, error = %e),
            }
        }
        let other_ready_managers = view
            .managers()
            .filter(|n| n.status == NodeStatus::Ready && Some(&n.id) != node.as_ref().map(|x| &x.id))
            .count();
        let records = match (&m.dns_name, m.role, ip) {
            // The record as this function writes it: deleting it needs no read first
            // (remove_record reads the name when it is not there).
            (Some(_), Role::Manager, Some(ip)) => vec![ManagerRecord {
                set_identifier: id.to_string(),
                ip,
                ttl: self.cfg.dns_ttl.as_secs(),
            }],
            (Some(name), Role::Manager, None) => self
                .dns
                .manager_records(&self.cfg.hosted_zone_id, name)
                .await?
                .into_iter()
                .filter(|r| r.set_identifier == id)
                .collect(),
            _ => vec![],
        };
        let mut operators: Vec<String> = operator.iter().cloned().collect();
        operators.extend(live.into_iter().filter(|c| Some(*c) != operator.as_ref()).cloned());
        let snap = RetireSnapshot {
            instance_id: id.to_string(),
            role: m.role,
            has_dns: m.dns_name.is_some(),
            instance: me,
            records,
            self_is_last_manager: operator.is_none() && probes.get(id).is_some_and(Probe::is_live_manager),
            operator,
            node,
            other_ready_managers,
            self_online: online.contains(id),
        };
        Ok((snap, operators))
    }

    /// The common case in one command: the operator drains, demotes and removes the node
    /// while the instance leaves once its tasks are gone. When the tasks take longer than a
    /// slice of the hook timeout, or that command fails, the drain goes on by itself
    /// (`drain`) and the node is retired after it.
    async fn drain_and_retire(
        &self,
        intent: &Intent,
        ops: &mut Vec<String>,
        tail: Tail,
        drain_end: Instant,
        last_heartbeat: &mut Instant,
    ) {
        drain_started(ops);
        let slice = self
            .hook_slice()
            .min(drain_end.saturating_duration_since(Instant::now()));
        if self.retire_node(intent, ops, &tail, Some(slice), last_heartbeat).await {
            return;
        }
        self.drain(intent, ops, &tail.node_id, drain_end, last_heartbeat).await;
        self.retire_node(intent, ops, &tail, None, last_heartbeat).await;
    }

    /// Drains (for `drain` at most, if given), demotes (if asked), has the instance leave (if
    /// it is up) and removes its node, in one command to the operator and the instance;
    /// another manager takes over from an unreachable operator, and an instance that cannot
    /// be reached is removed all the same. False: the drain did not finish, nothing else done.
    async fn retire_node(
        &self,
        intent: &Intent,
        ops: &mut Vec<String>,
        tail: &Tail,
        drain: Option<Duration>,
        last_heartbeat: &mut Instant,
    ) -> bool {
        let id = intent.instance_id();
        let drain_secs = drain.map(|d| d.as_secs().max(1)).unwrap_or(0);
        // The instance leaves once it has stepped down: a demoted follower does so at once, a
        // demoted leader only after its daemon has shut its manager down, ~8.5 s later
        // (measured, docker 28), and the daemon does not answer meanwhile. The wait is a
        // condition: a slice of the hook timeout, at least STEP_DOWN for a manager. If that is
        // not enough, the node is still removed and the missed leave is logged.
        let floor = if tail.demote { STEP_DOWN } else { Duration::from_secs(3) };
        let wait = self.hook_slice().max(floor).min(self.cfg.script_wait_max());
        let limit = self.slice_limit(wait + Duration::from_secs(drain_secs));
        // Its own name, so that a fault (or a reader of the SSM history) can tell it apart.
        let what = if drain.is_some() {
            "drain and retire node"
        } else {
            "retire node"
        };
        let mut leave = tail.leave;
        while let Some(op) = ops.first().cloned() {
            self.rearm(intent, last_heartbeat, limit).await;
            let cmds = script_commands(
                &[
                    ("NODE_ID", tail.node_id.clone()),
                    ("LEAVING_INSTANCE", id.to_string()),
                    ("DEMOTE", tail.demote.to_string()),
                    ("DRAIN_SECONDS", drain_secs.to_string()),
                    ("WAIT_SECONDS", wait.as_secs().max(1).to_string()),
                    ("INSTANCE_LEAVES", leave.to_string()),
                ],
                scripts::RETIRE_NODE,
            );
            let mut targets = vec![op.clone()];
            if leave {
                targets.push(id.to_string());
            }
            let results = match self.remote.run(&targets, cmds, limit, what).await {
                Ok(r) => r,
                Err(PortError::NotOnline(e)) if leave => {
                    warn!(step = "leave", outcome = "unreachable", error = %e, "removing the node without it");
                    leave = false;
                    continue;
                }
                Err(PortError::NotOnline(e)) => {
                    warn!(step = "remove", outcome = "manager-unreachable", manager = %op, error = %e);
                    ops.remove(0);
                    continue;
                }
                Err(e) if drain.is_some() => {
                    warn!(step = "drain", outcome = "retry", error = %e);
                    return false;
                }
                Err(e) => {
                    error!(step = "remove", outcome = "failed", error = %e);
                    return true;
                }
            };
            let Some(r) = results.iter().find(|r| r.instance_id == op) else {
                error!(step = "remove", outcome = "failed", "no result from {op}");
                return true;
            };
            if cannot_operate(r) {
                ops.remove(0);
                warn!(step = "remove", outcome = "manager-unreachable", manager = %op, result = %r.summary(), next = ops.first().map(String::as_str).unwrap_or("none"));
                continue;
            }
            let drained = output_value(&r.stdout, "drained");
            let settled = r.ok() && drained != Some("false");
            if let Some(me) = results.iter().find(|r| r.instance_id == id) {
                match (me.ok(), settled) {
                    (true, _) => info!(step = "leave", outcome = "ok"),
                    // It leaves in the next command, once the drain is done.
                    (false, false) => info!(step = "leave", outcome = "after-drain", result = %me.summary()),
                    (false, true) => warn!(step = "leave", outcome = "failed", result = %me.summary()),
                }
            }
            if drain.is_some() && !settled {
                if r.ok() {
                    info!(
                        step = "drain",
                        outcome = "in-progress",
                        remaining = output_value(&r.stdout, "remaining").unwrap_or(""),
                        pending = output_value(&r.stdout, "pending").unwrap_or(""),
                        "tasks still moving; the drain goes on by itself"
                    );
                } else {
                    warn!(step = "drain", outcome = "retry", via = %op, result = %r.summary());
                }
                return false;
            }
            if r.ok() {
                if drained == Some("true") {
                    info!(step = "drain", outcome = "ok", "tasks moved");
                }
                if tail.demote {
                    info!(step = "demote", outcome = "ok");
                }
                info!(step = "remove", outcome = "ok", via = %op);
            } else {
                error!(step = "remove", outcome = "failed", via = %op, result = %r.summary());
            }
            return true;
        }
        error!(step = "remove", outcome = "failed", "no reachable manager left");
        true
    }

    /// How long a script may wait inside a held lifecycle action: a slice of the hook's
    /// heartbeat timeout, so that a heartbeat sent before the command always covers it.
    fn hook_slice(&self) -> Duration {
        self.cfg
            .terminate_heartbeat_timeout
            .mul_f64(0.3)
            .clamp(Duration::from_secs(1), Duration::from_secs(20))
            .min(self.cfg.script_wait_max())
    }

    /// The execution timeout of a command that waits `wait`: SSM kills it soon after.
    fn slice_limit(&self, wait: Duration) -> Duration {
        wait + self
            .cfg
            .terminate_heartbeat_timeout
            .mul_f64(0.2)
            .clamp(Duration::from_secs(1), Duration::from_secs(10))
    }

    /// Re-arms the action unless its deadline outlasts a command that may take `worst_case`.
    async fn rearm(&self, intent: &Intent, last_heartbeat: &mut Instant, worst_case: Duration) {
        // One second for the command's delivery: the script is killed `worst_case` after it starts.
        if last_heartbeat.elapsed() + worst_case + Duration::from_secs(1) >= self.cfg.terminate_heartbeat_timeout {
            self.heartbeat(intent).await;
            *last_heartbeat = Instant::now();
        }
    }

    /// Runs a script through the first operator; when that manager cannot be reached (agent
    /// offline, instance gone, daemon down, no longer a manager) the next one takes over.
    async fn on_operator(
        &self,
        ops: &mut Vec<String>,
        cmds: Vec<String>,
        timeout: Duration,
        what: &str,
    ) -> Result<CommandResult, Retry> {
        while let Some(op) = ops.first().cloned() {
            let reason = match self
                .remote
                .run(std::slice::from_ref(&op), cmds.clone(), timeout, what)
                .await
            {
                Ok(rs) => match rs.into_iter().find(|r| r.instance_id == op) {
                    Some(r) if r.ok() => return Ok(r),
                    Some(r) if cannot_operate(&r) => r.summary(),
                    Some(r) => return Err(Retry::Again(format!("{what} on {op}: {}", r.summary()))),
                    None => return Err(Retry::Again(format!("{what} on {op}: no result"))),
                },
                Err(e @ PortError::NotOnline(_)) => e.to_string(),
                Err(e) => return Err(retry(e)),
            };
            ops.remove(0);
            warn!(step = what, outcome = "manager-unreachable", manager = %op, %reason, next = ops.first().map(String::as_str).unwrap_or("none"));
        }
        Err(Retry::Again(format!("{what}: no reachable manager left")))
    }

    async fn drain(
        &self,
        intent: &Intent,
        ops: &mut Vec<String>,
        node_id: &str,
        end: Instant,
        last_heartbeat: &mut Instant,
    ) {
        drain_started(ops);
        let mut backoff = Backoff::new(self.cfg.poll_max);
        // Each drain command waits a slice of the hook timeout, and SSM kills it soon after
        // (a hung daemon included), so a heartbeat sent before it always covers it.
        let poll = self.hook_slice();
        let limit = self.slice_limit(poll);
        loop {
            self.rearm(intent, last_heartbeat, limit).await;
            let wait = end.saturating_duration_since(Instant::now()).min(poll).as_secs();
            let cmds = script_commands(
                &[("NODE_ID", node_id.to_string()), ("WAIT_SECONDS", wait.to_string())],
                scripts::DRAIN,
            );
            let (remaining, pending) = match self.on_operator(ops, cmds, limit, "drain").await {
                Ok(r) => (
                    output_value(&r.stdout, "remaining")
                        .and_then(|v| v.parse::<u32>().ok())
                        .unwrap_or(u32::MAX),
                    output_value(&r.stdout, "pending")
                        .and_then(|v| v.parse::<u32>().ok())
                        .unwrap_or(u32::MAX),
                ),
                Err(e) if ops.is_empty() || matches!(e, Retry::Refused(_)) => {
                    warn!(step = "drain", outcome = "failed", error = %e, "no manager can drain");
                    return;
                }
                Err(e) => {
                    warn!(step = "drain", outcome = "retry", error = %e);
                    // A failing command returns at once: pace the retries.
                    backoff.wait(end).await;
                    (u32::MAX, u32::MAX)
                }
            };
            if remaining == 0 && pending == 0 {
                info!(step = "drain", outcome = "ok", "tasks moved");
                return;
            }
            if Instant::now() >= end {
                warn!(
                    step = "drain",
                    outcome = "timeout",
                    remaining,
                    pending,
                    "drain timed out; removing anyway"
                );
                return;
            }
        }
    }

    // ---------------------------------------------------------------- shared steps

    /// Deletes the instance's record as this function writes it; when that is not there (a
    /// redelivery, or a record written with other values) the name is read and whatever it
    /// holds for the instance is deleted. Ok(false): nothing was there.
    async fn remove_record(
        &self,
        name: &str,
        intent: &Intent,
        expected: ManagerRecord,
        end: Instant,
    ) -> PortResult<bool> {
        let zone = &self.cfg.hosted_zone_id;
        let (id, ip) = (intent.instance_id(), expected.ip);
        if self
            .change_and_wait(name, RecordChange::Delete(expected), end, Some(intent))
            .await?
        {
            return Ok(true);
        }
        let found: Vec<ManagerRecord> = self
            .retry("list_records", || self.dns.manager_records(zone, name))
            .await?
            .into_iter()
            .filter(|r| r.set_identifier == id || r.ip == ip)
            .collect();
        let mut removed = false;
        for r in found {
            removed |= self
                .change_and_wait(name, RecordChange::Delete(r), end, Some(intent))
                .await?;
        }
        Ok(removed)
    }

    /// Submits one change and waits for INSYNC; Ok(false) when a DELETE found nothing. A held
    /// action (`rearm`) is re-armed every slice of the hook timeout while Route 53 propagates.
    async fn change_and_wait(
        &self,
        name: &str,
        change: RecordChange,
        end: Instant,
        rearm: Option<&Intent>,
    ) -> Result<bool, PortError> {
        let zone = &self.cfg.hosted_zone_id;
        let change_id = self
            .retry("change_record", || self.dns.change(zone, name, vec![change.clone()]))
            .await?;
        if change_id == crate::ports::UNCHANGED {
            return Ok(false);
        }
        // Route 53 takes a second or more to propagate: asking sooner only spends calls.
        let mut backoff = Backoff {
            next: Duration::from_secs(1),
            max: self.cfg.poll_max.max(Duration::from_secs(1)),
        };
        let first = clamp(Instant::now() + Duration::from_secs(1), Some(end));
        tokio::time::sleep_until(first).await;
        let wait_end = clamp(Instant::now() + Duration::from_secs(300), Some(end));
        let mut armed = Instant::now();
        loop {
            if let Some(intent) = rearm.filter(|_| armed.elapsed() >= self.hook_slice()) {
                self.heartbeat(intent).await;
                armed = Instant::now();
            }
            match self.dns.is_insync(&change_id).await {
                Ok(true) => return Ok(true),
                Ok(false) => {}
                Err(e) => warn!(step = "dns-wait", outcome = "retry", error = %e),
            }
            if Instant::now() >= wait_end {
                return Err(PortError::aws(
                    "GetChange",
                    format!("change {change_id} not INSYNC in time"),
                ));
            }
            backoff.wait(wait_end).await;
        }
    }

    async fn heartbeat(&self, intent: &Intent) {
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

    /// Completes the lifecycle action (if the intent has one). An action that is no
    /// longer waiting is not an error: a redelivery, or the hook timed out.
    async fn finish(&self, intent: &Intent, result: ActionResult, reason: &str) -> Result<Outcome, PortError> {
        let id = intent.instance_id();
        let mut o = Outcome::new(OutcomeKind::Completed, Some(id), reason);
        o.result = Some(result);
        let Some(action) = intent.action() else {
            o.outcome = OutcomeKind::Done;
            return Ok(o);
        };
        if self.cfg.dry_run {
            info!(step = "complete", outcome = "dry-run", result = result.as_str(), %reason);
            o.outcome = OutcomeKind::DryRun;
            return Ok(o);
        }
        match self
            .retry("complete_action", || self.fleet.complete_action(action, result))
            .await
        {
            Ok(()) => {
                if result == ActionResult::Abandon {
                    warn!(step = "complete", outcome = "abandoned", result = result.as_str(), %reason);
                } else {
                    info!(step = "complete", outcome = "completed", result = result.as_str(), %reason);
                }
                Ok(o)
            }
            Err(PortError::NoActiveAction(_)) => {
                info!(
                    step = "complete",
                    outcome = "no-action",
                    result = result.as_str(),
                    "lifecycle action already ended"
                );
                o.outcome = OutcomeKind::AlreadyEnded;
                Ok(o)
            }
            Err(e) => {
                error!(step = "complete", outcome = "failed", error = %e);
                Err(e)
            }
        }
    }

    /// Runs a script and maps failure to its summary (for callers that only report).
    pub(crate) async fn run_checked(&self, on: &str, cmds: Vec<String>, what: &str) -> Result<(), String> {
        self.run_one(on, cmds, what)
            .await
            .map(|_| ())
            .map_err(|r| r.to_string())
    }

    /// The swarm's nodes as `on` sees them, a page at a time: SSM keeps 24,000 characters
    /// of output, about 150 nodes.
    pub(crate) async fn node_list(&self, on: &str) -> Result<SwarmView, String> {
        self.node_pages(on, SwarmView::default(), 0, usize::MAX).await
    }

    /// Reads the pages of the node list from `offset` on, after `view` (pages read already).
    async fn node_pages(
        &self,
        on: &str,
        mut view: SwarmView,
        mut offset: usize,
        mut total: usize,
    ) -> Result<SwarmView, String> {
        while offset < total {
            let cmds = script_commands(
                &[("OFFSET", offset.to_string()), ("LIMIT", NODE_PAGE.to_string())],
                scripts::NODE_LIST,
            );
            let r = self.run_one(on, cmds, "list nodes").await.map_err(|r| r.to_string())?;
            total = output_value(&r.stdout, "total")
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            view.nodes.extend(SwarmView::parse(&r.stdout).nodes);
            offset += NODE_PAGE;
        }
        Ok(view)
    }

    async fn run_raw(&self, on: &str, cmds: Vec<String>, what: &str) -> Result<CommandResult, Retry> {
        let results = self
            .remote
            .run(&[on.to_string()], cmds, self.cfg.command_timeout, what)
            .await
            .map_err(retry)?;
        results
            .into_iter()
            .find(|r| r.instance_id == on)
            .ok_or_else(|| Retry::Again(format!("{what} on {on}: no result")))
    }

    async fn run_one(&self, on: &str, cmds: Vec<String>, what: &str) -> Result<CommandResult, Retry> {
        let r = self.run_raw(on, cmds, what).await?;
        if r.ok() {
            Ok(r)
        } else {
            Err(Retry::Again(format!("{what} on {on}: {}", r.summary())))
        }
    }

    /// Retries a port call a few times with backoff; AWS errors that persist are returned.
    async fn retry<T, Fut>(&self, what: &str, mut f: impl FnMut() -> Fut) -> PortResult<T>
    where
        Fut: std::future::Future<Output = PortResult<T>>,
    {
        let mut backoff = Backoff::new(self.cfg.poll_max.min(Duration::from_secs(2)));
        let mut attempt = 0;
        loop {
            match f().await {
                Err(PortError::Aws { operation, message }) if attempt < 3 => {
                    attempt += 1;
                    warn!(step = what, outcome = "retry", attempt, %operation, %message);
                    backoff.wait(Instant::now() + Duration::from_secs(10)).await;
                }
                other => return other,
            }
        }
    }
}

/// How long a demoted manager may take to step down and leave (a leader: ~8.5 s measured).
const STEP_DOWN: Duration = Duration::from_secs(15);

/// When the intent's lifecycle action began, as an instant: the event's time, or now when the
/// intent has no action (or no time, or a clock ahead of ours).
fn action_started(intent: &Intent) -> Instant {
    let age = intent
        .action()
        .and_then(|a| a.started_unix)
        .map(|t| unix_now().saturating_sub(t))
        .unwrap_or(0);
    Instant::now()
        .checked_sub(Duration::from_secs(age))
        .unwrap_or_else(Instant::now)
}

/// The manager a command went to cannot act as one: it was unreachable, or its script
/// found it is no longer a reachable manager (`require_manager`).
fn cannot_operate(r: &CommandResult) -> bool {
    r.status == CommandStatus::Undeliverable || r.exit() == Some(ScriptExit::NotAManager)
}

/// Nodes a page of the node list: SSM keeps 24,000 characters of output, about 150 nodes.
const NODE_PAGE: usize = 150;

/// Which manager a drain goes through (read by the operator-killed scenario).
fn drain_started(ops: &[String]) {
    info!(
        step = "drain",
        outcome = "started",
        via = ops.first().map(String::as_str).unwrap_or("none")
    );
}

/// The end of a retirement: one command takes the node out of the swarm.
struct Tail {
    node_id: String,
    demote: bool,
    leave: bool,
}

/// A failed attempt: the next round may fix it, unless AWS refused the caller or the
/// instance is leaving.
#[derive(Debug)]
enum Retry {
    Again(String),
    Refused(PortError),
    /// The instance refused to join: its retirement has begun (`fence.sh`).
    Retiring,
}

impl std::fmt::Display for Retry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Retry::Again(reason) => f.write_str(reason),
            Retry::Refused(e) => write!(f, "{e}"),
            Retry::Retiring => f.write_str("the instance is being retired"),
        }
    }
}

fn retry(e: PortError) -> Retry {
    match e {
        e @ PortError::Denied { .. } => Retry::Refused(e),
        e => Retry::Again(e.to_string()),
    }
}

fn clamp(t: Instant, deadline: Option<Instant>) -> Instant {
    match deadline {
        Some(d) => t.min(d),
        None => t,
    }
}

fn metric_name(o: &Outcome) -> &'static str {
    match (o.outcome, o.result) {
        (_, Some(ActionResult::Abandon)) => "AbandonedActions",
        (OutcomeKind::Completed, _) => "CompletedActions",
        (OutcomeKind::Held, _) => "HeldTerminations",
        _ => "IgnoredEvents",
    }
}

/// The cluster's manager instances that are not leaving, other than `except`.
pub fn manager_ids(groups: &[Group], cfg: &Config, except: &str) -> Vec<String> {
    let mut ids: Vec<String> = groups
        .iter()
        .filter(|g| {
            matches!(
                membership(g, cfg),
                Membership::Member {
                    role: Role::Manager,
                    ..
                }
            )
        })
        .flat_map(|g| g.instances.iter())
        .filter(|i| !i.is_leaving() && i.id != except)
        .map(|i| i.id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests;
