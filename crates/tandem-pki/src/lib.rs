//! The deployment's certificates: a local certification authority and the TLS server
//! certificates of each role, kept under the data directory with owner-only permissions.
//!
//! On first start [`Pki::ensure`] creates the CA and one RSA-2048 certificate per role naming every
//! host the role answers for (and loopback, so a lab needs no DNS). On later starts it reuses them,
//! and reissues a role's certificate by itself when a name is missing, the CA changed, or expiry is
//! within [`RENEW_BEFORE`]. [`describe`] gives what `tandem cert list` shows: subject, names, key
//! size, the SHA-1 thumbprint Windows administrators know, and expiry. Files only; no sockets.

pub mod signing;

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
use x509_parser::public_key::PublicKey;

/// Lifetime of the local CA.
pub const CA_VALIDITY: Duration = Duration::days(3650);
/// Lifetime of a role's TLS certificate (under the 398 days clients accept).
pub const SERVER_VALIDITY: Duration = Duration::days(397);
/// A certificate this close to expiry is replaced at the next check, by default: the same 60 days
/// as the token-signing certificates' rollover (`certificates.renew_before_days`).
pub const RENEW_BEFORE: Duration = Duration::days(60);
/// RSA 2048: what Exchange and Skype for Business require at least, and what their clients accept.
pub const KEY_BITS: usize = 2048;

/// A certificate or key problem, with the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: not a usable PEM certificate or key: {reason}")]
    Parse { path: String, reason: String },
    /// The system's random-number generator failed: no certificate may be made without it.
    #[error("the system random-number generator failed; no certificate was generated")]
    Random,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io { path: path.display().to_string(), source }
}

/// What a role's server certificate must cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCertSpec {
    /// File stem under the PKI folder, e.g. `mailbox`.
    pub name: String,
    /// Subject common name (the role's main FQDN).
    pub common_name: String,
    /// Subject organisation (the SIP domain, which Skype for Business expects in the Subject).
    pub organization: String,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
}

/// A certificate with its private key, ready for a TLS listener.
#[derive(Debug)]
pub struct ServerIdentity {
    pub name: String,
    /// Leaf first, then the CA.
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

/// The deployment's certificate store on disk.
#[derive(Debug, Clone)]
pub struct Pki {
    dir: PathBuf,
    renew_before: Duration,
    /// Added to the clock when judging expiry (a test knob; certificates are issued on the real clock).
    clock_offset: Duration,
}

impl Pki {
    pub fn new(dir: impl Into<PathBuf>) -> Pki {
        Pki { dir: dir.into(), renew_before: RENEW_BEFORE, clock_offset: Duration::ZERO }
    }

    /// Renews certificates `renew_before` ahead of expiry, judging expiry `clock_offset` ahead of
    /// the real clock.
    pub fn with_renewal(mut self, renew_before: Duration, clock_offset: Duration) -> Pki {
        self.renew_before = renew_before;
        self.clock_offset = clock_offset;
        self
    }

    /// Seconds left before `not_after_unix`, as renewal judges it.
    pub fn seconds_left(&self, not_after_unix: i64) -> i64 {
        not_after_unix - (OffsetDateTime::now_utc() + self.clock_offset).unix_timestamp()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate clients should trust.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn ca_key_path(&self) -> PathBuf {
        self.dir.join("ca.key")
    }

    pub fn server_cert_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }

    fn server_key_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key"))
    }

    /// Creates what is missing and renews what must be renewed; returns each role's identity
    /// and whether anything was written.
    pub fn ensure(&self, domain: &str, specs: &[ServerCertSpec]) -> Result<(Vec<ServerIdentity>, bool), PkiError> {
        create_private_dir(&self.dir)?;
        let mut changed = false;
        let (ca_pem, ca_key) = match self.load_ca()? {
            Some(ca) => ca,
            None => {
                changed = true;
                self.create_ca(domain)?
            }
        };
        let ca_der = pem_cert(&ca_pem, &self.ca_cert_path())?;
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, &ca_key)?;
        let mut out = Vec::new();
        for spec in specs {
            let cert_path = self.server_cert_path(&spec.name);
            let key_path = self.server_key_path(&spec.name);
            let current = match (fs::read_to_string(&cert_path), fs::read_to_string(&key_path)) {
                (Ok(c), Ok(k)) => Some((c, k)),
                _ => None,
            };
            let reason = match &current {
                None => Some("missing".to_owned()),
                Some((cert, _)) => self.renewal_reason(cert, spec, &ca_der, &cert_path)?,
            };
            let (cert_pem, key_pem) = match (reason, current) {
                (None, Some(current)) => current,
                (reason, _) => {
                    tracing::info!(cert = %spec.name, reason = reason.as_deref().unwrap_or("missing"), "issuing TLS certificate");
                    changed = true;
                    let issued = issue_server(spec, &issuer)?;
                    write_private(&key_path, issued.1.as_bytes())?;
                    write_public(&cert_path, issued.0.as_bytes())?;
                    issued
                }
            };
            let leaf = pem_cert(&cert_pem, &cert_path)?;
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
                .map_err(|e| PkiError::Parse { path: key_path.display().to_string(), reason: e.to_string() })?;
            out.push(ServerIdentity {
                name: spec.name.clone(),
                chain: vec![leaf, ca_der.clone()],
                key,
                cert_path,
                key_path,
            });
        }
        Ok((out, changed))
    }

    fn load_ca(&self) -> Result<Option<(String, KeyPair)>, PkiError> {
        let (cert_path, key_path) = (self.ca_cert_path(), self.ca_key_path());
        let (Ok(cert), Ok(key)) = (fs::read_to_string(&cert_path), fs::read_to_string(&key_path)) else {
            return Ok(None);
        };
        let key = KeyPair::from_pem(&key)
            .map_err(|e| PkiError::Parse { path: key_path.display().to_string(), reason: e.to_string() })?;
        Ok(Some((cert, key)))
    }

    fn create_ca(&self, domain: &str) -> Result<(String, KeyPair), PkiError> {
        tracing::info!(dir = %self.dir.display(), "creating the local certification authority");
        let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(&format!("Tandem Local CA ({domain})"), domain);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + CA_VALIDITY;
        params.serial_number = Some(random_serial()?);
        let cert = params.self_signed(&key)?;
        write_private(&self.ca_key_path(), key.serialize_pem().as_bytes())?;
        write_public(&self.ca_cert_path(), cert.pem().as_bytes())?;
        Ok((cert.pem(), key))
    }

    /// Every certificate file in the store, described.
    pub fn list(&self) -> Result<Vec<CertInfo>, PkiError> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_err(&self.dir)(e)),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "pem"))
            .collect();
        paths.sort();
        for path in paths {
            let pem = fs::read_to_string(&path).map_err(io_err(&path))?;
            out.push(describe(&pem_cert(&pem, &path)?, &path)?);
        }
        Ok(out)
    }
}

impl Pki {
    /// Why `cert` must be replaced, if it must.
    fn renewal_reason(
        &self,
        cert_pem: &str,
        spec: &ServerCertSpec,
        ca_der: &CertificateDer<'_>,
        path: &Path,
    ) -> Result<Option<String>, PkiError> {
        let der = pem_cert(cert_pem, path)?;
        let info = describe(&der, path)?;
        let (_, ca) = X509Certificate::from_der(ca_der)
            .map_err(|e| PkiError::Parse { path: "ca.pem".into(), reason: e.to_string() })?;
        let (_, leaf) = X509Certificate::from_der(&der)
            .map_err(|e| PkiError::Parse { path: path.display().to_string(), reason: e.to_string() })?;
        if leaf.issuer() != ca.subject() || leaf.verify_signature(Some(ca.public_key())).is_err() {
            return Ok(Some("not issued by the current CA".into()));
        }
        let wanted = spec.dns_names.iter().cloned().chain(spec.ip_addresses.iter().map(ToString::to_string));
        if wanted.into_iter().any(|n| !info.subject_alt_names.contains(&n)) {
            return Ok(Some("a host name is missing".into()));
        }
        // A certificate issued now would be inside the window as well (a clock offset beyond the
        // validity): reissuing would only repeat at every check.
        let would_loop = SERVER_VALIDITY - self.clock_offset <= self.renew_before;
        if !would_loop && self.seconds_left(info.not_after_unix) < self.renew_before.whole_seconds() {
            return Ok(Some(format!("expires within {} days", self.renew_before.whole_days())));
        }
        Ok(None)
    }
}

fn issue_server(spec: &ServerCertSpec, issuer: &Issuer<'_, &KeyPair>) -> Result<(String, String), PkiError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(&spec.common_name, &spec.organization);
    let mut sans = Vec::new();
    for name in &spec.dns_names {
        sans.push(SanType::DnsName(name.clone().try_into()?));
    }
    sans.extend(spec.ip_addresses.iter().copied().map(SanType::IpAddress));
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + SERVER_VALIDITY;
    params.serial_number = Some(random_serial()?);
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn dn(common_name: &str, organization: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, organization);
    dn
}

/// A positive 127-bit random serial, as RFC 5280 §4.1.2.2 asks (unique per issuer).
fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| PkiError::Random)?;
    bytes[0] &= 0x7f; // positive
    Ok(SerialNumber::from_slice(&bytes))
}

fn pem_cert(pem: &str, path: &Path) -> Result<CertificateDer<'static>, PkiError> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| PkiError::Parse { path: path.display().to_string(), reason: e.to_string() })
}

/// What an administrator needs to know about a certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertInfo {
    pub path: String,
    pub subject: String,
    pub issuer: String,
    pub subject_alt_names: Vec<String>,
    pub key_algorithm: String,
    pub key_bits: usize,
    /// SHA-1 of the DER, upper-case hex, as Windows and the Microsoft cmdlets show it.
    pub thumbprint: String,
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
    pub not_after_unix: i64,
    pub is_ca: bool,
}

/// Describes the first certificate of a PEM text; `path` names it in the description and errors.
pub fn describe_pem(pem: &str, path: &Path) -> Result<CertInfo, PkiError> {
    describe(&pem_cert(pem, path)?, path)
}

/// Describes one DER certificate.
pub fn describe(der: &CertificateDer<'_>, path: &Path) -> Result<CertInfo, PkiError> {
    let parse = |reason: String| PkiError::Parse { path: path.display().to_string(), reason };
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| parse(e.to_string()))?;
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => sans.push((*d).to_owned()),
                GeneralName::IPAddress(ip) => match ip.len() {
                    4 => sans.push(IpAddr::from(<[u8; 4]>::try_from(*ip).unwrap_or_default()).to_string()),
                    16 => sans.push(IpAddr::from(<[u8; 16]>::try_from(*ip).unwrap_or_default()).to_string()),
                    _ => {}
                },
                other => sans.push(other.to_string()),
            }
        }
    }
    let (key_algorithm, key_bits) = match cert.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => ("RSA".to_owned(), rsa.key_size()),
        Ok(PublicKey::EC(ec)) => ("EC".to_owned(), ec.key_size()),
        Ok(_) => ("other".to_owned(), 0),
        Err(e) => return Err(parse(e.to_string())),
    };
    let thumbprint = hex::encode_upper(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der));
    let fmt = |t: OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let validity = cert.validity();
    Ok(CertInfo {
        path: path.display().to_string(),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        subject_alt_names: sans,
        key_algorithm,
        key_bits,
        thumbprint,
        serial: cert.raw_serial_as_string(),
        not_before: fmt(validity.not_before.to_datetime()),
        not_after: fmt(validity.not_after.to_datetime()),
        not_after_unix: validity.not_after.timestamp(),
        is_ca: cert.is_ca(),
    })
}

fn create_private_dir(dir: &Path) -> Result<(), PkiError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    set_mode(dir, 0o700)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<(), PkiError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err(path))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> Result<(), PkiError> {
    Ok(())
}

/// Writes through a temporary file and a rename, so a crash never leaves half a key.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let tmp = path.with_extension("tmp");
    {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        let mut f = options.open(&tmp).map_err(io_err(&tmp))?;
        f.write_all(bytes).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    set_mode(&tmp, mode)?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), PkiError> {
    write_atomic(path, bytes, 0o600)
}

/// Certificates are public, but the folder is owner-only anyway; keep the files owner-only too,
/// so a copied folder does not widen access.
fn write_public(path: &Path, bytes: &[u8]) -> Result<(), PkiError> {
    write_atomic(path, bytes, 0o600)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spec() -> ServerCertSpec {
        ServerCertSpec {
            name: "mailbox".into(),
            common_name: "mail.litwareinc.com".into(),
            organization: "litwareinc.com".into(),
            dns_names: vec!["mail.litwareinc.com".into(), "autodiscover.litwareinc.com".into()],
            ip_addresses: vec!["127.0.0.1".parse().unwrap()],
        }
    }

    fn wider_spec() -> ServerCertSpec {
        let mut wider = spec();
        wider.dns_names.push("owa.litwareinc.com".into());
        wider
    }

    #[test]
    fn creates_reuses_and_renews() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = Pki::new(tmp.path().join("pki"));
        let (ids, changed) = pki.ensure("litwareinc.com", &[spec()]).unwrap();
        assert!(changed);
        assert_eq!(ids[0].chain.len(), 2);
        let first = describe(&ids[0].chain[0], Path::new("x")).unwrap();
        assert_eq!(first.key_bits, KEY_BITS);
        assert_eq!(first.thumbprint.len(), 40);
        assert!(first.subject.contains("CN=mail.litwareinc.com"));
        assert!(first.subject_alt_names.contains(&"autodiscover.litwareinc.com".to_owned()));
        assert!(first.subject_alt_names.contains(&"127.0.0.1".to_owned()));
        assert!(!first.is_ca);

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(pki.dir()), 0o700);
            assert_eq!(mode(&pki.server_key_path("mailbox")), 0o600);
            assert_eq!(mode(&pki.ca_key_path()), 0o600);
        }

        // Second run: nothing changes.
        let (ids2, changed) = pki.ensure("litwareinc.com", &[spec()]).unwrap();
        assert!(!changed);
        assert_eq!(ids2[0].chain[0], ids[0].chain[0]);

        // A new host name forces a new certificate from the same CA.
        let mut wider = spec();
        wider.dns_names.push("owa.litwareinc.com".into());
        let (ids3, changed) = pki.ensure("litwareinc.com", &[wider]).unwrap();
        assert!(changed);
        assert_ne!(ids3[0].chain[0], ids[0].chain[0]);
        assert_eq!(ids3[0].chain[1], ids[0].chain[1]);

        // Judged 300 days on (a 397-day certificate has 97 left): kept. An offset that puts every
        // new certificate inside the window too (400 days) would reissue at every check: kept.
        for offset in [300, 400] {
            let later = Pki::new(pki.dir()).with_renewal(Duration::days(60), Duration::days(offset));
            assert!(!later.ensure("litwareinc.com", &[wider_spec()]).unwrap().1, "offset {offset}");
            let days = later.seconds_left(first.not_after_unix).div_euclid(86_400);
            assert!((396 - offset..=397 - offset).contains(&days), "{days}");
        }

        let listed = pki.list().unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().any(|c| c.is_ca));
    }

    #[test]
    fn corrupt_files_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = Pki::new(tmp.path());
        pki.ensure("litwareinc.com", &[spec()]).unwrap();
        fs::write(pki.server_cert_path("mailbox"), "garbage").unwrap();
        let e = pki.ensure("litwareinc.com", &[spec()]).unwrap_err().to_string();
        assert!(e.contains("mailbox.pem"), "{e}");
    }
}
