//! What the integration tests share.

/// The crate's directory where the test runs: cargo sets it for the run, and a test binary
/// reused from a target dir shared with another checkout (CI's clone) must not read that
/// checkout's files. The compile-time value is the fallback.
pub fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string())
}
