//! Policy loading: the shipped default is valid, and every invalid policy is refused with the
//! section, the rule and the problem named.

use shared::policy::{Policy, PolicyError};

#[test]
fn the_shipped_policy_is_valid() {
    assert!(Policy::builtin().is_ok());
}

fn tokenization_rule(rule: &str) -> String {
    format!(
        r#"{{"card_tokenization": {{"rules": [{rule}],
            "default": {{"approve": true, "action_code": "00"}},
            "fallback": {{"approve": false, "action_code": "96"}}}}}}"#
    )
}

#[test]
fn invalid_policies_are_refused_naming_the_rule() {
    let cases: &[(&str, String, &str)] = &[
        (
            "action code 85 without step_up_methods",
            tokenization_rule(
                r#"{"name": "challenge", "when": [{"field": "card.type", "eq": "VIRTUAL"}],
                    "then": {"approve": true, "action_code": "85"}}"#,
            ),
            "action_code 85",
        ),
        (
            "platform without OTPAPP",
            tokenization_rule(
                r#"{"name": "challenge", "when": [{"field": "card.type", "eq": "VIRTUAL"}],
                    "then": {"approve": true, "action_code": "85",
                             "step_up_methods": [{"method": "OTPSMS", "platform": "IOS"}]}}"#,
            ),
            "only used with method OTPAPP",
        ),
        (
            "action code not two characters",
            tokenization_rule(
                r#"{"name": "challenge", "when": [{"field": "card.type", "eq": "VIRTUAL"}],
                    "then": {"approve": false, "action_code": "005"}}"#,
            ),
            "not a two-character code",
        ),
        (
            "unknown request field",
            tokenization_rule(
                r#"{"name": "challenge", "when": [{"field": "card.colour", "eq": "red"}],
                    "then": {"approve": false, "action_code": "05"}}"#,
            ),
            "unknown field name `card.colour`",
        ),
        (
            "unknown outcome field",
            tokenization_rule(
                r#"{"name": "challenge", "when": [{"field": "card.type", "eq": "VIRTUAL"}],
                    "then": {"aprove": false, "action_code": "05"}}"#,
            ),
            "unknown field name `aprove`",
        ),
        (
            "unknown step-up field",
            tokenization_rule(
                r#"{"name": "challenge", "when": [{"field": "card.type", "eq": "VIRTUAL"}],
                    "then": {"approve": true, "action_code": "85",
                             "step_up_methods": [{"method": "OTPSMS", "phone": "1"}]}}"#,
            ),
            "unknown field name `phone`",
        ),
        (
            "contains on a text field",
            tokenization_rule(
                r#"{"name": "challenge", "when": [{"field": "card.type", "contains": "V"}],
                    "then": {"approve": false, "action_code": "05"}}"#,
            ),
            "`contains` needs a list field",
        ),
        (
            "decimal comparison on a text field",
            tokenization_rule(
                r#"{"name": "challenge", "when": [{"field": "card.bin", "gt": 10}],
                    "then": {"approve": false, "action_code": "05"}}"#,
            ),
            "`gt` needs a number field",
        ),
        (
            "two operators in one condition",
            tokenization_rule(
                r#"{"name": "challenge", "when": [{"field": "card.type", "eq": "VIRTUAL", "ne": "PLASTIC"}],
                    "then": {"approve": false, "action_code": "05"}}"#,
            ),
            "more than one operator",
        ),
        (
            "no operator",
            tokenization_rule(
                r#"{"name": "challenge", "when": [{"field": "card.type"}],
                    "then": {"approve": false, "action_code": "05"}}"#,
            ),
            "has no operator",
        ),
        (
            "no conditions",
            tokenization_rule(
                r#"{"name": "challenge", "when": [], "then": {"approve": false, "action_code": "05"}}"#,
            ),
            "has no conditions",
        ),
        (
            "response code not two characters (full balance)",
            r#"{"full_balance_antifraud": {"rules": [{"name": "big", "when": [{"field": "fields.amount_transaction", "gte": "1000.00"}],
                 "then": {"approve": false, "response_code": "5"}}],
                 "default": {"approve": true, "response_code": "00"},
                 "fallback": {"approve": false, "response_code": "96"}}}"#
                .to_string(),
            "not a two-character code",
        ),
        (
            "unknown banking decision",
            r#"{"banking_antifraud": {"rules": [{"name": "odd", "when": [{"field": "amount", "gt": 5}],
                 "then": {"decision": "maybe"}}],
                 "default": {"decision": "approve"}, "fallback": {"decision": "reject"}}}"#
                .to_string(),
            "neither approve nor reject",
        ),
        (
            "not-a-number comparison value",
            r#"{"banking_antifraud": {"rules": [{"name": "odd", "when": [{"field": "amount", "gt": "lots"}],
                 "then": {"decision": "reject"}}],
                 "default": {"decision": "approve"}, "fallback": {"decision": "reject"}}}"#
                .to_string(),
            "not a decimal",
        ),
    ];
    for (what, text, problem) in cases {
        match Policy::from_json(text) {
            Ok(_) => panic!("{what}: accepted"),
            Err(e @ PolicyError::Rule { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("rule '"), "{what}: rule not named in {msg}");
                assert!(msg.contains(problem), "{what}: {msg}");
            }
            Err(other) => panic!("{what}: wrong error kind {other}"),
        }
    }
}

#[test]
fn invalid_sections_are_refused() {
    let cases = [
        (r#"{"card_tokenizaton": {}}"#, "unknown field"),
        (
            r#"{"card_tokenization": {"rules": [], "default": {"approve": true, "action_code": "00"}}}"#,
            "missing field `fallback`",
        ),
        (
            r#"{"zero_balance": {"rules": [], "default": {"is_approved": true, "response_code": "00"},
                "fallback": {"is_approved": false, "response_code": "961"}}}"#,
            "fallback: response_code",
        ),
    ];
    for (text, problem) in cases {
        let err = Policy::from_json(text).err().map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains(problem)),
            "{text}: {err:?}"
        );
    }
}

#[test]
fn a_policy_file_is_read_and_missing_sections_come_from_the_default() -> Result<(), PolicyError> {
    let dir = std::env::temp_dir().join(format!("policy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| PolicyError::Syntax(e.to_string()))?;
    let path = dir.join("policy.json");
    std::fs::write(&path, tokenization_rule(
        r#"{"name": "no-virtual", "when": [{"field": "card.type", "in": ["VIRTUAL", "TEMPORARY"]}],
            "then": {"approve": false, "action_code": "57"}}"#,
    ))
    .map_err(|e| PolicyError::Syntax(e.to_string()))?;
    let policy = Policy::from_file(&path)?;
    assert_eq!(
        &*policy.banking_antifraud.fallback().body,
        r#"{"decision":"reject","metadata":{"reason":"fallback"}}"#
    );
    let missing = Policy::from_file(&dir.join("absent.json"));
    assert!(matches!(missing, Err(PolicyError::Read { .. })));
    Ok(())
}
