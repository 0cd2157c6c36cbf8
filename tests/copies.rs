//! Certified copies, checked with real tools: `pdfsig` (poppler, NSS) verifies the signature, `qpdf`,
//! `pdffonts` and `pdftotext` read the copy, and one changed byte is caught by both `pdfsig` and
//! `sohoa verify`; over real HTTP as well.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const DOSSIER: &str = "000.00.15.H27-231128-0042";

fn pdfsig(pdf: &Path) -> String {
    let output = Command::new("pdfsig")
        .arg(pdf)
        .output()
        .expect("pdfsig runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// One document of two OCR'd pages, and its hash.
fn archived_document(sohoa: &Sohoa) -> String {
    let first = sohoa.input("p1.png");
    write_png(&render_page(CERTIFICATE), &first);
    let second = sohoa.input("p2.png");
    write_png(&render_page(RECEIPT), &second);
    let report = sohoa.ingest(DOSSIER, &[&first, &second]);
    report["document"].as_str().unwrap().to_owned()
}

#[test]
fn a_certified_copy_is_signed_verifiable_and_any_change_is_caught() {
    let sohoa = Sohoa::new();
    let document = archived_document(&sohoa);
    let copy = sohoa.input("copy.pdf");
    sohoa.ok(&["copy", &document, "-o", copy.to_str().unwrap()]);

    // poppler's pdfsig: the signature is valid, of the expected type, and covers the whole file.
    let report = pdfsig(&copy);
    assert!(report.contains("Signature is Valid."), "{report}");
    assert!(report.contains("Total document signed"), "{report}");
    assert!(report.contains("adbe.pkcs7.detached"), "{report}");
    assert!(
        report.contains("NOT FOR LEGAL USE"),
        "the development certificate says so: {report}"
    );

    // A well-formed PDF, fonts embedded, the certification line and the OCR text both extract.
    assert_qpdf_clean(&copy);
    assert_fonts_embedded(&copy);
    let text = pdftotext(&copy);
    assert!(text.contains("SAO Y"), "{text}");
    assert!(text.contains("000.00.15.H27"), "{text}");
    assert!(
        text.contains("+07:00"),
        "the signing time is in Vietnam time: {text}"
    );
    assert!(text.contains("KHÔNG CÓ GIÁ TRỊ PHÁP LÝ"), "{text}");
    assert!(text.contains("Nguyễn Thị Hương"), "{text}");

    // The archived document is the copy's first revision, byte for byte.
    let original = std::fs::read(sohoa.get(&document, "original.pdf")).unwrap();
    let bytes = std::fs::read(&copy).unwrap();
    assert!(bytes.starts_with(&original));

    // sohoa verify: valid, with the record of the copy.
    let verdict: serde_json::Value =
        serde_json::from_str(&sohoa.ok(&["verify", "--json", copy.to_str().unwrap()])).unwrap();
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(verdict["copy"]["document"], document.as_str());
    assert_eq!(verdict["copy"]["unit"], "000.00.15.H27");

    // Asking again serves the same copy, by the document's hash or by the copy's own.
    let copy_hash = blake3_hex(&bytes);
    let again = sohoa.input("again.pdf");
    sohoa.ok(&["copy", &document, "-o", again.to_str().unwrap()]);
    assert_eq!(std::fs::read(&again).unwrap(), bytes);
    sohoa.ok(&["copy", &copy_hash, "-o", again.to_str().unwrap()]);
    assert_eq!(std::fs::read(&again).unwrap(), bytes);

    // One byte changed inside the archived document's pages: both pdfsig and sohoa verify refuse it.
    let mut tampered = bytes.clone();
    tampered[original.len() / 2] ^= 0x20;
    let tampered_path = sohoa.input("tampered.pdf");
    std::fs::write(&tampered_path, &tampered).unwrap();
    let report = pdfsig(&tampered_path);
    assert!(!report.contains("Signature is Valid."), "{report}");
    let output = sohoa.run(&["verify", tampered_path.to_str().unwrap()]);
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.starts_with("NOT VALID"), "{said}");

    // Bytes appended after signing: the signature no longer covers the whole file.
    let mut longer = bytes.clone();
    longer.extend_from_slice(b"\n% appended\n");
    std::fs::write(&tampered_path, &longer).unwrap();
    let output = sohoa.run(&["verify", tampered_path.to_str().unwrap()]);
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("changed after it was signed"), "{said}");

    // The archived PDF itself is not a certified copy.
    let output = sohoa.run(&[
        "verify",
        sohoa.get(&document, "plain.pdf").to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("no signature"));
}

#[test]
fn a_unit_signs_with_its_own_rsa_certificate_and_name() {
    let sohoa = Sohoa::new();
    let key = sohoa.input("unit.key.pem");
    let certificate = sohoa.input("unit.crt.pem");
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj",
        ])
        .arg("/CN=UBND xa Tan Phu/O=Tinh Hoa Binh")
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&certificate)
        .output()
        .expect("openssl runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let settings = sohoa.input("sohoa.toml");
    std::fs::write(
        &settings,
        format!(
            "[units.\"000.00.15.H27\"]\nname = \"UBND xã Tân Phú\"\ncertificate = \"{}\"\nkey = \"{}\"\n",
            certificate.display(),
            key.display()
        ),
    )
    .unwrap();
    let document = archived_document(&sohoa);
    let copy = sohoa.input("copy.pdf");
    sohoa.ok(&[
        "--config",
        settings.to_str().unwrap(),
        "copy",
        &document,
        "-o",
        copy.to_str().unwrap(),
    ]);
    let report = pdfsig(&copy);
    assert!(report.contains("Signature is Valid."), "{report}");
    assert!(report.contains("UBND xa Tan Phu"), "{report}");
    let text = pdftotext(&copy);
    assert!(text.contains("UBND xã Tân Phú (000.00.15.H27)"), "{text}");
    assert!(
        !text.contains("PHÁP LÝ"),
        "a unit's own certificate is not labelled as a test one: {text}"
    );
    let verdict: serde_json::Value = serde_json::from_str(&sohoa.ok(&[
        "--config",
        settings.to_str().unwrap(),
        "verify",
        "--json",
        copy.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(verdict["copy"]["development"], false);

    // A key that does not match the certificate is refused with a reason, not used.
    let other_key = sohoa.input("other.key.pem");
    let made = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&other_key)
        .output()
        .unwrap();
    assert!(made.status.success());
    std::fs::write(
        &settings,
        format!(
            "[units.\"000.00.15.H27\"]\nname = \"UBND xã Tân Phú\"\ncertificate = \"{}\"\nkey = \"{}\"\n",
            certificate.display(),
            other_key.display()
        ),
    )
    .unwrap();
    let other = sohoa.ingest(DOSSIER, &[&sohoa.input("p2.png")]);
    let output = sohoa.run(&[
        "--config",
        settings.to_str().unwrap(),
        "copy",
        other["document"].as_str().unwrap(),
        "-o",
        copy.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("is not the key of the certificate"), "{said}");
}

#[test]
fn copies_over_http_by_document_or_copy_hash_and_verify() {
    let sohoa = Sohoa::new();
    let document = archived_document(&sohoa);
    let server = sohoa.serve();
    let client = sohoa.client("system");

    let response = client
        .get(format!("{}/v1/copies/{document}", server.url))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    let copy_hash = response.headers()["x-sohoa-copy"]
        .to_str()
        .unwrap()
        .to_owned();
    let bytes = response.bytes().unwrap().to_vec();
    assert_eq!(blake3_hex(&bytes), copy_hash);
    let path = sohoa.input("copy.pdf");
    std::fs::write(&path, &bytes).unwrap();
    assert!(pdfsig(&path).contains("Signature is Valid."));

    let by_copy = client
        .get(format!("{}/v1/copies/{copy_hash}", server.url))
        .send()
        .unwrap();
    assert_eq!(by_copy.status(), 200);
    assert_eq!(by_copy.bytes().unwrap().to_vec(), bytes);

    let verdict: serde_json::Value = client
        .post(format!("{}/v1/verify", server.url))
        .body(bytes.clone())
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(verdict["copy"]["blake3"], copy_hash.as_str());

    let mut tampered = bytes.clone();
    let at = tampered.len() / 3;
    tampered[at] ^= 0x01;
    let verdict: serde_json::Value = client
        .post(format!("{}/v1/verify", server.url))
        .body(tampered)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(verdict["valid"], false, "{verdict}");
    assert!(verdict["signature"]["problem"].is_string(), "{verdict}");

    let garbage = client
        .post(format!("{}/v1/verify", server.url))
        .body("this is not a PDF")
        .send()
        .unwrap();
    assert_eq!(garbage.status(), 200);
    let verdict: serde_json::Value = garbage.json().unwrap();
    assert_eq!(verdict["valid"], false);

    let unknown = client
        .get(format!("{}/v1/copies/{}", server.url, "0".repeat(64)))
        .send()
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let bad = client
        .get(format!("{}/v1/copies/not-a-hash", server.url))
        .send()
        .unwrap();
    assert_eq!(bad.status(), 400);
}
