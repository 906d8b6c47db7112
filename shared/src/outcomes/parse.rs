//! The labels file: CSV with the header `reference,label,labelled_at`, or JSON lines with those
//! three members (the module head of [`crate::outcomes`] has the format). Every line is
//! checked before anything is written; a bad line is reported with its line number, and all
//! bad lines are reported at once so one correction round fixes the file.
//!
//! CSV goes through the `csv` crate (quoted fields, embedded commas and CRLF line ends are its
//! job, not ours); JSON lines through serde_json with unknown members refused.

use serde::Deserialize;

use super::Kind;

/// Longest reference accepted: a journal id is at most 1,024 bytes (DynamoDB's sort key limit
/// on `reconcile-index`); the label item adds its prefix and kind to it.
pub const MAX_REFERENCE_BYTES: usize = 1024;

/// The labels file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

impl Format {
    /// The format a file name's extension names: `.csv`; `.jsonl`, `.ndjson`, `.json`.
    pub fn of_path(path: &std::path::Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" | "json" => Some(Format::JsonLines),
            _ => None,
        }
    }
}

/// One checked line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelLine {
    /// 1-based line number in the file.
    pub line: usize,
    pub reference: String,
    pub kind: Kind,
    /// Epoch milliseconds.
    pub labelled_at_ms: i64,
}

/// A bad line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    pub line: usize,
    pub reason: String,
}

/// The file has bad lines; nothing may be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.iter().map(|p| format!("line {}: {}", p.line, p.reason)).collect::<Vec<_>>().join("\n"))]
pub struct ParseError {
    /// Every bad line, in file order.
    pub problems: Vec<LineProblem>,
}

/// The three fields as written in the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    reference: String,
    label: String,
    labelled_at: String,
}

const HEADER: [&str; 3] = ["reference", "label", "labelled_at"];

/// Parses a whole labels file.
pub fn parse(text: &str, format: Format) -> Result<Vec<LabelLine>, ParseError> {
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    let mut take = |line: usize, raw: Result<Raw, String>| match raw.and_then(|r| check(line, r)) {
        Ok(l) => lines.push(l),
        Err(reason) => problems.push(LineProblem { line, reason }),
    };
    match format {
        Format::JsonLines => {
            for (i, text) in text.lines().enumerate() {
                if text.trim().is_empty() {
                    continue;
                }
                take(
                    i + 1,
                    serde_json::from_str::<Raw>(text).map_err(|e| e.to_string()),
                );
            }
        }
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(true)
                .trim(csv::Trim::All)
                .from_reader(text.as_bytes());
            match reader.headers() {
                Ok(h) if h.iter().eq(HEADER) => {}
                Ok(h) => {
                    let found: Vec<&str> = h.iter().collect();
                    return Err(ParseError {
                        problems: vec![LineProblem {
                            line: 1,
                            reason: format!(
                                "the header must be `{}`, not `{}`",
                                HEADER.join(","),
                                found.join(",")
                            ),
                        }],
                    });
                }
                Err(e) => {
                    return Err(ParseError {
                        problems: vec![LineProblem {
                            line: 1,
                            reason: format!("unreadable header: {e}"),
                        }],
                    });
                }
            }
            let mut record = csv::StringRecord::new();
            loop {
                match reader.read_record(&mut record) {
                    Ok(false) => break,
                    Ok(true) => {
                        let line = line_of(text, record.position());
                        take(
                            line,
                            record
                                .deserialize::<Raw>(Some(&csv::StringRecord::from(HEADER.to_vec())))
                                .map_err(|e| e.to_string()),
                        );
                    }
                    Err(e) => {
                        let line = line_of(text, e.position());
                        let reason = match e.kind() {
                            csv::ErrorKind::UnequalLengths { len, .. } => {
                                format!("{len} fields; a line has exactly 3 ({})", HEADER.join(","))
                            }
                            _ => e.to_string(),
                        };
                        // The reader goes on with the next record after a bad one.
                        take(line, Err(reason));
                        if !matches!(e.kind(), csv::ErrorKind::UnequalLengths { .. }) {
                            break;
                        }
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(lines)
    } else {
        Err(ParseError { problems })
    }
}

/// The 1-based line a record starts on, counted from its byte offset: the reader's own line
/// count is off by one after CRLF line ends (its offset is then the `\n` of the previous
/// line's end, skipped here: a record never starts with a line end).
fn line_of(text: &str, position: Option<&csv::Position>) -> usize {
    let bytes = text.as_bytes();
    let mut at = position
        .and_then(|p| usize::try_from(p.byte()).ok())
        .unwrap_or(0)
        .min(bytes.len());
    while matches!(bytes.get(at), Some(b'\r' | b'\n')) {
        at += 1;
    }
    bytes[..at].iter().filter(|b| **b == b'\n').count() + 1
}

fn check(line: usize, raw: Raw) -> Result<LabelLine, String> {
    let reference = raw.reference.trim();
    if reference.is_empty() {
        return Err("`reference` is empty".into());
    }
    if reference.len() > MAX_REFERENCE_BYTES {
        return Err(format!(
            "`reference` is {} bytes long; at most {MAX_REFERENCE_BYTES}",
            reference.len()
        ));
    }
    if reference.chars().any(char::is_control) {
        return Err("`reference` holds a control character".into());
    }
    let label = raw.label.trim();
    let kind = Kind::parse(label)
        .ok_or_else(|| format!("`label` {label:?} is not one of fraud, chargeback, not_fraud"))?;
    let at = raw.labelled_at.trim();
    let t = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            format!("`labelled_at` {at:?} is not an RFC 3339 time (2026-11-02T10:00:00Z)")
        })?;
    let labelled_at_ms = i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| format!("`labelled_at` {at:?} is out of range"))?;
    Ok(LabelLine {
        line,
        reference: reference.to_string(),
        kind,
        labelled_at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: i64 = 1_793_613_600_000; // 2026-11-02T10:00:00Z

    fn line(line: usize, reference: &str, kind: Kind) -> LabelLine {
        LabelLine {
            line,
            reference: reference.into(),
            kind,
            labelled_at_ms: AT,
        }
    }

    #[test]
    fn csv_lines_are_read_with_their_numbers() {
        let text = "reference,label,labelled_at\r\n\
                    banking-antifraud#1,fraud,2026-11-02T10:00:00Z\r\n\
                    \"55:9\" , chargeback ,2026-11-02T07:00:00-03:00\r\n\
                    77,not_fraud,2026-11-02T10:00:00.000Z\r\n";
        assert_eq!(
            parse(text, Format::Csv),
            Ok(vec![
                line(2, "banking-antifraud#1", Kind::Fraud),
                line(3, "55:9", Kind::Chargeback),
                line(4, "77", Kind::NotFraud),
            ])
        );
        assert_eq!(
            parse("reference,label,labelled_at\n", Format::Csv),
            Ok(vec![])
        );
    }

    #[test]
    fn json_lines_are_read_with_their_numbers() {
        let text = "{\"reference\":\"1\",\"label\":\"fraud\",\"labelled_at\":\"2026-11-02T10:00:00Z\"}\n\
                    \n\
                    {\"labelled_at\":\"2026-11-02T10:00:00Z\",\"reference\":\"zero-balance#request#2\",\"label\":\"not_fraud\"}\n";
        assert_eq!(
            parse(text, Format::JsonLines),
            Ok(vec![
                line(1, "1", Kind::Fraud),
                line(3, "zero-balance#request#2", Kind::NotFraud),
            ])
        );
    }

    fn problems(text: &str, format: Format) -> Vec<(usize, String)> {
        match parse(text, format) {
            Ok(l) => panic!("parsed {l:?}"),
            Err(e) => e.problems.into_iter().map(|p| (p.line, p.reason)).collect(),
        }
    }

    #[test]
    fn every_bad_csv_line_is_named() {
        let text = "reference,label,labelled_at\n\
                    1,fraud,2026-11-02T10:00:00Z\n\
                    2,frod,2026-11-02T10:00:00Z\n\
                    3,fraud,yesterday\n\
                    4,fraud\n\
                    ,fraud,2026-11-02T10:00:00Z\n\
                    6,fraud,2026-11-02T10:00:00Z,called the cardholder\n";
        let p = problems(text, Format::Csv);
        let lines: Vec<usize> = p.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7]);
        assert!(p[0].1.contains("\"frod\" is not one of"), "{}", p[0].1);
        assert!(p[1].1.contains("RFC 3339"), "{}", p[1].1);
        assert!(p[2].1.contains("exactly 3"), "{}", p[2].1);
        assert!(p[3].1.contains("empty"), "{}", p[3].1);
        // A free-text column is refused: notes would bring personal data into the store.
        let p = problems(
            "reference,label,labelled_at,note\n1,fraud,2026-11-02T10:00:00Z,x\n",
            Format::Csv,
        );
        assert_eq!(p[0].0, 1);
        assert!(p[0].1.contains("header must be"), "{}", p[0].1);
    }

    #[test]
    fn every_bad_json_line_is_named() {
        let text = "{\"reference\":\"1\",\"label\":\"fraud\",\"labelled_at\":\"2026-11-02T10:00:00Z\"}\n\
                    {\"reference\":\"2\",\"label\":\"fraud\"}\n\
                    not json\n\
                    {\"reference\":\"4\",\"label\":\"fraud\",\"labelled_at\":\"2026-11-02T10:00:00Z\",\"note\":\"x\"}\n\
                    {\"reference\":\"5\",\"label\":\"FRAUD\",\"labelled_at\":\"2026-11-02T10:00:00Z\"}\n";
        let p = problems(text, Format::JsonLines);
        let lines: Vec<usize> = p.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [2, 3, 4, 5]);
        assert!(p[0].1.contains("labelled_at"), "{}", p[0].1);
        assert!(p[2].1.contains("note"), "{}", p[2].1);
        let e = parse(text, Format::JsonLines).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.starts_with("line 2: ")));
    }

    #[test]
    fn formats_follow_the_extension() {
        use std::path::Path;
        assert_eq!(Format::of_path(Path::new("a/b.CSV")), Some(Format::Csv));
        assert_eq!(
            Format::of_path(Path::new("b.jsonl")),
            Some(Format::JsonLines)
        );
        assert_eq!(Format::of_path(Path::new("b.txt")), None);
        assert_eq!(Format::of_path(Path::new("b")), None);
    }
}
