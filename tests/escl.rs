//! eSCL (AirScan) both ways, over real HTTP on loopback: `sohoa scanner share` serves a folder of pages and
//! SANE's test scanner as network scanners, a real third-party client (sane-airscan, through `scanimage`)
//! lists and scans from them, and sohoa's own eSCL client scans from them into a dossier, keeping the
//! pages received when the device vanishes mid-job.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// `sohoa scanner share` on a free port, stopped when dropped.
struct Bridge {
    child: Child,
    url: String,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn share(sohoa: &Sohoa, backend: &[&str]) -> Bridge {
    let mut child = sohoa
        .command()
        .args(["scanner", "share", "--listen", "127.0.0.1:0"])
        .args(backend)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("sohoa scanner share starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("sohoa scanner share: eSCL at ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    Bridge { child, url }
}

/// A SANE configuration folder in which only sane-airscan is enabled, pointed at `url`.
fn airscan_config(sohoa: &Sohoa, url: &str) -> std::path::PathBuf {
    let dir = sohoa.dir.path().join("sane.d");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("dll.conf"), "airscan\n").unwrap();
    std::fs::write(
        dir.join("airscan.conf"),
        format!("[devices]\n\"sohoa\" = {url}, eSCL\n[options]\ndiscovery = disable\n"),
    )
    .unwrap();
    dir
}

fn scanimage(config: &Path, args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new("scanimage")
        .env("SANE_CONFIG_DIR", config)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("scanimage runs (Debian package sane-utils)")
}

fn page_folder(sohoa: &Sohoa) -> std::path::PathBuf {
    let folder = sohoa.dir.path().join("pages");
    std::fs::create_dir_all(&folder).unwrap();
    write_png(&render_page(LETTER), &folder.join("001.png"));
    write_png(&render_page(CERTIFICATE), &folder.join("002.png"));
    folder
}

#[test]
fn sane_airscan_lists_and_scans_from_the_bridge() {
    let sohoa = Sohoa::new();
    let folder = page_folder(&sohoa);
    let bridge = share(&sohoa, &["--folder", folder.to_str().unwrap()]);
    let config = airscan_config(&sohoa, &bridge.url);
    let out = sohoa.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();

    let listed = scanimage(&config, &["-L"], &out);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("airscan:e0:sohoa"), "{listed}");

    let scanned = scanimage(
        &config,
        &[
            "-d",
            "airscan:e0:sohoa",
            "--source",
            "ADF",
            "--format=png",
            "--batch=page%d.png",
        ],
        &out,
    );
    let said = String::from_utf8_lossy(&scanned.stderr);
    assert!(said.contains("2 pages scanned"), "{said}");
    for n in [1, 2] {
        let page = image::open(out.join(format!("page{n}.png"))).unwrap();
        assert!(page.width() > 1000, "a full page at 300 dpi");
    }
}

#[test]
fn a_sane_scanner_shared_over_escl_scans_through_sane_airscan() {
    let sohoa = Sohoa::new();
    let bridge = share(&sohoa, &["--device", "test:0"]);
    let config = airscan_config(&sohoa, &bridge.url);
    let out = sohoa.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let scanned = scanimage(
        &config,
        &[
            "-d",
            "airscan:e0:sohoa",
            "--resolution",
            "100",
            "--format=png",
            "-o",
            "flatbed.png",
        ],
        &out,
    );
    assert!(
        scanned.status.success(),
        "{}",
        String::from_utf8_lossy(&scanned.stderr)
    );
    assert!(image::open(out.join("flatbed.png")).is_ok());
}

#[test]
fn sohoa_scans_from_an_escl_device_into_a_dossier() {
    let sohoa = Sohoa::new();
    let folder = page_folder(&sohoa);
    let bridge = share(&sohoa, &["--folder", folder.to_str().unwrap()]);
    let device = format!("escl:{}", bridge.url);

    let listing: serde_json::Value =
        serde_json::from_str(&sohoa.ok(&["scanners", "--local", "--json", "--escl", &bridge.url]))
            .unwrap();
    let escl = listing
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device"]["name"] == device.as_str())
        .unwrap_or_else(|| panic!("{listing}"));
    assert_eq!(
        escl["capabilities"]["sources"],
        serde_json::json!(["Platen", "Feeder"])
    );

    let output = sohoa.run(&[
        "scan",
        "--json",
        "--device",
        &device,
        "--source",
        "adf",
        "--dossier",
        "000.00.15.H27-231128-0301",
        "--procedure",
        "1.001234",
        "--unit",
        "000.00.15.H27",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["pages"].as_array().unwrap().len(), 2, "{report}");
    let hits = sohoa.search("tran van binh");
    assert_eq!(hits[0]["page"].as_u64(), Some(1), "{hits:?}");
    let hits = sohoa.search("nguyen thi huong");
    assert_eq!(hits[0]["page"].as_u64(), Some(2), "{hits:?}");
}

#[test]
fn a_device_that_vanishes_mid_job_leaves_the_pages_received_stored() {
    let sohoa = Sohoa::new();
    // SANE's test feeder behind the bridge, nearly a second a sheet.
    let mut bridge = share(
        &sohoa,
        &[
            "--device",
            "test:0",
            "--option",
            "read-delay=yes",
            "--option",
            "read-delay-duration=100000",
        ],
    );
    let device = format!("escl:{}", bridge.url);
    let scan = sohoa
        .command()
        .args([
            "scan",
            "--json",
            "--device",
            &device,
            "--source",
            "adf",
            "--dpi",
            "200",
            "--mode",
            "gray",
            "--dossier",
            "000.00.15.H27-231128-0302",
            "--procedure",
            "1.001234",
            "--unit",
            "000.00.15.H27",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // While it scans, a second desk is told the scanner is busy.
    let second = sohoa.run(&[
        "scan",
        "--device",
        &device,
        "--dossier",
        "000.00.15.H27-231128-0303",
        "--procedure",
        "1.001234",
        "--unit",
        "000.00.15.H27",
    ]);
    assert!(!second.status.success());
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(said.contains("busy"), "{said}");
    std::thread::sleep(Duration::from_millis(2000));
    // The device is switched off.
    let _ = bridge.child.kill();
    let _ = bridge.child.wait();
    let output = scan.wait_with_output().unwrap();
    assert_stopped_part_way(&output, "cannot be reached");
}

#[test]
fn a_shared_scanner_is_announced_over_mdns_and_found() {
    let sohoa = Sohoa::new();
    let folder = page_folder(&sohoa);
    let bridge = share(
        &sohoa,
        &[
            "--folder",
            folder.to_str().unwrap(),
            "--name",
            "sohoa mdns test",
        ],
    );
    // Without --local, `scanners` browses `_uscan._tcp` for a moment.
    let listing: serde_json::Value =
        serde_json::from_str(&sohoa.ok(&["scanners", "--json"])).unwrap();
    let device = format!("escl:{}", bridge.url);
    let found = listing
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device"]["name"] == device.as_str())
        .unwrap_or_else(|| panic!("{device} not discovered: {listing}"));
    assert_eq!(
        found["capabilities"]["make_and_model"],
        format!("sohoa shared folder {}", folder.display())
    );
}
