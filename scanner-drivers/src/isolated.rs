//! SANE scans in a helper process of their own.
//!
//! SANE backends are C code that runs a reader thread and, when a scan stops part-way (a jam, a cancel),
//! kills it with an asynchronous `pthread_cancel`. A thread killed at the wrong moment dies holding the
//! C library's dynamic-loader lock, and every thread that later needs that lock (any new thread, any
//! thread-local destructor) waits forever: the whole process hangs. SANE's own `test` backend does this on
//! about one simulated jam in eight. Scanning in a helper process keeps such a hang out of the archive: the
//! helper streams each sheet to the parent as it is read, and leaves with `_exit` (which takes no lock);
//! the parent keeps every sheet received, and stops a helper that goes silent.
//!
//! The helper is the calling program run again with arguments the program routes to [`serve_helper`]
//! (see [`use_helper`]); the stream is framed on its standard output: `page <json>\n<bytes>`,
//! `error <json>\n`, `stop <reason>\n`, `end\n`, after a first `ready\n` (or `fail <reason>\n`). A line
//! `cancel` on its standard input stops it after the sheet being read.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sane::{ScanSettings, Scanner};
use crate::scan::{RunningScan, wants_feeder};
use crate::{PageFormat, PageSource, ScannedPage, SourceError};

/// The program and arguments that run [`serve_helper`], set once by the program.
static HELPER: OnceLock<(PathBuf, Vec<String>)> = OnceLock::new();

/// Runs SANE scans in a helper: `program args... DEVICE SETTINGS_JSON` must call [`serve_helper`] with
/// the last two arguments. Without it, scans run in this process.
pub fn use_helper(program: PathBuf, args: Vec<String>) {
    let _ = HELPER.set((program, args));
}

/// A sheet with nothing from the helper for this long means the scanner or its driver hung.
const SILENCE_LIMIT: Duration = Duration::from_secs(300);
/// Largest page the helper may announce: a sheet is at most `MAX_SHEET_BYTES` raw, its PNG no bigger.
const MAX_FRAME_BYTES: usize = 1 << 30;

#[derive(Serialize, Deserialize)]
struct PageHeader {
    origin: String,
    dpi: Option<f32>,
    bytes: usize,
}

#[derive(Serialize, Deserialize)]
struct ErrorFrame {
    origin: String,
    reason: String,
}

/// The helper's side: scans `device` with `settings` (JSON of [`ScanSettings`]) and streams the sheets
/// to standard output; never returns.
pub fn serve_helper(device: &str, settings_json: &str) -> ! {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let code = match helper_scan(device, settings_json, &mut out) {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(out, "fail {}", one_line(&e));
            1
        }
    };
    let _ = out.flush();
    // A backend may have left the loader's lock held: exit without running anything that needs it.
    // SAFETY: _exit ends the process at once; everything to say has been flushed.
    unsafe { libc::_exit(code) }
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

fn helper_scan(device: &str, settings_json: &str, out: &mut impl Write) -> Result<(), String> {
    let settings: ScanSettings =
        serde_json::from_str(settings_json).map_err(|e| format!("scan settings: {e}"))?;
    let mut scanner = Scanner::open(device).map_err(|e| e.0)?;
    let dpi = scanner.configure(&settings).map_err(|e| e.0)?;
    let mut source = scanner.into_source(dpi, wants_feeder(&settings));
    let cancel = source.cancel_flag();
    let interruption = source.interruption();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        // A `cancel` line, or the parent gone: stop after this sheet.
        cancel.store(true, Ordering::Relaxed);
    });
    let io = |e: std::io::Error| format!("writing to the archive: {e}");
    writeln!(out, "ready").map_err(io)?;
    out.flush().map_err(io)?;
    while let Some(next) = source.next_page() {
        match next {
            Ok(page) => {
                let header = PageHeader {
                    origin: page.origin,
                    dpi: page.dpi,
                    bytes: page.bytes.len(),
                };
                let json = serde_json::to_string(&header).map_err(|e| e.to_string())?;
                writeln!(out, "page {json}").map_err(io)?;
                out.write_all(&page.bytes).map_err(io)?;
            }
            Err(e) => {
                let frame = ErrorFrame {
                    origin: e.origin,
                    reason: e.reason,
                };
                let json = serde_json::to_string(&frame).map_err(|e| e.to_string())?;
                writeln!(out, "error {json}").map_err(io)?;
            }
        }
        out.flush().map_err(io)?;
    }
    let stopped = interruption
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    if let Some(reason) = stopped {
        writeln!(out, "stop {}", one_line(&reason)).map_err(io)?;
    }
    writeln!(out, "end").map_err(io)?;
    out.flush().map_err(io)
}

/// What the parent reads from the helper.
enum Frame {
    Page(ScannedPage),
    Error(SourceError),
    Stop(String),
    End,
    Broken(String),
}

fn read_frames(
    mut stdout: BufReader<std::process::ChildStdout>,
    frames: std::sync::mpsc::Sender<Frame>,
) {
    loop {
        let mut line = String::new();
        let frame = match stdout.read_line(&mut line) {
            Ok(0) => Frame::Broken("the scanner's helper process ended without finishing".into()),
            Err(e) => Frame::Broken(format!("reading from the scanner's helper process: {e}")),
            Ok(_) => parse_frame(line.trim_end(), &mut stdout),
        };
        let last = matches!(frame, Frame::End | Frame::Broken(_));
        if frames.send(frame).is_err() || last {
            return;
        }
    }
}

fn parse_frame(line: &str, stdout: &mut impl Read) -> Frame {
    let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
    match kind {
        "page" => {
            let Ok(header) = serde_json::from_str::<PageHeader>(rest) else {
                return Frame::Broken("the scanner's helper sent an unreadable page header".into());
            };
            if header.bytes > MAX_FRAME_BYTES {
                return Frame::Broken(
                    "the scanner's helper announced an impossibly large page".into(),
                );
            }
            let mut bytes = vec![0u8; header.bytes];
            if let Err(e) = stdout.read_exact(&mut bytes) {
                return Frame::Broken(format!("the scanner's helper stopped mid-page: {e}"));
            }
            Frame::Page(ScannedPage {
                origin: header.origin,
                bytes: bytes.into(),
                format: PageFormat::Png,
                frame: 0,
                frames: 1,
                dpi: header.dpi,
                container: None,
                turn: None,
            })
        }
        "error" => match serde_json::from_str::<ErrorFrame>(rest) {
            Ok(e) => Frame::Error(SourceError {
                origin: e.origin,
                reason: e.reason,
            }),
            Err(_) => Frame::Broken("the scanner's helper sent an unreadable error".into()),
        },
        "stop" => Frame::Stop(rest.to_owned()),
        "end" => Frame::End,
        other => Frame::Broken(format!(
            "the scanner's helper sent something unexpected ({})",
            other.chars().take(40).collect::<String>()
        )),
    }
}

/// Sheets scanned by a helper process.
struct HelperSource {
    child: Child,
    frames: Receiver<Frame>,
    finished: Arc<AtomicBool>,
    device: String,
    delivered: usize,
    done: bool,
    interruption: Arc<Mutex<Option<String>>>,
}

impl HelperSource {
    fn stop(&mut self, reason: String) -> Option<Result<ScannedPage, SourceError>> {
        self.done = true;
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.delivered == 0 {
            return Some(Err(SourceError {
                origin: format!("scanner {}", self.device),
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

impl PageSource for HelperSource {
    fn next_page(&mut self) -> Option<Result<ScannedPage, SourceError>> {
        if self.done {
            return None;
        }
        match self.frames.recv_timeout(SILENCE_LIMIT) {
            Ok(Frame::Page(page)) => {
                self.delivered += 1;
                Some(Ok(page))
            }
            Ok(Frame::Error(e)) => {
                self.delivered += 1;
                Some(Err(e))
            }
            Ok(Frame::Stop(reason)) => {
                *self
                    .interruption
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reason);
                self.next_page()
            }
            Ok(Frame::End) => {
                self.done = true;
                let _ = self.child.wait();
                None
            }
            Ok(Frame::Broken(reason)) => self.stop(reason),
            Err(RecvTimeoutError::Timeout) => self.stop(format!(
                "the scanner sent nothing for {} minutes; check it and scan the remaining pages",
                SILENCE_LIMIT.as_secs() / 60
            )),
            Err(RecvTimeoutError::Disconnected) => {
                self.stop("the scanner's helper process ended without finishing".into())
            }
        }
    }
}

impl Drop for HelperSource {
    fn drop(&mut self) {
        self.finished.store(true, Ordering::Relaxed);
        if !self.done {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Tells the helper to stop once `cancel` is set, checking a few times a second until the scan is over.
fn pass_cancel(mut stdin: ChildStdin, cancel: &AtomicBool, finished: &AtomicBool) {
    while !finished.load(Ordering::Relaxed) {
        if cancel.load(Ordering::Relaxed) {
            let _ = writeln!(stdin, "cancel");
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts a SANE scan in the helper, if one is set; `None` to scan in this process.
pub(crate) fn start(device: &str, settings: &ScanSettings) -> Option<Result<RunningScan, String>> {
    let (program, args) = HELPER.get()?;
    Some(start_helper(program, args, device, settings))
}

fn start_helper(
    program: &PathBuf,
    args: &[String],
    device: &str,
    settings: &ScanSettings,
) -> Result<RunningScan, String> {
    let settings = serde_json::to_string(settings).map_err(|e| e.to_string())?;
    let mut child = Command::new(program)
        .args(args)
        .arg(device)
        .arg(settings)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start the scanner's helper process: {e}"))?;
    let stdin = child.stdin.take();
    let mut stdout = BufReader::new(
        child
            .stdout
            .take()
            .ok_or("the scanner's helper process has no output")?,
    );
    // The first line says whether the scanner opened.
    let mut first = String::new();
    let opened = stdout.read_line(&mut first);
    match (opened, first.trim_end().split_once(' ')) {
        (Ok(_), _) if first.trim_end() == "ready" => {}
        (Ok(_), Some(("fail", reason))) => {
            let _ = child.wait();
            return Err(reason.to_owned());
        }
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the scanner's helper process did not start".into());
        }
    }
    let (sender, frames) = channel();
    std::thread::spawn(move || read_frames(stdout, sender));
    let cancel = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    if let Some(stdin) = stdin {
        let (cancel, finished) = (Arc::clone(&cancel), Arc::clone(&finished));
        std::thread::spawn(move || pass_cancel(stdin, &cancel, &finished));
    }
    let interruption = Arc::new(Mutex::new(None));
    Ok(RunningScan {
        interruption: Arc::clone(&interruption),
        cancel: Arc::clone(&cancel),
        source: Box::new(HelperSource {
            child,
            frames,
            finished,
            device: device.to_owned(),
            delivered: 0,
            done: false,
            interruption,
        }),
    })
}
