//! The identifiers of Vietnamese administrative paperwork, validated on construction.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An identifier that does not have the shape its field requires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} '{value}' is not valid: expected {expected}")]
pub struct CodeError {
    /// Which field.
    pub field: &'static str,
    /// What was given.
    pub value: String,
    /// The shape expected, with an example.
    pub expected: &'static str,
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// An agency (unit) code, `000.00.15.H27` (Decision 20/2020/QĐ-TTg): three digits, two, two, then a letter
/// and two digits for the province.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UnitCode(String);

impl UnitCode {
    const EXPECTED: &'static str = "an agency code like 000.00.15.H27";

    /// Validates a unit code.
    pub fn parse(value: &str) -> Result<Self, CodeError> {
        let fail = || CodeError {
            field: "unit code",
            value: value.to_owned(),
            expected: Self::EXPECTED,
        };
        let value = value.trim();
        let groups: Vec<&str> = value.split('.').collect();
        let [a, b, c, province] = groups[..] else {
            return Err(fail());
        };
        let province_ok = province.len() == 3
            && province.as_bytes()[0].is_ascii_uppercase()
            && digits(&province[1..], 2);
        if digits(a, 3) && digits(b, 2) && digits(c, 2) && province_ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(fail())
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An administrative procedure code (mã TTHC): `{class}.{6 digits}` nationally (`2.000815`), optionally with
/// a provincial suffix that is a unit code (`2.000815.000.00.00.H55`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProcedureCode(String);

impl ProcedureCode {
    const EXPECTED: &'static str = "a procedure code like 1.001234 or 2.000815.000.00.00.H55";

    /// Validates a procedure code.
    pub fn parse(value: &str) -> Result<Self, CodeError> {
        let fail = || CodeError {
            field: "procedure code",
            value: value.to_owned(),
            expected: Self::EXPECTED,
        };
        let value = value.trim();
        let mut parts = value.splitn(3, '.');
        let class = parts.next().unwrap_or_default();
        let number = parts.next().unwrap_or_default();
        let class_ok = (1..=2).contains(&class.len()) && class.bytes().all(|b| b.is_ascii_digit());
        if !class_ok || !digits(number, 6) {
            return Err(fail());
        }
        if let Some(suffix) = parts.next() {
            UnitCode::parse(suffix).map_err(|_| fail())?;
        }
        Ok(Self(value.to_owned()))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A dossier code (mã hồ sơ): `{unit code}-{yymmdd of receipt}-{daily sequence}`, e.g.
/// `000.00.15.H27-231128-0042`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DossierCode {
    code: String,
    unit: UnitCode,
    received: time::Date,
}

impl DossierCode {
    const EXPECTED: &'static str = "a dossier code like 000.00.15.H27-231128-0042 (agency code, date of receipt yymmdd, sequence)";

    /// Validates a dossier code, including that its date exists.
    pub fn parse(value: &str) -> Result<Self, CodeError> {
        let fail = || CodeError {
            field: "dossier code",
            value: value.to_owned(),
            expected: Self::EXPECTED,
        };
        let value = value.trim();
        let parts: Vec<&str> = value.split('-').collect();
        let [unit, date, sequence] = parts[..] else {
            return Err(fail());
        };
        let unit = UnitCode::parse(unit).map_err(|_| fail())?;
        if !digits(date, 6)
            || sequence.is_empty()
            || sequence.len() > 6
            || !digits(sequence, sequence.len())
        {
            return Err(fail());
        }
        let number = |range: std::ops::Range<usize>| date[range].parse::<u8>().unwrap_or(0);
        let month = time::Month::try_from(number(2..4)).map_err(|_| fail())?;
        let received =
            time::Date::from_calendar_date(2000 + i32::from(number(0..2)), month, number(4..6))
                .map_err(|_| fail())?;
        Ok(Self {
            code: value.to_owned(),
            unit,
            received,
        })
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.code
    }

    /// The unit that received the dossier, from the code.
    pub fn unit(&self) -> &UnitCode {
        &self.unit
    }

    /// The day of receipt, from the code.
    pub fn received(&self) -> time::Date {
        self.received
    }
}

/// Whether a document is one the citizen submitted or the result the office returns.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum DocumentKind {
    /// A component the citizen submitted (thành phần hồ sơ). The default.
    #[default]
    Submitted,
    /// The result returned (kết quả).
    Result,
}

impl DocumentKind {
    /// The kind as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Result => "result",
        }
    }
}

impl FromStr for DocumentKind {
    type Err = CodeError;

    fn from_str(value: &str) -> Result<Self, CodeError> {
        match value.trim() {
            "submitted" => Ok(Self::Submitted),
            "result" => Ok(Self::Result),
            _ => Err(CodeError {
                field: "document kind",
                value: value.to_owned(),
                expected: "submitted or result",
            }),
        }
    }
}

/// A BLAKE3 hash, the address of every stored object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHash(blake3::Hash);

impl ContentHash {
    /// Parses 64 hexadecimal digits.
    pub fn parse(value: &str) -> Result<Self, CodeError> {
        blake3::Hash::from_hex(value.trim())
            .map(Self)
            .map_err(|_| CodeError {
                field: "hash",
                value: value.chars().take(80).collect(),
                expected: "a BLAKE3 hash: 64 hexadecimal digits",
            })
    }

    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(blake3::hash(bytes))
    }

    /// The hash as 64 lowercase hexadecimal digits.
    pub fn to_hex(&self) -> String {
        self.0.to_hex().to_string()
    }
}

impl From<blake3::Hash> for ContentHash {
    fn from(hash: blake3::Hash) -> Self {
        Self(hash)
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_hex())
    }
}

macro_rules! text_conversions {
    ($($ty:ty),*) => {$(
        impl TryFrom<String> for $ty {
            type Error = CodeError;
            fn try_from(value: String) -> Result<Self, CodeError> {
                Self::parse(&value)
            }
        }
        impl From<$ty> for String {
            fn from(code: $ty) -> String {
                code.as_str().to_owned()
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
text_conversions!(UnitCode, ProcedureCode, DossierCode);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_codes_parse() {
        let dossier = DossierCode::parse("000.00.15.H27-231128-0042").unwrap();
        assert_eq!(dossier.unit().as_str(), "000.00.15.H27");
        assert_eq!(dossier.received(), time::macros::date!(2023 - 11 - 28));
        ProcedureCode::parse("1.001234").unwrap();
        ProcedureCode::parse("2.000815.000.00.00.H55").unwrap();
        UnitCode::parse("000.00.15.H27").unwrap();
    }

    #[test]
    fn malformed_codes_name_the_field_and_the_expected_shape() {
        for bad in [
            "",
            "000.00.15.H27",
            "000.00.15.H27-231128",
            "000.00.15.H27-231328-0042",
            "x-231128-1",
        ] {
            let err = DossierCode::parse(bad).unwrap_err();
            assert!(
                err.to_string().contains("dossier code")
                    && err.to_string().contains("000.00.15.H27-231128-0042")
            );
        }
        for bad in ["1.12345", "1234", "1.001234.H55", "a.001234"] {
            assert_eq!(
                ProcedureCode::parse(bad).unwrap_err().field,
                "procedure code"
            );
        }
        for bad in ["000.00.15.h27", "00.00.15.H27", "000.00.15.H2", "000.00.15"] {
            assert_eq!(UnitCode::parse(bad).unwrap_err().field, "unit code");
        }
        assert!(ContentHash::parse("abc").is_err());
        assert!("receipt".parse::<DocumentKind>().is_err());
    }
}
