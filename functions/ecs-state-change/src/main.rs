//! Lambda function for EventBridge "ECS Container Instance State Change": instances that ECS
//! (or their group) recreated join the swarm, DRAINING ones are drained, deregistered ones
//! leave and are removed.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use swarm_aws::runtime::{cold_start, deadline, AwsLifecycle};

async fn handle(h: &AwsLifecycle, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let outcome = h.handle_ecs(&event.payload, Some(deadline(&event.context))).await?;
    Ok(serde_json::to_value(outcome)?)
}

// One thread: the work is waiting on AWS; a worker pool only costs the cold start (BENCH.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let h = cold_start().await?;
    lambda_runtime::run(service_fn(|e| handle(&h, e))).await
}
