//! The hot folder: a scanner's scan-to-folder target (often a network share), watched by polling, since
//! change notifications do not cross SMB or NFS.
//!
//! A file is taken only once it is complete: its size and modification time have not changed for the settle
//! time, and its content ends as its format must (a JPEG's end marker, a PNG's `IEND`, a PDF's `%%EOF`, a
//! TIFF's strips all inside the file), so a scanner that pauses mid-file is waited for. Files whose names
//! start the same dossier code (and kind) form one document, in name order:
//!
//! ```text
//! 000.00.15.H27-231128-0042_001.jpg          pages of a submitted component
//! 000.00.15.H27-231128-0042_result_001.pdf   the result
//! 000.00.15.H27-231128-0042.json             optional sidecar: {"procedure": "1.001234", "unit": "..."}
//! ```
//!
//! After processing, every file of a batch moves to `done/` or, with a `.reason.txt` file beside it, to
//! `failed/`. A restart finds the files where they were and processes them again; ingest is idempotent, so a
//! batch stored just before a crash is recognised, not stored twice.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// Where processed files go, inside the hot folder.
pub const DONE: &str = "done";
/// Where refused files go, each with a `.reason.txt` beside it.
pub const FAILED: &str = "failed";

/// Files that belong together: one document of one dossier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The dossier code the file names start with (not yet validated).
    pub dossier: String,
    /// `result` or `submitted` when the names say so.
    pub kind: Option<String>,
    /// The page files, in name order.
    pub files: Vec<PathBuf>,
    /// `<dossier>.json` beside them, when there is one.
    pub sidecar: Option<PathBuf>,
}

/// What is known of a file being written.
struct Seen {
    size: u64,
    modified: Option<SystemTime>,
    since: Instant,
}

/// A watched folder.
pub struct HotFolder {
    root: PathBuf,
    settle: Duration,
    seen: HashMap<PathBuf, Seen>,
}

impl HotFolder {
    /// Watches `root`, creating it and its `done/` and `failed/` folders if missing. A file must stay
    /// unchanged for `settle` before it is taken.
    pub fn open(root: impl Into<PathBuf>, settle: Duration) -> io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(root.join(DONE))?;
        fs::create_dir_all(root.join(FAILED))?;
        Ok(Self {
            root,
            settle,
            seen: HashMap::new(),
        })
    }

    /// The watched folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Looks at the folder once; returns the batches whose every file is complete. A batch with one file
    /// still being written waits whole, so a document is never taken without its last pages.
    pub fn poll(&mut self) -> io::Result<Vec<Batch>> {
        let now = Instant::now();
        let mut groups: BTreeMap<(String, Option<String>), (Vec<PathBuf>, bool)> = BTreeMap::new();
        let mut present = Vec::new();
        for entry in fs::read_dir(&self.root)? {
            let entry = entry?;
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            let meta = match entry.metadata() {
                Ok(meta) if meta.is_file() => meta,
                _ => continue,
            };
            if ignored(&name) {
                continue;
            }
            present.push(path.clone());
            let (size, modified) = (meta.len(), meta.modified().ok());
            let seen = self.seen.entry(path.clone()).or_insert(Seen {
                size,
                modified,
                since: now,
            });
            if seen.size != size || seen.modified != modified {
                *seen = Seen {
                    size,
                    modified,
                    since: now,
                };
            }
            let ready = size > 0
                && now.duration_since(seen.since) >= self.settle
                && looks_complete(&path).unwrap_or(false);
            let (dossier, kind) = batch_key(&name);
            let group = groups.entry((dossier, kind)).or_insert((Vec::new(), true));
            group.0.push(path);
            group.1 &= ready;
        }
        self.seen.retain(|path, _| present.contains(path));
        let mut batches = Vec::new();
        for ((dossier, kind), (mut files, ready)) in groups {
            if !ready {
                continue;
            }
            files.sort();
            let sidecar = self.root.join(format!("{dossier}.json"));
            batches.push(Batch {
                sidecar: sidecar.is_file().then_some(sidecar),
                dossier,
                kind,
                files,
            });
        }
        Ok(batches)
    }

    /// Moves a processed batch's files to `done/`, or to `failed/` with `reason` beside each. The sidecar
    /// stays for the dossier's other documents.
    pub fn finish(&mut self, batch: &Batch, outcome: Result<(), &str>) -> io::Result<()> {
        let reasons: Vec<(PathBuf, String)> = match outcome {
            Ok(()) => Vec::new(),
            Err(reason) => batch
                .files
                .iter()
                .map(|f| (f.clone(), reason.to_owned()))
                .collect(),
        };
        self.finish_each(batch, &reasons)
    }

    /// Moves each file of a processed batch to `failed/` with its reason beside it when `failed` names it,
    /// to `done/` otherwise (a document stored with some pages that could not be read).
    pub fn finish_each(&mut self, batch: &Batch, failed: &[(PathBuf, String)]) -> io::Result<()> {
        for file in &batch.files {
            let reason = failed
                .iter()
                .find(|(f, _)| f == file)
                .map(|(_, r)| r.as_str());
            let outcome = reason.map_or(Ok(()), Err);
            let target = self.root.join(if outcome.is_ok() { DONE } else { FAILED });
            let Some(name) = file.file_name() else {
                continue;
            };
            let mut destination = target.join(name);
            // Never overwrite an earlier file of the same name: add a number.
            let mut n = 1;
            while destination.exists() {
                destination = target.join(format!("{}.{n}", name.to_string_lossy()));
                n += 1;
            }
            if let Err(reason) = outcome {
                let mut note = destination.clone().into_os_string();
                note.push(".reason.txt");
                fs::write(note, format!("{reason}\n"))?;
            }
            fs::rename(file, &destination)?;
            self.seen.remove(file);
        }
        Ok(())
    }
}

/// Scanners write to temporary names and rename when done; sidecars are read with their batch.
fn ignored(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with('.')
        || name.starts_with('~')
        || name.ends_with('~')
        || [".tmp", ".part", ".partial", ".crdownload", ".json", ".txt"]
            .iter()
            .any(|suffix| lower.ends_with(suffix))
}

/// `DOSSIER[_KIND][_anything].ext` → (dossier, kind).
fn batch_key(name: &str) -> (String, Option<String>) {
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    let mut parts = stem.split('_');
    let dossier = parts.next().unwrap_or_default().to_owned();
    let kind = parts
        .next()
        .map(str::to_ascii_lowercase)
        .filter(|k| k == "result" || k == "submitted");
    (dossier, kind)
}

/// Whether a file's content ends as its format must. Unknown formats count as complete (their ingest
/// then says what they are not).
fn looks_complete(path: &Path) -> io::Result<bool> {
    let mut file = fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut head = [0u8; 8];
    let read = file.read(&mut head)?;
    let head = &head[..read];
    let tail = |file: &mut fs::File, n: u64| -> io::Result<Vec<u8>> {
        let n = n.min(len);
        file.seek(SeekFrom::Start(len - n))?;
        let mut buf = vec![0u8; n as usize];
        file.read_exact(&mut buf)?;
        Ok(buf)
    };
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        // The end-of-image marker, perhaps followed by padding.
        let end = tail(&mut file, 64)?;
        let trimmed = end
            .iter()
            .rposition(|&b| b != 0)
            .map_or(&end[..0], |i| &end[..=i]);
        return Ok(trimmed.ends_with(&[0xFF, 0xD9]));
    }
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(tail(&mut file, 12)?.get(4..8) == Some(b"IEND"));
    }
    if head.starts_with(b"%PDF-") {
        let end = tail(&mut file, 1024)?;
        return Ok(end.windows(5).any(|w| w == b"%%EOF"));
    }
    if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        return Ok(tiff_strips_inside(path, len));
    }
    Ok(true)
}

/// Whether a TIFF's first directory reads and all its strips or tiles lie inside the file.
fn tiff_strips_inside(path: &Path, len: u64) -> bool {
    use tiff::tags::Tag;
    let Ok(file) = fs::File::open(path) else {
        return false;
    };
    let Ok(mut decoder) = tiff::decoder::Decoder::new(io::BufReader::new(file)) else {
        return false;
    };
    let pairs = [
        (Tag::StripOffsets, Tag::StripByteCounts),
        (Tag::TileOffsets, Tag::TileByteCounts),
    ];
    for (offsets, counts) in pairs {
        let (Ok(offsets), Ok(counts)) = (
            decoder.get_tag_u64_vec(offsets),
            decoder.get_tag_u64_vec(counts),
        ) else {
            continue;
        };
        return offsets
            .iter()
            .zip(&counts)
            .all(|(o, c)| o.checked_add(*c).is_some_and(|end| end <= len));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_group_by_dossier_and_kind() {
        assert_eq!(
            batch_key("000.00.15.H27-231128-0042_001.jpg"),
            ("000.00.15.H27-231128-0042".into(), None)
        );
        assert_eq!(
            batch_key("000.00.15.H27-231128-0042_Result_002.pdf"),
            ("000.00.15.H27-231128-0042".into(), Some("result".into()))
        );
        assert_eq!(
            batch_key("000.00.15.H27-231128-0042.tif"),
            ("000.00.15.H27-231128-0042".into(), None)
        );
        assert!(ignored("scan.jpg.part") && ignored(".~lock") && ignored("x.json"));
        assert!(!ignored("000.00.15.H27-231128-0042_001.jpg"));
    }

    #[test]
    fn a_file_is_taken_only_when_settled_and_complete_and_moved_when_done() {
        let dir = tempfile::tempdir().unwrap();
        let mut hot = HotFolder::open(dir.path(), Duration::from_millis(100)).unwrap();
        let path = dir.path().join("000.00.15.H27-231128-0042_001.jpg");
        // Half a JPEG: no end marker.
        fs::write(&path, [0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 1, 2, 3]).unwrap();
        assert!(hot.poll().unwrap().is_empty());
        std::thread::sleep(Duration::from_millis(150));
        assert!(hot.poll().unwrap().is_empty(), "settled, but not complete");
        fs::write(&path, [0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 1, 2, 3, 0xFF, 0xD9]).unwrap();
        assert!(hot.poll().unwrap().is_empty(), "just changed: not settled");
        std::thread::sleep(Duration::from_millis(150));
        let batches = hot.poll().unwrap();
        assert_eq!(batches.len(), 1);
        hot.finish(&batches[0], Err("the page is blank")).unwrap();
        let failed = dir
            .path()
            .join(FAILED)
            .join("000.00.15.H27-231128-0042_001.jpg");
        assert!(failed.exists());
        let reason = fs::read_to_string(failed.with_extension("jpg.reason.txt")).unwrap();
        assert_eq!(reason, "the page is blank\n");
        assert!(hot.poll().unwrap().is_empty());
    }
}
