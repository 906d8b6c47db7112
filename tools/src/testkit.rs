//! Helpers for driving webhooks the way API Gateway and Pismo do: REST proxy events, signed
//! by the development signer, through the real `lambda_http` request parsing.

use serde_json::{Value, json};
use shared::signature::signer::{CertServer, DevSigner, SignOptions};
use shared::signature::{Verifier, VerifierConfig};
use shared::webhook::{Webhook, WebhookRunner};

/// An API Gateway REST proxy event.
pub fn apigw_event(method: &str, path: &str, headers: Value, body: &str) -> String {
    json!({
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {},
        "requestContext": {
            "accountId": "123456789012", "resourceId": "abc123", "stage": "prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "127.0.0.1"}, "resourcePath": path,
            "httpMethod": method, "apiId": "1234567890", "protocol": "HTTP/1.1"
        },
        "body": body,
        "isBase64Encoded": false
    })
    .to_string()
}

/// Status and body of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// A development signer with its certificate endpoint: plays Pismo.
pub struct Pismo {
    pub signer: DevSigner,
    pub certs: CertServer,
}

impl Pismo {
    pub async fn start() -> anyhow::Result<Self> {
        let signer = DevSigner::generate_in_memory()?;
        let certs = CertServer::serve(&[&signer], Some(300)).await?;
        Ok(Self { signer, certs })
    }

    /// A verifier that trusts this signer.
    pub fn verifier(&self) -> Verifier {
        Verifier::new(VerifierConfig::new(self.certs.url()))
    }

    /// Sends `body`, signed, to `runner` as API Gateway would.
    pub async fn send<W: Webhook>(
        &self,
        runner: &WebhookRunner<W>,
        body: &Value,
    ) -> anyhow::Result<Answer> {
        let body = body.to_string();
        let token = self.signer.sign(body.as_bytes(), &SignOptions::new())?;
        let headers = json!({"content-type": "application/json", "x-pismo-sign": token});
        send_raw(runner, "POST", headers, &body).await
    }
}

/// Sends a request as given (no signing).
pub async fn send_raw<W: Webhook>(
    runner: &WebhookRunner<W>,
    method: &str,
    headers: Value,
    body: &str,
) -> anyhow::Result<Answer> {
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
