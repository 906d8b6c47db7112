//! Card tokenization anti-fraud webhook: API Gateway → Lambda. All the work is in `shared::webhook`.

use shared::webhook::{CardTokenization, serve_policy_webhook};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    serve_policy_webhook::<CardTokenization>().await
}
