//! Client anti-fraud webhook for banking transactions (Pix-out, Pix reversal, bank slip
//! payment, cash-out transfer).
//!
//! Required members are those whose Req column in the seed says `Y`; all others are
//! `Option` and are left out when serialized as `None`. Unknown members are ignored.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::models::common::StringOrNumber;
use crate::models::lenient;
use crate::open_enum;

open_enum! {
    /// Pismo's decision in the request, and the client's decision in the response. The seed
    /// prints the values padded with spaces (`" approve "`); its samples send `approve`.
    pub enum Decision {
        Approve => "approve",
        Reject => "reject",
    }
}

open_enum! {
    /// Transaction origin.
    pub enum Origin {
        Banking => "banking",
        InstantPay => "instant-pay",
        Onus => "onus",
    }
}

open_enum! {
    /// Operation type.
    pub enum OperationType {
        Cashin => "cashin",
        Cashout => "cashout",
    }
}

/// Request body Pismo sends to the banking anti-fraud webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankingRequest {
    /// Pismo decision (Y).
    pub decision: Decision,
    /// Request ID (Y).
    pub id: String,
    /// Call datetime, ISO 8601 (Y). Kept as text.
    pub datetime: String,
    /// Pismo account ID (Y). The table says string, the sample sends a number
    /// (`102334690`): both are accepted and re-serialized as they came.
    pub account_id: StringOrNumber,
    /// ISO 4217 currency code, e.g. `"986"` (Y).
    pub currency_code: String,
    /// Transaction amount (Y), exact decimal.
    #[serde(
        serialize_with = "rust_decimal::serde::arbitrary_precision::serialize",
        deserialize_with = "lenient::amount"
    )]
    pub amount: Decimal,
    /// Transaction origin (Y).
    pub origin: Origin,
    /// `cashin` or `cashout` (Y).
    pub operation_type: OperationType,
    /// Processing code (Y).
    pub processing_code: String,
    /// Entities related to the transaction (N).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entities: Option<Entities>,
    /// Any JSON name-value pairs (N). Kept as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Platform information forwarded for onus transactions (N). Kept as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<Value>,
}

/// `entities` of a [`BankingRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Entities {
    /// Account information (N).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountEntity>,
}

/// `entities.account` of a [`BankingRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AccountEntity {
    /// Customer name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Customer government document number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_number: Option<String>,
    /// Creation datetime, ISO 8601. Kept as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<String>,
    /// Limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// Address information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    /// Phone information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<Phone>,
}

/// `entities.account.limits`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Limits {
    /// Total limit, exact decimal.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::arbitrary_precision_option"
    )]
    pub total: Option<Decimal>,
}

/// `entities.account.address`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Address {
    /// Postal code. The table says string, the sample sends a number (`8675309`): both are
    /// accepted and re-serialized as they came (a number would lose leading zeros, so
    /// treat it as text via [`StringOrNumber::to_text`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zipcode: Option<StringOrNumber>,
}

/// `entities.account.phone`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Phone {
    /// Area code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area: Option<String>,
    /// Country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
}

/// Response body of the banking anti-fraud webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankingResponse {
    /// Client decision (Y).
    pub decision: Decision,
    /// Any JSON name-value pairs (N).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

impl BankingResponse {
    /// A response with only a decision.
    pub fn new(decision: Decision) -> Self {
        Self {
            decision,
            metadata: None,
        }
    }
}
