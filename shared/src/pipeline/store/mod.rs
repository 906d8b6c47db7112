//! Steps 3 and 4, the writes: each accepted event stored once ([`events`]), anything else
//! quarantined with its reason ([`quarantine`]), both through [`Writer`]; [`blob`] is where
//! objects go (S3 in Lambda, memory in tests).
//!
//! Every write is idempotent (a conditional put; a record or blob name fixed by what it
//! holds), so a retried object completes without counting anything twice.

use std::sync::Arc;

use blob::BlobSink;

use crate::event_store::EventStore;

pub mod blob;
pub mod events;
pub mod quarantine;

/// The three places the pipeline writes to. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    /// `EVENTS_TABLE`: one conditional put per event.
    pub events: Arc<dyn EventStore>,
    /// `QUARANTINE_URI`: one record per fragment or message not stored.
    pub quarantine: Arc<dyn BlobSink>,
    /// `LARGE_EVENT_URI`: the `data` of events over the item limit.
    pub large: Arc<dyn BlobSink>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}
