//! Where scanned pages come from.
//!
//! Every scanner the desk uses, from a folder of files to a network scanner, is a [`PageSource`]: it yields
//! [`ScannedPage`]s in reading order, each carrying the scanner's original bytes untouched. Decoding, OCR and
//! packaging happen downstream in the `pipeline` crate; a driver only says what it received and, where it
//! knows, at what resolution.
//!
//! The first driver is [`FileImport`]: PNG, JPEG and TIFF files (multi-page TIFF included), PDFs from
//! scan-to-PDF devices (each page's scanned image at its native resolution), or folders of them, identified
//! by their content rather than their names.
//!
//! ```no_run
//! use scanner_drivers::{FileImport, PageSource};
//!
//! let mut source = FileImport::new(["scans/0042"]).expect("readable paths");
//! while let Some(page) = source.next_page() {
//!     let page = page.expect("a readable page");
//!     println!("{} ({} bytes)", page.origin, page.bytes.len());
//! }
//! ```
#![deny(missing_docs)]

pub mod escl;
mod files;
pub mod hotfolder;
pub mod isolated;
mod page;
pub mod pdf;
pub mod sane;
pub mod scan;

pub use files::{FileImport, FileImportError, ImportLimits};
pub use page::{Container, PageFormat, PageSource, ScannedPage, SourceError};
