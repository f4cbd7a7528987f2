//! A synthetic cluster for `make bench` and the planner's scale test.

use super::*;

/// A synthetic cluster of `n` instances (3 managers), with 1% of nodes down and gone,
/// 1% strays and a drifted record: what `make bench` measures.
pub fn synthetic(n: usize) -> ClusterSnapshot {
    let ip = |i: usize| format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    let mut s = ClusterSnapshot {
        cluster: "big".into(),
        dns_name: Some("m.big.internal".into()),
        now_unix: 10_000,
        grace_secs: 300,
        scheduled_lead_secs: 600,
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
        scheduled_unix: None,
        labels: None,
    }
}

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
        labels: Default::default(),
    }
}
