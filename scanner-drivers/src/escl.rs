//! eSCL (AirScan, Mopria): the HTTP and XML protocol of network scanners from every major maker.
//!
//! This module holds both sides, without any HTTP server of its own:
//! - the XML a scanner speaks ([`capabilities_xml`], [`status_xml`], [`parse_scan_settings`]), which
//!   `sohoa scanner share` serves to make a local scanner a network one;
//! - a client, [`EsclSource`], that scans from any eSCL device: `POST ScanJobs` with the settings, then
//!   `NextDocument` until the device says there are no more pages (404), waiting with back-off while it
//!   says "not yet" (503). A device that stops answering mid-job ends the job; the pages received are kept
//!   and the reason recorded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::page::{PageFormat, PageSource, ScannedPage, SourceError};

const SCAN_NS: &str = "http://schemas.hp.com/imaging/escl/2011/05/03";
const PWG_NS: &str = "http://www.pwg.org/schemas/2010/12/sm";

/// Largest page accepted from a device.
const MAX_PAGE_BYTES: u64 = 256 * 1024 * 1024;

/// What a scanner offers, as the bridge describes it.
#[derive(Debug, Clone)]
pub struct Offer {
    /// `Make Model` as clients show it.
    pub make_and_model: String,
    /// A stable identifier (UUID form).
    pub uuid: String,
    /// Whether there is a flatbed.
    pub platen: bool,
    /// Whether there is a document feeder.
    pub feeder: bool,
    /// Whether the feeder scans both sides.
    pub duplex: bool,
    /// Resolutions in dpi.
    pub resolutions: Vec<u32>,
    /// Colour (`RGB24`) and/or grey (`Grayscale8`).
    pub color_modes: Vec<&'static str>,
    /// Media types of the pages served.
    pub formats: Vec<&'static str>,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET /eSCL/ScannerCapabilities`.
pub fn capabilities_xml(offer: &Offer) -> String {
    let modes: String = offer
        .color_modes
        .iter()
        .map(|m| format!("<scan:ColorMode>{m}</scan:ColorMode>"))
        .collect();
    let formats: String = offer
        .formats
        .iter()
        .map(|f| format!("<pwg:DocumentFormat>{f}</pwg:DocumentFormat><scan:DocumentFormatExt>{f}</scan:DocumentFormatExt>"))
        .collect();
    let resolutions: String = offer
        .resolutions
        .iter()
        .map(|r| format!("<scan:DiscreteResolution><scan:XResolution>{r}</scan:XResolution><scan:YResolution>{r}</scan:YResolution></scan:DiscreteResolution>"))
        .collect();
    // Sizes in three-hundredths of an inch: up to A4/Legal.
    let caps = format!(
        "<scan:MinWidth>16</scan:MinWidth><scan:MaxWidth>2550</scan:MaxWidth>\
         <scan:MinHeight>16</scan:MinHeight><scan:MaxHeight>4200</scan:MaxHeight>\
         <scan:MaxScanRegions>1</scan:MaxScanRegions>\
         <scan:SettingProfiles><scan:SettingProfile>\
         <scan:ColorModes>{modes}</scan:ColorModes>\
         <scan:DocumentFormats>{formats}</scan:DocumentFormats>\
         <scan:SupportedResolutions><scan:DiscreteResolutions>{resolutions}</scan:DiscreteResolutions></scan:SupportedResolutions>\
         </scan:SettingProfile></scan:SettingProfiles>\
         <scan:SupportedIntents><scan:Intent>Document</scan:Intent><scan:Intent>TextAndGraphic</scan:Intent></scan:SupportedIntents>\
         <scan:MaxOpticalXResolution>{max}</scan:MaxOpticalXResolution><scan:MaxOpticalYResolution>{max}</scan:MaxOpticalYResolution>",
        max = offer.resolutions.iter().max().copied().unwrap_or(300),
    );
    let mut sources = String::new();
    if offer.platen {
        sources.push_str(&format!(
            "<scan:Platen><scan:PlatenInputCaps>{caps}</scan:PlatenInputCaps></scan:Platen>"
        ));
    }
    if offer.feeder {
        let duplex = if offer.duplex {
            format!("<scan:AdfDuplexInputCaps>{caps}</scan:AdfDuplexInputCaps>")
        } else {
            String::new()
        };
        sources.push_str(&format!(
            "<scan:Adf><scan:AdfSimplexInputCaps>{caps}</scan:AdfSimplexInputCaps>{duplex}<scan:FeederCapacity>50</scan:FeederCapacity></scan:Adf>"
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<scan:ScannerCapabilities xmlns:scan=\"{SCAN_NS}\" xmlns:pwg=\"{PWG_NS}\">\
         <pwg:Version>2.63</pwg:Version><pwg:MakeAndModel>{model}</pwg:MakeAndModel>\
         <pwg:SerialNumber>{uuid}</pwg:SerialNumber><scan:UUID>{uuid}</scan:UUID>{sources}</scan:ScannerCapabilities>",
        model = escape(&offer.make_and_model),
        uuid = escape(&offer.uuid),
    )
}

/// `GET /eSCL/ScannerStatus`: `Idle` or `Processing`.
pub fn status_xml(processing: bool, feeder: bool) -> String {
    let state = if processing { "Processing" } else { "Idle" };
    let adf = if feeder {
        "<scan:AdfState>ScannerAdfLoaded</scan:AdfState>"
    } else {
        ""
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<scan:ScannerStatus xmlns:scan=\"{SCAN_NS}\" xmlns:pwg=\"{PWG_NS}\">\
         <pwg:Version>2.63</pwg:Version><pwg:State>{state}</pwg:State>{adf}</scan:ScannerStatus>"
    )
}

/// What a client asked for in `POST /eSCL/ScanJobs`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanRequest {
    /// `Platen` or `Feeder`.
    pub input_source: String,
    /// Both sides, from the feeder.
    pub duplex: bool,
    /// `RGB24`, `Grayscale8`, `BlackAndWhite1`.
    pub color_mode: Option<String>,
    /// Dots per inch.
    pub resolution: Option<u32>,
    /// Media type asked for.
    pub document_format: Option<String>,
}

/// Parses a `ScanSettings` document; malformed XML is an error, unknown elements are ignored.
pub fn parse_scan_settings(xml: &str) -> Result<ScanRequest, String> {
    if xml.len() > 64 * 1024 {
        return Err("the scan settings are too long".into());
    }
    let doc =
        roxmltree::Document::parse(xml).map_err(|e| format!("malformed scan settings: {e}"))?;
    let find = |name: &str| {
        doc.descendants()
            .find(|n| n.is_element() && n.tag_name().name() == name)
            .and_then(|n| n.text())
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
    };
    if doc.root_element().tag_name().name() != "ScanSettings" {
        return Err("the body is not eSCL ScanSettings".into());
    }
    Ok(ScanRequest {
        input_source: find("InputSource").unwrap_or_else(|| "Platen".into()),
        duplex: find("Duplex").is_some_and(|d| d.eq_ignore_ascii_case("true")),
        color_mode: find("ColorMode"),
        resolution: find("XResolution").and_then(|r| r.parse().ok()),
        document_format: find("DocumentFormatExt").or_else(|| find("DocumentFormat")),
    })
}

/// The `ScanSettings` document a client sends.
pub fn scan_settings_xml(request: &ScanRequest) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<scan:ScanSettings xmlns:scan=\"{SCAN_NS}\" xmlns:pwg=\"{PWG_NS}\">\
         <pwg:Version>2.63</pwg:Version><scan:Intent>Document</scan:Intent>\
         <pwg:InputSource>{}</pwg:InputSource>",
        escape(&request.input_source)
    );
    if request.duplex {
        xml.push_str("<scan:Duplex>true</scan:Duplex>");
    }
    if let Some(mode) = &request.color_mode {
        xml.push_str(&format!(
            "<scan:ColorMode>{}</scan:ColorMode>",
            escape(mode)
        ));
    }
    if let Some(dpi) = request.resolution {
        xml.push_str(&format!(
            "<scan:XResolution>{dpi}</scan:XResolution><scan:YResolution>{dpi}</scan:YResolution>"
        ));
    }
    if let Some(format) = &request.document_format {
        xml.push_str(&format!(
            "<pwg:DocumentFormat>{f}</pwg:DocumentFormat><scan:DocumentFormatExt>{f}</scan:DocumentFormatExt>",
            f = escape(format)
        ));
    }
    xml.push_str("</scan:ScanSettings>");
    xml
}

/// What a device says it offers (the parts a clerk chooses from).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeviceOffer {
    /// Make and model.
    pub make_and_model: String,
    /// `Platen`, `Feeder` (and `Feeder duplex`).
    pub sources: Vec<String>,
    /// Colour modes.
    pub color_modes: Vec<String>,
    /// Resolutions in dpi.
    pub resolutions: Vec<u32>,
    /// Page formats.
    pub formats: Vec<String>,
}

/// Parses `ScannerCapabilities`.
pub fn parse_capabilities(xml: &str) -> Result<DeviceOffer, String> {
    let doc =
        roxmltree::Document::parse(xml).map_err(|e| format!("malformed capabilities: {e}"))?;
    let texts = |name: &str| -> Vec<String> {
        let mut values: Vec<String> = doc
            .descendants()
            .filter(|n| n.is_element() && n.tag_name().name() == name)
            .filter_map(|n| n.text().map(|t| t.trim().to_owned()))
            .collect();
        values.sort();
        values.dedup();
        values
    };
    let has = |name: &str| {
        doc.descendants()
            .any(|n| n.is_element() && n.tag_name().name() == name)
    };
    let mut sources = Vec::new();
    if has("Platen") {
        sources.push("Platen".to_owned());
    }
    if has("Adf") {
        sources.push("Feeder".to_owned());
    }
    if has("AdfDuplexInputCaps") {
        sources.push("Feeder duplex".to_owned());
    }
    let mut resolutions: Vec<u32> = texts("XResolution")
        .iter()
        .filter_map(|r| r.parse().ok())
        .collect();
    resolutions.sort_unstable();
    resolutions.dedup();
    Ok(DeviceOffer {
        make_and_model: texts("MakeAndModel").into_iter().next().unwrap_or_default(),
        sources,
        color_modes: texts("ColorMode"),
        resolutions,
        formats: texts("DocumentFormat"),
    })
}

/// The mDNS (DNS-SD) service type of eSCL scanners.
pub const SERVICE_TYPE: &str = "_uscan._tcp.local.";

/// eSCL scanners announcing themselves on the local network (mDNS `_uscan._tcp`), found within `wait`:
/// (instance name, base URL).
pub fn discover(wait: Duration) -> Result<Vec<(String, String)>, String> {
    let daemon =
        mdns_sd::ServiceDaemon::new().map_err(|e| format!("mDNS discovery cannot start: {e}"))?;
    let events = daemon
        .browse(SERVICE_TYPE)
        .map_err(|e| format!("mDNS discovery cannot start: {e}"))?;
    let deadline = Instant::now() + wait;
    let mut found: Vec<(String, String)> = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(event) = events.recv_timeout(left) else {
            break;
        };
        if let mdns_sd::ServiceEvent::ServiceResolved(service) = event {
            let Some(ip) = service.get_addresses_v4().into_iter().min() else {
                continue;
            };
            let path = service
                .txt_properties
                .get_property_val_str("rs")
                .unwrap_or("eSCL")
                .trim_matches('/')
                .to_owned();
            let url = format!("http://{ip}:{}/{path}", service.get_port());
            let name = service
                .get_fullname()
                .trim_end_matches(SERVICE_TYPE)
                .trim_end_matches('.')
                .replace("\\", "");
            if !found.iter().any(|(_, u)| u == &url) {
                found.push((name, url));
            }
        }
    }
    let _ = daemon.shutdown();
    found.sort();
    Ok(found)
}

/// Announces an eSCL scanner served at `ip:port` under `/eSCL` on the local network, until the returned
/// daemon is shut down or dropped with the process. An unspecified `ip` announces every interface's
/// address.
pub fn advertise(
    offer: &Offer,
    name: &str,
    ip: std::net::IpAddr,
    port: u16,
) -> Result<mdns_sd::ServiceDaemon, String> {
    let daemon = mdns_sd::ServiceDaemon::new().map_err(|e| format!("mDNS cannot start: {e}"))?;
    let mut sources = Vec::new();
    if offer.platen {
        sources.push("platen");
    }
    if offer.feeder {
        sources.push("adf");
    }
    let colours: Vec<&str> = offer
        .color_modes
        .iter()
        .map(|m| {
            if m.starts_with("RGB") {
                "color"
            } else {
                "grayscale"
            }
        })
        .collect();
    let properties = [
        ("txtvers", "1".to_owned()),
        ("vers", "2.63".to_owned()),
        ("rs", "eSCL".to_owned()),
        ("ty", offer.make_and_model.clone()),
        ("uuid", offer.uuid.clone()),
        ("pdl", offer.formats.join(",")),
        ("cs", colours.join(",")),
        ("is", sources.join(",")),
        ("duplex", if offer.duplex { "T" } else { "F" }.to_owned()),
    ];
    let host = format!("sohoa-{}.local.", &offer.uuid[..8.min(offer.uuid.len())]);
    let address = if ip.is_unspecified() {
        String::new()
    } else {
        ip.to_string()
    };
    let mut info = mdns_sd::ServiceInfo::new(
        SERVICE_TYPE,
        name,
        &host,
        address.as_str(),
        port,
        &properties[..],
    )
    .map_err(|e| format!("mDNS announcement is malformed: {e}"))?;
    if ip.is_unspecified() {
        info = info.enable_addr_auto();
    }
    daemon
        .register(info)
        .map_err(|e| format!("mDNS announcement failed: {e}"))?;
    Ok(daemon)
}

/// An eSCL device at `base` (`http://host:port/eSCL`).
pub struct EsclDevice {
    base: String,
    agent: ureq::Agent,
}

impl EsclDevice {
    /// A device at `base`; nothing is sent yet.
    pub fn new(base: &str) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout_read(Duration::from_secs(60))
            .redirects(0)
            .build();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            agent,
        }
    }

    /// The body of `GET {base}/{resource}`.
    fn get_text(&self, resource: &str) -> Result<String, String> {
        let url = format!("{}/{resource}", self.base);
        self.agent
            .get(&url)
            .call()
            .map_err(|e| unreachable_device(&self.base, &e))?
            .into_string()
            .map_err(|e| format!("{url}: {e}"))
    }

    /// What it offers.
    pub fn capabilities(&self) -> Result<DeviceOffer, String> {
        parse_capabilities(&self.get_text("ScannerCapabilities")?)
    }

    /// The device's state (`Idle`, `Processing`, `Testing`, `Stopped`, `Down`) and, with a feeder, the
    /// feeder's (`ScannerAdfLoaded`, `ScannerAdfEmpty`, `ScannerAdfJam`...).
    pub fn status(&self) -> Result<(String, Option<String>), String> {
        let body = self.get_text("ScannerStatus")?;
        let doc = roxmltree::Document::parse(&body)
            .map_err(|e| format!("malformed scanner status: {e}"))?;
        let text = |name: &str| {
            doc.descendants()
                .find(|n| n.is_element() && n.tag_name().name() == name)
                .and_then(|n| n.text())
                .map(|t| t.trim().to_owned())
        };
        Ok((
            text("State").unwrap_or_else(|| "Idle".into()),
            text("AdfState"),
        ))
    }

    /// Starts a job; pages then come from the returned source. A device that says it is busy, stopped,
    /// or (for a feeder job) has an empty or jammed feeder is refused with that reason before the job.
    pub fn scan(self, request: &ScanRequest) -> Result<EsclSource, String> {
        let (state, adf) = self.status()?;
        match state.as_str() {
            "Processing" | "Testing" => {
                return Err("the scanner is busy with another job; try again in a moment".into());
            }
            "Stopped" | "Down" => {
                return Err(format!(
                    "the scanner is {} and cannot scan; check it",
                    state.to_lowercase()
                ));
            }
            _ => {}
        }
        if request.input_source.eq_ignore_ascii_case("Feeder") {
            match adf.as_deref() {
                Some("ScannerAdfEmpty") => {
                    return Err(
                        "the document feeder is empty: load the pages and scan again".into(),
                    );
                }
                Some("ScannerAdfJam") => {
                    return Err("paper jam in the document feeder: clear it and scan again".into());
                }
                Some("ScannerAdfDoorOpen" | "ScannerAdfHatchOpen") => {
                    return Err("the document feeder is open: close it and scan again".into());
                }
                _ => {}
            }
        }
        let url = format!("{}/ScanJobs", self.base);
        let response = self
            .agent
            .post(&url)
            .set("Content-Type", "text/xml")
            .send_string(&scan_settings_xml(request))
            .map_err(|e| match e {
                ureq::Error::Status(503, _) => {
                    "the scanner is busy with another job; try again in a moment".to_owned()
                }
                ureq::Error::Status(409, _) => "the scanner refused the settings".to_owned(),
                other => unreachable_device(&self.base, &other),
            })?;
        let location = response
            .header("Location")
            .ok_or("the scanner accepted the job but did not say where it is")?
            .to_owned();
        // The Location may be absolute or a path.
        let job = if location.starts_with("http://") || location.starts_with("https://") {
            location
        } else {
            let origin = self
                .base
                .find("://")
                .and_then(|i| {
                    self.base[i + 3..]
                        .find('/')
                        .map(|j| &self.base[..i + 3 + j])
                })
                .unwrap_or(&self.base);
            format!("{origin}{location}")
        };
        Ok(EsclSource {
            device: self,
            job: job.trim_end_matches('/').to_owned(),
            resolution: request.resolution,
            pages: 0,
            done: false,
            give_up_after: Duration::from_secs(120),
            cancel: Arc::new(AtomicBool::new(false)),
            interruption: Arc::new(Mutex::new(None)),
        })
    }
}

fn unreachable_device(base: &str, error: &ureq::Error) -> String {
    match error {
        ureq::Error::Status(code, _) => format!("the scanner at {base} answered HTTP {code}"),
        ureq::Error::Transport(t) => {
            format!("the scanner at {base} cannot be reached ({t}); is it on and on the network?")
        }
    }
}

/// The pages of an eSCL job, as the device delivers them.
pub struct EsclSource {
    device: EsclDevice,
    job: String,
    resolution: Option<u32>,
    pages: u32,
    done: bool,
    give_up_after: Duration,
    cancel: Arc<AtomicBool>,
    interruption: Arc<Mutex<Option<String>>>,
}

impl EsclSource {
    /// Set it to stop after the page being fetched; the job is cancelled on the device.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.cancel)
    }

    /// Why the job ended early, once it has.
    pub fn interruption(&self) -> Arc<Mutex<Option<String>>> {
        Arc::clone(&self.interruption)
    }

    fn stop(&mut self, reason: String) -> Option<Result<ScannedPage, SourceError>> {
        self.done = true;
        let _ = self.device.agent.delete(&self.job).call();
        if self.pages == 0 {
            return Some(Err(SourceError {
                origin: format!("scanner {}", self.device.base),
                reason,
            }));
        }
        *self
            .interruption
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reason);
        None
    }
}

impl PageSource for EsclSource {
    fn next_page(&mut self) -> Option<Result<ScannedPage, SourceError>> {
        if self.done {
            return None;
        }
        let url = format!("{}/NextDocument", self.job);
        let started = Instant::now();
        let mut wait = Duration::from_millis(200);
        loop {
            if self.cancel.load(Ordering::Relaxed) {
                return self.stop("the scan was cancelled by the clerk".into());
            }
            match self.device.agent.get(&url).call() {
                Ok(response) => {
                    let declared = response.header("Content-Type").unwrap_or("").to_owned();
                    let mut bytes = Vec::new();
                    use std::io::Read;
                    if let Err(e) = response
                        .into_reader()
                        .take(MAX_PAGE_BYTES + 1)
                        .read_to_end(&mut bytes)
                    {
                        return self.stop(format!(
                            "the scanner stopped sending page {}: {e}",
                            self.pages + 1
                        ));
                    }
                    if bytes.len() as u64 > MAX_PAGE_BYTES {
                        return self
                            .stop("the scanner sent a page larger than any page can be".into());
                    }
                    let Some(format) = PageFormat::sniff(&bytes) else {
                        return self.stop(format!(
                            "the scanner sent page {} as '{declared}', which is not a PNG, JPEG or TIFF image",
                            self.pages + 1
                        ));
                    };
                    self.pages += 1;
                    return Some(Ok(ScannedPage {
                        origin: format!("{}, page {}", self.device.base, self.pages),
                        bytes: bytes.into(),
                        format,
                        frame: 0,
                        frames: 1,
                        dpi: self.resolution.map(|r| r as f32),
                        container: None,
                        turn: None,
                    }));
                }
                // No more pages: the job is over.
                Err(ureq::Error::Status(404, _)) => {
                    self.done = true;
                    if self.pages == 0 {
                        return Some(Err(SourceError {
                            origin: format!("scanner {}", self.device.base),
                            reason: "the scanner delivered no page: is the paper loaded?".into(),
                        }));
                    }
                    return None;
                }
                // Not ready yet: the page is being scanned.
                Err(ureq::Error::Status(503, _)) => {
                    if started.elapsed() > self.give_up_after {
                        return self.stop(format!(
                            "the scanner did not deliver page {} within {} s",
                            self.pages + 1,
                            self.give_up_after.as_secs()
                        ));
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    let reason = unreachable_device(&self.device.base, &e);
                    return self.stop(reason);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_junk_is_refused() {
        let request = ScanRequest {
            input_source: "Feeder".into(),
            duplex: true,
            color_mode: Some("RGB24".into()),
            resolution: Some(300),
            document_format: Some("image/png".into()),
        };
        assert_eq!(
            parse_scan_settings(&scan_settings_xml(&request)).unwrap(),
            request
        );
        assert!(parse_scan_settings("<not-closed").is_err());
        assert!(parse_scan_settings("<Other/>").is_err());
    }

    #[test]
    fn capabilities_read_back_what_the_bridge_offers() {
        let offer = Offer {
            make_and_model: "sohoa bridge <test:0>".into(),
            uuid: "4509a320-00a0-008f-00b6-002507510eca".into(),
            platen: true,
            feeder: true,
            duplex: false,
            resolutions: vec![150, 300],
            color_modes: vec!["RGB24", "Grayscale8"],
            formats: vec!["image/png", "image/jpeg"],
        };
        let read = parse_capabilities(&capabilities_xml(&offer)).unwrap();
        assert_eq!(read.make_and_model, "sohoa bridge <test:0>");
        assert_eq!(read.sources, ["Platen", "Feeder"]);
        assert_eq!(read.resolutions, [150, 300]);
        assert_eq!(read.color_modes, ["Grayscale8", "RGB24"]);
    }
}
