//! Terminations whose events wait in Lambda's queue. At its concurrency (reserved, or the
//! account's) the terminate function is throttled, and Lambda tries the event again "from 1
//! second after the first attempt to a maximum of 5 minutes"; nothing re-arms the waiting
//! action meanwhile, and at its heartbeat timeout the group lets the instance go un-drained.
//! So a running termination keeps the cluster's other waiting terminate actions alive, and a
//! termination that is done takes on those still waiting for their event; when their own
//! event comes it finds the node gone and the action ended, and says nothing more.

use super::*;
use crate::event::LifecycleAction;

impl<F: Fleet, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// The terminate actions of this cluster's groups that wait, `own` excepted, as actions
    /// of the hook `own` belongs to: every group of the template names its terminate hook
    /// alike. No token: an instance id names a waiting action as well. None when no more wait
    /// than the function runs at once (TERMINATE_CONCURRENCY): then none is queued, and
    /// re-arming them all from each of them would cost n² calls.
    async fn waiting_terminations(&self, own: &LifecycleAction) -> PortResult<Vec<LifecycleAction>> {
        let groups = self
            .fleet
            .groups_tagged(&self.cfg.cluster_tag, &self.cfg.cluster_name)
            .await?;
        Ok(self.waiting_in(&groups, own))
    }
}

impl<F, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// `waiting_terminations` as `groups` list them.
    fn waiting_in(&self, groups: &[Group], own: &LifecycleAction) -> Vec<LifecycleAction> {
        let waiting: Vec<LifecycleAction> = groups
            .iter()
            .flat_map(|g| {
                g.instances
                    .iter()
                    .filter(|i| i.lifecycle_state == LifecycleState::TerminatingWait && i.id != own.instance_id)
                    .map(|i| LifecycleAction {
                        group: g.name.clone(),
                        hook: own.hook.clone(),
                        token: String::new(),
                        instance_id: i.id.clone(),
                        started_unix: None,
                    })
            })
            .collect();
        // As many as the function runs at once, this one included: each has its own invocation.
        if self
            .cfg
            .terminate_concurrency
            .is_some_and(|limit| waiting.len() < limit)
        {
            return vec![];
        }
        waiting
    }
}

impl<F: Fleet, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// Re-arms the other waiting terminate actions (a running termination's re-arm tick). A
    /// held manager's action is re-armed too: its hold only grows, never shrinks.
    pub(super) async fn keep_waiting_alive(&self, intent: &Intent) {
        let Some(own) = intent.action().filter(|_| matches!(intent, Intent::Retire { .. })) else {
            return;
        };
        let waiting = match self.waiting_terminations(own).await {
            Ok(w) => w,
            Err(e) => {
                warn!(step = "keep-alive", outcome = "failed", error = %e);
                return;
            }
        };
        for action in &waiting {
            match self.fleet.record_heartbeat(action).await {
                Ok(()) => info!(step = "keep-alive", outcome = "ok", waiting = %action.instance_id),
                Err(PortError::NoActiveAction(_)) => {}
                Err(e) => warn!(step = "keep-alive", outcome = "failed", waiting = %action.instance_id, error = %e),
            }
        }
    }
}

impl<F: Fleet, R: Remote, D: Dns, P: Parameters, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// After its own retirement, a terminate invocation retires the cluster's instances whose
    /// action still waits and that no retirement has fenced, one by one, while its time
    /// allows a whole retirement. `listed`: the groups read at the invocation's start; when
    /// the retirement was handed over (a queue: the invocation lasts seconds) and they show
    /// none waiting, none is looked for again.
    pub(super) async fn adopt_waiting(&self, intent: &Intent, deadline: Option<Instant>, listed: Option<&[Group]>) {
        let Some(own) = intent.action().filter(|_| matches!(intent, Intent::Retire { .. })) else {
            return;
        };
        if self.cfg.dry_run {
            return;
        }
        let handed_over = self.cfg.drain_check_queue.is_some();
        if listed.is_some_and(|groups| handed_over && self.waiting_in(groups, own).is_empty()) {
            return;
        }
        let worst = self.cfg.drain_timeout + crate::config::RETIRE_AFTER_DRAIN;
        let mut tried = HashSet::new();
        while deadline.is_none_or(|d| Instant::now() + worst < d) {
            let waiting = match self.waiting_terminations(own).await {
                Ok(w) => w,
                Err(e) => {
                    warn!(step = "adopt", outcome = "failed", error = %e);
                    return;
                }
            };
            let fresh: Vec<LifecycleAction> = waiting
                .into_iter()
                .filter(|a| !tried.contains(&a.instance_id))
                .collect();
            let Some(next) = self.unfenced(&fresh).await else {
                return;
            };
            tried.insert(next.instance_id.clone());
            info!(step = "adopt", waiting = %next.instance_id, "a terminate action waits for its event: retired here");
            let adopted = Intent::Retire {
                instance_id: next.instance_id.clone(),
                group: next.group.clone(),
                // Its clock is unknown: taken as nearly out, so it is re-armed first.
                action: Some(LifecycleAction {
                    started_unix: Some(unix_now().saturating_sub(self.cfg.terminate_heartbeat_timeout.as_secs())),
                    ..next
                }),
            };
            let span = info_span!("adopted", instance_id = %adopted.instance_id(), group = %adopted.group());
            if let Err(e) = self.handle_intent(adopted, deadline).instrument(span).await {
                warn!(step = "adopt", outcome = "failed", error = %e);
            }
        }
    }
}

impl<F, R: Remote, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// The first of `waiting` that no retirement has fenced (an instance whose agent does not
    /// answer cannot be fenced: it is taken).
    async fn unfenced(&self, waiting: &[LifecycleAction]) -> Option<LifecycleAction> {
        if waiting.is_empty() {
            return None;
        }
        let ids: Vec<String> = waiting.iter().map(|a| a.instance_id.clone()).collect();
        let online = self.remote.online(&ids).await.unwrap_or_default();
        let (probes, _) = self.probe_and_list(&online, None, None).await.unwrap_or_default();
        waiting
            .iter()
            .find(|a| !probes.get(&a.instance_id).is_some_and(|p| p.retiring))
            .cloned()
    }
}
