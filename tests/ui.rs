//! The web UI in a real browser (headless Chromium driven through chromedriver): a clerk signs in, creates
//! a dossier, uploads three pages, submits them and watches them come back with their OCR confidence; an
//! archivist searches a word typed without accents, opens the hit and sees the word outlined on the page
//! image; the dashboard shows the figures; an administrator creates a clerk's account, sets its password
//! and disables a system's account, and the clerk signs in. A screenshot of each screen is saved
//! (`SOHOA_UI_SCREENSHOTS`, else `ui-screenshots/` in the target directory).
//!
//! Needs Debian's `chromium` and `chromium-driver` (`CHROMEDRIVER` and `CHROMIUM` override their paths).

mod common;

use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

const UNIT: &str = "000.00.15.H27";
const PROCEDURE: &str = "1.001234";
/// The clerk's password in the test that signs in as people do.
const CLERK_PASSWORD: &str = "Quầy số 3, tầng 1";
/// The password the clerk changes it to.
const NEW_CLERK_PASSWORD: &str = "Mật khẩu riêng của Chi";
/// How long a screen may take to show what it should (OCR of a page takes seconds, not minutes).
const SCREEN_TIMEOUT: Duration = Duration::from_secs(30);
const PACKAGING_TIMEOUT: Duration = Duration::from_secs(300);

/// A chromedriver process on a free port, stopped when dropped.
struct Chromedriver {
    child: Child,
    url: String,
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn executable(variable: &str, default: &str) -> PathBuf {
    let path = PathBuf::from(std::env::var(variable).unwrap_or_else(|_| default.to_owned()));
    assert!(
        path.exists(),
        "{} not found: the UI tests drive headless Chromium; install Debian's `chromium chromium-driver` \
         (sudo apt-get install chromium chromium-driver; .ci/run does), or set {variable}",
        path.display()
    );
    path
}

fn start_chromedriver() -> Chromedriver {
    let program = executable("CHROMEDRIVER", "/usr/bin/chromedriver");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(program)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Chromedriver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

async fn browser(driver: &Chromedriver) -> Client {
    let chromium = executable("CHROMIUM", "/usr/bin/chromium");
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1366,768", "--lang=vi"],
        }),
    );
    // chromedriver listens on loopback: plain HTTP.
    ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session starts")
}

/// Where the screenshots go.
fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("SOHOA_UI_SCREENSHOTS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR").map(|d| PathBuf::from(d).join("ui-screenshots"))
        })
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Checks that the screen fits the window's width (no sideways scrolling on a 1366x768 screen), shows
/// `anchor` (or the top of the page), and saves a screenshot.
async fn screenshot(browser: &Client, name: &str, anchor: Option<&str>) {
    let overflow = js(
        browser,
        "document.documentElement.scrollWidth > window.innerWidth ? [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 5).map(e => `${e.tagName}#${e.id}.${e.className}`) : []",
    )
    .await;
    assert_eq!(overflow, json!([]), "{name}: wider than the window");
    let scroll = match anchor {
        Some(css) => format!("document.querySelector('{css}').scrollIntoView({{block: 'start'}})"),
        None => "window.scrollTo(0, 0)".to_owned(),
    };
    js(browser, &format!("({scroll}, true)")).await;
    let png = browser.screenshot().await.expect("a screenshot");
    std::fs::write(screenshot_dir().join(name), png).unwrap();
}

/// Polls `check` until it answers `true`, failing after `timeout` with `what`.
async fn until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Evaluates a JavaScript expression in the page.
async fn js(browser: &Client, expression: &str) -> Value {
    browser
        .execute(&format!("return ({expression});"), vec![])
        .await
        .unwrap_or_else(|e| panic!("{expression}: {e}"))
}

/// Waits until a JavaScript expression is true in the page.
async fn until_js(browser: &Client, what: &str, timeout: Duration, expression: &str) {
    until(what, timeout, move || async move {
        js(browser, expression).await == Value::Bool(true)
    })
    .await;
}

async fn find(browser: &Client, css: &str) -> Element {
    browser
        .wait()
        .at_most(SCREEN_TIMEOUT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no element {css}: {e}"))
}

async fn click(browser: &Client, css: &str) {
    find(browser, css)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

async fn type_into(browser: &Client, css: &str, text: &str) {
    let field = find(browser, css).await;
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn text_of(browser: &Client, css: &str) -> String {
    find(browser, css).await.text().await.unwrap()
}

/// Signs in by pasting a token (under "use an access token instead").
async fn sign_in(browser: &Client, token: &str, screen: &str) {
    if js(browser, "document.getElementById('token-box').open").await != Value::Bool(true) {
        click(browser, "#token-box summary").await;
    }
    // From the keyboard: Enter in the field signs in.
    type_into(browser, "#token", &format!("{token}\u{E007}")).await;
    until_signed_in(browser, screen).await;
}

async fn until_signed_in(browser: &Client, screen: &str) {
    until_js(
        browser,
        &format!("the {screen} screen after signing in"),
        SCREEN_TIMEOUT,
        &format!("!document.getElementById('screen-{screen}').hidden"),
    )
    .await;
}

/// Signs in with an account's name and password, as people do.
async fn sign_in_with_password(browser: &Client, name: &str, password: &str, screen: &str) {
    type_into(browser, "#signin-name", name).await;
    // From the keyboard: Enter in the password field signs in.
    type_into(browser, "#signin-password", &format!("{password}\u{E007}")).await;
    until_signed_in(browser, screen).await;
}

/// Today in Vietnam as `yymmdd`, for a dossier code received today (and so in the dashboard's period).
fn today_yymmdd() -> String {
    let today = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+7));
    today
        .format(time::macros::format_description!(
            "[year repr:last_two][month][day]"
        ))
        .unwrap()
}

#[test]
fn the_ui_is_served_from_the_binary_with_a_strict_policy() {
    let sohoa = Sohoa::new();
    let server = sohoa.serve();
    let plain = reqwest::blocking::Client::new();
    let index = plain.get(format!("{}/", server.url)).send().unwrap();
    assert_eq!(index.status(), 200);
    let policy = index.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"),
        "{policy}"
    );
    assert!(
        index.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = index.text().unwrap();
    assert!(
        html.contains("<html lang=\"vi\">") && html.contains("/ui/app.js"),
        "{html}"
    );
    let script = plain
        .get(format!("{}/ui/app.js", server.url))
        .send()
        .unwrap();
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let missing = plain
        .get(format!("{}/ui/secret.txt", server.url))
        .send()
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[test]
fn a_clerk_digitizes_a_dossier_and_an_archivist_finds_the_word_on_the_page() {
    let driver = start_chromedriver();
    let sohoa = Sohoa::new();
    let server = sohoa.serve();
    sohoa.ok(&["account", "add", "chi", "--role", "clerk", "--unit", UNIT]);
    sohoa.set_password("chi", CLERK_PASSWORD);
    let archivist = sohoa.token("archivist", &[UNIT]);
    let admin = client_with_token(&sohoa.token("admin", &[]));
    let registered = admin
        .put(format!("{}/v1/procedures/{PROCEDURE}", server.url))
        .json(&json!({"name": "Cấp giấy chứng nhận quyền sử dụng đất", "field": "Đất đai", "level": "district"}))
        .send()
        .unwrap();
    assert!(registered.status().is_success(), "{:?}", registered.text());
    let registered = admin
        .put(format!("{}/v1/units/{UNIT}", server.url))
        .json(&json!({"name": "UBND huyện Yên Thủy", "level": "district"}))
        .send()
        .unwrap();
    assert!(registered.status().is_success(), "{:?}", registered.text());
    drop(admin);

    let pages: Vec<PathBuf> = [
        vec![
            "GIẤY CHỨNG NHẬN QUYỀN SỬ DỤNG ĐẤT",
            "Người sử dụng đất: ông Nguyễn Văn An",
            "Thửa đất số 127, tờ bản đồ số 15",
        ],
        LETTER.to_vec(),
        vec!["BIÊN NHẬN HỒ SƠ", "Địa chỉ: xã Yên Trị, huyện Yên Thủy"],
        // The second sheet again, rescanned.
        [LETTER, &["Bản quét lại"]].concat(),
    ]
    .iter()
    .enumerate()
    .map(|(i, lines)| {
        let name = match i {
            3 => "trang-2-quet-lai.png".to_owned(),
            _ => format!("trang-{}.png", i + 1),
        };
        let path = sohoa.input(&name);
        write_png(&render_page(lines), &path);
        path
    })
    .collect();
    let code = format!("{UNIT}-{}-0007", today_yymmdd());

    in_browser(&driver, |browser| {
        digitize_and_find(browser, &server.url, "chi", &archivist, &code, &pages)
    });
}

/// Runs `flow` in a new browser session on its own runtime (the blocking helpers, processes and
/// reqwest's blocking client, stay outside it). The browser is closed whatever happens, so a failure
/// leaves no Chromium behind.
fn in_browser<Fut>(driver: &Chromedriver, flow: impl FnOnce(Client) -> Fut)
where
    Fut: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let session = runtime.block_on(browser(driver));
    let outcome = runtime.block_on(futures::FutureExt::catch_unwind(
        std::panic::AssertUnwindSafe(flow(session.clone())),
    ));
    let _ = runtime.block_on(session.close());
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn digitize_and_find(
    session: Client,
    url: &str,
    clerk: &str,
    archivist: &str,
    code: &str,
    pages: &[PathBuf],
) {
    let browser = &session;
    browser.goto(&format!("{url}/")).await.unwrap();
    find(browser, "#signin-name").await;
    assert_eq!(text_of(browser, "#signin-title").await, "Đăng nhập");
    screenshot(browser, "01-sign-in.png", None).await;

    // Every field has a label a screen reader reads out.
    let unlabelled = js(
        browser,
        "[...document.querySelectorAll('input, select')].filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.id)",
    )
    .await;
    assert_eq!(unlabelled, json!([]), "fields without a label");

    // The clerk signs in with name and password; a wrong password is refused and nothing opens.
    type_into(browser, "#signin-name", clerk).await;
    type_into(browser, "#signin-password", "sai mật khẩu\u{E007}").await;
    until_js(
        browser,
        "the wrong password's notice",
        SCREEN_TIMEOUT,
        "document.getElementById('notice').textContent.includes('Sai tên tài khoản hoặc mật khẩu')",
    )
    .await;
    assert_eq!(
        js(browser, "document.getElementById('screen-desk').hidden").await,
        Value::Bool(true)
    );
    sign_in_with_password(browser, clerk, CLERK_PASSWORD, "desk").await;

    // The clerk makes the password her own: a wrong current one is refused in the dialog, the right one
    // changes it and the desk goes on with a new session.
    click(browser, "#password-open").await;
    type_into(browser, "#password-current", "sai mật khẩu").await;
    type_into(browser, "#password-new", NEW_CLERK_PASSWORD).await;
    type_into(
        browser,
        "#password-again",
        &format!("{NEW_CLERK_PASSWORD}\u{E007}"),
    )
    .await;
    until_js(
        browser,
        "the wrong current password's message",
        SCREEN_TIMEOUT,
        "document.getElementById('password-error').textContent === 'Mật khẩu hiện tại không đúng.'",
    )
    .await;
    screenshot(browser, "01b-password-dialog.png", None).await;
    type_into(
        browser,
        "#password-current",
        &format!("{CLERK_PASSWORD}\u{E007}"),
    )
    .await;
    until_js(browser, "the password changed", SCREEN_TIMEOUT, "!document.getElementById('password-dialog').open && document.getElementById('notice').textContent === 'Đã đổi mật khẩu.'").await;
    assert_eq!(
        js(browser, "document.getElementById('screen-desk').hidden").await,
        Value::Bool(false)
    );

    // A wrong code is refused with the expected shape, then the dossier is created.
    type_into(browser, "#dossier-code", "000.00.15.H27-2311").await;
    click(browser, "#dossier-create").await;
    until_js(browser, "the code's error", SCREEN_TIMEOUT, "document.getElementById('dossier-code-error').textContent.includes('000.00.15.H27-231128-0042')").await;
    type_into(browser, "#dossier-code", code).await;
    // The procedure list offers procedures by name.
    type_into(browser, "#procedure", "quyền sử dụng").await;
    until_js(browser, "the procedure list", SCREEN_TIMEOUT, &format!("[...document.querySelectorAll('#procedure-list option')].some(o => o.value === '{PROCEDURE}')")).await;
    type_into(browser, "#procedure", PROCEDURE).await;
    type_into(browser, "#applicant", "Nguyễn Văn An").await;
    click(browser, "#dossier-create").await;
    until_js(browser, "the dossier opened", SCREEN_TIMEOUT, &format!("!document.getElementById('dossier-work').hidden && document.getElementById('current-dossier').textContent.includes('{code}')")).await;

    // Three pages uploaded show as thumbnails, waiting for OCR.
    let paths: Vec<String> = pages[..3].iter().map(|p| p.display().to_string()).collect();
    find(browser, "#files")
        .await
        .send_keys(&paths.join("\n"))
        .await
        .unwrap();
    until_js(browser, "three page thumbnails", SCREEN_TIMEOUT, "document.querySelectorAll('#pending .pending-page img').length === 3 && [...document.querySelectorAll('#pending .pending-page img')].every(i => i.complete && i.naturalWidth > 0)").await;
    assert!(text_of(browser, "#pending").await.contains("Chờ OCR"));

    // Reordering by keyboard-reachable buttons: the first page moves later, then back.
    let order = "[...document.querySelectorAll('#pending .pending-page')].map(li => li.dataset.id).join(',')";
    let before = js(browser, order).await;
    click(
        browser,
        "#pending .pending-page:first-child .actions button:nth-child(2)",
    )
    .await;
    until_js(
        browser,
        "the page moved",
        SCREEN_TIMEOUT,
        &format!("({order}) !== {before}"),
    )
    .await;
    click(
        browser,
        "#pending .pending-page:nth-child(2) .actions button:nth-child(1)",
    )
    .await;
    until_js(
        browser,
        "the page moved back",
        SCREEN_TIMEOUT,
        &format!("({order}) === {before}"),
    )
    .await;
    // A sheet rescanned replaces its page in place.
    click(
        browser,
        "#pending .pending-page:nth-child(2) .actions button:nth-child(3)",
    )
    .await;
    find(browser, "#rescan-file")
        .await
        .send_keys(&pages[3].display().to_string())
        .await
        .unwrap();
    until_js(browser, "the rescan in place of page 2", SCREEN_TIMEOUT, "document.querySelectorAll('#pending .pending-page').length === 3 && document.querySelector('#pending .pending-page:nth-child(2) .origin').textContent === 'trang-2-quet-lai.png' && [...document.querySelectorAll('#pending .pending-page img')].every(i => i.complete && i.naturalWidth > 0)").await;
    // A sideways sheet is turned a quarter at a time; four quarters leave it as scanned (its orientation
    // detected again), so the text the archivist searches below stays readable.
    click(browser, "#pending .pending-page:nth-child(3) button.rotate").await;
    until_js(
        browser,
        "page 3 turned a quarter",
        SCREEN_TIMEOUT,
        "document.querySelector('#pending .pending-page:nth-child(3) figure').classList.contains('turn-1') && !!document.querySelector('#pending .pending-page:nth-child(3) .badge.turned')",
    )
    .await;
    screenshot(browser, "02-desk-pages-waiting.png", None).await;
    for quarter in 2..=4 {
        click(browser, "#pending .pending-page:nth-child(3) button.rotate").await;
        until_js(
            browser,
            "page 3 turned another quarter",
            SCREEN_TIMEOUT,
            &format!(
                "document.querySelector('#pending .pending-page:nth-child(3) figure').classList.contains('turn-{}')",
                quarter % 4
            ),
        )
        .await;
    }
    until_js(
        browser,
        "page 3 back as scanned",
        SCREEN_TIMEOUT,
        "!document.querySelector('#pending .pending-page:nth-child(3) .badge.turned')",
    )
    .await;

    // Submitted: the progress runs live to the end; the pages come back with confidence and flags.
    click(browser, "#submit").await;
    until_js(
        browser,
        "packaging to finish",
        PACKAGING_TIMEOUT,
        "['done', 'failed'].includes(document.getElementById('job-status').dataset.state)",
    )
    .await;
    let status = text_of(browser, "#job-status").await;
    assert!(status.starts_with("Hoàn tất"), "{status}");
    until_js(browser, "three pages with their confidence", SCREEN_TIMEOUT, "document.querySelectorAll('#documents .page-card .badge.confidence').length === 3 && [...document.querySelectorAll('#documents .page-card img')].every(i => i.complete && i.naturalWidth > 0)").await;
    assert!(text_of(browser, "#documents").await.contains("Độ tin cậy"));
    assert_eq!(
        text_of(browser, "#documents .page-card:nth-child(2) .origin").await,
        "trang-2-quet-lai.png",
        "the rescan is packaged in the place of the sheet it replaced"
    );
    assert!(
        find(browser, "#pending-empty")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    screenshot(browser, "03-desk-packaged.png", Some("#waiting-title")).await;

    // The archivist searches without accents; the index follows the database within seconds.
    click(browser, "#signout").await;
    until_js(browser, "the sign-in form again", SCREEN_TIMEOUT, "!document.getElementById('screen-signin').hidden && !document.getElementById('signin-password').value && !sessionStorage.getItem('sohoa.token')").await;
    sign_in(browser, archivist, "archive").await;
    type_into(browser, "#q", "nguyen van an").await;
    let hit_with_marks = "[...document.querySelectorAll('#results .hit')].findIndex(h => h.querySelector('.snippet mark'))";
    let page = browser;
    until(
        "a search hit with highlighted words",
        SCREEN_TIMEOUT,
        move || async move {
            click(page, "#search-form button[type=submit]").await;
            let deadline = Instant::now() + Duration::from_secs(3);
            loop {
                if js(page, hit_with_marks).await.as_i64().unwrap_or(-1) >= 0 {
                    return true;
                }
                if Instant::now() > deadline {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        },
    )
    .await;
    let marks = js(
        browser,
        "[...document.querySelectorAll('#results mark')].map(m => m.textContent).join(' ')",
    )
    .await;
    assert!(marks.as_str().unwrap().contains("Nguyễn"), "{marks}");
    screenshot(browser, "04-archive-results.png", None).await;

    // Opening the hit shows the page image with the matched words outlined, and the dossier.
    let index = js(browser, hit_with_marks).await.as_i64().unwrap() + 1;
    click(
        browser,
        &format!("#results .hit:nth-child({index}) h3 button"),
    )
    .await;
    until_js(browser, "the page image", SCREEN_TIMEOUT, "!document.getElementById('screen-viewer').hidden && document.getElementById('page-image').complete && document.getElementById('page-image').naturalWidth > 0").await;
    until_js(
        browser,
        "highlight boxes on the page image",
        SCREEN_TIMEOUT,
        "document.querySelectorAll('#page-overlay polygon.hl').length >= 3",
    )
    .await;
    // The boxes sit on the image, where the words are (the name is on the second line).
    let inside = js(browser, "(() => { const img = document.getElementById('page-image').getBoundingClientRect(); return [...document.querySelectorAll('#page-overlay polygon.hl')].every(p => { const r = p.getBoundingClientRect(); return r.width > 2 && r.left >= img.left - 1 && r.right <= img.right + 1 && r.top >= img.top - 1 && r.bottom <= img.bottom + 1; }); })()").await;
    assert_eq!(
        inside,
        Value::Bool(true),
        "highlight boxes outside the page image"
    );
    let words = js(browser, "[...document.querySelectorAll('#page-overlay polygon.hl title')].map(t => t.textContent).join(' ')").await;
    assert!(words.as_str().unwrap().contains("Nguyễn"), "{words}");
    let metadata = text_of(browser, "#metadata").await;
    assert!(
        metadata.contains(code) && metadata.contains("Nguyễn Văn An"),
        "{metadata}"
    );
    screenshot(browser, "05-archive-page-highlighted.png", None).await;

    // The certified copy comes down as a PDF (downloads are seen where the page hands them over).
    js(browser, "(() => { window.downloads = []; const make = URL.createObjectURL; URL.createObjectURL = (blob) => { window.downloads.push(blob.type); return make(blob); }; return true; })()").await;
    click(browser, "#download-copy").await;
    until_js(
        browser,
        "the certified copy",
        SCREEN_TIMEOUT,
        "window.downloads.includes('application/pdf')",
    )
    .await;

    // The dashboard: this unit's figures, in a table and a chart.
    click(browser, "#nav [data-screen=dashboard]").await;
    until_js(browser, "the unit's figures", SCREEN_TIMEOUT, &format!("!!document.querySelector('#stats-table tbody tr[data-key=\"{UNIT}\"]') && document.querySelectorAll('#chart rect.bar').length > 0")).await;
    let figures = js(browser, &format!("[...document.querySelectorAll('#stats-table tbody tr[data-key=\"{UNIT}\"] td')].map(td => td.textContent)")).await;
    // Carried over, received, online, resolved, early, on time, late, in progress, digitized...
    assert_eq!(figures[1], "1", "received: {figures}");
    assert_eq!(figures[8], "1", "digitized: {figures}");
    assert!(
        text_of(browser, "#stats-table")
            .await
            .contains("UBND huyện Yên Thủy")
    );
    screenshot(browser, "06-dashboard.png", None).await;

    // English is one switch away.
    find(browser, "#language")
        .await
        .select_by_value("en")
        .await
        .unwrap();
    until_js(browser, "English labels", SCREEN_TIMEOUT, "document.getElementById('dashboard-title').textContent === 'Digital warehouse statistics' && document.documentElement.lang === 'en'").await;
    screenshot(browser, "07-dashboard-english.png", Some("#stats-table")).await;
}

/// Needs SANE's virtual `test` scanner (enabled in /etc/sane.d/dll.conf; .ci/run does it).
#[test]
fn a_clerk_scans_a_sheet_from_a_scanner_the_server_drives() {
    let driver = start_chromedriver();
    let sohoa = Sohoa::new();
    let server = sohoa.serve();
    let clerk = sohoa.token("clerk", &[UNIT]);
    let code = format!("{UNIT}-{}-0008", today_yymmdd());
    in_browser(&driver, |session| async move {
        let browser = &session;
        browser.goto(&format!("{}/", server.url)).await.unwrap();
        sign_in(browser, &clerk, "desk").await;
        type_into(browser, "#dossier-code", &code).await;
        type_into(browser, "#procedure", PROCEDURE).await;
        click(browser, "#dossier-create").await;
        until_js(
            browser,
            "the dossier opened",
            SCREEN_TIMEOUT,
            "!document.getElementById('dossier-work').hidden",
        )
        .await;

        // The scanners the server drives, with their settings.
        click(browser, "#scanner-box summary").await;
        until_js(
            browser,
            "SANE's test scanner in the list",
            SCREEN_TIMEOUT,
            "[...document.querySelectorAll('#scanner option')].some(o => o.value === 'test:0')",
        )
        .await;
        find(browser, "#scanner")
            .await
            .select_by_value("test:0")
            .await
            .unwrap();
        until_js(
            browser,
            "the scanner's paper sources",
            SCREEN_TIMEOUT,
            "document.querySelectorAll('#scan-source option').length > 1",
        )
        .await;
        find(browser, "#scan-dpi")
            .await
            .select_by_value("200")
            .await
            .unwrap();
        find(browser, "#scan-mode")
            .await
            .select_by_value("gray")
            .await
            .unwrap();
        click(browser, "#scan-start").await;
        until_js(browser, "the scan to finish", PACKAGING_TIMEOUT, "/^(Quét xong|Quét không thành công)/.test(document.getElementById('scan-status').textContent)").await;
        let status = text_of(browser, "#scan-status").await;
        assert!(status.starts_with("Quét xong"), "{status}");
        until_js(
            browser,
            "the scanned page with its confidence",
            SCREEN_TIMEOUT,
            "document.querySelectorAll('#documents .page-card .badge.confidence').length >= 1",
        )
        .await;
        let origin = text_of(browser, "#documents .page-card .origin").await;
        assert!(origin.starts_with("test:0"), "{origin}");
        // Each sheet was shown with its reading as it was read, and stays listed with it.
        until_js(
            browser,
            "the scanned sheets with their readings",
            SCREEN_TIMEOUT,
            "document.querySelectorAll('#scanned .scanned-page .badge.confidence').length >= 1",
        )
        .await;
        // ... and with its image, small, from the scan itself.
        until_js(
            browser,
            "the scanned sheets' images",
            SCREEN_TIMEOUT,
            "[...document.querySelectorAll('#scanned .scanned-page')].every(p => { const i = p.querySelector('img'); return i && i.complete && i.naturalWidth > 0; })",
        )
        .await;
        screenshot(browser, "08-desk-scanned.png", Some("#scanner-box")).await;
    });
}

#[test]
fn an_administrator_creates_a_clerks_account_and_the_clerk_signs_in() {
    let driver = start_chromedriver();
    let sohoa = Sohoa::new();
    let server = sohoa.serve();
    // The administrator made at first start gets a password from the command line, as an operator does.
    sohoa.set_password("admin", ADMIN_PASSWORD);
    sohoa.ok(&["account", "add", "so-dia-chinh", "--role", "system"]);
    in_browser(&driver, |browser| {
        manage_accounts(browser, server.url.clone())
    });

    // What the screen did is what the archive holds, and on record as the administrator's.
    let admin = client_with_token(&sohoa.token("admin", &[]));
    let accounts: Vec<Value> = admin
        .get(format!("{}/v1/accounts", server.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let account = |name: &str| {
        accounts
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {accounts:?}"))
            .clone()
    };
    let hoa = account("hoa");
    assert_eq!(
        (
            &hoa["role"],
            &hoa["units"],
            &hoa["has_password"],
            &hoa["must_change_password"],
            &hoa["disabled"]
        ),
        (
            &json!("clerk"),
            &json!([UNIT]),
            &json!(true),
            &json!(false),
            &json!(false)
        )
    );
    assert_eq!(account("so-dia-chinh")["disabled"], true);
    assert!(accounts.iter().all(|a| a["name"] != "Hòa"));
    let audit: Value = admin
        .get(format!("{}/v1/audit", server.url))
        .query(&[("actor", "admin")])
        .send()
        .unwrap()
        .json()
        .unwrap();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "ok")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in ["account.create", "account.password", "account.update"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    // The clerk made the password her own.
    let changes = admin
        .get(format!("{}/v1/audit", server.url))
        .query(&[("actor", "hoa"), ("action", "account.password.change")])
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    assert_eq!(changes["entries"].as_array().unwrap().len(), 1, "{changes}");
}

/// The administrator's password in the accounts test.
const ADMIN_PASSWORD: &str = "Quản trị hệ thống 2026";
/// The first password the administrator gives the new clerk, and the one set again after.
const HOA_PASSWORD: &str = "Bàn số 5, tầng 1";
const HOA_NEW_PASSWORD: &str = "Hòa đổi lần hai";
/// The password the clerk makes her own.
const HOA_OWN_PASSWORD: &str = "Chỉ Hòa biết mà thôi";

async fn manage_accounts(session: Client, url: String) {
    let browser = &session;
    browser.goto(&format!("{url}/")).await.unwrap();
    sign_in_with_password(browser, "admin", ADMIN_PASSWORD, "accounts").await;
    until_js(
        browser,
        "the accounts listed",
        SCREEN_TIMEOUT,
        "!!document.querySelector('#accounts-table tr[data-name=\"so-dia-chinh\"]')",
    )
    .await;
    let row_text = |name: &str| {
        format!(
            "(document.querySelector('#accounts-table tr[data-name=\"{name}\"]')?.textContent ?? '')"
        )
    };
    let system = js(browser, &row_text("so-dia-chinh")).await;
    assert!(
        system.as_str().unwrap().contains("Bằng mã truy cập"),
        "{system}"
    );
    // The administrator cannot disable her own account from here, nor set its password (she changes it
    // with "Đổi mật khẩu"; setting it here would end her own session).
    assert_eq!(
        js(
            browser,
            "document.querySelector('#accounts-table tr[data-name=\"admin\"] button')"
        )
        .await,
        Value::Null
    );

    // A name with accents is refused before anything is sent.
    type_into(browser, "#a-name", "Hòa").await;
    type_into(browser, "#a-password", HOA_PASSWORD).await;
    click(browser, "#account-form button[type=submit]").await;
    until_js(
        browser,
        "the name's error",
        SCREEN_TIMEOUT,
        "document.getElementById('account-error').textContent.includes('chữ không dấu')",
    )
    .await;

    // The clerk's account, for one unit, with a first password.
    type_into(browser, "#a-name", "hoa").await;
    find(browser, "#a-role")
        .await
        .select_by_value("clerk")
        .await
        .unwrap();
    type_into(browser, "#a-units", UNIT).await;
    type_into(browser, "#a-password", &format!("{HOA_PASSWORD}\u{E007}")).await;
    until_js(
        browser,
        "the new account in the list",
        SCREEN_TIMEOUT,
        &format!("{}.includes('Mật khẩu tạm')", row_text("hoa")),
    )
    .await;
    let hoa = js(browser, &row_text("hoa")).await;
    assert!(
        hoa.as_str().unwrap().contains("cán bộ tiếp nhận") && hoa.as_str().unwrap().contains(UNIT),
        "{hoa}"
    );

    // The same name again is refused, naming it.
    type_into(browser, "#a-name", "hoa").await;
    type_into(browser, "#a-password", &format!("{HOA_PASSWORD}\u{E007}")).await;
    until_js(
        browser,
        "the name taken",
        SCREEN_TIMEOUT,
        "document.getElementById('account-error').textContent === 'Đã có tài khoản tên hoa.'",
    )
    .await;

    // A new password for the clerk, from the dialog. Left with Escape, nothing typed stays in it.
    click(
        browser,
        "#accounts-table tr[data-name=\"hoa\"] button.set-password",
    )
    .await;
    type_into(browser, "#reset-password", "gõ nhầm\u{E00C}").await;
    until_js(browser, "the dialog left", SCREEN_TIMEOUT, "!document.getElementById('reset-dialog').open && document.activeElement.matches('tr[data-name=\"hoa\"] button.set-password')").await;
    click(
        browser,
        "#accounts-table tr[data-name=\"hoa\"] button.set-password",
    )
    .await;
    assert_eq!(
        js(browser, "document.getElementById('reset-password').value").await,
        json!("")
    );
    // Two different entries are refused.
    type_into(browser, "#reset-password", HOA_NEW_PASSWORD).await;
    type_into(browser, "#reset-again", "khác hẳn\u{E007}").await;
    until_js(browser, "the mismatch", SCREEN_TIMEOUT, "document.getElementById('reset-error').textContent === 'Hai lần nhập mật khẩu mới không giống nhau.'").await;
    type_into(
        browser,
        "#reset-again",
        &format!("{HOA_NEW_PASSWORD}\u{E007}"),
    )
    .await;
    until_js(browser, "the password set", SCREEN_TIMEOUT, "!document.getElementById('reset-dialog').open && document.getElementById('notice').textContent === 'Đã đặt mật khẩu mới cho hoa.' && document.activeElement.matches('tr[data-name=\"hoa\"] button.set-password')").await;

    // The land registry's system account is disabled.
    click(
        browser,
        "#accounts-table tr[data-name=\"so-dia-chinh\"] button.disable",
    )
    .await;
    until_js(browser, "the system account disabled", SCREEN_TIMEOUT, "document.querySelector('#accounts-table tr[data-name=\"so-dia-chinh\"]').classList.contains('disabled') && !!document.querySelector('#accounts-table tr[data-name=\"so-dia-chinh\"] button.enable')").await;
    screenshot(browser, "08-accounts.png", None).await;

    // The clerk signs in with the password set last; since the administrator knows it, she must make it
    // her own before the desk opens.
    click(browser, "#signout").await;
    find(browser, "#signin-name").await;
    until_js(
        browser,
        "the sign-in screen",
        SCREEN_TIMEOUT,
        "!document.getElementById('screen-signin').hidden",
    )
    .await;
    type_into(browser, "#signin-name", "hoa").await;
    type_into(
        browser,
        "#signin-password",
        &format!("{HOA_NEW_PASSWORD}\u{E007}"),
    )
    .await;
    until_js(browser, "the password to change first", SCREEN_TIMEOUT, "document.getElementById('password-dialog').open && !document.getElementById('password-required').hidden && document.getElementById('screen-desk').hidden").await;
    // Escape does not dismiss it.
    find(browser, "#password-current")
        .await
        .send_keys("\u{E00C}")
        .await
        .unwrap();
    assert_eq!(
        js(browser, "document.getElementById('password-dialog').open").await,
        Value::Bool(true)
    );
    // Closed some other way (a browser's second Escape), it opens again.
    js(
        browser,
        "(document.getElementById('password-dialog').close(), true)",
    )
    .await;
    until_js(
        browser,
        "the required change open again",
        SCREEN_TIMEOUT,
        "document.getElementById('password-dialog').open",
    )
    .await;
    screenshot(browser, "09-password-required.png", None).await;
    type_into(browser, "#password-current", HOA_NEW_PASSWORD).await;
    type_into(browser, "#password-new", HOA_OWN_PASSWORD).await;
    type_into(
        browser,
        "#password-again",
        &format!("{HOA_OWN_PASSWORD}\u{E007}"),
    )
    .await;
    until_signed_in(browser, "desk").await;
    until_js(browser, "the password changed", SCREEN_TIMEOUT, "!document.getElementById('password-dialog').open && document.getElementById('notice').textContent === 'Đã đổi mật khẩu.'").await;
}
