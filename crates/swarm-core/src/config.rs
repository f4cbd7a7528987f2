//! Typed configuration, read from the environment once at cold start: every value checked
//! here, with the variable named when it is wrong. Reads no event and calls no AWS API.

use std::time::Duration;

use thiserror::Error;

mod membership;
mod vars;
pub use membership::{invalid_cluster_tag, membership, Membership};
use vars::{invalid, Vars};

/// What a retirement needs after its drain: demote, leave and remove, a Route 53 wait.
pub const RETIRE_AFTER_DRAIN: Duration = Duration::from_secs(120);
/// The longest a terminate action can be kept alive: "The maximum amount of time that you can
/// keep an instance in a wait state is 48 hours or 100 times the heartbeat timeout, whichever
/// is smaller" (Auto Scaling user guide, lifecycle hooks: global timeout).
pub const HOOK_GLOBAL_MAX: Duration = Duration::from_secs(172_800);

#[derive(Debug, Error, PartialEq)]
pub enum ConfigError {
    #[error("environment variable {name} is required ({hint})")]
    Missing { name: &'static str, hint: &'static str },
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

/// Everything a function needs to know that is not in the event.
/// Defaults are AWS's; the local cloud shortens the time constants.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Route 53 hosted zone holding the manager record.
    pub hosted_zone_id: String,
    /// The one cluster this deployment manages (the groups' `cluster_tag` value): events and
    /// groups of any other cluster in the account are left alone.
    pub cluster_name: String,
    /// Tag keys read from the Auto Scaling groups.
    pub cluster_tag: String,
    pub role_tag: String,
    pub dns_tag: String,
    /// SSM parameter path under which the cluster's lock and join tokens live.
    pub parameter_prefix: String,
    pub dns_ttl: Duration,
    /// Extra hold after TTL before a manager may terminate (seeds: TTL + 120 s).
    pub hold_extra: Duration,
    /// HeartbeatTimeout of the terminate hook; must equal dns_ttl + hold_extra.
    pub terminate_heartbeat_timeout: Duration,
    /// HeartbeatTimeout of the launch hook: a join that runs longer than half of it
    /// re-arms the action.
    pub launch_heartbeat_timeout: Duration,
    /// How long to wait for a new instance's SSM agent to come Online.
    pub agent_wait: Duration,
    /// Budget for the whole join (swarm formation wait + join + Ready).
    pub join_budget: Duration,
    /// How long a drain may take before the node is removed anyway.
    pub drain_timeout: Duration,
    /// The queue a terminate hook's drain is handed to when it outlasts its first command
    /// (DRAIN_CHECK_QUEUE_URL; the drain-check function reads it). Without it a drain runs
    /// inside one invocation and is capped by Lambda's 900 s.
    pub drain_check_queue: Option<String>,
    /// Per SSM command execution timeout.
    pub command_timeout: Duration,
    /// A swarm init lock older than this whose holder has no swarm is stale.
    pub init_lock_lease: Duration,
    /// The reconcile leaves a not-Ready node of a live instance alone this long.
    pub reconcile_grace: Duration,
    /// Upper bound of any backoff sleep between polls.
    pub poll_max: Duration,
    /// KMS key (id, ARN or alias) for the SecureString join tokens; None: aws/ssm.
    pub token_kms_key: Option<String>,
    /// Log every action that would be taken, change nothing.
    pub dry_run: bool,
    /// ACTION_EVENT_BUS: the EventBridge bus (name or ARN) action events go to; None: none sent.
    pub event_bus: Option<String>,
    /// What a worker does on a Spot rebalance recommendation (a manager only logs it).
    pub rebalance_action: RebalanceAction,
    /// BLOCKED_DRAIN: when a drain finds that tasks of the leaving node's services cannot be
    /// placed anywhere, `proceed` lets the instance go at once; `wait` (default) keeps draining
    /// until the drain timeout, in case capacity comes (a replacement launching).
    pub blocked_drain_proceeds: bool,
    /// TERMINATE_CONCURRENCY: the most terminations the terminate function runs at once. With
    /// more waiting, some wait in Lambda's queue: the running ones keep those alive and take
    /// them on (workflow/queued.rs). None: always assumed.
    pub terminate_concurrency: Option<usize>,
    /// How long after its warning a Spot instance is interrupted: "two minutes" on AWS (the
    /// local cloud shortens it).
    pub spot_notice: Duration,
    /// An AWS Health scheduled change's node is retired this long before the change begins
    /// (SCHEDULED_CHANGE_LEAD_SECONDS): by the notice when it comes later than that, else by
    /// the reconcile, which must run more often than this.
    pub scheduled_lead: Duration,
    /// SHARED_STORAGE_PATH: where every node mounts the cluster's shared file system (the
    /// template's SharedStorage: /cluster); a node without it mounted is not joined. None: no
    /// shared storage.
    pub shared_storage: Option<String>,
    /// SERVICE_RECORD_SUFFIX: services labelled `swarm-lifecycle.dns-name` get records under
    /// it (the roles may change no other name). None: no service names.
    pub service_record_suffix: Option<String>,
}

/// REBALANCE_ACTION: what an EC2 rebalance recommendation does to a worker's node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceAction {
    /// Its tasks move now (default): the interruption may follow at once.
    Drain,
    /// It takes no new tasks; the ones it runs stay until the interruption notice.
    Cordon,
    /// Logged and counted only.
    Ignore,
}

impl Config {
    /// Reads the configuration through `get` (the process environment in production).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(get);
        let hosted_zone_id = vars.hosted_zone_id()?;
        let cluster_name = vars.cluster_name()?;
        let dns_ttl = vars.secs("DNS_TTL_SECONDS", 60)?;
        let hold_extra = vars.secs("HOLD_EXTRA_SECONDS", 120)?;
        let terminate_heartbeat_timeout = vars.terminate_heartbeat_timeout(dns_ttl + hold_extra)?;
        let agent_wait = vars.secs("AGENT_WAIT_SECONDS", 300)?;
        let join_budget = vars.secs("JOIN_BUDGET_SECONDS", 300)?;
        let launch_heartbeat_timeout = vars.launch_heartbeat_timeout(agent_wait + join_budget)?;
        let dry_run = vars.dry_run()?;
        let token_kms_key = vars.token_kms_key()?;
        let blocked_drain_proceeds = vars.blocked_drain_proceeds()?;
        let terminate_concurrency = vars.terminate_concurrency()?;
        let rebalance_action = vars.rebalance_action()?;
        let event_bus = vars.event_bus()?;
        let shared_storage = vars.shared_storage()?;
        Ok(Config {
            token_kms_key,
            hosted_zone_id,
            cluster_name,
            cluster_tag: vars.tag("CLUSTER_TAG", "swarm:cluster")?,
            role_tag: vars.tag("ROLE_TAG", "swarm:role")?,
            dns_tag: vars.tag("DNS_TAG", "swarm:dns-name")?,
            parameter_prefix: vars.parameter_prefix()?,
            dns_ttl,
            hold_extra,
            terminate_heartbeat_timeout,
            launch_heartbeat_timeout,
            agent_wait,
            join_budget,
            drain_timeout: vars.drain_timeout(terminate_heartbeat_timeout)?,
            drain_check_queue: vars.get("DRAIN_CHECK_QUEUE_URL"),
            command_timeout: vars.secs("COMMAND_TIMEOUT_SECONDS", 120)?,
            init_lock_lease: vars.secs("INIT_LOCK_LEASE_SECONDS", 600)?,
            poll_max: vars.secs("POLL_MAX_SECONDS", 5)?,
            reconcile_grace: vars.secs("RECONCILE_GRACE_SECONDS", 300)?,
            dry_run,
            event_bus,
            rebalance_action,
            shared_storage,
            service_record_suffix: vars.service_record_suffix()?,
            blocked_drain_proceeds,
            terminate_concurrency,
            spot_notice: vars.secs("SPOT_NOTICE_SECONDS", 120)?,
            scheduled_lead: vars.secs("SCHEDULED_CHANGE_LEAD_SECONDS", 3600)?,
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// The hold a terminating manager needs after its DNS change is in sync.
    pub fn hold(&self) -> Duration {
        self.dns_ttl + self.hold_extra
    }

    /// How long before a held action's heartbeat timeout the workflow re-arms it: room for the
    /// heartbeat call itself, throttled and retried by the SDK (30 s of a 180 s hook; 9 s of
    /// Auto Scaling's 30 s minimum).
    pub fn rearm_margin(&self) -> Duration {
        self.terminate_heartbeat_timeout
            .mul_f64(0.3)
            .clamp(Duration::from_secs(1), Duration::from_secs(30))
    }

    /// The longest a script may wait on an instance: it must finish inside the command's
    /// execution timeout, or SSM kills it and its answer is lost.
    pub fn script_wait_max(&self) -> Duration {
        self.command_timeout
            .saturating_sub(Duration::from_secs(5))
            .max(Duration::from_secs(1))
    }

    pub fn token_parameter(&self, cluster: &str, role: crate::model::Role) -> String {
        format!("{}/{}/join-token/{}", self.parameter_prefix, cluster, role.as_str())
    }

    /// Where the refusals of service names already told are kept (one parameter each).
    pub fn told_names_path(&self, cluster: &str) -> String {
        format!("{}/{}/told-names", self.parameter_prefix, cluster)
    }

    pub fn lock_path(&self, cluster: &str) -> String {
        format!("{}/{}/init-lock", self.parameter_prefix, cluster)
    }

    /// A config for tests: AWS defaults with a fixed zone.
    pub fn for_tests() -> Self {
        Self::from_lookup(|k| match k {
            "HOSTED_ZONE_ID" => Some("ZTEST".to_string()),
            "CLUSTER_NAME" => Some("blue".to_string()),
            "ACTION_EVENT_BUS" => Some("default".to_string()),
            _ => None,
        })
        .expect("test config is valid")
    }
}

/// The variables with a shape or a bound of their own.
impl<G: Fn(&str) -> Option<String>> Vars<G> {
    fn dry_run(&self) -> Result<bool, ConfigError> {
        self.choice(
            "DRY_RUN",
            &[
                ("0", false),
                ("false", false),
                ("no", false),
                ("1", true),
                ("true", true),
                ("yes", true),
            ],
            false,
            "expected true or false",
        )
    }

    fn token_kms_key(&self) -> Result<Option<String>, ConfigError> {
        self.text(
            "TOKEN_KMS_KEY",
            |k| k.len() <= 2048 && k.chars().all(|c| c.is_ascii_alphanumeric() || ":/_-".contains(c)),
            "expected a KMS key id, ARN or alias/NAME",
        )
    }

    fn blocked_drain_proceeds(&self) -> Result<bool, ConfigError> {
        self.choice(
            "BLOCKED_DRAIN",
            &[("wait", false), ("proceed", true)],
            false,
            "expected wait or proceed",
        )
    }

    fn terminate_concurrency(&self) -> Result<Option<usize>, ConfigError> {
        self.text(
            "TERMINATE_CONCURRENCY",
            |v| v.parse::<usize>().is_ok_and(|n| n > 0),
            "expected a whole number above 0",
        )
        .map(|v| v.and_then(|v| v.parse().ok()))
    }

    fn rebalance_action(&self) -> Result<RebalanceAction, ConfigError> {
        self.choice(
            "REBALANCE_ACTION",
            &[
                ("drain", RebalanceAction::Drain),
                ("cordon", RebalanceAction::Cordon),
                ("ignore", RebalanceAction::Ignore),
            ],
            RebalanceAction::Drain,
            "expected drain, cordon or ignore",
        )
    }

    /// A bus name ([/.-_A-Za-z0-9], 1-256) or its ARN.
    fn event_bus(&self) -> Result<Option<String>, ConfigError> {
        self.text(
            "ACTION_EVENT_BUS",
            |b| b.len() <= 1600 && b.chars().all(|c| c.is_ascii_alphanumeric() || "/._-:".contains(c)),
            "expected an event bus name (like default) or its ARN",
        )
    }

    /// It reaches the instance's shell as an environment variable: a plain absolute path.
    fn shared_storage(&self) -> Result<Option<String>, ConfigError> {
        self.text(
            "SHARED_STORAGE_PATH",
            |p| {
                p.starts_with('/')
                    && p.len() <= 256
                    && p.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
            },
            "expected an absolute path of letters, digits, / . _ -",
        )
    }

    fn hosted_zone_id(&self) -> Result<String, ConfigError> {
        let id = self.get("HOSTED_ZONE_ID").ok_or(ConfigError::Missing {
            name: "HOSTED_ZONE_ID",
            hint: "the Route 53 zone that holds the manager record",
        })?;
        let id = id.trim_start_matches("/hostedzone/").to_string();
        if !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid("HOSTED_ZONE_ID", id, "expected an id like Z0123456789ABC"));
        }
        Ok(id)
    }

    fn cluster_name(&self) -> Result<String, ConfigError> {
        let name = (self.0)("CLUSTER_NAME").ok_or(ConfigError::Missing {
            name: "CLUSTER_NAME",
            hint: "the cluster this deployment manages (its groups' swarm:cluster tag)",
        })?;
        if !crate::safe::is_cluster_name(&name) {
            return Err(invalid("CLUSTER_NAME", name, "expected letters, digits, - and _"));
        }
        Ok(name)
    }

    fn parameter_prefix(&self) -> Result<String, ConfigError> {
        let prefix = (self.0)("SWARM_PARAMETER_PREFIX").unwrap_or_else(|| "/swarm".into());
        if !crate::safe::is_parameter_path(&prefix) {
            return Err(invalid(
                "SWARM_PARAMETER_PREFIX",
                prefix,
                "expected a path like /swarm (letters, digits, / _ . -)",
            ));
        }
        Ok(prefix.trim_end_matches('/').to_string())
    }

    /// At least the record's TTL + the hold's extra (`hold`), or the hold ends early.
    fn terminate_heartbeat_timeout(&self, hold: Duration) -> Result<Duration, ConfigError> {
        let t = self.secs_or("TERMINATE_HEARTBEAT_TIMEOUT_SECONDS", hold)?;
        if t < hold {
            return Err(invalid(
                "TERMINATE_HEARTBEAT_TIMEOUT_SECONDS",
                format!("{}", t.as_secs_f64()),
                "must be at least DNS_TTL_SECONDS + HOLD_EXTRA_SECONDS, or the hold ends early",
            ));
        }
        Ok(t)
    }

    /// `launch` (the agent's wait and the join's budget) when unset; 30 s at least.
    fn launch_heartbeat_timeout(&self, launch: Duration) -> Result<Duration, ConfigError> {
        let t = self.secs_or("LAUNCH_HEARTBEAT_TIMEOUT_SECONDS", launch)?;
        if t < Duration::from_secs(30) {
            return Err(invalid(
                "LAUNCH_HEARTBEAT_TIMEOUT_SECONDS",
                format!("{}", t.as_secs_f64()),
                "Auto Scaling's minimum heartbeat timeout is 30 seconds",
            ));
        }
        Ok(t)
    }

    /// A drain may last until the hook's global timeout lets the action go (less the removal
    /// after it and one heartbeat period). Every function reads this value, the launch and
    /// ECS ones too; only a terminate function with DRAIN_CHECK_QUEUE_URL drains past its
    /// own invocation (without it a drain is bounded by the invocation, and says so).
    fn drain_timeout(&self, terminate_heartbeat_timeout: Duration) -> Result<Duration, ConfigError> {
        let drain_timeout = self.secs("DRAIN_TIMEOUT_SECONDS", 300)?;
        let drain_max = HOOK_GLOBAL_MAX
            .min(terminate_heartbeat_timeout * 100)
            .saturating_sub(RETIRE_AFTER_DRAIN + terminate_heartbeat_timeout);
        if drain_timeout > drain_max {
            return Err(invalid(
                "DRAIN_TIMEOUT_SECONDS",
                format!("{}", drain_timeout.as_secs_f64()),
                format!(
                    "at most {} s: the hook's global timeout (100 × the terminate heartbeat timeout, 48 h at most) \
                     less the retirement after the drain and one heartbeat timeout",
                    drain_max.as_secs()
                ),
            ));
        }
        Ok(drain_timeout)
    }

    fn service_record_suffix(&self) -> Result<Option<String>, ConfigError> {
        let suffix = (self.0)("SERVICE_RECORD_SUFFIX")
            .map(|v| v.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|v| !v.is_empty());
        match suffix {
            Some(v) if !(crate::safe::is_dns_name(&v) && v.contains('.')) => Err(invalid(
                "SERVICE_RECORD_SUFFIX",
                v,
                "expected a DNS name of two labels or more, like apps.example.internal",
            )),
            s => Ok(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut m: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        m.entry("CLUSTER_NAME".into()).or_insert_with(|| "blue".into());
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn a_drain_may_last_until_the_hook_s_global_timeout() {
        let q = ("DRAIN_CHECK_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/1/checks");
        // 180 s heartbeat timeout: 100 × 180 s = 5 h global timeout, less the retirement after
        // the drain and one heartbeat period.
        let hours = with(&[("HOSTED_ZONE_ID", "Z1"), q, ("DRAIN_TIMEOUT_SECONDS", "7200")]).unwrap();
        assert_eq!(hours.drain_check_queue.as_deref(), Some(q.1));
        let max = 18_000 - 120 - 180;
        assert!(with(&[("HOSTED_ZONE_ID", "Z1"), q, ("DRAIN_TIMEOUT_SECONDS", &max.to_string())]).is_ok());
        let err = with(&[
            ("HOSTED_ZONE_ID", "Z1"),
            q,
            ("DRAIN_TIMEOUT_SECONDS", &(max + 1).to_string()),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("global timeout"), "{err}");
        // `make bench`, first run: the launch function (no queue: it never drains) refused
        // the stack's long DrainTimeout at its cold start. Every function takes it.
        let launch = with(&[("HOSTED_ZONE_ID", "Z1"), ("DRAIN_TIMEOUT_SECONDS", "900")]).unwrap();
        assert_eq!(launch.drain_check_queue, None);
    }

    #[test]
    fn service_record_suffix_is_a_dns_name_or_none() {
        let z = ("HOSTED_ZONE_ID", "Z1");
        assert_eq!(with(&[z]).unwrap().service_record_suffix, None);
        let c = with(&[z, ("SERVICE_RECORD_SUFFIX", "Apps.Example.Internal.")]).unwrap();
        assert_eq!(c.service_record_suffix.as_deref(), Some("apps.example.internal"));
        for bad in ["internal", "a b.example", "*.apps.example"] {
            let e = with(&[z, ("SERVICE_RECORD_SUFFIX", bad)]).unwrap_err();
            assert!(e.to_string().contains("SERVICE_RECORD_SUFFIX"), "{bad}: {e}");
        }
    }

    #[test]
    fn shared_storage_is_a_plain_absolute_path_or_none() {
        let z = ("HOSTED_ZONE_ID", "Z1");
        assert_eq!(with(&[z]).unwrap().shared_storage, None);
        assert_eq!(with(&[z, ("SHARED_STORAGE_PATH", "")]).unwrap().shared_storage, None);
        let c = with(&[z, ("SHARED_STORAGE_PATH", "/cluster")]).unwrap();
        assert_eq!(c.shared_storage.as_deref(), Some("/cluster"));
        for bad in ["cluster", "/cluster; reboot", "/a b", "/$(id)"] {
            let e = with(&[z, ("SHARED_STORAGE_PATH", bad)]).unwrap_err();
            assert!(e.to_string().contains("SHARED_STORAGE_PATH"), "{bad}: {e}");
        }
    }

    #[test]
    fn defaults_are_aws_defaults() {
        let c = with(&[("HOSTED_ZONE_ID", "/hostedzone/Z123")]).unwrap();
        assert_eq!(c.hosted_zone_id, "Z123");
        assert_eq!(c.dns_ttl, Duration::from_secs(60));
        assert_eq!(c.hold(), Duration::from_secs(180));
        assert_eq!(c.terminate_heartbeat_timeout, Duration::from_secs(180));
        assert!(!c.dry_run);
        assert_eq!(c.cluster_tag, "swarm:cluster");
    }

    #[test]
    fn the_cluster_is_required_and_checked() {
        let m: HashMap<String, String> = [("HOSTED_ZONE_ID".to_string(), "Z1".to_string())].into();
        assert!(matches!(
            Config::from_lookup(|k| m.get(k).cloned()),
            Err(ConfigError::Missing {
                name: "CLUSTER_NAME",
                ..
            })
        ));
        let e = with(&[("HOSTED_ZONE_ID", "Z1"), ("CLUSTER_NAME", "a b")]).unwrap_err();
        assert!(e.to_string().contains("CLUSTER_NAME"));
    }

    #[test]
    fn zone_is_required() {
        assert!(matches!(
            with(&[]),
            Err(ConfigError::Missing {
                name: "HOSTED_ZONE_ID",
                ..
            })
        ));
    }

    #[test]
    fn bad_numbers_and_flags_are_named() {
        let e = with(&[("HOSTED_ZONE_ID", "Z1"), ("DNS_TTL_SECONDS", "soon")]).unwrap_err();
        assert!(e.to_string().contains("DNS_TTL_SECONDS"));
        let e = with(&[("HOSTED_ZONE_ID", "Z1"), ("DRY_RUN", "maybe")]).unwrap_err();
        assert!(e.to_string().contains("DRY_RUN"));
        let e = with(&[("HOSTED_ZONE_ID", "Z1; rm -rf /")]).unwrap_err();
        assert!(e.to_string().contains("HOSTED_ZONE_ID"));
    }

    #[test]
    fn heartbeat_shorter_than_hold_is_rejected() {
        let e = with(&[
            ("HOSTED_ZONE_ID", "Z1"),
            ("DNS_TTL_SECONDS", "5"),
            ("HOLD_EXTRA_SECONDS", "5"),
            ("TERMINATE_HEARTBEAT_TIMEOUT_SECONDS", "9"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("TERMINATE_HEARTBEAT_TIMEOUT_SECONDS"));
    }

    #[test]
    fn blocked_drain_is_wait_or_proceed() {
        let z = ("HOSTED_ZONE_ID", "Z1");
        assert!(!with(&[z]).unwrap().blocked_drain_proceeds);
        assert!(with(&[z, ("BLOCKED_DRAIN", "proceed")]).unwrap().blocked_drain_proceeds);
        assert!(matches!(
            with(&[z, ("BLOCKED_DRAIN", "later")]),
            Err(ConfigError::Invalid {
                name: "BLOCKED_DRAIN",
                ..
            })
        ));
    }

    #[test]
    fn rebalance_action_is_one_of_three() {
        let z = ("HOSTED_ZONE_ID", "Z123");
        assert_eq!(with(&[z]).unwrap().rebalance_action, RebalanceAction::Drain);
        assert_eq!(
            with(&[z, ("REBALANCE_ACTION", "cordon")]).unwrap().rebalance_action,
            RebalanceAction::Cordon
        );
        assert_eq!(
            with(&[z, ("REBALANCE_ACTION", "ignore")]).unwrap().rebalance_action,
            RebalanceAction::Ignore
        );
        assert!(matches!(
            with(&[z, ("REBALANCE_ACTION", "terminate")]),
            Err(ConfigError::Invalid {
                name: "REBALANCE_ACTION",
                ..
            })
        ));
    }

    #[test]
    fn action_events_go_to_the_named_bus_or_nowhere() {
        assert_eq!(with(&[("HOSTED_ZONE_ID", "Z1")]).unwrap().event_bus, None);
        assert_eq!(
            with(&[("HOSTED_ZONE_ID", "Z1"), ("ACTION_EVENT_BUS", " ")])
                .unwrap()
                .event_bus,
            None
        );
        let c = with(&[("HOSTED_ZONE_ID", "Z1"), ("ACTION_EVENT_BUS", "default")]).unwrap();
        assert_eq!(c.event_bus.as_deref(), Some("default"));
        let e = with(&[("HOSTED_ZONE_ID", "Z1"), ("ACTION_EVENT_BUS", "my bus")]).unwrap_err();
        assert!(e.to_string().contains("ACTION_EVENT_BUS"));
    }

    #[test]
    fn dry_run_and_prefix() {
        let c = with(&[
            ("HOSTED_ZONE_ID", "Z1"),
            ("DRY_RUN", "true"),
            ("SWARM_PARAMETER_PREFIX", "/prod/swarm/"),
        ])
        .unwrap();
        assert!(c.dry_run);
        assert_eq!(c.lock_path("blue"), "/prod/swarm/blue/init-lock");
        assert_eq!(
            c.token_parameter("blue", crate::model::Role::Worker),
            "/prod/swarm/blue/join-token/worker"
        );
    }
}
