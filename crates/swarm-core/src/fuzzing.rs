//! The properties the fuzz targets (fuzz/) check, kept here so that `cargo test` replays the
//! committed corpus through exactly the same code (tests/fuzz_corpus.rs). Each function
//! panics only when a property is broken.

use serde_json::Value;

use crate::event::{self, Intent};
use crate::model::{Probe, SwarmView};
use crate::safe::{is_instance_id, script_commands};
use crate::scripts::output_value;

/// A Lambda payload: parsing never panics, and an accepted event names a valid instance.
pub fn event_bytes(data: &[u8]) {
    let Ok(raw) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok((_, intent)) = event::lifecycle_intent(&raw) {
        assert!(is_instance_id(intent.instance_id()), "accepted a bad instance id");
        assert!(!intent.group().is_empty() && intent.group().len() <= 255);
        assert!(matches!(intent, Intent::Join { .. } | Intent::Retire { .. }));
        assert!(intent.action().is_some());
    }
    if let Ok((_, id, _)) = event::ecs_change(&raw) {
        assert!(is_instance_id(&id), "accepted a bad instance id");
    }
    if let Ok((_, id, notice)) = event::ec2_notice(&raw) {
        assert!(is_instance_id(&id), "accepted a bad instance id");
        if let event::Ec2Notice::Other(s) = notice {
            assert!(s.chars().count() <= 32, "an unknown state is kept short");
        }
    }
    if let Ok((_, ids, _)) = event::scheduled_change(&raw) {
        assert!(ids.iter().all(|i| is_instance_id(i)), "accepted a bad instance id");
    }
}

/// A command's output: the parsers never panic and redaction leaves no token behind.
pub fn command_output(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let view = SwarmView::parse(&s);
    for n in &view.nodes {
        assert!(!n.id.is_empty());
    }
    let _ = view.managers().count();
    let _ = Probe::parse(&s);
    let _ = output_value(&s, "nodeid");
    let red = crate::redact(&s);
    let mut rest = red.as_str();
    while let Some(i) = rest.find("SWMTKN-") {
        let tail = &rest[i + 7..];
        assert!(
            tail.starts_with("<redacted>") || !tail.starts_with(|c: char| c.is_ascii_alphanumeric()),
            "a token survived redaction"
        );
        rest = tail;
    }
}

/// A tag value or hostname: the assignment is one shell word holding exactly the value.
pub fn script_quoting(data: &[u8]) {
    let value = String::from_utf8_lossy(data).into_owned();
    let cmds = script_commands(&[("VALUE", value.clone())], "true");
    assert_eq!(cmds.len(), 2);
    let assignment = cmds[0].strip_prefix("export ").expect("export prefix");
    let words = shlex::split(assignment).expect("quoted value splits");
    let expect = if value.contains('\0') { String::new() } else { value };
    assert_eq!(words, vec![format!("VALUE={expect}")]);
}
