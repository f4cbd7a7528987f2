//! Lambda function for EventBridge "ECS Container Instance State Change": instances that ECS
//! (or their group) recreated join the swarm, DRAINING ones are drained, deregistered ones
//! leave and are removed.
// The workflows' futures nest deep; the fleet's wrapper adds a level past the default 128.
#![recursion_limit = "256"]

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use swarm_aws::runtime::{cold_start, deadline, WithoutActions};
use swarm_aws::Adapters;

async fn handle(h: &WithoutActions, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let outcome = h.handle_ecs(&event.payload, Some(deadline(&event.context))).await?;
    Ok(serde_json::to_value(outcome)?)
}

// One thread: the work is waiting on AWS; a worker pool only costs the cold start (BENCH.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Its events carry no lifecycle action: its role grants neither completion nor heartbeat.
    let h = cold_start(Adapters::without_lifecycle_actions).await?;
    lambda_runtime::run(service_fn(|e| handle(&h, e))).await
}
