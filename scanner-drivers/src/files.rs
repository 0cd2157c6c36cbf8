//! The file-import driver: image files, or folders of them, in order.

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::page::{Container, PageFormat, PageSource, ScannedPage, SourceError};
use crate::pdf::PdfFile;

/// File names a scanner writes for images; in a folder, a file with one of these extensions that turns out
/// not to be an image is reported as a failed page rather than silently skipped.
const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "jpe", "tif", "tiff", "pdf"];

/// Bounds on what a file import accepts, so a hostile or broken file cannot exhaust memory.
#[derive(Debug, Clone, Copy)]
pub struct ImportLimits {
    /// Largest file read, in bytes. Default 512 MiB (a 600 dpi A3 colour TIFF, uncompressed, is ~200 MiB).
    pub max_file_bytes: u64,
    /// Most pages taken from one multi-page file. Default 2,000.
    pub max_frames_per_file: u32,
    /// Most pages in one import. Default 5,000.
    pub max_pages: usize,
    /// Most pixels in one page image taken out of a PDF, checked before its samples are decoded. Default
    /// 72,000,000 (A3 at 600 dpi).
    pub max_pixels: u64,
}

impl Default for ImportLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 512 * 1024 * 1024,
            max_frames_per_file: 2_000,
            max_pages: 5_000,
            max_pixels: 72_000_000,
        }
    }
}

/// Why an import could not start at all. Problems with a single page are reported per page instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileImportError {
    /// A path given does not exist or cannot be read.
    #[error("cannot read {path}: {source}")]
    Unreadable {
        /// The path as given.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Nothing to import.
    #[error("no image files found in {0}")]
    Empty(String),
    /// More pages than the import allows.
    #[error("{found} pages is more than the {limit} one import accepts; split the dossier")]
    TooManyPages {
        /// Pages found so far.
        found: usize,
        /// The configured limit.
        limit: usize,
    },
}

/// One file to import, with how many pages it holds.
#[derive(Debug)]
struct Entry {
    path: PathBuf,
    label: String,
    turn: Option<u8>,
    kind: Kind,
    frames: u32,
}

/// What a file is, by its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Image(PageFormat),
    Pdf,
    Unknown,
}

/// Imports pages from image files and folders, in the order given; a folder's files are taken in name
/// order (scanners number their files with leading zeros, so name order is scan order), recursively.
///
/// Files are read one at a time as pages are pulled, so memory holds one file, not the dossier.
pub struct FileImport {
    entries: Vec<Entry>,
    skipped: Vec<PathBuf>,
    limits: ImportLimits,
    next_entry: usize,
    current: Option<OpenFile>,
}

/// The multi-page file pages are being taken from.
struct OpenFile {
    bytes: Arc<[u8]>,
    format: PageFormat,
    next_frame: u32,
    frames: u32,
    name: String,
    turn: Option<u8>,
    /// For a PDF, the parsed document its page images are taken from.
    pdf: Option<PdfFile>,
}

impl OpenFile {
    fn origin(&self, frame: u32) -> String {
        if self.frames > 1 {
            format!("{}, page {}", self.name, frame + 1)
        } else {
            self.name.clone()
        }
    }

    fn page(&self, frame: u32, max_pixels: u64) -> Result<ScannedPage, SourceError> {
        let origin = self.origin(frame);
        let Some(pdf) = &self.pdf else {
            return Ok(ScannedPage {
                origin,
                bytes: Arc::clone(&self.bytes),
                format: self.format,
                frame,
                frames: self.frames,
                dpi: None,
                container: None,
                turn: self.turn,
            });
        };
        match pdf.page_image(frame as usize, max_pixels) {
            Ok(image) => Ok(ScannedPage {
                origin,
                bytes: image.bytes,
                format: image.format,
                frame: 0,
                frames: 1,
                dpi: image.dpi,
                container: Some(Container {
                    bytes: Arc::clone(&self.bytes),
                    media_type: "application/pdf",
                }),
                turn: self.turn,
            }),
            Err(reason) => Err(SourceError { origin, reason }),
        }
    }
}

impl FileImport {
    /// Lists the pages under `paths` with the default [`ImportLimits`].
    pub fn new<P: AsRef<Path>>(
        paths: impl IntoIterator<Item = P>,
    ) -> Result<Self, FileImportError> {
        Self::with_limits(paths, ImportLimits::default())
    }

    /// Lists the pages under `paths`, refusing more than `limits` allows.
    pub fn with_limits<P: AsRef<Path>>(
        paths: impl IntoIterator<Item = P>,
        limits: ImportLimits,
    ) -> Result<Self, FileImportError> {
        let mut import = Self::empty(limits);
        let mut described = Vec::new();
        for path in paths {
            let path = path.as_ref();
            described.push(path.display().to_string());
            import.add_path(path, true)?;
        }
        if import.entries.is_empty() {
            return Err(FileImportError::Empty(described.join(", ")));
        }
        let pages = import.expected_pages().unwrap_or(0);
        if pages > limits.max_pages {
            return Err(FileImportError::TooManyPages {
                found: pages,
                limit: limits.max_pages,
            });
        }
        Ok(import)
    }

    fn empty(limits: ImportLimits) -> Self {
        Self {
            entries: Vec::new(),
            skipped: Vec::new(),
            limits,
            next_entry: 0,
            current: None,
        }
    }

    /// Imports the given files, in order, naming each page by its label rather than its path (uploads
    /// spooled to work files keep the name the clerk's computer gave them).
    pub fn labelled(
        files: impl IntoIterator<Item = (PathBuf, String)>,
    ) -> Result<Self, FileImportError> {
        Self::labelled_turned(files.into_iter().map(|(path, label)| (path, label, None)))
    }

    /// Like [`FileImport::labelled`], each file with the quarter turns clockwise a person asked for
    /// (see [`ScannedPage::turn`]).
    pub fn labelled_turned(
        files: impl IntoIterator<Item = (PathBuf, String, Option<u8>)>,
    ) -> Result<Self, FileImportError> {
        let limits = ImportLimits::default();
        let mut import = Self::empty(limits);
        for (path, label, turn) in files {
            import.add_path(&path, true)?;
            if let Some(entry) = import.entries.last_mut() {
                entry.label = label;
                entry.turn = turn;
            }
        }
        if import.entries.is_empty() {
            return Err(FileImportError::Empty("the upload".to_owned()));
        }
        Ok(import)
    }

    /// Files in the given folders that were left out because they are not images (sidecars, thumbnails).
    pub fn skipped(&self) -> &[PathBuf] {
        &self.skipped
    }

    fn add_path(&mut self, path: &Path, named: bool) -> Result<(), FileImportError> {
        let unreadable = |source| FileImportError::Unreadable {
            path: path.to_path_buf(),
            source,
        };
        let meta = fs::metadata(path).map_err(unreadable)?;
        if meta.is_dir() {
            let mut children = fs::read_dir(path)
                .map_err(unreadable)?
                .map(|entry| entry.map(|e| e.path()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(unreadable)?;
            children.sort();
            for child in children {
                let hidden = child
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                if !hidden {
                    self.add_path(&child, false)?;
                }
            }
            return Ok(());
        }
        let kind = sniff_file(path);
        if kind == Kind::Unknown && !named && !has_image_extension(path) {
            self.skipped.push(path.to_path_buf());
            return Ok(());
        }
        let frames = match kind {
            Kind::Image(PageFormat::Tiff) => {
                count_tiff_frames(path, self.limits.max_frames_per_file)
            }
            Kind::Pdf => self.count_pdf_pages(path),
            _ => 1,
        };
        self.entries.push(Entry {
            path: path.to_path_buf(),
            label: path.display().to_string(),
            turn: None,
            kind,
            frames,
        });
        if self.entries.len() > self.limits.max_pages {
            return Err(FileImportError::TooManyPages {
                found: self.entries.len(),
                limit: self.limits.max_pages,
            });
        }
        Ok(())
    }

    /// A PDF's page count, read now for the progress bar; one that cannot be read counts as one page,
    /// which then fails with the reason.
    fn count_pdf_pages(&self, path: &Path) -> u32 {
        read_bounded(path, self.limits.max_file_bytes)
            .ok()
            .and_then(|bytes| PdfFile::parse(&bytes).ok())
            .map_or(1, |pdf| {
                u32::try_from(pdf.page_count())
                    .unwrap_or(u32::MAX)
                    .min(self.limits.max_frames_per_file)
            })
    }

    fn load(&self, entry: &Entry) -> Result<OpenFile, String> {
        let bytes = read_bounded(&entry.path, self.limits.max_file_bytes)?;
        // The file may have been replaced since it was listed.
        let kind = sniff(&bytes);
        if kind != entry.kind || kind == Kind::Unknown {
            return Err(not_an_image(&entry.path));
        }
        let (format, pdf) = match kind {
            Kind::Image(format) => (format, None),
            Kind::Pdf => (PageFormat::Png, Some(PdfFile::parse(&bytes)?)),
            Kind::Unknown => return Err(not_an_image(&entry.path)),
        };
        Ok(OpenFile {
            bytes: bytes.into(),
            format,
            next_frame: 0,
            frames: entry.frames,
            name: entry.label.clone(),
            turn: entry.turn,
            pdf,
        })
    }
}

/// Reads a whole file, refusing one over `limit` bytes without reading past it.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open the file: {e}"))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "the file is larger than the {} MiB limit",
            limit / (1024 * 1024)
        ));
    }
    Ok(bytes)
}

impl PageSource for FileImport {
    fn next_page(&mut self) -> Option<Result<ScannedPage, SourceError>> {
        let max_pixels = self.limits.max_pixels;
        if let Some(file) = self.current.as_mut().filter(|f| f.next_frame < f.frames) {
            let frame = file.next_frame;
            file.next_frame += 1;
            return Some(file.page(frame, max_pixels));
        }
        self.current = None;
        let entry = self.entries.get(self.next_entry)?;
        self.next_entry += 1;
        match self.load(entry) {
            Err(reason) => Some(Err(SourceError {
                origin: entry.label.clone(),
                reason,
            })),
            Ok(mut file) => {
                file.next_frame = 1;
                let page = file.page(0, max_pixels);
                self.current = Some(file);
                Some(page)
            }
        }
    }

    fn expected_pages(&self) -> Option<usize> {
        Some(self.entries.iter().map(|e| e.frames as usize).sum())
    }
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

fn sniff(head: &[u8]) -> Kind {
    match PageFormat::sniff(head) {
        Some(format) => Kind::Image(format),
        None if crate::pdf::is_pdf(head) => Kind::Pdf,
        None => Kind::Unknown,
    }
}

fn sniff_file(path: &Path) -> Kind {
    let mut head = [0u8; 8];
    let Ok(mut file) = File::open(path) else {
        return Kind::Unknown;
    };
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    sniff(&head[..read])
}

fn not_an_image(path: &Path) -> String {
    let size = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if size == 0 {
        "the file is empty (0 bytes); scan the page again".to_owned()
    } else {
        "the file is not a PNG, JPEG or TIFF image, nor a scanned PDF".to_owned()
    }
}

/// Counts the pages of a TIFF by walking its directory chain (no pixel data is read), stopping at `limit`.
/// A TIFF that cannot be walked counts as one page, whose decoding then reports what is wrong; a damaged
/// directory further on counts as one more page, likewise.
fn count_tiff_frames(path: &Path, limit: u32) -> u32 {
    let Ok(file) = File::open(path) else { return 1 };
    let Ok(mut decoder) = tiff::decoder::Decoder::new(BufReader::new(file)) else {
        return 1;
    };
    let mut frames = 1;
    while frames < limit && decoder.more_images() {
        frames += 1;
        // A damaged directory still counts as a page: decoding it then names the page and the damage,
        // rather than the page silently going missing.
        if decoder.next_image().is_err() {
            break;
        }
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path) {
        image::GrayImage::from_pixel(8, 8, image::Luma([255]))
            .save(path)
            .unwrap();
    }

    fn write_tiff(path: &Path, frames: u32) {
        let mut encoder = tiff::encoder::TiffEncoder::new(File::create(path).unwrap()).unwrap();
        for _ in 0..frames {
            encoder
                .write_image::<tiff::encoder::colortype::Gray8>(4, 4, &[200u8; 16])
                .unwrap();
        }
    }

    fn origins(mut import: FileImport) -> Vec<Result<String, String>> {
        std::iter::from_fn(|| import.next_page())
            .map(|p| p.map(|p| p.origin).map_err(|e| e.to_string()))
            .collect()
    }

    #[test]
    fn folders_are_taken_in_name_order_and_multi_page_tiffs_split_into_pages() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("002.png"));
        write_tiff(&dir.path().join("001.tif"), 3);
        fs::write(dir.path().join("notes.txt"), "not a scan").unwrap();
        let import = FileImport::new([dir.path()]).unwrap();
        assert_eq!(import.expected_pages(), Some(4));
        assert_eq!(import.skipped(), [dir.path().join("notes.txt")]);
        let pages = origins(import);
        let name = |n: &str| dir.path().join(n).display().to_string();
        assert_eq!(
            pages,
            vec![
                Ok(format!("{}, page 1", name("001.tif"))),
                Ok(format!("{}, page 2", name("001.tif"))),
                Ok(format!("{}, page 3", name("001.tif"))),
                Ok(name("002.png")),
            ]
        );
    }

    #[test]
    fn a_file_named_like_an_image_that_is_not_one_fails_its_page_only() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("a.png"));
        fs::write(dir.path().join("b.jpg"), b"").unwrap();
        fs::write(dir.path().join("c.jpg"), b"hello, not a jpeg").unwrap();
        write_png(&dir.path().join("d.png"));
        let pages = origins(FileImport::new([dir.path()]).unwrap());
        assert_eq!(pages.len(), 4);
        assert!(pages[0].is_ok() && pages[3].is_ok());
        assert!(pages[1].as_ref().unwrap_err().contains("empty (0 bytes)"));
        assert!(
            pages[2]
                .as_ref()
                .unwrap_err()
                .contains("not a PNG, JPEG or TIFF")
        );
    }

    #[test]
    fn formats_are_identified_by_content_not_name() {
        let dir = tempfile::tempdir().unwrap();
        let misnamed = dir.path().join("scan.jpg");
        write_png(&dir.path().join("x.png"));
        fs::rename(dir.path().join("x.png"), &misnamed).unwrap();
        let mut import = FileImport::new([&misnamed]).unwrap();
        assert_eq!(import.next_page().unwrap().unwrap().format, PageFormat::Png);
    }

    #[test]
    fn a_missing_path_is_refused_up_front() {
        let err = FileImport::new(["/no/such/scan.png"]).err().unwrap();
        assert!(err.to_string().contains("/no/such/scan.png"), "{err}");
    }

    #[test]
    fn too_many_pages_are_refused_before_any_is_read() {
        let dir = tempfile::tempdir().unwrap();
        write_tiff(&dir.path().join("big.tif"), 5);
        let limits = ImportLimits {
            max_pages: 3,
            ..ImportLimits::default()
        };
        let err = FileImport::with_limits([dir.path()], limits).err().unwrap();
        assert!(matches!(
            err,
            FileImportError::TooManyPages { found: 5, limit: 3 }
        ));
    }
}
