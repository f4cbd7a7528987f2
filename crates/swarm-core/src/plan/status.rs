//! The operator's view of one cluster: each group instance beside its swarm node and its
//! manager record, nodes and records that belong to no instance, and the repairs the
//! reconcile would make (drift), attached to the row they concern. Pure: built from the
//! reconcile's own snapshot and plan, so `status` and `plan` can never disagree with it.

use serde::Serialize;

use crate::model::{Availability, LifecycleState, NodeIndex, NodeStatus, Role, SwarmNode};
use crate::plan::reconcile::{ClusterSnapshot, Health, Repair};

/// One cluster as `swarm-lifecycle status` prints it; `--json` prints exactly this.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterStatus {
    pub cluster: String,
    pub record_name: Option<String>,
    /// A manager listed the nodes (false: no swarm, or no manager reachable).
    pub swarm_reachable: bool,
    pub health: Health,
    pub rows: Vec<StatusRow>,
    /// Every repair the reconcile would make now, in the order it would make them.
    pub repairs: Vec<Repair>,
    /// The names under SERVICE_RECORD_SUFFIX, with their owners and values (None: no suffix).
    pub service_names: Option<Vec<crate::plan::service_dns::NameStatus>>,
    /// Why the names could not be listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_names_error: Option<String>,
}

/// An instance of the cluster's groups and/or a swarm node (a node of a gone instance has no
/// instance half; an instance outside the swarm has no node half).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct StatusRow {
    pub instance_id: Option<String>,
    pub group: Option<String>,
    pub role: Option<Role>,
    pub lifecycle_state: Option<String>,
    /// Seconds since launch of an instance still held in Pending:Wait (its launch action has
    /// waited at most this long).
    pub waiting_secs: Option<u64>,
    pub ip: Option<std::net::Ipv4Addr>,
    pub agent_online: bool,
    pub node: Option<NodeStatusView>,
    /// Its IP is in the manager record.
    pub in_record: bool,
    /// The reconcile's repairs that concern this row, in words.
    pub drift: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeStatusView {
    pub id: String,
    pub role: Role,
    pub status: NodeStatus,
    pub availability: Availability,
    pub leader: bool,
    pub hostname: String,
    /// Its well-known placement labels (zone, instance type, capacity type, group), by key.
    pub labels: std::collections::BTreeMap<String, String>,
}

impl From<&SwarmNode> for NodeStatusView {
    fn from(n: &SwarmNode) -> Self {
        NodeStatusView {
            id: n.id.clone(),
            role: n.role,
            status: n.status,
            availability: n.availability,
            leader: n.leader,
            hostname: n.hostname.clone(),
            labels: n.labels.clone(),
        }
    }
}

/// One repair in the words of the status table.
pub fn describe(r: &Repair) -> String {
    match r {
        Repair::RemoveNode {
            demote: true, reason, ..
        } => format!("demote and remove the node: {reason}"),
        Repair::RemoveNode { reason, .. } => format!("remove the node: {reason}"),
        Repair::Retire { reason, .. } => format!("retire: {reason}"),
        Repair::Join { waiting: true, .. } => "join the swarm, then complete its launch action".into(),
        Repair::Join { .. } => "join the swarm".into(),
        Repair::CompleteLaunch { .. } => "complete its waiting launch action (CONTINUE)".into(),
        Repair::CompleteTermination { .. } => "complete its waiting terminate action (CONTINUE)".into(),
        Repair::Label { labels, .. } => format!("label its node again: {} missing or wrong", labels.join(", ")),
        Repair::DnsDelete { record } => format!("delete its record {} from the manager record", record.ip),
        Repair::DnsUpsert { record } => format!("add {} to the manager record", record.ip),
    }
}

/// The instance (or the node, or the record set) a repair concerns.
fn concerns(r: &Repair) -> (Option<&str>, Option<&str>) {
    match r {
        Repair::RemoveNode { node_id, .. } => (None, Some(node_id)),
        Repair::Retire { instance_id, .. }
        | Repair::Join { instance_id, .. }
        | Repair::CompleteLaunch { instance_id, .. }
        | Repair::Label { instance_id, .. }
        | Repair::CompleteTermination { instance_id, .. } => (Some(instance_id), None),
        Repair::DnsDelete { record } | Repair::DnsUpsert { record } => (Some(&record.set_identifier), None),
    }
}

/// The instance, node or record a repair is about, as the operator reads it.
pub fn subject(r: &Repair) -> &str {
    match concerns(r) {
        (Some(id), _) | (None, Some(id)) => id,
        (None, None) => "",
    }
}

/// The status of one cluster from the reconcile's snapshot and its plan.
pub fn cluster_status(s: &ClusterSnapshot, repairs: &[Repair], health: Health) -> ClusterStatus {
    let idx = s.swarm.as_ref().map(NodeIndex::new);
    let mut rows: Vec<StatusRow> = s
        .members
        .iter()
        .map(|m| {
            let node = idx.as_ref().and_then(|i| i.node_of(&m.id, m.ip));
            StatusRow {
                instance_id: Some(m.id.clone()),
                group: Some(m.group.clone()),
                role: Some(m.role),
                lifecycle_state: Some(m.lifecycle_state.to_string()),
                waiting_secs: (m.lifecycle_state == LifecycleState::PendingWait)
                    .then(|| m.launched_unix.map(|t| s.now_unix.saturating_sub(t)))
                    .flatten(),
                ip: m.ip,
                agent_online: m.online,
                node: node.map(NodeStatusView::from),
                in_record: s.records.iter().any(|r| Some(r.ip) == m.ip || r.set_identifier == m.id),
                drift: vec![],
            }
        })
        .collect();
    // Nodes no instance of the groups accounts for (their instance is gone, or never was).
    if let Some(view) = &s.swarm {
        for n in &view.nodes {
            if !rows.iter().any(|r| r.node.as_ref().is_some_and(|v| v.id == n.id)) {
                rows.push(StatusRow {
                    instance_id: n.instance_id.clone(),
                    ip: n.addr,
                    node: Some(n.into()),
                    in_record: s.records.iter().any(|r| Some(r.ip) == n.addr),
                    ..StatusRow::default()
                });
            }
        }
    }
    // Record sets no row accounts for (a stale record of a gone instance).
    for r in &s.records {
        if !rows
            .iter()
            .any(|row| row.instance_id.as_deref() == Some(&r.set_identifier) || row.ip == Some(r.ip))
        {
            rows.push(StatusRow {
                instance_id: Some(r.set_identifier.clone()),
                ip: Some(r.ip),
                in_record: true,
                ..StatusRow::default()
            });
        }
    }
    for r in repairs {
        let (instance, node) = concerns(r);
        let row = rows.iter_mut().find(|row| {
            instance.is_some_and(|i| row.instance_id.as_deref() == Some(i))
                || node.is_some_and(|n| row.node.as_ref().is_some_and(|v| v.id == n))
        });
        if let Some(row) = row {
            row.drift.push(describe(r));
        }
    }
    ClusterStatus {
        cluster: s.cluster.clone(),
        record_name: s.dns_name.clone(),
        swarm_reachable: s.swarm.is_some(),
        health,
        rows,
        repairs: repairs.to_vec(),
        service_names: match &s.service_zone {
            Some(Ok(zone)) => Some(crate::plan::service_dns::name_status(zone)),
            _ => None,
        },
        service_names_error: match &s.service_zone {
            Some(Err(e)) => Some(e.clone()),
            _ => None,
        },
    }
}

/// Whether the operator may retire `id` through its group now: it must be an instance of the
/// cluster's groups in service; a Ready manager only while one fewer Ready manager still
/// leaves a majority of the managers (quorum margin ≥ 1), unless `force`. Err says why not.
pub fn may_retire(s: &ClusterSnapshot, health: Health, id: &str, force: bool) -> Result<(), String> {
    let Some(m) = s.members.iter().find(|m| m.id == id) else {
        return Err(format!("{id} is not an instance of cluster {}'s groups", s.cluster));
    };
    if m.lifecycle_state != LifecycleState::InService {
        return Err(format!(
            "{id} is {}, not InService: its lifecycle is under way",
            m.lifecycle_state
        ));
    }
    let ready_manager = s
        .swarm
        .as_ref()
        .and_then(|v| v.node_of(id, m.ip))
        .is_some_and(|n| n.role == Role::Manager && n.status == NodeStatus::Ready);
    if ready_manager && health.quorum_margin < 1 && !force {
        return Err(format!(
            "{id} is a Ready manager and the quorum margin is {}: without it the swarm would lose its quorum \
             (retire it once another manager is Ready, or pass --force)",
            health.quorum_margin
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ManagerRecord, SwarmView};
    use crate::plan::reconcile::{health, plan_reconcile, MemberInstance};

    fn member(id: &str, role: Role, ip: u8, state: &str) -> MemberInstance {
        MemberInstance {
            id: id.into(),
            group: format!("demo-{}s", role.as_str()),
            role,
            lifecycle_state: state.into(),
            alive: true,
            ip: Some(std::net::Ipv4Addr::new(10, 0, 0, ip)),
            launched_unix: Some(1_000),
            online: true,
            scheduled_unix: None,
            labels: None,
        }
    }

    fn node(id: &str, state: &str, ip: u8, role: &str, instance: &str) -> String {
        format!(
            "{id} {state} 10.0.0.{ip} {role} active {} {instance} 900 ip-10-0-0-{ip}",
            role == "manager" && ip == 1
        )
    }

    #[test]
    fn every_instance_node_and_record_has_a_row_and_each_repair_lands_on_its_row() {
        let lines = [
            node(
                "aaaaaaaaaaaaaaaaaaaaaaaaa",
                "ready",
                1,
                "manager",
                "i-0000000000000000a",
            ),
            node("bbbbbbbbbbbbbbbbbbbbbbbbb", "ready", 2, "worker", "i-0000000000000000b"),
            // A Down node of an instance that is gone.
            node("ccccccccccccccccccccccccc", "down", 3, "worker", "i-0000000000000000c"),
        ];
        let snap = ClusterSnapshot {
            cluster: "demo".into(),
            dns_name: Some("managers.demo.internal".into()),
            members: vec![
                member("i-0000000000000000a", Role::Manager, 1, "InService"),
                member("i-0000000000000000b", Role::Worker, 2, "InService"),
                // Running, not in the swarm, its launch action waiting.
                member("i-0000000000000000d", Role::Worker, 4, "Pending:Wait"),
            ],
            swarm: Some(SwarmView::parse(&lines.join("\n"))),
            records: vec![
                ManagerRecord {
                    set_identifier: "i-0000000000000000a".into(),
                    ip: "10.0.0.1".parse().unwrap(),
                    ttl: 60,
                },
                // A record of no instance.
                ManagerRecord {
                    set_identifier: "i-0000000000000000e".into(),
                    ip: "10.0.0.9".parse().unwrap(),
                    ttl: 60,
                },
            ],
            now_unix: 10_000,
            grace_secs: 60,
            scheduled_lead_secs: 600,
            service_zone: None,
        };
        let repairs = plan_reconcile(&snap, 60);
        let st = cluster_status(&snap, &repairs, health(&snap, &repairs));
        let ids: Vec<_> = st.rows.iter().map(|r| r.instance_id.clone().unwrap()).collect();
        assert_eq!(
            ids,
            [
                "i-0000000000000000a",
                "i-0000000000000000b",
                "i-0000000000000000d",
                "i-0000000000000000c",
                "i-0000000000000000e"
            ]
        );
        let drift: Vec<_> = st.rows.iter().map(|r| r.drift.len()).collect();
        // Every repair shows on exactly one row.
        assert_eq!(drift.iter().sum::<usize>(), repairs.len(), "{repairs:?}");
        assert_eq!(drift, [0, 0, 1, 1, 1], "{:#?}", st.rows);
        assert_eq!(st.rows[2].waiting_secs, Some(9_000));
        assert!(st.rows[2].node.is_none());
        assert!(st.rows[0].in_record && !st.rows[1].in_record && st.rows[4].in_record);
        assert_eq!(st.rows[3].node.as_ref().unwrap().status, NodeStatus::Down);
        assert_eq!(st.health.down_nodes, 1);
    }

    #[test]
    fn a_ready_manager_retires_only_with_a_quorum_margin_unless_forced() {
        let one = |id: &str, ip: u8, role: &str| node(&format!("{:a>25}", ip), "ready", ip, role, id);
        let mut snap = ClusterSnapshot {
            cluster: "demo".into(),
            members: vec![
                member("i-0000000000000000a", Role::Manager, 1, "InService"),
                member("i-0000000000000000b", Role::Worker, 2, "InService"),
                member("i-0000000000000000d", Role::Worker, 4, "Pending:Wait"),
            ],
            swarm: Some(SwarmView::parse(&format!(
                "{}\n{}",
                one("i-0000000000000000a", 1, "manager"),
                one("i-0000000000000000b", 2, "worker")
            ))),
            ..ClusterSnapshot::default()
        };
        let h = |s: &ClusterSnapshot| health(s, &[]);
        // One manager of one: margin 0.
        let err = may_retire(&snap, h(&snap), "i-0000000000000000a", false).unwrap_err();
        assert!(err.contains("quorum"), "{err}");
        assert_eq!(may_retire(&snap, h(&snap), "i-0000000000000000a", true), Ok(()));
        assert_eq!(may_retire(&snap, h(&snap), "i-0000000000000000b", false), Ok(()));
        assert!(may_retire(&snap, h(&snap), "i-0000000000000000d", false)
            .unwrap_err()
            .contains("Pending:Wait"));
        assert!(may_retire(&snap, h(&snap), "i-000000000000000ff", false)
            .unwrap_err()
            .contains("not an instance"));
        // Three Ready managers: margin 1, one may go.
        snap.members
            .push(member("i-0000000000000000e", Role::Manager, 5, "InService"));
        snap.members
            .push(member("i-0000000000000000f", Role::Manager, 6, "InService"));
        let v = snap.swarm.as_mut().unwrap();
        v.nodes
            .extend(SwarmView::parse(&one("i-0000000000000000e", 5, "manager")).nodes);
        v.nodes
            .extend(SwarmView::parse(&one("i-0000000000000000f", 6, "manager")).nodes);
        assert_eq!(may_retire(&snap, h(&snap), "i-0000000000000000a", false), Ok(()));
    }
}
