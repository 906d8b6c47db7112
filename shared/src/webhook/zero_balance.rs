//! The Zero balance validations webhook: the issuer's own anti-fraud rules (the policy's
//! `zero_balance` section), then the account and limit check against the ledger.
//!
//! | `processing_code` (first 2 digits) | effect |
//! |---|---|
//! | `00` purchase, `01` withdrawal | debit `amount_transaction` (billing currency) |
//! | `20` refund, `28` payment | credit |
//! | `30` balance inquiry | nothing; answers `limit_amount` and `available_credit_limit` |
//! | anything else | declined with the `unsupported` code |
//!
//! `mti` `0100` is a request and must pass every check. `012x` is an advice the network already
//! approved: it skips the anti-fraud rules, is recorded even if the balance goes below zero,
//! and is never declined.
//!
//! A policy rule whose outcome has `is_approved: false` declines before the ledger is touched;
//! any other match, or none, goes on to the ledger check.

use std::sync::Arc;

use rust_decimal::Decimal;

use super::runner::{StartupError, env_required, runner_from_env, serve};
use super::{Decision, DependencyError, Webhook};
use crate::ledger::{Applied, Direction, DynamoLedger, Ledger, Movement};
use crate::models::{AvailableCreditLimit, ZeroBalanceRequest, ZeroBalanceResponse};
use crate::policy::{Decided, Policy, Section};

/// Response codes, configurable from the environment.
#[derive(Debug, Clone)]
pub struct ZeroBalanceCodes {
    /// `ZB_CODE_APPROVED` (00).
    pub approved: String,
    /// `ZB_CODE_INSUFFICIENT_FUNDS` (51).
    pub insufficient_funds: String,
    /// `ZB_CODE_INACTIVE` (57): account not active.
    pub inactive: String,
    /// `ZB_CODE_UNKNOWN_ACCOUNT` (14).
    pub unknown_account: String,
    /// `ZB_CODE_UNSUPPORTED` (12): a processing code this ledger does not handle, or a
    /// negative amount.
    pub unsupported: String,
}

impl Default for ZeroBalanceCodes {
    fn default() -> Self {
        Self {
            approved: "00".into(),
            insufficient_funds: "51".into(),
            inactive: "57".into(),
            unknown_account: "14".into(),
            unsupported: "12".into(),
        }
    }
}

fn code_from_env(name: &'static str, default: String) -> Result<String, StartupError> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => {
            if v.len() == 2 && v.chars().all(|c| c.is_ascii_alphanumeric()) {
                Ok(v)
            } else {
                Err(StartupError::Invalid {
                    name,
                    value: v,
                    problem: "a response code has two characters".into(),
                })
            }
        }
        _ => Ok(default),
    }
}

impl ZeroBalanceCodes {
    pub fn from_env() -> Result<Self, StartupError> {
        let d = Self::default();
        Ok(Self {
            approved: code_from_env("ZB_CODE_APPROVED", d.approved)?,
            insufficient_funds: code_from_env("ZB_CODE_INSUFFICIENT_FUNDS", d.insufficient_funds)?,
            inactive: code_from_env("ZB_CODE_INACTIVE", d.inactive)?,
            unknown_account: code_from_env("ZB_CODE_UNKNOWN_ACCOUNT", d.unknown_account)?,
            unsupported: code_from_env("ZB_CODE_UNSUPPORTED", d.unsupported)?,
        })
    }
}

/// The webhook.
pub struct ZeroBalanceWebhook {
    section: Section<ZeroBalanceRequest, ZeroBalanceResponse>,
    ledger: Arc<dyn Ledger>,
    codes: ZeroBalanceCodes,
}

fn answer(response: &ZeroBalanceResponse, label: &str) -> Result<Decision, DependencyError> {
    let body = serde_json::to_string(response).map_err(|e| DependencyError(e.to_string()))?;
    Ok(Decision {
        body: body.into(),
        label: label.into(),
    })
}

fn from_policy(d: &Decided<ZeroBalanceResponse>) -> Decision {
    Decision {
        body: d.body.clone(),
        label: d.label.clone(),
    }
}

impl ZeroBalanceWebhook {
    pub fn new(policy: &Policy, ledger: Arc<dyn Ledger>, codes: ZeroBalanceCodes) -> Self {
        Self {
            section: policy.zero_balance.clone(),
            ledger,
            codes,
        }
    }

    fn reply(&self, approved: bool, code: &str, label: &str) -> Result<Decision, DependencyError> {
        answer(
            &ZeroBalanceResponse {
                is_approved: Some(approved),
                response_code: Some(code.to_string()),
                ..Default::default()
            },
            label,
        )
    }
}

/// Whether an `mti` is an advice (`0120`, `0121` repeat, ...).
pub fn is_advice(mti: &str) -> bool {
    mti.len() == 4 && mti.starts_with("012")
}

impl Webhook for ZeroBalanceWebhook {
    const NAME: &'static str = "zero-balance";
    type Request = ZeroBalanceRequest;

    fn request_key(request: &Self::Request) -> String {
        request.id.clone()
    }

    async fn decide(&self, request: &Self::Request) -> Result<Decision, DependencyError> {
        let f = &request.fields;
        let advice = is_advice(&f.mti);
        if !advice
            && let Some(d) = self.section.first_match(request)
            && d.value.is_approved == Some(false)
        {
            return Ok(from_policy(d));
        }
        let account_id = f.account_id.to_string();
        let processing = f.processing_code.get(..2).unwrap_or("");
        let direction = match processing {
            "00" | "01" => Direction::Debit,
            "20" | "28" => Direction::Credit,
            "30" => {
                let account = self
                    .ledger
                    .account(&account_id)
                    .await
                    .map_err(|e| DependencyError(e.to_string()))?;
                return match account {
                    None => self.reply(false, &self.codes.unknown_account, "unknown_account"),
                    Some(a) if !a.is_active() => {
                        self.reply(false, &self.codes.inactive, "inactive")
                    }
                    Some(a) => answer(
                        &ZeroBalanceResponse {
                            is_approved: Some(true),
                            response_code: Some(self.codes.approved.clone()),
                            limit_amount: Some(a.available),
                            available_credit_limit: Some(AvailableCreditLimit {
                                amount: Some(a.available),
                                currency_code: a.currency_code,
                            }),
                        },
                        "balance_inquiry",
                    ),
                };
            }
            _ => {
                return self.reply(
                    false,
                    &self.codes.unsupported,
                    "unsupported_processing_code",
                );
            }
        };
        if f.amount_transaction < Decimal::ZERO {
            return self.reply(false, &self.codes.unsupported, "negative_amount");
        }
        let movement = Movement {
            request_id: request.id.clone(),
            account_id,
            amount: f.amount_transaction,
            direction,
            enforce: !advice,
            mti: f.mti.clone(),
            processing_code: f.processing_code.clone(),
        };
        let applied = self
            .ledger
            .apply(&movement)
            .await
            .map_err(|e| DependencyError(e.to_string()))?;
        match applied {
            Applied::Done | Applied::AlreadyApplied => {
                let label = match direction {
                    Direction::Debit if advice => "advice_recorded",
                    Direction::Debit => "approved",
                    Direction::Credit => "credited",
                };
                self.reply(true, &self.codes.approved, label)
            }
            // The network already approved an advice: never decline it.
            Applied::UnknownAccount if advice => {
                tracing::warn!(request_id = %request.id, "advice for an unknown account: not recorded");
                self.reply(true, &self.codes.approved, "advice_unknown_account")
            }
            Applied::UnknownAccount => {
                self.reply(false, &self.codes.unknown_account, "unknown_account")
            }
            Applied::Inactive => self.reply(false, &self.codes.inactive, "inactive"),
            Applied::InsufficientFunds => {
                self.reply(false, &self.codes.insufficient_funds, "insufficient_funds")
            }
        }
    }

    fn fallback(&self) -> Decision {
        from_policy(self.section.fallback())
    }
}

/// The whole `main` of the `zero-balance` function.
pub async fn serve_zero_balance() -> Result<(), lambda_http::Error> {
    crate::telemetry::init();
    let policy = Policy::from_env()?;
    let codes = ZeroBalanceCodes::from_env()?;
    let table = env_required("LEDGER_TABLE")?;
    let sdk = crate::aws::load_config().await;
    let ledger = Arc::new(DynamoLedger::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        table,
    ));
    let runner = runner_from_env(ZeroBalanceWebhook::new(&policy, ledger, codes)).await?;
    serve(runner).await
}
