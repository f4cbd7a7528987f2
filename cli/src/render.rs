//! Text for a person: the status table and the plan. Colour only when asked (a terminal
//! without NO_COLOR); the same text otherwise, so pipes and golden files see plain words.

use std::fmt::Write;

use swarm_core::plan::labels::{CAPACITY_TYPE, INSTANCE_TYPE, ZONE};
use swarm_core::plan::status::{describe, subject, ClusterStatus, StatusRow};

const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

fn paint(s: &str, code: &str, colour: bool) -> String {
    if colour {
        format!("{code}{s}{RESET}")
    } else {
        s.to_string()
    }
}

fn lower<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn cells(r: &StatusRow) -> [String; 8] {
    let lifecycle = match (&r.lifecycle_state, r.waiting_secs) {
        (Some(s), Some(w)) => format!("{s} {w}s"),
        (Some(s), None) => s.clone(),
        (None, _) => "(not in a group)".into(),
    };
    let node = match &r.node {
        Some(n) => {
            let mut s = format!("{} {} {}", lower(&n.role), lower(&n.status), lower(&n.availability));
            if n.leader {
                s.push_str(" leader");
            }
            s
        }
        None => "-".into(),
    };
    // Where services can be placed by: zone, instance type, capacity type (its labels).
    let placement = r
        .node
        .as_ref()
        .map(|n| {
            [ZONE, INSTANCE_TYPE, CAPACITY_TYPE]
                .iter()
                .map(|k| n.labels.get(*k).map(String::as_str).unwrap_or("?"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "-".into());
    let agent = match (&r.lifecycle_state, r.agent_online) {
        (None, _) => "-",
        (_, true) => "online",
        (_, false) => "offline",
    };
    [
        r.instance_id.clone().unwrap_or_else(|| "-".into()),
        r.role.map(|x| x.as_str().to_string()).unwrap_or_else(|| "-".into()),
        lifecycle,
        r.ip.map(|ip| ip.to_string()).unwrap_or_else(|| "-".into()),
        agent.into(),
        node,
        if r.in_record { "yes" } else { "-" }.into(),
        placement,
    ]
}

/// The status of one cluster: a summary line, then one row per instance, node or record,
/// each drift item under the row it concerns.
pub fn status(s: &ClusterStatus, colour: bool) -> String {
    let mut out = headline(s, colour);
    let head = [
        "INSTANCE",
        "ROLE",
        "LIFECYCLE",
        "IP",
        "AGENT",
        "NODE",
        "RECORD",
        "PLACEMENT",
    ]
    .map(String::from);
    let rows: Vec<[String; 8]> = s.rows.iter().map(cells).collect();
    let mut width = head.clone().map(|c| c.len());
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: &[String; 8]| {
        let mut l = String::new();
        for (i, (c, w)) in cols.iter().zip(width).enumerate() {
            if i + 1 == cols.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ");
            }
        }
        l
    };
    out.push('\n');
    let _ = writeln!(out, "{}", paint(&line(&head), BOLD, colour));
    for (r, cols) in s.rows.iter().zip(&rows) {
        let l = line(cols);
        let _ = writeln!(
            out,
            "{}",
            if r.drift.is_empty() {
                l
            } else {
                paint(&l, YELLOW, colour)
            }
        );
        for d in &r.drift {
            let _ = writeln!(out, "  {} {d}", paint("↳", YELLOW, colour));
        }
    }
    out.push_str(&service_names(s, colour));
    out
}

/// The cluster, its record, and its health in one line each.
fn headline(s: &ClusterStatus, colour: bool) -> String {
    let mut out = String::new();
    let h = &s.health;
    let record = s.record_name.as_deref().unwrap_or("(no manager record)");
    let _ = writeln!(
        out,
        "{} cluster {} · record {record}",
        paint("●", BOLD, colour),
        s.cluster
    );
    let swarm = if s.swarm_reachable {
        "swarm answered".to_string()
    } else {
        paint("no manager answered", RED, colour)
    };
    let margin = format!("quorum margin {}", h.quorum_margin);
    let margin = if h.quorum_margin <= 0 {
        paint(&margin, RED, colour)
    } else {
        margin
    };
    let drift = format!("drift {}", h.drift_items);
    let drift = if h.drift_items > 0 {
        paint(&drift, YELLOW, colour)
    } else {
        drift
    };
    let _ = writeln!(
        out,
        "{swarm} · managers ready {} · workers ready {} · down {} · {margin} · {drift}",
        h.ready_managers, h.ready_workers, h.down_nodes
    );
    out
}

/// The names under the service record suffix: each with its owner and its values; a name
/// another cluster or no one of this project owns says so.
fn service_names(s: &ClusterStatus, colour: bool) -> String {
    let mut out = String::new();
    if let Some(e) = &s.service_names_error {
        let _ = writeln!(
            out,
            "\n{}",
            paint(&format!("service names: not listed: {e}"), RED, colour)
        );
    }
    let Some(names) = s.service_names.as_ref().filter(|n| !n.is_empty()) else {
        return out;
    };
    let rows: Vec<[String; 3]> = names
        .iter()
        .map(|n| {
            let owner = match (&n.cluster, &n.service) {
                (Some(c), Some(svc)) if *c == s.cluster => format!("service {svc}"),
                (Some(c), Some(svc)) => format!("cluster {c}, service {svc}"),
                _ => "not this project's: left alone".into(),
            };
            let values: Vec<String> = n
                .values
                .iter()
                .map(|v| match &v.set_identifier {
                    Some(id) => format!("{} ({id})", v.ip),
                    None => v.ip.clone(),
                })
                .collect();
            let values = if values.is_empty() {
                "-".into()
            } else {
                values.join(", ")
            };
            [n.name.clone(), owner, values]
        })
        .collect();
    let head = ["SERVICE NAME", "OWNER", "VALUES"].map(String::from);
    let (w0, w1) = rows.iter().chain([&head]).fold((0, 0), |(a, b), r| {
        (a.max(r[0].chars().count()), b.max(r[1].chars().count()))
    });
    let line = |r: &[String; 3]| format!("{:<w0$}  {:<w1$}  {}", r[0], r[1], r[2]);
    let _ = writeln!(out, "\n{}", paint(&line(&head), BOLD, colour));
    for (n, r) in names.iter().zip(&rows) {
        let l = line(r);
        let foreign = n.cluster.as_deref() != Some(s.cluster.as_str());
        let _ = writeln!(out, "{}", if foreign { paint(&l, YELLOW, colour) } else { l });
    }
    out
}

/// What a repair is about: the instance, the node, or the record set.
/// The reconcile's repairs, numbered in the order it would make them.
pub fn plan(s: &ClusterStatus) -> String {
    if s.repairs.is_empty() {
        return format!("cluster {}: nothing to repair\n", s.cluster);
    }
    let mut out = format!(
        "cluster {}: the reconcile would make {} repair(s), in this order:\n",
        s.cluster,
        s.repairs.len()
    );
    for (i, r) in s.repairs.iter().enumerate() {
        let _ = writeln!(out, "{:>3}. {}: {}", i + 1, subject(r), describe(r));
    }
    out
}

/// `plan --retire`: the steps, then one row per service on the node.
pub fn retire_preview(o: &swarm_core::workflow::Outcome) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: {}", o.instance_id.as_deref().unwrap_or("?"), o.detail);
    if o.services.is_empty() {
        let _ = writeln!(out, "no service has a task on its node (or no manager could say)");
        return out;
    }
    let width = o.services.iter().map(|s| s.service.len()).max().unwrap_or(7).max(7);
    let _ = writeln!(out, "{:<width$}  {:<9}  {:<40}  BUDGET", "SERVICE", "PLACEMENT", "WHY");
    for s in &o.services {
        let _ = writeln!(
            out,
            "{:<width$}  {:<9}  {:<40}  {}",
            s.service,
            s.placement,
            s.reason,
            s.budget.as_deref().unwrap_or("-")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_core::model::{Availability, NodeStatus, Role};
    use swarm_core::plan::reconcile::{Health, RecordView, Repair};
    use swarm_core::plan::service_dns::{NameStatus, NameValue};
    use swarm_core::plan::status::NodeStatusView;

    fn example() -> ClusterStatus {
        let node = |id: &str, role, status, leader| NodeStatusView {
            id: id.into(),
            role,
            status,
            availability: Availability::Active,
            leader,
            hostname: "ip-10-0-0-1".into(),
            labels: [
                (ZONE, "us-east-1a"),
                (INSTANCE_TYPE, "t3.small"),
                (CAPACITY_TYPE, "spot"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        };
        let row = |id: &str, role, state: &str, ip: &str| StatusRow {
            instance_id: Some(id.into()),
            group: Some(format!("demo-{}s", Role::as_str(role))),
            role: Some(role),
            lifecycle_state: Some(state.into()),
            ip: Some(ip.parse().unwrap()),
            agent_online: true,
            ..StatusRow::default()
        };
        let mut rows = vec![
            StatusRow {
                node: Some(node(
                    "aaaaaaaaaaaaaaaaaaaaaaaaa",
                    Role::Manager,
                    NodeStatus::Ready,
                    true,
                )),
                in_record: true,
                ..row("i-0000000000000000a", Role::Manager, "InService", "10.0.0.1")
            },
            StatusRow {
                waiting_secs: Some(42),
                drift: vec!["join the swarm, then complete its launch action".into()],
                ..row("i-0000000000000000d", Role::Worker, "Pending:Wait", "10.0.0.4")
            },
            StatusRow {
                instance_id: Some("i-0000000000000000c".into()),
                ip: Some("10.0.0.3".parse().unwrap()),
                node: Some(node("ccccccccccccccccccccccccc", Role::Worker, NodeStatus::Down, false)),
                drift: vec!["remove the node: its instance is gone".into()],
                ..StatusRow::default()
            },
        ];
        rows[1].agent_online = false;
        ClusterStatus {
            cluster: "demo".into(),
            record_name: Some("managers.demo.internal".into()),
            swarm_reachable: true,
            health: Health {
                ready_managers: 1,
                ready_workers: 0,
                down_nodes: 1,
                quorum_margin: 0,
                drift_items: 2,
            },
            rows,
            repairs: vec![
                Repair::RemoveNode {
                    node_id: "ccccccccccccccccccccccccc".into(),
                    demote: false,
                    reason: "its instance is gone".into(),
                },
                Repair::Join {
                    instance_id: "i-0000000000000000d".into(),
                    group: "demo-workers".into(),
                    waiting: true,
                },
                Repair::DnsUpsert {
                    record: RecordView {
                        set_identifier: "i-0000000000000000a".into(),
                        ip: "10.0.0.1".parse().unwrap(),
                    },
                },
            ],
            service_names: Some(vec![
                name(
                    "api.apps.demo.internal",
                    Some(("demo", "api")),
                    &["10.0.0.4", "10.0.0.5"],
                ),
                name("cart.apps.demo.internal", Some(("green", "cart")), &["10.9.0.1"]),
                name("www.apps.demo.internal", None, &["192.0.2.10"]),
            ]),
            service_names_error: None,
        }
    }

    fn name(name: &str, owner: Option<(&str, &str)>, ips: &[&str]) -> NameStatus {
        NameStatus {
            name: name.into(),
            cluster: owner.map(|(c, _)| c.into()),
            service: owner.map(|(_, s)| s.into()),
            values: ips
                .iter()
                .enumerate()
                .map(|(i, ip)| NameValue {
                    set_identifier: owner.map(|_| format!("i-{:017}", i + 1)),
                    ip: ip.to_string(),
                })
                .collect(),
        }
    }

    /// Compares with tests/golden/<name>; UPDATE_GOLDEN=1 rewrites the file instead.
    fn golden(name: &str, got: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(name);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, got).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(got, want, "{name} differs (UPDATE_GOLDEN=1 rewrites it):\n{got}");
    }

    #[test]
    fn the_status_table_is_plain_text_when_not_on_a_terminal() {
        let text = status(&example(), false);
        assert!(!text.contains('\x1b'), "{text:?}");
        golden("status.txt", &text);
    }

    #[test]
    fn on_a_terminal_drift_and_a_thin_quorum_are_coloured() {
        let text = status(&example(), true);
        assert!(text.contains(&format!("{RED}quorum margin 0{RESET}")), "{text}");
        assert!(text.contains(&format!("{YELLOW}i-0000000000000000d")), "{text}");
        // The same words once the colour is taken out.
        let plain = text
            .replace(RED, "")
            .replace(YELLOW, "")
            .replace(BOLD, "")
            .replace(RESET, "");
        assert_eq!(plain, status(&example(), false));
    }

    #[test]
    fn the_plan_lists_every_repair_in_order() {
        golden("plan.txt", &plan(&example()));
        let none = ClusterStatus {
            repairs: vec![],
            ..example()
        };
        assert_eq!(plan(&none), "cluster demo: nothing to repair\n");
    }
}
