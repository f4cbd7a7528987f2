//! Lambda function for the reconcile schedule (EventBridge "Scheduled Event"), also runnable
//! by hand: `{"cluster": "<name>", "dry_run": true}` (both optional).

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};
use swarm_aws::runtime::{cold_start, deadline, AwsLifecycle};
use swarm_aws::Adapters;

async fn handle(h: &AwsLifecycle, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let p = &event.payload;
    let cluster = p.get("cluster").and_then(Value::as_str);
    let dry_run = p.get("dry_run").and_then(Value::as_bool).unwrap_or(false);
    let reports = h
        .reconcile_all(cluster, dry_run, Some(deadline(&event.context)))
        .await?;
    tracing::info!(step = "report", outcome = "done", report = %json!(reports));
    Ok(json!({ "clusters": reports }))
}

// One thread: the work is waiting on AWS; a worker pool only costs the cold start (BENCH.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let h = cold_start(Adapters::all).await?;
    lambda_runtime::run(service_fn(|e| handle(&h, e))).await
}
