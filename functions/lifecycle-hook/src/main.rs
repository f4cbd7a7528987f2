//! Lambda function for EventBridge "EC2 Instance-launch/terminate Lifecycle Action".

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use swarm_aws::runtime::{cold_start, deadline, AwsLifecycle};
use swarm_aws::Adapters;

async fn handle(h: &AwsLifecycle, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let outcome = h.handle(&event.payload, Some(deadline(&event.context))).await?;
    Ok(serde_json::to_value(outcome)?)
}

// One thread: the work is waiting on AWS; a worker pool only costs the cold start (BENCH.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let h = cold_start(Adapters::all).await?;
    lambda_runtime::run(service_fn(|e| handle(&h, e))).await
}
