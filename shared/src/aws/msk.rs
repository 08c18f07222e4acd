//! MSK's control plane, for the one thing CloudFormation cannot tell: a cluster's bootstrap brokers
//! (`GetBootstrapBrokers`; `AWS::MSK::ServerlessCluster` returns only its ARN). One signed GET
//! ([`crate::aws::api`]), from the `kafka-brokers` function, which runs outside the VPC for it.

use serde::Deserialize;

use crate::aws;
use crate::aws::sigv4::uri_encode;

/// The `host:port` list for IAM clients (port 9098) of `cluster_arn`.
pub async fn bootstrap_brokers(
    cluster_arn: &str,
    var: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let path = format!("/v1/clusters/{}/bootstrap-brokers", uri_encode(cluster_arn));
    let call = aws::api::Call {
        service: "kafka",
        endpoint_var: "AWS_ENDPOINT_URL_KAFKA",
        method: "GET",
        path: &path,
        headers: &[],
        body: b"",
    };
    let fail = |err: String| format!("looking up the brokers of {cluster_arn}: {err}");
    let answer = aws::api::send_json(call, var, "MSK", "GetBootstrapBrokers")
        .await
        .map_err(fail)?;
    brokers(answer).map_err(fail)
}

/// A `GetBootstrapBrokers` answer (what of it is read).
#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "BootstrapBrokerStringSaslIam")]
    iam: Option<String>,
}

/// The IAM brokers in a `GetBootstrapBrokers` answer (a cluster without IAM has none).
fn brokers(answer: Answer) -> Result<String, String> {
    answer
        .iam
        .filter(|brokers| !brokers.is_empty())
        .ok_or_else(|| "the cluster has no IAM brokers (is IAM authentication on?)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The IAM brokers in the text of a `GetBootstrapBrokers` answer.
    fn iam_brokers(answer: &str) -> Result<String, String> {
        brokers(aws::api::parse_json(answer, "GetBootstrapBrokers")?)
    }

    #[test]
    fn the_iam_brokers_are_read_from_the_answer() {
        let answer = r#"{"BootstrapBrokerStringSaslIam":"boot-abc.c2.kafka-serverless.eu-west-1.amazonaws.com:9098"}"#;
        assert_eq!(
            iam_brokers(answer).unwrap(),
            "boot-abc.c2.kafka-serverless.eu-west-1.amazonaws.com:9098"
        );
        for bad in [
            r#"{"BootstrapBrokerStringTls":"b-1:9094"}"#,
            r#"{"BootstrapBrokerStringSaslIam":""}"#,
            "<html>",
        ] {
            assert!(iam_brokers(bad).is_err(), "{bad}");
        }
    }
}
