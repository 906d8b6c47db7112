//! Step 2: Pismo's JSON Schemas, `json_schemas/<domain>/<event_type>.json` under
//! `SCHEMA_SOURCE` (an S3 location laid out as Pismo's docs bucket, or a local folder).
//!
//! Each schema is fetched and compiled on first use, then cached, including the answer
//! "there is no such schema". A cached entry is re-checked once `SCHEMA_REFRESH_SECS` have
//! passed (default 300), by one conditional read: S3 `If-None-Match` on the ETag, or the
//! file's modification time; a new version that does not compile leaves the last good one
//! in use ([`SchemaRegistry`]). The draft comes from the schema's `$schema` (Pismo uses
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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonschema::{Draft, Validator};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::location::{Fetched, SchemaError, SchemaLocation, SchemaRevision, schema_path};
use crate::clock::{Clock, SystemClock};
use crate::pipeline::check::json::DocJson;

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
    /// The compiled schema (validating [`crate::pipeline::check::json::DocValue`] instances).
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

/// The default of `SCHEMA_REFRESH_SECS`: a cached schema (found or missing) is re-checked at
/// most this long after it was last read.
pub const DEFAULT_SCHEMA_REFRESH: Duration = Duration::from_secs(300);

/// Counts of schema reads since the last [`SchemaRegistry::take_stats`] (EMF metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchemaStats {
    /// Conditional re-reads of cached schemas (found or missing).
    pub refreshes: u64,
    /// Cached entries replaced by a new version (a new, corrected, removed or appeared
    /// schema).
    pub changes: u64,
    /// Documents that did not compile (at first read or on refresh).
    pub compile_failures: u64,
    /// Reads that found no schema.
    pub misses: u64,
}

impl SchemaStats {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Default)]
struct Counters {
    refreshes: AtomicU64,
    changes: AtomicU64,
    compile_failures: AtomicU64,
    misses: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// One cached schema.
#[derive(Debug)]
struct Slot {
    entry: Arc<SchemaEntry>,
    /// The version last read (sent back on the next conditional read).
    version: Option<SchemaRevision>,
    /// SHA-256 of the document last read: a new version with the same bytes is not
    /// recompiled.
    digest: Option<[u8; 32]>,
    checked_at: i64,
    /// When a caller started the refresh that is in flight; others keep the entry meanwhile.
    refreshing_since: Option<i64>,
}

fn digest(document: &[u8]) -> [u8; 32] {
    Sha256::digest(document).into()
}

/// Schemas by `domain/event_type`, compiled on first use and re-checked once the refresh
/// interval has passed.
///
/// A lookup whose entry is due makes the one conditional read itself (no background task:
/// a Lambda environment is frozen between invocations); lookups meanwhile, on other threads,
/// keep using the cached entry. An unchanged schema costs that one small request and no
/// recompile. A new version that does not compile is counted and logged, and the last good
/// version stays in use. A refresh that fails to read keeps the entry until the next
/// interval.
#[derive(Debug)]
pub struct SchemaRegistry {
    source: SchemaLocation,
    formats: SchemaFormats,
    refresh: Duration,
    clock: Arc<dyn Clock>,
    cache: RwLock<HashMap<String, Slot>>,
    counters: Counters,
}

impl SchemaRegistry {
    /// A registry that asserts formats ([`SchemaFormats::Assert`]).
    pub fn new(source: SchemaLocation) -> Self {
        Self::with_formats(source, SchemaFormats::Assert)
    }

    /// A registry whose schemas treat `format` as `formats` says (refreshed every
    /// [`DEFAULT_SCHEMA_REFRESH`] by the system clock).
    pub fn with_formats(source: SchemaLocation, formats: SchemaFormats) -> Self {
        Self {
            source,
            formats,
            refresh: DEFAULT_SCHEMA_REFRESH,
            clock: Arc::new(SystemClock),
            cache: RwLock::new(HashMap::new()),
            counters: Counters::default(),
        }
    }

    /// The same registry with another refresh interval and clock.
    pub fn with_refresh(mut self, refresh: Duration, clock: Arc<dyn Clock>) -> Self {
        self.refresh = refresh;
        self.clock = clock;
        self
    }

    pub fn formats(&self) -> SchemaFormats {
        self.formats
    }

    pub fn source(&self) -> &SchemaLocation {
        &self.source
    }

    pub fn refresh_interval(&self) -> Duration {
        self.refresh
    }

    /// The counts since the last call, which resets them.
    pub fn take_stats(&self) -> SchemaStats {
        let take = |c: &AtomicU64| c.swap(0, Ordering::Relaxed);
        SchemaStats {
            refreshes: take(&self.counters.refreshes),
            changes: take(&self.counters.changes),
            compile_failures: take(&self.counters.compile_failures),
            misses: take(&self.counters.misses),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Slot>> {
        self.cache.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Slot>> {
        self.cache.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `slot` is to be re-read now (and nobody else is doing it).
    fn due(&self, slot: &Slot, now: i64) -> bool {
        // Epoch milliseconds: a wall clock set back only delays a refresh.
        let since = |at: i64| Duration::from_millis(u64::try_from(now - at).unwrap_or(0));
        let in_flight = slot
            .refreshing_since
            .is_some_and(|at| since(at) < self.refresh);
        !in_flight && since(slot.checked_at) >= self.refresh
    }

    /// The cached entry, if this schema was looked up before (however old).
    pub fn cached(&self, domain: &str, event_type: &str) -> Option<Arc<SchemaEntry>> {
        self.read()
            .get(&schema_path(domain, event_type))
            .map(|slot| slot.entry.clone())
    }

    /// The cached entry unless it is due for a refresh (then [`SchemaRegistry::get`] reads it).
    pub fn current(&self, domain: &str, event_type: &str) -> Option<Arc<SchemaEntry>> {
        let now = self.clock.now_millis();
        self.read()
            .get(&schema_path(domain, event_type))
            .filter(|slot| !self.due(slot, now))
            .map(|slot| slot.entry.clone())
    }

    /// The entry: read and compiled on first use, re-read (conditionally) once the refresh
    /// interval has passed. A failed first read is not cached.
    pub async fn get(
        &self,
        domain: &str,
        event_type: &str,
    ) -> Result<Arc<SchemaEntry>, SchemaError> {
        // The common case under a read lock only.
        if let Some(entry) = self.current(domain, event_type) {
            return Ok(entry);
        }
        let path = schema_path(domain, event_type);
        let now = self.clock.now_millis();
        let known = {
            let mut cache = self.write();
            match cache.get_mut(&path) {
                Some(slot) if !self.due(slot, now) => return Ok(slot.entry.clone()),
                Some(slot) => {
                    slot.refreshing_since = Some(now);
                    Some(slot.version.clone())
                }
                None => None,
            }
        };
        // Boxed: both are rare (a first read, a due refresh), and the handlers' futures stay
        // shallow.
        match known {
            None => Box::pin(self.load(path, now)).await,
            Some(version) => Ok(Box::pin(self.refresh_slot(&path, version, now)).await),
        }
    }

    /// First read.
    async fn load(&self, path: String, now: i64) -> Result<Arc<SchemaEntry>, SchemaError> {
        let (entry, version, digest) = match self.source.fetch_if_changed(&path, None).await? {
            Fetched::Found { document, version } => {
                let entry = compile_with(&document, self.formats);
                (entry, version, Some(digest(&document)))
            }
            Fetched::Missing | Fetched::Unchanged => (SchemaEntry::Missing, None, None),
        };
        match &entry {
            SchemaEntry::Compiled(_) => tracing::info!(schema = %path, "schema compiled"),
            SchemaEntry::Missing => {
                bump(&self.counters.misses);
                tracing::warn!(schema = %path, "schema missing");
            }
            SchemaEntry::Unusable(reason) => {
                bump(&self.counters.compile_failures);
                tracing::error!(schema = %path, reason = %reason, "schema unusable");
            }
        }
        let entry = Arc::new(entry);
        let mut cache = self.write();
        let slot = cache.entry(path).or_insert_with(|| Slot {
            entry: entry.clone(),
            version,
            digest,
            checked_at: now,
            refreshing_since: None,
        });
        Ok(slot.entry.clone())
    }

    /// The conditional re-read of a cached schema; whatever happens, an entry is answered.
    async fn refresh_slot(
        &self,
        path: &str,
        version: Option<SchemaRevision>,
        now: i64,
    ) -> Arc<SchemaEntry> {
        let fetched = self.source.fetch_if_changed(path, version.as_ref()).await;
        bump(&self.counters.refreshes);
        // Compiled outside the lock, only when the bytes changed.
        let previous_digest = self.read().get(path).and_then(|slot| slot.digest);
        let update = match fetched {
            Err(e) => {
                tracing::warn!(schema = %path, error = %e, "schema refresh failed: the cached entry stays in use");
                None
            }
            Ok(Fetched::Unchanged) => None,
            Ok(Fetched::Missing) => {
                bump(&self.counters.misses);
                Some((SchemaEntry::Missing, None, None))
            }
            Ok(Fetched::Found { document, version }) => {
                let new_digest = digest(&document);
                if previous_digest == Some(new_digest) {
                    // Same bytes under a new version: only the version is kept.
                    if let Some(slot) = self.write().get_mut(path) {
                        slot.version = version;
                    }
                    None
                } else {
                    Some((
                        compile_with(&document, self.formats),
                        version,
                        Some(new_digest),
                    ))
                }
            }
        };
        let mut cache = self.write();
        let Some(slot) = cache.get_mut(path) else {
            return Arc::new(SchemaEntry::Missing);
        };
        slot.checked_at = now;
        slot.refreshing_since = None;
        let Some((entry, version, digest)) = update else {
            return slot.entry.clone();
        };
        let was_missing = matches!(*slot.entry, SchemaEntry::Missing);
        match &entry {
            SchemaEntry::Missing if was_missing => {}
            SchemaEntry::Missing => {
                bump(&self.counters.changes);
                tracing::warn!(schema = %path, "schema removed");
                slot.entry = Arc::new(entry);
            }
            SchemaEntry::Unusable(reason) if matches!(*slot.entry, SchemaEntry::Compiled(_)) => {
                // The last good version stays; this version is not retried until it changes.
                bump(&self.counters.compile_failures);
                tracing::error!(schema = %path, reason = %reason, "new schema version unusable: the last good version stays in use");
            }
            SchemaEntry::Unusable(reason) => {
                bump(&self.counters.compile_failures);
                bump(&self.counters.changes);
                tracing::error!(schema = %path, reason = %reason, "schema unusable");
                slot.entry = Arc::new(entry);
            }
            SchemaEntry::Compiled(_) => {
                bump(&self.counters.changes);
                tracing::info!(schema = %path, appeared = was_missing, "schema changed: new version compiled");
                slot.entry = Arc::new(entry);
            }
        }
        slot.version = version;
        slot.digest = digest;
        slot.entry.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::pipeline::check::json::parse;
    use std::time::SystemTime;

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
        let registry = SchemaRegistry::new(SchemaLocation::Local(dir.clone()));
        assert!(registry.cached("account", "x-1").is_none());
        let entry = registry.get("account", "x-1").await.unwrap();
        assert!(matches!(*entry, SchemaEntry::Compiled(_)));
        let missing = registry.get("account", "y-1").await.unwrap();
        assert!(matches!(*missing, SchemaEntry::Missing));
        // Cached: removing the files changes nothing until the refresh interval has passed.
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(
            *registry.get("account", "x-1").await.unwrap(),
            SchemaEntry::Compiled(_)
        ));
        assert!(registry.cached("account", "y-1").is_some());
    }

    /// Writes `body` with a modification time of its own (file times are coarse: two writes
    /// in a row can share one).
    fn write_at(path: &std::path::Path, body: &[u8], secs: u64) {
        std::fs::write(path, body).unwrap();
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    }

    #[tokio::test]
    async fn local_registry_refreshes_after_the_interval_by_modification_time() {
        let dir = std::env::temp_dir().join(format!("schemas-refresh-{}", std::process::id()));
        let folder = dir.join("json_schemas/account");
        std::fs::create_dir_all(&folder).unwrap();
        let file = folder.join("x-1.json");
        write_at(&file, br#"{"type":"object"}"#, 1_000);
        let clock = Arc::new(ManualClock::starting_now());
        let registry = SchemaRegistry::new(SchemaLocation::Local(dir.clone()))
            .with_refresh(Duration::from_secs(60), clock.clone());
        let is_object = |entry: &SchemaEntry| match entry {
            SchemaEntry::Compiled(v) => valid(v, serde_json::json!({})),
            other => panic!("{other:?}"),
        };
        assert!(is_object(&registry.get("account", "x-1").await.unwrap()));
        assert!(matches!(
            *registry.get("account", "y-1").await.unwrap(),
            SchemaEntry::Missing
        ));

        // Changed, appeared: not before the interval ...
        write_at(&file, br#"{"type":"array"}"#, 2_000);
        write_at(&folder.join("y-1.json"), br#"{"type":"object"}"#, 2_000);
        clock.advance(Duration::from_secs(59));
        assert!(registry.current("account", "x-1").is_some());
        assert!(is_object(&registry.get("account", "x-1").await.unwrap()));
        // ... after it.
        clock.advance(Duration::from_secs(1));
        assert!(registry.current("account", "x-1").is_none());
        assert!(!is_object(&registry.get("account", "x-1").await.unwrap()));
        assert!(is_object(&registry.get("account", "y-1").await.unwrap()));
        let stats = registry.take_stats();
        assert_eq!((stats.refreshes, stats.changes, stats.misses), (2, 2, 1));

        // Unchanged: one look at the file, nothing recompiled.
        clock.advance(Duration::from_secs(60));
        let before = registry.cached("account", "x-1").unwrap();
        let after = registry.get("account", "x-1").await.unwrap();
        assert!(Arc::ptr_eq(&before, &after));

        // Broken: the last good version stays.
        write_at(&file, b"{ not json", 3_000);
        clock.advance(Duration::from_secs(60));
        assert!(!is_object(&registry.get("account", "x-1").await.unwrap()));
        let stats = registry.take_stats();
        assert_eq!(
            (stats.refreshes, stats.changes, stats.compile_failures),
            (2, 0, 1)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
