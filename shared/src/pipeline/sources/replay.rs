//! Replay: re-ingest every object under a prefix or in a date range of `main_stream/`.
//!
//! Pismo never redelivers a real-time event; its files are the recovery path. Replaying is
//! idempotent: events already stored count as duplicates and quarantine records are replaced,
//! so a replay can be repeated, or stopped and started again, freely.

use std::collections::BTreeSet;
use std::time::Instant;

use aws_sdk_s3::error::DisplayErrorContext;

use crate::pipeline::PipelineError;
use crate::pipeline::config::Runtime;
use crate::pipeline::report::{Ingested, Report, finish};
use crate::pipeline::sources::key::{StreamHour, prefixes_between};

/// Which objects to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every object whose key starts with this prefix.
    Prefix(String),
    /// Every `main_stream/Y/M/D/H/` object from `from` to `to`, both hours included. Keys
    /// are matched with and without zero padding.
    Hours { from: StreamHour, to: StreamHour },
}

impl Selection {
    /// The listing prefixes (both spellings for ranges: `4/1/` and `04/01/`).
    pub fn prefixes(&self) -> Vec<String> {
        match self {
            Selection::Prefix(prefix) => vec![prefix.clone()],
            Selection::Hours { from, to } => {
                let mut all = BTreeSet::new();
                for prefix in prefixes_between(*from, *to) {
                    all.insert(padded(&prefix));
                    all.insert(prefix);
                }
                all.into_iter().collect()
            }
        }
    }

    fn selects(&self, key: &str) -> bool {
        match self {
            Selection::Prefix(prefix) => key.starts_with(prefix.as_str()),
            Selection::Hours { from, to } => {
                StreamHour::of_key(key).is_some_and(|hour| *from <= hour && hour <= *to)
            }
        }
    }
}

/// `main_stream/2020/4/1/` → `main_stream/2020/04/01/` (month, day and hour padded).
fn padded(prefix: &str) -> String {
    prefix
        .split('/')
        .enumerate()
        .map(|(i, part)| {
            if (2..=4).contains(&i) && part.len() == 1 {
                format!("0{part}")
            } else {
                part.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    pub objects: usize,
    pub total: Report,
    /// `s3://bucket/key: error` of each object that failed (the others were still done).
    pub failures: Vec<String>,
}

/// Replays the selected objects of `bucket` one by one, read with `s3` (the runtime's own
/// client for the events bucket, or its Pismo client for Pismo's bucket), calling `each`
/// after every object.
pub async fn replay(
    runtime: &Runtime,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    selection: &Selection,
    mut each: impl FnMut(&str, &Result<Report, PipelineError>),
) -> Result<ReplaySummary, PipelineError> {
    let mut summary = ReplaySummary::default();
    for prefix in selection.prefixes() {
        let mut pages = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(&prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| PipelineError::Read {
                source_uri: format!("s3://{bucket}/{prefix}"),
                message: DisplayErrorContext(&e).to_string(),
            })?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                if key.ends_with('/') || !selection.selects(key) {
                    continue;
                }
                let started = Instant::now();
                let result = runtime.pipeline.ingest_s3_object(s3, bucket, key).await;
                each(key, &result);
                summary.objects += 1;
                match result {
                    Ok(report) => {
                        finish(
                            runtime,
                            "replay",
                            Ingested::Object { bucket, key },
                            &report,
                            started,
                        );
                        summary.total += report;
                    }
                    Err(e) => summary.failures.push(format!("s3://{bucket}/{key}: {e}")),
                }
            }
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_list_both_spellings_and_select_by_hour() {
        let selection = Selection::Hours {
            from: StreamHour::parse("2020-04-01T23").unwrap(),
            to: StreamHour::parse("2020-04-02").unwrap(),
        };
        assert_eq!(
            selection.prefixes(),
            vec![
                "main_stream/2020/04/01/23/",
                "main_stream/2020/04/02/00/",
                "main_stream/2020/4/1/23/",
                "main_stream/2020/4/2/0/",
            ]
        );
        assert!(selection.selects("main_stream/2020/4/1/23/f"));
        assert!(selection.selects("main_stream/2020/04/02/00/f"));
        assert!(!selection.selects("main_stream/2020/4/2/1/f"));
        let prefix = Selection::Prefix("main_stream/2020/".into());
        assert_eq!(prefix.prefixes(), vec!["main_stream/2020/"]);
        assert!(prefix.selects("main_stream/2020/x"));
    }
}
