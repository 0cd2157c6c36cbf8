//! Dossier, procedure, unit codes and content hashes as any text: validated or refused, and what is
//! accepted reads back the same.
#![no_main]

use archive_api::codes::{ContentHash, DossierCode, ProcedureCode, UnitCode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(code) = DossierCode::parse(text) {
        assert_eq!(DossierCode::parse(code.as_str()).as_ref().map(DossierCode::as_str), Ok(code.as_str()));
        let _ = code.received();
    }
    if let Ok(code) = ProcedureCode::parse(text) {
        assert!(ProcedureCode::parse(code.as_str()).is_ok());
    }
    if let Ok(code) = UnitCode::parse(text) {
        assert!(UnitCode::parse(code.as_str()).is_ok());
    }
    if let Ok(hash) = ContentHash::parse(text) {
        assert_eq!(ContentHash::parse(&hash.to_hex()).map(|h| h.to_hex()), Ok(hash.to_hex()));
    }
});
