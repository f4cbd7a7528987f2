//! Terminations and drains: DNS first, drain, demote, leave, remove, the hold (workflow/retire.rs, held.rs).

use super::*;

#[tokio::test(start_paused = true)]
async fn a_manager_is_retired_with_one_probe_that_also_lists_the_nodes() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    w.state().commands.clear();
    w.set_lifecycle(M3, "Terminating:Wait");
    l.handle(&event("terminate", "mgr", M3), None).await.unwrap();
    let names: Vec<&str> = w.state().commands.iter().map(|(_, n)| *n).collect();
    assert!(!names.contains(&"node-list"), "{names:?}");
    assert_eq!(names.iter().filter(|n| **n == "probe-list").count(), 3, "{names:?}");
    assert!(w.node_of(M3).is_none());
}

#[tokio::test(start_paused = true)]
async fn an_operator_unreachable_mid_retire_is_replaced_by_another_manager() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    // M1 answers the probe and lists the nodes, then cannot be reached for the drain.
    w.state().undeliverable.insert((M1.to_string(), "retire-node"));
    w.state().commands.clear();
    w.set_lifecycle(W1, "Terminating:Wait");
    let o = l.handle(&event("terminate", "wrk", W1), None).await.unwrap();
    assert_eq!(o.result, Some(ActionResult::Continue));
    assert!(w.node_of(W1).is_none(), "the worker's node was removed");
    let cmds = w.state().commands.clone();
    assert!(cmds.contains(&(M1.to_string(), "retire-node")), "{cmds:?}");
    assert!(cmds.contains(&(M2.to_string(), "retire-node")), "{cmds:?}");
    assert!(
        w.node_of(W1).is_none() && w.state().nodes.values().all(|n| n.ready),
        "{cmds:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_manager_record_written_with_other_values_is_still_removed() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    // Written by hand (or by an older configuration) with another TTL: the exact DELETE
    // finds nothing, so the name is read and the instance's record deleted as it is.
    for r in w.state().records.iter_mut().filter(|r| r.set_identifier == M3) {
        r.ttl = 300;
    }
    w.set_lifecycle(M3, "Terminating:Wait");
    let o = l.handle(&event("terminate", "mgr", M3), None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::Held, "{o:?}");
    assert!(!w.state().records.iter().any(|r| r.set_identifier == M3));
    assert_eq!(w.state().records.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_blocked_drain_is_told_at_once_and_with_proceed_the_node_leaves_now() {
    let (w, l, took, told) = retire_a_worker_whose_drain_is_blocked(true).await;
    assert!(took < l.cfg.drain_timeout / 2, "{took:?}");
    assert_eq!(told, vec!["Swarm Drain Blocked", "Swarm Node Retired"]);
    let s = w.state();
    let e = &s.announced[0].1;
    assert_eq!(e.blocked.len(), 1);
    assert_eq!(e.blocked[0].service, "pinned");
    assert!(e.blocked[0].reason.starts_with("no suitable node"), "{:?}", e.blocked);
    assert!(e.reason.contains("leaves now"), "{}", e.reason);
}

#[tokio::test(start_paused = true)]
async fn a_blocked_drain_with_wait_is_told_once_and_drains_until_its_timeout() {
    let (w, l, took, told) = retire_a_worker_whose_drain_is_blocked(false).await;
    assert!(took >= l.cfg.drain_timeout, "{took:?}");
    assert_eq!(
        told,
        vec!["Swarm Drain Blocked", "Swarm Drain Timed Out", "Swarm Node Retired"]
    );
    assert!(w.state().announced[0].1.reason.contains("waits until its timeout"));
}

#[test]
fn blocked_services_are_read_from_the_scripts_answer() {
    use crate::announce::BlockedService;
    let b = BlockedService::parse_all("a|no suitable node (x, y);b|no suitable node (z);|junk;c");
    assert_eq!(
        b.iter()
            .map(|s| (s.service.as_str(), s.reason.as_str()))
            .collect::<Vec<_>>(),
        vec![("a", "no suitable node (x, y)"), ("b", "no suitable node (z)")]
    );
    assert!(BlockedService::parse_all("").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_manager_retired_slowly_is_still_released_when_its_hold_ends() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    w.set_lifecycle(M1, "Terminating:Wait");
    // The retirement after INSYNC outlasts the re-arm point (a busy host): the keep-alive
    // re-arms the action, so its timeout alone would release the instance a hold after that.
    let hold = l.cfg.hold();
    w.state()
        .command_time
        .insert("retire-node", hold - l.cfg.rearm_margin() + Duration::from_secs(10));
    w.state().completed.clear();
    let o = l.handle(&event("terminate", "mgr", M1), None).await.unwrap();
    let ended = tokio::time::Instant::now();
    assert_eq!(
        (o.outcome, o.result),
        (OutcomeKind::Held, Some(ActionResult::Continue)),
        "{o:?}"
    );
    let s = w.state();
    // Beats: at INSYNC (the hold starts; the action was not due on entry), the keep-alive
    // while the command ran.
    assert_eq!(s.heartbeat_times.len(), 2, "{:?}", s.heartbeat_times);
    let insync = s.heartbeat_times[0];
    assert_eq!(
        s.completed,
        vec![(M1.to_string(), ActionResult::Continue)],
        "completed by the function"
    );
    let released = ended - insync;
    assert!(
        released >= hold && released < hold + Duration::from_secs(1),
        "released {released:?} after INSYNC"
    );
}

#[tokio::test(start_paused = true)]
async fn manager_termination_removes_dns_first_and_is_held() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    w.set_lifecycle(M1, "Terminating:Wait");
    w.state().commands.clear();
    let o = l.handle(&event("terminate", "mgr", M1), None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::Held, "{o:?}");
    let s = w.state();
    assert_eq!(s.records.len(), 2);
    assert!(!s.records.iter().any(|r| r.set_identifier == M1));
    // One at INSYNC (starts the hold); none on entry: the action was not due yet.
    assert_eq!(s.heartbeats, vec![M1.to_string()]);
    assert_eq!(
        s.completed.iter().filter(|(id, _)| id == M1).count(),
        1,
        "only the launch: the hook timeout releases a manager"
    );
    assert!(!s.nodes.values().any(|n| n.instance_id == M1));
    // One command: that manager drains, demotes and removes, M1 leaves.
    let order: Vec<(&str, &str)> = s
        .commands
        .iter()
        .map(|(i, n)| (i.as_str(), *n))
        .filter(|(_, n)| ["drain", "retire-node"].contains(n))
        .collect();
    assert_eq!(order, vec![(M2, "retire-node"), (M1, "retire-node")]);
}

#[tokio::test(start_paused = true)]
async fn manager_termination_after_the_hold_completes_at_once() {
    let w = cluster();
    let mut c = cfg();
    c.dns_ttl = Duration::ZERO;
    c.hold_extra = Duration::ZERO;
    let l = lifecycle(&w, c);
    three_managers_and_a_worker(&l, &w).await;
    w.set_lifecycle(M2, "Terminating:Wait");
    let o = l.handle(&event("terminate", "mgr", M2), None).await.unwrap();
    assert_eq!(
        (o.outcome, o.result),
        (OutcomeKind::Completed, Some(ActionResult::Continue))
    );
}

#[tokio::test(start_paused = true)]
async fn worker_termination_completes_and_removes_the_node() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    w.set_lifecycle(W1, "Terminating:Wait");
    let o = l.handle(&event("terminate", "wrk", W1), None).await.unwrap();
    assert_eq!(
        (o.outcome, o.result),
        (OutcomeKind::Completed, Some(ActionResult::Continue))
    );
    assert!(w.node_of(W1).is_none());
    assert_eq!(w.state().records.len(), 3);
    // Redelivery: nothing left to do, no error.
    let o = l.handle(&event("terminate", "wrk", W1), None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::AlreadyEnded);
}

#[tokio::test(start_paused = true)]
async fn a_worker_leaving_while_no_manager_answers_is_not_said_retired() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    w.set_lifecycle(W1, "Terminating:Wait");
    // Every probe fails: no manager is live to act through (a listing that failed, say).
    w.state().failing.insert("probe-list");
    let o = l.handle(&event("terminate", "wrk", W1), None).await.unwrap();
    assert_eq!(o.result, Some(ActionResult::Continue));
    // Released (the instance goes either way), but not claimed: its node is still listed.
    assert!(w.node_of(W1).is_some(), "{o:?} {:?}", w.state().commands);
    assert!(o.detail.contains("no live manager"), "{}", o.detail);
}

#[tokio::test(start_paused = true)]
async fn tasks_slower_than_a_slice_are_drained_apart_then_the_node_retired() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    // The drain inside the one-command retirement ends with tasks still moving, and so
    // does the first drain command after it.
    w.state().slow_drains = 2;
    w.state().commands.clear();
    w.set_lifecycle(W1, "Terminating:Wait");
    let o = l.handle(&event("terminate", "wrk", W1), None).await.unwrap();
    assert_eq!(
        (o.outcome, o.result),
        (OutcomeKind::Completed, Some(ActionResult::Continue))
    );
    assert!(w.node_of(W1).is_none());
    let on_managers: Vec<&str> = w
        .state()
        .commands
        .iter()
        .filter(|(i, n)| i != W1 && ["drain", "retire-node"].contains(n))
        .map(|(_, n)| *n)
        .collect();
    assert_eq!(on_managers, vec!["retire-node", "drain", "drain", "retire-node"]);
    // The drain finished in its time: only the retirement is told.
    let worker_events: Vec<_> = announced(&w)
        .into_iter()
        .filter(|(_, i, _)| i.as_deref() == Some(W1))
        .collect();
    assert_eq!(
        worker_events,
        vec![
            ("Swarm Node Joined", Some(W1.to_string()), "joined".to_string()),
            ("Swarm Node Retired", Some(W1.to_string()), "retired".to_string()),
        ]
    );
}

/// make test, session 15 (the operating manager killed mid-drain): the leader was lost and the
/// election split, so the removal found no leader, and the node stayed while the retirement
/// was announced.
#[tokio::test(start_paused = true)]
async fn a_removal_answered_without_a_leader_is_asked_again() {
    let (w, l, _) = worker_about_to_terminate().await;
    w.state().leaderless = 2;
    let o = l.handle(&event("terminate", "wrk", W1), None).await.unwrap();
    assert_eq!(o.result, Some(ActionResult::Continue));
    assert!(w.node_of(W1).is_none(), "the node was removed once a leader answered");
    let s = w.state();
    let removals = s
        .commands
        .iter()
        .filter(|(i, n)| i != W1 && *n == "retire-node")
        .count();
    assert_eq!(removals, 3, "twice without a leader, then done");
}

/// The same refused demotion on the road without a queue: the invocation asks again.
#[tokio::test(start_paused = true)]
async fn a_demotion_refused_while_raft_changes_is_asked_again() {
    let (w, l) = manager_whose_demotion_is_refused_once(cfg()).await;
    l.handle(&event("terminate", "mgr", M1), None).await.unwrap();
    assert!(w.node_of(M1).is_none(), "demoted and removed");
    assert_eq!(retire_commands(&w, M1), 3, "asked again after the refused demotion");
}

#[tokio::test(start_paused = true)]
async fn a_drain_that_runs_out_of_time_is_announced_with_what_it_left() {
    let w = cluster();
    let mut c = cfg();
    c.drain_timeout = Duration::from_secs(10);
    let l = lifecycle(&w, c);
    three_managers_and_a_worker(&l, &w).await;
    // Every drain command waits its time out with tasks still moving.
    w.state().slow_drains = 1000;
    w.state().command_time.insert("drain", Duration::from_secs(5));
    w.set_lifecycle(W1, "Terminating:Wait");
    let o = l.handle(&event("terminate", "wrk", W1), None).await.unwrap();
    assert_eq!(o.result, Some(ActionResult::Continue));
    let s = w.state();
    let (_, timed_out) = s
        .announced
        .iter()
        .find(|(_, e)| e.detail_type() == "Swarm Drain Timed Out")
        .unwrap_or_else(|| panic!("the drain's timeout told: {:?}", s.announced));
    assert_eq!(timed_out.instance_id.as_deref(), Some(W1));
    assert!(timed_out.durations["drain"] >= 10.0, "{timed_out:?}");
    assert_eq!(
        s.announced.last().map(|(_, e)| e.detail_type()),
        Some("Swarm Node Retired")
    );
}

#[tokio::test(start_paused = true)]
async fn a_command_that_outlasts_the_hook_timeout_is_kept_alive_while_it_runs() {
    let (w, l, timeout) = worker_about_to_terminate().await;
    // The one retirement command drains for three hook timeouts (slow tasks, a busy host).
    w.state().command_time.insert("retire-node", timeout * 3);
    let o = l.handle(&event("terminate", "wrk", W1), None).await.unwrap();
    assert_eq!(
        (o.outcome, o.result),
        (OutcomeKind::Completed, Some(ActionResult::Continue))
    );
    let s = w.state();
    // Re-armed on entry, then each time the margin before the timeout is reached while the
    // command runs: no gap between heartbeats (or before the completion) reaches the timeout.
    let beats = &s.heartbeat_times;
    assert!(beats.len() >= 4, "{} heartbeats", beats.len());
    assert!(beats.windows(2).all(|p| p[1] - p[0] < timeout), "{beats:?}");
    assert!(tokio::time::Instant::now() - beats[beats.len() - 1] < timeout);
}

#[tokio::test(start_paused = true)]
async fn a_slow_observation_keeps_the_terminate_action_alive_before_the_drain() {
    let (w, l, timeout) = worker_about_to_terminate().await;
    // The probe of a busy host (15 terminations at once) answers after two hook timeouts.
    w.state().command_time.insert("probe-list", timeout * 2);
    let started = tokio::time::Instant::now();
    let o = l.handle(&event("terminate", "wrk", W1), None).await.unwrap();
    assert_eq!(o.result, Some(ActionResult::Continue));
    let s = w.state();
    // The action (begun at the event) is re-armed before its timeout while the probe runs.
    let beats = &s.heartbeat_times;
    assert!(!beats.is_empty() && beats[0] - started < timeout, "{beats:?}");
    assert!(beats.windows(2).all(|p| p[1] - p[0] < timeout), "{beats:?}");
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_that_hangs_is_given_up_and_the_retirement_goes_on() {
    let (w, l, timeout) = worker_about_to_terminate().await;
    w.state().heartbeat_hangs = Some(timeout * 100);
    let started = tokio::time::Instant::now();
    let o = l.handle(&event("terminate", "wrk", W1), None).await.unwrap();
    assert_eq!(o.result, Some(ActionResult::Continue));
    assert!(w.node_of(W1).is_none(), "the node was removed all the same");
    assert!(
        started.elapsed() < timeout * 2,
        "waited {:?} on a hung heartbeat",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_command_that_ends_in_time_sends_no_heartbeat_while_it_runs() {
    let (w, l, timeout) = worker_about_to_terminate().await;
    w.state().command_time.insert("retire-node", timeout / 2);
    let o = l.handle(&event("terminate", "wrk", W1), None).await.unwrap();
    assert_eq!(o.result, Some(ActionResult::Continue));
    assert_eq!(w.state().heartbeats, vec![W1.to_string()], "only the one on entry");
}

#[tokio::test(start_paused = true)]
async fn terminate_before_launch_was_handled() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    launch(&l, &w, "mgr", M1, "10.0.1.11").await;
    w.launch("wrk", W1, "10.0.1.21");
    w.set_lifecycle(W1, "Terminating:Wait");
    let o = l.handle(&event("terminate", "wrk", W1), None).await.unwrap();
    assert_eq!(o.result, Some(ActionResult::Continue));
    assert!(w.node_of(W1).is_none());
}

#[tokio::test(start_paused = true)]
async fn two_of_three_managers_leaving_at_once_keep_a_manager() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    w.set_lifecycle(M1, "Terminating:Wait");
    w.set_lifecycle(M2, "Terminating:Wait");
    let (e1, e2) = (event("terminate", "mgr", M1), event("terminate", "mgr", M2));
    let (a, b) = tokio::join!(l.handle(&e1, None), l.handle(&e2, None));
    a.unwrap();
    b.unwrap();
    let s = w.state();
    let managers: Vec<&SimNode> = s
        .nodes
        .values()
        .filter(|n| n.role == Role::Manager && n.ready)
        .collect();
    assert_eq!(managers.len(), 1);
    assert_eq!(managers[0].instance_id, M3);
    assert_eq!(
        s.records.iter().map(|r| r.set_identifier.as_str()).collect::<Vec<_>>(),
        vec![M3]
    );
}

#[tokio::test(start_paused = true)]
async fn dry_run_changes_nothing() {
    let w = cluster();
    let mut c = cfg();
    c.dry_run = true;
    let l = lifecycle(&w, c);
    w.launch("mgr", M1, "10.0.1.11");
    let o = l.handle(&event("launch", "mgr", M1), None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::DryRun);
    let s = w.state();
    assert!(s.nodes.is_empty() && s.records.is_empty() && s.completed.is_empty() && s.params.is_empty());
    assert!(s.commands.iter().all(|(_, n)| *n == "probe-list"));
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_retirement_names_the_services_its_drain_would_block_and_changes_nothing() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    w.state().blocked_service = Some("pinned|no suitable node".into());
    let mut c = cfg();
    c.dry_run = true;
    let preview = lifecycle(&w, c);
    w.state().commands.clear();
    let intent = Intent::Retire {
        instance_id: W1.into(),
        group: "wrk".into(),
        action: None,
    };
    let o = preview.handle_intent(intent, None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::DryRun);
    let got: Vec<(&str, &str)> = o.services.iter().map(|s| (s.service.as_str(), s.placement)).collect();
    assert_eq!(got, [("web", "moves"), ("pinned", "blocked")]);
    assert!(
        o.detail.contains("the drain would be blocked by pinned"),
        "{}",
        o.detail
    );
    let s = w.state();
    assert!(s.nodes.values().all(|n| !n.drained), "nothing drained");
    let sent: Vec<&str> = s.commands.iter().map(|(_, n)| *n).collect();
    assert!(
        sent.iter().all(|n| ["probe-list", "retire-preview"].contains(n)),
        "{sent:?}"
    );
}

/// With service names, a worker in one leaves it before anything moves, and its termination
/// is held until TTL + extra after that change, as a manager's is for the manager record.
#[tokio::test(start_paused = true)]
async fn a_worker_in_a_service_name_leaves_it_first_and_is_held() {
    let (w, l) = with_service_names("service\tapi\tapi.apps.blue.internal\tingress \n").await;
    assert!(w.state().zone.iter().any(|e| e.set_identifier.as_deref() == Some(W1)));
    w.set_lifecycle(W1, "Terminating:Wait");
    w.state().commands.clear();
    w.state().zone_changes_at.clear();
    let o = l.handle(&event("terminate", "wrk", W1), None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::Held, "{o:?}");
    let s = w.state();
    assert!(
        !s.zone.iter().any(|e| e.set_identifier.as_deref() == Some(W1)),
        "{:?}",
        s.zone
    );
    assert!(s.zone.iter().any(|e| e.kind == "TXT"), "the name stays owned");
    let retire = s
        .commands
        .iter()
        .position(|(_, n)| *n == "retire-node")
        .expect("retired");
    assert_eq!(s.zone_changes_at.len(), 1);
    assert!(
        s.zone_changes_at[0] <= retire,
        "the name changed before the node moved: {:?} {:?}",
        s.zone_changes_at,
        s.commands
    );
    assert_eq!(
        s.completed.iter().filter(|(id, _)| id == W1).count(),
        1,
        "only the launch: the hook timeout releases it"
    );
    assert!(!s.nodes.values().any(|n| n.instance_id == W1));
    drop(s);
    // Without names, a worker is not held (worker_termination_completes_and_removes_the_node).
}

/// Service names never hold a retirement back: the names cannot be read (a grant missing), and
/// the worker is still drained, removed and completed.
#[tokio::test(start_paused = true)]
async fn a_worker_whose_names_cannot_be_read_still_leaves() {
    let (w, l) = with_service_names("service\tapi\tapi.apps.blue.internal\tingress \n").await;
    w.set_lifecycle(W1, "Terminating:Wait");
    w.state().zone_error = Some(PortError::Denied {
        operation: "ListResourceRecordSets".into(),
        message: "not authorized".into(),
    });
    let o = l.handle(&event("terminate", "wrk", W1), None).await.unwrap();
    assert_eq!(
        (o.outcome, o.result),
        (OutcomeKind::Completed, Some(ActionResult::Continue)),
        "{o:?}"
    );
    assert!(!w.state().nodes.values().any(|n| n.instance_id == W1));
}

/// An event that waited in Lambda's queue until its action was due: re-armed on entry, before
/// Route 53 (a fresh one is not: the INSYNC heartbeat is its first).
#[tokio::test(start_paused = true)]
async fn a_manager_termination_that_waited_until_its_action_was_due_is_re_armed_on_entry() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    w.set_lifecycle(M1, "Terminating:Wait");
    w.state().heartbeats.clear();
    let age = (l.cfg.terminate_heartbeat_timeout - l.cfg.rearm_margin()).as_secs() + 1;
    let o = l.handle(&event_aged("terminate", "mgr", M1, age), None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::Held, "{o:?}");
    assert_eq!(
        w.state().heartbeats,
        vec![M1.to_string(), M1.to_string()],
        "on entry, at INSYNC"
    );
}
