//! `schemas sync`: mirrors Pismo's schema tree (`s3://pismo-data-<env>-dataplatform-docs/
//! json_schemas`) into the issuer's own bucket, so that `SCHEMA_SOURCE` can point at a
//! versioned copy the issuer controls.
//!
//! Both trees are listed. An object whose relative name is only in the source is added; one
//! whose ETag differs is changed; one only in the destination is removed (a versioned bucket
//! keeps its history). The destination object keeps the source ETag as metadata
//! (`source-etag`), so an object whose own ETag differs (SSE-KMS, another upload path) is
//! still recognised as unchanged after one `HeadObject`. An empty source listing removes
//! nothing: it is an error (a wrong prefix or missing access must not empty the copy).

use std::collections::BTreeMap;

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use serde::Serialize;

use crate::pipeline::store::blob::S3Uri;

/// The metadata key (`x-amz-meta-source-etag`) holding the source object's ETag.
pub const SOURCE_ETAG: &str = "source-etag";

/// What a sync does (or, with `--dry-run`, would do), by name relative to both prefixes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncPlan {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: usize,
}

/// A listing, read or write failed; what was done before stays done (a rerun completes it).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{uri}: {message}")]
    S3 { uri: String, message: String },
    #[error("{0} lists no object: nothing is removed from the copy")]
    EmptySource(String),
}

fn s3_error<E: std::error::Error + 'static>(uri: String) -> impl FnOnce(E) -> SyncError {
    move |e| SyncError::S3 {
        uri,
        message: DisplayErrorContext(&e).to_string(),
    }
}

/// Relative name → ETag of every object under `location` (folder markers left out).
async fn list(
    client: &aws_sdk_s3::Client,
    location: &S3Uri,
) -> Result<BTreeMap<String, String>, SyncError> {
    let prefix = location.key("");
    let pages: Vec<_> = client
        .list_objects_v2()
        .bucket(&location.bucket)
        .prefix(&prefix)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(s3_error(location.to_string()))?;
    Ok(pages
        .into_iter()
        .flat_map(|page| page.contents.unwrap_or_default())
        .filter_map(|o| {
            let name = o.key?.strip_prefix(&prefix)?.to_owned();
            (!name.is_empty() && !name.ends_with('/')).then(|| (name, o.e_tag.unwrap_or_default()))
        })
        .collect())
}

/// Compares the two trees (the source read with `from_s3`, the copy with `to_s3`).
pub async fn plan(
    from_s3: &aws_sdk_s3::Client,
    from: &S3Uri,
    to_s3: &aws_sdk_s3::Client,
    to: &S3Uri,
) -> Result<SyncPlan, SyncError> {
    let source = list(from_s3, from).await?;
    if source.is_empty() {
        return Err(SyncError::EmptySource(from.to_string()));
    }
    let copy = list(to_s3, to).await?;
    let mut plan = SyncPlan::default();
    for (name, etag) in &source {
        match copy.get(name) {
            None => plan.added.push(name.clone()),
            Some(theirs) if theirs == etag => plan.unchanged += 1,
            Some(_) => {
                let key = to.key(name);
                let head = to_s3
                    .head_object()
                    .bucket(&to.bucket)
                    .key(&key)
                    .send()
                    .await
                    .map_err(s3_error(format!("s3://{}/{key}", to.bucket)))?;
                let recorded = head.metadata().and_then(|m| m.get(SOURCE_ETAG));
                if recorded == Some(etag) {
                    plan.unchanged += 1;
                } else {
                    plan.changed.push(name.clone());
                }
            }
        }
    }
    plan.removed = copy
        .keys()
        .filter(|name| !source.contains_key(*name))
        .cloned()
        .collect();
    Ok(plan)
}

/// Carries out `plan`: copies added and changed objects (read from the source, written to
/// the copy with their source ETag), then deletes removed ones. `progress` is called with
/// (writes done, writes) before each write and once at the end.
pub async fn apply(
    plan: &SyncPlan,
    from_s3: &aws_sdk_s3::Client,
    from: &S3Uri,
    to_s3: &aws_sdk_s3::Client,
    to: &S3Uri,
    mut progress: impl FnMut(usize, usize),
) -> Result<(), SyncError> {
    let writes = plan.added.len() + plan.changed.len() + plan.removed.len();
    let mut done = 0;
    for name in plan.added.iter().chain(&plan.changed) {
        progress(done, writes);
        done += 1;
        let source_key = from.key(name);
        let object = from_s3
            .get_object()
            .bucket(&from.bucket)
            .key(&source_key)
            .send()
            .await
            .map_err(s3_error(format!("s3://{}/{source_key}", from.bucket)))?;
        let etag = object.e_tag.clone().unwrap_or_default();
        let content_type = object
            .content_type
            .clone()
            .unwrap_or_else(|| "application/json".to_owned());
        let body = object
            .body
            .collect()
            .await
            .map_err(s3_error(format!("s3://{}/{source_key}", from.bucket)))?;
        let key = to.key(name);
        to_s3
            .put_object()
            .bucket(&to.bucket)
            .key(&key)
            .content_type(content_type)
            .metadata(SOURCE_ETAG, etag)
            .body(ByteStream::from(body.into_bytes()))
            .send()
            .await
            .map_err(s3_error(format!("s3://{}/{key}", to.bucket)))?;
    }
    for name in &plan.removed {
        progress(done, writes);
        done += 1;
        let key = to.key(name);
        to_s3
            .delete_object()
            .bucket(&to.bucket)
            .key(&key)
            .send()
            .await
            .map_err(s3_error(format!("s3://{}/{key}", to.bucket)))?;
    }
    progress(writes, writes);
    Ok(())
}

/// Plans and, unless `dry_run`, applies the sync; returns the plan.
pub async fn sync(
    from_s3: &aws_sdk_s3::Client,
    from: &S3Uri,
    to_s3: &aws_sdk_s3::Client,
    to: &S3Uri,
    dry_run: bool,
    progress: impl FnMut(usize, usize),
) -> Result<SyncPlan, SyncError> {
    let plan = plan(from_s3, from, to_s3, to).await?;
    if !dry_run {
        apply(&plan, from_s3, from, to_s3, to, progress).await?;
    }
    tracing::info!(
        from = %from,
        to = %to,
        added = plan.added.len(),
        changed = plan.changed.len(),
        removed = plan.removed.len(),
        unchanged = plan.unchanged,
        dry_run,
        "schemas synced"
    );
    Ok(plan)
}
