//! Helpers for driving webhooks the way API Gateway and Pismo do: REST proxy events, signed
//! by the development signer, through the real `lambda_http` request parsing.

use serde_json::{Value, json};
use shared::signature::signer::{CertServer, DevSigner, SignOptions};
use shared::signature::{Verifier, VerifierConfig};
use shared::webhook::{Webhook, WebhookRunner};

pub use shared::webhook::testing::{Answer, apigw_event};

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
    Ok(shared::webhook::testing::send_raw(runner, method, headers, body).await?)
}
