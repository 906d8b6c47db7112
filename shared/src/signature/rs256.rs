//! RS256 (RSASSA-PKCS1-v1_5 with SHA-256) verification through josekit, on a verifier built
//! once per kid from the certificate's public key.
//!
//! josekit owns the cryptography (OpenSSL's `EVP_DigestVerify`, which re-encodes the
//! `DigestInfo` and compares it whole, RFC 8017 §8.2.2). What stays here is what josekit's
//! API does not express: an upper bound on the key size (josekit checks only the lower one,
//! 2048 bits) and the refusal of a signature whose length is not the modulus length before any
//! RSA work. The token itself (alg pinned to RS256 before the key lookup, `crit` refused,
//! duplicate header and claim members refused, the size limit, the claim checks) is parsed by
//! `signature::check`, because josekit's own compact parser reads the header into a JSON map
//! (a duplicate member silently wins) and takes the algorithm from a verifier chosen by the
//! caller; see docs/signatures.md.

use josekit::jws::{JwsVerifier as _, RS256, alg::rsassa::RsassaJwsVerifier};
use openssl::pkey::{PKeyRef, Public};

const MAX_BYTES: usize = 1024;

/// An RSA public key ready to verify RS256 signatures.
pub(crate) struct Rs256Key {
    verifier: RsassaJwsVerifier,
    size: usize,
}

impl Rs256Key {
    /// Accepts RSA keys of 2048 to 8192 bits.
    pub(crate) fn new(key: &PKeyRef<Public>) -> Result<Self, String> {
        let rsa = key.rsa().map_err(|_| "not an RSA key".to_owned())?;
        let size = usize::try_from(rsa.size()).unwrap_or(usize::MAX);
        if size > MAX_BYTES {
            return Err(format!("RSA key of {} bits", size * 8));
        }
        let der = key
            .public_key_to_der()
            .map_err(|_| "cannot encode the public key".to_owned())?;
        let verifier = RS256
            .verifier_from_der(der)
            .map_err(|_| format!("RSA key of {} bits", size * 8))?;
        Ok(Self { verifier, size })
    }

    /// True when `signature` is a valid RS256 signature of `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        signature.len() == self.size && self.verifier.verify(message, signature).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::sign::Signer;

    fn sign(key: &PKey<openssl::pkey::Private>, md: MessageDigest, msg: &[u8]) -> Vec<u8> {
        let mut signer = Signer::new(md, key).unwrap();
        signer.update(msg).unwrap();
        signer.sign_to_vec().unwrap()
    }

    fn public(key: &PKey<openssl::pkey::Private>) -> PKey<Public> {
        PKey::public_key_from_pem(&key.public_key_to_pem().unwrap()).unwrap()
    }

    #[test]
    fn mutated_signatures_are_refused() {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let other = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let ours = Rs256Key::new(&public(&key)).unwrap();
        let msg = b"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJhcGkucGlzbW8uaW8ifQ";
        let good = sign(&key, MessageDigest::sha256(), msg);
        assert!(ours.verify(msg, &good));
        let mut cases: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
            ("other message", b"other message".to_vec(), good.clone()),
            (
                "other key",
                msg.to_vec(),
                sign(&other, MessageDigest::sha256(), msg),
            ),
            (
                "SHA-512",
                msg.to_vec(),
                sign(&key, MessageDigest::sha512(), msg),
            ),
            (
                "SHA-1",
                msg.to_vec(),
                sign(&key, MessageDigest::sha1(), msg),
            ),
            ("short", msg.to_vec(), good[..255].to_vec()),
            (
                "leading zero",
                msg.to_vec(),
                [&[0u8][..], &good[..]].concat(),
            ),
            ("zeros", msg.to_vec(), vec![0u8; 256]),
            ("ones", msg.to_vec(), vec![0xffu8; 256]),
            ("empty", msg.to_vec(), Vec::new()),
        ];
        for i in [0, 1, 100, 255] {
            let mut flipped = good.clone();
            flipped[i] ^= 0x01;
            cases.push(("bit flip", msg.to_vec(), flipped));
        }
        for (name, m, s) in &cases {
            assert!(!ours.verify(m, s), "{name}");
        }
    }

    /// Every RSASSA-PKCS1-v1_5 SHA-256 vector of Wycheproof (2048, 3072 and 4096 bits):
    /// `valid` verifies, `invalid` does not, and the legacy `acceptable` encodings (a missing
    /// NULL in the DigestInfo) are refused too.
    #[test]
    fn wycheproof_rsa_pkcs1_sha256() {
        let mut counted = 0;
        for bits in [2048, 3072, 4096] {
            let path = format!(
                "{}/tests/fixtures/wycheproof/rsa_signature_{bits}_sha256_test.json",
                env!("CARGO_MANIFEST_DIR")
            );
            let text = std::fs::read_to_string(&path).unwrap();
            let file: serde_json::Value = serde_json::from_str(&text).unwrap();
            for group in file["testGroups"].as_array().unwrap() {
                let der = hex::decode(group["publicKeyDer"].as_str().unwrap()).unwrap();
                let key = Rs256Key::new(&PKey::public_key_from_der(&der).unwrap()).unwrap();
                for test in group["tests"].as_array().unwrap() {
                    let msg = hex::decode(test["msg"].as_str().unwrap()).unwrap();
                    let sig = hex::decode(test["sig"].as_str().unwrap()).unwrap();
                    let expected = test["result"] == "valid";
                    assert_eq!(
                        key.verify(&msg, &sig),
                        expected,
                        "{bits} bits, tcId {} ({}, {})",
                        test["tcId"],
                        test["result"],
                        test["comment"]
                    );
                    counted += 1;
                }
            }
        }
        assert_eq!(counted, 776);
    }

    #[test]
    fn refuses_small_large_and_non_rsa_keys() {
        let small = PKey::from_rsa(Rsa::generate(1024).unwrap()).unwrap();
        assert!(Rs256Key::new(&public(&small)).is_err());
        // A public key needs no generation: a 8200-bit odd modulus is enough to be refused.
        let mut modulus = vec![0u8; 1025];
        modulus[0] = 0x80;
        modulus[1024] = 0x01;
        let large = Rsa::from_public_components(
            openssl::bn::BigNum::from_slice(&modulus).unwrap(),
            openssl::bn::BigNum::from_u32(65_537).unwrap(),
        )
        .unwrap();
        assert!(Rs256Key::new(&PKey::from_rsa(large).unwrap()).is_err());
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let ec = PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
        assert!(Rs256Key::new(&public(&ec)).is_err());
    }
}
