//! A local Pismo signer: the equivalent of `stripe trigger`.
//!
//! It makes a development RSA-2048 key with a self-signed certificate, signs bodies the way
//! Pismo does (RS256 JWS whose claims carry `body-hash`, `iss`, `sub`, `account-id`, `exp`,
//! `iat`), and serves the kid → PEM certificate map on localhost ([`CertServer`]).
//! Used by the `pismo-signer` command and by tests.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use openssl::x509::{X509, X509Builder, X509NameBuilder};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::VerifierConfig;
use crate::clock::system_now_millis;

/// File name of the private key inside the key folder.
pub const KEY_FILE: &str = "dev-key.pem";
/// File name of the certificate inside the key folder.
pub const CERT_FILE: &str = "dev-cert.pem";
/// Default key folder (gitignored).
pub const DEFAULT_KEY_DIR: &str = ".dev-keys";
/// Validity of a generated development certificate.
const CERT_LIFETIME_SECS: i64 = 365 * 86_400;
/// Default lifetime of a signed token.
pub const DEFAULT_TOKEN_LIFETIME_SECS: i64 = 300;

/// Failure of the local signer.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// OpenSSL refused an operation.
    #[error("openssl: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
    /// A key file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A JSON value could not be serialized.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// Claims of a token to sign. `None` fields get Pismo-like defaults.
#[derive(Debug, Clone, Default)]
pub struct SignOptions {
    /// `iss` (default `api.pismo.io`).
    pub iss: Option<String>,
    /// `sub` (default `pismo-signer`).
    pub sub: Option<String>,
    /// `account-id`, e.g. `json!(98665386)` or `json!("98665386")`. Omitted when `None`.
    pub account_id: Option<Value>,
    /// `iat` in Unix seconds (default now).
    pub iat: Option<i64>,
    /// `exp` in Unix seconds (default `iat` + 300 s).
    pub exp: Option<i64>,
    /// Extra claims, set last (they override the above, `body-hash` included).
    pub extra: Map<String, Value>,
    /// Claims removed at the end (e.g. `"exp"` to forge a token without one).
    pub omit: Vec<String>,
}

impl SignOptions {
    /// All defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `account-id`.
    pub fn account_id(mut self, account_id: impl Into<Value>) -> Self {
        self.account_id = Some(account_id.into());
        self
    }

    /// Sets `exp`.
    pub fn exp(mut self, exp: i64) -> Self {
        self.exp = Some(exp);
        self
    }

    /// Sets `iat`.
    pub fn iat(mut self, iat: i64) -> Self {
        self.iat = Some(iat);
        self
    }

    /// Sets `iss`.
    pub fn iss(mut self, iss: impl Into<String>) -> Self {
        self.iss = Some(iss.into());
        self
    }

    /// Sets `sub`.
    #[allow(clippy::should_implement_trait, reason = "named after the claim")]
    pub fn sub(mut self, sub: impl Into<String>) -> Self {
        self.sub = Some(sub.into());
        self
    }

    /// Sets any claim.
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra.insert(name.into(), value.into());
        self
    }

    /// Removes a claim.
    pub fn without(mut self, name: impl Into<String>) -> Self {
        self.omit.push(name.into());
        self
    }
}

/// A development signing identity: an RSA key and a self-signed certificate.
pub struct DevSigner {
    key: PKey<Private>,
    cert: X509,
    cert_pem: String,
    kid: String,
}

impl std::fmt::Debug for DevSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> i64 {
    system_now_millis().div_euclid(1000)
}

impl DevSigner {
    /// A fresh RSA-2048 key with a certificate valid from a day ago for a year.
    pub fn generate_in_memory() -> Result<Self, SignerError> {
        let key = PKey::from_rsa(Rsa::generate(2048)?)?;
        let now = now_secs();
        Self::with_key(key, now - 86_400, now + CERT_LIFETIME_SECS)
    }

    /// Loads `dir/dev-key.pem` and `dir/dev-cert.pem`, generating what is missing. A certificate
    /// that expires within a day is replaced by a new one for the same key.
    pub fn load_or_generate(dir: &Path) -> Result<Self, SignerError> {
        let key_path = dir.join(KEY_FILE);
        let cert_path = dir.join(CERT_FILE);
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SignerError::Io { path, source }
        };
        let key = match std::fs::read(&key_path) {
            Ok(pem) => Some(PKey::private_key_from_pem(&pem)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&key_path)(e)),
        };
        let now = now_secs();
        if let Some(key) = &key {
            match std::fs::read(&cert_path) {
                Ok(pem) => {
                    let signer = Self::from_pem(&key.private_key_to_pem_pkcs8()?, &pem)?;
                    let fresh = Asn1Time::from_unix(now + 86_400)?;
                    let same_key = signer.cert.public_key()?.public_eq(key);
                    if same_key && signer.cert.not_after() > fresh {
                        return Ok(signer);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&cert_path)(e)),
            }
        }
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let new_key = key.is_none();
        let key = match key {
            Some(key) => key,
            None => PKey::from_rsa(Rsa::generate(2048)?)?,
        };
        let signer = Self::with_key(key, now - 86_400, now + CERT_LIFETIME_SECS)?;
        if new_key {
            write_private(&key_path, &signer.key.private_key_to_pem_pkcs8()?)
                .map_err(io_err(&key_path))?;
        }
        std::fs::write(&cert_path, signer.cert_pem.as_bytes()).map_err(io_err(&cert_path))?;
        Ok(signer)
    }

    /// A signer from a PEM private key and its PEM certificate.
    pub fn from_pem(key_pem: &[u8], cert_pem: &[u8]) -> Result<Self, SignerError> {
        let key = PKey::private_key_from_pem(key_pem)?;
        let cert = X509::from_pem(cert_pem)?;
        Self::from_parts(key, cert)
    }

    /// The same key with a new self-signed certificate (hence a new kid) valid between the
    /// given Unix seconds; e.g. an expired or not-yet-valid certificate for tests.
    pub fn with_validity(&self, not_before: i64, not_after: i64) -> Result<Self, SignerError> {
        Self::with_key(self.key.clone(), not_before, not_after)
    }

    fn with_key(key: PKey<Private>, not_before: i64, not_after: i64) -> Result<Self, SignerError> {
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::COMMONNAME, "pismo-signer development key")?;
        let name = name.build();
        let mut serial = BigNum::new()?;
        serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
        let mut builder = X509Builder::new()?;
        builder.set_version(2)?;
        let serial = serial.to_asn1_integer()?;
        builder.set_serial_number(&serial)?;
        builder.set_subject_name(&name)?;
        builder.set_issuer_name(&name)?;
        builder.set_pubkey(&key)?;
        let not_before = Asn1Time::from_unix(not_before)?;
        let not_after = Asn1Time::from_unix(not_after)?;
        builder.set_not_before(&not_before)?;
        builder.set_not_after(&not_after)?;
        builder.sign(&key, MessageDigest::sha256())?;
        Self::from_parts(key, builder.build())
    }

    fn from_parts(key: PKey<Private>, cert: X509) -> Result<Self, SignerError> {
        let cert_pem = String::from_utf8_lossy(&cert.to_pem()?).into_owned();
        let kid = cert
            .digest(MessageDigest::sha1())?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self {
            key,
            cert,
            cert_pem,
            kid,
        })
    }

    /// Key id: the hex SHA-1 fingerprint of the certificate, as Pismo's kids look.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The PEM certificate.
    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The PEM (SPKI) public key.
    pub fn public_key_pem(&self) -> Result<String, SignerError> {
        Ok(String::from_utf8_lossy(&self.key.public_key_to_pem()?).into_owned())
    }

    /// The PEM (PKCS#8) private key.
    pub fn private_key_pem(&self) -> Result<String, SignerError> {
        Ok(String::from_utf8_lossy(&self.key.private_key_to_pem_pkcs8()?).into_owned())
    }

    /// The private key, for tests that forge other algorithms with it.
    pub fn private_key(&self) -> &PKey<Private> {
        &self.key
    }

    /// `{"<kid>": "<PEM certificate>"}`, what `PISMO_CERTS_URL` serves.
    pub fn certs_json(&self) -> String {
        Self::certs_json_for(&[self])
    }

    /// The certificate map of several signers.
    pub fn certs_json_for(signers: &[&DevSigner]) -> String {
        let map: Map<String, Value> = signers
            .iter()
            .map(|s| (s.kid.clone(), Value::String(s.cert_pem.clone())))
            .collect();
        Value::Object(map).to_string()
    }

    /// Standard base64 (padded) of the SHA-256 of `body`: the `body-hash` claim.
    pub fn body_hash(body: &[u8]) -> String {
        STANDARD.encode(Sha256::digest(body))
    }

    /// The claims Pismo would send for `body`.
    pub fn claims(body: &[u8], options: &SignOptions) -> Value {
        let iat = options.iat.unwrap_or_else(now_secs);
        let mut claims = Map::new();
        claims.insert("body-hash".into(), Self::body_hash(body).into());
        claims.insert(
            "iss".into(),
            options
                .iss
                .clone()
                .unwrap_or_else(|| VerifierConfig::DEFAULT_ISSUER.to_owned())
                .into(),
        );
        claims.insert(
            "sub".into(),
            options
                .sub
                .clone()
                .unwrap_or_else(|| "pismo-signer".to_owned())
                .into(),
        );
        if let Some(account_id) = &options.account_id {
            claims.insert("account-id".into(), account_id.clone());
        }
        claims.insert("iat".into(), iat.into());
        claims.insert(
            "exp".into(),
            options
                .exp
                .unwrap_or(iat + DEFAULT_TOKEN_LIFETIME_SECS)
                .into(),
        );
        for (name, value) in &options.extra {
            claims.insert(name.clone(), value.clone());
        }
        for name in &options.omit {
            claims.remove(name);
        }
        Value::Object(claims)
    }

    /// A compact RS256 JWS over the claims for `body`.
    pub fn sign(&self, body: &[u8], options: &SignOptions) -> Result<String, SignerError> {
        self.sign_claims(&Self::claims(body, options))
    }

    /// A compact RS256 JWS with header `{"alg":"RS256","kid":…,"typ":"JWT"}` over `claims`.
    pub fn sign_claims(&self, claims: &Value) -> Result<String, SignerError> {
        let header = json!({"alg": "RS256", "kid": self.kid, "typ": "JWT"});
        self.sign_with_header(&header, claims)
    }

    /// An RS256 signature over any header and claims (to forge tokens in tests).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> Result<String, SignerError> {
        self.sign_raw(
            serde_json::to_string(header)?.as_bytes(),
            serde_json::to_string(claims)?.as_bytes(),
        )
    }

    /// An RS256 signature over raw header and payload bytes (to forge tokens in tests).
    pub fn sign_raw(&self, header: &[u8], payload: &[u8]) -> Result<String, SignerError> {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut signer = Signer::new(MessageDigest::sha256(), &self.key)?;
        signer.update(signing_input.as_bytes())?;
        let signature = signer.sign_to_vec()?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

/// What a [`CertServer`] answers to every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response body.
    pub body: String,
    /// Extra headers (e.g. `Cache-Control`, `Location`).
    pub headers: Vec<(String, String)>,
}

impl CannedResponse {
    /// `200` with the certificate map and `Cache-Control: max-age=<max_age_secs>`.
    pub fn certs(certs_json: impl Into<String>, max_age_secs: Option<u64>) -> Self {
        Self {
            status: 200,
            body: certs_json.into(),
            headers: max_age_secs
                .map(|s| ("Cache-Control".to_owned(), format!("public, max-age={s}")))
                .into_iter()
                .collect(),
        }
    }

    /// Any status and body.
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            body: body.into(),
            headers: Vec::new(),
        }
    }
}

struct ServerState {
    hits: AtomicUsize,
    response: RwLock<CannedResponse>,
}

/// A tiny HTTP/1.1 server answering every request with one [`CannedResponse`] and counting
/// requests. Serves the development certificate map; stops when dropped.
pub struct CertServer {
    addr: SocketAddr,
    state: Arc<ServerState>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for CertServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl CertServer {
    /// Listens on `addr` (use port 0 for any free port). Needs a Tokio runtime.
    pub async fn start(addr: SocketAddr, response: CannedResponse) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(ServerState {
            hits: AtomicUsize::new(0),
            response: RwLock::new(response),
        });
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&state)));
        Ok(Self { addr, state, task })
    }

    /// Serves `signers`' certificate map on 127.0.0.1 on a free port.
    pub async fn serve(signers: &[&DevSigner], max_age_secs: Option<u64>) -> io::Result<Self> {
        Self::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            CannedResponse::certs(DevSigner::certs_json_for(signers), max_age_secs),
        )
        .await
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>/certs`, for `PISMO_CERTS_URL`.
    pub fn url(&self) -> String {
        format!("http://{}/certs", self.addr)
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// Changes the answer to the next requests.
    pub fn set_response(&self, response: CannedResponse) {
        *self
            .state
            .response
            .write()
            .unwrap_or_else(PoisonError::into_inner) = response;
    }

    /// Serves until the task ends (it does not, unless the runtime stops).
    pub async fn run_forever(mut self) {
        (&mut self.task).await.ok();
    }
}

impl Drop for CertServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<ServerState>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(handle(stream, Arc::clone(&state)));
            }
            Err(error) => tracing::warn!(%error, "certificate server accept failed"),
        }
    }
}

async fn handle(mut stream: TcpStream, state: Arc<ServerState>) {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let read_head = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        true
    };
    if !matches!(
        tokio::time::timeout(Duration::from_secs(5), read_head).await,
        Ok(true)
    ) {
        return;
    }
    state.hits.fetch_add(1, Ordering::SeqCst);
    let response = state
        .response
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        response.status,
        reason_phrase(response.status),
        response.body.len()
    );
    for (name, value) in &response.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&response.body);
    if stream.write_all(out.as_bytes()).await.is_ok() {
        stream.shutdown().await.ok();
    }
}

fn reason_phrase(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown")
}
