//! The issuer's decision policy: a JSON file with one section per webhook, each an ordered list
//! of rules (first match wins), a default outcome and a fallback outcome.
//!
//! ```json
//! {
//!   "card_tokenization": {
//!     "rules": [
//!       { "name": "cancelled-visa",
//!         "when": [ {"field": "network_brand", "eq": "vts"},
//!                   {"field": "custom_codes", "contains": "CCS"} ],
//!         "then": {"approve": false, "action_code": "46"} }
//!     ],
//!     "default":  {"approve": true,  "action_code": "00"},
//!     "fallback": {"approve": false, "action_code": "96"}
//!   }
//! }
//! ```
//!
//! Outcomes are the webhook's own response, exactly as it goes on the wire; each one is checked
//! and serialized once when the policy loads, so a decision costs only the rule evaluation.
//! A section left out of the file is taken from the default policy shipped in the package
//! (`shared/policy/default-policy.json`). See `docs/policy.md` for the reference.

mod inputs;
pub use inputs::{NOT_JOURNALED, all_inputs, inputs_of, version_of};
mod condition;
mod field;
mod outcome;
pub mod schema;
pub mod signals;
mod subjects;

pub use condition::{Cmp, Condition, Pattern, RawCondition, Scalar};
pub use field::{
    Field, FieldKind, IntoField, NETWORK_DATA_PREFIX, PolicySubject, is_network_path,
    network_field, network_field_of,
};
pub use outcome::Outcome;

use std::cell::OnceCell;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::signals::Signals;

use crate::models::{
    BankingRequest, BankingResponse, FullBalanceRequest, FullBalanceResponse, TokenizationRequest,
    TokenizationResponse, ZeroBalanceRequest, ZeroBalanceResponse,
};

/// The policy shipped in the package.
pub const DEFAULT_POLICY: &str = include_str!("../../policy/default-policy.json");

/// A policy that cannot be used. The message names the section, the rule and the problem.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy {path}: {message}")]
    Read { path: String, message: String },
    #[error("policy is not valid JSON: {0}")]
    Syntax(String),
    #[error("policy {section}: {problem}")]
    Section { section: String, problem: String },
    #[error("policy {section}, rule {rule}: {problem}")]
    Rule {
        section: String,
        rule: String,
        problem: String,
    },
    /// The policy of a role (`live`) from a source (a file, an S3 object) cannot be used.
    #[error("the {role} policy ({from}) cannot be used: {error}")]
    Source {
        role: &'static str,
        from: String,
        error: Box<PolicyError>,
    },
}

/// A decided outcome: the response body (pre-serialized) and what produced it.
#[derive(Debug)]
pub struct Decided<O> {
    pub value: O,
    pub body: Arc<str>,
    /// The rule name, `default` or `fallback`: for logs and metrics.
    pub label: Arc<str>,
}

impl<O: Clone> Clone for Decided<O> {
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            body: self.body.clone(),
            label: self.label.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct Rule<O> {
    conditions: Vec<Condition>,
    outcome: Decided<O>,
}

/// One webhook's compiled rules.
#[derive(Debug)]
pub struct Section<R, O> {
    rules: Vec<Rule<O>>,
    /// Whether a rule names an `original_network_data.*` field.
    network: bool,
    /// Whether a rule names a `signals.*` field.
    signals: bool,
    default: Decided<O>,
    fallback: Decided<O>,
    controls: ControlOutcomes<O>,
    _request: PhantomData<fn(&R)>,
}

/// The outcomes a section answers when a card control or velocity limit refuses
/// ([`crate::controls`]); an outcome left out is the section's fallback.
#[derive(Debug)]
struct ControlOutcomes<O> {
    not_permitted: Option<Decided<O>>,
    amount_limit: Option<Decided<O>>,
    count_limit: Option<Decided<O>>,
    step_up_unavailable: Option<Decided<O>>,
}

impl<O: Clone> Clone for ControlOutcomes<O> {
    fn clone(&self) -> Self {
        Self {
            not_permitted: self.not_permitted.clone(),
            amount_limit: self.amount_limit.clone(),
            count_limit: self.count_limit.clone(),
            step_up_unavailable: self.step_up_unavailable.clone(),
        }
    }
}

impl<R, O: Clone> Clone for Section<R, O> {
    fn clone(&self) -> Self {
        Self {
            rules: self.rules.clone(),
            network: self.network,
            signals: self.signals,
            default: self.default.clone(),
            fallback: self.fallback.clone(),
            controls: self.controls.clone(),
            _request: PhantomData,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawControlOutcomes {
    #[serde(default)]
    not_permitted: Option<Value>,
    #[serde(default)]
    amount_limit: Option<Value>,
    #[serde(default)]
    count_limit: Option<Value>,
    #[serde(default)]
    step_up_unavailable: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    when: Vec<RawCondition>,
    then: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSection {
    #[serde(default)]
    rules: Vec<RawRule>,
    default: Value,
    fallback: Value,
    #[serde(default)]
    controls: Option<RawControlOutcomes>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default, rename = "$schema")]
    _schema: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    card_tokenization: Option<Value>,
    #[serde(default)]
    banking_antifraud: Option<Value>,
    #[serde(default)]
    full_balance_antifraud: Option<Value>,
    #[serde(default)]
    zero_balance: Option<Value>,
}

fn compile_outcome<O: Outcome>(value: &Value, label: &str) -> Result<Decided<O>, String> {
    O::check_fields(value)?;
    let parsed: O = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    parsed.check()?;
    let body = serde_json::to_string(&parsed).map_err(|e| e.to_string())?;
    Ok(Decided {
        value: parsed,
        body: body.into(),
        label: label.into(),
    })
}

/// [`compile_outcome`] of an outcome answered when no rule decided (the `fallback` and the
/// `controls` outcomes), with the section's further checks of those ([`Outcome::check_fallback`]).
fn compile_fallback<O: Outcome>(value: &Value, label: &str) -> Result<Decided<O>, String> {
    let d = compile_outcome::<O>(value, label)?;
    d.value.check_fallback()?;
    Ok(d)
}

impl<R: PolicySubject, O: Outcome> Section<R, O> {
    fn compile(section: &str, value: Value) -> Result<Self, PolicyError> {
        let raw: RawSection = serde_json::from_value(value).map_err(|e| PolicyError::Section {
            section: section.into(),
            problem: e.to_string(),
        })?;
        let section_err = |what: &str, problem: String| PolicyError::Section {
            section: section.into(),
            problem: format!("{what}: {problem}"),
        };
        let default =
            compile_outcome(&raw.default, "default").map_err(|p| section_err("default", p))?;
        let fallback =
            compile_fallback(&raw.fallback, "fallback").map_err(|p| section_err("fallback", p))?;
        let raw_controls = raw.controls.unwrap_or_default();
        let control = |v: &Option<Value>, name: &str| {
            v.as_ref()
                .map(|v| compile_fallback(v, name))
                .transpose()
                .map_err(|p| section_err(&format!("controls.{name}"), p))
        };
        let controls = ControlOutcomes {
            not_permitted: control(&raw_controls.not_permitted, "not_permitted")?,
            amount_limit: control(&raw_controls.amount_limit, "amount_limit")?,
            count_limit: control(&raw_controls.count_limit, "count_limit")?,
            step_up_unavailable: control(&raw_controls.step_up_unavailable, "step_up_unavailable")?,
        };
        let mut rules = Vec::with_capacity(raw.rules.len());
        for (i, rule) in raw.rules.into_iter().enumerate() {
            let name = rule.name.clone().unwrap_or_else(|| format!("#{}", i + 1));
            let rule_err = |problem: String| PolicyError::Rule {
                section: section.into(),
                rule: format!("'{name}'"),
                problem,
            };
            if rule.when.is_empty() {
                return Err(rule_err(
                    "has no conditions (`when`); put an unconditional outcome in `default`".into(),
                ));
            }
            let conditions = rule
                .when
                .iter()
                .map(|c| c.compile(&R::kind_of))
                .collect::<Result<Vec<_>, _>>()
                .map_err(&rule_err)?;
            let outcome = compile_outcome(&rule.then, &name).map_err(&rule_err)?;
            rules.push(Rule {
                conditions,
                outcome,
            });
        }
        let (mut network, mut signals) = (false, false);
        for c in rules.iter().flat_map(|r: &Rule<O>| &r.conditions) {
            c.visit_fields(&mut |f| {
                network |= f.starts_with(NETWORK_DATA_PREFIX);
                signals |= f.starts_with(crate::signals::PREFIX);
            });
        }
        Ok(Self {
            rules,
            network,
            signals,
            default,
            fallback,
            controls,
            _request: PhantomData,
        })
    }

    /// The first matching rule's outcome, or the default.
    pub fn decide(&self, request: &R) -> &Decided<O> {
        self.first_match(request).unwrap_or(&self.default)
    }

    /// The first matching rule's outcome, if any rule matches. The request's raw
    /// `original_network_data` is parsed only when a rule names one of its members, and
    /// then at most once.
    pub fn first_match(&self, request: &R) -> Option<&Decided<O>> {
        self.first_match_signals(request, None)
    }

    /// [`Section::decide`] with the card's behavioural signals (`signals.*` paths; absent
    /// when `signals` is `None`).
    pub fn decide_signals(&self, request: &R, signals: Option<&Signals>) -> &Decided<O> {
        self.first_match_signals(request, signals)
            .unwrap_or(&self.default)
    }

    /// [`Section::first_match`] with the card's behavioural signals.
    pub fn first_match_signals(
        &self,
        request: &R,
        signals: Option<&Signals>,
    ) -> Option<&Decided<O>> {
        let base = |p: &str| match (p.strip_prefix(crate::signals::PREFIX), signals) {
            (Some(_), Some(s)) => signals::field(s, p),
            (Some(_), None) => Field::Absent,
            (None, _) => request.field(p),
        };
        if !self.network {
            return self.first_match_by(&base);
        }
        let parsed: OnceCell<Option<Value>> = OnceCell::new();
        self.first_match_by(&|p: &str| match p.strip_prefix(NETWORK_DATA_PREFIX) {
            Some(rest) => parsed
                .get_or_init(|| request.network_data().and_then(|raw| raw.to_value().ok()))
                .as_ref()
                .map_or(Field::Absent, |data| network_field(data, rest)),
            None => base(p),
        })
    }

    /// Whether a rule names a behavioural signal (`signals.*`).
    pub fn reads_signals(&self) -> bool {
        self.signals
    }

    /// [`Section::decide`] over any field lookup, for example the journaled inputs of a
    /// decision (a map of field path to value): `lookup` answers each path a rule names,
    /// `Field::Absent` for one it does not have.
    pub fn decide_with<'f>(&self, lookup: &dyn Fn(&str) -> Field<'f>) -> &Decided<O> {
        self.first_match_by(lookup).unwrap_or(&self.default)
    }

    /// [`Section::first_match`] over any field lookup.
    pub fn first_match_with<'f>(&self, lookup: &dyn Fn(&str) -> Field<'f>) -> Option<&Decided<O>> {
        self.first_match_by(lookup)
    }

    fn first_match_by<'f, F>(&self, lookup: &F) -> Option<&Decided<O>>
    where
        F: Fn(&str) -> Field<'f> + ?Sized,
    {
        self.rules
            .iter()
            .find(|r| r.conditions.iter().all(|c| c.matches_with(lookup)))
            .map(|r| &r.outcome)
    }

    /// Every field path the rules name, once each, in rule order: what a decision reads,
    /// and so what a backtest needs of a journaled request.
    pub fn field_paths(&self) -> Vec<&str> {
        let mut paths: Vec<&str> = Vec::new();
        for c in self.rules.iter().flat_map(|r| &r.conditions) {
            c.visit_fields(&mut |f| {
                if !paths.contains(&f) {
                    paths.push(f);
                }
            });
        }
        paths
    }

    /// The answer when a dependency is slow or down.
    pub fn fallback(&self) -> &Decided<O> {
        &self.fallback
    }

    /// The answer when a control refuses, labelled with the control (`control_mcc`, ...):
    /// the section's `controls` outcome of that class, else its fallback.
    pub fn control_outcome(&self, class: crate::controls::OutcomeClass, label: &str) -> Decided<O> {
        use crate::controls::OutcomeClass;
        let configured = match class {
            OutcomeClass::NotPermitted => &self.controls.not_permitted,
            OutcomeClass::AmountLimit => &self.controls.amount_limit,
            OutcomeClass::CountLimit => &self.controls.count_limit,
            OutcomeClass::StepUpUnavailable => &self.controls.step_up_unavailable,
        };
        let d = configured.as_ref().unwrap_or(&self.fallback);
        Decided {
            value: d.value.clone(),
            body: d.body.clone(),
            label: label.into(),
        }
    }

    pub fn default_outcome(&self) -> &Decided<O> {
        &self.default
    }
}

/// The whole policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// SHA-256 (hex) of the policy document, journaled with every decision.
    pub version: String,
    pub card_tokenization: Section<TokenizationRequest, TokenizationResponse>,
    pub banking_antifraud: Section<BankingRequest, BankingResponse>,
    pub full_balance_antifraud: Section<FullBalanceRequest, FullBalanceResponse>,
    pub zero_balance: Section<ZeroBalanceRequest, ZeroBalanceResponse>,
}

fn section_value(
    name: &str,
    given: Option<Value>,
    defaults: &mut Option<RawPolicy>,
) -> Result<Value, PolicyError> {
    if let Some(v) = given {
        return Ok(v);
    }
    if defaults.is_none() {
        *defaults = Some(
            serde_json::from_str(DEFAULT_POLICY).map_err(|e| PolicyError::Syntax(e.to_string()))?,
        );
    }
    let d = defaults
        .as_mut()
        .ok_or_else(|| PolicyError::Syntax("default policy missing".into()))?;
    let v = match name {
        "card_tokenization" => d.card_tokenization.take(),
        "banking_antifraud" => d.banking_antifraud.take(),
        "full_balance_antifraud" => d.full_balance_antifraud.take(),
        _ => d.zero_balance.take(),
    };
    v.ok_or_else(|| PolicyError::Section {
        section: name.into(),
        problem: "missing from the default policy".into(),
    })
}

impl Policy {
    /// Parses and validates a policy document.
    pub fn from_json(text: &str) -> Result<Self, PolicyError> {
        let raw: RawPolicy =
            serde_json::from_str(text).map_err(|e| PolicyError::Syntax(e.to_string()))?;
        let _ = raw.description;
        let mut defaults = None;
        Ok(Self {
            version: inputs::version_of(text),
            card_tokenization: Section::compile(
                "card_tokenization",
                section_value("card_tokenization", raw.card_tokenization, &mut defaults)?,
            )?,
            banking_antifraud: Section::compile(
                "banking_antifraud",
                section_value("banking_antifraud", raw.banking_antifraud, &mut defaults)?,
            )?,
            full_balance_antifraud: Section::compile(
                "full_balance_antifraud",
                section_value(
                    "full_balance_antifraud",
                    raw.full_balance_antifraud,
                    &mut defaults,
                )?,
            )?,
            zero_balance: Section::compile(
                "zero_balance",
                section_value("zero_balance", raw.zero_balance, &mut defaults)?,
            )?,
        })
    }

    /// Reads and validates a policy file.
    pub fn from_file(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_json(&text)
    }

    /// The policy shipped in the package.
    pub fn builtin() -> Result<Self, PolicyError> {
        Self::from_json(DEFAULT_POLICY)
    }

    /// `POLICY_FILE` if set, else the shipped default.
    pub fn from_env() -> Result<Self, PolicyError> {
        match crate::settings::Env::process().optional("POLICY_FILE") {
            Some(p) => Self::from_file(Path::new(&p)),
            None => Self::builtin(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const MASTERCARD_ZERO_BALANCE: &str = include_str!(
        "../../tests/fixtures/seeds/zero_balance_request_with_mastercard_network_data.json"
    );

    const RULES: &str = r#"{"zero_balance": {"rules": [
        {"name": "risky", "when": [{"any": [
            {"field": "original_network_data.de48.se75.sf1", "gte": 30},
            {"all": [{"field": "fields.mcc", "prefix": "79"}, {"not": {"field": "fields.country_code", "eq": "076"}}]}
        ]}], "then": {"is_approved": false, "response_code": "59"}},
        {"name": "small", "when": [{"field": "fields.amount_transaction", "between": [1, "10.00"]},
                                   {"field": "fields.merchant_city", "regex": "^SAO\\s"}],
         "then": {"is_approved": false, "response_code": "61"}}
    ], "default": {"is_approved": true, "response_code": "00"},
       "fallback": {"is_approved": false, "response_code": "96"}}}"#;

    /// Every field the section could read, as a backtest would have stored it.
    fn stored_inputs<'r>(
        request: &'r ZeroBalanceRequest,
        section: &Section<ZeroBalanceRequest, ZeroBalanceResponse>,
    ) -> HashMap<String, Field<'r>> {
        ZeroBalanceRequest::FIELDS
            .iter()
            .map(|(p, _)| *p)
            .chain(section.field_paths())
            .map(|p| (p.to_string(), request.field(p)))
            .collect()
    }

    fn request(edit: impl FnOnce(&mut Value)) -> ZeroBalanceRequest {
        let mut v: Value = serde_json::from_str(MASTERCARD_ZERO_BALANCE).unwrap();
        edit(&mut v);
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn decide_with_stored_inputs_equals_decide_on_the_request() {
        let policy = Policy::from_json(RULES).unwrap();
        let section = &policy.zero_balance;
        let score = |s: &'static str| {
            move |v: &mut Value| {
                v["fields"]["original_network_data"]["de48_additional_data_private_user"]["se75_fraud_scoring_data"]
                    ["sf1_fraud_score"] = s.into()
            }
        };
        let cases: Vec<(ZeroBalanceRequest, &str)> = vec![
            (request(|_| {}), "risky"),
            (request(score("010")), "small"),
            (
                request(|v| {
                    score("010")(v);
                    v["fields"]["mcc"] = "7995".into();
                    v["fields"]["country_code"] = "840".into();
                }),
                "risky",
            ),
            (
                request(|v| {
                    score("010")(v);
                    v["fields"]["amount_transaction"] = "10.01".into();
                }),
                "default",
            ),
        ];
        for (request, want) in &cases {
            let direct = section.decide(request);
            assert_eq!(&*direct.label, *want);
            let inputs = stored_inputs(request, section);
            let lookup = |p: &str| inputs.get(p).cloned().unwrap_or(Field::Absent);
            let replayed = section.decide_with(&lookup);
            assert!(std::ptr::eq(direct, replayed), "{want}: {}", replayed.label);
        }
        // The lookup is what decides: without the score the first case is no longer risky.
        let first = &cases[0].0;
        let mut inputs = stored_inputs(first, section);
        inputs.remove("original_network_data.de48.se75.sf1");
        let lookup = |p: &str| inputs.get(p).cloned().unwrap_or(Field::Absent);
        assert_eq!(&*section.decide_with(&lookup).label, "small");
    }

    /// A Zero balance section with `fallback` and `controls` as given, and one approving rule.
    fn zero_balance_section(fallback: &str, controls: &str) -> String {
        format!(
            r#"{{"zero_balance": {{
                "rules": [{{"name": "through", "when": [{{"field": "fields.mcc", "eq": "5411"}}],
                            "then": {{"is_approved": true, "response_code": "00"}}}}],
                "default": {{"is_approved": true, "response_code": "00"}},
                "fallback": {fallback}{controls}}}}}"#
        )
    }

    const DECLINE: &str = r#"{"is_approved": false, "response_code": "96"}"#;
    const APPROVE: &str = r#"{"is_approved": true, "response_code": "00"}"#;

    #[test]
    fn zero_balance_refuses_an_outcome_that_approves_without_the_ledger() {
        let mut cases = vec![(zero_balance_section(APPROVE, ""), "fallback".to_string())];
        for name in schema::CONTROL_OUTCOMES {
            let controls = format!(r#", "controls": {{"{name}": {APPROVE}}}"#);
            cases.push((
                zero_balance_section(DECLINE, &controls),
                format!("controls.{name}"),
            ));
        }
        for (text, outcome) in &cases {
            match Policy::from_json(text) {
                Err(e @ PolicyError::Section { .. }) => {
                    let e = e.to_string();
                    assert!(
                        e.starts_with(&format!("policy zero_balance: {outcome}: approves")),
                        "{outcome}: {e}"
                    );
                    assert!(e.contains("without the ledger"), "{outcome}: {e}");
                }
                Err(other) => panic!("{outcome}: wrong error kind: {other}"),
                Ok(_) => panic!("{outcome}: an approving outcome was accepted"),
            }
        }
    }

    #[test]
    fn zero_balance_declining_fallbacks_and_approving_rules_load() -> Result<(), PolicyError> {
        let controls: Vec<String> = schema::CONTROL_OUTCOMES
            .iter()
            .map(|n| format!(r#""{n}": {DECLINE}"#))
            .collect();
        let text = zero_balance_section(
            DECLINE,
            &format!(r#", "controls": {{{}}}"#, controls.join(", ")),
        );
        let policy = Policy::from_json(&text)?;
        // The approving rule and the approving default stay: they go on to the ledger.
        assert!(policy.zero_balance.rules[0].outcome.value.approves());
        assert!(policy.zero_balance.default_outcome().value.approves());
        assert!(!policy.zero_balance.fallback().value.approves());
        // Other sections may still approve in their fallback and controls (no ledger there).
        let fb = r#"{"full_balance_antifraud": {"default": {"approve": true, "response_code": "00"},
            "fallback": {"approve": true, "response_code": "00"},
            "controls": {"not_permitted": {"approve": true, "response_code": "00"}}}}"#;
        assert!(
            Policy::from_json(fb)?
                .full_balance_antifraud
                .fallback()
                .value
                .approves()
        );
        Ok(())
    }

    #[test]
    fn field_paths_lists_every_named_field_once() {
        let policy = Policy::from_json(RULES).unwrap();
        assert_eq!(
            policy.zero_balance.field_paths(),
            [
                "original_network_data.de48.se75.sf1",
                "fields.mcc",
                "fields.country_code",
                "fields.amount_transaction",
                "fields.merchant_city",
            ]
        );
        assert!(policy.zero_balance.network);
        assert!(!Policy::builtin().unwrap().zero_balance.network);
    }
}
