//! Any bytes as a scanned page: identified by content, then decoded under (smaller) limits. Must never
//! panic, hang or allocate past the limits: a page is decoded or refused.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use pipeline::DecodeLimits;
use scanner_drivers::{PageFormat, ScannedPage};

fuzz_target!(|data: &[u8]| {
    let Some(format) = PageFormat::sniff(data) else {
        return;
    };
    let page = ScannedPage {
        origin: "fuzz".into(),
        bytes: Arc::from(data),
        format,
        frame: 0,
        frames: 2,
        dpi: None,
        container: None,
    };
    let limits = DecodeLimits {
        max_pixels: 4_000_000,
        max_side: 8_000,
        max_alloc: 64 * 1024 * 1024,
    };
    let _ = pipeline::decode::decode(&page, limits);
    let single = ScannedPage { frames: 1, ..page };
    let _ = pipeline::decode::decode(&single, limits);
});
