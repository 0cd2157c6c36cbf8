//! Tesseract's TSV word boxes, as any text: parsed into words without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = pipeline::ocr::parse_tsv(text);
    }
});
