//! Any string as a tag value or hostname: the command that carries it is one shell word
//! that assigns exactly that value (a NUL, which no shell word can hold, becomes empty).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    swarm_core::fuzzing::script_quoting(data);
});
