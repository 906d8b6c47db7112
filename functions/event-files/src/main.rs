//! Objects created under `main_stream/` → `shared::pipeline::EventFiles`: S3 notifications
//! (direct or through SQS, with partial batch failures), EventBridge `Object Created` events,
//! S3's test event (skipped), and the backfill state machine's ingest input
//! (`{"ingest":{"bucket":...,"key":...}}`, only for buckets in `INGEST_BUCKETS`).

// The handler's future nests the whole pipeline (message → object → engine → S3 body); its
// layout is computed past the compiler's default query depth (128). No runtime effect.
#![recursion_limit = "256"]

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::pipeline::{EventFiles, PipelineConfig};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = PipelineConfig::from_env()?;
    let handler = &EventFiles::new(config.build(&shared::aws::load_config().await).await?);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            handler.handle(event.payload).await
        },
    ))
    .await
}
