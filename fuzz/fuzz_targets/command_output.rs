//! Any bytes as a command's output (instances are not trusted to print what we expect):
//! the node-list, probe and key=value parsers and the log redaction never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    swarm_core::fuzzing::command_output(data);
});
