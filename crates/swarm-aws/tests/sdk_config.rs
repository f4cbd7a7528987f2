//! The SDK configuration built without aws-config's loader still takes what Lambda and an
//! operator set: region, credentials and AWS_ENDPOINT_URL[_<SERVICE>] (its own process: it
//! sets environment variables).

use aws_smithy_http_client::test_util::capture_request;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use swarm_aws::lambda_sdk_config;

#[tokio::test]
async fn region_credentials_and_endpoints_come_from_the_environment() {
    std::env::set_var("AWS_REGION", "eu-west-1");
    std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDLAMBDA");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "secret");
    std::env::set_var("AWS_SESSION_TOKEN", "token");
    std::env::set_var("AWS_ENDPOINT_URL", "http://everything.test:1");
    std::env::set_var("AWS_ENDPOINT_URL_SSM", "http://ssm.test:2");

    let (http, ssm_request) = capture_request(None);
    let conf = lambda_sdk_config(SharedHttpClient::new(http)).await;
    assert_eq!(conf.region().map(|r| r.as_ref()), Some("eu-west-1"));
    let _ = aws_sdk_ssm::Client::new(&conf)
        .describe_instance_information()
        .send()
        .await;
    let req = ssm_request.expect_request();
    assert_eq!(req.uri(), "http://ssm.test:2/", "the service's own variable first");
    let auth = req.headers().get("authorization").expect("signed");
    assert!(
        auth.contains("Credential=AKIDLAMBDA/") && auth.contains("/eu-west-1/ssm/"),
        "{auth}"
    );
    assert_eq!(req.headers().get("x-amz-security-token"), Some("token"));

    let (http, asg_request) = capture_request(None);
    let conf = lambda_sdk_config(SharedHttpClient::new(http)).await;
    let _ = aws_sdk_autoscaling::Client::new(&conf)
        .describe_auto_scaling_groups()
        .send()
        .await;
    assert_eq!(
        asg_request.expect_request().uri(),
        "http://everything.test:1/",
        "else the global one"
    );
}
