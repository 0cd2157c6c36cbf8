//! Running pages through decode → OCR → hash → encode in parallel, handing them out in order.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc;

use image::{DynamicImage, GrayImage};
use scanner_drivers::{PageFormat, PageSource, ScannedPage};

use crate::cleanup::{self, CleanupSettings};
use crate::decode::{self, DecodeError, DecodeLimits};
use crate::geometry::PageGeometry;
use crate::ocr::{self, OcrError, OcrSettings, PageText};
use crate::osd;
use crate::pdf::PdfImage;
use crate::quality::PageQuality;

/// Settings for a [`Pipeline`].
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Worker threads, each with its own OCR engine. Default: one per core.
    pub threads: usize,
    /// Most pages held at once (being processed, or done and waiting for an earlier page). Default: twice
    /// the threads, enough to keep every core busy while a slow page holds back the ones after it.
    pub window: usize,
    /// OCR languages and model folder.
    pub ocr: OcrSettings,
    /// Decoding bounds.
    pub decode: DecodeLimits,
    /// Page cleanup before OCR.
    pub cleanup: CleanupSettings,
    /// Whether to find which way up each page is and turn it. Default on; needs Tesseract's `osd` model.
    pub detect_orientation: bool,
    /// Orientation answers at or above this confidence are taken as they are; below it every way up is
    /// tried and the best-read one kept. Default 2.0.
    pub orientation_confidence: f32,
    /// Pages whose mean OCR confidence is below this are flagged for the clerk. Default 60.
    pub low_confidence: f32,
    /// How page images not already JPEG go into the PDF. Default JPEG at quality 60.
    pub images: ImagePolicy,
}

/// How a page image that is neither a scanner JPEG (embedded as it is) nor pure black and white (CCITT
/// Group 4) goes into the packaged PDF. The master is always kept as the scanner made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImagePolicy {
    /// One JPEG pass at this quality (1-100): a photograph of paper, colour or grey, at a tenth of its
    /// lossless size.
    Jpeg {
        /// JPEG quality, 1-100.
        quality: u8,
    },
    /// Deflate, losslessly: exact pixels, large files.
    Lossless,
}

impl Default for ImagePolicy {
    fn default() -> Self {
        Self::Jpeg { quality: 60 }
    }
}

impl Default for PipelineOptions {
    fn default() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            threads,
            window: threads * 2,
            ocr: OcrSettings::default(),
            decode: DecodeLimits::default(),
            cleanup: CleanupSettings::default(),
            detect_orientation: true,
            orientation_confidence: 2.0,
            low_confidence: 60.0,
            images: ImagePolicy::default(),
        }
    }
}

/// Why the pipeline could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The OCR engine cannot start.
    #[error(transparent)]
    Ocr(#[from] OcrError),
    /// The worker threads cannot start.
    #[error("cannot start the worker threads: {0}")]
    Threads(#[from] rayon::ThreadPoolBuildError),
}

/// Why one page failed. The other pages go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PageError {
    /// The scanner or file could not deliver the page.
    #[error("{0}")]
    Source(String),
    /// The image could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// OCR failed.
    #[error(transparent)]
    Ocr(#[from] OcrError),
    /// The page could not be encoded for the PDF.
    #[error("cannot encode the page image: {0}")]
    Encode(String),
}

/// A page that failed, with where it came from and why.
#[derive(Debug, thiserror::Error)]
#[error("page {number} ({origin}): {error}")]
pub struct PageFailure {
    /// The page's number in the document, from 1.
    pub number: u32,
    /// Where it came from.
    pub origin: String,
    /// Why it failed.
    pub error: PageError,
    /// What the scanner delivered for the page, when there was something: kept with the failure, since
    /// nothing a clerk scanned is thrown away.
    pub delivered: Option<Box<Blob>>,
}

/// An object to store: bytes, their media type and their BLAKE3 hash.
#[derive(Debug, Clone)]
pub struct Blob {
    /// The bytes.
    pub bytes: Arc<[u8]>,
    /// IANA media type.
    pub media_type: &'static str,
    /// BLAKE3 of `bytes`.
    pub blake3: blake3::Hash,
}

impl Blob {
    /// Bytes of `media_type`, hashed.
    pub fn new(bytes: Arc<[u8]>, media_type: &'static str) -> Self {
        let blake3 = blake3::hash(&bytes);
        Self {
            bytes,
            media_type,
            blake3,
        }
    }
}

/// A page that went through the pipeline.
#[derive(Debug)]
pub struct ProcessedPage {
    /// The page's number in the document, from 1.
    pub number: u32,
    /// Where it came from.
    pub origin: String,
    /// The page master: the scanner's original file for single-image files; for a page of a multi-page
    /// TIFF, that page alone, losslessly as PNG.
    pub master: Blob,
    /// For a page of a multi-page file, the whole original file, kept too.
    pub source_file: Option<Blob>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Resolution in dots per inch.
    pub dpi: f32,
    /// Whether the resolution was assumed because the file did not say.
    pub dpi_assumed: bool,
    /// What OCR read. Word boxes are on the cleaned page: `geometry` maps them onto the scan.
    pub text: PageText,
    /// How the page OCR read relates to the scan.
    pub geometry: PageGeometry,
    /// What the clerk should know about the page.
    pub quality: PageQuality,
    /// The image as it goes into the PDF.
    pub pdf_image: PdfImage,
    /// Seconds spent reading the page (orientation and OCR), 0 for a blank page.
    pub ocr_seconds: f32,
}

/// The outcome of one page.
pub type PageOutcome = Result<ProcessedPage, PageFailure>;

/// The page pipeline: a pool of worker threads, each with its own OCR engine.
///
/// Tesseract runs single-threaded inside each worker (see [`ocr::single_threaded_ocr_on_this_thread`]), so
/// the pool owns the cores.
pub struct Pipeline {
    pool: rayon::ThreadPool,
    options: Arc<PipelineOptions>,
}

impl Pipeline {
    /// Starts the worker pool, after checking that an OCR engine starts with the configured languages.
    pub fn new(options: PipelineOptions) -> Result<Self, PipelineError> {
        ocr::check_engine(&options.ocr)?;
        if options.detect_orientation && !crate::osd::available(&options.ocr) {
            tracing::warn!(
                "Tesseract's orientation model (osd) is not installed (Debian: tesseract-ocr-osd): a \
                 turned page is found by reading it every way up, which is slower"
            );
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(options.threads.max(1))
            .thread_name(|i| format!("sohoa-page-{i}"))
            .start_handler(|_| ocr::single_threaded_ocr_on_this_thread())
            .build()?;
        Ok(Self {
            pool,
            options: Arc::new(options),
        })
    }

    /// The options the pipeline runs with.
    pub fn options(&self) -> &PipelineOptions {
        &self.options
    }

    /// Runs every page of `source` through the pipeline, in parallel, and hands each outcome to `on_page`
    /// in page order. At most `window` pages are held at once, however long the document. Stops early
    /// with `on_page`'s error if it returns one.
    pub fn run<E>(
        &self,
        source: &mut dyn PageSource,
        mut on_page: impl FnMut(PageOutcome) -> Result<(), E>,
    ) -> Result<(), E> {
        let (done_tx, done_rx) = mpsc::channel::<(u32, PageOutcome)>();
        let window = self.options.window.max(1);
        let mut ready: BTreeMap<u32, PageOutcome> = BTreeMap::new();
        let mut held = 0usize;
        let mut next_number = 1u32;
        let mut next_out = 1u32;
        let mut source_done = false;
        loop {
            while !source_done && held < window {
                match source.next_page() {
                    None => source_done = true,
                    Some(Err(e)) => {
                        held += 1;
                        let failure = PageFailure {
                            number: next_number,
                            origin: e.origin,
                            error: PageError::Source(e.reason),
                            delivered: None,
                        };
                        ready.insert(next_number, Err(failure));
                        next_number += 1;
                    }
                    Some(Ok(page)) => {
                        held += 1;
                        let number = next_number;
                        next_number += 1;
                        tracing::debug!(page = number, origin = %page.origin, "page queued");
                        let tx = done_tx.clone();
                        let options = Arc::clone(&self.options);
                        self.pool.spawn(move || {
                            // The receiver is gone only when the caller stopped early.
                            let _ = tx.send((number, process(number, page, &options)));
                        });
                    }
                }
            }
            while let Some(outcome) = ready.remove(&next_out) {
                held -= 1;
                next_out += 1;
                on_page(outcome)?;
            }
            if held == 0 && source_done {
                return Ok(());
            }
            if held == 0 {
                // Everything held was handed out at once: go back for more pages before waiting.
                continue;
            }
            if !ready.contains_key(&next_out) {
                // Pages are held in number order from `next_out`, so that page is in flight and a worker
                // holds a sender for it: this only fails if a worker panicked; fail the page rather than
                // wait forever.
                match done_rx.recv() {
                    Ok((number, outcome)) => {
                        tracing::debug!(page = number, ok = outcome.is_ok(), "page processed");
                        ready.insert(number, outcome);
                    }
                    Err(_) => {
                        let failure = PageFailure {
                            number: next_out,
                            origin: String::new(),
                            error: PageError::Encode(
                                "a worker thread stopped unexpectedly".to_owned(),
                            ),
                            delivered: None,
                        };
                        ready.insert(next_out, Err(failure));
                    }
                }
            }
        }
    }
}

fn process(number: u32, page: ScannedPage, options: &PipelineOptions) -> PageOutcome {
    let origin = page.origin.clone();
    let (bytes, media_type) = (page.bytes.clone(), page.format.media_type());
    process_page(number, page, options).map_err(|error| PageFailure {
        number,
        origin,
        error,
        delivered: Some(Box::new(Blob::new(bytes, media_type))),
    })
}

fn process_page(
    number: u32,
    page: ScannedPage,
    options: &PipelineOptions,
) -> Result<ProcessedPage, PageError> {
    let decoded = decode::decode(&page, options.decode)?;
    let image = decoded.image;
    let (width, height) = (image.width(), image.height());
    // Everything that needs the full-colour image is made first, so it is gone before OCR, which holds
    // the most memory.
    let (master, source_file) = if let Some(container) = &page.container {
        // A page image taken out of a PDF: the image as the scanner encoded it, and the PDF beside it.
        (
            Blob::new(page.bytes.clone(), page.format.media_type()),
            Some(Blob::new(container.bytes.clone(), container.media_type)),
        )
    } else if page.frames > 1 {
        let png = encode_png(&image).map_err(|e| PageError::Encode(e.to_string()))?;
        (
            Blob::new(png.into(), PageFormat::Png.media_type()),
            Some(Blob::new(page.bytes.clone(), page.format.media_type())),
        )
    } else {
        (
            Blob::new(page.bytes.clone(), page.format.media_type()),
            None,
        )
    };
    let pdf_image =
        pdf_image(&page, &image, options.images).map_err(|e| PageError::Encode(e.to_string()))?;
    let grey = image.to_luma8();
    drop(image);

    let prepared = cleanup::prepare(grey, decoded.dpi, &options.cleanup);
    let mut geometry = PageGeometry::identity(width, height);
    geometry.scale = prepared.scale;
    let mut quality = PageQuality {
        blank: prepared.blank,
        low_resolution: decoded.dpi < options.cleanup.min_dpi,
        ..PageQuality::default()
    };
    let reading = std::time::Instant::now();
    let text = if prepared.blank {
        PageText::default()
    } else {
        let read = read_upright(prepared, options, page.turn)?;
        geometry.quarter_turns = read.quarter_turns;
        geometry.deskew_degrees = read.deskew_degrees;
        quality.rotated_degrees = u16::from(read.quarter_turns) * 90;
        quality.deskewed_degrees = (read.deskew_degrees * 10.0).round() / 10.0;
        quality.orientation_uncertain = read.uncertain;
        quality.low_confidence = read.text.confidence < options.low_confidence;
        read.text
    };

    Ok(ProcessedPage {
        number,
        origin: page.origin,
        master,
        source_file,
        width,
        height,
        dpi: decoded.dpi,
        dpi_assumed: decoded.dpi_assumed,
        text,
        geometry,
        quality,
        pdf_image,
        ocr_seconds: reading.elapsed().as_secs_f32(),
    })
}

/// A page read the right way up.
struct Upright {
    text: PageText,
    quarter_turns: u8,
    deskew_degrees: f32,
    uncertain: bool,
}

/// Turns the page the way the orientation detector says, straightens it and reads it. When the detector
/// is unsure and the reading is poor, reads it every other way up too and keeps the best reading, so no
/// readable page comes out unreadable. A turn a person asked for (`turn`) is taken as it is.
fn read_upright(
    prepared: cleanup::Prepared,
    options: &PipelineOptions,
    turn: Option<u8>,
) -> Result<Upright, OcrError> {
    let dpi = prepared.dpi;
    let asked = turn.map(|q| q % 4);
    let detected = if options.detect_orientation && asked.is_none() {
        osd::detect(&prepared.image, dpi, &options.ocr)
    } else {
        None
    };
    let sure = asked.is_some()
        || !options.detect_orientation
        || detected.is_some_and(|o| o.confidence >= options.orientation_confidence);
    let first = asked.unwrap_or_else(|| detected.map_or(0, |o| o.quarter_turns));
    let read = |image: GrayImage, quarter_turns: u8| -> Result<Upright, OcrError> {
        let upright = cleanup::turn(image, quarter_turns);
        let skew = cleanup::estimate_skew(&upright, dpi, options.cleanup.max_skew_degrees);
        let (straight, deskew_degrees) = if skew.abs() >= options.cleanup.min_skew_degrees {
            let straight = cleanup::rotate(&upright, -skew);
            drop(upright);
            (straight, -skew)
        } else {
            (upright, 0.0)
        };
        Ok(Upright {
            text: ocr::recognise(&straight, dpi, &options.ocr)?,
            quarter_turns,
            deskew_degrees,
            uncertain: !sure,
        })
    };
    if sure {
        return read(prepared.image, first);
    }
    let mut best = read(prepared.image.clone(), first)?;
    if reads_well(&best.text) {
        return Ok(best);
    }
    for quarter_turns in (0..4u8).filter(|&q| q != first) {
        let other = read(prepared.image.clone(), quarter_turns)?;
        if reading_score(&other.text) > reading_score(&best.text) {
            best = other;
        }
    }
    Ok(best)
}

/// A reading good enough that no other way up needs trying.
fn reads_well(text: &PageText) -> bool {
    text.confidence >= 80.0 && text.words.len() >= 10
}

/// How much was read confidently: an upside-down page gives few words, all doubtful.
fn reading_score(text: &PageText) -> f32 {
    text.words
        .iter()
        .filter(|w| w.conf >= 50.0 && w.text.chars().any(char::is_alphanumeric))
        .map(|w| (w.conf / 100.0) * w.text.chars().count() as f32)
        .sum()
}

/// JPEG scans go into the PDF as they are (never a second lossy pass); pure black-and-white pages as CCITT
/// Group 4; the rest as `policy` says.
fn pdf_image(
    page: &ScannedPage,
    image: &DynamicImage,
    policy: ImagePolicy,
) -> std::io::Result<PdfImage> {
    if page.format == PageFormat::Jpeg {
        let components = match image {
            DynamicImage::ImageLuma8(_) => Some(1),
            DynamicImage::ImageRgb8(_) => Some(3),
            _ => None,
        };
        if let Some(components) = components {
            return Ok(PdfImage::jpeg(
                &page.bytes,
                image.width(),
                image.height(),
                components,
            ));
        }
    }
    match policy {
        ImagePolicy::Jpeg { quality } => PdfImage::encode_jpeg(image, quality),
        ImagePolicy::Lossless => PdfImage::lossless(image),
    }
}

fn encode_png(image: &DynamicImage) -> image::ImageResult<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use scanner_drivers::SourceError;

    /// Plain white PNG pages, as many as asked for, a large one then a small one, so each small page is
    /// done before the large one ahead of it.
    struct WhitePages {
        left: u32,
        large: Arc<[u8]>,
        small: Arc<[u8]>,
    }

    impl PageSource for WhitePages {
        fn next_page(&mut self) -> Option<Result<ScannedPage, SourceError>> {
            if self.left == 0 {
                return None;
            }
            self.left -= 1;
            Some(Ok(ScannedPage {
                origin: format!("white-{}", self.left),
                bytes: if self.left % 2 == 1 {
                    self.large.clone()
                } else {
                    self.small.clone()
                },
                format: PageFormat::Png,
                frame: 0,
                frames: 1,
                dpi: Some(300.0),
                container: None,
                turn: None,
            }))
        }
    }

    #[test]
    fn a_long_document_comes_out_whole_and_in_order_through_a_small_window() {
        let white = |side| {
            let image = image::GrayImage::from_pixel(side, side, image::Luma([255]));
            Arc::<[u8]>::from(encode_png(&DynamicImage::ImageLuma8(image)).unwrap())
        };
        let (large, small) = (white(2400), white(32));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let pipeline = Pipeline::new(PipelineOptions {
                threads: 2,
                window: 2,
                detect_orientation: false,
                ..PipelineOptions::default()
            })
            .expect("OCR engine starts");
            let mut source = WhitePages {
                left: 40,
                large,
                small,
            };
            let mut numbers = Vec::new();
            pipeline
                .run(&mut source, |outcome| {
                    numbers.push(outcome.map(|p| p.number).map_err(|e| e.to_string())?);
                    Ok::<_, String>(())
                })
                .unwrap();
            let _ = tx.send(numbers);
        });
        // A stall here is the bug this guards against, so wait a bounded time rather than hang the suite.
        let numbers = rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("the pipeline stalled");
        assert_eq!(numbers, (1..=40).collect::<Vec<u32>>());
    }
}
