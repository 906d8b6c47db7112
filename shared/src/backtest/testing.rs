//! Journal entries for backtest tests, the unit tests' and the integration tests' alike: what
//! a backtest reads of a decision (its id, answer, label, how, time and inputs), the rest
//! fixed.

use std::borrow::Cow;

use rust_decimal::Decimal;

use crate::journal::{Entry, How, Input, Inputs};
use crate::webhook::{FullBalanceAntifraud, PolicyKind};

/// A journal entry `id` answered `answer` (rule `label`, reached `how`) at `at_ms`, over
/// `inputs`; kept (no expiration), without money, reconciliation, shadow or signal update.
pub fn entry(
    id: &str,
    (label, how): (&str, How),
    answer: &str,
    at_ms: i64,
    inputs: impl Into<Inputs>,
) -> Entry {
    Entry {
        id: id.into(),
        body_sha256: "ab".into(),
        fingerprint: "ab".into(),
        decision_id: String::new(),
        answer: answer.into(),
        label: label.into(),
        how,
        policy_version: "v".into(),
        decided_at_ms: at_ms,
        expiration: None,
        inputs: inputs.into(),
        money: None,
        reconcile: None,
        shadow: None,
        signals_update: None,
    }
}

/// The journal id of Full balance request `fb-<n>`.
pub fn full_balance_id(n: impl std::fmt::Display) -> String {
    format!("{}#fb-{n}", FullBalanceAntifraud::NAME)
}

/// What a Full balance request of `amount` on card 901 (account 902, a normal card) journals:
/// a purchase in reais (986) at a grocery (MCC 5411) in Brazil.
pub fn full_balance_inputs(amount: i64) -> Vec<(Cow<'static, str>, Input)> {
    let text = |t: &str| Input::Text(t.into());
    let number = |n: i64| Input::Number(Decimal::from(n));
    vec![
        ("fields.card_id".into(), number(901)),
        ("fields.account_id".into(), number(902)),
        ("fields.amount_transaction".into(), number(amount)),
        ("fields.card_status".into(), text("NORMAL")),
        ("fields.currency".into(), text("986")),
        ("fields.mcc".into(), text("5411")),
        ("fields.merchant_state_or_country_code".into(), text("BR")),
    ]
}
