//! Service names in Route 53: the reconcile's step that keeps each labelled service's names
//! at its nodes, and a joined node taken into them at once (`plan::service_dns` decides).
//! Only with SERVICE_RECORD_SUFFIX set. (A leaving node's values: `dns.rs`, DNS first.)

use super::*;
use crate::announce::ActionEvent;
use crate::plan::reconcile::ClusterSnapshot;
use crate::plan::service_dns::{
    self as names, NodeView, Refusal, ServiceDnsInput, ServiceDnsPlan, ServiceView, ZoneChange, ZoneEntry,
};
use crate::workflow::reconcile::NamesReport;

impl<F, R: Remote, D: Dns, P: Parameters, A: Announce, Q> Lifecycle<F, R, D, P, A, Q> {
    /// Reads the labelled services on `operator`, plans them against the zone read with the
    /// snapshot, and writes what differs (nothing when nothing does; `dry_run`: nothing at
    /// all). A refused name is logged every run and told once; a failure is reported in the
    /// run, never fatal to it.
    pub(super) async fn sync_service_names(
        &self,
        snap: &ClusterSnapshot,
        operator: &str,
        dry_run: bool,
        report: &mut ClusterReport,
    ) {
        let (Some(zone), Some(view)) = (&snap.service_zone, &snap.swarm) else {
            return;
        };
        let read = async {
            let zone = zone.as_ref().map_err(|e| format!("listing the names: {e}"))?;
            let r = self
                .run_one(operator, script_commands(&[], scripts::SERVICES), "service names")
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((names::parse_services(&r.stdout, view), zone))
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
        let mut plan = self.plan_names(&snap.cluster, snap.dns_name.as_deref(), &services, &nodes, zone);
        let changes = if dry_run {
            for c in &plan.changes {
                info!(step = "service-names", outcome = "dry-run", change = ?c, "would change");
            }
            plan.changes.len()
        } else {
            let (changed, failed) = self.write_names(&snap.cluster, std::mem::take(&mut plan.changes)).await;
            report.failed.extend(failed);
            changed
        };
        for r in &plan.refused {
            warn!(step = "service-name", outcome = "refused", service = %r.service, name = %r.name, reason = %r.reason);
        }
        if !plan.refused.is_empty() {
            let refused = plan.refused.len() as f64;
            metric(&snap.cluster, "cluster", "ServiceNamesRefused", refused, "Count");
        }
        // Told only where there is a bus to tell on (the operator's command has none unless
        // ACTION_EVENT_BUS is set): a refusal marked told must have been told.
        if !dry_run && self.cfg.event_bus.is_some() {
            self.tell_refusals(&snap.cluster, &plan.refused).await;
        }
        for n in &plan.names {
            info!(step = "service-name", outcome = "kept", name = %n.name, service = %n.service, values = ?n.values);
        }
        report.service_names = Some(NamesReport {
            changes,
            refused: plan.refused,
            names: plan.names,
        });
    }
}

impl<F, R, D, P: Parameters, A: Announce, Q> Lifecycle<F, R, D, P, A, Q> {
    /// Tells each refusal once, as an action event: a parameter under `told-names` per
    /// refusal marks it told (created conditionally, so two runs at once tell it once);
    /// those of refusals that ended are deleted, so a refusal that comes back is told again.
    /// One listing a run; a failure is logged and the refusals are told at a later run.
    async fn tell_refusals(&self, cluster: &str, refused: &[Refusal]) {
        let path = self.cfg.told_names_path(cluster);
        let told = match self.params.list(&path).await {
            Ok(told) => told,
            Err(e) => return warn!(step = "service-name", outcome = "failed", error = %e, "refusals not told this run"),
        };
        let keyed: Vec<(String, &Refusal)> = refused.iter().map(|r| (format!("{path}/{}", r.key()), r)).collect();
        for (key, r) in keyed.iter().filter(|(k, _)| !told.iter().any(|(n, _)| n == k)) {
            let what: String = format!("{} {}", r.service, r.name).chars().take(1000).collect();
            match self.params.create(key, &what).await {
                Ok(true) => {
                    let event = ActionEvent::service_name_refused(cluster, &r.service, &r.name, &r.reason);
                    self.announce(event).await;
                }
                Ok(false) => {}
                Err(e) => warn!(step = "service-name", outcome = "failed", error = %e, "refusal not told this run"),
            }
        }
        let ended: Vec<String> = told
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| !keyed.iter().any(|(k, _)| k == n))
            .collect();
        if !ended.is_empty() {
            if let Err(e) = self.params.delete(&ended).await {
                warn!(step = "service-name", outcome = "failed", error = %e, "ended refusals not forgotten");
            }
        }
    }
}

impl<F, R: Remote, D: Dns, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
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
        let plan = self.plan_names(&m.cluster, m.dns_name.as_deref(), &services, &nodes, &zone);
        self.write_names(&m.cluster, plan.changes).await;
    }
}

impl<F, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    fn plan_names(
        &self,
        cluster: &str,
        manager_record: Option<&str>,
        services: &[ServiceView],
        nodes: &[NodeView],
        zone: &[ZoneEntry],
    ) -> ServiceDnsPlan {
        names::plan_service_dns(&ServiceDnsInput {
            cluster,
            suffix: self.cfg.service_record_suffix.as_deref().unwrap_or_default(),
            manager_record,
            ttl: self.cfg.dns_ttl.as_secs(),
            services,
            nodes,
            zone,
        })
    }
}

impl<F, R, D: Dns, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// Writes the planned changes, within Route 53's request limits: the record sets changed
    /// and what failed (each failed batch logged).
    async fn write_names(&self, cluster: &str, changes: Vec<ZoneChange>) -> (usize, Vec<String>) {
        let (mut changed, mut failed) = (0, vec![]);
        for batch in names::batches(changes) {
            match self.dns.change_entries(&self.cfg.hosted_zone_id, &batch).await {
                Ok(_) => {
                    info!(step = "service-names", outcome = "changed", changes = batch.len());
                    metric(cluster, "cluster", "DnsChanges", 1.0, "Count");
                    changed += batch.len();
                }
                Err(e) => {
                    warn!(step = "service-names", outcome = "failed", changes = batch.len(), error = %e);
                    failed.push(format!("service names: {e}"));
                }
            }
        }
        (changed, failed)
    }
}
