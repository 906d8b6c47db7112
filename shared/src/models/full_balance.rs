//! Full balance anti-fraud webhook: what Pismo sends to a Full balance issuer's anti-fraud
//! system during card transaction authorization, and what it answers. Timeout 2 seconds.
//!
//! Required members are those whose Req column in the seed says `Y` and that its sample
//! sends, except `advice_detail_code` (advice-only by its own description, read by no
//! decision); all others are `Option` and are left out when serialized as `None`. Unknown
//! members are ignored. Ids and optional numbers are read leniently
//! ([`lenient`]); amounts are not.
//! Request headers (`x-tenant`, `x-account-id`, `x-amount`) are not modelled here.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::models::common::{CardType, Entity, RawJson, StringOrBool, ValidationResult};
use crate::models::lenient;
use crate::open_enum;

open_enum! {
    /// Card status in the Full balance request (`card_status`). The seed misspells two values
    /// (`NORNAL`, `DAMAFGED`); the correct spellings are the named variants and anything
    /// else arrives as `Other`.
    pub enum AuthCardStatus {
        Normal => "NORMAL",
        Unbound => "UNBOUND",
        Blocked => "BLOCKED",
        Pending => "PENDING",
        Reissued => "REISSUED",
        Lost => "LOST",
        Robbed => "ROBBED",
        Expired => "EXPIRED",
        Damaged => "DAMAGED",
        Fraud => "FRAUD",
        Warning => "WARNING",
        Cancelled => "CANCELLED",
        Created => "CREATED",
        Deleted => "DELETED",
        Broken => "BROKEN",
        Theft => "THEFT",
    }
}

/// Request body of the Full balance anti-fraud webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FullBalanceRequest {
    /// Database transaction ID (Req: Y).
    pub id: String,
    /// Entity type, `transaction` (Req: Y).
    pub entity: Entity,
    /// The transaction's fields (Req: Y).
    pub fields: FullBalanceFields,
}

/// `fields` of a [`FullBalanceRequest`].
///
/// Deliberately a copy: many members repeat [`crate::models::ZeroBalanceFields`]'s (and a few
/// tokenization's and banking's). A common struct would need `#[serde(flatten)]`, which buffers
/// every value and breaks on numbers with `arbitrary_precision` (see [`crate::models`]); and
/// Pismo documents each webhook's members, requirement and types separately (they differ: the
/// Full balance table gives `cvv_data` as a bool, Zero balance as a string). So each contract has
/// its own struct, written from its own table; `duplicates` lists these pairs on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FullBalanceFields {
    /// Message type ID, e.g. `0100` authorization request, `0120` advice. (Req: Y)
    pub mti: String,
    /// Cardholder card ID: an integer or its decimal string. (Req: Y)
    #[serde(deserialize_with = "lenient::id")]
    pub card_id: i64,
    /// Cardholder card status, e.g. `NORMAL`. (Req: Y)
    pub card_status: AuthCardStatus,
    /// Card expiration date. The table says `yyyy-mm-dd` but the sample sends a
    /// datetime (`2026-10-15T00:00:00.000Z`), so it is kept as text. (Req: Y)
    pub card_expiration_date: String,
    /// Card type. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_type: Option<CardType>,
    /// Cardholder token ID. (Req: N)
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int"
    )]
    pub token_id: Option<i64>,
    /// Cardholder wallet ID (a number is kept as its text). (Req: N)
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_text"
    )]
    pub wallet_id: Option<String>,
    /// Cardholder device ID. (Req: N)
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int"
    )]
    pub device_id_wallet: Option<i64>,
    /// Cardholder account ID: an integer or its decimal string. (Req: Y)
    #[serde(deserialize_with = "lenient::id")]
    pub account_id: i64,
    /// Authorization code. (Req: Y)
    pub authorization_code: String,
    /// Network settlement (NSU) number. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nsu: Option<String>,
    /// Advice reason code (DE 60 subfield 01) if this is an advice. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advice_reason_code: Option<String>,
    /// Advice detail code (DE 60 subfield 02). The table says Req Y, but its own description
    /// is "if this is an advice, the detail code" and no decision reads it, so it is optional:
    /// an authorization request without it is not refused. (Req: Y in the seed, optional here)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advice_detail_code: Option<String>,
    /// Transaction amount converted to the cardholder's billing currency. (Req: Y)
    #[serde(
        serialize_with = "rust_decimal::serde::arbitrary_precision::serialize",
        deserialize_with = "lenient::amount"
    )]
    pub amount_transaction: Decimal,
    /// Transaction amount in the merchant's local currency. (Req: Y)
    #[serde(
        serialize_with = "rust_decimal::serde::arbitrary_precision::serialize",
        deserialize_with = "lenient::amount"
    )]
    pub amount_local: Decimal,
    /// Transaction date and hour, `yyyy-MM-dd hh:mm:ss`. Kept as text. (Req: Y)
    pub transaction_timestamp: String,
    /// Transaction amount in U.S. dollars. (Req: Y)
    #[serde(
        serialize_with = "rust_decimal::serde::arbitrary_precision::serialize",
        deserialize_with = "lenient::amount"
    )]
    pub amount_settlement: Decimal,
    /// `Visa` or `Mastercard` (`null` reads as absent). (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_card_brand: Option<String>,
    /// ISO 4217 currency code, e.g. `986`; a JSON number is kept as its text. (Req: Y)
    #[serde(deserialize_with = "lenient::text")]
    pub currency: String,
    /// Merchant code at the payment network. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_id_code: Option<String>,
    /// Merchant name at the payment network. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_name: Option<String>,
    /// Merchant city at the payment network. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_city: Option<String>,
    /// Merchant country, US state or Canadian province code. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_state_or_country_code: Option<String>,
    /// Terminal ID at the acquirer. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_terminal_id: Option<String>,
    /// Electronic commerce security indicator. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_cnp_transaction: Option<String>,
    /// Application Transaction Counter from the network message. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atc_chip: Option<String>,
    /// Application Transaction Counters from the authorization database. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atc_database: Option<Vec<i64>>,
    /// CVV data. The table lists `cvv_data` twice, as "string" (CVV data) and as "bool"
    /// (is CVV data present), and the sample sends `true`: a string or a boolean is accepted. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvv_data: Option<StringOrBool>,
    /// PAN / PIN entry mode (3 or 4 digits). (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_mode: Option<String>,
    /// Merchant category code. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcc: Option<String>,
    /// Card issuer location's country code, ISO 3166-1. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    /// Card issuer location's postal code. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// Cryptogram information data from the chip. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chip_cryptogram_information_data: Option<String>,
    /// Transaction date from the chip, `yymmdd`. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chip_transaction_date: Option<String>,
    /// Transaction type from the chip. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chip_transaction_type: Option<String>,
    /// Amount authorized, e.g. `000000000010`. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chip_amount_authorized: Option<String>,
    /// Currency code from the chip. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chip_transaction_currency_code: Option<String>,
    /// Application interchange profile. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chip_application_interchange_profile: Option<String>,
    /// Terminal country code. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chip_terminal_country_code: Option<String>,
    /// Cardholder verification method. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chip_cardholder_verification_method: Option<String>,
    /// Terminal capabilities. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chip_terminal_capabilities: Option<String>,
    /// Cash-back amount (9F03). (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chip_amount_other: Option<String>,
    /// Application transaction counter from the chip. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chip_application_transaction_counter: Option<String>,
    /// Cardholder postal code. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cardholder_postal_code: Option<String>,
    /// Processing code describing the transaction type. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_type: Option<String>,
    /// Point-of-sale entry mode code. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_capability: Option<String>,
    /// Terminal verification results. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tvr: Option<String>,
    /// Card verification results. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvr: Option<String>,
    /// Number of installments. (Req: N)
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int"
    )]
    pub number_of_installments: Option<i64>,
    /// Available amount limit for the payment mode (the seed gives no Req value). (Req: N)
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "rust_decimal::serde::arbitrary_precision_option::serialize",
        deserialize_with = "lenient::opt_decimal"
    )]
    pub available_limit: Option<Decimal>,
    /// Payment network score; "empty field when no information is present", so `""` is
    /// absent. (Req: N)
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "rust_decimal::serde::arbitrary_precision_option::serialize",
        deserialize_with = "lenient::opt_decimal"
    )]
    pub network_score: Option<Decimal>,
    /// Terminal postal code. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos_postal_code: Option<String>,
    /// Acquirer code. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquirer_code: Option<String>,
    /// Cardholder document number. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpf: Option<String>,
    /// Total amount limit for the payment mode. (Req: N)
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "rust_decimal::serde::arbitrary_precision_option::serialize",
        deserialize_with = "lenient::opt_decimal"
    )]
    pub total_limit: Option<Decimal>,
    /// Maximum credit amount approved for the account. (Req: N)
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "rust_decimal::serde::arbitrary_precision_option::serialize",
        deserialize_with = "lenient::opt_decimal"
    )]
    pub max_credit_limit: Option<Decimal>,
    /// Code of the reason Pismo would deny the transaction. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denial_code: Option<String>,
    /// Network two-digit response code. (Req: Y)
    pub response_code: String,
    /// Anti-fraud system's last referral reason. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_referral_reason: Option<String>,
    /// Anti-fraud system's last referral reason ID. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_last_referral_reason: Option<String>,
    /// Last referral unlock date, `yyyy-mm-dd hh:mm:ss`, under the table's name. The
    /// sample uses `last_referral_unlock_date` instead; both names are kept. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_last_referral_unlock_date: Option<String>,
    /// Last referral unlock date under the sample's name (the table says
    /// `id_last_referral_unlock_date`). (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_referral_unlock_date: Option<String>,
    /// Does CVV have a valid response flag. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvv_response: Option<bool>,
    /// Last card history unlock date. The table says bool, the sample sends the string
    /// `"string"`: a string or a boolean is accepted. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlock_date: Option<StringOrBool>,
    /// Is password used flag. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_present: Option<bool>,
    /// Network message without sensitive fields, kept as raw JSON (Visa `f*` or
    /// Mastercard `de*` shape). (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_network_data: Option<RawJson>,
    /// Last four PAN digits. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_four_digits: Option<String>,
    /// Card BIN. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    /// Program ID. (Req: N)
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int"
    )]
    pub program_id: Option<i64>,
    /// Is PIN validated offline flag, under the table's name. The sample uses
    /// `pin_validated_offline`; both names are kept. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_validation_offline: Option<bool>,
    /// Is PIN validated offline flag, under the sample's name (the table says
    /// `pin_validation_offline`). (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_validated_offline: Option<bool>,
    /// Validations performed. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_results: Option<Vec<ValidationResult>>,
    /// Transaction mode, credit or debit (the sample sends `CREDIT`). (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_mode: Option<String>,
    /// Three domain security information. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub three_domain_security: Option<ThreeDomainSecurity>,
    /// Card mode type (presumably the card's payment mode, e.g. credit or debit, as
    /// `transaction_mode` is the transaction's). Added by Pismo after the seed: neither the
    /// seed nor the Pismo documentation found lists it, so its values are unknown; kept as
    /// text, and a JSON number is kept as its text. (Req: N)
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_text"
    )]
    pub card_mode_type: Option<String>,
    /// Whether the PIN was validated (online; the offline flag is `pin_validated_offline`).
    /// Added after the seed and undocumented where searched: assumed a flag, but a string is
    /// accepted too (rules read `"true"` / `"false"` in any case as the flag). (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_validated: Option<StringOrBool>,
    /// Denial code toward the merchant. Added after the seed and not in the webhook tables
    /// found; Pismo's "Validation codes for authorization events" table has a "Merchant Denial
    /// Code" column of two-digit codes (`02`, `03`, ...) per custom code, which this
    /// presumably carries. Kept as text; a JSON number is kept as its text. (Req: N)
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_text"
    )]
    pub merchant_denial_code: Option<String>,
}

/// `fields.three_domain_security` of a [`FullBalanceRequest`].
///
/// The seed's table lists these four members at the top level of `fields` with Req `Y`, but
/// its sample nests them here. Because the table's placement is wrong its Req value is not
/// trusted either: all four are optional, so a transaction without 3-D Secure data is not
/// rejected.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ThreeDomainSecurity {
    /// Service indicator (Mastercard DE48 SE71, Visa F126 S20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_indicator: Option<String>,
    /// Electronic commerce indicator (Mastercard DE48 SE42, Visa F60 S08).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub electronic_commerce_indicator: Option<String>,
    /// Cardholder authentication method (Mastercard DE48 SE43, Visa F44 S13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cardholder_authentication: Option<String>,
    /// Authentication data (Mastercard DE48 SE66, Visa F126 S09).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_data: Option<String>,
}

/// Response body of the Full balance anti-fraud webhook. Every member is optional (Req `N`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FullBalanceResponse {
    /// Anti-fraud decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approve: Option<bool>,
    /// Let the client's decision take precedence over Pismo's (the account may go negative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_approve: Option<bool>,
    /// Is the transaction a referral.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral: Option<bool>,
    /// Network two-digit response code (`00` approve, `51` insufficient funds, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_code: Option<String>,
    /// Passed unfiltered into the network authorization event's `metadata`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}
