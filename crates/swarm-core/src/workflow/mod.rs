//! The workflows: an event becomes an intent, and each verb has its room (join.rs,
//! retire.rs; the reconcile in reconcile.rs), sharing observation (observe.rs), the held
//! action's clock (held.rs), the manager record (dns.rs) and, here, completion and commands.
//! Every step is idempotent, so a redelivered event or a killed invocation is finished by the
//! next delivery. Each `impl` block bounds only the ports its methods use (`F: Fleet`, …), so
//! a handler's type says which ports its function must build, and the compiler holds every
//! room to its own.

mod act;
mod check;
mod dns;
mod drain_check;
mod drain_notes;
mod ecs;
mod hand_over;
mod held;
mod in_place;
mod join;
mod join_commands;
mod join_fast;
mod join_wait;
mod kept_alive;
mod notice;
mod observe;
mod queued;
mod reconcile;
mod repair;
mod retire;
mod retire_node;
mod retirement_check;
mod service_names;
mod survey;

pub use crate::outcome::{Outcome, OutcomeKind};
pub use reconcile::{ClusterReport, NamesReport, Scope};
pub use survey::Survey;

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::time::Instant;
use tracing::{debug, error, info, info_span, warn, Instrument};

use crate::announce::{self, ActionEvent};
use crate::config::{membership, Membership};
use crate::event::{self, EventError, Intent};
use crate::model::{Group, Instance, LifecycleState, ManagerRecord, NodeStatus, Probe, Role, SwarmView};
use crate::plan::{self, JoinDecision, JoinSnapshot, LockEntry, Peer, RetireSnapshot, RetireStep};
use crate::ports::{
    ActionResult, Announce, Checks, CommandResult, Dns, Fleet, Parameters, PortError, PortResult, RecordChange, Remote,
    USUAL_COMMAND, USUAL_JOIN,
};
use crate::safe::script_commands;
use crate::scripts::{self, DrainSaid, NodeSaid, ScriptExit};
use crate::telemetry::metric;
use crate::Config;
use act::action_started;

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
        // for terminations queued behind it (a failed read is read again, and said, by `member_of`).
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
        let act = |intent, member, started| self.act_as(intent, member, started, deadline);
        self.as_member(intent, listed, act).await
    }
}

impl<F: Fleet, R, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
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
}

impl<F, R, D, P, A: Announce, Q> Lifecycle<F, R, D, P, A, Q> {
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
}

impl<F, R: Remote, D, P, A, Q> Lifecycle<F, R, D, P, A, Q> {
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
        results.into_iter().find(|r| r.instance_id == on).ok_or_else(|| {
            Retry::Again(Again::NoResult {
                what: what.into(),
                on: on.into(),
            })
        })
    }

    async fn run_one(&self, on: &str, cmds: Vec<String>, what: &str) -> Result<CommandResult, Retry> {
        let r = self.run_raw(on, cmds, USUAL_COMMAND, what).await?;
        if r.ok() {
            Ok(r)
        } else {
            Err(Retry::Again(Again::Failed {
                what: what.into(),
                on: on.into(),
                result: r.summary(),
            }))
        }
    }
}

/// A failed attempt: the next round may fix it, unless AWS refused the caller or the
/// instance is leaving.
#[derive(Debug)]
enum Retry {
    Again(Again),
    Refused(PortError),
    /// The instance refused to join: its retirement has begun (`fence.sh`).
    Retiring,
    /// The instance can never run Swarm as it is (its daemon's firewall backend): asking
    /// again cannot help.
    Unfit(String),
}

/// Why an attempt did not succeed this time; the next may.
#[derive(Debug)]
enum Again {
    /// An AWS error a later call may not get (throttled, unavailable, an agent not online).
    Port(PortError),
    /// `what` ran on `on` and failed, as `result` summarises.
    Failed { what: String, on: String, result: String },
    /// No result of `what` came back from `on`.
    NoResult { what: String, on: String },
    /// Every manager that could run `what` was unreachable or could not act.
    NoManager { what: String },
    /// The join through `manager` failed, as `result` summarises.
    JoinRefused { manager: String, result: String },
    /// The instance has no private IP (yet).
    NoPrivateIp,
    /// Another manager holds the init lock.
    InitLockTaken,
    /// The node's id was not printed, or is not one.
    NodeIdUnknown,
}

impl std::fmt::Display for Again {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Again::Port(e) => write!(f, "{e}"),
            Again::Failed { what, on, result } => write!(f, "{what} on {on}: {result}"),
            Again::NoResult { what, on } => write!(f, "{what} on {on}: no result"),
            Again::NoManager { what } => write!(f, "{what}: no reachable manager left"),
            Again::JoinRefused { manager, result } => write!(f, "join via {manager} failed: {result}"),
            Again::NoPrivateIp => f.write_str("no private IP"),
            Again::InitLockTaken => f.write_str("init lock taken by another manager"),
            Again::NodeIdUnknown => f.write_str("node id unknown"),
        }
    }
}

impl std::fmt::Display for Retry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Retry::Again(why) => write!(f, "{why}"),
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
        Retry::Again(Again::Port(e))
    }
}

fn clamp(t: Instant, deadline: Option<Instant>) -> Instant {
    match deadline {
        Some(d) => t.min(d),
        None => t,
    }
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
