//! The scheduled reconcile: observe every cluster, plan the repairs (plan/reconcile.rs) and
//! run them, cheap and safe first, inside the Lambda's deadline. Events get lost; this makes
//! the cluster converge anyway.

use std::time::Duration;

use tokio::time::Instant;

use serde::Serialize;
use tracing::{error, info, info_span, warn, Instrument};

use super::repair::record_change;
use super::survey::Survey;
use crate::announce;
use crate::config::{membership, Membership};
use crate::plan::reconcile::*;
use crate::ports::{Announce, Checks, Dns, Fleet, Parameters, PortError, PortResult, RecordChange, Remote};
use crate::telemetry::{cluster_metrics, metric};
use crate::Lifecycle;

/// What one reconcile run did for one cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterReport {
    pub cluster: String,
    pub dry_run: bool,
    pub swarm_reachable: bool,
    pub members: usize,
    pub nodes: usize,
    pub repairs: Vec<Repair>,
    pub health: Health,
    pub failed: Vec<String>,
    /// Repairs left to the next run: they could not finish before this run's deadline.
    pub deferred: Vec<String>,
    /// The service names (with SERVICE_RECORD_SUFFIX): None when not synced this run.
    pub service_names: Option<NamesReport>,
}

/// What a run did (or, dry, would do) to the service names.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct NamesReport {
    /// Record sets changed (or to change).
    pub changes: usize,
    pub refused: Vec<crate::plan::service_dns::Refusal>,
    pub names: Vec<crate::plan::service_dns::NamePlan>,
}

/// Which of the planned repairs a run makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Everything,
    /// Only the removal of Down nodes whose instance is gone (the seeds' swarm-tidy).
    GoneNodes,
    /// Only the service names (the operator's `dns sync`).
    ServiceNames,
}

impl Scope {
    fn includes(self, snap: &ClusterSnapshot, r: &Repair) -> bool {
        match (self, r) {
            (Scope::Everything, _) => true,
            (Scope::GoneNodes, Repair::RemoveNode { node_id, .. }) => snap.node_of_gone_instance(node_id),
            (Scope::GoneNodes | Scope::ServiceNames, _) => false,
        }
    }

    fn names(self) -> bool {
        matches!(self, Scope::Everything | Scope::ServiceNames)
    }
}

/// At most this many joins per run: each takes a few seconds; the next run does the rest.
const MAX_JOINS_PER_RUN: usize = 10;

impl<F: Fleet, R: Remote, D: Dns, P: Parameters, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// Reconciles this deployment's cluster (`only`, when given, must name it: another
    /// cluster is left to its own deployment).
    /// `dry_run` (or DRY_RUN) reports the difference without changing anything.
    /// Every run ends before `deadline` (the Lambda's): work that cannot finish by then is
    /// left to the next run. A cluster that could not be reconciled fails the run, so the
    /// function's error alarm fires.
    pub async fn reconcile_all(
        &self,
        only: Option<&str>,
        dry_run: bool,
        deadline: Option<Instant>,
    ) -> Result<Vec<ClusterReport>, PortError> {
        self.reconcile_scoped(only, Scope::Everything, dry_run, deadline).await
    }

    /// The reconcile limited to `scope`: `Scope::GoneNodes` is the operator's tidy.
    pub async fn reconcile_scoped(
        &self,
        only: Option<&str>,
        scope: Scope,
        dry_run: bool,
        deadline: Option<Instant>,
    ) -> Result<Vec<ClusterReport>, PortError> {
        let cluster = self.cfg.cluster_name.as_str();
        if let Some(other) = only.filter(|o| *o != cluster) {
            info!(step = "reconcile", outcome = "other-cluster", cluster = %other, "not this deployment's cluster: left alone");
            return Ok(vec![]);
        }
        let groups = self.fleet.groups_tagged(&self.cfg.cluster_tag, cluster).await?;
        for g in &groups {
            if let Membership::Misconfigured(reason) = membership(g, &self.cfg) {
                warn!(step = "reconcile", outcome = "misconfigured", group = %g.name, %reason);
            }
        }
        let span = info_span!("reconcile", cluster = %cluster);
        match self
            .reconcile_cluster(cluster, &groups, scope, dry_run || self.cfg.dry_run, deadline)
            .instrument(span)
            .await
        {
            Ok(r) => Ok(vec![r]),
            Err(e) => {
                error!(step = "reconcile", outcome = "failed", %cluster, error = %e);
                Err(PortError::aws("reconcile", format!("{cluster}: {e}")))
            }
        }
    }

    async fn reconcile_cluster(
        &self,
        cluster: &str,
        groups: &[crate::model::Group],
        scope: Scope,
        dry_run: bool,
        deadline: Option<Instant>,
    ) -> PortResult<ClusterReport> {
        let began = Instant::now();
        let Survey {
            snapshot: snap,
            repairs,
            health,
            operator,
        } = self.survey_groups(cluster, groups).await?;
        let repairs: Vec<Repair> = repairs.into_iter().filter(|r| scope.includes(&snap, r)).collect();
        cluster_metrics(
            cluster,
            &[
                ("ReadyManagers", health.ready_managers as f64, "Count"),
                ("ReadyWorkers", health.ready_workers as f64, "Count"),
                ("DownNodes", health.down_nodes as f64, "Count"),
                ("QuorumMargin", health.quorum_margin as f64, "Count"),
                ("DriftItems", health.drift_items as f64, "Count"),
            ],
        );
        let mut report = ClusterReport {
            cluster: cluster.to_string(),
            dry_run,
            swarm_reachable: snap.swarm.is_some(),
            members: snap.members.len(),
            nodes: snap.swarm.as_ref().map_or(0, |v| v.nodes.len()),
            repairs: repairs.clone(),
            health,
            failed: vec![],
            deferred: vec![],
            service_names: None,
        };
        info!(
            step = "plan",
            outcome = "planned",
            repairs = repairs.len(),
            members = report.members,
            nodes = report.nodes
        );
        // Service names (with SERVICE_RECORD_SUFFIX): one command a run, the zone read with
        // the snapshot.
        if let Some(op) = operator.as_deref().filter(|_| scope.names()) {
            let room = self.cfg.command_timeout + Duration::from_secs(20);
            if deadline.is_none_or(|d| Instant::now() + room <= d) {
                self.sync_service_names(&snap, op, dry_run, &mut report).await;
            }
        }
        if dry_run {
            return Ok(report);
        }
        if repairs.is_empty() {
            self.announce_run(&report, began).await;
            return Ok(report);
        }
        self.apply_repairs(
            cluster,
            &snap,
            &repairs,
            &operator.unwrap_or_default(),
            deadline,
            &mut report,
        )
        .await;
        info!(
            step = "reconcile",
            outcome = "done",
            repairs = report.repairs.len(),
            failed = report.failed.len(),
            deferred = report.deferred.len()
        );
        self.announce_run(&report, began).await;
        Ok(report)
    }

    /// The repairs in their order, each while the run has time for its worst case: record
    /// changes batched and sent before any slow repair, joins at most MAX_JOINS_PER_RUN.
    async fn apply_repairs(
        &self,
        cluster: &str,
        snap: &ClusterSnapshot,
        repairs: &[Repair],
        operator: &str,
        deadline: Option<Instant>,
        report: &mut ClusterReport,
    ) {
        let mut joins = 0;
        let mut dns_changes = Vec::new();
        for r in repairs {
            if deadline.is_some_and(|d| Instant::now() + self.worst_case(r) > d) {
                info!(step = "repair", outcome = "deferred", repair = %r, "no time left in this run");
                report.deferred.push(r.to_string());
                continue;
            }
            if let Some(change) = record_change(r, snap, self.cfg.dns_ttl) {
                dns_changes.push(change);
                continue;
            }
            // Record changes first, before any slow repair.
            self.apply_dns(cluster, snap, &mut dns_changes, report).await;
            if let Repair::Join { instance_id, .. } = r {
                joins += 1;
                if joins > MAX_JOINS_PER_RUN {
                    info!(step = "join", outcome = "deferred", instance_id = %instance_id);
                    continue;
                }
            }
            if let Err(e) = self.repair(r, snap, operator, deadline).await {
                warn!(step = "repair", outcome = "failed", repair = %r, error = %e);
                report.failed.push(format!("{r}: {e}"));
            }
        }
        self.apply_dns(cluster, snap, &mut dns_changes, report).await;
        self.apply_dns(cluster, snap, &mut dns_changes, report).await;
    }
}

impl<F, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// What the slowest repair of `r`'s kind may take: one Route 53 call, a command, a whole
    /// join, a retirement with its drain.
    fn worst_case(&self, r: &Repair) -> Duration {
        let command = self.cfg.command_timeout + Duration::from_secs(10);
        match r {
            Repair::DnsDelete { .. } | Repair::DnsUpsert { .. } => Duration::from_secs(10),
            Repair::Join { .. } => self.cfg.agent_wait + self.cfg.join_budget + Duration::from_secs(10),
            Repair::Retire { .. } => self.cfg.drain_timeout + command * 3,
            _ => command,
        }
    }
}

impl<F, R, D, P, A: Announce, Q> Lifecycle<F, R, D, P, A, Q> {
    /// What a run tells people: repairs it left to the next run, a quorum at risk.
    async fn announce_run(&self, report: &ClusterReport, began: Instant) {
        for e in announce::of_reconcile(&report.cluster, &report.health, &report.deferred, began.elapsed()) {
            self.announce(e).await;
        }
    }
}

impl<F, R, D: Dns, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// Submits the record changes gathered so far (first of all, before any slow repair).
    async fn apply_dns(
        &self,
        cluster: &str,
        snap: &ClusterSnapshot,
        changes: &mut Vec<RecordChange>,
        report: &mut ClusterReport,
    ) {
        let Some(name) = &snap.dns_name else {
            changes.clear();
            return;
        };
        // One change batch per record: a failure of one does not hold back the others.
        for c in changes.drain(..) {
            match self.dns.change(&self.cfg.hosted_zone_id, name, vec![c.clone()]).await {
                Ok(_) => metric(cluster, "manager", "DnsChanges", 1.0, "Count"),
                Err(e) => {
                    warn!(step = "dns", outcome = "failed", change = ?c, error = %e);
                    report.failed.push(format!("{c:?}: {e}"));
                }
            }
        }
    }
}
