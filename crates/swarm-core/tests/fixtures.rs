//! Every fixture in events/ parses to the intent (or the error) its name promises.

use swarm_core::event::{
    ec2_notice, ecs_change, envelope, lifecycle_intent, scheduled_change, Ec2Notice, EcsChange, EventError, Intent,
    SCHEDULED_DETAIL_TYPE,
};

mod common;
use common::manifest_dir;

fn fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/../../events/{name}", manifest_dir());
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
        .expect("fixture is JSON")
}

#[test]
fn launch_fixtures_are_joins() {
    for f in [
        "lifecycle-launch-manager.json",
        "lifecycle-launch-worker.json",
        "lifecycle-launch-unmanaged-group.json",
    ] {
        let (meta, intent) = lifecycle_intent(&fixture(f)).unwrap();
        assert!(!meta.id.is_empty());
        assert!(matches!(intent, Intent::Join { action: Some(_), .. }), "{f}");
    }
}

#[test]
fn terminate_fixtures_are_retires() {
    for f in ["lifecycle-terminate-manager.json", "lifecycle-terminate-worker.json"] {
        assert!(
            matches!(
                lifecycle_intent(&fixture(f)).unwrap().1,
                Intent::Retire { action: Some(_), .. }
            ),
            "{f}"
        );
    }
}

#[test]
fn malformed_and_test_notifications_are_rejected() {
    assert!(matches!(
        lifecycle_intent(&fixture("lifecycle-malformed.json")),
        Err(EventError::Detail { .. })
    ));
    assert_eq!(
        lifecycle_intent(&fixture("lifecycle-test-notification.json")),
        Err(EventError::TestNotification)
    );
}

#[test]
fn ecs_fixtures_map_to_changes() {
    for (f, want) in [
        ("ecs-instance-active.json", EcsChange::Active),
        ("ecs-instance-draining.json", EcsChange::Draining),
        ("ecs-instance-deregistered.json", EcsChange::Deregistered),
    ] {
        assert_eq!(ecs_change(&fixture(f)).unwrap().2, want, "{f}");
    }
}

#[test]
fn ec2_fixtures_are_notices() {
    for (f, want) in [
        (
            "ec2-spot-interruption-warning.json",
            Ec2Notice::SpotInterruption {
                action: "terminate".into(),
                warned_unix: Some(1_795_262_400),
            },
        ),
        ("ec2-rebalance-recommendation.json", Ec2Notice::RebalanceRecommendation),
        ("ec2-instance-stopping.json", Ec2Notice::Leaving("stopping".into())),
        (
            "ec2-instance-shutting-down.json",
            Ec2Notice::Leaving("shutting-down".into()),
        ),
        ("ec2-instance-running.json", Ec2Notice::Running),
    ] {
        assert_eq!(ec2_notice(&fixture(f)).unwrap().2, want, "{f}");
    }
}

#[test]
fn the_health_fixture_is_a_scheduled_retirement_of_one_instance() {
    let (_, ids, n) = scheduled_change(&fixture("health-instance-retirement-scheduled.json")).unwrap();
    assert_eq!(ids, vec!["i-0123456789abcdef0".to_string()]);
    assert_eq!(
        n,
        Ec2Notice::ScheduledChange {
            code: "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED".into(),
            starts_unix: Some(1_796_483_409),
            closed: false,
        }
    );
}

#[test]
fn the_closed_health_fixture_is_the_same_change_over() {
    let (_, ids, n) = scheduled_change(&fixture("health-instance-retirement-closed.json")).unwrap();
    assert_eq!(ids, vec!["i-0123456789abcdef0".to_string()]);
    assert!(matches!(n, Ec2Notice::ScheduledChange { closed: true, .. }), "{n:?}");
}

#[test]
fn the_schedule_fixture_is_an_eventbridge_scheduled_event() {
    let e = envelope(&fixture("scheduled-reconcile.json")).unwrap();
    assert_eq!(
        (e.source.as_str(), e.detail_type.as_str()),
        ("aws.events", SCHEDULED_DETAIL_TYPE)
    );
}

#[test]
fn every_fixture_is_covered() {
    let dir = format!("{}/../../events", manifest_dir());
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    for n in &names {
        assert!(n.ends_with(".json"), "{n}");
        // Every fixture parses or errors in every parser; none panics.
        let _ = lifecycle_intent(&fixture(n));
        let _ = ecs_change(&fixture(n));
        let _ = ec2_notice(&fixture(n));
        let _ = scheduled_change(&fixture(n));
    }
    assert!(names.len() >= 19);
}
