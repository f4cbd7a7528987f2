//! Retire: a node out of the swarm (terminate hook, ECS deregistration, a notice), through a
//! manager that can operate. Never joins anything. Drained or cordoned in place: in_place.rs.

use super::drain_check::retiring;
use super::held::{Held, Operators};
use super::retire_node::drain_started;
use super::*;
use crate::plan::service_dns::ZoneEntry;
use crate::plan::NodeRetirement;

impl<F: Fleet, R: Remote, D: Dns, P, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    pub(super) async fn retire(&self, intent: &Intent, m: &Member, end: Instant) -> Result<Outcome, PortError> {
        let id = intent.instance_id();
        if self.cfg.dry_run {
            return self.retire_dry_run(id, m).await;
        }
        // The action's clock runs from its start (the event may have waited in Lambda's queue),
        // and the observation is inside it: a probe slowed by a busy host (15 terminations at
        // once) let an action expire before its first heartbeat.
        let mut held = Held::new(self.keep_alive(intent, action_started(intent)), m.role);
        let (snap, mut ops) = self.while_alive(&held.alive, self.observe_retire(id, m, true)).await?;
        let steps = plan::plan_retire(&snap);
        info!(step = "plan", steps = ?steps);
        // Only a terminating instance is held; an ECS deregistration has nothing to hold.
        let holds = (m.role == Role::Manager && m.dns_name.is_some() || !snap.service_records.is_empty())
            && intent.action().is_some();
        if holds {
            // The action has waited since the event: re-arm it now if it is due (the timer
            // re-arms it while Route 53 is slow); the heartbeat at INSYNC defines the hold.
            self.rearm_if_due(&held.alive).await;
        }
        // What the completion says: a retirement, or why the swarm was left alone.
        let mut reason = "node retired".to_string();
        // Each step the planner returned is what runs, in its order.
        for step in steps {
            match step {
                RetireStep::RemoveRecords(records) => {
                    self.remove_manager_records(&mut held, intent, m, records, end).await?;
                }
                RetireStep::RemoveServiceRecords(records) => {
                    self.remove_names(&mut held, m, records, end).await;
                }
                RetireStep::StartHold => {
                    if !held.acted {
                        info!(step = "dns-remove", outcome = "already-absent");
                    }
                    self.start_hold(&held.alive).await;
                }
                RetireStep::RetireNode(node) if !node.drain => {
                    if self.retire_lost(&mut held, &mut ops, &node, holds, end).await {
                        return Ok(retiring(id));
                    }
                    metric(&m.cluster, m.role.as_str(), "Removals", 1.0, "Count");
                }
                RetireStep::RetireNode(node) => {
                    if !holds {
                        // The action has waited an unknown time already: re-arm it before a drain.
                        self.rearm(&held.alive).await;
                    }
                    let drain_end = clamp(Instant::now() + self.cfg.drain_timeout, Some(end));
                    metric(&m.cluster, m.role.as_str(), "Drains", 1.0, "Count");
                    if self
                        .drain_and_retire(&mut held, &mut ops, node, drain_end, end, holds)
                        .await
                    {
                        return Ok(retiring(id));
                    }
                    metric(&m.cluster, m.role.as_str(), "Removals", 1.0, "Count");
                }
                RetireStep::DrainOnly { node_id } => {
                    self.drain_last_manager(&mut held, &mut ops, m, &node_id, holds, end)
                        .await;
                }
                RetireStep::Note(note) => {
                    // Left to the reconcile, which removes a node whose instance is gone.
                    warn!(step = "swarm", outcome = "skipped", %note, "the node is not retired here");
                    reason = note;
                }
                RetireStep::Finish => {}
            }
        }
        self.announce_drain_timeout(&mut held, m).await;
        self.release(intent, &held, holds, end, &reason).await
    }
}

impl<F: Fleet, R: Remote, D, P, A: Announce, Q> Lifecycle<F, R, D, P, A, Q> {
    /// The last ready manager leaving: its tasks drained, the node left in the swarm (nothing
    /// could remove it after it is gone).
    async fn drain_last_manager(
        &self,
        held: &mut Held<'_>,
        ops: &mut Operators,
        m: &Member,
        node_id: &str,
        holds: bool,
        end: Instant,
    ) {
        // Nothing can keep the control plane once this instance goes (a Spot interruption
        // does not wait): say so where an alarm can see it.
        error!(step = "demote", outcome = "last-manager", node_id = %node_id,
               "the last ready manager is leaving: the swarm will have no manager");
        metric(&m.cluster, m.role.as_str(), "LastManagerLeaving", 1.0, "Count");
        if !holds {
            self.rearm(&held.alive).await;
        }
        let drain_end = clamp(Instant::now() + self.cfg.drain_timeout, Some(end));
        self.drain(held, ops, node_id, drain_end).await;
        held.acted = true;
        metric(&m.cluster, m.role.as_str(), "Drains", 1.0, "Count");
    }
}

impl<F: Fleet, R: Remote, D, P, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// A lost instance's node out without a drain (no task of it left to move): handed over
    /// to the drain checks where they can finish it (true), else retired here.
    async fn retire_lost(
        &self,
        held: &mut Held<'_>,
        ops: &mut Operators,
        node: &NodeRetirement,
        holds: bool,
        end: Instant,
    ) -> bool {
        info!(
            step = "drain",
            outcome = "skipped",
            "the instance is lost: no task of it left to move"
        );
        if self.can_hand_over(held) {
            match self.hand_over_retire(held, ops, node, None, holds).await {
                Ok(()) => return true,
                Err(e) => {
                    warn!(step = "retire", outcome = "not-handed-over", error = %e, "the retirement goes on here")
                }
            }
        }
        self.retire_node(held, ops, node, None, end).await;
        false
    }
}

impl<F: Fleet, R: Remote, D: Dns, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// A dry run leaves nothing behind, the fence included, and re-arms nothing: it reads, and
    /// says what it would do (and which services the drain would block).
    async fn retire_dry_run(&self, id: &str, m: &Member) -> Result<Outcome, PortError> {
        let (snap, mut ops) = self.observe_retire(id, m, false).await?;
        let steps = plan::plan_retire(&snap);
        info!(step = "plan", steps = ?steps);
        let services = match &snap.node {
            Some(node) if snap.operator.is_some() => self.preview_services(&mut ops, &node.id).await,
            _ => vec![],
        };
        let blocked: Vec<String> = services
            .iter()
            .filter(|s| s.placement == "blocked")
            .map(|s| format!("{} ({})", s.service, s.reason))
            .collect();
        let mut detail = format!("would {steps:?}");
        if !blocked.is_empty() {
            detail.push_str(&format!("; the drain would be blocked by {}", blocked.join(", ")));
        }
        let mut o = Outcome::new(OutcomeKind::DryRun, Some(id), detail);
        o.services = services;
        Ok(o)
    }
}

impl<F: Fleet, R, D: Dns, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// The leaving node's values out of the service names; names never hold a retirement back
    /// (the reconcile repairs them).
    async fn remove_names(&self, held: &mut Held<'_>, m: &Member, records: Vec<ZoneEntry>, end: Instant) {
        let n = records.len();
        match self
            .while_alive(&held.alive, self.remove_service_records(records, end))
            .await
        {
            Ok(()) => {
                held.acted = true;
                info!(step = "service-names-remove", outcome = "insync", records = n);
                metric(&m.cluster, m.role.as_str(), "DnsChanges", 1.0, "Count");
            }
            Err(e) => {
                error!(step = "service-names-remove", outcome = "failed", error = %e,
                       "the node leaves all the same");
                metric(&m.cluster, m.role.as_str(), "Failures", 1.0, "Count");
            }
        }
    }
}

impl<F: Fleet, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// The retirement is done: the action is completed, or, for a held manager whose hold has
    /// not ended, left to the hook's timeout. Announced only when this invocation acted.
    pub(super) async fn release(
        &self,
        intent: &Intent,
        held: &Held<'_>,
        holds: bool,
        end: Instant,
        reason: &str,
    ) -> Result<Outcome, PortError> {
        let id = intent.instance_id();
        let quiet = !held.acted;
        if quiet {
            info!(
                step = "retire",
                outcome = "found-done",
                "nothing left to retire: not announced again"
            );
        }
        if holds {
            let started = held.alive.hold_started().unwrap_or(held.alive.last_heartbeat());
            let hold_end = started + self.cfg.hold();
            // The hook's timeout (DefaultResult CONTINUE) releases the instance a timeout after
            // its last heartbeat: at INSYNC + hold, unless a keep-alive re-armed it while the
            // retirement ran long (or the timeout is longer than the hold).
            let hook_release = held.alive.released_at();
            let now = Instant::now();
            if now < hold_end {
                let late = hook_release.saturating_duration_since(hold_end) > Duration::from_secs(1);
                if late && hold_end - now <= self.cfg.rearm_margin() && hold_end < end {
                    // Ending it ourselves at INSYNC + hold costs a few billed seconds; leaving
                    // it to the re-armed timeout would hold the instance up to a hold longer.
                    let wait_secs = (hold_end - now).as_secs_f64();
                    info!(
                        step = "hold",
                        outcome = "ends-here",
                        wait_secs,
                        "re-armed while the retirement ran: completed when the hold ends"
                    );
                    tokio::time::sleep_until(hold_end).await;
                    return self.end_hold(intent, quiet).await;
                }
                // No sleeping: the hook's heartbeat timeout releases the instance.
                let secs = hook_release.saturating_duration_since(now).as_secs_f64();
                info!(
                    step = "hold",
                    outcome = "held",
                    release_in_secs = secs,
                    "termination held by the hook timeout"
                );
                return Ok(held_outcome(
                    id,
                    format!("released by the hook timeout in {secs:.1}s"),
                    quiet,
                ));
            }
        }
        let mut o = self.finish(intent, ActionResult::Continue, reason).await?;
        if o.outcome == OutcomeKind::AlreadyEnded && held.acted {
            // Another invocation (the node's own event, late) completed the action after this
            // retirement removed the node, and found it done: this one tells it.
            o.outcome = OutcomeKind::Done;
            o.detail = "node retired; its action was completed by another invocation".into();
        }
        o.quiet = quiet;
        Ok(o)
    }

    /// Completes a held retirement whose hold has ended (by this invocation's wait, or by the
    /// check left for it): a held outcome, told unless `quiet`.
    pub(super) async fn end_hold(&self, intent: &Intent, quiet: bool) -> Result<Outcome, PortError> {
        let mut o = self
            .finish(intent, ActionResult::Continue, "node retired; hold ended")
            .await?;
        if o.outcome == OutcomeKind::Completed {
            o.outcome = OutcomeKind::Held;
        }
        o.quiet = quiet;
        Ok(o)
    }
}

impl<F, R, D, P, A: Announce, Q> Lifecycle<F, R, D, P, A, Q> {
    pub(super) async fn announce_drain_timeout(&self, held: &mut Held<'_>, m: &Member) {
        if let Some((took, left)) = held.drain_timed_out.take() {
            let id = held.alive.intent.instance_id();
            self.announce(ActionEvent::drain_timed_out(
                &m.cluster,
                id,
                m.role.as_str(),
                took,
                &left,
            ))
            .await;
        }
    }
}

impl<F: Fleet, R: Remote, D, P, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// The common case in one command: the operator drains, demotes and removes the node
    /// while the instance leaves once its tasks are gone. With a queue that command is handed
    /// to the drain-check function (true: nobody here waits for it). Without one, when the
    /// tasks take longer than a slice of the hook timeout, or that command fails, the drain
    /// goes on here (`drain`) and the node is retired after it.
    async fn drain_and_retire(
        &self,
        held: &mut Held<'_>,
        ops: &mut Operators,
        node: NodeRetirement,
        drain_end: Instant,
        end: Instant,
        holds: bool,
    ) -> bool {
        drain_started(ops);
        held.drain_began = Some(Instant::now());
        let slice = self
            .hook_slice()
            .min(drain_end.saturating_duration_since(Instant::now()));
        if self.can_hand_over(held) {
            match self.hand_over_retire(held, ops, &node, Some(slice), holds).await {
                Ok(()) => return true,
                Err(e) => {
                    warn!(step = "retire", outcome = "not-handed-over", error = %e, "the retirement goes on here")
                }
            }
        }
        if self.retire_node(held, ops, &node, Some(slice), end).await {
            return false;
        }
        if !(self.tell_blocked(held).await && self.cfg.blocked_drain_proceeds) {
            if !self.can_hand_over(held)
                && held.alive.intent.action().is_some()
                && drain_end < held.drain_deadline(&self.cfg)
            {
                warn!(step = "drain", outcome = "bounded", drain_timeout_secs = self.cfg.drain_timeout.as_secs(),
                      "DRAIN_TIMEOUT_SECONDS is longer than this invocation can run: without DRAIN_CHECK_QUEUE_URL the drain ends with it");
            }
            self.drain(held, ops, &node.node_id, drain_end).await;
        }
        self.retire_node(held, ops, &node, None, end).await;
        false
    }
}

/// A retirement left held (the action ends with the hold, CONTINUE), told unless `quiet`.
pub(super) fn held_outcome(id: &str, detail: String, quiet: bool) -> Outcome {
    let mut o = Outcome::new(OutcomeKind::Held, Some(id), detail);
    o.result = Some(ActionResult::Continue);
    o.quiet = quiet;
    o
}
