//! Every sample of the seed documents, as a fixture under `tests/fixtures/seeds/`, parses into
//! its model, serializes, and parses again to an equal value. Responses serialize with exactly
//! the seed's member names and leave out absent optionals. See the fixtures' README for the
//! minimal fixes some samples needed to be valid JSON.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::path::PathBuf;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use shared::models::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/seeds")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
}

fn fixture_value(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).expect("fixture is valid JSON")
}

/// The JSON without members whose value is `null` (an absent optional is written as absent).
fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, value)| !value.is_null())
                .map(|(key, value)| (key, strip_nulls(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// Parses the fixture into `T`, serializes it, parses that again and checks both values are
/// equal; also checks that the serialized JSON is the fixture itself (same members, same
/// values, numbers with the same text) apart from `null` members. Returns the parsed value.
fn roundtrip<T>(name: &str) -> T
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let bytes = fixture(name);
    let first: T = parse_json(&bytes).unwrap_or_else(|error| panic!("{name}: {error}"));
    let serialized = serde_json::to_vec(&first).expect("serialize");
    let second: T = parse_json(&serialized).unwrap_or_else(|error| panic!("{name} again: {error}"));
    assert_eq!(first, second, "{name}: value changed after a round trip");
    let written: Value = serde_json::from_slice(&serialized).expect("serialized JSON");
    assert_eq!(
        written,
        strip_nulls(fixture_value(name)),
        "{name}: serialized JSON differs from the fixture"
    );
    first
}

/// `original_network_data` parsed, for comparing with a fixture.
fn raw_value(raw: Option<&shared::models::RawJson>) -> Option<Value> {
    raw.map(|raw| raw.to_value().expect("RawJson holds valid JSON"))
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .map(|map| map.keys().cloned().collect())
        .unwrap_or_default()
}

/// `value` writes the members of the fixture `name`, no more and no fewer.
fn assert_keys_like<T: Serialize>(value: &T, name: &str) {
    assert_eq!(keys(&to_value(value)), keys(&fixture_value(name)), "{name}");
}

/// The request's `original_network_data` is the fixture `name`, value for value.
fn assert_network_data(raw: Option<&shared::models::RawJson>, name: &str) {
    assert_eq!(raw_value(raw), Some(fixture_value(name)), "{name}");
}

fn key_set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

fn to_value<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("serialize")
}

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).expect("decimal literal")
}

// ---------------------------------------------------------------- card tokenization

#[test]
fn tokenization_request() {
    let request: TokenizationRequest = roundtrip("tokenization_request.json");
    let card = request.card.as_ref().expect("card");
    assert_eq!(card.id, 134142);
    assert_eq!(card.card_type, CardType::Plastic);
    assert_eq!(card.program_id, Some(1234));
    assert_eq!(card.bin.as_deref(), Some("5122"));
    assert_eq!(request.combo_card, Some(ComboCard::default()));
    assert_eq!(request.token_id, 432);
    assert_eq!(request.network_brand, NetworkBrand::Vts);
    assert_eq!(request.custom_codes, Some(vec![CustomCode::Frb]));
    assert_eq!(
        raw_value(request.original_network_data.as_ref()),
        Some(json!({}))
    );
}

#[test]
fn tokenization_request_go_sample() {
    let request: TokenizationRequest = roundtrip("tokenization_request_go_sample.json");
    let card = request.card.as_ref().expect("card");
    assert_eq!(card.program_id, None, "the Go sample has no program_id");
    assert_eq!(card.bin, None, "the Go sample has no bin");
    assert_eq!(request.combo_card, None, "combo_card: null");
    assert_eq!(
        request.custom_codes,
        Some(vec![CustomCode::Frb, CustomCode::Other("BNB".to_owned())])
    );
}

#[test]
fn tokenization_request_with_mastercard_network_data() {
    let request: TokenizationRequest =
        roundtrip("tokenization_request_with_mastercard_network_data.json");
    assert_eq!(request.network_brand, NetworkBrand::Mdes);
    let data = raw_value(request.original_network_data.as_ref()).expect("original_network_data");
    assert_eq!(data, fixture_value("original_network_data_mastercard.json"));
    assert_eq!(data["de4_amount_transaction"], json!("000000001000"));
    assert_eq!(
        data["de48_additional_data_private_user"]["se75_fraud_scoring_data"]["sf1_fraud_score"],
        json!("036")
    );
}

#[test]
fn tokenization_request_with_visa_network_data() {
    let request: TokenizationRequest =
        roundtrip("tokenization_request_with_visa_network_data.json");
    let data = raw_value(request.original_network_data.as_ref()).expect("original_network_data");
    assert_eq!(data, fixture_value("original_network_data_visa.json"));
    assert_eq!(data["f4_amount_transaction"], json!("000000001000"));
}

#[test]
fn tokenization_response() {
    let response: TokenizationResponse = roundtrip("tokenization_response.json");
    assert!(response.approve);
    assert_eq!(response.action_code, ActionCode::NeedsChallenge);
    let methods = response
        .step_up_methods
        .as_deref()
        .expect("step_up_methods");
    assert_eq!(methods.len(), 3);
    assert_eq!(methods[0].method, Some(OtpMethod::Call));
    assert_eq!(methods[2].platform, Some(Platform::Android));
    assert_eq!(
        methods[2].source.as_deref(),
        Some("com.issuer.banking://wallet")
    );

    // Exactly the seed's member names, at every level.
    let written = to_value(&response);
    let seed = fixture_value("tokenization_response.json");
    assert_eq!(keys(&written), keys(&seed));
    for (written, seed) in written["step_up_methods"]
        .as_array()
        .into_iter()
        .flatten()
        .zip(seed["step_up_methods"].as_array().into_iter().flatten())
    {
        assert_eq!(keys(written), keys(seed));
    }
}

#[test]
fn tokenization_response_go_sample() {
    let response: TokenizationResponse = roundtrip("tokenization_response_go_sample.json");
    let methods = response.step_up_methods.expect("step_up_methods");
    assert_eq!(methods[0].method, Some(OtpMethod::App));
    // Go's encoding/json writes empty strings for the fields without omitempty.
    assert_eq!(methods[1].platform, Some(Platform::Other(String::new())));
    assert_eq!(methods[1].value, None);
}

#[test]
fn tokenization_response_names_and_omitted_optionals() {
    let bare = to_value(&TokenizationResponse::new(false, ActionCode::NotApproved));
    assert_eq!(keys(&bare), key_set(&["approve", "action_code"]));
    assert_eq!(bare, json!({"approve": false, "action_code": "05"}));

    let full = TokenizationResponse::challenge(vec![StepUpMethod {
        method: Some(OtpMethod::App),
        value: Some("app".to_owned()),
        platform: Some(Platform::Ios),
        source: Some("com.issuer://x".to_owned()),
    }]);
    let full = to_value(&full);
    assert_eq!(
        keys(&full),
        key_set(&["approve", "action_code", "step_up_methods"])
    );
    assert_eq!(
        keys(&full["step_up_methods"][0]),
        key_set(&["method", "value", "platform", "source"])
    );
    assert_eq!(
        to_value(&StepUpMethod::new(OtpMethod::Sms)),
        json!({"method": "OTPSMS"})
    );
}

#[test]
fn custom_codes_map_to_the_seed_action_codes() {
    assert_eq!(
        CustomCode::Fr2.action_code(&NetworkBrand::Vts),
        Some(ActionCode::InvalidCvv2)
    );
    assert_eq!(
        CustomCode::Ccs.action_code(&NetworkBrand::Vts),
        Some(ActionCode::ClosedAccount)
    );
    assert_eq!(
        CustomCode::Ced.action_code(&NetworkBrand::Mdes),
        Some(ActionCode::NotApproved)
    );
    assert_eq!(
        CustomCode::Frb.action_code(&NetworkBrand::Vts),
        Some(ActionCode::NotApproved)
    );
    assert_eq!(
        CustomCode::from("BNB").action_code(&NetworkBrand::Vts),
        None
    );
}

// ---------------------------------------------------------------- original_network_data

#[test]
fn original_network_data_mastercard() {
    let data: Value = roundtrip("original_network_data_mastercard.json");
    assert!(keys(&data).iter().all(|key| key.starts_with("de")));
    assert_eq!(data["de2_primary_account_number"], json!("[card-hash]"));
}

#[test]
fn original_network_data_visa() {
    let data: Value = roundtrip("original_network_data_visa.json");
    assert!(keys(&data).iter().all(|key| key.starts_with('f')));
    assert_eq!(data["f3_processing_code"], json!("000000"));
}

// ---------------------------------------------------------------- banking anti-fraud

#[test]
fn banking_request() {
    let request: BankingRequest = roundtrip("banking_request.json");
    assert_eq!(request.decision, Decision::Approve);
    // A number in the sample, a string in the table: kept as it came.
    assert!(matches!(request.account_id, StringOrNumber::Number(_)));
    assert_eq!(request.account_id.to_text(), "102334690");
    assert_eq!(request.amount, dec("20"));
    assert_eq!(request.origin, Origin::Banking);
    assert_eq!(request.operation_type, OperationType::Cashin);
    let account = request
        .entities
        .as_ref()
        .and_then(|entities| entities.account.as_ref())
        .expect("entities.account");
    assert_eq!(
        account.limits.as_ref().and_then(|l| l.total),
        Some(dec("1000"))
    );
    let zipcode = account.address.as_ref().and_then(|a| a.zipcode.as_ref());
    assert_eq!(
        zipcode.map(StringOrNumber::to_text).as_deref(),
        Some("8675309")
    );
    assert_eq!(
        request.metadata.as_ref().expect("metadata")["d"]["d3"],
        json!(15)
    );

    // The table's string form is accepted too, and written back as a string.
    let mut value = fixture_value("banking_request.json");
    value["account_id"] = json!("102334690");
    value["entities"]["account"]["address"]["zipcode"] = json!("08675-309");
    let request: BankingRequest = parse_json(value.to_string().as_bytes()).expect("parse");
    assert_eq!(request.account_id, StringOrNumber::from("102334690"));
    assert_eq!(to_value(&request), value);
}

#[test]
fn banking_response() {
    let response: BankingResponse = roundtrip("banking_response.json");
    assert_eq!(response.decision, Decision::Approve);
    assert_eq!(response.metadata, Some(json!({})));
    assert_keys_like(&response, "banking_response.json");

    assert_eq!(
        to_value(&BankingResponse::new(Decision::Reject)),
        json!({"decision": "reject"})
    );
}

// ---------------------------------------------------------------- Zero balance

#[test]
fn zero_balance_request() {
    let request: ZeroBalanceRequest = roundtrip("zero_balance_request.json");
    assert_eq!(request.id, "1111");
    assert_eq!(request.entity, Entity::Transaction);
    let fields = &request.fields;
    assert_eq!(fields.mti, "0100");
    assert_eq!(fields.amount_transaction, dec("10"));
    assert_eq!(fields.atc_database, Some(vec![748, 652, 998]));
    assert_eq!(fields.card_type, Some(CardType::Plastic));
    assert_eq!(fields.cvv_data, Some(StringOrBool::from("CVV_PRESENT")));
    // The seed's sample sends the string "..." where the table says object.
    assert_eq!(
        raw_value(fields.original_network_data.as_ref()),
        Some(json!("..."))
    );
    let results = fields
        .validation_results
        .as_deref()
        .expect("validation_results");
    assert_eq!(results[0].status, Some(ValidationStatus::Approved));
}

#[test]
fn zero_balance_request_with_mastercard_network_data() {
    let request: ZeroBalanceRequest =
        roundtrip("zero_balance_request_with_mastercard_network_data.json");
    assert_network_data(
        request.fields.original_network_data.as_ref(),
        "original_network_data_mastercard.json",
    );
}

#[test]
fn zero_balance_response() {
    let response: ZeroBalanceResponse = roundtrip("zero_balance_response.json");
    assert_eq!(response.is_approved, Some(true));
    assert_eq!(response.response_code.as_deref(), Some("00"));
    assert_eq!(response.limit_amount, Some(dec("12.34")));
    let written = serde_json::to_string(&response).expect("serialize");
    assert!(written.contains(r#""limit_amount":12.34"#), "{written}");
    assert_keys_like(&response, "zero_balance_response.json");
}

#[test]
fn zero_balance_response_names_and_omitted_optionals() {
    assert_eq!(to_value(&ZeroBalanceResponse::default()), json!({}));
    let full = ZeroBalanceResponse {
        is_approved: Some(false),
        response_code: Some("51".to_owned()),
        limit_amount: Some(dec("0.10")),
        available_credit_limit: Some(AvailableCreditLimit {
            amount: Some(dec("1500.00")),
            currency_code: Some(986),
        }),
    };
    let written = to_value(&full);
    assert_eq!(
        keys(&written),
        key_set(&[
            "is_approved",
            "response_code",
            "limit_amount",
            "available_credit_limit"
        ])
    );
    assert_eq!(
        keys(&written["available_credit_limit"]),
        key_set(&["amount", "currency_code"])
    );
    assert_eq!(
        serde_json::to_string(&full).expect("serialize"),
        r#"{"is_approved":false,"response_code":"51","limit_amount":0.10,"available_credit_limit":{"amount":1500.00,"currency_code":986}}"#
    );
}

// ---------------------------------------------------------------- Full balance

#[test]
fn full_balance_request() {
    let request: FullBalanceRequest = roundtrip("full_balance_request.json");
    let fields = &request.fields;
    assert_eq!(fields.card_status, AuthCardStatus::Normal);
    assert_eq!(fields.card_expiration_date, "2026-10-15T00:00:00.000Z");
    assert_eq!(fields.available_limit, Some(dec("200.55")));
    assert_eq!(fields.total_limit, Some(dec("5000")));
    assert_eq!(fields.cvv_data, Some(StringOrBool::Bool(true)));
    assert_eq!(fields.unlock_date, Some(StringOrBool::from("string")));
    assert_eq!(fields.last_referral_reason.as_deref(), Some(""));
    assert_eq!(
        fields.last_referral_unlock_date.as_deref(),
        Some("2019-05-09 15:52:00")
    );
    assert_eq!(fields.pin_validated_offline, Some(true));
    let three_ds = fields.three_domain_security.as_ref().expect("3DS");
    assert_eq!(three_ds.service_indicator.as_deref(), Some("S"));
    assert_eq!(
        three_ds.authentication_data.as_deref(),
        Some("0201020590000000000000000000")
    );
}

#[test]
fn full_balance_request_with_visa_network_data() {
    let request: FullBalanceRequest = roundtrip("full_balance_request_with_visa_network_data.json");
    assert_network_data(
        request.fields.original_network_data.as_ref(),
        "original_network_data_visa.json",
    );
}

#[test]
fn full_balance_response() {
    let response: FullBalanceResponse = roundtrip("full_balance_response.json");
    assert_eq!(response.approve, Some(true));
    assert_eq!(response.force_approve, Some(true));
    assert_eq!(response.referral, Some(true));
    assert_eq!(response.metadata, Some(json!({})));
    assert_keys_like(&response, "full_balance_response.json");
}

#[test]
fn full_balance_response_names_and_omitted_optionals() {
    assert_eq!(to_value(&FullBalanceResponse::default()), json!({}));
    let partial = FullBalanceResponse {
        approve: Some(false),
        response_code: Some("05".to_owned()),
        ..FullBalanceResponse::default()
    };
    assert_eq!(
        to_value(&partial),
        json!({"approve": false, "response_code": "05"})
    );
}

// ---------------------------------------------------------------- Pismo events

#[test]
fn pismo_event_customer_creation() {
    let event: PismoEvent = roundtrip("pismo_event_customer_creation.json");
    assert_eq!(event.event_type, "customer-creation-1");
    assert_eq!(event.schema_version, SchemaVersion::Integer(1));
    assert_eq!(event.org_id, "<Your Org ID>");
    assert_eq!(
        event.cid.as_deref(),
        Some("7c7737f0-53d4-9b49-9833-e4c47483634e")
    );
    assert_eq!(event.data.get(), "{}");
}

#[test]
fn new_bucket_object_event() {
    let event: PismoEvent = roundtrip("new_bucket_object_event.json");
    assert!(event.is_new_bucket_object());
    let object: NewBucketObject = event.data_as().expect("new_bucket_object data");
    assert_eq!(object.object_size, 538);
    assert!(object.object_name.starts_with("main_stream/2020/04/11/19/"));
    assert_eq!(
        object.bucket_name,
        "pismo-dataplatform-tn-f770039e-aabd-498c-9134-9fde4cac4d51"
    );
    // The payload round-trips on its own too.
    let again: NewBucketObject =
        parse_json(&serde_json::to_vec(&object).expect("serialize")).expect("parse");
    assert_eq!(again, object);
}

#[test]
fn pismo_event_data_is_kept_verbatim() {
    let body = br#"{"event_id":"e","domain":"d","event_type":"t-1","schema_version":1,"org_id":"o","timestamp":"2020-01-01T00:00:00Z","data":{ "amount" : 10.50, "b":[1,2] }}"#;
    let event: PismoEvent = parse_json(body).expect("parse");
    assert_eq!(event.data.get(), r#"{ "amount" : 10.50, "b":[1,2] }"#);
    assert_eq!(event.cid, None);
    let written = serde_json::to_string(&event).expect("serialize");
    assert!(written.contains(r#""data":{ "amount" : 10.50, "b":[1,2] }"#));
    assert!(!written.contains("cid"), "absent cid is left out");
}

#[test]
fn schema_version_integer_and_string_round_trip() {
    let base = fixture_value("pismo_event_customer_creation.json");
    for (version, expected) in [
        (json!(1), SchemaVersion::Integer(1)),
        (json!("1"), SchemaVersion::String("1".to_owned())),
        (json!("2.1"), SchemaVersion::String("2.1".to_owned())),
    ] {
        let mut value = base.clone();
        value["schema_version"] = version.clone();
        let event: PismoEvent = parse_json(value.to_string().as_bytes()).expect("parse");
        assert_eq!(event.schema_version, expected);
        let written = to_value(&event);
        assert_eq!(written["schema_version"], version, "same JSON form");
        let again: PismoEvent =
            parse_json(&serde_json::to_vec(&event).expect("serialize")).expect("parse");
        assert_eq!(again, event);
    }
    assert_eq!(SchemaVersion::from("3").as_i64(), Some(3));
    let mut value = base;
    value["schema_version"] = json!(1.5);
    let error = parse_json::<PismoEvent>(value.to_string().as_bytes()).expect_err("1.5");
    assert_eq!(error.path, "schema_version");
}

// ---------------------------------------------------------------- Aritma CloudEvents

#[test]
fn aritma_event() {
    let event: CloudEvent = roundtrip("aritma_event.json");
    assert_eq!(event.specversion, "1.0");
    assert_eq!(event.event_type, "banking.payment.status.updated");
    assert_eq!(event.source, "kx9mp3rw2jf5nt42");
    assert_eq!(
        event.time.as_deref(),
        Some("2026-03-01T09:13:43.5146800+00:00")
    );
    assert_eq!(event.tid(), Some("00000000-0000-0000-0000-000000000000"));
    assert_eq!(event.extensions.len(), 1);
    assert_eq!(
        event.data.as_ref().expect("data")["transactionStatus"],
        json!("PDNG")
    );
}

#[test]
fn aritma_batch() {
    let events: Vec<CloudEvent> = roundtrip("aritma_batch.json");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event_type, "banking.payment.authorized");
    assert_eq!(
        events[0].data.as_ref().expect("data")["requiredAuthorizations"],
        json!(1)
    );
    assert_eq!(parse_cloudevents(&fixture("aritma_batch.json")), Ok(events));
    let single = parse_cloudevents(&fixture("aritma_event.json")).expect("single event");
    assert_eq!(single.len(), 1);
    assert_eq!(single[0].id, "2d59f3a8-c714-4b6e-a501-e89b04c26d73");
}

#[test]
fn aritma_http_binding_example() {
    let event: CloudEvent = roundtrip("aritma_http_binding_example.json");
    assert_eq!(event.event_type, "com.example.someevent");
    assert_eq!(event.data, Some(json!({})));
    assert_eq!(event.tid(), None);
}

#[test]
fn cloudevent_keeps_extensions_and_data_base64() {
    let body = br#"{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"AAE=","tid":"x","traceparent":"00-ab","amount":12.30,"datacontenttype":"application/octet-stream"}"#;
    let event: CloudEvent = parse_json(body).expect("parse");
    assert_eq!(event.data, None);
    assert_eq!(event.data_base64.as_deref(), Some("AAE="));
    assert_eq!(event.extensions.len(), 3);
    assert_eq!(event.extensions["amount"].to_string(), "12.30");
    let written: Value =
        serde_json::from_slice(&serde_json::to_vec(&event).expect("ser")).expect("valid JSON");
    assert_eq!(
        written,
        serde_json::from_slice::<Value>(body).expect("valid JSON")
    );

    let missing = parse_json::<CloudEvent>(br#"{"specversion":"1.0","source":"s","type":"t"}"#)
        .expect_err("no id");
    assert_eq!(missing.path, "id");
    let batch = parse_cloudevents(
        br#" [{"specversion":"1.0","id":"1","source":"s","type":"t"},{"specversion":"1.0","id":"2","type":"t"}]"#,
    )
    .expect_err("second has no source");
    assert_eq!(batch.path, "[1].source");
    let wrong = parse_json::<CloudEvent>(
        br#"{"specversion":"1.0","id":"1","source":"s","type":"t","subject":987654321}"#,
    )
    .expect_err("subject must be a string");
    assert!(wrong.message.contains("subject"), "{wrong}");
    assert!(!wrong.message.contains("987654321"), "{wrong}");
}

// ---------------------------------------------------------------- leniency

#[test]
fn unknown_enum_values_are_accepted_and_kept() {
    let mut value = fixture_value("tokenization_request.json");
    value["card"]["type"] = json!("METAL");
    value["card"]["status"] = json!("frozen");
    value["card"]["stage"] = json!("retired");
    value["network_brand"] = json!("amex-ts");
    value["custom_codes"] = json!(["FRB", "ZZZ"]);
    let request: TokenizationRequest = parse_json(value.to_string().as_bytes()).expect("parse");
    let card = request.card.as_ref().expect("card");
    assert_eq!(card.card_type, CardType::Other("METAL".to_owned()));
    assert!(!card.card_type.is_known());
    assert_eq!(card.status, Some(CardStatus::Other("frozen".to_owned())));
    assert_eq!(card.stage, Some(CardStage::Other("retired".to_owned())));
    assert_eq!(request.network_brand.as_str(), "amex-ts");
    assert_eq!(to_value(&request), value, "written back unchanged");

    let response: TokenizationResponse = parse_json(
        br#"{"approve":false,"action_code":"99","step_up_methods":[{"method":"OTPEMAIL","platform":"TV"}]}"#,
    )
    .expect("parse");
    assert_eq!(response.action_code, ActionCode::Other("99".to_owned()));
    assert_eq!(response.action_code.to_string(), "99");

    let mut value = fixture_value("banking_request.json");
    value["decision"] = json!("review");
    value["origin"] = json!("card");
    value["operation_type"] = json!("transfer");
    let request: BankingRequest = parse_json(value.to_string().as_bytes()).expect("parse");
    assert_eq!(request.decision, Decision::Other("review".to_owned()));
    assert_eq!(request.origin, Origin::Other("card".to_owned()));
    assert_eq!(request.operation_type.as_str(), "transfer");

    let mut value = fixture_value("full_balance_request.json");
    value["entity"] = json!("authorization");
    value["fields"]["card_status"] = json!("NORNAL");
    value["fields"]["card_type"] = json!("RECURRIMG");
    value["fields"]["validation_results"][0]["status"] = json!("PENDING");
    let request: FullBalanceRequest = parse_json(value.to_string().as_bytes()).expect("parse");
    assert_eq!(request.entity, Entity::Other("authorization".to_owned()));
    assert_eq!(
        request.fields.card_status,
        AuthCardStatus::Other("NORNAL".to_owned())
    );
    assert_eq!(to_value(&request), value);

    // Known strings always map to their named variant.
    assert_eq!(ActionCode::from("N7"), ActionCode::InvalidCvv2);
    assert_eq!(Platform::from("WEB".to_owned()), Platform::Web);
    assert_eq!(OtpMethod::KNOWN, &["OTPSMS", "OTPAPP", "OTPCALL"]);
}

#[test]
fn unknown_extra_fields_are_tolerated() {
    let mut value = fixture_value("tokenization_request.json");
    value["new_top_level"] = json!({"nested": [1, 2.5, "x"]});
    value["card"]["new_card_member"] = json!(42);
    let request: TokenizationRequest = parse_json(value.to_string().as_bytes()).expect("parse");
    assert_eq!(
        request,
        parse_json::<TokenizationRequest>(&fixture("tokenization_request.json")).expect("parse")
    );

    let mut value = fixture_value("zero_balance_request.json");
    value["fields"]["brand_new_field"] = json!(12.5);
    value["schema"] = json!("v2");
    parse_json::<ZeroBalanceRequest>(value.to_string().as_bytes()).expect("zero balance");

    let mut value = fixture_value("full_balance_request.json");
    value["fields"]["three_domain_security"]["version"] = json!("2.2.0");
    parse_json::<FullBalanceRequest>(value.to_string().as_bytes()).expect("full balance");

    let mut value = fixture_value("banking_request.json");
    value["entities"]["merchant"] = json!({"name": "x"});
    parse_json::<BankingRequest>(value.to_string().as_bytes()).expect("banking");

    let mut value = fixture_value("new_bucket_object_event.json");
    value["trace"] = json!("x");
    value["data"]["etag"] = json!("abc");
    let event: PismoEvent = parse_json(value.to_string().as_bytes()).expect("event");
    event.data_as::<NewBucketObject>().expect("payload");
}

#[test]
fn decimals_keep_their_exact_value() {
    let response: ZeroBalanceResponse =
        parse_json(br#"{"limit_amount":0.10,"available_credit_limit":{"amount":12.34}}"#)
            .expect("parse");
    assert_eq!(response.limit_amount, Some(dec("0.10")));
    assert_eq!(response.limit_amount.map(|d| d.scale()), Some(2));
    let amount = response
        .available_credit_limit
        .as_ref()
        .and_then(|a| a.amount);
    assert_eq!(amount, Some(dec("12.34")));
    assert_eq!(
        serde_json::to_string(&response).expect("serialize"),
        r#"{"limit_amount":0.10,"available_credit_limit":{"amount":12.34}}"#
    );

    let mut value = fixture_value("banking_request.json");
    value["amount"] = serde_json::from_str("1234567.891234567").expect("number");
    let request: BankingRequest = parse_json(value.to_string().as_bytes()).expect("parse");
    assert_eq!(request.amount, dec("1234567.891234567"));
    assert!(
        serde_json::to_string(&request)
            .expect("serialize")
            .contains(r#""amount":1234567.891234567"#)
    );

    let mut value = fixture_value("zero_balance_request.json");
    value["fields"]["amount_transaction"] = serde_json::from_str("0.1").expect("number");
    value["fields"]["amount_local"] = serde_json::from_str("0.2").expect("number");
    let request: ZeroBalanceRequest = parse_json(value.to_string().as_bytes()).expect("parse");
    assert_eq!(
        request.fields.amount_transaction + request.fields.amount_local,
        dec("0.3"),
        "no binary floating point"
    );
}

// ---------------------------------------------------------------- lenient fields (issue 13)

fn patched<T: DeserializeOwned>(name: &str, patch: Value) -> Result<T, ParseError> {
    let mut value = fixture_value(name);
    merge(&mut value, patch);
    parse_json::<T>(value.to_string().as_bytes())
}

fn without<T: DeserializeOwned>(name: &str, object: &str, member: &str) -> Result<T, ParseError> {
    let mut value = fixture_value(name);
    let target = if object.is_empty() {
        &mut value
    } else {
        &mut value[object]
    };
    target.as_object_mut().expect("object").remove(member);
    parse_json::<T>(value.to_string().as_bytes())
}

#[test]
fn ids_come_as_numbers_or_numeric_strings() {
    let zero: ZeroBalanceRequest = patched(
        "zero_balance_request.json",
        json!({"fields": {"card_id": "1234", "account_id": "98665386", "token_id": "1234", "program_id": "0"}}),
    )
    .expect("string ids");
    assert_eq!(zero.fields.card_id, 1234);
    assert_eq!(zero.fields.account_id.to_string(), "98665386");
    assert_eq!(zero.fields.token_id, Some(1234));
    assert_eq!(zero.fields.program_id, Some(0));

    let full: FullBalanceRequest = patched(
        "full_balance_request.json",
        json!({"fields": {"card_id": "1234", "account_id": "1234", "device_id_wallet": "1234", "number_of_installments": "3"}}),
    )
    .expect("string ids");
    assert_eq!(full.fields.account_id, 1234);
    assert_eq!(full.fields.device_id_wallet, Some(1234));
    assert_eq!(full.fields.number_of_installments, Some(3));

    let token: TokenizationRequest = patched(
        "tokenization_request.json",
        json!({"token_id": "987", "card": {"id": "134142", "program_id": "1234"}}),
    )
    .expect("string ids");
    assert_eq!(token.token_id, 987);
    assert_eq!(token.card.as_ref().map(|c| c.id), Some(134142));

    // Only the canonical form: no other spelling can alias a key.
    for bad in ["01234", "+1234", " 1234", "1234.0", "", "12x"] {
        let error = patched::<ZeroBalanceRequest>(
            "zero_balance_request.json",
            json!({"fields": {"account_id": bad}}),
        )
        .expect_err(bad);
        assert_eq!(error.path, "fields.account_id");
    }
    patched::<ZeroBalanceRequest>(
        "zero_balance_request.json",
        json!({"fields": {"account_id": 1234.5}}),
    )
    .expect_err("fraction");
}

#[test]
fn string_ids_and_codes_may_come_as_numbers() {
    let zero: ZeroBalanceRequest = patched(
        "zero_balance_request.json",
        json!({"fields": {"currency": 986, "wallet_id": 1234}}),
    )
    .expect("numbers");
    assert_eq!(zero.fields.currency, "986");
    assert_eq!(zero.fields.wallet_id.as_deref(), Some("1234"));
    let full: FullBalanceRequest = patched(
        "full_balance_request.json",
        json!({"fields": {"currency": 840, "wallet_id": 77}}),
    )
    .expect("numbers");
    assert_eq!(full.fields.currency, "840");
}

#[test]
fn empty_optional_numbers_are_absent() {
    let zero: ZeroBalanceRequest = patched(
        "zero_balance_request.json",
        json!({"fields": {"network_score": "", "number_of_installments": "", "program_id": null}}),
    )
    .expect("empty numbers");
    assert_eq!(zero.fields.network_score, None);
    assert_eq!(zero.fields.number_of_installments, None);
    assert_eq!(zero.fields.program_id, None);

    let full: FullBalanceRequest = patched(
        "full_balance_request.json",
        json!({"fields": {"network_score": "", "available_limit": "", "total_limit": "5000.50", "max_credit_limit": null}}),
    )
    .expect("empty numbers");
    assert_eq!(full.fields.network_score, None);
    assert_eq!(full.fields.available_limit, None);
    assert_eq!(full.fields.total_limit, Some(dec("5000.50")));
    assert_eq!(full.fields.max_credit_limit, None);
    // Absent values are left out when written again.
    let written = to_value(&full);
    assert!(written["fields"].get("network_score").is_none());
}

#[test]
fn money_stays_strict() {
    for (member, value) in [
        ("amount_transaction", json!("ten")),
        ("amount_transaction", json!("")),
        ("amount_transaction", json!(true)),
        ("amount_transaction", json!("+5")),
        ("amount_transaction", json!("1_000")),
        ("amount_transaction", json!(" 10")),
        ("amount_local", json!([10])),
        ("amount_settlement", json!(null)),
        ("processing_code", json!(0)),
        ("mti", json!(100)),
    ] {
        let error = patched::<ZeroBalanceRequest>(
            "zero_balance_request.json",
            json!({"fields": {member: value}}),
        )
        .expect_err(member);
        assert_eq!(error.path, format!("fields.{member}"));
        // Full balance has no processing_code.
        if member != "processing_code" {
            patched::<FullBalanceRequest>(
                "full_balance_request.json",
                json!({"fields": {member: value}}),
            )
            .expect_err(member);
        }
    }
    patched::<BankingRequest>("banking_request.json", json!({"amount": ""}))
        .expect_err("banking amount");
    // The request id is the idempotency key: a string, as the seed says.
    patched::<ZeroBalanceRequest>("zero_balance_request.json", json!({"id": 1111}))
        .expect_err("numeric id");
}

#[test]
fn zero_balance_cvv_data_is_a_string_or_a_boolean() {
    let request: ZeroBalanceRequest = patched(
        "zero_balance_request.json",
        json!({"fields": {"cvv_data": true}}),
    )
    .expect("bool cvv_data");
    assert_eq!(request.fields.cvv_data, Some(StringOrBool::Bool(true)));
    let request: ZeroBalanceRequest = patched(
        "zero_balance_request.json",
        json!({"fields": {"cvv_data": null}}),
    )
    .expect("null cvv_data");
    assert_eq!(request.fields.cvv_data, None);
}

#[test]
fn full_balance_advice_detail_code_is_optional() {
    let request: FullBalanceRequest =
        without("full_balance_request.json", "fields", "advice_detail_code")
            .expect("no advice_detail_code");
    assert_eq!(request.fields.advice_detail_code, None);
    let mut value = fixture_value("full_balance_request.json");
    let fields = value["fields"].as_object_mut().expect("fields");
    fields.remove("advice_detail_code");
    fields.remove("advice_reason_code");
    let written =
        to_value(&parse_json::<FullBalanceRequest>(value.to_string().as_bytes()).expect("parse"));
    assert!(written["fields"].get("advice_detail_code").is_none());
}

// ---------------------------------------------------------------- errors

#[test]
fn parse_error_names_a_missing_member() {
    let mut value = fixture_value("tokenization_request.json");
    value["card"]
        .as_object_mut()
        .expect("card object")
        .remove("id");
    let error = parse_json::<TokenizationRequest>(value.to_string().as_bytes())
        .expect_err("card.id missing");
    assert_eq!(error.path, "card.id");
    assert_eq!(error.message, "missing field `id`");
    assert_eq!(error.to_string(), "card.id: missing field `id`");

    let mut value = fixture_value("tokenization_request.json");
    value.as_object_mut().expect("object").remove("token_id");
    let error = parse_json::<TokenizationRequest>(value.to_string().as_bytes())
        .expect_err("token_id missing");
    assert_eq!(error.path, "token_id");
    assert!(error.message.contains("token_id"), "{error}");

    let mut value = fixture_value("full_balance_request.json");
    value["fields"]
        .as_object_mut()
        .expect("fields object")
        .remove("amount_settlement");
    let error = parse_json::<FullBalanceRequest>(value.to_string().as_bytes())
        .expect_err("amount_settlement missing");
    assert_eq!(error.path, "fields.amount_settlement");
}

#[test]
fn parse_error_names_the_path_and_never_echoes_the_value() {
    let secret = "4111111111111111";
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "tokenization_request.json",
            json!({"card": {"id": format!("0{secret}")}}),
            "card.id",
        ),
        (
            "tokenization_request.json",
            json!({"token_id": format!("{secret}.5")}),
            "token_id",
        ),
        (
            "tokenization_request.json",
            json!({"network_brand": 4111111111111111_u64}),
            "network_brand",
        ),
        (
            "tokenization_request.json",
            json!({"custom_codes": ["FRB", true]}),
            "custom_codes[1]",
        ),
        (
            "banking_request.json",
            json!({"amount": format!("x{secret}")}),
            "amount",
        ),
        (
            "banking_request.json",
            json!({"account_id": [secret]}),
            "account_id",
        ),
        (
            "full_balance_request.json",
            json!({"fields": {"validation_results": [{"status": 4111111111111111_u64}]}}),
            "fields.validation_results[0].status",
        ),
        (
            "full_balance_request.json",
            json!({"fields": {"cvv_data": 4111111111111111_u64}}),
            "fields.cvv_data",
        ),
        (
            "zero_balance_request.json",
            json!({"fields": {"card_id": 4111111111111111.5}}),
            "fields.card_id",
        ),
    ];
    for (name, patch, path) in cases {
        let mut value = fixture_value(name);
        merge(&mut value, patch);
        let body = value.to_string();
        let error = match name {
            "tokenization_request.json" => {
                parse_json::<TokenizationRequest>(body.as_bytes()).map(|_| ())
            }
            "banking_request.json" => parse_json::<BankingRequest>(body.as_bytes()).map(|_| ()),
            "full_balance_request.json" => {
                parse_json::<FullBalanceRequest>(body.as_bytes()).map(|_| ())
            }
            _ => parse_json::<ZeroBalanceRequest>(body.as_bytes()).map(|_| ()),
        }
        .expect_err(path);
        assert_eq!(error.path, path, "{error}");
        assert!(!error.to_string().contains("4111"), "echoes input: {error}");
        assert!(
            error.message.starts_with("invalid type") || error.message.starts_with("invalid value"),
            "{error}"
        );
        assert!(error.message.contains("expected"), "{error}");
    }
}

#[test]
fn parse_error_for_broken_json_is_safe_too() {
    let error = parse_json::<TokenizationRequest>(br#"{"token_id": 4111111111111111,"#)
        .expect_err("truncated");
    assert!(!error.to_string().contains("4111"), "{error}");
    assert!(error.message.contains("EOF"), "{error}");

    let error = parse_json::<TokenizationRequest>(&fixture("tokenization_request.json")[..])
        .map(|_| ())
        .and_then(|()| {
            let mut body = fixture("tokenization_request.json");
            body.extend_from_slice(b" {\"pan\":\"4111111111111111\"}");
            parse_json::<TokenizationRequest>(&body).map(|_| ())
        })
        .expect_err("trailing characters");
    assert_eq!(error.message, "trailing characters");

    // A member name taken from the input that is not a plain identifier is masked.
    let error = parse_json::<BankingResponse>(
        br#"{"decision":"approve","metadata":{"4111 1111 1111 1111": tru}}"#,
    )
    .expect_err("bad literal");
    assert!(!error.to_string().contains("4111"), "{error}");
    assert_eq!(error.path, "metadata.?");
}

fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                match target.get_mut(&key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge(existing, value)
                    }
                    _ => {
                        target.insert(key, value);
                    }
                }
            }
        }
        (target, patch) => *target = patch,
    }
}
