//! Service names in Route 53 (the swarm's ExternalDNS), planned: which nodes a labelled
//! service's names answer with, which names this cluster owns, and the change batches that
//! take the zone there. Pure: the services, the nodes and the zone's records in; changes,
//! refusals and the names' values out. Run by `workflow::service_names` (reconcile, join)
//! and `workflow::dns` (a leaving node's values, DNS first).
//!
//! - A service labelled `swarm-lifecycle.dns-name=api.apps.example.internal` (several names:
//!   comma-separated) gets one multivalue A record set per node (SetIdentifier = the instance
//!   id, as the manager record: changes for different nodes never conflict), at most eight
//!   (Route 53 answers a multivalue query with up to eight records).
//! - Ingress mode (the routing mesh): Ready, active nodes that are not leaving — the workers,
//!   or the managers when no worker is eligible. Host mode: the nodes running its tasks.
//!   Values already in the record stay while their node is eligible; new ones are taken in
//!   instance-id order: churn elsewhere never reshuffles a name.
//! - Ownership as ExternalDNS keeps it: a TXT record at the name says which cluster and
//!   service own it. A name with records and no such TXT (made by hand, by another tool) or
//!   owned by another cluster is never changed; it is refused and reported.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use crate::model::Role;

pub use super::service_zone::*;

/// The service label that names its records.
pub const DNS_NAME_LABEL: &str = "swarm-lifecycle.dns-name";
/// "Route 53 responds to DNS queries with up to eight healthy records" of a multivalue name.
pub const MAX_VALUES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// Published through the routing mesh: every node answers.
    Ingress,
    /// Published on the nodes running its tasks only.
    Host,
}

/// A service as the swarm reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    pub name: String,
    /// The `swarm-lifecycle.dns-name` label, as set.
    pub dns_label: Option<String>,
    /// None: it publishes no port.
    pub publish: Option<Publish>,
    /// Instances running one of its tasks (host mode's values).
    pub task_instances: Vec<String>,
}

/// A node as the swarm and Auto Scaling report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    pub instance_id: String,
    pub ip: Ipv4Addr,
    pub role: Role,
    pub ready: bool,
    pub active: bool,
    /// Its instance is terminating, detaching, in standby: its IP leaves every name first.
    pub leaving: bool,
}

/// A name the plan will not touch, and why (logged and told, naming the service).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refusal {
    pub service: String,
    pub name: String,
    pub reason: String,
}

impl Refusal {
    /// Its key among the refusals already told: the same service, name and reason give the
    /// same key (hex, as a parameter name takes it).
    pub fn key(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("{}\n{}\n{}", self.service, self.name, self.reason));
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A name this cluster keeps: its service and the IPs it answers with once the plan ran.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NamePlan {
    pub name: String,
    pub service: String,
    pub values: Vec<Ipv4Addr>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceDnsPlan {
    pub changes: Vec<ZoneChange>,
    pub refused: Vec<Refusal>,
    pub names: Vec<NamePlan>,
}

/// What the planner is given.
pub struct ServiceDnsInput<'a> {
    pub cluster: &'a str,
    /// Names must lie under it (the roles may change nothing else).
    pub suffix: &'a str,
    pub manager_record: Option<&'a str>,
    pub ttl: u64,
    pub services: &'a [ServiceView],
    pub nodes: &'a [NodeView],
    pub zone: &'a [ZoneEntry],
}

/// The names each labelled service claims, those it may not have refused.
fn claims(input: &ServiceDnsInput, refused: &mut Vec<Refusal>) -> BTreeMap<String, Vec<String>> {
    let suffix = normalise(input.suffix);
    let manager = input.manager_record.map(normalise);
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in input.services {
        let Some(label) = &s.dns_label else { continue };
        for raw in label.split(',').filter(|n| !n.trim().is_empty()) {
            let name = normalise(raw);
            let mut refuse = |reason: String| {
                refused.push(Refusal {
                    service: s.name.clone(),
                    name: name.clone(),
                    reason,
                })
            };
            if !crate::safe::is_dns_name(&name) {
                refuse(format!("{raw:?} is not a DNS name"));
            } else if !name.ends_with(&format!(".{suffix}")) {
                refuse(format!("outside the names this cluster may change (*.{suffix})"));
            } else if manager.as_deref() == Some(name.as_str()) {
                refuse("is the manager record's name".into());
            } else if s.publish.is_none() {
                refuse("the service publishes no port".into());
            } else {
                by_name.entry(name).or_default().push(s.name.clone());
            }
        }
    }
    by_name
}

/// The IPs a service's name answers with: current values first while eligible, then the
/// rest in instance-id order, at most MAX_VALUES.
fn choose(service: &ServiceView, nodes: &[NodeView], current: &BTreeSet<String>) -> Vec<(String, Ipv4Addr)> {
    let eligible = |n: &&NodeView| n.ready && n.active && !n.leaving;
    let mut pool: Vec<&NodeView> = match service.publish {
        Some(Publish::Host) => nodes
            .iter()
            .filter(eligible)
            .filter(|n| service.task_instances.contains(&n.instance_id))
            .collect(),
        _ => {
            let workers: Vec<&NodeView> = nodes
                .iter()
                .filter(eligible)
                .filter(|n| n.role == Role::Worker)
                .collect();
            if workers.is_empty() {
                nodes.iter().filter(eligible).collect()
            } else {
                workers
            }
        }
    };
    pool.sort_by_key(|n| (!current.contains(&n.instance_id), n.instance_id.clone()));
    pool.into_iter()
        .take(MAX_VALUES)
        .map(|n| (n.instance_id.clone(), n.ip))
        .collect()
}

/// The plan: every claimed name at its values with its owner TXT, every name this cluster
/// owns and no service claims any more removed, refused names untouched.
pub fn plan_service_dns(input: &ServiceDnsInput) -> ServiceDnsPlan {
    let mut plan = ServiceDnsPlan::default();
    let by_name = claims(input, &mut plan.refused);
    let mut kept: BTreeSet<String> = plan.refused.iter().map(|r| r.name.clone()).collect();
    for (name, services) in &by_name {
        kept.insert(name.clone());
        if services.len() > 1 {
            for s in services {
                plan.refused.push(Refusal {
                    service: s.clone(),
                    name: name.clone(),
                    reason: format!("claimed by several services: {}", services.join(", ")),
                });
            }
            continue;
        }
        let service = input
            .services
            .iter()
            .find(|s| s.name == services[0])
            .expect("a claimant");
        let owner = owner_value(input.cluster, &service.name);
        match holder(input.zone, name, input.cluster) {
            Holder::Cluster(c) => {
                plan.refused.push(Refusal {
                    service: service.name.clone(),
                    name: name.clone(),
                    reason: format!("owned by cluster {c}"),
                });
                continue;
            }
            Holder::Foreign => {
                plan.refused.push(Refusal {
                    service: service.name.clone(),
                    name: name.clone(),
                    reason: "records this project did not create are there: left alone".into(),
                });
                continue;
            }
            Holder::Us(txt) if txt.values == [owner.clone()] => {}
            Holder::Us(_) | Holder::Free => plan.changes.push(ZoneChange::Upsert(ZoneEntry {
                name: name.clone(),
                kind: "TXT".into(),
                set_identifier: None,
                values: vec![owner],
                ttl: input.ttl,
            })),
        }
        let sets: Vec<&ZoneEntry> = a_sets(input.zone, name).collect();
        let current: BTreeSet<String> = sets.iter().filter_map(|e| e.set_identifier.clone()).collect();
        let want = choose(service, input.nodes, &current);
        for e in &sets {
            let id = e.set_identifier.as_deref().unwrap_or_default();
            if !want.iter().any(|(w, _)| w == id) {
                plan.changes.push(ZoneChange::Delete((*e).clone()));
            }
        }
        for (id, ip) in &want {
            let entry = a_set(name, id, *ip, input.ttl);
            if !sets.contains(&&entry) {
                plan.changes.push(ZoneChange::Upsert(entry));
            }
        }
        plan.names.push(NamePlan {
            name: name.clone(),
            service: service.name.clone(),
            values: want.iter().map(|(_, ip)| *ip).collect(),
        });
    }
    plan.changes.extend(released(input, &kept));
    plan
}

/// Names this cluster owns that no service claims any more (none in `kept`): their sets, then
/// the owner.
fn released(input: &ServiceDnsInput, kept: &BTreeSet<String>) -> Vec<ZoneChange> {
    let mut changes = Vec::new();
    for txt in input.zone.iter().filter(|e| e.kind == "TXT") {
        let name = normalise(&txt.name);
        if kept.contains(&name) || !txt.values.iter().any(|v| owner_cluster(v) == Some(input.cluster)) {
            continue;
        }
        changes.extend(a_sets(input.zone, &name).cloned().map(ZoneChange::Delete));
        changes.push(ZoneChange::Delete(txt.clone()));
    }
    changes
}

/// Reads `scripts/services.sh`'s answer: each labelled service, its publish mode (any
/// ingress port: ingress, every node answers; else any host port: host) and, in host mode,
/// the instances its running tasks are on (by their nodes' `swarm.instance-id` labels).
pub fn parse_services(stdout: &str, view: &crate::model::SwarmView) -> Vec<ServiceView> {
    let mut out: Vec<ServiceView> = vec![];
    for line in stdout.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["service", name, label, modes @ ..] => {
                let modes: Vec<&str> = modes
                    .first()
                    .map(|m| m.split_whitespace().collect())
                    .unwrap_or_default();
                let publish = if modes.contains(&"ingress") {
                    Some(Publish::Ingress)
                } else if modes.contains(&"host") {
                    Some(Publish::Host)
                } else {
                    None
                };
                out.push(ServiceView {
                    name: name.to_string(),
                    dns_label: Some(label.to_string()),
                    publish,
                    task_instances: vec![],
                });
            }
            ["task", name, node_id] => {
                let instance = view
                    .nodes
                    .iter()
                    .find(|n| n.id == *node_id)
                    .and_then(|n| n.instance_id.clone());
                if let (Some(s), Some(i)) = (out.iter_mut().find(|s| s.name == *name), instance) {
                    s.task_instances.push(i);
                }
            }
            _ => {}
        }
    }
    out
}

/// The nodes as a manager lists them (address and instance label), each leaving when
/// `leaving` says so of its instance (leaving its group, or in none of them).
pub fn node_views_of(view: &crate::model::SwarmView, leaving: impl Fn(&str) -> bool) -> Vec<NodeView> {
    use crate::model::{Availability, NodeStatus};
    view.nodes
        .iter()
        .filter_map(|n| {
            let (id, ip) = (n.instance_id.clone()?, n.addr?);
            Some(NodeView {
                leaving: leaving(&id),
                instance_id: id,
                ip,
                role: n.role,
                ready: n.status == NodeStatus::Ready,
                active: n.availability == Availability::Active,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
