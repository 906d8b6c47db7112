//! `issuer-kit signer`: the local equivalent of `stripe trigger` for Pismo webhooks.
//!
//! ```text
//! issuer-kit signer keygen                    # .dev-keys/dev-key.pem + dev-cert.pem
//! issuer-kit signer serve-certs --port 8765   # PISMO_CERTS_URL=http://127.0.0.1:8765/certs
//! issuer-kit signer sign --body body.json     # X-Pismo-Sign: eyJ…
//! issuer-kit signer send --url http://127.0.0.1:9000/… --body body.json
//! issuer-kit signer sign-event --in events/x.json
//! ```
//!
//! With `--output json` each prints one JSON document (`serve-certs`: one JSON line, then it
//! serves until stopped).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};
use shared::signature::signer::{
    CERT_FILE, CannedResponse, CertServer, DEFAULT_KEY_DIR, DevSigner, KEY_FILE, SignOptions,
};

use super::{Output, json_document, json_line};

#[derive(clap::Args)]
#[command(
    about = "Local Pismo request signer: development key, certificate server, signing and sending"
)]
pub struct Args {
    /// Folder of the development key and certificate (gitignored).
    #[arg(long, global = true, default_value = DEFAULT_KEY_DIR)]
    dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the RSA-2048 development key and its self-signed certificate (kept if present).
    Keygen {
        /// Replace an existing key.
        #[arg(long)]
        force: bool,
    },
    /// Serve the kid → PEM certificate map on 127.0.0.1 (for PISMO_CERTS_URL).
    ServeCerts {
        #[arg(long, default_value_t = 8765)]
        port: u16,
        /// Cache-Control max-age sent with the map, in seconds.
        #[arg(long, default_value_t = 300)]
        max_age: u64,
    },
    /// Sign a body and print the header line.
    Sign {
        #[command(flatten)]
        signed: SignArgs,
        /// Print the token alone.
        #[arg(long)]
        token_only: bool,
    },
    /// Sign a body and POST it; print the status and the response body.
    Send {
        #[arg(long)]
        url: String,
        #[command(flatten)]
        signed: SignArgs,
    },
    /// Re-sign an API Gateway proxy event file: rewrite its x-pismo-sign header for its body.
    SignEvent {
        /// The event JSON file.
        #[arg(long = "in")]
        input: PathBuf,
        /// Where to write (default: in place).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        claims: ClaimArgs,
    },
}

/// What `sign` and `send` sign: a body, its claims, and the header that carries the token.
#[derive(clap::Args)]
struct SignArgs {
    /// The body, byte for byte as it will be sent (`-` for stdin).
    #[arg(long)]
    body: PathBuf,
    #[command(flatten)]
    claims: ClaimArgs,
    #[arg(long, value_enum, default_value_t = HeaderChoice::XPismoSign)]
    header_name: HeaderChoice,
}

impl SignArgs {
    /// The body and a token for it (a 300-second lifetime unless `--exp-secs`).
    fn sign(&self, dir: &Path) -> Result<(Vec<u8>, String)> {
        let body = read_body(&self.body)?;
        let token = signer(dir)?.sign(&body, &self.claims.options(300))?;
        Ok((body, token))
    }
}

#[derive(clap::Args)]
struct ClaimArgs {
    /// `account-id` claim (a number unless it has non-digits); also sent as x-account-id.
    #[arg(long)]
    account_id: Option<String>,
    /// Token lifetime in seconds (default 300; 10 days, the default PISMO_JWT_MAX_AGE_SECS, for sign-event).
    #[arg(long)]
    exp_secs: Option<i64>,
    /// `iss` claim (default api.pismo.io).
    #[arg(long)]
    iss: Option<String>,
    /// `sub` claim (default pismo-signer).
    #[arg(long)]
    sub: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum HeaderChoice {
    #[value(name = "X-Pismo-Sign", alias = "x-pismo-sign")]
    XPismoSign,
    #[value(name = "Authorization", alias = "authorization")]
    Authorization,
}

impl HeaderChoice {
    fn name(self) -> &'static str {
        match self {
            Self::XPismoSign => "X-Pismo-Sign",
            Self::Authorization => "Authorization",
        }
    }

    fn value(self, token: &str) -> String {
        match self {
            Self::XPismoSign => token.to_owned(),
            Self::Authorization => format!("Bearer {token}"),
        }
    }
}

impl ClaimArgs {
    fn options(&self, default_exp_secs: i64) -> SignOptions {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let mut options = SignOptions::new()
            .iat(now)
            .exp(now.saturating_add(self.exp_secs.unwrap_or(default_exp_secs)));
        options.iss.clone_from(&self.iss);
        options.sub.clone_from(&self.sub);
        options.account_id = self.account_id.as_deref().map(account_claim);
        options
    }
}

fn account_claim(account_id: &str) -> Value {
    match account_id.parse::<i64>() {
        Ok(n) => Value::from(n),
        Err(_) => Value::from(account_id),
    }
}

fn read_body(path: &Path) -> Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut body).context("reading stdin")?;
        Ok(body)
    } else {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    }
}

fn signer(dir: &Path) -> Result<DevSigner> {
    DevSigner::load_or_generate(dir)
        .with_context(|| format!("loading the development key in {}", dir.display()))
}

pub async fn run(cli: Args, output: Output) -> Result<()> {
    match cli.command {
        Command::Keygen { force } => {
            if force {
                for file in [KEY_FILE, CERT_FILE] {
                    match std::fs::remove_file(cli.dir.join(file)) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                            return Err(e).context(format!("removing {file}"));
                        }
                        _ => {}
                    }
                }
            }
            let signer = signer(&cli.dir)?;
            let (key, cert) = (cli.dir.join(KEY_FILE), cli.dir.join(CERT_FILE));
            if output.is_json() {
                json_document(&json!({
                    "kid": signer.kid(),
                    "key": key.display().to_string(),
                    "cert": cert.display().to_string(),
                }))?;
            } else {
                println!("kid:  {}", signer.kid());
                println!("key:  {}", key.display());
                println!("cert: {}", cert.display());
            }
        }
        Command::ServeCerts { port, max_age } => {
            let signer = signer(&cli.dir)?;
            let server = CertServer::start(
                SocketAddr::from(([127, 0, 0, 1], port)),
                CannedResponse::certs(signer.certs_json(), Some(max_age)),
            )
            .await
            .with_context(|| format!("listening on 127.0.0.1:{port}"))?;
            if output.is_json() {
                json_line(&json!({"kid": signer.kid(), "url": server.url()}))?;
            } else {
                println!("serving kid {} at {}", signer.kid(), server.url());
                println!("export PISMO_CERTS_URL={}", server.url());
            }
            server.run_forever().await;
        }
        Command::Sign { signed, token_only } => {
            let (_, token) = signed.sign(&cli.dir)?;
            if output.is_json() {
                json_document(&json!({
                    "header": signed.header_name.name(),
                    "value": signed.header_name.value(&token),
                    "token": token,
                    "account_id": signed.claims.account_id,
                }))?;
            } else if token_only {
                println!("{token}");
            } else {
                println!(
                    "{}: {}",
                    signed.header_name.name(),
                    signed.header_name.value(&token)
                );
                if let Some(account_id) = &signed.claims.account_id {
                    println!("x-account-id: {account_id}");
                }
            }
        }
        Command::Send { url, signed } => {
            let (body, token) = signed.sign(&cli.dir)?;
            let client = shared::tls::reqwest_builder()?
                .timeout(std::time::Duration::from_secs(30))
                .build()?;
            let mut request = client
                .post(&url)
                .header("content-type", "application/json")
                .header(signed.header_name.name(), signed.header_name.value(&token));
            if let Some(account_id) = &signed.claims.account_id {
                request = request.header("x-account-id", account_id);
            }
            let response = request
                .body(body)
                .send()
                .await
                .with_context(|| format!("POST {url}"))?;
            let status = response.status();
            let text = response.text().await.context("reading the response")?;
            if output.is_json() {
                // The answer's body as JSON when it is, else as a string.
                let body = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
                json_document(&json!({"status": status.as_u16(), "body": body}))?;
            } else {
                println!("HTTP {status}");
                println!("{text}");
            }
            // A refusal (401, a 4xx naming the problem) or a 5xx is a failure of the command,
            // so scripts can tell (exit 1, as documented).
            if !status.is_success() {
                bail!("{url} answered HTTP {status}");
            }
        }
        Command::SignEvent { input, out, claims } => {
            let text = std::fs::read_to_string(&input)
                .with_context(|| format!("reading {}", input.display()))?;
            let signed = sign_event(&signer(&cli.dir)?, &text, &claims)
                .with_context(|| format!("signing {}", input.display()))?;
            let out = out.unwrap_or(input);
            std::fs::write(&out, signed).with_context(|| format!("writing {}", out.display()))?;
            if output.is_json() {
                json_document(&json!({"signed": out.display().to_string()}))?;
            } else {
                println!("signed {}", out.display());
            }
        }
    }
    Ok(())
}

/// The longest lifetime the verifier accepts by default (`PISMO_JWT_MAX_AGE_SECS`).
const TEN_DAYS: i64 = 10 * 86_400;

/// Returns the event text with every `x-pismo-sign` header value replaced by a token for the
/// event's body (decoded when `isBase64Encoded`). The rest of the file is kept byte for byte.
fn sign_event(signer: &DevSigner, text: &str, args: &ClaimArgs) -> Result<String> {
    let event: Value = serde_json::from_str(text).context("not JSON")?;
    let body = match event.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(body)) => {
            if event.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
                STANDARD.decode(body).context("body is not base64")?
            } else {
                body.as_bytes().to_vec()
            }
        }
        Some(_) => bail!("`body` is not a string"),
    };
    let mut options = args.options(TEN_DAYS);
    if options.account_id.is_none() {
        options.account_id = header(&event, "x-account-id").map(account_claim);
    }
    let token = signer.sign(&body, &options)?;
    let (replaced, count) = replace_header_values(text, "x-pismo-sign", &token);
    if count > 0 {
        return Ok(replaced);
    }
    // No header yet: add it (the file is re-serialized).
    let mut event = event;
    let headers = event
        .as_object_mut()
        .context("the event is not a JSON object")?
        .entry("headers")
        .or_insert_with(|| Value::Object(Default::default()));
    headers
        .as_object_mut()
        .context("`headers` is not an object")?
        .insert("x-pismo-sign".into(), Value::String(token));
    Ok(serde_json::to_string_pretty(&event)? + "\n")
}

/// A header of the event, by case-insensitive name.
fn header<'a>(event: &'a Value, name: &str) -> Option<&'a str> {
    event
        .get("headers")?
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))?
        .1
        .as_str()
}

/// Replaces the string value (or the first string of an array value) of every key equal to
/// `name` (ASCII case-insensitive) in JSON `text`. Returns the new text and the count.
fn replace_header_values(text: &str, name: &str, value: &str) -> (String, usize) {
    let bytes = text.as_bytes();
    let key = format!("\"{name}\"");
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut count = 0;
    let mut i = 0;
    while i + key.len() <= bytes.len() {
        if !bytes[i..i + key.len()].eq_ignore_ascii_case(key.as_bytes()) {
            i += 1;
            continue;
        }
        let mut j = skip_ws(bytes, i + key.len());
        if bytes.get(j) != Some(&b':') {
            i += 1;
            continue;
        }
        j = skip_ws(bytes, j + 1);
        if bytes.get(j) == Some(&b'[') {
            j = skip_ws(bytes, j + 1);
        }
        if bytes.get(j) != Some(&b'"') {
            i += 1;
            continue;
        }
        let start = j + 1;
        let Some(end) = string_end(bytes, start) else {
            break;
        };
        out.push_str(&text[copied..start]);
        out.push_str(value);
        copied = end;
        count += 1;
        i = end;
    }
    out.push_str(&text[copied..]);
    (out, count)
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// Index of the closing quote of a JSON string whose content starts at `start`.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_single_and_multi_value_headers_in_place() {
        let text = r#"{
  "headers": {"X-Pismo-Sign": "old.token.here", "x-account-id": "1"},
  "multiValueHeaders": {"x-pismo-sign" : [ "old\"esc" ]},
  "body": "{\"x-pismo-sign\": 1}"
}"#;
        let (out, count) = replace_header_values(text, "x-pismo-sign", "NEW");
        assert_eq!(count, 2);
        assert!(out.contains(r#""X-Pismo-Sign": "NEW""#));
        assert!(out.contains(r#""x-pismo-sign" : [ "NEW" ]"#));
        assert!(out.contains(r#""body": "{\"x-pismo-sign\": 1}""#));
    }

    #[test]
    fn signs_base64_event_bodies_over_the_decoded_bytes() {
        let signer = DevSigner::generate_in_memory().unwrap();
        let body = br#"{"a": 1}"#;
        let event = serde_json::json!({
            "headers": {"x-pismo-sign": "x", "X-Account-Id": "42"},
            "isBase64Encoded": true,
            "body": STANDARD.encode(body),
        })
        .to_string();
        let args = ClaimArgs {
            account_id: None,
            exp_secs: None,
            iss: None,
            sub: None,
        };
        let signed: Value =
            serde_json::from_str(&sign_event(&signer, &event, &args).unwrap()).unwrap();
        let token = signed["headers"]["x-pismo-sign"].as_str().unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["body-hash"], DevSigner::body_hash(body).as_str());
        assert_eq!(claims["account-id"], 42);
    }
}
