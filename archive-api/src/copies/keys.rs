//! The certificates and keys that units sign certified copies with.
//!
//! A unit's certificate chain and key are PEM files (convert a PKCS#12 file with
//! `openssl pkcs12 -in unit.p12 -nodes -out unit.pem`); the key is PKCS#8, SEC 1 (EC) or PKCS#1 (RSA),
//! for P-256 ECDSA or RSA. A unit without one signs with the archive's development certificate, made on
//! first use, self-signed and labelled in its name as not for legal use.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use der::{Decode, Encode, EncodePem};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::pkcs1::DecodeRsaPrivateKey;
use sha2::{Digest, Sha256};
use spki::EncodePublicKey;
use x509_cert::Certificate;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;

/// The common name of the development certificate: anyone who looks at a copy signed with it sees that it
/// has no legal value.
pub const DEVELOPMENT_NAME: &str = "sohoa DEVELOPMENT certificate - NOT FOR LEGAL USE";

/// Where a unit's certificate chain and key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitCertificate {
    /// The unit's name as it appears on the certification line (`UBND xã Tân Phú`).
    pub name: String,
    /// PEM file with the unit's certificate first, then any intermediate certificates.
    pub certificate: PathBuf,
    /// PEM file with the unit's private key.
    pub key: PathBuf,
}

/// Why a signing key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not what it should be.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

impl KeyError {
    fn invalid(path: &Path, reason: impl std::fmt::Display) -> Self {
        Self::Invalid {
            path: path.display().to_string(),
            reason: reason.to_string(),
        }
    }

    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// A private key sohoa signs with.
#[derive(Clone)]
pub(crate) enum SigningKey {
    /// ECDSA on P-256 with SHA-256.
    P256(p256::ecdsa::SigningKey),
    /// RSA PKCS#1 v1.5 with SHA-256.
    Rsa(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
}

impl SigningKey {
    fn public_key_der(&self) -> Result<Vec<u8>, spki::Error> {
        match self {
            Self::P256(key) => Ok(key.verifying_key().to_public_key_der()?.into_vec()),
            Self::Rsa(key) => Ok(rsa::RsaPublicKey::from(key.as_ref().as_ref())
                .to_public_key_der()?
                .into_vec()),
        }
    }
}

/// A certificate chain with its key, ready to sign.
#[derive(Clone)]
pub struct Signer {
    pub(crate) key: SigningKey,
    /// The signer's certificate first, then its issuers.
    pub(crate) chain: Vec<Certificate>,
    /// Whether this is the development certificate.
    pub development: bool,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("subject", &self.subject())
            .field("development", &self.development)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Loads a unit's certificate chain and key, and checks that they belong together.
    pub fn load(certificate: &Path, key: &Path) -> Result<Self, KeyError> {
        let pem = std::fs::read_to_string(certificate).map_err(|e| KeyError::io(certificate, e))?;
        let chain = Certificate::load_pem_chain(pem.as_bytes()).map_err(|e| {
            KeyError::invalid(certificate, format!("not a PEM certificate chain: {e}"))
        })?;
        if chain.is_empty() {
            return Err(KeyError::invalid(certificate, "holds no certificate"));
        }
        let key_pem = std::fs::read_to_string(key).map_err(|e| KeyError::io(key, e))?;
        let signing_key = parse_key(&key_pem).map_err(|reason| KeyError::invalid(key, reason))?;
        let signer = Self {
            key: signing_key,
            chain,
            development: false,
        };
        let certified = signer.chain[0]
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| KeyError::invalid(certificate, e))?;
        let held = signer
            .key
            .public_key_der()
            .map_err(|e| KeyError::invalid(key, e))?;
        if certified != held {
            return Err(KeyError::invalid(
                key,
                format!(
                    "is not the key of the certificate in {}",
                    certificate.display()
                ),
            ));
        }
        Ok(signer)
    }

    /// The archive's development certificate in `dir`, made (self-signed, valid ten years) if missing.
    pub fn development(dir: &Path) -> Result<Self, KeyError> {
        let certificate = dir.join("development-certificate.pem");
        let key = dir.join("development-key.pem");
        if certificate.exists() && key.exists() {
            let mut signer = Self::load(&certificate, &key)?;
            signer.development = true;
            return Ok(signer);
        }
        std::fs::create_dir_all(dir).map_err(|e| KeyError::io(dir, e))?;
        let signing_key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let made = make_development_certificate(&signing_key)
            .map_err(|e| KeyError::invalid(&certificate, e))?;
        let key_pem = signing_key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyError::invalid(&key, e))?;
        write_private(&key, key_pem.as_bytes())?;
        let cert_pem = made
            .to_pem(LineEnding::LF)
            .map_err(|e| KeyError::invalid(&certificate, e))?;
        // The certificate last: a crash between leaves no certificate without its key.
        write_atomically(&certificate, cert_pem.as_bytes())?;
        tracing::warn!(
            path = %certificate.display(),
            "made a self-signed development certificate for certified copies; configure each unit's \
             own certificate and key before issuing copies with legal value"
        );
        Ok(Self {
            key: SigningKey::P256(signing_key),
            chain: vec![made],
            development: true,
        })
    }

    /// The signer's certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.chain[0]
    }

    /// The certificate's subject, as `CN=...,O=...`.
    pub fn subject(&self) -> String {
        self.chain[0].tbs_certificate.subject.to_string()
    }

    /// SHA-256 of the certificate's DER, in hex: how copies record which certificate signed them.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.chain[0])
    }
}

/// SHA-256 of a certificate's DER, in hex.
pub(crate) fn fingerprint(certificate: &Certificate) -> String {
    let der = certificate.to_der().unwrap_or_default();
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn parse_key(pem: &str) -> Result<SigningKey, String> {
    if let Ok(key) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
        return Ok(SigningKey::P256(key));
    }
    if let Ok(key) = p256::SecretKey::from_sec1_pem(pem) {
        return Ok(SigningKey::P256(key.into()));
    }
    if let Ok(key) = rsa::RsaPrivateKey::from_pkcs8_pem(pem) {
        return Ok(SigningKey::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(
            key,
        ))));
    }
    if let Ok(key) = rsa::RsaPrivateKey::from_pkcs1_pem(pem) {
        return Ok(SigningKey::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(
            key,
        ))));
    }
    Err(
        "not an unencrypted PEM private key for P-256 ECDSA or RSA (PKCS#8, SEC 1 or PKCS#1)"
            .into(),
    )
}

fn make_development_certificate(
    key: &p256::ecdsa::SigningKey,
) -> Result<Certificate, Box<dyn std::error::Error>> {
    let subject = Name::from_str(&format!("CN={DEVELOPMENT_NAME},O=sohoa"))?;
    let mut serial = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut serial);
    serial[0] &= 0x7f; // a positive INTEGER
    let validity = Validity::from_now(Duration::from_secs(10 * 365 * 24 * 3600))?;
    let public_key = spki::SubjectPublicKeyInfoOwned::from_der(
        key.verifying_key().to_public_key_der()?.as_bytes(),
    )?;
    let builder = CertificateBuilder::new(
        Profile::Root,
        SerialNumber::new(&serial)?,
        validity,
        subject,
        public_key,
        key,
    )?;
    Ok(builder.build::<p256::ecdsa::DerSignature>()?)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| KeyError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| KeyError::io(path, e))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(&tmp).map_err(|e| KeyError::io(&tmp, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| KeyError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| KeyError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_development_certificate_is_made_once_labelled_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let made = Signer::development(dir.path()).unwrap();
        assert!(made.development);
        assert!(
            made.subject().contains("NOT FOR LEGAL USE"),
            "{}",
            made.subject()
        );
        let again = Signer::development(dir.path()).unwrap();
        assert_eq!(made.fingerprint(), again.fingerprint());
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused() {
        let one = tempfile::tempdir().unwrap();
        let two = tempfile::tempdir().unwrap();
        Signer::development(one.path()).unwrap();
        Signer::development(two.path()).unwrap();
        let err = Signer::load(
            &one.path().join("development-certificate.pem"),
            &two.path().join("development-key.pem"),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("is not the key of the certificate"),
            "{err}"
        );
    }
}
