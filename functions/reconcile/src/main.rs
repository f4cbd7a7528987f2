//! Lambda function for the reconcile schedule (EventBridge "Scheduled Event"), also runnable
//! by hand: `{"cluster": "<name>", "dry_run": true}` (both optional).

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};
use swarm_aws::{Adapters, AwsDns, AwsFleet, AwsParameters, AwsRemote};
use swarm_core::{Config, Lifecycle};

type Handler = Lifecycle<AwsFleet, AwsRemote, AwsDns, AwsParameters>;

async fn handle(h: &Handler, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let p = &event.payload;
    let cluster = p.get("cluster").and_then(Value::as_str);
    let dry_run = p.get("dry_run").and_then(Value::as_bool).unwrap_or(false);
    let reports = h.reconcile_all(cluster, dry_run).await?;
    tracing::info!(step = "report", outcome = "done", report = %json!(reports));
    Ok(json!({ "clusters": reports }))
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
