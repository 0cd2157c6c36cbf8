//! Scale-out and durability: several worker processes share the work queue, and killing a worker and then
//! the server mid-way (`kill -9`) loses nothing and does nothing twice. Runs on the embedded SQLite + local
//! store, and on PostgreSQL + S3 with `SOHOA_TEST_BACKEND=postgres-s3` (as `.ci/run` does).

mod common;

use std::collections::BTreeSet;
use std::process::Child;
use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};

const UNIT: &str = "000.00.15.H27";
const DOSSIERS: usize = 20;
const PAGES_PER_DOSSIER: usize = 5;

fn code(n: usize) -> String {
    format!("{UNIT}-231128-{:04}", n + 1)
}

fn page(sohoa: &Sohoa, dossier: usize, number: usize) -> Vec<u8> {
    let name = format!("d{dossier}-p{number}.png");
    let path = sohoa.input(&name);
    let heading = format!("HỒ SƠ SỐ {} TRANG {}", dossier + 1, number);
    let applicant = format!("Người nộp: Nguyễn Văn An {}", dossier * 10 + number);
    write_png(
        &render_page(&[&heading, &applicant, "Địa chỉ: xã Yên Trị"]),
        &path,
    );
    std::fs::read(path).unwrap()
}

fn kill_hard(child: &mut Child) {
    // SIGKILL: no chance to finish the job in hand or to say goodbye.
    child.kill().unwrap();
    child.wait().unwrap();
}

struct Desk {
    url: String,
    client: Client,
}

impl Desk {
    /// Registers dossier `dossier`, uploads its pages and asks for packaging; the job's id, or `None` if
    /// there was nothing (left) to package.
    fn try_upload(&self, sohoa: &Sohoa, dossier: usize) -> Option<String> {
        let code = code(dossier);
        let registered = self
            .client
            .post(format!("{}/v1/dossiers", self.url))
            .json(&json!({"code": code, "procedure": "1.001234", "unit": UNIT, "applicant": "Nguyễn Văn An"}))
            .send()
            .unwrap();
        assert!(
            registered.status().is_success(),
            "{}",
            registered.text().unwrap()
        );
        for number in 1..=PAGES_PER_DOSSIER {
            // The same key on a retry makes the upload count once.
            let response = self
                .client
                .post(format!("{}/v1/dossiers/{code}/pages", self.url))
                .query(&[("name", format!("{number:03}.png"))])
                .header("content-type", "image/png")
                .header("Idempotency-Key", format!("{code}/{number}"))
                .body(page(sohoa, dossier, number))
                .send()
                .unwrap();
            assert!(
                response.status().is_success(),
                "{}",
                response.text().unwrap()
            );
        }
        let response = self
            .client
            .post(format!("{}/v1/dossiers/{code}/finalize", self.url))
            .send()
            .unwrap();
        if response.status() == StatusCode::CONFLICT {
            return None;
        }
        let job: Value = response.json().unwrap();
        Some(job["id"].as_str().unwrap().to_owned())
    }

    fn upload(&self, sohoa: &Sohoa, dossier: usize) -> String {
        self.try_upload(sohoa, dossier).expect("pages to package")
    }

    fn job(&self, id: &str) -> Value {
        self.client
            .get(format!("{}/v1/jobs/{id}", self.url))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }
}

fn desk(server: &Server, token: &str) -> Desk {
    Desk {
        url: server.url.clone(),
        client: client_with_token(token),
    }
}

/// Kills the worker processes still running when dropped (a failed assertion must not leave them).
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn killing_a_worker_and_the_server_mid_way_loses_no_page_and_packages_none_twice() {
    let sohoa = Sohoa::new();
    let bare = [("SOHOA_WORKERS", "0")];
    let mut server = sohoa.serve_bare(&bare);
    // One clerk at the desk throughout: idempotency keys are the caller's own.
    let clerk = sohoa.token("clerk", &[UNIT]);
    let first = desk(&server, &clerk);
    let mut jobs: Vec<String> = (0..DOSSIERS / 2).map(|n| first.upload(&sohoa, n)).collect();

    // Two workers share the queue.
    let mut workers = Workers(vec![sohoa.worker(), sohoa.worker()]);
    let doomed_pid = format!(":{}:", workers.0[0].id());

    // Kill one worker while it holds a job part-way.
    let deadline = Instant::now() + Duration::from_secs(300);
    let taken = loop {
        let held = jobs.iter().map(|id| first.job(id)).find(|job| {
            job["state"] == "running"
                && job["worker"]
                    .as_str()
                    .is_some_and(|w| w.contains(&doomed_pid))
        });
        if let Some(job) = held {
            break job["id"].as_str().unwrap().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "the first worker never took a job"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    kill_hard(&mut workers.0[0]);

    // Then the server, while the other worker goes on; it comes back and takes the second half.
    kill_hard(&mut server.child);
    drop(server);
    let server = sohoa.serve_bare(&bare);
    let second = desk(&server, &clerk);
    // The desk retries the last upload of the first half after the crash: nothing is added twice.
    // (Its job still waiting gives the same job; already done, there is nothing left to package.)
    if let Some(again) = second.try_upload(&sohoa, DOSSIERS / 2 - 1) {
        assert!(
            jobs.contains(&again),
            "a retried finalize gives the same job, not a new one"
        );
    }
    jobs.extend((DOSSIERS / 2..DOSSIERS).map(|n| second.upload(&sohoa, n)));
    workers.0.push(sohoa.worker());

    let deadline = Instant::now() + Duration::from_secs(900);
    let finished: Vec<Value> = jobs
        .iter()
        .map(|id| {
            loop {
                let job = second.job(id);
                if job["state"] == "done" || job["state"] == "failed" {
                    break job;
                }
                assert!(Instant::now() < deadline, "job never finished: {job}");
                std::thread::sleep(Duration::from_millis(250));
            }
        })
        .collect();
    drop(workers);
    for job in &finished {
        assert_eq!(job["state"], "done", "{job}");
    }
    let taken_over = finished
        .iter()
        .find(|job| job["id"] == taken.as_str())
        .unwrap();
    assert!(
        taken_over["attempts"].as_i64().unwrap() >= 2,
        "the killed worker's job was run again by another: {taken_over}"
    );

    // Every accepted page packaged exactly once: one document per dossier, five pages each, none waiting.
    let mut documents = BTreeSet::new();
    for n in 0..DOSSIERS {
        let view: Value = second
            .client
            .get(format!("{}/v1/dossiers/{}", second.url, code(n)))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let docs = view["documents"].as_array().unwrap();
        assert_eq!(docs.len(), 1, "{view}");
        assert_eq!(docs[0]["page_count"], PAGES_PER_DOSSIER, "{view}");
        assert_eq!(view["pending"].as_array().unwrap().len(), 0, "{view}");
        documents.insert(docs[0]["document"].as_str().unwrap().to_owned());
    }
    assert_eq!(documents.len(), DOSSIERS);
    let counts = sohoa.sql(
        "SELECT COUNT(*), COUNT(DISTINCT blake3), (SELECT COUNT(*) FROM documents), \
         (SELECT COUNT(*) FROM pending_pages) FROM pages",
    );
    let counts: Vec<&str> = counts.trim().split('|').collect();
    let total = (DOSSIERS * PAGES_PER_DOSSIER).to_string();
    let documents_count = DOSSIERS.to_string();
    assert_eq!(
        counts,
        [
            total.as_str(),
            total.as_str(),
            documents_count.as_str(),
            "0"
        ]
    );

    // Every PDF and page master is stored and hashes to its address.
    let archivist = client_with_token(&sohoa.token("archivist", &[]));
    for document in &documents {
        let response = archivist
            .get(format!("{}/v1/objects/{document}", second.url))
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(blake3_hex(&response.bytes().unwrap()), *document);
    }
    let audit: Value = serde_json::from_str(&sohoa.ok(&["audit", "--json"])).unwrap();
    assert_eq!(audit["ok"], audit["checked"], "{audit}");
    assert!(audit["checked"].as_i64().unwrap() >= (DOSSIERS * (PAGES_PER_DOSSIER + 1)) as i64);
}

/// A job held by a worker on another machine, the way the database shows it.
fn hold_elsewhere(sohoa: &Sohoa, job: &str, lease_until_ms: i64) {
    sohoa.sql(&format!(
        "UPDATE jobs SET state = 'running', worker = 'elsewhere:4242:abcd/1', \
         lease_until = {lease_until_ms} WHERE id = '{job}'"
    ));
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn drain(sohoa: &Sohoa) {
    let status = sohoa
        .command()
        .args(["worker", "--until-idle"])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_lease_protects_a_job_until_it_runs_out_and_failures_are_retried_then_parked() {
    let sohoa = Sohoa::new();
    let server = sohoa.serve_bare(&[("SOHOA_WORKERS", "0")]);
    let clerk = sohoa.token("clerk", &[UNIT]);
    let desk = desk(&server, &clerk);
    let held = desk.upload(&sohoa, 0);

    // Held under a live lease by a worker elsewhere: nobody else takes it.
    hold_elsewhere(&sohoa, &held, now_ms() + 3_600_000);
    drain(&sohoa);
    let job = desk.job(&held);
    assert_eq!(job["state"], "running", "{job}");
    assert_eq!(job["worker"], "elsewhere:4242:abcd/1", "{job}");

    // Its lease ran out (that worker died): the next worker takes it over and finishes it.
    hold_elsewhere(&sohoa, &held, now_ms() - 1_000);
    drain(&sohoa);
    let job = desk.job(&held);
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["attempts"], 1, "{job}");

    // A failure that may pass (a page's object unreadable in the store) is retried after a back-off...
    let flaky = desk.upload(&sohoa, 1);
    let view: Value = desk
        .client
        .get(format!("{}/v1/dossiers/{}", desk.url, code(1)))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let first_page = view["pending"][0]["blake3"].as_str().unwrap().to_owned();
    let bytes = sohoa.raw_object(&first_page).unwrap();
    sohoa.tamper_object(&first_page, None);
    drain(&sohoa);
    let job = desk.job(&flaky);
    assert_eq!(job["state"], "queued", "{job}");
    assert_eq!(job["attempts"], 1, "{job}");
    assert!(
        job["error"].as_str().unwrap().contains(&first_page),
        "{job}"
    );
    // ... not before its time (the worker finds nothing to do) ...
    drain(&sohoa);
    assert_eq!(desk.job(&flaky)["attempts"], 1);

    // ... and parked with its error after the last attempt.
    sohoa.sql(&format!(
        "UPDATE jobs SET attempts = 5, run_after = 0 WHERE id = '{flaky}'"
    ));
    drain(&sohoa);
    let job = desk.job(&flaky);
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["attempts"], 6, "{job}");
    assert!(
        job["error"].as_str().unwrap().contains(&first_page),
        "{job}"
    );

    // The object back, the clerk asks again: the waiting pages are still there and get packaged.
    sohoa.tamper_object(&first_page, Some(&bytes));
    let again = desk.try_upload(&sohoa, 1).expect("the pages still wait");
    assert_ne!(again, flaky);
    drain(&sohoa);
    assert_eq!(desk.job(&again)["state"], "done");
}
