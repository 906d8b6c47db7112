//! Banking transactions anti-fraud webhook: API Gateway → Lambda. All the work is in `shared::webhook`.

use shared::webhook::{BankingAntifraud, serve_policy_webhook};

/// The webhooks' allocator, by measurement (`shared::WebhookAllocator`).
#[global_allocator]
static ALLOCATOR: shared::WebhookAllocator = shared::WebhookAllocator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    serve_policy_webhook::<BankingAntifraud>().await
}
