//! What every function binary shares at its edge: logging and the invocation deadline.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// JSON log lines (one object per event, span fields flattened in). The level is Lambda's
/// advanced logging control (`AWS_LAMBDA_LOG_LEVEL`, from the function's LoggingConfig)
/// unless RUST_LOG says otherwise; info by default.
pub fn init_tracing() {
    let filter = log_filter(
        std::env::var("RUST_LOG").ok().as_deref(),
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
    );
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&filter)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
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

/// The workflows over the real adapters: what every function binary runs.
pub type AwsLifecycle = swarm_core::Lifecycle<crate::AwsFleet, crate::AwsRemote, crate::AwsDns, crate::AwsParameters>;

/// The cold start every function shares: JSON logs, the configuration validated (a bad one
/// fails the init with the variable named), the SDK clients. One log line says what each
/// part cost (µs) and where the TLS roots came from; `make bench` reads it.
pub async fn cold_start() -> Result<AwsLifecycle, swarm_core::config::ConfigError> {
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
    Ok(swarm_core::Lifecycle {
        fleet: a.fleet,
        remote: a.remote,
        dns: a.dns,
        params: a.params,
        cfg,
    })
}
