//! SQS (Pismo's SNS topic) → `shared::pipeline::EventStream`, with partial batch failures.

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
