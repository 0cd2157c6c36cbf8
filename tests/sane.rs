//! Scanning through real SANE, with its `test` backend (enabled in /etc/sane.d/dll.conf; .ci/run does it):
//! the scanner list with capabilities, a ten-sheet feeder batch arriving in order, a jam reported in words,
//! and a scan cancelled mid-batch keeping the sheets already scanned, the document marked incomplete.

mod common;

use std::time::Duration;

use common::*;

fn scan_args<'a>(dossier: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "scan",
        "--json",
        "--device",
        "test:0",
        "--dossier",
        dossier,
        "--procedure",
        "1.001234",
        "--unit",
        "000.00.15.H27",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn scanners_are_listed_with_their_sources_modes_and_resolutions() {
    let sohoa = Sohoa::new();
    let listing: serde_json::Value =
        serde_json::from_str(&sohoa.ok(&["scanners", "--local", "--json"])).unwrap();
    let test = listing
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device"]["name"] == "test:0")
        .unwrap_or_else(|| panic!("SANE's test backend is not enabled: {listing}"));
    let capabilities = &test["capabilities"];
    let sources: Vec<&str> = capabilities["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert_eq!(sources, ["Flatbed", "Automatic Document Feeder"]);
    assert!(
        capabilities["modes"]
            .as_array()
            .unwrap()
            .contains(&"Color".into())
    );
    assert_eq!(capabilities["resolutions"][1], 1200, "{capabilities}");
}

#[test]
fn a_feeder_batch_arrives_whole_and_in_order() {
    let sohoa = Sohoa::new();
    let output = sohoa.run(&scan_args(
        "000.00.15.H27-231128-0201",
        &[
            "--source",
            "adf",
            "--dpi",
            "100",
            "--mode",
            "gray",
            "--option",
            "test-picture=Color pattern",
        ],
    ));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let pages = report["pages"].as_array().unwrap();
    assert_eq!(
        pages.len(),
        10,
        "the test feeder holds ten sheets: {report}"
    );
    for (i, page) in pages.iter().enumerate() {
        assert_eq!(page["n"], i + 1);
        assert_eq!(page["origin"], format!("test:0, sheet {}", i + 1));
    }
    assert!(report.get("incomplete").is_none());
}

#[test]
fn a_jam_is_reported_in_words_and_records_nothing() {
    let sohoa = Sohoa::new();
    let output = sohoa.run(&scan_args(
        "000.00.15.H27-231128-0202",
        &[
            "--source",
            "adf",
            "--option",
            "read-return-value=SANE_STATUS_JAMMED",
        ],
    ));
    assert_eq!(output.status.code(), Some(1));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("paper jam"), "{said}");

    // A source the scanner does not have is named with what it does offer.
    let output = sohoa.run(&scan_args(
        "000.00.15.H27-231128-0203",
        &["--source", "tray"],
    ));
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("Flatbed, Automatic Document Feeder"),
        "{said}"
    );
}

#[test]
fn jams_never_hang_the_scan() {
    // SANE's test backend kills its reader thread asynchronously on a jam; in-process, about one jam in
    // eight left the dynamic loader's lock held and hung sohoa for good. Scans run in a helper process now.
    let sohoa = Sohoa::new();
    for attempt in 0..12 {
        let mut child = sohoa
            .command()
            .args(scan_args(
                &format!("000.00.15.H27-231128-{:04}", 300 + attempt),
                &[
                    "--source",
                    "adf",
                    "--option",
                    "read-return-value=SANE_STATUS_JAMMED",
                ],
            ))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("jam {attempt}: the scan hung");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status.code(), Some(1), "jam {attempt}");
    }
}

#[test]
fn a_cancelled_batch_keeps_the_sheets_scanned_and_is_marked_incomplete() {
    let sohoa = Sohoa::new();
    // Nearly a second a sheet (the test backend's transfer delay), so the cancel lands mid-batch.
    let child = sohoa
        .command()
        .args(scan_args(
            "000.00.15.H27-231128-0204",
            &[
                "--source",
                "adf",
                "--dpi",
                "200",
                "--mode",
                "gray",
                "--option",
                "read-delay=yes",
                "--option",
                "read-delay-duration=100000",
            ],
        ))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let report = assert_stopped_part_way(&output, "cancelled");
    // The kept sheets are stored: the document can be fetched.
    sohoa.get(report["document"].as_str().unwrap(), "partial.pdf");
}

#[test]
fn scans_started_over_http_report_their_progress_and_document() {
    let sohoa = Sohoa::new();
    let server = sohoa.serve();
    let client = sohoa.client("clerk");

    let scanners: serde_json::Value = client
        .get(format!("{}/v1/scanners", server.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        scanners["scanners"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "test:0"),
        "{scanners}"
    );

    let started = client
        .post(format!("{}/v1/scans", server.url))
        .json(&serde_json::json!({
            "device": "test:0", "source": "adf", "dpi": 100, "mode": "gray",
            "dossier": "000.00.15.H27-231128-0205", "procedure": "1.001234", "unit": "000.00.15.H27",
        }))
        .send()
        .unwrap();
    assert_eq!(started.status(), 202);
    let job: serde_json::Value = started.json().unwrap();
    let id = job["id"].as_u64().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        let status: serde_json::Value = client
            .get(format!("{}/v1/scans/{id}", server.url))
            .send()
            .unwrap()
            .json()
            .unwrap();
        // Each page is listed with its reading as soon as it is read.
        assert_eq!(
            status["pages"].as_array().map(Vec::len),
            status["pages_done"].as_u64().map(|n| n as usize),
            "{status}"
        );
        if status["state"] != "scanning" {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still scanning: {status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status["state"], "done", "{status}");
    assert_eq!(status["pages_done"], 10);
    let numbers: Vec<u64> = status["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["n"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=10).collect::<Vec<_>>(), "{status}");
    assert!(status["pages"][0]["confidence"].is_number(), "{status}");

    // Each sheet's small image, for the desk's thumbnails while it scans; to the scan's unit only.
    let thumbnail = client
        .get(format!("{}/v1/scans/{id}/pages/3/thumbnail", server.url))
        .send()
        .unwrap();
    assert_eq!(thumbnail.status(), 200);
    assert_eq!(thumbnail.headers()["content-type"], "image/jpeg");
    assert_eq!(thumbnail.headers()["cache-control"], "no-store");
    let small = image::load_from_memory(&thumbnail.bytes().unwrap()).unwrap();
    assert!(
        small.width().max(small.height()) <= 360 && small.width() >= 100,
        "{}x{}",
        small.width(),
        small.height()
    );
    let not_yet = client
        .get(format!("{}/v1/scans/{id}/pages/11/thumbnail", server.url))
        .send()
        .unwrap();
    assert_eq!(not_yet.status(), 404);
    assert_eq!(
        not_yet.json::<serde_json::Value>().unwrap()["code"],
        "page-not-ready"
    );
    let elsewhere = common::client_with_token(&sohoa.token("clerk", &["000.00.16.H27"]));
    for path in [
        format!("/v1/scans/{id}"),
        format!("/v1/scans/{id}/pages/3/thumbnail"),
    ] {
        let refused = elsewhere
            .get(format!("{}{path}", server.url))
            .send()
            .unwrap();
        assert_eq!(refused.status(), 403, "{path}");
    }
    let audit: serde_json::Value = sohoa
        .client("admin")
        .get(format!("{}/v1/audit?action=scan.page.read", server.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        audit["entries"][0]["dossier"], "000.00.15.H27-231128-0205",
        "every look at a sheet is on record: {audit}"
    );

    let document = status["document"].as_str().unwrap();
    let pdf = client
        .get(format!("{}/v1/objects/{document}", server.url))
        .send()
        .unwrap();
    assert_eq!(pdf.status(), 200);

    // A scanner that is not there, and a malformed dossier code, are refused with reasons.
    let missing = client
        .post(format!("{}/v1/scans", server.url))
        .json(&serde_json::json!({
            "device": "test:9", "dossier": "000.00.15.H27-231128-0206",
            "procedure": "1.001234", "unit": "000.00.15.H27",
        }))
        .send()
        .unwrap();
    assert_eq!(missing.status(), 422);
    let bad = client
        .post(format!("{}/v1/scans", server.url))
        .json(&serde_json::json!({
            "device": "test:0", "dossier": "0042", "procedure": "1.001234", "unit": "000.00.15.H27",
        }))
        .send()
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(
        client
            .get(format!("{}/v1/scans/999", server.url))
            .send()
            .unwrap()
            .status(),
        404
    );
}
