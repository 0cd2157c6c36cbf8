//! Timestamps as Vietnamese paperwork writes them: ISO 8601 in Vietnam time (+07:00).

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use crate::codes::DossierCode;

/// Vietnam's offset from UTC; there is no daylight saving.
pub const VIETNAM: UtcOffset = time::macros::offset!(+7);

/// Now, in Vietnam time, as RFC 3339.
pub fn now_rfc3339() -> String {
    format(OffsetDateTime::now_utc().to_offset(VIETNAM))
}

/// The start of the day of receipt that a dossier code records, as RFC 3339.
pub fn received_rfc3339(code: &DossierCode) -> String {
    format(code.received().midnight().assume_offset(VIETNAM))
}

fn format(at: OffsetDateTime) -> String {
    // Formatting a valid date-time as RFC 3339 cannot fail for years 0-9999.
    at.format(&Rfc3339).unwrap_or_default()
}
