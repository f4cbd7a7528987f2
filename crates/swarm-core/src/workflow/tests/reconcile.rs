//! The reconcile and tidy (workflow/reconcile.rs).

use super::*;

#[tokio::test(start_paused = true)]
async fn the_reconcile_repairs_dns_first_and_defers_joins_it_cannot_finish() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    const W2: &str = "i-00000000000000b2";
    w.launch("wrk", W2, "10.0.1.22");
    w.set_lifecycle(W2, "InService");
    w.state().records.retain(|r| r.set_identifier != M2);
    w.state().commands.clear();
    // 30 s left: a join may take the agent wait (20 s) plus the join budget (60 s).
    let reports = l
        .reconcile_all(None, false, Some(Instant::now() + Duration::from_secs(30)))
        .await
        .unwrap();
    let r = &reports[0];
    assert_eq!(r.deferred.len(), 1, "{r:?}");
    assert!(r.deferred[0].contains(W2), "{r:?}");
    let s = w.state();
    assert!(
        s.records.iter().any(|x| x.set_identifier == M2),
        "the record is repaired all the same"
    );
    assert!(
        !s.commands.iter().any(|(i, _)| i == W2),
        "no join was started: {:?}",
        s.commands
    );
    let (_, deferred) = s.announced.last().expect("the deferred join told");
    assert_eq!(deferred.detail_type(), "Swarm Reconcile Deferred");
    assert!(deferred.deferred[0].contains(W2), "{deferred:?}");
}

#[tokio::test(start_paused = true)]
async fn tidy_removes_only_the_down_nodes_of_gone_instances() {
    let w = cluster();
    let l = lifecycle(&w, cfg());
    three_managers_and_a_worker(&l, &w).await;
    for id in [M1, M2, M3, W1] {
        w.set_lifecycle(id, "InService");
    }
    // W1 is gone with its node Down; W2 runs outside the swarm; M2 lost its record.
    const W2: &str = "i-00000000000000b2";
    {
        let mut s = w.state();
        s.nodes
            .values_mut()
            .filter(|n| n.instance_id == W1)
            .for_each(|n| n.ready = false);
        s.groups.iter_mut().for_each(|g| g.instances.retain(|i| i.id != W1));
        s.instances.remove(W1);
    }
    w.launch("wrk", W2, "10.0.1.22");
    w.set_lifecycle(W2, "InService");
    w.state().records.retain(|r| r.set_identifier != M2);
    let everything = l.survey().await.unwrap().repairs;
    assert_eq!(
        everything.len(),
        3,
        "remove W1's node, join W2, M2's record: {everything:?}"
    );
    w.state().commands.clear();
    let deadline = Some(Instant::now() + Duration::from_secs(900));
    let r = l
        .reconcile_scoped(None, Scope::GoneNodes, false, deadline)
        .await
        .unwrap();
    assert_eq!(r[0].repairs.len(), 1, "{r:?}");
    assert!(w.node_of(W1).is_none(), "W1's node removed");
    let s = w.state();
    assert!(
        !s.records.iter().any(|x| x.set_identifier == M2),
        "the record is left alone"
    );
    assert!(!s.commands.iter().any(|(i, _)| i == W2), "no join: {:?}", s.commands);
}
