//! The one HTTPS client every SDK client of a function shares.
//!
//! Why not the SDK's default client as is: it validates itself once per service client by
//! building a throwaway connector, and the platform trust store it loads is the CA bundle
//! file *and* every file of the certificate directory (146 files on Debian; on Amazon Linux
//! the directory holds the bundle again). That was the largest part of a cold start
//! (BENCH.md, "Cold start"). Here the store is the one bundle file and one connector is
//! built at the cold start. TLS verification is unchanged: the SDK's own rustls (aws-lc)
//! connector and loader, the platform's roots.

use std::path::PathBuf;

use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{http_client_fn, HttpClient, SharedHttpClient};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;
use aws_smithy_types::config_bag::ConfigBag;

/// Where the roots come from: said once in the cold-start log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// SSL_CERT_FILE, set by us to the distribution's bundle when neither it nor
    /// SSL_CERT_DIR was set.
    BundleFile(PathBuf),
    /// Whatever the operator set (SSL_CERT_FILE / SSL_CERT_DIR), or the platform's
    /// locations when no bundle file exists.
    AsConfigured,
}

/// The shared client and where its roots come from. Call it before the process starts a
/// second thread: it may set SSL_CERT_FILE.
pub fn https_client() -> (SharedHttpClient, Roots) {
    let roots = match (std::env::var_os("SSL_CERT_FILE"), std::env::var_os("SSL_CERT_DIR")) {
        (None, None) => match openssl_probe::probe().cert_file {
            // rustls-native-certs reads only SSL_CERT_FILE when it is set (and skips a
            // certificate it cannot parse, as for the platform store).
            Some(bundle) => {
                std::env::set_var("SSL_CERT_FILE", &bundle);
                Roots::BundleFile(bundle)
            }
            None => Roots::AsConfigured,
        },
        _ => Roots::AsConfigured,
    };
    let client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .build_https();
    // The SDK's client loads the roots when a service client validates it ("so that native
    // certs load at client initialization time instead of upon first request"); done here
    // once, so the first request costs what it did before.
    let _ = client.validate_base_client_config(&RuntimeComponentsBuilder::new("cold start"), &ConfigBag::base());
    // http_client_fn does not validate again per service client; the SDK's client still
    // caches one connector per timeout setting, shared by every service client.
    (
        http_client_fn(move |settings, components| client.http_connector(settings, components)),
        roots,
    )
}
