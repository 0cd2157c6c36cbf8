//! The BagIt layout (RFC 8493, version 1.0): writing a bag, and checking one from outside before anything
//! in it is believed.
//!
//! Payload and tag manifests are written in SHA-512 and SHA-256, each line `checksum  path` as `sha512sum`
//! and `sha256sum` read them. A bag read back is checked whole: its declaration, every manifest line's file
//! (present, inside the bag, matching every checksum), every payload file listed in every manifest, the
//! Payload-Oxum, and the tag manifests. Every problem found is reported, not just the first.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256, Sha512};

use crate::codes::ContentHash;

/// The bag's declaration, `bagit.txt`.
const DECLARATION: &str = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n";
/// The checksum algorithms written, and the only ones a bag read back may use.
const ALGORITHMS: [&str; 2] = ["sha512", "sha256"];
/// Tag files larger than this are refused unread (a bag's own tag files are a few kilobytes a page).
const MAX_TAG_FILE: u64 = 256 * 1024 * 1024;

/// A file written into a bag, with its checksums.
#[derive(Debug, Clone)]
pub(super) struct Written {
    /// Its path in the bag, `/`-separated.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    sha512: String,
    sha256: String,
}

/// Writes `bytes` to `path` (relative, `/`-separated) under `root`, flushed to disk, and returns its
/// checksums.
pub(super) fn write_file(root: &Path, path: &str, bytes: &[u8]) -> io::Result<Written> {
    let full = root.join(path);
    if let Some(parent) = full.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::File::create(&full)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(Written {
        path: path.to_owned(),
        size: bytes.len() as u64,
        sha512: format!("{:x}", Sha512::digest(bytes)),
        sha256: format!("{:x}", Sha256::digest(bytes)),
    })
}

/// Writes the tag files of a bag whose payload is `payload`: the declaration, both payload manifests,
/// `bag-info.txt` (the `info` labels, then Payload-Oxum) and both tag manifests. Returns the path of the
/// file being written when one fails.
pub(super) fn write_tag_files(
    root: &Path,
    payload: &[Written],
    info: &[(&str, String)],
) -> Result<(), (String, io::Error)> {
    let mut payload: Vec<&Written> = payload.iter().collect();
    payload.sort_by(|a, b| a.path.cmp(&b.path));
    let octets: u64 = payload.iter().map(|w| w.size).sum();
    let mut bag_info = String::new();
    for (label, value) in info {
        bag_info.push_str(&format!("{label}: {value}\n"));
    }
    bag_info.push_str(&format!("Payload-Oxum: {octets}.{}\n", payload.len()));
    let tag_files = [
        ("bagit.txt".to_owned(), DECLARATION.to_owned()),
        (
            "manifest-sha512.txt".to_owned(),
            manifest(&payload, |w| &w.sha512),
        ),
        (
            "manifest-sha256.txt".to_owned(),
            manifest(&payload, |w| &w.sha256),
        ),
        ("bag-info.txt".to_owned(), bag_info),
    ];
    let mut tags = Vec::new();
    for (path, text) in &tag_files {
        tags.push(write_file(root, path, text.as_bytes()).map_err(|e| (path.clone(), e))?);
    }
    let tags: Vec<&Written> = tags.iter().collect();
    for (path, text) in [
        ("tagmanifest-sha512.txt", manifest(&tags, |w| &w.sha512)),
        ("tagmanifest-sha256.txt", manifest(&tags, |w| &w.sha256)),
    ] {
        write_file(root, path, text.as_bytes()).map_err(|e| (path.to_owned(), e))?;
    }
    std::fs::File::open(root)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| (root.display().to_string(), e))
}

fn manifest(files: &[&Written], checksum: impl Fn(&Written) -> &String) -> String {
    // Our paths are ASCII letters, digits, '.', '-' and '/': nothing RFC 8493 asks to percent-encode.
    files
        .iter()
        .map(|w| format!("{}  {}\n", checksum(w), w.path))
        .collect()
}

/// What a checked bag holds: its payload files, each with its size and BLAKE3, and its `bag-info.txt`.
#[derive(Debug)]
pub(super) struct CheckedBag {
    /// Payload files by path in the bag (`data/...`).
    pub files: BTreeMap<String, FileFacts>,
    /// `bag-info.txt` labels and values (the first value of a repeated label).
    pub info: BTreeMap<String, String>,
}

/// A payload file as read during the check.
#[derive(Debug, Clone, Copy)]
pub(super) struct FileFacts {
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 of its content.
    pub blake3: ContentHash,
}

/// Checksums of one file, read once.
struct Digests {
    size: u64,
    sha512: String,
    sha256: String,
    blake3: ContentHash,
}

fn digest_file(path: &Path) -> io::Result<Digests> {
    let mut file = std::fs::File::open(path)?;
    let (mut sha512, mut sha256, mut blake3) =
        (Sha512::new(), Sha256::new(), blake3::Hasher::new());
    let mut buffer = vec![0u8; 1024 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        sha512.update(&buffer[..n]);
        sha256.update(&buffer[..n]);
        blake3.update(&buffer[..n]);
        size += n as u64;
    }
    Ok(Digests {
        size,
        sha512: format!("{:x}", sha512.finalize()),
        sha256: format!("{:x}", sha256.finalize()),
        blake3: blake3.finalize().into(),
    })
}

impl Digests {
    fn get(&self, algorithm: &str) -> &str {
        if algorithm == "sha512" {
            &self.sha512
        } else {
            &self.sha256
        }
    }
}

/// A manifest read from the bag: its file name, algorithm and (path, checksum) lines.
struct Manifest {
    name: String,
    algorithm: &'static str,
    lines: BTreeMap<String, String>,
}

/// Checks the bag at `root` whole. `progress` is told (bytes read, bytes to read) as payload files are
/// hashed. Every problem found is returned, each naming the file concerned.
pub(super) fn check_bag(
    root: &Path,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<CheckedBag, Vec<String>> {
    let mut problems = Vec::new();
    let root = match root.canonicalize() {
        Ok(root) if root.is_dir() => root,
        Ok(_) => return Err(vec![format!("{} is not a directory", root.display())]),
        Err(e) => return Err(vec![format!("{}: {e}", root.display())]),
    };
    match read_tag_file(&root, "bagit.txt") {
        Ok(text) => {
            let labels = labels(&text);
            let version = labels.get("BagIt-Version").map(String::as_str);
            if !matches!(version, Some("1.0" | "0.97")) {
                problems.push(format!(
                    "bagit.txt: BagIt-Version is {}, expected 1.0",
                    version.unwrap_or("missing")
                ));
            }
            if labels
                .get("Tag-File-Character-Encoding")
                .map(String::as_str)
                != Some("UTF-8")
            {
                problems.push("bagit.txt: Tag-File-Character-Encoding must be UTF-8".to_owned());
            }
        }
        Err(e) => return Err(vec![format!("bagit.txt: {e}; this is not a BagIt bag")]),
    }
    let info = match read_tag_file(&root, "bag-info.txt") {
        Ok(text) => labels(&text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => {
            problems.push(format!("bag-info.txt: {e}"));
            BTreeMap::new()
        }
    };

    let (payload_manifests, tag_manifests) = read_manifests(&root, &mut problems);
    if payload_manifests.is_empty() {
        problems.push("the bag has no payload manifest (manifest-sha512.txt)".to_owned());
    }

    // What is really there: every regular file under data/; anything else is refused.
    let mut on_disk = BTreeMap::new();
    match std::fs::symlink_metadata(root.join("data")) {
        Ok(meta) if meta.file_type().is_dir() => {
            walk_payload(&root, &root.join("data"), &mut on_disk, &mut problems)
        }
        Ok(_) => problems.push("data: not a directory (a link or a file); refused".to_owned()),
        Err(e) => problems.push(format!("data: {e}; the bag has no payload directory")),
    }

    // Every listed file must exist, inside the bag; every file there must be listed in every manifest.
    for manifest in &payload_manifests {
        for path in manifest.lines.keys() {
            if !on_disk.contains_key(path) {
                match resolve(&root, path) {
                    Ok(_) => problems.push(format!(
                        "{path}: listed in {} but not a payload file of the bag",
                        manifest.name
                    )),
                    Err(why) => {
                        problems.push(format!("{path}: listed in {}: {why}", manifest.name))
                    }
                }
            }
        }
        for path in on_disk.keys() {
            if !manifest.lines.contains_key(path) {
                problems.push(format!("{path}: not listed in {}", manifest.name));
            }
        }
    }
    let total: u64 = on_disk.values().sum();
    let mut done = 0u64;
    let mut files = BTreeMap::new();
    for (path, size) in &on_disk {
        let digests = match digest_file(&root.join(path)) {
            Ok(digests) => digests,
            Err(e) => {
                problems.push(format!("{path}: cannot read: {e}"));
                continue;
            }
        };
        done += size;
        progress(done, total);
        for manifest in &payload_manifests {
            if let Some(expected) = manifest.lines.get(path)
                && !expected.eq_ignore_ascii_case(digests.get(manifest.algorithm))
            {
                problems.push(format!(
                    "{path}: content does not match its {} checksum in {}",
                    manifest.algorithm, manifest.name
                ));
            }
        }
        files.insert(
            path.clone(),
            FileFacts {
                size: digests.size,
                blake3: digests.blake3,
            },
        );
    }

    if let Some(oxum) = info.get("Payload-Oxum") {
        let octets: u64 = on_disk.values().sum();
        let declared = oxum
            .split_once('.')
            .and_then(|(o, n)| Some((o.parse::<u64>().ok()?, n.parse::<usize>().ok()?)));
        match declared {
            Some((o, n)) if o == octets && n == on_disk.len() => {}
            Some((o, n)) => problems.push(format!(
                "bag-info.txt: Payload-Oxum says {o} bytes in {n} files, the payload has {octets} bytes \
                 in {} files",
                on_disk.len()
            )),
            None => problems.push(format!(
                "bag-info.txt: Payload-Oxum {oxum:?} is not OCTETS.FILES"
            )),
        }
    }

    for manifest in &tag_manifests {
        for (path, expected) in &manifest.lines {
            let full = match resolve(&root, path) {
                Ok(full) => full,
                Err(why) => {
                    problems.push(format!("{path}: listed in {}: {why}", manifest.name));
                    continue;
                }
            };
            match digest_file(&full) {
                Ok(d) if expected.eq_ignore_ascii_case(d.get(manifest.algorithm)) => {}
                Ok(_) => problems.push(format!(
                    "{path}: content does not match its {} checksum in {}",
                    manifest.algorithm, manifest.name
                )),
                Err(e) => problems.push(format!("{path}: cannot read: {e}")),
            }
        }
    }

    if problems.is_empty() {
        Ok(CheckedBag { files, info })
    } else {
        Err(problems)
    }
}

/// Reads the payload and tag manifests at the top of the bag. A manifest of another algorithm than ours is
/// a problem: what it claims could not be checked.
fn read_manifests(root: &Path, problems: &mut Vec<String>) -> (Vec<Manifest>, Vec<Manifest>) {
    let mut payload = Vec::new();
    let mut tags = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(format!("{}: {e}", root.display()));
            return (payload, tags);
        }
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    for name in names {
        let (is_tag, rest) = if let Some(rest) = name.strip_prefix("tagmanifest-") {
            (true, rest)
        } else if let Some(rest) = name.strip_prefix("manifest-") {
            (false, rest)
        } else {
            continue;
        };
        let Some(algorithm) = rest.strip_suffix(".txt") else {
            continue;
        };
        let Some(algorithm) = ALGORITHMS.iter().copied().find(|a| *a == algorithm) else {
            problems.push(format!(
                "{name}: checksum algorithm {algorithm} is not supported (only sha512 and sha256)"
            ));
            continue;
        };
        let text = match read_tag_file(root, &name) {
            Ok(text) => text,
            Err(e) => {
                problems.push(format!("{name}: {e}"));
                continue;
            }
        };
        let mut lines = BTreeMap::new();
        let width = if algorithm == "sha512" { 128 } else { 64 };
        for (number, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let Some((checksum, path)) = line.split_once([' ', '\t']) else {
                problems.push(format!("{name} line {}: not `CHECKSUM PATH`", number + 1));
                continue;
            };
            let path = decode_path(path.trim_start_matches([' ', '\t']));
            if checksum.len() != width || !checksum.bytes().all(|b| b.is_ascii_hexdigit()) {
                problems.push(format!(
                    "{name} line {}: {path}: the checksum is not {width} hexadecimal digits",
                    number + 1
                ));
                continue;
            }
            if let Err(why) = safe_relative(&path) {
                problems.push(format!("{name} line {}: {path}: {why}", number + 1));
                continue;
            }
            let in_payload = path.starts_with("data/");
            if in_payload == is_tag {
                problems.push(format!(
                    "{name} line {}: {path}: a {} manifest lists {}",
                    number + 1,
                    if is_tag { "tag" } else { "payload" },
                    if is_tag {
                        "only tag files, not data/"
                    } else {
                        "only files under data/"
                    }
                ));
                continue;
            }
            if lines.insert(path.clone(), checksum.to_owned()).is_some() {
                problems.push(format!("{name}: {path} is listed twice"));
            }
        }
        let manifest = Manifest {
            name,
            algorithm,
            lines,
        };
        if is_tag {
            tags.push(manifest);
        } else {
            payload.push(manifest);
        }
    }
    (payload, tags)
}

/// Undoes RFC 8493's percent-encoding of a manifest path (`%0A`, `%0D`, `%25`).
fn decode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 3).map(str::to_ascii_uppercase);
        let decoded = match code.as_deref() {
            Some("0A") => Some('\n'),
            Some("0D") => Some('\r'),
            Some("25") => Some('%'),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[at + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Refuses a path from a manifest unless it is relative and names only plain components, so it cannot
/// leave the bag by its spelling.
fn safe_relative(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("empty path");
    }
    if path.starts_with('/') || path.contains('\\') || path.contains('\0') {
        return Err("the path is absolute or not a plain relative path; refused");
    }
    for part in path.split('/') {
        if part.is_empty() || part == "." {
            return Err("the path has an empty or `.` component; refused");
        }
        if part == ".." {
            return Err("the path climbs out with `..`; refused");
        }
    }
    if Path::new(path)
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err("the path is not a plain relative path; refused");
    }
    Ok(())
}

/// The file a safe relative path names, if it is a regular file that really lies inside the bag (no
/// symbolic link leads out of it).
fn resolve(root: &Path, path: &str) -> Result<PathBuf, String> {
    safe_relative(path).map_err(str::to_owned)?;
    let full = root.join(path);
    let meta = std::fs::symlink_metadata(&full).map_err(|e| format!("missing ({e})"))?;
    if !meta.file_type().is_file() {
        return Err("not a regular file (a link or a directory); refused".to_owned());
    }
    let real = full
        .canonicalize()
        .map_err(|e| format!("cannot resolve: {e}"))?;
    if !real.starts_with(root) {
        return Err("resolves outside the bag; refused".to_owned());
    }
    Ok(real)
}

/// Collects every regular file under `dir` (`data/`), by bag path, with its size; links and other
/// special files are problems.
fn walk_payload(
    root: &Path,
    dir: &Path,
    found: &mut BTreeMap<String, u64>,
    problems: &mut Vec<String>,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(format!("{}: {e}", bag_path(root, dir)));
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                problems.push(format!("{}: {e}", bag_path(root, dir)));
                continue;
            }
        };
        let path = entry.path();
        let name = bag_path(root, &path);
        if entry.file_name().to_str().is_none() {
            problems.push(format!("{name}: the file name is not UTF-8; refused"));
            continue;
        }
        match entry.metadata() {
            // DirEntry::metadata does not follow symbolic links.
            Ok(meta) if meta.file_type().is_dir() => walk_payload(root, &path, found, problems),
            Ok(meta) if meta.file_type().is_file() => {
                found.insert(name, meta.len());
            }
            Ok(_) => problems.push(format!(
                "{name}: not a regular file (a link or a device); refused"
            )),
            Err(e) => problems.push(format!("{name}: {e}")),
        }
    }
}

/// `path` relative to the bag, `/`-separated.
fn bag_path(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Reads a tag file at the top of the bag, refusing links and oversized files.
fn read_tag_file(root: &Path, name: &str) -> io::Result<String> {
    let path = root.join(name);
    let meta = std::fs::symlink_metadata(&path)?;
    if !meta.file_type().is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut text = String::new();
    std::fs::File::open(&path)?
        .take(MAX_TAG_FILE)
        .read_to_string(&mut text)?;
    if text.len() as u64 >= MAX_TAG_FILE {
        return Err(io::Error::other("too large for a tag file"));
    }
    Ok(text)
}

/// `Label: value` lines, with RFC 8493's continuation lines (starting with whitespace) joined on.
fn labels(text: &str) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some(value) = last.as_ref().and_then(|l| labels.get_mut(l)) {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((label, value)) = line.split_once(':') {
            let label = label.trim().to_owned();
            labels
                .entry(label.clone())
                .or_insert_with(|| value.trim().to_owned());
            last = Some(label);
        }
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_leave_the_bag_are_refused_by_their_spelling() {
        for path in [
            "../x",
            "data/../../x",
            "/etc/passwd",
            "data/./x",
            "data//x",
            "data\\x",
            "",
        ] {
            assert!(safe_relative(path).is_err(), "{path:?} accepted");
        }
        assert!(safe_relative("data/pages/0001-ab.png").is_ok());
    }

    #[test]
    fn percent_encoded_paths_are_decoded() {
        assert_eq!(decode_path("data/a%0Ab%25c%zz"), "data/a\nb%c%zz");
    }

    #[test]
    fn a_written_bag_checks_and_a_symlink_out_of_it_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let payload = vec![write_file(root, "data/a.txt", b"trang 1").unwrap()];
        write_tag_files(root, &payload, &[("External-Identifier", "x".to_owned())]).unwrap();
        let bag = check_bag(root, &|_, _| {}).unwrap();
        assert_eq!(bag.files["data/a.txt"].size, 7);
        assert_eq!(bag.info["Payload-Oxum"], "7.1");

        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.join("data/b.txt")).unwrap();
        let problems = check_bag(root, &|_, _| {}).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("data/b.txt: not a regular file")),
            "{problems:?}"
        );
    }
}
