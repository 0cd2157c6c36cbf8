//! `sohoa scanners` (what is attached, and what it can do) and `sohoa scan` (scan straight into a dossier).

use std::process::ExitCode;
use std::sync::atomic::Ordering;

use archive_api::Archive;
use scanner_drivers::sane::{self, ScanSettings, Scanner};

use super::ingest::{DossierArgs, ingest_source};

#[derive(Debug, clap::Args)]
pub(super) struct ScannersArgs {
    /// Print the list as JSON.
    #[arg(long)]
    json: bool,
    /// Only scanners attached to this computer (skip network discovery: SANE's network backends and eSCL
    /// scanners announced over mDNS, which takes a few seconds).
    #[arg(long)]
    local: bool,
    /// An eSCL (AirScan) network scanner to list too, by its URL (http://HOST[:PORT]/eSCL; repeatable).
    #[arg(long = "escl", value_name = "URL")]
    escl: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub(super) struct ScanArgs {
    /// The scanner, as `sohoa scanners` names it: a SANE device (e.g. test:0), or an eSCL (AirScan)
    /// network scanner as escl:http://HOST[:PORT]/eSCL.
    #[arg(long)]
    device: String,
    /// Paper source: adf (document feeder), flatbed, or a source name the scanner lists.
    #[arg(long)]
    source: Option<String>,
    /// Both sides of each sheet (a duplex feeder).
    #[arg(long)]
    duplex: bool,
    /// Resolution in dots per inch (200 is the legal minimum for an electronic copy).
    #[arg(long, default_value_t = 300)]
    dpi: u32,
    /// Colour mode: color (Decree 30/2020 asks colour), gray, lineart, or a mode name the scanner lists.
    #[arg(long, default_value = "color")]
    mode: String,
    /// A further scanner option, NAME=VALUE, as scanimage names it (repeatable).
    #[arg(long = "option", value_name = "NAME=VALUE")]
    options: Vec<String>,
    #[command(flatten)]
    dossier: DossierArgs,
    /// Print a machine-readable JSON summary on standard output.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run_scanners(
    args: ScannersArgs,
    settings: &crate::settings::Settings,
) -> anyhow::Result<ExitCode> {
    let listing = tokio::task::spawn_blocking(move || {
        let devices = sane::devices(args.local)?;
        let mut listing = Vec::new();
        for device in devices {
            let capabilities = Scanner::open(&device.name).and_then(|s| s.capabilities());
            listing.push((device, capabilities));
        }
        Ok::<_, sane::SaneError>(listing)
    })
    .await??;
    let mut urls = settings.scanners.escl.clone();
    urls.extend(args.escl.iter().cloned());
    if !args.local {
        let found = tokio::task::spawn_blocking(|| {
            scanner_drivers::escl::discover(std::time::Duration::from_secs(2))
        })
        .await?;
        match found {
            Ok(found) => urls.extend(found.into_iter().map(|(_, url)| url)),
            Err(reason) => eprintln!("note: {reason}"),
        }
    }
    urls.sort();
    urls.dedup();
    let mut network = Vec::new();
    for url in &urls {
        let device = scanner_drivers::escl::EsclDevice::new(url);
        let url = url.clone();
        let offer = tokio::task::spawn_blocking(move || device.capabilities()).await?;
        network.push((format!("escl:{url}"), offer));
    }
    if args.json {
        let mut json: Vec<_> = listing
            .iter()
            .map(|(device, capabilities)| match capabilities {
                Ok(c) => serde_json::json!({"device": device, "capabilities": c}),
                Err(e) => serde_json::json!({"device": device, "error": e.to_string()}),
            })
            .collect();
        for (name, offer) in &network {
            json.push(match offer {
                Ok(offer) => serde_json::json!({"device": {"name": name, "kind": "eSCL network scanner"}, "capabilities": offer}),
                Err(e) => serde_json::json!({"device": {"name": name}, "error": e}),
            });
        }
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    for (name, offer) in &network {
        match offer {
            Ok(offer) => {
                println!("{name}  {} (eSCL network scanner)", offer.make_and_model);
                println!("    sources: {}", offer.sources.join(", "));
                println!("    modes: {}", offer.color_modes.join(", "));
                println!(
                    "    resolutions: {} dpi",
                    offer
                        .resolutions
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            Err(e) => println!("{name}  cannot be reached: {e}"),
        }
    }
    if listing.is_empty() && network.is_empty() {
        println!(
            "no scanner found (is it switched on and connected? `scanimage -L` lists what SANE sees)"
        );
    }
    for (device, capabilities) in &listing {
        println!(
            "{}  {} {} ({})",
            device.name, device.vendor, device.model, device.kind
        );
        match capabilities {
            Ok(c) => {
                let resolutions = if c.resolution_range {
                    format!(
                        "{}-{} dpi",
                        c.resolutions.first().unwrap_or(&0),
                        c.resolutions.get(1).unwrap_or(&0)
                    )
                } else {
                    format!(
                        "{} dpi",
                        c.resolutions
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                println!("    sources: {}", c.sources.join(", "));
                println!("    modes: {}", c.modes.join(", "));
                println!("    resolutions: {resolutions}");
            }
            Err(e) => println!("    cannot read its capabilities: {e}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn run_scan(archive: &Archive, args: ScanArgs) -> anyhow::Result<ExitCode> {
    let request = args.dossier.request()?;
    let options = scanner_options(&args.options)?;
    let settings = ScanSettings {
        source: args.source.clone(),
        duplex: args.duplex,
        dpi: Some(args.dpi),
        mode: Some(args.mode.clone()),
        options,
    };
    let device = args.device.clone();
    let scan =
        tokio::task::spawn_blocking(move || scanner_drivers::scan::start(&device, &settings))
            .await?
            .map_err(|e| anyhow::anyhow!(e))?;
    let (source, interruption, cancel) = (scan.source, scan.interruption, scan.cancel);
    // Ctrl-C stops the feeder after the sheet being read; the sheets before are kept.
    let watcher = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("cancelling: the sheets already scanned are kept");
            cancel.store(true, Ordering::Relaxed);
        }
    });
    let result = ingest_source(archive, request, source, Some(interruption), args.json).await;
    watcher.abort();
    result
}

/// `--option NAME=VALUE` flags as (name, value) pairs.
pub(super) fn scanner_options(flags: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    flags
        .iter()
        .map(|option| {
            option
                .split_once('=')
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .ok_or_else(|| anyhow::anyhow!("--option takes NAME=VALUE, not '{option}'"))
        })
        .collect()
}
