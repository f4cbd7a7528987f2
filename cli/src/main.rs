//! `swarm-lifecycle`: the operator's view of a cluster and the reconcile run by hand. The
//! same observation, planner and adapters as the functions (swarm-core, swarm-aws); only the
//! credentials differ: the ordinary AWS chain (profiles with IAM Identity Center or credential_process,
//! instance roles) instead of a function's role. AWS_ENDPOINT_URL points it at the local cloud.

mod args;
mod doctor;
mod doctor_access;
mod fixtures;
mod render;

use std::io::IsTerminal;
use std::process::ExitCode;

use args::{Cli, Command, DnsCommand};
use clap::Parser;
use swarm_core::config::ConfigError;
use swarm_core::workflow::{ClusterReport, Scope};
use swarm_core::Config;

/// The reconcile's adapters but the drain checks' queue (the command waits for its own).
type Operator = swarm_core::Lifecycle<
    swarm_aws::AwsFleet,
    swarm_aws::AwsRemote,
    swarm_aws::AwsDns,
    swarm_aws::AwsParameters,
    swarm_aws::AwsEvents,
    swarm_core::absent::Absent,
>;

/// Colour on a stream that is a terminal, unless NO_COLOR is set.
fn colour(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none()
}

/// One line, with what to do about it.
fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("swarm-lifecycle: {msg}");
    ExitCode::FAILURE
}

/// The fix that goes with an AWS error the operator can act on.
fn hint(e: &str) -> &'static str {
    if e.contains("SSO token") {
        " (the profile's IAM Identity Center login is missing or expired: run `aws sso login --profile NAME`)"
    } else if e.contains("credential") || e.contains("Credential") {
        " (no usable AWS credentials: set AWS_PROFILE or pass --profile, or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
    } else if e.contains("no Auto Scaling group is tagged") {
        " (check --cluster, and --region/--profile: the groups live in one account and region)"
    } else if e.contains("denied") || e.contains("AccessDenied") || e.contains("not authorized to perform") {
        " (the caller's IAM policy lacks this action: docs/operate.md, \"The operator's command\", lists what it needs)"
    } else {
        ""
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    swarm_core::telemetry::disable_emf();
    init_logging(&cli);
    if let Command::Doctor { stack, json } = &cli.command {
        // The stack says the cluster, zone and timings: no configuration but where it is.
        let Some(stack) = stack.clone().or_else(|| cli.cluster.clone()) else {
            eprintln!("swarm-lifecycle: doctor: which stack? pass --stack NAME or set SWARM_STACK");
            return ExitCode::from(2);
        };
        let Some(conf) = sdk_config(&cli).await else {
            return ExitCode::from(2);
        };
        return doctor::run(&conf, &stack, *json).await;
    }
    let cfg = match config(&cli) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(conf) = sdk_config(&cli).await else {
        return ExitCode::FAILURE;
    };
    let a = swarm_aws::Adapters::from_sdk_config(&conf);
    let l = swarm_core::Lifecycle {
        fleet: a.fleet,
        remote: a.remote,
        dns: a.dns,
        params: a.params,
        events: a.events,
        checks: swarm_core::absent::Absent("the drain checks' queue"),
        cfg,
    };
    run(&l, cli.command).await
}

/// The SDK's configuration from the profile and region given (else the default chain); None:
/// no region, said.
async fn sdk_config(cli: &Cli) -> Option<aws_config::SdkConfig> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(p) = &cli.profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = &cli.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    let conf = loader.load().await;
    if conf.region().is_none() {
        fail("no region: pass --region, or set AWS_REGION or a region in the profile");
        return None;
    }
    Some(conf)
}

/// Progress (info) for the commands that change things, warnings only for the reads; -v: debug.
fn init_logging(cli: &Cli) {
    let progress = matches!(
        cli.command,
        Command::Reconcile { .. } | Command::Tidy { .. } | Command::Retire { .. } | Command::Dns { .. }
    );
    let level = if cli.verbose {
        "debug"
    } else if progress {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour(std::io::stderr().is_terminal()))
        // The SDK's own warnings (a credential provider that failed, before the chain's error
        // says so once) only with -v.
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| {
            if cli.verbose {
                level.into()
            } else {
                format!("{level},aws_config=error")
            }
        }))
        .compact()
        .init();
}

/// The functions' configuration from the command line and the environment; Err: the exit,
/// said already.
fn config(cli: &Cli) -> Result<Config, ExitCode> {
    let Some(cluster) = cli.cluster.clone() else {
        return Err(fail(
            "which cluster? pass --cluster NAME or set SWARM_CLUSTER (its groups' swarm:cluster tag)",
        ));
    };
    let zone = cli.hosted_zone_id.clone();
    let mut cfg = match Config::from_lookup(|k| match k {
        "CLUSTER_NAME" => Some(cluster.clone()),
        "HOSTED_ZONE_ID" => zone.clone(),
        "SERVICE_RECORD_SUFFIX" => cli.service_record_suffix.clone(),
        // The operator decides per command, never by environment.
        "DRY_RUN" => None,
        _ => std::env::var(k).ok(),
    }) {
        Ok(c) => c,
        Err(ConfigError::Missing {
            name: "HOSTED_ZONE_ID", ..
        }) => return Err(fail(
            "which hosted zone? pass --hosted-zone-id or set SWARM_HOSTED_ZONE_ID (the stack's HostedZoneId output)",
        )),
        Err(e) => return Err(fail(e)),
    };
    // A preview changes nothing: the same retirement, as a dry run.
    cfg.dry_run = matches!(cli.command, Command::Plan { retire: Some(_), .. });
    // The command waits for its own retirements: no drain checks, whatever the environment
    // says (the functions' DRAIN_CHECK_QUEUE_URL), and none of their calls in this binary.
    cfg.drain_check_queue = None;
    Ok(cfg)
}

/// One command, on the operator's adapters.
async fn run(l: &Operator, command: Command) -> ExitCode {
    match command {
        Command::Status { watch: Some(every), .. } => watch_status(l, every.max(1)).await,
        Command::Plan {
            retire: Some(ref id),
            json,
        } => preview_retire(l, id, json).await,
        Command::Status { json, watch: None } => show(l, false, json).await,
        Command::Plan { json, .. } => show(l, true, json).await,
        Command::Retire {
            ref instance,
            decrement,
            wait,
            force,
            ..
        } => match l.retire_through_group(instance, decrement, force).await {
            Err(e) => fail(format!("{e}{}", hint(&e.to_string()))),
            Ok(Err(why)) => fail(format!("not retiring: {why}")),
            Ok(Ok(group)) if wait => follow(l, instance, &group).await,
            Ok(Ok(group)) => {
                println!("{instance}: terminating through {group}; its terminate hook takes the node out first");
                ExitCode::SUCCESS
            }
        },
        Command::Dns {
            command: DnsCommand::Sync { .. },
        } if l.cfg.service_record_suffix.is_none() => fail(
            "which names? pass --service-record-suffix or set SWARM_SERVICE_RECORD_SUFFIX (the stack's ServiceRecordSuffix)",
        ),
        Command::Reconcile { dry_run } => reconcile(l, Scope::Everything, dry_run).await,
        Command::Tidy { dry_run } => reconcile(l, Scope::GoneNodes, dry_run).await,
        Command::Dns {
            command: DnsCommand::Sync { dry_run },
        } => reconcile(l, Scope::ServiceNames, dry_run).await,
        // Run by main before the configuration: it reads its own from the stack.
        Command::Doctor { .. } => fail("doctor takes no cluster configuration"),
    }
}

/// `status` (or `plan`: the repairs alone), as text or JSON.
async fn show(l: &Operator, repairs_only: bool, json: bool) -> ExitCode {
    let survey = match l.survey().await {
        Ok(s) => s,
        Err(e) => return fail(format!("{e}{}", hint(&e.to_string()))),
    };
    let status = survey.status();
    let out = match (repairs_only, json) {
        (false, true) => serde_json::to_string_pretty(&status).unwrap_or_default() + "\n",
        (true, true) => serde_json::to_string_pretty(&status.repairs).unwrap_or_default() + "\n",
        (true, false) => render::plan(&status),
        (false, false) => render::status(&status, colour(std::io::stdout().is_terminal())),
    };
    print!("{out}");
    ExitCode::SUCCESS
}

/// `reconcile`, `tidy` and `dns sync`: the reconcile in its scope, and its summary.
async fn reconcile(l: &Operator, scope: Scope, dry_run: bool) -> ExitCode {
    match l.reconcile_scoped(None, scope, dry_run, None).await {
        Ok(reports) => summary(&reports),
        Err(e) => fail(format!("{e}{}", hint(&e.to_string()))),
    }
}

/// `plan --retire`: the instance's retirement as a dry run, and what it would do to each
/// service on its node.
async fn preview_retire(l: &Operator, id: &str, json: bool) -> ExitCode {
    let survey = match l.survey().await {
        Ok(s) => s,
        Err(e) => return fail(format!("{e}{}", hint(&e.to_string()))),
    };
    let Some(group) = survey
        .snapshot
        .members
        .iter()
        .find(|m| m.id == id)
        .map(|m| m.group.clone())
    else {
        return fail(format!("{id} is not an instance of the cluster's groups"));
    };
    let intent = swarm_core::event::Intent::Retire {
        instance_id: id.to_string(),
        group,
        action: None,
    };
    match l.handle_intent(intent, None).await {
        Ok(o) if json => {
            println!("{}", serde_json::to_string_pretty(&o).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(o) => {
            print!("{}", render::retire_preview(&o));
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("{e}{}", hint(&e.to_string()))),
    }
}

/// The status again every `every` seconds, the screen cleared first on a terminal; an error is
/// shown in its place and the watch goes on (Ctrl-C ends it).
async fn watch_status(l: &Operator, every: u64) -> ExitCode {
    let terminal = std::io::stdout().is_terminal();
    loop {
        let frame = match l.survey().await {
            Ok(survey) => render::status(&survey.status(), colour(terminal)),
            Err(e) => format!("swarm-lifecycle: {e}{}\n", hint(&e.to_string())),
        };
        if terminal {
            print!("\x1b[2J\x1b[H");
        }
        println!("every {every} s (Ctrl-C ends it)\n{frame}");
        tokio::time::sleep(std::time::Duration::from_secs(every)).await;
    }
}

/// Prints each lifecycle state the instance passes through until it has left its group (at
/// most the longest hook timeout AWS allows, 7200 s, plus a drain).
async fn follow(l: &Operator, id: &str, group: &str) -> ExitCode {
    use swarm_core::ports::Fleet;
    let start = std::time::Instant::now();
    let mut last = swarm_core::model::LifecycleState::default();
    while start.elapsed() < std::time::Duration::from_secs(7200 + 900) {
        let groups = match l.fleet.describe_groups(&[group.to_string()]).await {
            Ok(g) => g,
            Err(e) => return fail(format!("{e}{}", hint(&e.to_string()))),
        };
        let state = groups
            .iter()
            .flat_map(|g| &g.instances)
            .find(|i| i.id == id)
            .map(|i| i.lifecycle_state.clone());
        let Some(state) = state else {
            println!("{id}: left {group} after {} s", start.elapsed().as_secs());
            return ExitCode::SUCCESS;
        };
        if state != last {
            eprintln!("{id}: {state} ({} s)", start.elapsed().as_secs());
            last = state;
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
    fail(format!(
        "{id} is still in {group} ({last}) after {} s",
        start.elapsed().as_secs()
    ))
}

/// What a run did, one line per cluster; exit 1 when a repair failed.
fn summary(reports: &[ClusterReport]) -> ExitCode {
    let mut ok = true;
    for r in reports {
        let verb = if r.dry_run { "would make" } else { "made" };
        println!(
            "cluster {}: {verb} {} repair(s), {} failed, {} left to the next run",
            r.cluster,
            r.repairs.len().saturating_sub(r.failed.len() + r.deferred.len()),
            r.failed.len(),
            r.deferred.len()
        );
        if let Some(n) = &r.service_names {
            println!(
                "service names: {verb} {} change(s); {} name(s) kept, {} refused",
                n.changes,
                n.names.len(),
                n.refused.len()
            );
            for k in &n.names {
                let values: Vec<String> = k.values.iter().map(|ip| ip.to_string()).collect();
                println!("  {} ({}): {}", k.name, k.service, values.join(", "));
            }
            for x in &n.refused {
                println!("  refused: {} ({}): {}", x.name, x.service, x.reason);
            }
        }
        for f in &r.failed {
            println!("  failed: {f}");
        }
        ok &= r.failed.is_empty();
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
