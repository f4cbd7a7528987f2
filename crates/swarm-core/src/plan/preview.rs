//! What draining a node would do to its services, before anyone starts it (`plan --retire`, a
//! dry-run retirement): whether each service's tasks have somewhere to go, by the swarm's own
//! placement rules (constraints, replicas-max-per-node), and where its disruption budget
//! stands. Pure: the manager's answer (retire-preview.sh) in, a verdict per service out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Another node, as `docker node inspect` tells it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OtherNode {
    pub id: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub availability: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub arch: String,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub engine: Option<BTreeMap<String, String>>,
}

/// A service with a task on the leaving node.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ServiceOnNode {
    pub name: String,
    /// None: a global service (its task there just goes; nothing moves).
    pub replicas: Option<u64>,
    #[serde(default)]
    pub constraints: Option<Vec<String>>,
    /// 0: no limit.
    #[serde(default)]
    pub max_per_node: u64,
}

/// One service's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServicePreview {
    pub service: String,
    /// "moves" (somewhere to go), "blocked" (nowhere: the drain would be told blocked), or
    /// "global" (nothing moves).
    pub placement: &'static str,
    pub reason: String,
    /// Its budget, when it has one: "ok", "short", "stuck" or "invalid", with the numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
}

/// The manager's answer, line by line.
#[derive(Debug, Default)]
pub struct PreviewInput {
    pub nodes: Vec<OtherNode>,
    pub services: Vec<ServiceOnNode>,
    /// budget_verdicts' lines: kind|name|….
    pub budgets: Vec<String>,
}

impl PreviewInput {
    /// Reads retire-preview.sh's output; a line it cannot read is skipped (a newer docker's
    /// field, a cut output), never fatal: the preview says less, it does not fail.
    pub fn parse(stdout: &str) -> Self {
        let mut out = PreviewInput::default();
        for line in stdout.lines() {
            if let Some(j) = line.strip_prefix("node ") {
                out.nodes.extend(serde_json::from_str(j).ok());
            } else if let Some(j) = line.strip_prefix("service ") {
                out.services.extend(serde_json::from_str(j).ok());
            } else if let Some(v) = line.strip_prefix("budget ") {
                out.budgets.push(v.to_string());
            }
        }
        out
    }
}

/// Does `node` meet one placement constraint (`key==value` / `key!=value`, values compared
/// case-insensitively, a missing label being empty, as swarmkit's constraint package does)?
/// None: a constraint this does not understand (the preview then does not call it blocked).
pub fn meets(constraint: &str, node: &OtherNode) -> Option<bool> {
    let (key, value, equal) = if let Some((k, v)) = constraint.split_once("!=") {
        (k.trim(), v.trim(), false)
    } else {
        let (k, v) = constraint.split_once("==")?;
        (k.trim(), v.trim(), true)
    };
    let label =
        |m: &Option<BTreeMap<String, String>>, k: &str| m.as_ref().and_then(|m| m.get(k)).cloned().unwrap_or_default();
    let have = match key {
        "node.id" => node.id.clone(),
        "node.hostname" => node.hostname.clone(),
        "node.role" => node.role.clone(),
        "node.platform.os" => node.os.clone(),
        "node.platform.arch" => node.arch.clone(),
        k => {
            if let Some(l) = k.strip_prefix("node.labels.") {
                label(&node.labels, l)
            } else if let Some(l) = k.strip_prefix("engine.labels.") {
                label(&node.engine, l)
            } else {
                return None;
            }
        }
    };
    Some(have.eq_ignore_ascii_case(value) == equal)
}

/// Each service's verdict: where its tasks could go once the node drains.
pub fn preview(input: &PreviewInput) -> Vec<ServicePreview> {
    let usable: Vec<&OtherNode> = input
        .nodes
        .iter()
        .filter(|n| n.availability == "active" && n.state == "ready")
        .collect();
    input
        .services
        .iter()
        .map(|s| {
            let budget = input
                .budgets
                .iter()
                .find(|b| b.split('|').nth(1) == Some(s.name.as_str()))
                .map(|b| {
                    let mut f = b.split('|');
                    let kind = f.next().unwrap_or("");
                    let rest: Vec<&str> = f.skip(1).collect();
                    match (kind, rest.as_slice()) {
                        ("ok", _) => "ok".to_string(),
                        ("invalid", [label, why]) => format!("invalid ({label}: {why}; ignored)"),
                        (k, [running, min]) => format!("{k}: {running} running elsewhere, min-available {min}"),
                        (k, _) => k.to_string(),
                    }
                });
            let constraints = s.constraints.clone().unwrap_or_default();
            let Some(replicas) = s.replicas else {
                return ServicePreview {
                    service: s.name.clone(),
                    placement: "global",
                    reason: "a global service: its task here goes with the node".into(),
                    budget,
                };
            };
            let mut unknown = false;
            let eligible = usable
                .iter()
                .filter(|n| {
                    constraints.iter().all(|c| match meets(c, n) {
                        Some(m) => m,
                        None => {
                            unknown = true;
                            true
                        }
                    })
                })
                .count();
            let (placement, reason) = if eligible == 0 && !unknown {
                let why = if constraints.is_empty() {
                    "no other active, Ready node".to_string()
                } else {
                    format!("no other active, Ready node meets {}", constraints.join(" and "))
                };
                ("blocked", why)
            } else if s.max_per_node > 0 && (eligible as u64) * s.max_per_node < replicas && !unknown {
                (
                    "blocked",
                    format!(
                        "room for {} of {replicas} replicas: at most {} per node on {eligible} eligible node(s)",
                        eligible as u64 * s.max_per_node,
                        s.max_per_node
                    ),
                )
            } else {
                ("moves", format!("{eligible} eligible node(s)"))
            };
            ServicePreview {
                service: s.name.clone(),
                placement,
                reason,
                budget,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, host: &str, role: &str, labels: &[(&str, &str)]) -> OtherNode {
        OtherNode {
            id: id.into(),
            hostname: host.into(),
            role: role.into(),
            availability: "active".into(),
            state: "ready".into(),
            os: "linux".into(),
            arch: "x86_64".into(),
            labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            engine: None,
        }
    }

    #[test]
    fn constraints_match_as_swarmkit_does() {
        let n = node("n1", "ip-10-0-1-5", "worker", &[("swarm.zone", "us-east-1a")]);
        assert_eq!(meets("node.role==worker", &n), Some(true));
        assert_eq!(meets("node.role == Worker", &n), Some(true), "spaces, case");
        assert_eq!(meets("node.role!=worker", &n), Some(false));
        assert_eq!(meets("node.labels.swarm.zone==us-east-1a", &n), Some(true));
        // A missing label is empty: == anything fails, != anything holds.
        assert_eq!(meets("node.labels.disk==ssd", &n), Some(false));
        assert_eq!(meets("node.labels.disk!=ssd", &n), Some(true));
        assert_eq!(meets("node.hostname==ip-10-0-1-5", &n), Some(true));
        assert_eq!(meets("node.platform.arch==x86_64", &n), Some(true));
        assert_eq!(meets("node.something==x", &n), None);
        assert_eq!(meets("garbage", &n), None);
    }

    #[test]
    fn a_service_pinned_to_the_leaving_node_is_blocked_and_others_move() {
        let stdout = concat!(
            "node {\"id\":\"n2\",\"hostname\":\"h2\",\"role\":\"worker\",\"availability\":\"active\",\"state\":\"ready\",\"os\":\"linux\",\"arch\":\"x86_64\",\"labels\":{\"swarm.capacity-type\":\"spot\"},\"engine\":null}\n",
            "node {\"id\":\"n3\",\"hostname\":\"h3\",\"role\":\"manager\",\"availability\":\"drain\",\"state\":\"ready\",\"os\":\"linux\",\"arch\":\"x86_64\",\"labels\":null,\"engine\":null}\n",
            "service {\"name\":\"pinned\",\"replicas\":1,\"constraints\":[\"node.hostname==h1\"],\"max_per_node\":0}\n",
            "service {\"name\":\"web\",\"replicas\":4,\"constraints\":null,\"max_per_node\":0}\n",
            "service {\"name\":\"stateful\",\"replicas\":1,\"constraints\":[\"node.labels.swarm.capacity-type==on-demand\"],\"max_per_node\":0}\n",
            "service {\"name\":\"spread\",\"replicas\":3,\"constraints\":[],\"max_per_node\":1}\n",
            "service {\"name\":\"agent\",\"replicas\":null,\"constraints\":null,\"max_per_node\":0}\n",
            "budget short|web|2|3\n",
            "budget invalid|spread|lots|not a number or a percentage\n",
            "not a line it knows\n",
        );
        let p = preview(&PreviewInput::parse(stdout));
        let got: Vec<(&str, &str)> = p.iter().map(|s| (s.service.as_str(), s.placement)).collect();
        assert_eq!(
            got,
            [
                ("pinned", "blocked"),
                ("web", "moves"),
                ("stateful", "blocked"),
                ("spread", "blocked"),
                ("agent", "global")
            ]
        );
        assert_eq!(p[0].reason, "no other active, Ready node meets node.hostname==h1");
        assert_eq!(
            p[1].budget.as_deref(),
            Some("short: 2 running elsewhere, min-available 3")
        );
        assert_eq!(
            p[3].reason,
            "room for 1 of 3 replicas: at most 1 per node on 1 eligible node(s)"
        );
        assert_eq!(
            p[3].budget.as_deref(),
            Some("invalid (lots: not a number or a percentage; ignored)")
        );
    }

    #[test]
    fn a_constraint_it_does_not_understand_is_never_called_blocked() {
        let input = PreviewInput {
            nodes: vec![],
            services: vec![ServiceOnNode {
                name: "odd".into(),
                replicas: Some(1),
                constraints: Some(vec!["node.future.thing==x".into()]),
                max_per_node: 0,
            }],
            budgets: vec![],
        };
        // No other node at all: blocked whatever the constraint says.
        assert_eq!(preview(&input)[0].placement, "blocked");
        let mut input = input;
        input.nodes.push(node("n2", "h2", "worker", &[]));
        assert_eq!(preview(&input)[0].placement, "moves");
    }
}
