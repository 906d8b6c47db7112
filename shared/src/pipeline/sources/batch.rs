//! The partial-batch-failure answer of an SQS-fed function (`ReportBatchItemFailures`):
//! messages are handled one at a time, in order; each one that fails is named in
//! `batchItemFailures`, so that SQS delivers only those again. A failed message without an id
//! cannot be named: the whole invocation fails instead (every message comes back, and each
//! write is idempotent). `event-files` (notices through SQS), `event-stream` and the ledger's
//! reconciler all answer through [`BatchAnswer`]:
//!
//! ```ignore
//! let mut answer = BatchAnswer::default();
//! for message in messages {
//!     let id = message_id(&message);
//!     answer.record(&id, handle(message).await)?;
//! }
//! Ok(answer.into_response())
//! ```
//!
//! Written here: `aws_lambda_events` has the response types but nothing that fills them, and
//! the rule about unnamed messages is ours. (A loop rather than a runner taking an async closure: the closure's future nests the whole
//! ingest path and overflows the compiler's layout depth limit in the functions.)

use std::fmt::Display;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse};

/// The answer being built for one batch.
#[derive(Debug, Default)]
pub struct BatchAnswer {
    response: SqsBatchResponse,
}

impl BatchAnswer {
    /// Records the outcome of message `message_id`: a failure is logged and named for retry;
    /// a failure of a message without an id is returned, to fail the whole invocation.
    pub fn record<T, E: Display>(
        &mut self,
        message_id: &str,
        outcome: Result<T, E>,
    ) -> Result<Option<T>, E> {
        match outcome {
            Ok(value) => Ok(Some(value)),
            Err(error) => {
                tracing::warn!(message_id = %message_id, error = %error, "message failed: it will be retried");
                if message_id.is_empty() {
                    return Err(error);
                }
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = message_id.to_owned();
                self.response.batch_item_failures.push(failure);
                Ok(None)
            }
        }
    }

    /// How many messages are named for retry.
    pub fn failed(&self) -> usize {
        self.response.batch_item_failures.len()
    }

    pub fn into_response(self) -> SqsBatchResponse {
        self.response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(response: &SqsBatchResponse) -> Vec<&str> {
        response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    }

    #[test]
    fn names_the_failed_messages_in_order() {
        let mut answer = BatchAnswer::default();
        for id in ["a", "b", "c", "d"] {
            let outcome = if id == "b" || id == "d" {
                Err("no")
            } else {
                Ok(id)
            };
            let kept = answer.record(id, outcome).expect("named");
            assert_eq!(kept.is_some(), outcome.is_ok());
        }
        assert_eq!(answer.failed(), 2);
        assert_eq!(ids(&answer.into_response()), ["b", "d"]);
    }

    #[test]
    fn a_failed_message_without_an_id_fails_the_whole_batch() {
        let mut answer = BatchAnswer::default();
        assert_eq!(answer.record("", Ok::<_, &str>(1)), Ok(Some(1)));
        assert_eq!(answer.record("", Err::<(), _>("down")), Err("down"));
        assert_eq!(answer.failed(), 0);
    }
}
