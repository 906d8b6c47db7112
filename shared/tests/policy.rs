//! Policy loading: the shipped default is valid, and every invalid policy is refused with the
//! section, the rule and the problem named.

use shared::policy::{Policy, PolicyError};

#[test]
fn the_shipped_policy_is_valid() {
    assert!(Policy::builtin().is_ok());
}

/// Every file under `dir` (recursively), skipping build output, virtualenvs and git data.
fn files_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !(name.starts_with('.') || name == "target" || name == "node_modules") {
                files_under(&path, out)?;
            }
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// A JSON document that is a policy: an object with at least one policy section.
fn policy_document(text: &str) -> bool {
    serde_json::from_str::<Value>(text).is_ok_and(|v| {
        shared::policy::schema::SECTIONS
            .iter()
            .any(|s| v.get(s).is_some())
    })
}

/// Every policy in the repository loads: the shipped default, any `*.json` policy (samples,
/// fixtures), and every complete policy in a ```json block of the Markdown docs (snippets
/// with `...` are not JSON and are skipped).
#[test]
fn every_policy_in_the_repository_loads() -> std::io::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    files_under(&root, &mut files)?;
    let mut checked = Vec::new();
    for path in &files {
        let ext = path.extension().and_then(|e| e.to_str());
        let docs: Vec<String> = match ext {
            Some("json") => vec![std::fs::read_to_string(path)?],
            Some("md") => {
                let text = std::fs::read_to_string(path)?;
                text.split("```json")
                    .skip(1)
                    .filter_map(|block| block.split("```").next())
                    .map(str::to_string)
                    .collect()
            }
            _ => continue,
        };
        for doc in docs.iter().filter(|d| policy_document(d)) {
            if let Err(e) = Policy::from_json(doc) {
                panic!("{}: {e}", path.display());
            }
            checked.push(path.display().to_string());
        }
    }
    assert!(
        checked.iter().any(|p| p.ends_with("default-policy.json")),
        "the shipped default was not found among {checked:?}"
    );
    Ok(())
}

fn tokenization_rule(rule: &str) -> String {
    format!(
        r#"{{"card_tokenization": {{"rules": [{rule}],
            "default": {{"approve": true, "action_code": "00"}},
            "fallback": {{"approve": false, "action_code": "96"}}}}}}"#
    )
}

/// `text` is refused as a rule error naming `rule` and saying `problem`.
fn assert_rule_refused(what: &str, text: &str, rule: &str, problem: &str) {
    match Policy::from_json(text) {
        Ok(_) => panic!("{what}: accepted"),
        Err(e @ PolicyError::Rule { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(rule), "{what}: rule not named in {msg}");
            assert!(msg.contains(problem), "{what}: {msg}");
        }
        Err(other) => panic!("{what}: wrong error kind {other}"),
    }
}

const VIRTUAL: &str = r#"{"field": "card.type", "eq": "VIRTUAL"}"#;
const DECLINE_05: &str = r#"{"approve": false, "action_code": "05"}"#;

#[test]
fn invalid_policies_are_refused_naming_the_rule() {
    // Card tokenization rules named "challenge": (what, condition, outcome, problem).
    let tokenization: &[(&str, &str, &str, &str)] = &[
        (
            "action code 85 without step_up_methods",
            VIRTUAL,
            r#"{"approve": true, "action_code": "85"}"#,
            "action_code 85",
        ),
        (
            "platform without OTPAPP",
            VIRTUAL,
            r#"{"approve": true, "action_code": "85", "step_up_methods": [{"method": "OTPSMS", "platform": "IOS"}]}"#,
            "only used with method OTPAPP",
        ),
        (
            "action code not two characters",
            VIRTUAL,
            r#"{"approve": false, "action_code": "005"}"#,
            "not a two-character code",
        ),
        (
            "unknown request field",
            r#"{"field": "card.colour", "eq": "red"}"#,
            DECLINE_05,
            "unknown field name `card.colour`",
        ),
        (
            "unknown outcome field",
            VIRTUAL,
            r#"{"aprove": false, "action_code": "05"}"#,
            "unknown field name `aprove`",
        ),
        (
            "unknown step-up field",
            VIRTUAL,
            r#"{"approve": true, "action_code": "85", "step_up_methods": [{"method": "OTPSMS", "phone": "1"}]}"#,
            "unknown field name `phone`",
        ),
        (
            "contains on a text field",
            r#"{"field": "card.type", "contains": "V"}"#,
            DECLINE_05,
            "`contains` needs a list field",
        ),
        (
            "decimal comparison on a text field",
            r#"{"field": "card.bin", "gt": 10}"#,
            DECLINE_05,
            "`gt` needs a number field",
        ),
        (
            "two operators in one condition",
            r#"{"field": "card.type", "eq": "VIRTUAL", "ne": "PLASTIC"}"#,
            DECLINE_05,
            "more than one operator",
        ),
        (
            "no operator",
            r#"{"field": "card.type"}"#,
            DECLINE_05,
            "has no operator",
        ),
    ];
    for (what, when, then, problem) in tokenization {
        let rule = format!(r#"{{"name": "challenge", "when": [{when}], "then": {then}}}"#);
        assert_rule_refused(what, &tokenization_rule(&rule), "rule 'challenge'", problem);
    }
    let others = [
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
    for (what, text, problem) in &others {
        assert_rule_refused(what, text, "rule '", problem);
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

// ---- richer conditions: any / all / not, prefix, regex, between ----

use serde_json::Value;
use shared::models::{FullBalanceRequest, TokenizationRequest, ZeroBalanceRequest};
use shared::policy::{Field, PolicySubject};

const FULL_BALANCE_VISA: &str =
    include_str!("fixtures/seeds/full_balance_request_with_visa_network_data.json");
const ZERO_BALANCE_MASTERCARD: &str =
    include_str!("fixtures/seeds/zero_balance_request_with_mastercard_network_data.json");
const ZERO_BALANCE_PLAIN: &str = include_str!("fixtures/seeds/zero_balance_request.json");
const TOKENIZATION_MASTERCARD: &str =
    include_str!("fixtures/seeds/tokenization_request_with_mastercard_network_data.json");
const TOKENIZATION_VISA: &str =
    include_str!("fixtures/seeds/tokenization_request_with_visa_network_data.json");
const TOKENIZATION_PLAIN: &str = include_str!("fixtures/seeds/tokenization_request.json");

fn edited<T: serde::de::DeserializeOwned>(text: &str, edit: impl FnOnce(&mut Value)) -> T {
    let mut v: Value = serde_json::from_str(text).expect("fixture is JSON");
    edit(&mut v);
    serde_json::from_value(v).expect("fixture parses")
}

fn full_balance(edit: impl FnOnce(&mut Value)) -> FullBalanceRequest {
    edited(FULL_BALANCE_VISA, edit)
}

/// The full balance fixture with these `fields` set to these texts.
fn with_fields(values: &[(&str, &str)]) -> FullBalanceRequest {
    full_balance(|v| {
        for (name, value) in values {
            v["fields"][*name] = (*value).into();
        }
    })
}

/// A full balance policy whose rules decline with their own response code.
fn full_balance_policy(rules: &str) -> Policy {
    let text = format!(
        r#"{{"full_balance_antifraud": {{"rules": [{rules}],
            "default": {{"approve": true, "response_code": "00"}},
            "fallback": {{"approve": false, "response_code": "96"}}}}}}"#
    );
    Policy::from_json(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn label(policy: &Policy, request: &FullBalanceRequest) -> String {
    policy
        .full_balance_antifraud
        .decide(request)
        .label
        .to_string()
}

/// Each case: the values of the `fields` named, and the rule (or "default") that decides.
fn assert_labels<const N: usize>(policy: &Policy, names: [&str; N], cases: &[([&str; N], &str)]) {
    for (values, want) in cases {
        let fields: Vec<_> = names.into_iter().zip(*values).collect();
        assert_eq!(label(policy, &with_fields(&fields)), *want, "{values:?}");
    }
}

#[test]
fn any_all_and_not_groups_nest() {
    // Decline gambling, or anything outside Brazil that is not chip-read.
    let policy = full_balance_policy(
        r#"{"name": "risky", "when": [{"any": [
              {"field": "fields.mcc", "in": ["7995", "7994"]},
              {"all": [{"not": {"field": "fields.country_code", "eq": "076"}},
                       {"not": {"field": "fields.entry_mode", "eq": "051"}}]}
           ]}],
           "then": {"approve": false, "response_code": "57"}}"#,
    );
    assert_labels(
        &policy,
        ["mcc", "country_code", "entry_mode"],
        &[
            (["7995", "076", "051"], "risky"),
            (["5411", "840", "010"], "risky"),
            (["5411", "840", "051"], "default"),
            (["5411", "076", "010"], "default"),
        ],
    );
    // An absent field makes `eq` false, so `not` of it true.
    let no_country = full_balance(|v| {
        v["fields"]["mcc"] = "5411".into();
        v["fields"]["entry_mode"] = "010".into();
        if let Some(f) = v["fields"].as_object_mut() {
            f.remove("country_code");
        }
    });
    assert_eq!(label(&policy, &no_country), "risky");
}

#[test]
fn a_rule_when_list_still_means_all() {
    let policy = full_balance_policy(
        r#"{"name": "both", "when": [{"field": "fields.mcc", "eq": "5411"}, {"field": "fields.country_code", "eq": "840"}],
            "then": {"approve": false, "response_code": "57"}}"#,
    );
    assert_labels(
        &policy,
        ["mcc", "country_code"],
        &[
            (["5411", "840"], "both"),
            (["5411", "076"], "default"),
            (["5999", "840"], "default"),
        ],
    );
}

#[test]
fn prefix_regex_and_between_match_as_documented() {
    let policy = full_balance_policy(
        r#"{"name": "bin", "when": [{"field": "fields.bin", "prefix": "5162"}],
            "then": {"approve": false, "response_code": "57"}},
           {"name": "city", "when": [{"field": "fields.merchant_city", "regex": "^(?i)rio\\b"}],
            "then": {"approve": false, "response_code": "57"}},
           {"name": "mid-amount", "when": [{"field": "fields.amount_transaction", "between": ["100.00", 250]}],
            "then": {"approve": false, "response_code": "61"}}"#,
    );
    assert_labels(
        &policy,
        ["bin", "merchant_city", "amount_transaction"],
        &[
            (["516292", "SAO PAULO", "10"], "bin"),
            (["41516292", "SAO PAULO", "10"], "default"),
            (["411111", "Rio de Janeiro", "10"], "city"),
            (["411111", "RIOZINHO", "10"], "default"),
            // Inclusive bounds, exact decimals.
            (["411111", "SAO PAULO", "99.99"], "default"),
            (["411111", "SAO PAULO", "100"], "mid-amount"),
            (["411111", "SAO PAULO", "180.5"], "mid-amount"),
            (["411111", "SAO PAULO", "250.00"], "mid-amount"),
            (["411111", "SAO PAULO", "250.01"], "default"),
        ],
    );
    // Absent text fields match neither `prefix` nor `regex` (an absent number: see the
    // network data tests).
    let bare = full_balance(|v| {
        if let Some(f) = v["fields"].as_object_mut() {
            f.remove("bin");
            f.remove("merchant_city");
        }
    });
    assert_eq!(label(&policy, &bare), "default");
}

#[test]
fn invalid_new_conditions_are_refused_naming_the_rule() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "invalid regex",
            r#"{"field": "fields.merchant_city", "regex": "(unclosed"}"#,
            "`regex` on `fields.merchant_city` is invalid",
        ),
        (
            "regex on a number",
            r#"{"field": "fields.amount_transaction", "regex": "^1"}"#,
            "`regex` needs a text field; `fields.amount_transaction` is number",
        ),
        (
            "prefix on a bool",
            r#"{"field": "fields.cvv_response", "prefix": "t"}"#,
            "`prefix` needs a text field",
        ),
        (
            "between on text",
            r#"{"field": "fields.mcc", "between": [1, 2]}"#,
            "`between` needs a number field; `fields.mcc` is text",
        ),
        (
            "between with one bound",
            r#"{"field": "fields.amount_transaction", "between": [1]}"#,
            "exactly two bounds",
        ),
        (
            "between upside down",
            r#"{"field": "fields.amount_transaction", "between": [10, 1]}"#,
            "above the high bound",
        ),
        (
            "between bound not a number",
            r#"{"field": "fields.amount_transaction", "between": [1, "lots"]}"#,
            "not a decimal",
        ),
        (
            "empty any",
            r#"{"any": []}"#,
            "`any` needs at least one condition",
        ),
        (
            "group beside a field",
            r#"{"field": "fields.mcc", "eq": "1", "not": {"field": "fields.mcc", "eq": "2"}}"#,
            "stands alone",
        ),
        (
            "two groups in one",
            r#"{"any": [{"field": "fields.mcc", "eq": "1"}], "all": [{"field": "fields.mcc", "eq": "2"}]}"#,
            "stands alone",
        ),
        (
            "unknown field deep in a group",
            r#"{"any": [{"not": {"field": "fields.colour", "eq": "red"}}]}"#,
            "unknown field name `fields.colour`",
        ),
        (
            "kind error deep in a group",
            r#"{"all": [{"not": {"field": "fields.mcc", "gt": 5}}]}"#,
            "`gt` needs a number field",
        ),
        (
            "neither field nor group",
            r#"{"eq": "1"}"#,
            "needs a `field`",
        ),
        (
            "network data path on a field list",
            r#"{"field": "original_network_data", "eq": "1"}"#,
            "unknown field name `original_network_data`",
        ),
        (
            "empty network segment",
            r#"{"field": "original_network_data.f126..sf20", "eq": "1"}"#,
            "unknown field name",
        ),
    ];
    for (what, condition, problem) in cases {
        let text = format!(
            r#"{{"full_balance_antifraud": {{"rules": [{{"name": "r1", "when": [{condition}],
                "then": {{"approve": false, "response_code": "57"}}}}],
                "default": {{"approve": true, "response_code": "00"}},
                "fallback": {{"approve": false, "response_code": "96"}}}}}}"#
        );
        assert_rule_refused(what, &text, "rule 'r1'", problem);
    }
}

// ---- original_network_data by network names ----

fn zero_balance_policy(condition: &str) -> Policy {
    let text = format!(
        r#"{{"zero_balance": {{"rules": [{{"name": "hit", "when": [{condition}],
            "then": {{"is_approved": false, "response_code": "59"}}}}],
            "default": {{"is_approved": true, "response_code": "00"}},
            "fallback": {{"is_approved": false, "response_code": "96"}}}}}}"#
    );
    Policy::from_json(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn mastercard_fields_are_read_by_their_network_names() {
    let mastercard: ZeroBalanceRequest =
        serde_json::from_str(ZERO_BALANCE_MASTERCARD).expect("fixture");
    // The fixture's de48 se75 sf1 (fraud score) is "036".
    // (path under original_network_data, operator and value, whether the rule hits)
    let cases = [
        ("de48.se75.sf1", r#""gte": 30"#, true),
        ("de48.se75.sf1", r#""gt": 36"#, false),
        ("de48.se75.sf1", r#""between": [36, 36]"#, true),
        ("de48.se75.sf1", r#""eq": 36"#, true),
        ("de48.se75.sf1", r#""eq": "036""#, true),
        ("de48.se75.sf1", r#""eq": "36""#, false),
        ("de48.se75.sf1", r#""in": [35, 36]"#, true),
        ("de48.se75.sf2", r#""prefix": "9""#, true),
        ("de48.se75.sf1", r#""regex": "^0[0-4]""#, true),
        // Full key names work too, and can be mixed with network names.
        (
            "de48_additional_data_private_user.se75_fraud_scoring_data.sf1_fraud_score",
            r#""eq": "036""#,
            true,
        ),
        ("de22.sf1", r#""eq": "81""#, true),
        ("de18", r#""eq": "7994""#, true),
        ("de4", r#""eq": 1000"#, true),
        // An array element by index; a list of text with `contains`.
        ("de48.se56.1.sf1", r#""eq": "AQS""#, true),
        ("de48.de48SubElements", r#""contains": "75""#, true),
        ("de48.de48SubElements", r#""contains": "99""#, false),
        // An object is present but equals nothing.
        ("de48.se75", r#""present": true"#, true),
        ("de48.se75", r#""eq": "036""#, false),
        // `de48` inside de48 names three keys (de48_tcc, de48_start, de48_size): none.
        ("de48.de48", r#""present": false"#, true),
        ("de48.de48_tcc", r#""eq": "T""#, true),
        // A text that is not a number compares with no number.
        ("de42", r#""gte": 0"#, false),
        // Absent members.
        ("de48.se99.sf1", r#""gte": 0"#, false),
        ("de48.se99.sf1", r#""present": false"#, true),
        ("de48.se99.sf1", r#""ne": "1""#, true),
        ("de48.se99.sf1", r#""not_in": ["1"]"#, true),
        ("de4.sf1", r#""present": false"#, true),
    ];
    for (path, test, want) in cases {
        let condition = format!(r#"{{"field": "original_network_data.{path}", {test}}}"#);
        let policy = zero_balance_policy(&condition);
        let got = policy.zero_balance.decide(&mastercard).label.as_ref() == "hit";
        assert_eq!(got, want, "{condition}");
    }
}

#[test]
fn a_request_without_network_data_has_every_network_field_absent() {
    let plain: ZeroBalanceRequest = serde_json::from_str(ZERO_BALANCE_PLAIN).expect("fixture");
    let gte = zero_balance_policy(r#"{"field": "original_network_data.de48.se75.sf1", "gte": 0}"#);
    assert_eq!(&*gte.zero_balance.decide(&plain).label, "default");
    let absent = zero_balance_policy(
        r#"{"field": "original_network_data.de48.se75.sf1", "present": false}"#,
    );
    assert_eq!(&*absent.zero_balance.decide(&plain).label, "hit");
    let mut no_data: ZeroBalanceRequest =
        serde_json::from_str(ZERO_BALANCE_MASTERCARD).expect("fixture");
    no_data.fields.original_network_data = None;
    assert_eq!(&*gte.zero_balance.decide(&no_data).label, "default");
    assert_eq!(&*absent.zero_balance.decide(&no_data).label, "hit");
}

#[test]
fn visa_fields_are_read_on_full_balance_and_tokenization() {
    let policy = full_balance_policy(
        r#"{"name": "3ds", "when": [{"field": "original_network_data.f126.sf20", "eq": "1"},
                                   {"field": "original_network_data.f62.sf21", "regex": "^09"}],
            "then": {"approve": false, "response_code": "57"}}"#,
    );
    assert_eq!(label(&policy, &full_balance(|_| {})), "3ds");
    let other = full_balance(|v| {
        v["fields"]["original_network_data"]["f126_visa_private_use_fields"]["sf20_dsecure_indicator"] =
            "7".into();
    });
    assert_eq!(label(&policy, &other), "default");

    let tokenization =
        |text: &str| -> TokenizationRequest { serde_json::from_str(text).expect("fixture") };
    let text = tokenization_rule(
        r#"{"name": "visa-3ds", "when": [{"field": "original_network_data.f126.sf20", "eq": 1}],
            "then": {"approve": false, "action_code": "05"}},
           {"name": "mc-score", "when": [{"field": "original_network_data.de48.se75.sf1", "lt": 50}],
            "then": {"approve": false, "action_code": "57"}}"#,
    );
    let policy = Policy::from_json(&text).expect("valid");
    let decide = |r: &TokenizationRequest| policy.card_tokenization.decide(r).label.to_string();
    assert_eq!(decide(&tokenization(TOKENIZATION_VISA)), "visa-3ds");
    assert_eq!(decide(&tokenization(TOKENIZATION_MASTERCARD)), "mc-score");
    assert_eq!(decide(&tokenization(TOKENIZATION_PLAIN)), "default");
}

#[test]
fn banking_has_no_network_data_fields() {
    let text = r#"{"banking_antifraud": {"rules": [{"name": "nd", "when": [{"field": "original_network_data.f126", "present": true}],
         "then": {"decision": "reject"}}],
         "default": {"decision": "approve"}, "fallback": {"decision": "reject"}}}"#;
    let err = Policy::from_json(text).err().map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("unknown field name `original_network_data.f126`")),
        "{err:?}"
    );
}

#[test]
fn a_network_field_is_also_read_through_the_request_lookup() {
    // What the journal's inputs and a backtest use: one parse per call, same values.
    let mastercard: ZeroBalanceRequest =
        serde_json::from_str(ZERO_BALANCE_MASTERCARD).expect("fixture");
    assert_eq!(
        mastercard.field("original_network_data.de48.se75.sf1"),
        Field::Text("036".into())
    );
    assert_eq!(
        mastercard.field("original_network_data.de48.se75.sf9"),
        Field::Absent
    );
    assert_eq!(mastercard.field("fields.mcc"), Field::Text("string".into()));
}

// ---- the published JSON Schema ----

use shared::models::BankingRequest;
use shared::policy::FieldKind;
use shared::policy::schema::{SECTIONS, json_schema};

const PUBLISHED_SCHEMA: &str = include_str!("../policy/policy.schema.json");

fn published_schema() -> Value {
    serde_json::from_str(PUBLISHED_SCHEMA).expect("the published schema is JSON")
}

#[test]
fn the_published_schema_is_the_generated_one() {
    assert!(
        published_schema() == json_schema(),
        "shared/policy/policy.schema.json is stale: regenerate it with \
         `cargo run -p tools --bin issuer-kit -- validate-policy --print-schema > shared/policy/policy.schema.json`"
    );
    assert!(jsonschema::meta::is_valid(&published_schema()));
    let default: Value = serde_json::from_str(shared::policy::DEFAULT_POLICY).expect("JSON");
    assert_eq!(default["$schema"], "./policy.schema.json");
}

/// The operators the schema allows with each field, per section: field path → operators.
fn schema_fields(schema: &Value, section: &str) -> Vec<(String, Vec<String>)> {
    let forms = schema["$defs"][format!("{section}_condition")]["oneOf"]
        .as_array()
        .expect("condition forms");
    let mut out = Vec::new();
    for form in forms {
        let Some(props) = form["properties"].as_object() else {
            continue;
        };
        let ops: Vec<String> = props.keys().filter(|k| *k != "field").cloned().collect();
        let field = &props.get("field");
        if let Some(paths) = field.and_then(|f| f["enum"].as_array()) {
            for p in paths {
                out.push((p.as_str().expect("path").to_string(), ops.clone()));
            }
        } else if let Some(pattern) = field.and_then(|f| f["pattern"].as_str()) {
            out.push((format!("pattern:{pattern}"), ops.clone()));
        }
    }
    out
}

fn expected_ops(kind: FieldKind) -> Vec<&'static str> {
    let mut ops = match kind {
        FieldKind::Text => vec!["eq", "ne", "in", "not_in", "prefix", "regex", "present"],
        FieldKind::Number => vec![
            "eq", "ne", "in", "not_in", "between", "present", "gt", "gte", "lt", "lte",
        ],
        FieldKind::Bool => vec!["eq", "ne", "in", "not_in", "present"],
        FieldKind::List => vec!["contains", "present"],
        FieldKind::Network => vec![
            "eq", "ne", "in", "not_in", "between", "prefix", "regex", "contains", "present", "gt",
            "gte", "lt", "lte",
        ],
    };
    ops.sort_unstable();
    ops
}

fn check_section_fields<R: PolicySubject>(schema: &Value, section: &str) {
    let mut in_schema = schema_fields(schema, section);
    for (_, ops) in &mut in_schema {
        ops.sort_unstable();
    }
    for (path, kind) in R::FIELDS {
        let found: Vec<_> = in_schema.iter().filter(|(p, _)| p == path).collect();
        assert_eq!(
            found.len(),
            1,
            "{section}: `{path}` is not in the schema exactly once"
        );
        assert_eq!(
            found[0].1,
            expected_ops(*kind),
            "{section}: operators of `{path}`"
        );
    }
    let network = in_schema.iter().find(|(p, _)| p.starts_with("pattern:"));
    assert_eq!(
        network.is_some(),
        R::NETWORK_DATA,
        "{section}: network data paths"
    );
    if let Some((_, ops)) = network {
        assert_eq!(
            *ops,
            expected_ops(FieldKind::Network),
            "{section}: network operators"
        );
    }
    for (path, _) in &in_schema {
        assert!(
            path.starts_with("pattern:") || R::kind_of(path).is_some(),
            "{section}: the schema names `{path}`, which rules cannot use"
        );
    }
}

#[test]
fn every_subject_field_is_in_the_schema_with_the_operators_of_its_kind() {
    let schema = published_schema();
    check_section_fields::<TokenizationRequest>(&schema, SECTIONS[0]);
    check_section_fields::<BankingRequest>(&schema, SECTIONS[1]);
    check_section_fields::<FullBalanceRequest>(&schema, SECTIONS[2]);
    check_section_fields::<ZeroBalanceRequest>(&schema, SECTIONS[3]);
}

fn section(name: &str, rules: &str, default: &str, fallback: &str, extra: &str) -> String {
    format!(
        r#"{{"{name}": {{"rules": [{rules}], "default": {default}, "fallback": {fallback}{extra}}}}}"#
    )
}

fn tok(rules: &str) -> String {
    section(
        "card_tokenization",
        rules,
        r#"{"approve": true, "action_code": "00"}"#,
        r#"{"approve": false, "action_code": "96"}"#,
        "",
    )
}

fn fb(rules: &str, extra: &str) -> String {
    section(
        "full_balance_antifraud",
        rules,
        r#"{"approve": true, "response_code": "00"}"#,
        r#"{"approve": false, "response_code": "96"}"#,
        extra,
    )
}

fn bank(rules: &str) -> String {
    section(
        "banking_antifraud",
        rules,
        r#"{"decision": "approve"}"#,
        r#"{"decision": "reject"}"#,
        "",
    )
}

fn zb(rules: &str) -> String {
    section(
        "zero_balance",
        rules,
        r#"{"is_approved": true, "response_code": "00"}"#,
        r#"{"is_approved": false, "response_code": "96"}"#,
        "",
    )
}

fn fb_rule(when: &str) -> String {
    fb(
        &format!(
            r#"{{"name": "r", "when": [{when}], "then": {{"approve": false, "response_code": "57"}}}}"#
        ),
        "",
    )
}

fn tok_rule(when: &str, then: &str) -> String {
    tok(&format!(
        r#"{{"name": "r", "when": [{when}], "then": {then}}}"#
    ))
}

#[test]
fn the_schema_and_the_loader_give_the_same_verdict() {
    let validator = jsonschema::validator_for(&published_schema()).expect("schema compiles");
    let decline = r#"{"approve": false, "action_code": "05"}"#;
    let mut cases: Vec<(&str, String, bool)> = vec![
        (
            "the shipped default",
            shared::policy::DEFAULT_POLICY.to_string(),
            true,
        ),
        ("no sections", "{}".into(), true),
        (
            "$schema and description",
            r#"{"$schema": "./policy.schema.json", "description": "x"}"#.into(),
            true,
        ),
        (
            "nested groups",
            tok_rule(
                r#"{"any": [{"field": "custom_codes", "contains": "FRB"},
                            {"all": [{"field": "card.type", "prefix": "VIRT"},
                                     {"not": {"field": "card.status", "in": ["NORMAL", "warning"]}}]}]}"#,
                decline,
            ),
            true,
        ),
        (
            "network data, regex, between",
            fb_rule(
                r#"{"field": "original_network_data.f126.sf20", "eq": "1"},
                   {"field": "fields.merchant_city", "regex": "^SAO\\b"},
                   {"field": "fields.amount_transaction", "between": ["10.00", 250]}"#,
            ),
            true,
        ),
        (
            "zero balance network score",
            zb(
                r#"{"when": [{"field": "original_network_data.de48.se75.sf1", "gte": 50}],
                   "then": {"is_approved": false, "response_code": "59", "limit_amount": 0}}"#,
            ),
            true,
        ),
        (
            "banking amount and bool-free text",
            bank(
                r#"{"when": [{"field": "amount", "gt": "1000.50"}, {"field": "origin", "ne": "onus"}],
                     "then": {"decision": "reject", "metadata": {"why": "big"}}}"#,
            ),
            true,
        ),
        (
            "bool field",
            fb_rule(r#"{"field": "fields.cvv_response", "eq": false}"#),
            true,
        ),
        (
            "a challenge",
            tok_rule(
                r#"{"field": "card.status", "eq": "warning"}"#,
                r#"{"approve": true, "action_code": "85", "step_up_methods": [{"method": "OTPAPP", "platform": "IOS"}]}"#,
            ),
            true,
        ),
        (
            "unknown top-level key",
            r#"{"card_tokenizaton": {}}"#.into(),
            false,
        ),
        ("unknown section key", fb("", r#", "rulez": []"#), false),
        (
            "missing fallback",
            r#"{"banking_antifraud": {"default": {"decision": "approve"}}}"#.into(),
            false,
        ),
        (
            "unknown field",
            fb_rule(r#"{"field": "fields.colour", "eq": "red"}"#),
            false,
        ),
        (
            "unknown field in a group",
            fb_rule(r#"{"not": {"any": [{"field": "fields.colour", "eq": "red"}]}}"#),
            false,
        ),
        (
            "between on text",
            fb_rule(r#"{"field": "fields.mcc", "between": [1, 2]}"#),
            false,
        ),
        (
            "between with three bounds",
            fb_rule(r#"{"field": "fields.amount_local", "between": [1, 2, 3]}"#),
            false,
        ),
        (
            "prefix on a number",
            fb_rule(r#"{"field": "fields.amount_local", "prefix": "1"}"#),
            false,
        ),
        (
            "regex on a bool",
            fb_rule(r#"{"field": "fields.cvv_response", "regex": "t"}"#),
            false,
        ),
        (
            "gt on text",
            fb_rule(r#"{"field": "fields.mcc", "gt": 5}"#),
            false,
        ),
        (
            "gt not a number",
            fb_rule(r#"{"field": "fields.amount_local", "gt": "lots"}"#),
            false,
        ),
        (
            "eq on a list",
            tok_rule(r#"{"field": "custom_codes", "eq": "FRB"}"#, decline),
            false,
        ),
        (
            "contains on text",
            tok_rule(r#"{"field": "card.type", "contains": "V"}"#, decline),
            false,
        ),
        (
            "two operators",
            fb_rule(r#"{"field": "fields.mcc", "eq": "1", "ne": "2"}"#),
            false,
        ),
        ("no operator", fb_rule(r#"{"field": "fields.mcc"}"#), false),
        (
            "unknown operator",
            fb_rule(r#"{"field": "fields.mcc", "starts_with": "1"}"#),
            false,
        ),
        ("empty any", fb_rule(r#"{"any": []}"#), false),
        (
            "group beside a field",
            fb_rule(r#"{"field": "fields.mcc", "all": [{"field": "fields.mcc", "eq": "1"}]}"#),
            false,
        ),
        (
            "empty in",
            fb_rule(r#"{"field": "fields.mcc", "in": []}"#),
            false,
        ),
        (
            "empty when",
            fb(r#"{"when": [], "then": {"approve": false}}"#, ""),
            false,
        ),
        (
            "missing then",
            fb(r#"{"when": [{"field": "fields.mcc", "eq": "1"}]}"#, ""),
            false,
        ),
        (
            "network data on banking",
            bank(
                r#"{"when": [{"field": "original_network_data.f126", "present": true}], "then": {"decision": "reject"}}"#,
            ),
            false,
        ),
        (
            "banking decision maybe",
            bank(r#"{"when": [{"field": "amount", "gt": 5}], "then": {"decision": "maybe"}}"#),
            false,
        ),
        (
            "banking metadata not an object",
            bank(
                r#"{"when": [{"field": "amount", "gt": 5}], "then": {"decision": "reject", "metadata": 1}}"#,
            ),
            false,
        ),
        (
            "full balance without approve",
            fb_rule(r#"{"field": "fields.mcc", "eq": "1"}"#).replace(
                r#""approve": false, "response_code": "57""#,
                r#""response_code": "57""#,
            ),
            false,
        ),
        (
            "zero balance without response code",
            zb(r#"{"when": [{"field": "fields.mcc", "eq": "1"}], "then": {"is_approved": false}}"#),
            false,
        ),
        (
            "zero balance fallback that approves without the ledger",
            section(
                "zero_balance",
                "",
                r#"{"is_approved": true, "response_code": "00"}"#,
                r#"{"is_approved": true, "response_code": "00"}"#,
                "",
            ),
            false,
        ),
        (
            "zero balance control outcome that approves without the ledger",
            section(
                "zero_balance",
                "",
                r#"{"is_approved": true, "response_code": "00"}"#,
                r#"{"is_approved": false, "response_code": "96"}"#,
                r#", "controls": {"count_limit": {"is_approved": true, "response_code": "00"}}"#,
            ),
            false,
        ),
        (
            "zero balance declining control outcomes, approving rule and default",
            section(
                "zero_balance",
                r#"{"when": [{"field": "fields.mcc", "eq": "1"}], "then": {"is_approved": true, "response_code": "00"}}"#,
                r#"{"is_approved": true, "response_code": "00"}"#,
                r#"{"is_approved": false, "response_code": "96"}"#,
                r#", "controls": {"not_permitted": {"is_approved": false, "response_code": "57"}}"#,
            ),
            true,
        ),
        (
            "zero balance long response code",
            zb(
                r#"{"when": [{"field": "fields.mcc", "eq": "1"}], "then": {"is_approved": false, "response_code": "961"}}"#,
            ),
            false,
        ),
    ];
    // Outcomes of a rule on virtual cards that both refuse.
    let refused_outcomes = [
        (
            "85 without step-up",
            r#"{"approve": true, "action_code": "85"}"#,
        ),
        (
            "step-up without 85",
            r#"{"approve": true, "action_code": "00", "step_up_methods": [{"method": "OTPSMS"}]}"#,
        ),
        (
            "platform with OTPSMS",
            r#"{"approve": true, "action_code": "85", "step_up_methods": [{"method": "OTPSMS", "platform": "IOS"}]}"#,
        ),
        (
            "unknown step-up method",
            r#"{"approve": true, "action_code": "85", "step_up_methods": [{"method": "OTPMAIL"}]}"#,
        ),
        (
            "three-character code",
            r#"{"approve": false, "action_code": "005"}"#,
        ),
    ];
    cases.extend(refused_outcomes.map(|(what, then)| (what, tok_rule(VIRTUAL, then), false)));
    for (what, text, valid) in &cases {
        let instance: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}"));
        let schema_says = validator.is_valid(&instance);
        let loader_says = Policy::from_json(text);
        assert_eq!(schema_says, *valid, "{what}: schema verdict");
        assert_eq!(
            loader_says.is_ok(),
            *valid,
            "{what}: loader verdict {:?}",
            loader_says.err()
        );
    }

    // What only the loader checks: the schema accepts these, `validate-policy` refuses them.
    let loader_only = [
        (
            "invalid regex",
            fb_rule(r#"{"field": "fields.mcc", "regex": "(unclosed"}"#),
        ),
        (
            "between upside down",
            fb_rule(r#"{"field": "fields.amount_local", "between": [10, 1]}"#),
        ),
    ];
    for (what, text) in &loader_only {
        let instance: Value = serde_json::from_str(text).expect("JSON");
        assert!(validator.is_valid(&instance), "{what}: schema");
        assert!(Policy::from_json(text).is_err(), "{what}: loader");
    }
}

#[test]
fn the_schema_describes_an_optional_controls_object_per_section() {
    let validator = jsonschema::validator_for(&published_schema()).expect("schema compiles");
    let cases = [
        (
            fb(
                "",
                r#", "controls": {"not_permitted": {"approve": false, "response_code": "57"},
                                      "amount_limit": {"approve": false, "response_code": "61"},
                                      "count_limit": {"approve": false, "response_code": "65"}}"#,
            ),
            true,
        ),
        (fb("", r#", "controls": {}"#), true),
        (
            fb(
                "",
                r#", "controls": {"blocked": {"approve": false, "response_code": "57"}}"#,
            ),
            false,
        ),
        (
            fb(
                "",
                r#", "controls": {"amount_limit": {"response_code": "61"}}"#,
            ),
            false,
        ),
        (
            fb(
                "",
                r#", "controls": {"count_limit": {"approve": false, "response_code": "655"}}"#,
            ),
            false,
        ),
    ];
    // The loader reads `controls` once the card controls land; until then only the schema
    // verdicts are checked here.
    let loader_reads_controls = Policy::from_json(&cases[0].0).is_ok();
    for (text, valid) in &cases {
        let instance: Value = serde_json::from_str(text).expect("JSON");
        assert_eq!(validator.is_valid(&instance), *valid, "schema: {text}");
        if loader_reads_controls {
            assert_eq!(Policy::from_json(text).is_ok(), *valid, "loader: {text}");
        }
    }
}

// ---- members Pismo added after the seed ----

/// Each of `paths` reads as absent in `request`.
fn assert_absent<R: PolicySubject>(request: &R, paths: &[&str]) {
    for path in paths {
        assert_eq!(request.field(path), Field::Absent, "{path}");
    }
}

#[test]
fn zero_balance_address_verification_fields_are_rule_addressable() {
    let text = zb(
        r#"{"name": "address", "when": [{"field": "fields.match_address", "eq": false}],
            "then": {"is_approved": false, "response_code": "05"}},
           {"name": "postal", "when": [{"field": "fields.match_postal_code", "eq": false}],
            "then": {"is_approved": false, "response_code": "05"}},
           {"name": "no-address", "when": [{"field": "fields.no_address_data", "eq": true}],
            "then": {"is_approved": false, "response_code": "05"}},
           {"name": "unverified", "when": [{"field": "fields.match_address", "present": false}],
            "then": {"is_approved": false, "response_code": "05"}}"#,
    );
    let policy = Policy::from_json(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let decide = |edit: &dyn Fn(&mut Value)| {
        let request: ZeroBalanceRequest = edited(ZERO_BALANCE_PLAIN, edit);
        policy.zero_balance.decide(&request).label.to_string()
    };
    let set = |address: Value, postal: Value, none: Value| {
        move |v: &mut Value| {
            v["fields"]["match_address"] = address.clone();
            v["fields"]["match_postal_code"] = postal.clone();
            v["fields"]["no_address_data"] = none.clone();
        }
    };
    // (match_address, match_postal_code, no_address_data) → the rule that decides.
    let cases: [((Value, Value, Value), &str); 7] = [
        ((true.into(), true.into(), false.into()), "default"),
        ((false.into(), true.into(), false.into()), "address"),
        ((true.into(), false.into(), false.into()), "postal"),
        ((true.into(), true.into(), true.into()), "no-address"),
        // The JSON type is undocumented: "true" / "false" strings read as the flag.
        (("FALSE".into(), "true".into(), "false".into()), "address"),
        (("true".into(), "True".into(), "TRUE".into()), "no-address"),
        // Any other string is accepted on the wire but is no flag: absent to rules.
        (("Y".into(), "true".into(), "false".into()), "unverified"),
    ];
    for ((address, postal, none), want) in cases {
        let what = format!("{address} {postal} {none}");
        assert_eq!(decide(&set(address, postal, none)), want, "{what}");
    }

    // A request without them (the seed's shape) sees them absent.
    let plain: ZeroBalanceRequest = serde_json::from_str(ZERO_BALANCE_PLAIN).expect("fixture");
    assert_absent(
        &plain,
        &[
            "fields.match_address",
            "fields.match_postal_code",
            "fields.no_address_data",
        ],
    );
    assert_eq!(&*policy.zero_balance.decide(&plain).label, "unverified");

    // Present ones are read, and written back in the form they came in.
    let sent: ZeroBalanceRequest = edited(
        ZERO_BALANCE_PLAIN,
        set(true.into(), "false".into(), Value::Null),
    );
    assert_eq!(sent.field("fields.match_address"), Field::Bool(true));
    assert_eq!(sent.field("fields.match_postal_code"), Field::Bool(false));
    assert_eq!(
        sent.field("fields.no_address_data"),
        Field::Absent,
        "null is absent"
    );
    let back = serde_json::to_value(&sent).expect("serialize");
    assert_eq!(back["fields"]["match_address"], true);
    assert_eq!(back["fields"]["match_postal_code"], "false");
    assert!(back["fields"].get("no_address_data").is_none());
}

#[test]
fn full_balance_card_mode_pin_and_merchant_denial_fields_are_rule_addressable() {
    let policy = full_balance_policy(
        r#"{"name": "debit", "when": [{"field": "fields.card_mode_type", "eq": "DEBIT"}],
            "then": {"approve": false, "response_code": "57"}},
           {"name": "pin", "when": [{"field": "fields.pin_validated", "eq": false}],
            "then": {"approve": false, "response_code": "55"}},
           {"name": "merchant", "when": [{"field": "fields.merchant_denial_code", "in": ["02", "5"]}],
            "then": {"approve": false, "response_code": "05"}}"#,
    );
    let with = |mode: Value, pin: Value, denial: Value| {
        full_balance(|v| {
            v["fields"]["card_mode_type"] = mode;
            v["fields"]["pin_validated"] = pin;
            v["fields"]["merchant_denial_code"] = denial;
        })
    };
    // (card_mode_type, pin_validated, merchant_denial_code) → the rule that decides.
    let cases: [((Value, Value, Value), &str); 7] = [
        (("CREDIT".into(), true.into(), "00".into()), "default"),
        (("DEBIT".into(), true.into(), "00".into()), "debit"),
        (("CREDIT".into(), false.into(), "00".into()), "pin"),
        (("CREDIT".into(), "false".into(), "00".into()), "pin"),
        (("CREDIT".into(), "true".into(), "02".into()), "merchant"),
        // A code sent as a JSON number is its text.
        (("CREDIT".into(), true.into(), 5.into()), "merchant"),
        (("CREDIT".into(), "unknown".into(), "00".into()), "default"),
    ];
    for ((mode, pin, denial), want) in cases {
        let what = format!("{mode} {pin} {denial}");
        assert_eq!(label(&policy, &with(mode, pin, denial)), want, "{what}");
    }
    let sent = with("DEBIT".into(), "true".into(), 2.into());
    assert_eq!(
        sent.field("fields.card_mode_type"),
        Field::Text("DEBIT".into())
    );
    assert_eq!(sent.field("fields.pin_validated"), Field::Bool(true));
    assert_eq!(
        sent.field("fields.merchant_denial_code"),
        Field::Text("2".into())
    );

    // A request without them (the seed's shape) sees them absent.
    let plain = full_balance(|_| {});
    assert_absent(
        &plain,
        &[
            "fields.card_mode_type",
            "fields.pin_validated",
            "fields.merchant_denial_code",
        ],
    );
    assert_eq!(label(&policy, &plain), "default");
    let absent = full_balance_policy(
        r#"{"name": "none", "when": [{"field": "fields.card_mode_type", "present": false},
                                    {"field": "fields.pin_validated", "present": false},
                                    {"field": "fields.merchant_denial_code", "present": false}],
            "then": {"approve": false, "response_code": "57"}}"#,
    );
    assert_eq!(label(&absent, &plain), "none");
}

#[test]
fn tokenization_network_call_method_is_rule_addressable() {
    let text = tokenization_rule(
        r#"{"name": "binding", "when": [{"field": "network_call_method", "eq": "VTS_DEVICE_BINDING"}],
            "then": {"approve": false, "action_code": "05"}},
           {"name": "vts", "when": [{"field": "network_call_method", "prefix": "VTS_"}],
            "then": {"approve": false, "action_code": "57"}},
           {"name": "unknown", "when": [{"field": "network_call_method", "present": false}],
            "then": {"approve": false, "action_code": "96"}}"#,
    );
    let policy = Policy::from_json(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let decide = |method: Value| {
        let request: TokenizationRequest =
            edited(TOKENIZATION_PLAIN, |v| v["network_call_method"] = method);
        policy.card_tokenization.decide(&request).label.to_string()
    };
    assert_eq!(decide("VTS_DEVICE_BINDING".into()), "binding");
    assert_eq!(decide("VTS_APPROVE_PROVSIONING".into()), "vts");
    assert_eq!(decide("TA".into()), "default");
    assert_eq!(decide(Value::Null), "unknown", "null is absent");

    let plain: TokenizationRequest = serde_json::from_str(TOKENIZATION_PLAIN).expect("fixture");
    assert_absent(&plain, &["network_call_method"]);
    assert_eq!(&*policy.card_tokenization.decide(&plain).label, "unknown");
}

#[test]
fn unknown_members_beside_the_new_ones_are_still_accepted() {
    let extra = serde_json::json!({"nested": [1, 2.5, "x"], "flag": true});
    let full: FullBalanceRequest = full_balance(|v| {
        v["fields"]["a_member_pismo_adds_later"] = extra.clone();
        v["fields"]["pin_validated"] = true.into();
    });
    assert_eq!(full.field("fields.pin_validated"), Field::Bool(true));
    let zero: ZeroBalanceRequest = edited(ZERO_BALANCE_PLAIN, |v| {
        v["fields"]["a_member_pismo_adds_later"] = extra.clone();
        v["fields"]["match_address"] = true.into();
    });
    assert_eq!(zero.field("fields.match_address"), Field::Bool(true));
    let token: TokenizationRequest = edited(TOKENIZATION_PLAIN, |v| {
        v["a_member_pismo_adds_later"] = extra.clone();
        v["network_call_method"] = "TA".into();
    });
    assert_eq!(token.field("network_call_method"), Field::Text("TA".into()));
    // Unknown members are dropped, not kept: rules cannot name them.
    assert!(
        serde_json::to_value(&full).expect("serialize")["fields"]
            .get("a_member_pismo_adds_later")
            .is_none()
    );
}

/// `signals.*` fields are rule-addressable where the card's signals are kept (Full balance,
/// Zero balance), with their kinds checked, and refused elsewhere.
#[test]
fn signal_fields_load_only_on_the_purchase_webhooks() {
    let policy = full_balance_policy(
        r#"{"name": "outlier", "when": [{"field": "signals.amount_zscore", "gt": 4}],
            "then": {"approve": false, "response_code": "59"}}"#,
    );
    let request = full_balance(|_| {});
    let section = &policy.full_balance_antifraud;
    assert!(section.reads_signals());
    // Without signals (a new card, or no controls table) the z-score is absent: no match.
    assert_eq!(section.decide(&request).label.as_ref(), "default");
    let hot = shared::signals::Signals {
        amount_zscore: Some(rust_decimal::Decimal::from(5)),
        ..Default::default()
    };
    assert_eq!(
        section.decide_signals(&request, Some(&hot)).label.as_ref(),
        "outlier"
    );
    assert_rule_refused(
        "a signal on card tokenization",
        &tokenization_rule(&format!(
            r#"{{"name": "sig", "when": [{{"field": "signals.new_country", "eq": true}}], "then": {DECLINE_05}}}"#
        )),
        "sig",
        "signals.new_country",
    );
    let wrong_kind = r#"{"full_balance_antifraud": {"rules": [{"name": "kind", "when": [{"field": "signals.new_country", "gt": 1}], "then": {"approve": false, "response_code": "59"}}],
            "default": {"approve": true, "response_code": "00"},
            "fallback": {"approve": false, "response_code": "96"}}}"#;
    assert_rule_refused(
        "a number operator on a bool signal",
        wrong_kind,
        "kind",
        "signals.new_country",
    );
}
