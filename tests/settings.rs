//! Settings layers through the real binary: a TOML file, `SOHOA_SECTION__KEY` variables over it, flags over
//! both; mistakes in the file are errors, not silently ignored.

mod common;

use common::{RECEIPT, Sohoa, write_png};
use image::{GrayImage, Luma};

/// Ingests a one-line page and a blank page with `settings` as the settings file and `env` set, and
/// returns whether the blank page went into the PDF.
fn blank_page_kept(sohoa: &Sohoa, dossier: &str, settings: &str, env: &[(&str, &str)]) -> bool {
    let front = sohoa.input("front.png");
    write_png(&common::render_page(RECEIPT), &front);
    let back = sohoa.input("back.png");
    write_png(&GrayImage::from_pixel(1240, 1754, Luma([250])), &back);
    let file = sohoa.input("sohoa.toml");
    std::fs::write(&file, settings).unwrap();
    let mut command = sohoa.command();
    command.env("SOHOA_CONFIG", &file);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command
        .args(["ingest", "--json", "--dossier", dossier])
        .args(["--procedure", "1.001234", "--unit", "000.00.15.H27"])
        .arg(&front)
        .arg(&back)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(report["pages"][1]["flags"].to_string().contains("blank"));
    report["pages"][1].get("pdf_page").is_some()
}

#[test]
fn the_settings_file_applies_and_a_sectioned_variable_overrides_it() {
    let sohoa = Sohoa::new();
    let keep = "[packaging]\nkeep_blank_pages = true\n";
    assert!(blank_page_kept(
        &sohoa,
        "000.00.15.H27-231128-0301",
        keep,
        &[]
    ));
    assert!(!blank_page_kept(
        &sohoa,
        "000.00.15.H27-231128-0302",
        keep,
        &[("SOHOA_PACKAGING__KEEP_BLANK_PAGES", "false")]
    ));
    assert!(!blank_page_kept(
        &sohoa,
        "000.00.15.H27-231128-0303",
        "",
        &[]
    ));
}

#[test]
fn a_misspelt_key_or_a_missing_file_is_an_error() {
    let sohoa = Sohoa::new();
    let file = sohoa.input("sohoa.toml");
    std::fs::write(&file, "[ocr]\nlanguage = \"eng\"\n").unwrap();
    let output = sohoa
        .command()
        .arg("--config")
        .arg(&file)
        .args(["search", "anything"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("language"), "{stderr}");

    let output = sohoa
        .command()
        .args(["--config", "/nonexistent/sohoa.toml", "search", "anything"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("does not exist"));
}
