//! The other half of `https.rs`: an endpoint whose certificate no trusted root signed is refused.

mod tls_endpoint;

#[tokio::test]
async fn the_sdk_refuses_an_endpoint_whose_certificate_it_does_not_trust() {
    let endpoint = tls_endpoint::Moto::start("other-ca.crt");
    let client = endpoint.client().await;
    let refused = client
        .list_queues()
        .send()
        .await
        .map_err(|err| aws_sdk_sqs::error::DisplayErrorContext(err).to_string())
        .expect_err("a certificate signed by an untrusted CA");
    assert!(
        refused.contains("UnknownIssuer") || refused.contains("certificate"),
        "{refused}"
    );
}
