//! Service names in Route 53: the reconcile's step that keeps each labelled service's names
//! at its nodes, and a joined node taken into them at once (`plan::service_dns` decides).
//! Only with SERVICE_RECORD_SUFFIX set. (A leaving node's values: `dns.rs`, DNS first.)

use super::*;
use crate::plan::reconcile::ClusterSnapshot;
use crate::plan::service_dns::{self as names, NodeView, ServiceDnsInput, ServiceDnsPlan, ServiceView, ZoneEntry};

impl<F: Fleet, R: Remote, D: Dns, P: Parameters, A: Announce> Lifecycle<F, R, D, P, A> {
    /// Reads the labelled services on `operator` and the zone under the suffix, plans, and
    /// writes what differs (nothing when nothing does). A refused name is logged with its
    /// reason; a failure is reported in the run, never fatal to it.
    pub(super) async fn sync_service_names(&self, snap: &ClusterSnapshot, operator: &str, report: &mut ClusterReport) {
        let (Some(suffix), Some(view)) = (&self.cfg.service_record_suffix, &snap.swarm) else {
            return;
        };
        let read = async {
            let r = self
                .run_one(operator, script_commands(&[], scripts::SERVICES), "service names")
                .await
                .map_err(|e| e.to_string())?;
            let zone = self.dns.records_under(&self.cfg.hosted_zone_id, suffix).await;
            Ok::<_, String>((names::parse_services(&r.stdout, view), zone.map_err(|e| e.to_string())?))
        };
        let (services, zone) = match read.await {
            Ok(read) => read,
            Err(e) => {
                warn!(step = "service-names", outcome = "failed", error = %e);
                return report.failed.push(format!("service names: {e}"));
            }
        };
        let leaving = |id: &str| {
            snap.members
                .iter()
                .find(|m| m.id == id)
                .is_none_or(|m| !m.alive || m.lifecycle_state.is_leaving())
        };
        let nodes = names::node_views_of(view, leaving);
        let (plan, failed) = self
            .write_names(&snap.cluster, snap.dns_name.as_deref(), &services, &nodes, &zone)
            .await;
        report.failed.extend(failed);
        for r in &plan.refused {
            warn!(step = "service-name", outcome = "refused", service = %r.service, name = %r.name, reason = %r.reason);
        }
        if !plan.refused.is_empty() {
            let refused = plan.refused.len() as f64;
            metric(&snap.cluster, "cluster", "ServiceNamesRefused", refused, "Count");
        }
        for n in &plan.names {
            info!(step = "service-name", outcome = "kept", name = %n.name, service = %n.service, values = ?n.values);
        }
    }

    /// A node that joined enters the names it is eligible for now, not at the next reconcile:
    /// the names are planned again with the swarm as a manager lists it. Costs one listing of
    /// the names when the cluster owns none; a failure is logged (the reconcile repairs).
    pub(super) async fn names_after_join(&self, m: &Member, id: &str) {
        let Some(suffix) = &self.cfg.service_record_suffix else {
            return;
        };
        let zone = match self.dns.records_under(&self.cfg.hosted_zone_id, suffix).await {
            Ok(z) if names::owns_any(&z, &m.cluster) => z,
            Ok(_) => return,
            Err(e) => return warn!(step = "service-names", outcome = "failed", error = %e),
        };
        let Some(via) = manager_ids(&m.groups, &self.cfg, id).into_iter().next() else {
            return;
        };
        let cmds = script_commands(&[], scripts::SERVICES);
        let (services, view) = match (
            self.run_one(&via, cmds, "service names")
                .await
                .map_err(|e| e.to_string()),
            self.node_list(&via).await,
        ) {
            (Ok(r), Ok(view)) => (names::parse_services(&r.stdout, &view), view),
            (Err(e), _) | (_, Err(e)) => return warn!(step = "service-names", outcome = "failed", error = %e),
        };
        let leaving = |id: &str| {
            let instance = m.groups.iter().flat_map(|g| &g.instances).find(|i| i.id == id);
            instance.is_none_or(|i| i.is_leaving())
        };
        let nodes = names::node_views_of(&view, leaving);
        self.write_names(&m.cluster, m.dns_name.as_deref(), &services, &nodes, &zone)
            .await;
    }

    /// Plans the names and writes the changes, within Route 53's request limits: the plan
    /// (its refusals and names) and what failed (each failed batch logged).
    async fn write_names(
        &self,
        cluster: &str,
        manager_record: Option<&str>,
        services: &[ServiceView],
        nodes: &[NodeView],
        zone: &[ZoneEntry],
    ) -> (ServiceDnsPlan, Vec<String>) {
        let suffix = self.cfg.service_record_suffix.as_deref().unwrap_or_default();
        let mut plan = names::plan_service_dns(&ServiceDnsInput {
            cluster,
            suffix,
            manager_record,
            ttl: self.cfg.dns_ttl.as_secs(),
            services,
            nodes,
            zone,
        });
        let mut failed = vec![];
        for batch in names::batches(std::mem::take(&mut plan.changes)) {
            match self.dns.change_entries(&self.cfg.hosted_zone_id, &batch).await {
                Ok(_) => {
                    info!(step = "service-names", outcome = "changed", changes = batch.len());
                    metric(cluster, "cluster", "DnsChanges", 1.0, "Count");
                }
                Err(e) => {
                    warn!(step = "service-names", outcome = "failed", changes = batch.len(), error = %e);
                    failed.push(format!("service names: {e}"));
                }
            }
        }
        (plan, failed)
    }
}
