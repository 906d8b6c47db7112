//! Sources: where events come in, and the provenance each one carries into the store.
//!
//! - [`files`]: `event-files`, one object per notification ([`notification`] reads the five
//!   shapes it arrives in, [`key`] the object keys);
//! - [`stream`]: `event-stream`, one SQS batch of events (and announced files);
//! - [`replay`]: a prefix or a date range of event files again;
//! - [`revalidate`]: stored events still awaiting their schema;
//! - [`batch`]: the SQS partial-batch-failure answer both queue-fed functions give.

use std::fmt;

use serde_json::{Map, Value, json};

pub mod batch;
pub mod files;
pub mod key;
pub mod notification;
pub mod replay;
pub mod revalidate;
pub mod stream;

/// Where a fragment or event came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// An event file (`s3://bucket/key`).
    File { bucket: String, key: String },
    /// A real-time message (its SQS message id, and the queue ARN when known).
    Message {
        message_id: String,
        queue: Option<String>,
    },
}

impl Provenance {
    pub fn file(bucket: impl Into<String>, key: impl Into<String>) -> Self {
        Self::File {
            bucket: bucket.into(),
            key: key.into(),
        }
    }

    pub fn message(message_id: impl Into<String>, queue: Option<String>) -> Self {
        Self::Message {
            message_id: message_id.into(),
            queue,
        }
    }

    /// `file` or `stream`: the `source` attribute of stored items.
    pub fn channel(&self) -> &'static str {
        match self {
            Provenance::File { .. } => "file",
            Provenance::Message { .. } => "stream",
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        match self {
            Provenance::File { bucket, key } => json!({"bucket": bucket, "key": key}),
            Provenance::Message { message_id, queue } => {
                let mut source = Map::new();
                source.insert("message_id".into(), json!(message_id));
                if let Some(queue) = queue {
                    source.insert("queue".into(), json!(queue));
                }
                Value::Object(source)
            }
        }
    }
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Provenance::File { bucket, key } => write!(f, "s3://{bucket}/{key}"),
            Provenance::Message { message_id, .. } => write!(f, "message {message_id}"),
        }
    }
}

/// Where a fragment lies in a file's decompressed content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 0-based ordinal of the fragment.
    pub index: u64,
    /// Byte offset of its first byte.
    pub offset: u64,
    /// Its length in bytes.
    pub length: u64,
}
