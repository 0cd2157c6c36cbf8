//! Typed settings, layered: defaults in code, then a TOML file, then `SOHOA_SECTION__KEY` environment
//! variables, then command-line flags (and the single-name variables that stand for them: `SOHOA_DATA`,
//! `SOHOA_LISTEN`, `SOHOA_THREADS`, `SOHOA_OCR_LANGUAGES`, `SOHOA_KEEP_BLANK_PAGES`).
//!
//! `sohoa.example.toml` at the top of the repository lists every key with its variable and default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Everything an operator can set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Data directory: database, object store, search index, work files. Default `sohoa-data`.
    pub data: PathBuf,
    /// Where the database and the objects live.
    pub storage: Storage,
    /// The HTTP service.
    pub server: Server,
    /// OCR.
    pub ocr: Ocr,
    /// Page cleanup and quality flags.
    pub cleanup: Cleanup,
    /// What goes into the packaged PDF.
    pub packaging: Packaging,
    /// Bounds on input.
    pub limits: Limits,
    /// Scanners.
    pub scanners: Scanners,
    /// Units, by code: the name on certified copies and the certificate they are signed with. A unit not
    /// listed signs with the archive's development certificate (no legal value). Default none.
    pub units: std::collections::BTreeMap<String, Unit>,
}

/// `[scanners]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scanners {
    /// eSCL (AirScan) network scanners listed by `sohoa scanners` and the API besides those found over
    /// mDNS, by URL (`http://192.168.1.40/eSCL`). Default none.
    pub escl: Vec<String>,
}

/// `[units."000.00.15.H27"]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Unit {
    /// The unit's name on the certification line (`UBND xã Tân Phú`).
    pub name: String,
    /// PEM file: the unit's signing certificate, then its issuers.
    pub certificate: PathBuf,
    /// PEM file: the certificate's private key (PKCS#8, SEC 1 or PKCS#1; P-256 or RSA).
    pub key: PathBuf,
}

/// `[storage]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Storage {
    /// The database URL: empty for SQLite in the data directory, or `postgres://USER:PASSWORD@HOST/DB`
    /// (several servers and workers share one). `DATABASE_URL` in the environment, when set, wins.
    /// Default empty.
    pub database: String,
    /// The object store URL: empty for `objects/` in the data directory, `s3://BUCKET/PREFIX` for any
    /// S3-compatible store (credentials from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`), `file:///PATH`,
    /// or `memory://` (tests). Default empty.
    pub objects: String,
    /// S3 settings: `endpoint`, `region`, `allow_http`, ... (object_store's names; values as text, flags
    /// or numbers). Default none.
    pub s3: std::collections::BTreeMap<String, serde_json::Value>,
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Server {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Days between background fixity checks of each stored object (0: none). Default 30.
    pub fixity_days: u32,
}

/// `[ocr]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ocr {
    /// Tesseract languages joined by `+`. Default `vie+eng`.
    pub languages: String,
    /// Worker threads, each with its own engine; 0 means one per core. Default 0.
    pub threads: usize,
    /// Folder of `.traineddata` files; empty means Tesseract's own. Default empty.
    pub tessdata: PathBuf,
    /// Longest one reading of a page may take, in seconds, before it is stopped and the page reported;
    /// 0 means no limit. Default 120.
    pub page_timeout_seconds: f64,
}

/// `[cleanup]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cleanup {
    /// Find which way up each page is and turn it. Default true.
    pub detect_orientation: bool,
    /// Below this orientation confidence every way up is read and the best kept. Default 2.0.
    pub orientation_confidence: f32,
    /// Pages with a mean OCR confidence below this are flagged. Default 60.
    pub low_confidence: f32,
    /// Pages scanned under this resolution are flagged. Default 200.
    pub min_dpi: f32,
    /// The largest skew straightened, either way, in degrees. Default 12.
    pub max_skew_degrees: f32,
}

/// `[packaging]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Packaging {
    /// Put blank pages into the PDF too. Default false.
    pub keep_blank_pages: bool,
    /// How colour and grey pages that are not already JPEG go into the PDF: `jpeg` or `lossless`.
    /// Scanner JPEGs always go in as they are, pure black and white as CCITT G4. Default `jpeg`.
    pub images: Images,
    /// JPEG quality (1-100) when `images = "jpeg"`. Default 60, about what OCRmyPDF's PDF/A output gives;
    /// the lossless master is always kept.
    pub jpeg_quality: u8,
}

/// `packaging.images`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Images {
    /// One JPEG pass at `jpeg_quality`.
    #[default]
    Jpeg,
    /// Deflate: exact pixels, several times larger.
    Lossless,
}

impl Default for Packaging {
    fn default() -> Self {
        Self {
            keep_blank_pages: false,
            images: Images::Jpeg,
            jpeg_quality: 60,
        }
    }
}

/// `[limits]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Most pixels in one page. Default 72,000,000 (A3 at 600 dpi).
    pub max_pixels: u64,
    /// Widest or tallest page, in pixels. Default 16,000.
    pub max_side: u32,
    /// Most memory decoding one page may take, in bytes. Default 1,073,741,824 (1 GiB).
    pub max_decoded_bytes: u64,
    /// Largest file read, in bytes. Default 536,870,912 (512 MiB).
    pub max_file_bytes: u64,
    /// Most pages in one import. Default 5,000.
    pub max_pages: usize,
    /// Largest HTTP upload (one request), in bytes. Default 1,073,741,824 (1 GiB).
    pub max_upload_bytes: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data: PathBuf::from("sohoa-data"),
            storage: Storage::default(),
            server: Server::default(),
            ocr: Ocr::default(),
            cleanup: Cleanup::default(),
            packaging: Packaging::default(),
            limits: Limits::default(),
            scanners: Scanners::default(),
            units: std::collections::BTreeMap::new(),
        }
    }
}

impl Default for Server {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            fixity_days: 30,
        }
    }
}

impl Default for Ocr {
    fn default() -> Self {
        Self {
            languages: pipeline::OcrSettings::default().languages,
            threads: 0,
            tessdata: PathBuf::new(),
            page_timeout_seconds: 120.0,
        }
    }
}

impl Default for Cleanup {
    fn default() -> Self {
        let pipeline = pipeline::PipelineOptions::default();
        let cleanup = pipeline::CleanupSettings::default();
        Self {
            detect_orientation: pipeline.detect_orientation,
            orientation_confidence: pipeline.orientation_confidence,
            low_confidence: pipeline.low_confidence,
            min_dpi: cleanup.min_dpi,
            max_skew_degrees: cleanup.max_skew_degrees,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        let decode = pipeline::DecodeLimits::default();
        let import = scanner_drivers::ImportLimits::default();
        Self {
            max_pixels: decode.max_pixels,
            max_side: decode.max_side,
            max_decoded_bytes: decode.max_alloc,
            max_file_bytes: import.max_file_bytes,
            max_pages: import.max_pages,
            max_upload_bytes: 1024 * 1024 * 1024,
        }
    }
}

impl Settings {
    /// Defaults, then `file` (or `./sohoa.toml` when there is one and no file is named), then
    /// `SOHOA_SECTION__KEY` variables.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        match file {
            Some(path) => {
                if !path.is_file() {
                    anyhow::bail!("the settings file {} does not exist", path.display());
                }
                figment = figment.merge(Toml::file(path));
            }
            None if Path::new("sohoa.toml").is_file() => {
                figment = figment.merge(Toml::file("sohoa.toml"));
            }
            None => {}
        }
        // Only sectioned names: the single-name variables belong to the flags they stand for.
        let env = Env::prefixed("SOHOA_")
            .filter(|key| key.as_str().contains("__"))
            .split("__");
        let settings: Self = figment
            .merge(env)
            .extract()
            .context("invalid settings (file or SOHOA_SECTION__KEY variables)")?;
        if !(1..=100).contains(&settings.packaging.jpeg_quality) {
            anyhow::bail!(
                "invalid settings: packaging.jpeg_quality is {}; give a JPEG quality from 1 to 100",
                settings.packaging.jpeg_quality
            );
        }
        Ok(settings)
    }

    /// The database URL, if not the embedded SQLite: `DATABASE_URL`, else `[storage] database`.
    pub fn database_url(&self) -> Option<String> {
        std::env::var("DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty())
            .or_else(|| (!self.storage.database.is_empty()).then(|| self.storage.database.clone()))
    }

    /// The S3 settings as text, as the object store takes them.
    pub fn s3_options(&self) -> std::collections::BTreeMap<String, String> {
        self.storage
            .s3
            .iter()
            .map(|(key, value)| {
                let text = match value {
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                (key.clone(), text)
            })
            .collect()
    }

    /// The pipeline options these settings give.
    pub fn pipeline(&self) -> pipeline::PipelineOptions {
        let mut options = pipeline::PipelineOptions::default();
        if self.ocr.threads > 0 {
            options.threads = self.ocr.threads;
            options.window = self.ocr.threads * 2;
        }
        options.ocr.languages = self.ocr.languages.clone();
        options.ocr.tessdata =
            (!self.ocr.tessdata.as_os_str().is_empty()).then(|| self.ocr.tessdata.clone());
        options.ocr.page_timeout = (self.ocr.page_timeout_seconds > 0.0)
            .then(|| std::time::Duration::try_from_secs_f64(self.ocr.page_timeout_seconds).ok())
            .flatten();
        options.detect_orientation = self.cleanup.detect_orientation;
        options.orientation_confidence = self.cleanup.orientation_confidence;
        options.low_confidence = self.cleanup.low_confidence;
        options.cleanup.min_dpi = self.cleanup.min_dpi;
        options.cleanup.max_skew_degrees = self.cleanup.max_skew_degrees;
        options.decode.max_pixels = self.limits.max_pixels;
        options.decode.max_side = self.limits.max_side;
        options.decode.max_alloc = self.limits.max_decoded_bytes;
        options.images = match self.packaging.images {
            Images::Jpeg => pipeline::ImagePolicy::Jpeg {
                quality: self.packaging.jpeg_quality.clamp(1, 100),
            },
            Images::Lossless => pipeline::ImagePolicy::Lossless,
        };
        options
    }

    /// The units' certificates for certified copies. A unit with a name but no certificate signs with the
    /// development certificate and keeps its name.
    pub fn unit_certificates(
        &self,
    ) -> anyhow::Result<std::collections::BTreeMap<String, archive_api::copies::UnitCertificate>>
    {
        let mut units = std::collections::BTreeMap::new();
        for (code, unit) in &self.units {
            archive_api::codes::UnitCode::parse(code)
                .with_context(|| format!("[units.\"{code}\"] in the settings"))?;
            let has_certificate = !unit.certificate.as_os_str().is_empty();
            let has_key = !unit.key.as_os_str().is_empty();
            if has_certificate != has_key {
                anyhow::bail!(
                    "[units.\"{code}\"] in the settings: give both `certificate` and `key`, or neither"
                );
            }
            units.insert(
                code.clone(),
                archive_api::copies::UnitCertificate {
                    name: unit.name.clone(),
                    certificate: unit.certificate.clone(),
                    key: unit.key.clone(),
                },
            );
        }
        Ok(units)
    }

    /// The file-import limits these settings give.
    pub fn import_limits(&self) -> scanner_drivers::ImportLimits {
        scanner_drivers::ImportLimits {
            max_file_bytes: self.limits.max_file_bytes,
            max_pages: self.limits.max_pages,
            max_pixels: self.limits.max_pixels,
            ..scanner_drivers::ImportLimits::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_settings_file_lists_the_defaults() {
        let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/sohoa.example.toml");
        let from_sample: Settings = Figment::from(Toml::file(sample)).extract().unwrap();
        assert_eq!(from_sample, Settings::default());
    }

    #[test]
    fn an_unknown_key_is_an_error_not_ignored() {
        let bad: Result<Settings, _> =
            Figment::from(Toml::string("[ocr]\nlanguage = \"eng\"\n")).extract();
        assert!(bad.is_err());
    }
}
