//! Aritma CloudEvents endpoint: API Gateway → Lambda → EVENTS_TABLE. All the work is in
//! `shared::aritma`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::aritma::serve_from_env().await
}
