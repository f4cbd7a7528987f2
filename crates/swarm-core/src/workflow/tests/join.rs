//! Launches and action-less joins: init, join, Ready, abandon (workflow/join.rs).

use super::*;

#[tokio::test(start_paused = true)]
async fn first_manager_inits_and_is_published_in_dns() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    let o = launch(&l, &w, "mgr", M1, "10.0.1.11").await;
    assert_eq!(
        (o.outcome, o.result),
        (OutcomeKind::Completed, Some(ActionResult::Continue))
    );
    let s = w.state();
    assert_eq!(s.swarm_inits, 1);
    assert_eq!(s.completed, vec![(M1.to_string(), ActionResult::Continue)]);
    assert_eq!(s.records.len(), 1);
    assert_eq!(s.records[0].set_identifier, M1);
    assert!(s.nodes.values().all(|n| n.labelled));
    assert!(s.params.contains_key("/swarm/blue/init-lock/0"));
}

/// A refused read of the init locks (a role without ssm:GetParametersByPath) is said once and
/// answered, not asked again until the join's budget runs out (it was, as any lock-read error).
#[tokio::test(start_paused = true)]
async fn a_refused_read_of_the_init_locks_is_not_asked_again() {
    let w = cluster();
    let l = Lifecycle {
        fleet: w.clone(),
        remote: w.clone(),
        dns: w.clone(),
        params: crate::absent::Absent("Parameter Store"),
        events: w.clone(),
        checks: w.clone(),
        cfg: cfg(),
    };
    w.launch("mgr", M1, "10.0.1.11");
    let began = tokio::time::Instant::now();
    let o = l.handle(&event("launch", "mgr", M1), None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::Denied, "{o:?}");
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "asked again for {:?}",
        began.elapsed()
    );
    assert_eq!(w.state().swarm_inits, 0);
}

/// #36.5: three managers and three workers launched at once into an empty cluster. Joins
/// sent before the first manager's launch completed found no token and were sent again.
#[tokio::test(start_paused = true)]
async fn a_cluster_created_at_full_size_joins_each_instance_once() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    let all = [
        ("mgr", M1, "10.0.1.11"),
        ("mgr", M2, "10.0.1.12"),
        ("mgr", M3, "10.0.1.13"),
        ("wrk", W1, "10.0.1.21"),
        ("wrk", "i-00000000000000b2", "10.0.1.22"),
        ("wrk", "i-00000000000000b3", "10.0.1.23"),
    ];
    for (g, id, ip) in all {
        w.launch(g, id, ip);
    }
    let events: Vec<Value> = all.iter().map(|(g, id, _)| event("launch", g, id)).collect();
    let h = |i: usize| l.handle(&events[i], None);
    let (a, b, c, d, e, f) = tokio::join!(h(0), h(1), h(2), h(3), h(4), h(5));
    for o in [a, b, c, d, e, f] {
        assert_eq!(o.unwrap().result, Some(ActionResult::Continue));
    }
    let s = w.state();
    assert_eq!(s.swarm_inits, 1);
    for (g, id, _) in all {
        // A manager's half of another's join-ready is its confirmation, not a join of its own.
        let joins = s
            .commands
            .iter()
            .filter(|(on, _)| on == id)
            .filter(|(_, script)| matches!(*script, "init" | "join") || (*script == "join-ready" && g == "wrk"))
            .count();
        assert_eq!(
            joins, 1,
            "{id}: one init or join command, none doomed: {:?}",
            s.commands
        );
    }
    assert!(
        !s.commands.iter().any(|(_, script)| *script == "publish-tokens"),
        "no token was missing"
    );
}

/// #31.2: a node carries its zone, instance type, capacity type, group and its group's own
/// labels from the launch on; one removed by hand is put back by one reconcile.
#[tokio::test(start_paused = true)]
async fn nodes_carry_their_placement_labels_and_the_reconcile_puts_a_removed_one_back() {
    let w = cluster();
    w.tag_group("wrk", crate::plan::labels::GROUP_LABELS_TAG, "tier=batch,disk=ssd");
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    let labels_of = |id: &str| w.node_of(id).expect("node").labels;
    let want: Vec<(String, String)> = [
        ("disk", "ssd"),
        ("swarm.capacity-type", "on-demand"),
        ("swarm.group", "wrk"),
        ("swarm.instance-id", W1),
        ("swarm.instance-type", "t3.small"),
        ("swarm.zone", "us-east-1a"),
        ("tier", "batch"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(labels_of(W1).into_iter().collect::<Vec<_>>(), want);
    assert_eq!(labels_of(M2).get("swarm.group").map(String::as_str), Some("mgr"));
    for id in [M1, M2, M3, W1] {
        w.set_lifecycle(id, "InService");
    }
    let deadline = Some(Instant::now() + Duration::from_secs(300));
    let r = l.reconcile_all(None, false, deadline).await.unwrap();
    assert!(r[0].repairs.is_empty(), "{r:?}");
    // Removed by hand: one reconcile sets it (and the group's own) again.
    let node = w.node_of(W1).unwrap().id;
    w.state().nodes.get_mut(&node).unwrap().labels.remove("swarm.zone");
    let r = l.reconcile_all(None, false, deadline).await.unwrap();
    assert!(
        matches!(&r[0].repairs[..], [crate::plan::reconcile::Repair::Label { labels, .. }] if labels == &["swarm.zone"]),
        "{r:?}"
    );
    assert!(r[0].failed.is_empty(), "{r:?}");
    assert_eq!(labels_of(W1).into_iter().collect::<Vec<_>>(), want);
    let r = l.reconcile_all(None, false, deadline).await.unwrap();
    assert!(r[0].repairs.is_empty(), "{r:?}");
}

#[tokio::test(start_paused = true)]
async fn a_group_whose_node_labels_are_malformed_has_its_launch_abandoned_with_the_label_named() {
    let w = cluster();
    w.tag_group("wrk", crate::plan::labels::GROUP_LABELS_TAG, "tier=batch,swarm.zone=x");
    let l = lifecycle(&w, cfg());
    for (id, ip) in [(M1, "10.0.1.11"), (M2, "10.0.1.12"), (M3, "10.0.1.13")] {
        assert_eq!(launch(&l, &w, "mgr", id, ip).await.result, Some(ActionResult::Continue));
    }
    let o = launch(&l, &w, "wrk", W1, "10.0.1.21").await;
    assert_eq!(o.result, Some(ActionResult::Abandon), "{o:?}");
    assert!(
        o.detail.contains("swarm.zone=x") && o.detail.contains("reserved"),
        "{}",
        o.detail
    );
    assert!(w.node_of(W1).is_none(), "never joined half-labelled");
}

#[tokio::test(start_paused = true)]
async fn concurrent_first_managers_init_exactly_once() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    for (id, ip) in [(M1, "10.0.1.11"), (M2, "10.0.1.12"), (M3, "10.0.1.13")] {
        w.launch("mgr", id, ip);
    }
    let (e1, e2, e3) = (
        event("launch", "mgr", M1),
        event("launch", "mgr", M2),
        event("launch", "mgr", M3),
    );
    let (a, b, c) = tokio::join!(l.handle(&e1, None), l.handle(&e2, None), l.handle(&e3, None));
    for o in [a, b, c] {
        assert_eq!(o.unwrap().result, Some(ActionResult::Continue));
    }
    let s = w.state();
    assert_eq!(s.swarm_inits, 1, "exactly one swarm init");
    assert_eq!(s.nodes.values().filter(|n| n.role == Role::Manager).count(), 3);
    assert_eq!(s.records.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn worker_joins_through_a_manager_and_gets_no_dns() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    let n = w.node_of(W1).unwrap();
    assert_eq!(n.role, Role::Worker);
    assert!(n.labelled);
    assert_eq!(w.state().records.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_join_into_a_running_swarm_is_one_command() {
    let w = worker_joined(0).await;
    let s = w.state();
    // The worker joins and the manager confirms it Ready, in the same command.
    assert_eq!(
        s.commands,
        vec![(W1.to_string(), "join-ready"), (M1.to_string(), "join-ready")]
    );
    drop(s);
    assert!(w.node_of(W1).unwrap().labelled);
}

#[tokio::test(start_paused = true)]
async fn a_join_slower_than_the_first_wait_is_waited_on_not_sent_again() {
    let w = worker_joined(1).await;
    // The same manager waits for the node it now knows: no probe, no second join.
    assert_eq!(
        w.state().commands,
        vec![
            (W1.to_string(), "join-ready"),
            (M1.to_string(), "join-ready"),
            (M1.to_string(), "node-ready")
        ]
    );
    assert!(w.node_of(W1).unwrap().labelled);
}

#[tokio::test(start_paused = true)]
async fn a_ghost_node_at_the_joining_address_does_not_take_the_label() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    launch(&l, &w, "mgr", M1, "10.0.1.11").await;
    // What a join cut short leaves behind: a node at the same address the manager still
    // reports Ready (it sorts first, so the manager's half finds it before the real one).
    let ghost = "a".repeat(25);
    w.state().nodes.insert(
        ghost.clone(),
        crate::memory::SimNode {
            id: ghost.clone(),
            instance_id: String::new(),
            addr: "10.0.1.21".parse().unwrap(),
            role: Role::Worker,
            ready: true,
            drained: false,
            cordoned: false,
            labelled: false,
            labels: Default::default(),
            updated: 0,
        },
    );
    w.state().commands.clear();
    assert_eq!(
        launch(&l, &w, "wrk", W1, "10.0.1.21").await.result,
        Some(ActionResult::Continue)
    );
    assert!(w.node_of(W1).unwrap().labelled, "the instance's own node is labelled");
    assert_eq!(w.state().commands.last(), Some(&(M1.to_string(), "node-ready")));
}

#[tokio::test(start_paused = true)]
async fn a_join_through_a_manager_whose_agent_is_offline_uses_the_others() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    launch(&l, &w, "mgr", M1, "10.0.1.11").await;
    launch(&l, &w, "mgr", M2, "10.0.1.12").await;
    w.state().online.remove(M1);
    let o = launch(&l, &w, "wrk", W1, "10.0.1.21").await;
    assert_eq!(o.result, Some(ActionResult::Continue));
    assert!(w.node_of(W1).unwrap().labelled);
}

#[tokio::test(start_paused = true)]
async fn worker_without_managers_is_abandoned_after_its_budget() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    let o = launch(&l, &w, "wrk", W1, "10.0.1.21").await;
    assert_eq!(o.result, Some(ActionResult::Abandon));
    assert!(
        o.detail.contains("no manager of the cluster is in service"),
        "{}",
        o.detail
    );
    let joins = w.state().commands.iter().filter(|(_, s)| s.contains("join")).count();
    assert_eq!(joins, 0, "no join sent while no manager was in service");
}

#[tokio::test(start_paused = true)]
async fn a_daemon_on_the_nftables_backend_is_abandoned_at_once_with_its_reason() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    launch(&l, &w, "mgr", M1, "10.0.1.11").await;
    w.state().nftables.insert(W1.to_string());
    let started = tokio::time::Instant::now();
    let o = launch(&l, &w, "wrk", W1, "10.0.1.21").await;
    assert_eq!(o.result, Some(ActionResult::Abandon));
    assert!(o.detail.contains("nftables"), "{}", o.detail);
    // Not asked again until the budget runs out: one join, at once.
    let joins = w
        .state()
        .commands
        .iter()
        .filter(|(on, name)| on == W1 && name.starts_with("join"))
        .count();
    assert_eq!(joins, 1);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test(start_paused = true)]
async fn a_launch_without_its_shared_storage_mounted_is_abandoned_with_the_reason() {
    let w = cluster();
    let mut c = cfg();
    c.shared_storage = Some("/cluster".into());
    let l = lifecycle(&w, c);
    launch(&l, &w, "mgr", M1, "10.0.1.11").await;
    w.state().unmounted.insert(W1.to_string());
    let started = tokio::time::Instant::now();
    let o = launch(&l, &w, "wrk", W1, "10.0.1.21").await;
    assert_eq!(o.result, Some(ActionResult::Abandon));
    assert!(
        o.detail.contains("shared storage /cluster is not mounted"),
        "{}",
        o.detail
    );
    // At once: waiting for the mount is the script's (a boot still mounting), not the budget's.
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    // Mounted, the next instance joins; without shared storage configured, no check at all.
    let o = launch(&l, &w, "wrk", "i-00000000000000b2", "10.0.1.22").await;
    assert_eq!(o.result, Some(ActionResult::Continue), "{}", o.detail);
    w.state().unmounted.insert("i-00000000000000b3".to_string());
    let plain = lifecycle(&w, cfg());
    let o = launch(&plain, &w, "wrk", "i-00000000000000b3", "10.0.1.23").await;
    assert_eq!(o.result, Some(ActionResult::Continue), "{}", o.detail);
}

#[tokio::test(start_paused = true)]
async fn offline_agent_abandons_with_reason() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    w.launch("mgr", M1, "10.0.1.11");
    w.state().online.clear();
    let o = l.handle(&event("launch", "mgr", M1), None).await.unwrap();
    assert_eq!(o.result, Some(ActionResult::Abandon));
    assert!(o.detail.contains("SSM agent"));
}

#[tokio::test(start_paused = true)]
async fn redelivered_launch_changes_nothing() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    let before = w.state().nodes.len();
    let o = l.handle(&event("launch", "wrk", W1), None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::AlreadyEnded);
    assert_eq!(w.state().nodes.len(), before);
}

#[tokio::test(start_paused = true)]
async fn failing_join_is_abandoned() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    launch(&l, &w, "mgr", M1, "10.0.1.11").await;
    w.state().failing.extend(["join-ready", "join"]);
    let o = launch(&l, &w, "wrk", W1, "10.0.1.21").await;
    assert_eq!(o.result, Some(ActionResult::Abandon));
    assert!(o.detail.contains("injected failure"), "{}", o.detail);
}

/// CI of session 14's submission: a join command that ends (TimedOut, here Failed) after the budget is spent
/// was abandoned as "no attempt finished", hiding what happened to it.
#[tokio::test(start_paused = true)]
async fn a_join_outlasting_the_budget_is_abandoned_with_its_own_result() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    launch(&l, &w, "mgr", M1, "10.0.1.11").await;
    w.state().failing.insert("join-ready");
    w.state()
        .command_time
        .insert("join-ready", cfg().join_budget + Duration::from_secs(1));
    let o = launch(&l, &w, "wrk", W1, "10.0.1.21").await;
    assert_eq!(o.result, Some(ActionResult::Abandon));
    assert!(o.detail.contains("Failed exit 1: injected failure"), "{}", o.detail);
}

#[tokio::test(start_paused = true)]
async fn launch_of_a_vanished_instance_is_abandoned_without_commands() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    w.launch("mgr", M1, "10.0.1.11");
    {
        let mut s = w.state();
        s.instances.get_mut(M1).unwrap().state = InstanceState::Terminated;
        s.online.clear();
    }
    let started = Instant::now();
    let o = l.handle(&event("launch", "mgr", M1), None).await.unwrap();
    assert_eq!(o.result, Some(ActionResult::Abandon));
    assert!(w.state().commands.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no wait for an agent that never comes"
    );
}

#[tokio::test(start_paused = true)]
async fn missing_token_is_republished_then_join_succeeds() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    launch(&l, &w, "mgr", M1, "10.0.1.11").await;
    w.state().params.retain(|k, _| !k.contains("join-token"));
    assert_eq!(
        launch(&l, &w, "wrk", W1, "10.0.1.21").await.result,
        Some(ActionResult::Continue)
    );
    assert!(w
        .state()
        .commands
        .iter()
        .any(|(id, n)| id == M1 && *n == "publish-tokens"));
}

#[tokio::test(start_paused = true)]
async fn stale_init_lock_of_a_dead_manager_does_not_block() {
    let w = cluster();
    w.state()
        .params
        .insert("/swarm/blue/init-lock/0".into(), "i-00000000000000ff 1".into());
    let l = lifecycle(&w, cfg());
    assert_eq!(
        launch(&l, &w, "mgr", M1, "10.0.1.11").await.result,
        Some(ActionResult::Continue)
    );
    assert!(w.state().params.contains_key("/swarm/blue/init-lock/1"));
}

#[tokio::test(start_paused = true)]
async fn a_queued_launch_counts_its_budget_from_the_event_time() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    launch(&l, &w, "mgr", M1, "10.0.1.11").await;
    w.launch("wrk", W1, "10.0.1.21");
    w.state().commands.clear();
    // The event waited behind other invocations longer than the whole join budget.
    let age = (cfg().agent_wait + cfg().join_budget).as_secs() + 1;
    let o = l.handle(&event_aged("launch", "wrk", W1, age), None).await.unwrap();
    assert_eq!(o.result, Some(ActionResult::Abandon));
    assert!(o.detail.contains("budget was spent"), "{}", o.detail);
    assert!(w.state().commands.is_empty(), "no join was started");
    assert!(w.node_of(W1).is_none());
}

#[tokio::test(start_paused = true)]
async fn a_long_join_heartbeats_the_launch_action() {
    let w = cluster();
    let mut c = cfg();
    c.agent_wait = Duration::from_secs(120);
    c.launch_heartbeat_timeout = Duration::from_secs(40);
    let l = lifecycle(&w, c);
    launch(&l, &w, "mgr", M1, "10.0.1.11").await;
    w.launch("wrk", W1, "10.0.1.21");
    w.state().online.remove(W1);
    // The agent comes online 70 s after the launch: longer than the hook's timeout.
    let world = w.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(70)).await;
        world.state().online.insert(W1.to_string());
    });
    let o = l.handle(&event("launch", "wrk", W1), None).await.unwrap();
    assert_eq!(o.result, Some(ActionResult::Continue));
    // Re-armed once half the timeout has passed, at the next poll (≤ poll_max later, jittered):
    // 70 s with no gap over 40 s takes at least two heartbeats (asking for three failed when
    // the jitter put the third poll after the agent came online).
    let beats = w.state().heartbeats.iter().filter(|i| *i == W1).count();
    assert!(beats >= 2, "one heartbeat per half timeout: {beats}");
}

#[tokio::test(start_paused = true)]
async fn an_ended_launch_writes_no_record_and_its_node_is_retired() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    launch(&l, &w, "mgr", M1, "10.0.1.11").await;
    w.launch("mgr", M2, "10.0.1.12");
    // The hook gave up on the launch (or the instance was terminated) while the event waited.
    w.set_lifecycle(M2, "Terminating:Proceed");
    let o = l.handle(&event("launch", "mgr", M2), None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::AlreadyEnded);
    let s = w.state();
    assert!(
        !s.records.iter().any(|r| r.set_identifier == M2),
        "a record for a leaving instance"
    );
    assert!(
        !s.nodes.values().any(|n| n.instance_id == M2),
        "the leaving instance's node stayed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_terminate_during_a_join_leaves_no_ghost_node() {
    for (group, id, ip) in [("wrk", W1, "10.0.1.21"), ("mgr", M2, "10.0.1.12")] {
        let w = cluster();
        let l = lifecycle(&w, cfg());
        launch(&l, &w, "mgr", M1, "10.0.1.11").await;
        w.launch(group, id, ip);
        // Its join is in flight (the launch's command is running) when the terminate comes.
        let param = format!(
            "/swarm/blue/join-token/{}",
            if group == "mgr" { "manager" } else { "worker" }
        );
        w.state()
            .joins_in_flight
            .push((id.to_string(), param, vec!["10.0.1.11".into()]));
        w.set_lifecycle(id, "Terminating:Wait");
        let o = l.handle(&event("terminate", group, id), None).await.unwrap();
        assert!(matches!(o.outcome, OutcomeKind::Completed | OutcomeKind::Held), "{o:?}");
        // Whatever was in flight lands now, if the instance still accepts it.
        let landing = std::mem::take(&mut w.state().joins_in_flight);
        for (i, param, addrs) in landing {
            w.state().sim_join(&i, &param, &addrs);
        }
        assert!(w.node_of(id).is_none(), "a node of {id} outlived its terminate action");
        // A redelivered launch cannot bring it back either.
        w.set_lifecycle(id, "Pending:Wait");
        let o = l.handle(&event("launch", group, id), None).await.unwrap();
        assert_eq!(o.result, Some(ActionResult::Abandon), "{o:?}");
        assert!(
            w.node_of(id).is_none(),
            "a redelivered launch rejoined a retired instance"
        );
    }
}

/// With service names, a worker that joins enters the ingress names at once, not at the next
/// reconcile.
#[tokio::test(start_paused = true)]
async fn a_joined_worker_enters_the_service_names_at_once() {
    let (w, l) = with_service_names("service\tapi\tapi.apps.blue.internal\tingress \n").await;
    const W2: &str = "i-00000000000000b2";
    assert_eq!(
        launch(&l, &w, "wrk", W2, "10.0.1.22").await.result,
        Some(ActionResult::Continue)
    );
    let sets: Vec<Option<String>> = w
        .state()
        .zone
        .iter()
        .filter(|e| e.kind == "A")
        .map(|e| e.set_identifier.clone())
        .collect();
    assert!(sets.contains(&Some(W2.to_string())), "{sets:?}");
    assert!(sets.contains(&Some(W1.to_string())), "{sets:?}");
}
