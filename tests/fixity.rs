//! Fixity: `sohoa audit` reads every stored object back and checks it against its recorded BLAKE3.

mod common;

use common::*;

const DOSSIER: &str = "000.00.15.H27-231128-0042";

#[test]
fn audit_finds_a_flipped_byte_and_a_lost_file_and_nothing_else() {
    let sohoa = Sohoa::new();
    let first = sohoa.input("001.png");
    let second = sohoa.input("002.png");
    write_png(&render_page(CERTIFICATE), &first);
    write_png(&render_page(RECEIPT), &second);
    let report = sohoa.ingest(DOSSIER, &[&first, &second]);
    let document = report["document"].as_str().unwrap().to_owned();
    let lost = report["pages"][1]["blake3"].as_str().unwrap().to_owned();

    let intact: serde_json::Value = serde_json::from_str(&sohoa.ok(&["audit", "--json"])).unwrap();
    assert_eq!(intact["checked"], 3, "{intact}");
    assert_eq!(intact["ok"], 3);

    // One bit flipped in the stored PDF, one page master gone.
    let mut bytes = sohoa.raw_object(&document).expect("the PDF is stored");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x04;
    sohoa.tamper_object(&document, Some(&bytes));
    sohoa.tamper_object(&lost, None);

    let output = sohoa.run(&["audit", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let found: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(found["checked"], 3, "{found}");
    assert_eq!(found["ok"], 1, "{found}");
    let problems = found["problems"].as_array().unwrap();
    let outcome_of = |hash: &str| {
        problems
            .iter()
            .find(|p| p["blake3"] == hash)
            .map(|p| p["outcome"].as_str().unwrap().to_owned())
    };
    assert_eq!(outcome_of(&document).as_deref(), Some("corrupt"), "{found}");
    assert_eq!(outcome_of(&lost).as_deref(), Some("missing"), "{found}");

    // In words too, and the damaged object is refused when asked for, not served.
    let said = sohoa.run(&["audit"]);
    let said = String::from_utf8_lossy(&said.stdout);
    assert!(
        said.contains("3 objects checked: 1 intact, 2 with problems"),
        "{said}"
    );
    assert!(said.contains(&format!("corrupt {document}")), "{said}");
    let fetched = sohoa.run(&[
        "get",
        &document,
        "-o",
        sohoa.input("out.pdf").to_str().unwrap(),
    ]);
    assert!(!fetched.status.success());
    let server = sohoa.serve();
    let archivist = sohoa.client("archivist");
    let response = archivist
        .get(format!("{}/v1/objects/{document}", server.url))
        .send()
        .unwrap();
    assert_eq!(response.status(), 500);
    let body: serde_json::Value = response.json().unwrap();
    assert_eq!(body["code"], "object-corrupt");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("restore it from backup")
    );
}

#[test]
fn gc_removes_only_unrecorded_objects_past_the_grace_period() {
    let sohoa = Sohoa::new();
    let page = sohoa.input("001.png");
    write_png(&render_page(CERTIFICATE), &page);
    let report = sohoa.ingest(DOSSIER, &[&page]);
    let document = report["document"].as_str().unwrap().to_owned();
    let before = sohoa.stored_objects();
    assert_eq!(before.len(), 2, "{before:?}");

    // What a crash between storing an object and recording it leaves: an object no row records.
    let stray = b"a page stored by an ingest that never committed".to_vec();
    let stray_hash = blake3_hex(&stray);
    sohoa.tamper_object(&stray_hash, Some(&stray));
    assert_eq!(sohoa.stored_objects().len(), 3);

    // Within the grace period (default 24 h) it stays: it may belong to work in progress.
    let kept: serde_json::Value = serde_json::from_str(&sohoa.ok(&["gc", "--json"])).unwrap();
    assert_eq!(kept["stored"], 3, "{kept}");
    assert_eq!(kept["recorded"], 2, "{kept}");
    assert_eq!(kept["young"], 1, "{kept}");
    assert_eq!(kept["removed"].as_array().unwrap().len(), 0, "{kept}");

    // A dry run names it and removes nothing; then it goes, and nothing recorded goes with it.
    let dry: serde_json::Value =
        serde_json::from_str(&sohoa.ok(&["gc", "--grace-hours", "0", "--dry-run", "--json"]))
            .unwrap();
    assert_eq!(dry["removed"], serde_json::json!([stray_hash]), "{dry}");
    assert_eq!(sohoa.stored_objects().len(), 3);
    let removed: serde_json::Value =
        serde_json::from_str(&sohoa.ok(&["gc", "--grace-hours", "0", "--json"])).unwrap();
    assert_eq!(
        removed["removed"],
        serde_json::json!([stray_hash]),
        "{removed}"
    );
    assert_eq!(removed["removed_bytes"], stray.len());
    assert_eq!(sohoa.stored_objects(), before);
    assert!(sohoa.raw_object(&stray_hash).is_none());
    let audit: serde_json::Value = serde_json::from_str(&sohoa.ok(&["audit", "--json"])).unwrap();
    assert_eq!(audit["ok"], 2, "{audit}");
    assert!(sohoa.get(&document, "kept.pdf").exists());
}
