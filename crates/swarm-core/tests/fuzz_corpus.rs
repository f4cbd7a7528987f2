//! Replays the committed cargo-fuzz corpus (fuzz/corpus/<target>/) through the same
//! properties the fuzzer checks, so CI guards them without a nightly-flagged build.

use std::path::Path;

mod common;
use common::manifest_dir;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(&manifest_dir()).join("../../fuzz/corpus").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        check(&std::fs::read(&path).expect("corpus file"));
        n += 1;
    }
    n
}

#[test]
fn event_corpus() {
    assert!(replay("events", swarm_core::fuzzing::event_bytes) > 0);
}

#[test]
fn command_output_corpus() {
    assert!(replay("command_output", swarm_core::fuzzing::command_output) > 0);
}

#[test]
fn script_quoting_corpus() {
    assert!(replay("script_quoting", swarm_core::fuzzing::script_quoting) > 0);
}
