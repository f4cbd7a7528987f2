//! Decision logic of the swarm lifecycle functions: event parsing, the pure planners,
//! and the workflows that drive the ports. No AWS SDK here.

pub mod absent;
pub mod announce;
pub mod config;
pub mod event;
#[cfg(any(test, feature = "testkit"))]
pub mod fuzzing;
#[cfg(any(test, feature = "testkit"))]
pub mod memory;
pub mod model;
pub mod outcome;
pub mod plan;
pub mod ports;
pub mod safe;
pub mod scripts;
pub mod telemetry;
pub mod workflow;

pub use config::Config;
pub use workflow::Lifecycle;

/// Masks anything shaped like a swarm join token.
pub fn redact(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("SWMTKN-") {
        out.push_str(&rest[..i]);
        out.push_str("SWMTKN-<redacted>");
        let tail = &rest[i + 7..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_tokens() {
        assert_eq!(
            super::redact("join --token SWMTKN-1-abc-def 10.0.0.1:2377"),
            "join --token SWMTKN-<redacted> 10.0.0.1:2377"
        );
        assert_eq!(super::redact("nothing"), "nothing");
    }
}
