//! Observation: what the instances, agents, daemons and the node list say, in as few commands
//! as possible, turned into the planners' snapshots. Reads only: changes nothing.

use super::held::Operators;
use super::*;

/// What one observation pass saw.
pub(crate) struct Sighting {
    /// The instances asked about that EC2 knows, by id.
    pub instances: HashMap<String, Instance>,
    /// Those whose instance is alive and whose SSM agent is Online.
    pub online: HashSet<String>,
    /// The probe of each online instance that was probed and answered.
    pub probes: HashMap<String, Probe>,
    /// The node list, and the manager that read it (the first that could).
    pub listed: Option<(String, SwarmView)>,
}

impl Sighting {
    pub fn alive(&self, id: &str) -> bool {
        self.instances.get(id).is_some_and(|i| i.state.is_alive())
    }
    /// The managers among `candidates` whose probe says they can operate, in their order.
    pub fn live_managers<'a>(&self, candidates: &'a [String]) -> Vec<&'a String> {
        candidates
            .iter()
            .filter(|c| self.probes.get(*c).is_some_and(Probe::is_live_manager))
            .collect()
    }
}

impl<F: Fleet, R: Remote, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// The one observation pass: EC2 describes `ids`; the alive ones are asked whether their
    /// agent is Online (only Online agents are sent a command: on AWS a command to a
    /// disconnected agent waits out its delivery timeout); one command probes the online
    /// ones among `probe` and has the first online of `list_from` (managers, in order) list
    /// the nodes; if it cannot, the next live one of them does. `fence`: see `probe_and_list`.
    pub(crate) async fn observe(
        &self,
        ids: &[String],
        probe: &[String],
        list_from: &[String],
        fence: Option<&str>,
    ) -> PortResult<Sighting> {
        let instances: HashMap<String, Instance> = if ids.is_empty() {
            HashMap::new()
        } else {
            self.fleet
                .describe_instances(ids)
                .await?
                .into_iter()
                .map(|i| (i.id.clone(), i))
                .collect()
        };
        // The leaving instance (`fence`) is asked even while it shuts down after a stop or
        // termination by hand: while its agent answers, it can still leave by itself.
        let alive: Vec<String> = ids
            .iter()
            .filter(|i| {
                instances
                    .get(i.as_str())
                    .is_some_and(|x| x.state.is_alive() || (fence == Some(i.as_str()) && x.state.os_may_run()))
            })
            .cloned()
            .collect();
        let online: HashSet<String> = if alive.is_empty() {
            HashSet::new()
        } else {
            self.remote.online(&alive).await?.into_iter().collect()
        };
        let mut to_probe: Vec<String> = probe.iter().filter(|i| online.contains(*i)).cloned().collect();
        to_probe.sort();
        to_probe.dedup();
        let list_on = list_from.iter().find(|m| to_probe.contains(m));
        let (probes, mut listed) = self
            .probe_and_list(&to_probe, list_on.map(String::as_str), fence)
            .await?;
        let mut sighting = Sighting {
            instances,
            online,
            probes,
            listed: None,
        };
        if listed.is_none() && !list_from.is_empty() {
            for m in sighting.live_managers(list_from) {
                match self.node_list(m).await {
                    Ok(v) => {
                        listed = Some((m.clone(), v));
                        break;
                    }
                    Err(e) => warn!(step = "observe", outcome = "manager-unusable", manager = %m, error = %e),
                }
            }
        }
        sighting.listed = listed;
        Ok(sighting)
    }

    pub(super) async fn observe_join(
        &self,
        id: &str,
        m: &Member,
        groups: Option<Vec<Group>>,
    ) -> PortResult<JoinSnapshot> {
        let groups = match groups {
            Some(g) => g,
            None => self.fleet.groups_tagged(&self.cfg.cluster_tag, &m.cluster).await?,
        };
        let peer_ids = manager_ids(&groups, &self.cfg, id);
        let launching = |p: &str| {
            groups
                .iter()
                .flat_map(|g| &g.instances)
                .any(|i| i.id == p && i.lifecycle_state.is_pending())
        };
        let mut ids = vec![id.to_string()];
        ids.extend(peer_ids.iter().cloned());
        let seen = self.observe(&ids, &ids, &[], None).await?;
        Ok(JoinSnapshot {
            role: m.role,
            instance: seen.instances.get(id).cloned(),
            self_probe: seen.probes.get(id).cloned(),
            peers: peer_ids
                .iter()
                .filter(|p| seen.alive(p))
                .map(|p| Peer {
                    id: p.clone(),
                    ip: seen.instances.get(p.as_str()).and_then(|i| i.private_ip),
                    probe: seen.probes.get(p).cloned(),
                    launching: launching(p),
                })
                .collect(),
            locks: None,
            now_unix: unix_now(),
            lock_lease_secs: self.cfg.init_lock_lease.as_secs(),
        })
    }
}

impl<F, R: Remote, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// Probes instances already known to be online and, in the same command, has `list_on`
    /// list the swarm's nodes when it is a live manager.
    /// `fence`: a leaving instance that first waits for a join in flight and refuses later
    /// ones (`fence.sh`), so that its probe tells the node the retirement must remove.
    pub(crate) async fn probe_and_list(
        &self,
        online: &[String],
        list_on: Option<&str>,
        fence: Option<&str>,
    ) -> PortResult<(HashMap<String, Probe>, Option<(String, SwarmView)>)> {
        if online.is_empty() {
            return Ok((HashMap::new(), None));
        }
        let cmds = script_commands(
            &[
                ("FENCE", fence.unwrap_or("-").to_string()),
                ("LIST_ON", list_on.unwrap_or("-").to_string()),
                ("OFFSET", "0".into()),
                ("LIMIT", NODE_PAGE.to_string()),
            ],
            scripts::PROBE_LIST,
        );
        let results = self
            .remote
            .run(
                online,
                cmds,
                self.cfg.command_timeout.min(Duration::from_secs(30)),
                USUAL_COMMAND,
                "swarm probe",
            )
            .await?;
        let mut listed = None;
        let mut probes = HashMap::new();
        for r in results.into_iter().filter(|r| r.ok()) {
            let Some(p) = Probe::parse(&r.stdout) else { continue };
            if Some(r.instance_id.as_str()) == list_on && p.is_live_manager() {
                if let Some(total) = scripts::listed_total(&r.stdout) {
                    let first = SwarmView::parse(&r.stdout);
                    match self.node_pages(&r.instance_id, first, NODE_PAGE, total).await {
                        Ok(view) => listed = Some((r.instance_id.clone(), view)),
                        Err(e) => {
                            warn!(step = "observe", outcome = "manager-unusable", manager = %r.instance_id, error = %e)
                        }
                    }
                }
            }
            probes.insert(r.instance_id, p);
        }
        Ok((probes, listed))
    }
}

impl<F: Fleet, R: Remote, D: Dns, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// The snapshot for the planner, and the live managers that can operate, the chosen
    /// one first (the others take over if it becomes unreachable).
    /// `fence`: the instance is leaving; a join in flight on it ends before it is probed, and
    /// no later join is accepted.
    pub(super) async fn observe_retire(
        &self,
        id: &str,
        m: &Member,
        fence: bool,
    ) -> PortResult<(RetireSnapshot, Operators)> {
        let peer_ids = manager_ids(&m.groups, &self.cfg, id);
        let mut ids = vec![id.to_string()];
        ids.extend(peer_ids.iter().cloned());
        // One command probes every online instance; the first online manager also lists the nodes.
        let seen = self.observe(&ids, &ids, &peer_ids, fence.then_some(id)).await?;
        let live = seen.live_managers(&peer_ids);
        let Sighting {
            mut instances,
            online,
            probes,
            listed,
        } = seen;
        let me = instances.remove(id);
        let (operator, mut view) = match listed {
            Some((on, v)) => (Some(on), v),
            None => (None, SwarmView::default()),
        };
        let ip = me.as_ref().and_then(|i| i.private_ip);
        let mut node = view.node_of(id, ip).cloned();
        // The list ran while the instance waited for a join in flight: a node that join just
        // made is not in it. Read the list again.
        let joined_meanwhile = probes.get(id).and_then(|p| p.node_id.clone());
        if let (None, Some(node_id), Some(op)) = (&node, &joined_meanwhile, &operator) {
            info!(step = "observe", outcome = "joined-meanwhile", node_id = %node_id, "a join in flight ended before the retirement");
            match self.node_list(op).await {
                Ok(v) => {
                    view = v;
                    node = view
                        .node_of(id, ip)
                        .or_else(|| view.nodes.iter().find(|n| n.id == *node_id))
                        .cloned();
                }
                Err(e) => warn!(step = "observe", outcome = "manager-unusable", manager = %op, error = %e),
            }
        }
        let other_managers_up = view
            .managers()
            .filter(|n| matches!(n.status, NodeStatus::Ready | NodeStatus::Unknown))
            .filter(|n| Some(&n.id) != node.as_ref().map(|x| &x.id))
            .count();
        let records = self.own_records(id, m, ip).await?;
        let mut operators: Vec<String> = operator.iter().cloned().collect();
        operators.extend(live.into_iter().filter(|c| Some(*c) != operator.as_ref()).cloned());
        // A manager being retired itself operates last: it may be demoted or go meanwhile.
        operators.sort_by_key(|o| probes.get(o).is_some_and(|p| p.retiring));
        let service_records = self.leaving_service_records(m, id).await;
        let snap = RetireSnapshot {
            instance_id: id.to_string(),
            role: m.role,
            has_dns: m.dns_name.is_some(),
            instance: me,
            records,
            self_is_last_manager: operator.is_none() && probes.get(id).is_some_and(Probe::is_live_manager),
            operator,
            node,
            other_managers_up,
            self_online: online.contains(id),
            service_records,
        };
        Ok((snap, Operators::new(operators)))
    }
}

impl<F, R, D: Dns, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// A leaving manager's own records in the manager record set (none for a worker).
    async fn own_records(&self, id: &str, m: &Member, ip: Option<Ipv4Addr>) -> PortResult<Vec<ManagerRecord>> {
        Ok(match (&m.dns_name, m.role, ip) {
            // The record as this function writes it: deleting it needs no read first
            // (remove_record reads the name when it is not there).
            (Some(_), Role::Manager, Some(ip)) => vec![ManagerRecord {
                set_identifier: id.to_string(),
                ip,
                ttl: self.cfg.dns_ttl.as_secs(),
            }],
            (Some(name), Role::Manager, None) => self
                .dns
                .manager_records(&self.cfg.hosted_zone_id, name)
                .await?
                .into_iter()
                .filter(|r| r.set_identifier == id)
                .collect(),
            _ => vec![],
        })
    }
}

impl<F, R: Remote, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// The swarm's nodes as `on` sees them, a page at a time: SSM keeps 24,000 characters
    /// of output, about 150 nodes.
    pub(crate) async fn node_list(&self, on: &str) -> Result<SwarmView, String> {
        self.node_pages(on, SwarmView::default(), 0, usize::MAX).await
    }

    /// Reads the pages of the node list from `offset` on, after `view` (pages read already).
    async fn node_pages(
        &self,
        on: &str,
        mut view: SwarmView,
        mut offset: usize,
        mut total: usize,
    ) -> Result<SwarmView, String> {
        while offset < total {
            let cmds = script_commands(
                &[("OFFSET", offset.to_string()), ("LIMIT", NODE_PAGE.to_string())],
                scripts::NODE_LIST,
            );
            let r = self.run_one(on, cmds, "list nodes").await.map_err(|r| r.to_string())?;
            total = scripts::listed_total(&r.stdout).unwrap_or(0);
            view.nodes.extend(SwarmView::parse(&r.stdout).nodes);
            offset += NODE_PAGE;
        }
        Ok(view)
    }
}

/// Nodes a page of the node list: SSM keeps 24,000 characters of output; a line is at most
/// ~300 (a long hostname and group label).
const NODE_PAGE: usize = 80;
