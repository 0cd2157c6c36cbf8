//! Any bytes as a scan-to-PDF file: parsed, and each page's image taken out (bounded). Refusals are fine;
//! panics, hangs and runaway allocations are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scanner_drivers::pdf::PdfFile;

fuzz_target!(|data: &[u8]| {
    let Ok(pdf) = PdfFile::parse(data) else {
        return;
    };
    for page in 0..pdf.page_count().min(4) {
        let _ = pdf.page_image(page, 4_000_000);
    }
});
