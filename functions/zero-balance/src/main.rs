//! Zero balance validations webhook: API Gateway → Lambda. The issuer's anti-fraud rules and
//! account/limit checks against the DynamoDB ledger; all the work is in `shared`.

/// The webhooks' allocator, by measurement (`shared::WebhookAllocator`).
#[global_allocator]
static ALLOCATOR: shared::WebhookAllocator = shared::WebhookAllocator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::webhook::serve_zero_balance().await
}
