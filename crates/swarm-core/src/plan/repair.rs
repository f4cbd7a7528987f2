//! A repair the reconcile plans (plan/reconcile.rs), and how a report or an event names it.

use std::fmt;

use serde::Serialize;

use crate::model::ManagerRecord;

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
    /// An instance whose scheduled change begins within the lead: its node leaves (record
    /// first, drain, demote, leave, remove) before the group replaces it.
    Retire {
        instance_id: String,
        group: String,
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
    /// A node in service whose well-known labels are missing or wrong (removed or changed by
    /// hand, or a join's label step lost): they are set again, with the group's own.
    Label {
        instance_id: String,
        node_id: String,
        group: String,
        /// The labels found missing or wrong.
        labels: Vec<String>,
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
    pub ip: std::net::Ipv4Addr,
}

impl From<&ManagerRecord> for RecordView {
    fn from(r: &ManagerRecord) -> Self {
        RecordView {
            set_identifier: r.set_identifier.clone(),
            ip: r.ip,
        }
    }
}

/// A short name for reports and events: what is repaired, on what.
impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repair::RemoveNode {
                node_id,
                demote,
                reason,
            } => {
                let how = if *demote { "demote and remove" } else { "remove" };
                write!(f, "{how} node {node_id} ({reason})")
            }
            Repair::Retire {
                instance_id,
                group,
                reason,
            } => write!(f, "retire {instance_id} of {group} ({reason})"),
            Repair::Join { instance_id, group, .. } => write!(f, "join {instance_id} of {group}"),
            Repair::CompleteLaunch { instance_id, group } => {
                write!(f, "complete the launch of {instance_id} in {group}")
            }
            Repair::Label {
                instance_id, labels, ..
            } => write!(f, "label {instance_id} ({})", labels.join(", ")),
            Repair::CompleteTermination { instance_id, group } => {
                write!(f, "complete the termination of {instance_id} in {group}")
            }
            Repair::DnsDelete { record } => {
                write!(f, "delete record {} ({})", record.set_identifier, record.ip)
            }
            Repair::DnsUpsert { record } => {
                write!(f, "upsert record {} ({})", record.set_identifier, record.ip)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repair_is_named_for_people() {
        let join = Repair::Join {
            instance_id: "i-1".into(),
            group: "workers".into(),
            waiting: true,
        };
        assert_eq!(join.to_string(), "join i-1 of workers");
        let rm = Repair::RemoveNode {
            node_id: "n1".into(),
            demote: true,
            reason: "instance gone".into(),
        };
        assert_eq!(rm.to_string(), "demote and remove node n1 (instance gone)");
    }
}
