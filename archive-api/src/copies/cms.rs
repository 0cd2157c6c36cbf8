//! The CMS (PKCS #7) detached signature inside a certified copy: signed over the SHA-256 of the PDF's
//! signed byte ranges, with the signing time and the signer's certificate chain, as PDF readers and
//! `pdfsig` expect for `adbe.pkcs7.detached`.

use cms::builder::{SignedDataBuilder, SignerInfoBuilder, create_message_digest_attribute};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::ContentInfo;
use cms::signed_data::{EncapsulatedContentInfo, SignedData, SignerIdentifier};
use der::asn1::{SetOfVec, UtcTime};
use der::{Any, Decode, Encode};
use sha2::Sha256;
use signature::Verifier;
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::attr::{Attribute, AttributeValue};

use super::keys::{Signer, SigningKey};

const ID_DATA: der::oid::ObjectIdentifier = const_oid::db::rfc5911::ID_DATA;
const ID_SIGNED_DATA: der::oid::ObjectIdentifier = const_oid::db::rfc5911::ID_SIGNED_DATA;
const ID_SHA256: der::oid::ObjectIdentifier = const_oid::db::rfc5912::ID_SHA_256;
const ID_MESSAGE_DIGEST: der::oid::ObjectIdentifier = const_oid::db::rfc5911::ID_MESSAGE_DIGEST;
const ID_SIGNING_TIME: der::oid::ObjectIdentifier = const_oid::db::rfc5911::ID_SIGNING_TIME;
const ECDSA_WITH_SHA256: der::oid::ObjectIdentifier = const_oid::db::rfc5912::ECDSA_WITH_SHA_256;
const SHA256_WITH_RSA: der::oid::ObjectIdentifier =
    const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION;

/// Signs `digest` (SHA-256 of the signed bytes) at `at`; returns the DER of the CMS `ContentInfo`.
pub(crate) fn sign(
    signer: &Signer,
    digest: &[u8; 32],
    at: OffsetDateTime,
) -> Result<Vec<u8>, String> {
    let content = EncapsulatedContentInfo {
        econtent_type: ID_DATA,
        econtent: None,
    };
    let certificate = signer.certificate();
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: certificate.tbs_certificate.issuer.clone(),
        serial_number: certificate.tbs_certificate.serial_number.clone(),
    });
    let sha256 = AlgorithmIdentifierOwned {
        oid: ID_SHA256,
        parameters: None,
    };
    let signing_time = signing_time_attribute(at)?;
    let mut builder = SignedDataBuilder::new(&content);
    builder
        .add_digest_algorithm(sha256.clone())
        .map_err(|e| e.to_string())?;
    for certificate in &signer.chain {
        builder
            .add_certificate(CertificateChoices::Certificate(certificate.clone()))
            .map_err(|e| e.to_string())?;
    }
    match &signer.key {
        SigningKey::P256(key) => {
            let mut info = SignerInfoBuilder::new(key, sid, sha256, &content, Some(digest))
                .map_err(|e| e.to_string())?;
            info.add_signed_attribute(signing_time)
                .map_err(|e| e.to_string())?;
            builder
                .add_signer_info::<_, p256::ecdsa::DerSignature>(info)
                .map_err(|e| e.to_string())?;
        }
        SigningKey::Rsa(key) => {
            let key: &rsa::pkcs1v15::SigningKey<Sha256> = key;
            let mut info = SignerInfoBuilder::new(key, sid, sha256, &content, Some(digest))
                .map_err(|e| e.to_string())?;
            info.add_signed_attribute(signing_time)
                .map_err(|e| e.to_string())?;
            builder
                .add_signer_info::<_, rsa::pkcs1v15::Signature>(info)
                .map_err(|e| e.to_string())?;
        }
    }
    builder
        .build()
        .map_err(|e| e.to_string())?
        .to_der()
        .map_err(|e| e.to_string())
}

fn signing_time_attribute(at: OffsetDateTime) -> Result<Attribute, String> {
    let utc = at.to_offset(time::UtcOffset::UTC);
    let seconds = u64::try_from(utc.unix_timestamp()).map_err(|e| e.to_string())?;
    let when = UtcTime::from_unix_duration(std::time::Duration::from_secs(seconds))
        .map_err(|e| e.to_string())?;
    let value = AttributeValue::from_der(&when.to_der().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let mut values = SetOfVec::new();
    values.insert(value).map_err(|e| e.to_string())?;
    Ok(Attribute {
        oid: ID_SIGNING_TIME,
        values,
    })
}

/// What a valid signature says.
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    /// The signer's certificate.
    pub certificate: Certificate,
    /// The signing time it carries, if any.
    pub signing_time: Option<OffsetDateTime>,
}

/// Checks a CMS detached signature against `digest` (SHA-256 of the signed bytes): the message digest
/// it signed must be `digest`, and the signature must verify with the signer's certificate.
pub(crate) fn verify(der: &[u8], digest: &[u8; 32]) -> Result<Signed, String> {
    let info = ContentInfo::from_der(der).map_err(|e| format!("not a CMS signature: {e}"))?;
    if info.content_type != ID_SIGNED_DATA {
        return Err("the CMS structure is not signed data".into());
    }
    let signed: SignedData = info
        .content
        .decode_as()
        .map_err(|e| format!("unreadable signed data: {e}"))?;
    let signer_info = signed
        .signer_infos
        .0
        .iter()
        .next()
        .ok_or("the signature has no signer")?;
    if signer_info.digest_alg.oid != ID_SHA256 {
        return Err(format!(
            "unsupported digest algorithm {}",
            signer_info.digest_alg.oid
        ));
    }
    let attributes = signer_info
        .signed_attrs
        .as_ref()
        .ok_or("the signature has no signed attributes")?;
    let signed_digest =
        attribute(attributes, ID_MESSAGE_DIGEST).ok_or("the signature has no message digest")?;
    let expected = create_message_digest_attribute(digest).map_err(|e| e.to_string())?;
    if Some(signed_digest) != expected.values.iter().next() {
        return Err("the document's bytes are not the bytes that were signed".into());
    }
    let signing_time = attribute(attributes, ID_SIGNING_TIME).and_then(|value| {
        let time = x509_cert::time::Time::from_der(&value.to_der().ok()?).ok()?;
        OffsetDateTime::from_unix_timestamp(i64::try_from(time.to_unix_duration().as_secs()).ok()?)
            .ok()
    });

    let SignerIdentifier::IssuerAndSerialNumber(sid) = &signer_info.sid else {
        return Err("the signer is named by key identifier, which sohoa does not read".into());
    };
    let certificate = signed
        .certificates
        .as_ref()
        .and_then(|set| {
            set.0.iter().find_map(|choice| match choice {
                CertificateChoices::Certificate(c)
                    if c.tbs_certificate.issuer == sid.issuer
                        && c.tbs_certificate.serial_number == sid.serial_number =>
                {
                    Some(c.clone())
                }
                _ => None,
            })
        })
        .ok_or("the signer's certificate is not in the signature")?;

    let message = attributes.to_der().map_err(|e| e.to_string())?;
    let signature = signer_info.signature.as_bytes();
    let public_key = certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| e.to_string())?;
    let algorithm = signer_info.signature_algorithm.oid;
    let valid = if algorithm == ECDSA_WITH_SHA256 {
        use p256::pkcs8::DecodePublicKey;
        let key = p256::ecdsa::VerifyingKey::from_public_key_der(&public_key)
            .map_err(|e| format!("the certificate's key is not P-256: {e}"))?;
        let signature = p256::ecdsa::DerSignature::from_bytes(signature)
            .map_err(|e| format!("malformed ECDSA signature: {e}"))?;
        key.verify(&message, &signature).is_ok()
    } else if algorithm == SHA256_WITH_RSA || algorithm == const_oid::db::rfc5912::RSA_ENCRYPTION {
        use rsa::pkcs8::DecodePublicKey;
        let key = rsa::RsaPublicKey::from_public_key_der(&public_key)
            .map_err(|e| format!("the certificate's key is not RSA: {e}"))?;
        let signature = rsa::pkcs1v15::Signature::try_from(signature)
            .map_err(|e| format!("malformed RSA signature: {e}"))?;
        rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key)
            .verify(&message, &signature)
            .is_ok()
    } else {
        return Err(format!("unsupported signature algorithm {algorithm}"));
    };
    if !valid {
        return Err("the signature does not match the signer's certificate".into());
    }
    Ok(Signed {
        certificate,
        signing_time,
    })
}

fn attribute(attributes: &SetOfVec<Attribute>, oid: der::oid::ObjectIdentifier) -> Option<&Any> {
    attributes
        .iter()
        .find(|a| a.oid == oid)
        .and_then(|a| a.values.iter().next())
}
