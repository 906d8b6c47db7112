//! Step 2: Pismo's JSON Schemas, `json_schemas/<domain>/<event_type>.json` under
//! `SCHEMA_SOURCE` (an S3 location laid out as Pismo's docs bucket, or a local folder).
//!
//! Each schema is fetched and compiled once per cold start, then cached, including the
//! answer "there is no such schema". The draft comes from the schema's `$schema` (Pismo uses
//! 2019-09, `new_bucket_object` declares draft-07); without one, 2019-09 is assumed.
//!
//! `format` is asserted by default ([`SchemaFormats::Assert`], `SCHEMA_FORMATS=assert`): a
//! string whose schema says `"format": "uuid"` (or `date-time`, `date`, `time`, `duration`,
//! `email`, `idn-email`, `hostname`, `ipv4`, `ipv6`, `uri`, `uri-reference`, `iri`,
//! `iri-reference`, `uri-template`, `json-pointer`, `relative-json-pointer`, `regex`) must be
//! one, in whatever draft the schema declares. `uuid` is a 2019-09 format; it is asserted in
//! older drafts too, since a schema that names it means it. Formats jsonschema does not know
//! (`int64`, `idn-hostname` without the crate's `idna` feature, custom names) stay
//! annotations. `SCHEMA_FORMATS=annotate` makes every format an annotation, as the 2019-09
//! and 2020-12 specifications do by default.

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

/// Whether `format` keywords are checked (`SCHEMA_FORMATS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchemaFormats {
    /// Every format jsonschema knows is checked (the default).
    #[default]
    Assert,
    /// `format` is a note only.
    Annotate,
}

impl SchemaFormats {
    /// `assert` or `annotate`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "assert" => Some(Self::Assert),
            "annotate" => Some(Self::Annotate),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assert => "assert",
            Self::Annotate => "annotate",
        }
    }
}

/// A hyphenated UUID (`8-4-4-4-12` hex digits, either case), as jsonschema checks it in
/// 2019-09 and later; registered for the older drafts, which do not define the format.
fn is_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
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

/// Compiles a schema document with formats asserted; the draft comes from `$schema` (2019-09
/// when absent).
pub fn compile(document: &[u8]) -> SchemaEntry {
    compile_with(document, SchemaFormats::Assert)
}

/// Compiles a schema document; the draft comes from `$schema` (2019-09 when absent).
pub fn compile_with(document: &[u8], formats: SchemaFormats) -> SchemaEntry {
    let schema: Value = match serde_json::from_slice(document) {
        Ok(schema) => schema,
        Err(e) => return SchemaEntry::Unusable(format!("schema is not JSON: {e}")),
    };
    let draft = Draft::Draft201909.detect(&schema);
    if draft == Draft::Unknown {
        return SchemaEntry::Unusable("schema declares an unknown $schema".to_owned());
    }
    let assert = formats == SchemaFormats::Assert;
    let options = || {
        let options = jsonschema::options_for::<DocJson>()
            .with_draft(draft)
            .should_validate_formats(assert);
        if assert && draft < Draft::Draft201909 {
            options.with_format("uuid", is_uuid)
        } else {
            options
        }
    };
    // The `regex` engine is the faster one; patterns it cannot take (look-around,
    // back-references) compile with `fancy-regex`, jsonschema's default.
    let fast = options()
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .build(&schema);
    let built = fast.or_else(|_| options().build(&schema));
    match built {
        Ok(validator) => SchemaEntry::Compiled(Box::new(validator)),
        Err(e) => SchemaEntry::Unusable(format!("schema does not compile: {e}")),
    }
}

/// Schemas by `domain/event_type`, compiled once.
#[derive(Debug)]
pub struct SchemaRegistry {
    source: SchemaSource,
    formats: SchemaFormats,
    cache: RwLock<HashMap<String, Arc<SchemaEntry>>>,
}

impl SchemaRegistry {
    /// A registry that asserts formats ([`SchemaFormats::Assert`]).
    pub fn new(source: SchemaSource) -> Self {
        Self::with_formats(source, SchemaFormats::Assert)
    }

    /// A registry whose schemas treat `format` as `formats` says.
    pub fn with_formats(source: SchemaSource, formats: SchemaFormats) -> Self {
        Self {
            source,
            formats,
            cache: RwLock::new(HashMap::new()),
        }
    }

    pub fn formats(&self) -> SchemaFormats {
        self.formats
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
            Some(document) => compile_with(&document, self.formats),
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

    #[test]
    fn formats_are_asserted_in_every_draft_unless_annotate() {
        let schema = |draft: &str| {
            format!(
                r#"{{"$schema":"{draft}","properties":{{
                "id":{{"format":"uuid"}},"at":{{"format":"date-time"}},"day":{{"format":"date"}},
                "mail":{{"format":"email"}},"link":{{"format":"uri"}},"n":{{"format":"int64"}}}}}}"#
            )
        };
        let good = serde_json::json!({
            "id": "0F9E8D7C-6b5a-4321-8fed-cba987654321", "at": "2020-04-01T23:01:00.5+03:00",
            "day": "2020-02-29", "mail": "a@b.example", "link": "s3://bucket/key", "n": "x"
        });
        let bad = [
            ("id", "0f9e8d7c6b5a43218fedcba987654321"),
            ("id", "0f9e8d7c-6b5a-4321-8fed-cba98765432g"),
            ("at", "2020-04-01T23:01:00"),
            ("day", "2021-02-29"),
            ("mail", "a.b.example"),
            ("link", "no scheme"),
        ];
        for draft in [
            "http://json-schema.org/draft-07/schema#",
            "https://json-schema.org/draft/2019-09/schema",
            "https://json-schema.org/draft/2020-12/schema",
        ] {
            let doc = schema(draft);
            let SchemaEntry::Compiled(asserting) = compile(doc.as_bytes()) else {
                panic!("{draft}")
            };
            let SchemaEntry::Compiled(annotating) =
                compile_with(doc.as_bytes(), SchemaFormats::Annotate)
            else {
                panic!("{draft}")
            };
            assert!(valid(&asserting, good.clone()), "{draft}");
            for (field, value) in bad {
                let mut instance = good.clone();
                instance[field] = serde_json::json!(value);
                assert!(
                    !valid(&asserting, instance.clone()),
                    "{draft} {field} {value}"
                );
                assert!(valid(&annotating, instance), "{draft} {field} {value}");
            }
        }
        assert_eq!(
            SchemaFormats::parse(" ANNOTATE"),
            Some(SchemaFormats::Annotate)
        );
        assert_eq!(SchemaFormats::parse("assert"), Some(SchemaFormats::Assert));
        assert_eq!(SchemaFormats::parse("strict"), None);
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
