use super::*;

const SUFFIX: &str = "apps.blue.internal";

fn node(n: u8, role: Role) -> NodeView {
    NodeView {
        instance_id: format!("i-{n:02}"),
        ip: Ipv4Addr::new(10, 0, 1, n),
        role,
        ready: true,
        active: true,
        leaving: false,
    }
}

fn service(name: &str, label: &str, publish: Option<Publish>) -> ServiceView {
    ServiceView {
        name: name.into(),
        dns_label: Some(label.into()),
        publish,
        task_instances: vec![],
    }
}

fn input<'a>(services: &'a [ServiceView], nodes: &'a [NodeView], zone: &'a [ZoneEntry]) -> ServiceDnsInput<'a> {
    ServiceDnsInput {
        cluster: "blue",
        suffix: SUFFIX,
        manager_record: Some("managers.apps.blue.internal"),
        ttl: 60,
        services,
        nodes,
        zone,
    }
}

/// The zone as it is once `changes` were applied to `zone` (what Route 53 would hold).
fn apply(zone: &[ZoneEntry], changes: &[ZoneChange]) -> Vec<ZoneEntry> {
    let mut z: Vec<ZoneEntry> = zone.to_vec();
    for c in changes {
        match c {
            ZoneChange::Delete(e) => {
                let before = z.len();
                z.retain(|x| x != e);
                assert_eq!(z.len() + 1, before, "a DELETE names what is there: {e:?}");
            }
            ZoneChange::Upsert(e) => {
                z.retain(|x| !(x.name == e.name && x.kind == e.kind && x.set_identifier == e.set_identifier));
                z.push(e.clone());
            }
        }
    }
    z.sort();
    z
}

fn ips(plan: &ServiceDnsPlan, name: &str) -> Vec<u8> {
    let n = plan.names.iter().find(|n| n.name == name).expect("the name is kept");
    n.values.iter().map(|ip| ip.octets()[3]).collect()
}

fn owner(name: &str, cluster: &str, service: &str) -> ZoneEntry {
    ZoneEntry {
        name: name.into(),
        kind: "TXT".into(),
        set_identifier: None,
        values: vec![owner_value(cluster, service)],
        ttl: 60,
    }
}

#[test]
fn an_ingress_name_answers_with_the_eligible_workers_and_says_who_owns_it() {
    let mut nodes = vec![
        node(1, Role::Manager),
        node(11, Role::Worker),
        node(12, Role::Worker),
        node(13, Role::Worker),
        node(14, Role::Worker),
        node(15, Role::Worker),
    ];
    nodes[2].ready = false;
    nodes[3].active = false; // drained
    nodes[4].leaving = true;
    let services = [service("api", "API.apps.blue.internal.", Some(Publish::Ingress))];
    let plan = plan_service_dns(&input(&services, &nodes, &[]));
    assert!(plan.refused.is_empty(), "{:?}", plan.refused);
    assert_eq!(ips(&plan, "api.apps.blue.internal"), vec![11, 15]);
    let zone = apply(&[], &plan.changes);
    assert_eq!(zone.iter().filter(|e| e.kind == "A").count(), 2);
    assert!(zone.contains(&owner("api.apps.blue.internal", "blue", "api")));
    // The zone as planned: nothing more to write (reading is all a converged name costs).
    assert_eq!(plan_service_dns(&input(&services, &nodes, &zone)).changes, vec![]);
}

#[test]
fn an_ingress_name_falls_back_to_the_managers_and_a_host_name_to_its_tasks_nodes() {
    let nodes = [node(1, Role::Manager), node(2, Role::Manager), node(11, Role::Worker)];
    let mut host = service("db", "db.apps.blue.internal", Some(Publish::Host));
    host.task_instances = vec!["i-02".into()];
    let services = [service("api", "api.apps.blue.internal", Some(Publish::Ingress)), host];
    let plan = plan_service_dns(&input(&services, &nodes, &[]));
    assert_eq!(ips(&plan, "db.apps.blue.internal"), vec![2]);
    assert_eq!(ips(&plan, "api.apps.blue.internal"), vec![11]);
    let plan = plan_service_dns(&input(&services, &nodes[..2], &[]));
    assert_eq!(
        ips(&plan, "api.apps.blue.internal"),
        vec![1, 2],
        "no worker: the managers"
    );
}

#[test]
fn at_most_eight_values_and_churn_elsewhere_does_not_reshuffle_them() {
    let mut nodes: Vec<NodeView> = (20..30).map(|n| node(n, Role::Worker)).collect();
    let services = [service("api", "api.apps.blue.internal", Some(Publish::Ingress))];
    let first = plan_service_dns(&input(&services, &nodes, &[]));
    assert_eq!(ips(&first, "api.apps.blue.internal"), (20..28).collect::<Vec<u8>>());
    let zone = apply(&[], &first.changes);
    // A new node with a lower id joins: the eight stay.
    nodes.push(node(10, Role::Worker));
    let plan = plan_service_dns(&input(&services, &nodes, &zone));
    assert_eq!(plan.changes, vec![], "nothing written");
    // One of the eight leaves: only it is replaced, by the lowest eligible id.
    nodes.iter_mut().find(|n| n.instance_id == "i-23").unwrap().leaving = true;
    let plan = plan_service_dns(&input(&services, &nodes, &zone));
    let mut got = ips(&plan, "api.apps.blue.internal");
    got.sort();
    assert_eq!(got, vec![10, 20, 21, 22, 24, 25, 26, 27]);
    assert_eq!(plan.changes.len(), 2, "one delete, one upsert: {:?}", plan.changes);
}

#[test]
fn a_label_moved_to_another_name_or_service_moves_the_records_and_the_owner() {
    let nodes = [node(11, Role::Worker)];
    let zone = apply(
        &[],
        &plan_service_dns(&input(
            &[service("api", "api.apps.blue.internal", Some(Publish::Ingress))],
            &nodes,
            &[],
        ))
        .changes,
    );
    let moved = [service("api", "api2.apps.blue.internal", Some(Publish::Ingress))];
    let plan = plan_service_dns(&input(&moved, &nodes, &zone));
    let after = apply(&zone, &plan.changes);
    assert!(after.iter().all(|e| e.name == "api2.apps.blue.internal"), "{after:?}");
    // The same name now labelled on another service: the owner says so.
    let other = [service("web", "api2.apps.blue.internal", Some(Publish::Ingress))];
    let plan = plan_service_dns(&input(&other, &nodes, &after));
    assert_eq!(
        plan.changes,
        vec![ZoneChange::Upsert(owner("api2.apps.blue.internal", "blue", "web"))]
    );
    // The service removed: its name's records and owner go.
    let plan = plan_service_dns(&input(&[], &nodes, &after));
    assert_eq!(apply(&after, &plan.changes), vec![]);
}

#[test]
fn records_this_project_did_not_create_and_other_clusters_names_are_left_alone() {
    let nodes = [node(11, Role::Worker)];
    let hand_made = ZoneEntry {
        name: "shop.apps.blue.internal".into(),
        kind: "A".into(),
        set_identifier: None,
        values: vec!["192.0.2.1".into()],
        ttl: 300,
    };
    let green = owner("cart.apps.blue.internal", "green", "cart");
    let green_a = ZoneEntry {
        name: "cart.apps.blue.internal".into(),
        kind: "A".into(),
        set_identifier: Some("i-99".into()),
        values: vec!["10.9.9.9".into()],
        ttl: 60,
    };
    let zone = vec![hand_made, green, green_a];
    let services = [
        service("shop", "shop.apps.blue.internal", Some(Publish::Ingress)),
        service("cart", "cart.apps.blue.internal", Some(Publish::Ingress)),
        service("api", "api.apps.blue.internal", Some(Publish::Ingress)),
    ];
    let plan = plan_service_dns(&input(&services, &nodes, &zone));
    let reasons: Vec<(&str, &str)> = plan
        .refused
        .iter()
        .map(|r| (r.service.as_str(), r.reason.as_str()))
        .collect();
    assert!(
        reasons.contains(&("shop", "records this project did not create are there: left alone")),
        "{reasons:?}"
    );
    assert!(reasons.contains(&("cart", "owned by cluster green")), "{reasons:?}");
    assert!(
        plan.changes.iter().all(|c| c.entry().name == "api.apps.blue.internal"),
        "only api changes: {:?}",
        plan.changes
    );
    // With no service of ours at all, another cluster's names are still not ours to remove.
    assert!(plan_service_dns(&input(&[], &nodes, &zone)).changes.is_empty());
}

#[test]
fn bad_names_are_refused_with_the_reason_and_the_others_still_converge() {
    let nodes = [node(11, Role::Worker)];
    let services = [
        service("a", "not a name!", Some(Publish::Ingress)),
        service("b", "api.example.com", Some(Publish::Ingress)),
        service("c", "managers.apps.blue.internal", Some(Publish::Ingress)),
        service("d", "d.apps.blue.internal", None),
        service("e", "x.apps.blue.internal", Some(Publish::Ingress)),
        service("f", "x.apps.blue.internal", Some(Publish::Ingress)),
        service(
            "ok",
            "ok.apps.blue.internal, ok2.apps.blue.internal",
            Some(Publish::Ingress),
        ),
    ];
    let plan = plan_service_dns(&input(&services, &nodes, &[]));
    let by: BTreeMap<&str, &str> = plan
        .refused
        .iter()
        .map(|r| (r.service.as_str(), r.reason.as_str()))
        .collect();
    assert!(by["a"].contains("not a DNS name"), "{by:?}");
    assert!(by["b"].contains("outside the names this cluster may change"), "{by:?}");
    assert!(by["c"].contains("manager record"), "{by:?}");
    assert!(by["d"].contains("publishes no port"), "{by:?}");
    assert!(
        by["e"].contains("several services: e, f") && by["f"].contains("several services"),
        "{by:?}"
    );
    let names: Vec<&str> = plan.names.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, vec!["ok.apps.blue.internal", "ok2.apps.blue.internal"]);
}

#[test]
fn a_name_in_dispute_keeps_its_records_until_the_dispute_ends() {
    let nodes = [node(11, Role::Worker)];
    let zone = apply(
        &[],
        &plan_service_dns(&input(
            &[service("e", "x.apps.blue.internal", Some(Publish::Ingress))],
            &nodes,
            &[],
        ))
        .changes,
    );
    let both = [
        service("e", "x.apps.blue.internal", Some(Publish::Ingress)),
        service("f", "x.apps.blue.internal", Some(Publish::Ingress)),
    ];
    assert_eq!(
        plan_service_dns(&input(&both, &nodes, &zone)).changes,
        vec![],
        "refused: nothing changed"
    );
}

#[test]
fn a_leaving_instance_leaves_only_this_clusters_names() {
    let nodes = [node(11, Role::Worker), node(12, Role::Worker)];
    let services = [service("api", "api.apps.blue.internal", Some(Publish::Ingress))];
    let mut zone = apply(&[], &plan_service_dns(&input(&services, &nodes, &[])).changes);
    zone.push(ZoneEntry {
        name: "cart.apps.blue.internal".into(),
        kind: "A".into(),
        set_identifier: Some("i-11".into()),
        values: vec!["10.0.1.11".into()],
        ttl: 60,
    });
    let gone = leaving_records(&zone, "blue", "i-11");
    assert_eq!(gone.len(), 1, "{gone:?}");
    assert_eq!(gone[0].name, "api.apps.blue.internal");
    assert_eq!(gone[0].set_identifier.as_deref(), Some("i-11"));
}

#[test]
fn batches_keep_to_route53s_request_limits() {
    let upserts: Vec<ZoneChange> = (0..1200)
        .map(|i| {
            ZoneChange::Upsert(a_set(
                "api.apps.blue.internal",
                &format!("i-{i}"),
                Ipv4Addr::new(10, 0, (i / 250) as u8, (i % 250) as u8),
                60,
            ))
        })
        .collect();
    let b = batches(upserts);
    // An UPSERT's record counts twice: 500 a request.
    assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![500, 500, 200]);
    let txt = |n: usize| {
        ZoneChange::Delete(ZoneEntry {
            name: "t.apps.blue.internal".into(),
            kind: "TXT".into(),
            set_identifier: Some(n.to_string()),
            values: vec!["x".repeat(255)],
            ttl: 60,
        })
    };
    let b = batches((0..200).map(txt).collect());
    assert!(b
        .iter()
        .all(|r| r.iter().map(|c| c.weight().1).sum::<usize>() <= MAX_BATCH_CHARS));
    assert_eq!(b.len(), 2);
    assert!(batches(vec![]).is_empty());
}

#[test]
fn the_services_script_is_read_with_each_mode_and_host_tasks_by_instance() {
    let line =
        "abcdefghijklmnopqrstuvwx1 ready 10.0.1.11 worker active false i-0000000000000011 1700000000 ip-10-0-1-11\n\
                abcdefghijklmnopqrstuvwx2 ready 10.0.1.12 worker active false - 1700000000 ip-10-0-1-12\n";
    let view = crate::model::SwarmView::parse(line);
    let out = "service\tapi\tapi.apps.blue.internal\tingress \n\
               service\tdb\tdb.apps.blue.internal,db2.apps.blue.internal\thost \n\
               task\tdb\tabcdefghijklmnopqrstuvwx1\n\
               task\tdb\tabcdefghijklmnopqrstuvwx2\n\
               service\tplain\tplain.apps.blue.internal\t\n\
               garbage\n";
    let got = parse_services(out, &view);
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!((got[0].name.as_str(), got[0].publish), ("api", Some(Publish::Ingress)));
    assert_eq!(got[1].publish, Some(Publish::Host));
    assert_eq!(
        got[1].dns_label.as_deref(),
        Some("db.apps.blue.internal,db2.apps.blue.internal")
    );
    assert_eq!(
        got[1].task_instances,
        vec!["i-0000000000000011".to_string()],
        "a node without its instance label counts for nothing"
    );
    assert_eq!(got[2].publish, None);
}

#[test]
fn the_operators_status_lists_each_name_with_its_owner_and_values() {
    let nodes = [node(21, Role::Worker), node(22, Role::Worker)];
    let services = [service("api", "api.apps.blue.internal", Some(Publish::Ingress))];
    let mut zone = apply(&[], &plan_service_dns(&input(&services, &nodes, &[])).changes);
    zone.push(ZoneEntry {
        name: "www.apps.blue.internal".into(),
        kind: "A".into(),
        set_identifier: None,
        values: vec!["192.0.2.10".into()],
        ttl: 300,
    });
    let st = name_status(&zone);
    assert_eq!(st.len(), 2, "{st:?}");
    assert_eq!(
        (st[0].name.as_str(), st[0].cluster.as_deref(), st[0].service.as_deref()),
        ("api.apps.blue.internal", Some("blue"), Some("api"))
    );
    let values: Vec<(&str, &str)> = st[0]
        .values
        .iter()
        .map(|v| (v.set_identifier.as_deref().unwrap_or(""), v.ip.as_str()))
        .collect();
    assert_eq!(values, [("i-21", "10.0.1.21"), ("i-22", "10.0.1.22")]);
    assert_eq!(
        (st[1].cluster.as_deref(), st[1].values.len()),
        (None, 1),
        "hand-made: no owner"
    );
}

#[test]
fn a_refusals_key_is_the_same_for_the_same_refusal_only() {
    let r = |service: &str, reason: &str| Refusal {
        service: service.into(),
        name: "api.example.com".into(),
        reason: reason.into(),
    };
    let key = r("api", "outside").key();
    assert_eq!(key.len(), 16);
    assert!(key.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(key, r("api", "outside").key());
    assert_ne!(key, r("api", "owned by cluster green").key());
    assert_ne!(key, r("web", "outside").key());
}
