//! Policies that change without a deploy (S3, refreshed) and shadow policies, against the
//! emulator: moto S3 for the policy objects, moto DynamoDB for the journal and the ledger.

use std::str::FromStr;
use std::sync::Arc;

use integration_tests::{put_account, put_object as put, runner_config as config, sample_body};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use shared::journal::{DynamoJournal, Entry};
use shared::ledger::{DynamoLedger, Ledger, OPERATOR_TIMEOUT};
use shared::metrics::{Captured, Emf, WEBHOOKS_NAMESPACE};
use shared::policy::Policy;
use shared::policy::version_of;
use shared::webhook::{
    BankingAntifraud, CardTokenization, FullBalanceAntifraud, PolicyHandle, PolicyLocation,
    PolicySettings, PolicyWebhook, Refresh, S3Policy, Webhook, WebhookRunner, ZeroBalanceCodes,
    ZeroBalanceWebhook,
};
use tools::moto::Moto;
use tools::testkit::Pismo;

const KEY: &str = "policies/live.json";

/// A banking policy whose default is `decision`.
fn banking_policy(decision: &str) -> String {
    json!({
        "banking_antifraud": {
            "default": {"decision": decision},
            "fallback": {"decision": "reject"}
        }
    })
    .to_string()
}

/// Declines every request of every webhook with a rule named `deny-all`.
const DENY_ALL: &str = r#"{
  "card_tokenization": {
    "rules": [{"name": "deny-all", "when": [{"field": "token_id", "present": true}],
               "then": {"approve": false, "action_code": "05"}}],
    "default": {"approve": false, "action_code": "05"},
    "fallback": {"approve": false, "action_code": "96"}
  },
  "banking_antifraud": {
    "rules": [{"name": "deny-all", "when": [{"field": "id", "present": true}],
               "then": {"decision": "reject"}}],
    "default": {"decision": "reject"},
    "fallback": {"decision": "reject"}
  },
  "full_balance_antifraud": {
    "rules": [{"name": "deny-all", "when": [{"field": "id", "present": true}],
               "then": {"approve": false, "response_code": "05"}}],
    "default": {"approve": false, "response_code": "05"},
    "fallback": {"approve": false, "response_code": "96"}
  },
  "zero_balance": {
    "rules": [{"name": "deny-all", "when": [{"field": "id", "present": true}],
               "then": {"is_approved": false, "response_code": "05"}}],
    "default": {"is_approved": true, "response_code": "00"},
    "fallback": {"is_approved": false, "response_code": "96"}
  }
}"#;

fn banking(id: &str) -> anyhow::Result<Value> {
    let mut body = sample_body("banking-antifraud-approve.json")?;
    body["id"] = json!(id);
    Ok(body)
}

async fn entry(journal: &DynamoJournal, id: &str) -> anyhow::Result<Entry> {
    journal
        .get(id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no journal entry {id}"))
}

/// The sum of one metric over the captured EMF lines.
fn total(captured: &Captured, metric: &str) -> u64 {
    captured
        .lines()
        .iter()
        .filter_map(|l| l[metric].as_u64())
        .sum()
}

#[tokio::test]
async fn an_s3_policy_update_is_picked_up_and_an_invalid_one_is_refused() -> anyhow::Result<()> {
    let (_moto, sdk, names) = Moto::start_with_resources().await?;
    let s3 = shared::aws::s3_client(&sdk);
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let journal = DynamoJournal::new(ddb.clone(), &names.journal_table);
    let pismo = Pismo::start().await?;
    let (emf, captured) = Emf::capture(WEBHOOKS_NAMESPACE);

    let approve_all = banking_policy("approve");
    put(&s3, &names.bucket, KEY, &approve_all).await?;
    let live = S3Policy::load(
        s3.clone(),
        &names.bucket,
        KEY,
        "live",
        "banking-antifraud",
        emf.clone(),
    )
    .await?;
    let runner = WebhookRunner::new(
        PolicyWebhook::<BankingAntifraud>::new(live.handle()),
        pismo.verifier(),
        Arc::new(journal.clone()),
        config(),
    );
    let approve = json!({"decision": "approve"});
    let reject = json!({"decision": "reject"});

    assert_eq!(pismo.send(&runner, &banking("b-1")?).await?.json(), approve);
    let e = entry(&journal, "banking-antifraud#b-1").await?;
    assert_eq!(e.policy_version, version_of(&approve_all));
    assert!(matches!(live.refresh().await, Refresh::Unchanged));

    // An update is picked up at the next refresh, and answers change.
    let reject_all = banking_policy("reject");
    put(&s3, &names.bucket, KEY, &reject_all).await?;
    match live.refresh().await {
        Refresh::Updated { version } => assert_eq!(version, version_of(&reject_all)),
        other => anyhow::bail!("expected an update, got {other:?}"),
    }
    assert_eq!(pismo.send(&runner, &banking("b-2")?).await?.json(), reject);
    let e = entry(&journal, "banking-antifraud#b-2").await?;
    assert_eq!(e.policy_version, version_of(&reject_all));

    // An invalid version is refused, and counted at every refresh while it stays; the last
    // good one keeps answering.
    let invalid = json!({"banking_antifraud": {"default": {"decision": "maybe"},
                                               "fallback": {"decision": "reject"}}})
    .to_string();
    put(&s3, &names.bucket, KEY, &invalid).await?;
    match live.refresh().await {
        Refresh::Refused { version, .. } => assert_eq!(version, version_of(&invalid)),
        other => anyhow::bail!("expected a refusal, got {other:?}"),
    }
    assert_eq!(pismo.send(&runner, &banking("b-3")?).await?.json(), reject);
    let e = entry(&journal, "banking-antifraud#b-3").await?;
    assert_eq!(e.policy_version, version_of(&reject_all));
    assert!(matches!(live.refresh().await, Refresh::StillRefused { .. }));
    assert_eq!(total(&captured, "PolicyRefused"), 2);
    assert_eq!(total(&captured, "PolicyUpdated"), 1);
    for line in captured.lines() {
        assert_eq!(line["Function"], "banking-antifraud");
        assert_eq!(line["Policy"], "live");
    }

    // A function cannot start on an invalid policy.
    assert!(
        S3Policy::load(
            s3.clone(),
            &names.bucket,
            KEY,
            "live",
            "banking-antifraud",
            Emf::default()
        )
        .await
        .is_err()
    );
    // Nor on a missing one.
    let missing = PolicySettings {
        live: PolicyLocation::S3 {
            bucket: names.bucket.clone(),
            key: "policies/missing.json".into(),
        },
        shadow: None,
        refresh: None,
    };
    assert!(
        missing
            .load(&s3, "banking-antifraud", &Emf::default())
            .await
            .is_err()
    );

    // A valid version after the refused one is picked up again.
    put(&s3, &names.bucket, KEY, &approve_all).await?;
    assert!(matches!(live.refresh().await, Refresh::Updated { .. }));
    assert_eq!(pismo.send(&runner, &banking("b-4")?).await?.json(), approve);
    Ok(())
}

/// A log writer the test reads back.
#[derive(Clone, Default)]
struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        self.0
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn a_shadow_that_cannot_load_is_skipped_and_the_live_policy_answers() -> anyhow::Result<()> {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (_moto, sdk, names) = Moto::start_with_resources().await?;
    let s3 = shared::aws::s3_client(&sdk);
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let journal = DynamoJournal::new(ddb.clone(), &names.journal_table);
    let pismo = Pismo::start().await?;
    let approve_all = banking_policy("approve");
    put(&s3, &names.bucket, KEY, &approve_all).await?;
    // An invalid shadow object, marked so that the test sees whether its text is logged.
    let invalid = json!({
        "description": "do-not-log-this-document",
        "banking_antifraud": {"default": {"decision": "maybe"}, "fallback": {"decision": "reject"}}
    })
    .to_string();
    put(&s3, &names.bucket, "policies/invalid-shadow.json", &invalid).await?;

    let mut id = 0;
    for shadow_key in [
        "policies/missing-shadow.json",
        "policies/invalid-shadow.json",
    ] {
        let (emf, captured) = Emf::capture(WEBHOOKS_NAMESPACE);
        // POLICY_URI names the live object; SHADOW_POLICY_URI one that cannot be loaded.
        let settings = PolicySettings {
            live: PolicyLocation::S3 {
                bucket: names.bucket.clone(),
                key: KEY.into(),
            },
            shadow: Some(PolicyLocation::S3 {
                bucket: names.bucket.clone(),
                key: shadow_key.into(),
            }),
            refresh: Some(std::time::Duration::from_secs(3600)),
        };
        let policies = settings.load(&s3, "banking-antifraud", &emf).await?;
        assert!(
            policies.shadow.is_none(),
            "{shadow_key}: a shadow was loaded"
        );
        assert_eq!(
            policies.reloaders.len(),
            1,
            "only the live policy is refreshed"
        );
        assert_eq!(policies.live.current().version, version_of(&approve_all));

        // Counted once, as the shadow of this function.
        let lines = captured.lines();
        assert_eq!(lines.len(), 1, "{shadow_key}: {lines:?}");
        assert_eq!(lines[0]["PolicySkipped"], 1);
        assert_eq!(lines[0]["Function"], "banking-antifraud");
        assert_eq!(lines[0]["Policy"], "shadow");

        // The live policy answers, and its decisions record no shadow.
        let runner = WebhookRunner::new(
            PolicyWebhook::<BankingAntifraud>::new(policies.live.clone())
                .with_shadow(policies.shadow.clone()),
            pismo.verifier(),
            Arc::new(journal.clone()),
            config(),
        );
        id += 1;
        let answer = pismo
            .send(&runner, &banking(&format!("skip-{id}"))?)
            .await?;
        assert_eq!(answer.json(), json!({"decision": "approve"}));
        let e = entry(&journal, &format!("banking-antifraud#skip-{id}")).await?;
        assert_eq!(e.policy_version, version_of(&approve_all));
        assert!(e.shadow.is_none());

        // Logged as a warning naming the object, never its text.
        let text = logs.text();
        let warning = text
            .lines()
            .find(|l| l.contains("shadow policy skipped") && l.contains(shadow_key))
            .ok_or_else(|| anyhow::anyhow!("no warning for {shadow_key} in {text}"))?;
        let warning: Value = serde_json::from_str(warning)?;
        assert_eq!(warning["level"], "WARN");
        assert_eq!(warning["fields"]["policy"], "shadow");
        assert_eq!(
            warning["fields"]["source"],
            format!("s3://{}/{shadow_key}", names.bucket)
        );
    }
    assert!(!logs.text().contains("do-not-log-this-document"));

    // The live policy still fails the start, naming itself, when it is the one missing.
    let settings = PolicySettings {
        live: PolicyLocation::S3 {
            bucket: names.bucket.clone(),
            key: "policies/missing-live.json".into(),
        },
        shadow: Some(PolicyLocation::S3 {
            bucket: names.bucket.clone(),
            key: KEY.into(),
        }),
        refresh: None,
    };
    match settings
        .load(&s3, "banking-antifraud", &Emf::default())
        .await
    {
        Ok(_) => anyhow::bail!("started without a live policy"),
        Err(e) => {
            let e = e.to_string();
            let named = format!(
                "the live policy (s3://{}/policies/missing-live.json) cannot be used: cannot read policy",
                names.bucket
            );
            assert!(e.starts_with(&named), "{e}");
        }
    }
    Ok(())
}

/// Where one test's shadowed runners send, journal and count.
#[derive(Clone, Copy)]
struct Bench<'a> {
    shadow: &'a PolicyHandle,
    pismo: &'a Pismo,
    journal: &'a DynamoJournal,
    emf: &'a Emf,
}

impl Bench<'_> {
    /// A plain runner and one shadowed by `self.shadow`, of the same webhook.
    fn pair<W: Webhook>(
        &self,
        make: impl Fn(Option<PolicyHandle>) -> W,
    ) -> (WebhookRunner<W>, WebhookRunner<W>) {
        let runner = |shadow: Option<PolicyHandle>| {
            WebhookRunner::new(
                make(shadow),
                self.pismo.verifier(),
                Arc::new(self.journal.clone()),
                config(),
            )
        };
        (
            runner(None),
            runner(Some(self.shadow.clone())).with_metrics(self.emf.clone()),
        )
    }

    /// `plain_body` through the plain runner and `shadowed_body` through the shadowed one
    /// get the same answer, `live`; the shadowed decision's entry `id` records that the
    /// shadow would have answered `would` (see `assert_shadow_declined`).
    async fn shadow_declines<W: Webhook>(
        &self,
        make: impl Fn(Option<PolicyHandle>) -> W,
        (plain_body, shadowed_body): (&Value, &Value),
        live: Value,
        id: &str,
        would: Value,
    ) -> anyhow::Result<()> {
        let (plain, shadowed) = self.pair(make);
        let a = self.pismo.send(&plain, plain_body).await?;
        let b = self.pismo.send(&shadowed, shadowed_body).await?;
        assert_eq!(a, b);
        assert_eq!(b.json(), live);
        let e = entry(self.journal, id).await?;
        assert_shadow_declined(&e, &b.json(), &would)
    }
}

fn assert_shadow_declined(e: &Entry, live: &Value, would: &Value) -> anyhow::Result<()> {
    assert_eq!(serde_json::from_str::<Value>(&e.answer)?, *live, "{}", e.id);
    let shadow = e
        .shadow
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("{}: no shadow", e.id))?;
    assert_eq!(shadow.version, version_of(DENY_ALL));
    assert_eq!(shadow.label, "deny-all");
    assert!(shadow.differs);
    let answer = shadow.answer.as_deref().unwrap_or("null");
    assert_eq!(serde_json::from_str::<Value>(answer)?, *would, "{}", e.id);
    Ok(())
}

#[tokio::test]
async fn a_shadow_that_declines_everything_changes_no_answer_and_is_journaled() -> anyhow::Result<()>
{
    let (_moto, sdk, names) = Moto::start_with_resources().await?;
    let s3 = shared::aws::s3_client(&sdk);
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let journal = DynamoJournal::new(ddb.clone(), &names.journal_table);
    let pismo = Pismo::start().await?;
    let (emf, captured) = Emf::capture(WEBHOOKS_NAMESPACE);
    // The shadow comes from S3 (SHADOW_POLICY_URI); the live policy is the shipped default.
    put(&s3, &names.bucket, "policies/shadow.json", DENY_ALL).await?;
    let settings = PolicySettings {
        live: PolicyLocation::Builtin,
        shadow: Some(PolicyLocation::S3 {
            bucket: names.bucket.clone(),
            key: "policies/shadow.json".into(),
        }),
        refresh: None,
    };
    let policies = settings.load(&s3, "all", &Emf::default()).await?;
    let shadow = policies
        .shadow
        .ok_or_else(|| anyhow::anyhow!("no shadow loaded"))?;
    let live = policies.live.current();
    assert_eq!(live.version, Policy::builtin()?.version);

    let bench = Bench {
        shadow: &shadow,
        pismo: &pismo,
        journal: &journal,
        emf: &emf,
    };

    // Card tokenization.
    let mut first = sample_body("card-tokenization-approve.json")?;
    let mut second = first.clone();
    second["token_id"] = json!(2002);
    bench
        .shadow_declines(
            |s| PolicyWebhook::<CardTokenization>::new(policies.live.clone()).with_shadow(s),
            (&first, &second),
            json!({"approve": true, "action_code": "00"}),
            "card-tokenization#2002:134142",
            json!({"approve": false, "action_code": "05"}),
        )
        .await?;
    assert!(
        entry(&journal, "card-tokenization#1001:134142")
            .await?
            .shadow
            .is_none()
    );

    // Banking.
    bench
        .shadow_declines(
            |s| PolicyWebhook::<BankingAntifraud>::new(policies.live.clone()).with_shadow(s),
            (&banking("s-1")?, &banking("s-2")?),
            json!({"decision": "approve", "metadata": {}}),
            "banking-antifraud#s-2",
            json!({"decision": "reject"}),
        )
        .await?;

    // Full balance.
    first = sample_body("full-balance-antifraud-approve.json")?;
    first["id"] = json!("fb-1");
    second = first.clone();
    second["id"] = json!("fb-2");
    bench
        .shadow_declines(
            |s| PolicyWebhook::<FullBalanceAntifraud>::new(policies.live.clone()).with_shadow(s),
            (&first, &second),
            json!({"approve": true, "response_code": "00"}),
            "full-balance-antifraud#fb-2",
            json!({"approve": false, "response_code": "05"}),
        )
        .await?;

    // Zero balance: the shadow's anti-fraud step would decline; the ledger still approves
    // and the money moves once.
    let ledger = DynamoLedger::new(ddb.clone(), &names.ledger_table, &names.journal_table);
    put_account(&ledger, "902", Decimal::from_str("100.00")?).await?;
    let ledger = Arc::new(ledger);
    let (_plain, shadowed) = bench.pair(|s| {
        ZeroBalanceWebhook::new(
            policies.live.clone(),
            ledger.clone(),
            ZeroBalanceCodes::default(),
        )
        .with_shadow(s)
    });
    let zb = json!({
        "id": "zb-1", "entity": "transaction",
        "fields": {
            "mti": "0100", "card_id": 901, "account_id": 902,
            "amount_transaction": 10.00, "amount_local": 10.00, "amount_settlement": 10.00,
            "transaction_timestamp": "2019-05-09 15:52:00", "processing_code": "00",
            "currency": "986", "mcc": "5411", "authorization_code": "A1", "response_code": "00"
        }
    });
    let b = pismo.send(&shadowed, &zb).await?;
    assert_eq!(
        b.json(),
        json!({"is_approved": true, "response_code": "00"})
    );
    let e = entry(&journal, "zero-balance#request#zb-1").await?;
    assert_shadow_declined(
        &e,
        &b.json(),
        &json!({"is_approved": false, "response_code": "05"}),
    )?;
    assert!(e.money.as_ref().is_some_and(|m| m.moved));
    let account = ledger
        .account("902", OPERATOR_TIMEOUT)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no account"))?;
    assert_eq!(account.available, Decimal::from_str("90.00")?);

    // Every shadowed decision was counted as differing; a retry replays without counting.
    assert_eq!(pismo.send(&shadowed, &zb).await?, b);
    let lines = captured.lines();
    assert_eq!(lines.len(), 5);
    assert_eq!(total(&captured, "ShadowDiffers"), 4);

    // A shadow that agrees is journaled as such and not counted.
    let same = PolicyHandle::from(Policy::builtin()?);
    let (_, agreeing) = Bench {
        shadow: &same,
        ..bench
    }
    .pair(|s| PolicyWebhook::<BankingAntifraud>::new(policies.live.clone()).with_shadow(s));
    let c = pismo.send(&agreeing, &banking("s-3")?).await?;
    assert_eq!(c.json(), json!({"decision": "approve", "metadata": {}}));
    let e = entry(&journal, "banking-antifraud#s-3").await?;
    let agreed = e
        .shadow
        .ok_or_else(|| anyhow::anyhow!("no shadow record"))?;
    assert!(!agreed.differs);
    assert_eq!(agreed.answer.as_deref(), Some(e.answer.as_str()));
    assert_eq!(agreed.label, e.label);
    assert_eq!(agreed.version, live.version);
    assert_eq!(total(&captured, "ShadowDiffers"), 4);
    Ok(())
}

#[tokio::test]
async fn a_shadow_answers_a_control_refusal_with_its_own_control_outcome() -> anyhow::Result<()> {
    use shared::controls::{ControlStore, Controls, DynamoControls, Scope};
    let (_moto, sdk, names) = Moto::start_with_resources().await?;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let journal = DynamoJournal::new(ddb.clone(), &names.journal_table);
    let pismo = Pismo::start().await?;
    let controls = DynamoControls::new(ddb.clone(), &names.controls_table);
    controls
        .set(
            &Scope::Card("555".into()),
            &Controls {
                blocked: true,
                ..Default::default()
            },
        )
        .await?;
    let store: Arc<dyn ControlStore> = Arc::new(controls);
    let runner = WebhookRunner::new(
        PolicyWebhook::<FullBalanceAntifraud>::new(Policy::builtin()?)
            .with_controls(Some(store))
            .with_shadow(Some(PolicyHandle::from(Policy::from_json(DENY_ALL)?))),
        pismo.verifier(),
        Arc::new(journal.clone()),
        config(),
    );
    let mut body = sample_body("full-balance-antifraud-approve.json")?;
    body["id"] = json!("fb-blocked");
    body["fields"]["card_id"] = json!(555);
    let a = pismo.send(&runner, &body).await?;
    // The live policy's not-permitted outcome; the shadow has no `controls` outcomes, so it
    // would have answered its fallback, under the same control label.
    assert_eq!(a.json(), json!({"approve": false, "response_code": "57"}));
    let e = entry(&journal, "full-balance-antifraud#fb-blocked").await?;
    let shadow = e
        .shadow
        .ok_or_else(|| anyhow::anyhow!("no shadow record"))?;
    assert_eq!(shadow.label, e.label);
    assert_eq!(
        serde_json::from_str::<Value>(shadow.answer.as_deref().unwrap_or("null"))?,
        json!({"approve": false, "response_code": "96"})
    );
    assert!(shadow.differs);
    Ok(())
}
