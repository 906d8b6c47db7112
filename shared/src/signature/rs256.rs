//! RS256 (RSASSA-PKCS1-v1_5 with SHA-256) verification on a key prepared once per kid.
//!
//! josekit's verifier builds an OpenSSL `EVP_DigestVerify` context on every call, which costs
//! about 8 µs on top of the 16 µs RSA operation; this one does the RSA public operation
//! directly and compares the whole encoded `DigestInfo` (RFC 8017 §8.2.2, "encode and
//! compare"), which leaves no room for padding or trailing-data forgeries. A test checks that
//! it agrees with josekit.

use openssl::pkey::{PKeyRef, Public};
use openssl::rsa::{Padding, Rsa};
use sha2::{Digest as _, Sha256};

/// DER prefix of a SHA-256 `DigestInfo` (with NULL parameters).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
const ENCODED_LEN: usize = SHA256_DIGEST_INFO.len() + 32;
const MIN_BITS: usize = 2048;
const MAX_BYTES: usize = 1024;

/// An RSA public key ready to verify RS256 signatures.
pub(crate) struct Rs256Key {
    rsa: Rsa<Public>,
    size: usize,
}

impl Rs256Key {
    /// Accepts RSA keys of 2048 to 8192 bits.
    pub(crate) fn new(key: &PKeyRef<Public>) -> Result<Self, String> {
        let rsa = key.rsa().map_err(|_| "not an RSA key".to_owned())?;
        let size = usize::try_from(rsa.size()).unwrap_or(usize::MAX);
        if size * 8 < MIN_BITS || size > MAX_BYTES {
            return Err(format!("RSA key of {} bits", size * 8));
        }
        Ok(Self { rsa, size })
    }

    /// True when `signature` is a valid RS256 signature of `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        if signature.len() != self.size {
            return false;
        }
        let mut encoded = [0u8; MAX_BYTES];
        match self
            .rsa
            .public_decrypt(signature, &mut encoded[..self.size], Padding::PKCS1)
        {
            Ok(ENCODED_LEN) => {
                encoded[..SHA256_DIGEST_INFO.len()] == SHA256_DIGEST_INFO
                    && encoded[SHA256_DIGEST_INFO.len()..ENCODED_LEN] == Sha256::digest(message)[..]
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use josekit::jws::{JwsVerifier as _, RS256};
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::sign::Signer;

    fn sign(key: &PKey<openssl::pkey::Private>, md: MessageDigest, msg: &[u8]) -> Vec<u8> {
        let mut signer = Signer::new(md, key).unwrap();
        signer.update(msg).unwrap();
        signer.sign_to_vec().unwrap()
    }

    #[test]
    fn agrees_with_josekit() {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let other = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let public_pem = key.public_key_to_pem().unwrap();
        let ours = Rs256Key::new(&PKey::public_key_from_pem(&public_pem).unwrap()).unwrap();
        let theirs = RS256.verifier_from_pem(&public_pem).unwrap();
        let msg = b"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJhcGkucGlzbW8uaW8ifQ";
        let good = sign(&key, MessageDigest::sha256(), msg);
        let mut cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (msg.to_vec(), good.clone()),
            (b"other message".to_vec(), good.clone()),
            (msg.to_vec(), sign(&other, MessageDigest::sha256(), msg)),
            (msg.to_vec(), sign(&key, MessageDigest::sha512(), msg)),
            (msg.to_vec(), sign(&key, MessageDigest::sha1(), msg)),
            (msg.to_vec(), good[..255].to_vec()),
            (msg.to_vec(), [&[0u8][..], &good[..]].concat()),
            (msg.to_vec(), vec![0u8; 256]),
            (msg.to_vec(), vec![0xffu8; 256]),
            (msg.to_vec(), Vec::new()),
        ];
        for i in [0, 1, 100, 255] {
            let mut flipped = good.clone();
            flipped[i] ^= 0x01;
            cases.push((msg.to_vec(), flipped));
        }
        for (i, (m, s)) in cases.iter().enumerate() {
            assert_eq!(ours.verify(m, s), theirs.verify(m, s).is_ok(), "case {i}");
        }
        assert!(ours.verify(msg, &good));
    }

    #[test]
    fn refuses_small_and_non_rsa_keys() {
        let small = PKey::from_rsa(Rsa::generate(1024).unwrap()).unwrap();
        let small = PKey::public_key_from_pem(&small.public_key_to_pem().unwrap()).unwrap();
        assert!(Rs256Key::new(&small).is_err());
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let ec = PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
        let ec = PKey::public_key_from_pem(&ec.public_key_to_pem().unwrap()).unwrap();
        assert!(Rs256Key::new(&ec).is_err());
    }
}
