//! Search text as archivists (or anyone on the API) type it: folded, parsed and run against an index,
//! answered or refused, never a panic.
#![no_main]

use std::sync::OnceLock;

use archive_api::{SearchIndex, SearchQuery};
use libfuzzer_sys::fuzz_target;

fn index() -> &'static SearchIndex {
    static INDEX: OnceLock<(tempfile::TempDir, SearchIndex)> = OnceLock::new();
    &INDEX
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("a temporary folder");
            let index = SearchIndex::open(dir.path()).expect("an empty index opens");
            (dir, index)
        })
        .1
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let query = SearchQuery {
            text: text.to_owned(),
            limit: 10,
            ..Default::default()
        };
        let _ = index().search(&query);
    }
});
