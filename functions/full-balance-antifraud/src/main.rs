//! Full balance anti-fraud webhook: API Gateway → Lambda. All the work is in `shared::webhook`.

use shared::webhook::{FullBalanceAntifraud, serve_policy_webhook};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    serve_policy_webhook::<FullBalanceAntifraud>().await
}
