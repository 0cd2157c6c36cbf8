//! Page cleanup before OCR: the right resolution, scanner borders whitened, contrast normalised, blank
//! pages recognised, and the page straightened once its orientation is known.
//!
//! Cleanup only feeds OCR: the stored master and the image in the packaged PDF are the scanner's own.

use image::{GrayImage, Luma, imageops};
use imageproc::geometric_transformations::{Border, Interpolation, rotate_about_center};
use imageproc::region_labelling::{Connectivity, connected_components};

/// How pages are cleaned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CleanupSettings {
    /// The resolution OCR reads at. Default 300 dpi, where Tesseract's models do best.
    pub ocr_dpi: f32,
    /// Pages scanned finer than this are reduced to `ocr_dpi` for OCR. Default 400 dpi.
    pub reduce_above_dpi: f32,
    /// Pages scanned coarser than this are flagged: Decree 30/2020 asks at least 200 dpi for an
    /// electronic copy. Default 200 dpi.
    pub min_dpi: f32,
    /// The largest skew looked for, either way. Default 12 degrees.
    pub max_skew_degrees: f32,
    /// Skews smaller than this are left alone (a rotation blurs the image a little). Default 0.3 degrees.
    pub min_skew_degrees: f32,
    /// Marks (letter-sized or larger dark shapes) a page needs not to be blank. Default 3: a page with
    /// one short word, a signature or a stamp has more; scanner dust and bleed-through do not count.
    pub blank_max_marks: usize,
}

impl Default for CleanupSettings {
    fn default() -> Self {
        Self {
            ocr_dpi: 300.0,
            reduce_above_dpi: 400.0,
            min_dpi: 200.0,
            max_skew_degrees: 12.0,
            min_skew_degrees: 0.3,
            blank_max_marks: 3,
        }
    }
}

/// A page prepared for OCR.
#[derive(Debug)]
pub struct Prepared {
    /// The grey page at OCR resolution, borders whitened and contrast normalised (not yet turned).
    pub image: GrayImage,
    /// Its resolution.
    pub dpi: f32,
    /// OCR-image pixels per scan pixel.
    pub scale: f32,
    /// Whether the page has nothing on it.
    pub blank: bool,
}

/// Reduces, whitens borders, normalises contrast and checks for a blank page.
pub fn prepare(grey: GrayImage, dpi: f32, settings: &CleanupSettings) -> Prepared {
    let (mut image, scale) = if dpi > settings.reduce_above_dpi {
        let scale = settings.ocr_dpi / dpi;
        let width = ((grey.width() as f32 * scale).round() as u32).max(1);
        let height = ((grey.height() as f32 * scale).round() as u32).max(1);
        // The triangle filter averages the pixels it drops, which keeps thin strokes and kills noise.
        let reduced = imageops::resize(&grey, width, height, imageops::FilterType::Triangle);
        (reduced, width as f32 / grey.width() as f32)
    } else {
        (grey, 1.0)
    };
    let dpi = dpi * scale;
    let paper = paper_level(&image);
    whiten_borders(&mut image, paper);
    let blank =
        count_marks(&image, dpi, paper, settings.blank_max_marks) < settings.blank_max_marks;
    if !blank {
        normalise_contrast(&mut image, paper);
    }
    Prepared {
        image,
        dpi,
        scale,
        blank,
    }
}

/// The paper's brightness: the level most pixels are at or above, robust to text, stamps and shadows.
fn paper_level(image: &GrayImage) -> u8 {
    let histogram = histogram(image);
    // The brightest level with a tenth of the page at or above it: on any document, paper covers far more
    // than a tenth of the page; bright noise specks cover far less.
    let total: u64 = histogram.iter().sum();
    let mut above = 0u64;
    for level in (0..256).rev() {
        above += histogram[level];
        if above * 10 >= total {
            return level as u8;
        }
    }
    255
}

fn histogram(image: &GrayImage) -> [u64; 256] {
    let mut counts = [0u64; 256];
    for &p in image.as_raw() {
        counts[usize::from(p)] += 1;
    }
    counts
}

/// Ink is what is clearly darker than the paper: faint bleed-through from the back of the sheet and the
/// grain of cheap paper are not.
fn ink_threshold(paper: u8) -> u8 {
    paper.saturating_sub(paper / 3 + 10)
}

/// Paints over the dark bands a scanner leaves around the paper (lid, feeder, shadow of the edge), so OCR
/// does not read them as characters. Geometry stays as it is: a band becomes paper, it is not cut off.
fn whiten_borders(image: &mut GrayImage, paper: u8) {
    let (width, height) = image.dimensions();
    let dark = ink_threshold(paper);
    let dark_share = |pixels: &mut dyn Iterator<Item = u8>| {
        let (mut n, mut d) = (0u32, 0u32);
        for p in pixels {
            n += 1;
            d += u32::from(p < dark);
        }
        n > 0 && d * 2 > n
    };
    // A scanner border is at most a few percent of the page; stop at the first row or column that is
    // mostly paper.
    let limit_x = width / 12;
    let limit_y = height / 12;
    let mut left = 0;
    while left < limit_x && dark_share(&mut (0..height).map(|y| image.get_pixel(left, y).0[0])) {
        left += 1;
    }
    let mut right = 0;
    while right < limit_x
        && dark_share(&mut (0..height).map(|y| image.get_pixel(width - 1 - right, y).0[0]))
    {
        right += 1;
    }
    let mut top = 0;
    while top < limit_y && dark_share(&mut (0..width).map(|x| image.get_pixel(x, top).0[0])) {
        top += 1;
    }
    let mut bottom = 0;
    while bottom < limit_y
        && dark_share(&mut (0..width).map(|x| image.get_pixel(x, height - 1 - bottom).0[0]))
    {
        bottom += 1;
    }
    for (x, y, p) in image.enumerate_pixels_mut() {
        if x < left || x >= width - right || y < top || y >= height - bottom {
            *p = Luma([paper]);
        }
    }
}

/// Counts marks: dark shapes at least as tall as a small letter and no larger than a third of the page,
/// not touching its edge, on a copy reduced to about 100 dpi. Stops counting at `enough`.
fn count_marks(image: &GrayImage, dpi: f32, paper: u8, enough: usize) -> usize {
    let (small, small_dpi) = reduce_to_about_100_dpi(image, dpi);
    let dark = ink_threshold(paper);
    let ink = GrayImage::from_fn(small.width(), small.height(), |x, y| {
        Luma([u8::from(small.get_pixel(x, y).0[0] < dark)])
    });
    let labels = connected_components(&ink, Connectivity::Eight, Luma([0u8]));
    // Bounding box and area of every shape.
    let mut boxes: std::collections::HashMap<u32, (u32, u32, u32, u32, u32)> =
        std::collections::HashMap::new();
    for (x, y, label) in labels.enumerate_pixels() {
        let label = label.0[0];
        if label == 0 {
            continue;
        }
        let b = boxes.entry(label).or_insert((x, y, x, y, 0));
        b.0 = b.0.min(x);
        b.1 = b.1.min(y);
        b.2 = b.2.max(x);
        b.3 = b.3.max(y);
        b.4 += 1;
    }
    // A small letter at 8 points is about 1.2 mm tall; dust and toner specks are smaller.
    let min_side = (small_dpi * 1.2 / 25.4).max(2.0) as u32;
    let (w, h) = (small.width(), small.height());
    let mut marks = 0;
    for (left, top, right, bottom, area) in boxes.into_values() {
        let (bw, bh) = (right - left + 1, bottom - top + 1);
        let touches_edge = left == 0 || top == 0 || right + 1 >= w || bottom + 1 >= h;
        let letter_sized = bw.max(bh) >= min_side && area >= min_side;
        let page_sized = bw > w / 3 && bh > h / 3;
        if letter_sized && !touches_edge && !page_sized {
            marks += 1;
            if marks >= enough {
                break;
            }
        }
    }
    marks
}

/// A copy reduced by a whole factor to about 100 dpi, and its resolution: enough to see marks and lines,
/// a ninth of the pixels of a 300 dpi page.
fn reduce_to_about_100_dpi(image: &GrayImage, dpi: f32) -> (GrayImage, f32) {
    let factor = (dpi / 100.0).round().max(1.0) as u32;
    if factor == 1 {
        return (image.clone(), dpi);
    }
    let small = imageops::resize(
        image,
        (image.width() / factor).max(1),
        (image.height() / factor).max(1),
        imageops::FilterType::Triangle,
    );
    (small, dpi / factor as f32)
}

/// Stretches the levels between the darkest ink and the paper over the whole range: a dark or faded scan
/// then looks to OCR like a clean one.
fn normalise_contrast(image: &mut GrayImage, paper: u8) {
    let histogram = histogram(image);
    let total: u64 = histogram.iter().sum();
    // The level the darkest 0.5% of the page reaches: real ink, not a single black speck.
    let mut below = 0u64;
    let mut ink = 0u8;
    for (level, count) in histogram.iter().enumerate() {
        below += count;
        if below * 200 >= total {
            ink = level as u8;
            break;
        }
    }
    if paper <= ink || paper - ink < 32 {
        return;
    }
    let (low, high) = (f32::from(ink), f32::from(paper));
    let table: Vec<u8> = (0..256)
        .map(|v| (((v as f32 - low) / (high - low)) * 255.0).clamp(0.0, 255.0) as u8)
        .collect();
    for p in image.iter_mut() {
        *p = table[usize::from(*p)];
    }
}

/// Turns `image` clockwise by `quarter_turns` quarter turns.
pub fn turn(image: GrayImage, quarter_turns: u8) -> GrayImage {
    match quarter_turns % 4 {
        1 => imageops::rotate90(&image),
        2 => imageops::rotate180(&image),
        3 => imageops::rotate270(&image),
        _ => image,
    }
}

/// Estimates how far the text lines of an upright page are turned clockwise, in degrees, up to
/// `max_degrees` either way: the angle at which the ink, projected onto the vertical, makes the sharpest
/// peaks (lines) and troughs (the gaps between them).
pub fn estimate_skew(image: &GrayImage, dpi: f32, max_degrees: f32) -> f32 {
    // About 100 dpi is plenty to see lines and keeps the work small.
    let (small, _) = reduce_to_about_100_dpi(image, dpi);
    let threshold = ink_threshold(paper_level(&small));
    let points: Vec<(f32, f32)> = small
        .enumerate_pixels()
        .filter(|(_, _, p)| p.0[0] < threshold)
        .map(|(x, y, _)| (x as f32, y as f32))
        .collect();
    if points.len() < 200 {
        return 0.0;
    }
    let height = small.height() as f32;
    let width = small.width() as f32;
    let reach = (height + width) as usize + 2;
    let mut bins = vec![0u32; reach * 2];
    let mut score = |degrees: f32| -> f64 {
        let (sin, cos) = degrees.to_radians().sin_cos();
        bins.iter_mut().for_each(|b| *b = 0);
        for &(x, y) in &points {
            // Where the point lands on the vertical once the page is turned back by `degrees`.
            let v = y * cos - x * sin + reach as f32;
            if let Some(bin) = bins.get_mut(v as usize) {
                *bin += 1;
            }
        }
        // Sharp lines give large differences between neighbouring rows.
        bins.windows(2)
            .map(|w| {
                let d = f64::from(w[1]) - f64::from(w[0]);
                d * d
            })
            .sum()
    };
    let best_of = |score: &mut dyn FnMut(f32) -> f64, from: f32, to: f32, step: f32| {
        let mut best = (f64::MIN, 0.0f32);
        let mut a = from;
        while a <= to + step / 2.0 {
            let s = score(a);
            if s > best.0 {
                best = (s, a);
            }
            a += step;
        }
        best.1
    };
    let coarse = best_of(&mut score, -max_degrees, max_degrees, 0.5);
    best_of(&mut score, coarse - 0.5, coarse + 0.5, 0.05)
}

/// Turns `image` clockwise by `degrees` about its centre, filling the corners with white.
pub fn rotate(image: &GrayImage, degrees: f32) -> GrayImage {
    rotate_about_center(
        image,
        degrees.to_radians(),
        Interpolation::Bilinear,
        Border::Constant(Luma([255])),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A white A4 page at 100 dpi with `lines` dark bars like lines of text, turned by `degrees`.
    fn page_with_lines(lines: u32, degrees: f32) -> GrayImage {
        let mut page = GrayImage::from_pixel(827, 1169, Luma([240]));
        for line in 0..lines {
            let top = 150 + line * 30;
            for word in 0..8 {
                let left = 100 + word * 80;
                for y in top..top + 10 {
                    for x in left..left + 60 {
                        page.put_pixel(x, y, Luma([30]));
                    }
                }
            }
        }
        rotate(&page, degrees)
    }

    #[test]
    fn skew_is_measured_to_a_tenth_of_a_degree() {
        for degrees in [-7.0f32, -2.5, 0.0, 1.2, 4.0, 9.5] {
            let page = page_with_lines(20, degrees);
            let found = estimate_skew(&page, 100.0, 12.0);
            assert!(
                (found - degrees).abs() <= 0.15,
                "turned {degrees}, found {found}"
            );
        }
    }

    #[test]
    fn a_page_with_noise_and_bleed_through_is_blank_but_one_short_line_is_not() {
        let mut blank = GrayImage::from_pixel(827, 1169, Luma([235]));
        // Scanner noise: scattered single dark pixels.
        for i in 0..3000u32 {
            let (x, y) = ((i * 7919) % 827, (i * 104_729) % 1169);
            blank.put_pixel(x, y, Luma([20]));
        }
        // Bleed-through: a faint grey block of mirrored text.
        for y in 300..330 {
            for x in 100..700 {
                blank.put_pixel(x, y, Luma([200]));
            }
        }
        let settings = CleanupSettings::default();
        assert!(prepare(blank.clone(), 100.0, &settings).blank);

        let mut one_line = blank;
        for word in 0..3 {
            for y in 500..512 {
                for x in (100 + word * 40)..(130 + word * 40) {
                    if (x + y) % 3 != 0 {
                        one_line.put_pixel(x, y, Luma([40]));
                    }
                }
            }
        }
        assert!(!prepare(one_line, 100.0, &settings).blank);
    }

    #[test]
    fn a_scanner_border_is_painted_over() {
        let mut page = GrayImage::from_pixel(400, 600, Luma([230]));
        for y in 0..600 {
            for x in 0..12 {
                page.put_pixel(x, y, Luma([10]));
            }
        }
        let prepared = prepare(page, 100.0, &CleanupSettings::default());
        assert!(prepared.blank, "a border alone is not content");
        assert!(prepared.image.get_pixel(3, 300).0[0] > 200);
    }

    #[test]
    fn fine_scans_are_reduced_to_ocr_resolution() {
        let page = GrayImage::from_pixel(1200, 1200, Luma([250]));
        let prepared = prepare(page, 600.0, &CleanupSettings::default());
        assert_eq!(prepared.image.dimensions(), (600, 600));
        assert!((prepared.dpi - 300.0).abs() < 0.5);
        assert!((prepared.scale - 0.5).abs() < 0.001);
    }
}
