//! Optical character recognition with Tesseract: one engine per worker thread, created once and reused.

use std::cell::RefCell;
use std::path::PathBuf;

use image::GrayImage;
use serde::{Deserialize, Serialize};
use tesseract::Tesseract;
use unicode_normalization::UnicodeNormalization;

/// Which Tesseract models to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcrSettings {
    /// Tesseract language codes joined by `+`. Default `vie+eng`.
    pub languages: String,
    /// Folder holding the `.traineddata` files; `None` uses Tesseract's compiled-in default (on Debian
    /// `/usr/share/tesseract-ocr/5/tessdata`), or `TESSDATA_PREFIX` when set.
    pub tessdata: Option<PathBuf>,
}

impl Default for OcrSettings {
    fn default() -> Self {
        Self {
            languages: "vie+eng".to_owned(),
            tessdata: None,
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
    static ENGINE: RefCell<Option<(OcrSettings, Tesseract)>> = const { RefCell::new(None) };
}

fn start_engine(settings: &OcrSettings) -> Result<Tesseract, OcrError> {
    let datapath = settings
        .tessdata
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    let engine = Tesseract::new(datapath.as_deref(), Some(&settings.languages)).map_err(|_| {
        OcrError::Engine {
            languages: settings.languages.clone(),
        }
    })?;
    // Word boxes come from the TSV renderer; keep Tesseract's own chatter off stderr.
    engine
        .set_variable("debug_file", "/dev/null")
        .map_err(|e| OcrError::Recognise(e.to_string()))
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
        let engine = match slot.take() {
            Some((made_with, engine)) if &made_with == settings => engine,
            _ => start_engine(settings)?,
        };
        // The crate's builder methods consume the engine; on error it is dropped and the next page on
        // this thread starts a fresh one.
        let mut engine = engine
            .set_frame(image.as_raw(), width, height, 1, width)
            .map_err(|e| OcrError::Recognise(e.to_string()))?
            .set_source_resolution(dpi.round() as i32)
            .recognize()
            .map_err(|e| OcrError::Recognise(e.to_string()))?;
        let tsv = engine
            .get_tsv_text(0)
            .map_err(|e| OcrError::Recognise(e.to_string()))?;
        *slot = Some((settings.clone(), engine));
        Ok(parse_tsv(&tsv))
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
