//! Lambda function for the drain checks a terminate hook leaves on its SQS queue (a drain that
//! outlasts its first command): each looks at the drain once and leaves the next, or ends it.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use swarm_aws::runtime::{cold_start, deadline};
use swarm_aws::{AwsChecks, AwsEvents, AwsFleet, AwsRemote};
use swarm_core::Lifecycle;

/// A check reads and finishes a retirement the terminate hook began: the records are out
/// already and the init lock is the launch's, so no Route 53 and no Parameter Store — none
/// built (`()`): `handle_drain_check`'s bounds do not ask for them, so a path to either would
/// not compile.
type Wired = Lifecycle<AwsFleet, AwsRemote, (), (), AwsEvents, AwsChecks>;

/// Each message on its own: one whose check fails for a reason a later delivery can fix is
/// reported (ReportBatchItemFailures) and comes back after the visibility timeout; the others
/// are deleted. A message that is not a check is logged and deleted (never retried).
async fn handle(h: &Wired, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let end = deadline(&event.context);
    let mut failures = Vec::new();
    for m in event.payload.records {
        let id = m.message_id.clone().unwrap_or_default();
        let body = m.body.as_deref().unwrap_or("");
        if let Err(e) = h.handle_drain_check(body, Some(end)).await {
            tracing::warn!(step = "drain-check", outcome = "retry", message_id = %id, error = %e,
                           "delivered again after the queue's visibility timeout");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failures.push(failure);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    Ok(response)
}

// One thread: the work is waiting on AWS (BENCH.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let h = cold_start(|a, cfg| Lifecycle {
        fleet: a.fleet,
        remote: a.remote,
        dns: (),
        params: (),
        events: a.events,
        checks: a.checks.to(cfg.drain_check_queue.clone()),
        cfg,
    })
    .await?;
    lambda_runtime::run(service_fn(|e| handle(&h, e))).await
}
