//! The PDF side of a certified copy: an incremental update appended to the archived PDF, which leaves every
//! original byte in place and adds
//! - the visible certification line at the top right of page 1 (form of copy, unit, signing time), in an
//!   embedded subset of DejaVu Sans with a ToUnicode map, so the copy stays PDF/A and the line extracts;
//! - an invisible signature field whose value is a `/Sig` dictionary, `adbe.pkcs7.detached`, with a
//!   `/ByteRange` over the whole file except the signature itself;
//!
//! and, for verification, finding that signature again in any PDF.

use std::collections::BTreeMap;
use std::io::Write as _;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use lopdf::{Dictionary, Object, ObjectId, Stream, Writer, dictionary};
use unicode_normalization::UnicodeNormalization;

/// DejaVu Sans (Bitstream Vera licence): covers every Vietnamese letter.
const STAMP_FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Bytes reserved for the CMS signature: room for a chain of several RSA-4096 certificates.
pub(crate) const SIGNATURE_CAPACITY: usize = 16 * 1024;

const FONT_SIZE: f32 = 7.0;
const LEADING: f32 = 8.5;
const MARGIN: f32 = 10.0;
const PADDING: f32 = 3.0;
const RESOURCE_NAME: &str = "SohoaCert";

/// What the signature dictionary says besides the signature.
pub(crate) struct SignatureFields<'a> {
    /// The signer's name (the unit).
    pub name: &'a str,
    /// Why: the form of copy.
    pub reason: &'a str,
    /// Where: the unit's code.
    pub location: &'a str,
    /// When, as a PDF date.
    pub pdf_date: &'a str,
}

/// A copy waiting for its signature: the whole file with a zero-filled `/Contents`.
pub(crate) struct Prepared {
    bytes: Vec<u8>,
    /// Offset of the `<` that opens `/Contents`.
    contents_start: usize,
    /// Offset just past the `>` that closes it.
    contents_end: usize,
}

impl Prepared {
    /// The bytes the signature covers: everything but `/Contents`'s hex string.
    pub fn signed_bytes(&self) -> [&[u8]; 2] {
        [
            &self.bytes[..self.contents_start],
            &self.bytes[self.contents_end..],
        ]
    }

    /// Puts the DER signature into `/Contents`; the file is then complete.
    pub fn finish(mut self, signature: &[u8]) -> Result<Vec<u8>, String> {
        if signature.len() > SIGNATURE_CAPACITY {
            return Err(format!(
                "the signature takes {} bytes, more than the {SIGNATURE_CAPACITY} reserved for it",
                signature.len()
            ));
        }
        let hex: String = signature.iter().map(|b| format!("{b:02X}")).collect();
        let at = self.contents_start + 1;
        self.bytes[at..at + hex.len()].copy_from_slice(hex.as_bytes());
        Ok(self.bytes)
    }
}

/// Why a PDF cannot be made into a copy.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PrepareError {
    /// The PDF could not be read.
    #[error("cannot read the document's PDF: {0}")]
    Unreadable(String),
}

/// Appends the certification line and an empty signature to `original`.
pub(crate) fn prepare(
    original: &[u8],
    lines: &[String],
    fields: &SignatureFields<'_>,
) -> Result<Prepared, PrepareError> {
    let unreadable = |e: &dyn std::fmt::Display| PrepareError::Unreadable(e.to_string());
    let doc = lopdf::Document::load_mem(original).map_err(|e| unreadable(&e))?;
    let root_id = doc
        .trailer
        .get(b"Root")
        .and_then(Object::as_reference)
        .map_err(|e| unreadable(&e))?;
    let size = doc
        .trailer
        .get(b"Size")
        .and_then(Object::as_i64)
        .ok()
        .and_then(|s| u32::try_from(s).ok())
        .unwrap_or(doc.max_id + 1)
        .max(doc.max_id + 1);
    let page_id = *doc
        .get_pages()
        .get(&1)
        .ok_or_else(|| unreadable(&"it has no pages"))?;
    let page = doc.get_dictionary(page_id).map_err(|e| unreadable(&e))?;
    let media_box = media_box(&doc, page).ok_or_else(|| unreadable(&"page 1 has no MediaBox"))?;

    let mut update = Update::new(size);
    // The stamp's font and content.
    let stamp = Stamp::layout(lines, media_box);
    let font_id = stamp.write_font(&mut update);
    let before_id = update.add(Object::Stream(Stream::new(dictionary! {}, b"q\n".to_vec())));
    let after_id = update.add(Object::Stream(
        Stream::new(dictionary! {}, stamp.content()).with_compression(false),
    ));

    // Page 1 draws its own contents inside q/Q, then the stamp; it gains the font and the field.
    let mut page = page.clone();
    let mut contents = vec![Object::Reference(before_id)];
    match page.get(b"Contents") {
        Ok(Object::Array(items)) => contents.extend(items.iter().cloned()),
        Ok(other) => contents.push(other.clone()),
        Err(_) => {}
    }
    contents.push(Object::Reference(after_id));
    page.set("Contents", contents);
    let mut resources = dict_at(&doc, &page, b"Resources");
    let mut fonts = dict_at(&doc, &resources, b"Font");
    fonts.set(RESOURCE_NAME, Object::Reference(font_id));
    resources.set("Font", fonts);
    page.set("Resources", resources);

    let signature_id = update.reserve();
    let widget_id = update.add(Object::Dictionary(dictionary! {
        "Type" => "Annot",
        "Subtype" => "Widget",
        "FT" => "Sig",
        "T" => lopdf::text_string("Chung thuc"),
        "V" => Object::Reference(signature_id),
        // Invisible (zero-size), printable and locked: the visible line is page content.
        "Rect" => vec![0.into(), 0.into(), 0.into(), 0.into()],
        "F" => 132,
        "P" => Object::Reference(page_id),
    }));
    let mut annots = array_at(&doc, &page, b"Annots");
    annots.push(Object::Reference(widget_id));
    page.set("Annots", annots);
    update.set(page_id, Object::Dictionary(page));

    let mut catalog = doc
        .get_dictionary(root_id)
        .map_err(|e| unreadable(&e))?
        .clone();
    let mut form = dict_at(&doc, &catalog, b"AcroForm");
    let mut fields_array = array_at(&doc, &form, b"Fields");
    fields_array.push(Object::Reference(widget_id));
    form.set("Fields", fields_array);
    // SignaturesExist | AppendOnly.
    form.set("SigFlags", 3);
    catalog.set("AcroForm", form);
    update.set(root_id, Object::Dictionary(catalog));

    // Write the update: original bytes, the objects, the signature dictionary last but one, xref, trailer.
    let mut out = Vec::with_capacity(original.len() + 64 * 1024);
    out.extend_from_slice(original);
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    let mut offsets: BTreeMap<u32, usize> = BTreeMap::new();
    for (id, object) in &update.objects {
        offsets.insert(id.0, out.len());
        writeln!(out, "{} {} obj", id.0, id.1).map_err(|e| unreadable(&e))?;
        Writer::write_object(&mut out, object).map_err(|e| unreadable(&e))?;
        out.extend_from_slice(b"\nendobj\n");
    }
    offsets.insert(signature_id.0, out.len());
    let (contents_start, contents_end, range_at) =
        write_signature(&mut out, signature_id, fields).map_err(|e| unreadable(&e))?;

    let xref_at = out.len();
    out.extend_from_slice(b"xref\n");
    let ids: Vec<u32> = offsets.keys().copied().collect();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        writeln!(out, "{} {}", ids[i], j - i + 1).map_err(|e| unreadable(&e))?;
        for id in &ids[i..=j] {
            writeln!(out, "{:010} 00000 n ", offsets[id]).map_err(|e| unreadable(&e))?;
        }
        i = j + 1;
    }
    let mut trailer = dictionary! {
        "Size" => i64::from(update.next),
        "Root" => Object::Reference(root_id),
        "Prev" => i64::try_from(doc.xref_start).unwrap_or(0),
    };
    if let Ok(info) = doc.trailer.get(b"Info") {
        trailer.set("Info", info.clone());
    }
    // The first ID stays the document's; the second is this revision's.
    let revision_id = blake3::hash(&out).as_bytes()[..16].to_vec();
    let first_id = doc
        .trailer
        .get(b"ID")
        .and_then(Object::as_array)
        .ok()
        .and_then(|ids| ids.first().cloned())
        .unwrap_or_else(|| Object::String(revision_id.clone(), lopdf::StringFormat::Hexadecimal));
    trailer.set(
        "ID",
        vec![
            first_id,
            Object::String(revision_id, lopdf::StringFormat::Hexadecimal),
        ],
    );
    out.extend_from_slice(b"trailer\n");
    Writer::write_object(&mut out, &Object::Dictionary(trailer)).map_err(|e| unreadable(&e))?;
    write!(out, "\nstartxref\n{xref_at}\n%%EOF\n").map_err(|e| unreadable(&e))?;

    // Now that the length is known, fill in the byte range (fixed width, so nothing moves).
    let total = out.len();
    let range = format!(
        "[0 {:>10} {:>10} {:>10}]",
        contents_start,
        contents_end,
        total - contents_end
    );
    out[range_at..range_at + range.len()].copy_from_slice(range.as_bytes());
    Ok(Prepared {
        bytes: out,
        contents_start,
        contents_end,
    })
}

/// Writes the `/Sig` dictionary with a placeholder byte range and zero-filled contents; returns where
/// the contents' `<` and past its `>` are, and where the byte range's `[` is.
fn write_signature(
    out: &mut Vec<u8>,
    id: ObjectId,
    fields: &SignatureFields<'_>,
) -> std::io::Result<(usize, usize, usize)> {
    write!(
        out,
        "{} {} obj\n<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /adbe.pkcs7.detached ",
        id.0, id.1
    )?;
    for (key, value) in [
        ("Name", fields.name),
        ("Reason", fields.reason),
        ("Location", fields.location),
    ] {
        write!(out, "/{key} ")?;
        Writer::write_object(out, &lopdf::text_string(value)).map_err(std::io::Error::other)?;
        out.push(b' ');
    }
    write!(out, "/M ")?;
    Writer::write_object(out, &Object::string_literal(fields.pdf_date))
        .map_err(std::io::Error::other)?;
    out.extend_from_slice(b" /ByteRange ");
    let range_at = out.len();
    out.extend_from_slice(format!("[0 {:>10} {:>10} {:>10}]", 0, 0, 0).as_bytes());
    out.extend_from_slice(b" /Contents ");
    let contents_start = out.len();
    out.push(b'<');
    out.extend(std::iter::repeat_n(b'0', SIGNATURE_CAPACITY * 2));
    out.push(b'>');
    let contents_end = out.len();
    out.extend_from_slice(b" >>\nendobj\n");
    Ok((contents_start, contents_end, range_at))
}

fn media_box(doc: &lopdf::Document, page: &Dictionary) -> Option<[f32; 4]> {
    let object = page.get(b"MediaBox").ok()?;
    let (_, object) = doc.dereference(object).ok()?;
    let values: Vec<f32> = object
        .as_array()
        .ok()?
        .iter()
        .filter_map(|o| {
            o.as_float()
                .ok()
                .or_else(|| o.as_i64().ok().map(|i| i as f32))
        })
        .collect();
    <[f32; 4]>::try_from(values).ok()
}

/// A copy of the dictionary under `key` in `dict`, following a reference; empty when absent.
fn dict_at(doc: &lopdf::Document, dict: &Dictionary, key: &[u8]) -> Dictionary {
    dict.get(key)
        .ok()
        .and_then(|o| doc.dereference(o).ok())
        .and_then(|(_, o)| o.as_dict().ok().cloned())
        .unwrap_or_default()
}

/// A copy of the array under `key` in `dict`, following a reference; empty when absent.
fn array_at(doc: &lopdf::Document, dict: &Dictionary, key: &[u8]) -> Vec<Object> {
    dict.get(key)
        .ok()
        .and_then(|o| doc.dereference(o).ok())
        .and_then(|(_, o)| o.as_array().ok().cloned())
        .unwrap_or_default()
}

/// New and changed objects of the update.
struct Update {
    next: u32,
    objects: BTreeMap<ObjectId, Object>,
}

impl Update {
    fn new(size: u32) -> Self {
        Self {
            next: size,
            objects: BTreeMap::new(),
        }
    }

    fn reserve(&mut self) -> ObjectId {
        let id = (self.next, 0);
        self.next += 1;
        id
    }

    fn add(&mut self, object: Object) -> ObjectId {
        let id = self.reserve();
        self.objects.insert(id, object);
        id
    }

    fn set(&mut self, id: ObjectId, object: Object) {
        self.objects.insert(id, object);
    }
}

/// The certification line laid out at the top right of page 1.
struct Stamp {
    face_units: f32,
    /// Glyph runs: the glyph ids of each line and where it starts.
    lines: Vec<(Vec<u16>, f32, f32)>,
    /// The box behind the text.
    frame: [f32; 4],
    /// Every glyph used, old id → (text, advance in font units).
    glyphs: BTreeMap<u16, (String, u16)>,
}

impl Stamp {
    fn layout(lines: &[String], media_box: [f32; 4]) -> Self {
        // The font is compiled in and known to parse.
        let face = ttf_parser::Face::parse(STAMP_FONT, 0).ok();
        let face_units = face
            .as_ref()
            .map_or(2048.0, |f| f32::from(f.units_per_em()));
        let mut glyphs = BTreeMap::new();
        let mut runs = Vec::new();
        let mut widest: f32 = 0.0;
        for line in lines {
            let mut ids = Vec::new();
            let mut width = 0.0;
            for c in line.nfc() {
                let (id, advance) = face
                    .as_ref()
                    .and_then(|f| {
                        let id = f.glyph_index(c)?;
                        Some((id.0, f.glyph_hor_advance(id).unwrap_or(0)))
                    })
                    .unwrap_or((0, 0));
                glyphs.entry(id).or_insert_with(|| (c.to_string(), advance));
                ids.push(id);
                width += f32::from(advance) * FONT_SIZE / face_units;
            }
            widest = widest.max(width);
            runs.push((ids, width));
        }
        let [_, _, right, top] = media_box;
        let height = LEADING * runs.len() as f32;
        let frame = [
            right - MARGIN - widest - 2.0 * PADDING,
            top - MARGIN - height - 2.0 * PADDING,
            widest + 2.0 * PADDING,
            height + 2.0 * PADDING,
        ];
        let lines = runs
            .into_iter()
            .enumerate()
            .map(|(i, (ids, width))| {
                let x = right - MARGIN - PADDING - width;
                let y = top - MARGIN - PADDING - LEADING * (i as f32 + 1.0) + 2.0;
                (ids, x, y)
            })
            .collect();
        Self {
            face_units,
            lines,
            frame,
            glyphs,
        }
    }

    /// Glyph ids in the subset: the order they were first given to the remapper.
    fn remapper(&self) -> subsetter::GlyphRemapper {
        let mut remapper = subsetter::GlyphRemapper::new();
        for &id in self.glyphs.keys() {
            remapper.remap(id);
        }
        remapper
    }

    fn content(&self) -> Vec<u8> {
        use std::fmt::Write as _;
        let remapper = self.remapper();
        let [x, y, w, h] = self.frame;
        let mut ops = format!(
            "Q\nq\n1 1 1 rg 0.55 0 0 RG 0.6 w\n{x:.2} {y:.2} {w:.2} {h:.2} re B\n0.55 0 0 rg\nBT\n/{RESOURCE_NAME} {FONT_SIZE} Tf\n"
        );
        for (ids, x, y) in &self.lines {
            let hex: String = ids
                .iter()
                .map(|&id| format!("{:04X}", remapper.get(id).unwrap_or(0)))
                .collect();
            let _ = writeln!(ops, "1 0 0 1 {x:.2} {y:.2} Tm <{hex}> Tj");
        }
        ops.push_str("ET\nQ\n");
        ops.into_bytes()
    }

    /// Writes the Type 0 font: a subset of the TrueType font, the glyph widths, and a ToUnicode map.
    fn write_font(&self, update: &mut Update) -> ObjectId {
        let remapper = self.remapper();
        let subset = subsetter::subset(STAMP_FONT, 0, &remapper).unwrap_or_default();
        let scale = 1000.0 / self.face_units;
        let mut widths = Vec::new();
        let mut to_unicode = String::new();
        for (&old, (text, advance)) in &self.glyphs {
            let new = remapper.get(old).unwrap_or(0);
            widths.push(Object::Integer(i64::from(new)));
            widths.push(Object::Array(vec![Object::Integer(
                (f32::from(*advance) * scale).round() as i64,
            )]));
            if new != 0 {
                let utf16: String = text.encode_utf16().map(|u| format!("{u:04X}")).collect();
                to_unicode.push_str(&format!("<{new:04X}> <{utf16}>\n"));
            }
        }
        let cmap = format!(
            "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n\
             /CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n\
             /CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n\
             1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n\
             {count} beginbfchar\n{to_unicode}endbfchar\nendcmap\n\
             CMapName currentdict /CMap defineresource pop\nend\nend\n",
            count = to_unicode.lines().count(),
        );
        let face = ttf_parser::Face::parse(STAMP_FONT, 0).ok();
        let metric = |value: Option<i16>| (f32::from(value.unwrap_or(0)) * scale).round() as i64;
        let bbox = face.as_ref().map(|f| f.global_bounding_box());
        let base_font = "SOHOAC+DejaVuSans";
        let file_length = subset.len() as i64;
        let file_id = update.add(Object::Stream(
            Stream::new(
                dictionary! { "Length1" => file_length, "Filter" => "FlateDecode" },
                deflate(&subset),
            )
            .with_compression(false),
        ));
        let descriptor_id = update.add(Object::Dictionary(dictionary! {
            "Type" => "FontDescriptor",
            "FontName" => base_font,
            "Flags" => 32,
            "FontBBox" => vec![
                metric(bbox.map(|b| b.x_min)).into(),
                metric(bbox.map(|b| b.y_min)).into(),
                metric(bbox.map(|b| b.x_max)).into(),
                metric(bbox.map(|b| b.y_max)).into(),
            ],
            "ItalicAngle" => 0,
            "Ascent" => metric(face.as_ref().map(|f| f.ascender())),
            "Descent" => metric(face.as_ref().map(|f| f.descender())),
            "CapHeight" => metric(face.as_ref().and_then(|f| f.capital_height())),
            "StemV" => 80,
            "FontFile2" => Object::Reference(file_id),
        }));
        let cid_font_id = update.add(Object::Dictionary(dictionary! {
            "Type" => "Font",
            "Subtype" => "CIDFontType2",
            "BaseFont" => base_font,
            "CIDSystemInfo" => dictionary! {
                "Registry" => Object::string_literal("Adobe"),
                "Ordering" => Object::string_literal("Identity"),
                "Supplement" => 0,
            },
            "FontDescriptor" => Object::Reference(descriptor_id),
            "W" => widths,
            "CIDToGIDMap" => "Identity",
        }));
        let to_unicode_id = update.add(Object::Stream(
            Stream::new(
                dictionary! { "Filter" => "FlateDecode" },
                deflate(cmap.as_bytes()),
            )
            .with_compression(false),
        ));
        update.add(Object::Dictionary(dictionary! {
            "Type" => "Font",
            "Subtype" => "Type0",
            "BaseFont" => base_font,
            "Encoding" => "Identity-H",
            "DescendantFonts" => vec![Object::Reference(cid_font_id)],
            "ToUnicode" => Object::Reference(to_unicode_id),
        }))
    }
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
    // Writing to memory cannot fail.
    let _ = encoder.write_all(data);
    encoder.finish().unwrap_or_default()
}

/// A signature found in a PDF.
#[derive(Debug)]
pub(crate) struct FoundSignature {
    /// SHA-256 of the byte ranges it covers.
    pub digest: [u8; 32],
    /// The DER of the CMS signature, trailing zero padding removed.
    pub cms: Vec<u8>,
    /// Whether the byte ranges cover the whole file but the signature itself.
    pub covers_whole_file: bool,
}

/// The last signature of a PDF, read with lopdf, with its byte ranges checked against the file.
pub(crate) fn find_signature(pdf: &[u8]) -> Result<FoundSignature, String> {
    use sha2::Digest;
    let doc = lopdf::Document::load_mem(pdf).map_err(|e| format!("not a readable PDF: {e}"))?;
    let mut found: Option<(Vec<i64>, Vec<u8>)> = None;
    for object in doc.objects.values() {
        let Ok(dict) = object.as_dict() else { continue };
        let (Ok(range), Ok(Object::String(contents, _))) =
            (dict.get(b"ByteRange"), dict.get(b"Contents"))
        else {
            continue;
        };
        let Ok(range) = range.as_array() else {
            continue;
        };
        let range: Vec<i64> = range.iter().filter_map(|o| o.as_i64().ok()).collect();
        // The signature covering the most of the file is the last one.
        let reach = range.get(2).zip(range.get(3)).map(|(a, b)| a + b);
        let best = found
            .as_ref()
            .and_then(|(r, _)| r.get(2).zip(r.get(3)).map(|(a, b)| a + b));
        if best.is_none() || reach > best {
            found = Some((range, contents.clone()));
        }
    }
    let (range, contents) = found.ok_or("the PDF carries no signature")?;
    let [a, b, c, d] =
        <[i64; 4]>::try_from(range).map_err(|_| "the signature's byte range is malformed")?;
    let len = pdf.len() as i64;
    if a != 0 || b < 0 || c < b || d < 0 || c.checked_add(d).is_none_or(|end| end > len) {
        return Err("the signature's byte range lies outside the file".into());
    }
    let (b, c, d) = (b as usize, c as usize, d as usize);
    let mut hasher = sha2::Sha256::new();
    hasher.update(&pdf[..b]);
    hasher.update(&pdf[c..c + d]);
    let digest: [u8; 32] = hasher.finalize().into();
    // The gap must hold exactly the signature's hex string.
    let gap = &pdf[b..c];
    let gap_is_contents = gap.len() >= 2
        && gap[0] == b'<'
        && gap[gap.len() - 1] == b'>'
        && gap[1..gap.len() - 1].iter().all(u8::is_ascii_hexdigit);
    let covers_whole_file = gap_is_contents && c + d == pdf.len();
    let mut cms = contents;
    // The DER length says where the signature ends; the rest is padding.
    if let Some(total) = der_length(&cms).filter(|&t| t <= cms.len()) {
        cms.truncate(total);
    }
    Ok(FoundSignature {
        digest,
        cms,
        covers_whole_file,
    })
}

/// The length of the DER value at the start of `bytes`, header included.
fn der_length(bytes: &[u8]) -> Option<usize> {
    use der::{Decode, Encode};
    let mut reader = der::SliceReader::new(bytes).ok()?;
    let header = der::Header::decode(&mut reader).ok()?;
    let total = (header.encoded_len().ok()? + header.length).ok()?;
    usize::try_from(total).ok()
}
