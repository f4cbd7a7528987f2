//! ECS container-instance state changes (workflow/mod.rs handle_ecs, join.rs).

use super::*;

#[tokio::test(start_paused = true)]
async fn an_ecs_deregistration_of_a_manager_in_service_drains_it_and_keeps_it() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    w.set_lifecycle(M1, "InService");
    l.handle_ecs(&ecs_event("INACTIVE", M1), None).await.unwrap();
    let s = w.state();
    let node = s
        .nodes
        .values()
        .find(|n| n.instance_id == M1)
        .expect("the node is kept");
    assert!(node.drained && node.role == Role::Manager, "{node:?}");
    assert_eq!(s.records.len(), 3, "its record stays");
}

#[tokio::test(start_paused = true)]
async fn an_ecs_deregistration_of_a_leaving_instance_removes_its_node() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    w.set_lifecycle(W1, "Terminating:Wait");
    l.handle_ecs(&ecs_event("INACTIVE", W1), None).await.unwrap();
    assert!(!w.state().nodes.values().any(|n| n.instance_id == W1));
}

#[tokio::test(start_paused = true)]
async fn an_ecs_active_for_a_healthy_node_costs_one_check_on_one_manager() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    for id in [M1, M2, M3, W1] {
        w.set_lifecycle(id, "InService");
    }
    let records = w.state().records.clone();
    for id in [W1, M2] {
        w.state().commands.clear();
        let o = l.handle_ecs(&ecs_event("ACTIVE", id), None).await.unwrap();
        assert_eq!(o.outcome, OutcomeKind::AlreadyMember, "{o:?}");
        let s = w.state();
        assert_eq!(s.commands.len(), 1, "one command: {:?}", s.commands);
        assert_eq!(s.commands[0].1, "node-status");
        assert_eq!(s.records, records, "no record written");
    }
}

/// When the one-manager check cannot tell (its command failed), the full join path decides: it
/// finds the node a member already, and a join that joined nothing is not announced again.
#[tokio::test(start_paused = true)]
async fn an_ecs_active_whose_check_was_inconclusive_announces_no_second_join() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    for id in [M1, M2, M3, W1] {
        w.set_lifecycle(id, "InService");
    }
    let node = w.node_of(W1).unwrap().id;
    w.state().announced.clear();
    w.state().failing.insert("node-status");
    let o = l.handle_ecs(&ecs_event("ACTIVE", W1), None).await.unwrap();
    assert_eq!(o.outcome, OutcomeKind::Done, "the full path ran: {o:?}");
    assert!(o.quiet, "{o:?}");
    assert_eq!(w.node_of(W1).unwrap().id, node, "the same node");
    assert!(w.state().announced.is_empty(), "{:?}", w.state().announced);
}

#[tokio::test(start_paused = true)]
async fn an_ecs_active_after_draining_sets_the_node_active_again() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    w.set_lifecycle(W1, "InService");
    l.handle_ecs(&ecs_event("DRAINING", W1), None).await.unwrap();
    assert!(w.node_of(W1).unwrap().drained);
    l.handle_ecs(&ecs_event("ACTIVE", W1), None).await.unwrap();
    assert!(!w.node_of(W1).unwrap().drained, "ACTIVE undoes DRAINING");
}
