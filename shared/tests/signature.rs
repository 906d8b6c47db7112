//! Pismo request signature verification: forged and valid tokens, and the certificate cache.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderName, HeaderValue};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Signer};
use serde_json::{Value, json};
use shared::clock::ManualClock;
use shared::settings::SettingError;
use shared::signature::signer::{CannedResponse, CertServer, DevSigner, SignOptions};
use shared::signature::{Rejection, VerifiedClaims, Verifier, VerifierConfig};

const ACCOUNT: i64 = 98_665_386;
/// A Pismo-like body, byte for byte as sent.
const BODY: &[u8] = br#"{
 "card":{
 "id": 134142,
 "type": "PLASTIC"
 },
 "combo_card": null,
 "token_id": 432,
 "network_brand": "vts",
 "custom_codes": ["FRB", "BNB"],
 "original_network_data": {}
}"#;

fn now_secs() -> i64 {
    ManualClock::starting_now().now_secs()
}

struct Keys {
    signer: DevSigner,
    other: DevSigner,
    expired: DevSigner,
    not_yet_valid: DevSigner,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let signer = DevSigner::generate_in_memory().unwrap();
        let other = DevSigner::generate_in_memory().unwrap();
        let now = now_secs();
        let expired = signer
            .with_validity(now - 10 * 86_400, now - 86_400)
            .unwrap();
        let not_yet_valid = signer
            .with_validity(now + 86_400, now + 10 * 86_400)
            .unwrap();
        Keys {
            signer,
            other,
            expired,
            not_yet_valid,
        }
    })
}

/// Everything a case needs.
struct Fx {
    k: &'static Keys,
    now: i64,
}

impl Fx {
    fn opts(&self) -> SignOptions {
        SignOptions::new()
            .iat(self.now)
            .exp(self.now + 300)
            .sub("api-cards-tokenization")
            .account_id(ACCOUNT)
    }

    fn token(&self) -> String {
        self.k.signer.sign(BODY, &self.opts()).unwrap()
    }

    fn token_with(&self, opts: SignOptions) -> String {
        self.k.signer.sign(BODY, &opts).unwrap()
    }

    /// A request signed with a token of these claims.
    fn signed(&self, opts: SignOptions) -> Req {
        Req::sign(&self.token_with(opts))
    }

    fn claims(&self) -> Value {
        DevSigner::claims(BODY, &self.opts())
    }

    fn header(&self, alg: &str) -> Value {
        json!({"alg": alg, "kid": self.k.signer.kid(), "typ": "JWT"})
    }
}

struct Req {
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Req {
    fn new() -> Self {
        Self {
            headers: HeaderMap::new(),
            body: BODY.to_vec(),
        }
    }

    fn sign(token: &str) -> Self {
        Self::new().h("X-Pismo-Sign", token)
    }

    fn h(mut self, name: &str, value: &str) -> Self {
        self.headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        self
    }

    fn body(mut self, body: &[u8]) -> Self {
        self.body = body.to_vec();
        self
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn parts(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

fn hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let key = PKey::hmac(secret).unwrap();
    let mut signer = Signer::new(MessageDigest::sha256(), &key).unwrap();
    signer.update(input.as_bytes()).unwrap();
    format!("{input}.{}", b64(&signer.sign_to_vec().unwrap()))
}

fn ps256(fx: &Fx) -> String {
    let input = format!(
        "{}.{}",
        b64(fx.header("PS256").to_string().as_bytes()),
        b64(fx.claims().to_string().as_bytes())
    );
    let mut signer = Signer::new(MessageDigest::sha256(), fx.k.signer.private_key()).unwrap();
    signer.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
    signer
        .set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
        .unwrap();
    signer.set_rsa_mgf1_md(MessageDigest::sha256()).unwrap();
    signer.update(input.as_bytes()).unwrap();
    format!("{input}.{}", b64(&signer.sign_to_vec().unwrap()))
}

type Build = fn(&Fx) -> Req;

/// `None` = must pass; `Some(code)` = must be rejected with exactly that code.
fn cases() -> Vec<(&'static str, Build, Option<&'static str>)> {
    vec![
        // ---- valid tokens, every location ----
        ("valid in X-Pismo-Sign", |fx| Req::sign(&fx.token()), None),
        (
            "valid in Authorization: Bearer",
            |fx| Req::new().h("Authorization", &format!("Bearer {}", fx.token())),
            None,
        ),
        (
            "valid in bare Authorization",
            |fx| Req::new().h("Authorization", &fx.token()),
            None,
        ),
        (
            "valid with lowercase bearer and header names",
            |fx| Req::new().h("authorization", &format!("bearer {}", fx.token())),
            None,
        ),
        (
            "valid with uppercase header name",
            |fx| Req::new().h("X-PISMO-SIGN", &fx.token()),
            None,
        ),
        (
            "X-Pismo-Sign preferred over a garbage Authorization",
            |fx| Req::sign(&fx.token()).h("Authorization", "Basic Zm9vOmJhcg=="),
            None,
        ),
        (
            "valid with unpadded body-hash",
            |fx| {
                let hash = DevSigner::body_hash(BODY);
                assert!(hash.ends_with('='));
                let hash = hash.trim_end_matches('=').to_owned();
                fx.signed(fx.opts().claim("body-hash", hash))
            },
            None,
        ),
        (
            "valid with x-account-id equal to numeric account-id",
            |fx| Req::sign(&fx.token()).h("x-account-id", &ACCOUNT.to_string()),
            None,
        ),
        (
            "valid with x-account-id equal to string account-id",
            |fx| {
                fx.signed(fx.opts().account_id(ACCOUNT.to_string()))
                    .h("x-account-id", &ACCOUNT.to_string())
            },
            None,
        ),
        (
            "valid with exp just inside the leeway",
            |fx| fx.signed(fx.opts().iat(fx.now - 600).exp(fx.now - 30)),
            None,
        ),
        (
            "valid with iat just inside the leeway",
            |fx| fx.signed(fx.opts().iat(fx.now + 30)),
            None,
        ),
        (
            "valid with the lifetime of Pismo's sample token (exp - iat = 10 days)",
            |fx| fx.signed(fx.opts().iat(fx.now).exp(fx.now + 864_000)),
            None,
        ),
        (
            "lifetime one second over PISMO_JWT_MAX_AGE_SECS",
            |fx| fx.signed(fx.opts().iat(fx.now - 10).exp(fx.now + 863_991)),
            Some("lifetime_too_long"),
        ),
        (
            "days-long token issued long ago, still unexpired",
            |fx| fx.signed(fx.opts().iat(fx.now - 30 * 86_400).exp(fx.now + 60)),
            Some("lifetime_too_long"),
        ),
        (
            "no iat and exp further away than the maximum plus leeway",
            |fx| fx.signed(fx.opts().without("iat").exp(fx.now + 864_000 + 61)),
            Some("lifetime_too_long"),
        ),
        (
            "no iat and exp within the maximum plus leeway",
            |fx| fx.signed(fx.opts().without("iat").exp(fx.now + 864_000 + 59)),
            None,
        ),
        (
            "valid without iat",
            |fx| fx.signed(fx.opts().without("iat")),
            None,
        ),
        (
            "valid with an empty body",
            |fx| Req::sign(&fx.k.signer.sign(b"", &fx.opts()).unwrap()).body(b""),
            None,
        ),
        // ---- where the token is ----
        ("no token at all", |_| Req::new(), Some("missing_token")),
        (
            "empty X-Pismo-Sign",
            |_| Req::new().h("X-Pismo-Sign", ""),
            Some("missing_token"),
        ),
        (
            "Authorization with Bearer and nothing else",
            |_| Req::new().h("Authorization", "Bearer "),
            Some("missing_token"),
        ),
        (
            "duplicate X-Pismo-Sign",
            |fx| {
                let t = fx.token();
                Req::sign(&t).h("x-pismo-sign", &t)
            },
            Some("duplicate_token"),
        ),
        (
            "duplicate Authorization",
            |fx| {
                let t = fx.token();
                Req::new().h("Authorization", &t).h("authorization", &t)
            },
            Some("duplicate_token"),
        ),
        (
            "comma-joined X-Pismo-Sign (API Gateway merge)",
            |fx| {
                let t = fx.token();
                Req::sign(&format!("{t},{t}"))
            },
            Some("duplicate_token"),
        ),
        // ---- not a compact JWS ----
        (
            "garbage token",
            |_| Req::sign("hello"),
            Some("malformed_token"),
        ),
        (
            "two-part token",
            |fx| {
                let p = parts(&fx.token());
                Req::sign(&format!("{}.{}", p[0], p[1]))
            },
            Some("malformed_token"),
        ),
        (
            "four-part token",
            |fx| Req::sign(&format!("{}.{}", fx.token(), "AAAA")),
            Some("malformed_token"),
        ),
        (
            "token truncated before the signature",
            |fx| {
                let t = fx.token();
                Req::sign(&t[..t.rfind('.').unwrap()])
            },
            Some("malformed_token"),
        ),
        (
            "standard base64 characters in the header",
            |fx| {
                let p = parts(&fx.token());
                Req::sign(&format!("{}+/.{}.{}", p[0], p[1], p[2]))
            },
            Some("malformed_token"),
        ),
        (
            "padding in the signature",
            |fx| Req::sign(&format!("{}==", fx.token())),
            Some("malformed_token"),
        ),
        (
            "non-base64url character in the payload",
            |fx| {
                let p = parts(&fx.token());
                Req::sign(&format!("{}.{}*.{}", p[0], p[1], p[2]))
            },
            Some("malformed_token"),
        ),
        (
            "header is not JSON",
            |fx| {
                let p = parts(&fx.token());
                Req::sign(&format!("{}.{}.{}", b64(b"not json"), p[1], p[2]))
            },
            Some("malformed_token"),
        ),
        (
            "header is a JSON array",
            |fx| {
                let p = parts(&fx.token());
                Req::sign(&format!("{}.{}.{}", b64(b"[\"RS256\"]"), p[1], p[2]))
            },
            Some("malformed_token"),
        ),
        (
            "header with a duplicate alg",
            |fx| {
                let header = format!(
                    r#"{{"alg":"RS256","alg":"none","kid":"{}"}}"#,
                    fx.k.signer.kid()
                );
                let claims = fx.claims().to_string();
                Req::sign(
                    &fx.k
                        .signer
                        .sign_raw(header.as_bytes(), claims.as_bytes())
                        .unwrap(),
                )
            },
            Some("malformed_token"),
        ),
        (
            "Authorization with another scheme",
            |_| Req::new().h("Authorization", "Basic Zm9vOmJhcg=="),
            Some("malformed_token"),
        ),
        (
            "oversized token",
            |fx| {
                let p = parts(&fx.token());
                Req::sign(&format!("{}.{}.{}", p[0], "A".repeat(20_000), p[2]))
            },
            Some("malformed_token"),
        ),
        (
            "non-ASCII header value",
            |_| {
                let mut r = Req::new();
                r.headers.insert(
                    "x-pismo-sign",
                    HeaderValue::from_bytes(b"a\xffb.c.d").unwrap(),
                );
                r
            },
            Some("malformed_token"),
        ),
        (
            "signed payload is not JSON",
            |fx| {
                let header = fx.header("RS256").to_string();
                Req::sign(
                    &fx.k
                        .signer
                        .sign_raw(header.as_bytes(), b"not json")
                        .unwrap(),
                )
            },
            Some("malformed_token"),
        ),
        (
            "exp is a string",
            |fx| fx.signed(fx.opts().claim("exp", (fx.now + 300).to_string())),
            Some("malformed_token"),
        ),
        // ---- algorithm confusion ----
        (
            "alg none with empty signature",
            |fx| {
                let claims = fx.claims().to_string();
                Req::sign(&format!(
                    "{}.{}.",
                    b64(fx.header("none").to_string().as_bytes()),
                    b64(claims.as_bytes())
                ))
            },
            Some("unsupported_alg"),
        ),
        (
            "alg None with a real signature",
            |fx| {
                Req::sign(
                    &fx.k
                        .signer
                        .sign_with_header(&fx.header("None"), &fx.claims())
                        .unwrap(),
                )
            },
            Some("unsupported_alg"),
        ),
        (
            "HS256 keyed with the certificate PEM",
            |fx| {
                Req::sign(&hs256(
                    &fx.header("HS256"),
                    &fx.claims(),
                    fx.k.signer.certificate_pem().as_bytes(),
                ))
            },
            Some("unsupported_alg"),
        ),
        (
            "HS256 keyed with the public key PEM",
            |fx| {
                let pem = fx.k.signer.public_key_pem().unwrap();
                Req::sign(&hs256(&fx.header("HS256"), &fx.claims(), pem.as_bytes()))
            },
            Some("unsupported_alg"),
        ),
        (
            "ES256 header over an RS256 signature",
            |fx| {
                Req::sign(
                    &fx.k
                        .signer
                        .sign_with_header(&fx.header("ES256"), &fx.claims())
                        .unwrap(),
                )
            },
            Some("unsupported_alg"),
        ),
        (
            "PS256 with a real PSS signature by the right key",
            |fx| Req::sign(&ps256(fx)),
            Some("unsupported_alg"),
        ),
        (
            "RS512 header",
            |fx| {
                Req::sign(
                    &fx.k
                        .signer
                        .sign_with_header(&fx.header("RS512"), &fx.claims())
                        .unwrap(),
                )
            },
            Some("unsupported_alg"),
        ),
        (
            "lowercase rs256",
            |fx| {
                Req::sign(
                    &fx.k
                        .signer
                        .sign_with_header(&fx.header("rs256"), &fx.claims())
                        .unwrap(),
                )
            },
            Some("unsupported_alg"),
        ),
        (
            "no alg",
            |fx| {
                let header = json!({"kid": fx.k.signer.kid()});
                Req::sign(&fx.k.signer.sign_with_header(&header, &fx.claims()).unwrap())
            },
            Some("unsupported_alg"),
        ),
        (
            "crit header",
            |fx| {
                let header = json!({"alg": "RS256", "kid": fx.k.signer.kid(), "crit": ["b64"], "b64": false});
                Req::sign(&fx.k.signer.sign_with_header(&header, &fx.claims()).unwrap())
            },
            Some("unsupported_crit"),
        ),
        // ---- keys ----
        (
            "no kid",
            |fx| {
                let header = json!({"alg": "RS256", "typ": "JWT"});
                Req::sign(&fx.k.signer.sign_with_header(&header, &fx.claims()).unwrap())
            },
            Some("missing_kid"),
        ),
        (
            "empty kid",
            |fx| {
                let header = json!({"alg": "RS256", "kid": ""});
                Req::sign(&fx.k.signer.sign_with_header(&header, &fx.claims()).unwrap())
            },
            Some("missing_kid"),
        ),
        (
            "unknown kid",
            |fx| {
                let header =
                    json!({"alg": "RS256", "kid": "0000000000000000000000000000000000000000"});
                Req::sign(&fx.k.signer.sign_with_header(&header, &fx.claims()).unwrap())
            },
            Some("unknown_kid"),
        ),
        (
            "expired certificate",
            |fx| Req::sign(&fx.k.expired.sign(BODY, &fx.opts()).unwrap()),
            Some("certificate_expired"),
        ),
        (
            "certificate not valid yet",
            |fx| Req::sign(&fx.k.not_yet_valid.sign(BODY, &fx.opts()).unwrap()),
            Some("certificate_not_yet_valid"),
        ),
        // ---- signature ----
        (
            "wrong key under the right kid",
            |fx| {
                Req::sign(
                    &fx.k
                        .other
                        .sign_with_header(&fx.header("RS256"), &fx.claims())
                        .unwrap(),
                )
            },
            Some("bad_signature"),
        ),
        (
            "tampered claims, signature kept",
            |fx| {
                let p = parts(&fx.token());
                let forged = fx
                    .claims()
                    .as_object()
                    .unwrap()
                    .clone()
                    .into_iter()
                    .chain([("account-id".to_owned(), json!(1))])
                    .collect::<serde_json::Map<_, _>>();
                Req::sign(&format!(
                    "{}.{}.{}",
                    p[0],
                    b64(Value::Object(forged).to_string().as_bytes()),
                    p[2]
                ))
            },
            Some("bad_signature"),
        ),
        (
            "payload swapped from another token, signature kept",
            |fx| {
                let a = parts(&fx.token());
                let b = parts(&fx.token_with(fx.opts().exp(fx.now + 3600)));
                Req::sign(&format!("{}.{}.{}", a[0], b[1], a[2]))
            },
            Some("bad_signature"),
        ),
        (
            "tampered header, signature kept",
            |fx| {
                let p = parts(&fx.token());
                let header = json!({"alg": "RS256", "kid": fx.k.signer.kid(), "typ": "JOSE"});
                Req::sign(&format!(
                    "{}.{}.{}",
                    b64(header.to_string().as_bytes()),
                    p[1],
                    p[2]
                ))
            },
            Some("bad_signature"),
        ),
        (
            "signature with one bit flipped",
            |fx| {
                let p = parts(&fx.token());
                let mut sig = URL_SAFE_NO_PAD.decode(&p[2]).unwrap();
                sig[100] ^= 1;
                Req::sign(&format!("{}.{}.{}", p[0], p[1], b64(&sig)))
            },
            Some("bad_signature"),
        ),
        (
            "signature truncated",
            |fx| {
                let p = parts(&fx.token());
                Req::sign(&format!("{}.{}.{}", p[0], p[1], &p[2][..100]))
            },
            Some("bad_signature"),
        ),
        // ---- claims ----
        (
            "no iss",
            |fx| fx.signed(fx.opts().without("iss")),
            Some("missing_issuer"),
        ),
        (
            "wrong issuer",
            |fx| fx.signed(fx.opts().iss("evil.example")),
            Some("wrong_issuer"),
        ),
        (
            "issuer differs in case",
            |fx| fx.signed(fx.opts().iss("API.pismo.io")),
            Some("wrong_issuer"),
        ),
        (
            "no exp",
            |fx| fx.signed(fx.opts().without("exp")),
            Some("missing_exp"),
        ),
        (
            "expired beyond the leeway",
            |fx| fx.signed(fx.opts().iat(fx.now - 3600).exp(fx.now - 61)),
            Some("expired"),
        ),
        (
            "expired long ago (the seed's sample dates)",
            |fx| fx.signed(fx.opts().iat(1_651_672_630).exp(1_652_536_630)),
            Some("expired"),
        ),
        (
            "iat in the future beyond the leeway",
            |fx| fx.signed(fx.opts().iat(fx.now + 120).exp(fx.now + 600)),
            Some("issued_in_future"),
        ),
        (
            "nbf in the future beyond the leeway",
            |fx| fx.signed(fx.opts().claim("nbf", fx.now + 120)),
            Some("not_yet_valid"),
        ),
        // ---- body ----
        (
            "no body-hash",
            |fx| fx.signed(fx.opts().without("body-hash")),
            Some("body_hash_missing"),
        ),
        (
            "tampered body",
            |fx| {
                let mut body = BODY.to_vec();
                body[20] = b'9';
                Req::sign(&fx.token()).body(&body)
            },
            Some("body_hash_mismatch"),
        ),
        (
            "body re-serialized as compact JSON",
            |fx| {
                let v: Value = serde_json::from_slice(BODY).unwrap();
                Req::sign(&fx.token()).body(v.to_string().as_bytes())
            },
            Some("body_hash_mismatch"),
        ),
        (
            "body with a trailing newline",
            |fx| Req::sign(&fx.token()).body(&[BODY, b"\n"].concat()),
            Some("body_hash_mismatch"),
        ),
        (
            "body-hash in base64url",
            |fx| {
                // A body whose hash has '+' or '/', so the two alphabets really differ.
                let body = (0..)
                    .map(|n| [BODY, " ".repeat(n).as_bytes()].concat())
                    .find(|b| DevSigner::body_hash(b).contains(['+', '/']))
                    .unwrap();
                let url_safe = DevSigner::body_hash(&body)
                    .replace('+', "-")
                    .replace('/', "_");
                fx.signed(fx.opts().claim("body-hash", url_safe))
                    .body(&body)
            },
            Some("body_hash_mismatch"),
        ),
        (
            "body-hash is not base64",
            |fx| fx.signed(fx.opts().claim("body-hash", "!!not base64!!")),
            Some("body_hash_mismatch"),
        ),
        (
            "body-hash of the empty body",
            |fx| fx.signed(fx.opts().claim("body-hash", DevSigner::body_hash(b""))),
            Some("body_hash_mismatch"),
        ),
        (
            "body-hash is a SHA-1",
            |fx| {
                let sha1 = openssl::hash::hash(MessageDigest::sha1(), BODY).unwrap();
                let hash = base64::engine::general_purpose::STANDARD.encode(sha1);
                fx.signed(fx.opts().claim("body-hash", hash))
            },
            Some("body_hash_mismatch"),
        ),
        // ---- account ----
        (
            "x-account-id differs from a numeric account-id",
            |fx| Req::sign(&fx.token()).h("x-account-id", "98665387"),
            Some("account_mismatch"),
        ),
        (
            "x-account-id differs from a string account-id",
            |fx| {
                fx.signed(fx.opts().account_id("98665387"))
                    .h("x-account-id", &ACCOUNT.to_string())
            },
            Some("account_mismatch"),
        ),
        (
            "duplicate x-account-id headers",
            |fx| {
                Req::sign(&fx.token())
                    .h("x-account-id", &ACCOUNT.to_string())
                    .h("x-account-id", "1")
            },
            Some("account_mismatch"),
        ),
    ]
}

async fn verifier_for(server: &CertServer, clock: Arc<ManualClock>) -> Verifier {
    Verifier::with_clock(VerifierConfig::new(server.url()), clock)
}

#[tokio::test]
async fn table_of_forged_and_valid_tokens() {
    let k = keys();
    let server = CertServer::serve(&[&k.signer, &k.expired, &k.not_yet_valid], Some(300))
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let verifier = verifier_for(&server, Arc::clone(&clock)).await;
    let fx = Fx {
        k,
        now: clock.now_secs(),
    };
    let cases = cases();
    assert!(cases.len() >= 25, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for (name, build, expected) in &cases {
        let req = build(&fx);
        let got = verifier.verify(&req.headers, &req.body).await;
        let got_code = got.as_ref().err().map(Rejection::code);
        if got_code != *expected {
            failures.push(format!("{name}: expected {expected:?}, got {got_code:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // One fetch served every case; the unknown kid came inside the refresh interval.
    assert_eq!(server.hits(), 1);
    println!("{} cases passed", cases.len());
}

#[tokio::test]
async fn verified_claims_are_returned_and_pan_hash_is_redacted() {
    let k = keys();
    let server = CertServer::serve(&[&k.signer], None).await.unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let verifier = verifier_for(&server, Arc::clone(&clock)).await;
    let now = clock.now_secs();
    let token = k
        .signer
        .sign(
            BODY,
            &SignOptions::new()
                .iat(now)
                .exp(now + 60)
                .sub("api-cards-tokenization")
                .account_id(ACCOUNT)
                .claim("pan-hash", "c2VjcmV0LXBhbi1oYXNo"),
        )
        .unwrap();
    let req = Req::sign(&token);
    let claims: VerifiedClaims = verifier.verify(&req.headers, &req.body).await.unwrap();
    assert_eq!(claims.kid, k.signer.kid());
    assert_eq!(claims.iss, "api.pismo.io");
    assert_eq!(claims.sub.as_deref(), Some("api-cards-tokenization"));
    assert_eq!(claims.account_id.as_deref(), Some("98665386"));
    assert_eq!(claims.exp, now + 60);
    assert_eq!(claims.iat, Some(now));
    assert_eq!(
        claims.pan_hash.as_ref().map(|p| p.expose()),
        Some("c2VjcmV0LXBhbi1oYXNo")
    );
    let debug = format!("{claims:?}");
    assert!(!debug.contains("c2VjcmV0LXBhbi1oYXNo"), "{debug}");
    assert!(debug.contains("redacted"));
}

#[test]
fn rejection_codes_are_distinct_and_bodies_are_json() {
    let mut codes: Vec<_> = Rejection::ALL.iter().map(Rejection::code).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), Rejection::ALL.len());
    for r in Rejection::ALL {
        let body: Value = serde_json::from_str(&r.to_http_body()).unwrap();
        assert_eq!(
            body,
            json!({"error": "invalid_signature", "reason": r.code()})
        );
        assert_eq!(r.is_dependency_failure(), *r == Rejection::CertsUnavailable);
        let status = if r.is_dependency_failure() { 503 } else { 401 };
        assert_eq!(r.http_status().as_u16(), status);
    }
    assert_eq!(
        Rejection::BadSignature.to_http_body(),
        r#"{"error":"invalid_signature","reason":"bad_signature"}"#
    );
}

#[test]
fn verify_future_is_send_and_verifier_is_shareable() {
    fn assert_send<T: Send>(_: &T) {}
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync_clone::<Verifier>();
    let verifier = Verifier::new(VerifierConfig::new("http://127.0.0.1:9/certs"));
    let headers = HeaderMap::new();
    let fut = verifier.verify(&headers, b"");
    assert_send(&fut);
}

#[test]
fn config_from_env_lookup() {
    let lookup = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    let c =
        VerifierConfig::from_lookup(lookup(&[("PISMO_CERTS_URL", "https://example.test/certs")]))
            .unwrap();
    assert_eq!(c, VerifierConfig::new("https://example.test/certs"));
    assert_eq!(c.issuer, "api.pismo.io");
    assert_eq!(c.leeway, Duration::from_secs(60));
    assert_eq!(c.default_max_age, Duration::from_secs(3600));
    assert_eq!(c.min_refresh_interval, Duration::from_secs(30));
    assert_eq!(c.fetch_timeout, Duration::from_millis(500));

    let c = VerifierConfig::from_lookup(lookup(&[
        ("PISMO_CERTS_URL", "http://127.0.0.1:8765/certs"),
        ("PISMO_JWT_ISSUER", "sandbox.pismo.io"),
        ("PISMO_JWT_LEEWAY_SECS", "5"),
        ("PISMO_CERTS_MAX_AGE_SECS", "120"),
        ("PISMO_CERTS_MIN_REFRESH_SECS", "10"),
        ("PISMO_CERTS_FETCH_TIMEOUT_MS", "250"),
    ]))
    .unwrap();
    assert_eq!(c.issuer, "sandbox.pismo.io");
    assert_eq!(c.leeway, Duration::from_secs(5));
    assert_eq!(c.default_max_age, Duration::from_secs(120));
    assert_eq!(c.min_refresh_interval, Duration::from_secs(10));
    assert_eq!(c.fetch_timeout, Duration::from_millis(250));

    // Issue 13 settings: defaults, values, and 0 disabling the token age limit.
    let c =
        VerifierConfig::from_lookup(lookup(&[("PISMO_CERTS_URL", "https://example.test/certs")]))
            .unwrap();
    assert_eq!(c.kid_refresh_floor, Duration::from_secs(1));
    assert_eq!(c.max_stale, Duration::from_secs(6 * 3600));
    assert_eq!(c.max_token_age, Some(Duration::from_secs(864_000)));
    let c = VerifierConfig::from_lookup(lookup(&[
        ("PISMO_CERTS_URL", "https://example.test/certs"),
        ("PISMO_CERTS_KID_REFRESH_FLOOR_MS", "250"),
        ("PISMO_CERTS_MAX_STALE_SECS", "0"),
        ("PISMO_JWT_MAX_AGE_SECS", "600"),
    ]))
    .unwrap();
    assert_eq!(c.kid_refresh_floor, Duration::from_millis(250));
    assert_eq!(c.max_stale, Duration::ZERO);
    assert_eq!(c.max_token_age, Some(Duration::from_secs(600)));
    let c = VerifierConfig::from_lookup(lookup(&[
        ("PISMO_CERTS_URL", "https://example.test/certs"),
        ("PISMO_JWT_MAX_AGE_SECS", "0"),
    ]))
    .unwrap();
    assert_eq!(c.max_token_age, None);

    let err = VerifierConfig::from_lookup(lookup(&[])).unwrap_err();
    assert!(matches!(
        err,
        SettingError::Missing {
            var: "PISMO_CERTS_URL",
            ..
        }
    ));
    assert!(err.to_string().contains("PISMO_CERTS_URL is required"));
    let err = VerifierConfig::from_lookup(lookup(&[("PISMO_CERTS_URL", "  ")])).unwrap_err();
    assert!(matches!(err, SettingError::Missing { .. }));
    for (pairs, var) in [
        (
            &[("PISMO_CERTS_URL", "ftp://x/certs")][..],
            "PISMO_CERTS_URL",
        ),
        (&[("PISMO_CERTS_URL", "not a url")][..], "PISMO_CERTS_URL"),
        (
            &[
                ("PISMO_CERTS_URL", "https://x/c"),
                ("PISMO_JWT_MAX_AGE_SECS", "-1"),
            ][..],
            "PISMO_JWT_MAX_AGE_SECS",
        ),
        (
            &[
                ("PISMO_CERTS_URL", "https://x/c"),
                ("PISMO_CERTS_MAX_STALE_SECS", "x"),
            ][..],
            "PISMO_CERTS_MAX_STALE_SECS",
        ),
        (
            &[
                ("PISMO_CERTS_URL", "https://x/c"),
                ("PISMO_CERTS_KID_REFRESH_FLOOR_MS", "10"),
            ][..],
            "PISMO_CERTS_KID_REFRESH_FLOOR_MS",
        ),
        (
            &[
                ("PISMO_CERTS_URL", "https://x/c"),
                ("PISMO_JWT_LEEWAY_SECS", "abc"),
            ][..],
            "PISMO_JWT_LEEWAY_SECS",
        ),
        (
            &[
                ("PISMO_CERTS_URL", "https://x/c"),
                ("PISMO_JWT_LEEWAY_SECS", "-1"),
            ][..],
            "PISMO_JWT_LEEWAY_SECS",
        ),
        (
            &[
                ("PISMO_CERTS_URL", "https://x/c"),
                ("PISMO_CERTS_MAX_AGE_SECS", "0"),
            ][..],
            "PISMO_CERTS_MAX_AGE_SECS",
        ),
        (
            &[
                ("PISMO_CERTS_URL", "https://x/c"),
                ("PISMO_CERTS_MIN_REFRESH_SECS", "1.5"),
            ][..],
            "PISMO_CERTS_MIN_REFRESH_SECS",
        ),
        (
            &[
                ("PISMO_CERTS_URL", "https://x/c"),
                ("PISMO_CERTS_FETCH_TIMEOUT_MS", "2000"),
            ][..],
            "PISMO_CERTS_FETCH_TIMEOUT_MS",
        ),
    ] {
        let pairs: &'static [(&'static str, &'static str)] = pairs;
        match VerifierConfig::from_lookup(lookup(pairs)) {
            Err(SettingError::Invalid { var: v, .. }) => assert_eq!(v, var),
            other => panic!("{pairs:?}: expected Invalid({var}), got {other:?}"),
        }
    }
    let err = VerifierConfig::from_lookup(lookup(&[
        ("PISMO_CERTS_URL", "https://x/c"),
        ("PISMO_JWT_LEEWAY_SECS", "abc"),
    ]))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "PISMO_JWT_LEEWAY_SECS=\"abc\" is invalid: expected a whole number of seconds between 0 and 600"
    );
}

#[test]
fn certs_url_must_be_https_unless_the_host_is_loopback() {
    let config = |url: &str| {
        let url = url.to_owned();
        VerifierConfig::from_lookup(move |name| (name == "PISMO_CERTS_URL").then(|| url.clone()))
    };
    for ok in [
        "https://api.pismo.io/certs",
        "https://127.0.0.1/certs",
        "http://127.0.0.1:8765/certs",
        "http://127.1.2.3/certs",
        "http://localhost:8765/certs",
        "http://LOCALHOST./certs",
        "http://certs.localhost/certs",
        "http://[::1]:8765/certs",
    ] {
        assert!(config(ok).is_ok(), "{ok}: {:?}", config(ok));
    }
    for refused in [
        "http://api.pismo.io/certs",
        "http://10.0.0.1/certs",
        "http://[::2]/certs",
        "http://localhost.example.com/certs",
        "http://127.0.0.1.nip.io/certs",
        "ftp://127.0.0.1/certs",
    ] {
        match config(refused) {
            Err(SettingError::Invalid { var, reason, .. }) => {
                assert_eq!(var, "PISMO_CERTS_URL");
                assert!(reason.contains("https"), "{refused}: {reason}");
            }
            other => panic!("{refused}: expected Invalid, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Certificate cache
// ---------------------------------------------------------------------------------------------

struct CacheFx {
    server: CertServer,
    clock: Arc<ManualClock>,
    verifier: Verifier,
}

async fn cache_fx(max_age: Option<u64>, tweak: impl FnOnce(&mut VerifierConfig)) -> CacheFx {
    let server = CertServer::serve(&[&keys().signer], max_age).await.unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let mut config = VerifierConfig::new(server.url());
    tweak(&mut config);
    let verifier = Verifier::with_clock(config, Arc::clone(&clock) as _);
    CacheFx {
        server,
        clock,
        verifier,
    }
}

/// A valid request for the time of `clock`.
fn valid_request(clock: &ManualClock) -> Req {
    let now = clock.now_secs();
    Req::sign(
        &keys()
            .signer
            .sign(BODY, &SignOptions::new().iat(now).exp(now + 3 * 3600))
            .unwrap(),
    )
}

/// A correctly signed request whose kid the server does not know.
fn unknown_kid_request(clock: &ManualClock, i: usize) -> Req {
    let now = clock.now_secs();
    let header = json!({"alg": "RS256", "kid": format!("forged-{i}")});
    let claims = DevSigner::claims(BODY, &SignOptions::new().iat(now).exp(now + 300));
    Req::sign(&keys().signer.sign_with_header(&header, &claims).unwrap())
}

async fn code(verifier: &Verifier, req: &Req) -> Option<&'static str> {
    verifier
        .verify(&req.headers, &req.body)
        .await
        .err()
        .map(|r| r.code())
}

#[tokio::test]
async fn construction_fetches_nothing_and_first_request_fetches_once() {
    let fx = cache_fx(Some(300), |_| {}).await;
    assert_eq!(fx.server.hits(), 0);
    for _ in 0..5 {
        assert_eq!(code(&fx.verifier, &valid_request(&fx.clock)).await, None);
    }
    assert_eq!(fx.server.hits(), 1);
}

#[tokio::test]
async fn warm_up_fetches_ahead_of_the_first_request() {
    let fx = cache_fx(Some(300), |_| {}).await;
    assert!(fx.verifier.warm_up().await);
    assert_eq!(fx.server.hits(), 1);
    assert!(fx.verifier.warm_up().await);
    assert_eq!(code(&fx.verifier, &valid_request(&fx.clock)).await, None);
    assert_eq!(fx.server.hits(), 1);

    let down = cache_fx(Some(300), |_| {}).await;
    down.server.set_response(CannedResponse::new(500, ""));
    assert!(!down.verifier.warm_up().await);
    assert_eq!(down.server.hits(), 1);
}

#[tokio::test]
async fn unknown_kid_gives_exactly_one_refetch() {
    let fx = cache_fx(Some(300), |_| {}).await;
    assert_eq!(code(&fx.verifier, &valid_request(&fx.clock)).await, None);
    assert_eq!(fx.server.hits(), 1);
    // Past the refresh interval, an unknown kid refetches once…
    fx.clock.advance(Duration::from_secs(31));
    assert_eq!(
        code(&fx.verifier, &unknown_kid_request(&fx.clock, 0)).await,
        Some("unknown_kid")
    );
    assert_eq!(fx.server.hits(), 2);
    // …and further unknown kids inside the interval do not.
    for i in 1..20 {
        assert_eq!(
            code(&fx.verifier, &unknown_kid_request(&fx.clock, i)).await,
            Some("unknown_kid")
        );
    }
    assert_eq!(fx.server.hits(), 2);
    // Known kids still pass.
    assert_eq!(code(&fx.verifier, &valid_request(&fx.clock)).await, None);
    assert_eq!(fx.server.hits(), 2);
}

#[tokio::test]
async fn rotated_key_is_picked_up_by_the_unknown_kid_refresh() {
    let fx = cache_fx(Some(3600), |_| {}).await;
    assert_eq!(code(&fx.verifier, &valid_request(&fx.clock)).await, None);
    let other = &keys().other;
    fx.server.set_response(CannedResponse::certs(
        DevSigner::certs_json_for(&[other]),
        Some(3600),
    ));
    fx.clock.advance(Duration::from_secs(31));
    let now = fx.clock.now_secs();
    let req = Req::sign(
        &other
            .sign(BODY, &SignOptions::new().iat(now).exp(now + 60))
            .unwrap(),
    );
    assert_eq!(code(&fx.verifier, &req).await, None);
    assert_eq!(fx.server.hits(), 2);
    // The old key was rotated out by that successful refresh.
    assert_eq!(
        code(&fx.verifier, &valid_request(&fx.clock)).await,
        Some("unknown_kid")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_unknown_kids_fetch_at_most_once_per_interval() {
    let fx = Arc::new(cache_fx(Some(3600), |_| {}).await);
    assert_eq!(code(&fx.verifier, &valid_request(&fx.clock)).await, None);
    assert_eq!(fx.server.hits(), 1);
    for round in 0..3 {
        fx.clock.advance(Duration::from_secs(31));
        let before = fx.server.hits();
        for _ in 0..2 {
            let mut set = tokio::task::JoinSet::new();
            for i in 0..100 {
                let fx = Arc::clone(&fx);
                set.spawn(
                    async move { code(&fx.verifier, &unknown_kid_request(&fx.clock, i)).await },
                );
            }
            while let Some(result) = set.join_next().await {
                assert_eq!(result.unwrap(), Some("unknown_kid"));
            }
        }
        assert_eq!(fx.server.hits(), before + 1, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cold_requests_share_one_fetch() {
    // No rate limit: only the single-flight keeps this at one fetch.
    let fx = Arc::new(cache_fx(Some(3600), |c| c.min_refresh_interval = Duration::ZERO).await);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let fx = Arc::clone(&fx);
        set.spawn(async move { code(&fx.verifier, &valid_request(&fx.clock)).await });
    }
    while let Some(result) = set.join_next().await {
        assert_eq!(result.unwrap(), None);
    }
    assert_eq!(fx.server.hits(), 1);
}

#[tokio::test]
async fn max_age_is_honoured() {
    let fx = cache_fx(Some(120), |_| {}).await;
    assert_eq!(code(&fx.verifier, &valid_request(&fx.clock)).await, None);
    fx.clock.advance(Duration::from_secs(119));
    assert_eq!(code(&fx.verifier, &valid_request(&fx.clock)).await, None);
    assert_eq!(fx.server.hits(), 1);
    fx.clock.advance(Duration::from_secs(2));
    assert_eq!(code(&fx.verifier, &valid_request(&fx.clock)).await, None);
    assert_eq!(fx.server.hits(), 2);
    assert_eq!(code(&fx.verifier, &valid_request(&fx.clock)).await, None);
    assert_eq!(fx.server.hits(), 2);
}

#[tokio::test]
async fn default_max_age_is_one_hour_without_cache_control() {
    let fx = cache_fx(None, |_| {}).await;
    assert_eq!(code(&fx.verifier, &valid_request(&fx.clock)).await, None);
    fx.clock.advance(Duration::from_secs(3599));
    assert_eq!(code(&fx.verifier, &valid_request(&fx.clock)).await, None);
    assert_eq!(fx.server.hits(), 1);
    fx.clock.advance(Duration::from_secs(2));
    assert_eq!(code(&fx.verifier, &valid_request(&fx.clock)).await, None);
    assert_eq!(fx.server.hits(), 2);
}

async fn failing_endpoint_keeps_known_keys(failure: CannedResponse) {
    let fx = cache_fx(Some(60), |_| {}).await;
    assert_eq!(code(&fx.verifier, &valid_request(&fx.clock)).await, None);
    fx.server.set_response(failure);
    // Stale: the refresh fails, the known key keeps working.
    fx.clock.advance(Duration::from_secs(61));
    assert_eq!(code(&fx.verifier, &valid_request(&fx.clock)).await, None);
    assert_eq!(fx.server.hits(), 2);
    // Inside the interval, no further fetch; known keys still pass.
    for _ in 0..10 {
        assert_eq!(code(&fx.verifier, &valid_request(&fx.clock)).await, None);
    }
    assert_eq!(fx.server.hits(), 2);
    // An unknown kid cannot be judged while the endpoint is failing.
    assert_eq!(
        code(&fx.verifier, &unknown_kid_request(&fx.clock, 1)).await,
        Some("certs_unavailable")
    );
    // Next interval: one more attempt, still serving.
    fx.clock.advance(Duration::from_secs(31));
    assert_eq!(code(&fx.verifier, &valid_request(&fx.clock)).await, None);
    assert_eq!(fx.server.hits(), 3);
    // Recovery.
    fx.server
        .set_response(CannedResponse::certs(keys().signer.certs_json(), Some(60)));
    fx.clock.advance(Duration::from_secs(31));
    assert_eq!(code(&fx.verifier, &valid_request(&fx.clock)).await, None);
    assert_eq!(fx.server.hits(), 4);
    fx.clock.advance(Duration::from_secs(31));
    assert_eq!(
        code(&fx.verifier, &unknown_kid_request(&fx.clock, 2)).await,
        Some("unknown_kid")
    );
}

#[tokio::test]
async fn http_500_keeps_known_keys() {
    failing_endpoint_keeps_known_keys(CannedResponse::new(500, "oops")).await;
}

#[tokio::test]
async fn garbage_body_keeps_known_keys() {
    failing_endpoint_keeps_known_keys(CannedResponse::new(200, "<html>not json</html>")).await;
}

#[tokio::test]
async fn map_without_usable_certificate_keeps_known_keys() {
    failing_endpoint_keeps_known_keys(CannedResponse::new(200, r#"{"k1":"not a pem"}"#)).await;
}

#[tokio::test]
async fn redirect_is_not_followed() {
    let mut redirect = CannedResponse::new(302, "");
    redirect
        .headers
        .push(("Location".into(), "http://127.0.0.1:9/elsewhere".into()));
    failing_endpoint_keeps_known_keys(redirect).await;
}

#[tokio::test]
async fn endpoint_down_with_no_keys_gives_certs_unavailable() {
    let fx = cache_fx(Some(60), |_| {}).await;
    fx.server.set_response(CannedResponse::new(503, "down"));
    let rejection = fx
        .verifier
        .verify(&valid_request(&fx.clock).headers, BODY)
        .await
        .unwrap_err();
    assert_eq!(rejection, Rejection::CertsUnavailable);
    assert!(rejection.is_dependency_failure());
    // Rate-limited: the next requests fail fast without hitting the endpoint.
    for _ in 0..10 {
        assert_eq!(
            code(&fx.verifier, &valid_request(&fx.clock)).await,
            Some("certs_unavailable")
        );
    }
    assert_eq!(fx.server.hits(), 1);
    // Checks made before any key lookup still give their own codes.
    assert_eq!(code(&fx.verifier, &Req::new()).await, Some("missing_token"));
}

#[tokio::test]
async fn closed_port_gives_certs_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/certs", listener.local_addr().unwrap());
    drop(listener);
    let clock = Arc::new(ManualClock::starting_now());
    let verifier = Verifier::with_clock(VerifierConfig::new(url), Arc::clone(&clock) as _);
    assert_eq!(
        code(&verifier, &valid_request(&clock)).await,
        Some("certs_unavailable")
    );
}

#[tokio::test]
async fn silent_endpoint_times_out_into_certs_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/certs", listener.local_addr().unwrap());
    // Accepts connections and never answers.
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let clock = Arc::new(ManualClock::starting_now());
    let mut config = VerifierConfig::new(url);
    config.fetch_timeout = Duration::from_millis(100);
    let verifier = Verifier::with_clock(config, Arc::clone(&clock) as _);
    assert_eq!(
        code(&verifier, &valid_request(&clock)).await,
        Some("certs_unavailable")
    );
    hold.abort();
}

#[tokio::test]
async fn stale_keys_are_served_for_at_most_max_stale_while_refreshes_fail() {
    let fx = cache_fx(Some(60), |c| c.max_stale = Duration::from_secs(300)).await;
    assert_eq!(code(&fx.verifier, &valid_request(&fx.clock)).await, None);
    fx.server.set_response(CannedResponse::new(500, "down"));
    // Expired map, inside the stale limit: the refresh fails and the known key is served.
    fx.clock.advance(Duration::from_secs(61));
    assert_eq!(code(&fx.verifier, &valid_request(&fx.clock)).await, None);
    // t = 330 s, 30 s before expiry + max_stale: another failed refresh, still served.
    fx.clock.advance(Duration::from_secs(269));
    assert_eq!(code(&fx.verifier, &valid_request(&fx.clock)).await, None);
    let hits = fx.server.hits();
    // t = 361 s, past expiry + max_stale: the key is no longer trusted; a dependency failure,
    // so the webhook answers its fallback (never a pass).
    fx.clock.advance(Duration::from_secs(31));
    let rejection = fx
        .verifier
        .verify(&valid_request(&fx.clock).headers, BODY)
        .await
        .unwrap_err();
    assert_eq!(rejection, Rejection::CertsUnavailable);
    assert!(rejection.is_dependency_failure());
    assert_eq!(fx.server.hits(), hits + 1, "it tried to refresh first");
    // Rate-limited afterwards, still unavailable.
    assert_eq!(
        code(&fx.verifier, &valid_request(&fx.clock)).await,
        Some("certs_unavailable")
    );
    assert_eq!(fx.server.hits(), hits + 1);
    // Recovery: the next allowed refresh succeeds and the key is served again.
    fx.server
        .set_response(CannedResponse::certs(keys().signer.certs_json(), Some(60)));
    fx.clock.advance(Duration::from_secs(31));
    assert_eq!(code(&fx.verifier, &valid_request(&fx.clock)).await, None);

    // max_stale = 0: nothing is served past the map's expiry once a refresh fails.
    let strict = cache_fx(Some(60), |c| c.max_stale = Duration::ZERO).await;
    assert_eq!(
        code(&strict.verifier, &valid_request(&strict.clock)).await,
        None
    );
    strict.server.set_response(CannedResponse::new(500, "down"));
    strict.clock.advance(Duration::from_secs(61));
    assert_eq!(
        code(&strict.verifier, &valid_request(&strict.clock)).await,
        Some("certs_unavailable")
    );
}

#[tokio::test]
async fn forged_kids_cannot_starve_a_real_rotated_kid() {
    let fx = cache_fx(Some(3600), |_| {}).await;
    assert_eq!(code(&fx.verifier, &valid_request(&fx.clock)).await, None);
    assert_eq!(fx.server.hits(), 1);
    // An attacker sends a new forged kid every second, each allowed one fetch (the floor).
    for i in 0..5 {
        fx.clock.advance(Duration::from_secs(1));
        assert_eq!(
            code(&fx.verifier, &unknown_kid_request(&fx.clock, i)).await,
            Some("unknown_kid")
        );
        assert_eq!(fx.server.hits(), 2 + i);
        // Repeating a kid that was just found absent costs nothing.
        assert_eq!(
            code(&fx.verifier, &unknown_kid_request(&fx.clock, i)).await,
            Some("unknown_kid")
        );
        assert_eq!(fx.server.hits(), 2 + i);
    }
    // Pismo rotates: the new certificate is published right after the last forged fetch.
    let other = &keys().other;
    fx.server.set_response(CannedResponse::certs(
        DevSigner::certs_json_for(&[&keys().signer, other]),
        Some(3600),
    ));
    let real = |clock: &ManualClock| {
        let now = clock.now_secs();
        Req::sign(
            &other
                .sign(BODY, &SignOptions::new().iat(now).exp(now + 60))
                .unwrap(),
        )
    };
    // Within the same second the floor still applies…
    assert_eq!(
        code(&fx.verifier, &real(&fx.clock)).await,
        Some("unknown_kid")
    );
    // …but the real kid is picked up one floor later, not a whole refresh interval (30 s).
    fx.clock.advance(Duration::from_secs(1));
    assert_eq!(code(&fx.verifier, &real(&fx.clock)).await, None);
    assert_eq!(code(&fx.verifier, &valid_request(&fx.clock)).await, None);
    // The same forged kid again, inside the refresh interval: still no fetch.
    let hits = fx.server.hits();
    fx.clock.advance(Duration::from_secs(5));
    assert_eq!(
        code(&fx.verifier, &unknown_kid_request(&fx.clock, 4)).await,
        Some("unknown_kid")
    );
    assert_eq!(fx.server.hits(), hits);
}

/// An X.509 certificate for `kid` holding the Wycheproof JWK's public key (Pismo serves
/// certificates, not JWKs; the certificate's own signature is not what is under test).
fn certificate_for_jwk(jwk: &Value) -> String {
    use openssl::bn::BigNum;
    use openssl::rsa::Rsa;
    use openssl::x509::{X509Builder, X509NameBuilder};
    let component = |name: &str| {
        BigNum::from_slice(&URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap()).unwrap()
    };
    let public =
        PKey::from_rsa(Rsa::from_public_components(component("n"), component("e")).unwrap())
            .unwrap();
    let issuer = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "wycheproof").unwrap();
    let name = name.build();
    let mut cert = X509Builder::new().unwrap();
    cert.set_version(2).unwrap();
    cert.set_subject_name(&name).unwrap();
    cert.set_issuer_name(&name).unwrap();
    cert.set_pubkey(&public).unwrap();
    let now = now_secs();
    cert.set_not_before(&openssl::asn1::Asn1Time::from_unix(now - 86_400).unwrap())
        .unwrap();
    cert.set_not_after(&openssl::asn1::Asn1Time::from_unix(now + 86_400).unwrap())
        .unwrap();
    cert.sign(&issuer, MessageDigest::sha256()).unwrap();
    String::from_utf8(cert.build().to_pem().unwrap()).unwrap()
}

/// Wycheproof's JWS vectors, RS256 groups (232 tokens: modified headers, payloads and
/// signatures, algorithm swaps to PS*, `none` and `NONE`, RFC 7520 figure 13), through the
/// whole `Verifier` and its josekit RS256 step. A `valid` token's payload is not a Pismo claim
/// set, so it must get past the signature and be refused at the claims (never `bad_signature`),
/// and the same token with one signature bit flipped must be `bad_signature` (the one valid
/// token over an empty payload is refused by the shape check, as no Pismo token has one). Every
/// `invalid`
/// token is refused, with any reason but a dependency failure. The groups about JWK `use` and
/// `key_ops` do not apply: the keys come from X.509 certificates.
#[tokio::test]
async fn wycheproof_jws_rs256_groups() {
    // The reasons given after the signature step (a payload that is not JSON, or claims that
    // are not Pismo's).
    const SIGNATURE_PASSED: &[&str] = &[
        "malformed_token",
        "missing_issuer",
        "wrong_issuer",
        "missing_exp",
        "expired",
    ];
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/wycheproof/json_web_signature_test.json"
    );
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let (mut valid, mut invalid, mut failures) = (0, 0, Vec::new());
    for group in file["testGroups"].as_array().unwrap() {
        let public = &group["public"];
        if public["alg"] != "RS256" || group["type"] != "JsonWebSignature" {
            continue;
        }
        let kid = public["kid"].as_str().unwrap();
        let certs = json!({ kid: certificate_for_jwk(public) }).to_string();
        let server = CertServer::start(
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            CannedResponse::certs(certs, Some(300)),
        )
        .await
        .unwrap();
        let verifier = verifier_for(&server, Arc::clone(&clock)).await;
        for test in group["tests"].as_array().unwrap() {
            let Some(token) = test["jws"].as_str() else {
                continue;
            };
            let id = format!("tcId {} ({})", test["tcId"], test["comment"]);
            let got = code(&verifier, &Req::sign(token)).await;
            if test["result"] == "valid" && token.split('.').nth(1) == Some("") {
                // A valid JWS over an empty payload: a Pismo token always carries claims, so
                // the shape check refuses it before any key is used.
                valid += 1;
                if got != Some("malformed_token") {
                    failures.push(format!("{id}: empty payload got {got:?}"));
                }
            } else if test["result"] == "valid" {
                valid += 1;
                if !got.is_some_and(|c| SIGNATURE_PASSED.contains(&c)) {
                    failures.push(format!("{id}: valid token got {got:?}"));
                }
                let (input, signature) = token.rsplit_once('.').unwrap();
                let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
                bytes[0] ^= 0x01;
                let tampered = format!("{input}.{}", b64(&bytes));
                let got = code(&verifier, &Req::sign(&tampered)).await;
                if got != Some("bad_signature") {
                    failures.push(format!("{id}: tampered valid token got {got:?}"));
                }
            } else {
                invalid += 1;
                if got.is_none() || got == Some("certs_unavailable") {
                    failures.push(format!("{id}: invalid token got {got:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!((valid, invalid), (8, 225));
}
