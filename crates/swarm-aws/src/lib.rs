//! Thin adapters from swarm-core's ports to the AWS SDK. No decisions here: each method
//! is one API (or one paginated/batched API) and an error mapping.
//!
//! Every client honours AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> (aws-config), so
//! the same binary runs against AWS or the local cloud.

mod autoscaling;
pub mod http;
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
    /// Every adapter from one SDK configuration, as a Lambda function needs it: credentials
    /// and region from the variables Lambda sets from the execution role (AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION) — the default chain would find
    /// them first too, but building its other providers (profile files, SSO, STS web
    /// identity, ECS, IMDS) cost the cold start; and one HTTPS client for every service
    /// ([`http::https_client`]).
    pub async fn for_lambda(client: aws_smithy_runtime_api::client::http::SharedHttpClient) -> Self {
        // Throttling and transient faults (5xx, timeouts, Route 53's PriorRequestNotComplete)
        // are retried here (5 attempts, jittered backoff); the workflows never retry a call.
        // Adaptive: once AWS throttles, this client sends no faster than AWS accepts (a token
        // bucket per service) instead of retrying into the limit.
        let retry = aws_config::retry::RetryConfig::adaptive()
            .with_max_attempts(5)
            .with_initial_backoff(std::time::Duration::from_millis(200));
        let conf = aws_config::defaults(BehaviorVersion::latest())
            .credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new())
            .region(aws_config::environment::EnvironmentVariableRegionProvider::new())
            .http_client(client)
            .retry_config(retry)
            .load()
            .await;
        let ssm = aws_sdk_ssm::Client::new(&conf);
        Adapters {
            fleet: AwsFleet::new(aws_sdk_autoscaling::Client::new(&conf), aws_sdk_ec2::Client::new(&conf)),
            remote: AwsRemote::new(ssm.clone()),
            dns: AwsDns::new(aws_sdk_route53::Client::new(&conf)),
            params: AwsParameters::new(ssm),
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

/// The codes with which a service rejects the request itself: the same request fails again.
/// (Not found answers that a caller expects, such as a missing record, are mapped where they
/// are expected.)
const INVALID: &[&str] = &[
    "ValidationError",
    "ValidationException",
    "InvalidParameterValue",
    "InvalidParameterValueException",
    "InvalidParameterCombination",
    "InvalidParameterException",
    "InvalidInput",
    "MissingParameter",
    "NoSuchHostedZone",
    "InvalidKeyId",
];

/// Maps an SDK error to a port error carrying the AWS error code and message. The SDK has
/// retried throttling and transient errors already (its retry configuration, `Adapters`).
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
        (Some(code), msg) if INVALID.contains(&code) => PortError::Invalid {
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
