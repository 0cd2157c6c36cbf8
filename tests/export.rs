//! Preservation packages end to end: `sohoa export` writes a BagIt bag that `sha512sum`, `sha256sum` and
//! qpdf accept without sohoa; `sohoa import` restores the dossier row for row into another archive, once;
//! a damaged or hostile bag is refused, naming the file, and nothing is recorded.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

const DOSSIER: &str = "000.00.15.H27-231128-0042";
const UNIT: &str = "000.00.15.H27";
const PROCEDURE: &str = "1.001234";
/// A result of another dossier that this one reused (held by another archive).
const REUSED: &str = "5b0ea1cd27b9c6e7e9ab0d4e3a51c8a7d07a3b4b8f1f6e0b2c3d4e5f60718293";

/// A dossier in a fresh archive, exported as a bag.
struct Exported {
    source: Sohoa,
    bag: PathBuf,
    /// BLAKE3 of the current document's PDF.
    document: String,
    /// BLAKE3 of the document it replaced, when a page was rescanned.
    replaced: Option<String>,
}

/// Ingests a two-page multi-page TIFF (the certificate and the receipt), optionally rescans page 2, and
/// exports the dossier.
fn exported(rescan: bool) -> Exported {
    let source = Sohoa::new();
    let tiff = source.input("scan.tif");
    write_tiff(&[render_page(CERTIFICATE), render_page(RECEIPT)], &tiff);
    let report = source.ingest(DOSSIER, &[&tiff]);
    let mut document = report["document"].as_str().unwrap().to_owned();
    let mut replaced = None;
    if rescan {
        let jpeg = source.input("rescan-2.jpg");
        write_jpeg(&render_page(RECEIPT), &jpeg);
        let out = source.ok(&[
            "replace-page",
            "--json",
            "--document",
            &document,
            "--page",
            "2",
            jpeg.to_str().unwrap(),
        ]);
        let rescanned: serde_json::Value = serde_json::from_str(&out).unwrap();
        replaced = Some(document);
        document = rescanned["document"].as_str().unwrap().to_owned();
    }
    // A certified copy of the current document, issued twice: both travel with the dossier.
    for _ in 0..2 {
        let copy = source.input("copy.pdf");
        source.ok(&["copy", &document, "-o", copy.to_str().unwrap()]);
    }
    // An archivist reads the dossier over the API: a line in the audit log, which the bag carries.
    {
        let server = source.serve();
        let read = source
            .client("archivist")
            .get(format!("{}/v1/dossiers/{DOSSIER}", server.url))
            .send()
            .unwrap();
        assert_eq!(read.status(), 200);
        // The desk asks the citizen for more documents: a change of status, which the bag carries.
        let patched = source
            .client("clerk")
            .patch(format!("{}/v1/dossiers/{DOSSIER}", server.url))
            .json(&serde_json::json!({"status": 5}))
            .send()
            .unwrap();
        assert_eq!(patched.status(), 200, "{:?}", patched.text());
        // The registry names the unit and the procedure; the bag carries the names.
        let admin = source.client("admin");
        for (path, body) in [
            (
                format!("/v1/units/{UNIT}"),
                serde_json::json!({"name": "UBND huyện Yên Thủy", "level": "district"}),
            ),
            (
                format!("/v1/procedures/{PROCEDURE}"),
                serde_json::json!({"name": "Cấp giấy chứng nhận quyền sử dụng đất", "field": "Đất đai", "level": "district"}),
            ),
        ] {
            let put = admin
                .put(format!("{}{path}", server.url))
                .json(&body)
                .send()
                .unwrap();
            assert!(put.status().is_success(), "{path}: {:?}", put.text());
        }
    }
    // The dossier reused a digitized result (of a dossier in another archive).
    source.sql(&format!(
        "INSERT INTO result_reuses (dossier_id, document, created_at)
         SELECT id, '{REUSED}', '2023-11-29T08:30:00+07:00' FROM dossiers WHERE code = '{DOSSIER}'"
    ));
    let bag = source.dir.path().join("bags/0042");
    let said = source.ok(&["export", DOSSIER, "-o", bag.to_str().unwrap()]);
    assert!(
        said.contains(&format!("dossier {DOSSIER} exported")),
        "{said}"
    );
    Exported {
        source,
        bag,
        document,
        replaced,
    }
}

/// Runs `tool args` inside `dir` and asserts it succeeds.
fn run_in(dir: &Path, tool: &str, args: &[&str]) -> String {
    let output = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{tool} runs: {e}"));
    assert!(
        output.status.success(),
        "{tool} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Every regular file under `dir`, as `/`-separated paths relative to `base`.
fn files_under(base: &Path, dir: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(base, &path));
        } else {
            found.insert(
                path.strip_prefix(base)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    found
}

fn description(bag: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(bag.join("data/metadata/dossier.json")).unwrap()).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// The archive's rows, every column but row ids, each value with its database type (floats exact),
/// sorted: two archives on the same kind of database that hold the same dossiers, documents, pages and
/// objects dump the same.
fn dump_rows(sohoa: &Sohoa) -> Vec<Vec<String>> {
    let postgres = sohoa.shared.is_some();
    let typed = |column: &str| {
        if postgres {
            format!("pg_typeof({column})::text || ':' || COALESCE(({column})::text, '')")
        } else {
            format!(
                "typeof({column}) || ':' || COALESCE(CASE typeof({column}) WHEN 'real' \
                 THEN printf('%.17g', {column}) ELSE CAST({column} AS TEXT) END, '')"
            )
        }
    };
    let tables = [
        (
            "dossiers d",
            "code procedure_code unit_code received_at created_at applicant due_at resolved_at status \
             channel updated_at",
        ),
        (
            "documents doc JOIN dossiers d ON d.id = doc.dossier_id",
            "d.code doc.kind doc.blake3 doc.page_count doc.created_at doc.replaces doc.superseded_by \
             doc.incomplete",
        ),
        (
            "pages p JOIN documents doc ON doc.id = p.document_id",
            "doc.blake3 p.number p.blake3 p.source_blake3 p.origin p.width p.height p.dpi p.dpi_assumed \
             p.confidence p.text p.words p.quality p.flags p.geometry p.pdf_page",
        ),
        ("objects", "blake3 size media_type"),
        (
            "copies",
            "blake3 document unit_code certificate subject development signed_at created_at",
        ),
        ("copy_issues", "copy document issued_to issued_at"),
        ("units", "code name level"),
        ("procedures", "code name field level"),
        (
            "result_reuses r JOIN dossiers d ON d.id = r.dossier_id",
            "d.code r.document r.created_at",
        ),
        (
            "status_changes s JOIN dossiers d ON d.id = s.dossier_id",
            "d.code s.status_before s.status s.at",
        ),
    ];
    let mut rows = Vec::new();
    for (from, columns) in tables {
        let select: Vec<String> = columns.split_whitespace().map(typed).collect();
        // As JSON, so text with line breaks and separators comes back whole.
        let sql = if postgres {
            format!(
                "SELECT COALESCE(json_agg(json_build_array({})), '[]') FROM {from}",
                select.join(", ")
            )
        } else {
            format!(
                "SELECT json_group_array(json_array({})) FROM {from}",
                select.join(", ")
            )
        };
        let table: Vec<Vec<String>> = serde_json::from_str(sohoa.sql(&sql).trim()).unwrap();
        rows.extend(table.into_iter().map(|mut row| {
            row.insert(0, from.to_owned());
            row
        }));
    }
    rows.sort();
    rows
}

/// A copy of `bag` at `to` whose `dossier.json` `change` has altered, with manifests made again: a bag
/// valid as BagIt, whatever its description now says.
fn with_description(bag: &Path, to: &Path, change: impl FnOnce(&mut serde_json::Value)) {
    copy_dir(bag, to);
    let mut described = description(to);
    change(&mut described);
    std::fs::write(
        to.join("data/metadata/dossier.json"),
        serde_json::to_vec_pretty(&described).unwrap(),
    )
    .unwrap();
    remanifest(to);
}

/// Makes a bag's manifests, Payload-Oxum and tag manifests again with the real tools, after a change to
/// its payload: a bag valid as BagIt, whatever its payload now says.
fn remanifest(bag: &Path) {
    let payload: Vec<String> = files_under(bag, &bag.join("data")).into_iter().collect();
    let payload: Vec<&str> = payload.iter().map(String::as_str).collect();
    for (tool, algorithm) in [("sha512sum", "sha512"), ("sha256sum", "sha256")] {
        let manifest = run_in(bag, tool, &payload);
        std::fs::write(bag.join(format!("manifest-{algorithm}.txt")), manifest).unwrap();
    }
    let octets: u64 = payload
        .iter()
        .map(|f| std::fs::metadata(bag.join(f)).unwrap().len())
        .sum();
    let info = std::fs::read_to_string(bag.join("bag-info.txt")).unwrap();
    let info: String = info
        .lines()
        .map(|l| {
            if l.starts_with("Payload-Oxum:") {
                format!("Payload-Oxum: {octets}.{}\n", payload.len())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(bag.join("bag-info.txt"), info).unwrap();
    let tags = [
        "bagit.txt",
        "bag-info.txt",
        "manifest-sha512.txt",
        "manifest-sha256.txt",
    ];
    for (tool, algorithm) in [("sha512sum", "sha512"), ("sha256sum", "sha256")] {
        let manifest = run_in(bag, tool, &tags);
        std::fs::write(bag.join(format!("tagmanifest-{algorithm}.txt")), manifest).unwrap();
    }
}

fn assert_refused(output: &Output, names: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "refused: {stderr}");
    for name in names {
        assert!(stderr.contains(name), "{name:?} not named in:\n{stderr}");
    }
    stderr
}

fn assert_nothing_recorded(target: &Sohoa) {
    let rows = dump_rows(target);
    assert!(
        rows.is_empty(),
        "rows recorded from a refused bag: {rows:?}"
    );
    assert!(
        target.stored_objects().is_empty(),
        "objects stored from a refused bag"
    );
    assert!(target.search("huong").is_empty());
}

#[test]
fn exported_bag_passes_sha512sum_sha256sum_and_qpdf_and_names_every_file() {
    let Exported {
        source,
        bag,
        document,
        ..
    } = exported(false);

    // The real tools accept the bag's manifests, run inside it.
    let checked = run_in(&bag, "sha512sum", &["-c", "manifest-sha512.txt"]);
    run_in(&bag, "sha256sum", &["-c", "manifest-sha256.txt"]);
    run_in(&bag, "sha512sum", &["-c", "tagmanifest-sha512.txt"]);
    let payload = files_under(&bag, &bag.join("data"));
    assert_eq!(checked.lines().count(), payload.len(), "{checked}");
    for file in &payload {
        assert!(
            checked.contains(&format!("{file}: OK")),
            "{file}: {checked}"
        );
    }
    let tags = run_in(&bag, "sha512sum", &["-c", "tagmanifest-sha512.txt"]);
    for tag in [
        "bagit.txt",
        "bag-info.txt",
        "manifest-sha512.txt",
        "manifest-sha256.txt",
    ] {
        assert!(tags.contains(&format!("{tag}: OK")), "{tags}");
    }

    assert_eq!(
        std::fs::read_to_string(bag.join("bagit.txt")).unwrap(),
        "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
    );
    let info = std::fs::read_to_string(bag.join("bag-info.txt")).unwrap();
    let octets: u64 = payload
        .iter()
        .map(|f| std::fs::metadata(bag.join(f)).unwrap().len())
        .sum();
    for line in [
        "Source-Organization: 000.00.15.H27".to_owned(),
        format!("External-Identifier: {DOSSIER}"),
        format!("Payload-Oxum: {octets}.{}", payload.len()),
        format!("Bag-Software-Agent: sohoa {}", env!("CARGO_PKG_VERSION")),
    ] {
        assert!(info.lines().any(|l| l == line), "{line:?} missing:\n{info}");
    }
    assert!(
        info.lines()
            .any(|l| l.starts_with("Bagging-Date: 20") && l.len() == 24),
        "{info}"
    );

    // dossier.json describes the dossier and names every file of the payload, each as it is.
    let described = description(&bag);
    assert_eq!(described["dossier"]["code"], DOSSIER);
    assert_eq!(described["dossier"]["procedure"], "1.001234");
    assert_eq!(described["dossier"]["unit"], "000.00.15.H27");
    // Accepted (2) at ingest, then additional documents requested (5).
    assert_eq!(described["dossier"]["status"], 5);
    assert_eq!(described["status_changes"][0]["status_before"], 2);
    let objects = described["objects"].as_array().unwrap();
    let mut named: BTreeSet<String> = objects
        .iter()
        .map(|o| o["file"].as_str().unwrap().to_owned())
        .collect();
    named.insert("data/metadata/dossier.json".to_owned());
    named.insert("data/metadata/audit.json".to_owned());
    assert_eq!(named, payload);
    for object in objects {
        let bytes = std::fs::read(bag.join(object["file"].as_str().unwrap())).unwrap();
        assert_eq!(blake3_hex(&bytes), object["blake3"], "{object}");
        assert_eq!(bytes.len() as u64, object["size"].as_u64().unwrap());
    }
    // One PDF, two page masters, the TIFF they came from, the certified copy.
    let media: Vec<&str> = objects
        .iter()
        .map(|o| o["media_type"].as_str().unwrap())
        .collect();
    assert_eq!(media.len(), 5, "{media:?}");

    // The certified copy, signed and intact, with both times it was issued.
    let copies = described["copies"].as_array().unwrap();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(copies[0]["document"], document.as_str());
    assert_eq!(copies[0]["issues"].as_array().unwrap().len(), 2);
    let copy = bag.join(copies[0]["file"].as_str().unwrap());
    assert_eq!(
        copy.strip_prefix(&bag).unwrap().to_str().unwrap(),
        format!("data/copies/{}.pdf", copies[0]["blake3"].as_str().unwrap())
    );
    assert_qpdf_clean(&copy);
    let signature = std::process::Command::new("pdfsig")
        .arg(&copy)
        .output()
        .unwrap();
    let signature = String::from_utf8_lossy(&signature.stdout);
    assert!(signature.contains("Signature is Valid."), "{signature}");

    // The audit lines about the dossier, oldest first.
    let audit: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bag.join("data/metadata/audit.json")).unwrap())
            .unwrap();
    assert_eq!(audit["format"], "sohoa-audit/1");
    assert_eq!(audit["dossier"], DOSSIER);
    let entries = audit["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "dossier.read" && e["dossier"] == DOSSIER),
        "{entries:?}"
    );
    let documents = described["documents"].as_array().unwrap();
    assert_eq!(documents.len(), 1);
    assert_eq!(documents[0]["blake3"], document.as_str());
    assert_eq!(documents[0]["kind"], "submitted");
    let pdf = bag.join(documents[0]["file"].as_str().unwrap());
    assert_eq!(
        pdf.strip_prefix(&bag).unwrap().to_str().unwrap(),
        format!("data/documents/submitted-{document}.pdf")
    );
    assert_qpdf_clean(&pdf);
    assert!(pdftotext(&pdf).contains("Nguyễn Thị Hương"));
    let pages = documents[0]["pages"].as_array().unwrap();
    assert_eq!(pages.len(), 2);
    for (i, page) in pages.iter().enumerate() {
        assert_eq!(page["number"], i + 1);
        let file = page["file"].as_str().unwrap();
        assert!(
            file.starts_with(&format!("data/pages/{}/{:04}-", &document[..16], i + 1)),
            "{file}"
        );
        assert_eq!(
            blake3_hex(&std::fs::read(bag.join(file)).unwrap()),
            page["blake3"]
        );
        let source = page["source_file"].as_str().unwrap();
        assert!(source.starts_with("data/sources/") && source.ends_with(".tif"));
        assert!(page["words"].as_array().is_some_and(|w| !w.is_empty()));
        assert!(page["quality"].is_object());
        for field in [
            "width",
            "height",
            "dpi",
            "confidence",
            "dpi_assumed",
            "pdf_page",
        ] {
            assert!(!page[field].is_null(), "{field} missing: {page}");
        }
    }
    assert!(pages[0]["text"].as_str().unwrap().contains("Hương"));

    // An occupied destination is refused and left as it was; no work folder is left beside it.
    let again = source.run(&["export", DOSSIER, "-o", bag.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not an empty directory"));
    assert_eq!(files_under(&bag, &bag.join("data")), payload);
    let unknown = source.dir.path().join("bags/none");
    let missing = source.run(&[
        "export",
        "000.00.15.H27-231128-0999",
        "-o",
        unknown.to_str().unwrap(),
    ]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(!unknown.exists());
    let beside: Vec<_> = std::fs::read_dir(bag.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, ["0042"], "left beside the bag: {beside:?}");
}

#[test]
fn imported_bag_restores_the_dossier_row_for_row_and_a_second_import_changes_nothing() {
    let Exported {
        source,
        bag,
        document,
        replaced,
    } = exported(true);
    let replaced = replaced.unwrap();
    let described = description(&bag);
    assert_eq!(described["documents"].as_array().unwrap().len(), 2);

    // The archive it moves to signs with the same certificate (a province moving its archive keeps its
    // units' keys): here, the source's development certificate.
    let target = Sohoa::new();
    let certs = target.data().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    for file in ["development-certificate.pem", "development-key.pem"] {
        std::fs::copy(source.data().join("certs").join(file), certs.join(file)).unwrap();
    }
    let said = target.ok(&["import", bag.to_str().unwrap()]);
    assert!(
        said.contains(&format!("dossier {DOSSIER} imported")),
        "{said}"
    );
    assert!(said.contains("2 documents, 4 pages"), "{said}");

    // Row for row, column for column, what the source archive holds.
    let rows = dump_rows(&target);
    let source_rows = dump_rows(&source);
    assert_eq!(rows.len(), source_rows.len());
    for (imported, original) in rows.iter().zip(&source_rows) {
        assert_eq!(imported, original);
    }
    assert_eq!(target.stored_objects(), source.stored_objects());

    // Every object comes back byte for byte through `sohoa get`.
    for (i, object) in described["objects"].as_array().unwrap().iter().enumerate() {
        let hash = object["blake3"].as_str().unwrap();
        let fetched = target.get(hash, &format!("object-{i}"));
        assert_eq!(
            std::fs::read(fetched).unwrap(),
            std::fs::read(bag.join(object["file"].as_str().unwrap())).unwrap(),
            "{object}"
        );
    }

    // Searchable, in the current document only: the replaced one stays out of results.
    let hits = target.search("nguyen thi huong");
    assert!(!hits.is_empty());
    assert_eq!(hits[0]["dossier"], DOSSIER);
    assert_eq!(hits[0]["page"], 1);
    assert!(hits.iter().all(|h| h["document"] == document.as_str()));
    assert!(hits.iter().all(|h| h["document"] != replaced.as_str()));
    assert_eq!(target.search("applicant")[0]["page"], 2);

    // The certified copy came along: the archive it was imported into recognises it as issued.
    let copy = bag.join(described["copies"][0]["file"].as_str().unwrap());
    let verdict: serde_json::Value =
        serde_json::from_str(&target.ok(&["verify", "--json", copy.to_str().unwrap()])).unwrap();
    assert_eq!(verdict["issued_by_this_archive"], true, "{verdict}");
    assert!(said.contains("1 certified copies and 2 issues"), "{said}");

    assert!(
        said.contains("2 unit and procedure names registered") && said.contains("1 reuses"),
        "{said}"
    );
    assert_eq!(described["unit"]["name"], "UBND huyện Yên Thủy");
    assert_eq!(described["reuses"][0]["document"], REUSED);
    assert_eq!(described["status_changes"][0]["status"], 5);

    // An archive that signs with other keys imports the dossier but leaves the copy in the bag: it did
    // not issue it, and must not say it did. It names the unit its own way, and keeps its name.
    let elsewhere = Sohoa::new();
    {
        let server = elsewhere.serve();
        let put = elsewhere
            .client("admin")
            .put(format!("{}/v1/units/{UNIT}", server.url))
            .json(
                &serde_json::json!({"name": "Ủy ban nhân dân huyện Yên Thủy", "level": "district"}),
            )
            .send()
            .unwrap();
        assert!(put.status().is_success(), "{:?}", put.text());
    }
    let said_elsewhere = elsewhere.ok(&["import", bag.to_str().unwrap()]);
    assert_eq!(
        elsewhere
            .sql(&format!("SELECT name FROM units WHERE code = '{UNIT}'"))
            .trim(),
        "Ủy ban nhân dân huyện Yên Thủy"
    );
    assert!(
        said_elsewhere.contains("1 unit and procedure names registered"),
        "{said_elsewhere}"
    );
    assert!(
        said_elsewhere.contains("1 certified copies left in the bag"),
        "{said_elsewhere}"
    );
    // Not issued here: `verify` says so and exits 1.
    let checked = elsewhere.run(&["verify", "--json", copy.to_str().unwrap()]);
    assert_eq!(checked.status.code(), Some(1));
    let verdict: serde_json::Value = serde_json::from_slice(&checked.stdout).unwrap();
    assert_eq!(verdict["intact"], true, "{verdict}");
    assert_eq!(verdict["issued_by_this_archive"], false, "{verdict}");
    let copy_hash = described["copies"][0]["blake3"].as_str().unwrap();
    assert!(
        !elsewhere
            .stored_objects()
            .iter()
            .any(|o| o.contains(copy_hash)),
        "the copy left in the bag is not stored"
    );

    // A bag written elsewhere may give its times in another offset: they are stored in Vietnam time, the
    // same instant (the statistics take the day from the text).
    let utc = source.dir.path().join("bags/utc");
    let at = described["status_changes"][0]["at"]
        .as_str()
        .unwrap()
        .to_owned();
    let written = time::OffsetDateTime::parse(&at, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert!(written.ends_with('Z'), "{written}");
    with_description(&bag, &utc, |described| {
        described["status_changes"][0]["at"] = serde_json::Value::from(written);
    });
    let fresh = Sohoa::new();
    let said_utc = fresh.ok(&["import", utc.to_str().unwrap()]);
    assert!(
        said_utc.contains("1 changes of status recorded"),
        "{said_utc}"
    );
    assert_eq!(fresh.sql("SELECT at FROM status_changes").trim(), at);

    // Again: nothing changes, and it says so. Into the archive it came from, too.
    let again = target.ok(&["import", bag.to_str().unwrap()]);
    assert!(again.contains("nothing changed"), "{again}");
    assert_eq!(dump_rows(&target), rows);
    let home = source.ok(&["import", bag.to_str().unwrap()]);
    assert!(home.contains("nothing changed"), "{home}");
    assert_eq!(dump_rows(&source), rows);
    assert_eq!(target.search("nguyen thi huong").len(), hits.len());
}

#[test]
fn tampered_and_hostile_bags_are_refused_naming_the_file_and_nothing_is_recorded() {
    let Exported { source, bag, .. } = exported(false);
    let described = description(&bag);
    let master = described["documents"][0]["pages"][0]["file"]
        .as_str()
        .unwrap()
        .to_owned();
    let work = source.dir.path().join("tampered");

    // One byte flipped in a page master.
    let flipped = work.join("flipped");
    copy_dir(&bag, &flipped);
    let mut bytes = std::fs::read(flipped.join(&master)).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(flipped.join(&master), &bytes).unwrap();
    let target = Sohoa::new();
    let output = target.run(&["import", flipped.to_str().unwrap()]);
    let said = assert_refused(&output, &[&master, "sha512", "sha256"]);
    assert!(said.contains("nothing was recorded"), "{said}");
    assert_nothing_recorded(&target);

    // A manifest line that climbs out of the bag, at a file that exists there.
    let escaping = work.join("escaping");
    copy_dir(&bag, &escaping);
    std::fs::write(work.join("outside.txt"), b"not part of the bag").unwrap();
    let mut manifest = std::fs::read_to_string(escaping.join("manifest-sha512.txt")).unwrap();
    let checksum = run_in(&work, "sha512sum", &["outside.txt"]);
    let checksum = checksum.split_whitespace().next().unwrap();
    manifest.push_str(&format!("{checksum}  ../outside.txt\n"));
    manifest.push_str(&format!("{checksum}  data/../../outside.txt\n"));
    std::fs::write(escaping.join("manifest-sha512.txt"), manifest).unwrap();
    let target = Sohoa::new();
    let output = target.run(&["import", escaping.to_str().unwrap()]);
    let said = assert_refused(
        &output,
        &["../outside.txt", "data/../../outside.txt", "refused"],
    );
    assert!(said.contains("manifest-sha512.txt"), "{said}");
    assert_nothing_recorded(&target);

    // A valid bag whose page master is not the object dossier.json names: BagIt alone cannot tell, the
    // BLAKE3 check does. Manifests and Payload-Oxum are made again with the real tools.
    let swapped = work.join("swapped");
    copy_dir(&bag, &swapped);
    let other = described["documents"][0]["pages"][1]["file"]
        .as_str()
        .unwrap();
    std::fs::copy(swapped.join(other), swapped.join(&master)).unwrap();
    remanifest(&swapped);
    run_in(&swapped, "sha512sum", &["-c", "manifest-sha512.txt"]);
    let target = Sohoa::new();
    let output = target.run(&["import", swapped.to_str().unwrap()]);
    assert_refused(&output, &[&master, "BLAKE3"]);
    assert_nothing_recorded(&target);

    // A certified copy said to certify a document that is not the dossier's.
    let foreign = work.join("foreign-copy");
    let stranger = "0".repeat(64);
    with_description(&bag, &foreign, |described| {
        described["copies"][0]["document"] = serde_json::Value::from(stranger.as_str());
    });
    let target = Sohoa::new();
    let output = target.run(&["import", foreign.to_str().unwrap()]);
    assert_refused(&output, &["certified copy", &stranger]);
    assert_nothing_recorded(&target);

    // A certified copy described with another signer than the one that signed it.
    let resigned = work.join("resigned-copy");
    with_description(&bag, &resigned, |described| {
        described["copies"][0]["certificate"] = serde_json::Value::from("ab".repeat(32));
    });
    let target = Sohoa::new();
    let output = target.run(&["import", resigned.to_str().unwrap()]);
    assert_refused(&output, &["data/copies/", "not the", &"ab".repeat(32)]);
    assert_nothing_recorded(&target);

    // Registry names for another unit, a level the registry has no place for, a reuse that is no hash.
    let misnamed = work.join("misnamed");
    with_description(&bag, &misnamed, |described| {
        described["unit"]["code"] = serde_json::Value::from("000.00.16.H27");
        described["procedure"]["level"] = serde_json::Value::from("x".repeat(600));
        described["reuses"][0]["document"] = serde_json::Value::from("../../etc/passwd");
        described["status_changes"][0]["status"] = serde_json::Value::from(11);
    });
    let target = Sohoa::new();
    let output = target.run(&["import", misnamed.to_str().unwrap()]);
    assert_refused(
        &output,
        &[
            "000.00.16.H27",
            "procedure 1.001234: level must be province, district or commune",
            "a reused result",
            "statuses are 1 to 10",
            "the last change of status is to 11",
        ],
    );
    assert_nothing_recorded(&target);

    // The dossier already here under another procedure: refused, and what is here stays as it was.
    let target = Sohoa::new();
    let page = target.input("other.png");
    write_png(&render_page(RECEIPT), &page);
    let ingested = target.run(&[
        "ingest",
        "--json",
        "--dossier",
        DOSSIER,
        "--procedure",
        "2.000815",
        "--unit",
        "000.00.15.H27",
        page.to_str().unwrap(),
    ]);
    assert!(ingested.status.success());
    let before = dump_rows(&target);
    let objects_before = target.stored_objects();
    let output = target.run(&["import", bag.to_str().unwrap()]);
    assert_refused(&output, &[DOSSIER, "2.000815", "1.001234"]);
    assert_eq!(dump_rows(&target), before);
    assert_eq!(target.stored_objects(), objects_before);
}
