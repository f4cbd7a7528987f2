//! EC2 notices and AWS Health scheduled changes (workflow/notice.rs).

use super::*;

#[tokio::test(start_paused = true)]
async fn a_spot_warning_takes_a_manager_out_of_the_record_then_out_of_the_swarm() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    for id in [M1, M2, M3, W1] {
        w.set_lifecycle(id, "InService");
    }
    let completed = w.state().completed.len();
    let o = l.handle_ec2_notice(&spot_warning(M3), None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::Done, "{o:?}");
    let s = w.state();
    assert!(!s.records.iter().any(|r| r.set_identifier == M3), "{:?}", s.records);
    assert_eq!(s.records.len(), 2);
    assert!(!s.nodes.values().any(|n| n.instance_id == M3), "its node is removed");
    assert_eq!(s.completed.len(), completed, "no lifecycle action to complete");
    assert_eq!(
        s.nodes.values().filter(|n| n.role == Role::Manager).count(),
        2,
        "demoted, not lost"
    );
}

#[tokio::test(start_paused = true)]
async fn a_spot_warning_then_the_terminate_hook_drains_once() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    w.set_lifecycle(W1, "InService");
    l.handle_ec2_notice(&spot_warning(W1), None).await.unwrap();
    assert!(w.node_of(W1).is_none());
    // The instance is taken back; its group's health check sends it through the hook.
    w.set_lifecycle(W1, "Terminating:Wait");
    w.state().commands.clear();
    let again = l.handle_ec2_notice(&spot_warning(W1), None).await.unwrap();
    assert_eq!(again.outcome, OutcomeKind::Ignored, "the hook owns it now: {again:?}");
    let o = l.handle(&event("terminate", "wrk", W1), None).await.unwrap();
    assert_eq!(o.result, Some(ActionResult::Continue));
    let s = w.state();
    assert!(
        !s.commands.iter().any(|(_, c)| *c == "retire-node" || *c == "drain"),
        "nothing drained twice: {:?}",
        s.commands
    );
}

#[tokio::test(start_paused = true)]
async fn a_manager_being_retired_itself_does_not_operate_another_retirement() {
    let (w, l) = joined_in_service(&[M1, M2, M3]).await;
    // M1 (the lowest id: the first operator) is under its own Spot warning, fenced by the
    // retirement running beside this one; M2's warning comes now.
    w.state().retired.insert(M1.to_string());
    w.state().commands.clear();
    l.handle_ec2_notice(&spot_warning(M2), None).await.unwrap();
    assert!(w.node_of(M2).is_none(), "M2 retired");
    let s = w.state();
    let operated: Vec<&String> = s
        .commands
        .iter()
        .filter(|(on, c)| matches!(*c, "retire-node" | "drain") && on != M2)
        .map(|(on, _)| on)
        .collect();
    assert!(
        !operated.is_empty() && operated.iter().all(|on| *on == M3),
        "{:?}",
        s.commands
    );
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_notice_leaves_no_fence_and_the_instance_still_joins() {
    let (w, _) = joined_in_service(&[W1]).await;
    let mut c = cfg();
    c.dry_run = true;
    let dry = lifecycle(&w, c);
    for notice in [spot_warning(W1), state_change(W1, "stopping")] {
        let o = dry.handle_ec2_notice(&notice, None).await.unwrap();
        assert_eq!(o.outcome, OutcomeKind::DryRun, "{o:?}");
    }
    let o = dry
        .handle_scheduled_change(&health_event(W1, unix_now()), None)
        .await
        .unwrap();
    assert_eq!(o.outcome, OutcomeKind::DryRun, "{o:?}");
    assert!(w.state().retired.is_empty(), "fenced by a dry run");
    assert!(w.node_of(W1).is_some_and(|n| n.ready && !n.drained));
}

#[tokio::test(start_paused = true)]
async fn a_closed_scheduled_change_retires_nothing() {
    let (w, l) = joined_in_service(&[W1]).await;
    w.state().commands.clear();
    // Its later event: the change began an hour ago and is over.
    let mut closed = health_event(W1, unix_now() - 3600);
    closed["detail"]["statusCode"] = json!("closed");
    let o = l.handle_scheduled_change(&closed, None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::Ignored, "{o:?}");
    assert!(w.state().commands.is_empty(), "{:?}", w.state().commands);
    assert!(w.node_of(W1).is_some());
}

#[tokio::test(start_paused = true)]
async fn an_instance_stopped_by_hand_leaves_and_rejoins_when_started() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    w.set_lifecycle(W1, "InService");
    l.handle_ec2_notice(&state_change(W1, "stopping"), None).await.unwrap();
    assert!(w.node_of(W1).is_none(), "retired on stopping");
    w.reboot(W1);
    let o = l.handle_ec2_notice(&state_change(W1, "running"), None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::Done, "{o:?}");
    assert!(w.node_of(W1).is_some_and(|n| n.ready), "joined again");
}

#[tokio::test(start_paused = true)]
async fn a_rebalance_recommendation_drains_a_worker_cordons_when_asked_and_only_notes_a_manager() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    for id in [M1, M2, M3, W1] {
        w.set_lifecycle(id, "InService");
    }
    let rebalance = |id: &str| ec2_event(event::REBALANCE_DETAIL_TYPE, json!({"instance-id": id}));
    let listings = w.state().group_listings;
    l.handle_ec2_notice(&rebalance(W1), None).await.unwrap();
    assert!(w.node_of(W1).unwrap().drained);
    assert_eq!(
        w.state().group_listings,
        listings + 1,
        "one group listing, handed on to the drain"
    );
    w.state().commands.clear();
    l.handle_ec2_notice(&rebalance(M1), None).await.unwrap();
    assert!(w.state().commands.is_empty(), "a manager is only noted");
    assert!(!w.node_of(M1).unwrap().drained);

    let mut c = cfg();
    c.rebalance_action = crate::config::RebalanceAction::Cordon;
    let l = lifecycle(&w, c);
    w.node_of(W1).unwrap();
    w.state().nodes.values_mut().for_each(|n| n.drained = false);
    l.handle_ec2_notice(&rebalance(W1), None).await.unwrap();
    let n = w.node_of(W1).unwrap();
    assert!(n.cordoned && !n.drained, "{n:?}");
}

#[tokio::test(start_paused = true)]
async fn a_notice_for_an_instance_outside_the_cluster_costs_one_listing() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    let before = w.state().group_listings;
    let o = l
        .handle_ec2_notice(&state_change("i-0fffffffffffffff0", "stopping"), None)
        .await
        .unwrap();
    assert_eq!(o.outcome, OutcomeKind::Ignored);
    assert_eq!(w.state().group_listings, before + 1);
    let bad = ec2_event(event::SPOT_WARNING_DETAIL_TYPE, json!({"instance-id": "i-$(reboot)"}));
    assert_eq!(
        l.handle_ec2_notice(&bad, None).await.unwrap().outcome,
        OutcomeKind::Invalid
    );
}

#[tokio::test(start_paused = true)]
async fn a_scheduled_change_retires_the_node_within_the_lead_else_the_reconcile_does_when_due() {
    let w = cluster();
    let l = lifecycle(&w, cfg()); // lead: 3600 s
    three_managers_and_a_worker(&l, &w).await;
    for id in [M1, M2, M3, W1] {
        w.set_lifecycle(id, "InService");
    }
    // Far off: noted, nothing run; the reconcile leaves it until the lead.
    w.state().commands.clear();
    let far = unix_now() + 7200;
    let o = l.handle_scheduled_change(&health_event(W1, far), None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::Done, "{o:?}");
    assert!(w.state().commands.is_empty(), "{:?}", w.state().commands);
    w.state().scheduled.insert(W1.into(), far);
    let deadline = Some(Instant::now() + Duration::from_secs(900)); // Lambda's longest
    l.reconcile_all(None, false, deadline).await.unwrap();
    assert!(w.node_of(W1).is_some(), "not within the lead yet");
    // Within the lead: the reconcile retires it, and does not join it again.
    w.state().scheduled.insert(W1.into(), unix_now() + 3000);
    let r = l.reconcile_all(None, false, deadline).await.unwrap();
    assert!(w.node_of(W1).is_none(), "{r:?}");
    let r = l.reconcile_all(None, false, deadline).await.unwrap();
    assert!(r[0].repairs.is_empty(), "{r:?}");
    assert!(w.node_of(W1).is_none());
    // A manager whose change begins within the lead: out of the record and the swarm at once.
    let o = l
        .handle_scheduled_change(&health_event(M3, unix_now() + 60), None)
        .await
        .unwrap();
    assert_eq!(o.outcome, OutcomeKind::Done, "{o:?}");
    assert!(w.node_of(M3).is_none());
    assert!(!w.state().records.iter().any(|r| r.set_identifier == M3));
}
