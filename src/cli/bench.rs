//! `sohoa bench`: sohoa's whole ingest beside plain Tesseract and OCRmyPDF over the same pages, in the
//! same run: wall time, pages per second, character error rate against ground truth, peak memory.
//!
//! The peer is the physical floor for this OCR engine: the `tesseract` command, one process per page, as
//! many at a time as there are cores, text output only. sohoa does more (decode, hash, package, store,
//! index), so the ratio says what that costs. Run by hand; these machines are noisy, so it reports medians.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use scanner_drivers::PageFormat;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Pages in the benchmark dossier; the given images are repeated in order to make up the count.
    #[arg(long, default_value_t = 20)]
    pages: usize,
    /// Runs of each tool; the table shows medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Leave OCRmyPDF out even when it is installed.
    #[arg(long)]
    no_ocrmypdf: bool,
    /// Scanned page images (or folders of them), e.g. the shared sample corpus. A `.txt` beside an image
    /// is taken as its true text, for the character error rate.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

struct Sample {
    wall: Duration,
    peak_rss_kib: u64,
}

pub(super) fn run(languages: &str, threads: Option<usize>, args: Args) -> anyhow::Result<ExitCode> {
    let images = collect_images(&args.paths)?;
    if images.is_empty() {
        bail!("no PNG, JPEG or TIFF images under the given paths");
    }
    let work = tempfile::tempdir().context("cannot create a work folder")?;
    let dossier_dir = work.path().join("dossier");
    std::fs::create_dir_all(&dossier_dir)?;
    let mut pages = Vec::new();
    for i in 0..args.pages.max(1) {
        let source = &images[i % images.len()];
        let extension = source.extension().and_then(|e| e.to_str()).unwrap_or("img");
        let page = dossier_dir.join(format!("{:04}.{extension}", i + 1));
        std::fs::copy(source, &page)?;
        pages.push(page);
    }
    let cores =
        threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let exe = std::env::current_exe()?;
    eprintln!(
        "{} pages from {} images, {} runs each, {cores} cores, languages {languages}",
        pages.len(),
        images.len(),
        args.runs
    );

    let truths: Vec<Option<String>> = (0..pages.len())
        .map(|i| {
            let source = &images[i % images.len()];
            std::fs::read_to_string(source.with_extension("txt")).ok()
        })
        .collect();
    let ocrmypdf_input = if args.no_ocrmypdf || !tool_exists("ocrmypdf") {
        None
    } else {
        let input = work.path().join("ocrmypdf-input.pdf");
        // img2pdf (an OCRmyPDF dependency) wraps the images in a PDF without re-encoding them.
        let made = Command::new("/usr/bin/python3")
            .args(["-m", "img2pdf", "-o"])
            .arg(&input)
            .args(&pages)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if made {
            Some(input)
        } else {
            eprintln!("note: cannot wrap the pages for OCRmyPDF (img2pdf); leaving it out");
            None
        }
    };

    let mut sohoa = Vec::new();
    let mut tesseract = Vec::new();
    let mut ocrmypdf = Vec::new();
    let mut sohoa_texts = Vec::new();
    let mut sohoa_flagged = 0;
    let mut tesseract_texts = Vec::new();
    let mut ocrmypdf_texts = Vec::new();
    for run in 0..args.runs.max(1) {
        // Rotate which goes first, so none always meets a warm or cold page cache.
        for turn in 0..3 {
            match (run + turn) % 3 {
                0 => {
                    let data = work.path().join(format!("data-{run}"));
                    let report_path = work.path().join(format!("report-{run}.json"));
                    let mut command = Command::new(&exe);
                    command
                        .args(["ingest", "--json", "--dossier", "000.00.15.H27-231128-0001"])
                        .args(["--procedure", "1.001234", "--unit", "000.00.15.H27"])
                        .arg("--data")
                        .arg(&data)
                        .arg("--languages")
                        .arg(languages)
                        .arg("--threads")
                        .arg(cores.to_string())
                        .arg(&dossier_dir)
                        .stdout(std::fs::File::create(&report_path)?)
                        .stderr(Stdio::null());
                    let sample = measure(vec![command], 1)?;
                    eprintln!("run {}: sohoa {:.2} s", run + 1, sample.wall.as_secs_f64());
                    sohoa.push(sample);
                    if run == 0 {
                        (sohoa_texts, sohoa_flagged) =
                            sohoa_page_texts(&exe, &data, &report_path, pages.len())?;
                    }
                }
                1 => {
                    let out = work.path().join(format!("tesseract-{run}"));
                    std::fs::create_dir_all(&out)?;
                    let commands = pages
                        .iter()
                        .enumerate()
                        .map(|(i, page)| {
                            let mut command = Command::new("tesseract");
                            command
                                .arg(page)
                                .arg(out.join(format!("{i:04}")))
                                .args(["-l", languages])
                                .env("OMP_THREAD_LIMIT", "1")
                                .stdout(Stdio::null())
                                .stderr(Stdio::null());
                            command
                        })
                        .collect();
                    let sample = measure(commands, cores)?;
                    eprintln!(
                        "run {}: tesseract {:.2} s",
                        run + 1,
                        sample.wall.as_secs_f64()
                    );
                    tesseract.push(sample);
                    if run == 0 {
                        tesseract_texts = (0..pages.len())
                            .map(|i| {
                                std::fs::read_to_string(out.join(format!("{i:04}.txt")))
                                    .unwrap_or_default()
                            })
                            .collect();
                    }
                }
                _ => {
                    let Some(input) = &ocrmypdf_input else {
                        continue;
                    };
                    let output = work.path().join(format!("ocrmypdf-{run}.pdf"));
                    let mut command = Command::new("ocrmypdf");
                    command
                        .args(["--rotate-pages", "--deskew", "--jobs", &cores.to_string()])
                        .args(["-l", languages])
                        .arg(input)
                        .arg(&output)
                        .stdout(Stdio::null())
                        .stderr(Stdio::null());
                    let sample = measure(vec![command], 1)?;
                    eprintln!(
                        "run {}: ocrmypdf {:.2} s",
                        run + 1,
                        sample.wall.as_secs_f64()
                    );
                    ocrmypdf.push(sample);
                    if run == 0 {
                        ocrmypdf_texts = (1..=pages.len())
                            .map(|n| pdf_page_text(&output, n))
                            .collect();
                    }
                }
            }
        }
    }

    let n = pages.len() as f64;
    let tesseract_wall = median(tesseract.iter().map(|s| s.wall.as_secs_f64()));
    println!(
        "{} pages, {cores} cores, median of {} runs; CER: character error rate against the .txt beside each image (NFC, whitespace collapsed, capped at 1 per page)",
        pages.len(),
        args.runs.max(1)
    );
    println!(
        "| tool | wall (s) | pages/s | vs tesseract | CER mean | CER median | CER worst | peak RSS (MiB) | pages flagged |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let row = |name: &str, samples: &[Sample], texts: &[String], rss: String, flagged: String| {
        let wall = median(samples.iter().map(|s| s.wall.as_secs_f64()));
        let (mean, med, worst) = cer_summary(texts, &truths);
        println!(
            "| {name} | {wall:.2} | {:.2} | {:.2}x | {mean} | {med} | {worst} | {rss} | {flagged} |",
            n / wall,
            wall / tesseract_wall,
        );
    };
    let mib = |samples: &[Sample]| median(samples.iter().map(|s| s.peak_rss_kib as f64 / 1024.0));
    row(
        "sohoa ingest (cleanup, OCR, hash, PDF, store, index)",
        &sohoa,
        &sohoa_texts,
        format!("{:.0}", mib(&sohoa)),
        sohoa_flagged.to_string(),
    );
    row(
        &format!("tesseract CLI, {cores} processes at a time (text only)"),
        &tesseract,
        &tesseract_texts,
        format!(
            "{:.0} per process, ~{:.0} for {cores}",
            mib(&tesseract),
            mib(&tesseract) * cores as f64
        ),
        "-".to_owned(),
    );
    if !ocrmypdf.is_empty() {
        row(
            &format!("ocrmypdf --rotate-pages --deskew --jobs {cores}"),
            &ocrmypdf,
            &ocrmypdf_texts,
            format!("{:.0} (main process)", mib(&ocrmypdf)),
            "-".to_owned(),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The text of each page as the archive gives it back: `pdftotext` on the packaged PDF, page by page
/// (empty for a page left out of the PDF), and how many pages were flagged.
fn sohoa_page_texts(
    exe: &Path,
    data: &Path,
    report_path: &Path,
    pages: usize,
) -> anyhow::Result<(Vec<String>, usize)> {
    let report: serde_json::Value = serde_json::from_reader(std::fs::File::open(report_path)?)
        .context("reading sohoa's JSON report")?;
    let document = report["document"]
        .as_str()
        .context("the report names no document")?;
    let pdf = data.with_extension("pdf");
    let fetched = Command::new(exe)
        .arg("--data")
        .arg(data)
        .args(["get", document, "-o"])
        .arg(&pdf)
        .stderr(Stdio::null())
        .status()?;
    if !fetched.success() {
        bail!("cannot fetch the benchmark document back");
    }
    let report_pages = report["pages"].as_array().cloned().unwrap_or_default();
    let flagged = report_pages
        .iter()
        .filter(|p| p["flags"].as_array().is_some_and(|f| !f.is_empty()))
        .count();
    let texts = (0..pages)
        .map(|i| {
            report_pages
                .get(i)
                .and_then(|p| p["pdf_page"].as_u64())
                .map(|n| pdf_page_text(&pdf, n as usize))
                .unwrap_or_default()
        })
        .collect();
    Ok((texts, flagged))
}

fn pdf_page_text(pdf: &Path, page: usize) -> String {
    Command::new("pdftotext")
        .args(["-f", &page.to_string(), "-l", &page.to_string()])
        .arg(pdf)
        .arg("-")
        .stderr(Stdio::null())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn tool_exists(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Mean, median and worst character error rate over the pages with a ground truth, formatted.
fn cer_summary(texts: &[String], truths: &[Option<String>]) -> (String, String, String) {
    let rates: Vec<f64> = texts
        .iter()
        .zip(truths)
        .filter_map(|(text, truth)| truth.as_ref().map(|t| character_error_rate(text, t)))
        .collect();
    if rates.is_empty() {
        return ("-".into(), "-".into(), "-".into());
    }
    let mean = rates.iter().sum::<f64>() / rates.len() as f64;
    let worst = rates.iter().copied().fold(0.0, f64::max);
    (
        format!("{mean:.4}"),
        format!("{:.4}", median(rates.iter().copied())),
        format!("{worst:.4}"),
    )
}

/// Edits (Levenshtein, over characters) from `text` to `truth`, per character of the truth, after NFC
/// normalisation and collapsing whitespace; at most 1. An empty truth (a blank page) scores 0 for empty
/// output and 1 for anything else.
fn character_error_rate(text: &str, truth: &str) -> f64 {
    use unicode_normalization::UnicodeNormalization;
    let normal = |s: &str| {
        s.nfc()
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (text, truth) = (normal(text), normal(truth));
    if truth.is_empty() {
        return if text.is_empty() { 0.0 } else { 1.0 };
    }
    let edits = strsim::levenshtein(&text, &truth);
    (edits as f64 / truth.chars().count() as f64).min(1.0)
}

pub(super) fn collect_images(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut images = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            images.extend(entries.into_iter().filter(|p| is_image(p)));
        } else if is_image(path) {
            images.push(path.clone());
        } else {
            bail!("{} is not a PNG, JPEG or TIFF image", path.display());
        }
    }
    Ok(images)
}

fn is_image(path: &Path) -> bool {
    let mut head = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|()| PageFormat::sniff(&head).is_some())
}

/// Runs `commands`, `parallel` at a time, and returns the wall time of the whole batch and the largest
/// peak resident set of any one process.
fn measure(commands: Vec<Command>, parallel: usize) -> anyhow::Result<Sample> {
    let start = Instant::now();
    let mut peak_rss_kib = 0u64;
    let mut running = 0usize;
    let mut pending = commands.into_iter();
    loop {
        while running < parallel.max(1) {
            let Some(mut command) = pending.next() else {
                break;
            };
            // The child is reaped by wait4 below, which also reports its peak memory.
            let child = command
                .spawn()
                .with_context(|| format!("cannot start {command:?}"))?;
            std::mem::forget(child);
            running += 1;
        }
        if running == 0 {
            break;
        }
        let (status, rss) = wait_any()?;
        running -= 1;
        peak_rss_kib = peak_rss_kib.max(rss);
        if status != 0 {
            bail!("a benchmark process failed (wait status {status}); run it by hand to see why");
        }
    }
    Ok(Sample {
        wall: start.elapsed(),
        peak_rss_kib,
    })
}

/// Waits for any child; returns its wait status and peak resident set in KiB.
fn wait_any() -> anyhow::Result<(i32, u64)> {
    let mut status = 0;
    // SAFETY: rusage is plain old data, zeroed is a valid value, and wait4 only writes to the two pointers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(-1, &mut status, 0, &mut usage) };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).context("waiting for a benchmark process");
    }
    Ok((status, u64::try_from(usage.ru_maxrss).unwrap_or(0)))
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}
