//! `sohoa search`: find dossiers and pages by their words, accents optional.

use std::io::IsTerminal;
use std::process::ExitCode;

use archive_api::{Archive, SearchHit, SearchQuery};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Print the hits as JSON.
    #[arg(long)]
    json: bool,
    /// Only dossiers of this unit.
    #[arg(long)]
    unit: Option<String>,
    /// Only dossiers of this procedure.
    #[arg(long)]
    procedure: Option<String>,
    /// Only documents of this kind (submitted or result).
    #[arg(long)]
    kind: Option<String>,
    /// At most this many pages.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// The words to find; accents and đ are optional ("nguyen thi huong" finds "Nguyễn Thị Hương").
    #[arg(required = true)]
    query: Vec<String>,
}

pub(super) async fn run(archive: &Archive, args: Args) -> anyhow::Result<ExitCode> {
    let query = SearchQuery {
        text: args.query.join(" "),
        unit: args.unit,
        procedure: args.procedure,
        kind: args.kind,
        limit: args.limit,
        ..Default::default()
    };
    let results = archive.search(&query).await?;
    let hits = results.hits;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"query": query.text, "total": results.total, "hits": hits})
            )?
        );
        return Ok(ExitCode::SUCCESS);
    }
    if hits.is_empty() {
        println!("no pages match \"{}\"", query.text);
        return Ok(ExitCode::SUCCESS);
    }
    let bold = std::io::stdout().is_terminal();
    let mut last_dossier = "";
    for hit in &hits {
        if hit.dossier != last_dossier {
            println!(
                "{}  (procedure {}, unit {})",
                hit.dossier, hit.procedure, hit.unit
            );
            last_dossier = &hit.dossier;
        }
        println!(
            "  page {} of {} document {}\n    {}",
            hit.page,
            hit.kind,
            hit.document,
            highlight(hit, bold)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The snippet on one line with the matches marked: bold on a terminal, `[..]` otherwise.
fn highlight(hit: &SearchHit, bold: bool) -> String {
    let (open, close) = if bold {
        ("\x1b[1m", "\x1b[0m")
    } else {
        ("[", "]")
    };
    let mut out = String::new();
    let mut at = 0;
    for &(start, end) in &hit.highlights {
        if start < at || end > hit.snippet.len() {
            continue;
        }
        out.push_str(&hit.snippet[at..start]);
        out.push_str(open);
        out.push_str(&hit.snippet[start..end]);
        out.push_str(close);
        at = end;
    }
    out.push_str(&hit.snippet[at..]);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}
