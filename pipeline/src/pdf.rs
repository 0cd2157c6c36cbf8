//! Packaging pages into one searchable PDF, written page by page so a long dossier never sits whole in
//! memory.
//!
//! Each page is the scanned image at its true physical size (from its resolution) with an invisible text
//! layer (text render mode 3) placed on the recognised words, in the manner of Tesseract's own PDF renderer:
//! a "glyphless" CID font whose character codes are Unicode code points, so text extraction gives back the
//! OCR text and selecting text in a viewer selects the words under the pointer.

use std::io::{self, Write};

use flate2::Compression;
use flate2::write::ZlibEncoder;
use image::DynamicImage;
use lopdf::{Dictionary, Object, Stream, StringFormat, Writer, dictionary};

use crate::geometry::PageGeometry;
use crate::ocr::Word;

/// Tesseract's glyphless font (Apache-2.0, from tessdata's `pdf.ttf`): one empty glyph, used for every
/// character of the invisible text layer.
const GLYPHLESS_FONT: &[u8] = include_bytes!("../assets/glyphless.ttf");

/// The sRGB profile of the PDF/A output intent (Debian's `icc-profiles-free`, Zlib licence).
const SRGB_PROFILE: &[u8] = include_bytes!("../assets/sRGB.icc");

/// Each glyph advances half an em, as in Tesseract's renderer; words are stretched to their boxes with `Tz`.
const GLYPH_ADVANCE: f32 = 0.5;

/// How a page image is stored in the PDF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageEncoding {
    /// The scanner's JPEG bytes, embedded as they are (no second lossy pass).
    Jpeg,
    /// The scanner's JPEG bytes, deflated: lossless, usually 1-2% smaller, since scanners write JPEG with
    /// the standard Huffman tables (what OCRmyPDF does at its default optimisation).
    JpegDeflated,
    /// Deflate-compressed 8-bit samples.
    Flate,
    /// CCITT Group 4 (the fax and scanner standard for black and white): pages that are pure black and
    /// white, typically a quarter the size of deflated bits.
    CcittGroup4,
    /// Deflate-compressed 1-bit samples, for pure black-and-white pages too wide for Group 4 (over 65,535
    /// pixels).
    FlateBilevel,
}

/// A page image ready to be written into a PDF.
#[derive(Debug, Clone)]
pub struct PdfImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Colour (three components) or grey (one).
    pub color: bool,
    /// How `data` is encoded.
    pub encoding: ImageEncoding,
    /// The encoded samples.
    pub data: Vec<u8>,
}

impl PdfImage {
    /// Embeds a JPEG as it is, deflated when that makes it smaller. `components` is 1 (grey) or 3
    /// (colour).
    pub fn jpeg(bytes: &[u8], width: u32, height: u32, components: u8) -> Self {
        let deflated = deflate(bytes).ok().filter(|d| d.len() < bytes.len());
        let (encoding, data) = match deflated {
            Some(deflated) => (ImageEncoding::JpegDeflated, deflated),
            None => (ImageEncoding::Jpeg, bytes.to_vec()),
        };
        Self {
            width,
            height,
            color: components == 3,
            encoding,
            data,
        }
    }

    /// Encodes decoded pixels as JPEG at `quality` (1-100), grey or colour as the image is, unless lossless
    /// is smaller: pure black-and-white pages go as Group 4, and a clean page (a born-digital image, few
    /// tones) that deflates smaller than its JPEG keeps its exact pixels.
    pub fn encode_jpeg(image: &DynamicImage, quality: u8) -> io::Result<Self> {
        let grey = !image.color().has_color();
        let jpeg = if grey {
            let luma = image.to_luma8();
            if is_bilevel(&luma) {
                return Self::lossless(image);
            }
            Self::jpeg_from(&DynamicImage::ImageLuma8(luma), quality, 1)?
        } else {
            Self::jpeg_from(&DynamicImage::ImageRgb8(image.to_rgb8()), quality, 3)?
        };
        // A quick deflate says whether lossless could win; only then is it made properly.
        let samples = if grey {
            image.to_luma8().into_raw()
        } else {
            image.to_rgb8().into_raw()
        };
        if deflate_with(&samples, Compression::fast())?.len() < jpeg.data.len() {
            return Self::lossless(image);
        }
        Ok(jpeg)
    }

    fn jpeg_from(image: &DynamicImage, quality: u8, components: u8) -> io::Result<Self> {
        let (width, height) = (image.width(), image.height());
        let (Ok(w), Ok(h)) = (u16::try_from(width), u16::try_from(height)) else {
            return Err(io::Error::other(
                "the page is too large for JPEG (over 65,535 pixels)",
            ));
        };
        let mut bytes = Vec::new();
        // Chroma at half resolution (4:2:0, as scanners and OCRmyPDF's Ghostscript write colour pages) and
        // Huffman tables fitted to the page: a quarter smaller than fixed tables, the same pixels.
        let mut encoder = jpeg_encoder::Encoder::new(&mut bytes, quality.clamp(1, 100));
        encoder.set_optimized_huffman_tables(true);
        encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
        let colour = if components == 3 {
            jpeg_encoder::ColorType::Rgb
        } else {
            jpeg_encoder::ColorType::Luma
        };
        encoder
            .encode(image.as_bytes(), w, h, colour)
            .map_err(io::Error::other)?;
        Ok(Self::jpeg(&bytes, width, height, components))
    }

    /// Encodes decoded pixels losslessly: 1-bit for pure black-and-white pages, 8-bit grey, or RGB.
    pub fn lossless(image: &DynamicImage) -> io::Result<Self> {
        let (width, height) = (image.width(), image.height());
        let grey = !image.color().has_color();
        if grey {
            let luma = image.to_luma8();
            if is_bilevel(&luma) {
                if let (Ok(columns), true) = (u16::try_from(width), height <= u32::from(u16::MAX)) {
                    return Ok(Self {
                        width,
                        height,
                        color: false,
                        encoding: ImageEncoding::CcittGroup4,
                        data: group4(&luma, columns),
                    });
                }
                let row_bytes = width.div_ceil(8) as usize;
                let mut packed = vec![0u8; row_bytes * height as usize];
                for (y, row) in luma.rows().enumerate() {
                    for (x, p) in row.enumerate() {
                        if p.0[0] == 255 {
                            packed[y * row_bytes + x / 8] |= 0x80 >> (x % 8);
                        }
                    }
                }
                return Ok(Self {
                    width,
                    height,
                    color: false,
                    encoding: ImageEncoding::FlateBilevel,
                    data: deflate(&packed)?,
                });
            }
            return Ok(Self {
                width,
                height,
                color: false,
                encoding: ImageEncoding::Flate,
                data: deflate(luma.as_raw())?,
            });
        }
        Ok(Self {
            width,
            height,
            color: true,
            encoding: ImageEncoding::Flate,
            data: deflate(image.to_rgb8().as_raw())?,
        })
    }

    fn stream(&self) -> Stream {
        let (filter, bits) = match self.encoding {
            ImageEncoding::Jpeg | ImageEncoding::JpegDeflated => ("DCTDecode", 8),
            ImageEncoding::Flate => ("FlateDecode", 8),
            ImageEncoding::CcittGroup4 => ("CCITTFaxDecode", 1),
            ImageEncoding::FlateBilevel => ("FlateDecode", 1),
        };
        let mut dict = dictionary! {
            "Type" => "XObject",
            "Subtype" => "Image",
            "Width" => i64::from(self.width),
            "Height" => i64::from(self.height),
            "ColorSpace" => if self.color { "DeviceRGB" } else { "DeviceGray" },
            "BitsPerComponent" => bits,
            "Filter" => filter,
        };
        if self.encoding == ImageEncoding::JpegDeflated {
            dict.set(
                "Filter",
                vec![Object::from("FlateDecode"), Object::from("DCTDecode")],
            );
        }
        if self.encoding == ImageEncoding::CcittGroup4 {
            // K < 0 is Group 4; black pixels decode to 0, black in DeviceGray.
            dict.set(
                "DecodeParms",
                dictionary! {
                    "K" => -1,
                    "Columns" => i64::from(self.width),
                    "Rows" => i64::from(self.height),
                    "BlackIs1" => false,
                },
            );
        }
        Stream::new(dict, self.data.clone()).with_compression(false)
    }
}

fn is_bilevel(page: &image::GrayImage) -> bool {
    page.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255)
}

/// Encodes a black-and-white page (every pixel 0 or 255) with CCITT Group 4.
fn group4(page: &image::GrayImage, columns: u16) -> Vec<u8> {
    let mut encoder = fax::encoder::Encoder::new(fax::VecWriter::new());
    for row in page.rows() {
        let pels = row.map(|p| {
            if p.0[0] == 0 {
                fax::Color::Black
            } else {
                fax::Color::White
            }
        });
        // Writing to memory cannot fail.
        let Ok(()) = encoder.encode_line(pels, columns);
    }
    let Ok(writer) = encoder.finish();
    writer.finish()
}

fn deflate(data: &[u8]) -> io::Result<Vec<u8>> {
    deflate_with(data, Compression::default())
}

fn deflate_with(data: &[u8], level: Compression) -> io::Result<Vec<u8>> {
    let mut encoder = ZlibEncoder::new(Vec::with_capacity(data.len() / 4), level);
    encoder.write_all(data)?;
    encoder.finish()
}

/// What the packaged PDF says about itself, in its document information and, the same, in its XMP
/// metadata (PDF/A asks both to agree).
#[derive(Debug, Clone, Default)]
pub struct DocumentInfo {
    /// The document's title (the dossier code and kind, say).
    pub title: String,
    /// Who made the document: the agency (unit).
    pub author: String,
    /// A longer description: procedure, unit.
    pub subject: String,
    /// Search keywords.
    pub keywords: String,
    /// An identifier (the dossier code), as `dc:identifier`.
    pub identifier: String,
    /// The dossier's codes, as properties of sohoa's own XMP schema (declared in the packet as PDF/A asks
    /// of any schema outside the standard ones); left out when the dossier code is empty.
    pub dossier: DossierMetadata,
    /// Date of the document, ISO 8601 with offset (`2023-11-28T00:00:00+07:00`); left out when `None`.
    /// Use a date that belongs to the document (its receipt), not the clock, so the same pages always
    /// package to the same bytes.
    pub created: Option<String>,
}

/// The dossier a document belongs to, as the XMP metadata records it.
#[derive(Debug, Clone, Default)]
pub struct DossierMetadata {
    /// Dossier code (mã hồ sơ), `000.00.15.H27-231128-0042`.
    pub dossier: String,
    /// Administrative procedure code (mã thủ tục hành chính).
    pub procedure: String,
    /// Code of the unit handling the dossier (mã đơn vị).
    pub unit: String,
    /// `submitted` (thành phần hồ sơ) or `result` (kết quả giải quyết).
    pub kind: String,
}

/// One page to write: the image, its resolution and the words on it.
pub struct PdfPage<'a> {
    /// The page image.
    pub image: &'a PdfImage,
    /// Dots per inch, giving the page's physical size.
    pub dpi: f32,
    /// The recognised words, in pixels of the page OCR read, for the text layer.
    pub words: &'a [Word],
    /// How the page OCR read maps onto the image: words land on the scan, and a page that had to be
    /// turned is shown upright (`/Rotate`) without touching the image.
    pub geometry: &'a PageGeometry,
}

/// Why packaging failed. Packaging writes to a file or buffer of ours, so this is an I/O problem, not bad
/// input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    /// Writing the PDF failed.
    #[error("cannot write the PDF: {0}")]
    Io(#[from] io::Error),
    /// The PDF serialiser failed.
    #[error("cannot write the PDF: {0}")]
    Pdf(#[from] lopdf::Error),
    /// `finish` was called with no page added.
    #[error("a PDF needs at least one page")]
    NoPages,
}

/// Writes a PDF incrementally: header and shared resources first, then each page's objects as it comes,
/// then the page tree, catalogue and cross-reference table.
pub struct PdfPackager<W: Write> {
    out: CountingWriter<W>,
    offsets: Vec<(u32, u64)>,
    next_id: u32,
    font_id: u32,
    page_ids: Vec<u32>,
    info: DocumentInfo,
    id_hasher: blake3::Hasher,
}

const CATALOG_ID: u32 = 1;
const PAGES_ID: u32 = 2;

impl<W: Write> PdfPackager<W> {
    /// Starts a PDF on `writer`.
    pub fn new(writer: W, info: DocumentInfo) -> Result<Self, PackageError> {
        let mut packager = Self {
            out: CountingWriter {
                inner: writer,
                written: 0,
            },
            offsets: Vec::new(),
            next_id: PAGES_ID + 1,
            font_id: 0,
            page_ids: Vec::new(),
            info,
            id_hasher: blake3::Hasher::new(),
        };
        // A binary comment after the header tells transfer tools the file is binary.
        packager.out.write_all(b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n")?;
        packager.font_id = packager.write_font()?;
        Ok(packager)
    }

    fn allocate(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn write(&mut self, id: u32, object: &Object) -> Result<(), PackageError> {
        self.offsets.push((id, self.out.written));
        writeln!(self.out, "{id} 0 obj")?;
        Writer::write_object(&mut self.out, object)?;
        self.out.write_all(b"\nendobj\n")?;
        Ok(())
    }

    fn write_new(&mut self, object: &Object) -> Result<u32, PackageError> {
        let id = self.allocate();
        self.write(id, object)?;
        Ok(id)
    }

    /// The glyphless Type0 font shared by every page's text layer.
    fn write_font(&mut self) -> Result<u32, PackageError> {
        let file = Stream::new(
            dictionary! { "Length1" => GLYPHLESS_FONT.len() as i64 },
            GLYPHLESS_FONT.to_vec(),
        );
        let file_id = self.write_new(&Object::Stream(file))?;
        let descriptor_id = self.write_new(&Object::Dictionary(dictionary! {
            "Type" => "FontDescriptor",
            "FontName" => "GlyphLessFont",
            "FontBBox" => vec![0.into(), 0.into(), 500.into(), 1000.into()],
            "Flags" => 5,
            "ItalicAngle" => 0,
            "Ascent" => 1000,
            "Descent" => 0,
            "CapHeight" => 1000,
            "StemV" => 80,
            "FontFile2" => Object::Reference((file_id, 0)),
        }))?;
        // Every character code maps to glyph 1, the font's only glyph.
        let gid_map: Vec<u8> = std::iter::repeat_n([0u8, 1u8], 65536).flatten().collect();
        let gid_map_id = self.write_new(&Object::Stream(
            Stream::new(
                dictionary! { "Filter" => "FlateDecode" },
                deflate(&gid_map)?,
            )
            .with_compression(false),
        ))?;
        let cid_font_id = self.write_new(&Object::Dictionary(dictionary! {
            "Type" => "Font",
            "Subtype" => "CIDFontType2",
            "BaseFont" => "GlyphLessFont",
            "CIDSystemInfo" => dictionary! {
                "Registry" => Object::string_literal("Adobe"),
                "Ordering" => Object::string_literal("Identity"),
                "Supplement" => 0,
            },
            "FontDescriptor" => Object::Reference((descriptor_id, 0)),
            "CIDToGIDMap" => Object::Reference((gid_map_id, 0)),
            "DW" => (1000.0 * GLYPH_ADVANCE) as i64,
        }))?;
        let to_unicode_id = self.write_new(&Object::Stream(Stream::new(
            Dictionary::new(),
            TO_UNICODE_CMAP.as_bytes().to_vec(),
        )))?;
        self.write_new(&Object::Dictionary(dictionary! {
            "Type" => "Font",
            "Subtype" => "Type0",
            "BaseFont" => "GlyphLessFont",
            "Encoding" => "Identity-H",
            "DescendantFonts" => vec![Object::Reference((cid_font_id, 0))],
            "ToUnicode" => Object::Reference((to_unicode_id, 0)),
        }))
    }

    /// Appends a page.
    ///
    /// The page is the page OCR read: upright and straight. The scan is drawn onto it turned and
    /// straightened by the viewer, at its true physical size, from the untouched image; a straightened
    /// page grows by the few millimetres its corners need. The invisible words then lie horizontal on the
    /// lines, so text extraction keeps lines whole.
    pub fn add_page(&mut self, page: PdfPage<'_>) -> Result<(), PackageError> {
        let geometry = page.geometry;
        // Points per pixel of the OCR image: the scan's pixels are 72/dpi points, OCR's 1/scale as many.
        let scale = 72.0 / page.dpi / geometry.scale;
        let (left, top, right, bottom) = geometry.ocr_bounds();
        let width_pt = (right - left) * scale;
        let height_pt = (bottom - top) * scale;
        let to_page = |(u, v): (f32, f32)| ((u - left) * scale, (bottom - v) * scale);
        // Where the image's unit square goes: its bottom-left, bottom-right and top-left corners.
        let (w, h) = (geometry.scan_width as f32, geometry.scan_height as f32);
        let origin = to_page(geometry.to_ocr(0.0, h));
        let across = to_page(geometry.to_ocr(w, h));
        let up = to_page(geometry.to_ocr(0.0, 0.0));
        let placement = [
            across.0 - origin.0,
            across.1 - origin.1,
            up.0 - origin.0,
            up.1 - origin.1,
            origin.0,
            origin.1,
        ];
        self.id_hasher.update(&page.image.data);

        let image_id = self.write_new(&Object::Stream(page.image.stream()))?;
        let content = page_content(placement, scale, (left, bottom), page.words);
        self.id_hasher.update(&content);
        let content_id = self.write_new(&Object::Stream(
            Stream::new(
                dictionary! { "Filter" => "FlateDecode" },
                deflate(&content)?,
            )
            .with_compression(false),
        ))?;
        let page_id = self.write_new(&Object::Dictionary(dictionary! {
            "Type" => "Page",
            "Parent" => Object::Reference((PAGES_ID, 0)),
            "MediaBox" => vec![0.into(), 0.into(), Object::Real(width_pt), Object::Real(height_pt)],
            "Resources" => dictionary! {
                "XObject" => dictionary! { "Im0" => Object::Reference((image_id, 0)) },
                "Font" => dictionary! { "F0" => Object::Reference((self.font_id, 0)) },
            },
            "Contents" => Object::Reference((content_id, 0)),
        }))?;
        self.page_ids.push(page_id);
        Ok(())
    }

    /// Writes the page tree, catalogue, document information and cross-reference table, and returns the
    /// writer.
    pub fn finish(mut self) -> Result<W, PackageError> {
        if self.page_ids.is_empty() {
            return Err(PackageError::NoPages);
        }
        let kids: Vec<Object> = self
            .page_ids
            .iter()
            .map(|&id| Object::Reference((id, 0)))
            .collect();
        let count = kids.len() as i64;
        self.write(
            PAGES_ID,
            &Object::Dictionary(
                dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count },
            ),
        )?;
        // PDF/A-2b: an sRGB output intent with its profile, and XMP metadata saying what Info says.
        let profile_id = self.write_new(&Object::Stream(
            Stream::new(
                dictionary! { "N" => 3, "Filter" => "FlateDecode" },
                deflate(SRGB_PROFILE)?,
            )
            .with_compression(false),
        ))?;
        // The document ID is derived from the content, so the same pages always give the same file.
        self.id_hasher.update(self.info.title.as_bytes());
        let id = self.id_hasher.finalize().as_bytes()[..16].to_vec();
        let producer = concat!("sohoa ", env!("CARGO_PKG_VERSION"));
        let metadata_id = self.write_new(&Object::Stream(
            Stream::new(
                dictionary! { "Type" => "Metadata", "Subtype" => "XML" },
                xmp_packet(&self.info, producer, &id).into_bytes(),
            )
            .with_compression(false),
        ))?;
        self.write(
            CATALOG_ID,
            &Object::Dictionary(dictionary! {
                "Type" => "Catalog",
                "Pages" => Object::Reference((PAGES_ID, 0)),
                "Metadata" => Object::Reference((metadata_id, 0)),
                "OutputIntents" => vec![Object::Dictionary(dictionary! {
                    "Type" => "OutputIntent",
                    "S" => "GTS_PDFA1",
                    "OutputConditionIdentifier" => Object::string_literal("sRGB IEC61966-2.1"),
                    "Info" => Object::string_literal("sRGB IEC61966-2.1"),
                    "RegistryName" => Object::string_literal("http://www.color.org"),
                    "DestOutputProfile" => Object::Reference((profile_id, 0)),
                })],
            }),
        )?;
        let mut info = dictionary! {
            "Title" => lopdf::text_string(&self.info.title),
            "Author" => lopdf::text_string(&self.info.author),
            "Subject" => lopdf::text_string(&self.info.subject),
            "Keywords" => lopdf::text_string(&self.info.keywords),
            "Creator" => Object::string_literal("sohoa"),
            "Producer" => Object::string_literal(producer),
        };
        if let Some(created) = self.info.created.as_deref().and_then(pdf_date) {
            info.set("CreationDate", Object::string_literal(created.as_str()));
            info.set("ModDate", Object::string_literal(created.as_str()));
        }
        let info_id = self.write_new(&Object::Dictionary(info))?;

        let xref_at = self.out.written;
        let size = self.next_id;
        self.offsets.sort_unstable();
        write!(self.out, "xref\n0 {size}\n0000000000 65535 f \n")?;
        for (_, offset) in &self.offsets {
            writeln!(self.out, "{offset:010} 00000 n ")?;
        }
        self.out.write_all(b"trailer\n")?;
        let trailer = dictionary! {
            "Size" => i64::from(size),
            "Root" => Object::Reference((CATALOG_ID, 0)),
            "Info" => Object::Reference((info_id, 0)),
            "ID" => vec![
                Object::String(id.clone(), StringFormat::Hexadecimal),
                Object::String(id, StringFormat::Hexadecimal),
            ],
        };
        Writer::write_object(&mut self.out, &Object::Dictionary(trailer))?;
        write!(self.out, "\nstartxref\n{xref_at}\n%%EOF\n")?;
        self.out.flush()?;
        Ok(self.out.inner)
    }
}

/// The page's content stream: the image placed by `placement` (a `cm` matrix), then one invisible,
/// horizontally stretched run of text per word, with a trailing space so extracted text keeps its word
/// breaks. Words are in OCR-image pixels; `scale` is points per pixel and `(left, bottom)` the OCR-image
/// point at the page's bottom-left corner.
fn page_content(
    placement: [f32; 6],
    scale: f32,
    (left, bottom): (f32, f32),
    words: &[Word],
) -> Vec<u8> {
    use std::fmt::Write as _;
    let [a, b, c, d, e, f] = placement;
    let mut ops = format!("q\n{a:.4} {b:.4} {c:.4} {d:.4} {e:.4} {f:.4} cm\n/Im0 Do\nQ\n");
    let page_bottom = bottom;
    if !words.is_empty() {
        // Every word of a line sits on the line's bottom and takes the line's height: words with and
        // without descenders then share a baseline, and text extraction keeps them on one line, in order.
        let mut lines: std::collections::HashMap<u32, (u32, u32)> =
            std::collections::HashMap::new();
        for word in words {
            let (top, bottom) = lines.entry(word.line).or_insert((word.y, word.y + word.h));
            *top = (*top).min(word.y);
            *bottom = (*bottom).max(word.y + word.h);
        }
        ops.push_str("BT\n3 Tr\n");
        for (i, word) in words.iter().enumerate() {
            let next_on_line = words
                .get(i + 1)
                .filter(|n| n.line == word.line && n.x > word.x);
            let mut codes: Vec<u16> = word.text.chars().filter_map(bmp_code).collect();
            let span_px = match next_on_line {
                Some(next) => {
                    codes.push(u16::from(b' '));
                    next.x - word.x
                }
                None => word.w,
            };
            let (top, bottom) = lines[&word.line];
            if codes.is_empty() || bottom <= top {
                continue;
            }
            let font_size = ((bottom - top) as f32 * scale).max(1.0);
            let natural_width = codes.len() as f32 * font_size * GLYPH_ADVANCE;
            let stretch = 100.0 * (span_px.max(1) as f32 * scale) / natural_width;
            let x = (word.x as f32 - left) * scale;
            let baseline = (page_bottom - bottom as f32) * scale;
            let hex: String = codes.iter().map(|c| format!("{c:04X}")).collect();
            let _ = writeln!(
                ops,
                "/F0 {font_size:.2} Tf {stretch:.2} Tz 1 0 0 1 {x:.2} {baseline:.2} Tm <{hex}> Tj"
            );
        }
        ops.push_str("ET\n");
    }
    ops.into_bytes()
}

/// The XMP packet: PDF/A-2b identification, Dublin Core title, creator, description, subject, identifier and
/// date, and the PDF and XMP properties that mirror the document information dictionary.
fn xmp_packet(info: &DocumentInfo, producer: &str, id: &[u8]) -> String {
    let e = xml_escape;
    let mut dates = String::new();
    let mut dc_date = String::new();
    if let Some(created) = &info.created {
        let created = e(created);
        dates = format!(
            "   <xmp:CreateDate>{created}</xmp:CreateDate>\n   <xmp:ModifyDate>{created}</xmp:ModifyDate>\n   <xmp:MetadataDate>{created}</xmp:MetadataDate>\n"
        );
        dc_date = format!("   <dc:date><rdf:Seq><rdf:li>{created}</rdf:li></rdf:Seq></dc:date>\n");
    }
    let subjects: String = info
        .keywords
        .split_whitespace()
        .map(|k| format!("<rdf:li>{}</rdf:li>", e(k)))
        .collect();
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>
<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">
 <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">
  <rdf:Description rdf:about=\"\"
    xmlns:pdfaid=\"http://www.aiim.org/pdfa/ns/id/\"
    xmlns:dc=\"http://purl.org/dc/elements/1.1/\"
    xmlns:pdf=\"http://ns.adobe.com/pdf/1.3/\"
    xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\"
    xmlns:xmpMM=\"http://ns.adobe.com/xap/1.0/mm/\">
   <pdfaid:part>2</pdfaid:part>
   <pdfaid:conformance>B</pdfaid:conformance>
   <dc:format>application/pdf</dc:format>
   <dc:title><rdf:Alt><rdf:li xml:lang=\"x-default\">{title}</rdf:li></rdf:Alt></dc:title>
   <dc:creator><rdf:Seq><rdf:li>{author}</rdf:li></rdf:Seq></dc:creator>
   <dc:description><rdf:Alt><rdf:li xml:lang=\"x-default\">{subject}</rdf:li></rdf:Alt></dc:description>
   <dc:subject><rdf:Bag>{subjects}</rdf:Bag></dc:subject>
   <dc:identifier>{identifier}</dc:identifier>
{dc_date}   <pdf:Keywords>{keywords}</pdf:Keywords>
   <pdf:Producer>{producer}</pdf:Producer>
   <xmp:CreatorTool>sohoa</xmp:CreatorTool>
   <xmpMM:DocumentID>uuid:{uuid}</xmpMM:DocumentID>
{dates}  </rdf:Description>
{dossier} </rdf:RDF>
</x:xmpmeta>
<?xpacket end=\"w\"?>",
        title = e(&info.title),
        author = e(&info.author),
        subject = e(&info.subject),
        identifier = e(&info.identifier),
        keywords = e(&info.keywords),
        producer = e(producer),
        uuid = uuid(id),
        dossier = dossier_xmp(&info.dossier),
    )
}

/// The 16 bytes of the document ID as a UUID string.
fn uuid(id: &[u8]) -> String {
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    if hex.len() < 32 {
        return hex;
    }
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// sohoa's namespace for dossier properties in XMP.
const SOHOA_NS: &str = "urn:x-sohoa:ns:dossier:1.0/";

/// The dossier's codes in sohoa's namespace, with the PDF/A extension schema that declares them.
fn dossier_xmp(dossier: &DossierMetadata) -> String {
    if dossier.dossier.is_empty() {
        return String::new();
    }
    let e = xml_escape;
    let properties = [
        ("dossier", "Dossier code (mã hồ sơ)", &dossier.dossier),
        (
            "procedure",
            "Administrative procedure code (mã thủ tục hành chính)",
            &dossier.procedure,
        ),
        (
            "unit",
            "Code of the unit handling the dossier (mã đơn vị)",
            &dossier.unit,
        ),
        (
            "kind",
            "submitted (thành phần hồ sơ) or result (kết quả giải quyết)",
            &dossier.kind,
        ),
    ];
    let mut declared = String::new();
    let mut values = String::new();
    for (name, description, value) in properties {
        declared.push_str(&format!(
            "        <rdf:li rdf:parseType=\"Resource\">\n         <pdfaProperty:name>{name}</pdfaProperty:name>\n         <pdfaProperty:valueType>Text</pdfaProperty:valueType>\n         <pdfaProperty:category>external</pdfaProperty:category>\n         <pdfaProperty:description>{}</pdfaProperty:description>\n        </rdf:li>\n",
            e(description)
        ));
        values.push_str(&format!("   <sohoa:{name}>{}</sohoa:{name}>\n", e(value)));
    }
    format!(
        "  <rdf:Description rdf:about=\"\"
    xmlns:pdfaExtension=\"http://www.aiim.org/pdfa/ns/extension/\"
    xmlns:pdfaSchema=\"http://www.aiim.org/pdfa/ns/schema#\"
    xmlns:pdfaProperty=\"http://www.aiim.org/pdfa/ns/property#\">
   <pdfaExtension:schemas>
    <rdf:Bag>
     <rdf:li rdf:parseType=\"Resource\">
      <pdfaSchema:schema>sohoa dossier</pdfaSchema:schema>
      <pdfaSchema:namespaceURI>{SOHOA_NS}</pdfaSchema:namespaceURI>
      <pdfaSchema:prefix>sohoa</pdfaSchema:prefix>
      <pdfaSchema:property>
       <rdf:Seq>
{declared}       </rdf:Seq>
      </pdfaSchema:property>
     </rdf:li>
    </rdf:Bag>
   </pdfaExtension:schemas>
  </rdf:Description>
  <rdf:Description rdf:about=\"\" xmlns:sohoa=\"{SOHOA_NS}\">
{values}  </rdf:Description>
"
    )
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// `2023-11-28T09:30:00+07:00` as a PDF date, `D:20231128093000+07'00'`; `None` if not in that form.
fn pdf_date(iso: &str) -> Option<String> {
    let b = iso.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        let part = iso.get(range)?;
        part.bytes().all(|c| c.is_ascii_digit()).then_some(part)
    };
    if b.len() != 25 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    let sign = match b[19] {
        s @ (b'+' | b'-') => s as char,
        _ => return None,
    };
    Some(format!(
        "D:{}{}{}{}{}{}{sign}{}'{}'",
        digits(0..4)?,
        digits(5..7)?,
        digits(8..10)?,
        digits(11..13)?,
        digits(14..16)?,
        digits(17..19)?,
        digits(20..22)?,
        digits(23..25)?
    ))
}

/// The glyphless font's character codes are UTF-16 code units; characters outside the Basic Multilingual
/// Plane (none occur in Vietnamese) are left out of the text layer.
fn bmp_code(c: char) -> Option<u16> {
    u16::try_from(u32::from(c)).ok()
}

/// Maps every two-byte code to the same Unicode code point.
const TO_UNICODE_CMAP: &str = "/CIDInit /ProcSet findresource begin
12 dict begin
begincmap
/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def
/CMapName /Adobe-Identity-UCS def
/CMapType 2 def
1 begincodespacerange
<0000> <FFFF>
endcodespacerange
1 beginbfrange
<0000> <FFFF> <0000>
endbfrange
endcmap
CMapName currentdict /CMap defineresource pop
end
end
";

struct CountingWriter<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str, x: u32, line: u32) -> Word {
        Word {
            text: text.to_owned(),
            x,
            y: 100 + 60 * line,
            w: 40 * text.chars().count() as u32,
            h: 40,
            conf: 95.0,
            line,
        }
    }

    fn sample_pdf() -> Vec<u8> {
        let image = PdfImage::lossless(&DynamicImage::ImageLuma8(image::GrayImage::from_pixel(
            600,
            300,
            image::Luma([200]),
        )))
        .unwrap();
        let words = [
            word("Giấy", 10, 0),
            word("đất", 200, 0),
            word("Hương", 10, 1),
        ];
        let mut packager = PdfPackager::new(Vec::new(), DocumentInfo::default()).unwrap();
        for _ in 0..2 {
            packager
                .add_page(PdfPage {
                    image: &image,
                    dpi: 150.0,
                    words: &words,
                    geometry: &PageGeometry::identity(600, 300),
                })
                .unwrap();
        }
        packager.finish().unwrap()
    }

    #[test]
    fn pages_get_their_physical_size_and_the_text_layer_extracts() {
        let pdf = sample_pdf();
        let doc = lopdf::Document::load_mem(&pdf).expect("lopdf reads back what we wrote");
        let pages = doc.get_pages();
        assert_eq!(pages.len(), 2);
        let page = doc.get_dictionary(pages[&1]).unwrap();
        let media_box = page.get(b"MediaBox").unwrap().as_array().unwrap();
        // 600 x 300 pixels at 150 dpi is 4 x 2 inches.
        assert_eq!(media_box[2].as_float().unwrap(), 288.0);
        assert_eq!(media_box[3].as_float().unwrap(), 144.0);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sample.pdf");
        std::fs::write(&path, &pdf).unwrap();
        let check = std::process::Command::new("qpdf")
            .arg("--check")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "qpdf --check: {}",
            String::from_utf8_lossy(&check.stdout)
        );
        let text = std::process::Command::new("pdftotext")
            .arg(&path)
            .arg("-")
            .output()
            .unwrap();
        let text = String::from_utf8(text.stdout).unwrap();
        assert!(
            text.contains("Giấy đất"),
            "words of a line keep their space: {text:?}"
        );
        assert!(text.contains("Hương"), "{text:?}");
    }

    #[test]
    fn the_same_pages_package_to_the_same_bytes() {
        assert_eq!(sample_pdf(), sample_pdf());
    }

    #[test]
    fn pure_black_and_white_pages_are_stored_with_group_4_and_decode_to_the_same_pixels() {
        let mut page = image::GrayImage::from_pixel(37, 20, image::Luma([255]));
        for (x, y) in [(0, 0), (36, 0), (5, 7), (6, 7), (7, 7), (20, 19)] {
            page.put_pixel(x, y, image::Luma([0]));
        }
        let image = PdfImage::lossless(&DynamicImage::ImageLuma8(page.clone())).unwrap();
        assert_eq!(image.encoding, ImageEncoding::CcittGroup4);
        let mut lines = Vec::new();
        fax::decoder::decode_g4(image.data.iter().copied(), 37, Some(20), |transitions| {
            let row: Vec<u8> = fax::decoder::pels(transitions, 37)
                .map(|c| if c == fax::Color::Black { 0 } else { 255 })
                .collect();
            lines.push(row);
        })
        .expect("a valid Group 4 stream");
        assert_eq!(lines.concat(), page.into_raw());
        let stream = image.stream();
        let parms = stream.dict.get(b"DecodeParms").unwrap().as_dict().unwrap();
        assert_eq!(parms.get(b"K").unwrap().as_i64().unwrap(), -1);
        assert_eq!(parms.get(b"Columns").unwrap().as_i64().unwrap(), 37);
    }

    #[test]
    fn colour_and_grey_pages_become_one_jpeg_pass_and_black_and_white_stays_group_4() {
        // Paper photographed: tones that vary from pixel to pixel, as scanner noise makes them.
        let noise = |x: u32, y: u32| ((x.wrapping_mul(7919) ^ y.wrapping_mul(104_729)) % 23) as u8;
        let colour = DynamicImage::ImageRgb8(image::RgbImage::from_fn(300, 200, |x, y| {
            image::Rgb([200 + noise(x, y), 190 + noise(y, x), 170 + noise(x + 1, y)])
        }));
        let jpeg = PdfImage::encode_jpeg(&colour, 85).unwrap();
        assert!(matches!(
            jpeg.encoding,
            ImageEncoding::Jpeg | ImageEncoding::JpegDeflated
        ));
        assert!(jpeg.color);
        let lossless = PdfImage::lossless(&colour).unwrap();
        assert!(
            jpeg.data.len() < lossless.data.len() / 3,
            "{} vs {}",
            jpeg.data.len(),
            lossless.data.len()
        );
        let mut bytes = jpeg.data.clone();
        if jpeg.encoding == ImageEncoding::JpegDeflated {
            use std::io::Read;
            bytes.clear();
            flate2::read::ZlibDecoder::new(jpeg.data.as_slice())
                .read_to_end(&mut bytes)
                .unwrap();
        }
        let back = image::load_from_memory(&bytes).unwrap();
        assert_eq!((back.width(), back.height()), (300, 200));

        let grey = DynamicImage::ImageLuma8(image::GrayImage::from_fn(300, 200, |x, y| {
            image::Luma([200 + noise(x, y)])
        }));
        let jpeg = PdfImage::encode_jpeg(&grey, 85).unwrap();
        assert!(matches!(
            jpeg.encoding,
            ImageEncoding::Jpeg | ImageEncoding::JpegDeflated
        ));
        assert!(!jpeg.color);

        // A clean, born-digital page of sharp tones deflates to less than its JPEG: it keeps its exact
        // pixels.
        let flat = DynamicImage::ImageLuma8(image::GrayImage::from_fn(300, 200, |x, y| {
            image::Luma([[0, 128, 255][((x / 3 + y / 5) % 3) as usize]])
        }));
        assert_eq!(
            PdfImage::encode_jpeg(&flat, 85).unwrap().encoding,
            ImageEncoding::Flate
        );

        let bilevel = DynamicImage::ImageLuma8(image::GrayImage::from_fn(300, 200, |x, y| {
            image::Luma([if (x / 10 + y / 10) % 2 == 0 { 0 } else { 255 }])
        }));
        let encoded = PdfImage::encode_jpeg(&bilevel, 85).unwrap();
        assert_eq!(encoded.encoding, ImageEncoding::CcittGroup4);
    }

    #[test]
    fn an_empty_document_is_refused() {
        let packager = PdfPackager::new(Vec::new(), DocumentInfo::default()).unwrap();
        assert!(matches!(packager.finish(), Err(PackageError::NoPages)));
    }

    #[test]
    fn the_pdf_claims_pdfa_2b_with_an_srgb_output_intent_and_matching_metadata() {
        let image = PdfImage::lossless(&DynamicImage::ImageLuma8(image::GrayImage::from_pixel(
            60,
            30,
            image::Luma([200]),
        )))
        .unwrap();
        let info = DocumentInfo {
            title: "000.00.15.H27-231128-0042 (result)".into(),
            author: "000.00.15.H27".into(),
            subject: "Thủ tục <đất> & nhà".into(),
            keywords: "000.00.15.H27-231128-0042 1.001234".into(),
            identifier: "000.00.15.H27-231128-0042".into(),
            dossier: DossierMetadata {
                dossier: "000.00.15.H27-231128-0042".into(),
                procedure: "1.001234".into(),
                unit: "000.00.15.H27".into(),
                kind: "result".into(),
            },
            created: Some("2023-11-28T00:00:00+07:00".into()),
        };
        let mut packager = PdfPackager::new(Vec::new(), info).unwrap();
        packager
            .add_page(PdfPage {
                image: &image,
                dpi: 300.0,
                words: &[],
                geometry: &PageGeometry::identity(60, 30),
            })
            .unwrap();
        let pdf = packager.finish().unwrap();
        let doc = lopdf::Document::load_mem(&pdf).unwrap();
        let catalog = doc.catalog().unwrap();
        let metadata_id = catalog.get(b"Metadata").unwrap().as_reference().unwrap();
        let metadata = doc.get_object(metadata_id).unwrap().as_stream().unwrap();
        assert!(metadata.dict.get(b"Filter").is_err(), "XMP stays readable");
        let xmp = String::from_utf8(metadata.content.clone()).unwrap();
        assert!(xmp.contains("<pdfaid:part>2</pdfaid:part>"), "{xmp}");
        assert!(xmp.contains("<pdfaid:conformance>B</pdfaid:conformance>"));
        assert!(
            xmp.contains("Thủ tục &lt;đất&gt; &amp; nhà"),
            "escaped: {xmp}"
        );
        assert!(xmp.contains("<xmp:CreateDate>2023-11-28T00:00:00+07:00</xmp:CreateDate>"));
        // The dossier's codes, in sohoa's schema, which the packet declares as PDF/A asks.
        assert!(xmp.contains("<sohoa:dossier>000.00.15.H27-231128-0042</sohoa:dossier>"));
        assert!(xmp.contains("<sohoa:procedure>1.001234</sohoa:procedure>"));
        assert!(xmp.contains("<sohoa:unit>000.00.15.H27</sohoa:unit>"));
        assert!(xmp.contains(&format!(
            "<pdfaSchema:namespaceURI>{SOHOA_NS}</pdfaSchema:namespaceURI>"
        )));
        for name in ["dossier", "procedure", "unit", "kind"] {
            assert!(xmp.contains(&format!("<pdfaProperty:name>{name}</pdfaProperty:name>")));
        }
        // The XMP document ID is the trailer's.
        let trailer_id = doc.trailer.get(b"ID").unwrap().as_array().unwrap()[0]
            .as_str()
            .unwrap()
            .to_vec();
        assert!(xmp.contains(&format!(
            "<xmpMM:DocumentID>uuid:{}</xmpMM:DocumentID>",
            uuid(&trailer_id)
        )));
        let intents = catalog.get(b"OutputIntents").unwrap().as_array().unwrap();
        let intent = intents[0].as_dict().unwrap();
        assert_eq!(intent.get(b"S").unwrap().as_name().unwrap(), b"GTS_PDFA1");
        let profile_id = intent
            .get(b"DestOutputProfile")
            .unwrap()
            .as_reference()
            .unwrap();
        let mut profile = doc
            .get_object(profile_id)
            .unwrap()
            .as_stream()
            .unwrap()
            .clone();
        profile.decompress().unwrap();
        assert_eq!(&profile.content[36..40], b"acsp", "an ICC profile");
        assert_eq!(&profile.content[16..19], b"RGB");
        let info_id = doc.trailer.get(b"Info").unwrap().as_reference().unwrap();
        let info = doc.get_dictionary(info_id).unwrap();
        assert_eq!(
            info.get(b"CreationDate").unwrap().as_str().unwrap(),
            b"D:20231128000000+07'00'"
        );
    }

    #[test]
    fn iso_dates_become_pdf_dates_and_junk_is_left_out() {
        assert_eq!(
            pdf_date("2024-02-29T13:05:09-03:30").as_deref(),
            Some("D:20240229130509-03'30'")
        );
        assert_eq!(pdf_date("2024-02-29"), None);
        assert_eq!(pdf_date("2024-02-29T13:05:09Z"), None);
        assert_eq!(pdf_date("2024-0x-29T13:05:09+07:00"), None);
    }
}
