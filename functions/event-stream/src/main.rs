//! SQS (Pismo's SNS topic) → `shared::pipeline::EventStream`, with partial batch failures.

// The handler's future nests the whole pipeline (message → object → engine → S3 body); its
// layout is computed past the compiler's default query depth (128). No runtime effect.
#![recursion_limit = "256"]

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::pipeline::{EventStream, PipelineConfig};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = PipelineConfig::from_env()?;
    let handler = &EventStream::new(config.build(&shared::aws::load_config().await).await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        handler.handle(event.payload).await
    }))
    .await
}
