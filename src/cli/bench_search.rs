//! `sohoa bench-search`: search latency on a generated corpus the size of a province's archive, beside
//! SQLite FTS5 (bm25) on the same pages, in the same run.
//!
//! The corpus is Vietnamese administrative words in a Zipf mix (word of rank r drawn with probability
//! ∝ 1/r), about 250 words a page, so that the commonest words ("đất", "ngày", "số") are on nearly every
//! page, as in real dossiers. Queries are typical 1-3 word searches typed without accents, drawn from
//! common, middling and rare words. Each query runs the archive's own search (folding, exact-form boost,
//! count of matches, top 20 with snippets) and is timed one after another on a warm index; the table
//! gives p50/p95/p99 and the index size. Run by hand.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use archive_api::repo::IndexedPage;
use archive_api::{SearchIndex, SearchQuery};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Pages in the corpus.
    #[arg(long, default_value_t = 1_000_000)]
    pages: usize,
    /// Pages in the SQLite FTS5 peer's corpus (the same first pages); 0 leaves it out.
    #[arg(long, default_value_t = 100_000)]
    fts5_pages: usize,
    /// Queries timed per engine.
    #[arg(long, default_value_t = 500)]
    queries: usize,
    /// Folder to build the corpus in (kept, and reused when it already holds this many pages); a
    /// temporary folder when absent.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Common words of Vietnamese administrative paperwork, roughly commonest first; syllables made from
/// onsets, rhymes and tones make up the long tail.
const WORDS: &[&str] = &[
    "đất",
    "ngày",
    "số",
    "năm",
    "tháng",
    "xã",
    "ông",
    "bà",
    "huyện",
    "tỉnh",
    "nhân",
    "dân",
    "ủy",
    "ban",
    "giấy",
    "chứng",
    "nhận",
    "quyền",
    "sử",
    "dụng",
    "hồ",
    "sơ",
    "cấp",
    "theo",
    "quy",
    "định",
    "của",
    "và",
    "được",
    "tại",
    "người",
    "thửa",
    "tờ",
    "bản",
    "đồ",
    "địa",
    "chỉ",
    "họ",
    "tên",
    "sinh",
    "thường",
    "trú",
    "công",
    "dân",
    "căn",
    "cước",
    "cộng",
    "hòa",
    "xã",
    "hội",
    "chủ",
    "nghĩa",
    "việt",
    "nam",
    "độc",
    "lập",
    "tự",
    "do",
    "hạnh",
    "phúc",
    "đơn",
    "đề",
    "nghị",
    "kính",
    "gửi",
    "quyết",
    "điều",
    "khoản",
    "luật",
    "nghị",
    "thông",
    "tư",
    "chính",
    "phủ",
    "bộ",
    "sở",
    "tài",
    "nguyên",
    "môi",
    "trường",
    "tư",
    "pháp",
    "hộ",
    "tịch",
    "khai",
    "kết",
    "hôn",
    "chết",
    "con",
    "cha",
    "mẹ",
    "vợ",
    "chồng",
    "diện",
    "tích",
    "mét",
    "vuông",
    "mục",
    "đích",
    "thời",
    "hạn",
    "lâu",
    "dài",
    "nguồn",
    "gốc",
    "nhà",
    "nước",
    "giao",
    "thuê",
    "chuyển",
    "nhượng",
    "thừa",
    "kế",
    "tặng",
    "cho",
    "thế",
    "chấp",
    "đăng",
    "ký",
    "biến",
    "động",
    "kinh",
    "doanh",
    "doanh",
    "nghiệp",
    "vốn",
    "điều",
    "lệ",
    "ngành",
    "nghề",
    "trụ",
    "chi",
    "nhánh",
    "văn",
    "phòng",
    "đại",
    "diện",
    "pháp",
    "lý",
    "phí",
    "lệ",
    "thu",
    "nộp",
    "biên",
    "lai",
    "phiếu",
    "hẹn",
    "trả",
    "kết",
    "quả",
    "tiếp",
    "bộ",
    "phận",
    "một",
    "cửa",
    "liên",
    "thông",
    "trực",
    "tuyến",
    "bưu",
    "chính",
    "xác",
    "minh",
    "thẩm",
    "tra",
    "phê",
    "duyệt",
    "ký",
    "đóng",
    "dấu",
    "chủ",
    "tịch",
    "phó",
    "trưởng",
    "cán",
    "chuyên",
    "viên",
    "thôn",
    "xóm",
    "bản",
    "làng",
    "phường",
    "thị",
    "trấn",
    "thành",
    "phố",
    "quận",
    "vùng",
    "miền",
    "bắc",
    "trung",
    "nam",
    "đông",
    "tây",
    "sông",
    "núi",
    "đồng",
    "ruộng",
    "lúa",
    "rừng",
    "cây",
    "lâu",
    "năm",
    "hàng",
    "nuôi",
    "trồng",
    "thủy",
    "sản",
    "xây",
    "dựng",
    "công",
    "trình",
    "giấy",
    "phép",
    "sửa",
    "chữa",
    "cải",
    "tạo",
    "phá",
    "dỡ",
    "tầng",
    "móng",
    "mái",
    "tường",
    "cổng",
    "đường",
    "ngõ",
    "hẻm",
    "lối",
    "đi",
    "chung",
    "riêng",
    "ranh",
    "giới",
    "mốc",
    "tranh",
    "chấp",
    "khiếu",
    "nại",
    "tố",
    "cáo",
    "hòa",
    "giải",
    "tòa",
    "án",
    "bản",
    "án",
    "hiệu",
    "lực",
    "thi",
    "hành",
    "bảo",
    "hiểm",
    "xã",
    "hội",
    "y",
    "tế",
    "thương",
    "binh",
    "liệt",
    "sĩ",
    "người",
    "có",
    "công",
    "trợ",
    "cấp",
    "hưu",
    "trí",
    "học",
    "sinh",
    "giáo",
    "dục",
    "trường",
    "lớp",
    "bằng",
    "tốt",
    "nghiệp",
];

const ONSETS: &[&str] = &[
    "b", "c", "ch", "d", "đ", "g", "gi", "h", "k", "kh", "l", "m", "n", "ng", "nh", "p", "ph",
    "qu", "r", "s", "t", "th", "tr", "v", "x",
];
const RHYMES: &[&str] = &[
    "a", "ai", "am", "an", "ang", "anh", "ao", "at", "au", "ay", "e", "em", "en", "eo", "et", "i",
    "ia", "im", "in", "inh", "it", "iu", "o", "oa", "oi", "om", "on", "ong", "ot", "u", "ua", "ui",
    "um", "un", "ung", "ut", "uy", "ương", "ươi", "yên", "âm", "ân", "âng", "ôi", "ơi", "ưa",
];
const TONES: &[&str] = &["", "\u{300}", "\u{301}", "\u{309}", "\u{303}", "\u{323}"];

/// splitmix64: a fast, good-enough generator for a reproducible corpus.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The vocabulary in rank order and the cumulative Zipf weights to draw from it.
struct Vocabulary {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Vocabulary {
    fn new() -> Self {
        use unicode_normalization::UnicodeNormalization;
        let mut words: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for word in WORDS {
            if seen.insert(*word) {
                words.push((*word).to_owned());
            }
        }
        for tone in TONES {
            for rhyme in RHYMES {
                for onset in ONSETS {
                    let syllable: String = format!("{onset}{rhyme}{tone}").nfc().collect();
                    if !words.contains(&syllable) {
                        words.push(syllable);
                    }
                }
            }
        }
        let mut total = 0.0;
        let cumulative = (1..=words.len())
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect::<Vec<_>>();
        let cumulative = cumulative.iter().map(|c| c / total).collect();
        Self { words, cumulative }
    }

    fn draw(&self, random: &mut Random) -> &str {
        let u = random.unit();
        let rank = self.cumulative.partition_point(|&c| c < u);
        &self.words[rank.min(self.words.len() - 1)]
    }

    fn page(&self, random: &mut Random) -> String {
        let length = 200 + (random.next() % 101) as usize;
        let mut text = String::with_capacity(length * 6);
        for i in 0..length {
            if i > 0 {
                text.push(if i % 12 == 0 { '\n' } else { ' ' });
            }
            text.push_str(self.draw(random));
        }
        text
    }
}

fn corpus(vocabulary: &Vocabulary, pages: usize) -> impl Iterator<Item = IndexedPage> + '_ {
    let mut random = Random(2026);
    (0..pages).map(move |i| {
        let dossier = i / 20;
        IndexedPage {
            id: i as i64 + 1,
            dossier: format!(
                "000.00.{:02}.H27-231128-{:04}",
                dossier % 90 + 10,
                dossier % 10_000
            ),
            procedure: format!("1.{:06}", 1000 + dossier % 300),
            unit: format!("000.00.{:02}.H27", dossier % 90 + 10),
            kind: if i % 7 == 0 { "result" } else { "submitted" }.to_owned(),
            document: format!("{:064x}", dossier),
            number: (i % 20) as u32 + 1,
            text: vocabulary.page(&mut random),
            applicant: String::new(),
            status: 2 + (dossier % 9) as u8,
            received: 1_700_000_000 + (dossier as i64) * 600,
            level: ["province", "district", "commune"][dossier % 3].to_owned(),
            field: String::new(),
        }
    })
}

/// Typical queries, without accents, as archivists type them: one, two or three words, common, middling
/// or rare.
fn queries(vocabulary: &Vocabulary, count: usize) -> Vec<(String, &'static str)> {
    let fold = typed_without_accents;
    let mut random = Random(7);
    let mut pick = |from: usize, to: usize| -> String {
        let rank = from + (random.next() as usize) % (to - from);
        fold(&vocabulary.words[rank.min(vocabulary.words.len() - 1)])
    };
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        out.push(match i % 5 {
            0 => (pick(0, 10), "1 common word"),
            1 => (pick(10, 500), "1 word"),
            2 => (format!("{} {}", pick(0, 30), pick(0, 300)), "2 words"),
            3 => (
                format!("{} {} {}", pick(0, 50), pick(0, 200), pick(0, 1000)),
                "3 words",
            ),
            _ => (pick(1000, 5000), "1 rare word"),
        });
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// A word as archivists type it in a hurry: lower case, no tone or vowel marks, `đ` as `d`
/// ("Nguyễn" -> "nguyen", "đất" -> "dat").
pub(super) fn typed_without_accents(word: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    word.to_lowercase()
        .nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .map(|c| if c == 'đ' { 'd' } else { c })
        .collect()
}

fn folder_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => folder_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

struct Row {
    engine: String,
    pages: usize,
    build: Duration,
    bytes: u64,
    times: Vec<Duration>,
    matches: f64,
}

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let vocabulary = Vocabulary::new();
    let temporary = tempfile::tempdir()?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| temporary.path().to_owned());
    let index_dir = dir.join(format!("tantivy-{}", args.pages));
    let queries = queries(&vocabulary, args.queries);
    let mut rows = Vec::new();

    let index = SearchIndex::open(&index_dir)?;
    let started = Instant::now();
    let held = index.watermark()?.pages;
    if held != args.pages as i64 {
        eprintln!(
            "building the index: {} pages, ~250 words each, in {}",
            args.pages,
            index_dir.display()
        );
        let bar = indicatif::ProgressBar::new(args.pages as u64);
        index.bulk_load(corpus(&vocabulary, args.pages), 50_000, |done| {
            bar.set_position(done as u64)
        })?;
        bar.finish_and_clear();
    }
    let build = started.elapsed();
    let mut times = Vec::new();
    let mut matches = 0usize;
    // Warm up: the first queries read the index files into the page cache.
    for (text, _) in queries.iter().take(50) {
        let _ = index.search(&SearchQuery {
            text: text.clone(),
            limit: 20,
            ..Default::default()
        });
    }
    for (text, _) in &queries {
        let query = SearchQuery {
            text: text.clone(),
            limit: 20,
            ..Default::default()
        };
        let started = Instant::now();
        let results = index.search(&query)?;
        times.push(started.elapsed());
        matches += results.total;
    }
    rows.push(Row {
        engine: "sohoa (tantivy, folded + exact)".to_owned(),
        pages: args.pages,
        build,
        bytes: folder_size(&index_dir),
        times,
        matches: matches as f64 / queries.len() as f64,
    });
    let by_class = classes(&queries, &rows[0].times);

    if args.fts5_pages > 0 {
        rows.push(fts5(&vocabulary, &dir, args.fts5_pages, &queries)?);
    }

    println!();
    println!(
        "{:<34} {:>9} {:>9} {:>10} {:>9} {:>9} {:>9} {:>12}",
        "engine", "pages", "build s", "index MB", "p50 ms", "p95 ms", "p99 ms", "mean matches"
    );
    for row in &rows {
        let mut sorted = row.times.clone();
        sorted.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{:<34} {:>9} {:>9.0} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>12.0}",
            row.engine,
            row.pages,
            row.build.as_secs_f64(),
            row.bytes as f64 / 1e6,
            ms(percentile(&sorted, 0.50)),
            ms(percentile(&sorted, 0.95)),
            ms(percentile(&sorted, 0.99)),
            row.matches
        );
    }
    println!();
    println!("sohoa by query kind ({} pages):", args.pages);
    println!(
        "{:<16} {:>8} {:>9} {:>9} {:>9}",
        "kind", "queries", "p50 ms", "p95 ms", "p99 ms"
    );
    for (class, mut times) in by_class {
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{:<16} {:>8} {:>9.2} {:>9.2} {:>9.2}",
            class,
            times.len(),
            ms(percentile(&times, 0.50)),
            ms(percentile(&times, 0.95)),
            ms(percentile(&times, 0.99))
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn classes(
    queries: &[(String, &'static str)],
    times: &[Duration],
) -> Vec<(&'static str, Vec<Duration>)> {
    let mut out: Vec<(&'static str, Vec<Duration>)> = Vec::new();
    for ((_, class), time) in queries.iter().zip(times) {
        match out.iter_mut().find(|(c, _)| c == class) {
            Some((_, list)) => list.push(*time),
            None => out.push((class, vec![*time])),
        }
    }
    out
}

/// The peer: SQLite FTS5 with the `unicode61 remove_diacritics 2` tokenizer (which folds marks but not
/// đ, so the text is given with đ folded too), top 20 by bm25 with snippets, and the count of matches.
fn fts5(
    vocabulary: &Vocabulary,
    dir: &Path,
    pages: usize,
    queries: &[(String, &'static str)],
) -> anyhow::Result<Row> {
    let path = dir.join(format!("fts5-{pages}.db"));
    let runtime = tokio::runtime::Handle::current();
    runtime.block_on(async {
        use sqlx::Row as _;
        use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
        let options = SqliteConnectOptions::new().filename(&path).create_if_missing(true);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        sqlx::query(
            "CREATE VIRTUAL TABLE IF NOT EXISTS pages USING fts5(text, tokenize = 'unicode61 remove_diacritics 2')",
        )
        .execute(&pool)
        .await?;
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pages").fetch_one(&pool).await?;
        let started = Instant::now();
        if held != pages as i64 {
            eprintln!("building the SQLite FTS5 peer: {pages} pages in {}", path.display());
            sqlx::query("DELETE FROM pages").execute(&pool).await?;
            let mut tx = pool.begin().await?;
            for page in corpus(vocabulary, pages) {
                sqlx::query("INSERT INTO pages (rowid, text) VALUES (?, ?)")
                    .bind(page.id)
                    .bind(page.text.replace('đ', "d").replace('Đ', "D"))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            sqlx::query("INSERT INTO pages (pages) VALUES ('optimize')").execute(&pool).await?;
        }
        let build = started.elapsed();
        let mut times = Vec::with_capacity(queries.len());
        let mut matches = 0i64;
        for (text, _) in queries {
            let started = Instant::now();
            let rows = sqlx::query(
                "SELECT rowid, snippet(pages, 0, '<b>', '</b>', '…', 24) FROM pages WHERE pages MATCH ?
                 ORDER BY bm25(pages) LIMIT 20",
            )
            .bind(text)
            .fetch_all(&pool)
            .await?;
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pages WHERE pages MATCH ?")
                .bind(text)
                .fetch_one(&pool)
                .await?;
            times.push(started.elapsed());
            matches += count;
            let _ = rows.first().map(|r| r.get::<i64, _>(0));
        }
        pool.close().await;
        Ok::<_, anyhow::Error>(Row {
            engine: "SQLite FTS5 (bm25)".to_owned(),
            pages,
            build,
            bytes: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
            times,
            matches: matches as f64 / queries.len() as f64,
        })
    })
    .context("the SQLite FTS5 peer")
}
