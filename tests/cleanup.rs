//! Page cleanup through the real binary and real Tesseract: turned, skewed, blank, stamped and coarse
//! pages each come out with the right outcome and the right flags.

mod common;

use std::process::Command;

use common::{LETTER, Sohoa, pdftotext, write_png, write_png_at};
use image::{GrayImage, Luma, Rgb, RgbImage, imageops};
use imageproc::geometric_transformations::{Border, Interpolation, rotate_about_center};

fn flags(page: &serde_json::Value) -> Vec<&str> {
    page["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect()
}

fn pdf_pages(pdf: &std::path::Path) -> usize {
    let output = Command::new("pdfinfo")
        .arg(pdf)
        .output()
        .expect("pdfinfo runs");
    let info = String::from_utf8(output.stdout).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .map(|n| n.trim().parse().unwrap())
        .expect("pdfinfo gives a page count")
}

/// Folds what pdftotext gives to compare words regardless of line breaks.
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn pages_turned_a_quarter_a_half_and_three_quarters_come_out_upright() {
    let sohoa = Sohoa::new();
    let upright = common::render_page(LETTER);
    let turned = [
        imageops::rotate90(&upright),
        imageops::rotate180(&upright),
        imageops::rotate270(&upright),
    ];
    let mut paths = Vec::new();
    for (i, page) in turned.iter().enumerate() {
        let path = sohoa.input(&format!("turned-{i}.png"));
        write_png(page, &path);
        paths.push(path);
    }
    let report = sohoa.ingest(
        "000.00.15.H27-231128-0101",
        &paths.iter().map(|p| p.as_path()).collect::<Vec<_>>(),
    );
    let pages = report["pages"].as_array().unwrap();
    // Each page is turned back by what makes a full turn with how it was turned.
    let rotated: Vec<u64> = pages
        .iter()
        .map(|p| p["rotated"].as_u64().unwrap())
        .collect();
    assert_eq!(rotated, [270, 180, 90]);
    for page in pages {
        assert!(flags(page).contains(&"rotated"), "{page}");
        assert!(page["confidence"].as_f64().unwrap() > 80.0, "{page}");
    }

    // The PDF shows each page upright, and its text reads as written.
    let pdf = sohoa.get(report["document"].as_str().unwrap(), "turned.pdf");
    let text = words(&pdftotext(&pdf));
    assert_eq!(text.matches("Trần Văn Bình").count(), 3, "{text}");
    assert_eq!(text.matches("trích lục khai sinh").count(), 3, "{text}");
    // And the archivist finds the dossier by a folded word from a page that came in upside down.
    let hits = sohoa.search("tran van binh");
    assert!(
        hits.iter()
            .any(|h| h["dossier"] == "000.00.15.H27-231128-0101"),
        "{hits:?}"
    );
}

#[test]
fn a_skewed_page_is_straightened_and_read() {
    let sohoa = Sohoa::new();
    let upright = common::render_page(LETTER);
    // A sheet fed in crooked: 4 degrees clockwise.
    let skewed: GrayImage = rotate_about_center(
        &upright,
        4f32.to_radians(),
        Interpolation::Bilinear,
        Border::Constant(Luma([255])),
    );
    let path = sohoa.input("skewed.png");
    write_png(&skewed, &path);
    let report = sohoa.ingest("000.00.15.H27-231128-0102", &[&path]);
    let page = &report["pages"][0];
    assert!(flags(page).contains(&"deskewed"), "{page}");
    let deskewed = page["deskewed"].as_f64().unwrap();
    assert!(
        (deskewed + 4.0).abs() <= 0.5,
        "turned back by {deskewed}, expected about -4"
    );
    assert!(page["confidence"].as_f64().unwrap() > 80.0, "{page}");
    let pdf = sohoa.get(report["document"].as_str().unwrap(), "skewed.pdf");
    let text = words(&pdftotext(&pdf));
    assert!(
        text.contains("Họ và tên người yêu cầu: Trần Văn Bình"),
        "{text}"
    );
}

/// The back of a single-sided sheet: paper grain, scanner specks and the text of the front showing
/// through faintly.
fn noisy_blank_back() -> GrayImage {
    let front = common::render_page(LETTER);
    let mirrored = imageops::flip_horizontal(&front);
    let mut back = GrayImage::from_pixel(front.width(), front.height(), Luma([236]));
    let mut seed = 12_345u32;
    for (x, y, p) in back.enumerate_pixels_mut() {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let grain = (seed >> 16) % 9;
        let bleed = 255 - mirrored.get_pixel(x, y).0[0];
        // Bleed-through: a tenth of the ink's darkness.
        let level = 240u32.saturating_sub(grain + u32::from(bleed) / 10);
        *p = Luma([level as u8]);
        if (seed >> 8).is_multiple_of(5000) {
            *p = Luma([30]); // a dark speck of dust
        }
    }
    back
}

#[test]
fn a_noisy_blank_back_is_flagged_left_out_of_the_pdf_and_kept() {
    let sohoa = Sohoa::new();
    let front = sohoa.input("1-front.png");
    write_png(&common::render_page(LETTER), &front);
    let back = sohoa.input("2-back.png");
    write_png(&noisy_blank_back(), &back);
    let report = sohoa.ingest("000.00.15.H27-231128-0103", &[&front, &back]);
    let pages = report["pages"].as_array().unwrap();
    assert!(!flags(&pages[0]).contains(&"blank"), "{}", pages[0]);
    assert_eq!(pages[0]["pdf_page"], 1);
    assert!(flags(&pages[1]).contains(&"blank"), "{}", pages[1]);
    assert!(pages[1].get("pdf_page").is_none(), "{}", pages[1]);

    let pdf = sohoa.get(report["document"].as_str().unwrap(), "out.pdf");
    assert_eq!(pdf_pages(&pdf), 1, "the blank back is not in the PDF");
    // Nothing the clerk scanned is thrown away: the blank page's master is stored, byte for byte.
    let master = sohoa.get(pages[1]["blake3"].as_str().unwrap(), "back-master.png");
    assert_eq!(
        std::fs::read(&master).unwrap(),
        std::fs::read(&back).unwrap()
    );
}

#[test]
fn blank_pages_go_into_the_pdf_when_asked() {
    let sohoa = Sohoa::new();
    let front = sohoa.input("1-front.png");
    write_png(&common::render_page(LETTER), &front);
    let back = sohoa.input("2-back.png");
    write_png(&noisy_blank_back(), &back);
    let out = sohoa.ok(&[
        "--keep-blank-pages",
        "ingest",
        "--json",
        "--dossier",
        "000.00.15.H27-231128-0104",
        "--procedure",
        "1.001234",
        "--unit",
        "000.00.15.H27",
        front.to_str().unwrap(),
        back.to_str().unwrap(),
    ]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(flags(&report["pages"][1]).contains(&"blank"));
    assert_eq!(report["pages"][1]["pdf_page"], 2);
}

#[test]
fn a_page_with_only_a_stamp_is_not_blank() {
    let sohoa = Sohoa::new();
    // A red round seal, 40 mm across at 300 dpi, with a star in the middle, on an otherwise white page.
    let mut page = RgbImage::from_pixel(2480, 3508, Rgb([250, 250, 248]));
    let (cx, cy) = (1240.0f32, 1600.0f32);
    for (x, y, p) in page.enumerate_pixels_mut() {
        let r = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
        let ring = (210.0..236.0).contains(&r) || (150.0..160.0).contains(&r);
        let star = (x as f32 - cx).abs() < 12.0 && (y as f32 - cy).abs() < 70.0
            || (y as f32 - cy).abs() < 12.0 && (x as f32 - cx).abs() < 70.0;
        if ring || star {
            *p = Rgb([200, 30, 40]);
        }
    }
    let path = sohoa.input("stamp.png");
    page.save(&path).unwrap();
    let report = sohoa.ingest("000.00.15.H27-231128-0105", &[&path]);
    let page = &report["pages"][0];
    assert!(!flags(page).contains(&"blank"), "{page}");
    assert_eq!(page["pdf_page"], 1);
}

#[test]
fn a_page_under_200_dpi_is_flagged_and_still_read() {
    let sohoa = Sohoa::new();
    let full = common::render_page(LETTER);
    let coarse = imageops::resize(
        &full,
        full.width() / 2,
        full.height() / 2,
        imageops::FilterType::Triangle,
    );
    let path = sohoa.input("coarse.png");
    write_png_at(&coarse, &path, 150.0);
    let report = sohoa.ingest("000.00.15.H27-231128-0106", &[&path]);
    let page = &report["pages"][0];
    assert!(flags(page).contains(&"low-resolution"), "{page}");
    assert!(
        (page["dpi"].as_f64().unwrap() - 150.0).abs() < 0.1,
        "{page}"
    );
    assert!(!flags(page).contains(&"blank"), "{page}");
    let out = sohoa.ok(&["search", "--json", "tran van binh"]);
    assert!(out.contains("000.00.15.H27-231128-0106"), "{out}");
}

#[test]
fn a_flagged_page_is_replaced_by_its_rescan_in_a_new_document_that_replaces_the_old() {
    let sohoa = Sohoa::new();
    let front = sohoa.input("1-front.png");
    write_png(&common::render_page(LETTER), &front);
    let back = sohoa.input("2-back.png");
    write_png(&noisy_blank_back(), &back);
    let first = sohoa.ingest("000.00.15.H27-231128-0107", &[&front, &back]);
    let old = first["document"].as_str().unwrap().to_owned();
    assert!(flags(&first["pages"][1]).contains(&"blank"));

    // The clerk turns the sheet over, finds the receipt was on the wrong side, and rescans page 2.
    let rescan = sohoa.input("2-rescan.png");
    write_png(&common::render_page(common::RECEIPT), &rescan);
    let out = sohoa.ok(&[
        "replace-page",
        "--json",
        "--document",
        &old,
        "--page",
        "2",
        rescan.to_str().unwrap(),
    ]);
    let second: serde_json::Value = serde_json::from_str(&out).unwrap();
    let new = second["document"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(second["dossier"], "000.00.15.H27-231128-0107");
    let pages = second["pages"].as_array().unwrap();
    assert_eq!(pages.len(), 2);
    assert_eq!(
        pages[0]["blake3"], first["pages"][0]["blake3"],
        "page 1 is the same master"
    );
    assert!(!flags(&pages[1]).contains(&"blank"), "{}", pages[1]);

    let pdf = sohoa.get(&new, "new.pdf");
    assert_eq!(pdf_pages(&pdf), 2);
    let text = words(&pdftotext(&pdf));
    assert!(
        text.contains("Receipt for the application dossier"),
        "{text}"
    );
    assert!(text.contains("Trần Văn Bình"), "{text}");

    // Search shows the current document only; the old one is still stored and fetchable.
    let hits = sohoa.search("tran van binh");
    assert!(!hits.is_empty());
    assert!(
        hits.iter().all(|h| h["document"] == new.as_str()),
        "{hits:?}"
    );
    let old_pdf = sohoa.get(&old, "old.pdf");
    assert_eq!(pdf_pages(&old_pdf), 1);

    // Replacing a page of the old document again is refused with a pointer to the new one.
    let again = sohoa.run(&[
        "replace-page",
        "--document",
        &old,
        "--page",
        "2",
        rescan.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    let message = String::from_utf8_lossy(&again.stderr);
    assert!(
        message.contains("already replaced") && message.contains(&new),
        "{message}"
    );
    // And a page number the document does not have is named.
    let missing = sohoa.run(&[
        "replace-page",
        "--document",
        &new,
        "--page",
        "9",
        rescan.to_str().unwrap(),
    ]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("pages 1 to 2"));
}
