//! Step 3: an accepted event as a DynamoDB item, put once (a failed condition is a
//! duplicate); the `data` of an event too large for one item goes to S3 first, under a name
//! unique to that data ([`large_name`]).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

use super::Writer;
use crate::event_store::{EventKind, PENDING_SCHEMA, PutResult, StoredEvent, pismo_pk};
use crate::pipeline::PipelineError;
use crate::pipeline::check::{Accepted, EventIds};
use crate::pipeline::report::Report;
use crate::pipeline::schema::schema_path;
use crate::pipeline::sources::{Position, Provenance};

/// Bytes of an event id kept as they are in a large-event name: letters, digits, `-`, `_`
/// and `~` (so a UUID is itself); anything else is percent-encoded, `/` and `.` included.
const NAME_KEEP: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');

/// The object name of a large event's `data` under the large-events location:
/// `<event_id>/<SHA-256 of the data, hex>.json`. Two events with the same id but different
/// data never share a name, so the second (a duplicate, which the conditional put refuses)
/// cannot overwrite the blob the first one's item points to; the same data again (a re-run)
/// rewrites the same bytes.
pub fn large_name(event_id: &str, data: &[u8]) -> String {
    format!(
        "{}/{}.json",
        utf8_percent_encode(event_id, NAME_KEEP),
        hex::encode(Sha256::digest(data))
    )
}

/// The item of an accepted event: its ids, payload, schema status and provenance.
fn stored_event(
    provenance: &Provenance,
    position: Option<Position>,
    ids: EventIds,
    payload: String,
    verified: bool,
    received_at: &str,
) -> StoredEvent {
    let pending = (!verified).then(|| schema_path(&ids.domain, &ids.event_type));
    let mut event = StoredEvent::new(
        EventKind::Pismo,
        pismo_pk(&ids.event_id),
        ids.event_id,
        ids.event_type,
        provenance.channel(),
        payload,
        received_at,
    );
    event.cid = ids.cid;
    event.occurred_at = Some(ids.timestamp);
    let extra = &mut event.extra;
    extra.insert("domain".into(), ids.domain);
    extra.insert("org_id".into(), ids.org_id);
    extra.insert("schema_version".into(), ids.schema_version);
    let status = if verified { "valid" } else { "unverified" };
    extra.insert("schema_status".into(), status.into());
    if let Some(path) = pending {
        // Keys the sparse `unverified-index`: only events awaiting their schema are in it.
        extra.insert(PENDING_SCHEMA.into(), path);
    }
    match provenance {
        Provenance::File { bucket, key } => {
            extra.insert("source_object".into(), format!("s3://{bucket}/{key}"));
            if let Some(p) = position {
                extra.insert("source_offset".into(), p.offset.to_string());
                extra.insert("source_index".into(), p.index.to_string());
            }
        }
        Provenance::Message { message_id, .. } => {
            extra.insert("source_message_id".into(), message_id.clone());
        }
    }
    event
}

impl Writer {
    /// Step 3: one conditional put (after moving a large event's `data` to S3).
    pub async fn store_accepted(
        &self,
        provenance: &Provenance,
        position: Option<Position>,
        accepted: Accepted,
        received_at: &str,
    ) -> Result<Report, PipelineError> {
        let Accepted {
            ids,
            payload,
            large_data,
            verified,
        } = accepted;
        let mut event = stored_event(provenance, position, ids, payload, verified, received_at);
        // The data first, so that no item ever points to a blob not yet written; its name is
        // unique to this data, so a duplicate cannot overwrite the first event's blob.
        let large = large_data.is_some();
        if let Some(data) = large_data {
            let name = large_name(&event.event_id, data.as_bytes());
            let uri = self.large.put(&name, data.into_bytes()).await?;
            event.extra.insert("data_ref".into(), uri);
        }
        // Counts describe what was stored: a duplicate is only a duplicate.
        let mut report = Report::default();
        match self.events.put_once(&event).await? {
            PutResult::New => {
                report.new = 1;
                report.large = u64::from(large);
                report.unverified = u64::from(!verified);
            }
            PutResult::Duplicate => report.duplicate = 1,
        }
        Ok(report)
    }
}
