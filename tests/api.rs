//! The archive API over real HTTP: accounts and roles, the audit log, dossiers, idempotent uploads,
//! packaging jobs with live progress, search filters, statistics, and the operator's endpoints.

mod common;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};

const UNIT: &str = "000.00.15.H27";
const OTHER_UNIT: &str = "000.00.16.H27";

/// One method per endpoint, over a client signed in as one account.
struct Api {
    url: String,
    client: Client,
}

impl Api {
    fn new(server: &Server, token: &str) -> Self {
        Self {
            url: server.url.clone(),
            client: client_with_token(token),
        }
    }

    fn get(&self, path: &str) -> Response {
        self.client
            .get(format!("{}{path}", self.url))
            .send()
            .unwrap()
    }

    fn post(&self, path: &str, body: Value) -> Response {
        self.client
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .unwrap()
    }

    fn patch(&self, path: &str, body: Value) -> Response {
        self.client
            .patch(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .unwrap()
    }

    fn register(&self, body: Value) -> Response {
        self.post("/v1/dossiers", body)
    }

    fn upload_page(&self, dossier: &str, name: &str, bytes: &[u8], key: Option<&str>) -> Response {
        let mut request = self
            .client
            .post(format!("{}/v1/dossiers/{dossier}/pages", self.url))
            .query(&[("name", name)])
            .header("content-type", "image/png")
            .body(bytes.to_vec());
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().unwrap()
    }

    fn finalize(&self, dossier: &str) -> Response {
        self.client
            .post(format!("{}/v1/dossiers/{dossier}/finalize", self.url))
            .send()
            .unwrap()
    }

    fn search(&self, query: &[(&str, &str)]) -> Value {
        let response = self
            .client
            .get(format!("{}/v1/search", self.url))
            .query(query)
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().unwrap()
    }

    fn audit(&self, query: &[(&str, &str)]) -> Vec<Value> {
        let response = self
            .client
            .get(format!("{}/v1/audit", self.url))
            .query(query)
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let page: Value = response.json().unwrap();
        page["entries"].as_array().unwrap().clone()
    }

    /// Waits for a job to end and returns it.
    fn wait_for_job(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let job: Value = self.get(&format!("/v1/jobs/{id}")).json().unwrap();
            if job["state"] == "done" || job["state"] == "failed" {
                return job;
            }
            assert!(Instant::now() < deadline, "job still running: {job}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn png(sohoa: &Sohoa, name: &str, lines: &[&str]) -> Vec<u8> {
    let path = sohoa.input(name);
    write_png(&render_page(lines), &path);
    std::fs::read(path).unwrap()
}

fn admin(sohoa: &Sohoa, server: &Server) -> Api {
    Api::new(server, &sohoa.token("admin", &[]))
}

fn dossier(code: &str) -> Value {
    json!({"code": code, "procedure": "1.001234", "applicant": "Nguyễn Văn An"})
}

#[test]
fn requests_without_a_valid_token_are_refused_with_401() {
    let sohoa = Sohoa::new();
    let server = sohoa.serve();
    let anonymous = Client::new();
    let response = anonymous
        .get(format!("{}/v1/search?q=dat", server.url))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let body: Value = response.json().unwrap();
    assert_eq!(body["code"], "unauthorized");

    let forged = Api::new(
        &server,
        "sohoa_0000000000000000000000000000000000000000000000000000000000000000",
    );
    assert_eq!(forged.get("/v1/me").status(), StatusCode::UNAUTHORIZED);

    // A token works until it is revoked; an account's tokens stop when it is disabled.
    let admin = admin(&sohoa, &server);
    assert_eq!(
        admin
            .post("/v1/accounts", json!({"name": "lan", "role": "archivist"}))
            .status(),
        StatusCode::CREATED
    );
    let issued: Value = admin
        .post(
            "/v1/accounts/lan/tokens",
            json!({"label": "desk 3", "days": 30}),
        )
        .json()
        .unwrap();
    let lan = Api::new(&server, issued["token"].as_str().unwrap());
    let me: Value = lan.get("/v1/me").json().unwrap();
    assert_eq!(me["name"], "lan");
    assert_eq!(me["role"], "archivist");
    let id = issued["record"]["id"].as_i64().unwrap();
    let revoked = admin
        .client
        .delete(format!("{}/v1/tokens/{id}", server.url))
        .send()
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_eq!(lan.get("/v1/me").status(), StatusCode::UNAUTHORIZED);

    let second: Value = admin
        .post("/v1/accounts/lan/tokens", json!({}))
        .json()
        .unwrap();
    let lan = Api::new(&server, second["token"].as_str().unwrap());
    assert_eq!(lan.get("/v1/me").status(), StatusCode::OK);
    assert_eq!(
        admin
            .patch("/v1/accounts/lan", json!({"disabled": true}))
            .status(),
        StatusCode::OK
    );
    assert_eq!(lan.get("/v1/me").status(), StatusCode::UNAUTHORIZED);
    // Tokens are stored hashed: the database never holds the token itself.
    let db = sohoa.database_bytes();
    let token = second["token"].as_str().unwrap();
    assert!(!db.windows(token.len()).any(|w| w == token.as_bytes()));
}

#[test]
fn each_role_reaches_only_what_it_needs_and_only_its_units() {
    let sohoa = Sohoa::new();
    let server = sohoa.serve();
    let clerk = Api::new(&server, &sohoa.token("clerk", &[UNIT]));
    let archivist = Api::new(&server, &sohoa.token("archivist", &[]));
    let system = Api::new(&server, &sohoa.token("system", &[]));
    let admin = admin(&sohoa, &server);
    let code = format!("{UNIT}-231128-0042");
    let elsewhere = format!("{OTHER_UNIT}-231128-0042");

    // The clerk registers and writes its own unit's dossiers only.
    assert_eq!(clerk.register(dossier(&code)).status(), StatusCode::CREATED);
    assert_eq!(clerk.register(dossier(&code)).status(), StatusCode::OK);
    let refused = clerk.register(dossier(&elsewhere));
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().unwrap();
    assert_eq!(body["code"], "forbidden");
    assert!(body["message"].as_str().unwrap().contains(OTHER_UNIT));
    assert_eq!(
        clerk.get("/v1/search?q=dat").status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(clerk.get("/v1/audit").status(), StatusCode::FORBIDDEN);

    // Another unit's dossier, registered by a clerk of every unit, stays out of this clerk's sight.
    let other_clerk = Api::new(&server, &sohoa.token("clerk", &[]));
    assert_eq!(
        other_clerk.register(dossier(&elsewhere)).status(),
        StatusCode::CREATED
    );
    assert_eq!(
        clerk.get(&format!("/v1/dossiers/{elsewhere}")).status(),
        StatusCode::FORBIDDEN
    );
    let listed: Value = clerk.get("/v1/dossiers").json().unwrap();
    assert_eq!(listed["total"], 1, "{listed}");
    assert_eq!(listed["dossiers"][0]["code"], code.as_str());
    let listed: Value = archivist.get("/v1/dossiers").json().unwrap();
    assert_eq!(listed["total"], 2, "{listed}");

    // The archivist reads and searches but does not write; the system reads metadata and copies only.
    assert_eq!(
        archivist.get(&format!("/v1/dossiers/{code}")).status(),
        StatusCode::OK
    );
    assert_eq!(
        archivist
            .patch(&format!("/v1/dossiers/{code}"), json!({"status": 4}))
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        system.get(&format!("/v1/dossiers/{code}")).status(),
        StatusCode::OK
    );
    assert_eq!(
        system.get("/v1/search?q=dat").status(),
        StatusCode::FORBIDDEN
    );
    let unknown = "0".repeat(64);
    assert_eq!(
        system.get(&format!("/v1/objects/{unknown}")).status(),
        StatusCode::FORBIDDEN
    );
    // The administrator manages accounts and reads the log, not dossiers.
    assert_eq!(
        admin.get(&format!("/v1/dossiers/{code}")).status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(admin.get("/v1/accounts").status(), StatusCode::OK);
    assert_eq!(
        archivist
            .post("/v1/accounts", json!({"name": "x", "role": "admin"}))
            .status(),
        StatusCode::FORBIDDEN
    );
    // Status changes by the clerk, with the resolved time set when resolved.
    let resolved: Value = clerk
        .patch(&format!("/v1/dossiers/{code}"), json!({"status": 9}))
        .json()
        .unwrap();
    assert_eq!(resolved["status"], 9);
    assert!(
        resolved["resolved_at"]
            .as_str()
            .unwrap()
            .ends_with("+07:00")
    );
    let bad = clerk.patch(&format!("/v1/dossiers/{code}"), json!({"status": 11}));
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn every_read_of_a_dossier_and_every_refusal_is_on_record() {
    let sohoa = Sohoa::new();
    let server = sohoa.serve();
    let clerk = Api::new(&server, &sohoa.token("clerk", &[UNIT]));
    let archivist = Api::new(&server, &sohoa.token("archivist", &[]));
    let admin = admin(&sohoa, &server);
    let code = format!("{UNIT}-231128-0042");
    clerk.register(dossier(&code));

    assert_eq!(
        archivist.get(&format!("/v1/dossiers/{code}")).status(),
        StatusCode::OK
    );
    assert_eq!(
        archivist
            .patch(&format!("/v1/dossiers/{code}"), json!({"status": 4}))
            .status(),
        StatusCode::FORBIDDEN
    );

    let name = |api: &Api| -> String {
        let me: Value = api.get("/v1/me").json().unwrap();
        me["name"].as_str().unwrap().to_owned()
    };
    let (reader, writer) = (name(&archivist), name(&clerk));
    let entries = admin.audit(&[("dossier", &code)]);
    let actions: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        actions.contains(&(reader.as_str(), "dossier.read", "ok")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&(reader.as_str(), "dossier.update", "denied")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&(writer.as_str(), "dossier.create", "ok")),
        "{actions:?}"
    );
    let read = entries
        .iter()
        .find(|e| e["action"] == "dossier.read")
        .unwrap();
    assert_eq!(read["role"], "archivist");
    assert_eq!(read["target"], code.as_str());
    assert!(
        read["client"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{read}"
    );
    assert!(read["at"].as_str().unwrap().ends_with("+07:00"), "{read}");
    // Newest first, filtered by actor and action.
    let by_actor = admin.audit(&[("actor", reader.as_str()), ("action", "dossier.read")]);
    assert_eq!(by_actor.len(), 1);
}

#[test]
fn a_retried_upload_with_the_same_idempotency_key_adds_its_page_once() {
    let sohoa = Sohoa::new();
    let server = sohoa.serve();
    let clerk = Api::new(&server, &sohoa.token("clerk", &[UNIT]));
    let code = format!("{UNIT}-231128-0042");
    clerk.register(dossier(&code));
    let page = png(&sohoa, "001.png", CERTIFICATE);

    let first = clerk.upload_page(&code, "001.png", &page, Some("scan-7f3a"));
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().unwrap();
    assert_eq!(first["pages"][0]["blake3"], blake3_hex(&page));
    let retry = clerk.upload_page(&code, "001.png", &page, Some("scan-7f3a"));
    assert_eq!(retry.status(), StatusCode::CREATED);
    let retry: Value = retry.json().unwrap();
    assert_eq!(retry, first);
    let waiting: Value = clerk
        .get(&format!("/v1/dossiers/{code}/pages"))
        .json()
        .unwrap();
    assert_eq!(waiting["pages"].as_array().unwrap().len(), 1, "{waiting}");

    // The same key for another upload is refused; a new key adds the page again.
    let other = png(&sohoa, "002.png", RECEIPT);
    let reused = clerk.upload_page(&code, "002.png", &other, Some("scan-7f3a"));
    assert_eq!(reused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = reused.json().unwrap();
    assert_eq!(body["code"], "idempotency-key-reused");
    assert_eq!(
        clerk
            .upload_page(&code, "002.png", &other, Some("scan-7f3b"))
            .status(),
        StatusCode::CREATED
    );
    // What is not a page file is refused at once, naming it.
    let junk = clerk.upload_page(&code, "003.png", b"not an image", None);
    assert_eq!(junk.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let waiting: Value = clerk
        .get(&format!("/v1/dossiers/{code}/pages"))
        .json()
        .unwrap();
    assert_eq!(waiting["pages"].as_array().unwrap().len(), 2, "{waiting}");
}

#[test]
fn a_clerk_moves_a_waiting_page_and_the_others_shift() {
    let sohoa = Sohoa::new();
    let server = sohoa.serve();
    let clerk = Api::new(&server, &sohoa.token("clerk", &[UNIT]));
    let code = format!("{UNIT}-231128-0043");
    clerk.register(dossier(&code));
    let mut ids = Vec::new();
    for (name, lines) in [
        ("a.png", CERTIFICATE),
        ("b.png", RECEIPT),
        ("c.png", LETTER),
    ] {
        let page = png(&sohoa, name, lines);
        let added: Value = clerk.upload_page(&code, name, &page, None).json().unwrap();
        ids.push(added["pages"][0]["id"].as_i64().unwrap());
    }
    let order = |answer: &Value| -> Vec<(i64, i64)> {
        answer["pages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["id"].as_i64().unwrap(), p["position"].as_i64().unwrap()))
            .collect()
    };

    // The last sheet goes first; a place past the end puts a page last.
    let moved = clerk.patch(
        &format!("/v1/dossiers/{code}/pages/{}", ids[2]),
        json!({"position": 1}),
    );
    assert_eq!(moved.status(), StatusCode::OK);
    let moved: Value = moved.json().unwrap();
    assert_eq!(order(&moved), [(ids[2], 1), (ids[0], 2), (ids[1], 3)]);
    let moved: Value = clerk
        .patch(
            &format!("/v1/dossiers/{code}/pages/{}", ids[2]),
            json!({"position": 99}),
        )
        .json()
        .unwrap();
    assert_eq!(order(&moved), [(ids[0], 1), (ids[1], 2), (ids[2], 3)]);
    let listed: Value = clerk
        .get(&format!("/v1/dossiers/{code}/pages"))
        .json()
        .unwrap();
    assert_eq!(order(&listed), order(&moved));

    // Nonsense is refused; another unit's clerk may not touch the dossier; the move is on record.
    let path = format!("/v1/dossiers/{code}/pages/{}", ids[0]);
    assert_eq!(
        clerk.patch(&path, json!({"position": 0})).status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        clerk
            .patch(
                &format!("/v1/dossiers/{code}/pages/999999"),
                json!({"position": 1})
            )
            .status(),
        StatusCode::NOT_FOUND
    );
    let stranger = Api::new(&server, &sohoa.token("clerk", &[OTHER_UNIT]));
    assert_eq!(
        stranger.patch(&path, json!({"position": 2})).status(),
        StatusCode::FORBIDDEN
    );
    let audit: Value = admin(&sohoa, &server)
        .get(&format!("/v1/audit?action=pages.move&dossier={code}"))
        .json()
        .unwrap();
    assert!(audit.to_string().contains("to position 99"), "{audit}");
}

#[test]
fn a_clerk_turns_a_waiting_page_and_it_is_read_and_packaged_turned() {
    let sohoa = Sohoa::new();
    let server = sohoa.serve();
    let clerk = Api::new(&server, &sohoa.token("clerk", &[UNIT]));
    let code = format!("{UNIT}-231128-0044");
    clerk.register(dossier(&code));
    let page = png(&sohoa, "upright.png", CERTIFICATE);
    let added: Value = clerk
        .upload_page(&code, "upright.png", &page, None)
        .json()
        .unwrap();
    let id = added["pages"][0]["id"].as_i64().unwrap();
    assert_eq!(added["pages"][0]["turn"], 0);
    let path = format!("/v1/dossiers/{code}/pages/{id}");

    // Quarter turns add up; only quarter turns are taken; something must be asked.
    let turned: Value = clerk.patch(&path, json!({"rotate": 90})).json().unwrap();
    assert_eq!(turned["pages"][0]["turn"], 1, "{turned}");
    let turned: Value = clerk.patch(&path, json!({"rotate": 90})).json().unwrap();
    assert_eq!(turned["pages"][0]["turn"], 2, "{turned}");
    for nonsense in [
        json!({"rotate": 45}),
        json!({}),
        json!({"rotate": 90, "tilt": 1}),
    ] {
        assert_eq!(
            clerk.patch(&path, nonsense.clone()).status(),
            StatusCode::BAD_REQUEST,
            "{nonsense}"
        );
    }

    // The clerk's half turn is taken over what the OCR engine would detect (the page is upright): the page
    // is packaged turned, and says so.
    let job: Value = clerk.finalize(&code).json().unwrap();
    let job = clerk.wait_for_job(job["id"].as_str().unwrap());
    assert_eq!(job["state"], "done", "{job}");
    let view: Value = clerk.get(&format!("/v1/dossiers/{code}")).json().unwrap();
    let packaged = &view["documents"][0]["pages"][0];
    assert!(
        packaged["flags"]
            .as_array()
            .unwrap()
            .contains(&json!("rotated")),
        "{packaged}"
    );
    let audit: Value = admin(&sohoa, &server)
        .get(&format!("/v1/audit?action=pages.turn&dossier={code}"))
        .json()
        .unwrap();
    assert!(audit.to_string().contains("by 90 degrees"), "{audit}");
}

/// Reads Server-Sent Events until the stream ends: (event name, data).
fn read_events(response: Response) -> Vec<(String, Value)> {
    let mut events = Vec::new();
    let mut name = String::new();
    for line in BufReader::new(response).lines() {
        let line = line.unwrap();
        if let Some(event) = line.strip_prefix("event: ") {
            name = event.to_owned();
        } else if let Some(data) = line.strip_prefix("data: ") {
            events.push((name.clone(), serde_json::from_str(data).unwrap()));
        }
    }
    events
}

#[test]
fn packaging_streams_progress_page_by_page_then_the_document() {
    let sohoa = Sohoa::new();
    let server = sohoa.serve();
    let clerk = Api::new(&server, &sohoa.token("clerk", &[UNIT]));
    let archivist = Api::new(&server, &sohoa.token("archivist", &[]));
    let code = format!("{UNIT}-231128-0042");
    clerk.register(dossier(&code));
    for (name, lines) in [
        ("001.png", CERTIFICATE),
        ("002.png", LETTER),
        ("003.png", RECEIPT),
    ] {
        let page = png(&sohoa, name, lines);
        assert_eq!(
            clerk.upload_page(&code, name, &page, None).status(),
            StatusCode::CREATED
        );
    }
    let accepted = clerk.finalize(&code);
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let job: Value = accepted.json().unwrap();
    let id = job["id"].as_str().unwrap();
    // Asking again while it runs gives the same job.
    let again: Value = clerk.finalize(&code).json().unwrap();
    assert_eq!(again["id"], id);

    let events = read_events(clerk.get(&format!("/v1/jobs/{id}/events")));
    let (last_name, last) = events.last().unwrap();
    assert_eq!(last_name, "done", "{events:?}");
    assert_eq!(last["done"], 3);
    let document = last["result"]["document"].as_str().unwrap().to_owned();
    assert_eq!(last["result"]["pages"].as_array().unwrap().len(), 3);
    // Progress came page by page, in order.
    let done: Vec<i64> = events
        .iter()
        .filter(|(name, _)| name == "progress")
        .map(|(_, job)| job["done"].as_i64().unwrap())
        .collect();
    assert!(done.windows(2).all(|w| w[0] <= w[1]), "{done:?}");
    assert!(done.contains(&1) && done.contains(&2), "{done:?}");

    // The pages left the waiting list for the document; polling agrees; the text is searchable.
    let view: Value = clerk.get(&format!("/v1/dossiers/{code}")).json().unwrap();
    assert_eq!(view["pending"].as_array().unwrap().len(), 0, "{view}");
    assert_eq!(view["documents"][0]["document"], document.as_str());
    assert_eq!(view["documents"][0]["pages"][1]["origin"], "002.png");
    assert_eq!(clerk.wait_for_job(id)["state"], "done");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = archivist.search(&[("q", "tran van binh")]);
        if found["total"] == 1 {
            assert_eq!(found["hits"][0]["page"], 2);
            break;
        }
        assert!(Instant::now() < deadline, "{found}");
        std::thread::sleep(Duration::from_millis(250));
    }
    // Nothing left to package is a conflict, not a job.
    assert_eq!(clerk.finalize(&code).status(), StatusCode::CONFLICT);
}

#[test]
fn a_job_left_by_a_killed_server_finishes_after_restart() {
    let sohoa = Sohoa::new();
    let clerk_token = sohoa.token("clerk", &[UNIT]);
    let code = format!("{UNIT}-231128-0042");
    let id = {
        let server = sohoa.serve();
        let clerk = Api::new(&server, &clerk_token);
        clerk.register(dossier(&code));
        for (name, lines) in [("001.png", CERTIFICATE), ("002.png", LETTER)] {
            clerk.upload_page(&code, name, &png(&sohoa, name, lines), None);
        }
        let job: Value = clerk.finalize(&code).json().unwrap();
        job["id"].as_str().unwrap().to_owned()
        // The server is killed here, its job queued or part-way.
    };
    let server = sohoa.serve();
    let clerk = Api::new(&server, &clerk_token);
    let job = clerk.wait_for_job(&id);
    assert_eq!(job["state"], "done", "{job}");
    let view: Value = clerk.get(&format!("/v1/dossiers/{code}")).json().unwrap();
    assert_eq!(view["documents"].as_array().unwrap().len(), 1, "{view}");
    assert_eq!(view["documents"][0]["page_count"], 2);
    assert_eq!(view["pending"].as_array().unwrap().len(), 0);
}

#[test]
fn search_folds_accents_and_filters_by_unit_status_kind_and_date() {
    let sohoa = Sohoa::new();
    let server = sohoa.serve();
    let clerk = Api::new(&server, &sohoa.token("clerk", &[]));
    let archivist = Api::new(&server, &sohoa.token("archivist", &[]));
    let local_archivist = Api::new(&server, &sohoa.token("archivist", &[OTHER_UNIT]));
    let admin = admin(&sohoa, &server);
    admin
        .client
        .put(format!("{}/v1/units/{OTHER_UNIT}", server.url))
        .json(&json!({"name": "UBND xã Yên Trị", "level": "commune"}))
        .send()
        .unwrap();

    // Three dossiers with the same certificate: two units, two days, two statuses.
    let dossiers = [
        (format!("{UNIT}-231128-0001"), "2023-11-28", 2),
        (format!("{UNIT}-231205-0002"), "2023-12-05", 9),
        (format!("{OTHER_UNIT}-231210-0003"), "2023-12-10", 9),
    ];
    let page = png(&sohoa, "001.png", CERTIFICATE);
    for (code, received, status) in &dossiers {
        let unit = &code[..13];
        let registered = clerk.register(json!({
            "code": code, "procedure": "1.001234", "unit": unit, "received_at": received,
            "status": status, "applicant": "Lê Thị Mai",
        }));
        assert_eq!(registered.status(), StatusCode::CREATED);
        let form = reqwest::blocking::multipart::Form::new().part(
            "page",
            reqwest::blocking::multipart::Part::bytes(page.clone()).file_name("001.png"),
        );
        let uploaded = clerk
            .client
            .post(format!("{}/v1/dossiers/{code}/documents", server.url))
            .query(&[
                ("procedure", "1.001234"),
                ("unit", unit),
                ("kind", "result"),
            ])
            .multipart(form)
            .send()
            .unwrap();
        assert_eq!(uploaded.status(), StatusCode::CREATED);
    }
    let total =
        |api: &Api, query: &[(&str, &str)]| -> u64 { api.search(query)["total"].as_u64().unwrap() };
    // Accents and đ folded; the applicant's name (metadata) is searchable too.
    assert_eq!(total(&archivist, &[("q", "quyen su dung dat")]), 3);
    assert_eq!(total(&archivist, &[("q", "le thi mai")]), 3);
    assert_eq!(total(&archivist, &[("q", "\"quyền sử dụng đất\"")]), 3);
    assert_eq!(total(&archivist, &[("q", "dat"), ("unit", UNIT)]), 2);
    assert_eq!(total(&archivist, &[("q", "dat"), ("level", "commune")]), 1);
    assert_eq!(total(&archivist, &[("q", "dat"), ("status", "9")]), 2);
    assert_eq!(total(&archivist, &[("q", "dat"), ("kind", "submitted")]), 0);
    assert_eq!(
        total(
            &archivist,
            &[
                ("q", "dat"),
                ("from", "2023-12-01"),
                ("until", "2023-12-06")
            ]
        ),
        1
    );
    // Sorted by date both ways, and paged.
    let newest = archivist.search(&[("q", "dat"), ("sort", "newest")]);
    assert_eq!(newest["hits"][0]["dossier"], dossiers[2].0.as_str());
    let oldest = archivist.search(&[
        ("q", "dat"),
        ("sort", "oldest"),
        ("limit", "1"),
        ("offset", "1"),
    ]);
    assert_eq!(oldest["total"], 3);
    assert_eq!(oldest["hits"].as_array().unwrap().len(), 1);
    assert_eq!(oldest["hits"][0]["dossier"], dossiers[1].0.as_str());
    let hit = &newest["hits"][0];
    assert_eq!(hit["received_at"], "2023-12-10T00:00:00+07:00");
    assert_eq!(hit["applicant"], "Lê Thị Mai");
    let (start, end) = (
        hit["highlights"][0][0].as_u64().unwrap() as usize,
        hit["highlights"][0][1].as_u64().unwrap() as usize,
    );
    assert_eq!(
        &hit["snippet"].as_str().unwrap()[start..end].to_lowercase(),
        "đất"
    );
    // An archivist of one unit sees only its pages, whatever the filters say.
    assert_eq!(total(&local_archivist, &[("q", "dat")]), 1);
    assert_eq!(total(&local_archivist, &[("q", "dat"), ("unit", UNIT)]), 0);
    // A status change reaches search.
    clerk.patch(
        &format!("/v1/dossiers/{}", dossiers[0].0),
        json!({"status": 10}),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while total(&archivist, &[("q", "dat"), ("status", "10")]) != 1 {
        assert!(
            Instant::now() < deadline,
            "the status change never reached search"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // Malformed parameters are 400 with a message, never 500.
    for bad in [
        "/v1/search?q=dat&sort=sideways",
        "/v1/search?q=dat&status=eleven",
        "/v1/search?q=dat&from=28/11/2023",
        "/v1/search?q=dat&kind=photo",
        "/v1/search?q=%22",
    ] {
        let response = archivist.get(bad);
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body: Value = response.json().unwrap();
        assert!(!body["message"].as_str().unwrap().is_empty());
    }
}

#[test]
fn statistics_count_dossiers_by_their_dates_and_export_as_csv() {
    let sohoa = Sohoa::new();
    let server = sohoa.serve();
    let clerk = Api::new(&server, &sohoa.token("clerk", &[]));
    let admin = admin(&sohoa, &server);
    let archivist = Api::new(&server, &sohoa.token("archivist", &[]));
    // The period is December 2023.
    let registrations = [
        // Carried over: received in November, resolved in December on time.
        json!({"code": format!("{UNIT}-231120-0001"), "received_at": "2023-11-20", "due_at": "2023-12-04",
               "resolved_at": "2023-12-04T16:00:00+07:00", "status": 10, "channel": 1}),
        // Carried over and still processing at the end.
        json!({"code": format!("{UNIT}-231125-0002"), "received_at": "2023-11-25", "due_at": "2024-01-10",
               "status": 4, "channel": 2}),
        // Closed before the period: not carried over.
        json!({"code": format!("{UNIT}-231101-0003"), "received_at": "2023-11-01", "due_at": "2023-11-10",
               "resolved_at": "2023-11-09", "status": 10, "channel": 1}),
        // New in December: early, late, paused, online and postal.
        json!({"code": format!("{UNIT}-231201-0004"), "received_at": "2023-12-01", "due_at": "2023-12-08",
               "resolved_at": "2023-12-06", "status": 9, "channel": 2}),
        json!({"code": format!("{UNIT}-231204-0005"), "received_at": "2023-12-04", "due_at": "2023-12-11",
               "resolved_at": "2023-12-13", "status": 10, "channel": 2}),
        json!({"code": format!("{UNIT}-231215-0006"), "received_at": "2023-12-15", "due_at": "2023-12-29",
               "status": 5, "channel": 3}),
        // Another unit, new in December, resolved on time.
        json!({"code": format!("{OTHER_UNIT}-231220-0007"), "received_at": "2023-12-20", "due_at": "2023-12-22",
               "resolved_at": "2023-12-22", "status": 10, "channel": 1}),
        // After the period.
        json!({"code": format!("{UNIT}-240102-0008"), "received_at": "2024-01-02", "status": 2, "channel": 2}),
    ];
    for mut body in registrations {
        body["procedure"] = json!("1.001234");
        let code = body["code"].as_str().unwrap().to_owned();
        assert_eq!(clerk.register(body).status(), StatusCode::CREATED, "{code}");
    }
    let stats: Value = admin
        .get("/v1/stats?from=2023-12-01&to=2023-12-31")
        .json()
        .unwrap();
    let rows = stats["rows"].as_array().unwrap();
    let row = |key: &str| rows.iter().find(|r| r["key"] == key).unwrap().clone();
    let unit = row(UNIT);
    let figures = |r: &Value, names: &[&str]| -> Vec<i64> {
        names.iter().map(|n| r[*n].as_i64().unwrap()).collect()
    };
    assert_eq!(
        figures(
            &unit,
            &["carried_over", "received", "in_person", "online", "postal"]
        ),
        [2, 3, 0, 2, 1]
    );
    assert_eq!(
        figures(
            &unit,
            &[
                "resolved",
                "early",
                "on_time",
                "late",
                "in_progress",
                "paused"
            ]
        ),
        [3, 1, 1, 1, 1, 1]
    );
    assert_eq!(unit["on_time_rate"], 66.67);
    assert_eq!(unit["online_share"], 66.67);
    let total = row("total");
    assert_eq!(
        figures(&total, &["received", "resolved", "on_time"]),
        [4, 4, 2]
    );
    assert_eq!(total["on_time_rate"], 75.0);
    assert_eq!(total["online_share"], 50.0);
    assert_eq!(rows.last().unwrap()["key"], "total");

    let csv = archivist.get("/v1/stats?from=2023-12-01&to=2023-12-31&group=total&format=csv");
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().unwrap();
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("key,carried_over,received,")
    );
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("total,2,4,1,2,1,4,1,2,1,"),
        "{text}"
    );
    assert_eq!(
        admin
            .get("/v1/stats?from=2023-12-31&to=2023-12-01")
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(clerk.get("/v1/stats").status(), StatusCode::FORBIDDEN);

    // The citizen brought the missing papers on 5 January, entered at the desk today: December still
    // counts the dossier as paused, January as in progress from then on.
    let paused = format!("/v1/dossiers/{UNIT}-231215-0006");
    let refusals = [
        (
            json!({"status": 4, "status_changed_at": "2023-12-14"}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"status": 4, "status_changed_at": "2099-01-01"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"status_changed_at": "2024-01-05"}),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (body, status) in refusals {
        assert_eq!(
            clerk.patch(&paused, body.clone()).status(),
            status,
            "{body}"
        );
    }
    let resumed = clerk.patch(
        &paused,
        json!({"status": 4, "status_changed_at": "2024-01-05T09:30:00+07:00"}),
    );
    assert_eq!(resumed.status(), StatusCode::OK);
    let month = |from: &str, to: &str| -> Vec<i64> {
        let stats: Value = admin
            .get(&format!("/v1/stats?from={from}&to={to}&group=total"))
            .json()
            .unwrap();
        figures(
            &stats["rows"][0],
            &["carried_over", "in_progress", "paused"],
        )
    };
    assert_eq!(month("2023-12-01", "2023-12-31"), [2, 1, 1], "December");
    // January: 0002 and 0006 carried over; with 0008, three in progress at the end.
    assert_eq!(month("2024-01-01", "2024-01-31"), [2, 3, 0], "January");
    // A change before the last one recorded is refused too.
    assert_eq!(
        clerk
            .patch(
                &paused,
                json!({"status": 5, "status_changed_at": "2024-01-04"})
            )
            .status(),
        StatusCode::CONFLICT
    );
}

#[test]
fn the_openapi_document_and_the_operator_probes_match_the_server() {
    let sohoa = Sohoa::new();
    let server = sohoa.serve();
    let plain = Client::new();
    let get = |path: &str| plain.get(format!("{}{path}", server.url)).send().unwrap();
    assert_eq!(get("/healthz").status(), StatusCode::OK);
    assert_eq!(get("/readyz").text().unwrap(), "ready");
    let openapi: Value = get("/openapi.json").json().unwrap();
    let paths = openapi["paths"].as_object().unwrap();
    for path in [
        "/v1/dossiers",
        "/v1/dossiers/{code}",
        "/v1/dossiers/{code}/pages",
        "/v1/dossiers/{code}/finalize",
        "/v1/jobs/{id}/events",
        "/v1/search",
        "/v1/stats",
        "/v1/audit",
        "/v1/copies/{hash}",
        "/v1/verify",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from /openapi.json"
        );
    }
    assert!(paths["/v1/dossiers/{code}/pages/{id}"]["patch"].is_object());
    assert!(
        paths["/v1/search"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "sort")
    );
    // Every documented path answers (a 404 for the route itself would mean the document lies).
    let archivist = Api::new(&server, &sohoa.token("archivist", &[]));
    for path in paths.keys().filter(|p| !p.contains('{')) {
        let methods = paths[path].as_object().unwrap();
        if methods.contains_key("get") && path != "/v1/scanners" {
            let status = archivist.get(path).status();
            assert_ne!(status, StatusCode::NOT_FOUND, "{path}");
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        }
    }
    let metrics = get("/metrics").text().unwrap();
    assert!(metrics.contains("sohoa_http_request_seconds"), "{metrics}");
    assert!(metrics.contains("sohoa_jobs_waiting"), "{metrics}");
}

#[test]
fn uploads_are_limited_by_the_setting_not_by_a_default() {
    let sohoa = Sohoa::new();
    let server = sohoa.serve_with(&[("SOHOA_LIMITS__MAX_UPLOAD_BYTES", "5000000")]);
    let clerk = Api::new(&server, &sohoa.token("clerk", &[UNIT]));
    let code = format!("{UNIT}-231128-0042");
    clerk.register(dossier(&code));
    // A 3 MB scan (a PNG by its signature) passes as a multipart part and as a raw body.
    let mut large = b"\x89PNG\r\n\x1a\n".to_vec();
    large.resize(3_000_000, 0);
    let form = reqwest::blocking::multipart::Form::new().part(
        "page",
        reqwest::blocking::multipart::Part::bytes(large.clone()).file_name("large.png"),
    );
    let multipart = clerk
        .client
        .post(format!("{}/v1/dossiers/{code}/pages", server.url))
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(multipart.status(), StatusCode::CREATED);
    assert_eq!(
        clerk.upload_page(&code, "large.png", &large, None).status(),
        StatusCode::CREATED
    );
    // Past the limit: 413, and nothing added.
    large.resize(6_000_000, 0);
    let refused = clerk.upload_page(&code, "huge.png", &large, None);
    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let waiting: Value = clerk
        .get(&format!("/v1/dossiers/{code}/pages"))
        .json()
        .unwrap();
    assert_eq!(waiting["pages"].as_array().unwrap().len(), 2, "{waiting}");
}

#[test]
fn a_one_request_upload_can_ask_for_a_job_instead_of_waiting() {
    let sohoa = Sohoa::new();
    let server = sohoa.serve();
    let clerk = Api::new(&server, &sohoa.token("clerk", &[UNIT]));
    let code = format!("{UNIT}-231128-0042");
    let page = png(&sohoa, "001.png", CERTIFICATE);
    let form = reqwest::blocking::multipart::Form::new().part(
        "page",
        reqwest::blocking::multipart::Part::bytes(page.clone()).file_name("001.png"),
    );
    let accepted = clerk
        .client
        .post(format!("{}/v1/dossiers/{code}/documents", server.url))
        .query(&[("procedure", "1.001234"), ("unit", UNIT)])
        .header("Prefer", "respond-async")
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let job: Value = accepted.json().unwrap();
    let job = clerk.wait_for_job(job["id"].as_str().unwrap());
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["result"]["pages"][0]["blake3"], blake3_hex(&page));
    let view: Value = clerk.get(&format!("/v1/dossiers/{code}")).json().unwrap();
    assert_eq!(view["documents"][0]["page_count"], 1, "{view}");
    assert_eq!(view["pending"].as_array().unwrap().len(), 0, "{view}");
}

#[test]
fn people_sign_in_with_a_name_and_password_and_sign_out() {
    let sohoa = Sohoa::new();
    let server = sohoa.serve();
    let admin = admin(&sohoa, &server);
    let anonymous = Client::new();
    let sign_in = |name: &str, password: &str| {
        anonymous
            .post(format!("{}/v1/sessions", server.url))
            .json(&json!({"name": name, "password": password}))
            .send()
            .unwrap()
    };
    let set_password = |name: &str, password: Value| {
        admin
            .client
            .put(format!("{}/v1/accounts/{name}/password", server.url))
            .json(&json!({ "password": password }))
            .send()
            .unwrap()
    };
    assert_eq!(
        admin
            .post(
                "/v1/accounts",
                json!({"name": "lan", "role": "clerk", "units": [UNIT]})
            )
            .status(),
        StatusCode::CREATED
    );

    // No password yet: no signing in, with the same answer as a wrong one.
    let refused = sign_in("lan", "mật khẩu của Lan");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refused.json::<Value>().unwrap()["code"], "sign-in-failed");
    assert_eq!(
        set_password("lan", json!("ngắn")).status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        set_password("nobody", json!("mật khẩu của Lan")).status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        set_password("lan", json!("mật khẩu của Lan")).status(),
        StatusCode::NO_CONTENT
    );
    let clerk = Api::new(&server, &sohoa.token("clerk", &[UNIT]));
    let forbidden = clerk
        .client
        .put(format!("{}/v1/accounts/lan/password", server.url))
        .json(&json!({"password": "chiếm tài khoản"}))
        .send()
        .unwrap();
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);

    // The right password gives a token for a working day, as that account.
    assert_eq!(
        sign_in("lan", "mật khẩu của lan").status(),
        StatusCode::UNAUTHORIZED
    );
    let unknown = sign_in("ai-do", "mật khẩu của Lan");
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.json::<Value>().unwrap()["code"], "sign-in-failed");
    let signed_in = sign_in("lan", "mật khẩu của Lan");
    assert_eq!(signed_in.status(), StatusCode::CREATED);
    let session: Value = signed_in.json().unwrap();
    assert_eq!(session["account"]["role"], "clerk");
    let expires = session["expires_at"].as_str().unwrap();
    assert!(expires > time_in_vietnam(11 * 3600).as_str(), "{expires}");
    assert!(expires < time_in_vietnam(13 * 3600).as_str(), "{expires}");
    let lan = Api::new(&server, session["token"].as_str().unwrap());
    let me: Value = lan.get("/v1/me").json().unwrap();
    assert_eq!(
        (me["name"].as_str(), me["role"].as_str()),
        (Some("lan"), Some("clerk"))
    );
    // The administrator set it, so it is Lan's to change before anything else: her session may see who
    // it is, change the password and sign out, nothing more. Tokens issued to her account are not held up.
    assert_eq!(session["account"]["must_change_password"], true);
    assert_eq!(me["must_change_password"], true);
    let held = lan.get("/v1/dossiers");
    assert_eq!(held.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        held.json::<Value>().unwrap()["code"],
        "password-change-required"
    );
    let issued: Value = admin
        .post("/v1/accounts/lan/tokens", json!({"label": "quầy 3"}))
        .json()
        .unwrap();
    let desk = Api::new(&server, issued["token"].as_str().unwrap());
    assert_eq!(desk.get("/v1/dossiers").status(), StatusCode::OK);

    // Signing out ends that token at once.
    let out = lan
        .client
        .delete(format!("{}/v1/sessions/current", server.url))
        .send()
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_eq!(lan.get("/v1/me").status(), StatusCode::UNAUTHORIZED);

    // Every sign-in is on record, the refused ones too.
    let audit = admin.audit(&[("actor", "lan"), ("action", "session.create")]);
    let outcomes: Vec<&str> = audit
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["ok", "denied", "denied"], "{audit:?}");

    // Guessing is cut short: after five wrong passwords even the right one waits.
    for _ in 0..5 {
        assert_eq!(
            sign_in("lan", "doan-mo-1").status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let waiting = sign_in("lan", "mật khẩu của Lan");
    assert_eq!(waiting.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        waiting.json::<Value>().unwrap()["code"],
        "too-many-attempts"
    );

    // An operator sets a password from the command line (one line on standard input).
    sohoa.ok(&["account", "add", "ha", "--role", "archivist"]);
    sohoa.set_password("ha", "mật khẩu của Hà");
    let ha = sign_in("ha", "mật khẩu của Hà");
    assert_eq!(ha.status(), StatusCode::CREATED);
    let ha = Api::new(
        &server,
        ha.json::<Value>().unwrap()["token"].as_str().unwrap(),
    );
    assert_eq!(ha.get("/v1/me").status(), StatusCode::OK);
    // Set at the terminal without --temporary: hers to use at once.
    assert_eq!(ha.get("/v1/search?q=dat").status(), StatusCode::OK);
    // Typed with combining marks (a Vietnamese keyboard's other setting), it is the same password.
    let decomposed: String =
        unicode_normalization::UnicodeNormalization::nfd("mật khẩu của Hà").collect();
    assert_ne!(decomposed, "mật khẩu của Hà");
    assert_eq!(sign_in("ha", &decomposed).status(), StatusCode::CREATED);
    // A new password ends the sessions signed in with the old one.
    assert_eq!(
        set_password("ha", json!("mật khẩu mới của Hà")).status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(ha.get("/v1/me").status(), StatusCode::UNAUTHORIZED);

    // Hà changes it herself, so the administrator no longer knows it: the current one is required.
    let ha = sign_in("ha", "mật khẩu mới của Hà");
    let ha = Api::new(
        &server,
        ha.json::<Value>().unwrap()["token"].as_str().unwrap(),
    );
    assert_eq!(ha.get("/v1/search?q=dat").status(), StatusCode::FORBIDDEN);
    let change = |current: &str, password: &str| {
        ha.client
            .put(format!("{}/v1/me/password", server.url))
            .json(&json!({"current": current, "password": password}))
            .send()
            .unwrap()
    };
    let wrong = change("không phải", "mật khẩu riêng của Hà");
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert_eq!(wrong.json::<Value>().unwrap()["code"], "wrong-password");
    assert_eq!(
        change("mật khẩu mới của Hà", "ngắn").status(),
        StatusCode::BAD_REQUEST
    );
    // "Changed" to itself, the password the administrator set would stay one the administrator knows.
    let same = change("mật khẩu mới của Hà", "mật khẩu mới của Hà");
    assert_eq!(same.status(), StatusCode::BAD_REQUEST);
    assert_eq!(same.json::<Value>().unwrap()["code"], "same-password");
    let changed = change("mật khẩu mới của Hà", "mật khẩu riêng của Hà");
    assert_eq!(changed.status(), StatusCode::OK);
    let changed: Value = changed.json().unwrap();
    assert_eq!(changed["account"]["must_change_password"], false);
    let fresh = Api::new(&server, changed["token"].as_str().unwrap());
    assert_eq!(
        ha.get("/v1/me").status(),
        StatusCode::UNAUTHORIZED,
        "old session ended"
    );
    assert_eq!(fresh.get("/v1/me").status(), StatusCode::OK);
    assert_eq!(
        fresh.get("/v1/me").json::<Value>().unwrap()["must_change_password"],
        false
    );
    assert_eq!(fresh.get("/v1/search?q=dat").status(), StatusCode::OK);
    assert_eq!(
        sign_in("ha", "mật khẩu mới của Hà").status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        sign_in("ha", "mật khẩu riêng của Hà").status(),
        StatusCode::CREATED
    );
    let changes = admin.audit(&[("actor", "ha"), ("action", "account.password.change")]);
    let outcomes: Vec<&str> = changes
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["ok", "denied"], "{changes:?}");

    // Guesses sent all at once get no more tries than one after another.
    sohoa.ok(&["account", "add", "minh", "--role", "clerk"]);
    sohoa.set_password("minh", "mật khẩu của Minh");
    let statuses: Vec<StatusCode> = std::thread::scope(|scope| {
        let guesses: Vec<_> = (0..10)
            .map(|i| scope.spawn(move || sign_in("minh", &format!("doan-{i}")).status()))
            .collect();
        guesses.into_iter().map(|g| g.join().unwrap()).collect()
    });
    let refused = |status| statuses.iter().filter(|s| **s == status).count();
    assert_eq!(refused(StatusCode::UNAUTHORIZED), 5, "{statuses:?}");
    assert_eq!(refused(StatusCode::TOO_MANY_REQUESTS), 5, "{statuses:?}");
    let waiting = sign_in("minh", "mật khẩu của Minh");
    assert_eq!(waiting.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = waiting.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((800..=900).contains(&retry), "{retry}");

    // The count is kept in the database: another server of the archive refuses the guesser too.
    let other = sohoa.serve_bare(&[]);
    let elsewhere = anonymous
        .post(format!("{}/v1/sessions", other.url))
        .json(&json!({"name": "minh", "password": "doan-11"}))
        .send()
        .unwrap();
    assert_eq!(elsewhere.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        sohoa
            .sql("SELECT COUNT(*) FROM sign_in_attempts WHERE account = 'minh'")
            .trim(),
        "5"
    );
}

/// Now plus `seconds`, in Vietnam time, as RFC 3339 (the archive's format, so it compares as text).
fn time_in_vietnam(seconds: i64) -> String {
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds);
    at.to_offset(time::macros::offset!(+7))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}
