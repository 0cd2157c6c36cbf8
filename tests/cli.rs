//! The clerk's and archivist's command line, end to end: real Tesseract, real SQLite, real files, PDFs read
//! back by qpdf and pdftotext.

mod common;

use common::*;

const DOSSIER: &str = "000.00.15.H27-231128-0042";

#[test]
fn ingested_pages_are_found_by_folded_and_exact_words_and_fetched_intact() {
    let sohoa = Sohoa::new();
    let page1 = sohoa.input("001.png");
    let page2 = sohoa.input("002.jpg");
    write_png(&render_page(CERTIFICATE), &page1);
    write_jpeg(&render_page(RECEIPT), &page2);

    let report = sohoa.ingest(DOSSIER, &[&page1, &page2]);
    assert_eq!(report["dossier"], DOSSIER);
    let pages = report["pages"].as_array().unwrap();
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0]["n"], 1);
    assert_eq!(pages[1]["n"], 2);
    // Page hashes are the hashes of the scanner's original bytes.
    assert_eq!(
        pages[0]["blake3"],
        blake3_hex(&std::fs::read(&page1).unwrap())
    );
    assert_eq!(
        pages[1]["blake3"],
        blake3_hex(&std::fs::read(&page2).unwrap())
    );
    for page in pages {
        assert!(
            page["confidence"].as_f64().unwrap() > 80.0,
            "clean text OCRs confidently: {page}"
        );
        assert_eq!(page["dpi"], 300.0);
    }
    let document = report["document"].as_str().unwrap().to_owned();

    // Folded: no marks and d for đ.
    for query in ["nguyen thi huong", "dat", "GIAY CHUNG NHAN"] {
        let hits = sohoa.search(query);
        assert!(!hits.is_empty(), "{query:?} finds nothing");
        assert_eq!(hits[0]["dossier"], DOSSIER, "{query:?}");
        assert_eq!(hits[0]["page"], 1, "{query:?}");
        assert_eq!(hits[0]["document"], document.as_str());
    }
    // Exact, with marks.
    let hits = sohoa.search("Hương");
    assert_eq!(hits[0]["dossier"], DOSSIER);
    assert!(
        hits[0]["snippet"]
            .as_str()
            .unwrap()
            .contains("Nguyễn Thị Hương"),
        "{}",
        hits[0]
    );
    // English on the second page.
    let hits = sohoa.search("applicant");
    assert_eq!(
        (hits[0]["dossier"].as_str(), hits[0]["page"].as_u64()),
        (Some(DOSSIER), Some(2))
    );
    assert!(sohoa.search("kangaroo").is_empty());

    // The fetched PDF hashes to its address, passes qpdf, and gives the words back.
    let copy = sohoa.dir.path().join("copy.pdf");
    sohoa.ok(&["get", &document, "-o", copy.to_str().unwrap()]);
    assert_eq!(blake3_hex(&std::fs::read(&copy).unwrap()), document);
    assert_qpdf_clean(&copy);
    let text = pdftotext(&copy);
    for words in [
        "Nguyễn Thị Hương",
        "QUYỀN SỬ DỤNG ĐẤT",
        "Yên Thủy",
        "delivered to the applicant",
    ] {
        assert!(
            text.contains(words),
            "{words:?} missing from the PDF text:\n{text}"
        );
    }
    // It claims PDF/A-2b in its XMP metadata, with the dossier in Dublin Core, and embeds its font.
    let meta = std::process::Command::new("pdfinfo")
        .arg("-meta")
        .arg(&copy)
        .output()
        .expect("pdfinfo runs");
    let meta = String::from_utf8_lossy(&meta.stdout);
    assert!(meta.contains("<pdfaid:part>2</pdfaid:part>"), "{meta}");
    assert!(
        meta.contains("<pdfaid:conformance>B</pdfaid:conformance>"),
        "{meta}"
    );
    assert!(
        meta.contains("<dc:identifier>000.00.15.H27-231128-0042</dc:identifier>"),
        "{meta}"
    );
    // And the dossier's codes in sohoa's declared schema.
    for property in [
        "<sohoa:dossier>000.00.15.H27-231128-0042</sohoa:dossier>",
        "<sohoa:procedure>1.001234</sohoa:procedure>",
        "<sohoa:unit>000.00.15.H27</sohoa:unit>",
    ] {
        assert!(meta.contains(property), "{property} missing: {meta}");
    }
    assert_fonts_embedded(&copy);
    // Page masters are fetched by their hash too.
    let master = sohoa.dir.path().join("page1.png");
    let page_hash = pages[0]["blake3"].as_str().unwrap();
    sohoa.ok(&["get", page_hash, "-o", master.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(&master).unwrap(),
        std::fs::read(&page1).unwrap()
    );
}

#[test]
fn a_corrupt_page_is_named_kept_in_its_place_and_replaced_by_its_rescan() {
    let sohoa = Sohoa::new();
    let good = sohoa.input("001.png");
    let corrupt = sohoa.input("002.png");
    let after = sohoa.input("003.png");
    write_png(&render_page(CERTIFICATE), &good);
    write_png(&render_page(RECEIPT), &after);
    // A scan cut off mid-transfer: a valid PNG header, then nothing.
    let full = std::fs::read(&good).unwrap();
    std::fs::write(&corrupt, &full[..full.len() / 3]).unwrap();

    let output = sohoa.ingest_output(DOSSIER, &[&good, &corrupt, &after]);
    assert_eq!(output.status.code(), Some(2), "stored, with a failed page");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("page 2 (") && stderr.contains("002.png"),
        "names the page and file: {stderr}"
    );
    assert!(
        stderr.contains("cannot decode the PNG image"),
        "says why: {stderr}"
    );
    assert!(stderr.contains("replace-page"), "says what to do: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let document = report["document"].as_str().unwrap().to_owned();
    assert_eq!(report["pages"][1]["flags"], serde_json::json!(["failed"]));
    assert_eq!(report["failed"][0]["n"], 2);

    // Its neighbours are stored, read and found; the PDF holds them alone.
    assert_eq!(
        sohoa.search("nguyen thi huong")[0]["page"].as_u64(),
        Some(1)
    );
    assert_eq!(sohoa.search("applicant")[0]["page"].as_u64(), Some(3));
    let pdf = sohoa.get(&document, "partial.pdf");
    let text = pdftotext(&pdf);
    assert!(
        text.contains("Nguyễn Thị Hương") && text.contains("applicant"),
        "{text}"
    );
    // What was delivered for the failed page is kept, byte for byte.
    let kept = sohoa.get(report["pages"][1]["blake3"].as_str().unwrap(), "kept.png");
    assert_eq!(
        std::fs::read(kept).unwrap(),
        std::fs::read(&corrupt).unwrap()
    );

    // The rescan replaces it: a complete document.
    let rescan = sohoa.input("002-rescan.png");
    write_png(&render_page(LETTER), &rescan);
    let replaced = sohoa.run(&[
        "replace-page",
        "--json",
        "--document",
        &document,
        "--page",
        "2",
        rescan.to_str().unwrap(),
    ]);
    assert!(
        replaced.status.success(),
        "{}",
        String::from_utf8_lossy(&replaced.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&replaced.stdout).unwrap();
    assert!(report.get("failed").is_none(), "{report}");
    assert_eq!(sohoa.search("tran van binh")[0]["page"].as_u64(), Some(2));
}

#[test]
fn exact_spelling_ranks_first_in_both_directions() {
    let sohoa = Sohoa::new();
    let marked = sohoa.input("marked.png");
    let plain = sohoa.input("plain.png");
    write_png(&render_page(&["Người nộp hồ sơ: bà Hương"]), &marked);
    write_png(&render_page(&["Applicant name: Mrs Huong"]), &plain);
    sohoa.ingest("000.00.15.H27-231128-0001", &[&marked]);
    sohoa.ingest("000.00.15.H27-231128-0002", &[&plain]);

    let hits = sohoa.search("Hương");
    assert_eq!(hits.len(), 2, "folding finds both: {hits:?}");
    assert_eq!(hits[0]["dossier"], "000.00.15.H27-231128-0001");
    let hits = sohoa.search("huong");
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0]["dossier"], "000.00.15.H27-231128-0002");
}

#[test]
fn multi_page_tiffs_and_folders_become_pages_in_order() {
    let sohoa = Sohoa::new();
    let folder = sohoa.input("scans");
    std::fs::create_dir_all(&folder).unwrap();
    write_tiff(
        &[
            render_page(&["Trang một: đơn đề nghị"]),
            render_page(&["Trang hai: giấy ủy quyền"]),
        ],
        &folder.join("01.tif"),
    );
    write_png(
        &render_page(&["Trang ba: biên nhận"]),
        &folder.join("02.png"),
    );
    std::fs::write(folder.join("scanner-log.txt"), "not a page").unwrap();

    let report = sohoa.ingest(DOSSIER, &[&folder]);
    let pages = report["pages"].as_array().unwrap();
    assert_eq!(pages.len(), 3);
    assert_ne!(
        pages[0]["blake3"], pages[1]["blake3"],
        "each TIFF page has its own master"
    );
    for (query, page) in [("don de nghi", 1), ("giay uy quyen", 2), ("bien nhan", 3)] {
        let hits = sohoa.search(query);
        assert_eq!(hits[0]["page"], page, "{query:?}: {hits:?}");
    }
}

#[test]
fn ingesting_the_same_scans_twice_stores_one_document() {
    let sohoa = Sohoa::new();
    let page = sohoa.input("001.png");
    write_png(&render_page(CERTIFICATE), &page);
    let first = sohoa.ingest(DOSSIER, &[&page]);
    let second = sohoa.ingest(DOSSIER, &[&page]);
    assert_eq!(
        first["document"], second["document"],
        "same pages, same PDF bytes"
    );
    assert_eq!(sohoa.search("nguyen thi huong").len(), 1);
}

#[test]
fn bad_codes_and_a_conflicting_dossier_are_refused_with_the_field_named() {
    let sohoa = Sohoa::new();
    let page = sohoa.input("001.png");
    write_png(&render_page(RECEIPT), &page);
    let path = page.to_str().unwrap();

    let output = sohoa.run(&[
        "ingest",
        "--dossier",
        "0042",
        "--procedure",
        "1.001234",
        "--unit",
        "000.00.15.H27",
        path,
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("dossier code '0042' is not valid")
            && stderr.contains("000.00.15.H27-231128-0042"),
        "{stderr}"
    );

    sohoa.ingest(DOSSIER, &[&page]);
    let output = sohoa.run(&[
        "ingest",
        "--dossier",
        DOSSIER,
        "--procedure",
        "2.000815",
        "--unit",
        "000.00.15.H27",
        path,
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("already registered with procedure 1.001234"),
        "{stderr}"
    );
}

#[test]
fn a_tampered_object_is_refused_not_served() {
    let sohoa = Sohoa::new();
    let page = sohoa.input("001.png");
    write_png(&render_page(RECEIPT), &page);
    let report = sohoa.ingest(DOSSIER, &[&page]);
    let document = report["document"].as_str().unwrap();
    let stored = sohoa
        .data()
        .join("objects/blake3")
        .join(&document[..2])
        .join(document);
    let mut bytes = std::fs::read(&stored).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xFF;
    std::fs::write(&stored, bytes).unwrap();

    let out = sohoa.dir.path().join("copy.pdf");
    let output = sohoa.run(&["get", document, "-o", out.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("failed its integrity check"), "{stderr}");
    assert!(!out.exists(), "nothing written under the requested name");
}

#[test]
fn the_index_is_a_view_rebuilt_from_the_database() {
    let sohoa = Sohoa::new();
    let page = sohoa.input("001.png");
    write_png(&render_page(CERTIFICATE), &page);
    sohoa.ingest(DOSSIER, &[&page]);
    std::fs::remove_dir_all(sohoa.data().join("index")).unwrap();
    // A lost index is rebuilt on the next search.
    assert_eq!(sohoa.search("nguyen thi huong").len(), 1);
    assert!(sohoa.ok(&["reindex"]).contains("1 pages"));
    assert_eq!(sohoa.search("nguyen thi huong").len(), 1);
}

#[test]
fn black_and_white_pages_are_stored_with_group_4_and_read_back() {
    let sohoa = Sohoa::new();
    let mut page = render_page(LETTER);
    for p in page.pixels_mut() {
        p.0[0] = if p.0[0] < 128 { 0 } else { 255 };
    }
    let path = sohoa.input("bilevel.tif");
    write_tiff(&[page], &path);
    let report = sohoa.ingest("000.00.15.H27-231128-0077", &[&path]);
    let pdf = sohoa.get(report["document"].as_str().unwrap(), "bilevel.pdf");
    let list = std::process::Command::new("pdfimages")
        .arg("-list")
        .arg(&pdf)
        .output()
        .expect("pdfimages runs");
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains("ccitt"), "{list}");
    assert_qpdf_clean(&pdf);
    let text = pdftotext(&pdf);
    assert!(text.contains("Trần Văn Bình"), "{text}");
}

/// `pdfimages -list` rows: (encoding, x-ppi, y-ppi) of each image.
fn pdf_images(pdf: &std::path::Path) -> Vec<(String, String, String)> {
    let list = std::process::Command::new("pdfimages")
        .arg("-list")
        .arg(pdf)
        .output()
        .expect("pdfimages runs");
    String::from_utf8_lossy(&list.stdout)
        .lines()
        .skip(2)
        .map(|row| {
            // page num type width height color comp bpc enc interp object ID x-ppi y-ppi size ratio
            let c: Vec<&str> = row.split_whitespace().collect();
            (c[8].to_owned(), c[12].to_owned(), c[13].to_owned())
        })
        .collect()
}

/// Page size in points from `pdfinfo`.
fn page_size(pdf: &std::path::Path) -> (f64, f64) {
    let info = std::process::Command::new("pdfinfo")
        .arg(pdf)
        .output()
        .expect("pdfinfo runs");
    let info = String::from_utf8_lossy(&info.stdout);
    let line = info
        .lines()
        .find(|l| l.starts_with("Page size:"))
        .unwrap_or_else(|| panic!("{info}"));
    let numbers: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

#[test]
fn grey_scans_go_in_as_one_jpeg_pass_at_true_size_and_scanner_jpegs_unchanged() {
    let sohoa = Sohoa::new();
    // Paper as a scanner sees it: a grey tone with noise under the text.
    let mut page = render_page(LETTER);
    for (x, y, p) in page.enumerate_pixels_mut() {
        let noise = ((x.wrapping_mul(7919) ^ y.wrapping_mul(104_729)) % 25) as u8;
        p.0[0] = p.0[0].saturating_sub(20 + noise);
    }
    let (width, height) = (page.width() as f64, page.height() as f64);

    // A lossless grey scan at 200 dpi: one JPEG pass, at 100% scale.
    let png = sohoa.input("grey.png");
    write_png_at(&page, &png, 200.0);
    let report = sohoa.ingest("000.00.15.H27-231128-0081", &[&png]);
    let pdf = sohoa.get(report["document"].as_str().unwrap(), "grey.pdf");
    let images = pdf_images(&pdf);
    assert_eq!(images.len(), 1, "{images:?}");
    assert_eq!(images[0], ("jpeg".into(), "200".into(), "200".into()));
    let (w, h) = page_size(&pdf);
    assert!((w - width / 200.0 * 72.0).abs() < 0.5, "{w} pt wide");
    assert!((h - height / 200.0 * 72.0).abs() < 0.5, "{h} pt high");
    assert!(pdftotext(&pdf).contains("Trần Văn Bình"));
    let jpeg_size = std::fs::metadata(&pdf).unwrap().len();

    // The same page kept lossless when the operator asks: Deflate, and larger.
    let lossless = sohoa
        .command()
        .env("SOHOA_PACKAGING__IMAGES", "lossless")
        .args(["ingest", "--json", "--dossier", "000.00.15.H27-231128-0082"])
        .args(["--procedure", "1.001234", "--unit", "000.00.15.H27"])
        .arg(&png)
        .output()
        .unwrap();
    assert!(
        lossless.status.success(),
        "{}",
        String::from_utf8_lossy(&lossless.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&lossless.stdout).unwrap();
    let pdf = sohoa.get(report["document"].as_str().unwrap(), "lossless.pdf");
    assert_eq!(pdf_images(&pdf)[0].0, "image", "Flate shows as 'image'");
    assert!(std::fs::metadata(&pdf).unwrap().len() > jpeg_size);

    // A scanner JPEG is embedded byte for byte: never a second lossy pass.
    let jpeg = sohoa.input("scan.jpg");
    write_jpeg(&page, &jpeg);
    let report = sohoa.ingest("000.00.15.H27-231128-0083", &[&jpeg]);
    let pdf = sohoa.get(report["document"].as_str().unwrap(), "scan.pdf");
    let list = std::process::Command::new("pdfimages")
        .arg("-list")
        .arg(&pdf)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    let object = list
        .lines()
        .nth(2)
        .unwrap()
        .split_whitespace()
        .nth(10)
        .unwrap()
        .to_owned();
    // The stream as stored, with sohoa's lossless deflate undone when it applied one.
    let stored = std::process::Command::new("qpdf")
        .args(["--raw-stream-data"])
        .arg(format!("--show-object={object}"))
        .arg(&pdf)
        .output()
        .unwrap();
    assert!(
        stored.status.success(),
        "{}",
        String::from_utf8_lossy(&stored.stderr)
    );
    let mut inflated = Vec::new();
    let stored = match std::io::Read::read_to_end(
        &mut flate2::read::ZlibDecoder::new(stored.stdout.as_slice()),
        &mut inflated,
    ) {
        Ok(_) => inflated,
        Err(_) => stored.stdout,
    };
    assert!(
        stored == std::fs::read(&jpeg).unwrap(),
        "the scanner's JPEG is in the PDF unchanged ({} bytes stored)",
        stored.len()
    );

    // A bad quality setting is refused, not clamped silently.
    let bad = sohoa
        .command()
        .env("SOHOA_PACKAGING__JPEG_QUALITY", "0")
        .args(["search", "x"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("jpeg_quality"));
}
