//! The DynamoDB journal and the journal + ledger transaction against the emulator.

use std::str::FromStr;
use std::time::Duration;

use integration_tests::{journal_entry, put_account};
use rust_decimal::Decimal;
use shared::journal::{DynamoJournal, Entry, FallbackReason, How, Input, Journal, Money, Recorded};
use shared::ledger::{Applied, Direction, DynamoLedger, Hold, HoldChange, Ledger, Movement};
use tools::moto::Moto;

const T: Duration = Duration::from_secs(5);

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap_or_default()
}

fn entry(id: &str, body: &str, money: Option<Money>) -> Entry {
    Entry {
        inputs: vec![
            (
                "fields.amount_transaction".into(),
                Input::Number(dec("10.00")),
            ),
            ("fields.mcc".into(), Input::Text("5411".into())),
        ]
        .into(),
        money,
        ..journal_entry(
            id,
            body,
            r#"{"is_approved":true,"response_code":"00"}"#,
            ("approved", How::Ledger),
        )
    }
}

fn debit(account: &str, amount: &str, moved: bool) -> Money {
    Money {
        account_id: account.into(),
        amount: dec(amount),
        direction: Direction::Debit,
        moved,
        transaction_id: None,
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
    put_account(&ledger, "1", dec("15.00")).await?;
    let m = |amount: &str, direction: Direction, hold: Option<HoldChange>| Movement {
        account_id: "1".into(),
        amount: dec(amount),
        direction,
        enforce: direction == Direction::Debit,
        currency_code: 986,
        hold,
    };
    let new_hold = |tx: &str, held: &str| HoldChange {
        transaction_id: tx.into(),
        expected: None,
        held: dec(held),
    };
    let auth = entry(
        "zero-balance#request#a",
        "h",
        Some(debit("1", "10.00", true)),
    );
    let debit_a = m("10.00", Direction::Debit, Some(new_hold("a", "10.00")));
    assert_eq!(ledger.apply(&debit_a, &auth, &[], T).await?, Applied::Done);
    // The same id again: nothing moves, the stored entry comes back.
    assert_eq!(
        ledger.apply(&debit_a, &auth, &[], T).await?,
        Applied::Exists(Box::new(auth.clone()))
    );
    let held = ledger.hold("a", T).await?;
    assert_eq!(
        held,
        Some(Hold {
            account_id: "1".into(),
            held: dec("10.00"),
            version: 1
        })
    );
    // Not enough funds: nothing written at all.
    let big = entry(
        "zero-balance#request#b",
        "h",
        Some(debit("1", "10.00", true)),
    );
    assert_eq!(
        ledger
            .apply(
                &m("10.00", Direction::Debit, Some(new_hold("b", "10.00"))),
                &big,
                &[],
                T
            )
            .await?,
        Applied::InsufficientFunds
    );
    assert_eq!(journal.get("zero-balance#request#b").await?, None);
    assert_eq!(ledger.hold("b", T).await?, None);
    // Another currency than the account's: refused, nothing written.
    let usd = Movement {
        currency_code: 840,
        ..m("1.00", Direction::Debit, Some(new_hold("c", "1.00")))
    };
    let c = entry("zero-balance#request#c", "h", None);
    assert_eq!(
        ledger.apply(&usd, &c, &[], T).await?,
        Applied::CurrencyMismatch
    );
    // A new authorization for a transaction that already holds money is refused.
    let again = entry("zero-balance#request#a2", "h", None);
    assert_eq!(
        ledger
            .apply(
                &m("1.00", Direction::Debit, Some(new_hold("a", "1.00"))),
                &again,
                &[],
                T
            )
            .await?,
        Applied::HoldChanged
    );
    // A reversal of part of the hold, against the version read.
    let change = |after: &str| HoldChange {
        transaction_id: "a".into(),
        expected: held.clone(),
        held: dec(after),
    };
    let rev = entry("zero-balance#reversal#a#4", "r", None);
    assert_eq!(
        ledger
            .apply(
                &m("4.00", Direction::Credit, Some(change("6.00"))),
                &rev,
                &[],
                T
            )
            .await?,
        Applied::Done
    );
    // A second one decided from the same (now stale) read: refused, decide again.
    let rev2 = entry("zero-balance#reversal#a#6", "r2", None);
    assert_eq!(
        ledger
            .apply(
                &m("6.00", Direction::Credit, Some(change("0.00"))),
                &rev2,
                &[],
                T
            )
            .await?,
        Applied::HoldChanged
    );
    assert_eq!(
        ledger.hold("a", T).await?.map(|h| (h.held, h.version)),
        Some((dec("6.00"), 2))
    );
    let balance = ledger
        .account("1", T)
        .await?
        .map(|a| a.available)
        .unwrap_or_default();
    assert_eq!(balance, dec("9.00"));
    Ok(())
}
