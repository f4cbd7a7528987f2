//! The shared HTTPS client's trust store (its own process: it reads and may set environment
//! variables).

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use swarm_aws::http::{https_client, Roots, AMAZON_TRUST_SERVICES};

#[test]
fn the_roots_are_amazon_trust_services_unless_the_operator_or_the_region_says_otherwise() {
    std::env::remove_var("SSL_CERT_FILE");
    std::env::remove_var("SSL_CERT_DIR");
    std::env::set_var("AWS_REGION", "eu-west-1");
    assert_eq!(https_client().1, Roots::AmazonTrustServices);
    assert_eq!(
        std::env::var_os("SSL_CERT_FILE"),
        None,
        "the compiled-in roots need no bundle file"
    );

    // China's regions: the platform's bundle file. The machines this runs on (Debian,
    // Amazon Linux) have one.
    std::env::set_var("AWS_REGION", "cn-north-1");
    let Roots::BundleFile(path) = https_client().1 else {
        panic!("China: the platform's bundle")
    };
    assert!(path.is_file(), "{}", path.display());
    assert_eq!(std::env::var_os("SSL_CERT_FILE"), Some(path.into_os_string()));

    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var("SSL_CERT_FILE", "/operator/chose.pem");
    assert_eq!(https_client().1, Roots::AsConfigured);
    assert_eq!(std::env::var_os("SSL_CERT_FILE").unwrap(), "/operator/chose.pem");
}

#[test]
fn the_compiled_in_roots_are_the_five_amazon_trust_services_publishes() {
    // SHA-256 fingerprints from https://www.amazontrust.com/repository/ (Amazon Root CA 1-4,
    // Starfield Services Root Certificate Authority - G2).
    let published = [
        "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e",
        "1ba5b2aa8c65401a82960118f80bec4f62304d83cec4713a19c39c011ea46db4",
        "18ce6cfe7bf14e60b2e347b8dfe868cb31d02ebb3ada271569f50343b46db3a4",
        "e35d28419ed02025cfa69038cd623962458da5c695fbdea3c22b0bfb25897092",
        "568d6905a2c88708a4b3025190edcfedb1974a606a13c6e5290fcb2ae63edab5",
    ];
    let found: Vec<String> = CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES)
        .map(|c| {
            Sha256::digest(c.expect("PEM").as_ref())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        })
        .collect();
    assert_eq!(found, published);
}
