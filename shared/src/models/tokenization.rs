//! Client anti-fraud webhook for card tokenization: what Pismo sends and what the issuer
//! answers.
//!
//! Required members are those whose Req column in the seed says Yes; all others are
//! `Option` and are left out when serialized as `None`. Unknown members are ignored.

use serde::{Deserialize, Serialize};

use crate::models::common::{CardType, RawJson};
use crate::models::lenient;
use crate::open_enum;

open_enum! {
    /// Token service of the card network: `vts` (Visa) or `mdes` (Mastercard).
    pub enum NetworkBrand {
        Vts => "vts",
        Mdes => "mdes",
    }
}

open_enum! {
    /// Card status as sent in the tokenization request (`card.status`, `combo_card.status`).
    pub enum CardStatus {
        Created => "created",
        Normal => "normal",
        Damaged => "damaged",
        Warning => "warning",
        Lost => "lost",
        Unknown => "unknown",
    }
}

open_enum! {
    /// Card lifecycle stage (`card.stage`).
    pub enum CardStage {
        Unknown => "unknown",
        Blocked => "blocked",
        Unblocked => "unblocked",
    }
}

open_enum! {
    /// Pismo's findings about the card (`custom_codes[]`). Codes not in the seed's table
    /// (the Go sample sends `BNB`) arrive as `Other`.
    pub enum CustomCode {
        /// Card status = CANCELLED.
        Ccs => "CCS",
        /// Invalid expiration date.
        Ced => "CED",
        /// Card is not in NORMAL status.
        Cnn => "CNN",
        /// Expired card.
        Expcrd => "EXPCRD",
        /// Entered CVV2 is invalid.
        Fr2 => "FR2",
        /// CREATED status not allowed.
        Frb => "FRB",
        /// HSM failed to validate CVV2.
        Hse => "HSE",
        /// Card not plastic (issuer can override for a virtual card).
        Npl => "NPL",
        /// Blocked card (legacy).
        Ubt => "UBT",
    }
}

impl CustomCode {
    /// The action code the seed's custom-code table gives for this finding on the given
    /// token service, or `None` for an unknown code or brand.
    pub fn action_code(&self, brand: &NetworkBrand) -> Option<ActionCode> {
        match brand {
            NetworkBrand::Mdes => self.is_known().then_some(ActionCode::NotApproved),
            NetworkBrand::Vts => match self {
                Self::Ccs => Some(ActionCode::ClosedAccount),
                Self::Ced => Some(ActionCode::InvalidExpirationDate),
                Self::Fr2 => Some(ActionCode::InvalidCvv2),
                Self::Other(_) => None,
                _ => Some(ActionCode::NotApproved),
            },
            NetworkBrand::Other(_) => None,
        }
    }
}

open_enum! {
    /// Decision code of the tokenization response (`action_code`).
    pub enum ActionCode {
        /// Approved.
        Approved => "00",
        /// Not approved.
        NotApproved => "05",
        /// Invalid PAN.
        InvalidPan => "14",
        /// Closed account.
        ClosedAccount => "46",
        /// Invalid expiration date.
        InvalidExpirationDate => "54",
        /// Not permitted.
        NotPermitted => "57",
        /// Not allowed on terminal.
        NotAllowedOnTerminal => "58",
        /// Needs challenge: `step_up_methods` must then hold at least one method.
        NeedsChallenge => "85",
        /// Issuer internal system error.
        IssuerSystemError => "96",
        /// Invalid CVV2.
        InvalidCvv2 => "N7",
    }
}

open_enum! {
    /// One-time passcode challenge method (`step_up_methods[].method`).
    pub enum OtpMethod {
        Sms => "OTPSMS",
        App => "OTPAPP",
        Call => "OTPCALL",
    }
}

open_enum! {
    /// Platform of an `OTPAPP` challenge (Visa only).
    pub enum Platform {
        Ios => "IOS",
        Android => "ANDROID",
        Windows => "WINDOWS",
        Web => "WEB",
    }
}

/// Request body Pismo sends to the tokenization anti-fraud webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenizationRequest {
    /// Card status validation codes: Pismo's findings (Req: No).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_codes: Option<Vec<CustomCode>>,
    /// Pismo-issued token ID, part of the idempotency key: an integer or its decimal
    /// string (Req: Yes).
    #[serde(deserialize_with = "lenient::id")]
    pub token_id: i64,
    /// `vts` or `mdes` (Req: Yes).
    pub network_brand: NetworkBrand,
    /// The network's call that started this tokenization check. Not in the seed; Pismo's
    /// "Client anti-fraud webhook for card tokenization" table
    /// (developers.pismo.io/pismo-docs/docs/client-anti-fraud-webhook-for-card-tokenization)
    /// lists it as an enum string, Req Yes, with `VTS_DEVICE_BINDING`, `TA`,
    /// `VTS_APPROVE_PROVSIONING` and `VTS_APPROVE_PROVISIONG_ISO` (spelt so there); the
    /// tokenization notification event documents the same member as the "network outbound
    /// method identifier" with more values (`VTS_APPROVE_PROVISIONING`, `TC`, ...). Kept as
    /// the text received, and optional: requests shaped like the seed's, without it, are
    /// still accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_call_method: Option<String>,
    /// The card. The seed leaves the Req column of the object itself blank (only its members
    /// are marked), so it is optional; when present, `id` and `type` are required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<Card>,
    /// The combo card (Req: No). The seed's sample sends `{}`, its Go sample `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combo_card: Option<ComboCard>,
    /// Network message without PCI-sensitive data, kept as raw JSON (Visa `f*` or
    /// Mastercard `de*` shape), exactly as received: checked to be well-formed JSON but not
    /// parsed into a tree, since no decision reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_network_data: Option<RawJson>,
}

/// `card` of a [`TokenizationRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    /// Pismo-assigned card ID, part of the idempotency key: an integer or its decimal
    /// string (Req: Yes).
    #[serde(deserialize_with = "lenient::id")]
    pub id: i64,
    /// `PLASTIC`, `VIRTUAL`, `RECURRING` or `TEMPORARY` (Req: Yes).
    #[serde(rename = "type")]
    pub card_type: CardType,
    /// Program ID. The table says Req: Yes but the seed's Go sample omits it, and the
    /// samples must parse, so it is optional.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int"
    )]
    pub program_id: Option<i64>,
    /// Bank identification number. Req: Yes in the table but absent from the Go sample,
    /// hence optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    /// Card status (Req: No).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CardStatus>,
    /// Card lifecycle stage (Req: No).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<CardStage>,
}

/// `combo_card` of a [`TokenizationRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ComboCard {
    /// Combo card status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CardStatus>,
}

/// Response body of the tokenization anti-fraud webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenizationResponse {
    /// Card approved flag (required).
    pub approve: bool,
    /// Decision code (required).
    pub action_code: ActionCode,
    /// Challenge methods: required, with at least one entry, when `action_code` is `85`;
    /// left out otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_up_methods: Option<Vec<StepUpMethod>>,
}

impl TokenizationResponse {
    /// A response without step-up methods.
    pub fn new(approve: bool, action_code: ActionCode) -> Self {
        Self {
            approve,
            action_code,
            step_up_methods: None,
        }
    }

    /// An approval that asks Pismo to challenge the cardholder (`action_code` `85`).
    pub fn challenge(step_up_methods: Vec<StepUpMethod>) -> Self {
        Self {
            approve: true,
            action_code: ActionCode::NeedsChallenge,
            step_up_methods: Some(step_up_methods),
        }
    }
}

/// One entry of `step_up_methods`. The seed gives no Req value for these members, so all
/// are optional; [`StepUpMethod::new`] builds the usual one.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StepUpMethod {
    /// `OTPSMS`, `OTPAPP` or `OTPCALL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<OtpMethod>,
    /// Additional information for the challenge: phone number, app, and so on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Visa only, for `OTPAPP`: `IOS`, `ANDROID`, `WINDOWS` or `WEB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Visa only: the VTS "Source Address".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl StepUpMethod {
    /// A step-up method with only its `method` set.
    pub fn new(method: OtpMethod) -> Self {
        Self {
            method: Some(method),
            ..Self::default()
        }
    }
}
