//! Which way up a page is: Tesseract's orientation and script detection (`osd.traineddata`).
//!
//! The `tesseract` crate does not expose detection, so this module drives the C API through
//! `tesseract-sys`, with one detector per worker thread, created once and reused like the OCR engine.

use std::cell::RefCell;
use std::ffi::CString;
use std::ptr::NonNull;

use image::GrayImage;
use tesseract_sys as sys;

use crate::ocr::OcrSettings;

/// What the detector says about a page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Orientation {
    /// Clockwise quarter turns that put the page upright: 0, 1 (90°), 2 (180°) or 3 (270°).
    pub quarter_turns: u8,
    /// Tesseract's confidence in that answer; OCRmyPDF's default threshold for acting on it is 14.
    pub confidence: f32,
}

/// An orientation detector (a `TessBaseAPI` started with the `osd` model).
struct Detector(NonNull<sys::TessBaseAPI>);

impl Detector {
    fn start(settings: &OcrSettings) -> Option<Self> {
        // SAFETY: TessBaseAPICreate has no preconditions; it returns null only when out of memory.
        let handle = NonNull::new(unsafe { sys::TessBaseAPICreate() })?;
        let detector = Self(handle);
        let datapath = settings
            .tessdata
            .as_ref()
            .and_then(|p| CString::new(p.to_string_lossy().into_owned()).ok());
        let datapath_ptr = datapath.as_ref().map_or(std::ptr::null(), |p| p.as_ptr());
        // SAFETY: the handle is live; both strings are NUL-terminated and outlive the call (null datapath
        // means Tesseract's default).
        let status =
            unsafe { sys::TessBaseAPIInit3(handle.as_ptr(), datapath_ptr, c"osd".as_ptr()) };
        (status == 0).then_some(detector)
    }

    fn detect(&mut self, image: &GrayImage, dpi: f32) -> Option<Orientation> {
        let width = i32::try_from(image.width()).ok()?;
        let height = i32::try_from(image.height()).ok()?;
        let mut degrees: std::os::raw::c_int = 0;
        let mut confidence: f32 = 0.0;
        // SAFETY: the handle is live; the pixel buffer is width × height bytes of 8-bit grey, one byte per
        // pixel, rows `width` bytes apart, and outlives the calls; the out-pointers are valid, and null
        // script pointers are allowed.
        let found = unsafe {
            sys::TessBaseAPISetImage(
                self.0.as_ptr(),
                image.as_raw().as_ptr(),
                width,
                height,
                1,
                width,
            );
            sys::TessBaseAPISetSourceResolution(self.0.as_ptr(), dpi.round() as i32);
            let found = sys::TessBaseAPIDetectOrientationScript(
                self.0.as_ptr(),
                &mut degrees,
                &mut confidence,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
            // Drop Tesseract's reference to our pixels before they go away.
            sys::TessBaseAPIClear(self.0.as_ptr());
            found
        };
        if found == 0 || !confidence.is_finite() {
            return None;
        }
        // Tesseract reports how far the text is turned clockwise; turning the page back by the rest of a
        // full turn puts it upright.
        let turned = (degrees.rem_euclid(360) / 90) as u8;
        Some(Orientation {
            quarter_turns: (4 - turned) % 4,
            confidence,
        })
    }
}

impl Drop for Detector {
    fn drop(&mut self) {
        // SAFETY: the handle is live and dropped exactly once.
        unsafe {
            sys::TessBaseAPIEnd(self.0.as_ptr());
            sys::TessBaseAPIDelete(self.0.as_ptr());
        }
    }
}

thread_local! {
    static DETECTOR: RefCell<Option<(Option<std::path::PathBuf>, Detector)>> = const { RefCell::new(None) };
}

/// Detects which way up `image` is, with this thread's detector. `None` when the model is missing or the
/// page has too little text to tell (a blank page, a photograph).
pub fn detect(image: &GrayImage, dpi: f32, settings: &OcrSettings) -> Option<Orientation> {
    DETECTOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot
            .as_ref()
            .is_none_or(|(tessdata, _)| tessdata != &settings.tessdata)
        {
            *slot = Some((settings.tessdata.clone(), Detector::start(settings)?));
        }
        slot.as_mut()?.1.detect(image, dpi)
    })
}

/// Whether the orientation model is installed (Debian: `tesseract-ocr-osd`).
pub fn available(settings: &OcrSettings) -> bool {
    Detector::start(settings).is_some()
}
