//! The command line: subcommands, options and their help.

use clap::{Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  swarm-lifecycle --cluster prod --hosted-zone-id Z0123456789ABC status
  swarm-lifecycle status --json | jq '.rows[] | select(.drift != [])'
  swarm-lifecycle plan
  swarm-lifecycle reconcile --dry-run
  swarm-lifecycle tidy

The cluster and the zone also come from SWARM_CLUSTER and SWARM_HOSTED_ZONE_ID (the stack's
outputs); every other setting from the functions' own variables (CLUSTER_TAG, DNS_TTL_SECONDS,
...), with the same defaults.";

#[derive(Parser)]
#[command(name = "swarm-lifecycle", version, about = "Status, plan and repairs of a Docker Swarm on EC2 Auto Scaling groups", after_help = EXAMPLES)]
pub(crate) struct Cli {
    /// The cluster: its groups' swarm:cluster tag.
    #[arg(long, global = true, env = "SWARM_CLUSTER")]
    pub(crate) cluster: Option<String>,
    /// The Route 53 zone of the manager record (the stack's HostedZoneId output).
    #[arg(long, global = true, env = "SWARM_HOSTED_ZONE_ID")]
    pub(crate) hosted_zone_id: Option<String>,
    /// The suffix the service names lie under (the stack's ServiceRecordSuffix parameter).
    #[arg(long, global = true, env = "SWARM_SERVICE_RECORD_SUFFIX")]
    pub(crate) service_record_suffix: Option<String>,
    /// A named profile of the shared AWS config (else AWS_PROFILE, else the default chain).
    #[arg(long, global = true)]
    pub(crate) profile: Option<String>,
    /// The region (else AWS_REGION or the profile's).
    #[arg(long, global = true)]
    pub(crate) region: Option<String>,
    /// Log every step to stderr.
    #[arg(short, long, global = true)]
    pub(crate) verbose: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// One table per cluster: each instance of its groups beside its swarm node and its manager
    /// record, the quorum margin, and what the reconcile would repair under the row it concerns.
    #[command(
        after_help = "Examples:\n  swarm-lifecycle --cluster prod status --json\n  swarm-lifecycle --cluster prod status --watch 10"
    )]
    Status {
        /// JSON for scripts (fields are stable: see docs/operate.md, "The operator's command").
        #[arg(long)]
        json: bool,
        /// Show it again every SECONDS (5 if not given) until interrupted.
        #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "5", conflicts_with = "json")]
        watch: Option<u64>,
    },
    /// What the reconcile would repair now, in the order it would (the same planner); with
    /// --retire, what retiring that instance would do, read only: its steps, and for each
    /// service with a task on its node whether the tasks have somewhere to go and where its
    /// disruption budget stands.
    #[command(
        after_help = "Examples:\n  swarm-lifecycle --cluster prod plan --json\n  swarm-lifecycle --cluster prod plan --retire i-0123456789abcdef0"
    )]
    Plan {
        #[arg(long)]
        json: bool,
        /// An instance whose retirement to preview.
        #[arg(long, value_name = "INSTANCE")]
        retire: Option<String>,
    },
    /// Runs the reconcile now from this machine, each step logged as it goes.
    #[command(after_help = "Example:\n  swarm-lifecycle --cluster prod reconcile --dry-run")]
    Reconcile {
        /// Say what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Takes an instance out the way a scale-in does: terminated through its Auto Scaling
    /// group, so the terminate hook moves its tasks, takes a manager out of the record and
    /// removes its node before the instance goes. A Ready manager whose loss would leave the
    /// swarm without a quorum margin is refused unless --force.
    #[command(
        after_help = "Examples:\n  swarm-lifecycle --cluster prod retire i-0123456789abcdef0 --wait\n  swarm-lifecycle --cluster prod retire i-0123456789abcdef0 --decrement"
    )]
    Retire {
        instance: String,
        /// The group launches a replacement (the default).
        #[arg(long, conflicts_with = "decrement")]
        replace: bool,
        /// The group's desired capacity shrinks by one instead.
        #[arg(long)]
        decrement: bool,
        /// Follow its lifecycle until it has left the group.
        #[arg(long)]
        wait: bool,
        /// Retire a Ready manager even when the quorum has no margin.
        #[arg(long)]
        force: bool,
    },
    /// Removes the Down nodes whose instances are gone, and nothing else.
    #[command(after_help = "Example:\n  swarm-lifecycle --cluster prod tidy --dry-run")]
    Tidy {
        #[arg(long)]
        dry_run: bool,
    },
    /// Checks a deployed stack's wiring end to end and names each broken wire with its fix:
    /// every rule exists, is enabled, targets its function and matches its events (tested with
    /// the fixtures of events/), each function lets its rule invoke it and has the stack's
    /// cluster, zone and TTL, the hooks' timeouts fit the hold and the join, the failure
    /// queues are empty. Exit 0: all hold; 1: findings; 2: the stack cannot be read.
    #[command(
        after_help = "Examples:\n  swarm-lifecycle doctor --stack prod-swarm\n  swarm-lifecycle doctor --stack prod-swarm --json"
    )]
    Doctor {
        /// The CloudFormation stack (else SWARM_STACK, else the cluster's name).
        #[arg(long, env = "SWARM_STACK")]
        stack: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The service names in Route 53 (with --service-record-suffix).
    Dns {
        #[command(subcommand)]
        command: DnsCommand,
    },
}

#[derive(Subcommand)]
pub(crate) enum DnsCommand {
    /// Brings every labelled service's names to its nodes now, as the reconcile does each
    /// run, and nothing else; says what it changed and each name it refused, and why.
    #[command(
        after_help = "Example:\n  swarm-lifecycle --cluster prod --service-record-suffix apps.prod.internal dns sync --dry-run"
    )]
    Sync {
        /// Say what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}
