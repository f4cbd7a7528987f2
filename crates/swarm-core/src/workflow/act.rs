//! An intent acted on: the event's group read into the member it acts as, the verb, then
//! its metrics and its announcement; errors no retry can fix answered once.

use super::*;

impl<F: Fleet, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// `act` on the intent as the member it reads into (from its start), or what is answered
    /// instead; an error no retry can fix answered once (`answered`).
    pub(super) async fn as_member<Acted>(
        &self,
        intent: Intent,
        listed: Option<Vec<Group>>,
        act: impl FnOnce(Intent, Member, Instant) -> Acted,
    ) -> Result<Outcome, PortError>
    where
        Acted: std::future::Future<Output = Result<Outcome, PortError>>,
    {
        let started = Instant::now();
        let id = intent.instance_id().to_string();
        let acted = match self.member_of(&intent, listed).await {
            Ok(Ok(member)) => act(intent, member, started).await,
            Ok(Err(o)) => Ok(o),
            Err(e) => Err(e),
        };
        answered(&id, acted)
    }

    /// The event's group, and so the instance's cluster and role: the member this invocation
    /// acts as, or what it answers instead (not this cluster's group, misconfigured).
    pub(super) async fn member_of(
        &self,
        intent: &Intent,
        listed: Option<Vec<Group>>,
    ) -> Result<Result<Member, Outcome>, PortError> {
        let group_name = intent.group().to_string();
        let id = intent.instance_id().to_string();
        // One call finds the event's group and its cluster's other groups: this deployment's
        // cluster only.
        let tagged = match listed {
            Some(groups) => groups,
            None => {
                self.fleet
                    .groups_tagged(&self.cfg.cluster_tag, &self.cfg.cluster_name)
                    .await?
            }
        };
        let group = match tagged.iter().find(|g| g.name == group_name) {
            Some(g) => Some(g.clone()),
            // Untagged or gone: ask for it by name to tell which.
            None => self
                .fleet
                .describe_groups(std::slice::from_ref(&group_name))
                .await?
                .into_iter()
                .next(),
        };
        let Some(group) = group else {
            warn!(step = "group", outcome = "ignored", "Auto Scaling group not found");
            return Ok(Err(Outcome::new(OutcomeKind::Ignored, Some(&id), "group not found")));
        };
        if let Some(other) = self.other_cluster(&group, &id) {
            return Ok(Err(other));
        }
        let member = match membership(&group, &self.cfg) {
            Membership::Unmanaged => {
                info!(
                    step = "group",
                    outcome = "ignored",
                    "group has no {} tag",
                    self.cfg.cluster_tag
                );
                return Ok(Err(Outcome::new(
                    OutcomeKind::Ignored,
                    Some(&id),
                    "group is not part of a swarm cluster",
                )));
            }
            Membership::Misconfigured(reason) => {
                error!(step = "group", outcome = "misconfigured", %reason);
                let result = if matches!(intent, Intent::Join { .. }) {
                    ActionResult::Abandon
                } else {
                    ActionResult::Continue
                };
                return self.finish(intent, result, &reason).await.map(Err);
            }
            Membership::Member {
                cluster,
                role,
                dns_name,
            } => Member {
                groups: tagged
                    .into_iter()
                    .filter(|g| g.tag(&self.cfg.cluster_tag) == Some(cluster.as_str()))
                    .collect(),
                cluster,
                role,
                dns_name,
            },
        };
        Ok(Ok(member))
    }
}

impl<F, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// The outcome for a group tagged with another cluster (left alone: another deployment's)
    /// or with a malformed cluster tag (left to the hook's default result); None: this cluster's.
    fn other_cluster(&self, group: &Group, id: &str) -> Option<Outcome> {
        // A group tagged with another cluster: the roles reach only groups tagged with this
        // one (autoscaling:ResourceTag), so nothing is called and its hook's default applies.
        if let Some(tag) = group.tag(&self.cfg.cluster_tag).filter(|c| *c != self.cfg.cluster_name) {
            if crate::safe::is_cluster_name(tag) {
                // Another deployment's cluster: its own functions handle it.
                info!(step = "group", outcome = "other-cluster", cluster = %tag, "another cluster's group: left alone");
                return Some(Outcome::new(
                    OutcomeKind::Ignored,
                    Some(id),
                    format!("group of cluster {tag}, not {}", self.cfg.cluster_name),
                ));
            }
            let reason = crate::config::invalid_cluster_tag(group, &self.cfg);
            error!(step = "group", outcome = "misconfigured", %reason, "left to the hook's default result");
            return Some(Outcome::new(
                OutcomeKind::Ignored,
                Some(id),
                format!("{reason}: not this cluster's group; the hook's default result applies"),
            ));
        }
        None
    }
}

impl<F: Fleet, R: Remote, D: Dns, P: Parameters, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// Acts on an intent of a `member` of this cluster: the verb, then its metrics and its
    /// announcement.
    pub(super) async fn act_as(
        &self,
        intent: Intent,
        member: Member,
        started: Instant,
        deadline: Option<Instant>,
    ) -> Result<Outcome, PortError> {
        if !matches!(intent, Intent::Join { .. }) {
            return self.leave_as(intent, member, started, deadline).await;
        }
        log_start(&member);
        // The budget counts from the action's start: the event may have waited in Lambda's
        // queue, and the hook's clock has run all along.
        let action_start = action_started(&intent);
        let budget_end = clamp(action_start + self.cfg.agent_wait + self.cfg.join_budget, deadline);
        let outcome = self.join(&intent, &member, action_start, budget_end).await;
        self.account(&intent, &member, started, outcome).await
    }
}

impl<F: Fleet, R: Remote, D: Dns, P, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// `handle_listed` for an event that only ever takes a node out (a scheduled change): no join,
    /// so no Parameter Store on this road.
    pub(super) async fn leave_listed(
        &self,
        intent: Intent,
        deadline: Option<Instant>,
        listed: Option<Vec<Group>>,
    ) -> Result<Outcome, PortError> {
        let act = |intent, member, started| self.leave_as(intent, member, started, deadline);
        self.as_member(intent, listed, act).await
    }

    /// A retirement, drain or cordon of a `member`, then its metrics and its announcement.
    async fn leave_as(
        &self,
        intent: Intent,
        member: Member,
        started: Instant,
        deadline: Option<Instant>,
    ) -> Result<Outcome, PortError> {
        log_start(&member);
        let outcome = match &intent {
            Intent::Join { instance_id, .. } => {
                warn!(
                    step = "plan",
                    outcome = "ignored",
                    "a join where only leaving was asked"
                );
                Ok(Outcome::new(OutcomeKind::Ignored, Some(instance_id), "not joined here"))
            }
            Intent::Retire { .. } => self.retire(&intent, &member, self.retire_end(deadline)).await,
            Intent::Drain { .. } => {
                let budget_end = clamp(
                    Instant::now() + self.cfg.drain_timeout + Duration::from_secs(30),
                    deadline,
                );
                self.drain_only(&intent, &member, budget_end).await
            }
            Intent::Cordon { .. } => self.cordon(&intent, &member).await,
        };
        self.account(&intent, &member, started, outcome).await
    }
}

impl<F, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
    /// Where a retirement (or its check) stops: its drain's timeout and the removal after it,
    /// within the invocation's deadline.
    pub(super) fn retire_end(&self, deadline: Option<Instant>) -> Instant {
        clamp(
            Instant::now() + self.cfg.drain_timeout + crate::config::RETIRE_AFTER_DRAIN,
            deadline,
        )
    }
}

impl<F, R, D, P, A: Announce, Q> Lifecycle<F, R, D, P, A, Q> {
    /// An act's metrics and its announcement.
    pub(super) async fn account(
        &self,
        intent: &Intent,
        member: &Member,
        started: Instant,
        outcome: Result<Outcome, PortError>,
    ) -> Result<Outcome, PortError> {
        metric(
            &member.cluster,
            member.role.as_str(),
            "StepDuration",
            started.elapsed().as_secs_f64() * 1000.0,
            "Milliseconds",
        );
        if let Ok(o) = &outcome {
            if let Some(name) = metric_name(o) {
                metric(&member.cluster, member.role.as_str(), name, 1.0, "Count");
            }
            let verb = match intent {
                Intent::Join { .. } => announce::Verb::Join,
                Intent::Retire { .. } => announce::Verb::Retire,
                Intent::Drain { .. } | Intent::Cordon { .. } => announce::Verb::Other,
            };
            let age = action_age(intent);
            if let Some(e) =
                announce::of_outcome(verb, &member.cluster, member.role.as_str(), o, age, started.elapsed())
            {
                self.announce(e).await;
            }
        } else {
            metric(&member.cluster, member.role.as_str(), "Failures", 1.0, "Count");
        }
        outcome
    }
}

/// How long ago the intent's lifecycle action began (the event's time), when it says; zero
/// for a clock ahead of ours. The event's time has whole seconds: the age from it is never
/// shorter than the action's.
pub(super) fn action_age(intent: &Intent) -> Option<Duration> {
    let t = intent.action()?.started_unix?;
    Some(
        SystemTime::now()
            .duration_since(UNIX_EPOCH + Duration::from_secs(t))
            .unwrap_or_default(),
    )
}

/// When the intent's lifecycle action began, as an instant: now when it has no action (or no
/// time).
pub(super) fn action_started(intent: &Intent) -> Instant {
    let age = action_age(intent).unwrap_or_default();
    Instant::now().checked_sub(age).unwrap_or_else(Instant::now)
}

/// An error no retry can fix (a refused permission, a rejected request) said once and
/// answered with success; Err only for what a later delivery may fix.
pub(super) fn answered(id: &str, r: Result<Outcome, PortError>) -> Result<Outcome, PortError> {
    match r {
        Err(e @ PortError::Denied { .. }) => {
            error!(step = "permission", outcome = "denied", error = %e, "a permission is missing from the function's role");
            Ok(Outcome::new(OutcomeKind::Denied, Some(id), e.to_string()))
        }
        Err(e @ PortError::Invalid { .. }) => {
            error!(step = "request", outcome = "rejected", error = %e, "AWS rejected a request: not retried");
            Ok(Outcome::new(OutcomeKind::Rejected, Some(id), e.to_string()))
        }
        other => other,
    }
}

pub(super) fn log_start(member: &Member) {
    tracing::Span::current().record("cluster", member.cluster.as_str());
    info!(step = "start", cluster = %member.cluster, role = %member.role, "handling");
}

/// The count an outcome adds to. None: a held termination told already (found done again, or
/// completed by the check at its hold's end), so each hold counts once; work done without an
/// action of its own (a notice's drain or cordon, a retirement whose action another invocation
/// completed) counts in its step's metric (Drains, Cordons, Removals), not as an ignored event.
pub(super) fn metric_name(o: &Outcome) -> Option<&'static str> {
    Some(match (o.outcome, o.result) {
        (_, Some(ActionResult::Abandon)) => "AbandonedActions",
        (OutcomeKind::Completed, _) => "CompletedActions",
        (OutcomeKind::Held, _) if o.quiet => return None,
        (OutcomeKind::Done, _) => return None,
        (OutcomeKind::Held, _) => "HeldTerminations",
        (OutcomeKind::Draining, _) => "HandedOverDrains",
        (OutcomeKind::Retiring, _) => "HandedOverRetirements",
        _ => "IgnoredEvents",
    })
}
