//! Certified copies (bản sao điện tử có chứng thực, Decree 30/2020 Appendix I): the archived document's
//! PDF with a visible certification line on page 1 — the form of copy "SAO Y", the certifying unit and the
//! signing time in Vietnam time — and the unit's digital signature, a PAdES-style `adbe.pkcs7.detached`
//! CMS signature over the whole file, appended as an incremental update so the archived bytes stay as
//! they are.
//!
//! One copy per document and certificate is made, stored as an object of its own and served again; each
//! issue is recorded. [`verify`] says whether any PDF is an intact copy, and, with the archive's records,
//! whether this archive issued it.

mod cms;
mod keys;
mod pdf;
mod service;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

use serde::Serialize;
use time::OffsetDateTime;

pub use keys::{DEVELOPMENT_NAME, KeyError, Signer, UnitCertificate};
pub use service::{CopyError, IssuedCopy, Verification};

use crate::time::VIETNAM;

/// The form of copy written on the certification line and in the signature.
pub const FORM_OF_COPY: &str = "SAO Y";

/// Who signs copies for which unit.
pub struct Certifier {
    certs_dir: PathBuf,
    units: BTreeMap<String, UnitCertificate>,
    loaded: Mutex<HashMap<String, Signer>>,
}

impl Certifier {
    /// Units sign with their configured certificate; the others (and those configured with a name only)
    /// with the development certificate kept (and made on first use) in `certs_dir`.
    pub fn new(certs_dir: PathBuf, units: BTreeMap<String, UnitCertificate>) -> Self {
        Self {
            certs_dir,
            units,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// The unit's name for the certification line, if configured.
    pub fn unit_name(&self, unit: &str) -> Option<&str> {
        self.units
            .get(unit)
            .map(|u| u.name.as_str())
            .filter(|n| !n.is_empty())
    }

    /// The signer for `unit`, loaded once.
    pub fn signer(&self, unit: &str) -> Result<Signer, KeyError> {
        let configured = self
            .units
            .get(unit)
            .filter(|u| !u.certificate.as_os_str().is_empty());
        let key = if configured.is_some() { unit } else { "" };
        if let Some(signer) = self.lock().get(key) {
            return Ok(signer.clone());
        }
        let signer = match configured {
            Some(configured) => Signer::load(&configured.certificate, &configured.key)?,
            None => Signer::development(&self.certs_dir)?,
        };
        self.lock().insert(key.to_owned(), signer.clone());
        Ok(signer)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Signer>> {
        self.loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A certified copy, made and signed.
pub struct SignedCopy {
    /// The PDF.
    pub bytes: Vec<u8>,
    /// When it was signed, in Vietnam time.
    pub signed_at: OffsetDateTime,
}

/// Makes a certified copy of `original` for `unit`, signed by `signer` now.
pub fn certify(
    original: &[u8],
    unit: &str,
    unit_name: Option<&str>,
    signer: &Signer,
) -> Result<SignedCopy, String> {
    let now = OffsetDateTime::now_utc().to_offset(VIETNAM);
    let signed_at = now.replace_nanosecond(0).unwrap_or(now);
    let iso = rfc3339(signed_at);
    let unit_line = match unit_name {
        Some(name) => format!("{name} ({unit})"),
        None => format!("Đơn vị: {unit}"),
    };
    let mut lines = vec![
        format!("{FORM_OF_COPY} - Bản sao điện tử có chứng thực"),
        unit_line,
        format!("Thời gian ký: {iso}"),
    ];
    if signer.development {
        lines.push("CHỨNG THƯ THỬ NGHIỆM - KHÔNG CÓ GIÁ TRỊ PHÁP LÝ".to_owned());
    }
    let name = unit_name.unwrap_or(unit);
    let pdf_date = format!(
        "D:{:04}{:02}{:02}{:02}{:02}{:02}+07'00'",
        signed_at.year(),
        u8::from(signed_at.month()),
        signed_at.day(),
        signed_at.hour(),
        signed_at.minute(),
        signed_at.second()
    );
    let fields = pdf::SignatureFields {
        name,
        reason: FORM_OF_COPY,
        location: unit,
        pdf_date: &pdf_date,
    };
    let prepared = pdf::prepare(original, &lines, &fields).map_err(|e| e.to_string())?;
    let digest = {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        for part in prepared.signed_bytes() {
            hasher.update(part);
        }
        <[u8; 32]>::from(hasher.finalize())
    };
    let signature = cms::sign(signer, &digest, signed_at)?;
    let bytes = prepared.finish(&signature)?;
    Ok(SignedCopy { bytes, signed_at })
}

/// What a PDF's signature says, checked.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureCheck {
    /// The signature verifies, covers the whole file, and nothing was changed after signing.
    pub intact: bool,
    /// Why not, when not intact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The signer's certificate subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// SHA-256 of the signer's certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// The signing time the signature carries, RFC 3339 in Vietnam time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<String>,
}

/// Checks the signature of `pdf` on its own: no records needed.
pub fn check_signature(pdf: &[u8]) -> SignatureCheck {
    let failed = |problem: String| SignatureCheck {
        intact: false,
        problem: Some(problem),
        signer: None,
        certificate: None,
        signed_at: None,
    };
    // lopdf is not hardened against every hostile file: a panic in it is a refusal, not a crash.
    let found = match std::panic::catch_unwind(|| pdf::find_signature(pdf)) {
        Ok(Ok(found)) => found,
        Ok(Err(problem)) => return failed(problem),
        Err(_) => return failed("the PDF is too damaged to read".into()),
    };
    let signed = match cms::verify(&found.cms, &found.digest) {
        Ok(signed) => signed,
        Err(problem) => return failed(problem),
    };
    let mut check = SignatureCheck {
        intact: true,
        problem: None,
        signer: Some(signed.certificate.tbs_certificate.subject.to_string()),
        certificate: Some(keys::fingerprint(&signed.certificate)),
        signed_at: signed.signing_time.map(|t| rfc3339(t.to_offset(VIETNAM))),
    };
    if !found.covers_whole_file {
        check.intact = false;
        check.problem = Some(
            "the file was changed after it was signed: the signature does not cover all of it"
                .into(),
        );
    }
    check
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_pdf() -> Vec<u8> {
        let image =
            pipeline::pdf::PdfImage::lossless(&image::DynamicImage::new_luma8(200, 280)).unwrap();
        let geometry = pipeline::geometry::PageGeometry::identity(200, 280);
        let mut packager =
            pipeline::pdf::PdfPackager::new(Vec::new(), pipeline::pdf::DocumentInfo::default())
                .unwrap();
        packager
            .add_page(pipeline::pdf::PdfPage {
                image: &image,
                dpi: 100.0,
                words: &[],
                geometry: &geometry,
            })
            .unwrap();
        packager.finish().unwrap()
    }

    #[test]
    fn a_signed_copy_verifies_and_any_changed_byte_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::development(dir.path()).unwrap();
        let original = sample_pdf();
        let copy = certify(&original, "000.00.15.H27", Some("UBND xã Tân Phú"), &signer).unwrap();
        assert!(
            copy.bytes.starts_with(&original),
            "an incremental update keeps the original bytes"
        );
        let check = check_signature(&copy.bytes);
        assert!(check.intact, "{check:?}");
        assert_eq!(
            check.certificate.as_deref(),
            Some(signer.fingerprint().as_str())
        );

        // One byte changed in the original part, in the update, and one byte appended.
        for at in [
            original.len() / 2,
            original.len() + 40,
            copy.bytes.len() - 10,
        ] {
            let mut tampered = copy.bytes.clone();
            tampered[at] ^= 0x01;
            let check = check_signature(&tampered);
            assert!(
                !check.intact,
                "byte {at} changed but the copy still checks: {check:?}"
            );
        }
        let mut longer = copy.bytes.clone();
        longer.extend_from_slice(b"%");
        let check = check_signature(&longer);
        assert!(!check.intact);
        assert!(
            check.problem.unwrap().contains("changed after"),
            "appended bytes are named"
        );
    }

    #[test]
    fn a_pdf_without_signature_or_not_a_pdf_is_told_so() {
        let check = check_signature(&sample_pdf());
        assert_eq!(
            check.problem.as_deref(),
            Some("the PDF carries no signature")
        );
        let check = check_signature(b"GIF89a not a pdf");
        assert!(check.problem.unwrap().contains("not a readable PDF"));
    }
}
