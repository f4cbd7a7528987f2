//! The workflows: an event becomes an intent, and each verb has its room (join.rs,
//! retire.rs; the reconcile in reconcile.rs), sharing observation (observe.rs), the held
//! action's clock (held.rs), the manager record (dns.rs) and, here, completion and commands.
//! Every step is idempotent, so a redelivered event or a killed invocation is finished by the
//! next delivery.

mod dns;
mod drain_check;
mod held;
mod join;
mod kept_alive;
mod notice;
mod observe;
mod queued;
mod reconcile;
mod retire;
mod service_names;

pub use crate::outcome::{Outcome, OutcomeKind};
pub use reconcile::{ClusterReport, NamesReport, Scope, Survey};

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::time::Instant;
use tracing::{debug, error, info, info_span, warn, Instrument};

use crate::announce::{self, ActionEvent};
use crate::event::{self, EventError, Intent};
use crate::model::{
    membership, Group, Instance, LifecycleState, ManagerRecord, Membership, NodeStatus, Probe, Role, SwarmView,
};
use crate::plan::{self, JoinDecision, JoinSnapshot, LockEntry, Peer, RetireSnapshot, RetireStep};
use crate::ports::{
    ActionResult, Announce, Checks, CommandResult, Dns, Fleet, Parameters, PortError, PortResult, RecordChange, Remote,
    USUAL_COMMAND, USUAL_JOIN,
};
use crate::safe::script_commands;
use crate::scripts::{self, DrainSaid, NodeSaid, ScriptExit};
use crate::telemetry::metric;
use crate::Config;

/// The ports plus configuration: everything a workflow needs.
pub struct Lifecycle<F, R, D, P, A, Q> {
    pub fleet: F,
    pub remote: R,
    pub dns: D,
    pub params: P,
    pub events: A,
    /// Drain checks for later invocations (DRAIN_CHECK_QUEUE_URL).
    pub checks: Q,
    pub cfg: Config,
}

#[derive(Clone)]
struct Member {
    cluster: String,
    role: Role,
    dns_name: Option<String>,
    /// The cluster's groups as read at the start of the invocation; empty when none were read
    /// (a retirement's check: see `listed`).
    groups: Vec<Group>,
}

impl Member {
    /// The groups this invocation read, or None when it read none (a read always lists the
    /// member's own group).
    fn listed(&self) -> Option<&[Group]> {
        (!self.groups.is_empty()).then_some(self.groups.as_slice())
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Exponential backoff with full jitter, capped.
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    fn new(max: Duration) -> Self {
        Backoff {
            next: Duration::from_millis(250).min(max),
            max,
        }
    }
    async fn wait(&mut self, deadline: Instant) {
        let jittered = self.next.mul_f64(0.5 + rand::random::<f64>() * 0.5);
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(jittered.min(left)).await;
        self.next = (self.next * 2).min(self.max);
    }
}

impl<F: Fleet, R: Remote, D: Dns, P: Parameters, A: Announce, Q: Checks> Lifecycle<F, R, D, P, A, Q> {
    /// Handles one lifecycle event. Bad input is logged and answered with success (an
    /// error would make Lambda retry an event that can never succeed). Err is returned
    /// only for failures a later delivery can fix.
    pub async fn handle(&self, raw: &Value, deadline: Option<Instant>) -> Result<Outcome, PortError> {
        debug!(
            step = "event",
            detail_type = raw.get("detail-type").and_then(|v| v.as_str()),
            "received"
        );
        let (meta, intent) = match event::lifecycle_intent(raw) {
            Ok(x) => x,
            Err(EventError::TestNotification) => {
                info!(step = "parse", outcome = "ignored", "test notification");
                return Ok(Outcome::new(OutcomeKind::Ignored, None, "test notification"));
            }
            Err(e) => {
                error!(step = "parse", outcome = "invalid", error = %e, "event rejected");
                return Ok(Outcome::new(OutcomeKind::Invalid, None, e.to_string()));
            }
        };
        let span = info_span!(
            "lifecycle",
            event_id = %meta.id,
            instance_id = %intent.instance_id(),
            group = %intent.group(),
            intent = intent.kind(),
        );
        // A termination's one read of the cluster's groups serves its retirement and the look
        // for terminations queued behind it (a failed read is read again, and said, by `act_on`).
        let listed = match intent {
            Intent::Retire { .. } => self
                .fleet
                .groups_tagged(&self.cfg.cluster_tag, &self.cfg.cluster_name)
                .await
                .ok(),
            _ => None,
        };
        let outcome = self
            .handle_listed(intent.clone(), deadline, listed.clone())
            .instrument(span.clone())
            .await;
        // A terminate function at its concurrency: the events behind this one wait in Lambda's
        // queue, their actions with them (queued.rs).
        self.adopt_waiting(&intent, deadline, listed.as_deref())
            .instrument(span)
            .await;
        outcome
    }

    /// Handles an ECS "Container Instance State Change": the instance's group (and so its
    /// cluster and role) is looked up; instances outside any cluster get one log line.
    pub async fn handle_ecs(&self, raw: &Value, deadline: Option<Instant>) -> Result<Outcome, PortError> {
        let (meta, instance_id, change) = match event::ecs_change(raw) {
            Ok(x) => x,
            Err(e) => {
                error!(step = "parse", outcome = "invalid", error = %e, "event rejected");
                return Ok(Outcome::new(OutcomeKind::Invalid, None, e.to_string()));
            }
        };
        let span = info_span!("ecs", event_id = %meta.id, instance_id = %instance_id, change = ?change);
        async {
            if change == event::EcsChange::Transitional {
                info!(step = "parse", outcome = "ignored", "transitional status");
                return Ok(Outcome::new(
                    OutcomeKind::Ignored,
                    Some(&instance_id),
                    "transitional status",
                ));
            }
            let groups = self.fleet.instance_groups(std::slice::from_ref(&instance_id)).await?;
            let Some((group, member)) = groups.into_iter().next() else {
                info!(
                    step = "group",
                    outcome = "ignored",
                    "instance is in no Auto Scaling group"
                );
                return Ok(Outcome::new(
                    OutcomeKind::Ignored,
                    Some(&instance_id),
                    "instance is in no Auto Scaling group",
                ));
            };
            let intent = match change {
                event::EcsChange::Active => Intent::Join {
                    instance_id,
                    group,
                    action: None,
                },
                event::EcsChange::Draining => Intent::Drain { instance_id, group },
                // Deregistered from ECS but still in service: an agent re-registering (an
                // ACTIVE follows and reactivates it) or taken off ECS by hand. Its tasks move,
                // the node stays; it leaves the swarm when its instance goes (terminate hook,
                // or the reconcile).
                event::EcsChange::Deregistered if member.lifecycle_state == LifecycleState::InService => {
                    info!(
                        step = "deregistered",
                        outcome = "drain-only",
                        "instance still in service: drained, kept"
                    );
                    Intent::Drain { instance_id, group }
                }
                event::EcsChange::Deregistered | event::EcsChange::Transitional => Intent::Retire {
                    instance_id,
                    group,
                    action: None,
                },
            };
            self.handle_intent(intent, deadline).await
        }
        .instrument(span)
        .await
    }

    /// Handles one drain check (the drain-check function's SQS message): a drain handed over
    /// by a terminate hook, looked at again. A body that is not a check is logged and dropped.
    pub async fn handle_drain_check(&self, body: &str, deadline: Option<Instant>) -> Result<Outcome, PortError> {
        let check: plan::drain_check::DrainCheck = match serde_json::from_str(body) {
            Ok(c) => c,
            Err(e) => {
                error!(step = "parse", outcome = "invalid", error = %e, "drain check rejected");
                return Ok(Outcome::new(
                    OutcomeKind::Invalid,
                    None,
                    format!("not a drain check: {e}"),
                ));
            }
        };
        let intent = Intent::Retire {
            instance_id: check.action.instance_id.clone(),
            group: check.action.group.clone(),
            action: Some(check.action.clone()),
        };
        let span = info_span!(
            "lifecycle",
            instance_id = %intent.instance_id(),
            group = %intent.group(),
            intent = "drain-check",
        );
        let id = intent.instance_id().to_string();
        async { answered(&id, self.check_on(intent, deadline, check).await) }
            .instrument(span)
            .await
    }

    /// A drain check: its retirement's next step. A retirement already sent reads no groups:
    /// the message says the node and the manager; the other managers are read only when it
    /// hands over (`operators`). Nothing here reaches the other verbs: the drain-check
    /// function's binary holds only what checks call (scripts/reachable-actions.py).
    async fn check_on(
        &self,
        intent: Intent,
        deadline: Option<Instant>,
        check: plan::drain_check::DrainCheck,
    ) -> Result<Outcome, PortError> {
        let started = Instant::now();
        let member = if check.phase != plan::drain_check::Phase::Draining {
            Member {
                cluster: self.cfg.cluster_name.clone(),
                role: check.role,
                dns_name: None,
                groups: vec![],
            }
        } else {
            match self.member_of(&intent, None).await? {
                Ok(m) => m,
                Err(o) => return Ok(o),
            }
        };
        log_start(&member);
        let budget_end = clamp(
            Instant::now() + self.cfg.drain_timeout + crate::config::RETIRE_AFTER_DRAIN,
            deadline,
        );
        let outcome = self.check_drain(&intent, &member, check, budget_end).await;
        self.account(&intent, &member, started, outcome).await
    }

    /// `listed`: this cluster's groups, when the caller has just read them.
    async fn act_on(
        &self,
        intent: Intent,
        deadline: Option<Instant>,
        listed: Option<Vec<Group>>,
    ) -> Result<Outcome, PortError> {
        let started = Instant::now();
        match self.member_of(&intent, listed).await? {
            Ok(member) => self.act_as(intent, member, started, deadline).await,
            Err(o) => Ok(o),
        }
    }

    /// The event's group, and so the instance's cluster and role: the member this invocation
    /// acts as, or what it answers instead (not this cluster's group, misconfigured).
    async fn member_of(
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
        // A group tagged with another cluster: the roles reach only groups tagged with this
        // one (autoscaling:ResourceTag), so nothing is called and its hook's default applies.
        if let Some(tag) = group.tag(&self.cfg.cluster_tag).filter(|c| *c != self.cfg.cluster_name) {
            if crate::safe::is_cluster_name(tag) {
                // Another deployment's cluster: its own functions handle it.
                info!(step = "group", outcome = "other-cluster", cluster = %tag, "another cluster's group: left alone");
                return Ok(Err(Outcome::new(
                    OutcomeKind::Ignored,
                    Some(&id),
                    format!("group of cluster {tag}, not {}", self.cfg.cluster_name),
                )));
            }
            let reason = crate::model::invalid_cluster_tag(&group, &self.cfg);
            error!(step = "group", outcome = "misconfigured", %reason, "left to the hook's default result");
            return Ok(Err(Outcome::new(
                OutcomeKind::Ignored,
                Some(&id),
                format!("{reason}: not this cluster's group; the hook's default result applies"),
            )));
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

    /// Acts on an intent of a `member` of this cluster: the verb, then its metrics and its
    /// announcement.
    async fn act_as(
        &self,
        intent: Intent,
        member: Member,
        started: Instant,
        deadline: Option<Instant>,
    ) -> Result<Outcome, PortError> {
        log_start(&member);
        let outcome = match &intent {
            Intent::Join { .. } => {
                // The budget counts from the action's start: the event may have waited in
                // Lambda's queue, and the hook's clock has run all along.
                let started = action_started(&intent);
                let budget_end = clamp(started + self.cfg.agent_wait + self.cfg.join_budget, deadline);
                self.join(&intent, &member, started, budget_end).await
            }
            Intent::Retire { .. } => {
                let budget_end = clamp(
                    Instant::now() + self.cfg.drain_timeout + crate::config::RETIRE_AFTER_DRAIN,
                    deadline,
                );
                self.retire(&intent, &member, budget_end).await
            }
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

    /// An act's metrics and its announcement.
    async fn account(
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

    /// Handles one intent. An error no retry can fix (Lambda's own two included) is said once
    /// and answered with success; the action is left to the hook's DefaultResult and the
    /// Failures alarm tells someone. Err: a later delivery may succeed.
    pub async fn handle_intent(&self, intent: Intent, deadline: Option<Instant>) -> Result<Outcome, PortError> {
        self.handle_listed(intent, deadline, None).await
    }

    /// `handle_intent` for a caller that has just read this cluster's groups (`listed`).
    async fn handle_listed(
        &self,
        intent: Intent,
        deadline: Option<Instant>,
        listed: Option<Vec<Group>>,
    ) -> Result<Outcome, PortError> {
        let id = intent.instance_id().to_string();
        answered(&id, self.act_on(intent, deadline, listed).await)
    }

    /// Completes the lifecycle action (if the intent has one). An action that is no
    /// longer waiting is not an error: a redelivery, or the hook timed out.
    async fn finish(&self, intent: &Intent, result: ActionResult, reason: &str) -> Result<Outcome, PortError> {
        let id = intent.instance_id();
        let mut o = Outcome::new(OutcomeKind::Completed, Some(id), reason);
        o.result = Some(result);
        let Some(action) = intent.action() else {
            o.outcome = OutcomeKind::Done;
            return Ok(o);
        };
        if self.cfg.dry_run {
            info!(step = "complete", outcome = "dry-run", result = result.as_str(), %reason);
            o.outcome = OutcomeKind::DryRun;
            return Ok(o);
        }
        match self.fleet.complete_action(action, result).await {
            Ok(()) => {
                if result == ActionResult::Abandon {
                    warn!(step = "complete", outcome = "abandoned", result = result.as_str(), %reason);
                } else {
                    info!(step = "complete", outcome = "completed", result = result.as_str(), %reason);
                }
                Ok(o)
            }
            Err(PortError::NoActiveAction(_)) => {
                info!(
                    step = "complete",
                    outcome = "no-action",
                    result = result.as_str(),
                    "lifecycle action already ended"
                );
                o.outcome = OutcomeKind::AlreadyEnded;
                Ok(o)
            }
            Err(e) => {
                error!(step = "complete", outcome = "failed", error = %e);
                Err(e)
            }
        }
    }

    /// Publishes an action event, when an event bus is configured (ACTION_EVENT_BUS) and this
    /// is no dry run. A failure is logged and counted (UnpublishedEvents), never returned: the
    /// work it reports is done.
    pub(crate) async fn announce(&self, event: ActionEvent) {
        let Some(bus) = self.cfg.event_bus.as_deref() else {
            return;
        };
        if self.cfg.dry_run {
            return;
        }
        let detail_type = event.detail_type();
        match self.events.announce(bus, &event).await {
            Ok(()) => info!(step = "announce", outcome = "published", detail_type),
            Err(e) => {
                if e.is_final() {
                    error!(step = "announce", outcome = "failed", detail_type, error = %e, "action event refused: not retried");
                } else {
                    warn!(step = "announce", outcome = "failed", detail_type, error = %e, "action event lost");
                }
                metric(
                    &event.cluster,
                    event.role.as_deref().unwrap_or("cluster"),
                    "UnpublishedEvents",
                    1.0,
                    "Count",
                );
            }
        }
    }

    /// Runs a script and maps failure to its summary (for callers that only report).
    pub(crate) async fn run_checked(&self, on: &str, cmds: Vec<String>, what: &str) -> Result<(), String> {
        self.run_one(on, cmds, what)
            .await
            .map(|_| ())
            .map_err(|r| r.to_string())
    }

    async fn run_raw(&self, on: &str, cmds: Vec<String>, usual: Duration, what: &str) -> Result<CommandResult, Retry> {
        let results = self
            .remote
            .run(&[on.to_string()], cmds, self.cfg.command_timeout, usual, what)
            .await
            .map_err(retry)?;
        results
            .into_iter()
            .find(|r| r.instance_id == on)
            .ok_or_else(|| Retry::Again(format!("{what} on {on}: no result")))
    }

    async fn run_one(&self, on: &str, cmds: Vec<String>, what: &str) -> Result<CommandResult, Retry> {
        let r = self.run_raw(on, cmds, USUAL_COMMAND, what).await?;
        if r.ok() {
            Ok(r)
        } else {
            Err(Retry::Again(format!("{what} on {on}: {}", r.summary())))
        }
    }
}

/// How long ago the intent's lifecycle action began (the event's time), when it says; zero
/// for a clock ahead of ours. The event's time has whole seconds: the age from it is never
/// shorter than the action's.
fn action_age(intent: &Intent) -> Option<Duration> {
    let t = intent.action()?.started_unix?;
    Some(
        SystemTime::now()
            .duration_since(UNIX_EPOCH + Duration::from_secs(t))
            .unwrap_or_default(),
    )
}

/// When the intent's lifecycle action began, as an instant: now when it has no action (or no
/// time).
fn action_started(intent: &Intent) -> Instant {
    let age = action_age(intent).unwrap_or_default();
    Instant::now().checked_sub(age).unwrap_or_else(Instant::now)
}

/// A failed attempt: the next round may fix it, unless AWS refused the caller or the
/// instance is leaving.
#[derive(Debug)]
enum Retry {
    Again(String),
    Refused(PortError),
    /// The instance refused to join: its retirement has begun (`fence.sh`).
    Retiring,
    /// The instance can never run Swarm as it is (its daemon's firewall backend): asking
    /// again cannot help.
    Unfit(String),
}

impl std::fmt::Display for Retry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Retry::Again(reason) => f.write_str(reason),
            Retry::Refused(e) => write!(f, "{e}"),
            Retry::Retiring => f.write_str("the instance is being retired"),
            Retry::Unfit(reason) => f.write_str(reason),
        }
    }
}

fn retry(e: PortError) -> Retry {
    if e.is_final() {
        Retry::Refused(e)
    } else {
        Retry::Again(e.to_string())
    }
}

fn clamp(t: Instant, deadline: Option<Instant>) -> Instant {
    match deadline {
        Some(d) => t.min(d),
        None => t,
    }
}

/// The count an outcome adds to. None: a held termination told already (found done again, or
/// completed by the check at its hold's end), so each hold counts once.
/// An error no retry can fix (a refused permission, a rejected request) said once and
/// answered with success; Err only for what a later delivery may fix.
fn answered(id: &str, r: Result<Outcome, PortError>) -> Result<Outcome, PortError> {
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

fn log_start(member: &Member) {
    tracing::Span::current().record("cluster", member.cluster.as_str());
    info!(step = "start", cluster = %member.cluster, role = %member.role, "handling");
}

fn metric_name(o: &Outcome) -> Option<&'static str> {
    Some(match (o.outcome, o.result) {
        (_, Some(ActionResult::Abandon)) => "AbandonedActions",
        (OutcomeKind::Completed, _) => "CompletedActions",
        (OutcomeKind::Held, _) if o.quiet => return None,
        (OutcomeKind::Held, _) => "HeldTerminations",
        (OutcomeKind::Draining, _) => "HandedOverDrains",
        (OutcomeKind::Retiring, _) => "HandedOverRetirements",
        _ => "IgnoredEvents",
    })
}

/// The cluster's manager instances that are not leaving, other than `except`.
pub fn manager_ids(groups: &[Group], cfg: &Config, except: &str) -> Vec<String> {
    let mut ids: Vec<String> = groups
        .iter()
        .filter(|g| {
            matches!(
                membership(g, cfg),
                Membership::Member {
                    role: Role::Manager,
                    ..
                }
            )
        })
        .flat_map(|g| g.instances.iter())
        .filter(|i| !i.is_leaving() && i.id != except)
        .map(|i| i.id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests;
