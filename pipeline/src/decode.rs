//! Decoding a scanned page into pixels, with its physical resolution.

use std::io::{BufReader, Cursor};

use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use scanner_drivers::{PageFormat, ScannedPage};
use tiff::decoder::ifd::Value;
use tiff::decoder::{Decoder as TiffDecoder, DecodingResult};
use tiff::tags::{ResolutionUnit, Tag};

/// The resolution assumed for a page whose file and driver both leave it unsaid: the usual desk-scan
/// setting, and the one Tesseract is tuned for.
pub const ASSUMED_DPI: f32 = 300.0;

/// Resolutions outside this range are taken as a mistaken header (72 dpi "screen" defaults, 1 dpi aspect
/// ratios) rather than a real scan.
const PLAUSIBLE_DPI: std::ops::RangeInclusive<f32> = 50.0..=4800.0;

/// Bounds on decoding, enforced by the decoders before they allocate.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Widest and tallest page accepted, in pixels. Default 16,000.
    pub max_side: u32,
    /// Most pixels in one page. Default 72 million: A3 at 600 dpi (7,016 x 9,921 = 69.6 million) is the
    /// largest real desk scan; a file declaring more is refused before any pixel is decoded.
    pub max_pixels: u64,
    /// Most memory one decoded page may take, in bytes. Default 1 GiB.
    pub max_alloc: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_side: 16_000,
            max_pixels: 72_000_000,
            max_alloc: 1024 * 1024 * 1024,
        }
    }
}

/// Why a page could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The image decoder refused the data.
    #[error("cannot decode the {format} image: {source}")]
    Image {
        /// The format the content claims.
        format: PageFormat,
        /// The decoder's reason.
        source: image::ImageError,
    },
    /// The page declares more pixels than any real scan has.
    #[error(
        "the page is {width} x {height} pixels, more than the {limit} million pixel limit (A3 at 600 dpi): \
         scan it at 600 dpi or less"
    )]
    TooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// The limit, in millions of pixels.
        limit: u64,
    },
    /// The file stops before its end: cut off in transfer.
    #[error(
        "the {format} file ends before its end marker: it was cut off (a cable pulled or a transfer \
         interrupted); scan or copy the page again"
    )]
    Truncated {
        /// The format the content claims.
        format: PageFormat,
    },
    /// The bytes are no PNG, JPEG or TIFF image.
    #[error("not a PNG, JPEG or TIFF image")]
    NotAnImage,
    /// One page of a multi-page TIFF could not be decoded.
    #[error("cannot decode page {page} of the TIFF file: {reason}")]
    TiffPage {
        /// The page within the file, from 1.
        page: u32,
        /// What went wrong.
        reason: String,
    },
}

/// A decoded page.
pub struct Decoded {
    /// The pixels.
    pub image: DynamicImage,
    /// Dots per inch, from the file, the driver, or [`ASSUMED_DPI`].
    pub dpi: f32,
    /// Whether `dpi` is an assumption because nothing said what it was.
    pub dpi_assumed: bool,
}

/// Decodes `page`, enforcing `limits`.
pub fn decode(page: &ScannedPage, limits: DecodeLimits) -> Result<Decoded, DecodeError> {
    if page.format == PageFormat::Jpeg && !jpeg_is_complete(&page.bytes) {
        // The JPEG decoder fills a cut-off scan with grey and calls it a page; a clerk must rescan it.
        return Err(DecodeError::Truncated {
            format: page.format,
        });
    }
    let image = if page.format == PageFormat::Tiff && page.frames > 1 {
        decode_tiff_frame(&page.bytes, page.frame, limits)?
    } else {
        let format = match page.format {
            PageFormat::Png => ImageFormat::Png,
            PageFormat::Jpeg => ImageFormat::Jpeg,
            _ => ImageFormat::Tiff,
        };
        // The header alone says how large the page claims to be: refuse before decoding a pixel.
        let mut header = ImageReader::with_format(Cursor::new(&page.bytes[..]), format);
        header.limits(image_limits(limits));
        let (width, height) = header
            .into_dimensions()
            .map_err(|source| DecodeError::Image {
                format: page.format,
                source,
            })?;
        check_pixels(width, height, limits)?;
        let mut reader = ImageReader::with_format(Cursor::new(&page.bytes[..]), format);
        reader.limits(image_limits(limits));
        reader.decode().map_err(|source| DecodeError::Image {
            format: page.format,
            source,
        })?
    };
    let image = flatten_alpha(image);
    // PNG records pixels per metre as an integer: 300 dpi is stored as 11,811 and reads back as 299.9994.
    let from_file = file_dpi(page)
        .map(|d| (d * 100.0).round() / 100.0)
        .filter(|d| PLAUSIBLE_DPI.contains(d));
    let known = from_file.or(page.dpi.filter(|d| PLAUSIBLE_DPI.contains(d)));
    Ok(Decoded {
        image,
        dpi: known.unwrap_or(ASSUMED_DPI),
        dpi_assumed: known.is_none(),
    })
}

/// Whether a JPEG ends with its end-of-image marker (after any padding scanners add): inside the compressed
/// data a 0xFF byte is always followed by 0x00 or a restart marker, so a file cut short never ends in one.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let Some(last) = bytes
        .iter()
        .rposition(|&b| !matches!(b, 0x00 | b'\r' | b'\n' | b' '))
    else {
        return false;
    };
    last >= 1 && bytes[last] == 0xD9 && bytes[last - 1] == 0xFF
}

/// A small JPEG of a page image (PNG, JPEG or TIFF, the first page of a multi-page one), at most
/// `max_side` pixels wide and tall, for a clerk's screen. Decoding is bounded by `limits` as for a page.
pub fn thumbnail(
    bytes: &[u8],
    max_side: u32,
    limits: DecodeLimits,
) -> Result<Vec<u8>, DecodeError> {
    let format = PageFormat::sniff(bytes).ok_or(DecodeError::NotAnImage)?;
    let page = ScannedPage {
        origin: String::new(),
        bytes: bytes.into(),
        format,
        frame: 0,
        frames: 1,
        dpi: None,
        container: None,
        turn: None,
    };
    let small = decode(&page, limits)?
        .image
        .thumbnail(max_side, max_side)
        .into_rgb8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
        .encode_image(&small)
        .map_err(|source| DecodeError::Image { format, source })?;
    Ok(jpeg)
}

/// Lays a page with transparency onto white paper: drawing programs export text on a transparent
/// background whose colour is black, which would otherwise read as a black page.
fn flatten_alpha(image: DynamicImage) -> DynamicImage {
    if !image.color().has_alpha() {
        return image;
    }
    let over_white = |value: u8, alpha: u8| {
        let (v, a) = (u32::from(value), u32::from(alpha));
        ((v * a + 255 * (255 - a) + 127) / 255) as u8
    };
    if image.color().has_color() {
        let rgba = image.to_rgba8();
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(
            rgba.width(),
            rgba.height(),
            |x, y| {
                let [r, g, b, a] = rgba.get_pixel(x, y).0;
                image::Rgb([over_white(r, a), over_white(g, a), over_white(b, a)])
            },
        ))
    } else {
        let luma_alpha = image.to_luma_alpha8();
        DynamicImage::ImageLuma8(image::GrayImage::from_fn(
            luma_alpha.width(),
            luma_alpha.height(),
            |x, y| {
                let [v, a] = luma_alpha.get_pixel(x, y).0;
                image::Luma([over_white(v, a)])
            },
        ))
    }
}

fn check_pixels(width: u32, height: u32, limits: DecodeLimits) -> Result<(), DecodeError> {
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(DecodeError::TooLarge {
            width,
            height,
            limit: limits.max_pixels / 1_000_000,
        });
    }
    Ok(())
}

fn image_limits(limits: DecodeLimits) -> Limits {
    let mut l = Limits::default();
    l.max_image_width = Some(limits.max_side);
    l.max_image_height = Some(limits.max_side);
    l.max_alloc = Some(limits.max_alloc);
    l
}

/// The resolution the file itself records, in dots per inch.
fn file_dpi(page: &ScannedPage) -> Option<f32> {
    match page.format {
        PageFormat::Png => {
            let decoder = png::Decoder::new(Cursor::new(&page.bytes[..]));
            let reader = decoder.read_info().ok()?;
            let dims = reader.info().pixel_dims?;
            (dims.unit == png::Unit::Meter).then_some(dims.xppu as f32 * 0.0254)
        }
        PageFormat::Jpeg => jfif_dpi(&page.bytes),
        _ => {
            let mut decoder =
                TiffDecoder::new(BufReader::new(Cursor::new(&page.bytes[..]))).ok()?;
            if page.frame > 0 {
                decoder.seek_to_image(page.frame as usize).ok()?;
            }
            let resolution = match decoder.find_tag(Tag::XResolution).ok()?? {
                Value::Rational(n, d) if d > 0 => n as f32 / d as f32,
                Value::Double(v) => v as f32,
                Value::Float(v) => v,
                Value::Unsigned(v) => v as f32,
                Value::Short(v) => f32::from(v),
                _ => return None,
            };
            let unit = decoder
                .find_tag_unsigned::<u16>(Tag::ResolutionUnit)
                .ok()
                .flatten()
                .and_then(ResolutionUnit::from_u16)
                .unwrap_or(ResolutionUnit::Inch);
            match unit {
                ResolutionUnit::Centimeter => Some(resolution * 2.54),
                ResolutionUnit::Inch => Some(resolution),
                _ => None,
            }
        }
    }
}

/// The density in a JPEG's JFIF header (APP0: `JFIF\0`, version, units, x density, y density), walking the
/// segments before the image data. Units 1 are dots per inch, 2 dots per centimetre, 0 an aspect ratio only.
fn jfif_dpi(bytes: &[u8]) -> Option<f32> {
    let mut at = 2; // after the SOI marker
    while at + 4 <= bytes.len() && bytes[at] == 0xFF {
        let marker = bytes[at + 1];
        if marker == 0xDA || marker == 0xD9 {
            return None; // image data begins: no JFIF header before it
        }
        let length = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        let segment = bytes.get(at + 4..at + 2 + length)?;
        if marker == 0xE0 && segment.len() >= 12 && segment.starts_with(b"JFIF\0") {
            let density = f32::from(u16::from_be_bytes([segment[8], segment[9]]));
            return match segment[7] {
                1 => Some(density),
                2 => Some(density * 2.54),
                _ => None,
            };
        }
        at += 2 + length;
    }
    None
}

/// Decodes page `frame` of a multi-page TIFF. The `image` crate reads only the first page of a TIFF, so the
/// other pages go through the `tiff` crate, which already applies the photometric interpretation.
fn decode_tiff_frame(
    bytes: &[u8],
    frame: u32,
    limits: DecodeLimits,
) -> Result<DynamicImage, DecodeError> {
    let page = frame + 1;
    let fail = |reason: String| DecodeError::TiffPage { page, reason };
    let mut tiff_limits = tiff::decoder::Limits::default();
    tiff_limits.decoding_buffer_size = limits.max_alloc.try_into().unwrap_or(usize::MAX);
    let mut decoder = TiffDecoder::new(BufReader::new(Cursor::new(bytes)))
        .map_err(|e| fail(e.to_string()))?
        .with_limits(tiff_limits);
    decoder
        .seek_to_image(frame as usize)
        .map_err(|e| fail(e.to_string()))?;
    let (width, height) = decoder.dimensions().map_err(|e| fail(e.to_string()))?;
    if width > limits.max_side || height > limits.max_side {
        return Err(fail(format!(
            "{width} x {height} pixels is larger than the {} pixel limit",
            limits.max_side
        )));
    }
    check_pixels(width, height, limits)?;
    let color = decoder.colortype().map_err(|e| fail(e.to_string()))?;
    let data = decoder.read_image().map_err(|e| fail(e.to_string()))?;
    let unsupported = || fail(format!("{color:?} pixels are not supported"));
    let image = match (color, data) {
        (tiff::ColorType::Gray(1), DecodingResult::U8(packed)) => {
            let row_bytes = width.div_ceil(8) as usize;
            let mut pixels = Vec::with_capacity(width as usize * height as usize);
            for row in packed.chunks(row_bytes).take(height as usize) {
                pixels.extend((0..width as usize).map(|x| {
                    let bit = row.get(x / 8).map_or(0, |b| (b >> (7 - x % 8)) & 1);
                    if bit == 1 { 255 } else { 0 }
                }));
            }
            image::GrayImage::from_raw(width, height, pixels).map(DynamicImage::ImageLuma8)
        }
        (tiff::ColorType::Gray(8), DecodingResult::U8(pixels)) => {
            image::GrayImage::from_raw(width, height, pixels).map(DynamicImage::ImageLuma8)
        }
        (tiff::ColorType::Gray(16), DecodingResult::U16(pixels)) => {
            image::ImageBuffer::from_raw(width, height, pixels).map(DynamicImage::ImageLuma16)
        }
        (tiff::ColorType::RGB(8), DecodingResult::U8(pixels)) => {
            image::RgbImage::from_raw(width, height, pixels).map(DynamicImage::ImageRgb8)
        }
        (tiff::ColorType::RGBA(8), DecodingResult::U8(pixels)) => {
            image::RgbaImage::from_raw(width, height, pixels).map(DynamicImage::ImageRgba8)
        }
        _ => return Err(unsupported()),
    };
    image.ok_or_else(|| fail("the pixel data is shorter than the page".to_owned()))
}
