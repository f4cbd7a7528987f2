//! What the functions observe: groups, instances, swarm nodes, DNS records, parsed from the
//! APIs and the scripts' output. Plain data and lookups: decides nothing, calls nothing.

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

pub mod label_keys;
mod results;
mod swarm;
pub use results::*;
pub use swarm::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Manager,
    Worker,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Manager => "manager",
            Role::Worker => "worker",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "manager" | "managers" => Some(Role::Manager),
            "worker" | "workers" => Some(Role::Worker),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Auto Scaling group as described, with its tags already read.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub name: String,
    pub tags: Vec<(String, String)>,
    pub instances: Vec<GroupInstance>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupInstance {
    pub id: String,
    pub lifecycle_state: LifecycleState,
}

impl GroupInstance {
    pub fn is_leaving(&self) -> bool {
        self.lifecycle_state.is_leaving()
    }
}

/// An instance's Auto Scaling lifecycle state, as AWS names it. The states this code acts on
/// have a variant; every other one (Quarantined, Detaching, the warm pool's) is kept as AWS
/// wrote it, so nothing is lost in a log or the operator's view.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LifecycleState {
    Pending,
    PendingWait,
    PendingProceed,
    InService,
    Terminating,
    TerminatingWait,
    TerminatingProceed,
    Terminated,
    Standby,
    /// Empty when AWS said nothing.
    #[default]
    Unknown,
    Other(String),
}

impl LifecycleState {
    pub fn parse(s: &str) -> Self {
        match s {
            "Pending" => Self::Pending,
            "Pending:Wait" => Self::PendingWait,
            "Pending:Proceed" => Self::PendingProceed,
            "InService" => Self::InService,
            "Terminating" => Self::Terminating,
            "Terminating:Wait" => Self::TerminatingWait,
            "Terminating:Proceed" => Self::TerminatingProceed,
            "Terminated" => Self::Terminated,
            "Standby" => Self::Standby,
            "" => Self::Unknown,
            other => Self::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "Pending",
            Self::PendingWait => "Pending:Wait",
            Self::PendingProceed => "Pending:Proceed",
            Self::InService => "InService",
            Self::Terminating => "Terminating",
            Self::TerminatingWait => "Terminating:Wait",
            Self::TerminatingProceed => "Terminating:Proceed",
            Self::Terminated => "Terminated",
            Self::Standby => "Standby",
            Self::Unknown => "",
            Self::Other(s) => s,
        }
    }

    /// Pending, Pending:Wait or Pending:Proceed: on its way into service.
    pub fn is_pending(&self) -> bool {
        matches!(self, Self::Pending | Self::PendingWait | Self::PendingProceed)
    }

    /// Terminating, Terminating:Wait or Terminating:Proceed.
    pub fn is_terminating(&self) -> bool {
        matches!(
            self,
            Self::Terminating | Self::TerminatingWait | Self::TerminatingProceed
        )
    }

    /// The one answer to "is this instance on its way out of service?": terminating (or
    /// terminated), detaching, in standby (or entering it), or in a warm pool. Such an
    /// instance gets no join, no record, and is no peer to join through.
    pub fn is_leaving(&self) -> bool {
        match self {
            Self::Other(s) => ["Detach", "Warmed", "EnteringStandby"].iter().any(|p| s.starts_with(p)),
            s => s.is_terminating() || matches!(s, Self::Terminated | Self::Standby),
        }
    }
}

impl From<&str> for LifecycleState {
    fn from(s: &str) -> Self {
        Self::parse(s)
    }
}

impl std::fmt::Display for LifecycleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Group {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
}

impl InstanceState {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "shutting-down" => Self::ShuttingDown,
            "terminated" => Self::Terminated,
            "stopping" => Self::Stopping,
            "stopped" => Self::Stopped,
            _ => return None,
        })
    }
    pub fn is_alive(self) -> bool {
        matches!(self, Self::Pending | Self::Running)
    }
    /// Its OS may still run commands: alive, or shutting down after a stop or termination
    /// outside the hooks ("it enters the stopping state", "the shutting-down state").
    pub fn os_may_run(self) -> bool {
        self.is_alive() || matches!(self, Self::Stopping | Self::ShuttingDown)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub id: String,
    pub state: InstanceState,
    pub private_ip: Option<Ipv4Addr>,
    /// EC2 LaunchTime, seconds since the epoch.
    pub launched_unix: Option<u64>,
    /// Its Availability Zone and instance type, as EC2 describes it (the node's labels).
    pub zone: Option<String>,
    pub instance_type: Option<String>,
    /// A Spot Instance (EC2's `InstanceLifecycle` is `spot`); else On-Demand.
    pub spot: bool,
}

/// One record of the manager name: Route 53 multivalue answer records,
/// one per instance, the instance id as SetIdentifier.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagerRecord {
    pub set_identifier: String,
    pub ip: Ipv4Addr,
    pub ttl: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_answer_to_is_leaving() {
        for st in [
            "Terminating",
            "Terminating:Wait",
            "Terminating:Proceed",
            "Terminated",
            "Detaching",
            "Detached",
            "EnteringStandby",
            "Standby",
            "Warmed:Pending",
            "Warmed:Running",
        ] {
            assert!(LifecycleState::parse(st).is_leaving(), "{st}");
            assert_eq!(LifecycleState::parse(st).as_str(), st);
        }
        for st in [
            "Pending",
            "Pending:Wait",
            "Pending:Proceed",
            "InService",
            "Quarantined",
            "",
        ] {
            assert!(!LifecycleState::parse(st).is_leaving(), "{st}");
            assert_eq!(LifecycleState::parse(st).as_str(), st);
        }
    }

    #[test]
    fn parses_node_lines() {
        let out = "abcdefghijklmnopqrstuvwx1 ready 10.0.1.4:2377 manager active true i-0123456789abcdef0 1700000000 ip-10-0-1-4 [\"us-east-1a\",\"\",\"spot\",\"blue workers\"]\n\
                   abcdefghijklmnopqrstuvwx2 down 10.0.1.5 worker drain false - 1700000001 ip-10-0-1-5\n\
                   garbage line\n";
        let v = SwarmView::parse(out);
        assert_eq!(v.nodes.len(), 2);
        assert_eq!(v.nodes[0].role, Role::Manager);
        assert!(v.nodes[0].leader);
        assert_eq!(v.nodes[1].status, NodeStatus::Down);
        let labels: Vec<(&str, &str)> = v.nodes[0]
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            labels,
            [
                ("swarm.capacity-type", "spot"),
                ("swarm.group", "blue workers"),
                ("swarm.zone", "us-east-1a")
            ],
            "a group name with a space, an empty type"
        );
        assert!(
            v.nodes[1].labels.is_empty(),
            "a line without labels (before they were listed)"
        );
        assert_eq!(v.nodes[1].instance_id, None);
        assert_eq!(v.nodes[0].addr, Some("10.0.1.4".parse().unwrap()));
        assert_eq!(v.nodes[1].updated_unix, Some(1700000001));
        assert_eq!(
            v.node_of("i-0123456789abcdef0", None).unwrap().id,
            "abcdefghijklmnopqrstuvwx1"
        );
        assert_eq!(
            v.node_of("i-99999999", Some("10.0.1.5".parse().unwrap())).unwrap().id,
            "abcdefghijklmnopqrstuvwx2"
        );
        assert_eq!(v.reachable_managers(), 1);
    }

    #[test]
    fn parses_probe() {
        let p = Probe::parse("swarm=active\ncontrol=true\nnodeid=abcdefghijklmnopqrstuvwx1\n").unwrap();
        assert!(p.is_live_manager());
        assert!(Probe::parse("nothing useful").is_none());
    }
}
