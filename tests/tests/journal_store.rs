//! The DynamoDB journal and the journal + ledger transaction against the emulator.

use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use shared::journal::{
    DynamoJournal, Entry, FallbackReason, How, Input, Journal, Money, Recorded, now_ms,
};
use shared::ledger::{ACTIVE, Account, Applied, Direction, DynamoLedger, Ledger, Movement};
use tools::moto::Moto;

const T: Duration = Duration::from_secs(5);

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap_or_default()
}

fn entry(id: &str, body: &str, money: Option<Money>) -> Entry {
    Entry {
        id: id.into(),
        body_sha256: body.into(),
        answer: r#"{"is_approved":true,"response_code":"00"}"#.into(),
        label: "approved".into(),
        how: How::Ledger,
        policy_version: "v1".into(),
        decided_at_ms: now_ms(),
        expiration: Some(now_ms() / 1000 + 3600),
        inputs: vec![
            (
                "fields.amount_transaction".into(),
                Input::Number(dec("10.00")),
            ),
            ("fields.mcc".into(), Input::Text("5411".into())),
        ],
        money,
        reconcile: None,
        shadow: None,
    }
}

fn debit(account: &str, amount: &str, moved: bool) -> Money {
    Money {
        account_id: account.into(),
        amount: dec(amount),
        direction: Direction::Debit,
        moved,
        reverses: None,
    }
}

#[tokio::test]
async fn one_conditional_put_returns_the_stored_entry() -> anyhow::Result<()> {
    let (_moto, config, names) = Moto::start_with_resources().await?;
    let journal = DynamoJournal::new(aws_sdk_dynamodb::Client::new(&config), &names.journal_table);
    let first = entry("banking-antifraud#1", "h1", None);
    assert_eq!(journal.record(&first, T).await?, Recorded::New);
    let again = Entry {
        answer: "other".into(),
        ..entry("banking-antifraud#1", "h2", None)
    };
    match journal.record(&again, T).await? {
        Recorded::Exists(stored) => assert_eq!(*stored, first),
        Recorded::New => panic!("a second write of the same id must fail its condition"),
    }
    assert_eq!(journal.get("banking-antifraud#1").await?, Some(first));
    Ok(())
}

#[tokio::test]
async fn reconciliation_list_and_resolve() -> anyhow::Result<()> {
    let (_moto, config, names) = Moto::start_with_resources().await?;
    let journal = DynamoJournal::new(aws_sdk_dynamodb::Client::new(&config), &names.journal_table);
    let pending = Entry {
        reconcile: Some("unknown_account".into()),
        expiration: None,
        how: How::Fallback(FallbackReason::OutcomeUnknown),
        ..entry(
            "zero-balance#advice#7",
            "h",
            Some(debit("9", "1.00", false)),
        )
    };
    journal.record(&pending, T).await?;
    journal
        .record(&entry("zero-balance#request#8", "h", None), T)
        .await?;
    let listed = journal.pending().await?;
    assert_eq!(listed, vec![pending]);
    assert!(journal.resolve("zero-balance#advice#7", T).await?);
    assert!(!journal.resolve("zero-balance#advice#7", T).await?);
    assert!(journal.pending().await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn money_moves_only_with_its_entry() -> anyhow::Result<()> {
    let (_moto, config, names) = Moto::start_with_resources().await?;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let ledger = DynamoLedger::new(ddb.clone(), &names.ledger_table, &names.journal_table);
    let journal = DynamoJournal::new(ddb, &names.journal_table);
    ledger
        .put_account(&Account {
            account_id: "1".into(),
            available: dec("15.00"),
            currency_code: Some(986),
            status: ACTIVE.into(),
        })
        .await?;
    let m = |amount: &str, reverses: Option<&str>| Movement {
        account_id: "1".into(),
        amount: dec(amount),
        direction: if reverses.is_some() {
            Direction::Credit
        } else {
            Direction::Debit
        },
        enforce: reverses.is_none(),
        reverses: reverses.map(str::to_string),
    };
    let auth = entry(
        "zero-balance#request#a",
        "h",
        Some(debit("1", "10.00", true)),
    );
    assert_eq!(
        ledger.apply(&m("10.00", None), &auth, &[], T).await?,
        Applied::Done
    );
    // The same id again: nothing moves, the stored entry comes back.
    assert_eq!(
        ledger.apply(&m("10.00", None), &auth, &[], T).await?,
        Applied::Exists(Box::new(auth.clone()))
    );
    // Not enough funds: nothing written at all.
    let big = entry(
        "zero-balance#request#b",
        "h",
        Some(debit("1", "10.00", true)),
    );
    assert_eq!(
        ledger.apply(&m("10.00", None), &big, &[], T).await?,
        Applied::InsufficientFunds
    );
    assert_eq!(journal.get("zero-balance#request#b").await?, None);
    // A reversal returns the first authorization's money once.
    let rev = entry("zero-balance#reversal#a", "r", None);
    assert_eq!(
        ledger
            .apply(&m("10.00", Some("zero-balance#request#a")), &rev, &[], T)
            .await?,
        Applied::Done
    );
    let rev2 = entry("zero-balance#reversal-advice#a", "r2", None);
    assert_eq!(
        ledger
            .apply(&m("10.00", Some("zero-balance#request#a")), &rev2, &[], T)
            .await?,
        Applied::OriginalNotFound
    );
    let balance = ledger
        .account("1", T)
        .await?
        .map(|a| a.available)
        .unwrap_or_default();
    assert_eq!(balance, dec("15.00"));
    Ok(())
}
