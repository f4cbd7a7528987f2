//! Planning a join: from what the instance and its peers say (and the init locks) to the one
//! next step. Pure: no I/O.

use std::net::Ipv4Addr;

use crate::model::{Instance, Probe, Role};

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
    /// Its own launch has not finished (Auto Scaling `Pending*`): a swarm it has just formed
    /// may not have published its join tokens yet.
    pub launching: bool,
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
    if let Some(m) = live.iter().find(|p| !p.launching) {
        return JoinDecision::JoinVia {
            manager: m.id.clone(),
            manager_ip: m.ip.expect("live managers have an ip"),
        };
    }
    // A cluster created at full size: the first manager has formed the swarm but its launch
    // (init, tokens, record) is not done. A join now would find no token and fail; it waits
    // for that launch to complete instead (seconds), then joins once.
    if let Some(m) = live.first() {
        return JoinDecision::Wait(format!(
            "the swarm is being formed by {}: joins wait for its launch to complete",
            m.id
        ));
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

/// The one-command join (join-ready.sh): the instance joins through whichever of the online
/// managers accepts it, while the first of them waits for its node to be Ready.
#[derive(Debug, Clone, PartialEq)]
pub struct FastJoin {
    /// The joining instance's address.
    pub ip: Ipv4Addr,
    /// The managers to join through, with their addresses, in order; the first confirms the
    /// node Ready. The order turns with the instance, so a scale-out's joins (and their
    /// confirmations, a poll of the node list each) spread over the managers.
    pub through: Vec<(String, Ipv4Addr)>,
}

/// Whether the one-command join applies: the instance is alive with an address and at least
/// one online manager is in service. None: the observing loop (`decide_join`) takes over.
/// `in_service`: the managers already in service come first (one still joining, launched
/// beside this instance, cannot confirm anything yet); the turn is taken among them. With
/// none in service the cluster is still forming and no join token exists yet: a join sent
/// now could only fail.
pub fn plan_fast_join(
    instance: Option<&Instance>,
    online_managers: &[Instance],
    in_service: &[String],
) -> Option<FastJoin> {
    let ip = instance.filter(|i| i.state.is_alive())?.private_ip?;
    let through: Vec<(String, Ipv4Addr)> = online_managers
        .iter()
        .filter(|m| m.state.is_alive())
        .filter_map(|m| Some((m.id.clone(), m.private_ip?)))
        .collect();
    let (mut through, joining): (Vec<_>, Vec<_>) = through.into_iter().partition(|(id, _)| in_service.contains(id));
    if through.is_empty() {
        return None;
    }
    // A stable turn per instance (its id's bytes summed): the same instance, the same order.
    let turn = instance?.id.bytes().map(usize::from).sum::<usize>() % through.len();
    through.rotate_left(turn);
    through.extend(joining);
    Some(FastJoin { ip, through })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::InstanceState;
    use crate::plan::inst;

    fn probe(state: &str, control: bool) -> Option<Probe> {
        Some(Probe {
            swarm_state: state.into(),
            control,
            node_id: None,
            retiring: false,
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
            launching: false,
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
    fn a_join_waits_while_the_only_live_managers_are_still_launching() {
        for role in [Role::Worker, Role::Manager] {
            let mut s = snap(role);
            s.peers = vec![peer("i-0000000a", true), peer("i-0000000b", false)];
            s.peers[0].launching = true;
            match decide_join(&s) {
                JoinDecision::Wait(why) => assert!(why.contains("formed by i-0000000a"), "{why}"),
                d => panic!("{role}: {d:?}"),
            }
            // Its launch completed (tokens published): joined through it, once.
            s.peers[0].launching = false;
            assert!(matches!(decide_join(&s), JoinDecision::JoinVia { manager, .. } if manager == "i-0000000a"));
            // Another live manager in service is preferred to one still launching.
            s.peers = vec![peer("i-0000000a", true), peer("i-0000000c", true)];
            s.peers[0].launching = true;
            assert!(matches!(decide_join(&s), JoinDecision::JoinVia { manager, .. } if manager == "i-0000000c"));
        }
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

    #[test]
    fn the_one_command_join_needs_a_live_instance_and_a_live_online_manager() {
        let mut me = inst("i-00000001").unwrap();
        let mut m1 = inst("i-0000000b").unwrap();
        m1.private_ip = Some("10.0.1.11".parse().unwrap());
        let settled = vec![m1.id.clone()];
        let plan = plan_fast_join(Some(&me), std::slice::from_ref(&m1), &settled).unwrap();
        assert_eq!(plan.ip, "10.0.1.10".parse::<Ipv4Addr>().unwrap());
        assert_eq!(
            plan.through,
            vec![("i-0000000b".to_string(), "10.0.1.11".parse().unwrap())]
        );
        assert_eq!(plan_fast_join(Some(&me), &[], &settled), None, "no manager online");
        assert_eq!(
            plan_fast_join(Some(&me), std::slice::from_ref(&m1), &[]),
            None,
            "no manager in service: the cluster is forming and has no join token yet"
        );
        let mut gone = m1.clone();
        gone.state = InstanceState::ShuttingDown;
        assert_eq!(
            plan_fast_join(Some(&me), &[gone], &settled),
            None,
            "its manager is leaving"
        );
        me.private_ip = None;
        assert_eq!(
            plan_fast_join(Some(&me), &[m1], &settled),
            None,
            "no address to advertise"
        );
        assert_eq!(plan_fast_join(None, &[], &[]), None);
    }

    #[test]
    fn the_joins_of_a_scale_out_are_confirmed_by_every_manager_in_turn() {
        let managers: Vec<_> = ["i-0000000a", "i-0000000b", "i-0000000c"]
            .iter()
            .map(|id| inst(id).unwrap())
            .collect();
        let all: Vec<String> = managers.iter().map(|m| m.id.clone()).collect();
        let first = |n: u32| {
            let me = inst(&format!("i-{n:08x}")).unwrap();
            plan_fast_join(Some(&me), &managers, &all).unwrap().through[0].0.clone()
        };
        let confirmers: std::collections::HashMap<String, usize> = (1..=30).fold(Default::default(), |mut m, n| {
            *m.entry(first(n)).or_default() += 1;
            m
        });
        assert_eq!(confirmers.len(), 3, "{confirmers:?}");
        assert!(confirmers.values().all(|&c| c >= 5), "{confirmers:?}");
        assert_eq!(first(7), first(7), "the same instance, the same order");
        let me = inst("i-00000007").unwrap();
        assert_eq!(
            plan_fast_join(Some(&me), &managers, &all).unwrap().through.len(),
            3,
            "every manager to join through"
        );
        // Two managers launched together: the one in service confirms, whichever the turn.
        let settled = vec!["i-0000000a".to_string()];
        for n in 1..=10 {
            let me = inst(&format!("i-{n:08x}")).unwrap();
            let plan = plan_fast_join(Some(&me), &managers, &settled).unwrap();
            assert_eq!(plan.through[0].0, "i-0000000a");
            assert_eq!(plan.through.len(), 3);
        }
    }
}
