//! Step 2: Pismo's JSON Schemas, `json_schemas/<domain>/<event_type>.json` under
//! `SCHEMA_SOURCE` (an S3 location laid out as Pismo's docs bucket, or a local folder).
//!
//! Each schema is fetched and compiled once per cold start, then cached, including the
//! answer "there is no such schema". The draft comes from the schema's `$schema` (Pismo uses
//! 2019-09, `new_bucket_object` declares draft-07); without one, 2019-09 is assumed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use aws_sdk_s3::error::DisplayErrorContext;
use jsonschema::{Draft, Validator};
use serde_json::Value;

use super::doc::DocJson;
use super::sink::S3Uri;

/// Where schemas are read from.
#[derive(Debug, Clone)]
pub enum SchemaSource {
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

impl SchemaSource {
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
        let error = |message: String| SchemaError {
            path: path.to_owned(),
            message,
        };
        match self {
            Self::Local(root) => match tokio::fs::read(root.join(path)).await {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(error(e.to_string())),
            },
            Self::S3 { client, location } => {
                let result = client
                    .get_object()
                    .bucket(&location.bucket)
                    .key(location.key(path))
                    .send()
                    .await;
                match result {
                    Ok(output) => {
                        let body = output
                            .body
                            .collect()
                            .await
                            .map_err(|e| error(e.to_string()))?;
                        Ok(Some(body.into_bytes().to_vec()))
                    }
                    Err(e) => {
                        let not_found = e.as_service_error().is_some_and(|s| s.is_no_such_key())
                            || e.raw_response().is_some_and(|r| r.status().as_u16() == 404);
                        if not_found {
                            Ok(None)
                        } else {
                            Err(error(DisplayErrorContext(&e).to_string()))
                        }
                    }
                }
            }
        }
    }
}

/// A cached schema lookup.
#[derive(Debug)]
pub enum SchemaEntry {
    /// The compiled schema (validating [`super::doc::DocValue`] instances).
    Compiled(Box<Validator<DocJson>>),
    /// No schema exists for this domain and event type.
    Missing,
    /// The document exists but cannot be used (not JSON, unknown `$schema`, bad keyword,
    /// unresolvable `$ref`).
    Unusable(String),
}

/// Compiles a schema document; the draft comes from `$schema` (2019-09 when absent).
pub fn compile(document: &[u8]) -> SchemaEntry {
    let schema: Value = match serde_json::from_slice(document) {
        Ok(schema) => schema,
        Err(e) => return SchemaEntry::Unusable(format!("schema is not JSON: {e}")),
    };
    let draft = Draft::Draft201909.detect(&schema);
    if draft == Draft::Unknown {
        return SchemaEntry::Unusable("schema declares an unknown $schema".to_owned());
    }
    // The `regex` engine is the faster one; patterns it cannot take (look-around,
    // back-references) compile with `fancy-regex`, jsonschema's default.
    let fast = jsonschema::options_for::<DocJson>()
        .with_draft(draft)
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .build(&schema);
    let built = fast.or_else(|_| {
        jsonschema::options_for::<DocJson>()
            .with_draft(draft)
            .build(&schema)
    });
    match built {
        Ok(validator) => SchemaEntry::Compiled(Box::new(validator)),
        Err(e) => SchemaEntry::Unusable(format!("schema does not compile: {e}")),
    }
}

/// Schemas by `domain/event_type`, compiled once.
#[derive(Debug)]
pub struct SchemaRegistry {
    source: SchemaSource,
    cache: RwLock<HashMap<String, Arc<SchemaEntry>>>,
}

impl SchemaRegistry {
    pub fn new(source: SchemaSource) -> Self {
        Self {
            source,
            cache: RwLock::new(HashMap::new()),
        }
    }

    pub fn source(&self) -> &SchemaSource {
        &self.source
    }

    /// The cached entry, if this schema was looked up before.
    pub fn cached(&self, domain: &str, event_type: &str) -> Option<Arc<SchemaEntry>> {
        self.cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&schema_path(domain, event_type))
            .cloned()
    }

    /// The entry, fetched and compiled on first use. A failed fetch is not cached.
    pub async fn get(
        &self,
        domain: &str,
        event_type: &str,
    ) -> Result<Arc<SchemaEntry>, SchemaError> {
        if let Some(entry) = self.cached(domain, event_type) {
            return Ok(entry);
        }
        let path = schema_path(domain, event_type);
        let entry = match self.source.fetch(&path).await? {
            Some(document) => compile(&document),
            None => SchemaEntry::Missing,
        };
        match &entry {
            SchemaEntry::Compiled(_) => tracing::info!(schema = %path, "schema compiled"),
            SchemaEntry::Missing => tracing::warn!(schema = %path, "schema missing"),
            SchemaEntry::Unusable(reason) => {
                tracing::error!(schema = %path, reason = %reason, "schema unusable")
            }
        }
        let entry = Arc::new(entry);
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(path)
            .or_insert_with(|| entry.clone());
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::doc::parse;

    fn valid(v: &Validator<DocJson>, instance: serde_json::Value) -> bool {
        let text = instance.to_string();
        v.is_valid(&parse(text.as_bytes()).unwrap())
    }

    #[test]
    fn draft_comes_from_dollar_schema() {
        // `exclusiveMinimum` as a boolean is draft-04 only; draft-07 and 2019-09 reject it.
        let seven = br#"{"$schema":"http://json-schema.org/draft-07/schema#","type":"object",
            "properties":{"a":{"type":"integer"}},"required":["a"]}"#;
        let SchemaEntry::Compiled(v) = compile(seven) else {
            panic!("draft-07 schema")
        };
        assert!(valid(&v, serde_json::json!({"a": 1})));
        assert!(!valid(&v, serde_json::json!({"a": "x"})));

        // 2019-09 keyword: dependentRequired is ignored by draft-07, enforced by 2019-09.
        let dependent = |schema: &str| {
            let doc = format!(r#"{{"$schema":"{schema}","dependentRequired":{{"a":["b"]}}}}"#);
            match compile(doc.as_bytes()) {
                SchemaEntry::Compiled(v) => valid(&v, serde_json::json!({"a": 1})),
                other => panic!("{other:?}"),
            }
        };
        assert!(!dependent("https://json-schema.org/draft/2019-09/schema"));
        assert!(dependent("http://json-schema.org/draft-07/schema#"));
        // Without $schema: 2019-09.
        let SchemaEntry::Compiled(v) = compile(br#"{"dependentRequired":{"a":["b"]}}"#) else {
            panic!("default draft")
        };
        assert!(!valid(&v, serde_json::json!({"a": 1})));

        // A look-ahead needs fancy-regex.
        let SchemaEntry::Compiled(v) = compile(br#"{"pattern":"^(?=.*[0-9])[a-z0-9]+$"}"#) else {
            panic!("look-ahead pattern")
        };
        assert!(valid(&v, serde_json::json!("ab1")));
        assert!(!valid(&v, serde_json::json!("abc")));
        assert!(matches!(compile(b"{"), SchemaEntry::Unusable(_)));
        assert!(matches!(
            compile(br#"{"$schema":"https://example.com/custom"}"#),
            SchemaEntry::Unusable(_)
        ));
    }

    #[tokio::test]
    async fn local_registry_caches_found_and_missing() {
        let dir = std::env::temp_dir().join(format!("schemas-{}", std::process::id()));
        let folder = dir.join("json_schemas/account");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("x-1.json"), br#"{"type":"object"}"#).unwrap();
        let registry = SchemaRegistry::new(SchemaSource::Local(dir.clone()));
        assert!(registry.cached("account", "x-1").is_none());
        let entry = registry.get("account", "x-1").await.unwrap();
        assert!(matches!(*entry, SchemaEntry::Compiled(_)));
        let missing = registry.get("account", "y-1").await.unwrap();
        assert!(matches!(*missing, SchemaEntry::Missing));
        // Cached: removing the files changes nothing until the next cold start.
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(
            *registry.get("account", "x-1").await.unwrap(),
            SchemaEntry::Compiled(_)
        ));
        assert!(registry.cached("account", "y-1").is_some());
    }
}
