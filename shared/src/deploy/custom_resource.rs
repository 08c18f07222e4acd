//! CloudFormation custom resources, the plumbing every one shares: what a request asks, and the
//! answer CloudFormation waits for on the request's presigned URL (`SUCCESS` with data, or
//! `FAILED` with a reason the stack's events show, which rolls the deploy back). Stockroom's are
//! `Migrations` (`handlers::migrations`), `KafkaLookup` (`handlers::kafka_brokers`) and
//! `KafkaTopics` (stockroom-kafka, `setup`).

use std::collections::BTreeMap;

use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest;
use serde::Serialize;
use serde_json::Value;

/// CloudFormation refuses a response body above 4096 bytes; reasons are cut well below.
const MAX_REASON: usize = 3000;

/// One request, whatever its type.
struct Request {
    /// Create or Update: do the work. Delete: Stockroom's resources leave their data alone.
    apply: bool,
    response_url: String,
    stack_id: String,
    request_id: String,
    logical_resource_id: String,
    properties: Value,
}

impl TryFrom<CloudFormationCustomResourceRequest> for Request {
    type Error = String;

    fn try_from(request: CloudFormationCustomResourceRequest) -> Result<Self, String> {
        use CloudFormationCustomResourceRequest as R;
        let (apply, url, stack, id, logical, properties) = match request {
            R::Create(r) => (
                true,
                r.response_url,
                r.stack_id,
                r.request_id,
                r.logical_resource_id,
                r.resource_properties,
            ),
            R::Update(r) => (
                true,
                r.response_url,
                r.stack_id,
                r.request_id,
                r.logical_resource_id,
                r.resource_properties,
            ),
            R::Delete(r) => (
                false,
                r.response_url,
                r.stack_id,
                r.request_id,
                r.logical_resource_id,
                r.resource_properties,
            ),
            // The enum is non-exhaustive; CloudFormation sends only the three above.
            _ => return Err("a custom-resource request type CloudFormation does not send".into()),
        };
        Ok(Self {
            apply,
            response_url: url,
            stack_id: stack,
            request_id: id,
            logical_resource_id: logical,
            properties,
        })
    }
}

/// The answer CloudFormation reads from the presigned URL.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Response {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub physical_resource_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    pub data: BTreeMap<String, String>,
}

/// Where the answer goes: an HTTPS PUT to the request's presigned S3 URL in production.
pub trait Respond {
    fn respond(
        &self,
        url: &str,
        body: String,
    ) -> impl std::future::Future<Output = Result<(), String>>;
}

/// Handles one request the way every Stockroom custom resource does: a Create or Update runs
/// `apply` on the resource's properties, a Delete leaves everything alone; then answers under
/// `physical_id`. Fails only when the answer could not be delivered.
pub async fn handle<Apply, Applied>(
    request: CloudFormationCustomResourceRequest,
    physical_id: &str,
    respond: &impl Respond,
    apply: Apply,
) -> Result<Response, String>
where
    Apply: FnOnce(Value) -> Applied,
    Applied: std::future::Future<Output = Result<BTreeMap<String, String>, String>>,
{
    let mut request = Request::try_from(request)?;
    let outcome = if request.apply {
        apply(std::mem::take(&mut request.properties)).await
    } else {
        Ok(BTreeMap::new())
    };
    answer(request, physical_id, outcome, respond).await
}

/// Answers `request` with `outcome` under `physical_id` (the same on every create and update, so
/// an update never asks CloudFormation to replace, and delete, the resource). Fails only when the
/// answer could not be delivered (CloudFormation would wait for it).
async fn answer(
    request: Request,
    physical_id: &str,
    outcome: Result<BTreeMap<String, String>, String>,
    respond: &impl Respond,
) -> Result<Response, String> {
    if let Err(reason) = &outcome {
        tracing::error!(%reason, resource = %request.logical_resource_id, "custom resource failed");
    }
    let response = Response {
        status: if outcome.is_ok() { "SUCCESS" } else { "FAILED" },
        reason: outcome.as_ref().err().map(|reason| cut(reason, MAX_REASON)),
        physical_resource_id: physical_id.into(),
        stack_id: request.stack_id,
        request_id: request.request_id,
        logical_resource_id: request.logical_resource_id,
        data: outcome.unwrap_or_default(),
    };
    let body = serde_json::to_string(&response).expect("serialisable");
    respond.respond(&request.response_url, body).await?;
    Ok(response)
}

fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// The production [`Respond`]: an HTTPS PUT with no content type, which is what the presigned
/// URL was signed for (the CloudFormation user guide, *Custom resource response objects*).
pub struct PresignedPut;

impl Respond for PresignedPut {
    async fn respond(&self, url: &str, body: String) -> Result<(), String> {
        let url = url.to_owned();
        tokio::task::spawn_blocking(move || {
            let answer = crate::aws::api::agent(std::time::Duration::from_secs(30))
                .put(&url)
                .header("content-type", "")
                .send(body.as_bytes())
                .map_err(|err| format!("sending the response: {err}"))?;
            match answer.status().as_u16() {
                200..=299 => Ok(()),
                status => Err(format!("the response URL answered {status}")),
            }
        })
        .await
        .map_err(|err| format!("sending the response: {err}"))?
    }
}
