//! The page a scanner hands over, and the trait every scanner implements.

use std::fmt;
use std::sync::Arc;

/// An image format sohoa accepts from scanners, identified by content (magic bytes), never by file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PageFormat {
    /// PNG.
    Png,
    /// JPEG (baseline or progressive).
    Jpeg,
    /// TIFF, one page or several.
    Tiff,
}

impl PageFormat {
    /// Identifies a format from the first bytes of a file; `None` when it is none we accept.
    pub fn sniff(head: &[u8]) -> Option<Self> {
        if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
            Some(Self::Tiff)
        } else {
            None
        }
    }

    /// The IANA media type of the format.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Tiff => "image/tiff",
        }
    }
}

impl fmt::Display for PageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Png => "PNG",
            Self::Jpeg => "JPEG",
            Self::Tiff => "TIFF",
        })
    }
}

/// One page as the scanner delivered it.
#[derive(Clone)]
pub struct ScannedPage {
    /// Where the page came from, in words a clerk recognises: a file name, with the page within it for
    /// multi-page files (`scan.tif, page 2`).
    pub origin: String,
    /// The scanner's original bytes: the whole file, shared between the pages of a multi-page file.
    pub bytes: Arc<[u8]>,
    /// The format of `bytes`.
    pub format: PageFormat,
    /// Which page of a multi-page file this is, from 0.
    pub frame: u32,
    /// How many pages the file holds (1 for single-image formats).
    pub frames: u32,
    /// The resolution the scanner reported, in dots per inch, where the driver knows it; the file's own
    /// metadata, when present, takes precedence downstream.
    pub dpi: Option<f32>,
    /// The file the page was taken out of, when `bytes` is not the whole file (a page image from a
    /// scan-to-PDF file): kept beside the page as what the scanner delivered.
    pub container: Option<Container>,
    /// Quarter turns clockwise (1-3) that a person asked for, read instead of the orientation the OCR
    /// engine would detect; `None` to detect it.
    pub turn: Option<u8>,
}

/// The file a page was taken out of.
#[derive(Clone)]
pub struct Container {
    /// The whole file, shared between its pages.
    pub bytes: Arc<[u8]>,
    /// Its IANA media type.
    pub media_type: &'static str,
}

impl fmt::Debug for ScannedPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScannedPage")
            .field("origin", &self.origin)
            .field("bytes", &self.bytes.len())
            .field("format", &self.format)
            .field("frame", &self.frame)
            .field("frames", &self.frames)
            .field("dpi", &self.dpi)
            .field(
                "container",
                &self
                    .container
                    .as_ref()
                    .map(|c| (c.media_type, c.bytes.len())),
            )
            .finish()
    }
}

/// A page a source could not deliver: the page keeps its place in the sequence and is reported, so the
/// pages around it still go through.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {reason}")]
pub struct SourceError {
    /// Where the page was to come from.
    pub origin: String,
    /// Why it could not be read, in words a clerk can act on.
    pub reason: String,
}

/// Anything that yields scanned pages in reading order: a folder of files, a scanner's feeder, a hot folder.
///
/// Pages are pulled one at a time, so a consumer holds only the pages it is working on, and OCR can start
/// while the feeder is still running.
pub trait PageSource: Send {
    /// The next page, `Some(Err(..))` for a page that could not be read (the sequence goes on), or `None`
    /// when the job is over.
    fn next_page(&mut self) -> Option<Result<ScannedPage, SourceError>>;

    /// How many pages the job will yield, when the source knows in advance (for progress bars).
    fn expected_pages(&self) -> Option<usize> {
        None
    }
}
