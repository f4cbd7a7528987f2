//! The zone side of the service names: its record sets as Route 53 lists them, who owns a
//! name (the owner TXT, as ExternalDNS keeps it), what a leaving instance holds, and changes
//! cut into requests Route 53 accepts. Pure; the planner is plan/service_dns.rs.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// ChangeResourceRecordSets: at most 1,000 ResourceRecord elements and 32,000 characters of
/// values per request, each counted twice in an UPSERT.
pub const MAX_BATCH_RECORDS: usize = 1000;
pub const MAX_BATCH_CHARS: usize = 32_000;

/// A record set of the zone, as ListResourceRecordSets returns it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ZoneEntry {
    pub name: String,
    pub kind: String,
    pub set_identifier: Option<String>,
    pub values: Vec<String>,
    pub ttl: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneChange {
    Upsert(ZoneEntry),
    Delete(ZoneEntry),
}

impl ZoneChange {
    pub(super) fn entry(&self) -> &ZoneEntry {
        match self {
            ZoneChange::Upsert(e) | ZoneChange::Delete(e) => e,
        }
    }
    /// Its weight against Route 53's request limits: (records, characters).
    pub(super) fn weight(&self) -> (usize, usize) {
        let e = self.entry();
        let twice = if matches!(self, ZoneChange::Upsert(_)) { 2 } else { 1 };
        (
            e.values.len() * twice,
            e.values.iter().map(String::len).sum::<usize>() * twice,
        )
    }
}

/// The owner TXT's value (quoted, as Route 53 stores a TXT string).
pub fn owner_value(cluster: &str, service: &str) -> String {
    format!("\"heritage=swarm-lifecycle,swarm-lifecycle/cluster={cluster},swarm-lifecycle/service={service}\"")
}

/// The cluster an owner TXT names, if it is one of this project's.
pub(super) fn owner_cluster(value: &str) -> Option<&str> {
    owner_of(value).map(|(c, _)| c)
}

/// The (cluster, service) an owner TXT names, if it is one of this project's.
pub(super) fn owner_of(value: &str) -> Option<(&str, &str)> {
    let v = value.trim_matches('"');
    let rest = v.strip_prefix("heritage=swarm-lifecycle,swarm-lifecycle/cluster=")?;
    let (cluster, service) = rest.split_once(",swarm-lifecycle/service=")?;
    Some((cluster, service))
}

/// A name under the suffix as the operator's `status` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NameStatus {
    pub name: String,
    /// The cluster and service its owner TXT names; None: records this project did not make.
    pub cluster: Option<String>,
    pub service: Option<String>,
    /// Its A values, each with its set identifier (this project's: the instance id).
    pub values: Vec<NameValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NameValue {
    pub set_identifier: Option<String>,
    pub ip: String,
}

/// Every name of `zone` (the records under the suffix), with its owner and its values.
pub fn name_status(zone: &[ZoneEntry]) -> Vec<NameStatus> {
    let names: BTreeSet<String> = zone.iter().map(|e| normalise(&e.name)).collect();
    names
        .into_iter()
        .map(|name| {
            let at = || zone.iter().filter(|e| normalise(&e.name) == name);
            let owner = at()
                .filter(|e| e.kind == "TXT")
                .flat_map(|e| &e.values)
                .find_map(|v| owner_of(v));
            let values = at()
                .filter(|e| e.kind == "A")
                .flat_map(|e| {
                    e.values.iter().map(|ip| NameValue {
                        set_identifier: e.set_identifier.clone(),
                        ip: ip.clone(),
                    })
                })
                .collect();
            NameStatus {
                cluster: owner.map(|(c, _)| c.to_string()),
                service: owner.map(|(_, s)| s.to_string()),
                values,
                name,
            }
        })
        .collect()
}

pub(super) fn normalise(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Who holds a name in the zone.
pub(super) enum Holder<'z> {
    Free,
    Us(&'z ZoneEntry),
    Cluster(String),
    Foreign,
}

pub(super) fn holder<'z>(zone: &'z [ZoneEntry], name: &str, cluster: &str) -> Holder<'z> {
    let at: Vec<&ZoneEntry> = zone.iter().filter(|e| normalise(&e.name) == name).collect();
    if at.is_empty() {
        return Holder::Free;
    }
    let owner = at
        .iter()
        .find(|e| e.kind == "TXT" && e.values.iter().any(|v| owner_cluster(v).is_some()));
    match owner.and_then(|e| e.values.iter().find_map(|v| owner_cluster(v))) {
        Some(c) if c == cluster => Holder::Us(owner.expect("found above")),
        Some(c) => Holder::Cluster(c.to_string()),
        None => Holder::Foreign,
    }
}

/// A leaving instance's record sets in every name this cluster owns: what is deleted before
/// the drain (DNS first).
pub fn leaving_records(zone: &[ZoneEntry], cluster: &str, instance_id: &str) -> Vec<ZoneEntry> {
    let owned: BTreeSet<String> = zone
        .iter()
        .filter(|e| e.kind == "TXT" && e.values.iter().any(|v| owner_cluster(v) == Some(cluster)))
        .map(|e| normalise(&e.name))
        .collect();
    zone.iter()
        .filter(|e| {
            e.kind == "A" && e.set_identifier.as_deref() == Some(instance_id) && owned.contains(&normalise(&e.name))
        })
        .cloned()
        .collect()
}

/// The changes cut into requests Route 53 accepts, in order.
pub fn batches(changes: Vec<ZoneChange>) -> Vec<Vec<ZoneChange>> {
    let mut out: Vec<Vec<ZoneChange>> = vec![];
    let (mut records, mut chars) = (0, 0);
    for c in changes {
        let (r, ch) = c.weight();
        if out.is_empty() || records + r > MAX_BATCH_RECORDS || chars + ch > MAX_BATCH_CHARS {
            out.push(vec![]);
            (records, chars) = (0, 0);
        }
        records += r;
        chars += ch;
        out.last_mut().expect("pushed above").push(c);
    }
    out
}

/// Whether this cluster owns any name in `zone` (a joined node then has names to enter).
pub fn owns_any(zone: &[ZoneEntry], cluster: &str) -> bool {
    zone.iter()
        .any(|e| e.kind == "TXT" && e.values.iter().any(|v| owner_cluster(v) == Some(cluster)))
}

pub(super) fn a_sets<'z>(zone: &'z [ZoneEntry], name: &'z str) -> impl Iterator<Item = &'z ZoneEntry> {
    zone.iter().filter(move |e| e.kind == "A" && normalise(&e.name) == name)
}

pub(super) fn a_set(name: &str, instance_id: &str, ip: Ipv4Addr, ttl: u64) -> ZoneEntry {
    ZoneEntry {
        name: name.to_string(),
        kind: "A".into(),
        set_identifier: Some(instance_id.to_string()),
        values: vec![ip.to_string()],
        ttl,
    }
}
