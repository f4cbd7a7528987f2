//! EventBridge behind the `Announce` port: one PutEvents per action event. No decisions.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use swarm_core::announce::{ActionEvent, SOURCE};
use swarm_core::ports::{Announce, PortError, PortResult};

use crate::{aws_error, coded_error, OnFirstUse, SdkConfig};

pub struct AwsEvents {
    client: OnFirstUse<aws_sdk_eventbridge::Client>,
}

impl AwsEvents {
    pub fn new(client: aws_sdk_eventbridge::Client) -> Self {
        AwsEvents {
            client: OnFirstUse::Ready(client),
        }
    }

    /// The client built when first called (most invocations publish once, at their end).
    pub fn on_first_use(conf: &SdkConfig) -> Self {
        AwsEvents {
            client: OnFirstUse::lazy(conf, aws_sdk_eventbridge::Client::new),
        }
    }
}

impl Announce for AwsEvents {
    async fn announce(&self, bus: &str, event: &ActionEvent) -> PortResult<()> {
        let entry = PutEventsRequestEntry::builder()
            .source(SOURCE)
            .detail_type(event.detail_type())
            .detail(event.detail())
            .event_bus_name(bus)
            .build();
        let out = self
            .client
            .get()
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| aws_error("PutEvents", &e))?;
        // The call succeeds even when its entry was refused: the entry says so.
        match out
            .entries()
            .iter()
            .find_map(|e| e.error_code().map(|c| (c, e.error_message())))
        {
            None if out.failed_entry_count() == 0 => Ok(()),
            None => Err(PortError::aws("PutEvents", "entry failed without a code")),
            // "You must detect unsuccessful entries" (EventBridge User Guide, PutEvents); its
            // retryable codes (InternalFailure, ThrottlingException) come out transient.
            Some((code, msg)) => Err(coded_error("PutEvents", code, msg)),
        }
    }
}
