//! Zero balance validations webhook: what Pismo sends to a Zero balance issuer during card
//! transaction authorization, and what it answers. Pismo waits at most 2 seconds; no answer
//! in time means the transaction is declined.
//!
//! Required members are those whose Req column in the seed says `Y` (its sample sends them
//! all); all others are `Option` and are left out when serialized as `None`. Unknown members
//! are ignored. Ids and optional numbers are read leniently ([`lenient`]);
//! amounts are not.
//! Request headers (`x-tenant`, `x-cid`, ...) are not modelled here.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::models::common::{CardType, Entity, RawJson, StringOrBool, ValidationResult};
use crate::models::lenient;

/// Request body of the Zero balance validations webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZeroBalanceRequest {
    /// Database transaction ID (Req: Y).
    pub id: String,
    /// Entity type, `transaction` (Req: Y).
    pub entity: Entity,
    /// The transaction's fields (Req: Y).
    pub fields: ZeroBalanceFields,
}

/// `fields` of a [`ZeroBalanceRequest`].
///
/// Deliberately a copy of the members it shares with [`crate::models::FullBalanceFields`]: see
/// there why the contracts do not share a struct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZeroBalanceFields {
    /// Message type ID, e.g. `0100` authorization request, `0120` advice. (Req: Y)
    pub mti: String,
    /// Cardholder card ID: an integer or its decimal string. (Req: Y)
    #[serde(deserialize_with = "lenient::id")]
    pub card_id: i64,
    /// Cardholder account ID, the ledger key: an integer or its decimal string. (Req: Y)
    #[serde(deserialize_with = "lenient::id")]
    pub account_id: i64,
    /// Transaction amount in the cardholder's billing currency. (Req: Y)
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
    /// Amount in the settlement currency defined by the issuer. (Req: Y)
    #[serde(
        serialize_with = "rust_decimal::serde::arbitrary_precision::serialize",
        deserialize_with = "lenient::amount"
    )]
    pub amount_settlement: Decimal,
    /// Effect on the account: `00` purchase, `01` withdrawal, `20` refund, `28` payment. (Req: Y)
    pub processing_code: String,
    /// ISO 4217 currency code, e.g. `986`; a JSON number is kept as its text. (Req: Y)
    #[serde(deserialize_with = "lenient::text")]
    pub currency: String,
    /// `Visa` or `Mastercard` (`null` reads as absent). (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_card_brand: Option<String>,
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
    /// Application Transaction Counter from the network message. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atc_chip: Option<String>,
    /// Application Transaction Counters from the authorization database. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atc_database: Option<Vec<i64>>,
    /// CVV data, e.g. `CVV_PRESENT`. The table says string; the Full balance table lists the
    /// same member as a bool and its sample sends `true`, so a string or a boolean is
    /// accepted. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvv_data: Option<StringOrBool>,
    /// PAN / PIN entry mode (3 or 4 digits). (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_mode: Option<String>,
    /// Merchant category code. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcc: Option<String>,
    /// Card type. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_type: Option<CardType>,
    /// Card issuer location's country code, ISO 3166-1. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    /// Is chip valid flag. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chip_validation: Option<bool>,
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
    /// Network settlement (NSU) number. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nsu: Option<String>,
    /// Merchant POS system generated number. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieval_reference_number: Option<String>,
    /// Authorization code. (Req: Y)
    pub authorization_code: String,
    /// Authorization code from the card network. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incoming_authorization_code: Option<String>,
    /// Network two-digit response code. (Req: Y)
    pub response_code: String,
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
    /// Code of the reason Pismo would deny the transaction. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denial_code: Option<String>,
    /// Financial code from the card network. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub financial_network_code: Option<String>,
    /// Banknet reference number. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banknet_reference_number: Option<String>,
    /// Network message without sensitive fields, kept as raw JSON (Visa `f*` or
    /// Mastercard `de*` shape). The table says object; the seed's sample sends the string
    /// `"..."`, so any JSON value is accepted. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_network_data: Option<RawJson>,
    /// Is CVV data present flag. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvv_presence: Option<bool>,
    /// Is password used flag. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_present: Option<bool>,
    /// Account type: `00` unspecified, `10` savings, `20` checking, `30` credit card. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_type: Option<String>,
    /// Validations performed. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_results: Option<Vec<ValidationResult>>,
    /// Program ID. (Req: N)
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int"
    )]
    pub program_id: Option<i64>,
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
    /// Whether the address sent with the transaction matches the cardholder's address on
    /// file (address verification). Added by Pismo after the seed: neither the seed nor the
    /// Pismo documentation found (developers.pismo.io "Client webhooks for card transaction
    /// authorization" / "Zero balance anti-fraud and validations integration") lists it, so
    /// its meaning is taken from its name and its type is assumed: a flag, but a string is
    /// accepted too (rules read `"true"` / `"false"` in any case as the flag). (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_address: Option<StringOrBool>,
    /// Whether the postal code sent with the transaction matches the cardholder's on file
    /// (address verification). Added after the seed and undocumented where searched, like
    /// `match_address`: assumed a flag, a string accepted too. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_postal_code: Option<StringOrBool>,
    /// Whether the transaction carried no address data to verify (so `match_address` /
    /// `match_postal_code` say nothing). Added after the seed and undocumented where
    /// searched, like `match_address`: assumed a flag, a string accepted too. (Req: N)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_address_data: Option<StringOrBool>,
}

/// Response body of the Zero balance validations webhook. Every member is optional (Req `N`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ZeroBalanceResponse {
    /// Is transaction approved flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_approved: Option<bool>,
    /// Network two-digit response code (`00` approve, `51` insufficient funds, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_code: Option<String>,
    /// Available limit, e.g. for a balance inquiry (`transaction` entity only). Exact decimal.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::arbitrary_precision_option"
    )]
    pub limit_amount: Option<Decimal>,
    /// Balance limit for processing code 30 (balance inquiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_credit_limit: Option<AvailableCreditLimit>,
}

/// `available_credit_limit` of a [`ZeroBalanceResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AvailableCreditLimit {
    /// Available credit limit amount. Exact decimal.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::arbitrary_precision_option"
    )]
    pub amount: Option<Decimal>,
    /// ISO 4217 numeric currency code, e.g. `986` (an integer here, as the seed's table says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency_code: Option<u16>,
}
