//! Retire and drain: a node out of the swarm (terminate hook, ECS deregistration) or drained in
//! place (ECS DRAINING), through a manager that can operate. Never joins anything.

use super::drain_check::retiring;
use super::held::{Held, Operators};
use super::*;
use crate::announce::BlockedService;
use crate::model::SwarmNode;
use crate::plan::{cannot_operate, LeaveAnswer, NodeRetirement, RetireAnswer};

impl<F: Fleet, R: Remote, D: Dns, P: Parameters, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    pub(super) async fn retire(&self, intent: &Intent, m: &Member, end: Instant) -> Result<Outcome, PortError> {
        let id = intent.instance_id();
        if self.cfg.dry_run {
            // A dry run leaves nothing behind, the fence included, and re-arms nothing: it reads.
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
            return Ok(o);
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
        // Each step the planner returned is what runs, in its order.
        for step in steps {
            match step {
                RetireStep::RemoveRecords(records) => {
                    let name = m.dns_name.clone().unwrap_or_default();
                    let mut removed = false;
                    for r in records {
                        removed |= self
                            .while_alive(&held.alive, self.remove_record(&name, intent, r, end))
                            .await?;
                    }
                    held.acted |= removed;
                    if removed {
                        info!(step = "dns-remove", outcome = "insync");
                        metric(&m.cluster, m.role.as_str(), "DnsChanges", 1.0, "Count");
                    } else {
                        info!(step = "dns-remove", outcome = "already-absent");
                    }
                    self.start_hold(&held.alive).await;
                }
                RetireStep::RemoveServiceRecords(records) => {
                    let n = records.len();
                    // Names never hold a retirement back (the reconcile repairs them).
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
                RetireStep::StartHold => {
                    if !held.acted {
                        info!(step = "dns-remove", outcome = "already-absent");
                    }
                    self.start_hold(&held.alive).await;
                }
                RetireStep::RetireNode(node) if !node.drain => {
                    info!(
                        step = "drain",
                        outcome = "skipped",
                        "the instance is lost: no task of it left to move"
                    );
                    if self.can_hand_over(&held) {
                        match self.hand_over_retire(&held, &mut ops, &node, None, holds).await {
                            Ok(()) => return Ok(retiring(id)),
                            Err(e) => {
                                warn!(step = "retire", outcome = "not-handed-over", error = %e, "the retirement goes on here")
                            }
                        }
                    }
                    self.retire_node(&mut held, &mut ops, &node, None, end).await;
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
                    // Nothing can keep the control plane once this instance goes (a Spot
                    // interruption does not wait): say so where an alarm can see it.
                    error!(step = "demote", outcome = "last-manager", node_id = %node_id,
                           "the last ready manager is leaving: the swarm will have no manager");
                    metric(&m.cluster, m.role.as_str(), "LastManagerLeaving", 1.0, "Count");
                    if !holds {
                        self.rearm(&held.alive).await;
                    }
                    let drain_end = clamp(Instant::now() + self.cfg.drain_timeout, Some(end));
                    self.drain(&mut held, &mut ops, &node_id, drain_end).await;
                    held.acted = true;
                    metric(&m.cluster, m.role.as_str(), "Drains", 1.0, "Count");
                }
                RetireStep::Note(note) => info!(step = "swarm", outcome = "skipped", %note),
                RetireStep::Finish => {}
            }
        }
        self.announce_drain_timeout(&mut held, m).await;
        self.release(intent, &held, holds, end).await
    }

    /// The retirement is done: the action is completed, or, for a held manager whose hold has
    /// not ended, left to the hook's timeout. Announced only when this invocation acted.
    pub(super) async fn release(
        &self,
        intent: &Intent,
        held: &Held<'_>,
        holds: bool,
        end: Instant,
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
        let mut o = self.finish(intent, ActionResult::Continue, "node retired").await?;
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

    /// The node of an instance that stays in the swarm, and the managers that can change it;
    /// Err: the outcome when there is nothing to `verb` (no node, no live manager, dry run).
    async fn node_in_place(
        &self,
        intent: &Intent,
        m: &Member,
        verb: &'static str,
    ) -> Result<Result<(SwarmNode, Operators), Outcome>, PortError> {
        let id = intent.instance_id();
        let (snap, ops) = self.observe_retire(id, m, false).await?;
        let (Some(_), Some(node)) = (snap.operator, snap.node) else {
            info!(step = verb, outcome = "skipped", "no node or no live manager");
            return Ok(Err(Outcome::new(
                OutcomeKind::Done,
                Some(id),
                format!("nothing to {verb}"),
            )));
        };
        if self.cfg.dry_run {
            let o = Outcome::new(OutcomeKind::DryRun, Some(id), format!("would {verb} {}", node.id));
            return Ok(Err(o));
        }
        Ok(Ok((node, ops)))
    }

    /// ECS DRAINING: the node stops taking tasks, its tasks move; it stays in the swarm.
    pub(super) async fn drain_only(&self, intent: &Intent, m: &Member, end: Instant) -> Result<Outcome, PortError> {
        let id = intent.instance_id();
        let (node, mut ops) = match self.node_in_place(intent, m, "drain").await? {
            Ok(x) => x,
            Err(done) => return Ok(done),
        };
        let mut held = Held::new(self.keep_alive(intent, Instant::now()), m.role);
        self.drain(&mut held, &mut ops, &node.id, end).await;
        metric(&m.cluster, m.role.as_str(), "Drains", 1.0, "Count");
        self.announce_drain_timeout(&mut held, m).await;
        Ok(Outcome::new(OutcomeKind::Done, Some(id), "node drained"))
    }

    /// A rebalance recommendation (when so configured): the node takes no new tasks and keeps
    /// the ones it runs (availability pause).
    pub(super) async fn cordon(&self, intent: &Intent, m: &Member) -> Result<Outcome, PortError> {
        let id = intent.instance_id();
        let (node, mut ops) = match self.node_in_place(intent, m, "cordon").await? {
            Ok(x) => x,
            Err(done) => return Ok(done),
        };
        match self
            .on_operator(
                &mut ops,
                &[("NODE_ID", node.id.clone())],
                scripts::CORDON,
                self.cfg.command_timeout,
                "cordon",
            )
            .await
        {
            Ok(_) => {
                info!(step = "cordon", outcome = "ok", node_id = %node.id);
                metric(&m.cluster, m.role.as_str(), "Cordons", 1.0, "Count");
                Ok(Outcome::new(OutcomeKind::Done, Some(id), "node cordoned"))
            }
            Err(Retry::Refused(e)) => Err(e),
            Err(e) => Err(PortError::aws("cordon", e.to_string())),
        }
    }

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

    /// Tells, once per retirement, that the drain found services it cannot place (an action
    /// event, a metric, a warning). True: told now.
    pub(super) async fn tell_blocked(&self, held: &mut Held<'_>) -> bool {
        if held.blocked.is_empty() || held.blocked_told {
            return false;
        }
        held.blocked_told = true;
        let id = held.alive.intent.instance_id().to_string();
        warn!(step = "drain", outcome = "blocked", services = %BlockedService::names(&held.blocked),
              reasons = %held.blocked.iter().map(|b| b.reason.as_str()).collect::<Vec<_>>().join("; "),
              proceed = self.cfg.blocked_drain_proceeds,
              "the swarm cannot place tasks of the leaving node's services");
        metric(
            &self.cfg.cluster_name,
            held.role.as_str(),
            "DrainsBlocked",
            1.0,
            "Count",
        );
        let event = ActionEvent::drain_blocked(
            &self.cfg.cluster_name,
            &id,
            held.role.as_str(),
            held.blocked.clone(),
            self.cfg.blocked_drain_proceeds,
        );
        self.announce(event).await;
        true
    }

    /// What draining the node would do to each of its services (read-only, through a manager):
    /// where its tasks could go, its budget. Empty when no manager can say.
    async fn preview_services(&self, ops: &mut Operators, node_id: &str) -> Vec<plan::preview::ServicePreview> {
        let env = [("NODE_ID", node_id.to_string())];
        match self
            .on_operator(ops, &env, scripts::RETIRE_PREVIEW, self.cfg.command_timeout, "preview")
            .await
        {
            Ok(r) => {
                let previews = plan::preview::preview(&plan::preview::PreviewInput::parse(&r.stdout));
                for p in &previews {
                    info!(step = "preview", service = %p.service, placement = p.placement, reason = %p.reason,
                          budget = p.budget.as_deref().unwrap_or("none"));
                }
                previews
            }
            Err(e) => {
                warn!(step = "preview", outcome = "failed", error = %e);
                vec![]
            }
        }
    }

    /// What a drain command said of the services' budgets: the ones it waits for (logged when
    /// they change), the ones it broke (an involuntary disruption: told), the labels it ignored
    /// (told once).
    pub(super) async fn note_budgets(&self, held: &mut Held<'_>, stdout: &str) {
        let short = BlockedService::budget_waits_of_output(stdout);
        if !short.is_empty() && short != held.budget_short {
            info!(step = "drain", outcome = "budget-wait", services = %BlockedService::with_reasons(&short),
                  "the drain waits: it would take these services below their budget");
            metric(&self.cfg.cluster_name, held.role.as_str(), "BudgetWaits", 1.0, "Count");
        }
        held.budget_short = short;
        let broken = BlockedService::budgets_of_output(stdout, "budget_broken");
        if !broken.is_empty() {
            let cause = if DrainSaid::of(stdout).broken_by_stuck {
                "no task of it is on its way to running: waiting cannot keep it, the drain goes on"
            } else {
                "an involuntary disruption cannot wait"
            };
            self.tell_budget_broken(held, broken, cause).await;
        }
        let invalid = BlockedService::invalid_budgets_of_output(stdout);
        if !invalid.is_empty() && !held.budget_invalid_told {
            held.budget_invalid_told = true;
            warn!(step = "drain", outcome = "budget-invalid", services = %BlockedService::with_reasons(&invalid),
                  "unreadable disruption budget labels are ignored");
            let id = held.alive.intent.instance_id().to_string();
            self.announce(ActionEvent::budget_invalid(&self.cfg.cluster_name, &id, invalid))
                .await;
        }
    }

    /// What a drain command answered: its blocked services and budgets noted (and told), and
    /// (tasks still running, services short), u32::MAX where it could not say.
    pub(super) async fn note_drain(&self, held: &mut Held<'_>, stdout: &str) -> (u32, u32) {
        held.blocked = BlockedService::of_output(stdout);
        self.note_budgets(held, stdout).await;
        let said = DrainSaid::of(stdout);
        (said.remaining.unwrap_or(u32::MAX), said.pending.unwrap_or(u32::MAX))
    }

    /// Tells, once per retirement, that services went below their budget, and why.
    async fn tell_budget_broken(&self, held: &mut Held<'_>, broken: Vec<BlockedService>, cause: &str) {
        if held.budget_broken_told {
            return;
        }
        held.budget_broken_told = true;
        warn!(step = "drain", outcome = "budget-broken", services = %BlockedService::with_reasons(&broken), %cause,
              "services go below their disruption budget");
        metric(
            &self.cfg.cluster_name,
            held.role.as_str(),
            "BudgetsBroken",
            1.0,
            "Count",
        );
        let id = held.alive.intent.instance_id().to_string();
        let event = ActionEvent::budget_broken(&self.cfg.cluster_name, &id, held.role.as_str(), broken, cause);
        self.announce(event).await;
    }

    /// The retire-node command through the current operator (draining first for `drain`, the
    /// instance's half when it `leave`s): its commands, how long it may run, its name.
    pub(super) fn retire_command(
        &self,
        held: &Held<'_>,
        ops: &Operators,
        node: &NodeRetirement,
        drain: Option<Duration>,
        leave: bool,
    ) -> (Vec<String>, Duration, &'static str) {
        let drain_secs = drain.map(|d| d.as_secs().max(1)).unwrap_or(0);
        // The instance leaves once it has stepped down: a demoted follower does so at once, a
        // demoted leader only after its daemon has shut its manager down, ~8.5 s later
        // (measured, docker 28), and the daemon does not answer meanwhile. The wait is a
        // condition: a slice of the hook timeout, at least STEP_DOWN for a manager. If that is
        // not enough, the node is still removed and the missed leave is logged.
        let floor = if node.demote { STEP_DOWN } else { Duration::from_secs(3) };
        let wait = self.hook_slice().max(floor).min(self.cfg.script_wait_max());
        let limit = Self::command_limit(wait + Duration::from_secs(drain_secs));
        // Its own name, so that a fault (or a reader of the SSM history) can tell it apart.
        let what = if drain.is_some() {
            "drain and retire node"
        } else {
            "retire node"
        };
        let cmds = script_commands(
            &[
                ("NODE_ID", node.node_id.clone()),
                ("LEAVING_INSTANCE", held.alive.intent.instance_id().to_string()),
                ("DEMOTE", node.demote.to_string()),
                ("DRAIN_SECONDS", drain_secs.to_string()),
                ("WAIT_SECONDS", wait.as_secs().max(1).to_string()),
                ("INSTANCE_LEAVES", leave.to_string()),
                ("SPARE_OPERATORS", ops.spare().to_string()),
                ("STOP_WHEN_BLOCKED", (!held.blocked_told).to_string()),
                ("BUDGET", held.budget().to_string()),
            ],
            scripts::RETIRE_NODE,
        );
        (cmds, limit, what)
    }

    /// Drains (for `drain` at most, if given), demotes (if asked), has the instance leave (if
    /// it is up) and removes its node, in one command to the operator and the instance;
    /// another manager takes over from an unreachable operator, and an instance that cannot
    /// be reached is removed all the same; a node not removed (no leader, a refused demotion)
    /// is asked again (until `end`, REMOVAL_RETRY_WAIT at most). False: the drain did not
    /// finish, nothing else done.
    pub(super) async fn retire_node(
        &self,
        held: &mut Held<'_>,
        ops: &mut Operators,
        node: &NodeRetirement,
        drain: Option<Duration>,
        end: Instant,
    ) -> bool {
        let id = held.alive.intent.instance_id();
        let mut leave = node.leave;
        let retry_end = clamp(Instant::now() + REMOVAL_RETRY_WAIT, Some(end));
        let mut backoff = Backoff::new(self.cfg.poll_max);
        while let Some(op) = ops.current() {
            let (cmds, limit, what) = self.retire_command(held, ops, node, drain, leave);
            let mut targets = vec![op.clone()];
            if leave {
                targets.push(id.to_string());
            }
            let results = match self
                .while_alive(&held.alive, self.remote.run(&targets, cmds, limit, USUAL_COMMAND, what))
                .await
            {
                Ok(r) => r,
                Err(PortError::NotOnline(e)) if leave => {
                    warn!(step = "leave", outcome = "unreachable", error = %e, "removing the node without it");
                    leave = false;
                    continue;
                }
                Err(PortError::NotOnline(e)) => {
                    ops.hand_over("remove", &e);
                    continue;
                }
                Err(e) if drain.is_some() => {
                    warn!(step = "drain", outcome = "retry", error = %e);
                    return false;
                }
                Err(e) => {
                    error!(step = "remove", outcome = "failed", error = %e);
                    return true;
                }
            };
            let Some(r) = results.iter().find(|r| r.instance_id == op) else {
                error!(step = "remove", outcome = "failed", "no result from {op}");
                return true;
            };
            let me = results.iter().find(|r| r.instance_id == id);
            match self.read_retire(held, node, &op, r, me, drain.is_some()).await {
                RetireAnswer::CannotOperate => {
                    ops.hand_over("remove", &r.summary());
                    continue;
                }
                RetireAnswer::Draining { .. } => return false,
                RetireAnswer::NotRemoved if Instant::now() < retry_end => {
                    self.while_alive(&held.alive, backoff.wait(retry_end)).await;
                    continue;
                }
                RetireAnswer::NotRemoved => {
                    not_removed(&op);
                    return true;
                }
                RetireAnswer::Ended { .. } => return true,
            }
        }
        error!(step = "remove", outcome = "failed", "no reachable manager left");
        true
    }

    /// Reads a retire-node command's answers (the operator's, and the leaving instance's when
    /// it ran its half) and says what they mean, for the invocation that waited for them and
    /// for the drain check that reads them later alike: logged, budgets noted, acted marked.
    pub(super) async fn read_retire(
        &self,
        held: &mut Held<'_>,
        node: &NodeRetirement,
        op: &str,
        r: &CommandResult,
        me: Option<&CommandResult>,
        drains: bool,
    ) -> RetireAnswer {
        let answer = plan::read_retire(r, drains);
        if answer == RetireAnswer::CannotOperate {
            return answer;
        }
        if drains {
            self.note_budgets(held, &r.stdout).await;
        }
        if let Some(me) = me {
            let settled = !matches!(answer, RetireAnswer::Draining { .. });
            match plan::read_leave(me, settled) {
                LeaveAnswer::AfterDrain if me.ok() => info!(step = "leave", outcome = "after-drain"),
                LeaveAnswer::AfterDrain => info!(step = "leave", outcome = "after-drain", result = %me.summary()),
                LeaveAnswer::Left => info!(step = "leave", outcome = "ok"),
                LeaveAnswer::Failed => warn!(step = "leave", outcome = "failed", result = %me.summary()),
            }
        }
        match &answer {
            RetireAnswer::Draining { failed: false } => {
                held.blocked = BlockedService::of_output(&r.stdout);
                let said = DrainSaid::of(&r.stdout);
                info!(
                    step = "drain",
                    outcome = "in-progress",
                    remaining = said.remaining,
                    pending = said.pending,
                    waiting_for = said.waiting_for,
                    "tasks still moving; the drain goes on by itself"
                );
            }
            RetireAnswer::Draining { failed: true } => {
                held.blocked = BlockedService::of_output(&r.stdout);
                warn!(step = "drain", outcome = "retry", via = %op, result = %r.summary());
            }
            RetireAnswer::NotRemoved => warn!(step = "remove", outcome = "retry", via = %op, result = %r.summary()),
            RetireAnswer::Ended { drained, removed } => {
                if *drained {
                    info!(step = "drain", outcome = "ok", "tasks moved");
                }
                if node.demote {
                    info!(step = "demote", outcome = "ok");
                }
                // Removed by this command, not found gone: this retirement removed it (a copy
                // of the event running beside it finds removed=already).
                held.acted |= removed.as_deref() == Some("true");
                info!(step = "remove", outcome = "ok", via = %op, removed = removed.as_deref().unwrap_or(""));
            }
            RetireAnswer::CannotOperate => {}
        }
        answer
    }

    /// Runs a script through the first operator; when that manager cannot be reached (agent
    /// offline, instance gone, daemon down, no longer a manager) the next one takes over.
    async fn on_operator(
        &self,
        ops: &mut Operators,
        env: &[(&str, String)],
        script: &str,
        timeout: Duration,
        what: &str,
    ) -> Result<CommandResult, Retry> {
        while let Some(op) = ops.current() {
            let mut env = env.to_vec();
            env.push(("SPARE_OPERATORS", ops.spare().to_string()));
            let cmds = script_commands(&env, script);
            let reason = match self
                .remote
                .run(std::slice::from_ref(&op), cmds, timeout, USUAL_COMMAND, what)
                .await
            {
                Ok(rs) => match rs.into_iter().find(|r| r.instance_id == op) {
                    Some(r) if r.ok() => return Ok(r),
                    Some(r) if cannot_operate(&r) => r.summary(),
                    Some(r) => return Err(Retry::Again(format!("{what} on {op}: {}", r.summary()))),
                    None => return Err(Retry::Again(format!("{what} on {op}: no result"))),
                },
                Err(e @ PortError::NotOnline(_)) => e.to_string(),
                Err(e) => return Err(retry(e)),
            };
            ops.hand_over(what, &reason);
        }
        Err(Retry::Again(format!("{what}: no reachable manager left")))
    }

    pub(super) async fn drain(&self, held: &mut Held<'_>, ops: &mut Operators, node_id: &str, end: Instant) {
        drain_started(ops);
        held.drain_began.get_or_insert_with(Instant::now);
        let mut backoff = Backoff::new(self.cfg.poll_max);
        // The node's own services still short of their count (the drain waits for no other).
        let mut waiting_for = String::new();
        loop {
            // One command waits out the drain (the held action is re-armed while it runs); a
            // failed one is sent again, through the next manager if this one cannot operate.
            let wait = end.saturating_duration_since(Instant::now());
            let env = [
                ("NODE_ID", node_id.to_string()),
                ("WAIT_SECONDS", wait.as_secs().to_string()),
                ("STOP_WHEN_BLOCKED", (!held.blocked_told).to_string()),
                ("BUDGET", held.budget().to_string()),
            ];
            let limit = Self::command_limit(wait);
            let drained = self.on_operator(ops, &env, scripts::DRAIN, limit, "drain");
            let (remaining, pending) = match self.while_alive(&held.alive, drained).await {
                Ok(r) => {
                    waiting_for = DrainSaid::of(&r.stdout).waiting_for.to_string();
                    self.note_drain(held, &r.stdout).await
                }
                Err(e) if ops.is_empty() || matches!(e, Retry::Refused(_)) => {
                    warn!(step = "drain", outcome = "failed", error = %e, "no manager can drain");
                    return;
                }
                Err(e) => {
                    warn!(step = "drain", outcome = "retry", error = %e);
                    // A failing command returns at once: pace the retries.
                    backoff.wait(end).await;
                    (u32::MAX, u32::MAX)
                }
            };
            if remaining == 0 && pending == 0 {
                info!(step = "drain", outcome = "ok", "tasks moved");
                return;
            }
            if self.tell_blocked(held).await && self.cfg.blocked_drain_proceeds {
                info!(
                    step = "drain",
                    outcome = "proceed",
                    "blocked services are not waited for"
                );
                return;
            }
            if Instant::now() >= end {
                let count = |n: u32| if n == u32::MAX { "?".to_string() } else { n.to_string() };
                let short = if waiting_for.is_empty() {
                    String::new()
                } else {
                    format!(" ({waiting_for})")
                };
                held.last_drain = format!(
                    "{} task(s) still running, {} service(s) short of their replicas{short}",
                    count(remaining),
                    count(pending)
                );
                self.drain_timed_out(held).await;
                return;
            }
        }
    }
}

impl<F: Fleet, R: Remote, D: Dns, P: Parameters, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// The drain ran out of time (what it left: `held.last_drain`): said, the budgets it
    /// waited for told broken (the node goes undrained), and kept for the action event.
    pub(super) async fn drain_timed_out(&self, held: &mut Held<'_>) {
        warn!(step = "drain", outcome = "timeout", left = %held.last_drain, "drain timed out; removing anyway");
        if !held.budget_short.is_empty() {
            // Removed undrained: its tasks stop with it, below the budgets waited for.
            let short = std::mem::take(&mut held.budget_short);
            self.tell_budget_broken(held, short, "the drain timed out waiting for the budget")
                .await;
        }
        let began = held.drain_began.unwrap_or_else(Instant::now);
        held.drain_timed_out = Some((began.elapsed(), held.last_drain.clone()));
    }
}

/// A retirement left held (the action ends with the hold, CONTINUE), told unless `quiet`.
pub(super) fn held_outcome(id: &str, detail: String, quiet: bool) -> Outcome {
    let mut o = Outcome::new(OutcomeKind::Held, Some(id), detail);
    o.result = Some(ActionResult::Continue);
    o.quiet = quiet;
    o
}

/// How long a removal is asked again while the node is not removed: an election after the
/// leader is lost can be split and take tens of seconds (27 s seen on the local cloud); a
/// demotion refused while raft changes succeeds when asked again.
pub(super) const REMOVAL_RETRY_WAIT: Duration = Duration::from_secs(60);

/// Asked again until the retry window ended: the action is released with the node still in
/// the swarm (the reconcile removes it once it is down).
pub(super) fn not_removed(op: &str) {
    error!(
        step = "remove",
        outcome = "failed",
        via = %op,
        "not removed within the retry window: released; the reconcile removes the node"
    );
}

/// How long a demoted manager may take to step down and leave (a leader: ~8.5 s measured).
const STEP_DOWN: Duration = Duration::from_secs(15);

/// Which manager a drain goes through (read by the operator-killed scenario).
fn drain_started(ops: &Operators) {
    info!(
        step = "drain",
        outcome = "started",
        via = ops.current().as_deref().unwrap_or("none")
    );
}
