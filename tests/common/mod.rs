//! Test helpers: scan-like fixtures rendered from known text, the real `sohoa` binary on a fresh data
//! directory, and a real server on a free port.
#![allow(dead_code)] // each test binary uses its own subset

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

use ab_glyph::{Font, FontVec, PxScale, ScaleFont, point};
use image::{GrayImage, Luma};

/// A4 width at 300 dpi.
const PAGE_WIDTH: u32 = 2480;
/// 14 pt at 300 dpi.
const TEXT_PX: f32 = 58.0;
const LINE_PX: u32 = 100;
const MARGIN: u32 = 150;

fn font() -> &'static FontVec {
    static FONT: OnceLock<FontVec> = OnceLock::new();
    FONT.get_or_init(|| {
        let path = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
        let bytes = std::fs::read(path).unwrap_or_else(|e| {
            panic!("{path}: {e} (Debian package fonts-dejavu-core; .ci/run installs it)")
        });
        FontVec::try_from_vec(bytes).expect("DejaVu Sans parses")
    })
}

/// A white page strip, A4 wide at 300 dpi, with `lines` of black text, as a clean scanner would give.
pub fn render_page(lines: &[&str]) -> GrayImage {
    let height = 2 * MARGIN + LINE_PX * lines.len() as u32;
    let mut page = GrayImage::from_pixel(PAGE_WIDTH, height, Luma([255]));
    let font = font();
    let scale = PxScale::from(TEXT_PX);
    let scaled = font.as_scaled(scale);
    for (i, line) in lines.iter().enumerate() {
        let baseline = (MARGIN + LINE_PX * i as u32) as f32 + scaled.ascent();
        let mut x = MARGIN as f32;
        for c in line.chars() {
            let id = scaled.glyph_id(c);
            let glyph = id.with_scale_and_position(scale, point(x, baseline));
            x += scaled.h_advance(id);
            let Some(outline) = font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                let (px, py) = (
                    bounds.min.x as i32 + gx as i32,
                    bounds.min.y as i32 + gy as i32,
                );
                if px >= 0 && py >= 0 && (px as u32) < page.width() && (py as u32) < page.height() {
                    let ink = (coverage.clamp(0.0, 1.0) * 255.0) as u8;
                    let pixel = page.get_pixel_mut(px as u32, py as u32);
                    pixel.0[0] = pixel.0[0].min(255 - ink);
                }
            });
        }
    }
    page
}

/// Writes `page` as a PNG that records 300 dpi.
pub fn write_png(page: &GrayImage, path: &Path) {
    write_png_at(page, path, 300.0);
}

/// Writes `page` as a PNG that records `dpi`.
pub fn write_png_at(page: &GrayImage, path: &Path, dpi: f32) {
    let file = std::fs::File::create(path).unwrap();
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), page.width(), page.height());
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_pixel_dims(Some(png::PixelDimensions {
        xppu: (dpi / 0.0254).round() as u32,
        yppu: (dpi / 0.0254).round() as u32,
        unit: png::Unit::Meter,
    }));
    encoder
        .write_header()
        .unwrap()
        .write_image_data(page.as_raw())
        .unwrap();
}

/// Writes `page` as a 300 dpi JPEG.
pub fn write_jpeg(page: &GrayImage, path: &Path) {
    let file = std::fs::File::create(path).unwrap();
    let mut encoder =
        image::codecs::jpeg::JpegEncoder::new_with_quality(std::io::BufWriter::new(file), 90);
    encoder.set_pixel_density(image::codecs::jpeg::PixelDensity::dpi(300));
    encoder.encode_image(page).unwrap();
}

/// Writes `pages` as one multi-page greyscale TIFF.
pub fn write_tiff(pages: &[GrayImage], path: &Path) {
    let file = std::fs::File::create(path).unwrap();
    let mut encoder = tiff::encoder::TiffEncoder::new(std::io::BufWriter::new(file)).unwrap();
    for page in pages {
        encoder
            .write_image::<tiff::encoder::colortype::Gray8>(
                page.width(),
                page.height(),
                page.as_raw(),
            )
            .unwrap();
    }
}

/// A fresh data directory and the real `sohoa` binary pointed at it: with the embedded SQLite database and
/// local object store, or, when `SOHOA_TEST_BACKEND=postgres-s3`, a fresh PostgreSQL database (created
/// through `SOHOA_TEST_POSTGRES`, a URL of a role that may create databases) and a fresh prefix in the
/// `sohoa-test` bucket of the S3 server at `SOHOA_TEST_S3` (`.ci/run` starts both).
pub struct Sohoa {
    pub dir: tempfile::TempDir,
    pub shared: Option<SharedStorage>,
}

/// A PostgreSQL database and an S3 prefix of one test.
pub struct SharedStorage {
    admin_url: String,
    database: String,
    pub database_url: String,
    pub s3_endpoint: String,
    pub prefix: String,
}

pub const TEST_BUCKET: &str = "sohoa-test";

impl SharedStorage {
    fn create() -> Option<Self> {
        match std::env::var("SOHOA_TEST_BACKEND").as_deref() {
            Ok("postgres-s3") => {}
            Ok("") | Ok("sqlite") | Err(_) => return None,
            Ok(other) => panic!("SOHOA_TEST_BACKEND={other}: use sqlite or postgres-s3"),
        }
        let admin_url = std::env::var("SOHOA_TEST_POSTGRES")
            .expect("SOHOA_TEST_POSTGRES (postgres://USER:PASSWORD@HOST/DB) for SOHOA_TEST_BACKEND=postgres-s3");
        let s3_endpoint = std::env::var("SOHOA_TEST_S3")
            .expect("SOHOA_TEST_S3 (http://HOST:PORT) for SOHOA_TEST_BACKEND=postgres-s3");
        let unique = unique_name();
        let database = format!("sohoa_test_{unique}");
        psql(
            &admin_url,
            &format!("CREATE DATABASE {database} ENCODING 'UTF8' TEMPLATE template0"),
        );
        let (base, _) = admin_url
            .rsplit_once('/')
            .expect("a database URL ends with /DB");
        Some(Self {
            database_url: format!("{base}/{database}"),
            admin_url,
            database,
            s3_endpoint,
            prefix: format!("t{unique}"),
        })
    }

    /// The key of object `hash` in the test bucket.
    pub fn object_key(&self, hash: &str) -> object_store::path::Path {
        object_store::path::Path::from(format!("{}/blake3/{}/{hash}", self.prefix, &hash[..2]))
    }

    /// Runs `work` with an S3 client of its own on the test bucket: sohoa's objects read, damaged or
    /// removed behind its back.
    pub fn s3<T, F>(&self, work: impl FnOnce(object_store::aws::AmazonS3) -> F) -> T
    where
        F: std::future::Future<Output = T>,
    {
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(TEST_BUCKET)
            .with_endpoint(&self.s3_endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .build()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(work(store))
    }
}

impl Drop for SharedStorage {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                &self.admin_url,
                "-qc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database),
            ])
            .output();
    }
}

fn psql(url: &str, sql: &str) -> String {
    let output = Command::new("psql")
        .args([url, "-qAtc", sql])
        .output()
        .expect("psql runs");
    assert!(
        output.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}_{nanos}_{n}", std::process::id())
}

impl Sohoa {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            shared: SharedStorage::create(),
        }
    }

    /// Runs `sql` on this test's database (SQLite through `sqlite3`, PostgreSQL through `psql`) and
    /// returns what it printed.
    pub fn sql(&self, sql: &str) -> String {
        match &self.shared {
            Some(shared) => psql(&shared.database_url, sql),
            None => {
                let output = Command::new("sqlite3")
                    .arg(self.data().join("sohoa.db"))
                    .arg(sql)
                    .output()
                    .expect("sqlite3 runs");
                assert!(
                    output.status.success(),
                    "sqlite3 {sql}: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                String::from_utf8_lossy(&output.stdout).into_owned()
            }
        }
    }

    /// Everything the database holds, as bytes: the SQLite file, or a dump of the PostgreSQL database.
    pub fn database_bytes(&self) -> Vec<u8> {
        match &self.shared {
            Some(shared) => {
                let output = Command::new("pg_dump")
                    .arg(&shared.database_url)
                    .output()
                    .expect("pg_dump runs");
                assert!(
                    output.status.success(),
                    "pg_dump: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                output.stdout
            }
            None => std::fs::read(self.data().join("sohoa.db")).unwrap(),
        }
    }

    /// A stored object's bytes, read behind sohoa's back.
    pub fn raw_object(&self, hash: &str) -> Option<Vec<u8>> {
        match &self.shared {
            Some(shared) => shared.s3(|store| async move {
                use object_store::ObjectStore;
                match store.get(&shared.object_key(hash)).await {
                    Ok(found) => Some(found.bytes().await.unwrap().to_vec()),
                    Err(object_store::Error::NotFound { .. }) => None,
                    Err(e) => panic!("S3 GET: {e}"),
                }
            }),
            None => std::fs::read(self.object_path(hash)).ok(),
        }
    }

    /// Replaces a stored object's bytes (`Some`) or removes it (`None`) behind sohoa's back.
    pub fn tamper_object(&self, hash: &str, bytes: Option<&[u8]>) {
        match (&self.shared, bytes) {
            (Some(shared), bytes) => shared.s3(|store| async move {
                use object_store::ObjectStore;
                let key = shared.object_key(hash);
                match bytes {
                    Some(bytes) => {
                        store.put(&key, bytes.to_vec().into()).await.unwrap();
                    }
                    None => store.delete(&key).await.unwrap(),
                }
            }),
            (None, Some(bytes)) => {
                let path = self.object_path(hash);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, bytes).unwrap();
            }
            (None, None) => std::fs::remove_file(self.object_path(hash)).unwrap(),
        }
    }

    /// The keys of every stored object (`blake3/ab/abcd...`), listed behind sohoa's back.
    pub fn stored_objects(&self) -> std::collections::BTreeSet<String> {
        match &self.shared {
            Some(shared) => shared.s3(|store| async move {
                use futures::TryStreamExt;
                use object_store::ObjectStore;
                let prefix = object_store::path::Path::from(shared.prefix.as_str());
                let listed: Vec<_> = store.list(Some(&prefix)).try_collect().await.unwrap();
                listed
                    .iter()
                    .map(|meta| {
                        let key = meta.location.as_ref();
                        key.strip_prefix(&format!("{}/", shared.prefix))
                            .unwrap_or(key)
                            .to_owned()
                    })
                    .collect()
            }),
            None => {
                fn walk(base: &Path, dir: &Path, found: &mut std::collections::BTreeSet<String>) {
                    let Ok(entries) = std::fs::read_dir(dir) else {
                        return;
                    };
                    for entry in entries {
                        let path = entry.unwrap().path();
                        if path.is_dir() {
                            walk(base, &path, found);
                        } else {
                            found.insert(
                                path.strip_prefix(base)
                                    .unwrap()
                                    .to_string_lossy()
                                    .into_owned(),
                            );
                        }
                    }
                }
                let base = self.data().join("objects");
                let mut found = std::collections::BTreeSet::new();
                walk(&base, &base, &mut found);
                found
            }
        }
    }

    fn object_path(&self, hash: &str) -> PathBuf {
        self.data()
            .join("objects/blake3")
            .join(&hash[..2])
            .join(hash)
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A path for test input files, outside the data directory.
    pub fn input(&self, name: &str) -> PathBuf {
        let dir = self.dir.path().join("input");
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sohoa"));
        command
            .env("SOHOA_DATA", self.data())
            .env("SOHOA_THREADS", "2")
            .env_remove("RUST_LOG")
            .env_remove("DATABASE_URL");
        if let Some(shared) = &self.shared {
            command
                .env("DATABASE_URL", &shared.database_url)
                .env(
                    "SOHOA_STORAGE__OBJECTS",
                    format!("s3://{TEST_BUCKET}/{}", shared.prefix),
                )
                .env("SOHOA_STORAGE__S3__ENDPOINT", &shared.s3_endpoint)
                .env("SOHOA_STORAGE__S3__ALLOW_HTTP", "true")
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env("AWS_REGION", "us-east-1");
        }
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("sohoa runs")
    }

    /// Runs a command that must succeed and returns its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "sohoa {args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// `sohoa ingest --json` of `paths` into `dossier`, which must succeed.
    pub fn ingest(&self, dossier: &str, paths: &[&Path]) -> serde_json::Value {
        let output = self.ingest_output(dossier, paths);
        assert!(
            output.status.success(),
            "sohoa ingest failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// `sohoa ingest --json` of `paths` into `dossier`, whatever comes of it.
    pub fn ingest_output(&self, dossier: &str, paths: &[&Path]) -> Output {
        let mut args = vec![
            "ingest",
            "--json",
            "--dossier",
            dossier,
            "--procedure",
            "1.001234",
            "--unit",
            "000.00.15.H27",
        ];
        let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        args.extend(paths.iter().map(String::as_str));
        self.run(&args)
    }

    /// `sohoa get HASH -o <input dir>/NAME`, returning the path written.
    pub fn get(&self, hash: &str, name: &str) -> PathBuf {
        let path = self.input(name);
        self.ok(&["get", hash, "-o", path.to_str().unwrap()]);
        path
    }

    /// `sohoa search --json`, returning the hits.
    pub fn search(&self, query: &str) -> Vec<serde_json::Value> {
        let out: serde_json::Value =
            serde_json::from_str(&self.ok(&["search", "--json", query])).unwrap();
        out["hits"].as_array().unwrap().clone()
    }

    /// Creates an API account with `role`, limited to `units` (every unit when empty), and returns its
    /// bearer token.
    pub fn token(&self, role: &str, units: &[&str]) -> String {
        static ACCOUNTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
        let name = format!(
            "{role}-{}",
            ACCOUNTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut args = vec!["account", "add", name.as_str(), "--role", role];
        for unit in units {
            args.extend(["--unit", unit]);
        }
        self.ok(&args).trim().to_owned()
    }

    /// `sohoa account password NAME`, the password given on standard input as a script would.
    pub fn set_password(&self, name: &str, password: &str) {
        use std::io::Write;
        let mut child = self
            .command()
            .args(["account", "password", name])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(format!("{password}\n").as_bytes()).unwrap();
        drop(stdin);
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// An HTTP client signed in as a new account with `role`, for every unit.
    pub fn client(&self, role: &str) -> reqwest::blocking::Client {
        client_with_token(&self.token(role, &[]))
    }

    /// Starts `sohoa serve` on a free port.
    pub fn serve(&self) -> Server {
        self.serve_with(&[])
    }

    /// Starts `sohoa serve` on a free port with these environment variables set, without a worker
    /// process beside it.
    pub fn serve_bare(&self, env: &[(&str, &str)]) -> Server {
        self.spawn_server(env, false)
    }

    /// Starts `sohoa serve` on a free port with these environment variables set.
    pub fn serve_with(&self, env: &[(&str, &str)]) -> Server {
        self.spawn_server(env, self.shared.is_some())
    }

    fn spawn_server(&self, env: &[(&str, &str)], with_worker: bool) -> Server {
        let mut command = self.command();
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("sohoa serve starts");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("sohoa listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from serve: {line:?}"))
            .to_owned();
        // On PostgreSQL the server only queues jobs: a worker process does them, as in production.
        let worker = with_worker.then(|| self.worker());
        Server { child, url, worker }
    }

    /// Starts a `sohoa worker` process.
    pub fn worker(&self) -> Child {
        self.command()
            .arg("worker")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("sohoa worker starts")
    }
}

/// An HTTP client that sends `token` as its bearer token.
pub fn client_with_token(token: &str) -> reqwest::blocking::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    value.set_sensitive(true);
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::blocking::Client::builder()
        .default_headers(headers)
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .unwrap()
}

/// A running server (and its worker process, on PostgreSQL), killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub worker: Option<Child>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for child in std::iter::once(&mut self.child).chain(self.worker.as_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Checks that a scan of the ten-sheet test feeder stopped part-way: exit status 2, some but not all sheets
/// kept, the document marked incomplete with a reason containing `why`. Returns the report.
pub fn assert_stopped_part_way(output: &Output, why: &str) -> serde_json::Value {
    assert_eq!(
        output.status.code(),
        Some(2),
        "stored but incomplete: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let pages = report["pages"].as_array().unwrap().len();
    assert!((1..10).contains(&pages), "{pages} sheets kept of ten");
    assert!(
        report["incomplete"].as_str().unwrap().contains(why),
        "{report}"
    );
    report
}

/// BLAKE3 of `bytes` in hex.
pub fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// The text `pdftotext` extracts from `pdf`.
pub fn pdftotext(pdf: &Path) -> String {
    let output = Command::new("pdftotext")
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext runs");
    assert!(
        output.status.success(),
        "pdftotext failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Runs `qpdf --check` on `pdf` and asserts it is clean.
pub fn assert_qpdf_clean(pdf: &Path) {
    let output = Command::new("qpdf")
        .arg("--check")
        .arg(pdf)
        .output()
        .expect("qpdf runs");
    assert!(
        output.status.success(),
        "qpdf --check failed:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

/// `pdffonts` lists at least one font, and every one is embedded with a ToUnicode map.
pub fn assert_fonts_embedded(pdf: &Path) {
    let output = Command::new("pdffonts")
        .arg(pdf)
        .output()
        .expect("pdffonts runs");
    let listing = String::from_utf8_lossy(&output.stdout);
    let fonts: Vec<&str> = listing.lines().skip(2).collect();
    assert!(!fonts.is_empty(), "pdffonts found no font:\n{listing}");
    for font in fonts {
        // Columns: name type encoding emb sub uni object ID; "yes" for embedded and for ToUnicode.
        let columns: Vec<&str> = font.split_whitespace().collect();
        let n = columns.len();
        assert_eq!(
            (columns[n - 5], columns[n - 3]),
            ("yes", "yes"),
            "{font}\n{listing}"
        );
    }
}

/// The OCR'd first page used across tests: a land-use certificate for Nguyễn Thị Hương.
pub const CERTIFICATE: &[&str] = &[
    "GIẤY CHỨNG NHẬN QUYỀN SỬ DỤNG ĐẤT",
    "Người sử dụng đất: bà Nguyễn Thị Hương",
    "Thửa đất số 127, tờ bản đồ số 15",
    "Địa chỉ: xã Yên Trị, huyện Yên Thủy",
];

/// A fuller page, enough running text for orientation detection, as on a real form.
pub const LETTER: &[&str] = &[
    "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
    "Độc lập - Tự do - Hạnh phúc",
    "ĐƠN ĐỀ NGHỊ CẤP BẢN SAO TRÍCH LỤC",
    "Kính gửi: Ủy ban nhân dân xã Yên Trị",
    "Họ và tên người yêu cầu: Trần Văn Bình",
    "Nơi cư trú: thôn Đồng Bến, xã Yên Trị",
    "Giấy tờ tùy thân: căn cước công dân",
    "Quan hệ với người được cấp bản sao: con",
    "Đề nghị cấp bản sao trích lục khai sinh",
    "Số lượng bản sao yêu cầu: hai bản",
    "Tôi cam đoan những nội dung trên là đúng",
    "Làm tại xã Yên Trị, ngày 28 tháng 11",
];

/// A second page in English.
pub const RECEIPT: &[&str] = &[
    "Receipt for the application dossier",
    "Certificate delivered to the applicant",
];
