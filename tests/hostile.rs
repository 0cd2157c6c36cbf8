//! Broken and unusual image files through the real binary: each is either ingested right or refused with a
//! message that names the file and says why; never a crash, never a half-recorded dossier.

mod common;

use common::{LETTER, Sohoa, write_png};
use image::{DynamicImage, GrayImage, ImageBuffer, Luma, LumaA, Rgb, Rgba, imageops};

/// What must happen to a file.
enum Expect {
    /// Ingested, and the page's text contains this.
    Read(&'static str),
    /// Ingested as a page with this flag.
    Flagged(&'static str),
    /// Refused: the command fails, names the file and gives a reason containing this.
    Refused(&'static str),
}

fn letter() -> GrayImage {
    common::render_page(LETTER)
}

fn encode(image: &DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn png_of(image: &DynamicImage) -> Vec<u8> {
    encode(image, image::ImageFormat::Png)
}

/// A PNG whose header declares `width` x `height` and whose data is a few bytes: a decompression bomb
/// would do the same with a small, highly compressed stream.
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Grayscale);
    let mut writer = encoder.write_header().unwrap();
    // One row of data, then stop: the header is what a limit must catch.
    let _ = writer.write_image_data(&[]);
    drop(writer);
    out
}

/// A real decompression bomb: 15,000 x 15,000 black pixels (225 MB decoded) in about 200 KB of PNG.
fn png_bomb() -> Vec<u8> {
    let side = 15_000u32;
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut encoder = png::Encoder::new(file.reopen().unwrap(), side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder
        .write_header()
        .unwrap()
        .into_stream_writer()
        .unwrap();
    let row = vec![0u8; side as usize];
    for _ in 0..side {
        std::io::Write::write_all(&mut writer, &row).unwrap();
    }
    writer.finish().unwrap();
    std::fs::read(file.path()).unwrap()
}

/// `page` as a TIFF compressed with `compression`.
fn tiff_with(page: &GrayImage, compression: tiff::encoder::Compression) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut encoder = tiff::encoder::TiffEncoder::new(&mut out)
        .unwrap()
        .with_compression(compression);
    encoder
        .write_image::<tiff::encoder::colortype::Gray8>(page.width(), page.height(), page.as_raw())
        .unwrap();
    out.into_inner()
}

/// `page` as a CMYK JPEG, as print-oriented scanner software writes them.
fn cmyk_jpeg(page: &GrayImage) -> Vec<u8> {
    let cmyk: Vec<u8> = page
        .as_raw()
        .iter()
        .flat_map(|&v| [0, 0, 0, 255 - v])
        .collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(
            &cmyk,
            page.width() as u16,
            page.height() as u16,
            jpeg_encoder::ColorType::Cmyk,
        )
        .unwrap();
    out
}

/// `page` as an 8-bit palette PNG of 16 greys.
fn palette_png(page: &GrayImage) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, page.width(), page.height());
    encoder.set_color(png::ColorType::Indexed);
    encoder.set_palette(
        (0..16u8)
            .flat_map(|i| [i * 17, i * 17, i * 17])
            .collect::<Vec<_>>(),
    );
    let indices: Vec<u8> = page.as_raw().iter().map(|&v| v / 17).collect();
    encoder
        .write_header()
        .unwrap()
        .write_image_data(&indices)
        .unwrap();
    out
}

/// `page` as a 1-bit black-and-white PNG.
fn one_bit_png(page: &GrayImage) -> Vec<u8> {
    let row_bytes = page.width().div_ceil(8) as usize;
    let mut packed = vec![0u8; row_bytes * page.height() as usize];
    for (x, y, p) in page.enumerate_pixels() {
        if p.0[0] >= 128 {
            packed[y as usize * row_bytes + x as usize / 8] |= 0x80 >> (x % 8);
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, page.width(), page.height());
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    encoder
        .write_header()
        .unwrap()
        .write_image_data(&packed)
        .unwrap();
    out
}

/// A little-endian TIFF whose only page declares `width` x `height`, 8-bit grey, with a tiny strip.
fn tiff_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(b"II*\0");
    t.extend_from_slice(&8u32.to_le_bytes());
    let entries: [(u16, u16, u32, u32); 8] = [
        (256, 4, 1, width),  // ImageWidth
        (257, 4, 1, height), // ImageLength
        (258, 3, 1, 8),      // BitsPerSample
        (259, 3, 1, 1),      // Compression: none
        (262, 3, 1, 1),      // Photometric: black is zero
        (273, 4, 1, 200),    // StripOffsets
        (278, 4, 1, height), // RowsPerStrip
        (279, 4, 1, 16),     // StripByteCounts
    ];
    t.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, kind, count, value) in entries {
        t.extend_from_slice(&tag.to_le_bytes());
        t.extend_from_slice(&kind.to_le_bytes());
        t.extend_from_slice(&count.to_le_bytes());
        if kind == 3 {
            t.extend_from_slice(&(value as u16).to_le_bytes());
            t.extend_from_slice(&[0, 0]);
        } else {
            t.extend_from_slice(&value.to_le_bytes());
        }
    }
    t.extend_from_slice(&0u32.to_le_bytes());
    t.resize(216, 0xFF);
    t
}

fn cases() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let page = letter();
    let jpeg = encode(
        &DynamicImage::ImageLuma8(page.clone()),
        image::ImageFormat::Jpeg,
    );
    let png = png_of(&DynamicImage::ImageLuma8(page.clone()));
    // Black text on a transparent background, as drawing programs export it.
    let transparent = ImageBuffer::from_fn(page.width(), page.height(), |x, y| {
        let ink = 255 - page.get_pixel(x, y).0[0];
        Rgba([0u8, 0, 0, ink])
    });
    let grey_alpha = ImageBuffer::from_fn(page.width(), page.height(), |x, y| {
        LumaA([page.get_pixel(x, y).0[0], 255u8])
    });
    let sixteen_bit = ImageBuffer::from_fn(page.width(), page.height(), |x, y| {
        Luma([u16::from(page.get_pixel(x, y).0[0]) * 257])
    });
    let colour = ImageBuffer::from_fn(page.width(), page.height(), |x, y| {
        let v = page.get_pixel(x, y).0[0];
        Rgb([v, v, v.saturating_add(10)])
    });
    let small = imageops::resize(&page, 8, 8, imageops::FilterType::Triangle);
    vec![
        ("empty.png", Vec::new(), Expect::Refused("")),
        (
            "letter.jpg",
            b"To whom it may concern: this is a text file.\n".to_vec(),
            Expect::Refused(""),
        ),
        (
            "truncated.png",
            png[..png.len() / 2].to_vec(),
            Expect::Refused("cannot decode"),
        ),
        (
            "truncated.jpg",
            jpeg[..jpeg.len() / 3].to_vec(),
            Expect::Refused("cut off"),
        ),
        (
            "header-only.jpg",
            jpeg[..200.min(jpeg.len())].to_vec(),
            Expect::Refused("cut off"),
        ),
        (
            "padded.jpg",
            [jpeg.as_slice(), b"\0\0\0\r\n"].concat(),
            Expect::Read("Trần Văn Bình"),
        ),
        (
            "bomb.png",
            png_declaring(100_000, 100_000),
            Expect::Refused("cannot decode"),
        ),
        (
            "deflate-bomb.png",
            png_bomb(),
            Expect::Refused("pixel limit"),
        ),
        (
            "poster-2400dpi.png",
            png_declaring(19_843, 28_066),
            Expect::Refused("cannot decode"),
        ),
        (
            "huge.tif",
            tiff_declaring(100_000, 100_000),
            Expect::Refused("cannot decode"),
        ),
        (
            "transparent.png",
            png_of(&DynamicImage::ImageRgba8(transparent)),
            Expect::Read("Trần Văn Bình"),
        ),
        (
            "grey-alpha.png",
            png_of(&DynamicImage::ImageLumaA8(grey_alpha)),
            Expect::Read("Trần Văn Bình"),
        ),
        (
            "16-bit.png",
            png_of(&DynamicImage::ImageLuma16(sixteen_bit)),
            Expect::Read("Trần Văn Bình"),
        ),
        (
            "colour.tif",
            encode(&DynamicImage::ImageRgb8(colour), image::ImageFormat::Tiff),
            Expect::Read("Trần Văn Bình"),
        ),
        (
            "tiny.png",
            png_of(&DynamicImage::ImageLuma8(small)),
            Expect::Flagged("blank"),
        ),
        ("cmyk.jpg", cmyk_jpeg(&page), Expect::Read("Trần Văn Bình")),
        (
            "palette.png",
            palette_png(&page),
            Expect::Read("Trần Văn Bình"),
        ),
        (
            "1-bit.png",
            one_bit_png(&page),
            Expect::Read("Trần Văn Bình"),
        ),
        (
            "lzw.tif",
            tiff_with(&page, tiff::encoder::Compression::Lzw),
            Expect::Read("Trần Văn Bình"),
        ),
        (
            "deflate.tif",
            tiff_with(
                &page,
                tiff::encoder::Compression::Deflate(Default::default()),
            ),
            Expect::Read("Trần Văn Bình"),
        ),
        (
            "packbits.tif",
            tiff_with(&page, tiff::encoder::Compression::Packbits),
            Expect::Read("Trần Văn Bình"),
        ),
        (
            "really-a-png.tif",
            png.clone(),
            Expect::Read("Trần Văn Bình"),
        ),
        (
            "upside-down.png",
            png_of(&DynamicImage::ImageLuma8(imageops::rotate180(&page))),
            Expect::Read("Trần Văn Bình"),
        ),
        (
            "rgb-48-bit.png",
            png_of(&DynamicImage::ImageRgb16(ImageBuffer::from_fn(
                page.width(),
                page.height(),
                |x, y| {
                    let v = u16::from(page.get_pixel(x, y).0[0]) * 257;
                    Rgb([v, v, v])
                },
            ))),
            Expect::Read("Trần Văn Bình"),
        ),
        (
            "animated.gif.jpg",
            b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!".to_vec(),
            Expect::Refused("not a PNG, JPEG or TIFF"),
        ),
        (
            "truncated.tif",
            {
                let t = tiff_with(&page, tiff::encoder::Compression::Lzw);
                t[..t.len() / 2].to_vec()
            },
            Expect::Refused(""),
        ),
        (
            "zero-width.png",
            {
                let mut p = png_declaring(10, 10);
                // IHDR width (bytes 16..20) set to 0; the CRC no longer matches either.
                p[16..20].copy_from_slice(&0u32.to_be_bytes());
                p
            },
            Expect::Refused("cannot decode"),
        ),
        (
            "noise.png",
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
                .collect(),
            Expect::Refused(""),
        ),
    ]
}

#[test]
fn every_broken_or_unusual_file_is_ingested_right_or_refused_with_its_name_and_reason() {
    let sohoa = Sohoa::new();
    let mut problems = Vec::new();
    for (i, (name, bytes, expect)) in cases().into_iter().enumerate() {
        let path = sohoa.input(name);
        std::fs::write(&path, &bytes).unwrap();
        let dossier = format!("000.00.15.H27-231128-{:04}", 200 + i);
        let output = sohoa.ingest_output(&dossier, &[&path]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("panicked") || output.status.code().is_none() {
            problems.push(format!("{name}: crashed: {stderr}"));
            continue;
        }
        match expect {
            Expect::Refused(reason) => {
                if output.status.success() {
                    problems.push(format!("{name}: ingested, expected a refusal: {stdout}"));
                } else if !stderr.contains(name) || !stderr.contains(reason) {
                    problems.push(format!(
                        "{name}: refused without naming the file and '{reason}': {stderr}"
                    ));
                } else if !sohoa.search(&dossier).is_empty() {
                    problems.push(format!("{name}: refused, but something was recorded"));
                }
            }
            Expect::Read(words) | Expect::Flagged(words) if !output.status.success() => {
                problems.push(format!("{name}: refused, expected '{words}': {stderr}"));
            }
            Expect::Read(words) => {
                let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
                let pdf = sohoa.get(report["document"].as_str().unwrap(), &format!("{name}.pdf"));
                let text = common::pdftotext(&pdf)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                if !text.contains(words) {
                    problems.push(format!("{name}: ingested, but '{words}' not read: {text}"));
                }
            }
            Expect::Flagged(flag) => {
                let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
                if !report["pages"][0]["flags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f == flag)
                {
                    problems.push(format!("{name}: not flagged {flag}: {stdout}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn one_corrupt_page_of_a_multi_page_tiff_is_named_and_its_neighbours_kept() {
    let sohoa = Sohoa::new();
    let good = letter();
    let path = sohoa.input("three-pages.tif");
    common::write_tiff(&[good.clone(), good.clone(), good], &path);
    // Damage the pixel data of the last page: cut the file short inside it.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - bytes.len() / 6]).unwrap();
    let output = sohoa.ingest_output("000.00.15.H27-231128-0299", &[&path]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("page 3 (") && stderr.contains("three-pages.tif, page 3)"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let flags: Vec<&serde_json::Value> = report["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["flags"])
        .collect();
    assert_eq!(flags[2], &serde_json::json!(["failed"]), "{report}");
    assert!(
        !sohoa.search("tran van binh").is_empty(),
        "pages 1 and 2 are stored and found"
    );
}

/// `sohoa ingest` of `page` into `dossier` with one setting given by its environment variable.
fn ingest_with(
    sohoa: &Sohoa,
    (key, value): (&str, &str),
    dossier: &str,
    page: &std::path::Path,
) -> std::process::Output {
    sohoa
        .command()
        .env(key, value)
        .args(["ingest", "--dossier", dossier])
        .args(["--procedure", "1.001234", "--unit", "000.00.15.H27"])
        .arg(page)
        .output()
        .unwrap()
}

#[test]
fn a_page_that_takes_too_long_to_read_is_stopped_and_reported() {
    let sohoa = Sohoa::new();
    let page = sohoa.input("slow.png");
    write_png(&letter(), &page);
    let output = ingest_with(
        &sohoa,
        ("SOHOA_OCR__PAGE_TIMEOUT_SECONDS", "0.001"),
        "000.00.15.H27-231128-0070",
        &page,
    );
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("slow.png"), "{said}");
    assert!(said.contains("took longer than 1 ms"), "{said}");
    // The default limit reads the same page.
    let report = sohoa.ingest("000.00.15.H27-231128-0071", &[&page]);
    assert_eq!(report["pages"].as_array().unwrap().len(), 1);
}

#[test]
fn the_decoded_memory_limit_is_a_setting_and_refuses_a_page_over_it() {
    let sohoa = Sohoa::new();
    let page = sohoa.input("letter.png");
    write_png(&letter(), &page);
    let output = ingest_with(
        &sohoa,
        ("SOHOA_LIMITS__MAX_DECODED_BYTES", "100000"),
        "000.00.15.H27-231128-0072",
        &page,
    );
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("letter.png"), "{said}");
    assert!(said.contains("limit"), "{said}");
}
