//! Driving a webhook the way API Gateway does, for tests, benchmarks and tools: a REST proxy
//! event around a body, through the real `lambda_http` request parsing.

use serde_json::{Value, json};

use super::{Webhook, WebhookRunner};

/// An API Gateway REST proxy event (`httpMethod`, `headers`, `requestContext`, `body`), as
/// API Gateway sends it to a proxy integration.
pub fn apigw_event(method: &str, path: &str, headers: Value, body: &str) -> String {
    json!({
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {},
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": null,
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "resourceId": "abc123",
            "stage": "prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": { "sourceIp": "203.0.113.10" },
            "resourcePath": path,
            "httpMethod": method,
            "apiId": "1234567890",
            "protocol": "HTTP/1.1"
        },
        "body": body,
        "isBase64Encoded": false
    })
    .to_string()
}

/// The headers API Gateway passes on from a real Pismo call, with `token` as `X-Pismo-Sign`.
pub fn pismo_headers(token: &str) -> Value {
    json!({
        "content-type": "application/json",
        "host": "abc123.execute-api.us-east-1.amazonaws.com",
        "user-agent": "Pismo-Webhook/1.0",
        "x-amzn-trace-id": "Root=1-5e6722a7-cc56xmpl46db7ae02d4da47e",
        "x-forwarded-for": "203.0.113.10",
        "x-forwarded-proto": "https",
        "x-pismo-sign": token
    })
}

/// Status and body of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    /// The body as JSON (`null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends a request as given (no signing) to `runner` on `/webhooks/<name>`.
pub async fn send_raw<W: Webhook>(
    runner: &WebhookRunner<W>,
    method: &str,
    headers: Value,
    body: &str,
) -> Result<Answer, serde_json::Error> {
    let event = apigw_event(method, &format!("/webhooks/{}", W::NAME), headers, body);
    let res = runner.handle(lambda_http::request::from_str(&event)?).await;
    let status = res.status().as_u16();
    let body = match res.into_body() {
        lambda_http::Body::Text(t) => t,
        lambda_http::Body::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
        _ => String::new(),
    };
    Ok(Answer { status, body })
}
