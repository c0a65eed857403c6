//! Token-signing certificates: self-signed RSA certificates for server-to-server OAuth (the
//! mailbox's Auth certificate, a Front End OAuthTokenIssuer when the TLS certificate cannot serve)
//! and look-up of a certificate in the store by the thumbprint administrators type.

use std::fs;
use std::path::PathBuf;

use rcgen::{CertificateParams, IsCa, KeyPair, KeyUsagePurpose, SanType};
use time::{Duration, OffsetDateTime};

use crate::{Pki, PkiError, describe, dn, io_err, pem_cert, random_serial};

/// Lifetime of a self-signed token-signing certificate (Exchange's Auth certificate: 5 years).
pub const SIGNING_VALIDITY: Duration = Duration::days(5 * 365);

/// A certificate and its private key, PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemPair {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A self-signed RSA-2048 certificate with `CN=common_name, O=organization`.
pub fn self_signed(
    common_name: &str,
    organization: &str,
    dns_names: &[String],
    validity: Duration,
) -> Result<PemPair, PkiError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(common_name, organization);
    let mut sans = Vec::new();
    for name in dns_names {
        sans.push(SanType::DnsName(name.clone().try_into()?));
    }
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + validity;
    params.serial_number = Some(random_serial()?);
    let cert = params.self_signed(&key)?;
    Ok(PemPair { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

/// A certificate found in the store: its file, and its key file when one sits next to it.
#[derive(Debug, Clone)]
pub struct FoundCert {
    pub cert_path: PathBuf,
    pub key_path: Option<PathBuf>,
    pub cert_pem: String,
}

impl Pki {
    /// The certificate whose SHA-1 thumbprint is `thumbprint` (hex, any case), if the store has it.
    pub fn find_by_thumbprint(&self, thumbprint: &str) -> Result<Option<FoundCert>, PkiError> {
        let want: String =
            thumbprint.chars().filter(|c| c.is_ascii_hexdigit()).collect::<String>().to_ascii_uppercase();
        for info in self.list()? {
            if info.thumbprint == want {
                let cert_path = PathBuf::from(&info.path);
                let key_path = cert_path.with_extension("key");
                let cert_pem = fs::read_to_string(&cert_path).map_err(io_err(&cert_path))?;
                return Ok(Some(FoundCert { key_path: key_path.exists().then_some(key_path), cert_path, cert_pem }));
            }
        }
        Ok(None)
    }

    /// Adds a certificate (and key) to the store under `name`; returns its description.
    pub fn import(&self, name: &str, pair: &PemPair) -> Result<crate::CertInfo, PkiError> {
        crate::create_private_dir(&self.dir)?;
        let cert_path = self.dir.join(format!("{name}.pem"));
        let der = pem_cert(&pair.cert_pem, &cert_path)?;
        crate::write_private(&cert_path.with_extension("key"), pair.key_pem.as_bytes())?;
        crate::write_public(&cert_path, pair.cert_pem.as_bytes())?;
        describe(&der, &cert_path)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_found_by_thumbprint() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = Pki::new(tmp.path());
        let pair =
            self_signed("Tandem Mailbox Server Auth Certificate", "litwareinc.com", &[], SIGNING_VALIDITY).unwrap();
        let info = pki.import("auth", &pair).unwrap();
        assert_eq!(info.key_bits, 2048);
        assert!(info.subject.contains("CN=Tandem Mailbox Server Auth Certificate"));
        assert!(info.not_after_unix - OffsetDateTime::now_utc().unix_timestamp() > 4 * 365 * 86400);
        let found = pki.find_by_thumbprint(&info.thumbprint.to_lowercase()).unwrap().unwrap();
        assert!(found.key_path.is_some());
        assert!(pki.find_by_thumbprint("00").unwrap().is_none());
    }
}
