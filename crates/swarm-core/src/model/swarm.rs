//! The swarm as its managers and the probe script print it: nodes, a manager's view, the
//! index of nodes by instance, what a probe found. Parsed once; decides nothing.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use serde::Serialize;

use super::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    Ready,
    Down,
    Disconnected,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Availability {
    Active,
    Pause,
    Drain,
}

/// One node of `docker node inspect`, as the node-list script prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct SwarmNode {
    pub id: String,
    pub hostname: String,
    pub addr: Option<Ipv4Addr>,
    pub role: Role,
    pub status: NodeStatus,
    pub availability: Availability,
    pub leader: bool,
    /// The `swarm.instance-id` label written when the node joined.
    pub instance_id: Option<String>,
    /// When the node object last changed (a status change updates it).
    pub updated_unix: Option<u64>,
    /// The well-known placement labels it carries (`label_keys::LISTED`), by key.
    pub labels: std::collections::BTreeMap<String, String>,
}

impl SwarmNode {
    /// Parses one line of `scripts/node-list.sh`:
    /// `ID STATE ADDR ROLE AVAILABILITY LEADER INSTANCE UPDATED HOSTNAME LABELS` (`-` for
    /// none; LABELS: a JSON array of the `label_keys::LISTED` labels' values, "" for none).
    pub fn parse_line(line: &str) -> Option<SwarmNode> {
        let mut f: Vec<&str> = Vec::with_capacity(9);
        let mut rest = line;
        while f.len() < 9 {
            rest = rest.trim_start();
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            if end == 0 {
                return None;
            }
            f.push(&rest[..end]);
            rest = &rest[end..];
        }
        if !crate::safe::is_node_id(f[0]) {
            return None;
        }
        let values: Vec<String> = serde_json::from_str(rest.trim()).unwrap_or_default();
        let labels = super::label_keys::LISTED
            .iter()
            .zip(values)
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let status = match f[1] {
            "ready" => NodeStatus::Ready,
            "down" => NodeStatus::Down,
            "disconnected" => NodeStatus::Disconnected,
            _ => NodeStatus::Unknown,
        };
        let availability = match f[4] {
            "active" => Availability::Active,
            "pause" => Availability::Pause,
            "drain" => Availability::Drain,
            _ => return None,
        };
        Some(SwarmNode {
            id: f[0].to_string(),
            status,
            // Managers report `ip:2377`.
            addr: f[2].split(':').next().and_then(|a| a.parse().ok()),
            role: Role::parse(f[3])?,
            availability,
            leader: f[5] == "true",
            instance_id: Some(f[6])
                .filter(|s| crate::safe::is_instance_id(s))
                .map(str::to_string),
            updated_unix: f[7].parse().ok(),
            hostname: f[8].to_string(),
            labels,
        })
    }
}

/// A manager's view of the swarm.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SwarmView {
    pub nodes: Vec<SwarmNode>,
}

impl SwarmView {
    pub fn parse(output: &str) -> SwarmView {
        SwarmView {
            nodes: output.lines().filter_map(SwarmNode::parse_line).collect(),
        }
    }

    /// The node of an instance: by its label, else by its address (a node that joined
    /// before it was labelled, or whose label step was lost); a Ready one first.
    pub fn node_of(&self, instance_id: &str, ip: Option<Ipv4Addr>) -> Option<&SwarmNode> {
        NodeIndex::new(self).node_of(instance_id, ip)
    }

    pub fn managers(&self) -> impl Iterator<Item = &SwarmNode> {
        self.nodes.iter().filter(|n| n.role == Role::Manager)
    }

    /// Managers that count towards raft quorum and are reachable.
    pub fn reachable_managers(&self) -> usize {
        self.managers().filter(|n| n.status == NodeStatus::Ready).count()
    }
}

/// The nodes of a swarm by instance label and, for unlabelled ones, by address, Ready ones
/// first (a recreated instance can leave a Down node with its label behind; an address can be
/// reused by a later instance). Built once, so looking up every instance stays linear.
pub struct NodeIndex<'a> {
    by_label: HashMap<&'a str, Vec<&'a SwarmNode>>,
    by_addr: HashMap<Ipv4Addr, Vec<&'a SwarmNode>>,
}

impl<'a> NodeIndex<'a> {
    pub fn new(view: &'a SwarmView) -> Self {
        let mut idx = NodeIndex {
            by_label: HashMap::new(),
            by_addr: HashMap::new(),
        };
        for n in &view.nodes {
            match (&n.instance_id, n.addr) {
                (Some(id), _) => idx.by_label.entry(id.as_str()).or_default().push(n),
                (None, Some(a)) => idx.by_addr.entry(a).or_default().push(n),
                (None, None) => {}
            }
        }
        for nodes in idx.by_label.values_mut().chain(idx.by_addr.values_mut()) {
            nodes.sort_by_key(|n| n.status != NodeStatus::Ready);
        }
        idx
    }

    /// The node of an instance, whatever its status: by label, else by address.
    pub fn node_of(&self, instance_id: &str, ip: Option<Ipv4Addr>) -> Option<&'a SwarmNode> {
        let first = |v: Option<&Vec<&'a SwarmNode>>| v.and_then(|v| v.first().copied());
        first(self.by_label.get(instance_id)).or_else(|| first(ip.and_then(|ip| self.by_addr.get(&ip))))
    }

    /// The Ready node of an instance: by label, else by address.
    pub fn ready_node_of(&self, instance_id: &str, ip: Option<Ipv4Addr>) -> Option<&'a SwarmNode> {
        let ready = |v: Option<&Vec<&'a SwarmNode>>| {
            v.and_then(|v| v.first().copied())
                .filter(|n| n.status == NodeStatus::Ready)
        };
        ready(self.by_label.get(instance_id)).or_else(|| ready(ip.and_then(|ip| self.by_addr.get(&ip))))
    }
}

/// What a probe on an instance found (scripts/probe.sh).
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// `inactive`, `pending`, `active`, `error`, `locked`.
    pub swarm_state: String,
    /// True on a manager that can answer `docker node ls`.
    pub control: bool,
    pub node_id: Option<String>,
    /// The instance is being retired itself (its fence is there): it operates another's
    /// retirement only when no other manager can.
    pub retiring: bool,
}

impl Probe {
    pub fn parse(output: &str) -> Option<Probe> {
        let mut state = None;
        let mut control = false;
        let mut node_id = None;
        let mut retiring = false;
        for line in output.lines() {
            if let Some((k, v)) = line.trim().split_once('=') {
                match k {
                    "swarm" => state = Some(v.to_string()),
                    "control" => control = v == "true",
                    "nodeid" => node_id = Some(v.to_string()).filter(|s| crate::safe::is_node_id(s)),
                    "retiring" => retiring = v == "true",
                    _ => {}
                }
            }
        }
        Some(Probe {
            swarm_state: state?,
            control,
            node_id,
            retiring,
        })
    }
    pub fn in_swarm(&self) -> bool {
        self.swarm_state == "active"
    }
    pub fn is_live_manager(&self) -> bool {
        self.in_swarm() && self.control
    }
}
