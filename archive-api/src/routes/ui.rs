//! The web UI for the scanning desk, the archive and the dashboard: static HTML, CSS and JavaScript
//! modules from `archive-api/ui/`, compiled into the binary, served at `/` and `/ui/{file}`. The pages
//! hold no data and need no token; the scripts call the `/v1` API with the token the person signs in with.
//! A strict Content-Security-Policy allows only this server's own scripts and styles (no inline code).

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;

use super::AppState;

/// Scripts, styles, API calls and images from this server only (page images are shown from `blob:` URLs
/// made of authenticated downloads); no inline code, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// A file of the UI: its name under `/ui/`, media type and bytes.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $media_type:expr) => {
        Asset {
            name: $name,
            media_type: $media_type,
            bytes: include_bytes!(concat!("../../ui/", $name)),
        }
    };
}

const SCRIPT: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", SCRIPT),
    asset!("api.js", SCRIPT),
    asset!("i18n.js", SCRIPT),
    asset!("desk.js", SCRIPT),
    asset!("archive.js", SCRIPT),
    asset!("dashboard.js", SCRIPT),
    asset!("accounts.js", SCRIPT),
    asset!("dom.js", SCRIPT),
];

pub(super) fn router() -> OpenApiRouter<AppState> {
    // Not in the OpenAPI document: these are pages for people, not API operations.
    OpenApiRouter::new()
        .route("/", axum::routing::get(index))
        .route("/ui", axum::routing::get(index))
        .route("/ui/", axum::routing::get(index))
        .route("/ui/{file}", axum::routing::get(file))
}

async fn index() -> Response {
    serve("index.html")
}

async fn file(Path(name): Path<String>) -> Response {
    serve(&name)
}

fn serve(name: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such file in the UI").into_response();
    };
    let mut response = asset.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.media_type),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Built into the binary: a new release must be fetched at once, so revalidate every time.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_served_with_its_type_and_the_policy() {
        for asset in ASSETS {
            let response = serve(asset.name);
            assert_eq!(response.status(), StatusCode::OK, "{}", asset.name);
            assert_eq!(response.headers()[header::CONTENT_TYPE], asset.media_type);
            assert!(
                response.headers()[header::CONTENT_SECURITY_POLICY]
                    .to_str()
                    .unwrap()
                    .contains("script-src 'self'")
            );
        }
        assert_eq!(serve("../Cargo.toml").status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn the_pages_hold_no_inline_script_or_style() {
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".html")) {
            let text = std::str::from_utf8(asset.bytes).unwrap();
            assert!(!text.contains("<script>"), "{}", asset.name);
            assert!(!text.contains(" style="), "{}", asset.name);
            assert!(!text.contains(" onclick="), "{}", asset.name);
        }
    }
}
