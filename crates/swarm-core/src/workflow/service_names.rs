//! Service names in Route 53: the reconcile's step that keeps each labelled service's names
//! at its nodes, and a joined node taken into them at once (`plan::service_dns` decides).
//! Only with SERVICE_RECORD_SUFFIX set. (A leaving node's values: `dns.rs`, DNS first.)

use super::*;
use crate::model::Availability;
use crate::plan::reconcile::ClusterSnapshot;
use crate::plan::service_dns::{self as names, NodeView, ServiceDnsInput};

impl<F: Fleet, R: Remote, D: Dns, P: Parameters, A: Announce> Lifecycle<F, R, D, P, A> {
    /// Reads the labelled services on `operator` and the zone under the suffix, plans, and
    /// writes what differs (nothing when nothing does). A refused name is logged with its
    /// reason; a failure is reported in the run, never fatal to it.
    pub(super) async fn sync_service_names(&self, snap: &ClusterSnapshot, operator: &str, report: &mut ClusterReport) {
        let (Some(suffix), Some(view)) = (&self.cfg.service_record_suffix, &snap.swarm) else {
            return;
        };
        let zone_id = &self.cfg.hosted_zone_id;
        let services = match self
            .run_one(operator, script_commands(&[], scripts::SERVICES), "service names")
            .await
        {
            Ok(r) => names::parse_services(&r.stdout, view),
            Err(e) => {
                warn!(step = "service-names", outcome = "failed", error = %e);
                report.failed.push(format!("service names: {e}"));
                return;
            }
        };
        let zone = match self.dns.records_under(zone_id, suffix).await {
            Ok(z) => z,
            Err(e) => {
                warn!(step = "service-names", outcome = "failed", error = %e);
                report.failed.push(format!("service names: {e}"));
                return;
            }
        };
        let nodes = node_views(snap);
        let plan = names::plan_service_dns(&ServiceDnsInput {
            cluster: &snap.cluster,
            suffix,
            manager_record: snap.dns_name.as_deref(),
            ttl: self.cfg.dns_ttl.as_secs(),
            services: &services,
            nodes: &nodes,
            zone: &zone,
        });
        for r in &plan.refused {
            warn!(step = "service-name", outcome = "refused", service = %r.service, name = %r.name, reason = %r.reason);
        }
        if !plan.refused.is_empty() {
            metric(
                &snap.cluster,
                "cluster",
                "ServiceNamesRefused",
                plan.refused.len() as f64,
                "Count",
            );
        }
        for batch in names::batches(plan.changes) {
            match self.dns.change_entries(zone_id, &batch).await {
                Ok(_) => metric(&snap.cluster, "cluster", "DnsChanges", 1.0, "Count"),
                Err(e) => {
                    warn!(step = "service-names", outcome = "failed", changes = batch.len(), error = %e);
                    report.failed.push(format!("service names: {e}"));
                }
            }
        }
        for n in &plan.names {
            info!(step = "service-name", outcome = "kept", name = %n.name, service = %n.service, values = ?n.values);
        }
    }
}

impl<F: Fleet, R: Remote, D: Dns, P: Parameters, A: Announce> Lifecycle<F, R, D, P, A> {
    /// A node that joined enters the names it is eligible for now, not at the next reconcile:
    /// the names are planned again with the swarm as a manager lists it. Costs one listing of
    /// the names when the cluster owns none; a failure is logged (the reconcile repairs).
    pub(super) async fn names_after_join(&self, m: &Member, id: &str) {
        let Some(suffix) = &self.cfg.service_record_suffix else {
            return;
        };
        let zone_id = &self.cfg.hosted_zone_id;
        let zone = match self.dns.records_under(zone_id, suffix).await {
            Ok(z) if names::owns_any(&z, &m.cluster) => z,
            Ok(_) => return,
            Err(e) => return warn!(step = "service-names", outcome = "failed", error = %e),
        };
        let Some(via) = manager_ids(&m.groups, &self.cfg, id).into_iter().next() else {
            return;
        };
        let cmds = script_commands(&[], scripts::SERVICES);
        let (services, view) = match (
            self.run_one(&via, cmds, "service names").await,
            self.node_list(&via).await,
        ) {
            (Ok(r), Ok(view)) => (names::parse_services(&r.stdout, &view), view),
            (Err(e), _) => return warn!(step = "service-names", outcome = "failed", error = %e),
            (_, Err(e)) => return warn!(step = "service-names", outcome = "failed", error = %e),
        };
        let nodes = names::node_views_of(&view, &m.groups);
        let plan = names::plan_service_dns(&ServiceDnsInput {
            cluster: &m.cluster,
            suffix,
            manager_record: m.dns_name.as_deref(),
            ttl: self.cfg.dns_ttl.as_secs(),
            services: &services,
            nodes: &nodes,
            zone: &zone,
        });
        for batch in names::batches(plan.changes) {
            match self.dns.change_entries(zone_id, &batch).await {
                Ok(_) => info!(step = "service-names", outcome = "joined", changes = batch.len()),
                Err(e) => warn!(step = "service-names", outcome = "failed", error = %e),
            }
        }
    }
}

/// Each instance of the groups with its node, as the service-name planner sees it.
fn node_views(snap: &ClusterSnapshot) -> Vec<NodeView> {
    let Some(view) = &snap.swarm else { return vec![] };
    snap.members
        .iter()
        .filter_map(|m| {
            let ip = m.ip?;
            let node = view.node_of(&m.id, Some(ip));
            Some(NodeView {
                instance_id: m.id.clone(),
                ip,
                role: m.role,
                ready: node.is_some_and(|n| n.status == NodeStatus::Ready),
                active: node.is_some_and(|n| n.availability == Availability::Active),
                leaving: !m.alive || m.lifecycle_state.is_leaving(),
            })
        })
        .collect()
}
