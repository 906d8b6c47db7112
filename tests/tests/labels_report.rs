//! Fraud labels and the rule performance report: a hand-made journal on the emulator, the
//! labels of `tests/fixtures/outcomes/` imported twice (the second adds nothing), the report's
//! figures against a hand count; then the HTML report of the same fixture rendered by headless
//! Chromium (a screenshot and the DOM it built).
//!
//! The fixture, two UTC days (2026-11-01, 2026-11-02), amounts in currency 986:
//!
//! | entry | day | rule label | answer | amount | label | shadow |
//! |---|---|---|---|---|---|---|
//! | banking t1 | 1 | default | approve | 100.00 | fraud | |
//! | banking t2 | 1 | default | approve | 250.00 | | |
//! | banking t3 | 1 | over-limit | reject | 5000.00 | fraud | |
//! | banking t4 | 1 | over-limit | reject | 3000.00 | not_fraud | |
//! | full balance f1 | 1 | risky-mcc | decline | 80.00 | chargeback | default: approve |
//! | full balance f2 | 1 | default | approve | 40.00 | | night: decline |
//! | banking t5 | 2 | over-limit | reject | 7000.00 | fraud and not_fraud (fraud wins) | |
//! | banking t6 | 2 | over-limit | reject | 1200.00 | not_fraud | |
//! | banking t7 | 2 | default | approve | 60.00 | not_fraud | |
//! | zero balance request z1 | 2 | approved (ledger) | approve | 30.00 | fraud | mcc: decline |
//! | zero balance request z2 | 2 | gambling | decline | 500.00 | | ledger (no answer) |
//! | zero balance advice z1 | 2 | advice_adjusted | approve | 30.00 | fraud (by entry id) | |
//! | card tokenization 900:55 | 2 | default | approve | none | chargeback (by token id) | |

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use integration_tests::journal_entry;
use rust_decimal::Decimal;
use shared::journal::{DynamoJournal, Entry, How, Input, Journal};
use shared::outcomes::report::{Line, Range, Report};
use shared::outcomes::testing::{amount_inputs, day_counts, shadowed};
use shared::outcomes::{
    DynamoOutcomes, Format, ImportReport, InMemoryOutcomes, Unknown, html, import, parse,
    rule_report,
};
use tools::moto::Moto;

const NOV1: i64 = 1_793_491_200_000; // 2026-11-01T00:00:00Z
const NOV2: i64 = NOV1 + 86_400_000;
const HOUR: i64 = 3_600_000;

const APPROVE: &str = r#"{"decision":"approve","metadata":{}}"#;
const REJECT: &str = r#"{"decision":"reject","metadata":{"reason":"over-limit"}}"#;
const FB_APPROVE: &str = r#"{"approve":true,"response_code":"00"}"#;
const FB_DECLINE: &str = r#"{"approve":false,"response_code":"59"}"#;
const ZB_APPROVE: &str = r#"{"is_approved":true,"response_code":"00"}"#;
const ZB_DECLINE: &str = r#"{"is_approved":false,"response_code":"59"}"#;
const CT_APPROVE: &str = r#"{"approve":true,"action_code":"00"}"#;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/outcomes")
}

fn entry(
    id: &str,
    (label, how): (&str, How),
    answer: &str,
    at: i64,
    amount: Option<&str>,
) -> Entry {
    let mut e = journal_entry(id, "body", answer, (label, how));
    e.decided_at_ms = at;
    // Labels outlive entries; the fixture's entries are kept too.
    e.expiration = None;
    if let Some(a) = amount {
        let mut inputs = amount_inputs(id, Decimal::from_str(a).unwrap_or_default());
        if id.starts_with("banking-antifraud#") {
            // An input the report does not read (its scan projects the amounts only).
            inputs.push(("origin".into(), Input::Text("instant-pay".into())));
        }
        e.inputs = inputs.into();
    }
    e
}

/// The journal of the module head's table.
fn fixture_journal() -> Vec<Entry> {
    let policy = |l| (l, How::Policy);
    vec![
        entry(
            "banking-antifraud#t1",
            policy("default"),
            APPROVE,
            NOV1 + HOUR,
            Some("100.00"),
        ),
        entry(
            "banking-antifraud#t2",
            policy("default"),
            APPROVE,
            NOV1 + 2 * HOUR,
            Some("250.00"),
        ),
        entry(
            "banking-antifraud#t3",
            policy("over-limit"),
            REJECT,
            NOV1 + 3 * HOUR,
            Some("5000.00"),
        ),
        entry(
            "banking-antifraud#t4",
            policy("over-limit"),
            REJECT,
            NOV1 + 4 * HOUR,
            Some("3000.00"),
        ),
        shadowed(
            entry(
                "full-balance-antifraud#f1",
                policy("risky-mcc"),
                FB_DECLINE,
                NOV1 + 5 * HOUR,
                Some("80.00"),
            ),
            "default",
            Some(FB_APPROVE),
        ),
        shadowed(
            entry(
                "full-balance-antifraud#f2",
                policy("default"),
                FB_APPROVE,
                NOV1 + 23 * HOUR,
                Some("40.00"),
            ),
            "night",
            Some(FB_DECLINE),
        ),
        entry(
            "banking-antifraud#t5",
            policy("over-limit"),
            REJECT,
            NOV2 + HOUR,
            Some("7000.00"),
        ),
        entry(
            "banking-antifraud#t6",
            policy("over-limit"),
            REJECT,
            NOV2 + 2 * HOUR,
            Some("1200.00"),
        ),
        entry(
            "banking-antifraud#t7",
            policy("default"),
            APPROVE,
            NOV2 + 3 * HOUR,
            Some("60.00"),
        ),
        shadowed(
            entry(
                "zero-balance#request#z1",
                ("approved", How::Ledger),
                ZB_APPROVE,
                NOV2 + 4 * HOUR,
                Some("30.00"),
            ),
            "mcc",
            Some(ZB_DECLINE),
        ),
        shadowed(
            entry(
                "zero-balance#request#z2",
                policy("gambling"),
                ZB_DECLINE,
                NOV2 + 5 * HOUR,
                Some("500.00"),
            ),
            "ledger",
            None,
        ),
        entry(
            "zero-balance#advice#z1",
            ("advice_adjusted", How::Ledger),
            ZB_APPROVE,
            NOV2 + 6 * HOUR,
            Some("30.00"),
        ),
        entry(
            "card-tokenization#900:55",
            policy("default"),
            CT_APPROVE,
            NOV2 + 7 * HOUR,
            None,
        ),
        // Outside the range: never read.
        entry(
            "banking-antifraud#t8",
            policy("default"),
            APPROVE,
            NOV2 + 86_400_000,
            Some("1.00"),
        ),
    ]
}

fn range() -> anyhow::Result<Range> {
    Ok(Range::parse("2026-11-01", "2026-11-02")?)
}

/// The imports of the fixture's labels: 13 lines, 11 labels written, 2 unknown references.
fn assert_first_import(r: &ImportReport, unknown_lines: [usize; 2]) {
    assert_eq!((r.lines, r.added, r.already_present), (13, 11, 0));
    assert_eq!(r.unknown, unknown(unknown_lines));
}

fn unknown([a, b]: [usize; 2]) -> Vec<Unknown> {
    vec![
        Unknown {
            line: a,
            reference: "t404".into(),
        },
        Unknown {
            line: b,
            reference: "banking-antifraud#t999".into(),
        },
    ]
}

fn line<'a>(lines: &'a [Line], webhook: &str, rule: &str, day: Option<&str>) -> &'a Line {
    lines
        .iter()
        .find(|l| {
            l.webhook.as_deref() == Some(webhook)
                && l.rule.as_deref() == Some(rule)
                && l.day.as_deref() == day
        })
        .unwrap_or_else(|| panic!("no line for {webhook} {rule} {day:?}"))
}

/// The hand count of the module head's table: per line a side, webhook, rule and day (`-`:
/// over the range; `all | all`: the side's total), then decisions, approvals, declines, to
/// ledger, fraud caught, fraud missed and not-fraud declines; the approved, declined and missed
/// amounts; the false positives.
///
/// - `over-limit`: t3 and t5 fraud (t5's not_fraud loses to fraud), t4 and t6 not fraud: 2 of
///   4 declines.
/// - The tokenization has no amount; its chargeback came by token id.
/// - The live total: 6 declines, t4 and t6 not fraud; caught t3, t5, f1; missed t1, z1, the
///   tokenization.
/// - The shadow, by its own labels: it approves f1 (a chargeback: missed), declines f2 and z1
///   (fraud: caught), and lets z2 through to the ledger.
const HAND_COUNT: &str = "
live | banking-antifraud | default | - | 3 3 0 0 0 1 0 | 410.00 986 | 0 | 100.00 986 | - (0/0)
live | banking-antifraud | over-limit | - | 4 0 4 0 2 0 2 | 0 | 16200.00 986 | 0 | 50.00% (2/4)
live | banking-antifraud | over-limit | 2026-11-01 | 2 0 2 0 1 0 1 | 0 | 8000.00 986 | 0 | 50.00% (1/2)
live | banking-antifraud | over-limit | 2026-11-02 | 2 0 2 0 1 0 1 | 0 | 8200.00 986 | 0 | 50.00% (1/2)
live | full-balance-antifraud | risky-mcc | - | 1 0 1 0 1 0 0 | 0 | 80.00 986 | 0 | 0.00% (0/1)
live | full-balance-antifraud | default | - | 1 1 0 0 0 0 0 | 40.00 986 | 0 | 0 | - (0/0)
live | zero-balance | approved | - | 1 1 0 0 0 1 0 | 30.00 986 | 0 | 30.00 986 | - (0/0)
live | zero-balance | gambling | - | 1 0 1 0 0 0 0 | 0 | 500.00 986 | 0 | 0.00% (0/1)
live | card-tokenization | default | - | 1 1 0 0 0 1 0 | 0 | 0 | 0 | - (0/0)
live | all | all | - | 12 6 6 0 3 3 2 | 480.00 986 | 16780.00 986 | 130.00 986 | 33.33% (2/6)
shadow | full-balance-antifraud | default | - | 1 1 0 0 0 1 0 | 80.00 986 | 0 | 80.00 986 | - (0/0)
shadow | full-balance-antifraud | night | - | 1 0 1 0 0 0 0 | 0 | 40.00 986 | 0 | 0.00% (0/1)
shadow | zero-balance | mcc | - | 1 0 1 0 1 0 0 | 0 | 30.00 986 | 0 | 0.00% (0/1)
shadow | zero-balance | ledger | - | 1 0 0 1 0 0 0 | 0 | 0 | 0 | - (0/0)
";

/// A line's figures as the columns of [`HAND_COUNT`] show them.
fn counted(l: &Line) -> String {
    let f = &l.figures;
    format!(
        "{} {} {} {} {} {} {} | {} | {} | {} | {}",
        f.decisions,
        f.approvals,
        f.declines,
        f.to_ledger,
        f.fraud_caught,
        f.fraud_missed,
        f.not_fraud_declined,
        f.approved_amount,
        f.declined_amount,
        f.missed_amount,
        l.false_positive_share
    )
}

/// The report's figures against the hand count of the module head's table.
fn assert_hand_count(r: &Report) {
    for row in HAND_COUNT.lines().filter(|l| !l.trim().is_empty()) {
        let cells: Vec<&str> = row.splitn(5, " | ").collect();
        let [side, webhook, rule, day, figures] = cells[..] else {
            panic!("not a row of the hand count: {row}");
        };
        let side = if side == "live" { &r.live } else { &r.shadow };
        let found = match (webhook, rule, day) {
            ("all", "all", _) => side.total.as_ref(),
            (_, _, "-") => Some(line(&side.by_rule, webhook, rule, None)),
            _ => Some(line(&side.by_rule_and_day, webhook, rule, Some(day))),
        };
        assert_eq!(found.map(counted).as_deref(), Some(figures), "{row}");
    }
    assert_eq!(r.live.by_rule.len(), 7);
    assert_eq!(
        day_counts(&r.live),
        [(Some("2026-11-01"), 6, 3, 3), (Some("2026-11-02"), 6, 3, 3)]
    );
    assert_eq!(r.shadow.by_rule.len(), 4);
    // The advice is the network's notice, not a decision (its label is stored, not counted).
    assert_eq!(r.skipped.get("notice"), Some(&1));
    assert_eq!(r.skipped.len(), 1, "{:?}", r.skipped);
}

fn read_labels(file: &str) -> anyhow::Result<Vec<shared::outcomes::LabelLine>> {
    let path = fixtures().join(file);
    let format = Format::of_path(&path).ok_or_else(|| anyhow::anyhow!("format of {file}"))?;
    Ok(parse(&std::fs::read_to_string(path)?, format)?)
}

#[tokio::test]
async fn labels_import_once_and_the_report_matches_the_hand_count() -> anyhow::Result<()> {
    let (_moto, config, names) = Moto::start_with_resources().await?;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let journal = DynamoJournal::new(ddb.clone(), &names.journal_table);
    for e in fixture_journal() {
        journal.record(&e, Duration::from_secs(5)).await?;
    }
    let store = DynamoOutcomes::new(ddb.clone(), &names.journal_table);

    let csv = read_labels("labels.csv")?;
    assert_first_import(&import(&store, &csv, |_, _| {}).await?, [12, 13]);
    let again = import(&store, &csv, |_, _| {}).await?;
    assert_eq!((again.added, again.already_present), (0, 11));
    assert_eq!(again.unknown, unknown([12, 13]));
    // The same labels as JSON lines: nothing new either.
    let jsonl = read_labels("labels.jsonl")?;
    let third = import(&store, &jsonl, |_, _| {}).await?;
    assert_eq!((third.added, third.already_present), (0, 11));
    assert_eq!(third.unknown, unknown([11, 12]));

    // Label items: no TTL, the first import's time, beside the entries.
    let item = ddb
        .get_item()
        .table_name(&names.journal_table)
        .key(
            "id",
            aws_sdk_dynamodb::types::AttributeValue::S("label#banking-antifraud#t5#fraud".into()),
        )
        .send()
        .await?;
    let item = item.item().cloned().unwrap_or_default();
    assert_eq!(
        item.get("labelled_at")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str),
        Some("2026-11-03T09:10:00.000Z")
    );
    assert!(!item.contains_key("expiration"));
    let scan = ddb.scan().table_name(&names.journal_table).send().await?;
    let labels = scan
        .items()
        .iter()
        .filter(|i| {
            i.get("id")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|id| id.starts_with("label#"))
        })
        .count();
    assert_eq!(labels, 11);
    // The journal's own readers do not see label items.
    let entries = journal
        .decided_between("", 0, NOV2 + 2 * 86_400_000)
        .await?;
    assert_eq!(entries.len(), fixture_journal().len());

    let report = rule_report(&store, range()?).await?;
    assert_hand_count(&report);
    // The in-memory store gives the same report from the same fixture.
    let memory = InMemoryOutcomes::with_entries(fixture_journal());
    import(&memory, &csv, |_, _| {}).await?;
    assert_eq!(rule_report(&memory, range()?).await?, report);
    println!("{}", report.to_table());
    Ok(())
}

/// A fresh directory under the system's temporary directory.
fn scratch() -> anyhow::Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("labels-report-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

const CHROMIUM: &str = "/usr/bin/chromium";

/// Runs Chromium headless with `args` and a profile of its own in `dir/profile`, with nothing
/// of its own running (no network, sync, updates or first-run); its standard output.
fn chromium(dir: &Path, profile: &str, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let run = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", dir.join(profile).display()))
        .args(args)
        .output()?;
    assert!(
        run.status.success(),
        "chromium {args:?} failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    Ok(run.stdout)
}

/// The HTML report of the fixture, as Chromium draws it: a real screenshot and, in the DOM it
/// built, the figures of the hand count.
#[tokio::test]
async fn the_html_report_renders_in_chromium() -> anyhow::Result<()> {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run `make browser` (installs Debian's chromium)"
    );
    let store = InMemoryOutcomes::with_entries(fixture_journal());
    assert_first_import(
        &import(&store, &read_labels("labels.csv")?, |_, _| {}).await?,
        [12, 13],
    );
    let report = rule_report(&store, range()?).await?;
    assert_hand_count(&report);
    let dir = scratch()?;
    let page = dir.join("report.html");
    std::fs::write(&page, html::render(&report))?;
    let url = format!("file://{}", page.display());

    let png = dir.join("report.png");
    let screenshot = format!("--screenshot={}", png.display());
    chromium(
        &dir,
        "profile-shot",
        &[&screenshot, "--window-size=1280,2000", &url],
    )?;
    let bytes = std::fs::read(&png)?;
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG: {}",
        png.display()
    );
    // A blank 1280x2000 page compresses to a few KB; the report's charts and tables do not.
    assert!(
        bytes.len() > 40 * 1024,
        "screenshot of {} bytes: the page looks empty",
        bytes.len()
    );

    let dom = String::from_utf8(chromium(&dir, "profile-dom", &["--dump-dom", &url])?)?;
    // A per-rule row of a side's table, from the side's first rules table (per rule) on.
    let row = |side: &str, webhook: &str, rule: &str| -> String {
        let table = dom
            .split_once(&format!("<table class=\"rules\" data-side=\"{side}\""))
            .map_or("", |(_, rest)| rest);
        let start = format!("data-webhook=\"{webhook}\" data-rule=\"{rule}\" data-day=\"\"");
        table
            .split_once(&start)
            .and_then(|(_, rest)| rest.split_once("</tr>"))
            .map(|(row, _)| row.to_string())
            .unwrap_or_else(|| panic!("no {side} row for {webhook} {rule} in the DOM"))
    };
    // Figure cells of the per-rule rows: live `over-limit` caught 2, false positives 2 of 4;
    // the shadow's `mcc` caught 1.
    for (side, webhook, rule, figure, shown) in [
        (
            "live",
            "banking-antifraud",
            "over-limit",
            "fraud_caught",
            "2",
        ),
        (
            "live",
            "banking-antifraud",
            "over-limit",
            "false_positive_share",
            "50.00% (2/4)",
        ),
        (
            "live",
            "banking-antifraud",
            "over-limit",
            "declined_amount",
            "16200.00 986",
        ),
        ("shadow", "zero-balance", "mcc", "fraud_caught", "1"),
    ] {
        let cells = row(side, webhook, rule);
        let cell = format!("data-figure=\"{figure}\">{shown}<");
        assert!(cells.contains(&cell), "no {cell} in {cells}");
    }
    assert!(
        dom.contains("33.33%"),
        "the total false-positive share is not shown"
    );
    assert!(dom.contains("id=\"chart-days\"") && dom.contains("id=\"chart-fraud-live\""));
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
