//! Every fixture in events/ parses to the intent (or the error) its name promises.

use swarm_core::event::{lifecycle_intent, EventError, Intent};

fn fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
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
fn every_fixture_is_covered() {
    let dir = format!("{}/../../events", env!("CARGO_MANIFEST_DIR"));
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    for n in &names {
        assert!(n.ends_with(".json"), "{n}");
        if n.starts_with("lifecycle-") {
            let _ = lifecycle_intent(&fixture(n)); // parses or errors; never panics
        }
    }
    assert!(names.len() >= 7);
}
