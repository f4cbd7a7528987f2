//! What the reconcile sees of the cluster, changing nothing: the snapshot of its groups,
//! instances, agents, nodes and records, and the repairs planned in the order a run makes
//! them (the operator's `status`, `plan` and `retire` read it too).

use tracing::{info, warn};

use crate::config::{membership, Membership};
use crate::model::Role;
use crate::plan::reconcile::*;
use crate::ports::{Dns, Fleet, PortError, PortResult, Remote};
use crate::Lifecycle;

/// What the reconcile sees of a cluster and would repair (see [`Lifecycle::survey`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Survey {
    pub snapshot: ClusterSnapshot,
    /// In the order the reconcile runs them.
    pub repairs: Vec<Repair>,
    pub health: Health,
    /// The live manager that listed the nodes.
    pub(super) operator: Option<String>,
}

impl Survey {
    /// The operator's table of it.
    pub fn status(&self) -> crate::plan::status::ClusterStatus {
        crate::plan::status::cluster_status(&self.snapshot, &self.repairs, self.health)
    }
}

/// The order repairs run in: the cheap and safe first (the record, actions left waiting,
/// Down nodes), joins (each may take the agent wait plus the join budget) last.
pub(super) fn phase(r: &Repair) -> u8 {
    match r {
        Repair::DnsDelete { .. } | Repair::DnsUpsert { .. } => 0,
        Repair::CompleteLaunch { .. } | Repair::CompleteTermination { .. } | Repair::Label { .. } => 1,
        Repair::RemoveNode { .. } | Repair::Retire { .. } => 2,
        Repair::Join { .. } => 3,
    }
}

impl<F: Fleet, R: Remote, D: Dns, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// What the reconcile sees of this deployment's cluster and what it would repair, changing
    /// nothing (what the operator's `status` and `plan` print).
    pub async fn survey(&self) -> PortResult<Survey> {
        let cluster = self.cfg.cluster_name.as_str();
        let groups = self.fleet.groups_tagged(&self.cfg.cluster_tag, cluster).await?;
        if groups.is_empty() {
            return Err(PortError::aws(
                "survey",
                format!("no Auto Scaling group is tagged {}={cluster}", self.cfg.cluster_tag),
            ));
        }
        self.survey_groups(cluster, &groups).await
    }

    /// The operator's retire: `id` terminated through its group, so the terminate hook takes
    /// its node out (record first, drain, demote, leave, remove) before the instance goes.
    /// Ok(Err(why)) when it may not go now ([`crate::plan::status::may_retire`]); Ok(Ok(group)).
    pub async fn retire_through_group(
        &self,
        id: &str,
        decrement: bool,
        force: bool,
    ) -> PortResult<Result<String, String>> {
        let survey = self.survey().await?;
        if let Err(why) = crate::plan::status::may_retire(&survey.snapshot, survey.health, id, force) {
            return Ok(Err(why));
        }
        self.fleet.terminate_in_group(id, decrement).await?;
        let group = survey
            .snapshot
            .members
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.group.clone())
            .unwrap_or_default();
        info!(step = "retire", outcome = "requested", instance_id = %id, %group, decrement, "terminating through its group");
        Ok(Ok(group))
    }

    pub(super) async fn survey_groups(&self, cluster: &str, groups: &[crate::model::Group]) -> PortResult<Survey> {
        let (snapshot, operator) = self.observe_cluster(cluster, groups).await?;
        let mut repairs = plan_reconcile(&snapshot, self.cfg.dns_ttl.as_secs());
        repairs.sort_by_key(phase);
        let health = health(&snapshot, &repairs);
        Ok(Survey {
            snapshot,
            repairs,
            health,
            operator,
        })
    }

    /// The snapshot of one cluster and the live manager that listed its nodes.
    async fn observe_cluster(
        &self,
        cluster: &str,
        groups: &[crate::model::Group],
    ) -> PortResult<(ClusterSnapshot, Option<String>)> {
        let (mut members, dns_name) = members_of(groups, &self.cfg, cluster);
        let ids: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
        // The managers are probed in one command; the lowest online one also lists the nodes,
        // and when it cannot, the next live one does.
        let mut managers: Vec<String> = members
            .iter()
            .filter(|m| m.role == Role::Manager)
            .map(|m| m.id.clone())
            .collect();
        managers.sort();
        let seen = self.observe(&ids, &managers, &managers, None).await?;
        let scheduled: std::collections::HashMap<String, u64> =
            self.fleet.scheduled_changes().await?.into_iter().collect();
        for m in members.iter_mut() {
            if let Some(i) = seen.instances.get(&m.id) {
                m.alive = i.state.is_alive();
                m.ip = i.private_ip;
                m.launched_unix = i.launched_unix;
                let group = groups.iter().find(|g| g.name == m.group);
                m.labels = match group.map(|g| crate::plan::labels::node_labels(i, g)) {
                    Some(Ok(l)) => Some(l),
                    Some(Err(reason)) => {
                        warn!(step = "labels", outcome = "malformed", group = %m.group, %reason);
                        None
                    }
                    None => None,
                };
            }
            m.online = seen.online.contains(&m.id);
            m.scheduled_unix = scheduled.get(&m.id).copied();
        }
        let swarm = seen.listed;
        let records = match &dns_name {
            Some(name) => self.dns.manager_records(&self.cfg.hosted_zone_id, name).await?,
            None => vec![],
        };
        let service_zone = match &self.cfg.service_record_suffix {
            Some(suffix) => Some(
                self.dns
                    .records_under(&self.cfg.hosted_zone_id, suffix)
                    .await
                    .map_err(|e| e.to_string()),
            ),
            None => None,
        };
        let operator = swarm.as_ref().map(|(m, _)| m.clone());
        let snap = ClusterSnapshot {
            cluster: cluster.to_string(),
            dns_name,
            members,
            swarm: swarm.map(|(_, v)| v),
            records,
            now_unix: crate::workflow::unix_now(),
            grace_secs: self.cfg.reconcile_grace.as_secs(),
            scheduled_lead_secs: self.cfg.scheduled_lead.as_secs(),
            service_zone,
        };
        Ok((snap, operator))
    }
}

/// The instances of `cluster`'s groups, not yet observed, and the manager record's name.
fn members_of(
    groups: &[crate::model::Group],
    cfg: &crate::Config,
    cluster: &str,
) -> (Vec<MemberInstance>, Option<String>) {
    let mut members = Vec::new();
    let mut dns_name = None;
    for g in groups {
        if let Membership::Member {
            cluster: c,
            role,
            dns_name: d,
        } = membership(g, cfg)
        {
            if c != cluster {
                continue;
            }
            if d.is_some() && role == Role::Manager {
                dns_name = d;
            }
            for i in &g.instances {
                members.push(MemberInstance {
                    id: i.id.clone(),
                    group: g.name.clone(),
                    role,
                    lifecycle_state: i.lifecycle_state.clone(),
                    alive: false,
                    ip: None,
                    launched_unix: None,
                    online: false,
                    scheduled_unix: None,
                    labels: None,
                });
            }
        }
    }
    (members, dns_name)
}
