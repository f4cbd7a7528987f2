//! What every invocation shares: action events, bad input, refusals, other clusters (workflow/mod.rs).

use super::*;

/// The roles may complete actions only on groups tagged with this cluster: a group whose
/// cluster tag is malformed is logged and left to its hook's default result, not completed
/// (that call would be denied); one whose role tag is malformed is still abandoned at once.
#[tokio::test(start_paused = true)]
async fn a_group_whose_cluster_tag_is_not_this_clusters_is_left_to_its_hooks_default() {
    let w = World::default();
    w.add_group("mgr", "blue", Role::Manager, Some("managers.blue.internal"));
    w.add_group("evil", "x$(touch /tmp/p)", Role::Worker, None);
    let l = lifecycle(&w, cfg());
    launch(&l, &w, "mgr", M1, "10.0.1.11").await;
    let o = launch(&l, &w, "evil", W1, "10.0.1.21").await;
    assert_eq!((o.outcome, o.result), (OutcomeKind::Ignored, None), "{}", o.detail);
    assert!(o.detail.contains("not this cluster's group"), "{}", o.detail);
    assert!(
        !w.state().completed.iter().any(|(id, _)| id == W1),
        "no completion attempted"
    );
    w.add_group("badrole", "blue", Role::Worker, None);
    w.state()
        .groups
        .last_mut()
        .expect("group")
        .tags
        .retain(|(k, _)| k != "swarm:role");
    let o = launch(&l, &w, "badrole", "i-00000000000000b2", "10.0.1.22").await;
    assert_eq!(o.result, Some(ActionResult::Abandon), "{}", o.detail);
}

#[tokio::test(start_paused = true)]
async fn each_join_is_announced_once_and_a_redelivery_not_again() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    let joined = |id: &str| ("Swarm Node Joined", Some(id.to_string()), "joined".to_string());
    assert_eq!(announced(&w), vec![joined(M1), joined(M2), joined(M3), joined(W1)]);
    assert!(w.state().announced.iter().all(|(bus, _)| bus == "default"));
    l.handle(&event("launch", "wrk", W1), None).await.unwrap();
    assert_eq!(announced(&w).len(), 4, "a redelivery tells nothing new");
}

#[tokio::test(start_paused = true)]
async fn an_event_bus_that_refuses_does_not_fail_the_action() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    w.state().announce_error = Some(PortError::Denied {
        operation: "PutEvents".into(),
        message: "AccessDeniedException".into(),
    });
    let o = launch(&l, &w, "mgr", M1, "10.0.1.11").await;
    assert_eq!(
        (o.outcome, o.result),
        (OutcomeKind::Completed, Some(ActionResult::Continue))
    );
    assert_eq!(w.state().completed, vec![(M1.to_string(), ActionResult::Continue)]);
}

#[tokio::test(start_paused = true)]
async fn without_an_event_bus_nothing_is_announced() {
    let w = cluster();
    let mut c = cfg();
    c.event_bus = None;
    let l = lifecycle(&w, c);
    three_managers_and_a_worker(&l, &w).await;
    assert!(announced(&w).is_empty());
}

#[tokio::test(start_paused = true)]
async fn unmanaged_group_and_bad_input_do_nothing() {
    let w = cluster();
    w.state().groups.push(Group {
        name: "other".into(),
        tags: vec![],
        instances: vec![],
    });
    let l = lifecycle(&w, cfg());
    let o = l.handle(&event("launch", "other", M1), None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::Ignored);
    let o = l.handle(&json!({"garbage": true}), None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::Invalid);
    let o = l.handle(&event("launch", "missing-group", M1), None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::Ignored);
    let s = w.state();
    assert!(s.commands.is_empty() && s.completed.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_retirement_is_announced_once_by_the_invocation_that_did_it() {
    let (w, l) = joined_in_service(&[W1]).await;
    let before = announced(&w).len();
    // The warning, a copy of it, the state change of the interruption, then the hook.
    l.handle_ec2_notice(&spot_warning(W1), None).await.unwrap();
    l.handle_ec2_notice(&spot_warning(W1), None).await.unwrap();
    l.handle_ec2_notice(&state_change(W1, "shutting-down"), None)
        .await
        .unwrap();
    w.set_lifecycle(W1, "Terminating:Wait");
    l.handle(&event("terminate", "wrk", W1), None).await.unwrap();
    let retired: Vec<_> = announced(&w)[before..].to_vec();
    assert_eq!(
        retired,
        vec![("Swarm Node Retired", Some(W1.to_string()), "retired".to_string())]
    );
}

#[test]
fn the_response_keeps_its_strings() {
    let mut o = Outcome::new(OutcomeKind::AlreadyEnded, Some(W1), "x");
    o.result = Some(ActionResult::Abandon);
    assert_eq!(
        serde_json::to_value(&o).unwrap(),
        json!({"outcome": "already-ended", "instance_id": W1, "result": "ABANDON", "detail": "x"})
    );
    let o = Outcome::new(OutcomeKind::DryRun, None, "y");
    assert_eq!(
        serde_json::to_value(&o).unwrap(),
        json!({"outcome": "dry-run", "detail": "y"})
    );
}

#[tokio::test(start_paused = true)]
async fn a_rejected_request_ends_the_invocation_without_a_retry() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    w.launch("mgr", M1, "10.0.1.11");
    w.state().groups_error = Some(PortError::Invalid {
        operation: "DescribeAutoScalingGroups".into(),
        message: "ValidationError: bad filter".into(),
    });
    let o = l.handle(&event("launch", "mgr", M1), None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::Rejected, "{o:?}");
    assert_eq!(w.state().group_listings, 1, "asked again");
    assert!(w.state().completed.is_empty());
}

#[tokio::test(start_paused = true)]
async fn another_clusters_events_and_reconcile_are_left_alone() {
    let w = cluster();
    w.add_group("g-mgr", "green", Role::Manager, Some("managers.green.internal"));
    let l = lifecycle(&w, cfg());
    w.launch("g-mgr", M2, "10.0.2.12");
    let o = l.handle(&event("launch", "g-mgr", M2), None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::Ignored, "{o:?}");
    assert!(o.detail.contains("green"), "{o:?}");
    {
        let s = w.state();
        assert!(s.completed.is_empty() && s.commands.is_empty() && s.records.is_empty());
    }
    let reports = l
        .reconcile_all(Some("green"), false, Some(Instant::now() + Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(reports.is_empty());
    assert!(w.state().commands.is_empty());
    // A cluster tag that is no cluster name is a misconfiguration, logged; the roles reach only
    // groups tagged with this cluster, so its action is left to the hook's default result
    // (a_group_whose_cluster_tag_is_not_this_clusters_is_left_to_its_hooks_default).
    w.add_group("bad", "x$(touch /tmp/p)", Role::Worker, None);
    w.launch("bad", W1, "10.0.1.21");
    let o = l.handle(&event("launch", "bad", W1), None).await.unwrap();
    assert_eq!((o.outcome, o.result), (OutcomeKind::Ignored, None), "{o:?}");
    assert!(w.state().completed.is_empty());
}
