//! S3 `ObjectCreated` under `main_stream/` → `shared::pipeline::EventFiles`.

use aws_lambda_events::s3::S3Event;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::pipeline::{EventFiles, PipelineConfig};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = PipelineConfig::from_env()?;
    let handler = &EventFiles::new(config.build(&shared::aws::load_config().await).await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| async move {
        handler.handle(event.payload).await
    }))
    .await
}
