//! Action events: what the functions did, told to people as EventBridge custom events (source
//! `swarm-lifecycle`, docs/operate.md "Action events"). Pure: an outcome or a reconcile run in, the event
//! out. Publishing is the `Announce` port's; a publication that fails is logged and counted,
//! never fails the work it reports.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::model::ActionResult;
use crate::outcome::{Outcome, OutcomeKind};
use crate::plan::reconcile::Health;

/// The events' `source`. IAM scopes the functions' events:PutEvents to it.
pub const SOURCE: &str = "swarm-lifecycle";

/// The detail-types, one per kind of action (docs/operate.md, "Action events").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// A node joined (its launch action completed with CONTINUE, or a join without action).
    NodeJoined,
    /// A launch action was completed with ABANDON: the instance never became a Ready node.
    LaunchAbandoned,
    /// A node was taken out of the swarm (its termination completed, or held for the record).
    NodeRetired,
    /// A drain ran out of time: the node left with tasks still moving.
    DrainTimedOut,
    /// A drain found tasks of the leaving node's services that the swarm cannot place.
    DrainBlocked,
    /// A reconcile run left repairs to the next run (its deadline came first).
    ReconcileDeferred,
    /// One more manager lost and the swarm can no longer change (or it cannot already).
    QuorumAtRisk,
    /// A disruption took services below their `swarm-lifecycle.min-available` (an involuntary
    /// one that could not wait, or a drain that ran out of time waiting for the budget).
    BudgetBroken,
    /// A service's budget label cannot be read (ignored: never a stuck drain).
    BudgetInvalid,
    /// A service's `swarm-lifecycle.dns-name` names a record the cluster may not keep (told
    /// once per refusal; logged every run).
    ServiceNameRefused,
}

impl ActionKind {
    pub const ALL: [ActionKind; 10] = [
        ActionKind::NodeJoined,
        ActionKind::LaunchAbandoned,
        ActionKind::NodeRetired,
        ActionKind::DrainTimedOut,
        ActionKind::DrainBlocked,
        ActionKind::ReconcileDeferred,
        ActionKind::QuorumAtRisk,
        ActionKind::BudgetBroken,
        ActionKind::BudgetInvalid,
        ActionKind::ServiceNameRefused,
    ];

    pub fn detail_type(self) -> &'static str {
        match self {
            ActionKind::NodeJoined => "Swarm Node Joined",
            ActionKind::LaunchAbandoned => "Swarm Launch Abandoned",
            ActionKind::NodeRetired => "Swarm Node Retired",
            ActionKind::DrainTimedOut => "Swarm Drain Timed Out",
            ActionKind::DrainBlocked => "Swarm Drain Blocked",
            ActionKind::ReconcileDeferred => "Swarm Reconcile Deferred",
            ActionKind::QuorumAtRisk => "Swarm Quorum At Risk",
            ActionKind::BudgetBroken => "Swarm Budget Broken",
            ActionKind::BudgetInvalid => "Swarm Budget Invalid",
            ActionKind::ServiceNameRefused => "Swarm Service Name Refused",
        }
    }
}

/// One event's detail (JSON, camelCase). `version` changes only when a field changes meaning.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionEvent {
    #[serde(skip)]
    pub kind: ActionKind,
    pub version: u32,
    pub cluster: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// joined | abandoned | retired | held | removed | drain-timed-out | drain-blocked | deferred |
    /// quorum-at-risk
    pub outcome: String,
    pub reason: String,
    /// Seconds: `action` since the lifecycle action began (when the event said), `invocation`
    /// of this function's work, `drain` of a drain.
    pub durations: BTreeMap<&'static str, f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quorum_margin: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_managers: Option<usize>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deferred: Vec<String>,
    /// The services whose tasks cannot be placed, each with docker's reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocked: Vec<BlockedService>,
    /// The services whose disruption budget is broken or unreadable, each with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<BlockedService>,
    /// The service and the name of a refused `swarm-lifecycle.dns-name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_name: Option<String>,
}

/// A service a drain waits for whose task the swarm cannot place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockedService {
    pub service: String,
    pub reason: String,
}

impl BlockedService {
    /// The services a drain script's output names as blocked (none when it names none).
    pub fn of_output(stdout: &str) -> Vec<BlockedService> {
        Self::parse_all(crate::scripts::output_value(stdout, "blocked").unwrap_or(""))
    }

    /// "a, b": the services' names, for a reason or a log line.
    pub fn names(all: &[BlockedService]) -> String {
        all.iter().map(|b| b.service.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// "a: why; b: why", for a log line.
    pub fn with_reasons(all: &[BlockedService]) -> String {
        all.iter()
            .map(|b| format!("{}: {}", b.service, b.reason))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The drain script's budgets below their minimum (`budget_short` / `budget_broken`:
    /// name|running elsewhere|min;…), each with what it keeps.
    pub fn budgets_of_output(stdout: &str, key: &str) -> Vec<BlockedService> {
        Self::triples(stdout, key, |running, min| {
            format!("{running} task(s) running elsewhere, min-available {min}")
        })
    }

    /// The budgets a drain command waited for: those it still waits for when it ended
    /// (`budget_short`), else those it waited for and then drained within the command
    /// (`budget_waited`), so a wait is told however the command's time fell.
    pub fn budget_waits_of_output(stdout: &str) -> Vec<BlockedService> {
        let short = Self::budgets_of_output(stdout, "budget_short");
        if short.is_empty() {
            Self::budgets_of_output(stdout, "budget_waited")
        } else {
            short
        }
    }

    /// The drain script's `budget_invalid=name|label|why;…`: labels it ignored.
    pub fn invalid_budgets_of_output(stdout: &str) -> Vec<BlockedService> {
        Self::triples(stdout, "budget_invalid", |label, why| {
            format!("swarm-lifecycle.min-available={label}: {why}; ignored")
        })
    }

    /// `key=name|a|b;…` of a script's output, each service with `reason(a, b)`.
    fn triples(stdout: &str, key: &str, reason: impl Fn(&str, &str) -> String) -> Vec<BlockedService> {
        let value = crate::scripts::output_value(stdout, key).unwrap_or("");
        value
            .split(';')
            .filter_map(|one| {
                let mut f = one.split('|');
                let (service, a, b) = (f.next()?.trim(), f.next()?, f.next()?);
                (!service.is_empty()).then(|| BlockedService {
                    service: service.to_string(),
                    reason: reason(a, b),
                })
            })
            .collect()
    }

    /// The drain script's `blocked=name|reason;…`.
    pub fn parse_all(value: &str) -> Vec<BlockedService> {
        value
            .split(';')
            .filter_map(|one| {
                let (service, reason) = one.split_once('|')?;
                (!service.trim().is_empty()).then(|| BlockedService {
                    service: service.trim().to_string(),
                    reason: reason.trim().to_string(),
                })
            })
            .collect()
    }
}

impl ActionEvent {
    fn new(kind: ActionKind, cluster: &str, outcome: &str, reason: impl Into<String>) -> Self {
        ActionEvent {
            kind,
            version: 1,
            cluster: cluster.to_string(),
            instance_id: None,
            node_id: None,
            role: None,
            outcome: outcome.to_string(),
            reason: reason.into(),
            durations: BTreeMap::new(),
            quorum_margin: None,
            ready_managers: None,
            deferred: vec![],
            blocked: vec![],
            budgets: vec![],
            service: None,
            dns_name: None,
        }
    }

    pub fn detail_type(&self) -> &'static str {
        self.kind.detail_type()
    }

    /// The event's `detail`, as PutEvents takes it (a JSON object in a string).
    pub fn detail(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }

    /// A service's name the cluster will not keep, and why (nothing of it is changed).
    pub fn service_name_refused(cluster: &str, service: &str, name: &str, reason: &str) -> Self {
        let mut e = ActionEvent::new(ActionKind::ServiceNameRefused, cluster, "name-refused", reason);
        e.service = Some(service.to_string());
        e.dns_name = Some(name.to_string());
        e
    }

    /// The node of a gone instance, removed by the reconcile (or the operator's tidy).
    pub fn node_removed(cluster: &str, node_id: &str, reason: &str) -> Self {
        let mut e = ActionEvent::new(ActionKind::NodeRetired, cluster, "removed", reason);
        e.node_id = Some(node_id.to_string());
        e
    }

    /// A drain whose remaining services cannot be placed; `proceeds`: the node leaves now
    /// (BLOCKED_DRAIN=proceed), else the drain goes on until its timeout.
    pub fn drain_blocked(
        cluster: &str,
        instance_id: &str,
        role: &str,
        blocked: Vec<BlockedService>,
        proceeds: bool,
    ) -> Self {
        let then = if proceeds {
            "the node leaves now (BLOCKED_DRAIN=proceed)"
        } else {
            "the drain waits until its timeout in case capacity comes (BLOCKED_DRAIN=wait)"
        };
        let reason = format!("cannot place the tasks of {}: {then}", BlockedService::names(&blocked));
        let mut e = ActionEvent::new(ActionKind::DrainBlocked, cluster, "drain-blocked", reason);
        e.instance_id = Some(instance_id.to_string());
        e.role = Some(role.to_string());
        e.blocked = blocked;
        e
    }

    /// Services a disruption took below their budget: `cause` says which (a Spot interruption
    /// cannot wait; a drain that ran out of time waiting for the budget).
    pub fn budget_broken(
        cluster: &str,
        instance_id: &str,
        role: &str,
        budgets: Vec<BlockedService>,
        cause: &str,
    ) -> Self {
        let reason = format!("{} below min-available: {cause}", BlockedService::names(&budgets));
        let mut e = ActionEvent::new(ActionKind::BudgetBroken, cluster, "budget-broken", reason);
        e.instance_id = Some(instance_id.to_string());
        e.role = Some(role.to_string());
        e.budgets = budgets;
        e
    }

    /// Budget labels a drain found unreadable and ignored.
    pub fn budget_invalid(cluster: &str, instance_id: &str, budgets: Vec<BlockedService>) -> Self {
        let reason = format!("budget label of {} ignored", BlockedService::names(&budgets));
        let mut e = ActionEvent::new(ActionKind::BudgetInvalid, cluster, "budget-invalid", reason);
        e.instance_id = Some(instance_id.to_string());
        e.budgets = budgets;
        e
    }

    /// A drain that ran out of time (the node is removed all the same).
    pub fn drain_timed_out(cluster: &str, instance_id: &str, role: &str, drained: Duration, left: &str) -> Self {
        let mut e = ActionEvent::new(ActionKind::DrainTimedOut, cluster, "drain-timed-out", left);
        e.instance_id = Some(instance_id.to_string());
        e.role = Some(role.to_string());
        e.durations.insert("drain", secs(drained));
        e
    }
}

/// Which kind of intent an outcome answers (the event's verb).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Join,
    Retire,
    Other,
}

/// The event for what an invocation did with one intent, if it is one people are told of:
/// only work this invocation did (a redelivery that finds the work done, a dry run, an
/// ignored event: none), so each action is announced once.
pub fn of_outcome(
    verb: Verb,
    cluster: &str,
    role: &str,
    o: &Outcome,
    action_age: Option<Duration>,
    invocation: Duration,
) -> Option<ActionEvent> {
    if o.quiet {
        return None;
    }
    let done = matches!(o.outcome, OutcomeKind::Completed | OutcomeKind::Done);
    let (kind, outcome) = match (verb, o.outcome, o.result) {
        (Verb::Join, _, Some(ActionResult::Abandon)) if done => (ActionKind::LaunchAbandoned, "abandoned"),
        (Verb::Join, _, Some(ActionResult::Continue)) if done => (ActionKind::NodeJoined, "joined"),
        (Verb::Retire, OutcomeKind::Held, _) => (ActionKind::NodeRetired, "held"),
        (Verb::Retire, _, Some(ActionResult::Continue)) if done => (ActionKind::NodeRetired, "retired"),
        _ => return None,
    };
    let mut e = ActionEvent::new(kind, cluster, outcome, o.detail.clone());
    e.instance_id = o.instance_id.clone();
    e.role = Some(role.to_string());
    if let Some(age) = action_age {
        e.durations.insert("action", secs(age));
    }
    e.durations.insert("invocation", secs(invocation));
    Some(e)
}

/// The events of one reconcile run of a cluster: the repairs it left to the next run, and a
/// quorum at risk (each run that finds it so says it again: route it to chat with that in mind,
/// or use the QuorumAtRisk alarm).
pub fn of_reconcile(cluster: &str, health: &Health, deferred: &[String], took: Duration) -> Vec<ActionEvent> {
    let mut out = vec![];
    if !deferred.is_empty() {
        let mut e = ActionEvent::new(
            ActionKind::ReconcileDeferred,
            cluster,
            "deferred",
            format!("{} repair(s) left to the next run", deferred.len()),
        );
        e.deferred = deferred.to_vec();
        e.durations.insert("invocation", secs(took));
        out.push(e);
    }
    if quorum_at_risk(health) {
        let reason = if health.quorum_margin < 0 {
            "the managers have lost their quorum (or none answered): the swarm cannot change"
        } else {
            "one more manager lost and the swarm can no longer change"
        };
        let mut e = ActionEvent::new(ActionKind::QuorumAtRisk, cluster, "quorum-at-risk", reason);
        e.quorum_margin = Some(health.quorum_margin);
        e.ready_managers = Some(health.ready_managers);
        out.push(e);
    }
    out
}

/// Lost, or one loss from lost. A single manager (margin 0 by design, no fault tolerance
/// asked for) is not at risk of anything new; the QuorumMargin alarm covers it.
pub fn quorum_at_risk(h: &Health) -> bool {
    h.quorum_margin < 0 || (h.quorum_margin == 0 && h.ready_managers > 1)
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(kind: OutcomeKind, result: Option<ActionResult>) -> Outcome {
        Outcome {
            outcome: kind,
            instance_id: Some("i-1".into()),
            result,
            detail: "why".into(),
            services: vec![],
            quiet: false,
        }
    }

    fn health(ready_managers: usize, quorum_margin: i64) -> Health {
        Health {
            ready_managers,
            ready_workers: 0,
            down_nodes: 0,
            quorum_margin,
            drift_items: 0,
        }
    }

    #[test]
    fn only_work_this_invocation_did_is_announced() {
        let t = Duration::from_secs(3);
        let of = |verb, kind, result| of_outcome(verb, "c", "worker", &outcome(kind, result), None, t).map(|e| e.kind);
        let cont = Some(ActionResult::Continue);
        let abandon = Some(ActionResult::Abandon);
        assert_eq!(
            of(Verb::Join, OutcomeKind::Completed, cont),
            Some(ActionKind::NodeJoined)
        );
        assert_eq!(of(Verb::Join, OutcomeKind::Done, cont), Some(ActionKind::NodeJoined));
        assert_eq!(
            of(Verb::Join, OutcomeKind::Completed, abandon),
            Some(ActionKind::LaunchAbandoned)
        );
        assert_eq!(
            of(Verb::Retire, OutcomeKind::Completed, cont),
            Some(ActionKind::NodeRetired)
        );
        assert_eq!(of(Verb::Retire, OutcomeKind::Held, cont), Some(ActionKind::NodeRetired));
        // A redelivery, a timed-out action, a dry run, a drain: nothing new to tell.
        for (verb, kind, result) in [
            (Verb::Join, OutcomeKind::AlreadyEnded, cont),
            (Verb::Join, OutcomeKind::AlreadyMember, None),
            (Verb::Join, OutcomeKind::DryRun, cont),
            (Verb::Retire, OutcomeKind::AlreadyEnded, cont),
            (Verb::Retire, OutcomeKind::Denied, None),
            (Verb::Other, OutcomeKind::Done, cont),
        ] {
            assert_eq!(of(verb, kind, result), None, "{verb:?} {kind:?}");
        }
    }

    #[test]
    fn the_detail_carries_the_documented_fields() {
        let o = outcome(OutcomeKind::Completed, Some(ActionResult::Continue));
        let e = of_outcome(
            Verb::Join,
            "prod",
            "manager",
            &o,
            Some(Duration::from_millis(12_340)),
            Duration::from_secs(2),
        )
        .unwrap();
        assert_eq!(e.detail_type(), "Swarm Node Joined");
        let v: serde_json::Value = serde_json::from_str(&e.detail()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "version": 1, "cluster": "prod", "instanceId": "i-1", "role": "manager",
                "outcome": "joined", "reason": "why",
                "durations": {"action": 12.3, "invocation": 2.0}
            })
        );
    }

    #[test]
    fn quorum_is_at_risk_when_lost_or_one_loss_away() {
        assert!(!quorum_at_risk(&health(3, 1)));
        assert!(quorum_at_risk(&health(2, 0)));
        assert!(quorum_at_risk(&health(0, -1)));
        // One manager by design: nothing new to say each run.
        assert!(!quorum_at_risk(&health(1, 0)));
        let events = of_reconcile("c", &health(2, 0), &["Join { .. }".into()], Duration::from_secs(1));
        let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [ActionKind::ReconcileDeferred, ActionKind::QuorumAtRisk]);
        assert!(of_reconcile("c", &health(3, 1), &[], Duration::ZERO).is_empty());
    }

    /// A wait that ended within the command is told as one that outlasted it: the count of
    /// budget waits must not depend on where a command's time fell.
    #[test]
    fn a_budget_wait_is_read_whether_or_not_the_command_outlasted_it() {
        let waited = "remaining=0\nbudget_waited=kept|1|2\n";
        let still = "budget_short=kept|1|2\nbudget_waited=kept|1|2\n";
        for out in [waited, still] {
            let w = BlockedService::budget_waits_of_output(out);
            assert_eq!(
                w.iter().map(|b| b.service.as_str()).collect::<Vec<_>>(),
                ["kept"],
                "{out}"
            );
        }
        assert!(BlockedService::budget_waits_of_output("remaining=0\n").is_empty());
    }

    #[test]
    fn budgets_are_read_from_the_drain_scripts_answer() {
        let out = "budget_short=kept|1|2;api|0|1\nbudget_invalid=odd|lots|not a number or a percentage\n";
        let short = BlockedService::budgets_of_output(out, "budget_short");
        assert_eq!(
            short.iter().map(|b| b.service.as_str()).collect::<Vec<_>>(),
            ["kept", "api"]
        );
        assert_eq!(short[0].reason, "1 task(s) running elsewhere, min-available 2");
        assert!(BlockedService::budgets_of_output(out, "budget_broken").is_empty());
        let invalid = BlockedService::invalid_budgets_of_output(out);
        assert_eq!(invalid.len(), 1);
        assert_eq!(
            invalid[0].reason,
            "swarm-lifecycle.min-available=lots: not a number or a percentage; ignored"
        );
        let e = ActionEvent::budget_broken("c", "i-1", "worker", short, "an involuntary disruption cannot wait");
        assert_eq!(
            (e.detail_type(), e.outcome.as_str()),
            ("Swarm Budget Broken", "budget-broken")
        );
        assert!(
            e.detail().contains("\"budgets\":[{\"service\":\"kept\""),
            "{}",
            e.detail()
        );
    }

    #[test]
    fn detail_types_are_distinct() {
        let mut names: Vec<_> = ActionKind::ALL.iter().map(|k| k.detail_type()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ActionKind::ALL.len());
    }
}
