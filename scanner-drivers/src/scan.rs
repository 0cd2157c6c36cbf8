//! One way in for every scanner: a device name (`test:0`, `escl:http://host/eSCL`) and settings give a
//! running scan, whatever the driver.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use crate::PageSource;
use crate::escl::{EsclDevice, ScanRequest};
use crate::sane::{ScanSettings, Scanner};

/// A scan under way: its pages, why it stopped early (once it has), and a flag to cancel it.
pub struct RunningScan {
    /// The pages, as they come.
    pub source: Box<dyn PageSource>,
    /// Set when the scan stops early after delivering pages (jam, cancel, device gone).
    pub interruption: Arc<Mutex<Option<String>>>,
    /// Set it to stop after the page being read.
    pub cancel: Arc<AtomicBool>,
}

/// Whether `settings` ask for the document feeder.
pub fn wants_feeder(settings: &ScanSettings) -> bool {
    settings.duplex
        || settings.source.as_deref().is_some_and(|s| {
            !s.eq_ignore_ascii_case("flatbed") && !s.eq_ignore_ascii_case("platen")
        })
}

/// Starts a scan on `device`: `escl:URL` for an eSCL network scanner, anything else a SANE device. Blocks
/// while the device starts (seconds): call it off async threads.
pub fn start(device: &str, settings: &ScanSettings) -> Result<RunningScan, String> {
    let feeder = wants_feeder(settings);
    if let Some(url) = device.strip_prefix("escl:") {
        let grey = settings
            .mode
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("gray") || m.eq_ignore_ascii_case("grey"));
        let request = ScanRequest {
            input_source: if feeder { "Feeder" } else { "Platen" }.to_owned(),
            duplex: settings.duplex,
            color_mode: Some(if grey { "Grayscale8" } else { "RGB24" }.to_owned()),
            resolution: Some(settings.dpi.unwrap_or(300)),
            document_format: Some("image/jpeg".to_owned()),
        };
        let source = EsclDevice::new(url).scan(&request)?;
        return Ok(RunningScan {
            interruption: source.interruption(),
            cancel: source.cancel_flag(),
            source: Box::new(source),
        });
    }
    if let Some(started) = crate::isolated::start(device, settings) {
        return started;
    }
    let mut scanner = Scanner::open(device).map_err(|e| e.0)?;
    let dpi = scanner.configure(settings).map_err(|e| e.0)?;
    let source = scanner.into_source(dpi, feeder);
    Ok(RunningScan {
        interruption: source.interruption(),
        cancel: source.cancel_flag(),
        source: Box::new(source),
    })
}
