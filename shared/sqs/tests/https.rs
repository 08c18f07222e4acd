//! The SDK's HTTPS client (`stockroom_sqs::https_client`: rustls with ring, the system's roots)
//! against a real SQS endpoint over TLS: moto serving the local test server certificate. AWS's
//! endpoints are HTTPS and the local stack's plain HTTP, so without this the TLS half of the
//! client would first run in AWS. `SSL_CERT_FILE` stands in for the system's roots: trusted, a
//! call goes through; another CA, the handshake is refused. Each case is a process of its own
//! (the roots are read once), so the other case is `https_untrusted.rs`.

mod tls_endpoint;

#[tokio::test]
async fn the_sdk_reaches_sqs_over_tls_when_it_trusts_the_endpoints_certificate() {
    let endpoint = tls_endpoint::Moto::start("ca.crt");
    let client = endpoint.client().await;
    let created = client
        .create_queue()
        .queue_name("stockroom-https-check")
        .send()
        .await
        .map_err(aws_sdk_sqs::error::DisplayErrorContext)
        .expect("CreateQueue over TLS");
    assert!(
        created
            .queue_url()
            .is_some_and(|url| url.ends_with("/stockroom-https-check")),
        "{created:?}"
    );
}
