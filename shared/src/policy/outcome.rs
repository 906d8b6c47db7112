//! Checks on outcomes, in each webhook's own terms.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::models::{
    BankingResponse, Decision, FullBalanceResponse, OtpMethod, TokenizationResponse,
    ZeroBalanceResponse,
};

/// A webhook response usable as a policy outcome.
pub trait Outcome: DeserializeOwned + Serialize + Clone + Send + Sync + 'static {
    /// Field names an outcome may use (the response's wire names).
    const FIELDS: &'static [&'static str];

    /// Refuses unknown field names (a typo must not silently change a decision).
    fn check_fields(value: &Value) -> Result<(), String> {
        check_keys(value, Self::FIELDS, "outcome")
    }

    /// Business checks of the outcome.
    fn check(&self) -> Result<(), String>;

    /// Whether the outcome approves (velocity counters count only approvals).
    fn approves(&self) -> bool;

    /// Further checks of an outcome the section answers when no rule decided: its `fallback`
    /// and its `controls` outcomes. Nothing more by default.
    fn check_fallback(&self) -> Result<(), String> {
        Ok(())
    }
}

fn check_keys(value: &Value, allowed: &[&str], what: &str) -> Result<(), String> {
    let obj = value
        .as_object()
        .ok_or_else(|| format!("the {what} must be a JSON object"))?;
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(format!(
                "unknown field name `{k}` in the {what} (allowed: {})",
                allowed.join(", ")
            ));
        }
    }
    Ok(())
}

fn two_chars(what: &str, code: &str) -> Result<(), String> {
    if code.len() == 2 && code.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(format!("{what} `{code}` is not a two-character code"))
    }
}

fn metadata_object(metadata: &Option<Value>) -> Result<(), String> {
    match metadata {
        None | Some(Value::Object(_)) => Ok(()),
        Some(_) => Err("metadata must be a JSON object".into()),
    }
}

const STEP_UP_FIELDS: &[&str] = &["method", "value", "platform", "source"];

impl Outcome for TokenizationResponse {
    const FIELDS: &'static [&'static str] = &["approve", "action_code", "step_up_methods"];

    fn approves(&self) -> bool {
        self.approve
    }

    fn check_fields(value: &Value) -> Result<(), String> {
        check_keys(value, Self::FIELDS, "outcome")?;
        if let Some(Value::Array(methods)) = value.get("step_up_methods") {
            for m in methods {
                check_keys(m, STEP_UP_FIELDS, "step-up method")?;
            }
        }
        Ok(())
    }

    fn check(&self) -> Result<(), String> {
        two_chars("action_code", self.action_code.as_str())?;
        let methods = self.step_up_methods.as_deref().unwrap_or_default();
        if self.action_code.as_str() == "85" && methods.is_empty() {
            return Err(
                "action_code 85 (needs challenge) requires at least one step_up_methods entry"
                    .into(),
            );
        }
        if self.action_code.as_str() != "85" && self.step_up_methods.is_some() {
            return Err(format!(
                "step_up_methods are only sent with action_code 85, not {}",
                self.action_code.as_str()
            ));
        }
        for m in methods {
            let method = m
                .method
                .as_ref()
                .ok_or("every step-up method needs `method`")?;
            if !method.is_known() {
                return Err(format!(
                    "unknown step-up method `{}` (OTPSMS, OTPAPP or OTPCALL)",
                    method.as_str()
                ));
            }
            if let Some(p) = &m.platform {
                if *method != OtpMethod::from("OTPAPP") {
                    return Err(format!(
                        "`platform` is only used with method OTPAPP, not {}",
                        method.as_str()
                    ));
                }
                if !p.is_known() {
                    return Err(format!("unknown platform `{}`", p.as_str()));
                }
            }
        }
        Ok(())
    }
}

impl Outcome for BankingResponse {
    const FIELDS: &'static [&'static str] = &["decision", "metadata"];

    fn approves(&self) -> bool {
        self.decision == Decision::Approve
    }

    fn check(&self) -> Result<(), String> {
        if !self.decision.is_known() {
            return Err(format!(
                "decision `{}` is neither approve nor reject",
                self.decision.as_str()
            ));
        }
        let _: &Decision = &self.decision;
        metadata_object(&self.metadata)
    }
}

impl Outcome for FullBalanceResponse {
    fn approves(&self) -> bool {
        self.approve == Some(true) || self.force_approve == Some(true)
    }

    const FIELDS: &'static [&'static str] = &[
        "approve",
        "force_approve",
        "referral",
        "response_code",
        "metadata",
    ];

    fn check(&self) -> Result<(), String> {
        if let Some(code) = &self.response_code {
            two_chars("response_code", code)?;
        }
        if self.approve.is_none() {
            return Err("`approve` is required in an outcome".into());
        }
        metadata_object(&self.metadata)
    }
}

impl Outcome for ZeroBalanceResponse {
    fn approves(&self) -> bool {
        self.is_approved == Some(true)
    }

    /// A Zero balance approval is the ledger's alone (it debits the account in the same
    /// transaction that stores the answer). The fallback and the `controls` outcomes are
    /// answered without the ledger, so an approving one would tell Pismo "approved" while
    /// nothing is debited: they must decline.
    fn check_fallback(&self) -> Result<(), String> {
        if self.approves() {
            return Err(
                "approves (`is_approved: true`) but is answered without the ledger, so nothing \
                 would be debited; it must decline (`is_approved: false`): only the ledger \
                 approves a Zero balance request"
                    .into(),
            );
        }
        Ok(())
    }

    const FIELDS: &'static [&'static str] = &[
        "is_approved",
        "response_code",
        "limit_amount",
        "available_credit_limit",
    ];

    fn check(&self) -> Result<(), String> {
        match &self.response_code {
            Some(code) => two_chars("response_code", code)?,
            None => return Err("`response_code` is required in an outcome".into()),
        }
        if self.is_approved.is_none() {
            return Err("`is_approved` is required in an outcome".into());
        }
        Ok(())
    }
}
