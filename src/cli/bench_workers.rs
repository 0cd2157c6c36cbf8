//! `sohoa bench-workers`: the work queue at scale, by hand. For each database (the embedded SQLite with
//! its local object store, and PostgreSQL with the configured object store, e.g. S3, when `--postgres` or
//! `DATABASE_URL` names one), a real `sohoa serve` takes the pages over HTTP and queues a packaging job per
//! dossier, then 1, 2, 4... `sohoa worker` processes drain the queue: pages per second, from the workers'
//! start to the last job done. Then search over HTTP on each database, the same queries: latency of the
//! whole request (token, search, audit line). Medians over `--runs`; these machines are noisy.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Pages queued for each measurement (the images are repeated to make up the count).
    #[arg(long, default_value_t = 40)]
    pages: usize,
    /// Pages per dossier, so per job.
    #[arg(long, default_value_t = 4)]
    pages_per_job: usize,
    /// Worker process counts to measure, comma-separated.
    #[arg(long, default_value = "1,2,4", value_delimiter = ',')]
    workers: Vec<usize>,
    /// Runs of each measurement; the table shows medians.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Search requests per database.
    #[arg(long, default_value_t = 300)]
    queries: usize,
    /// PostgreSQL to measure beside SQLite [default: $DATABASE_URL]. Its object store is the configured
    /// one (`[storage] objects`, e.g. s3://...), which the workers must reach too.
    #[arg(long)]
    postgres: Option<String>,
    /// Scanned page images or folders of them (e.g. the shared sample corpus); a `.txt` beside an image
    /// gives the words searched for.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

/// One database to measure: the environment its processes get.
struct Backend {
    name: &'static str,
    env: Vec<(String, String)>,
    remove: Vec<&'static str>,
}

impl Backend {
    fn command(&self, exe: &Path) -> Command {
        let mut command = Command::new(exe);
        for key in &self.remove {
            command.env_remove(key);
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command.env_remove("RUST_LOG");
        command
    }
}

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let images = super::bench::collect_images(&args.paths)?;
    if images.is_empty() {
        bail!("no PNG, JPEG or TIFF images under the given paths");
    }
    let words = search_words(&images);
    let exe = std::env::current_exe()?;
    let work = tempfile::tempdir().context("cannot create a work folder")?;
    let mut backends = vec![Backend {
        name: "SQLite + local folder",
        env: vec![(
            "SOHOA_DATA".into(),
            work.path().join("sqlite").display().to_string(),
        )],
        remove: vec![
            "DATABASE_URL",
            "SOHOA_STORAGE__DATABASE",
            "SOHOA_STORAGE__OBJECTS",
        ],
    }];
    if let Some(url) = args
        .postgres
        .clone()
        .or_else(|| std::env::var("DATABASE_URL").ok())
    {
        backends.push(Backend {
            name: "PostgreSQL + configured store",
            env: vec![
                (
                    "SOHOA_DATA".into(),
                    work.path().join("postgres").display().to_string(),
                ),
                ("DATABASE_URL".into(), url),
            ],
            remove: vec![],
        });
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "{} pages per measurement in jobs of {}, workers {:?}, {} run(s), {cores} cores",
        args.pages, args.pages_per_job, args.workers, args.runs
    );
    let mut throughput = Vec::new();
    let mut latency = Vec::new();
    let mut batch = 0;
    for backend in &backends {
        let server = Server::start(&exe, backend)?;
        let clerk = token(&exe, backend, "bench-clerk", "clerk")?;
        let archivist = token(&exe, backend, "bench-archivist", "archivist")?;
        for &count in &args.workers {
            let mut rates = Vec::new();
            for _ in 0..args.runs {
                batch += 1;
                let jobs = queue(&server, &clerk, &images, &args, batch)?;
                let started = Instant::now();
                let mut workers: Vec<Child> = (0..count)
                    .map(|_| {
                        backend
                            .command(&exe)
                            .args(["worker", "--until-idle"])
                            .stdout(Stdio::null())
                            .stderr(Stdio::null())
                            .spawn()
                    })
                    .collect::<Result<_, _>>()?;
                for worker in &mut workers {
                    worker.wait()?;
                }
                let elapsed = started.elapsed();
                let failed = unfinished(&server, &clerk, &jobs)?;
                if failed > 0 {
                    bail!("{failed} jobs did not finish on {}", backend.name);
                }
                let rate = args.pages as f64 / elapsed.as_secs_f64();
                eprintln!(
                    "  {}: {count} worker(s): {:.2} pages/s ({:.1} s)",
                    backend.name,
                    rate,
                    elapsed.as_secs_f64()
                );
                rates.push(rate);
            }
            throughput.push((backend.name, count, median(&mut rates)));
        }
        // Let the index catch up with the last pages before searching.
        std::thread::sleep(Duration::from_secs(3));
        let mut times = Vec::with_capacity(args.queries);
        for i in 0..args.queries {
            let query = &words[i % words.len()];
            let started = Instant::now();
            let response = ureq::get(&format!("{}/v1/search", server.url))
                .set("Authorization", &format!("Bearer {archivist}"))
                .query("q", query)
                .query("limit", "20")
                .call()
                .with_context(|| format!("search {query:?}"))?;
            let _ = response.into_string()?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        latency.push((backend.name, percentiles(&mut times)));
    }
    println!();
    println!("| database | worker processes | pages/s (median) | vs 1 worker |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, count, rate) in &throughput {
        let one = throughput
            .iter()
            .find(|(n, c, _)| n == name && *c == 1)
            .map_or(f64::NAN, |(_, _, r)| *r);
        println!("| {name} | {count} | {rate:.2} | {:.2}x |", rate / one);
    }
    println!();
    println!("| database | search requests | p50 ms | p95 ms | p99 ms |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, (p50, p95, p99)) in &latency {
        println!(
            "| {name} | {} | {p50:.2} | {p95:.2} | {p99:.2} |",
            args.queries
        );
    }
    Ok(ExitCode::SUCCESS)
}

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(exe: &Path, backend: &Backend) -> anyhow::Result<Self> {
        let mut child = backend
            .command(exe)
            .args(["serve", "--listen", "127.0.0.1:0", "--workers", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("no server output")?).read_line(&mut line)?;
        let url = line
            .trim()
            .strip_prefix("sohoa listening on ")
            .with_context(|| format!("the server did not start: {line:?}"))?
            .to_owned();
        Ok(Self { child, url })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn token(exe: &Path, backend: &Backend, name: &str, role: &str) -> anyhow::Result<String> {
    let output = backend
        .command(exe)
        .args(["account", "add", name, "--role", role, "--json"])
        .output()?;
    if output.status.success() {
        let created: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        return Ok(created["token"].as_str().unwrap_or_default().to_owned());
    }
    // Measured before on this database: a new token for the same account.
    let output = backend
        .command(exe)
        .args(["account", "token", name, "--label", "bench"])
        .output()?;
    if !output.status.success() {
        bail!(
            "cannot make a token: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Registers the dossiers of one measurement, uploads their pages and asks for packaging: the job ids.
fn queue(
    server: &Server,
    token: &str,
    images: &[PathBuf],
    args: &Args,
    batch: usize,
) -> anyhow::Result<Vec<String>> {
    let bearer = format!("Bearer {token}");
    // The date field of the codes varies with the run; a code met again (an earlier bench on the same
    // database) is the same registration, and its new pages make a new job all the same.
    let day = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        / 86_400
        % 28
        + 1;
    let mut jobs = Vec::new();
    let per_job = args.pages_per_job.max(1);
    for (n, start) in (0..args.pages).step_by(per_job).enumerate() {
        let code = format!("000.00.15.H27-23{:02}{day:02}-{:04}", 1 + batch % 12, n + 1);
        ureq::post(&format!("{}/v1/dossiers", server.url))
            .set("Authorization", &bearer)
            .send_json(
                serde_json::json!({"code": code, "procedure": "1.001234", "unit": "000.00.15.H27"}),
            )
            .with_context(|| format!("register {code}"))?;
        for i in start..(start + per_job).min(args.pages) {
            let image = &images[i % images.len()];
            let bytes = std::fs::read(image)?;
            ureq::post(&format!("{}/v1/dossiers/{code}/pages", server.url))
                .set("Authorization", &bearer)
                .query("name", &format!("{:03}", i + 1))
                .send_bytes(&bytes)
                .with_context(|| format!("upload {}", image.display()))?;
        }
        let job: serde_json::Value =
            ureq::post(&format!("{}/v1/dossiers/{code}/finalize", server.url))
                .set("Authorization", &bearer)
                .call()?
                .into_json()?;
        jobs.push(job["id"].as_str().unwrap_or_default().to_owned());
    }
    Ok(jobs)
}

fn unfinished(server: &Server, token: &str, jobs: &[String]) -> anyhow::Result<usize> {
    let mut left = 0;
    for id in jobs {
        let job: serde_json::Value = ureq::get(&format!("{}/v1/jobs/{id}", server.url))
            .set("Authorization", &format!("Bearer {token}"))
            .call()?
            .into_json()?;
        if job["state"] != "done" {
            left += 1;
        }
    }
    Ok(left)
}

/// Words to search for: from the ground-truth texts, typed without accents as people do.
fn search_words(images: &[PathBuf]) -> Vec<String> {
    let mut words: Vec<String> = images
        .iter()
        .filter_map(|image| std::fs::read_to_string(image.with_extension("txt")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter(|w| w.chars().count() >= 4 && w.chars().all(char::is_alphabetic))
                .map(super::bench_search::typed_without_accents)
                .collect::<Vec<_>>()
        })
        .collect();
    words.sort();
    words.dedup();
    if words.is_empty() {
        words.push("nguyen".to_owned());
    }
    words
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn percentiles(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((values.len() as f64 - 1.0) * q).round() as usize;
        values.get(i).copied().unwrap_or(f64::NAN)
    };
    (at(0.5), at(0.95), at(0.99))
}
