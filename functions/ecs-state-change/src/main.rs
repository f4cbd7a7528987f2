//! Lambda function for EventBridge "ECS Container Instance State Change": instances that ECS
//! (or their group) recreated join the swarm, DRAINING ones are drained, deregistered ones
//! leave and are removed.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use swarm_aws::{Adapters, AwsDns, AwsFleet, AwsParameters, AwsRemote};
use swarm_core::{Config, Lifecycle};

type Handler = Lifecycle<AwsFleet, AwsRemote, AwsDns, AwsParameters>;

async fn handle(h: &Handler, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let deadline = swarm_aws::runtime::deadline(&event.context);
    let outcome = h.handle_ecs(&event.payload, Some(deadline)).await?;
    Ok(serde_json::to_value(outcome)?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    swarm_aws::runtime::init_tracing();
    let cfg = Config::from_env().inspect_err(|e| tracing::error!(step = "config", outcome = "invalid", error = %e))?;
    let a = Adapters::from_env().await;
    let h = Lifecycle {
        fleet: a.fleet,
        remote: a.remote,
        dns: a.dns,
        params: a.params,
        cfg,
    };
    lambda_runtime::run(service_fn(|e| handle(&h, e))).await
}
