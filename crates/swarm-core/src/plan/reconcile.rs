//! Planning the reconcile: compare the groups' instances, the swarm's nodes and the manager
//! record, and list the repairs. Pure: no I/O (the workflow is workflow/reconcile.rs).

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::model::{LifecycleState, ManagerRecord, NodeIndex, NodeStatus, Role, SwarmNode, SwarmView};
pub use crate::plan::repair::{RecordView, Repair};

/// An instance of a cluster group, as the reconcile sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberInstance {
    pub id: String,
    pub group: String,
    pub role: Role,
    pub lifecycle_state: LifecycleState,
    pub alive: bool,
    pub ip: Option<std::net::Ipv4Addr>,
    pub launched_unix: Option<u64>,
    pub online: bool,
    /// When a scheduled change (retirement, reboot, maintenance) of the instance begins.
    pub scheduled_unix: Option<u64>,
    /// The labels its node should carry (`plan::labels::node_labels`); None: not known (not
    /// described, or its group's own labels are malformed), so nothing is repaired.
    pub labels: Option<crate::plan::labels::Labels>,
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
    /// A scheduled change's node is retired this many seconds before the change begins.
    pub scheduled_lead_secs: u64,
    /// The zone's records under SERVICE_RECORD_SUFFIX (None: no suffix; Err: the listing
    /// failed, and the names are left as they are this run).
    pub service_zone: Option<Result<Vec<crate::plan::service_dns::ZoneEntry>, String>>,
}

impl ClusterSnapshot {
    /// The node is Down and no running instance of the groups is it (by label or address):
    /// what the operator's tidy removes, and nothing else.
    pub fn node_of_gone_instance(&self, node_id: &str) -> bool {
        let Some(n) = self
            .swarm
            .as_ref()
            .and_then(|v| v.nodes.iter().find(|n| n.id == node_id))
        else {
            return false;
        };
        n.status == NodeStatus::Down
            && !self
                .members
                .iter()
                .any(|m| m.alive && (n.instance_id.as_deref() == Some(&m.id) || (n.addr.is_some() && n.addr == m.ip)))
    }
}

/// The Ready node of a member instance (by label, else by address).
fn ready_node<'a>(idx: &NodeIndex<'a>, m: &MemberInstance) -> Option<&'a SwarmNode> {
    idx.ready_node_of(&m.id, m.ip)
}

/// The repairs that make the cluster match its groups. Pure; every branch is unit-tested.
/// Nothing is planned without a swarm view; the order of the repairs is the order below.
pub fn plan_reconcile(s: &ClusterSnapshot, ttl: u64) -> Vec<Repair> {
    let mut out = Vec::new();
    let Some(view) = &s.swarm else {
        return out;
    };
    let ready = NodeIndex::new(view);
    let strays = strays(s, view, &ready);
    removals(s, view, &ready, &strays, &mut out);
    scheduled_retirements(s, &ready, &mut out);
    launches(s, &ready, &strays, &mut out);
    label_drift(s, &ready, &mut out);
    worker_terminations(s, &ready, &mut out);
    if s.dns_name.is_some() {
        records(s, &ready, ttl, &mut out);
    }
    out
}

impl ClusterSnapshot {
    /// The time `t` is past the grace period.
    fn old(&self, t: Option<u64>) -> bool {
        t.is_some_and(|t| self.now_unix.saturating_sub(t) >= self.grace_secs)
    }

    /// Its scheduled change is near: it leaves the swarm and is not joined again.
    fn due(&self, m: &MemberInstance) -> bool {
        m.scheduled_unix
            .is_some_and(|t| t <= self.now_unix + self.scheduled_lead_secs)
    }
}

/// Instances about to be joined as strays (running, in service, online, no Ready node, not
/// cut off and not due): their old Down nodes are replaced now.
fn strays<'a>(s: &'a ClusterSnapshot, view: &SwarmView, ready: &NodeIndex) -> HashSet<&'a str> {
    // Instances whose node went down within the grace period: perhaps only cut off from
    // the other managers (a partition heals with the same node). Neither removed nor
    // joined again before the grace has passed.
    // So are nodes in status `unknown`: a leader elected since lists every node so until
    // it hears from it (a worker reconnecting can take tens of seconds), and its status
    // time is still that of its last known state. Not known to be down: a node removed
    // then, its instance still believing it is in the swarm, never came back.
    let cut_off: HashSet<&str> = view
        .nodes
        .iter()
        .filter(|n| n.status == NodeStatus::Unknown || (n.status != NodeStatus::Ready && !s.old(n.updated_unix)))
        .filter_map(|n| n.instance_id.as_deref())
        .collect();
    s.members
        .iter()
        .filter(|m| {
            m.alive && m.online && m.lifecycle_state == LifecycleState::InService && ready_node(ready, m).is_none()
        })
        .filter(|m| !cut_off.contains(m.id.as_str()) && !s.due(m))
        .map(|m| m.id.as_str())
        .collect()
}

/// 1. Nodes that are not Ready and whose instance is gone, replaced, or unreachable too long.
fn removals(s: &ClusterSnapshot, view: &SwarmView, ready: &NodeIndex, strays: &HashSet<&str>, out: &mut Vec<Repair>) {
    let by_id: HashMap<&str, &MemberInstance> = s.members.iter().map(|m| (m.id.as_str(), m)).collect();
    for n in view.nodes.iter().filter(|n| n.status != NodeStatus::Ready) {
        let owner = n
            .instance_id
            .as_deref()
            .and_then(|id| by_id.get(id).copied())
            .or_else(|| s.members.iter().find(|m| m.ip.is_some() && m.ip == n.addr));
        let reason = match owner {
            None => Some("its instance is gone".to_string()),
            Some(m) if !m.alive => Some(format!("instance {} is not running", m.id)),
            Some(m) if ready.ready_node_of(&m.id, None).is_some() && n.instance_id.is_some() => {
                Some(format!("instance {} has a newer Ready node", m.id))
            }
            Some(m) if strays.contains(m.id.as_str()) && n.instance_id.is_some() => {
                Some(format!("instance {} rejoins with a new node", m.id))
            }
            Some(m) if !m.online && s.old(n.updated_unix) => {
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
}

/// 2. Nodes whose instance's scheduled change is near.
fn scheduled_retirements(s: &ClusterSnapshot, ready: &NodeIndex, out: &mut Vec<Repair>) {
    for m in s
        .members
        .iter()
        .filter(|m| m.alive && s.due(m) && !m.lifecycle_state.is_leaving())
    {
        if ready_node(ready, m).is_some() {
            out.push(Repair::Retire {
                instance_id: m.id.clone(),
                group: m.group.clone(),
                reason: format!("a scheduled change begins at {}", m.scheduled_unix.unwrap_or_default()),
            });
        }
    }
}

/// 3. Running instances that are not in the swarm; waiting launches that can be finished.
fn launches(s: &ClusterSnapshot, ready: &NodeIndex, strays: &HashSet<&str>, out: &mut Vec<Repair>) {
    for m in s.members.iter().filter(|m| m.alive && !m.lifecycle_state.is_leaving()) {
        let node = ready_node(ready, m);
        let waiting = m.lifecycle_state == LifecycleState::PendingWait;
        match (node, waiting) {
            (Some(_), true) if s.old(m.launched_unix) => out.push(Repair::CompleteLaunch {
                instance_id: m.id.clone(),
                group: m.group.clone(),
            }),
            (None, true) if s.old(m.launched_unix) && m.online => out.push(Repair::Join {
                instance_id: m.id.clone(),
                group: m.group.clone(),
                waiting: true,
            }),
            (None, false) if strays.contains(m.id.as_str()) => out.push(Repair::Join {
                instance_id: m.id.clone(),
                group: m.group.clone(),
                waiting: false,
            }),
            _ => {}
        }
    }
}

/// 4. Ready nodes of instances in service whose labels drifted from their instance's.
fn label_drift(s: &ClusterSnapshot, ready: &NodeIndex, out: &mut Vec<Repair>) {
    for m in s
        .members
        .iter()
        .filter(|m| m.alive && m.lifecycle_state == LifecycleState::InService)
    {
        let (Some(expected), Some(n)) = (&m.labels, ready_node(ready, m)) else {
            continue;
        };
        let mut wrong = crate::plan::labels::drift(&n.labels, expected);
        if n.instance_id.as_deref() != Some(m.id.as_str()) {
            wrong.insert(0, crate::plan::labels::INSTANCE_ID.to_string());
        }
        if !wrong.is_empty() {
            out.push(Repair::Label {
                instance_id: m.id.clone(),
                node_id: n.id.clone(),
                group: m.group.clone(),
                labels: wrong,
            });
        }
    }
}

/// 5. Waiting worker terminations whose node is out of the swarm.
fn worker_terminations(s: &ClusterSnapshot, ready: &NodeIndex, out: &mut Vec<Repair>) {
    for m in s
        .members
        .iter()
        .filter(|m| m.lifecycle_state == LifecycleState::TerminatingWait && m.role == Role::Worker)
    {
        if ready_node(ready, m).is_none() && s.old(m.launched_unix) {
            out.push(Repair::CompleteTermination {
                instance_id: m.id.clone(),
                group: m.group.clone(),
            });
        }
    }
}

/// 6. The manager record holds exactly the live managers' IPs.
fn records(s: &ClusterSnapshot, ready: &NodeIndex, ttl: u64, out: &mut Vec<Repair>) {
    let desired: HashMap<&str, std::net::Ipv4Addr> = s
        .members
        .iter()
        .filter(|m| m.role == Role::Manager && m.alive && m.lifecycle_state == LifecycleState::InService && !s.due(m))
        .filter(|m| ready_node(ready, m).is_some_and(|n| n.role == Role::Manager))
        .filter_map(|m| m.ip.map(|ip| (m.id.as_str(), ip)))
        .collect();
    // A leader elected moments ago lists every other node `unknown` until it hears from it
    // (itself too, seconds after the election): such a manager is not known to be down,
    // so its record is left as it is (deleting it emptied the record after a healed
    // partition).
    let unknown: HashSet<&str> = s
        .members
        .iter()
        .filter(|m| m.role == Role::Manager)
        .filter(|m| {
            ready
                .node_of(&m.id, m.ip)
                .is_some_and(|n| n.status == NodeStatus::Unknown)
        })
        .map(|m| m.id.as_str())
        .collect();
    for r in &s.records {
        if desired.get(r.set_identifier.as_str()) != Some(&r.ip) && !unknown.contains(r.set_identifier.as_str()) {
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
                    ip,
                },
            });
        }
    }
}

/// The cluster's health as one reconcile run sees it: the reconcile emits it as metrics every
/// run (EMF, no API call), and the template alarms on the quorum margin and on Down nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Health {
    pub ready_managers: usize,
    pub ready_workers: usize,
    pub down_nodes: usize,
    /// Ready managers above the quorum of the swarm's managers (Raft needs a majority of them):
    /// 1 for 3 of 3 Ready, 0 for 2 of 3 (one more loss and the swarm can no longer change),
    /// negative when the quorum is lost or no manager answered.
    pub quorum_margin: i64,
    /// Repairs the run planned: what the cluster differs from its groups and its record by.
    pub drift_items: usize,
}

pub fn health(s: &ClusterSnapshot, repairs: &[Repair]) -> Health {
    let Some(view) = &s.swarm else {
        return Health {
            ready_managers: 0,
            ready_workers: 0,
            down_nodes: 0,
            quorum_margin: -1,
            drift_items: repairs.len(),
        };
    };
    let count = |f: &dyn Fn(&SwarmNode) -> bool| view.nodes.iter().filter(|n| f(n)).count();
    let managers = count(&|n| n.role == Role::Manager);
    let ready_managers = count(&|n| n.role == Role::Manager && n.status == NodeStatus::Ready);
    Health {
        ready_managers,
        ready_workers: count(&|n| n.role == Role::Worker && n.status == NodeStatus::Ready),
        down_nodes: count(&|n| n.status == NodeStatus::Down),
        quorum_margin: ready_managers as i64 - (managers as i64 / 2 + 1),
        drift_items: repairs.len(),
    }
}

#[cfg(any(test, feature = "testkit"))]
mod synthetic;
#[cfg(any(test, feature = "testkit"))]
pub use synthetic::synthetic;

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
            scheduled_unix: None,
            labels: None,
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
            labels: Default::default(),
        }
    }
    fn rec(id: &str, ip: &str) -> ManagerRecord {
        ManagerRecord {
            set_identifier: id.into(),
            ip: ip.parse().unwrap(),
            ttl: 60,
        }
    }
    #[test]
    fn a_node_in_service_missing_or_wrong_well_known_labels_is_labelled_again() {
        let mut s = healthy();
        let i = crate::plan::inst("i-0000000d").unwrap();
        let expected = crate::plan::labels::well_known(&i, "wrk");
        s.members[3].labels = Some(expected.clone());
        let w = &mut s.swarm.as_mut().unwrap().nodes[3];
        w.labels = expected
            .iter()
            .filter(|(k, _)| k != crate::plan::labels::INSTANCE_ID)
            .cloned()
            .collect();
        assert_eq!(plan_reconcile(&s, 60), vec![], "labelled as it should be");
        let w = &mut s.swarm.as_mut().unwrap().nodes[3];
        w.labels.remove(crate::plan::labels::ZONE);
        w.labels.insert(crate::plan::labels::GROUP.into(), "other".into());
        let node_id = w.id.clone();
        assert_eq!(
            plan_reconcile(&s, 60),
            vec![Repair::Label {
                instance_id: "i-0000000d".into(),
                node_id,
                group: "wrk".into(),
                labels: vec![crate::plan::labels::ZONE.into(), crate::plan::labels::GROUP.into()],
            }]
        );
        // Not while its launch is still labelling it, nor when what it should carry is unknown.
        s.members[3].lifecycle_state = "Pending:Wait".into();
        assert!(!plan_reconcile(&s, 60).iter().any(|r| matches!(r, Repair::Label { .. })));
        s.members[3].lifecycle_state = "InService".into();
        s.members[3].labels = None;
        assert!(plan_reconcile(&s, 60).is_empty());
    }

    #[test]
    fn a_fresh_leaders_unknown_managers_keep_their_records() {
        // Found by the healed-partition scenario: the new leader listed the others `unknown`
        // and the reconcile deleted their records, leaving one IP in the manager record.
        let mut s = healthy();
        for n in s.swarm.as_mut().unwrap().nodes.iter_mut().take(2) {
            n.status = NodeStatus::Unknown;
        }
        let plan = plan_reconcile(&s, 60);
        assert!(!plan.iter().any(|r| matches!(r, Repair::DnsDelete { .. })), "{plan:?}");
        // Down is known: that record goes.
        s.swarm.as_mut().unwrap().nodes[0].status = NodeStatus::Down;
        let plan = plan_reconcile(&s, 60);
        assert_eq!(
            plan.iter().filter(|r| matches!(r, Repair::DnsDelete { .. })).count(),
            1,
            "{plan:?}"
        );
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
            scheduled_lead_secs: 600,
            service_zone: None,
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
    fn a_node_the_leader_has_not_heard_from_since_an_election_is_left_alone() {
        let mut s = healthy();
        // A worker listed `unknown` by a new leader, its status time long past the grace.
        s.swarm.as_mut().unwrap().nodes[3].status = NodeStatus::Unknown;
        assert_eq!(plan_reconcile(&s, 60), vec![], "neither removed nor joined again");
        // Once the leader marks it down (past the grace), it is rejoined as before.
        s.swarm.as_mut().unwrap().nodes[3].status = NodeStatus::Down;
        assert_eq!(plan_reconcile(&s, 60).len(), 2);
    }

    #[test]
    fn a_manager_cut_off_within_the_grace_keeps_its_node_and_leaves_the_record() {
        // Its agent answers (SSM is not between the hosts), its node is down for the others.
        let mut s = healthy();
        s.swarm.as_mut().unwrap().nodes[2].status = NodeStatus::Down;
        s.swarm.as_mut().unwrap().nodes[2].updated_unix = Some(1900);
        assert_eq!(
            plan_reconcile(&s, 60),
            vec![Repair::DnsDelete {
                record: (&rec("i-0000000c", "10.0.0.3")).into()
            }],
            "no node removed, none joined: a partition heals with the same node"
        );
        // Down past the grace: the instance rejoins with a new node.
        s.swarm.as_mut().unwrap().nodes[2].updated_unix = Some(1000);
        let plan = plan_reconcile(&s, 60);
        assert!(matches!(&plan[0], Repair::RemoveNode { reason, demote: true, .. } if reason.contains("rejoins")));
        assert!(matches!(&plan[1], Repair::Join { instance_id, .. } if instance_id == "i-0000000c"));
    }

    #[test]
    fn a_scheduled_change_within_the_lead_retires_the_node_and_it_is_not_joined_again() {
        let mut s = healthy();
        s.members[1].scheduled_unix = Some(s.now_unix + 601);
        assert_eq!(plan_reconcile(&s, 60), vec![], "not yet: the lead is 600 s");
        s.members[1].scheduled_unix = Some(s.now_unix + 600);
        assert_eq!(
            plan_reconcile(&s, 60),
            vec![
                Repair::Retire {
                    instance_id: "i-0000000b".into(),
                    group: "mgr".into(),
                    reason: format!("a scheduled change begins at {}", s.now_unix + 600)
                },
                Repair::DnsDelete {
                    record: (&rec("i-0000000b", "10.0.0.2")).into()
                }
            ]
        );
        // Retired, the group not yet replacing it: neither joined nor retired again.
        s.swarm.as_mut().unwrap().nodes.remove(1);
        s.records.remove(1);
        assert_eq!(plan_reconcile(&s, 60), vec![]);
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

    #[test]
    fn health_counts_ready_nodes_down_nodes_and_the_managers_above_quorum() {
        let mut s = synthetic(3 + 2);
        let repairs = plan_reconcile(&s, 60);
        assert_eq!(
            health(&s, &repairs),
            Health {
                ready_managers: 3,
                ready_workers: 2,
                down_nodes: 0,
                quorum_margin: 1,
                // The synthetic record's by-hand answer: one DnsDelete.
                drift_items: 1
            }
        );
        assert_eq!(repairs.len(), 1);
        let view = s.swarm.as_mut().unwrap();
        view.nodes[2].status = NodeStatus::Down;
        let h = health(&s, &[]);
        assert_eq!(
            (h.ready_managers, h.down_nodes, h.quorum_margin),
            (2, 1, 0),
            "one more loss loses the quorum"
        );
        s.swarm.as_mut().unwrap().nodes[1].status = NodeStatus::Disconnected;
        assert_eq!(health(&s, &[]).quorum_margin, -1, "1 of 3: lost");
        s.swarm = None;
        assert_eq!(health(&s, &[]).quorum_margin, -1, "no manager answered");
    }
}
