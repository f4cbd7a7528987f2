//! Lambda function for AWS Health's scheduled changes of EC2 ("AWS Health Event", category
//! scheduledChange: instance retirement, system reboot or maintenance): each affected instance
//! of the cluster leaves the swarm before the change begins, at once when it begins within
//! SCHEDULED_CHANGE_LEAD_SECONDS, else by the reconcile when that time comes.
// The workflows' futures nest deep; the fleet's wrapper adds a level past the default 128.
#![recursion_limit = "256"]

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use swarm_aws::runtime::{cold_start, deadline};
use swarm_aws::{AwsChecks, AwsDns, AwsEvents, AwsFleet, AwsRemote};
use swarm_core::absent::WithoutLifecycleActions;
use swarm_core::Lifecycle;

/// A scheduled change only ever retires (never joins): no lifecycle action to complete and no
/// init lock or told-refusal parameters, so neither those Auto Scaling calls nor Parameter
/// Store are in this binary (its role, shared with instance-notice, grants them for that one).
/// No Parameter Store is built (`()`): `handle_scheduled_change`'s bounds do not ask for one.
type Wired = Lifecycle<WithoutLifecycleActions<AwsFleet>, AwsRemote, AwsDns, (), AwsEvents, AwsChecks>;

async fn handle(h: &Wired, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let outcome = h
        .handle_scheduled_change(&event.payload, Some(deadline(&event.context)))
        .await?;
    Ok(serde_json::to_value(outcome)?)
}

// One thread: the work is waiting on AWS; a worker pool only costs the cold start (BENCH.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let h = cold_start(|a, cfg| Lifecycle {
        fleet: WithoutLifecycleActions(a.fleet),
        remote: a.remote,
        dns: a.dns,
        params: (),
        events: a.events,
        checks: a.checks.to(cfg.drain_check_queue.clone()),
        cfg,
    })
    .await?;
    lambda_runtime::run(service_fn(|e| handle(&h, e))).await
}
