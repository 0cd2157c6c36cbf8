//! A bag read back into the archive: checked whole, then its objects stored, then the dossier recorded in
//! one transaction.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::Path;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use super::bagit::{self, CheckedBag};
use super::{BagProgress, BagProgressFn, DESCRIPTION, FORMAT, Package, PackageObject};
use crate::archive::Archive;
use crate::blobs::BlobError;
use crate::codes::{ContentHash, DocumentKind, DossierCode, ProcedureCode, UnitCode};
use crate::copies::check_signature;
use crate::repo::{
    DossierContext, ImportOutcome, NewDossier, ObjectRecord, ProcedureRecord, RepoError,
    ReuseRecord, StatusChangeRecord, UnitRecord,
};

/// The largest `dossier.json` read (a long dossier's word boxes take tens of megabytes).
const MAX_DESCRIPTION: u64 = 1024 * 1024 * 1024;

/// Why a bag was not imported. Nothing is recorded; objects already stored stay unreferenced
/// (content-addressed, so a retry reuses them).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The bag failed its checks; each reason names the file concerned.
    #[error("the bag is refused:\n  {}", .0.join("\n  "))]
    Refused(Vec<String>),
    /// The dossier is recorded here with another procedure or unit.
    #[error("{0}")]
    Conflict(String),
    /// The object store failed.
    #[error(transparent)]
    Storage(#[from] BlobError),
    /// The database failed.
    #[error(transparent)]
    Database(RepoError),
    /// A file of the bag could not be read after it was checked.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl From<RepoError> for ImportError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::Conflict(message) => Self::Conflict(message),
            other => Self::Database(other),
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// Dossier code.
    pub dossier: String,
    /// Documents in the bag.
    pub documents: usize,
    /// Page rows in the bag.
    pub pages: usize,
    /// Objects in the bag.
    pub objects: usize,
    /// Of those, how many the store did not hold yet.
    pub objects_stored: usize,
    /// Certified copies left in the bag, not recorded: signed with a certificate this archive does not
    /// sign with (another archive's, or a unit's earlier one), so this archive cannot say it issued them.
    pub copies_left: usize,
    /// What was recorded; nothing when the archive already held the dossier as the bag describes it.
    #[serde(skip)]
    pub outcome: ImportOutcome,
}

impl ImportReport {
    /// Whether the import changed anything in the archive.
    pub fn changed(&self) -> bool {
        self.objects_stored > 0 || self.outcome.changed()
    }
}

impl Archive {
    /// Imports the dossier in the BagIt bag at `bag`, as [`Archive::export_dossier`] writes them. The bag is
    /// checked whole first (checksums, manifest paths, Payload-Oxum, every object against its BLAKE3); a
    /// bag that fails is [`ImportError::Refused`] with every reason, and nothing is stored or recorded.
    pub async fn import_bag(
        &self,
        bag: &Path,
        progress: BagProgressFn,
    ) -> Result<ImportReport, ImportError> {
        let checked = {
            let (root, progress) = (bag.to_owned(), progress.clone());
            tokio::task::spawn_blocking(move || {
                bagit::check_bag(&root, &|done, total| {
                    progress(BagProgress {
                        step: "checking",
                        done,
                        total,
                    })
                })
            })
            .await
            .map_err(|e| ImportError::Refused(vec![format!("checking the bag failed: {e}")]))?
            .map_err(ImportError::Refused)?
        };
        let package = read_package(bag, &checked)?;
        let context = match (check_package(&package, &checked), context_of(&package)) {
            (Ok(()), Ok(context)) => context,
            (rows, context) => {
                let mut problems = rows.err().unwrap_or_default();
                problems.extend(context.err().unwrap_or_default());
                return Err(ImportError::Refused(problems));
            }
        };
        let dossier = package.dossier.record();
        let new = NewDossier {
            code: DossierCode::parse(&dossier.code).map_err(refused)?,
            procedure: ProcedureCode::parse(&dossier.procedure).map_err(refused)?,
            unit: UnitCode::parse(&dossier.unit).map_err(refused)?,
        };
        // A conflicting dossier is refused before anything is stored.
        self.repo().check_dossier(&new).await?;

        // Certified copies: each signature must hold and be the certificate the bag says (else the bag
        // was tampered with); only copies signed with a certificate this archive signs with are recorded.
        let mut left: HashSet<String> = HashSet::new();
        let mut problems = Vec::new();
        for copy in &package.copies {
            let path = bag.join(&copy.file);
            let signature = tokio::task::spawn_blocking(move || {
                std::fs::read(path).map(|bytes| check_signature(&bytes))
            })
            .await
            .map_err(|e| ImportError::Refused(vec![format!("{}: {e}", copy.file)]))?
            .map_err(|source| ImportError::Read {
                path: copy.file.clone(),
                source,
            })?;
            if !signature.intact {
                problems.push(format!(
                    "{}: the certified copy's signature does not hold: {}",
                    copy.file,
                    signature.problem.as_deref().unwrap_or("no reason given")
                ));
            } else if signature.certificate.as_deref() != Some(copy.certificate.as_str()) {
                problems.push(format!(
                    "{}: signed with certificate {}, not the {} it is described by",
                    copy.file,
                    signature.certificate.as_deref().unwrap_or("(none)"),
                    copy.certificate
                ));
            } else if self
                .certifier()
                .signer(&copy.unit)
                .map_or(true, |signer| signer.fingerprint() != copy.certificate)
            {
                left.insert(copy.blake3.clone());
            }
        }
        if !problems.is_empty() {
            return Err(ImportError::Refused(problems));
        }

        let mut stored = 0;
        let kept: Vec<&PackageObject> = package
            .objects
            .iter()
            .filter(|o| !left.contains(&o.blake3))
            .collect();
        let total = kept.len() as u64;
        for (done, object) in kept.iter().enumerate() {
            if self.store_object(bag, object).await? {
                stored += 1;
            }
            progress(BagProgress {
                step: "storing",
                done: done as u64 + 1,
                total,
            });
        }
        let documents: Vec<_> = package.documents.iter().map(|d| d.record()).collect();
        let objects: Vec<ObjectRecord> = kept
            .iter()
            .map(|o| ObjectRecord {
                blake3: o.blake3.clone(),
                size: o.size,
                media_type: o.media_type.clone(),
            })
            .collect();
        let copies: Vec<_> = package
            .copies
            .iter()
            .filter(|c| !left.contains(&c.blake3))
            .map(|c| c.record())
            .collect();
        let outcome = self
            .repo()
            .import_dossier(&dossier, &documents, &objects, &copies, &context)
            .await?;
        // The dossier is safe in the database; the index catches up later if this fails.
        if let Err(e) = self.index().sync(self.repo()).await {
            tracing::warn!(error = %e, "index not updated after import; it will catch up on the next sync");
        }
        Ok(ImportReport {
            dossier: dossier.code,
            documents: documents.len(),
            pages: documents.iter().map(|d| d.pages.len()).sum(),
            objects: objects.len(),
            objects_stored: stored,
            copies_left: left.len(),
            outcome,
        })
    }

    /// Puts one object of the bag in the store unless it is there already; returns whether it was
    /// stored. The bytes are checked against their BLAKE3 again as they are read for storing, so a file
    /// changed since the bag was checked is refused.
    async fn store_object(&self, bag: &Path, object: &PackageObject) -> Result<bool, ImportError> {
        let hash = ContentHash::parse(&object.blake3).map_err(refused)?;
        if self.blobs().exists(&hash).await? {
            return Ok(false);
        }
        let path = bag.join(&object.file);
        let bytes = tokio::task::spawn_blocking(move || std::fs::read(path))
            .await
            .map_err(std::io::Error::other)
            .and_then(|read| read)
            .map_err(|source| ImportError::Read {
                path: object.file.clone(),
                source,
            })?;
        if ContentHash::of(&bytes) != hash {
            return Err(ImportError::Refused(vec![format!(
                "{}: changed while the bag was being imported; its BLAKE3 no longer matches",
                object.file
            )]));
        }
        self.blobs().put(&hash, bytes.into()).await?;
        Ok(true)
    }
}

fn refused(e: impl std::fmt::Display) -> ImportError {
    ImportError::Refused(vec![format!("{DESCRIPTION}: {e}")])
}

/// Reads `dossier.json`, which the check found listed and intact.
fn read_package(bag: &Path, checked: &CheckedBag) -> Result<Package, ImportError> {
    let Some(facts) = checked.files.get(DESCRIPTION) else {
        return Err(ImportError::Refused(vec![format!(
            "{DESCRIPTION}: missing; this bag was not written by `sohoa export`"
        )]));
    };
    if facts.size > MAX_DESCRIPTION {
        return Err(refused(format!(
            "{} bytes, more than the {MAX_DESCRIPTION} a dossier description may take",
            facts.size
        )));
    }
    let mut text = Vec::new();
    std::fs::File::open(bag.join(DESCRIPTION))
        .and_then(|file| file.take(MAX_DESCRIPTION).read_to_end(&mut text))
        .map_err(|source| ImportError::Read {
            path: DESCRIPTION.to_owned(),
            source,
        })?;
    if ContentHash::of(&text) != facts.blake3 {
        return Err(refused("changed while the bag was being imported"));
    }
    serde_json::from_slice(&text)
        .map_err(|e| refused(format!("not a sohoa dossier description: {e}")))
}

/// The most reuses or changes of status a bag may list for one dossier.
const MAX_ENTRIES: usize = 10_000;

/// What the description says about the dossier beyond its rows, as this archive records it: the registry
/// entries by the registry's own rules, times rewritten in Vietnam time (statistics take the day from
/// the text), the changes of status a chain that ends at the dossier's status. Returns every problem.
fn context_of(package: &Package) -> Result<DossierContext, Vec<String>> {
    let mut problems = Problems::default();
    let d = &package.dossier;
    let unit = package.unit.as_ref().and_then(|unit| {
        if unit.code != d.unit {
            problems.add(format!(
                "names unit {}, but the dossier's unit is {}",
                unit.code, d.unit
            ));
        }
        UnitRecord::checked(&d.unit, &unit.name, &unit.level)
            .map_err(|e| problems.add(format!("unit {}: {e}", d.unit)))
            .ok()
    });
    let procedure = package.procedure.as_ref().and_then(|procedure| {
        if procedure.code != d.procedure {
            problems.add(format!(
                "names procedure {}, but the dossier's procedure is {}",
                procedure.code, d.procedure
            ));
        }
        ProcedureRecord::checked(
            &d.procedure,
            &procedure.name,
            &procedure.field,
            &procedure.level,
        )
        .map_err(|e| problems.add(format!("procedure {}: {e}", d.procedure)))
        .ok()
    });
    if package.reuses.len() > MAX_ENTRIES || package.status_changes.len() > MAX_ENTRIES {
        problems.add(format!(
            "{} reuses and {} changes of status: at most {MAX_ENTRIES} of each",
            package.reuses.len(),
            package.status_changes.len()
        ));
        return Err(problems.0);
    }
    let mut reuses = Vec::with_capacity(package.reuses.len());
    for reuse in &package.reuses {
        if let Err(e) = ContentHash::parse(&reuse.document) {
            problems.add(format!("a reused result: {e}"));
            continue;
        }
        match crate::time::to_vietnam(&reuse.created_at) {
            Some(created_at) => reuses.push(ReuseRecord {
                document: reuse.document.clone(),
                created_at,
            }),
            None => problems.add(format!(
                "the reuse of result {}: {:?} is not an RFC 3339 time",
                reuse.document,
                reuse.created_at.chars().take(40).collect::<String>()
            )),
        }
    }
    let mut status_changes: Vec<StatusChangeRecord> =
        Vec::with_capacity(package.status_changes.len());
    let mut last: Option<time::OffsetDateTime> = None;
    for change in &package.status_changes {
        if !(1..=10).contains(&change.status_before) || !(1..=10).contains(&change.status) {
            problems.add(format!(
                "a change of status from {} to {}: statuses are 1 to 10",
                change.status_before, change.status
            ));
        }
        let Ok(at) = time::OffsetDateTime::parse(change.at.trim(), &Rfc3339) else {
            problems.add(format!(
                "a change of status: {:?} is not an RFC 3339 time",
                change.at.chars().take(40).collect::<String>()
            ));
            continue;
        };
        if last.is_some_and(|last| at < last) {
            problems.add(format!(
                "the change of status at {} comes before the one listed before it",
                change.at
            ));
        }
        last = Some(at);
        if let Some(previous) = status_changes.last()
            && previous.status != change.status_before
        {
            problems.add(format!(
                "a change of status from {} follows one to {}",
                change.status_before, previous.status
            ));
        }
        status_changes.push(StatusChangeRecord {
            status_before: change.status_before,
            status: change.status,
            at: crate::time::to_vietnam(&change.at).unwrap_or_default(),
        });
    }
    if let Some(latest) = status_changes.last()
        && latest.status != d.status
    {
        problems.add(format!(
            "the last change of status is to {}, but the dossier's status is {}",
            latest.status, d.status
        ));
    }
    if problems.0.is_empty() {
        Ok(DossierContext {
            unit,
            procedure,
            reuses,
            status_changes,
        })
    } else {
        Err(problems.0)
    }
}

/// Checks that the description holds together and that every object it names is the file of the bag it
/// says, with that BLAKE3 and size. Returns every problem found.
fn check_package(package: &Package, checked: &CheckedBag) -> Result<(), Vec<String>> {
    let mut problems = Problems::default();
    if package.format != FORMAT {
        problems.add(format!("format {:?}, expected {FORMAT:?}", package.format));
    }
    let d = &package.dossier;
    let codes = [
        DossierCode::parse(&d.code).err(),
        ProcedureCode::parse(&d.procedure).err(),
        UnitCode::parse(&d.unit).err(),
    ];
    for e in codes.into_iter().flatten() {
        problems.add(e.to_string());
    }
    if !(1..=10).contains(&d.status) {
        problems.add(format!("dossier status {} is not 1 to 10", d.status));
    }
    if !(1..=3).contains(&d.channel) {
        problems.add(format!("dossier channel {} is not 1 to 3", d.channel));
    }
    if let Some(identifier) = checked.info.get("External-Identifier")
        && *identifier != d.code
    {
        problems.add(format!(
            "describes dossier {}, bag-info.txt says {identifier}",
            d.code
        ));
    }

    // Objects: each the file the bag holds, as checked.
    let mut files: BTreeMap<&str, &str> = BTreeMap::new();
    for object in &package.objects {
        let hash = match ContentHash::parse(&object.blake3) {
            Ok(hash) => hash,
            Err(e) => {
                problems.add(format!("object {}: {e}", object.file));
                continue;
            }
        };
        if files
            .insert(object.blake3.as_str(), object.file.as_str())
            .is_some()
        {
            problems.add(format!("object {} is listed twice", object.blake3));
        }
        if object.media_type.is_empty() || object.media_type.chars().any(char::is_control) {
            problems.add(format!("object {}: no usable media type", object.blake3));
        }
        match checked.files.get(&object.file) {
            None => problems.add(format!(
                "object {} is said to be {}, which is not a payload file of the bag",
                object.blake3, object.file
            )),
            Some(facts) if facts.blake3 != hash => problems.add(format!(
                "{}: its content hashes to BLAKE3 {}, not the {} it is described by",
                object.file, facts.blake3, object.blake3
            )),
            Some(facts) if facts.size != object.size => problems.add(format!(
                "{}: {} bytes, described as {}",
                object.file, facts.size, object.size
            )),
            Some(_) => {}
        }
    }

    for document in &package.documents {
        let name = format!("document {}", document.blake3);
        if document.kind.parse::<DocumentKind>().is_err() {
            problems.add(format!(
                "{name}: kind {:?} is not submitted or result",
                document.kind
            ));
        }
        problems.refer(&files, &name, &document.blake3, Some(&document.file));
        for other in [&document.replaces, &document.superseded_by]
            .into_iter()
            .flatten()
        {
            if ContentHash::parse(other).is_err() {
                problems.add(format!("{name}: {other} is not a BLAKE3 hash"));
            }
        }
        let mut numbers = HashSet::new();
        for page in &document.pages {
            if page.number < 1 || !numbers.insert(page.number) {
                problems.add(format!(
                    "{name}: page number {} is not positive and unique",
                    page.number
                ));
            }
            let what = format!("page {} of {name}", page.number);
            problems.refer(&files, &what, &page.blake3, Some(&page.file));
            if let Some(source) = &page.source_blake3 {
                let what = format!("the source file of {what}");
                problems.refer(&files, &what, source, page.source_file.as_deref());
            }
        }
    }
    let documents: HashSet<&str> = package
        .documents
        .iter()
        .map(|d| d.blake3.as_str())
        .collect();
    let mut copies = HashSet::new();
    for copy in &package.copies {
        let name = format!("certified copy {}", copy.blake3);
        if !copies.insert(copy.blake3.as_str()) {
            problems.add(format!("{name} is listed twice"));
        }
        problems.refer(&files, &name, &copy.blake3, Some(&copy.file));
        if !documents.contains(copy.document.as_str()) {
            problems.add(format!(
                "{name} certifies document {}, which is not one of the dossier's",
                copy.document
            ));
        }
        if let Err(e) = UnitCode::parse(&copy.unit) {
            problems.add(format!("{name}: {e}"));
        }
        let texts = [
            &copy.certificate,
            &copy.subject,
            &copy.signed_at,
            &copy.created_at,
        ];
        let issues = copy
            .issues
            .iter()
            .flat_map(|issue| [&issue.issued_to, &issue.issued_at]);
        if texts
            .into_iter()
            .chain(issues)
            .any(|text| text.is_empty() || text.len() > 1000 || text.chars().any(char::is_control))
        {
            problems.add(format!(
                "{name}: an empty, overlong or control-character field"
            ));
        }
    }
    if problems.0.is_empty() {
        Ok(())
    } else {
        Err(problems.0)
    }
}

/// Problems with the description, each prefixed with its file name.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, problem: String) {
        self.0.push(format!("{DESCRIPTION}: {problem}"));
    }

    /// Notes a problem unless `blake3` is among the objects, at `file` when one is named.
    fn refer(
        &mut self,
        objects: &BTreeMap<&str, &str>,
        what: &str,
        blake3: &str,
        file: Option<&str>,
    ) {
        match (objects.get(blake3), file) {
            (None, _) => self.add(format!("{what} ({blake3}) is not among the objects")),
            (Some(listed), Some(file)) if file != *listed => self.add(format!(
                "{what} is said to be {file}, but object {blake3} is {listed}"
            )),
            _ => {}
        }
    }
}
