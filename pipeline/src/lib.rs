//! sohoa's page pipeline: scanned pages in, OCR'd, hashed pages and a searchable PDF out.
//!
//! Pages enter from a [`scanner_drivers::PageSource`]. [`Pipeline::run`] decodes each one, recognises its
//! text with Tesseract and hashes its master with BLAKE3, in parallel over pages on a rayon pool with one
//! Tesseract engine per worker thread, and hands the [`ProcessedPage`]s back in page order while holding
//! only a bounded window of pages. [`PdfPackager`] then writes them, one at a time, into a PDF whose pages
//! are the scans at their true physical size with an invisible text layer on the words.
//!
//! The crate is synchronous and knows nothing of storage or the web.
//!
//! ```no_run
//! use pipeline::{DocumentInfo, PdfPackager, PdfPage, Pipeline, PipelineOptions};
//! use scanner_drivers::FileImport;
//!
//! let pipeline = Pipeline::new(PipelineOptions::default()).expect("OCR engine starts");
//! let mut source = FileImport::new(["scans/0042"]).expect("readable paths");
//! let mut pdf = PdfPackager::new(Vec::new(), DocumentInfo::default()).unwrap();
//! pipeline
//!     .run(&mut source, |outcome| {
//!         let page = outcome?;
//!         println!("page {}: {:.1}% confident", page.number, page.text.confidence);
//!         let words = &page.text.words;
//!         pdf.add_page(PdfPage { image: &page.pdf_image, dpi: page.dpi, words, geometry: &page.geometry })
//!             .map_err(|e| e.to_string())?;
//!         Ok::<_, Box<dyn std::error::Error>>(())
//!     })
//!     .unwrap();
//! let bytes = pdf.finish().unwrap();
//! println!("{}", blake3::hash(&bytes));
//! ```
#![deny(missing_docs)]

pub mod cleanup;
pub mod decode;
pub mod geometry;
pub mod ocr;
pub mod osd;
pub mod pdf;
pub mod quality;
mod run;

pub use cleanup::CleanupSettings;
pub use decode::DecodeLimits;
pub use geometry::PageGeometry;
pub use ocr::{OcrSettings, PageText, Word};
pub use pdf::{DocumentInfo, PackageError, PdfImage, PdfPackager, PdfPage};
pub use quality::PageQuality;
pub use run::{
    Blob, ImagePolicy, PageError, PageFailure, PageOutcome, Pipeline, PipelineError,
    PipelineOptions, ProcessedPage,
};
