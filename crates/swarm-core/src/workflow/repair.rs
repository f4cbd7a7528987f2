//! The reconcile's repairs, one executor each: a gone node removed, a member retired or
//! joined, labels set again, a forgotten action completed; the record changes gathered for one
//! batch each (`record_change`, pure).

use std::time::Duration;

use tokio::time::Instant;
use tracing::info;

use crate::announce::ActionEvent;
use crate::event::{Intent, LifecycleAction, LAUNCHING, TERMINATING};
use crate::model::ManagerRecord;
use crate::plan::reconcile::{ClusterSnapshot, Repair};
use crate::ports::{ActionResult, Announce, Checks, Dns, Fleet, Parameters, PortError, RecordChange, Remote};
use crate::safe::script_commands;
use crate::scripts;
use crate::telemetry::metric;
use crate::workflow::OutcomeKind;
use crate::Lifecycle;

/// The record change a DNS repair asks for (None: not a DNS repair). Deletes carry the record
/// exactly as it is, as Route 53 requires.
pub(super) fn record_change(r: &Repair, snap: &ClusterSnapshot, ttl: Duration) -> Option<RecordChange> {
    let (Repair::DnsDelete { record } | Repair::DnsUpsert { record }) = r else {
        return None;
    };
    let rec = ManagerRecord {
        set_identifier: record.set_identifier.clone(),
        ip: record.ip,
        ttl: ttl.as_secs(),
    };
    Some(match r {
        Repair::DnsDelete { .. } => RecordChange::Delete(
            snap.records
                .iter()
                .find(|x| x.set_identifier == rec.set_identifier && x.ip == rec.ip)
                .cloned()
                .unwrap_or(rec),
        ),
        _ => RecordChange::Upsert(rec),
    })
}

impl<F: Fleet, R: Remote, D: Dns, P: Parameters, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// Makes one repair that is not a record change, through `operator` where it needs a
    /// manager. Err: why it failed (the run reports it and goes on).
    pub(super) async fn repair(
        &self,
        r: &Repair,
        snap: &ClusterSnapshot,
        operator: &str,
        deadline: Option<Instant>,
    ) -> Result<(), String> {
        match r {
            Repair::RemoveNode {
                node_id,
                demote,
                reason,
            } => {
                self.remove_gone_node(&snap.cluster, operator, node_id, *demote, reason)
                    .await
            }
            Repair::Retire {
                instance_id,
                group,
                reason,
            } => {
                info!(step = "retire", instance_id = %instance_id, %reason);
                let intent = Intent::Retire {
                    instance_id: instance_id.clone(),
                    group: group.clone(),
                    action: None,
                };
                match self.handle_intent(intent, deadline).await {
                    Ok(o) if matches!(o.outcome, OutcomeKind::Denied | OutcomeKind::Rejected) => Err(o.detail),
                    Ok(_) => Ok(()),
                    Err(e) => Err(e.to_string()),
                }
            }
            Repair::Join {
                instance_id,
                group,
                waiting,
            } => self.join_member(snap, instance_id, group, *waiting, deadline).await,
            Repair::Label {
                instance_id,
                node_id,
                labels,
                ..
            } => self.label_node(snap, operator, instance_id, node_id, labels).await,
            Repair::CompleteLaunch { instance_id, group } => self.complete_left(instance_id, group, LAUNCHING).await,
            Repair::CompleteTermination { instance_id, group } => {
                self.complete_left(instance_id, group, TERMINATING).await
            }
            Repair::DnsDelete { .. } | Repair::DnsUpsert { .. } => Ok(()),
        }
    }
}

impl<F, R: Remote, D, P, A: Announce, Q> Lifecycle<F, R, D, P, A, Q> {
    /// The one removal path for a node whose instance is gone: retire-node.sh with no
    /// instance half and nothing to drain (its tasks died with it).
    async fn remove_gone_node(
        &self,
        cluster: &str,
        operator: &str,
        node_id: &str,
        demote: bool,
        reason: &str,
    ) -> Result<(), String> {
        info!(step = "remove", node_id = %node_id, %reason);
        let wait = Duration::from_secs(15).min(self.cfg.script_wait_max()).as_secs();
        let cmds = script_commands(
            &[
                ("NODE_ID", node_id.to_string()),
                ("LEAVING_INSTANCE", "-".into()),
                ("DEMOTE", demote.to_string()),
                ("DRAIN_SECONDS", "0".into()),
                ("WAIT_SECONDS", wait.to_string()),
                ("INSTANCE_LEAVES", "false".into()),
            ],
            scripts::RETIRE_NODE,
        );
        self.run_checked(operator, cmds, "retire node").await?;
        metric(cluster, "cluster", "Removals", 1.0, "Count");
        self.announce(ActionEvent::node_removed(cluster, node_id, reason)).await;
        Ok(())
    }
}

impl<F: Fleet, R: Remote, D: Dns, P: Parameters, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// Joins a running instance that is not in the swarm; its launch action, when one still
    /// waits (`waiting`), is kept alive and completed by the join.
    async fn join_member(
        &self,
        snap: &ClusterSnapshot,
        instance_id: &str,
        group: &str,
        waiting: bool,
        deadline: Option<Instant>,
    ) -> Result<(), String> {
        let action = match waiting {
            true => self.hook_of(group, LAUNCHING).await.map(|hook| LifecycleAction {
                group: group.to_string(),
                hook,
                token: String::new(),
                instance_id: instance_id.to_string(),
                // The action began after the instance launched: its launch time is the
                // action's age at worst, so the join re-arms it in time.
                started_unix: snap
                    .members
                    .iter()
                    .find(|m| m.id == instance_id)
                    .and_then(|m| m.launched_unix),
            }),
            false => None,
        };
        let intent = Intent::Join {
            instance_id: instance_id.to_string(),
            group: group.to_string(),
            action,
        };
        match self.handle_intent(intent, deadline).await {
            Ok(o) if o.result != Some(ActionResult::Abandon) => Ok(()),
            Ok(o) => Err(o.detail),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl<F, R: Remote, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// Sets a node's well-known labels again, as its member should carry them.
    async fn label_node(
        &self,
        snap: &ClusterSnapshot,
        operator: &str,
        instance_id: &str,
        node_id: &str,
        wrong: &[String],
    ) -> Result<(), String> {
        info!(step = "label", instance_id = %instance_id, node_id = %node_id, labels = %wrong.join(","),
              "labels missing or wrong: set again");
        let expected = snap
            .members
            .iter()
            .find(|m| m.id == instance_id)
            .and_then(|m| m.labels.as_ref())
            .map(crate::plan::labels::encode)
            .unwrap_or_default();
        let cmds = script_commands(
            &[
                ("NODE_ID", node_id.to_string()),
                ("INSTANCE_ID", instance_id.to_string()),
                ("WAIT_SECONDS", "5".into()),
                ("NODE_LABELS", expected),
            ],
            scripts::NODE_READY,
        );
        self.run_checked(operator, cmds, "label node").await?;
        metric(&snap.cluster, "cluster", "LabelRepairs", 1.0, "Count");
        Ok(())
    }
}

impl<F: Fleet, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// Completes (CONTINUE) an action left waiting at `transition`; one that ended meanwhile
    /// is done.
    async fn complete_left(&self, instance_id: &str, group: &str, transition: &str) -> Result<(), String> {
        let Some(hook) = self.hook_of(group, transition).await else {
            return Err(format!("group {group} has no {transition} hook"));
        };
        let a = LifecycleAction {
            group: group.to_string(),
            hook,
            token: String::new(),
            instance_id: instance_id.to_string(),
            started_unix: None,
        };
        match self.fleet.complete_action(&a, ActionResult::Continue).await {
            Ok(()) | Err(PortError::NoActiveAction(_)) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The group's lifecycle hook at `transition`, if it has one.
    async fn hook_of(&self, group: &str, transition: &str) -> Option<String> {
        self.fleet
            .lifecycle_hooks(group)
            .await
            .ok()
            .and_then(|hs| hs.into_iter().find(|(_, t)| t == transition).map(|(n, _)| n))
    }
}
