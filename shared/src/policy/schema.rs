//! The policy document's JSON Schema (draft 2020-12), built from the same field lists the
//! loader checks rules against, so the two cannot drift apart. The published copy is
//! `shared/policy/policy.schema.json` (`validate-policy --print-schema` writes it; a test
//! keeps it equal to [`json_schema`]). The schema lets editors and CI check a policy's shape,
//! field names and operator kinds; `validate-policy` stays the authority (it also compiles
//! each `regex` and checks that `between` bounds are in order).

use serde_json::{Value, json};

use super::field::{FieldKind, PolicySubject};
use crate::models::{BankingRequest, FullBalanceRequest, TokenizationRequest, ZeroBalanceRequest};

/// The policy sections, in document order.
pub const SECTIONS: [&str; 4] = [
    "card_tokenization",
    "banking_antifraud",
    "full_balance_antifraud",
    "zero_balance",
];

/// The outcome names of a section's optional `controls` object.
pub const CONTROL_OUTCOMES: [&str; 4] = [
    "not_permitted",
    "amount_limit",
    "count_limit",
    "step_up_unavailable",
];

/// `original_network_data.` and one or more dotted segments (see `network_field`).
pub const NETWORK_PATH_PATTERN: &str = r"^original_network_data(\.[A-Za-z0-9_]+)+$";

const TWO_CHARACTERS: &str = "^[A-Za-z0-9]{2}$";

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/$defs/{name}") })
}

/// The request's fields of `kind`, then the card's signals of that kind where rules may name
/// them ([`PolicySubject::SIGNALS`]).
fn paths<R: PolicySubject>(kind: FieldKind) -> Vec<&'static str> {
    let signals: &[(&str, FieldKind)] = if R::SIGNALS {
        super::signals::FIELDS
    } else {
        &[]
    };
    R::FIELDS
        .iter()
        .chain(signals)
        .filter(|(_, k)| *k == kind)
        .map(|(p, _)| *p)
        .collect()
}

/// One leaf condition form: `field` from `field` and exactly one of `operators`.
fn leaf(field: Value, operators: &[(&str, Value)]) -> Value {
    let mut properties = serde_json::Map::new();
    properties.insert("field".into(), field);
    for (name, schema) in operators {
        properties.insert((*name).into(), schema.clone());
    }
    json!({
        "type": "object",
        "required": ["field"],
        "minProperties": 2,
        "maxProperties": 2,
        "additionalProperties": false,
        "properties": properties,
    })
}

fn condition_defs<R: PolicySubject>(section: &str, defs: &mut serde_json::Map<String, Value>) {
    let condition = format!("{section}_condition");
    let text = json!({ "type": ["string", "number"] });
    let decimal = reference("decimal");
    let set = |item: &Value| json!({ "type": "array", "minItems": 1, "items": item });
    let between = json!({
        "type": "array", "minItems": 2, "maxItems": 2, "items": reference("decimal"),
        "description": "inclusive [low, high]",
    });
    let present = json!({ "type": "boolean" });
    let prefix = json!({ "type": "string" });
    let regex = json!({ "type": "string", "format": "regex" });
    let compare = |d: &Value| {
        [
            ("gt", d.clone()),
            ("gte", d.clone()),
            ("lt", d.clone()),
            ("lte", d.clone()),
        ]
    };
    let enum_of = |kind| json!({ "enum": paths::<R>(kind) });
    let mut forms = vec![
        json!({ "type": "object", "required": ["any"], "additionalProperties": false,
                "properties": { "any": { "type": "array", "minItems": 1, "items": reference(&condition) } } }),
        json!({ "type": "object", "required": ["all"], "additionalProperties": false,
                "properties": { "all": { "type": "array", "minItems": 1, "items": reference(&condition) } } }),
        json!({ "type": "object", "required": ["not"], "additionalProperties": false,
                "properties": { "not": reference(&condition) } }),
    ];
    let text_ops = vec![
        ("eq", text.clone()),
        ("ne", text.clone()),
        ("in", set(&text)),
        ("not_in", set(&text)),
        ("prefix", prefix.clone()),
        ("regex", regex.clone()),
        ("present", present.clone()),
    ];
    let mut number_ops = vec![
        ("eq", decimal.clone()),
        ("ne", decimal.clone()),
        ("in", set(&decimal)),
        ("not_in", set(&decimal)),
        ("between", between.clone()),
        ("present", present.clone()),
    ];
    number_ops.extend(compare(&decimal));
    let boolean = json!({ "type": "boolean" });
    let bool_ops = vec![
        ("eq", boolean.clone()),
        ("ne", boolean.clone()),
        ("in", set(&boolean)),
        ("not_in", set(&boolean)),
        ("present", present.clone()),
    ];
    let list_ops = vec![
        ("contains", json!({ "type": "string" })),
        ("present", present.clone()),
    ];
    for (kind, ops) in [
        (FieldKind::Text, text_ops),
        (FieldKind::Number, number_ops),
        (FieldKind::Bool, bool_ops),
        (FieldKind::List, list_ops),
    ] {
        if !paths::<R>(kind).is_empty() {
            forms.push(leaf(enum_of(kind), &ops));
        }
    }
    if R::NETWORK_DATA {
        let scalar = json!({ "type": ["string", "number", "boolean"] });
        let mut ops = vec![
            ("eq", scalar.clone()),
            ("ne", scalar.clone()),
            ("in", set(&scalar)),
            ("not_in", set(&scalar)),
            ("between", between),
            ("prefix", prefix),
            ("regex", regex),
            ("contains", json!({ "type": "string" })),
            ("present", present),
        ];
        ops.extend(compare(&decimal));
        forms.push(leaf(
            json!({ "type": "string", "pattern": NETWORK_PATH_PATTERN }),
            &ops,
        ));
    }
    defs.insert(
        condition,
        json!({
            "description": "a `field` with exactly one operator allowed for its kind, or one `any` / `all` / `not` group",
            "oneOf": forms,
        }),
    );
}

fn outcome_def(section: &str) -> Value {
    let metadata = json!({ "type": "object" });
    let code = json!({ "type": "string", "pattern": TWO_CHARACTERS });
    match section {
        "card_tokenization" => json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["approve", "action_code"],
            "properties": {
                "approve": { "type": "boolean" },
                "action_code": code,
                "step_up_methods": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["method"],
                        "properties": {
                            "method": { "enum": ["OTPSMS", "OTPAPP", "OTPCALL"] },
                            "value": { "type": "string" },
                            "platform": { "enum": ["IOS", "ANDROID", "WINDOWS", "WEB"] },
                            "source": { "type": "string" },
                        },
                        "if": { "required": ["platform"] },
                        "then": { "properties": { "method": { "const": "OTPAPP" } } },
                    },
                },
            },
            "if": { "properties": { "action_code": { "const": "85" } } },
            "then": { "required": ["step_up_methods"] },
            "else": { "not": { "required": ["step_up_methods"] } },
        }),
        "banking_antifraud" => json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["decision"],
            "properties": {
                "decision": { "enum": ["approve", "reject"] },
                "metadata": metadata,
            },
        }),
        "full_balance_antifraud" => json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["approve"],
            "properties": {
                "approve": { "type": "boolean" },
                "force_approve": { "type": "boolean" },
                "referral": { "type": "boolean" },
                "response_code": code,
                "metadata": metadata,
            },
        }),
        _ => json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["is_approved", "response_code"],
            "properties": {
                "is_approved": { "type": "boolean" },
                "response_code": code,
                "limit_amount": { "type": "number" },
                "available_credit_limit": {
                    "type": "object",
                    "properties": {
                        "amount": { "type": "number" },
                        "currency_code": { "type": "integer", "minimum": 0, "maximum": 65535 },
                    },
                },
            },
        }),
    }
}

fn section_defs<R: PolicySubject>(section: &str, defs: &mut serde_json::Map<String, Value>) {
    let outcome = reference(&format!("{section}_outcome"));
    // The outcomes answered when no rule decided (`fallback`, `controls`): Zero balance
    // answers them without the ledger, so they must decline (`Outcome::check_fallback`).
    let fallback = if section == "zero_balance" {
        let name = format!("{section}_declining_outcome");
        defs.insert(
            name.clone(),
            json!({
                "description": "answered without the ledger (fallback, controls), so it must decline: only the ledger approves a Zero balance request",
                "allOf": [outcome, { "properties": { "is_approved": { "const": false } } }],
            }),
        );
        reference(&name)
    } else {
        outcome.clone()
    };
    let mut controls = serde_json::Map::new();
    for name in CONTROL_OUTCOMES {
        controls.insert(name.into(), fallback.clone());
    }
    defs.insert(
        section.into(),
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["default", "fallback"],
            "properties": {
                "rules": { "type": "array", "items": reference(&format!("{section}_rule")) },
                "default": outcome,
                "fallback": fallback,
                "controls": {
                    "description": "outcomes for card controls and velocity limits",
                    "type": "object",
                    "additionalProperties": false,
                    "properties": controls,
                },
            },
        }),
    );
    defs.insert(
        format!("{section}_rule"),
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["when", "then"],
            "properties": {
                "name": { "type": "string" },
                "when": {
                    "description": "all of these conditions",
                    "type": "array",
                    "minItems": 1,
                    "items": reference(&format!("{section}_condition")),
                },
                "then": outcome,
            },
        }),
    );
    defs.insert(format!("{section}_outcome"), outcome_def(section));
    condition_defs::<R>(section, defs);
}

/// The JSON Schema of a policy document.
pub fn json_schema() -> Value {
    let mut defs = serde_json::Map::new();
    defs.insert(
        "decimal".into(),
        json!({
            "description": "a number, or a string holding a decimal (\"10.50\")",
            "anyOf": [
                { "type": "number" },
                { "type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$" },
            ],
        }),
    );
    section_defs::<TokenizationRequest>(SECTIONS[0], &mut defs);
    section_defs::<BankingRequest>(SECTIONS[1], &mut defs);
    section_defs::<FullBalanceRequest>(SECTIONS[2], &mut defs);
    section_defs::<ZeroBalanceRequest>(SECTIONS[3], &mut defs);
    let mut properties = serde_json::Map::new();
    properties.insert("$schema".into(), json!({ "type": "string" }));
    properties.insert("description".into(), json!({ "type": "string" }));
    for section in SECTIONS {
        properties.insert(section.into(), reference(section));
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Pismo issuer kit decision policy",
        "description": "A decision policy (docs/policy.md). Sections left out come from the shipped default. `validate-policy` is the authority: it also compiles each regex and checks between bounds.",
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
        "$defs": defs,
    })
}
