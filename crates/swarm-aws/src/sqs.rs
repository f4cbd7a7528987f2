//! SQS behind the `Checks` port: one SendMessage per drain check, delayed. No decisions.

use std::time::Duration;

use swarm_core::ports::{Checks, PortError, PortResult};

use crate::{aws_error, OnFirstUse, SdkConfig};

pub struct AwsChecks {
    client: OnFirstUse<aws_sdk_sqs::Client>,
    /// DRAIN_CHECK_QUEUE_URL; None where no function hands drains over (the operator's command).
    queue_url: Option<String>,
}

impl AwsChecks {
    /// The client built when first called: only a drain that outlasts its first command sends.
    /// No queue until `to` names one.
    pub fn on_first_use(conf: &SdkConfig) -> Self {
        AwsChecks {
            client: OnFirstUse::lazy(conf, aws_sdk_sqs::Client::new),
            queue_url: None,
        }
    }

    /// The checks go to `queue_url` (the configuration's DRAIN_CHECK_QUEUE_URL).
    pub fn to(self, queue_url: Option<String>) -> Self {
        AwsChecks { queue_url, ..self }
    }
}

impl Checks for AwsChecks {
    async fn later(&self, body: &str, delay: Duration) -> PortResult<()> {
        let Some(url) = self.queue_url.as_deref() else {
            return Err(PortError::aws("SendMessage", "no DRAIN_CHECK_QUEUE_URL"));
        };
        self.client
            .get()
            .send_message()
            .queue_url(url)
            .message_body(body)
            // SQS takes 0 to 900 (the caller keeps within it).
            .delay_seconds(delay.as_secs().min(900) as i32)
            .send()
            .await
            .map_err(|e| aws_error("SendMessage", &e))?;
        Ok(())
    }
}
