//! PDFs from scan-to-PDF devices: each page's image is taken out at its native resolution (a JPEG byte for
//! byte), and PDFs that hold no scan, no pages, a password or damage are refused with a reason. The PDFs are
//! made by real tools: sohoa's own packaging (JPEG, CCITT G4 and Flate images with a text layer, as scanners
//! with OCR write them), qpdf (encryption, and hand-written PDFs given a proper cross-reference table).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Packages `pages` with sohoa (in a scratch archive) and returns the PDF, as a scanner would deliver it.
fn scanner_pdf(sohoa: &Sohoa, name: &str, pages: &[&Path], env: &[(&str, &str)]) -> PathBuf {
    let scratch = Sohoa::new();
    let mut command = scratch.command();
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command
        .args(["ingest", "--json", "--dossier", "000.00.15.H27-231128-0900"])
        .args(["--procedure", "1.001234", "--unit", "000.00.15.H27"])
        .args(pages)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let pdf = scratch.get(report["document"].as_str().unwrap(), "scan.pdf");
    let kept = sohoa.input(name);
    std::fs::copy(pdf, &kept).unwrap();
    kept
}

/// A PDF written by hand, then given a correct cross-reference table by qpdf.
fn hand_written_pdf(sohoa: &Sohoa, name: &str, objects: &[&str]) -> PathBuf {
    let mut text = String::from("%PDF-1.7\n");
    for (i, object) in objects.iter().enumerate() {
        text.push_str(&format!("{} 0 obj\n{object}\nendobj\n", i + 1));
    }
    text.push_str("trailer\n<< /Root 1 0 R >>\n%%EOF\n");
    let rough = sohoa.input(&format!("rough-{name}"));
    std::fs::write(&rough, text).unwrap();
    let fixed = sohoa.input(name);
    let status = Command::new("qpdf")
        .arg(&rough)
        .arg(&fixed)
        .status()
        .unwrap();
    assert!(fixed.exists(), "qpdf wrote {name} (status {status})");
    fixed
}

fn refusal(sohoa: &Sohoa, dossier: &str, file: &Path) -> String {
    let output = sohoa.ingest_output(dossier, &[file]);
    assert!(!output.status.success(), "{} was accepted", file.display());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn scanned_pdfs_give_back_their_page_images_at_native_resolution() {
    let sohoa = Sohoa::new();
    let jpeg = sohoa.input("letter.jpg");
    write_jpeg(&render_page(LETTER), &jpeg);
    let png = sohoa.input("receipt.png");
    write_png(&render_page(RECEIPT), &png);
    let pdf = scanner_pdf(&sohoa, "two-pages.pdf", &[&jpeg, &png], &[]);

    let report = sohoa.ingest("000.00.15.H27-231128-0101", &[&pdf]);
    let pages = report["pages"].as_array().unwrap();
    assert_eq!(pages.len(), 2, "{report}");
    // The JPEG comes out of the PDF byte for byte: the page master is the scanner's own JPEG.
    assert_eq!(
        pages[0]["blake3"].as_str().unwrap(),
        blake3_hex(&std::fs::read(&jpeg).unwrap())
    );
    assert!(
        pages.iter().all(|p| !p["flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f == "low-resolution"))),
        "300 dpi from the page size: {report}"
    );
    let hits = sohoa.search("tran van binh");
    assert_eq!(hits[0]["page"].as_u64(), Some(1), "{hits:?}");
    let hits = sohoa.search("applicant");
    assert_eq!(hits[0]["page"].as_u64(), Some(2), "{hits:?}");
    // The PDF itself is kept too, as the file the pages came from.
    let kept = sohoa.get(&blake3_hex(&std::fs::read(&pdf).unwrap()), "kept.pdf");
    assert_eq!(std::fs::read(kept).unwrap(), std::fs::read(&pdf).unwrap());
}

#[test]
fn group_4_and_deflated_page_images_are_read_too() {
    let sohoa = Sohoa::new();
    let mut bilevel = render_page(CERTIFICATE);
    for p in bilevel.pixels_mut() {
        p.0[0] = if p.0[0] < 128 { 0 } else { 255 };
    }
    let tiff = sohoa.input("bilevel.tif");
    write_tiff(&[bilevel], &tiff);
    let g4 = scanner_pdf(&sohoa, "g4.pdf", &[&tiff], &[]);
    let grey = sohoa.input("grey.png");
    write_png(&render_page(LETTER), &grey);
    let flate = scanner_pdf(
        &sohoa,
        "flate.pdf",
        &[&grey],
        &[("SOHOA_PACKAGING__IMAGES", "lossless")],
    );

    sohoa.ingest("000.00.15.H27-231128-0102", &[&g4, &flate]);
    let hits = sohoa.search("nguyen thi huong");
    assert_eq!(hits[0]["page"].as_u64(), Some(1), "{hits:?}");
    let hits = sohoa.search("tran van binh");
    assert_eq!(hits[0]["page"].as_u64(), Some(2), "{hits:?}");
}

#[test]
fn pdfs_without_a_scan_or_readable_content_are_refused_with_a_reason() {
    let sohoa = Sohoa::new();
    let jpeg = sohoa.input("letter.jpg");
    write_jpeg(&render_page(LETTER), &jpeg);
    let pdf = scanner_pdf(&sohoa, "scan.pdf", &[&jpeg], &[]);

    // Password-protected.
    let locked = sohoa.input("locked.pdf");
    let status = Command::new("qpdf")
        .args(["--encrypt", "mat-khau", "owner", "256", "--"])
        .arg(&pdf)
        .arg(&locked)
        .status()
        .unwrap();
    assert!(status.success());
    let said = refusal(&sohoa, "000.00.15.H27-231128-0103", &locked);
    assert!(
        said.contains("locked.pdf") && said.contains("password"),
        "{said}"
    );

    // Cut off in the middle (a transfer that stopped).
    let bytes = std::fs::read(&pdf).unwrap();
    let cut = sohoa.input("cut.pdf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let said = refusal(&sohoa, "000.00.15.H27-231128-0104", &cut);
    assert!(said.contains("cut.pdf"), "{said}");
    assert!(
        said.contains("damaged") || said.contains("cut short"),
        "{said}"
    );

    // Typed on a computer: text, no image.
    let typed = hand_written_pdf(
        &sohoa,
        "typed.pdf",
        &[
            "<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
            "<< /Length 44 >>\nstream\nBT /F1 12 Tf 72 770 Td (Don de nghi) Tj ET\nendstream",
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ],
    );
    let said = refusal(&sohoa, "000.00.15.H27-231128-0105", &typed);
    assert!(
        said.contains("typed.pdf") && said.contains("no scanned image"),
        "{said}"
    );

    // No pages at all.
    let empty = hand_written_pdf(
        &sohoa,
        "empty.pdf",
        &[
            "<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [] /Count 0 >>",
        ],
    );
    let said = refusal(&sohoa, "000.00.15.H27-231128-0106", &empty);
    assert!(
        said.contains("empty.pdf") && said.contains("no pages"),
        "{said}"
    );

    // A page declaring an image far larger than any real page.
    let poster = hand_written_pdf(
        &sohoa,
        "poster.pdf",
        &[
            "<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 14400 14400] /Contents 4 0 R /Resources << /XObject << /Im0 5 0 R >> >> >>",
            "<< /Length 31 >>\nstream\nq 14400 0 0 14400 0 0 cm /Im0 Do Q\nendstream",
            "<< /Type /XObject /Subtype /Image /Width 100000 /Height 100000 /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode /Length 8 >>\nstream\nxxxxxxxx\nendstream",
        ],
    );
    let said = refusal(&sohoa, "000.00.15.H27-231128-0107", &poster);
    assert!(
        said.contains("poster.pdf") && said.contains("100000 x 100000"),
        "{said}"
    );

    // A huge MediaBox and no image: refused as not a scan, without allocating for the box.
    let huge = hand_written_pdf(
        &sohoa,
        "huge-box.pdf",
        &[
            "<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 1000000000 1000000000] >>",
        ],
    );
    let said = refusal(&sohoa, "000.00.15.H27-231128-0108", &huge);
    assert!(
        said.contains("huge-box.pdf") && said.contains("no scanned image"),
        "{said}"
    );

    // Nothing was recorded for any of them.
    assert!(sohoa.search("tran van binh").is_empty());
}

#[test]
fn a_pdf_whose_cross_reference_table_is_broken_is_repaired_and_read() {
    let sohoa = Sohoa::new();
    let jpeg = sohoa.input("letter.jpg");
    write_jpeg(&render_page(LETTER), &jpeg);
    let pdf = scanner_pdf(&sohoa, "scan.pdf", &[&jpeg], &[]);
    let mut bytes = std::fs::read(&pdf).unwrap();
    // Point startxref at nonsense, as a badly written or badly copied file does.
    let at = bytes.windows(9).rposition(|w| w == b"startxref").unwrap() + 10;
    let end = at
        + bytes[at..]
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap();
    for b in &mut bytes[at..end] {
        *b = b'1';
    }
    let broken = sohoa.input("broken-xref.pdf");
    std::fs::write(&broken, &bytes).unwrap();
    let report = sohoa.ingest("000.00.15.H27-231128-0110", &[&broken]);
    assert_eq!(
        report["pages"][0]["blake3"].as_str().unwrap(),
        blake3_hex(&std::fs::read(&jpeg).unwrap()),
        "the scan inside is recovered byte for byte"
    );
}
