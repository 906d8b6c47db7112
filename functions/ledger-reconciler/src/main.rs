//! The reconciliation queue → `shared::reconcile::SinkDrain`, with partial batch failures.

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::reconcile::SinkDrain;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let drain = &SinkDrain::from_env().await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(drain.handle(event.payload).await?)
    }))
    .await
}
