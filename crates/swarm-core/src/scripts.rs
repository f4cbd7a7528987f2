//! Scripts run on instances. Each is a file under `scripts/`, prefixed by the shared
//! prelude; inputs are passed as quoted environment assignments (see `safe::script_commands`).

macro_rules! script {
    ($name:ident, $($file:literal),+) => {
        pub const $name: &str = concat!(
            include_str!("../scripts/prelude.sh"),
            $(include_str!(concat!("../scripts/", $file))),+
        );
    };
}

script!(PROBE_LIST, "fence.sh", "probe.sh", "list-if-asked.sh", "node-list.sh");
script!(JOIN_READY, "join-ready.sh");
script!(RETIRE_NODE, "retire-node.sh");
script!(INIT, "init.sh");
script!(PUBLISH_TOKENS, "publish-tokens.sh");
script!(JOIN, "join.sh");
script!(NODE_READY, "node-ready.sh");
script!(NODE_STATUS, "node-status.sh");
script!(NODE_LIST, "node-list.sh");
script!(DRAIN, "drain.sh");
script!(DEMOTE, "demote.sh");
script!(REMOVE, "remove.sh");

/// Reads `key=value` from a script's output.
pub fn output_value<'a>(stdout: &'a str, key: &str) -> Option<&'a str> {
    stdout
        .lines()
        .filter_map(|l| l.trim().split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_never_print_tokens_themselves() {
        for s in [
            PROBE_LIST,
            JOIN_READY,
            RETIRE_NODE,
            INIT,
            PUBLISH_TOKENS,
            JOIN,
            NODE_READY,
            NODE_STATUS,
            NODE_LIST,
            DRAIN,
            DEMOTE,
            REMOVE,
        ] {
            // The agent runs `sh -c <file>`: the #! line is what makes it bash.
            assert!(s.starts_with("#!/bin/bash\n# Shared prelude"));
            assert!(!s.contains("echo \"$token"), "a script echoes the token");
            assert!(!s.contains("set -x"), "tracing would print the token");
            // argv is readable by every local user (ps, /proc): the join goes through the API.
            assert!(!s.contains("--token"), "a script puts the token in a command line");
        }
    }

    #[test]
    fn output_values() {
        assert_eq!(output_value("a=1\nnodeid=xyz\n", "nodeid"), Some("xyz"));
        assert_eq!(output_value("a=1", "b"), None);
    }
}
