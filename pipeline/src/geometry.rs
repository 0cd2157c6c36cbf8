//! How the image OCR read relates to the scan: scaled, turned by quarter turns, then straightened.
//!
//! OCR runs on a cleaned copy of the page, but the packaged PDF shows the scanner's own image (no second
//! lossy pass), so every word box found on the copy is mapped back onto the scan through this.

use serde::{Deserialize, Serialize};

/// The steps that made the OCR image from the scan, in order: scale, quarter turns clockwise, then a small
/// clockwise rotation about the centre (deskew).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PageGeometry {
    /// Scan width in pixels.
    pub scan_width: u32,
    /// Scan height in pixels.
    pub scan_height: u32,
    /// OCR-image pixels per scan pixel (below 1 when a fine scan was reduced for OCR).
    pub scale: f32,
    /// Clockwise quarter turns that put the page upright.
    pub quarter_turns: u8,
    /// Degrees the upright page was turned clockwise to straighten its lines.
    pub deskew_degrees: f32,
}

impl PageGeometry {
    /// The OCR image is the scan as it is.
    pub fn identity(scan_width: u32, scan_height: u32) -> Self {
        Self {
            scan_width,
            scan_height,
            scale: 1.0,
            quarter_turns: 0,
            deskew_degrees: 0.0,
        }
    }

    /// Width and height of the scaled scan, before any turn.
    fn scaled_size(&self) -> (f32, f32) {
        (
            self.scan_width as f32 * self.scale,
            self.scan_height as f32 * self.scale,
        )
    }

    /// Width and height of the OCR image.
    pub fn ocr_size(&self) -> (f32, f32) {
        let (w, h) = self.scaled_size();
        if self.quarter_turns % 2 == 1 {
            (h, w)
        } else {
            (w, h)
        }
    }

    /// Maps a point of the OCR image (pixels from its top left) to the scan.
    pub fn to_scan(&self, x: f32, y: f32) -> (f32, f32) {
        // Undo the deskew: turn back about the centre.
        let (w, h) = self.ocr_size();
        let (cx, cy) = (w / 2.0, h / 2.0);
        let (sin, cos) = (-self.deskew_degrees.to_radians()).sin_cos();
        let (dx, dy) = (x - cx, y - cy);
        let (x, y) = (cx + dx * cos - dy * sin, cy + dx * sin + dy * cos);
        // Undo the quarter turns.
        let (sw, sh) = self.scaled_size();
        let (x, y) = match self.quarter_turns % 4 {
            1 => (y, sh - x),
            2 => (sw - x, sh - y),
            3 => (sw - y, x),
            _ => (x, y),
        };
        (x / self.scale, y / self.scale)
    }

    /// Maps a point of the scan to the OCR image (the inverse of [`Self::to_scan`]).
    pub fn to_ocr(&self, x: f32, y: f32) -> (f32, f32) {
        let (sw, sh) = self.scaled_size();
        let (x, y) = (x * self.scale, y * self.scale);
        let (x, y) = match self.quarter_turns % 4 {
            1 => (sh - y, x),
            2 => (sw - x, sh - y),
            3 => (y, sw - x),
            _ => (x, y),
        };
        let (w, h) = self.ocr_size();
        let (cx, cy) = (w / 2.0, h / 2.0);
        let (sin, cos) = self.deskew_degrees.to_radians().sin_cos();
        let (dx, dy) = (x - cx, y - cy);
        (cx + dx * cos - dy * sin, cy + dx * sin + dy * cos)
    }

    /// The box, in OCR-image pixels, that holds the whole scan once turned and straightened:
    /// `(left, top, right, bottom)`. A straightened page is a little larger than the scan, so no corner of
    /// the scan is cut off.
    pub fn ocr_bounds(&self) -> (f32, f32, f32, f32) {
        let (w, h) = (self.scan_width as f32, self.scan_height as f32);
        let corners = [(0.0, 0.0), (w, 0.0), (0.0, h), (w, h)].map(|(x, y)| self.to_ocr(x, y));
        corners.iter().fold(
            (f32::MAX, f32::MAX, f32::MIN, f32::MIN),
            |(l, t, r, b), &(x, y)| (l.min(x), t.min(y), r.max(x), b.max(y)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: (f32, f32), b: (f32, f32)) -> bool {
        (a.0 - b.0).abs() < 0.01 && (a.1 - b.1).abs() < 0.01
    }

    #[test]
    fn quarter_turns_map_corners_back_to_the_scan() {
        // A 200 x 100 scan; the OCR image of a 90° turn is 100 x 200.
        let mut g = PageGeometry::identity(200, 100);
        g.quarter_turns = 1;
        assert_eq!(g.ocr_size(), (100.0, 200.0));
        // Turning clockwise sends the scan's bottom-left corner to the top left.
        assert!(close(g.to_scan(0.0, 0.0), (0.0, 100.0)));
        assert!(close(g.to_scan(100.0, 0.0), (0.0, 0.0)));
        g.quarter_turns = 2;
        assert!(close(g.to_scan(0.0, 0.0), (200.0, 100.0)));
        g.quarter_turns = 3;
        assert!(close(g.to_scan(0.0, 0.0), (200.0, 0.0)));
    }

    #[test]
    fn to_ocr_and_to_scan_are_inverses() {
        for quarter_turns in 0..4 {
            let g = PageGeometry {
                scan_width: 2480,
                scan_height: 3508,
                scale: 0.5,
                quarter_turns,
                deskew_degrees: -3.7,
            };
            for (x, y) in [(0.0, 0.0), (2480.0, 10.0), (1000.0, 3000.0)] {
                let (u, v) = g.to_ocr(x, y);
                assert!(close(g.to_scan(u, v), (x, y)), "{quarter_turns}: {x},{y}");
            }
        }
    }

    #[test]
    fn a_straightened_page_holds_the_whole_scan() {
        let mut g = PageGeometry::identity(1000, 1000);
        assert!(close4(g.ocr_bounds(), (0.0, 0.0, 1000.0, 1000.0)));
        g.deskew_degrees = 45.0;
        let half_diagonal = 500.0 * 2f32.sqrt();
        assert!(close4(
            g.ocr_bounds(),
            (
                500.0 - half_diagonal,
                500.0 - half_diagonal,
                500.0 + half_diagonal,
                500.0 + half_diagonal
            )
        ));
    }

    fn close4(a: (f32, f32, f32, f32), b: (f32, f32, f32, f32)) -> bool {
        close((a.0, a.1), (b.0, b.1)) && close((a.2, a.3), (b.2, b.3))
    }

    #[test]
    fn scale_and_deskew_are_undone() {
        let mut g = PageGeometry::identity(600, 600);
        g.scale = 0.5;
        assert!(close(g.to_scan(10.0, 20.0), (20.0, 40.0)));
        g.deskew_degrees = 90.0;
        // The centre stays put; a point right of it came from above it.
        assert!(close(g.to_scan(150.0, 150.0), (300.0, 300.0)));
        assert!(close(g.to_scan(250.0, 150.0), (300.0, 100.0)));
    }
}
