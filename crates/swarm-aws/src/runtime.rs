//! What every function binary shares at its edge: logging and the invocation deadline.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Log lines as Lambda's advanced logging controls ask (the function's LoggingConfig, passed
/// to the runtime as AWS_LAMBDA_LOG_FORMAT and AWS_LAMBDA_LOG_LEVEL). lambda_runtime's own
/// `init_default_subscriber` nests an event's fields under "fields"; the dashboard's metric
/// filters and the e2e tests read them at the top level (`step`, `outcome`), hence ours.
pub fn init_tracing() {
    use tracing_subscriber::util::SubscriberInitExt;
    subscriber(&LogSettings::from_env(|k| std::env::var(k).ok()), std::io::stdout).init();
}

/// What the environment asks of the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub filter: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per event, span fields flattened in (LogFormat JSON, the template's).
    Json,
    /// Plain lines, fields as key=value (LogFormat Text).
    Text,
}

impl LogSettings {
    /// RUST_LOG wins over AWS_LAMBDA_LOG_LEVEL (a developer's filter is more precise); the
    /// format is JSON unless Lambda says Text (the template always sets JSON).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Self {
        let format = match var("AWS_LAMBDA_LOG_FORMAT")
            .map(|f| f.trim().to_ascii_lowercase())
            .as_deref()
        {
            Some("text") => LogFormat::Text,
            _ => LogFormat::Json,
        };
        LogSettings {
            filter: log_filter(var("RUST_LOG").as_deref(), var("AWS_LAMBDA_LOG_LEVEL").as_deref()),
            format,
        }
    }
}

/// The subscriber for `settings`, writing to `writer` (stdout in Lambda: its log stream).
///
/// The filter is a list of `target=level` directives and a default level (tracing-subscriber's
/// `Targets`), not an `EnvFilter`: its span and field directives need the regex engine, loaded
/// (and relocated) at every cold start for filters no one sets here (BENCH.md, "Cold start").
pub fn subscriber<W>(settings: &LogSettings, writer: W) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    let filter: Targets = settings
        .filter
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_target(false)
        .with_ansi(false);
    let registry = tracing_subscriber::registry().with(filter);
    match settings.format {
        LogFormat::Json => Box::new(
            registry.with(
                fmt.json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            ),
        ),
        LogFormat::Text => Box::new(registry.with(fmt)),
    }
}

/// The tracing filter from RUST_LOG, else Lambda's log level (TRACE, DEBUG, INFO, WARN, ERROR,
/// FATAL), else info.
pub fn log_filter(rust_log: Option<&str>, lambda_level: Option<&str>) -> String {
    if let Some(f) = rust_log.map(str::trim).filter(|f| !f.is_empty()) {
        return f.to_string();
    }
    match lambda_level.map(|l| l.trim().to_ascii_uppercase()).as_deref() {
        Some("TRACE") => "trace",
        Some("DEBUG") => "debug",
        Some("WARN") => "warn",
        Some("ERROR") | Some("FATAL") => "error",
        _ => "info",
    }
    .to_string()
}

/// The invocation's deadline as a tokio instant, with a margin to report before Lambda kills us.
pub fn deadline(ctx: &lambda_runtime::Context) -> tokio::time::Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let left = Duration::from_millis(ctx.deadline.saturating_sub(now_ms)).saturating_sub(Duration::from_secs(5));
    tokio::time::Instant::now() + left
}

/// The workflows over every real adapter: the terminate and launch hooks, the reconcile.
pub type AwsLifecycle = swarm_core::Lifecycle<
    crate::AwsFleet,
    crate::AwsRemote,
    crate::AwsDns,
    crate::AwsParameters,
    crate::AwsEvents,
    crate::AwsChecks,
>;

/// The workflows without lifecycle actions ([`crate::Adapters::without_lifecycle_actions`]).
pub type WithoutActions = swarm_core::Lifecycle<
    swarm_core::absent::WithoutLifecycleActions<crate::AwsFleet>,
    crate::AwsRemote,
    crate::AwsDns,
    crate::AwsParameters,
    crate::AwsEvents,
    crate::AwsChecks,
>;

/// The cold start every function shares: JSON logs, the configuration validated (a bad one
/// fails the init with the variable named), the SDK clients; `wire` builds the function's
/// workflows from the adapters its role grants ([`crate::Adapters::all`], or
/// `swarm_core::absent` for the others: their calls are then not in its binary). One log line
/// says what each part cost (µs) and where the TLS roots came from; `make bench` reads it.
pub async fn cold_start<L>(
    wire: impl FnOnce(crate::Adapters, swarm_core::Config) -> L,
) -> Result<L, swarm_core::config::ConfigError> {
    let t = Instant::now();
    init_tracing();
    let tracing_us = t.elapsed().as_micros() as u64;
    let t = Instant::now();
    let cfg = swarm_core::Config::from_env()
        .inspect_err(|e| tracing::error!(step = "config", outcome = "invalid", error = %e))?;
    let config_us = t.elapsed().as_micros() as u64;
    let t = Instant::now();
    let (client, roots) = crate::http::https_client();
    let tls_us = t.elapsed().as_micros() as u64;
    let t = Instant::now();
    let a = crate::Adapters::for_lambda(client).await;
    let clients_us = t.elapsed().as_micros() as u64;
    tracing::info!(step = "cold_start", outcome = "ready", tracing_us, config_us, tls_us, clients_us, tls_roots = ?roots);
    Ok(wire(a, cfg))
}
