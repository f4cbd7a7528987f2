//! The scheduled reconcile: compare the groups' instances, the swarm's nodes and the manager
//! record, and repair the difference. Events get lost; this makes the cluster converge anyway.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use serde::Serialize;
use tracing::{error, info, info_span, warn, Instrument};

use crate::event::{Intent, LifecycleAction, LAUNCHING, TERMINATING};
use crate::model::{membership, ManagerRecord, Membership, NodeStatus, Role, SwarmNode, SwarmView};
use crate::ports::{ActionResult, Dns, Fleet, Parameters, PortError, PortResult, RecordChange, Remote};
use crate::safe::script_commands;
use crate::scripts;
use crate::telemetry::metric;
use crate::Lifecycle;

/// An instance of a cluster group, as the reconcile sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberInstance {
    pub id: String,
    pub group: String,
    pub role: Role,
    pub lifecycle_state: String,
    pub alive: bool,
    pub ip: Option<std::net::Ipv4Addr>,
    pub launched_unix: Option<u64>,
    pub online: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterSnapshot {
    pub cluster: String,
    pub dns_name: Option<String>,
    pub members: Vec<MemberInstance>,
    /// None: no live manager answered (no swarm, or none reachable).
    pub swarm: Option<SwarmView>,
    pub records: Vec<ManagerRecord>,
    pub now_unix: u64,
    pub grace_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "repair", rename_all = "kebab-case")]
pub enum Repair {
    /// A node whose instance is gone (or unreachable past the grace period); a manager is
    /// demoted first: it is down, so demotion only shrinks the quorum it cannot vote in.
    RemoveNode {
        node_id: String,
        demote: bool,
        reason: String,
    },
    /// A running instance that is not in the swarm.
    Join {
        instance_id: String,
        group: String,
        waiting: bool,
    },
    /// A launch action left waiting for an instance that is already Ready.
    CompleteLaunch {
        instance_id: String,
        group: String,
    },
    /// A worker's terminate action left waiting after its node is gone.
    CompleteTermination {
        instance_id: String,
        group: String,
    },
    DnsDelete {
        record: RecordView,
    },
    DnsUpsert {
        record: RecordView,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordView {
    pub set_identifier: String,
    pub ip: String,
}

impl From<&ManagerRecord> for RecordView {
    fn from(r: &ManagerRecord) -> Self {
        RecordView {
            set_identifier: r.set_identifier.clone(),
            ip: r.ip.to_string(),
        }
    }
}

fn leaving(state: &str) -> bool {
    state.starts_with("Terminating") || state.starts_with("Detach") || state == "Terminated" || state == "Standby"
}

/// Ready nodes by instance label and, for unlabelled ones, by address: one pass, so the plan
/// stays linear in the cluster size.
struct ReadyIndex<'a> {
    by_label: HashMap<&'a str, &'a SwarmNode>,
    by_addr: HashMap<std::net::Ipv4Addr, &'a SwarmNode>,
}

impl<'a> ReadyIndex<'a> {
    fn new(view: &'a SwarmView) -> Self {
        let mut idx = ReadyIndex {
            by_label: HashMap::new(),
            by_addr: HashMap::new(),
        };
        for n in view.nodes.iter().filter(|n| n.status == NodeStatus::Ready) {
            match (&n.instance_id, n.addr) {
                (Some(id), _) => {
                    idx.by_label.entry(id.as_str()).or_insert(n);
                }
                (None, Some(a)) => {
                    idx.by_addr.entry(a).or_insert(n);
                }
                (None, None) => {}
            }
        }
        idx
    }

    /// The Ready node of a member instance: by label, else by address.
    fn node_for(&self, m: &MemberInstance) -> Option<&'a SwarmNode> {
        self.by_label
            .get(m.id.as_str())
            .or_else(|| m.ip.and_then(|ip| self.by_addr.get(&ip)))
            .copied()
    }
}

/// The repairs that make the cluster match its groups. Pure; every branch is unit-tested.
pub fn plan_reconcile(s: &ClusterSnapshot, ttl: u64) -> Vec<Repair> {
    let mut out = Vec::new();
    let by_id: HashMap<&str, &MemberInstance> = s.members.iter().map(|m| (m.id.as_str(), m)).collect();
    let old = |t: Option<u64>| t.is_some_and(|t| s.now_unix.saturating_sub(t) >= s.grace_secs);

    if let Some(view) = &s.swarm {
        let ready = ReadyIndex::new(view);
        // 1. Nodes that are not Ready and whose instance is gone, replaced, or unreachable too long.
        // Instances about to be joined as strays: their old Down nodes are replaced now.
        let strays: HashSet<&str> = s
            .members
            .iter()
            .filter(|m| m.alive && m.online && m.lifecycle_state == "InService" && ready.node_for(m).is_none())
            .map(|m| m.id.as_str())
            .collect();
        for n in view.nodes.iter().filter(|n| n.status != NodeStatus::Ready) {
            let owner = n
                .instance_id
                .as_deref()
                .and_then(|id| by_id.get(id).copied())
                .or_else(|| s.members.iter().find(|m| m.ip.is_some() && m.ip == n.addr));
            let reason = match owner {
                None => Some("its instance is gone".to_string()),
                Some(m) if !m.alive => Some(format!("instance {} is not running", m.id)),
                Some(m) if ready.by_label.contains_key(m.id.as_str()) && n.instance_id.is_some() => {
                    Some(format!("instance {} has a newer Ready node", m.id))
                }
                Some(m) if strays.contains(m.id.as_str()) && n.instance_id.is_some() => {
                    Some(format!("instance {} rejoins with a new node", m.id))
                }
                Some(m) if !m.online && old(n.updated_unix) => {
                    Some(format!("instance {} unreachable for over {}s", m.id, s.grace_secs))
                }
                Some(_) => None, // merely slow: left alone within the grace period
            };
            if let Some(reason) = reason {
                out.push(Repair::RemoveNode {
                    node_id: n.id.clone(),
                    demote: n.role == Role::Manager,
                    reason,
                });
            }
        }

        // 2. Running instances that are not in the swarm; waiting actions that can be finished.
        for m in s.members.iter().filter(|m| m.alive && !leaving(&m.lifecycle_state)) {
            let node = ready.node_for(m);
            let waiting = m.lifecycle_state == "Pending:Wait";
            match (node, waiting) {
                (Some(_), true) if old(m.launched_unix) => out.push(Repair::CompleteLaunch {
                    instance_id: m.id.clone(),
                    group: m.group.clone(),
                }),
                (None, true) if old(m.launched_unix) && m.online => out.push(Repair::Join {
                    instance_id: m.id.clone(),
                    group: m.group.clone(),
                    waiting: true,
                }),
                (None, false) if m.online && m.lifecycle_state == "InService" => out.push(Repair::Join {
                    instance_id: m.id.clone(),
                    group: m.group.clone(),
                    waiting: false,
                }),
                _ => {}
            }
        }
        for m in s
            .members
            .iter()
            .filter(|m| m.lifecycle_state == "Terminating:Wait" && m.role == Role::Worker)
        {
            if ready.node_for(m).is_none() && old(m.launched_unix) {
                out.push(Repair::CompleteTermination {
                    instance_id: m.id.clone(),
                    group: m.group.clone(),
                });
            }
        }
    }

    // 3. The manager record holds exactly the live managers' IPs.
    if let (Some(_), Some(view)) = (&s.dns_name, &s.swarm) {
        let ready = ReadyIndex::new(view);
        let desired: HashMap<&str, std::net::Ipv4Addr> = s
            .members
            .iter()
            .filter(|m| m.role == Role::Manager && m.alive && m.lifecycle_state == "InService")
            .filter(|m| ready.node_for(m).is_some_and(|n| n.role == Role::Manager))
            .filter_map(|m| m.ip.map(|ip| (m.id.as_str(), ip)))
            .collect();
        for r in &s.records {
            if desired.get(r.set_identifier.as_str()) != Some(&r.ip) {
                out.push(Repair::DnsDelete { record: r.into() });
            }
        }
        let mut ids: Vec<&&str> = desired.keys().collect();
        ids.sort();
        for id in ids {
            let ip = desired[*id];
            if !s
                .records
                .iter()
                .any(|r| r.set_identifier == *id && r.ip == ip && r.ttl == ttl)
            {
                out.push(Repair::DnsUpsert {
                    record: RecordView {
                        set_identifier: id.to_string(),
                        ip: ip.to_string(),
                    },
                });
            }
        }
    }
    out
}

/// A synthetic cluster of `n` instances (3 managers), with 1% of nodes down and gone,
/// 1% strays and a drifted record: what `make bench` measures.
#[cfg(any(test, feature = "testkit"))]
pub fn synthetic(n: usize) -> ClusterSnapshot {
    let ip = |i: usize| format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    let mut s = ClusterSnapshot {
        cluster: "big".into(),
        dns_name: Some("m.big.internal".into()),
        now_unix: 10_000,
        grace_secs: 300,
        swarm: Some(SwarmView::default()),
        ..Default::default()
    };
    for i in 0..n {
        let role = if i < 3 { Role::Manager } else { Role::Worker };
        let id = format!("i-{i:017x}");
        let stray = i % 100 == 50;
        let gone = i % 100 == 99;
        if !gone {
            s.members.push(synthetic_member(&id, role, &ip(i)));
        }
        if !stray {
            let nd = synthetic_node(i, &id, &ip(i), role, !gone);
            s.swarm.as_mut().expect("synthetic swarm").nodes.push(nd);
        }
        if role == Role::Manager {
            s.records.push(ManagerRecord {
                set_identifier: id.clone(),
                ip: ip(i).parse().expect("ip"),
                ttl: 60,
            });
        }
    }
    s.records.push(ManagerRecord {
        set_identifier: "manual".into(),
        ip: "10.255.255.255".parse().expect("ip"),
        ttl: 60,
    });
    s
}

#[cfg(any(test, feature = "testkit"))]
fn synthetic_member(id: &str, role: Role, ip: &str) -> MemberInstance {
    MemberInstance {
        id: id.into(),
        group: if role == Role::Manager {
            "mgr".into()
        } else {
            "wrk".into()
        },
        role,
        lifecycle_state: "InService".into(),
        alive: true,
        ip: ip.parse().ok(),
        launched_unix: Some(0),
        online: true,
    }
}

#[cfg(any(test, feature = "testkit"))]
fn synthetic_node(i: usize, id: &str, ip: &str, role: Role, ready: bool) -> SwarmNode {
    SwarmNode {
        id: format!("n{i:024}"),
        hostname: format!("h{i}"),
        addr: ip.parse().ok(),
        role,
        status: if ready { NodeStatus::Ready } else { NodeStatus::Down },
        availability: crate::model::Availability::Active,
        leader: false,
        instance_id: Some(id.to_string()),
        updated_unix: Some(1000),
    }
}

/// What one reconcile run did for one cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterReport {
    pub cluster: String,
    pub dry_run: bool,
    pub swarm_reachable: bool,
    pub members: usize,
    pub nodes: usize,
    pub repairs: Vec<Repair>,
    pub failed: Vec<String>,
    /// Repairs left to the next run: they could not finish before this run's deadline.
    pub deferred: Vec<String>,
}

/// The order repairs run in: the cheap and safe first (the record, actions left waiting,
/// Down nodes), joins (each may take the agent wait plus the join budget) last.
fn phase(r: &Repair) -> u8 {
    match r {
        Repair::DnsDelete { .. } | Repair::DnsUpsert { .. } => 0,
        Repair::CompleteLaunch { .. } | Repair::CompleteTermination { .. } => 1,
        Repair::RemoveNode { .. } => 2,
        Repair::Join { .. } => 3,
    }
}

/// At most this many joins per run: each takes a few seconds; the next run does the rest.
const MAX_JOINS_PER_RUN: usize = 10;

impl<F: Fleet, R: Remote, D: Dns, P: Parameters> Lifecycle<F, R, D, P> {
    /// Reconciles every cluster whose groups carry the cluster tag.
    /// `dry_run` (or DRY_RUN) reports the difference without changing anything.
    /// Every run ends before `deadline` (the Lambda's): work that cannot finish by then is
    /// left to the next run. A cluster that could not be reconciled fails the run (after the
    /// others), so the function's error alarm fires.
    pub async fn reconcile_all(
        &self,
        only: Option<&str>,
        dry_run: bool,
        deadline: Option<Instant>,
    ) -> Result<Vec<ClusterReport>, PortError> {
        let groups = self.fleet.groups_with_tag_key(&self.cfg.cluster_tag).await?;
        let mut clusters: Vec<String> = groups
            .iter()
            .filter_map(|g| match membership(g, &self.cfg) {
                Membership::Member { cluster, .. } => Some(cluster),
                Membership::Misconfigured(reason) => {
                    warn!(step = "reconcile", outcome = "misconfigured", group = %g.name, %reason);
                    None
                }
                Membership::Unmanaged => None,
            })
            .filter(|c| only.is_none_or(|o| o == c))
            .collect();
        clusters.sort();
        clusters.dedup();
        let mut reports = Vec::new();
        let mut failed = Vec::new();
        for cluster in clusters {
            let span = info_span!("reconcile", cluster = %cluster);
            match self
                .reconcile_cluster(&cluster, &groups, dry_run || self.cfg.dry_run, deadline)
                .instrument(span)
                .await
            {
                Ok(r) => reports.push(r),
                Err(e) => {
                    error!(step = "reconcile", outcome = "failed", %cluster, error = %e);
                    failed.push(format!("{cluster}: {e}"));
                }
            }
        }
        if !failed.is_empty() {
            return Err(PortError::aws("reconcile", failed.join("; ")));
        }
        Ok(reports)
    }

    /// The snapshot of one cluster and the live manager that listed its nodes.
    async fn observe_cluster(
        &self,
        cluster: &str,
        groups: &[crate::model::Group],
    ) -> PortResult<(ClusterSnapshot, Option<String>)> {
        let mut members = Vec::new();
        let mut dns_name = None;
        for g in groups {
            if let Membership::Member {
                cluster: c,
                role,
                dns_name: d,
            } = membership(g, &self.cfg)
            {
                if c != cluster {
                    continue;
                }
                if d.is_some() && role == Role::Manager {
                    dns_name = d;
                }
                for i in &g.instances {
                    members.push(MemberInstance {
                        id: i.id.clone(),
                        group: g.name.clone(),
                        role,
                        lifecycle_state: i.lifecycle_state.clone(),
                        alive: false,
                        ip: None,
                        launched_unix: None,
                        online: false,
                    });
                }
            }
        }
        let ids: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
        let instances = if ids.is_empty() {
            vec![]
        } else {
            self.fleet.describe_instances(&ids).await?
        };
        let by_id: HashMap<&str, &crate::model::Instance> = instances.iter().map(|i| (i.id.as_str(), i)).collect();
        for m in members.iter_mut() {
            if let Some(i) = by_id.get(m.id.as_str()) {
                m.alive = i.state.is_alive();
                m.ip = i.private_ip;
                m.launched_unix = i.launched_unix;
            }
        }
        let alive: Vec<String> = members.iter().filter(|m| m.alive).map(|m| m.id.clone()).collect();
        let online: HashSet<String> = if alive.is_empty() {
            HashSet::new()
        } else {
            self.remote.online(&alive).await?.into_iter().collect()
        };
        for m in members.iter_mut() {
            m.online = online.contains(&m.id);
        }
        // Probe the managers in one command; the lowest also lists the nodes, and when it
        // cannot, the next live one does.
        let mut managers: Vec<String> = members
            .iter()
            .filter(|m| m.role == Role::Manager && m.online)
            .map(|m| m.id.clone())
            .collect();
        managers.sort();
        let (probes, mut swarm) = self
            .probe_and_list(&managers, managers.first().map(String::as_str), None)
            .await?;
        let mut live: Vec<String> = probes
            .into_iter()
            .filter(|(_, p)| p.is_live_manager())
            .map(|(id, _)| id)
            .collect();
        live.sort();
        for m in live.iter().filter(|_| swarm.is_none()) {
            match self.node_list(m).await {
                Ok(v) => {
                    swarm = Some((m.clone(), v));
                    break;
                }
                Err(e) => warn!(step = "observe", outcome = "manager-unusable", manager = %m, error = %e),
            }
        }
        let records = match &dns_name {
            Some(name) => self.dns.manager_records(&self.cfg.hosted_zone_id, name).await?,
            None => vec![],
        };
        let operator = swarm.as_ref().map(|(m, _)| m.clone());
        let snap = ClusterSnapshot {
            cluster: cluster.to_string(),
            dns_name,
            members,
            swarm: swarm.map(|(_, v)| v),
            records,
            now_unix: crate::workflow::unix_now(),
            grace_secs: self.cfg.reconcile_grace.as_secs(),
        };
        Ok((snap, operator))
    }

    async fn reconcile_cluster(
        &self,
        cluster: &str,
        groups: &[crate::model::Group],
        dry_run: bool,
        deadline: Option<Instant>,
    ) -> PortResult<ClusterReport> {
        let (snap, operator) = self.observe_cluster(cluster, groups).await?;
        let mut repairs = plan_reconcile(&snap, self.cfg.dns_ttl.as_secs());
        repairs.sort_by_key(phase);
        let mut report = ClusterReport {
            cluster: cluster.to_string(),
            dry_run,
            swarm_reachable: snap.swarm.is_some(),
            members: snap.members.len(),
            nodes: snap.swarm.as_ref().map_or(0, |v| v.nodes.len()),
            repairs: repairs.clone(),
            failed: vec![],
            deferred: vec![],
        };
        info!(
            step = "plan",
            outcome = "planned",
            repairs = repairs.len(),
            members = report.members,
            nodes = report.nodes
        );
        if dry_run || repairs.is_empty() {
            return Ok(report);
        }
        let operator = operator.unwrap_or_default();
        let mut joins = 0;
        let mut dns_changes = Vec::new();
        let hook = |group: &str, transition: &str| {
            let (group, transition) = (group.to_string(), transition.to_string());
            async move {
                self.fleet
                    .lifecycle_hooks(&group)
                    .await
                    .ok()
                    .and_then(|hs| hs.into_iter().find(|(_, t)| *t == transition).map(|(n, _)| n))
            }
        };
        // What the slowest step of each kind may take: a command, or a whole join.
        let command_worst = self.cfg.command_timeout + Duration::from_secs(10);
        let join_worst = self.cfg.agent_wait + self.cfg.join_budget + Duration::from_secs(10);
        for r in &repairs {
            let worst = match phase(r) {
                0 => Duration::from_secs(10), // one Route 53 call
                3 => join_worst,
                _ => command_worst,
            };
            if deadline.is_some_and(|d| Instant::now() + worst > d) {
                info!(step = "repair", outcome = "deferred", repair = ?r, "no time left in this run");
                report.deferred.push(format!("{r:?}"));
                continue;
            }
            if phase(r) > 0 {
                self.apply_dns(cluster, &snap, &mut dns_changes, &mut report).await;
            }
            let result: Result<(), String> = match r {
                Repair::RemoveNode {
                    node_id,
                    demote,
                    reason,
                } => {
                    info!(step = "remove", node_id = %node_id, %reason);
                    let mut res = Ok(());
                    if *demote {
                        res = self
                            .run_checked(
                                &operator,
                                script_commands(&[("NODE_ID", node_id.clone())], scripts::DEMOTE),
                                "demote",
                            )
                            .await;
                    }
                    if res.is_ok() {
                        res = self
                            .run_checked(
                                &operator,
                                script_commands(&[("NODE_ID", node_id.clone())], scripts::REMOVE),
                                "remove node",
                            )
                            .await;
                    }
                    if res.is_ok() {
                        metric(cluster, "cluster", "Removals", 1.0, "Count");
                    }
                    res
                }
                Repair::Join {
                    instance_id,
                    group,
                    waiting,
                } => {
                    joins += 1;
                    if joins > MAX_JOINS_PER_RUN {
                        info!(step = "join", outcome = "deferred", instance_id = %instance_id);
                        continue;
                    }
                    let action = if *waiting {
                        hook(group, LAUNCHING).await.map(|h| LifecycleAction {
                            group: group.clone(),
                            hook: h,
                            token: String::new(),
                            instance_id: instance_id.clone(),
                            started_unix: None,
                        })
                    } else {
                        None
                    };
                    let intent = Intent::Join {
                        instance_id: instance_id.clone(),
                        group: group.clone(),
                        action,
                    };
                    match self.handle_intent(intent, deadline).await {
                        Ok(o) if o.result != Some(ActionResult::Abandon) => Ok(()),
                        Ok(o) => Err(o.detail),
                        Err(e) => Err(e.to_string()),
                    }
                }
                Repair::CompleteLaunch { instance_id, group } | Repair::CompleteTermination { instance_id, group } => {
                    let transition = if matches!(r, Repair::CompleteLaunch { .. }) {
                        LAUNCHING
                    } else {
                        TERMINATING
                    };
                    match hook(group, transition).await {
                        None => Err(format!("group {group} has no {transition} hook")),
                        Some(h) => {
                            let a = LifecycleAction {
                                group: group.clone(),
                                hook: h,
                                token: String::new(),
                                instance_id: instance_id.clone(),
                                started_unix: None,
                            };
                            match self.fleet.complete_action(&a, ActionResult::Continue).await {
                                Ok(()) | Err(PortError::NoActiveAction(_)) => Ok(()),
                                Err(e) => Err(e.to_string()),
                            }
                        }
                    }
                }
                Repair::DnsDelete { record } | Repair::DnsUpsert { record } => {
                    let rec = ManagerRecord {
                        set_identifier: record.set_identifier.clone(),
                        ip: record.ip.parse().expect("record views hold IPv4 addresses"),
                        ttl: self.cfg.dns_ttl.as_secs(),
                    };
                    // Deletes carry the record exactly as it is, as Route 53 requires.
                    let change = match r {
                        Repair::DnsDelete { .. } => RecordChange::Delete(
                            snap.records
                                .iter()
                                .find(|x| x.set_identifier == rec.set_identifier && x.ip == rec.ip)
                                .cloned()
                                .unwrap_or(rec),
                        ),
                        _ => RecordChange::Upsert(rec),
                    };
                    dns_changes.push(change);
                    continue;
                }
            };
            if let Err(e) = result {
                warn!(step = "repair", outcome = "failed", repair = ?r, error = %e);
                report.failed.push(format!("{r:?}: {e}"));
            }
        }
        self.apply_dns(cluster, &snap, &mut dns_changes, &mut report).await;
        info!(
            step = "reconcile",
            outcome = "done",
            repairs = report.repairs.len(),
            failed = report.failed.len(),
            deferred = report.deferred.len()
        );
        Ok(report)
    }

    /// Submits the record changes gathered so far (first of all, before any slow repair).
    async fn apply_dns(
        &self,
        cluster: &str,
        snap: &ClusterSnapshot,
        changes: &mut Vec<RecordChange>,
        report: &mut ClusterReport,
    ) {
        let Some(name) = &snap.dns_name else {
            changes.clear();
            return;
        };
        // One change batch per record: a failure of one does not hold back the others.
        for c in changes.drain(..) {
            match self.dns.change(&self.cfg.hosted_zone_id, name, vec![c.clone()]).await {
                Ok(_) => metric(cluster, "manager", "DnsChanges", 1.0, "Count"),
                Err(e) => {
                    warn!(step = "dns", outcome = "failed", change = ?c, error = %e);
                    report.failed.push(format!("{c:?}: {e}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Availability;

    fn member(id: &str, role: Role, state: &str, ip: &str) -> MemberInstance {
        MemberInstance {
            id: id.into(),
            group: if role == Role::Manager {
                "mgr".into()
            } else {
                "wrk".into()
            },
            role,
            lifecycle_state: state.into(),
            alive: true,
            ip: Some(ip.parse().unwrap()),
            launched_unix: Some(0),
            online: true,
        }
    }
    fn node(n: u32, inst: Option<&str>, ip: &str, role: Role, ready: bool) -> SwarmNode {
        SwarmNode {
            id: format!("node{n:021}"),
            hostname: format!("h{n}"),
            addr: Some(ip.parse().unwrap()),
            role,
            status: if ready { NodeStatus::Ready } else { NodeStatus::Down },
            availability: Availability::Active,
            leader: false,
            instance_id: inst.map(str::to_string),
            updated_unix: Some(1000),
        }
    }
    fn rec(id: &str, ip: &str) -> ManagerRecord {
        ManagerRecord {
            set_identifier: id.into(),
            ip: ip.parse().unwrap(),
            ttl: 60,
        }
    }
    /// 3 managers + 1 worker, all healthy, DNS right.
    fn healthy() -> ClusterSnapshot {
        ClusterSnapshot {
            cluster: "c".into(),
            dns_name: Some("m.c.internal".into()),
            members: vec![
                member("i-0000000a", Role::Manager, "InService", "10.0.0.1"),
                member("i-0000000b", Role::Manager, "InService", "10.0.0.2"),
                member("i-0000000c", Role::Manager, "InService", "10.0.0.3"),
                member("i-0000000d", Role::Worker, "InService", "10.0.0.4"),
            ],
            swarm: Some(SwarmView {
                nodes: vec![
                    node(1, Some("i-0000000a"), "10.0.0.1", Role::Manager, true),
                    node(2, Some("i-0000000b"), "10.0.0.2", Role::Manager, true),
                    node(3, Some("i-0000000c"), "10.0.0.3", Role::Manager, true),
                    node(4, Some("i-0000000d"), "10.0.0.4", Role::Worker, true),
                ],
            }),
            records: vec![
                rec("i-0000000a", "10.0.0.1"),
                rec("i-0000000b", "10.0.0.2"),
                rec("i-0000000c", "10.0.0.3"),
            ],
            now_unix: 2000,
            grace_secs: 300,
        }
    }

    #[test]
    fn a_healthy_cluster_needs_nothing() {
        assert_eq!(plan_reconcile(&healthy(), 60), vec![]);
    }

    #[test]
    fn down_node_of_a_gone_instance_is_removed_a_manager_demoted_first() {
        let mut s = healthy();
        s.members.retain(|m| m.id != "i-0000000c");
        s.swarm.as_mut().unwrap().nodes[2].status = NodeStatus::Down;
        s.records.retain(|r| r.set_identifier != "i-0000000c");
        assert_eq!(
            plan_reconcile(&s, 60),
            vec![Repair::RemoveNode {
                node_id: format!("node{:021}", 3),
                demote: true,
                reason: "its instance is gone".into()
            }]
        );
    }

    #[test]
    fn a_merely_slow_node_is_left_alone_within_the_grace() {
        let mut s = healthy();
        s.swarm.as_mut().unwrap().nodes[3].status = NodeStatus::Down;
        s.members[3].online = false;
        s.swarm.as_mut().unwrap().nodes[3].updated_unix = Some(1900);
        assert_eq!(plan_reconcile(&s, 60), vec![]);
        // Past the grace period, unreachable: removed.
        s.swarm.as_mut().unwrap().nodes[3].updated_unix = Some(1000);
        assert!(matches!(
            &plan_reconcile(&s, 60)[..],
            [Repair::RemoveNode { demote: false, .. }]
        ));
    }

    #[test]
    fn a_hard_killed_manager_is_removed_and_its_record_deleted() {
        let mut s = healthy();
        s.members[2].online = false;
        s.swarm.as_mut().unwrap().nodes[2].status = NodeStatus::Down;
        let plan = plan_reconcile(&s, 60);
        assert!(plan.contains(&Repair::RemoveNode {
            node_id: format!("node{:021}", 3),
            demote: true,
            reason: "instance i-0000000c unreachable for over 300s".into()
        }));
        assert!(plan.contains(&Repair::DnsDelete {
            record: (&rec("i-0000000c", "10.0.0.3")).into()
        }));
    }

    #[test]
    fn strays_are_joined_and_replaced_nodes_removed() {
        let mut s = healthy();
        s.members
            .push(member("i-0000000e", Role::Worker, "InService", "10.0.0.5"));
        // i-d rejoined: its old node is down, a new one is Ready.
        s.swarm.as_mut().unwrap().nodes[3].status = NodeStatus::Down;
        s.swarm
            .as_mut()
            .unwrap()
            .nodes
            .push(node(5, Some("i-0000000d"), "10.0.0.4", Role::Worker, true));
        let plan = plan_reconcile(&s, 60);
        assert!(plan.contains(&Repair::Join {
            instance_id: "i-0000000e".into(),
            group: "wrk".into(),
            waiting: false
        }));
        assert!(plan
            .iter()
            .any(|r| matches!(r, Repair::RemoveNode { node_id, .. } if node_id == &format!("node{:021}", 4))));
    }

    #[test]
    fn a_stray_with_a_down_node_of_its_own_is_rejoined_in_one_run() {
        let mut s = healthy();
        s.swarm.as_mut().unwrap().nodes[3].status = NodeStatus::Down;
        let plan = plan_reconcile(&s, 60);
        assert_eq!(plan.len(), 2, "{plan:?}");
        assert!(matches!(&plan[0], Repair::RemoveNode { reason, .. } if reason.contains("rejoins")));
        assert!(matches!(&plan[1], Repair::Join { instance_id, .. } if instance_id == "i-0000000d"));
    }

    #[test]
    fn dns_drift_is_repaired_to_exactly_the_live_managers() {
        let mut s = healthy();
        s.records.push(rec("manual", "10.9.9.9"));
        s.records[0].ip = "10.0.0.99".parse().unwrap();
        s.records.remove(1);
        let plan = plan_reconcile(&s, 60);
        assert_eq!(
            plan,
            vec![
                Repair::DnsDelete {
                    record: (&rec("i-0000000a", "10.0.0.99")).into()
                },
                Repair::DnsDelete {
                    record: (&rec("manual", "10.9.9.9")).into()
                },
                Repair::DnsUpsert {
                    record: (&rec("i-0000000a", "10.0.0.1")).into()
                },
                Repair::DnsUpsert {
                    record: (&rec("i-0000000b", "10.0.0.2")).into()
                },
            ]
        );
    }

    #[test]
    fn leaving_managers_are_not_in_the_record_and_not_joined() {
        let mut s = healthy();
        s.members[0].lifecycle_state = "Terminating:Wait".into();
        assert_eq!(
            plan_reconcile(&s, 60),
            vec![Repair::DnsDelete {
                record: (&rec("i-0000000a", "10.0.0.1")).into()
            }]
        );
    }

    #[test]
    fn waiting_launches_are_finished_after_the_grace() {
        let mut s = healthy();
        s.members[3].lifecycle_state = "Pending:Wait".into();
        s.members[3].launched_unix = Some(1900);
        assert_eq!(plan_reconcile(&s, 60), vec![], "a launch being handled is left alone");
        s.members[3].launched_unix = Some(100);
        assert_eq!(
            plan_reconcile(&s, 60),
            vec![Repair::CompleteLaunch {
                instance_id: "i-0000000d".into(),
                group: "wrk".into()
            }]
        );
        s.swarm.as_mut().unwrap().nodes.pop();
        assert_eq!(
            plan_reconcile(&s, 60),
            vec![Repair::Join {
                instance_id: "i-0000000d".into(),
                group: "wrk".into(),
                waiting: true
            }]
        );
    }

    #[test]
    fn a_worker_termination_left_waiting_is_completed_once_its_node_is_gone() {
        let mut s = healthy();
        s.members[3].lifecycle_state = "Terminating:Wait".into();
        s.swarm.as_mut().unwrap().nodes.pop();
        assert_eq!(
            plan_reconcile(&s, 60),
            vec![Repair::CompleteTermination {
                instance_id: "i-0000000d".into(),
                group: "wrk".into()
            }]
        );
    }

    #[test]
    fn without_a_reachable_swarm_nothing_is_guessed() {
        let mut s = healthy();
        s.swarm = None;
        assert_eq!(plan_reconcile(&s, 60), vec![]);
    }

    #[test]
    fn synthetic_thousand_node_cluster_plans_every_difference() {
        let s = super::synthetic(1000);
        let plan = plan_reconcile(&s, 60);
        assert_eq!(
            plan.iter().filter(|r| matches!(r, Repair::RemoveNode { .. })).count(),
            10
        );
        assert_eq!(plan.iter().filter(|r| matches!(r, Repair::Join { .. })).count(), 10);
        assert_eq!(plan.iter().filter(|r| matches!(r, Repair::DnsDelete { .. })).count(), 1);
    }
}
