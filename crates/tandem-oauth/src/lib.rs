//! Server-to-server OAuth as Exchange and Skype for Business speak it (MS-XOAUTH), with no I/O.
//!
//! - [`SigningKey`] / [`VerifyingKey`]: an RSA certificate (and key) with its `x5t` (base64url
//!   SHA-1 of the DER) and the upper-case hex thumbprint administrators see.
//! - [`metadata`]: the auth metadata document each server publishes at `…/metadata/json/1`
//!   (building ours, parsing a partner's case-insensitively and checking its keys).
//! - [`token`]: minting an actor token (RS256, `x5t`) inside an unsigned outer token that names the
//!   user, and validating one with every rule of MS-XOAUTH §3.2.5.6, each failure a typed
//!   [`token::TokenError`] with the `x-ms-diagnostics` line the edge sends back.
//! - [`cache`]: caches of validated and issued tokens, each valid until shortly before expiry.
//!
//! Fetching metadata, storing settings and answering HTTP are the roles' business.

pub mod cache;
pub mod metadata;
pub mod partner;
pub mod token;

use aws_lc_rs::signature::{self, KeyPair as _, RsaKeyPair, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

pub use cache::{IssuedTokenCache, ValidationCache};
pub use metadata::{MetadataDocument, MetadataError, PartnerMetadata};
pub use partner::PartnerApplication;
pub use token::{Audience, Right, TokenError, TrustLevel, TrustedPartner, UserIdentity, Validated, ValidationPolicy};

/// Exchange's well-known application id (its AuthConfig ServiceName).
pub const EXCHANGE_APP_ID: &str = "00000002-0000-0ff1-ce00-000000000000";
/// SharePoint's well-known application id.
pub const SHAREPOINT_APP_ID: &str = "00000003-0000-0ff1-ce00-000000000000";
/// Lync / Skype for Business Server's well-known application id (its OAuth ServiceName).
pub const LYNC_APP_ID: &str = "00000004-0000-0ff1-ce00-000000000000";
/// The token types a 401 challenge advertises.
pub const TOKEN_TYPES: &str = "app_asserted_user_v1 service_asserted_app_v1";
/// Lifetime of the tokens we issue. TokenHelper uses 12 h for high-trust tokens; an hour bounds
/// what a leaked token is worth, and the issuer cache keeps the signing cost negligible anyway.
pub const TOKEN_LIFETIME_SECS: i64 = 3600;
/// Clock difference tolerated on `nbf` and `exp`.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;
/// An issued token is replaced this long before it expires.
pub const REFRESH_BEFORE_EXPIRY_SECS: i64 = 300;
/// The smallest RSA key either product accepts.
pub const MIN_KEY_BITS: usize = 2048;

/// A certificate or key that cannot serve for S2S tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("not a usable X.509 certificate: {0}")]
    Parse(String),
    #[error("the certificate's key is not RSA; S2S tokens are signed with RS256")]
    NotRsa,
    #[error("the certificate's key has {0} bits; at least 2048 are needed")]
    KeyTooSmall(usize),
    #[error("not a usable RSA private key: {0}")]
    BadKey(String),
    #[error("the private key does not belong to the certificate")]
    KeyMismatch,
    #[error("signing failed")]
    Sign,
}

/// base64url without padding, as JWTs and `x5t` use it.
pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Decodes base64url with or without padding.
pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

/// Standard base64 (the metadata document's `keyvalue.value`).
pub fn b64_std(data: &[u8]) -> String {
    STANDARD.encode(data)
}

fn b64_std_decode(s: &str) -> Option<Vec<u8>> {
    let clean: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(clean.as_bytes()).ok().or_else(|| b64url_decode(&clean))
}

fn sha1(der: &[u8]) -> aws_lc_rs::digest::Digest {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der)
}

/// The JWT `x5t` of a DER certificate: base64url of its SHA-1, no padding (RFC 7515).
pub fn x5t(der: &[u8]) -> String {
    b64url(sha1(der).as_ref())
}

/// The thumbprint Windows shows: SHA-1 of the DER in upper-case hex.
pub fn thumbprint(der: &[u8]) -> String {
    sha1(der).as_ref().iter().map(|b| format!("{b:02X}")).collect()
}

/// Normalises a thumbprint an administrator typed (spaces, colons, lower case).
pub fn normalize_thumbprint(t: &str) -> String {
    t.chars().filter(|c| c.is_ascii_hexdigit()).collect::<String>().to_ascii_uppercase()
}

/// A certificate whose RSA public key verifies tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    pub x5t: String,
    pub thumbprint: String,
    pub bits: usize,
    pub subject: String,
    pub not_after_unix: i64,
    der: Vec<u8>,
    rsa_public: Vec<u8>,
}

impl VerifyingKey {
    /// Reads a DER certificate; its key must be RSA of at least 2048 bits.
    pub fn from_der(der: &[u8]) -> Result<VerifyingKey, CertError> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| CertError::Parse(e.to_string()))?;
        let bits = match cert.public_key().parsed() {
            Ok(PublicKey::RSA(rsa)) => rsa.key_size(),
            Ok(_) => return Err(CertError::NotRsa),
            Err(e) => return Err(CertError::Parse(e.to_string())),
        };
        if bits < MIN_KEY_BITS {
            return Err(CertError::KeyTooSmall(bits));
        }
        Ok(VerifyingKey {
            x5t: x5t(der),
            thumbprint: thumbprint(der),
            bits,
            subject: cert.subject().to_string(),
            not_after_unix: cert.validity().not_after.timestamp(),
            der: der.to_vec(),
            rsa_public: cert.public_key().subject_public_key.data.to_vec(),
        })
    }

    /// Reads the first certificate of a PEM text.
    pub fn from_pem(pem: &str) -> Result<VerifyingKey, CertError> {
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| CertError::Parse(e.to_string()))?;
        VerifyingKey::from_der(&der)
    }

    /// The DER certificate.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Checks an RS256 (RSASSA-PKCS1-v1_5 with SHA-256) signature.
    pub fn verify(&self, message: &[u8], signature_bytes: &[u8]) -> bool {
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &self.rsa_public)
            .verify(message, signature_bytes)
            .is_ok()
    }
}

/// A certificate with its RSA private key: signs actor tokens.
pub struct SigningKey {
    cert: VerifyingKey,
    key: RsaKeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("thumbprint", &self.cert.thumbprint).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// From a DER certificate and a PKCS#8 or PKCS#1 DER private key.
    pub fn from_der(cert_der: &[u8], key_der: &[u8]) -> Result<SigningKey, CertError> {
        let cert = VerifyingKey::from_der(cert_der)?;
        let key = RsaKeyPair::from_pkcs8(key_der)
            .or_else(|_| RsaKeyPair::from_der(key_der))
            .map_err(|e| CertError::BadKey(e.to_string()))?;
        let signing = SigningKey { cert, key };
        // The key must belong to the certificate: a probe signature must verify with it.
        let probe = b"tandem key check";
        let sig = signing.sign(probe)?;
        if !signing.cert.verify(probe, &sig) {
            return Err(CertError::KeyMismatch);
        }
        Ok(signing)
    }

    /// From PEM texts: the first CERTIFICATE, and a PRIVATE KEY / RSA PRIVATE KEY.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<SigningKey, CertError> {
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| CertError::Parse(e.to_string()))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| CertError::BadKey(e.to_string()))?;
        SigningKey::from_der(&der, key.secret_der())
    }

    pub fn certificate(&self) -> &VerifyingKey {
        &self.cert
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.key.public_key().modulus_len() * 8
    }

    /// RS256 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CertError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig).map_err(|_| CertError::Sign)?;
        Ok(sig)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod testkit {
    use super::*;
    use std::sync::OnceLock;

    /// A self-signed RSA certificate and key (generated once per test binary per slot).
    pub fn key(slot: usize) -> &'static (String, String) {
        static KEYS: OnceLock<Vec<(String, String)>> = OnceLock::new();
        &KEYS.get_or_init(|| {
            (0..3)
                .map(|i| {
                    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
                    let mut params = rcgen::CertificateParams::new(vec![format!("k{i}.litwareinc.com")]).unwrap();
                    params.distinguished_name.push(rcgen::DnType::CommonName, format!("k{i}"));
                    params.distinguished_name.push(rcgen::DnType::OrganizationName, "litwareinc.com");
                    let cert = params.self_signed(&key).unwrap();
                    (cert.pem(), key.serialize_pem())
                })
                .collect()
        })[slot]
    }

    pub fn signing(slot: usize) -> SigningKey {
        let (c, k) = key(slot);
        SigningKey::from_pem(c, k).unwrap()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn thumbprints_and_round_trip() {
        let s = testkit::signing(0);
        let v = s.certificate();
        assert_eq!(v.thumbprint.len(), 40);
        assert_eq!(b64url_decode(&v.x5t).unwrap().len(), 20);
        assert_eq!(v.bits, 2048);
        assert_eq!(s.bits(), 2048);
        let sig = s.sign(b"hello").unwrap();
        assert!(v.verify(b"hello", &sig));
        assert!(!v.verify(b"hellO", &sig));
        assert_eq!(normalize_thumbprint("ab:cd ef"), "ABCDEF");
    }

    #[test]
    fn key_must_match_certificate() {
        let (c0, _) = testkit::key(0);
        let (_, k1) = testkit::key(1);
        assert_eq!(SigningKey::from_pem(c0, k1).unwrap_err(), CertError::KeyMismatch);
    }
}
