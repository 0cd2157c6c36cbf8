//! The HTTP API over real HTTP: the server binary on a free port, a real client.

mod common;

use common::*;
use reqwest::StatusCode;
use reqwest::blocking::{Client, multipart};

const DOSSIER: &str = "000.00.15.H27-231128-0042";

fn upload(
    client: &Client,
    server: &Server,
    dossier: &str,
    files: &[(&str, Vec<u8>)],
) -> reqwest::blocking::Response {
    let mut form = multipart::Form::new();
    for (name, bytes) in files {
        form = form.part(
            "page",
            multipart::Part::bytes(bytes.clone()).file_name(name.to_string()),
        );
    }
    client
        .post(format!("{}/v1/dossiers/{dossier}/documents", server.url))
        .query(&[
            ("procedure", "1.001234"),
            ("unit", "000.00.15.H27"),
            ("kind", "result"),
        ])
        .multipart(form)
        .send()
        .unwrap()
}

fn png_bytes(sohoa: &Sohoa, name: &str, lines: &[&str]) -> Vec<u8> {
    let path = sohoa.input(name);
    write_png(&render_page(lines), &path);
    std::fs::read(path).unwrap()
}

#[test]
fn pages_posted_over_http_are_searchable_and_fetched_by_hash() {
    let sohoa = Sohoa::new();
    let server = sohoa.serve();
    let clerk = sohoa.client("clerk");
    let client = sohoa.client("archivist");
    let page = png_bytes(&sohoa, "001.png", CERTIFICATE);

    let response = upload(&clerk, &server, DOSSIER, &[("001.png", page.clone())]);
    assert_eq!(response.status(), StatusCode::CREATED);
    let report: serde_json::Value = response.json().unwrap();
    assert_eq!(report["dossier"], DOSSIER);
    assert_eq!(report["kind"], "result");
    assert_eq!(report["pages"][0]["blake3"], blake3_hex(&page));
    assert_eq!(report["pages"][0]["origin"], "001.png");
    let document = report["document"].as_str().unwrap();

    let results: serde_json::Value = client
        .get(format!("{}/v1/search", server.url))
        .query(&[("q", "quyen su dung dat")])
        .send()
        .unwrap()
        .json()
        .unwrap();
    let hit = &results["hits"][0];
    assert_eq!(
        (hit["dossier"].as_str(), hit["page"].as_u64()),
        (Some(DOSSIER), Some(1))
    );
    assert_eq!(hit["document"], document);
    assert_eq!(hit["kind"], "result");

    let response = client
        .get(format!("{}/v1/objects/{document}", server.url))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    let pdf = response.bytes().unwrap();
    assert_eq!(blake3_hex(&pdf), document);
    let path = sohoa.dir.path().join("fetched.pdf");
    std::fs::write(&path, &pdf).unwrap();
    assert_qpdf_clean(&path);
    assert!(pdftotext(&path).contains("Nguyễn Thị Hương"));

    let master = client
        .get(format!("{}/v1/objects/{}", server.url, blake3_hex(&page)))
        .send()
        .unwrap();
    assert_eq!(master.headers()["content-type"], "image/png");
    assert_eq!(master.bytes().unwrap().as_ref(), page.as_slice());
}

#[test]
fn a_corrupt_page_in_an_upload_is_named_and_its_neighbours_kept() {
    let sohoa = Sohoa::new();
    let server = sohoa.serve();
    let clerk = sohoa.client("clerk");
    let client = sohoa.client("archivist");
    let good = png_bytes(&sohoa, "001.png", CERTIFICATE);
    let response = upload(
        &clerk,
        &server,
        DOSSIER,
        &[
            ("001.png", good),
            ("002.jpg", b"this is a text file named .jpg".to_vec()),
        ],
    );
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: serde_json::Value = response.json().unwrap();
    assert_eq!(body["failed"][0]["n"], 2);
    assert_eq!(body["failed"][0]["origin"], "002.jpg");
    assert!(
        body["failed"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("not a PNG, JPEG or TIFF"),
        "{body}"
    );
    assert_eq!(body["pages"][1]["flags"], serde_json::json!(["failed"]));
    let results: serde_json::Value = client
        .get(format!("{}/v1/search?q=nguyen", server.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(results["hits"][0]["page"], 1, "{results}");

    // Nothing read at all: refused, naming the page, nothing recorded.
    let response = upload(
        &clerk,
        &server,
        "000.00.15.H27-231128-0043",
        &[("001.jpg", b"another text file".to_vec())],
    );
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = response.json().unwrap();
    assert_eq!(body["code"], "pages-failed");
    assert_eq!(body["pages"][0]["origin"], "001.jpg");
}

#[test]
fn bad_requests_get_4xx_with_a_code_and_a_message() {
    let sohoa = Sohoa::new();
    let server = sohoa.serve();
    let client = sohoa.client("archivist");
    let clerk = sohoa.client("clerk");
    let expect = |response: reqwest::blocking::Response, status: StatusCode, code: &str| {
        assert_eq!(response.status(), status);
        let body: serde_json::Value = response.json().unwrap();
        assert_eq!(body["code"], code, "{body}");
        assert!(!body["message"].as_str().unwrap().is_empty());
    };
    expect(
        client
            .get(format!("{}/v1/objects/not-a-hash", server.url))
            .send()
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid-input",
    );
    let unknown = blake3_hex(b"never stored");
    expect(
        client
            .get(format!("{}/v1/objects/{unknown}", server.url))
            .send()
            .unwrap(),
        StatusCode::NOT_FOUND,
        "object-not-found",
    );
    expect(
        client
            .get(format!("{}/v1/search?q=%22%3A", server.url))
            .send()
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "empty-query",
    );
    let page = png_bytes(&sohoa, "001.png", RECEIPT);
    expect(
        upload(&clerk, &server, "bad-code", &[("001.png", page)]),
        StatusCode::BAD_REQUEST,
        "invalid-input",
    );
    // A search with query syntax an archivist would not mean is answered, not failed.
    let response = client
        .get(format!("{}/v1/search?q=dat%22%20AND%20(", server.url))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[test]
fn pages_ingested_from_the_command_line_reach_a_running_server() {
    let sohoa = Sohoa::new();
    let server = sohoa.serve();
    let page = sohoa.input("001.png");
    write_png(&render_page(CERTIFICATE), &page);
    sohoa.ingest(DOSSIER, &[&page]);
    let client = sohoa.client("archivist");
    // The server follows the database; give it a few of its sync intervals.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let results: serde_json::Value = client
            .get(format!("{}/v1/search?q=nguyen+thi+huong", server.url))
            .send()
            .unwrap()
            .json()
            .unwrap();
        if !results["hits"].as_array().unwrap().is_empty() {
            assert_eq!(results["hits"][0]["dossier"], DOSSIER);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server never saw the new pages"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

#[test]
fn a_page_replaced_over_http_gives_a_new_document_with_its_flags() {
    let sohoa = Sohoa::new();
    let server = sohoa.serve();
    let client = sohoa.client("clerk");
    let first = png_bytes(&sohoa, "001.png", CERTIFICATE);
    let wrong = png_bytes(&sohoa, "002.png", &["Receipt for the application dossier"]);
    let response = upload(
        &client,
        &server,
        DOSSIER,
        &[("001.png", first), ("002.png", wrong)],
    );
    assert_eq!(response.status(), StatusCode::CREATED);
    let report: serde_json::Value = response.json().unwrap();
    let old = report["document"].as_str().unwrap().to_owned();
    assert!(report["pages"][0]["flags"].is_array(), "{report}");

    let rescan = png_bytes(&sohoa, "002-rescan.png", RECEIPT);
    let replace = |document: &str, page: &str, bytes: Vec<u8>| {
        client
            .put(format!(
                "{}/v1/documents/{document}/pages/{page}",
                server.url
            ))
            .multipart(multipart::Form::new().part(
                "page",
                multipart::Part::bytes(bytes).file_name("002-rescan.png"),
            ))
            .send()
            .unwrap()
    };
    let response = replace(&old, "2", rescan.clone());
    assert_eq!(response.status(), StatusCode::CREATED);
    let replaced: serde_json::Value = response.json().unwrap();
    let new = replaced["document"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(replaced["pages"][1]["blake3"], blake3_hex(&rescan));
    assert_eq!(replaced["pages"][1]["origin"], "002-rescan.png");

    // The old document cannot be changed again; a page it does not have is named; junk is a 400.
    let again = replace(&old, "2", rescan.clone());
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let error: serde_json::Value = again.json().unwrap();
    assert_eq!(error["code"], "replacement-refused");
    assert_eq!(
        replace(new, "7", rescan.clone()).status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        replace(new, "two", rescan.clone()).status(),
        StatusCode::BAD_REQUEST
    );
    let unknown = "0".repeat(64);
    assert_eq!(
        replace(&unknown, "1", rescan).status(),
        StatusCode::NOT_FOUND
    );
}

#[test]
fn an_upload_over_the_configured_limit_is_refused_once_past_it() {
    use std::io::{Read, Write};
    let sohoa = Sohoa::new();
    let server = sohoa.serve_with(&[("SOHOA_LIMITS__MAX_UPLOAD_BYTES", "50000")]);
    let token = sohoa.token("clerk", &[]);
    // A client announcing 10 MB: the answer comes once the limit is passed, not after 10 MB.
    let address = server.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /v1/dossiers/{DOSSIER}/documents?procedure=1.001234&unit=000.00.15.H27 HTTP/1.1\r\n\
         Host: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary=X\r\n\
         Content-Length: 10000000\r\n\r\n"
    )
    .unwrap();
    let _ = stream.write_all(
        b"--X\r\nContent-Disposition: form-data; name=\"page\"; filename=\"p1.png\"\r\n\r\n",
    );
    let _ = stream.write_all(&vec![0u8; 100_000]);
    let mut answer = [0u8; 64];
    let n = stream.read(&mut answer).unwrap();
    let status = String::from_utf8_lossy(&answer[..n]);
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    assert!(sohoa.search("tran van binh").is_empty());
}
