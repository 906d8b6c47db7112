//! Where schemas are read from: a local folder or an S3 location laid out as Pismo's docs
//! bucket (`json_schemas/<domain>/<event_type>.json`), read once or conditionally on the
//! revision read before.

use std::path::PathBuf;
use std::time::SystemTime;

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::operation::get_object::GetObjectError;

use crate::pipeline::store::blob::S3Uri;

/// Where schemas are read from.
#[derive(Debug, Clone)]
pub enum SchemaLocation {
    /// A folder holding `json_schemas/`.
    Local(PathBuf),
    /// A bucket (and prefix) holding `json_schemas/`.
    S3 {
        client: aws_sdk_s3::Client,
        location: S3Uri,
    },
}

/// Reading a schema failed for a reason other than its absence: the caller retries later.
#[derive(Debug, Clone, thiserror::Error)]
#[error("reading schema {path} failed: {message}")]
pub struct SchemaError {
    pub path: String,
    pub message: String,
}

/// `json_schemas/<domain>/<event_type>.json`.
pub fn schema_path(domain: &str, event_type: &str) -> String {
    format!("json_schemas/{domain}/{event_type}.json")
}

/// What identifies the version of a schema document that was read: the S3 ETag or the
/// file's modification time. A conditional read sends it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaRevision {
    ETag(String),
    Modified(SystemTime),
}

/// The answer of a conditional read ([`SchemaLocation::fetch_if_changed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The document is still the version that was given.
    Unchanged,
    /// There is no such document.
    Missing,
    /// The document, and its version when the source names one.
    Found {
        document: Vec<u8>,
        version: Option<SchemaRevision>,
    },
}

impl SchemaLocation {
    /// `s3://...` is S3 (read with `client`), anything else a local folder.
    pub fn parse(text: &str, client: impl FnOnce() -> aws_sdk_s3::Client) -> Option<Self> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        if text.starts_with("s3://") {
            let location = S3Uri::parse(text)?;
            Some(Self::S3 {
                client: client(),
                location,
            })
        } else {
            Some(Self::Local(PathBuf::from(text)))
        }
    }

    /// For logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Local(path) => path.display().to_string(),
            Self::S3 { location, .. } => location.to_string(),
        }
    }

    /// The schema document, or `None` when it does not exist.
    pub async fn fetch(&self, path: &str) -> Result<Option<Vec<u8>>, SchemaError> {
        match self.fetch_if_changed(path, None).await? {
            Fetched::Found { document, .. } => Ok(Some(document)),
            Fetched::Missing | Fetched::Unchanged => Ok(None),
        }
    }

    /// One read of the schema document, conditional on `known` (the version read before):
    /// S3 `GetObject` with `If-None-Match` on the ETag (a 304 answer is [`Fetched::Unchanged`]),
    /// or for a folder the file's modification time (the file is read only when it differs).
    pub async fn fetch_if_changed(
        &self,
        path: &str,
        known: Option<&SchemaRevision>,
    ) -> Result<Fetched, SchemaError> {
        let error = |message: String| SchemaError {
            path: path.to_owned(),
            message,
        };
        match self {
            Self::Local(root) => {
                let file = root.join(path);
                let modified = match tokio::fs::metadata(&file).await {
                    Ok(meta) => meta.modified().ok(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Ok(Fetched::Missing);
                    }
                    Err(e) => return Err(error(e.to_string())),
                };
                let version = modified.map(SchemaRevision::Modified);
                if version.is_some() && version.as_ref() == known {
                    return Ok(Fetched::Unchanged);
                }
                match tokio::fs::read(&file).await {
                    Ok(document) => Ok(Fetched::Found { document, version }),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Fetched::Missing),
                    Err(e) => Err(error(e.to_string())),
                }
            }
            Self::S3 { client, location } => {
                let etag = match known {
                    Some(SchemaRevision::ETag(etag)) => Some(etag.clone()),
                    _ => None,
                };
                let result = client
                    .get_object()
                    .bucket(&location.bucket)
                    .key(location.key(path))
                    .set_if_none_match(etag)
                    .send()
                    .await;
                match result {
                    Ok(output) => {
                        let version = output.e_tag.clone().map(SchemaRevision::ETag);
                        let body = output
                            .body
                            .collect()
                            .await
                            .map_err(|e| error(e.to_string()))?;
                        Ok(Fetched::Found {
                            document: body.into_bytes().to_vec(),
                            version,
                        })
                    }
                    Err(e) => {
                        // S3 answers a matching If-None-Match with 304 Not Modified and no
                        // body; the SDK has no modelled error for it, only the status.
                        let status = e.raw_response().map(|r| r.status().as_u16());
                        if status == Some(304) {
                            return Ok(Fetched::Unchanged);
                        }
                        let message = DisplayErrorContext(&e).to_string();
                        match e.into_service_error() {
                            GetObjectError::NoSuchKey(_) => Ok(Fetched::Missing),
                            // A HEAD-like 404 without a modelled body (moto, some proxies).
                            _ if status == Some(404) => Ok(Fetched::Missing),
                            _ => Err(error(message)),
                        }
                    }
                }
            }
        }
    }
}
