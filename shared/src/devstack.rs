//! Table and bucket definitions for local runs and tests.
//!
//! The SAM template (`template.yaml`) is the production definition of the same resources; the
//! shapes here mirror it so that tests and `make run` exercise exactly the keys the functions
//! use. Nothing here is called by a deployed function.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};

/// Names of the resources a full local stack needs.
#[derive(Debug, Clone)]
pub struct ResourceNames {
    pub journal_table: String,
    pub events_table: String,
    pub ledger_table: String,
    pub controls_table: String,
    pub bucket: String,
}

impl Default for ResourceNames {
    fn default() -> Self {
        Self {
            journal_table: "issuer-kit-journal".into(),
            events_table: "issuer-kit-events".into(),
            ledger_table: "issuer-kit-ledger".into(),
            controls_table: "issuer-kit-controls".into(),
            bucket: "issuer-kit-events".into(),
        }
    }
}

/// Partition key of the decision journal.
pub const JOURNAL_KEY: &str = "id";
pub use crate::event_store::EVENTS_KEY;
/// Name of the events table GSI on `cid`.
pub const EVENTS_CID_INDEX: &str = "cid-index";
/// Partition key of the ledger table.
pub const LEDGER_KEY: &str = "pk";
/// Partition key of the controls table.
pub const CONTROLS_KEY: &str = "pk";

fn key(name: &str) -> Result<KeySchemaElement, aws_sdk_dynamodb::error::BuildError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(KeyType::Hash)
        .build()
}

fn attr(name: &str) -> Result<AttributeDefinition, aws_sdk_dynamodb::error::BuildError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
}

/// Errors while creating local resources.
#[derive(Debug, thiserror::Error)]
pub enum DevStackError {
    #[error("building a request failed: {0}")]
    Build(#[from] aws_sdk_dynamodb::error::BuildError),
    #[error("creating {resource} failed: {message}")]
    Create { resource: String, message: String },
}

fn create_err<E: std::fmt::Debug>(resource: &str) -> impl FnOnce(E) -> DevStackError + '_ {
    move |e| DevStackError::Create {
        resource: resource.to_string(),
        message: format!("{e:?}"),
    }
}

/// Creates the tables and the bucket (idempotent: existing resources are left alone).
pub async fn create_resources(
    config: &aws_config::SdkConfig,
    names: &ResourceNames,
) -> Result<(), DevStackError> {
    let ddb = aws_sdk_dynamodb::Client::new(config);
    let existing = ddb
        .list_tables()
        .send()
        .await
        .map_err(create_err("table list"))?
        .table_names
        .unwrap_or_default();

    if !existing.contains(&names.journal_table) {
        // The sparse GSI over entries awaiting reconciliation (`reconcile` = `PENDING`).
        ddb.create_table()
            .table_name(&names.journal_table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(JOURNAL_KEY)?)
            .attribute_definitions(attr(JOURNAL_KEY)?)
            .attribute_definitions(attr("reconcile")?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(crate::journal::RECONCILE_INDEX)
                    .key_schema(key("reconcile")?)
                    .key_schema(
                        KeySchemaElement::builder()
                            .attribute_name(JOURNAL_KEY)
                            .key_type(KeyType::Range)
                            .build()?,
                    )
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()?,
            )
            .send()
            .await
            .map_err(create_err(&names.journal_table))?;
    }
    let simple = [
        (&names.ledger_table, LEDGER_KEY),
        (&names.controls_table, CONTROLS_KEY),
    ];
    for (table, pk) in simple {
        if existing.contains(table) {
            continue;
        }
        ddb.create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(pk)?)
            .attribute_definitions(attr(pk)?)
            .send()
            .await
            .map_err(create_err(table))?;
    }
    if !existing.contains(&names.events_table) {
        ddb.create_table()
            .table_name(&names.events_table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(EVENTS_KEY)?)
            .attribute_definitions(attr(EVENTS_KEY)?)
            .attribute_definitions(attr("cid")?)
            .attribute_definitions(attr(crate::event_store::PENDING_SCHEMA)?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(EVENTS_CID_INDEX)
                    .key_schema(key("cid")?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()?,
            )
            // The sparse GSI over events stored `unverified` (`revalidate` reads it).
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(crate::event_store::UNVERIFIED_INDEX)
                    .key_schema(key(crate::event_store::PENDING_SCHEMA)?)
                    .key_schema(
                        KeySchemaElement::builder()
                            .attribute_name(EVENTS_KEY)
                            .key_type(KeyType::Range)
                            .build()?,
                    )
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::KeysOnly)
                            .build(),
                    )
                    .build()?,
            )
            .send()
            .await
            .map_err(create_err(&names.events_table))?;
    }

    let s3 = crate::aws::s3_client(config);
    let buckets = s3
        .list_buckets()
        .send()
        .await
        .map_err(create_err("bucket list"))?;
    let exists = buckets
        .buckets()
        .iter()
        .any(|b| b.name() == Some(names.bucket.as_str()));
    if !exists {
        s3.create_bucket()
            .bucket(&names.bucket)
            .send()
            .await
            .map_err(create_err(&names.bucket))?;
    }
    Ok(())
}
