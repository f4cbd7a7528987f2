//! Pure planners: from a snapshot of the world to the next thing to do. No I/O here;
//! every branch is unit-tested below.

use std::net::Ipv4Addr;

use crate::model::{Instance, ManagerRecord, Probe, Role, SwarmNode};

/// An init lock entry: `{lock_path}/{generation}` = `{instance_id} {unix_seconds}`.
#[derive(Debug, Clone, PartialEq)]
pub struct LockEntry {
    pub generation: u32,
    pub holder: String,
    pub acquired_unix: u64,
}

impl LockEntry {
    pub fn parse(lock_path: &str, name: &str, value: &str) -> Option<LockEntry> {
        let generation = name.strip_prefix(lock_path)?.trim_start_matches('/').parse().ok()?;
        let (holder, at) = value.split_once(' ')?;
        Some(LockEntry {
            generation,
            holder: holder.to_string(),
            acquired_unix: at.trim().parse().ok()?,
        })
    }
    pub fn value(holder: &str, now_unix: u64) -> String {
        format!("{holder} {now_unix}")
    }
}

/// Another manager of the cluster, as observed.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    pub id: String,
    pub ip: Option<Ipv4Addr>,
    /// None: agent offline or probe failed.
    pub probe: Option<Probe>,
}

impl Peer {
    pub fn is_live_manager(&self) -> bool {
        self.ip.is_some() && self.probe.as_ref().is_some_and(Probe::is_live_manager)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct JoinSnapshot {
    pub role: Role,
    /// None: the instance does not exist (any more).
    pub instance: Option<Instance>,
    /// None: not probed yet (agent offline).
    pub self_probe: Option<Probe>,
    /// The cluster's other managers that are not leaving.
    pub peers: Vec<Peer>,
    /// None: not read (only needed when no live manager exists).
    pub locks: Option<Vec<LockEntry>>,
    pub now_unix: u64,
    pub lock_lease_secs: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum JoinDecision {
    /// The instance is gone or cannot run: nothing to join.
    Gone(String),
    /// In the swarm already: make sure it is Ready and labelled, then finish.
    AlreadyMember { verify_on: String },
    /// No swarm anywhere, this is a manager: take lock `generation` (unless it holds it
    /// already, after a crash mid-init), then init.
    Init { generation: u32, held: bool },
    /// Join through this live manager.
    JoinVia { manager: String, manager_ip: Ipv4Addr },
    /// Not decidable yet: the lock table must be read first.
    NeedLocks,
    /// A swarm is being formed elsewhere, or a worker waits for the first manager.
    Wait(String),
}

fn alive(i: &Option<Instance>) -> Option<&Instance> {
    i.as_ref().filter(|i| i.state.is_alive())
}

pub fn decide_join(s: &JoinSnapshot) -> JoinDecision {
    let Some(me) = alive(&s.instance) else {
        return JoinDecision::Gone("instance is not running".into());
    };
    if me.private_ip.is_none() {
        return JoinDecision::Gone("instance has no private IP".into());
    }
    // Peers sorted by id: every concurrent launch picks the same manager.
    let mut live: Vec<&Peer> = s.peers.iter().filter(|p| p.is_live_manager()).collect();
    live.sort_by(|a, b| a.id.cmp(&b.id));

    if let Some(p) = &s.self_probe {
        if p.in_swarm() {
            if p.is_live_manager() {
                return JoinDecision::AlreadyMember {
                    verify_on: me.id.clone(),
                };
            }
            if let Some(m) = live.first() {
                return JoinDecision::AlreadyMember {
                    verify_on: m.id.clone(),
                };
            }
            // In a swarm whose managers we cannot see: wait for one to come back.
            return JoinDecision::Wait("node is in a swarm but no live manager answers".into());
        }
    }
    if let Some(m) = live.first() {
        return JoinDecision::JoinVia {
            manager: m.id.clone(),
            manager_ip: m.ip.expect("live managers have an ip"),
        };
    }
    if s.role == Role::Worker {
        return JoinDecision::Wait("no live manager yet: a worker waits for the first manager".into());
    }
    let Some(locks) = &s.locks else {
        return JoinDecision::NeedLocks;
    };
    let Some(top) = locks.iter().max_by_key(|l| l.generation) else {
        return JoinDecision::Init {
            generation: 0,
            held: false,
        };
    };
    if top.holder == me.id {
        // We hold it (a retry after a crash mid-init): init is idempotent.
        return JoinDecision::Init {
            generation: top.generation,
            held: true,
        };
    }
    let holder_alive = s.peers.iter().any(|p| p.id == top.holder);
    let age = s.now_unix.saturating_sub(top.acquired_unix);
    if holder_alive && age < s.lock_lease_secs {
        return JoinDecision::Wait(format!("swarm is being initialised by {}", top.holder));
    }
    // The holder died or never finished: a new generation is a new conditional create,
    // so exactly one contender wins it.
    JoinDecision::Init {
        generation: top.generation + 1,
        held: false,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetireSnapshot {
    pub instance_id: String,
    pub role: Role,
    pub has_dns: bool,
    pub instance: Option<Instance>,
    /// This instance's record(s) in the manager name.
    pub records: Vec<ManagerRecord>,
    /// A live manager other than the leaving instance.
    pub operator: Option<String>,
    /// The leaving instance's swarm node, as the operator sees it.
    pub node: Option<SwarmNode>,
    /// Ready managers other than the leaving node.
    pub other_ready_managers: usize,
    pub self_online: bool,
    /// The leaving instance is itself the only live manager.
    pub self_is_last_manager: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RetireStep {
    /// Take the instance's IP out of the manager name, wait for INSYNC, start the hold.
    RemoveRecords(Vec<ManagerRecord>),
    /// The record was gone already (redelivery): the hold starts now, never earlier.
    StartHold,
    Drain {
        node_id: String,
    },
    Demote {
        node_id: String,
    },
    Leave,
    RemoveNode {
        node_id: String,
    },
    /// Log why the swarm was left alone.
    Note(String),
    /// Complete now (workers) or when the hold has passed (managers).
    Finish,
}

pub fn plan_retire(s: &RetireSnapshot) -> Vec<RetireStep> {
    let mut steps = Vec::new();
    if s.role == Role::Manager && s.has_dns {
        if s.records.is_empty() {
            steps.push(RetireStep::StartHold);
        } else {
            steps.push(RetireStep::RemoveRecords(s.records.clone()));
        }
    }
    match (&s.operator, &s.node) {
        (Some(_), Some(node)) => {
            // Draining is idempotent and also waits for the tasks to move: always run it.
            steps.push(RetireStep::Drain {
                node_id: node.id.clone(),
            });
            if node.role == Role::Manager {
                if s.other_ready_managers == 0 {
                    steps.push(RetireStep::Note("last ready manager: not demoting".into()));
                    steps.push(RetireStep::Finish);
                    return steps;
                }
                steps.push(RetireStep::Demote {
                    node_id: node.id.clone(),
                });
            }
            if s.self_online && s.instance.as_ref().is_some_and(|i| i.state.is_alive()) {
                steps.push(RetireStep::Leave);
            }
            steps.push(RetireStep::RemoveNode {
                node_id: node.id.clone(),
            });
        }
        (Some(_), None) => steps.push(RetireStep::Note("instance has no swarm node".into())),
        (None, _) if s.self_is_last_manager => steps.push(RetireStep::Note(
            "the leaving instance is the last live manager: swarm left as it is".into(),
        )),
        (None, _) => steps.push(RetireStep::Note("no live manager to act through".into())),
    }
    steps.push(RetireStep::Finish);
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Availability, InstanceState, NodeStatus};

    fn inst(id: &str) -> Option<Instance> {
        Some(Instance {
            id: id.into(),
            state: InstanceState::Running,
            private_ip: Some("10.0.1.10".parse().unwrap()),
            launched_unix: Some(0),
        })
    }
    fn probe(state: &str, control: bool) -> Option<Probe> {
        Some(Probe {
            swarm_state: state.into(),
            control,
            node_id: None,
        })
    }
    fn peer(id: &str, live: bool) -> Peer {
        Peer {
            id: id.into(),
            ip: Some("10.0.1.20".parse().unwrap()),
            probe: if live {
                probe("active", true)
            } else {
                probe("inactive", false)
            },
        }
    }
    fn snap(role: Role) -> JoinSnapshot {
        JoinSnapshot {
            role,
            instance: inst("i-00000001"),
            self_probe: probe("inactive", false),
            peers: vec![],
            locks: None,
            now_unix: 1000,
            lock_lease_secs: 600,
        }
    }

    #[test]
    fn gone_instances_are_not_joined() {
        let mut s = snap(Role::Worker);
        s.instance = None;
        assert!(matches!(decide_join(&s), JoinDecision::Gone(_)));
        s.instance = inst("i-00000001");
        s.instance.as_mut().unwrap().state = InstanceState::Terminated;
        assert!(matches!(decide_join(&s), JoinDecision::Gone(_)));
        s.instance = inst("i-00000001");
        s.instance.as_mut().unwrap().private_ip = None;
        assert!(matches!(decide_join(&s), JoinDecision::Gone(_)));
    }

    #[test]
    fn joins_through_the_lowest_live_manager() {
        let mut s = snap(Role::Worker);
        s.peers = vec![
            peer("i-0000000c", true),
            peer("i-0000000a", false),
            peer("i-0000000b", true),
        ];
        assert_eq!(
            decide_join(&s),
            JoinDecision::JoinVia {
                manager: "i-0000000b".into(),
                manager_ip: "10.0.1.20".parse().unwrap()
            }
        );
    }

    #[test]
    fn a_member_is_verified_not_rejoined() {
        let mut s = snap(Role::Manager);
        s.self_probe = probe("active", true);
        assert_eq!(
            decide_join(&s),
            JoinDecision::AlreadyMember {
                verify_on: "i-00000001".into()
            }
        );
        let mut s = snap(Role::Worker);
        s.self_probe = probe("active", false);
        s.peers = vec![peer("i-0000000b", true)];
        assert_eq!(
            decide_join(&s),
            JoinDecision::AlreadyMember {
                verify_on: "i-0000000b".into()
            }
        );
        s.peers.clear();
        assert!(matches!(decide_join(&s), JoinDecision::Wait(_)));
    }

    #[test]
    fn workers_wait_for_the_first_manager() {
        assert!(matches!(decide_join(&snap(Role::Worker)), JoinDecision::Wait(_)));
    }

    #[test]
    fn first_manager_needs_the_lock_table_then_inits() {
        let mut s = snap(Role::Manager);
        assert_eq!(decide_join(&s), JoinDecision::NeedLocks);
        s.locks = Some(vec![]);
        assert_eq!(
            decide_join(&s),
            JoinDecision::Init {
                generation: 0,
                held: false
            }
        );
    }

    #[test]
    fn a_live_fresh_lock_holder_is_waited_for() {
        let mut s = snap(Role::Manager);
        s.peers = vec![peer("i-0000000b", false)];
        s.locks = Some(vec![LockEntry {
            generation: 0,
            holder: "i-0000000b".into(),
            acquired_unix: 900,
        }]);
        assert!(matches!(decide_join(&s), JoinDecision::Wait(_)));
    }

    #[test]
    fn stale_locks_are_superseded_by_the_next_generation() {
        let mut s = snap(Role::Manager);
        // Holder gone.
        s.locks = Some(vec![LockEntry {
            generation: 3,
            holder: "i-0000000b".into(),
            acquired_unix: 990,
        }]);
        assert_eq!(
            decide_join(&s),
            JoinDecision::Init {
                generation: 4,
                held: false
            }
        );
        // Holder alive but its lease ran out without a swarm.
        s.peers = vec![peer("i-0000000b", false)];
        s.now_unix = 990 + 600;
        assert_eq!(
            decide_join(&s),
            JoinDecision::Init {
                generation: 4,
                held: false
            }
        );
    }

    #[test]
    fn own_lock_is_resumed() {
        let mut s = snap(Role::Manager);
        s.locks = Some(vec![LockEntry {
            generation: 2,
            holder: "i-00000001".into(),
            acquired_unix: 999,
        }]);
        assert_eq!(
            decide_join(&s),
            JoinDecision::Init {
                generation: 2,
                held: true
            }
        );
    }

    #[test]
    fn lock_entries_parse() {
        let e = LockEntry::parse("/swarm/c/init-lock", "/swarm/c/init-lock/7", "i-00000001 123").unwrap();
        assert_eq!(e.generation, 7);
        assert_eq!(e.holder, "i-00000001");
        assert!(LockEntry::parse("/swarm/c/init-lock", "/swarm/c/other/7", "i-1 1").is_none());
        assert!(LockEntry::parse("/swarm/c/init-lock", "/swarm/c/init-lock/x", "i-1 1").is_none());
    }

    fn node(role: Role) -> SwarmNode {
        SwarmNode {
            id: "abcdefghijklmnopqrstuvwx1".into(),
            hostname: "h".into(),
            addr: None,
            role,
            status: NodeStatus::Ready,
            availability: Availability::Active,
            leader: false,
            instance_id: Some("i-00000001".into()),
            updated_unix: None,
        }
    }
    fn retire(role: Role) -> RetireSnapshot {
        RetireSnapshot {
            instance_id: "i-00000001".into(),
            role,
            has_dns: role == Role::Manager,
            instance: inst("i-00000001"),
            records: vec![ManagerRecord {
                set_identifier: "i-00000001".into(),
                ip: "10.0.1.10".parse().unwrap(),
                ttl: 60,
            }],
            operator: Some("i-0000000b".into()),
            node: Some(node(role)),
            other_ready_managers: 2,
            self_online: true,
            self_is_last_manager: false,
        }
    }
    const NID: &str = "abcdefghijklmnopqrstuvwx1";

    #[test]
    fn manager_retire_takes_dns_out_first_then_drains_demotes_leaves_removes() {
        let s = retire(Role::Manager);
        let steps = plan_retire(&s);
        assert_eq!(
            steps,
            vec![
                RetireStep::RemoveRecords(s.records.clone()),
                RetireStep::Drain { node_id: NID.into() },
                RetireStep::Demote { node_id: NID.into() },
                RetireStep::Leave,
                RetireStep::RemoveNode { node_id: NID.into() },
                RetireStep::Finish,
            ]
        );
    }

    #[test]
    fn worker_retire_has_no_dns_and_no_demote() {
        let mut s = retire(Role::Worker);
        s.records.clear();
        assert_eq!(
            plan_retire(&s),
            vec![
                RetireStep::Drain { node_id: NID.into() },
                RetireStep::Leave,
                RetireStep::RemoveNode { node_id: NID.into() },
                RetireStep::Finish,
            ]
        );
    }

    #[test]
    fn redelivered_manager_retire_holds_from_now() {
        let mut s = retire(Role::Manager);
        s.records.clear();
        s.node = None;
        assert_eq!(
            plan_retire(&s),
            vec![
                RetireStep::StartHold,
                RetireStep::Note("instance has no swarm node".into()),
                RetireStep::Finish
            ]
        );
    }

    #[test]
    fn never_demotes_the_last_ready_manager() {
        let mut s = retire(Role::Manager);
        s.other_ready_managers = 0;
        let steps = plan_retire(&s);
        assert!(!steps
            .iter()
            .any(|x| matches!(x, RetireStep::Demote { .. } | RetireStep::RemoveNode { .. })));
        assert_eq!(steps.last(), Some(&RetireStep::Finish));
    }

    #[test]
    fn gone_or_offline_instances_are_removed_without_leave() {
        let mut s = retire(Role::Worker);
        s.records.clear();
        s.instance = None;
        s.self_online = false;
        assert_eq!(
            plan_retire(&s),
            vec![
                RetireStep::Drain { node_id: NID.into() },
                RetireStep::RemoveNode { node_id: NID.into() },
                RetireStep::Finish
            ]
        );
    }

    #[test]
    fn no_operator_means_no_swarm_steps() {
        let mut s = retire(Role::Worker);
        s.records.clear();
        s.operator = None;
        assert!(matches!(plan_retire(&s)[0], RetireStep::Note(_)));
        s.self_is_last_manager = true;
        assert!(matches!(&plan_retire(&s)[0], RetireStep::Note(n) if n.contains("last live manager")));
    }
}
