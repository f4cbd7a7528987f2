//! Thin adapters from swarm-core's ports to the AWS SDK. No decisions here: each method
//! is one API (or one paginated/batched API) and an error mapping.
//!
//! Every client honours AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> (aws-config), so
//! the same binary runs against AWS or the local cloud.

mod autoscaling;
mod eventbridge;
pub mod http;
mod parameters;
mod route53;
pub mod runtime;
mod sqs;
mod ssm;

use std::sync::OnceLock;
use std::time::Duration;

use aws_config::identity::IdentityCache;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_async::rt::sleep::TokioSleep;
use aws_smithy_async::time::SystemTimeSource;
use aws_types::sdk_config::{
    RetryConfig, SharedAsyncSleep, SharedCredentialsProvider, SharedHttpClient, SharedTimeSource, TimeoutConfig,
};
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};
use swarm_core::ports::PortError;

pub use autoscaling::AwsFleet;
pub use eventbridge::AwsEvents;
pub use parameters::AwsParameters;
pub use route53::AwsDns;
pub use sqs::AwsChecks;
pub use ssm::AwsRemote;

/// Every adapter from one shared SDK configuration.
pub struct Adapters {
    pub fleet: AwsFleet,
    pub remote: AwsRemote,
    pub dns: AwsDns,
    pub params: AwsParameters,
    pub events: AwsEvents,
    pub checks: AwsChecks,
}

impl Adapters {
    /// Every adapter from one SDK configuration, as a Lambda function needs it (see
    /// [`lambda_sdk_config`]), and one HTTPS client for every service ([`http::https_client`]).
    /// The service clients are built when first called ([`OnFirstUse`]).
    pub async fn for_lambda(client: SharedHttpClient) -> Self {
        Self::from_sdk_config(&lambda_sdk_config(client).await)
    }

    /// The workflows over every adapter (the drain checks' queue from `cfg`).
    pub fn all(self, cfg: swarm_core::Config) -> crate::runtime::AwsLifecycle {
        self.with_fleet(|fleet| fleet, cfg)
    }

    /// The workflows of a function whose events carry no lifecycle action (instance notices,
    /// scheduled changes, ECS): every adapter but the completion and the heartbeat, which its
    /// role does not grant.
    pub fn without_lifecycle_actions(self, cfg: swarm_core::Config) -> crate::runtime::WithoutActions {
        self.with_fleet(swarm_core::absent::WithoutLifecycleActions, cfg)
    }

    fn with_fleet<F>(
        self,
        fleet: impl FnOnce(AwsFleet) -> F,
        cfg: swarm_core::Config,
    ) -> swarm_core::Lifecycle<F, AwsRemote, AwsDns, AwsParameters, AwsEvents, AwsChecks> {
        swarm_core::Lifecycle {
            fleet: fleet(self.fleet),
            remote: self.remote,
            dns: self.dns,
            params: self.params,
            events: self.events,
            checks: self.checks.to(cfg.drain_check_queue.clone()),
            cfg,
        }
    }

    /// Every adapter from `conf` (the operator's command: aws-config's loader, profiles and
    /// all), each service client built on first use.
    pub fn from_sdk_config(conf: &SdkConfig) -> Self {
        Adapters {
            fleet: AwsFleet::on_first_use(conf),
            remote: AwsRemote::on_first_use(conf),
            dns: AwsDns::on_first_use(conf),
            params: AwsParameters::on_first_use(conf),
            events: AwsEvents::on_first_use(conf),
            checks: AwsChecks::on_first_use(conf),
        }
    }
}

/// An SDK service client built when an invocation first calls its service. Building one costs
/// 70-120 µs (the crate's endpoint partitions parsed, its runtime plugins validated; BENCH.md,
/// "Cold start"), and an invocation calls two to five of the five services: a worker's launch
/// never calls Route 53, a reconcile in dry-run only reads.
#[allow(clippy::large_enum_variant, reason = "five per process, each built once")]
pub(crate) enum OnFirstUse<C> {
    Ready(C),
    Lazy {
        conf: SdkConfig,
        build: fn(&SdkConfig) -> C,
        client: OnceLock<C>,
    },
}

impl<C> OnFirstUse<C> {
    pub(crate) fn lazy(conf: &SdkConfig, build: fn(&SdkConfig) -> C) -> Self {
        OnFirstUse::Lazy {
            conf: conf.clone(),
            build,
            client: OnceLock::new(),
        }
    }

    pub(crate) fn get(&self) -> &C {
        match self {
            OnFirstUse::Ready(c) => c,
            OnFirstUse::Lazy { conf, build, client } => client.get_or_init(|| build(conf)),
        }
    }
}

/// The SDK configuration built from what Lambda gives a function, without aws-config's
/// loader: credentials and region from the variables Lambda sets from the execution role
/// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION), endpoints from
/// AWS_ENDPOINT_URL[_<SERVICE>] (the SDK's own lookup rules), aws-config's defaults for the
/// rest (3.1 s connect timeout, one lazy identity cache, tokio sleep, system time). The loader
/// would also read the shared config files and run a provider per setting (FIPS, dual stack,
/// app name, compression, checksums, …) that no function sets: a third of the cold start
/// (BENCH.md, "Cold start").
pub async fn lambda_sdk_config(client: SharedHttpClient) -> SdkConfig {
    use aws_config::meta::region::ProvideRegion;
    // Throttling and transient faults (5xx, timeouts, Route 53's PriorRequestNotComplete)
    // are retried here (5 attempts, jittered backoff); the workflows never retry a call.
    // Adaptive: once AWS throttles, this client sends no faster than AWS accepts (a token
    // bucket per service) instead of retrying into the limit.
    let retry = RetryConfig::adaptive()
        .with_max_attempts(5)
        .with_initial_backoff(Duration::from_millis(200));
    let region = aws_config::environment::EnvironmentVariableRegionProvider::new()
        .region()
        .await;
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(region)
        .credentials_provider(SharedCredentialsProvider::new(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        ))
        .identity_cache(IdentityCache::lazy().build())
        .service_config(EndpointsFromEnv)
        .http_client(client)
        .retry_config(retry)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(3100))
                .build(),
        )
        .sleep_impl(SharedAsyncSleep::new(TokioSleep::new()))
        .time_source(SharedTimeSource::new(SystemTimeSource::new()))
        .build()
}

/// AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL: the SDK's own lookup (aws-runtime's
/// EnvConfigValue, what aws-config's loader uses), without the shared config files.
#[derive(Debug)]
struct EndpointsFromEnv;

impl LoadServiceConfig for EndpointsFromEnv {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        let env = aws_types::os_shim_internal::Env::real();
        aws_runtime::env_config::EnvConfigValue::new()
            .env(key.env())
            .profile(key.profile())
            .service_id(key.service_id())
            .load(&env, None)
            .map(|(value, _)| value.into_owned())
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
    // EventBridge, per PutEvents entry.
    "NotAuthorizedForSourceException",
    "NotAuthorizedForDetailTypeException",
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
    // EventBridge, per PutEvents entry.
    "InvalidArgument",
    "MalformedDetail",
    "InvalidAccountIdException",
    "RedactionFailure",
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
    match err.code() {
        Some(code) => coded_error(operation, code, err.message()),
        None => PortError::aws(operation, aws_smithy_types::error::display::DisplayErrorContext(err)),
    }
}

/// The port error for an AWS error code (a call's, or one entry's of a batch call).
pub(crate) fn coded_error(operation: &str, code: &str, message: Option<&str>) -> PortError {
    let (operation, message) = (operation.to_string(), format!("{code}: {}", message.unwrap_or("")));
    if DENIED.contains(&code) {
        PortError::Denied { operation, message }
    } else if INVALID.contains(&code) {
        PortError::Invalid { operation, message }
    } else {
        PortError::Aws { operation, message }
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
