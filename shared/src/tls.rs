//! The one TLS configuration of the kit: rustls 0.23 on aws-lc-rs with the platform's roots,
//! the same library, provider and trust store as the AWS SDK's HTTPS client (docs/signatures.md,
//! "One TLS stack"). reqwest is built with `rustls-tls-no-provider`, so every reqwest client
//! must start from [`reqwest_builder`]: a plain `reqwest::Client::builder()` has no provider.

use std::sync::Arc;

/// Why no TLS configuration could be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("no root certificates: {0}")]
    NoRoots(String),
    #[error("cannot set up TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A rustls client configuration on aws-lc-rs and the platform's root certificates. The
/// provider is passed explicitly instead of installed process-wide.
pub fn client_config() -> Result<rustls::ClientConfig, TlsError> {
    let native = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        let reason = native
            .errors
            .first()
            .map_or_else(|| "none found".to_owned(), ToString::to_string);
        return Err(TlsError::NoRoots(reason));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A reqwest client builder on [`client_config`].
#[allow(clippy::disallowed_methods)] // the one place a reqwest builder is created
pub fn reqwest_builder() -> Result<reqwest::ClientBuilder, TlsError> {
    Ok(reqwest::Client::builder().use_preconfigured_tls(client_config()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_client_builds() {
        assert!(super::reqwest_builder().unwrap().build().is_ok());
    }
}
