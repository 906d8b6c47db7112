//! Where the pipeline writes objects: quarantine records and the `data` of events too large
//! for one DynamoDB item. An S3 location (`s3://bucket/prefix`) in Lambda, memory in tests.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;

/// `s3://bucket/prefix`: a bucket and a key prefix without surrounding slashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Uri {
    pub bucket: String,
    pub prefix: String,
}

impl S3Uri {
    /// Parses `s3://bucket`, `s3://bucket/` or `s3://bucket/some/prefix/`.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.trim().strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            return None;
        }
        Some(Self {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        })
    }

    /// `prefix/name`, or `name` without a prefix.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    /// The same bucket with another prefix.
    pub fn with_prefix(&self, prefix: &str) -> Self {
        Self {
            bucket: self.bucket.clone(),
            prefix: prefix.trim_matches('/').to_owned(),
        }
    }
}

impl fmt::Display for S3Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// A write failed; the caller fails its invocation so that it is retried.
#[derive(Debug, thiserror::Error)]
#[error("writing {uri} failed: {message}")]
pub struct SinkError {
    pub uri: String,
    pub message: String,
}

/// Writes whole objects under names relative to its location. Writing the same name again
/// replaces the object, so a retried run leaves the same objects.
#[async_trait]
pub trait BlobSink: Send + Sync {
    /// Writes `body` as `name`; returns the object's URI.
    async fn put(&self, name: &str, body: Vec<u8>) -> Result<String, SinkError>;
}

/// Objects in S3 under a prefix.
#[derive(Debug, Clone)]
pub struct S3BlobSink {
    client: aws_sdk_s3::Client,
    location: S3Uri,
}

impl S3BlobSink {
    pub fn new(client: aws_sdk_s3::Client, location: S3Uri) -> Self {
        Self { client, location }
    }

    pub fn location(&self) -> &S3Uri {
        &self.location
    }
}

#[async_trait]
impl BlobSink for S3BlobSink {
    async fn put(&self, name: &str, body: Vec<u8>) -> Result<String, SinkError> {
        let key = self.location.key(name);
        let uri = format!("s3://{}/{key}", self.location.bucket);
        self.client
            .put_object()
            .bucket(&self.location.bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| SinkError {
                uri: uri.clone(),
                message: DisplayErrorContext(&e).to_string(),
            })?;
        Ok(uri)
    }
}

/// Objects in memory, by name (tests, benchmarks, local runs).
#[derive(Debug, Default)]
pub struct MemoryBlobSink {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryBlobSink {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every object, by name.
    pub fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        self.objects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl BlobSink for MemoryBlobSink {
    async fn put(&self, name: &str, body: Vec<u8>) -> Result<String, SinkError> {
        self.objects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), body);
        Ok(format!("memory:{name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_uris() {
        let uri = S3Uri::parse("s3://my-bucket/quarantine/").unwrap();
        assert_eq!(uri.bucket, "my-bucket");
        assert_eq!(uri.prefix, "quarantine");
        assert_eq!(uri.key("a/b.json"), "quarantine/a/b.json");
        assert_eq!(uri.to_string(), "s3://my-bucket/quarantine");
        let root = S3Uri::parse("s3://my-bucket").unwrap();
        assert_eq!(root.key("x"), "x");
        assert_eq!(root.to_string(), "s3://my-bucket");
        assert_eq!(root.with_prefix("/p/").key("x"), "p/x");
        assert!(S3Uri::parse("https://x/y").is_none());
        assert!(S3Uri::parse("s3://UPPER/x").is_none());
        assert!(S3Uri::parse("s3:///x").is_none());
    }
}
