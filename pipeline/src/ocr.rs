//! Optical character recognition with Tesseract: one engine per worker thread, created once and reused.

use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::path::PathBuf;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use image::GrayImage;
use serde::{Deserialize, Serialize};
use tesseract_sys as sys;
use unicode_normalization::UnicodeNormalization;

/// Which Tesseract models to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcrSettings {
    /// Tesseract language codes joined by `+`. Default `vie+eng`.
    pub languages: String,
    /// Folder holding the `.traineddata` files; `None` uses Tesseract's compiled-in default (on Debian
    /// `/usr/share/tesseract-ocr/5/tessdata`), or `TESSDATA_PREFIX` when set.
    pub tessdata: Option<PathBuf>,
    /// Longest one reading of a page may take; a stuck or pathological page is then stopped and reported,
    /// and the worker goes on. `None`: no limit. Default two minutes (a normal page takes seconds).
    pub page_timeout: Option<Duration>,
}

impl Default for OcrSettings {
    fn default() -> Self {
        Self {
            languages: "vie+eng".to_owned(),
            tessdata: None,
            page_timeout: Some(Duration::from_secs(120)),
        }
    }
}

/// Why OCR failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OcrError {
    /// The engine could not start, usually because a language's model is not installed.
    #[error(
        "the OCR engine could not start with languages '{languages}': is the language data installed \
         (Debian: tesseract-ocr-vie, tesseract-ocr-eng)?"
    )]
    Engine {
        /// The languages asked for.
        languages: String,
    },
    /// Tesseract failed on this page.
    #[error("the OCR engine failed on this page: {0}")]
    Recognise(String),
    /// The page is too large for the engine's interface.
    #[error("the page is too large for the OCR engine")]
    TooLarge,
    /// Reading the page took longer than the configured limit and was stopped.
    #[error(
        "reading the page took longer than {0} and was stopped; rescan it, or raise ocr.page_timeout_seconds"
    )]
    TimedOut(String),
}

/// A recognised word with its box on the page, in pixels from the top left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Word {
    /// The word, NFC-normalised.
    pub text: String,
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
    /// Tesseract's confidence, 0-100.
    pub conf: f32,
    /// Which line of the page the word is on, from 0, in reading order.
    pub line: u32,
}

/// What OCR read on a page.
#[derive(Debug, Clone, Default)]
pub struct PageText {
    /// The page's text, NFC-normalised: words joined by spaces, lines by newlines, blocks by a blank line.
    pub text: String,
    /// Every word with its box.
    pub words: Vec<Word>,
    /// Mean word confidence, 0-100 (0 for a page without words).
    pub confidence: f32,
}

thread_local! {
    /// This thread's engine and the settings it was made with. Starting an engine costs more than
    /// recognising a small page, so each worker thread keeps one for its lifetime.
    static ENGINE: RefCell<Option<(OcrSettings, Engine)>> = const { RefCell::new(None) };
}

/// A Tesseract engine (`TessBaseAPI`) driven through its C API, which, unlike the `tesseract` crate,
/// lets a reading be given a deadline.
struct Engine(NonNull<sys::TessBaseAPI>);

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: the handle is live and dropped once.
        unsafe {
            sys::TessBaseAPIEnd(self.0.as_ptr());
            sys::TessBaseAPIDelete(self.0.as_ptr());
        }
    }
}

fn start_engine(settings: &OcrSettings) -> Result<Engine, OcrError> {
    let failed = || OcrError::Engine {
        languages: settings.languages.clone(),
    };
    // SAFETY: TessBaseAPICreate has no preconditions; it returns null only when out of memory.
    let handle = NonNull::new(unsafe { sys::TessBaseAPICreate() }).ok_or_else(failed)?;
    let engine = Engine(handle);
    let datapath = settings
        .tessdata
        .as_ref()
        .and_then(|p| CString::new(p.to_string_lossy().into_owned()).ok());
    let languages = CString::new(settings.languages.clone()).map_err(|_| failed())?;
    // SAFETY: the handle is live; the strings are NUL-terminated and outlive the calls (a null datapath
    // means Tesseract's default).
    let status = unsafe {
        sys::TessBaseAPIInit3(
            handle.as_ptr(),
            datapath.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
            languages.as_ptr(),
        )
    };
    if status != 0 {
        return Err(failed());
    }
    // Word boxes come from the TSV renderer; keep Tesseract's own chatter off stderr.
    // SAFETY: live handle, NUL-terminated strings.
    unsafe {
        sys::TessBaseAPISetVariable(
            handle.as_ptr(),
            c"debug_file".as_ptr(),
            c"/dev/null".as_ptr(),
        );
    }
    Ok(engine)
}

impl Engine {
    fn read(
        &mut self,
        image: &GrayImage,
        width: i32,
        height: i32,
        dpi: f32,
        timeout: Option<Duration>,
    ) -> Result<String, OcrError> {
        let handle = self.0.as_ptr();
        // SAFETY: the handle is live; the pixel buffer is width × height bytes of 8-bit grey, rows `width`
        // bytes apart, and outlives every call below (Clear drops Tesseract's reference to it).
        unsafe {
            sys::TessBaseAPISetImage(handle, image.as_raw().as_ptr(), width, height, 1, width);
            sys::TessBaseAPISetSourceResolution(handle, dpi.round() as i32);
        }
        let result = (|| {
            // SAFETY: a monitor is a plain struct Tesseract allocates; deleted below.
            let monitor = unsafe { sys::TessMonitorCreate() };
            if let Some(limit) = timeout {
                let millis = i32::try_from(limit.as_millis()).unwrap_or(i32::MAX).max(1);
                // SAFETY: a live monitor.
                unsafe { sys::TessMonitorSetDeadlineMSecs(monitor, millis) };
            }
            let started = Instant::now();
            // SAFETY: live handle with an image set; the monitor is live or null.
            let status = unsafe { sys::TessBaseAPIRecognize(handle, monitor) };
            // SAFETY: created above, not used after.
            unsafe { sys::TessMonitorDelete(monitor) };
            if let Some(limit) = timeout.filter(|&limit| started.elapsed() >= limit) {
                return Err(OcrError::TimedOut(if limit < Duration::from_secs(1) {
                    format!("{} ms", limit.as_millis())
                } else {
                    format!("{} s", limit.as_secs())
                }));
            }
            if status != 0 {
                return Err(OcrError::Recognise(
                    "Tesseract could not read the page".into(),
                ));
            }
            // SAFETY: live handle after a successful Recognize; the text is freed with TessDeleteText.
            let tsv = unsafe { sys::TessBaseAPIGetTsvText(handle, 0) };
            if tsv.is_null() {
                return Err(OcrError::Recognise("Tesseract gave no text layout".into()));
            }
            // SAFETY: a NUL-terminated string from Tesseract.
            let text = unsafe { CStr::from_ptr(tsv) }
                .to_string_lossy()
                .into_owned();
            // SAFETY: allocated by Tesseract for us, freed once.
            unsafe { sys::TessDeleteText(tsv) };
            Ok(text)
        })();
        // SAFETY: live handle; clears the image and results, keeps the loaded models.
        unsafe { sys::TessBaseAPIClear(handle) };
        result
    }
}

/// Makes OCR on the calling thread single-threaded.
///
/// Debian's libtesseract is built with OpenMP, and its LSTM runs each step on four threads
/// (`num_threads(4)` in the code, which overrides `omp_set_num_threads`). With one engine per worker thread
/// that puts four times as many threads as cores on the machine, and libgomp's spin-waiting then makes a
/// noisy page take a minute instead of a second. `OMP_THREAD_LIMIT` cannot fix this from inside the
/// process: libgomp reads the environment when it is loaded, before `main`. Allowing no active parallel
/// levels makes every parallel region run on the thread that meets it. The symbol is looked up at run time,
/// so a Tesseract built without OpenMP needs nothing.
pub fn single_threaded_ocr_on_this_thread() {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only reads the loaded symbol tables.
    let symbol = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"omp_set_max_active_levels".as_ptr()) };
    if symbol.is_null() {
        return;
    }
    // SAFETY: `omp_set_max_active_levels` has the C signature `void omp_set_max_active_levels(int)` in
    // every OpenMP runtime; it only changes how many nested parallel regions may run in parallel.
    let set_max_active_levels: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(symbol) };
    set_max_active_levels(0);
}

/// Checks that an engine starts with `settings`, so a missing language fails the job up front, not on
/// every page.
pub fn check_engine(settings: &OcrSettings) -> Result<(), OcrError> {
    start_engine(settings).map(drop)
}

/// Recognises the text on `image`, scanned at `dpi`, with this thread's engine.
pub fn recognise(
    image: &GrayImage,
    dpi: f32,
    settings: &OcrSettings,
) -> Result<PageText, OcrError> {
    let width = i32::try_from(image.width()).map_err(|_| OcrError::TooLarge)?;
    let height = i32::try_from(image.height()).map_err(|_| OcrError::TooLarge)?;
    ENGINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let mut engine = match slot.take() {
            Some((made_with, engine)) if &made_with == settings => engine,
            _ => start_engine(settings)?,
        };
        let tsv = engine.read(image, width, height, dpi, settings.page_timeout);
        // An engine stopped mid-page is not trusted for the next one: the next page starts a fresh one.
        if !matches!(tsv, Err(OcrError::TimedOut(_))) {
            *slot = Some((settings.clone(), engine));
        }
        Ok(parse_tsv(&tsv?))
    })
}

/// Reads Tesseract's TSV output (`level page block paragraph line word left top width height conf text`),
/// keeping the words (level 5) and the layout needed to rebuild the text.
pub fn parse_tsv(tsv: &str) -> PageText {
    let mut words = Vec::new();
    let mut text = String::new();
    let mut last_line: Option<(u32, u32, u32)> = None;
    let mut line_index = 0u32;
    for row in tsv.lines() {
        let cols: Vec<&str> = row.splitn(12, '\t').collect();
        if cols.len() != 12 || cols[0] != "5" {
            continue;
        }
        let word: String = cols[11].trim().nfc().collect();
        let number = |i: usize| cols[i].trim().parse::<u32>().ok();
        let (Some(block), Some(par), Some(line), Some(x), Some(y), Some(w), Some(h)) = (
            number(2),
            number(3),
            number(4),
            number(6),
            number(7),
            number(8),
            number(9),
        ) else {
            continue;
        };
        if word.is_empty() {
            continue;
        }
        let conf = cols[10]
            .trim()
            .parse::<f32>()
            .unwrap_or(0.0)
            .clamp(0.0, 100.0);
        let key = (block, par, line);
        match last_line {
            Some(prev) if prev == key => text.push(' '),
            Some((prev_block, _, _)) => {
                line_index += 1;
                text.push('\n');
                if prev_block != block {
                    text.push('\n');
                }
            }
            None => {}
        }
        last_line = Some(key);
        text.push_str(&word);
        words.push(Word {
            text: word,
            x,
            y,
            w,
            h,
            conf,
            line: line_index,
        });
    }
    let confidence = if words.is_empty() {
        0.0
    } else {
        words.iter().map(|w| w.conf).sum::<f32>() / words.len() as f32
    };
    PageText {
        text,
        words,
        confidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TSV: &str = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext
1\t1\t0\t0\t0\t0\t0\t0\t2480\t1000\t-1\t
5\t1\t1\t1\t1\t1\t100\t200\t180\t40\t96.5\tGiấy
5\t1\t1\t1\t1\t2\t300\t200\t120\t40\t93.5\tcho\u{301}ng
5\t1\t1\t1\t2\t1\t100\t260\t90\t40\t90\tđất
5\t1\t2\t1\t1\t1\t100\t400\t90\t40\t80\tSố
5\t1\t2\t1\t1\t2\t200\t400\t10\t40\t10\t \n";

    #[test]
    fn tsv_words_keep_boxes_lines_and_nfc_text() {
        let page = parse_tsv(TSV);
        assert_eq!(page.text, "Giấy chóng\nđất\n\nSố");
        assert_eq!(page.words.len(), 4);
        assert_eq!(
            page.words[1].text, "chóng",
            "combining accent composed to NFC"
        );
        assert_eq!(
            (
                page.words[2].x,
                page.words[2].y,
                page.words[2].w,
                page.words[2].h
            ),
            (100, 260, 90, 40)
        );
        assert_eq!(
            page.words.iter().map(|w| w.line).collect::<Vec<_>>(),
            [0, 0, 1, 2]
        );
        assert!((page.confidence - 90.0).abs() < 0.01, "{}", page.confidence);
    }

    #[test]
    fn a_page_without_words_has_no_text_and_zero_confidence() {
        let page = parse_tsv("level\tpage_num\n1\t1\t0\t0\t0\t0\t0\t0\t10\t10\t-1\t\n");
        assert!(page.text.is_empty() && page.words.is_empty());
        assert_eq!(page.confidence, 0.0);
    }
}
