//! The reconcile and tidy (workflow/reconcile.rs).

use super::*;
use crate::plan::service_dns::ZoneEntry;
use std::collections::BTreeSet;

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
    instance_gone(&w, W1);
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

/// With SERVICE_RECORD_SUFFIX, each run keeps a labelled service's name at the eligible
/// workers with its owner record, writes nothing when nothing changed, and follows a worker
/// that stops being eligible (issue #32: the reconcile's part).
#[tokio::test(start_paused = true)]
async fn the_reconcile_keeps_a_services_name_at_its_nodes_and_writes_nothing_when_nothing_changed() {
    let (w, l) =
        with_service_names("service\tapi\tapi.apps.blue.internal\tingress \nservice\tbad\tapi.example.com\tingress \n")
            .await;
    let zone = w.state().zone.clone();
    let a: Vec<&ZoneEntry> = zone.iter().filter(|e| e.kind == "A").collect();
    assert_eq!(a.len(), 1, "{zone:?}");
    assert_eq!(
        (a[0].set_identifier.as_deref(), a[0].values.clone()),
        (Some(W1), vec!["10.0.1.21".to_string()])
    );
    assert!(zone
        .iter()
        .any(|e| e.kind == "TXT" && e.values == [crate::plan::service_dns::owner_value("blue", "api")]));
    let changes = w.state().changes;
    l.reconcile_all(Some("blue"), false, None).await.unwrap();
    assert_eq!(w.state().changes, changes, "a converged name costs reading only");
    // The worker drained: the name falls back to the managers.
    l.handle_ecs(&ecs_event("DRAINING", W1), None).await.unwrap();
    l.reconcile_all(Some("blue"), false, None).await.unwrap();
    let ips: BTreeSet<String> = w
        .state()
        .zone
        .iter()
        .filter(|e| e.kind == "A")
        .flat_map(|e| e.values.clone())
        .collect();
    assert_eq!(
        ips,
        ["10.0.1.11", "10.0.1.12", "10.0.1.13"].map(String::from).into(),
        "the managers"
    );
}

/// A refused name is told once (one `Swarm Service Name Refused` across runs), forgotten when
/// the refusal ends, and told again when it comes back (issue #32, bad input).
#[tokio::test(start_paused = true)]
async fn a_refused_service_name_is_told_once_and_again_only_after_it_ended() {
    let bad = "service\tapi\tapi.apps.blue.internal\tingress \nservice\tbad\tapi.example.com\tingress \n";
    let (w, l) = with_service_names(bad).await;
    let refused = |w: &World| {
        w.state()
            .announced
            .iter()
            .filter(|(_, e)| e.detail_type() == "Swarm Service Name Refused")
            .map(|(_, e)| (e.service.clone(), e.dns_name.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        refused(&w),
        vec![(Some("bad".to_string()), Some("api.example.com".to_string()))]
    );
    l.reconcile_all(Some("blue"), false, None).await.unwrap();
    assert_eq!(refused(&w).len(), 1, "told once, not every run");
    // The label fixed: the telling is forgotten; broken again: told again.
    w.state().services_out = "service\tapi\tapi.apps.blue.internal\tingress \n".into();
    l.reconcile_all(Some("blue"), false, None).await.unwrap();
    assert!(
        !w.state().params.keys().any(|k| k.contains("/told-names/")),
        "{:?}",
        w.state().params
    );
    w.state().services_out = bad.into();
    l.reconcile_all(Some("blue"), false, None).await.unwrap();
    assert_eq!(refused(&w).len(), 2);
}

/// The operator's `dns sync` (Scope::ServiceNames) changes the names and makes no repair;
/// dry, it changes and tells nothing but says what it would change; `tidy` leaves the names.
#[tokio::test(start_paused = true)]
async fn dns_sync_changes_only_the_names_and_a_dry_run_nothing() {
    let services = "service\tapi\tapi.apps.blue.internal\tingress \nservice\tbad\tx.example.com\tingress \n";
    let (w, l) = service_names_cluster(services, true).await;
    let before = w.state().changes;
    w.state().announced.clear();
    for scope in [Scope::GoneNodes, Scope::ServiceNames] {
        let r = l.reconcile_scoped(Some("blue"), scope, true, None).await.unwrap();
        if scope == Scope::ServiceNames {
            let n = r[0].service_names.as_ref().expect("planned");
            assert_eq!((n.changes, n.refused.len()), (2, 1), "{n:?}");
        } else {
            assert_eq!(r[0].service_names, None, "tidy leaves the names");
        }
    }
    assert_eq!(w.state().changes, before, "dry: nothing changed");
    assert!(w.state().announced.is_empty(), "dry: nothing told");
    // A gone worker's node is there to repair: dns sync leaves it.
    instance_gone(&w, W1);
    let r = l
        .reconcile_scoped(Some("blue"), Scope::ServiceNames, false, None)
        .await
        .unwrap();
    assert!(r[0].repairs.is_empty(), "{:?}", r[0].repairs);
    assert!(l
        .survey()
        .await
        .unwrap()
        .repairs
        .iter()
        .any(|r| matches!(r, crate::plan::reconcile::Repair::RemoveNode { .. })));
    assert_eq!(r[0].service_names.as_ref().map(|n| n.names.len()), Some(1));
    assert!(w.state().changes > before);
}

/// With no bus to tell on (the operator's command without ACTION_EVENT_BUS), a refusal is not
/// marked told: the function's next run tells it.
#[tokio::test(start_paused = true)]
async fn a_refusal_is_marked_told_only_where_it_was_told() {
    let (w, l) = service_names_cluster("service\tbad\tapi.example.com\tingress \n", false).await;
    let r = l.reconcile_all(Some("blue"), false, None).await.unwrap();
    assert_eq!(r[0].service_names.as_ref().map(|n| n.refused.len()), Some(1));
    assert!(
        !w.state().params.keys().any(|k| k.contains("/told-names/")),
        "{:?}",
        w.state().params
    );
}
