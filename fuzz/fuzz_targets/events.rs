//! Any bytes as a Lambda payload: the lifecycle and ECS parsers return Ok or a typed
//! error, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    swarm_core::fuzzing::event_bytes(data);
});
