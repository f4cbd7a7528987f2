//! An in-memory world behind every port: groups, instances, SSM agents, a simulated swarm
//! (driven by recognising which script a command runs), Route 53 records and parameters.
//! It makes the workflow tests fast and total; the real adapters are proven on the local cloud.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::event::LifecycleAction;
use crate::model::{Group, GroupInstance, Instance, InstanceState, LifecycleState, ManagerRecord, Role};
use crate::plan::service_dns::{ZoneChange, ZoneEntry};
use crate::ports::*;
use crate::scripts::{self, ScriptExit};

#[derive(Debug, Clone)]
pub struct SimNode {
    pub id: String,
    pub instance_id: String,
    pub addr: Ipv4Addr,
    pub role: Role,
    pub ready: bool,
    pub drained: bool,
    /// Availability pause: no new tasks, its own stay.
    pub cordoned: bool,
    pub labelled: bool,
    /// Its placement labels (`NODE_LABELS` of the join or repair that set them).
    pub labels: BTreeMap<String, String>,
    /// Unix seconds of the node's last status change.
    pub updated: u64,
}

#[derive(Debug, Default)]
pub struct State {
    pub groups: Vec<Group>,
    pub instances: HashMap<String, Instance>,
    pub online: HashSet<String>,
    pub nodes: BTreeMap<String, SimNode>,
    pub records: Vec<ManagerRecord>,
    pub params: BTreeMap<String, String>,
    pub completed: Vec<(String, ActionResult)>,
    pub heartbeats: Vec<String>,
    /// (instance, script name) of every command run, in order.
    pub commands: Vec<(String, &'static str)>,
    /// Scripts that fail (exit 1) when run on any instance.
    pub failing: HashSet<&'static str>,
    /// (instance, script) pairs that cannot be delivered: the instance became unreachable.
    pub undeliverable: HashSet<(String, &'static str)>,
    /// Drain attempts that end with tasks still moving (each one uses one up).
    pub slow_drains: u32,
    /// A service of every drained node whose task the swarm cannot place: `name|reason`.
    pub blocked_service: Option<String>,
    /// Joins whose node is Ready only after the confirming manager's first wait (a busy
    /// machine): that many manager halves of join-ready answer state=waiting.
    pub late_ready: u32,
    /// Drains and removals a manager answers with "no leader" (an election; each uses one up).
    pub leaderless: u32,
    /// Demotions the swarm refuses with "update out of sequence" (the node changed between the
    /// CLI's read and its write: two managers demoted at once); each uses one up.
    pub demote_conflicts: u32,
    /// How long a script runs before it answers (the tests' paused clock), by script name.
    pub command_time: HashMap<&'static str, Duration>,
    /// When each heartbeat was sent (the paused clock), beside `heartbeats`.
    pub heartbeat_times: Vec<tokio::time::Instant>,
    /// How long a heartbeat call takes to answer (a stuck connection).
    pub heartbeat_hangs: Option<Duration>,
    /// The error the next group listing answers with (taken once).
    pub groups_error: Option<PortError>,
    /// How many group listings were asked for.
    pub group_listings: u32,
    pub swarm_inits: u32,
    /// Instances fenced by a retirement (`fence.sh`): they refuse to join or init.
    pub retired: HashSet<String>,
    /// Instances whose daemon runs the nftables firewall backend: no join or init succeeds.
    pub nftables: HashSet<String>,
    /// Instances whose shared storage is not mounted: no join or init while the cluster has it.
    pub unmounted: HashSet<String>,
    /// Joins that land only when the next probe runs: a join in flight while a retirement
    /// looks (instance, token parameter, manager addresses).
    pub joins_in_flight: Vec<(String, String, Vec<String>)>,
    /// Scheduled changes: instance -> unix start.
    pub scheduled: HashMap<String, u64>,
    /// (bus, event) of every action event published, in order.
    pub announced: Vec<(String, crate::announce::ActionEvent)>,
    /// The zone's service-name record sets and their owners.
    pub zone: Vec<ZoneEntry>,
    /// How many commands had been sent when each service-name batch was accepted (DNS first).
    pub zone_changes_at: Vec<usize>,
    /// Every service-name listing fails with it.
    pub zone_error: Option<PortError>,
    /// What services.sh answers (`service\tNAME\tLABEL\tMODES` lines).
    pub services_out: String,
    /// The error publishing answers with (every time) while set.
    pub announce_error: Option<PortError>,
    next_node: u32,
    /// Route 53 change batches accepted (manager record and service names).
    pub changes: u32,
    /// Commands sent without waiting (`Remote::send`), by id: their results, ready at once.
    pub sent: HashMap<String, Vec<CommandResult>>,
    /// Drain checks left for later (body, delay), in order.
    pub checks: Vec<(String, Duration)>,
    /// Instances whose agent answers a probe but refuses a sent command (InvalidInstanceId).
    pub offline_at_send: HashSet<String>,
    /// Per instance: how many more reads find its half of a sent command still running (its
    /// script ends, or its agent reports, after the other half's).
    pub slow_halves: HashMap<String, u32>,
}

/// Cheap to clone: every port of a `Lifecycle` shares one world.
#[derive(Clone, Default)]
pub struct World(pub Arc<Mutex<State>>);

impl World {
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().expect("world lock")
    }

    pub fn add_group(&self, name: &str, cluster: &str, role: Role, dns: Option<&str>) {
        let mut tags = vec![
            ("swarm:cluster".to_string(), cluster.to_string()),
            ("swarm:role".to_string(), role.as_str().to_string()),
        ];
        if let Some(d) = dns {
            tags.push(("swarm:dns-name".into(), d.into()));
        }
        self.state().groups.push(Group {
            name: name.into(),
            tags,
            instances: vec![],
        });
    }

    /// Launches an instance into a group (Pending:Wait), agent online.
    pub fn launch(&self, group: &str, id: &str, ip: &str) {
        let mut s = self.state();
        s.instances.insert(
            id.into(),
            Instance {
                id: id.into(),
                state: InstanceState::Running,
                private_ip: Some(ip.parse().expect("ip")),
                launched_unix: Some(0),
                zone: Some("us-east-1a".into()),
                instance_type: Some("t3.small".into()),
                spot: false,
            },
        );
        s.online.insert(id.into());
        let g = s.groups.iter_mut().find(|g| g.name == group).expect("group");
        g.instances.push(GroupInstance {
            id: id.into(),
            lifecycle_state: "Pending:Wait".into(),
        });
    }

    /// The instance was stopped and started: /run/lock is a tmpfs, so a retirement's fence is
    /// gone with the reboot.
    pub fn reboot(&self, id: &str) {
        self.state().retired.remove(id);
    }

    pub fn set_lifecycle(&self, id: &str, state: &str) {
        for g in self.state().groups.iter_mut() {
            for i in g.instances.iter_mut().filter(|i| i.id == id) {
                i.lifecycle_state = state.into();
            }
        }
    }

    pub fn tag_group(&self, group: &str, key: &str, value: &str) {
        let mut s = self.state();
        let g = s.groups.iter_mut().find(|g| g.name == group).expect("group");
        g.tags.push((key.into(), value.into()));
    }

    pub fn node_of(&self, id: &str) -> Option<SimNode> {
        self.state().nodes.values().find(|n| n.instance_id == id).cloned()
    }
}

fn env_of(commands: &[String]) -> HashMap<String, String> {
    commands
        .iter()
        .filter_map(|c| c.strip_prefix("export "))
        .filter_map(shlex::split)
        .filter_map(|w| w.into_iter().next())
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

/// A script's `NODE_LABELS` (tab-separated `key=value`) as pairs.
fn node_labels(encoded: &str) -> Vec<(String, String)> {
    encoded
        .split('\t')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn script_name(script: &str) -> &'static str {
    [
        (scripts::PROBE_LIST, "probe-list"),
        (scripts::JOIN_READY, "join-ready"),
        (scripts::RETIRE_NODE, "retire-node"),
        (scripts::INIT, "init"),
        (scripts::PUBLISH_TOKENS, "publish-tokens"),
        (scripts::JOIN, "join"),
        (scripts::NODE_READY, "node-ready"),
        (scripts::NODE_STATUS, "node-status"),
        (scripts::NODE_LIST, "node-list"),
        (scripts::DRAIN, "drain"),
        (scripts::CORDON, "cordon"),
        (scripts::RETIRE_PREVIEW, "retire-preview"),
        (scripts::SERVICES, "services"),
    ]
    .into_iter()
    // The #! line travels first, ahead of the inputs (safe::script_commands).
    .find(|(s, _)| s.split_once('\n').is_some_and(|(_, body)| body == script))
    .map(|(_, n)| n)
    .unwrap_or("unknown")
}

impl State {
    /// Auto Scaling's answer for an action whose instance no longer waits in a hook.
    fn action_waits(&self, action: &LifecycleAction) -> PortResult<()> {
        let waiting = self.groups.iter().flat_map(|g| g.instances.iter()).any(|i| {
            i.id == action.instance_id
                && matches!(
                    i.lifecycle_state,
                    LifecycleState::PendingWait | LifecycleState::TerminatingWait
                )
        });
        if waiting {
            Ok(())
        } else {
            Err(PortError::NoActiveAction(action.instance_id.clone()))
        }
    }

    fn node_of_instance(&self, id: &str) -> Option<&SimNode> {
        self.nodes.values().find(|n| n.instance_id == id && n.ready)
    }

    fn new_node(&mut self, instance_id: &str, role: Role) -> String {
        self.next_node += 1;
        let id = format!("node{:021}", self.next_node);
        let addr = self.instances[instance_id].private_ip.expect("ip");
        self.nodes.insert(
            id.clone(),
            SimNode {
                id: id.clone(),
                instance_id: instance_id.into(),
                addr,
                role,
                ready: true,
                drained: false,
                cordoned: false,
                labelled: false,
                labels: BTreeMap::new(),
                updated: 0,
            },
        );
        id
    }

    /// Joins `on` through the first of `addrs` that is a Ready manager (both join scripts).
    pub fn sim_join(&mut self, on: &str, param: &str, addrs: &[String]) -> (i32, String, String) {
        if self.retired.contains(on) {
            return (
                ScriptExit::Retiring.code(),
                String::new(),
                "this instance is being retired: not joining".into(),
            );
        }
        if let Some(n) = self.node_of_instance(on) {
            return (0, format!("already=true\nnodeid={}\n", n.id), String::new());
        }
        if !self.params.contains_key(param) {
            return (
                ScriptExit::TokenMissing.code(),
                String::new(),
                "join token parameter missing".into(),
            );
        }
        let via = addrs.iter().find(|a| {
            self.nodes
                .values()
                .any(|n| n.addr.to_string() == **a && n.role == Role::Manager && n.ready)
        });
        let Some(via) = via.cloned() else {
            return (1, String::new(), "no manager accepted the join".into());
        };
        let role = if param.ends_with("/manager") {
            Role::Manager
        } else {
            Role::Worker
        };
        let id = self.new_node(on, role);
        (0, format!("already=false\nvia={via}\nnodeid={id}\n"), String::new())
    }

    fn exec(&mut self, on: &str, name: &'static str, env: &HashMap<String, String>) -> (i32, String, String) {
        let var = |k: &str| env.get(k).cloned().unwrap_or_default();
        let via_manager = matches!(name, "drain" | "node-ready" | "node-status");
        if via_manager && !self.node_of_instance(on).is_some_and(|n| n.role == Role::Manager) {
            return (
                ScriptExit::NotAManager.code(),
                String::new(),
                "this instance is not a reachable swarm manager".into(),
            );
        }
        let joining_half = name == "join-ready" && on == var("JOIN_INSTANCE");
        if (matches!(name, "init" | "join") || joining_half) && self.nftables.contains(on) {
            return (
                ScriptExit::FirewallBackend.code(),
                String::new(),
                "the Docker daemon runs the nftables firewall backend, which cannot run in Swarm mode".into(),
            );
        }
        let member = self.node_of_instance(on).is_some();
        if (matches!(name, "init" | "join") || joining_half)
            && !member
            && !var("SHARED_STORAGE").is_empty()
            && self.unmounted.contains(on)
        {
            return (
                ScriptExit::SharedStorageMissing.code(),
                String::new(),
                format!("shared storage {} is not mounted", var("SHARED_STORAGE")),
            );
        }
        // require_manager: a manager being retired itself operates only when no other can.
        let operates = matches!(name, "drain" | "cordon") || (name == "retire-node" && on != var("LEAVING_INSTANCE"));
        if operates && self.retired.contains(on) && var("SPARE_OPERATORS").parse::<u32>().unwrap_or(0) > 0 {
            return (
                ScriptExit::NotAManager.code(),
                String::new(),
                "this manager is being retired itself: another one operates".into(),
            );
        }
        match name {
            "probe-list" => {
                // A join in flight lands before its instance's fence (the join lock), so a
                // manager that lists at the same moment may not show its node yet.
                let landing: Vec<_> = self
                    .joins_in_flight
                    .iter()
                    .filter(|(i, _, _)| i == on)
                    .cloned()
                    .collect();
                self.joins_in_flight.retain(|(i, _, _)| i != on);
                if on == var("FENCE") {
                    for (i, param, addrs) in landing {
                        self.sim_join(&i, &param, &addrs);
                    }
                    self.retired.insert(on.to_string());
                } else {
                    self.joins_in_flight.extend(landing);
                }
                let (code, mut out, err) = self.exec(on, "probe", env);
                let live_manager = self.node_of_instance(on).is_some_and(|n| n.role == Role::Manager);
                if on == var("LIST_ON") && live_manager {
                    out.push_str(&self.exec(on, "node-list", env).1);
                }
                (code, out, err)
            }
            "join-ready" if on == var("JOIN_INSTANCE") => {
                let addrs: Vec<String> = var("MANAGER_ADDRS").split_whitespace().map(str::to_string).collect();
                self.sim_join(on, &var("TOKEN_PARAMETER"), &addrs)
            }
            "retire-node" if on == var("LEAVING_INSTANCE") => match self.node_of_instance(on) {
                None => (0, "left=already\n".into(), String::new()),
                Some(n) if n.role == Role::Manager => (
                    ScriptExit::StillAManager.code(),
                    String::new(),
                    "still a manager".into(),
                ),
                Some(n) => {
                    let id = n.id.clone();
                    self.nodes.get_mut(&id).expect("node").ready = false;
                    (0, "left=true\n".into(), String::new())
                }
            },
            "retire-node" => {
                if !self.node_of_instance(on).is_some_and(|n| n.role == Role::Manager) {
                    return (
                        ScriptExit::NotAManager.code(),
                        String::new(),
                        "this instance is not a reachable swarm manager".into(),
                    );
                }
                if self.leaderless > 0 {
                    self.leaderless -= 1;
                    return (
                        ScriptExit::NoLeader.code(),
                        String::new(),
                        "the swarm has no leader".into(),
                    );
                }
                if !self.nodes.contains_key(&var("NODE_ID")) {
                    return (0, "removed=already\n".into(), String::new());
                }
                let mut out = String::new();
                if var("DRAIN_SECONDS") != "0" {
                    let (_, drained, _) = self.exec(on, "drain", env);
                    if !drained.starts_with("remaining=0\npending=0\n") {
                        return (0, format!("{drained}drained=false\n"), String::new());
                    }
                    out = format!("{drained}drained=true\n");
                }
                if var("DEMOTE") == "true" {
                    let (code, _, err) = self.exec(on, "demote", env);
                    if code != 0 {
                        return (code, out, err);
                    }
                }
                let (code, removed, err) = self.exec(on, "remove", env);
                (code, out + &removed, err)
            }
            "join-ready" => {
                if !self.node_of_instance(on).is_some_and(|n| n.role == Role::Manager) {
                    return (0, "control=false\n".into(), String::new());
                }
                let addr = var("JOIN_ADDR");
                let late = self.late_ready > 0;
                self.late_ready = self.late_ready.saturating_sub(1);
                match self.nodes.values_mut().find(|n| n.ready && n.addr.to_string() == addr) {
                    Some(n) if !late => {
                        n.labelled = true;
                        n.labels.extend(node_labels(&var("NODE_LABELS")));
                        (
                            0,
                            format!("control=true\nnodeid={}\nstate=ready\n", n.id),
                            String::new(),
                        )
                    }
                    _ => (0, "control=true\nstate=waiting\n".into(), "no Ready node".into()),
                }
            }
            "probe" => match self.node_of_instance(on) {
                Some(n) => (
                    0,
                    format!(
                        "swarm=active\ncontrol={}\nnodeid={}\n{}",
                        n.role == Role::Manager,
                        n.id,
                        if self.retired.contains(on) {
                            "retiring=true\n"
                        } else {
                            ""
                        }
                    ),
                    String::new(),
                ),
                None => (0, "swarm=inactive\ncontrol=false\nnodeid=\n".into(), String::new()),
            },
            "init" => {
                if self.retired.contains(on) {
                    return (
                        ScriptExit::Retiring.code(),
                        String::new(),
                        "this instance is being retired: not joining".into(),
                    );
                }
                let id = match self.node_of_instance(on) {
                    Some(n) => n.id.clone(),
                    None => {
                        self.swarm_inits += 1;
                        self.new_node(on, Role::Manager)
                    }
                };
                let prefix = var("TOKEN_PREFIX");
                self.params
                    .insert(format!("{prefix}/worker"), "SWMTKN-1-sim-worker".into());
                self.params
                    .insert(format!("{prefix}/manager"), "SWMTKN-1-sim-manager".into());
                (0, format!("nodeid={id}\n"), String::new())
            }
            "publish-tokens" => {
                let prefix = var("TOKEN_PREFIX");
                self.params
                    .insert(format!("{prefix}/worker"), "SWMTKN-1-sim-worker".into());
                self.params
                    .insert(format!("{prefix}/manager"), "SWMTKN-1-sim-manager".into());
                (0, "published=true\n".into(), String::new())
            }
            "join" => self.sim_join(on, &var("TOKEN_PARAMETER"), &[var("MANAGER_ADDR")]),
            // The labelled services, as the test wrote services.sh's answer.
            "services" => (0, self.services_out.clone(), String::new()),
            "node-status" => {
                let reactivate = var("REACTIVATE") == "true";
                match self
                    .nodes
                    .values_mut()
                    .find(|n| n.ready && n.labelled && n.instance_id == var("INSTANCE_ID"))
                {
                    Some(n) => {
                        let mut out = String::new();
                        if reactivate && n.drained {
                            n.drained = false;
                            out.push_str("reactivated=true\n");
                        }
                        let role = if n.role == Role::Manager { "manager" } else { "worker" };
                        (
                            0,
                            format!("{out}state=ready\nnodeid={}\nrole={role}\n", n.id),
                            String::new(),
                        )
                    }
                    None => (0, "state=missing\n".into(), String::new()),
                }
            }
            "node-ready" => match self.nodes.get_mut(&var("NODE_ID")) {
                Some(n) if n.ready => {
                    n.labelled = true;
                    n.labels.extend(node_labels(&var("NODE_LABELS")));
                    (0, "state=ready\n".into(), String::new())
                }
                _ => (ScriptExit::NotReady.code(), String::new(), "node not ready".into()),
            },
            "node-list" => {
                let offset: usize = var("OFFSET").parse().unwrap_or(0);
                let limit: usize = var("LIMIT").parse().unwrap_or(usize::MAX);
                let total = self.nodes.len();
                let out: String = self
                    .nodes
                    .values()
                    .map(|n| {
                        let listed: Vec<String> = crate::plan::labels::LISTED
                            .iter()
                            .map(|k| {
                                let v = n.labels.get(*k).map(String::as_str).unwrap_or("");
                                v.chars().take(crate::plan::labels::LISTED_GROUP_CHARS).collect()
                            })
                            .collect();
                        format!(
                            "{} {} {} {} {} false {} {} ip-{} {}\n",
                            n.id,
                            if n.ready { "ready" } else { "down" },
                            n.addr,
                            n.role.as_str(),
                            if n.drained { "drain" } else { "active" },
                            if n.labelled { n.instance_id.as_str() } else { "-" },
                            n.updated,
                            n.addr,
                            serde_json::to_string(&listed).expect("strings")
                        )
                    })
                    .skip(offset)
                    .take(limit)
                    .collect();
                (0, format!("total={total}\n{out}"), String::new())
            }
            "drain" => {
                if let Some(n) = self.nodes.get_mut(&var("NODE_ID")) {
                    n.drained = true;
                }
                if self.slow_drains > 0 {
                    self.slow_drains -= 1;
                    return (0, "remaining=1\npending=0\n".into(), String::new());
                }
                if let Some(b) = &self.blocked_service {
                    // The node's tasks are gone; its service stays short, blocked (the script
                    // returns at once when asked to, else waits its time: command_time).
                    return (0, format!("remaining=0\npending=1\nblocked={b}\n"), String::new());
                }
                (0, "remaining=0\npending=0\n".into(), String::new())
            }
            "retire-preview" => {
                // Every other node, active and ready; a service on the node; the blocked one
                // (blocked_service) pinned to it by hostname.
                let me = var("NODE_ID");
                let mut out = String::new();
                for n in self.nodes.values().filter(|n| n.id != me) {
                    out += &format!(
                        "node {{\"id\":\"{}\",\"hostname\":\"h-{}\",\"role\":\"{}\",\"availability\":\"active\",\"state\":\"ready\",\"labels\":null}}\n",
                        n.id,
                        n.id,
                        n.role.as_str()
                    );
                }
                out += "service {\"name\":\"web\",\"replicas\":4,\"constraints\":null,\"max_per_node\":0}\n";
                if let Some(b) = &self.blocked_service {
                    let name = b.split('|').next().unwrap_or("pinned");
                    out += &format!(
                        "service {{\"name\":\"{name}\",\"replicas\":1,\"constraints\":[\"node.hostname==h-{me}\"],\"max_per_node\":0}}\n"
                    );
                }
                (0, out, String::new())
            }
            "cordon" => match self.nodes.get_mut(&var("NODE_ID")) {
                Some(n) if !n.drained => {
                    n.cordoned = true;
                    (0, "availability=pause\n".into(), String::new())
                }
                Some(_) => (0, "availability=drain\n".into(), String::new()),
                None => (0, "availability=gone\n".into(), String::new()),
            },
            "demote" if self.demote_conflicts > 0 => {
                self.demote_conflicts -= 1;
                (
                    1,
                    String::new(),
                    "Error response from daemon: rpc error: code = Unknown desc = update out of sequence".into(),
                )
            }
            "demote" => {
                let managers = self
                    .nodes
                    .values()
                    .filter(|n| n.role == Role::Manager && n.ready)
                    .count();
                match self.nodes.get_mut(&var("NODE_ID")) {
                    Some(n) if n.role == Role::Manager && managers <= 1 => {
                        (1, String::new(), "would lose quorum".into())
                    }
                    Some(n) => {
                        n.role = Role::Worker;
                        (0, "demoted=true\n".into(), String::new())
                    }
                    None => (0, "demoted=true\n".into(), String::new()),
                }
            }
            "remove" => {
                let id = var("NODE_ID");
                match self.nodes.get(&id) {
                    None => (0, "removed=already\n".into(), String::new()),
                    Some(n) if n.role == Role::Manager => (
                        ScriptExit::StillAManager.code(),
                        String::new(),
                        "still a manager".into(),
                    ),
                    Some(_) => {
                        self.nodes.remove(&id);
                        (0, "removed=true\n".into(), String::new())
                    }
                }
            }
            _ => (127, String::new(), "unknown script".into()),
        }
    }
}

impl Fleet for World {
    async fn describe_groups(&self, names: &[String]) -> PortResult<Vec<Group>> {
        Ok(self
            .state()
            .groups
            .iter()
            .filter(|g| names.contains(&g.name))
            .cloned()
            .collect())
    }
    async fn groups_tagged(&self, key: &str, value: &str) -> PortResult<Vec<Group>> {
        let mut s = self.state();
        s.group_listings += 1;
        if let Some(e) = s.groups_error.take() {
            return Err(e);
        }
        drop(s);
        Ok(self
            .state()
            .groups
            .iter()
            .filter(|g| g.tag(key) == Some(value))
            .cloned()
            .collect())
    }
    async fn instance_groups(&self, ids: &[String]) -> PortResult<Vec<(String, GroupInstance)>> {
        let s = self.state();
        Ok(s.groups
            .iter()
            .flat_map(|g| g.instances.iter().map(move |i| (g.name.clone(), i.clone())))
            .filter(|(_, i)| ids.contains(&i.id))
            .collect())
    }
    async fn lifecycle_hooks(&self, _group: &str) -> PortResult<Vec<(String, String)>> {
        Ok(vec![
            ("launch".into(), crate::event::LAUNCHING.into()),
            ("terminate".into(), crate::event::TERMINATING.into()),
        ])
    }
    async fn describe_instances(&self, ids: &[String]) -> PortResult<Vec<Instance>> {
        let s = self.state();
        Ok(ids.iter().filter_map(|i| s.instances.get(i).cloned()).collect())
    }
    async fn scheduled_changes(&self) -> PortResult<Vec<(String, u64)>> {
        Ok(self.state().scheduled.iter().map(|(i, t)| (i.clone(), *t)).collect())
    }
    async fn complete_action(&self, action: &LifecycleAction, result: ActionResult) -> PortResult<()> {
        let mut s = self.state();
        s.action_waits(action)?;
        s.completed.push((action.instance_id.clone(), result));
        drop(s);
        let next = match (result, self.is_launching(&action.instance_id)) {
            (ActionResult::Continue, true) => "InService",
            _ => "Terminating:Proceed",
        };
        self.set_lifecycle(&action.instance_id, next);
        Ok(())
    }
    async fn record_heartbeat(&self, action: &LifecycleAction) -> PortResult<()> {
        let hang = self.state().heartbeat_hangs;
        if let Some(d) = hang {
            tokio::time::sleep(d).await;
        }
        let mut s = self.state();
        s.action_waits(action)?;
        s.heartbeats.push(action.instance_id.clone());
        s.heartbeat_times.push(tokio::time::Instant::now());
        Ok(())
    }
    /// The group holds it in its terminate hook (the tests run the retire themselves).
    async fn terminate_in_group(&self, instance_id: &str, _decrement: bool) -> PortResult<()> {
        let mut s = self.state();
        let i = s
            .groups
            .iter_mut()
            .flat_map(|g| g.instances.iter_mut())
            .find(|i| i.id == instance_id)
            .ok_or_else(|| {
                PortError::aws(
                    "TerminateInstanceInAutoScalingGroup",
                    format!("{instance_id} is in no group"),
                )
            })?;
        i.lifecycle_state = "Terminating:Wait".into();
        Ok(())
    }
}

impl World {
    fn is_launching(&self, id: &str) -> bool {
        self.state()
            .groups
            .iter()
            .flat_map(|g| g.instances.iter())
            .any(|i| i.id == id && i.lifecycle_state.is_pending())
    }
}

impl Remote for World {
    async fn online(&self, ids: &[String]) -> PortResult<Vec<String>> {
        let s = self.state();
        Ok(ids.iter().filter(|i| s.online.contains(*i)).cloned().collect())
    }
    async fn run(
        &self,
        ids: &[String],
        commands: Vec<String>,
        _timeout: Duration,
        _usual: Duration,
        _comment: &str,
    ) -> PortResult<Vec<CommandResult>> {
        // Yield like a network call would, so concurrent workflows interleave.
        tokio::task::yield_now().await;
        let name = script_name(commands.last().map(String::as_str).unwrap_or(""));
        let env = env_of(&commands);
        let took = self.state().command_time.get(name).copied();
        if let Some(d) = took {
            tokio::time::sleep(d).await;
        }
        let mut s = self.state();
        if let Some(off) = ids.iter().find(|i| !s.online.contains(*i)) {
            return Err(PortError::NotOnline(off.clone()));
        }
        Ok(ids
            .iter()
            .map(|id| {
                s.commands.push((id.clone(), name));
                if s.undeliverable.contains(&(id.clone(), name)) {
                    return CommandResult {
                        instance_id: id.clone(),
                        status: CommandStatus::Undeliverable,
                        exit_code: -1,
                        stdout: String::new(),
                        stderr: String::new(),
                    };
                }
                let (code, stdout, stderr) = if s.failing.contains(name) {
                    (1, String::new(), "injected failure".into())
                } else {
                    s.exec(id, name, &env)
                };
                CommandResult {
                    instance_id: id.clone(),
                    status: if code == 0 {
                        CommandStatus::Success
                    } else {
                        CommandStatus::Failed
                    },
                    exit_code: code,
                    stdout,
                    stderr,
                }
            })
            .collect())
    }
    async fn send(
        &self,
        ids: &[String],
        commands: Vec<String>,
        _timeout: Duration,
        _comment: &str,
    ) -> PortResult<String> {
        self.send_now(ids, commands).await
    }
    async fn results(&self, command_id: &str, ids: &[String]) -> PortResult<Vec<Option<CommandResult>>> {
        let mut out = vec![];
        for (i, id) in ids.iter().enumerate() {
            match self.result(command_id, id).await {
                Ok(r) => out.push(r),
                Err(e) if i == 0 => return Err(e),
                Err(_) => out.push(None),
            }
        }
        Ok(out)
    }

    async fn result(&self, command_id: &str, id: &str) -> PortResult<Option<CommandResult>> {
        let mut s = self.state();
        if let Some(n) = s.slow_halves.get_mut(id).filter(|n| **n > 0) {
            *n -= 1;
            return Ok(None);
        }
        match s
            .sent
            .get(command_id)
            .and_then(|rs| rs.iter().find(|r| r.instance_id == id))
        {
            Some(r) => Ok(Some(r.clone())),
            None => Err(PortError::Invalid {
                operation: "GetCommandInvocation".into(),
                message: format!("InvocationDoesNotExist: {command_id} on {id}"),
            }),
        }
    }
}

impl Checks for World {
    async fn later(&self, body: &str, delay: Duration) -> PortResult<()> {
        self.state().checks.push((body.to_string(), delay));
        Ok(())
    }
}

impl World {
    /// Runs `commands` at once (as `run`) and keeps the results under a new command id.
    async fn send_now(&self, ids: &[String], commands: Vec<String>) -> PortResult<String> {
        if let Some(off) = ids.iter().find(|i| self.state().offline_at_send.contains(*i)) {
            return Err(PortError::NotOnline(off.clone()));
        }
        let rs = self.run(ids, commands, Duration::ZERO, Duration::ZERO, "").await?;
        let mut s = self.state();
        let command_id = format!("cmd-{}", s.sent.len() + 1);
        s.sent.insert(command_id.clone(), rs);
        Ok(command_id)
    }
}

impl Dns for World {
    async fn manager_records(&self, _zone: &str, _name: &str) -> PortResult<Vec<ManagerRecord>> {
        Ok(self.state().records.clone())
    }
    async fn change(&self, _zone: &str, _name: &str, changes: Vec<RecordChange>) -> PortResult<String> {
        let mut s = self.state();
        for c in changes {
            match c {
                RecordChange::Upsert(r) => {
                    s.records.retain(|x| x.set_identifier != r.set_identifier);
                    s.records.push(r);
                }
                // Route 53 deletes only an exact match, else the batch fails with "not found".
                RecordChange::Delete(r) => {
                    if !s.records.contains(&r) {
                        return Ok(UNCHANGED.to_string());
                    }
                    s.records.retain(|x| *x != r);
                }
            }
        }
        s.changes += 1;
        Ok(format!("C{}", s.changes))
    }
    async fn is_insync(&self, _change_id: &str) -> PortResult<bool> {
        Ok(true)
    }
    async fn records_under(&self, _zone: &str, suffix: &str) -> PortResult<Vec<ZoneEntry>> {
        if let Some(e) = self.state().zone_error.clone() {
            return Err(e);
        }
        let under = format!(".{suffix}");
        Ok(self
            .state()
            .zone
            .iter()
            .filter(|e| e.name == suffix || e.name.ends_with(&under))
            .cloned()
            .collect())
    }
    /// As Route 53: all or nothing; a DELETE must name what is there exactly.
    async fn change_entries(&self, _zone: &str, changes: &[ZoneChange]) -> PortResult<String> {
        let mut s = self.state();
        let mut zone = s.zone.clone();
        for c in changes {
            match c {
                ZoneChange::Upsert(e) => {
                    zone.retain(|x| !(x.name == e.name && x.kind == e.kind && x.set_identifier == e.set_identifier));
                    zone.push(e.clone());
                }
                ZoneChange::Delete(e) => {
                    let before = zone.len();
                    zone.retain(|x| x != e);
                    if zone.len() == before {
                        return Err(PortError::Invalid {
                            operation: "ChangeResourceRecordSets".into(),
                            message: format!("InvalidChangeBatch: {} not found", e.name),
                        });
                    }
                }
            }
        }
        s.zone = zone;
        let sent = s.commands.len();
        s.zone_changes_at.push(sent);
        s.changes += 1;
        Ok(format!("C{}", s.changes))
    }
}

impl Announce for World {
    async fn announce(&self, bus: &str, event: &crate::announce::ActionEvent) -> PortResult<()> {
        let mut s = self.state();
        if let Some(e) = s.announce_error.clone() {
            return Err(e);
        }
        s.announced.push((bus.to_string(), event.clone()));
        Ok(())
    }
}

impl Parameters for World {
    async fn create(&self, name: &str, value: &str) -> PortResult<bool> {
        let mut s = self.state();
        if s.params.contains_key(name) {
            return Ok(false);
        }
        s.params.insert(name.into(), value.into());
        Ok(true)
    }
    async fn list(&self, path: &str) -> PortResult<Vec<(String, String)>> {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        Ok(self
            .state()
            .params
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
    async fn delete(&self, names: &[String]) -> PortResult<()> {
        let mut s = self.state();
        for n in names {
            s.params.remove(n);
        }
        Ok(())
    }
}
