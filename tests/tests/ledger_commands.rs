//! The `ledger` command's money-changing subcommands (`tools::ledger_ops`, what the binary
//! calls) against the emulator: `create` never overwrites by accident, `fund` applies once per
//! reference, `resolve` expires entries after the journal TTL setting, and a resolve with a
//! correction moves the money and resolves the entry together or not at all.

use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use shared::journal::{DynamoJournal, Entry, FallbackReason, How, Inputs, Journal};
use shared::ledger::{DynamoLedger, FUND_ENTRY_PREFIX, Ledger, OPERATOR_TIMEOUT, Resolves};
use shared::settings::Env;
use tools::ledger_ops::{self, FundOutcome};
use tools::moto::Moto;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal literal")
}

async fn stack() -> anyhow::Result<(Moto, DynamoLedger, DynamoJournal)> {
    let (moto, config, names) = Moto::start_with_resources().await?;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let ledger = DynamoLedger::new(ddb.clone(), &names.ledger_table, &names.journal_table);
    let journal = DynamoJournal::new(ddb, &names.journal_table);
    Ok((moto, ledger, journal))
}

async fn balance(ledger: &DynamoLedger, account: &str) -> anyhow::Result<Decimal> {
    Ok(ledger
        .account(account, OPERATOR_TIMEOUT)
        .await?
        .map(|a| a.available)
        .unwrap_or_else(|| panic!("account {account} exists")))
}

async fn fund_entries(journal: &DynamoJournal) -> anyhow::Result<Vec<Entry>> {
    Ok(journal
        .decided_between(FUND_ENTRY_PREFIX, 0, i64::MAX)
        .await?)
}

/// An entry awaiting reconciliation (an advice for an unknown account).
fn pending(id: &str) -> Entry {
    Entry {
        id: id.into(),
        body_sha256: "h".into(),
        fingerprint: "h".into(),
        decision_id: "d".into(),
        answer: "{}".into(),
        label: "fallback".into(),
        how: How::Fallback(FallbackReason::OutcomeUnknown),
        policy_version: String::new(),
        decided_at_ms: shared::clock::now_ms(),
        expiration: None,
        inputs: Inputs::default(),
        money: None,
        reconcile: Some("unknown_account".into()),
        shadow: None,
        signals_update: None,
    }
}

#[tokio::test]
async fn create_refuses_to_overwrite_and_replace_does() -> anyhow::Result<()> {
    let (_moto, ledger, _journal) = stack().await?;
    ledger_ops::create(&ledger, "7", Some(dec("100.00")), 986, false).await?;
    assert_eq!(balance(&ledger, "7").await?, dec("100.00"));

    // The old default: `create` with no balance on a live account.
    let err = ledger_ops::create(&ledger, "7", None, 986, false)
        .await
        .expect_err("an existing account is not overwritten");
    let text = err.to_string();
    assert!(text.contains("account 7 already exists"), "{text}");
    assert!(text.contains("--replace"), "{text}");
    assert!(
        ledger_ops::create(&ledger, "7", Some(dec("5")), 986, false)
            .await
            .is_err()
    );
    assert_eq!(balance(&ledger, "7").await?, dec("100.00"));

    // --replace needs an explicit balance, then overwrites.
    assert!(
        ledger_ops::create(&ledger, "7", None, 986, true)
            .await
            .is_err()
    );
    assert_eq!(balance(&ledger, "7").await?, dec("100.00"));
    ledger_ops::create(&ledger, "7", Some(dec("3.50")), 986, true).await?;
    assert_eq!(balance(&ledger, "7").await?, dec("3.50"));
    // A new account with --replace is simply created.
    ledger_ops::create(&ledger, "8", Some(dec("1")), 986, true).await?;
    assert_eq!(balance(&ledger, "8").await?, dec("1"));
    Ok(())
}

#[tokio::test]
async fn fund_applies_once_per_reference() -> anyhow::Result<()> {
    let (_moto, ledger, journal) = stack().await?;
    ledger_ops::create(&ledger, "7", Some(dec("10.00")), 986, false).await?;

    let first = ledger_ops::fund(&ledger, "7", dec("25.00"), "T-1", "ops", None).await?;
    assert!(matches!(first, FundOutcome::Applied(Some(ref a)) if a.available == dec("35.00")));
    // A re-run (say after a timeout), amount written differently: nothing changes.
    let again = ledger_ops::fund(&ledger, "7", dec("25"), "T-1", "ops", None).await?;
    assert_eq!(again, FundOutcome::AlreadyApplied);
    assert_eq!(balance(&ledger, "7").await?, dec("35.00"));

    let entries = fund_entries(&journal).await?;
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e.id, "ledger#fund#T-1");
    let m = e.money.as_ref().expect("the entry records the movement");
    assert_eq!(
        (
            m.account_id.as_str(),
            m.amount,
            m.direction.as_str(),
            m.moved
        ),
        ("7", dec("25"), "CREDIT", true)
    );
    assert!(e.reconcile.is_none() && e.expiration.is_none());
    assert!(
        e.inputs
            .iter()
            .any(|(k, v)| k == "operator" && *v == shared::journal::Input::Text("ops".into()))
    );

    // The same reference with another amount, or another account: refused, nothing changes.
    ledger_ops::create(&ledger, "8", Some(dec("0")), 986, false).await?;
    let err = ledger_ops::fund(&ledger, "7", dec("30.00"), "T-1", "ops", None)
        .await
        .expect_err("another amount under a used reference");
    assert!(err.to_string().contains("reference T-1"), "{err}");
    assert!(
        ledger_ops::fund(&ledger, "8", dec("25.00"), "T-1", "ops", None)
            .await
            .is_err()
    );
    assert!(
        ledger_ops::fund(&ledger, "7", dec("-25.00"), "T-1", "ops", None)
            .await
            .is_err()
    );
    assert_eq!(balance(&ledger, "7").await?, dec("35.00"));
    assert_eq!(balance(&ledger, "8").await?, dec("0"));
    assert_eq!(fund_entries(&journal).await?.len(), 1);

    // A withdrawal under a new reference; an unknown account moves nothing and records nothing.
    let out = ledger_ops::fund(&ledger, "7", dec("-5.00"), "T-2", "ops", None).await?;
    assert!(matches!(out, FundOutcome::Applied(Some(ref a)) if a.available == dec("30.00")));
    assert!(
        ledger_ops::fund(&ledger, "404", dec("1"), "T-3", "ops", None)
            .await
            .is_err()
    );
    assert_eq!(fund_entries(&journal).await?.len(), 2);
    assert!(journal.get("ledger#fund#T-3").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn resolve_expires_after_the_journal_ttl_setting() -> anyhow::Result<()> {
    let (_moto, _ledger, journal) = stack().await?;
    for id in ["zero-balance#advice#1", "zero-balance#advice#2"] {
        journal.record(&pending(id), OPERATOR_TIMEOUT).await?;
    }

    let set = Env::from_pairs([("JOURNAL_TTL_SECS", "7200")]);
    let ttl = ledger_ops::journal_ttl(&set)?;
    assert_eq!(ttl, Duration::from_secs(7200));
    let before = shared::clock::now_ms() / 1000;
    ledger_ops::resolve(&journal, "zero-balance#advice#1", ttl).await?;
    let after = shared::clock::now_ms() / 1000;
    let e = journal
        .get("zero-balance#advice#1")
        .await?
        .expect("entry kept");
    let exp = e.expiration.expect("a resolved entry expires");
    assert!(
        (before + 7200..=after + 7200).contains(&exp),
        "{exp} not in {before}+7200..={after}+7200"
    );
    // It no longer awaits reconciliation (it keeps its reason, for the record).
    assert!(
        journal
            .pending()
            .await?
            .iter()
            .all(|p| p.id != "zero-balance#advice#1")
    );
    // Resolving again is refused.
    assert!(
        ledger_ops::resolve(&journal, "zero-balance#advice#1", ttl)
            .await
            .is_err()
    );

    // Unset: the webhooks' default, 30 days.
    let default = ledger_ops::journal_ttl(&Env::from_pairs(Vec::<(String, String)>::new()))?;
    assert_eq!(default, Duration::from_secs(30 * 24 * 3600));
    let before = shared::clock::now_ms() / 1000;
    ledger_ops::resolve(&journal, "zero-balance#advice#2", default).await?;
    let after = shared::clock::now_ms() / 1000;
    let exp = journal
        .get("zero-balance#advice#2")
        .await?
        .and_then(|e| e.expiration)
        .expect("a resolved entry expires");
    assert!((before + 30 * 24 * 3600..=after + 30 * 24 * 3600).contains(&exp));
    // An invalid setting is an error, not a silent default.
    assert!(ledger_ops::journal_ttl(&Env::from_pairs([("JOURNAL_TTL_SECS", "60")])).is_err());
    Ok(())
}

#[tokio::test]
async fn resolve_with_a_correction_moves_and_resolves_together() -> anyhow::Result<()> {
    let (_moto, ledger, journal) = stack().await?;
    ledger_ops::create(&ledger, "7", Some(dec("10.00")), 986, false).await?;
    for id in ["zero-balance#advice#1", "zero-balance#advice#2"] {
        journal.record(&pending(id), OPERATOR_TIMEOUT).await?;
    }
    let awaiting = |pending: Vec<Entry>, id: &str| pending.iter().any(|p| p.id == id);
    let ttl = Duration::from_secs(7200);
    let correct = |account, amount, reference, id| {
        let resolves = Some(Resolves { id, ttl });
        ledger_ops::fund(&ledger, account, dec(amount), reference, "ops", resolves)
    };

    let out = correct("7", "5.00", "FIX-1", "zero-balance#advice#1").await?;
    assert!(matches!(out, FundOutcome::Applied(Some(ref a)) if a.available == dec("15.00")));
    assert!(!awaiting(journal.pending().await?, "zero-balance#advice#1"));
    let resolved = journal.get("zero-balance#advice#1").await?;
    assert!(resolved.and_then(|e| e.expiration).is_some());
    assert_eq!(fund_entries(&journal).await?.len(), 1);

    // A re-run (after a timeout, say) changes nothing.
    let again = correct("7", "5.00", "FIX-1", "zero-balance#advice#1").await?;
    assert_eq!(again, FundOutcome::AlreadyApplied);
    assert_eq!(balance(&ledger, "7").await?, dec("15.00"));

    // A second correction of an entry resolved already: refused, nothing moved or written.
    let err = correct("7", "5.00", "FIX-2", "zero-balance#advice#1")
        .await
        .expect_err("the entry no longer awaits reconciliation");
    assert!(
        err.to_string().contains("does not await reconciliation"),
        "{err}"
    );
    assert_eq!(balance(&ledger, "7").await?, dec("15.00"));
    assert!(journal.get("ledger#fund#FIX-2").await?.is_none());

    // A correction of an unknown account: refused, and the entry still awaits reconciliation.
    assert!(
        correct("404", "1.00", "FIX-3", "zero-balance#advice#2")
            .await
            .is_err()
    );
    assert!(awaiting(journal.pending().await?, "zero-balance#advice#2"));
    assert!(journal.get("ledger#fund#FIX-3").await?.is_none());
    assert_eq!(fund_entries(&journal).await?.len(), 1);
    Ok(())
}
