//! The one HTTPS client every SDK client of a function shares.
//!
//! Why not the SDK's default client as is: it validates itself once per service client by
//! building a throwaway connector, and its trust store is the platform's: the CA bundle file
//! *and* every file of the certificate directory (146 files on Debian), each certificate
//! decoded and parsed at the cold start — most of a cold start (BENCH.md, "Cold start").
//! Here the trust store is Amazon Trust Services' five roots, compiled in: every AWS service
//! endpoint's certificate chains to one of them, and amazontrust.com asks relying parties with
//! a custom trust store to hold exactly these five ("we recommend that all five of the above
//! roots be included in the trust store"). Fewer anchors is also less trust: no other CA can
//! vouch for an AWS endpoint. The platform's store is used instead where an operator points
//! SSL_CERT_FILE / SSL_CERT_DIR at one (a proxy that inspects TLS, a private endpoint with
//! its own CA) and in the China regions (operated by Sinnet and NWCD, whose endpoints'
//! issuers we could not confirm). Verification is the SDK's own rustls (aws-lc) connector,
//! unchanged; one connector is built at the cold start.

use std::path::PathBuf;

use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::http::{http_client_fn, HttpClient, SharedHttpClient};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;
use aws_smithy_types::config_bag::ConfigBag;

/// Amazon Trust Services' roots: Amazon Root CA 1-4 and Starfield Services Root Certificate
/// Authority - G2 (https://www.amazontrust.com/repository/), PEM.
pub const AMAZON_TRUST_SERVICES: &[u8] = include_bytes!("../certs/amazon-trust-services.pem");

/// Where the roots come from: said once in the cold-start log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// [`AMAZON_TRUST_SERVICES`], compiled in.
    AmazonTrustServices,
    /// SSL_CERT_FILE, set by us to the distribution's bundle (China regions, when neither it
    /// nor SSL_CERT_DIR was set).
    BundleFile(PathBuf),
    /// Whatever the operator set (SSL_CERT_FILE / SSL_CERT_DIR), or the platform's
    /// locations when no bundle file exists.
    AsConfigured,
}

/// Which roots a function trusts: the operator's choice (SSL_CERT_FILE / SSL_CERT_DIR set),
/// else by region (see the module's comment).
pub fn roots_for(operator_chose: bool, region: Option<&str>) -> Roots {
    match (operator_chose, region) {
        (true, _) => Roots::AsConfigured,
        (false, Some(r)) if r.starts_with("cn-") => match openssl_probe::probe().cert_file {
            Some(bundle) => Roots::BundleFile(bundle),
            None => Roots::AsConfigured,
        },
        (false, _) => Roots::AmazonTrustServices,
    }
}

/// The shared client and where its roots come from. Call it before the process starts a
/// second thread: it may set SSL_CERT_FILE.
pub fn https_client() -> (SharedHttpClient, Roots) {
    let operator_chose = std::env::var_os("SSL_CERT_FILE").is_some() || std::env::var_os("SSL_CERT_DIR").is_some();
    let region = std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .ok();
    let roots = roots_for(operator_chose, region.as_deref());
    let store = match &roots {
        Roots::AmazonTrustServices => TrustStore::empty().with_pem_certificate(AMAZON_TRUST_SERVICES),
        Roots::BundleFile(bundle) => {
            // rustls-native-certs reads only SSL_CERT_FILE when it is set (and skips a
            // certificate it cannot parse, as for the platform store).
            std::env::set_var("SSL_CERT_FILE", bundle);
            TrustStore::default()
        }
        Roots::AsConfigured => TrustStore::default(),
    };
    // TlsContextBuilder::build has no failing case for a trust store (aws-smithy-http-client 1.5).
    let tls = TlsContext::builder()
        .with_trust_store(store)
        .build()
        .unwrap_or_default();
    let client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(tls)
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
