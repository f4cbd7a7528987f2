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
script!(CORDON, "cordon.sh");
script!(RETIRE_PREVIEW, "retire-preview.sh");
script!(SERVICES, "services.sh");

/// The exit codes the scripts give a meaning to (beyond 0 and 1), one list for the Rust side,
/// the scripts' comments and the in-memory world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ScriptExit {
    /// The join token is missing from Parameter Store or was rejected (`read_join_token`).
    TokenMissing = 3,
    /// No Ready node in time (`node-ready.sh`).
    NotReady = 4,
    /// Still a manager: not removed, or not leaving (`retire-node.sh`).
    StillAManager = 5,
    /// This instance cannot act as a manager (`require_manager`): use another.
    NotAManager = 6,
    /// The instance is being retired: no join or init (`refuse_if_retired`).
    Retiring = 7,
    /// The swarm cannot answer (no leader: an election after the leader was lost); nothing
    /// done, ask again (`drain.sh`, `retire-node.sh`).
    NoLeader = 8,
    /// The daemon runs Docker 29's nftables firewall backend, which cannot run Swarm mode: no
    /// join or init can succeed on it (`refuse_nftables`).
    FirewallBackend = 9,
    /// The cluster's shared storage is not mounted on the instance (`require_shared_storage`):
    /// no join or init until it is, and the launch is abandoned with that reason.
    SharedStorageMissing = 10,
}

impl ScriptExit {
    pub fn of(code: i32) -> Option<Self> {
        [
            Self::TokenMissing,
            Self::NotReady,
            Self::StillAManager,
            Self::NotAManager,
            Self::Retiring,
            Self::NoLeader,
            Self::FirewallBackend,
            Self::SharedStorageMissing,
        ]
        .into_iter()
        .find(|e| *e as i32 == code)
    }
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// What the retire-node command's halves said (retire-node.sh), read once: the operator's
/// `drained` (None: it did not say) and `removed` ("true": by it; "already"), the leaving
/// instance's `left` ("after-drain": it leaves once the drain ends).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RetireSaid<'a> {
    pub drained: Option<bool>,
    pub removed: Option<&'a str>,
    pub left: Option<&'a str>,
}

impl<'a> RetireSaid<'a> {
    pub fn of(stdout: &'a str) -> Self {
        let v = |k| output_value(stdout, k);
        RetireSaid {
            drained: v("drained").and_then(|d| d.parse().ok()),
            removed: v("removed"),
            left: v("left"),
        }
    }
}

/// What a half of a join (join-ready.sh, init.sh, join.sh) or a confirmation (node-ready.sh,
/// node-status.sh) said of the node, read once.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NodeSaid<'a> {
    /// The node's id, as the instance or the confirming manager read it.
    pub node_id: Option<&'a str>,
    /// The joining instance's half: the manager it joined through; a member already.
    pub via: Option<&'a str>,
    pub already: bool,
    /// A confirming manager's half: the node's state; a drained node set active again.
    pub state: Option<&'a str>,
    pub reactivated: bool,
}

impl<'a> NodeSaid<'a> {
    pub fn of(stdout: &'a str) -> Self {
        let v = |k| output_value(stdout, k);
        NodeSaid {
            node_id: v("nodeid"),
            via: v("via"),
            already: v("already") == Some("true"),
            state: v("state"),
            reactivated: v("reactivated") == Some("true"),
        }
    }
    /// The manager saw the node Ready.
    pub fn ready(&self) -> bool {
        self.state == Some("ready")
    }
    /// The manager did not see it Ready within its wait (a slow join).
    pub fn waiting(&self) -> bool {
        self.state == Some("waiting")
    }
}

/// What a drain (drain.sh, or retire-node.sh's drain slice) said of the tasks still moving,
/// read once; the services it names are read by `announce::BlockedService`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DrainSaid<'a> {
    /// Tasks still running on the node; services short of their replicas (None: not said).
    pub remaining: Option<u32>,
    pub pending: Option<u32>,
    /// The services it waited for when it ended.
    pub waiting_for: &'a str,
    /// A budget broken because no task of the service is on its way to running.
    pub broken_by_stuck: bool,
}

impl<'a> DrainSaid<'a> {
    pub fn of(stdout: &'a str) -> Self {
        let count = |k| output_value(stdout, k).and_then(|v: &str| v.parse().ok());
        DrainSaid {
            remaining: count("remaining"),
            pending: count("pending"),
            waiting_for: output_value(stdout, "waiting_for").unwrap_or(""),
            broken_by_stuck: output_value(stdout, "budget_broken_by") == Some("stuck"),
        }
    }
    /// "N task(s) still running, M service(s) short of their replicas", "?" where not said.
    pub fn left(&self) -> String {
        let n = |c: Option<u32>| c.map_or("?".to_string(), |c| c.to_string());
        format!(
            "{} task(s) still running, {} service(s) short of their replicas",
            n(self.remaining),
            n(self.pending)
        )
    }
}

/// The node listing's `total=` (node-list.sh, and the probe that lists): how many nodes.
pub fn listed_total(stdout: &str) -> Option<usize> {
    output_value(stdout, "total").and_then(|t| t.parse().ok())
}

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
    fn each_script_s_output_is_read_once_into_its_type() {
        let joined = NodeSaid::of("via=i-1\nnodeid=abc\n");
        assert_eq!(
            (joined.via, joined.node_id, joined.already),
            (Some("i-1"), Some("abc"), false)
        );
        let confirmed = NodeSaid::of("reactivated=true\nnodeid=abc\nstate=ready\n");
        assert!(confirmed.ready() && confirmed.reactivated && !confirmed.waiting());
        assert!(NodeSaid::of("state=waiting\n").waiting());
        let d = DrainSaid::of("remaining=2\npending=0\nwaiting_for=web\nbudget_broken_by=stuck\n");
        assert_eq!(
            (d.remaining, d.pending, d.waiting_for, d.broken_by_stuck),
            (Some(2), Some(0), "web", true)
        );
        assert_eq!(
            d.left(),
            "2 task(s) still running, 0 service(s) short of their replicas"
        );
        assert_eq!(
            DrainSaid::of("").left(),
            "? task(s) still running, ? service(s) short of their replicas"
        );
        assert_eq!(listed_total("total=12\n"), Some(12));
    }

    #[test]
    fn every_named_exit_code_is_one_a_script_uses() {
        let all = [PROBE_LIST, JOIN_READY, RETIRE_NODE, INIT, JOIN, NODE_READY, DRAIN].concat();
        for e in [
            ScriptExit::TokenMissing,
            ScriptExit::NotReady,
            ScriptExit::StillAManager,
            ScriptExit::NotAManager,
            ScriptExit::Retiring,
        ] {
            assert!(all.contains(&format!("exit {}", e.code())), "{e:?}");
            assert_eq!(ScriptExit::of(e.code()), Some(e));
        }
        assert_eq!(ScriptExit::of(1), None);
    }

    /// The prelude's budget arithmetic, run by bash as an instance runs it, on budget_counts'
    /// lines (name|label|replicas|running on the other active nodes|running here).
    fn budget_verdicts(table: &str) -> Vec<String> {
        use std::io::Write;
        let script = format!("{}\nbudget_verdicts\n", include_str!("../scripts/prelude.sh"));
        let mut child = std::process::Command::new("bash")
            .args(["-c", &script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("bash");
        child.stdin.take().unwrap().write_all(table.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    #[test]
    fn budgets_are_counts_or_percentages_of_the_replicas_rounded_up() {
        let v = budget_verdicts(
            "web|2|3|2|1\nweb2|2|3|1|1\napi|66%|3|1|1\napi2|66%|3|2|1\nhalf|50%|3|1|0\nall|100%|4|3|0\nnone|0%|2|0|2\n",
        );
        assert_eq!(
            v,
            [
                "ok|web",
                "short|web2|1|2",
                // 66 % of 3 is 1.98: two tasks must keep running.
                "short|api|1|2",
                "ok|api2",
                "short|half|1|2",
                "short|all|3|4",
                "ok|none",
            ]
        );
    }

    #[test]
    fn a_budget_no_replica_on_its_way_can_restore_is_stuck_not_waited_for() {
        // The leaving node runs two of three tasks, the third runs elsewhere: the swarm will
        // not move a running task by itself, so waiting cannot keep two elsewhere.
        assert_eq!(budget_verdicts("kept|2|3|1|2\n"), ["stuck|kept|1|2"]);
        // One replica is on its way (another node's drain replaces it): it may yet be kept.
        assert_eq!(budget_verdicts("kept|2|3|1|1\n"), ["short|kept|1|2"]);
    }

    #[test]
    fn unreadable_budgets_are_named_and_ignored() {
        let v = budget_verdicts("a|two|3|0\nb|4|3|0\nc|1|global|0\nd|150%|2|0\ne|-1|2|0\n");
        assert_eq!(
            v,
            [
                "invalid|a|two|not a number or a percentage",
                "invalid|b|4|above its 3 replicas",
                "invalid|c|1|on a global service",
                "invalid|d|150%|not a number or a percentage",
                "invalid|e|-1|not a number or a percentage",
            ]
        );
    }

    #[test]
    fn output_values() {
        assert_eq!(output_value("a=1\nnodeid=xyz\n", "nodeid"), Some("xyz"));
        assert_eq!(output_value("a=1", "b"), None);
    }
}
