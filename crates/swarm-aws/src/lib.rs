//! Thin adapters from swarm-core's ports to the AWS SDK. No decisions here: each method
//! is one API (or one paginated/batched API) and an error mapping.
//!
//! Every client honours AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> (aws-config), so
//! the same binary runs against AWS or the local cloud.

mod autoscaling;
mod route53;
pub mod runtime;
mod ssm;

use aws_config::BehaviorVersion;
use swarm_core::ports::PortError;

pub use autoscaling::AwsFleet;
pub use route53::AwsDns;
pub use ssm::{AwsParameters, AwsRemote};

/// All four adapters from one shared SDK configuration.
pub struct Adapters {
    pub fleet: AwsFleet,
    pub remote: AwsRemote,
    pub dns: AwsDns,
    pub params: AwsParameters,
}

impl Adapters {
    pub async fn from_env() -> Self {
        let conf = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Adapters {
            fleet: AwsFleet::new(aws_sdk_autoscaling::Client::new(&conf), aws_sdk_ec2::Client::new(&conf)),
            remote: AwsRemote::new(aws_sdk_ssm::Client::new(&conf)),
            dns: AwsDns::new(aws_sdk_route53::Client::new(&conf)),
            params: AwsParameters::new(aws_sdk_ssm::Client::new(&conf)),
        }
    }
}

/// The codes with which each service refuses a caller's credentials or permissions.
const DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "AuthFailure",
];

/// Maps an SDK error to a port error carrying the AWS error code and message.
pub(crate) fn aws_error<E, R>(
    operation: &str,
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> PortError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_smithy_types::error::metadata::ProvideErrorMetadata;
    match (err.code(), err.message()) {
        (Some(code), msg) if DENIED.contains(&code) => PortError::Denied {
            operation: operation.to_string(),
            message: format!("{code}: {}", msg.unwrap_or("")),
        },
        (Some(code), msg) => PortError::aws(operation, format!("{code}: {}", msg.unwrap_or(""))),
        _ => PortError::aws(operation, aws_smithy_types::error::display::DisplayErrorContext(err)),
    }
}

pub(crate) fn code_of<E, R>(err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> Option<&str>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    use aws_smithy_types::error::metadata::ProvideErrorMetadata;
    err.code()
}

#[cfg(test)]
mod tests;
