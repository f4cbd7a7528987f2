//! Planning a retirement: from what the swarm, the record and the instance say to the steps
//! that run, in order. Pure: no I/O.

use crate::model::{CommandResult, CommandStatus};
use crate::model::{Instance, ManagerRecord, NodeStatus, Role, SwarmNode};
use crate::scripts::{RetireSaid, ScriptExit};

#[derive(Debug, Clone, PartialEq)]
pub struct RetireSnapshot {
    pub instance_id: String,
    pub role: Role,
    pub has_dns: bool,
    pub instance: Option<Instance>,
    /// This instance's record(s) in the manager name.
    pub records: Vec<ManagerRecord>,
    /// A live manager other than the leaving instance.
    pub operator: Option<String>,
    /// The leaving instance's swarm node, as the operator sees it.
    pub node: Option<SwarmNode>,
    /// Managers other than the leaving node that may be up: Ready, or Unknown (a new leader
    /// has not heard from them yet: every node is Unknown right after a leader change).
    pub other_managers_up: usize,
    pub self_online: bool,
    /// The leaving instance is itself the only live manager.
    pub self_is_last_manager: bool,
    /// Its values in the service names this cluster owns (`service_dns::leaving_records`;
    /// empty without SERVICE_RECORD_SUFFIX).
    pub service_records: Vec<crate::plan::service_dns::ZoneEntry>,
}

/// The steps of a retirement, each one thing the workflow does, in the order it does them.
#[derive(Debug, Clone, PartialEq)]
pub enum RetireStep {
    /// Take the instance's IP out of the service names, wait for INSYNC (a worker's hold
    /// starts then; a manager's after its manager record).
    RemoveServiceRecords(Vec<crate::plan::service_dns::ZoneEntry>),
    /// Take the instance's IP out of the manager name, wait for INSYNC, start the hold.
    RemoveRecords(Vec<ManagerRecord>),
    /// The record was gone already (redelivery): the hold starts now, never earlier.
    StartHold,
    /// One command (scripts/retire-node.sh); tasks slower than a slice of the hook timeout
    /// are drained apart first.
    RetireNode(NodeRetirement),
    /// Drain the node and keep it: it is the last ready manager.
    DrainOnly { node_id: String },
    /// Log why the swarm was left alone.
    Note(String),
    /// Complete now (workers) or when the hold has passed (managers).
    Finish,
}

/// A node taken out of the swarm: the operator drains it (`drain`), demotes it (`demote`)
/// and removes it, while its instance (`leave`: it is up) leaves once its tasks are gone.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeRetirement {
    pub node_id: String,
    pub drain: bool,
    pub demote: bool,
    pub leave: bool,
}

pub fn plan_retire(s: &RetireSnapshot) -> Vec<RetireStep> {
    let mut steps = Vec::new();
    // DNS first: every name the instance answers for, before anything moves.
    if !s.service_records.is_empty() {
        steps.push(RetireStep::RemoveServiceRecords(s.service_records.clone()));
        if !(s.role == Role::Manager && s.has_dns) {
            steps.push(RetireStep::StartHold);
        }
    }
    if s.role == Role::Manager && s.has_dns {
        if s.records.is_empty() {
            steps.push(RetireStep::StartHold);
        } else {
            steps.push(RetireStep::RemoveRecords(s.records.clone()));
        }
    }
    match (&s.operator, &s.node) {
        (Some(_), Some(node)) if node.role == Role::Manager && s.other_managers_up == 0 => {
            steps.push(RetireStep::DrainOnly {
                node_id: node.id.clone(),
            });
            steps.push(RetireStep::Note("last ready manager: not demoting".into()));
        }
        (Some(_), Some(node)) => steps.push(RetireStep::RetireNode(NodeRetirement {
            node_id: node.id.clone(),
            // Its tasks can move only while it runs: a node whose agent is lost or that the
            // swarm sees down has none left to move (the swarm reschedules them), and a drain
            // would wait for them until its timeout.
            drain: s.self_online && matches!(node.status, NodeStatus::Ready | NodeStatus::Unknown),
            demote: node.role == Role::Manager,
            // An instance stopped or terminated by hand is still shutting down: if its agent
            // answers, it leaves the swarm itself (its node would otherwise outlive its removal
            // on its own daemon, and a start would find it "removed from swarm").
            leave: s.self_online && s.instance.as_ref().is_some_and(|i| i.state.os_may_run()),
        })),
        (Some(_), None) => steps.push(RetireStep::Note("instance has no swarm node".into())),
        (None, _) if s.self_is_last_manager => steps.push(RetireStep::Note(
            "the leaving instance is the last live manager: swarm left as it is".into(),
        )),
        (None, _) => steps.push(RetireStep::Note("no live manager to act through".into())),
    }
    steps.push(RetireStep::Finish);
    steps
}

/// What the retire-node command (scripts/retire-node.sh) answered on the operator, read once
/// for both roads: one invocation that waits for it, or the drain check that reads it later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetireAnswer {
    /// The manager cannot act as one (unreachable, no longer a manager): the next one retires.
    CannotOperate,
    /// The command's drain did not finish (tasks still moving, or the command failed before it
    /// said): nothing else was done; the drain goes on.
    Draining { failed: bool },
    /// The command failed after its drain (or ended without saying `removed=`) and the node
    /// was not removed: the swarm had no leader (an election), the node is still a manager, or
    /// the swarm refused the demotion or removal ("update out of sequence": two managers
    /// demoted at once). Asked again for a
    /// while: a manager released undemoted stays a raft member and costs the swarm its quorum.
    NotRemoved,
    /// The command ended: `removed` is what it said ("true": removed by it; "already").
    Ended { drained: bool, removed: Option<String> },
}

/// What the leaving instance's half of the command said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveAnswer {
    Left,
    /// Its tasks had not gone when the drain slice ended: it leaves in the next command.
    AfterDrain,
    Failed,
}

/// The manager a command went to cannot act as one: it was unreachable, or its script found it
/// is no longer a reachable manager (`require_manager`).
pub fn cannot_operate(r: &CommandResult) -> bool {
    r.status == CommandStatus::Undeliverable || r.exit() == Some(ScriptExit::NotAManager)
}

/// The operator's answer; `drains`: the command began with a drain (DRAIN_SECONDS > 0).
pub fn read_retire(op: &CommandResult, drains: bool) -> RetireAnswer {
    if cannot_operate(op) {
        return RetireAnswer::CannotOperate;
    }
    let said = RetireSaid::of(&op.stdout);
    // The script says `removed=` whenever it ends well: an answer without it (a failure, or an
    // output lost) is not taken for a retirement done; a drain in it goes on (not skipped).
    let done = op.ok() && said.removed.is_some();
    if drains && !done {
        // `drained=false` alone is tasks still moving; anything else is a failed command.
        let moving = op.ok() && said.drained == Some(false);
        return RetireAnswer::Draining { failed: !moving };
    }
    if !done {
        return RetireAnswer::NotRemoved;
    }
    RetireAnswer::Ended {
        drained: said.drained == Some(true),
        removed: said.removed.map(str::to_string),
    }
}

/// The leaving instance's answer, beside the operator's (`settled`: its drain, if any, ended).
pub fn read_leave(me: &CommandResult, settled: bool) -> LeaveAnswer {
    let after_drain = RetireSaid::of(&me.stdout).left == Some("after-drain");
    match (me.ok(), settled) {
        (true, _) if after_drain => LeaveAnswer::AfterDrain,
        (true, _) => LeaveAnswer::Left,
        // Not demoted in time while the drain goes on: it leaves in the next command.
        (false, false) => LeaveAnswer::AfterDrain,
        (false, true) => LeaveAnswer::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Availability, InstanceState, NodeStatus};
    use crate::plan::inst;

    fn node(role: Role) -> SwarmNode {
        SwarmNode {
            id: "abcdefghijklmnopqrstuvwx1".into(),
            hostname: "h".into(),
            addr: None,
            role,
            status: NodeStatus::Ready,
            availability: Availability::Active,
            leader: false,
            instance_id: Some("i-00000001".into()),
            updated_unix: None,
            labels: Default::default(),
        }
    }
    fn retire(role: Role) -> RetireSnapshot {
        RetireSnapshot {
            service_records: vec![],
            instance_id: "i-00000001".into(),
            role,
            has_dns: role == Role::Manager,
            instance: inst("i-00000001"),
            records: vec![ManagerRecord {
                set_identifier: "i-00000001".into(),
                ip: "10.0.1.10".parse().unwrap(),
                ttl: 60,
            }],
            operator: Some("i-0000000b".into()),
            node: Some(node(role)),
            other_managers_up: 2,
            self_online: true,
            self_is_last_manager: false,
        }
    }
    const NID: &str = "abcdefghijklmnopqrstuvwx1";

    #[test]
    fn manager_retire_takes_dns_out_first_then_drains_demotes_leaves_removes() {
        let s = retire(Role::Manager);
        let steps = plan_retire(&s);
        assert_eq!(
            steps,
            vec![
                RetireStep::RemoveRecords(s.records.clone()),
                RetireStep::RetireNode(NodeRetirement {
                    node_id: NID.into(),
                    drain: true,
                    demote: true,
                    leave: true
                }),
                RetireStep::Finish,
            ]
        );
    }

    #[test]
    fn worker_retire_has_no_dns_and_no_demote() {
        let mut s = retire(Role::Worker);
        s.records.clear();
        assert_eq!(
            plan_retire(&s),
            vec![
                RetireStep::RetireNode(NodeRetirement {
                    node_id: NID.into(),
                    drain: true,
                    demote: false,
                    leave: true
                }),
                RetireStep::Finish,
            ]
        );
    }

    #[test]
    fn redelivered_manager_retire_holds_from_now() {
        let mut s = retire(Role::Manager);
        s.records.clear();
        s.node = None;
        assert_eq!(
            plan_retire(&s),
            vec![
                RetireStep::StartHold,
                RetireStep::Note("instance has no swarm node".into()),
                RetireStep::Finish
            ]
        );
    }

    #[test]
    fn a_lost_instance_is_removed_without_waiting_for_a_drain() {
        for (online, status) in [
            (false, NodeStatus::Ready),
            (true, NodeStatus::Down),
            (false, NodeStatus::Unknown),
        ] {
            let mut s = retire(Role::Worker);
            s.records.clear();
            s.self_online = online;
            s.node.as_mut().unwrap().status = status;
            assert!(
                matches!(&plan_retire(&s)[0], RetireStep::RetireNode(n) if !n.drain),
                "{online} {status:?}"
            );
        }
        // Its agent answers; a new leader has not heard from it yet: drained.
        let mut s = retire(Role::Worker);
        s.node.as_mut().unwrap().status = NodeStatus::Unknown;
        assert!(matches!(&plan_retire(&s)[0], RetireStep::RetireNode(n) if n.drain));
    }

    #[test]
    fn never_demotes_the_last_ready_manager() {
        let mut s = retire(Role::Manager);
        s.other_managers_up = 0;
        assert_eq!(
            plan_retire(&s),
            vec![
                RetireStep::RemoveRecords(s.records.clone()),
                RetireStep::DrainOnly { node_id: NID.into() },
                RetireStep::Note("last ready manager: not demoting".into()),
                RetireStep::Finish,
            ]
        );
    }

    #[test]
    fn gone_or_offline_instances_are_removed_without_leave() {
        let mut s = retire(Role::Worker);
        s.records.clear();
        s.instance = None;
        s.self_online = false;
        assert_eq!(
            plan_retire(&s),
            vec![
                RetireStep::RetireNode(NodeRetirement {
                    node_id: NID.into(),
                    drain: false,
                    demote: false,
                    leave: false
                }),
                RetireStep::Finish
            ]
        );
    }

    #[test]
    fn a_stopping_or_shutting_down_instance_whose_agent_answers_leaves_by_itself() {
        for state in [InstanceState::Stopping, InstanceState::ShuttingDown] {
            let mut s = retire(Role::Worker);
            s.records.clear();
            s.instance.as_mut().unwrap().state = state;
            assert!(
                matches!(&plan_retire(&s)[0], RetireStep::RetireNode(n) if n.leave),
                "{state:?}"
            );
        }
        let mut s = retire(Role::Worker);
        s.instance.as_mut().unwrap().state = InstanceState::Stopped;
        assert!(matches!(&plan_retire(&s)[0], RetireStep::RetireNode(n) if !n.leave));
    }

    #[test]
    fn no_operator_means_no_swarm_steps() {
        let mut s = retire(Role::Worker);
        s.records.clear();
        s.operator = None;
        assert!(matches!(plan_retire(&s)[0], RetireStep::Note(_)));
        s.self_is_last_manager = true;
        assert!(matches!(&plan_retire(&s)[0], RetireStep::Note(n) if n.contains("last live manager")));
    }

    fn answer(code: i32, stdout: &str) -> CommandResult {
        CommandResult {
            instance_id: "i-0000000b".into(),
            status: if code == 0 {
                CommandStatus::Success
            } else {
                CommandStatus::Failed
            },
            exit_code: code,
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    #[test]
    fn a_retire_command_s_answer_is_read_once_for_both_roads() {
        let removed = RetireAnswer::Ended {
            drained: true,
            removed: Some("true".into()),
        };
        assert_eq!(read_retire(&answer(0, "drained=true\nremoved=true\n"), true), removed);
        assert_eq!(
            read_retire(&answer(0, "remaining=1\ndrained=false\n"), true),
            RetireAnswer::Draining { failed: false }
        );
        // A failed command with a drain in it: the drain goes on; without one: asked again.
        assert_eq!(
            read_retire(&answer(1, ""), true),
            RetireAnswer::Draining { failed: true }
        );
        for code in [1, ScriptExit::StillAManager.code(), ScriptExit::NoLeader.code()] {
            assert_eq!(read_retire(&answer(code, ""), false), RetireAnswer::NotRemoved);
        }
        assert_eq!(
            read_retire(&answer(ScriptExit::NotAManager.code(), ""), true),
            RetireAnswer::CannotOperate
        );
        // Ended well but said nothing (its output lost): not retired; the drain goes on.
        assert_eq!(
            read_retire(&answer(0, ""), true),
            RetireAnswer::Draining { failed: true }
        );
        assert_eq!(
            read_retire(&answer(0, "drained=true\n"), true),
            RetireAnswer::Draining { failed: true }
        );
        assert_eq!(read_retire(&answer(0, ""), false), RetireAnswer::NotRemoved);
        let mut lost = answer(0, "");
        lost.status = CommandStatus::Undeliverable;
        assert_eq!(read_retire(&lost, false), RetireAnswer::CannotOperate);
    }

    #[test]
    fn the_leaving_instance_leaves_after_the_drain_or_says_it_failed() {
        assert_eq!(read_leave(&answer(0, "left=true\n"), true), LeaveAnswer::Left);
        assert_eq!(
            read_leave(&answer(0, "left=after-drain\n"), false),
            LeaveAnswer::AfterDrain
        );
        assert_eq!(read_leave(&answer(5, ""), false), LeaveAnswer::AfterDrain);
        assert_eq!(read_leave(&answer(5, ""), true), LeaveAnswer::Failed);
    }
}
