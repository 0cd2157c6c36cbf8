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

/// Whether an RFC 3339 time is in the past; an unreadable one counts as past (fail closed).
pub fn is_past(at: &str) -> bool {
    OffsetDateTime::parse(at, &Rfc3339).map_or(true, |at| at <= OffsetDateTime::now_utc())
}

/// An RFC 3339 time from outside, in any offset, rewritten in Vietnam time so stored times compare as
/// text; a bare date `YYYY-MM-DD` is the start of that day in Vietnam.
pub fn to_vietnam(value: &str) -> Option<String> {
    let value = value.trim();
    if let Ok(at) = OffsetDateTime::parse(value, &Rfc3339) {
        return Some(format(at.to_offset(VIETNAM)));
    }
    parse_day(value).map(|day| format(day.midnight().assume_offset(VIETNAM)))
}

/// A calendar day, `YYYY-MM-DD`.
pub fn parse_day(value: &str) -> Option<time::Date> {
    time::Date::parse(
        value.trim(),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

/// A day as `YYYY-MM-DD`.
pub fn format_day(day: time::Date) -> String {
    day.format(time::macros::format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

/// The UNIX timestamp of an RFC 3339 time; `None` if unreadable.
pub fn unix_seconds(at: &str) -> Option<i64> {
    OffsetDateTime::parse(at, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

/// A UNIX time in Vietnam time, as RFC 3339.
pub fn from_unix(seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(seconds)
        .map(|at| format(at.to_offset(VIETNAM)))
        .unwrap_or_default()
}

/// `duration` before now, in Vietnam time, as RFC 3339.
pub fn ago(duration: std::time::Duration) -> String {
    let duration = time::Duration::try_from(duration).unwrap_or(time::Duration::ZERO);
    format((OffsetDateTime::now_utc() - duration).to_offset(VIETNAM))
}

/// `duration` from now, in Vietnam time, as RFC 3339.
pub fn from_now(duration: std::time::Duration) -> String {
    let duration = time::Duration::try_from(duration).unwrap_or(time::Duration::ZERO);
    format((OffsetDateTime::now_utc() + duration).to_offset(VIETNAM))
}

/// `days` from now, in Vietnam time, as RFC 3339.
pub fn days_from_now(days: u32) -> String {
    format((OffsetDateTime::now_utc() + time::Duration::days(i64::from(days))).to_offset(VIETNAM))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_times_are_stored_in_vietnam_time() {
        assert_eq!(
            to_vietnam("2023-11-28T03:00:00Z").as_deref(),
            Some("2023-11-28T10:00:00+07:00")
        );
        assert_eq!(
            to_vietnam("2023-11-28").as_deref(),
            Some("2023-11-28T00:00:00+07:00")
        );
        assert_eq!(to_vietnam("28/11/2023"), None);
        assert!(is_past("2000-01-01T00:00:00+07:00"));
        assert!(!is_past(&days_from_now(1)));
        assert!(is_past("garbage"));
    }
}
