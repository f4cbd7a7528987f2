//! EC2's notices about an instance outside the lifecycle hooks (a Spot interruption warning, a
//! rebalance recommendation, a stop, start or termination by hand): the pure decision is
//! plan/notice.rs; the work is the retire, drain and join rooms', without a lifecycle action.

use super::*;
use crate::event::Ec2Notice;
use crate::plan::NoticeDecision;

impl<F: Fleet, R: Remote, D: Dns, P: Parameters, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// Handles an aws.ec2 Spot Instance Interruption Warning, Instance Rebalance
    /// Recommendation or Instance State-change Notification. Instances outside this
    /// deployment's cluster get one log line; bad input is logged and acknowledged.
    pub async fn handle_ec2_notice(&self, raw: &Value, deadline: Option<Instant>) -> Result<Outcome, PortError> {
        let (meta, id, notice) = match event::ec2_notice(raw) {
            Ok(x) => x,
            Err(e) => return Ok(rejected(&e)),
        };
        let span = info_span!("notice", event_id = %meta.id, instance_id = %id, notice = ?notice);
        async {
            match self.notice_intent(id, notice, deadline).await? {
                Ok((intent, deadline, groups)) => self.handle_listed(intent, deadline, Some(groups)).await,
                Err(o) => Ok(o),
            }
        }
        .instrument(span)
        .await
    }
}

impl<F: Fleet, R: Remote, D: Dns, P, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// Handles an AWS Health scheduled change of EC2 (instance retirement, system reboot or
    /// maintenance): each affected instance of this cluster is retired before the change
    /// begins, at once when it begins within SCHEDULED_CHANGE_LEAD_SECONDS, else by the
    /// reconcile when that time comes. The outcome is the last instance's; a failure fails it.
    /// A change only ever takes nodes out: no join, so no Parameter Store (the type says so).
    pub async fn handle_scheduled_change(&self, raw: &Value, deadline: Option<Instant>) -> Result<Outcome, PortError> {
        let (meta, ids, notice) = match event::scheduled_change(raw) {
            Ok(x) => x,
            Err(e) => return Ok(rejected(&e)),
        };
        if ids.is_empty() {
            info!(step = "parse", outcome = "ignored", event_id = %meta.id, "no instance among the affected entities");
            return Ok(Outcome::new(OutcomeKind::Ignored, None, "no instance affected"));
        }
        let mut out = Outcome::new(OutcomeKind::Ignored, None, "no instance affected");
        for id in ids {
            let span = info_span!("notice", event_id = %meta.id, instance_id = %id, notice = ?notice);
            out = async {
                match self.notice_intent(id, notice.clone(), deadline).await? {
                    Ok((intent, deadline, groups)) => self.leave_listed(intent, deadline, Some(groups)).await,
                    Err(o) => Ok(o),
                }
            }
            .instrument(span)
            .await?;
        }
        Ok(out)
    }
}

impl<F: Fleet, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// What a notice asks of this cluster: the intent, its deadline and the groups just read
    /// (handed on to the work), or the answer when it asks nothing.
    async fn notice_intent(
        &self,
        id: String,
        notice: Ec2Notice,
        deadline: Option<Instant>,
    ) -> Result<Result<(Intent, Option<Instant>, Vec<Group>), Outcome>, PortError> {
        // Which of this cluster's groups holds it, in what state: the one listing, handed on
        // to the work.
        let groups = self
            .fleet
            .groups_tagged(&self.cfg.cluster_tag, &self.cfg.cluster_name)
            .await?;
        let Some((group, cluster, role, state)) = self.member_in(&groups, &id) else {
            info!(
                step = "group",
                outcome = "ignored",
                "not an instance of this cluster's groups (a node it left behind is the reconcile's)"
            );
            return Ok(Err(Outcome::new(
                OutcomeKind::Ignored,
                Some(&id),
                "not an instance of this cluster's groups",
            )));
        };
        count_notice(&notice, &cluster, role);
        let policy = plan::NoticePolicy {
            rebalance: self.cfg.rebalance_action,
            spot_notice: self.cfg.spot_notice.as_secs(),
            scheduled_lead: self.cfg.scheduled_lead.as_secs(),
            now_unix: unix_now(),
        };
        let decision = plan::decide_notice(&notice, role, &state, policy);
        info!(step = "plan", decision = ?decision, lifecycle_state = %state);
        let (intent, deadline) = match decision {
            NoticeDecision::Ignore(reason) => {
                info!(step = "notice", outcome = "ignored", %reason);
                return Ok(Err(Outcome::new(OutcomeKind::Ignored, Some(&id), reason)));
            }
            NoticeDecision::Note { reason, metric: name } => {
                warn!(step = "notice", outcome = "noted", %reason);
                if let Some(name) = name {
                    metric(&cluster, role.as_str(), name, 1.0, "Count");
                }
                return Ok(Err(Outcome::new(OutcomeKind::Done, Some(&id), reason)));
            }
            NoticeDecision::Retire { by_unix } => {
                let by = by_unix.map(|t| clamp(instant_of(t), deadline));
                let intent = Intent::Retire {
                    instance_id: id,
                    group,
                    action: None,
                };
                (intent, by.or(deadline))
            }
            NoticeDecision::Drain => (Intent::Drain { instance_id: id, group }, deadline),
            NoticeDecision::Cordon => (Intent::Cordon { instance_id: id, group }, deadline),
            NoticeDecision::Join => {
                let intent = Intent::Join {
                    instance_id: id,
                    group,
                    action: None,
                };
                (intent, deadline)
            }
        };
        Ok(Ok((intent, deadline, groups)))
    }
}

impl<F, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// The group, cluster, role and lifecycle state of instance `id` in this cluster's groups.
    fn member_in(&self, groups: &[Group], id: &str) -> Option<(String, String, Role, LifecycleState)> {
        groups.iter().find_map(|g| {
            let i = g.instances.iter().find(|i| i.id == id)?;
            match membership(g, &self.cfg) {
                Membership::Member { cluster, role, .. } => {
                    Some((g.name.clone(), cluster, role, i.lifecycle_state.clone()))
                }
                _ => None,
            }
        })
    }
}

/// A Spot warning and an open scheduled change are counted, whatever is decided.
fn count_notice(notice: &Ec2Notice, cluster: &str, role: Role) {
    if let Ec2Notice::SpotInterruption { action, .. } = notice {
        warn!(step = "notice", outcome = "spot-interruption", %action, %role, "Spot interruption warning");
        metric(cluster, role.as_str(), "SpotInterruptions", 1.0, "Count");
    }
    if let Ec2Notice::ScheduledChange {
        code, closed: false, ..
    } = notice
    {
        warn!(step = "notice", outcome = "scheduled-change", %code, %role, "AWS Health scheduled change");
        metric(cluster, role.as_str(), "ScheduledChanges", 1.0, "Count");
    }
}

/// An event that is not what the function takes: logged and acknowledged, never retried.
fn rejected(e: &event::EventError) -> Outcome {
    error!(step = "parse", outcome = "invalid", error = %e, "event rejected");
    Outcome::new(OutcomeKind::Invalid, None, e.to_string())
}

/// The instant at unix time `t` (now, when `t` is past).
fn instant_of(t: u64) -> Instant {
    Instant::now() + Duration::from_secs(t.saturating_sub(unix_now()))
}
