//! `sohoa bench`: sohoa's whole ingest beside plain Tesseract over the same pages, in the same run.
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
    /// Scanned page images (or folders of them), e.g. the shared sample corpus.
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

    let mut sohoa = Vec::new();
    let mut tesseract = Vec::new();
    for run in 0..args.runs.max(1) {
        // Alternate which goes first, so neither always meets a warm or cold page cache.
        let order = if run % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for is_sohoa in order {
            if is_sohoa {
                let data = work.path().join(format!("data-{run}"));
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
                    .arg(&dossier_dir);
                let sample = measure(vec![command], 1)?;
                eprintln!("run {}: sohoa {:.2} s", run + 1, sample.wall.as_secs_f64());
                sohoa.push(sample);
            } else {
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
                            .env("OMP_THREAD_LIMIT", "1");
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
            }
        }
    }

    let n = pages.len() as f64;
    let sohoa_wall = median(sohoa.iter().map(|s| s.wall.as_secs_f64()));
    let tesseract_wall = median(tesseract.iter().map(|s| s.wall.as_secs_f64()));
    let mib = |samples: &[Sample]| median(samples.iter().map(|s| s.peak_rss_kib as f64 / 1024.0));
    println!("| tool | median wall (s) | pages/s | vs tesseract | peak RSS (MiB) |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    println!(
        "| tesseract CLI, {cores} processes at a time (text only) | {tesseract_wall:.2} | {:.2} | 1.00x | {:.0} per process, ~{:.0} for {cores} at once |",
        n / tesseract_wall,
        mib(&tesseract),
        mib(&tesseract) * cores as f64,
    );
    println!(
        "| sohoa ingest (decode, OCR, hash, PDF, store, index) | {sohoa_wall:.2} | {:.2} | {:.2}x | {:.0} |",
        n / sohoa_wall,
        sohoa_wall / tesseract_wall,
        mib(&sohoa),
    );
    Ok(ExitCode::SUCCESS)
}

fn collect_images(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
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
            command.stdout(Stdio::null()).stderr(Stdio::null());
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
