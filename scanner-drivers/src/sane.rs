//! SANE (Scanner Access Now Easy): USB and most office scanners on Linux.
//!
//! libsane is loaded when first needed (`libsane.so.1`, Debian package `libsane1`), so sohoa builds and runs
//! without it and says so when a scanner is asked for. The C API is small and stable (SANE 1.0); the calls
//! are declared here and kept to this module, each wrapped so that the rest of sohoa sees owned Rust values
//! and [`SaneError`]s in words a clerk can act on ("paper jam in the document feeder").
//!
//! A scan is a [`SaneSource`]: each `next_page` starts the next sheet, reads it, and hands it over as a PNG
//! with its resolution, so OCR starts on the first sheet while the feeder still runs. A feeder that runs
//! empty ends the batch; a jam, an open cover or a vanished device ends it too, and the reason is kept
//! (see [`SaneSource::interruption`]) so the pages already scanned are kept and the dossier marked incomplete.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::page::{PageFormat, PageSource, ScannedPage, SourceError};

type Status = c_int;
type Handle = *mut c_void;

const GOOD: Status = 0;
const CANCELLED: Status = 2;
const EOF: Status = 5;
const NO_DOCS: Status = 7;

const TYPE_BOOL: c_int = 0;
const TYPE_INT: c_int = 1;
const TYPE_FIXED: c_int = 2;
const TYPE_STRING: c_int = 3;

const CONSTRAINT_RANGE: c_int = 1;
const CONSTRAINT_WORD_LIST: c_int = 2;
const CONSTRAINT_STRING_LIST: c_int = 3;

const CAP_SOFT_SELECT: c_int = 1;
const CAP_INACTIVE: c_int = 1 << 5;

const ACTION_GET: c_int = 0;
const ACTION_SET: c_int = 1;

const FRAME_GRAY: c_int = 0;
const FRAME_RGB: c_int = 1;

/// Most bytes read for one sheet (an A3 colour page at 600 dpi is about 210 MB).
const MAX_SHEET_BYTES: usize = 512 * 1024 * 1024;

#[repr(C)]
struct RawDevice {
    name: *const c_char,
    vendor: *const c_char,
    model: *const c_char,
    kind: *const c_char,
}

#[repr(C)]
struct RawRange {
    min: i32,
    max: i32,
    quant: i32,
}

#[repr(C)]
struct RawOption {
    name: *const c_char,
    title: *const c_char,
    desc: *const c_char,
    value_type: c_int,
    unit: c_int,
    size: c_int,
    cap: c_int,
    constraint_type: c_int,
    constraint: *const c_void,
}

#[repr(C)]
#[derive(Default)]
struct RawParameters {
    format: c_int,
    last_frame: c_int,
    bytes_per_line: c_int,
    pixels_per_line: c_int,
    lines: c_int,
    depth: c_int,
}

/// The libsane entry points sohoa uses.
struct Api {
    _lib: libloading::Library,
    get_devices: unsafe extern "C" fn(*mut *const *const RawDevice, c_int) -> Status,
    open: unsafe extern "C" fn(*const c_char, *mut Handle) -> Status,
    close: unsafe extern "C" fn(Handle),
    get_option_descriptor: unsafe extern "C" fn(Handle, c_int) -> *const RawOption,
    control_option: unsafe extern "C" fn(Handle, c_int, c_int, *mut c_void, *mut c_int) -> Status,
    get_parameters: unsafe extern "C" fn(Handle, *mut RawParameters) -> Status,
    start: unsafe extern "C" fn(Handle) -> Status,
    read: unsafe extern "C" fn(Handle, *mut u8, c_int, *mut c_int) -> Status,
    cancel: unsafe extern "C" fn(Handle),
}

/// Why SANE could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SaneError(pub String);

/// One libsane per process: `sane_init` once, never `sane_exit` (scanners stay usable until the process
/// ends). Calls are serialised by the lock, since SANE backends are not thread-safe.
fn api() -> Result<&'static Mutex<Api>, SaneError> {
    static API: OnceLock<Result<Mutex<Api>, SaneError>> = OnceLock::new();
    API.get_or_init(|| load().map(Mutex::new))
        .as_ref()
        .map_err(Clone::clone)
}

fn lock() -> Result<std::sync::MutexGuard<'static, Api>, SaneError> {
    Ok(api()?
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner))
}

fn load() -> Result<Api, SaneError> {
    let missing = |e: &dyn std::fmt::Display| {
        SaneError(format!(
            "SANE is not installed (Debian package libsane1), so no local scanner can be used: {e}"
        ))
    };
    // SAFETY: loading libsane runs its initialisers, which have no preconditions.
    let lib = unsafe { libloading::Library::new("libsane.so.1") }.map_err(|e| missing(&e))?;
    // SAFETY: each symbol is declared with the signature sane.h gives it (SANE 1.0).
    unsafe {
        let init: libloading::Symbol<unsafe extern "C" fn(*mut c_int, *const c_void) -> Status> =
            lib.get(b"sane_init\0").map_err(|e| missing(&e))?;
        let mut version = 0;
        let status = init(&mut version, std::ptr::null());
        if status != GOOD {
            return Err(SaneError(format!(
                "SANE did not start: {}",
                describe(status)
            )));
        }
        macro_rules! symbol {
            ($name:literal) => {
                *lib.get(concat!($name, "\0").as_bytes())
                    .map_err(|e| missing(&e))?
            };
        }
        Ok(Api {
            get_devices: symbol!("sane_get_devices"),
            open: symbol!("sane_open"),
            close: symbol!("sane_close"),
            get_option_descriptor: symbol!("sane_get_option_descriptor"),
            control_option: symbol!("sane_control_option"),
            get_parameters: symbol!("sane_get_parameters"),
            start: symbol!("sane_start"),
            read: symbol!("sane_read"),
            cancel: symbol!("sane_cancel"),
            _lib: lib,
        })
    }
}

/// A SANE status in words a clerk can act on.
fn describe(status: Status) -> String {
    match status {
        1 => "the scanner does not support this operation".into(),
        CANCELLED => "the scan was cancelled".into(),
        3 => "the scanner is busy (another program is using it); try again in a moment".into(),
        4 => "the scanner refused the settings, or is not connected".into(),
        EOF => "the scanner sent no more data".into(),
        6 => "paper jam in the document feeder: clear it and scan the remaining pages".into(),
        NO_DOCS => "the document feeder is empty: load the pages and scan again".into(),
        8 => "the scanner cover is open: close it and scan again".into(),
        9 => "the scanner stopped responding (cable or network); check it and scan again".into(),
        10 => "the scanner ran out of memory".into(),
        11 => "access to the scanner was denied (permissions)".into(),
        12 => "the scanner lamp is warming up; try again in a moment".into(),
        13 => "the scanner is locked for transport: unlock it".into(),
        other => format!("the scanner reported error {other}"),
    }
}

fn text(ptr: *const c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: SANE strings are NUL-terminated and live as long as their device or descriptor.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// A scanner SANE found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SaneDevice {
    /// The device name to open (`test:0`, `genesys:libusb:001:004`).
    pub name: String,
    /// Maker.
    pub vendor: String,
    /// Model.
    pub model: String,
    /// What kind of device (`flatbed scanner`, `virtual device`).
    pub kind: String,
}

/// The scanners SANE can reach now (local ones only when `local_only`).
pub fn devices(local_only: bool) -> Result<Vec<SaneDevice>, SaneError> {
    let api = lock()?;
    let mut list: *const *const RawDevice = std::ptr::null();
    // SAFETY: SANE fills `list` with a NULL-terminated array valid until the next call, read under the lock.
    let status = unsafe { (api.get_devices)(&mut list, c_int::from(local_only)) };
    if status != GOOD {
        return Err(SaneError(describe(status)));
    }
    let mut found = Vec::new();
    let mut i = 0;
    while !list.is_null() {
        // SAFETY: the array is NULL-terminated.
        let device = unsafe { *list.add(i) };
        if device.is_null() {
            break;
        }
        // SAFETY: a non-null entry points to a SANE_Device.
        let device = unsafe { &*device };
        found.push(SaneDevice {
            name: text(device.name),
            vendor: text(device.vendor),
            model: text(device.model),
            kind: text(device.kind),
        });
        i += 1;
    }
    Ok(found)
}

/// What a scanner offers.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Capabilities {
    /// Paper sources (`Flatbed`, `Automatic Document Feeder`, `ADF Duplex`).
    pub sources: Vec<String>,
    /// Colour modes (`Color`, `Gray`, `Lineart`).
    pub modes: Vec<String>,
    /// Resolutions offered, in dpi (a list, or the ends and step of a range).
    pub resolutions: Vec<u32>,
    /// Whether `resolutions` is a range `[min, max, step]` rather than a list.
    pub resolution_range: bool,
}

/// How to scan.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ScanSettings {
    /// `adf`, `flatbed`, or a source name the device lists. Default: the device's.
    pub source: Option<String>,
    /// Both sides of each sheet (a duplex feeder source).
    pub duplex: bool,
    /// Resolution in dpi. Default 300.
    pub dpi: Option<u32>,
    /// `color`, `gray`, `lineart`, or a mode name the device lists. Default: colour (Decree 30/2020).
    pub mode: Option<String>,
    /// Further device options by name, as `scanimage` would set them (`test-picture=Grid`).
    pub options: Vec<(String, String)>,
}

/// An open scanner.
pub struct Scanner {
    handle: Handle,
    name: String,
}

// SAFETY: the handle is only used under the process-wide SANE lock, from one thread at a time.
unsafe impl Send for Scanner {}

impl Drop for Scanner {
    fn drop(&mut self) {
        if let Ok(api) = lock() {
            // SAFETY: the handle is open; cancel ends any scan, close releases it.
            unsafe {
                (api.cancel)(self.handle);
                (api.close)(self.handle);
            }
        }
    }
}

/// An option's descriptor, copied out of SANE.
struct OptionInfo {
    index: c_int,
    name: String,
    value_type: c_int,
    size: usize,
    cap: c_int,
    strings: Vec<String>,
    words: Vec<i32>,
    range: Option<(i32, i32, i32)>,
}

impl Scanner {
    /// Opens the device `name` (as [`devices`] lists it).
    pub fn open(name: &str) -> Result<Self, SaneError> {
        let api = lock()?;
        let c_name =
            CString::new(name).map_err(|_| SaneError("a device name has no NUL".into()))?;
        let mut handle: Handle = std::ptr::null_mut();
        // SAFETY: valid C string and out-pointer.
        let status = unsafe { (api.open)(c_name.as_ptr(), &mut handle) };
        if status != GOOD || handle.is_null() {
            return Err(SaneError(format!(
                "cannot open scanner {name}: {}",
                describe(status)
            )));
        }
        Ok(Self {
            handle,
            name: name.to_owned(),
        })
    }

    fn options(&self, api: &Api) -> Vec<OptionInfo> {
        let mut count: i32 = 0;
        // SAFETY: option 0 is the option count, an Int.
        let status = unsafe {
            (api.control_option)(
                self.handle,
                0,
                ACTION_GET,
                (&raw mut count).cast(),
                std::ptr::null_mut(),
            )
        };
        if status != GOOD {
            return Vec::new();
        }
        (1..count.clamp(0, 1000))
            .filter_map(|index| {
                // SAFETY: index below the count; the descriptor lives while the handle is open.
                let raw = unsafe { (api.get_option_descriptor)(self.handle, index) };
                if raw.is_null() {
                    return None;
                }
                // SAFETY: non-null descriptor.
                let raw = unsafe { &*raw };
                let mut info = OptionInfo {
                    index,
                    name: text(raw.name),
                    value_type: raw.value_type,
                    size: usize::try_from(raw.size).unwrap_or(0),
                    cap: raw.cap,
                    strings: Vec::new(),
                    words: Vec::new(),
                    range: None,
                };
                if !raw.constraint.is_null() {
                    match raw.constraint_type {
                        CONSTRAINT_STRING_LIST => {
                            let list = raw.constraint.cast::<*const c_char>();
                            let mut i = 0;
                            // SAFETY: a NULL-terminated list of strings.
                            while let Some(s) =
                                Some(unsafe { *list.add(i) }).filter(|p| !p.is_null())
                            {
                                info.strings.push(text(s));
                                i += 1;
                                if i > 256 {
                                    break;
                                }
                            }
                        }
                        CONSTRAINT_WORD_LIST => {
                            let list = raw.constraint.cast::<i32>();
                            // SAFETY: the first word is the count of the words after it.
                            let n = unsafe { *list }.clamp(0, 256) as usize;
                            info.words = (1..=n).map(|i| unsafe { *list.add(i) }).collect();
                        }
                        CONSTRAINT_RANGE => {
                            // SAFETY: a SANE_Range.
                            let range = unsafe { &*raw.constraint.cast::<RawRange>() };
                            info.range = Some((range.min, range.max, range.quant));
                        }
                        _ => {}
                    }
                }
                Some(info)
            })
            .collect()
    }

    /// Sources, modes and resolutions the scanner offers.
    pub fn capabilities(&self) -> Result<Capabilities, SaneError> {
        let api = lock()?;
        let mut capabilities = Capabilities::default();
        for option in self.options(&api) {
            let fixed = option.value_type == TYPE_FIXED;
            let dpi = |w: i32| u32::try_from(if fixed { w >> 16 } else { w }).unwrap_or(0);
            match option.name.as_str() {
                "source" => capabilities.sources = option.strings,
                "mode" => capabilities.modes = option.strings,
                "resolution" => {
                    if let Some((min, max, quant)) = option.range {
                        capabilities.resolutions = vec![dpi(min), dpi(max), dpi(quant)];
                        capabilities.resolution_range = true;
                    } else {
                        capabilities.resolutions = option.words.iter().map(|&w| dpi(w)).collect();
                    }
                }
                _ => {}
            }
        }
        Ok(capabilities)
    }

    /// Applies `settings`; an option the device does not have, or a value it does not offer, is an error
    /// naming what it does offer.
    pub fn configure(&mut self, settings: &ScanSettings) -> Result<u32, SaneError> {
        let api = lock()?;
        // Setting one option may change others (a mode enables some): the descriptors are read afresh
        // before each setting, as SANE asks.
        let find = |name: &str| self.options(&api).into_iter().find(|o| o.name == name);
        let wanted_source = match (&settings.source, settings.duplex) {
            (Some(source), _) => Some(source.as_str()),
            (None, true) => Some("adf"),
            (None, false) => None,
        };
        if let Some(wanted) = wanted_source {
            let option = find("source")
                .ok_or_else(|| SaneError(format!("{} has no choice of paper source", self.name)))?;
            let value = pick_source(&option.strings, wanted, settings.duplex).ok_or_else(|| {
                SaneError(format!(
                    "{} has no source '{wanted}'{}; it offers: {}",
                    self.name,
                    if settings.duplex { " with duplex" } else { "" },
                    option.strings.join(", ")
                ))
            })?;
            self.set(&api, &option, &value)?;
        }
        let mode = settings.mode.as_deref().unwrap_or("color");
        if let Some(option) = find("mode") {
            let value = pick_mode(&option.strings, mode).ok_or_else(|| {
                SaneError(format!(
                    "{} has no mode '{mode}'; it offers: {}",
                    self.name,
                    option.strings.join(", ")
                ))
            })?;
            self.set(&api, &option, &value)?;
        }
        let dpi = settings.dpi.unwrap_or(300);
        if let Some(option) = find("resolution") {
            self.set(&api, &option, &dpi.to_string())?;
        }
        for (name, value) in &settings.options {
            let option = find(name)
                .ok_or_else(|| SaneError(format!("{} has no option '{name}'", self.name)))?;
            self.set(&api, &option, value)?;
        }
        Ok(dpi)
    }

    fn set(&self, api: &Api, option: &OptionInfo, value: &str) -> Result<(), SaneError> {
        if option.cap & CAP_INACTIVE != 0 || option.cap & CAP_SOFT_SELECT == 0 {
            return Err(SaneError(format!(
                "the option '{}' cannot be set now on {}",
                option.name, self.name
            )));
        }
        let bad = || {
            SaneError(format!(
                "'{value}' is not a valid value for '{}'",
                option.name
            ))
        };
        let mut buffer: Vec<u8> = match option.value_type {
            TYPE_STRING => {
                let mut bytes = value.as_bytes().to_vec();
                if bytes.len() + 1 > option.size.max(1) {
                    return Err(bad());
                }
                bytes.resize(option.size.max(1), 0);
                bytes
            }
            TYPE_INT | TYPE_BOOL => {
                let word: i32 = match value {
                    "yes" | "true" => 1,
                    "no" | "false" => 0,
                    v => v.parse().map_err(|_| bad())?,
                };
                word.to_ne_bytes().to_vec()
            }
            TYPE_FIXED => {
                let number: f64 = value.parse().map_err(|_| bad())?;
                ((number * 65536.0).round() as i32).to_ne_bytes().to_vec()
            }
            _ => return Err(bad()),
        };
        // A multi-word option gets its first word only; the rest keep their values.
        let mut info = 0;
        // SAFETY: the buffer holds a value of the option's type and size (strings padded to size).
        let status = unsafe {
            (api.control_option)(
                self.handle,
                option.index,
                ACTION_SET,
                buffer.as_mut_ptr().cast(),
                &mut info,
            )
        };
        if status != GOOD {
            return Err(SaneError(format!(
                "{} refused {}={value}: {}",
                self.name,
                option.name,
                describe(status)
            )));
        }
        Ok(())
    }

    /// Scans sheets as they come: one, from a flatbed; until the feeder is empty, from a feeder.
    pub fn into_source(self, dpi: u32, feeder: bool) -> SaneSource {
        SaneSource {
            scanner: self,
            dpi,
            feeder,
            sheet: 0,
            done: false,
            cancel: Arc::new(AtomicBool::new(false)),
            interruption: Arc::new(Mutex::new(None)),
        }
    }
}

fn pick_source(offered: &[String], wanted: &str, duplex: bool) -> Option<String> {
    let wanted_lower = wanted.to_ascii_lowercase();
    if let Some(exact) = offered.iter().find(|s| s.eq_ignore_ascii_case(wanted)) {
        return Some(exact.clone());
    }
    let is_feeder = |s: &str| {
        let s = s.to_ascii_lowercase();
        s.contains("adf") || s.contains("feeder")
    };
    let is_duplex = |s: &str| s.to_ascii_lowercase().contains("duplex");
    offered
        .iter()
        .find(|s| match wanted_lower.as_str() {
            "adf" | "feeder" => is_feeder(s) && is_duplex(s) == duplex,
            "flatbed" => s.to_ascii_lowercase().contains("flatbed"),
            _ => false,
        })
        .cloned()
}

fn pick_mode(offered: &[String], wanted: &str) -> Option<String> {
    let names: &[&str] = match wanted.to_ascii_lowercase().as_str() {
        "color" | "colour" => &["color", "colour", "24bit color"],
        "gray" | "grey" => &["gray", "grey", "grayscale", "greyscale"],
        "lineart" | "bw" => &["lineart", "binary", "black & white", "halftone"],
        _ => &[],
    };
    offered
        .iter()
        .find(|s| s.eq_ignore_ascii_case(wanted) || names.iter().any(|n| s.eq_ignore_ascii_case(n)))
        .cloned()
}

/// Sheets from a scanner, one page each, as they are scanned.
pub struct SaneSource {
    scanner: Scanner,
    dpi: u32,
    feeder: bool,
    sheet: u32,
    done: bool,
    cancel: Arc<AtomicBool>,
    interruption: Arc<Mutex<Option<String>>>,
}

impl SaneSource {
    /// Set it (from any thread) to stop after the sheet being read; the stop is recorded as an
    /// interruption.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.cancel)
    }

    /// Why the batch ended early (a jam, a cancel, a vanished device), once it has: the pages before are
    /// good, and the dossier is incomplete.
    pub fn interruption(&self) -> Arc<Mutex<Option<String>>> {
        Arc::clone(&self.interruption)
    }

    fn interrupt(&mut self, reason: String) -> Option<Result<ScannedPage, SourceError>> {
        self.done = true;
        if self.sheet == 0 {
            // Nothing scanned: the whole job failed, and says why.
            return Some(Err(SourceError {
                origin: format!("scanner {}", self.scanner.name),
                reason,
            }));
        }
        *self
            .interruption
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reason);
        None
    }

    fn read_sheet(&mut self) -> Result<Option<ScannedPage>, String> {
        let api = lock().map_err(|e| e.0)?;
        let handle = self.scanner.handle;
        // SAFETY: an open handle.
        let status = unsafe { (api.start)(handle) };
        if status == NO_DOCS && self.feeder && self.sheet > 0 {
            return Ok(None);
        }
        if status != GOOD {
            return Err(describe(status));
        }
        let mut parameters = RawParameters::default();
        // SAFETY: an out-pointer to a SANE_Parameters.
        let status = unsafe { (api.get_parameters)(handle, &mut parameters) };
        if status != GOOD {
            return Err(describe(status));
        }
        if parameters.format != FRAME_GRAY && parameters.format != FRAME_RGB {
            // SAFETY: an open handle.
            unsafe { (api.cancel)(handle) };
            return Err("the scanner sends colour in separate passes, which sohoa does not read; choose another mode".into());
        }
        let expected = usize::try_from(parameters.bytes_per_line)
            .ok()
            .zip(usize::try_from(parameters.lines).ok())
            .map(|(b, l)| b.saturating_mul(l))
            .filter(|&n| n > 0);
        let mut data = Vec::with_capacity(expected.unwrap_or(1 << 20).min(MAX_SHEET_BYTES));
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            if self.cancel.load(Ordering::Relaxed) {
                // SAFETY: an open handle.
                unsafe { (api.cancel)(handle) };
                return Err("the scan was cancelled by the clerk".into());
            }
            let mut length: c_int = 0;
            // SAFETY: the buffer has room for its length.
            let status = unsafe {
                (api.read)(
                    handle,
                    buffer.as_mut_ptr(),
                    buffer.len() as c_int,
                    &mut length,
                )
            };
            match status {
                GOOD => {
                    let n = usize::try_from(length).unwrap_or(0).min(buffer.len());
                    if data.len() + n > MAX_SHEET_BYTES {
                        // SAFETY: an open handle.
                        unsafe { (api.cancel)(handle) };
                        return Err(
                            "the scanner sent more data for one sheet than any page can have"
                                .into(),
                        );
                    }
                    data.extend_from_slice(&buffer[..n]);
                }
                EOF => break,
                other => {
                    // SAFETY: an open handle.
                    unsafe { (api.cancel)(handle) };
                    return Err(describe(other));
                }
            }
        }
        if !self.feeder {
            // SAFETY: a flatbed scan is one sheet; cancel ends the job.
            unsafe { (api.cancel)(handle) };
        }
        drop(api);
        let png = sheet_to_png(&parameters, &data, self.dpi)?;
        self.sheet += 1;
        Ok(Some(ScannedPage {
            origin: format!("{}, sheet {}", self.scanner.name, self.sheet),
            bytes: png.into(),
            format: PageFormat::Png,
            frame: 0,
            frames: 1,
            dpi: Some(self.dpi as f32),
            container: None,
            turn: None,
        }))
    }
}

impl PageSource for SaneSource {
    fn next_page(&mut self) -> Option<Result<ScannedPage, SourceError>> {
        if self.done {
            return None;
        }
        if self.cancel.load(Ordering::Relaxed) {
            return self.interrupt("the scan was cancelled by the clerk".into());
        }
        match self.read_sheet() {
            Ok(Some(page)) => {
                if !self.feeder {
                    self.done = true;
                }
                Some(Ok(page))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(reason) => self.interrupt(reason),
        }
    }
}

/// A sheet's samples as a PNG recording its resolution.
fn sheet_to_png(parameters: &RawParameters, data: &[u8], dpi: u32) -> Result<Vec<u8>, String> {
    let width =
        u32::try_from(parameters.pixels_per_line).map_err(|_| "the scanner sent no width")?;
    let bytes_per_line =
        usize::try_from(parameters.bytes_per_line).map_err(|_| "bad line length")?;
    if width == 0 || bytes_per_line == 0 {
        return Err("the scanner sent an empty sheet".into());
    }
    // A hand scanner does not know its height in advance: it is what arrived.
    let lines = data.len() / bytes_per_line;
    if lines == 0 {
        return Err("the scanner sent no lines".into());
    }
    let height = u32::try_from(lines).map_err(|_| "the sheet is too long")?;
    let rgb = parameters.format == FRAME_RGB;
    let channels = if rgb { 3 } else { 1 };
    let (depth, row_bytes) = match parameters.depth {
        1 if !rgb => (png::BitDepth::One, (width as usize).div_ceil(8)),
        8 => (png::BitDepth::Eight, width as usize * channels),
        16 => (png::BitDepth::Sixteen, width as usize * channels * 2),
        other => {
            return Err(format!(
                "the scanner sent {other}-bit samples, which sohoa does not read"
            ));
        }
    };
    if row_bytes > bytes_per_line {
        return Err("the scanner's lines are shorter than its width".into());
    }
    let mut samples = Vec::with_capacity(row_bytes * lines);
    for line in data.chunks_exact(bytes_per_line) {
        let row = &line[..row_bytes];
        match parameters.depth {
            // SANE lineart: 1 is black; PNG grey: 1 is white.
            1 => samples.extend(row.iter().map(|b| !b)),
            // SANE sends 16-bit samples in the machine's byte order; PNG wants big-endian.
            16 => samples.extend(
                row.chunks_exact(2)
                    .flat_map(|p| u16::from_ne_bytes([p[0], p[1]]).to_be_bytes()),
            ),
            _ => samples.extend_from_slice(row),
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(if rgb {
        png::ColorType::Rgb
    } else {
        png::ColorType::Grayscale
    });
    encoder.set_depth(depth);
    encoder.set_compression(png::Compression::Fast);
    let per_metre = (f64::from(dpi) / 0.0254).round() as u32;
    encoder.set_pixel_dims(Some(png::PixelDimensions {
        xppu: per_metre,
        yppu: per_metre,
        unit: png::Unit::Meter,
    }));
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer
        .write_image_data(&samples)
        .map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_and_modes_are_matched_by_what_clerks_say() {
        let sources = [
            "Flatbed".to_owned(),
            "ADF Front".to_owned(),
            "ADF Duplex".to_owned(),
        ];
        assert_eq!(
            pick_source(&sources, "adf", false).as_deref(),
            Some("ADF Front")
        );
        assert_eq!(
            pick_source(&sources, "adf", true).as_deref(),
            Some("ADF Duplex")
        );
        assert_eq!(
            pick_source(&sources, "flatbed", false).as_deref(),
            Some("Flatbed")
        );
        assert_eq!(pick_source(&sources, "tray", false), None);
        let modes = ["Lineart".to_owned(), "Gray".to_owned(), "Color".to_owned()];
        assert_eq!(pick_mode(&modes, "colour").as_deref(), Some("Color"));
        assert_eq!(pick_mode(&modes, "grey").as_deref(), Some("Gray"));
        assert_eq!(pick_mode(&modes, "bw").as_deref(), Some("Lineart"));
    }
}
