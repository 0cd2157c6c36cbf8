//! PDFs from scan-to-PDF devices: each page's scanned image, taken out at its native resolution.
//!
//! A scanner's PDF holds one image per page (sometimes with a text layer over it). The image goes to the
//! pipeline as the scanner encoded it where that is a format sohoa reads (a JPEG, byte for byte); otherwise
//! its samples are decoded (bounded, so a bomb in a stream is refused) and re-wrapped losslessly as PNG.
//! A page with no image (a PDF typed on a computer) is refused with a reason the clerk can act on: sohoa
//! archives scans, and rendering a born-digital PDF would invent a scan that never existed.

use std::sync::Arc;

use lopdf::{Dictionary, Document, Object, ObjectId, Stream};

use crate::page::PageFormat;

/// Whether `head` starts a PDF.
pub fn is_pdf(head: &[u8]) -> bool {
    head.starts_with(b"%PDF-")
}

/// A parsed PDF whose pages are taken one at a time.
pub struct PdfFile {
    doc: Document,
    pages: Vec<ObjectId>,
}

/// One page's image, ready for the pipeline.
pub struct PdfPageImage {
    /// The image file (JPEG as stored, or PNG).
    pub bytes: Arc<[u8]>,
    /// Its format.
    pub format: PageFormat,
    /// The resolution at which it fills the page.
    pub dpi: Option<f32>,
}

impl PdfFile {
    /// Parses `bytes`; a PDF that cannot be opened at all is refused as a whole.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        // lopdf is not hardened against every malformed file: a panic inside it is a refusal, not a crash.
        let doc = std::panic::catch_unwind(|| Document::load_mem(bytes))
            .map_err(|_| "the PDF is too damaged to read".to_owned())?
            .map_err(|e| describe_load_error(&e))?;
        if doc.is_encrypted() && doc.encryption_state.is_none() {
            return Err("the PDF is password-protected; ask for a copy without a password".into());
        }
        let pages: Vec<ObjectId> = doc.get_pages().into_values().collect();
        if pages.is_empty() {
            return Err("the PDF has no pages".into());
        }
        Ok(Self { doc, pages })
    }

    /// How many pages the PDF has.
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    /// The scanned image of page `index` (from 0), at most `max_pixels` pixels.
    pub fn page_image(&self, index: usize, max_pixels: u64) -> Result<PdfPageImage, String> {
        let page_id = *self.pages.get(index).ok_or("no such page")?;
        // Nothing is left half-changed if extraction panics: it only reads the parsed document.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.extract(page_id, max_pixels)
        }));
        result.unwrap_or_else(|_| Err("the page is too damaged to read".into()))
    }

    fn extract(&self, page_id: ObjectId, max_pixels: u64) -> Result<PdfPageImage, String> {
        let doc = &self.doc;
        let image = largest_image(doc, page_id)?.ok_or(
            "this PDF page holds no scanned image (it was made on a computer, not scanned); \
             print and scan it, or attach it as a digital document",
        )?;
        let dict = &image.dict;
        let width = positive(dict.get(b"Width")).ok_or("the page image has no valid width")?;
        let height = positive(dict.get(b"Height")).ok_or("the page image has no valid height")?;
        if width.saturating_mul(height) > max_pixels {
            return Err(format!(
                "the page image is {width} x {height} pixels, more than the {max_pixels} a page may have"
            ));
        }
        let dpi = page_dpi(doc, page_id, width, height);
        let filters: Vec<Vec<u8>> = image
            .filters()
            .map(|f| f.into_iter().map(<[u8]>::to_vec).collect())
            .unwrap_or_default();
        let (last, before) = match filters.split_last() {
            Some((last, before)) => (Some(last.as_slice()), before.to_vec()),
            None => (None, Vec::new()),
        };
        match last {
            Some(b"DCTDecode") => {
                let jpeg = decode_filters(image, &before, max_encoded(width, height))?;
                Ok(PdfPageImage {
                    bytes: jpeg.into(),
                    format: PageFormat::Jpeg,
                    dpi,
                })
            }
            Some(b"CCITTFaxDecode") => {
                let data = decode_filters(image, &before, max_encoded(width, height))?;
                let png = ccitt_to_png(&data, dict, width, height)?;
                Ok(PdfPageImage {
                    bytes: png.into(),
                    format: PageFormat::Png,
                    dpi,
                })
            }
            Some(b"JPXDecode") => Err(
                "the page image is JPEG 2000, which sohoa does not read; set the scanner to JPEG or TIFF"
                    .into(),
            ),
            Some(b"JBIG2Decode") => Err(
                "the page image is JBIG2, which sohoa does not read; set the scanner to TIFF (G4) or PNG"
                    .into(),
            ),
            _ => {
                let (channels, bits) = sample_layout(doc, dict)?;
                let row = (width * channels * bits).div_ceil(8);
                let expected = usize::try_from(row * height).map_err(|_| "the page image is too large")?;
                let samples = image
                    .decompressed_content_with_limit(expected)
                    .or_else(|_| {
                        if filters.is_empty() {
                            Ok(image.content.clone())
                        } else {
                            Err(())
                        }
                    })
                    .map_err(|()| {
                        "the page image's data is damaged or larger than it declares".to_owned()
                    })?;
                if samples.len() < expected {
                    return Err("the page image's data is cut short".into());
                }
                let png = samples_to_png(&samples[..expected], width, height, channels, bits)?;
                Ok(PdfPageImage {
                    bytes: png.into(),
                    format: PageFormat::Png,
                    dpi,
                })
            }
        }
    }
}

fn describe_load_error(error: &lopdf::Error) -> String {
    let text = error.to_string();
    if text.to_ascii_lowercase().contains("decrypt")
        || text.to_ascii_lowercase().contains("password")
    {
        "the PDF is password-protected; ask for a copy without a password".into()
    } else {
        format!("the PDF is damaged and cannot be read ({text})")
    }
}

fn positive(object: lopdf::Result<&Object>) -> Option<u64> {
    object
        .ok()?
        .as_i64()
        .ok()
        .and_then(|v| u64::try_from(v).ok())
        .filter(|&v| v > 0)
}

/// The largest image drawn on the page: directly, or inside a form XObject one level down.
fn largest_image(doc: &Document, page_id: ObjectId) -> Result<Option<&Stream>, String> {
    let (resources, resource_ids) = doc
        .get_page_resources(page_id)
        .map_err(|e| format!("the page's resources are damaged ({e})"))?;
    let mut dictionaries: Vec<&Dictionary> = resources.into_iter().collect();
    for id in resource_ids {
        if let Ok(dict) = doc.get_dictionary(id) {
            dictionaries.push(dict);
        }
    }
    let mut best: Option<(u64, &Stream)> = None;
    for resources in dictionaries {
        for stream in xobjects(doc, resources) {
            match stream.dict.get(b"Subtype").and_then(Object::as_name) {
                Ok(b"Image") => {
                    let area = positive(stream.dict.get(b"Width"))
                        .unwrap_or(0)
                        .saturating_mul(positive(stream.dict.get(b"Height")).unwrap_or(0));
                    if best.is_none_or(|(a, _)| area > a) {
                        best = Some((area, stream));
                    }
                }
                Ok(b"Form") => {
                    let Ok(inner) = stream.dict.get(b"Resources").and_then(|r| match r {
                        Object::Reference(id) => doc.get_dictionary(*id),
                        other => other.as_dict(),
                    }) else {
                        continue;
                    };
                    for image in xobjects(doc, inner) {
                        if image.dict.get(b"Subtype").and_then(Object::as_name).ok()
                            == Some(b"Image")
                        {
                            let area = positive(image.dict.get(b"Width"))
                                .unwrap_or(0)
                                .saturating_mul(positive(image.dict.get(b"Height")).unwrap_or(0));
                            if best.is_none_or(|(a, _)| area > a) {
                                best = Some((area, image));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Ok(best.map(|(_, stream)| stream))
}

fn xobjects<'a>(doc: &'a Document, resources: &'a Dictionary) -> Vec<&'a Stream> {
    let Ok(xobject) = resources.get(b"XObject").and_then(|x| match x {
        Object::Reference(id) => doc.get_dictionary(*id),
        other => other.as_dict(),
    }) else {
        return Vec::new();
    };
    xobject
        .iter()
        .filter_map(|(_, value)| {
            let id = value.as_reference().ok()?;
            doc.get_object(id).ok()?.as_stream().ok()
        })
        .collect()
}

/// The resolution at which the image fills the page's MediaBox (scan-to-PDF pages are the scan).
fn page_dpi(doc: &Document, page_id: ObjectId, width: u64, height: u64) -> Option<f32> {
    let mut node = doc.get_dictionary(page_id).ok()?;
    let media_box = loop {
        if let Ok(object) = node.get(b"MediaBox") {
            let array = match object {
                Object::Reference(id) => doc.get_object(*id).ok()?.as_array().ok()?,
                other => other.as_array().ok()?,
            };
            break array
                .iter()
                .filter_map(|o| {
                    o.as_float()
                        .ok()
                        .or_else(|| o.as_i64().ok().map(|i| i as f32))
                })
                .collect::<Vec<f32>>();
        }
        let parent = node.get(b"Parent").ok()?.as_reference().ok()?;
        node = doc.get_dictionary(parent).ok()?;
    };
    let [x0, y0, x1, y1] = <[f32; 4]>::try_from(media_box).ok()?;
    let (mut w_in, mut h_in) = ((x1 - x0).abs() / 72.0, (y1 - y0).abs() / 72.0);
    // A page shown turned a quarter has its image the other way round.
    if (width > height) != (w_in > h_in) {
        std::mem::swap(&mut w_in, &mut h_in);
    }
    if w_in < 0.5 || h_in < 0.5 {
        return None;
    }
    let dpi = (width as f32 / w_in + height as f32 / h_in) / 2.0;
    (10.0..=4800.0).contains(&dpi).then_some(dpi)
}

/// An upper bound on an image's encoded size: no compressed image is larger than its raw samples plus
/// change.
fn max_encoded(width: u64, height: u64) -> usize {
    usize::try_from(
        width
            .saturating_mul(height)
            .saturating_mul(4)
            .saturating_add(1 << 20),
    )
    .unwrap_or(usize::MAX)
}

/// Undoes `filters` (the ones before the image codec) with lopdf's bounded decoders.
fn decode_filters(image: &Stream, filters: &[Vec<u8>], limit: usize) -> Result<Vec<u8>, String> {
    if filters.is_empty() {
        return Ok(image.content.clone());
    }
    let mut dict = image.dict.clone();
    dict.set(
        "Filter",
        Object::Array(filters.iter().map(|f| Object::Name(f.clone())).collect()),
    );
    dict.remove(b"DecodeParms");
    Stream::new(dict, image.content.clone())
        .decompressed_content_with_limit(limit)
        .map_err(|_| "the page image's data is damaged or larger than it declares".to_owned())
}

/// Components and bits per component of a raw image, from its colour space.
fn sample_layout(doc: &Document, dict: &Dictionary) -> Result<(u64, u64), String> {
    let bits = dict
        .get(b"BitsPerComponent")
        .and_then(Object::as_i64)
        .unwrap_or(8);
    if dict
        .get(b"ImageMask")
        .and_then(Object::as_bool)
        .unwrap_or(false)
    {
        return Ok((1, 1));
    }
    let space = dict.get(b"ColorSpace").ok().map(|s| match s {
        Object::Reference(id) => doc.get_object(*id).unwrap_or(s),
        other => other,
    });
    let channels = match space {
        Some(Object::Name(name)) => match name.as_slice() {
            b"DeviceGray" | b"CalGray" => 1,
            b"DeviceRGB" | b"CalRGB" => 3,
            other => {
                return Err(format!(
                    "the page image uses the {} colour space, which sohoa does not read; scan in colour or grey",
                    String::from_utf8_lossy(other)
                ));
            }
        },
        Some(Object::Array(items))
            if items.first().and_then(|f| f.as_name().ok()) == Some(b"ICCBased") =>
        {
            let n = items
                .get(1)
                .and_then(|r| r.as_reference().ok())
                .and_then(|id| doc.get_object(id).ok())
                .and_then(|o| o.as_stream().ok())
                .and_then(|s| s.dict.get(b"N").and_then(Object::as_i64).ok())
                .unwrap_or(3);
            match n {
                1 => 1,
                3 => 3,
                _ => {
                    return Err(
                        "the page image is CMYK, which sohoa does not read; scan in colour or grey"
                            .into(),
                    );
                }
            }
        }
        _ => {
            return Err(
                "the page image uses a colour space sohoa does not read (indexed, CMYK or special); \
                 scan in colour or grey"
                    .into(),
            );
        }
    };
    match bits {
        1 | 8 if channels == 1 || bits == 8 => Ok((channels, bits as u64)),
        _ => Err(format!(
            "the page image has {bits} bits per sample, which sohoa does not read from a PDF"
        )),
    }
}

fn samples_to_png(
    samples: &[u8],
    width: u64,
    height: u64,
    channels: u64,
    bits: u64,
) -> Result<Vec<u8>, String> {
    let (w, h) = (
        u32::try_from(width).map_err(|_| "the page image is too wide")?,
        u32::try_from(height).map_err(|_| "the page image is too tall")?,
    );
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(if channels == 3 {
            png::ColorType::Rgb
        } else {
            png::ColorType::Grayscale
        });
        encoder.set_depth(if bits == 1 {
            png::BitDepth::One
        } else {
            png::BitDepth::Eight
        });
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer
            .write_image_data(samples)
            .map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// Decodes a CCITT Group 4 (K < 0) image to a 1-bit PNG; Group 3 is refused with a reason.
fn ccitt_to_png(
    data: &[u8],
    dict: &Dictionary,
    width: u64,
    height: u64,
) -> Result<Vec<u8>, String> {
    let params = dict.get(b"DecodeParms").ok().and_then(|p| match p {
        Object::Array(items) => items.last().and_then(|d| d.as_dict().ok()),
        other => other.as_dict().ok(),
    });
    let get = |key: &[u8]| params.and_then(|p| p.get(key).and_then(Object::as_i64).ok());
    if get(b"K").unwrap_or(0) >= 0 {
        return Err(
            "the page image is CCITT Group 3, which sohoa does not read; set the scanner to G4"
                .into(),
        );
    }
    let columns = u16::try_from(get(b"Columns").map_or(width, |c| c.max(1) as u64))
        .map_err(|_| "the page image is too wide for CCITT")?;
    let rows = u16::try_from(height).map_err(|_| "the page image is too tall for CCITT")?;
    let row_bytes = usize::from(columns).div_ceil(8);
    let mut packed = Vec::with_capacity(row_bytes * usize::from(rows));
    fax::decoder::decode_g4(data.iter().copied(), columns, Some(rows), |transitions| {
        let mut row = vec![0u8; row_bytes];
        for (x, colour) in fax::decoder::pels(transitions, columns).enumerate() {
            // PNG grey 1-bit: 1 is white.
            if colour == fax::Color::White {
                row[x / 8] |= 0x80 >> (x % 8);
            }
        }
        packed.extend_from_slice(&row);
    })
    .ok_or("the page image's CCITT data is damaged")?;
    // Encoders may leave out trailing white lines.
    packed.resize(row_bytes * usize::from(rows), 0xFF);
    samples_to_png(&packed, u64::from(columns), u64::from(rows), 1, 1)
}
