//! The cold-start floor `make bench` compares the functions with: a bare lambda_runtime
//! binary (a handler that echoes its payload, current-thread tokio) built with the same
//! release profile. Not deployed.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|e: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(e.payload)
    }))
    .await
}
