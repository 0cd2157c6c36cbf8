//! What the clerk should know about a page at once: blank, hard to read, too coarse, turned, straightened.

use serde::{Deserialize, Serialize};

/// A page's quality flags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PageQuality {
    /// Nothing on the page (the back of a single-sided sheet). Left out of the packaged PDF by default;
    /// the master is kept.
    pub blank: bool,
    /// OCR's mean confidence is low: check the page, and rescan it if it is hard to read.
    pub low_confidence: bool,
    /// Scanned under the legal minimum resolution for an electronic copy (200 dpi).
    pub low_resolution: bool,
    /// Degrees the page was turned clockwise to put it upright: 0, 90, 180 or 270.
    pub rotated_degrees: u16,
    /// Degrees the page was turned clockwise to straighten its lines, one decimal.
    pub deskewed_degrees: f32,
    /// The orientation detector was unsure; the way up was chosen by reading every way.
    pub orientation_uncertain: bool,
}

impl PageQuality {
    /// The flags that are set, as short stable names: `blank`, `low-confidence`, `low-resolution`,
    /// `rotated`, `deskewed`, `orientation-uncertain`.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut flags = Vec::new();
        if self.blank {
            flags.push("blank");
        }
        if self.low_confidence {
            flags.push("low-confidence");
        }
        if self.low_resolution {
            flags.push("low-resolution");
        }
        if self.rotated_degrees != 0 {
            flags.push("rotated");
        }
        if self.deskewed_degrees != 0.0 {
            flags.push("deskewed");
        }
        if self.orientation_uncertain {
            flags.push("orientation-uncertain");
        }
        flags
    }

    /// The flags as one line a clerk reads: "blank", "turned 180°", "low OCR confidence"...; empty when
    /// the page is fine.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.blank {
            parts.push("blank page (left out of the PDF)".to_owned());
        }
        if self.low_confidence {
            parts.push("hard to read: check it, rescan if needed".to_owned());
        }
        if self.low_resolution {
            parts.push("under 200 dpi: rescan at 200 dpi or more".to_owned());
        }
        if self.rotated_degrees != 0 {
            parts.push(format!("turned {}°", self.rotated_degrees));
        }
        if self.deskewed_degrees != 0.0 {
            parts.push(format!("straightened {:+.1}°", self.deskewed_degrees));
        }
        if self.orientation_uncertain {
            parts.push("orientation unsure".to_owned());
        }
        parts.join(", ")
    }
}
