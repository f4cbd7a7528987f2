//! The shared HTTPS client's trust store is the one bundle file (its own process: it sets
//! an environment variable).

use swarm_aws::http::{https_client, Roots};

#[test]
fn the_roots_are_the_one_bundle_file_unless_the_operator_chose() {
    std::env::remove_var("SSL_CERT_FILE");
    std::env::remove_var("SSL_CERT_DIR");
    let (_, roots) = https_client();
    // The machines this runs on (Debian, Amazon Linux) have a bundle file.
    let Roots::BundleFile(path) = roots else {
        panic!("{roots:?}")
    };
    assert!(path.is_file(), "{}", path.display());
    assert_eq!(std::env::var_os("SSL_CERT_FILE"), Some(path.into_os_string()));

    std::env::set_var("SSL_CERT_FILE", "/operator/chose.pem");
    assert_eq!(https_client().1, Roots::AsConfigured);
    assert_eq!(std::env::var_os("SSL_CERT_FILE").unwrap(), "/operator/chose.pem");
}
