//! The full-text index: a tantivy view over the pages table, rebuilt from the database at will.
//!
//! Vietnamese search folds tone and vowel marks and đ→d ("nguyen van a" finds "Nguyễn Văn A") and keeps an
//! exact form beside it: every page's text is indexed twice, folded and exact (lower-cased, marks kept),
//! and a query searches both, so a page that matches the query's exact spelling scores above one that
//! only matches once folded (a search for "Hương" ranks "Hương" before "Huong", and vice versa).
//!
//! The index follows the database: pages are append-only and numbered in commit order, and the index
//! records in its commit payload the highest page id it holds. [`SearchIndex::sync`] adds what is newer.
//! Only one process writes the index at a time (tantivy's writer lock); another that finds it busy leaves
//! the work to the holder, which will pick the new pages up on its next sync.

use std::path::Path;

use serde::Serialize;
use std::ops::Bound;

use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::directory::error::LockError;
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions, Value,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
};
use tantivy::{
    Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, TantivyError, Term, doc,
};
use unicode_normalization::UnicodeNormalization;

use crate::repo::{IndexedPage, Repo, RepoError};

const FOLDED: &str = "vi_folded";
const EXACT: &str = "vi_exact";
/// Exact-spelling matches weigh this much more than folded ones.
const EXACT_BOOST: f32 = 2.0;
const WRITER_HEAP: usize = 50_000_000;
const SYNC_BATCH: i64 = 100;
/// Most hits one search returns.
pub const MAX_LIMIT: usize = 200;

/// What went wrong with the index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// The query has no words to search for.
    #[error("the search has no words to look for")]
    EmptyQuery,
    /// The index engine failed.
    #[error("search index: {0}")]
    Engine(#[from] TantivyError),
    /// The database failed while the index followed it.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The index folder is unusable.
    #[error("search index folder {path}: {reason}")]
    Folder {
        /// The folder.
        path: String,
        /// Why.
        reason: String,
    },
}

#[derive(Clone, Copy)]
struct Fields {
    page_id: Field,
    dossier: Field,
    procedure: Field,
    unit: Field,
    kind: Field,
    document: Field,
    page: Field,
    text: Field,
    text_exact: Field,
    meta: Field,
    meta_exact: Field,
    applicant: Field,
    status: Field,
    received: Field,
    level: Field,
    field: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text_options = |tokenizer: &str| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
    };
    let fields = Fields {
        page_id: builder.add_u64_field("page_id", INDEXED | STORED),
        dossier: builder.add_text_field("dossier", STRING | STORED),
        procedure: builder.add_text_field("procedure", STRING | STORED),
        unit: builder.add_text_field("unit", STRING | STORED),
        kind: builder.add_text_field("kind", STRING | STORED),
        document: builder.add_text_field("document", STRING | STORED),
        page: builder.add_u64_field("page", STORED),
        // Stored once, in the folded field, for snippets: the snippet shows the original text and
        // highlights the words that match once folded.
        text: builder.add_text_field("text", text_options(FOLDED).set_stored()),
        text_exact: builder.add_text_field("text_exact", text_options(EXACT)),
        // The dossier's searchable metadata (applicant, codes), so "nguyen van a" finds the applicant's
        // dossier even where the OCR text does not name her.
        meta: builder.add_text_field("meta", text_options(FOLDED)),
        meta_exact: builder.add_text_field("meta_exact", text_options(EXACT)),
        applicant: builder.add_text_field("applicant", STORED),
        status: builder.add_u64_field("status", INDEXED | STORED),
        received: builder.add_i64_field("received", INDEXED | FAST | STORED),
        level: builder.add_text_field("level", STRING | STORED),
        field: builder.add_text_field("field", STRING | STORED),
    };
    (builder.build(), fields)
}

/// How hits are ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SearchOrder {
    /// Best match first (exact spelling above folded).
    #[default]
    Relevance,
    /// Newest received dossier first.
    Newest,
    /// Oldest received dossier first.
    Oldest,
}

/// A search request.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// The words to find; `"..."` for a phrase.
    pub text: String,
    /// Only dossiers of these units (the caller's scope); `None` for every unit.
    pub units: Option<Vec<String>>,
    /// Only this unit's dossiers.
    pub unit: Option<String>,
    /// Only units of this level (`province`, `district`, `commune`).
    pub level: Option<String>,
    /// Only this procedure's dossiers.
    pub procedure: Option<String>,
    /// Only procedures of this field.
    pub field: Option<String>,
    /// Only dossiers in this status.
    pub status: Option<u8>,
    /// Only this kind of document.
    pub kind: Option<String>,
    /// Only this dossier.
    pub dossier: Option<String>,
    /// Only dossiers received at or after this UNIX time.
    pub received_from: Option<i64>,
    /// Only dossiers received before this UNIX time.
    pub received_until: Option<i64>,
    /// The order of hits.
    pub order: SearchOrder,
    /// Skip this many hits (pagination).
    pub offset: usize,
    /// At most this many hits (capped at [`MAX_LIMIT`]).
    pub limit: usize,
}

/// One matching page.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SearchHit {
    /// Dossier code.
    pub dossier: String,
    /// BLAKE3 of the document's PDF.
    pub document: String,
    /// Submitted or result.
    pub kind: String,
    /// Page number, from 1.
    pub page: u64,
    /// Unit code.
    pub unit: String,
    /// Procedure code.
    pub procedure: String,
    /// The applicant's name.
    pub applicant: String,
    /// The dossier's status code.
    pub status: u64,
    /// When the dossier was received, RFC 3339 +07:00.
    pub received_at: String,
    /// Relevance; higher is better (0 when sorted by date).
    pub score: f32,
    /// A passage of the page around the matches.
    pub snippet: String,
    /// Byte ranges of `snippet` that match the query.
    pub highlights: Vec<(usize, usize)>,
}

/// A page of hits.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResults {
    /// How many pages match in all.
    pub total: usize,
    /// The hits asked for.
    pub hits: Vec<SearchHit>,
}

/// The search index.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    sync_lock: tokio::sync::Mutex<()>,
}

impl SearchIndex {
    /// Opens the index in `dir`, creating it if missing; an index from an older schema is discarded, to be
    /// rebuilt from the database by [`SearchIndex::sync`].
    pub fn open(dir: &Path) -> Result<Self, IndexError> {
        let folder_error = |reason: String| IndexError::Folder {
            path: dir.display().to_string(),
            reason,
        };
        let (schema, fields) = schema();
        std::fs::create_dir_all(dir).map_err(|e| folder_error(e.to_string()))?;
        let open = || -> Result<Index, TantivyError> {
            let directory =
                MmapDirectory::open(dir).map_err(|e| TantivyError::SystemError(e.to_string()))?;
            Index::open_or_create(directory, schema.clone())
        };
        let index = match open() {
            Ok(index) => index,
            Err(TantivyError::SchemaError(reason)) => {
                tracing::warn!(%reason, "search index has an older schema; rebuilding it from the database");
                std::fs::remove_dir_all(dir).map_err(|e| folder_error(e.to_string()))?;
                std::fs::create_dir_all(dir).map_err(|e| folder_error(e.to_string()))?;
                open()?
            }
            Err(e) => return Err(e.into()),
        };
        let folded = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(64))
            .filter(LowerCaser)
            .filter(AsciiFoldingFilter)
            .build();
        let exact = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(64))
            .filter(LowerCaser)
            .build();
        index.tokenizers().register(FOLDED, folded);
        index.tokenizers().register(EXACT, exact);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()?;
        Ok(Self {
            index,
            reader,
            fields,
            sync_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// How far the index has followed the database: the highest page id and change-log entry it holds.
    pub fn watermark(&self) -> Result<Watermark, IndexError> {
        let metas = self.index.load_metas()?;
        Ok(metas
            .payload
            .as_deref()
            .map(Watermark::parse)
            .unwrap_or_default())
    }

    /// Adds the pages the database has and the index lacks, then re-reads every dossier whose details
    /// changed (status, applicant, a document replaced). Returns how many pages were written, 0 when the
    /// index is current or another process holds the writer (it will do the work).
    pub async fn sync(&self, repo: &Repo) -> Result<usize, IndexError> {
        let _one_at_a_time = self.sync_lock.lock().await;
        let mut mark = self.watermark()?;
        let latest = Watermark {
            pages: repo.latest_page_id().await?,
            changes: repo.latest_change().await?,
        };
        if latest.pages <= mark.pages && latest.changes <= mark.changes {
            return Ok(0);
        }
        let Some(mut writer) = self.try_writer()? else {
            return Ok(0);
        };
        let mut written = 0;
        loop {
            let pages = repo.pages_after(mark.pages, SYNC_BATCH).await?;
            let Some(last) = pages.last() else { break };
            mark.pages = last.id;
            for page in &pages {
                self.add(&writer, page)?;
            }
            written += pages.len();
            // A commit per batch keeps the writer's memory to one batch and a long rebuild resumable.
            self.commit(&mut writer, mark)?;
        }
        // Pages follow a changed dossier to its new details; a replaced document's pages leave.
        let f = self.fields;
        loop {
            let changes = repo.changes_after(mark.changes, SYNC_BATCH).await?;
            let Some(&(last, _)) = changes.last() else {
                break;
            };
            mark.changes = last;
            let mut dossiers: Vec<&str> = changes.iter().map(|(_, d)| d.as_str()).collect();
            dossiers.sort_unstable();
            dossiers.dedup();
            for dossier in dossiers {
                writer.delete_term(Term::from_field_text(f.dossier, dossier));
                for page in repo.dossier_pages(dossier).await? {
                    self.add(&writer, &page)?;
                    written += 1;
                }
            }
            self.commit(&mut writer, mark)?;
        }
        Ok(written)
    }

    /// Empties the index and rebuilds it from the database.
    pub async fn rebuild(&self, repo: &Repo) -> Result<usize, IndexError> {
        {
            let _one_at_a_time = self.sync_lock.lock().await;
            let mut writer = self.try_writer()?.ok_or_else(|| IndexError::Folder {
                path: "index".to_owned(),
                reason: "another sohoa process is writing the index; stop it and try again"
                    .to_owned(),
            })?;
            writer.delete_all_documents()?;
            // Every change so far is reflected by reading the pages afresh.
            let mark = Watermark {
                pages: 0,
                changes: repo.latest_change().await?,
            };
            self.commit(&mut writer, mark)?;
        }
        self.sync(repo).await
    }

    /// Adds pages straight to the index, bypassing the database (the search benchmark's corpus), with a
    /// commit every `chunk` pages (reported to `progress`), then waits for segment merges to finish.
    pub fn bulk_load(
        &self,
        pages: impl Iterator<Item = IndexedPage>,
        chunk: usize,
        progress: impl Fn(usize),
    ) -> Result<usize, IndexError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut writer: IndexWriter = self.index.writer_with_num_threads(threads, 400_000_000)?;
        let mut mark = self.watermark()?;
        let mut added = 0;
        for page in pages {
            mark.pages = mark.pages.max(page.id);
            self.add(&writer, &page)?;
            added += 1;
            if added % chunk.max(1) == 0 {
                self.commit(&mut writer, mark)?;
                progress(added);
            }
        }
        self.commit(&mut writer, mark)?;
        progress(added);
        writer.wait_merging_threads()?;
        self.reader.reload()?;
        Ok(added)
    }

    fn try_writer(&self) -> Result<Option<IndexWriter>, IndexError> {
        match self.index.writer_with_num_threads(1, WRITER_HEAP) {
            Ok(writer) => Ok(Some(writer)),
            Err(TantivyError::LockFailure(LockError::LockBusy, _)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn add(&self, writer: &IndexWriter, page: &IndexedPage) -> Result<(), IndexError> {
        let f = self.fields;
        let id = u64::try_from(page.id).unwrap_or(0);
        // Deleting first makes re-adding a page after a crash between commit and payload harmless.
        writer.delete_term(Term::from_field_u64(f.page_id, id));
        let text: String = page.text.nfc().collect();
        let meta: String = format!(
            "{} {} {} {}",
            page.applicant, page.dossier, page.procedure, page.unit
        )
        .nfc()
        .collect();
        writer.add_document(doc!(
            f.page_id => id,
            f.dossier => page.dossier.as_str(),
            f.procedure => page.procedure.as_str(),
            f.unit => page.unit.as_str(),
            f.kind => page.kind.as_str(),
            f.document => page.document.as_str(),
            f.page => u64::from(page.number),
            f.text => text.as_str(),
            f.text_exact => text.as_str(),
            f.meta => meta.as_str(),
            f.meta_exact => meta.as_str(),
            f.applicant => page.applicant.as_str(),
            f.status => u64::from(page.status),
            f.received => page.received,
            f.level => page.level.as_str(),
            f.field => page.field.as_str(),
        ))?;
        Ok(())
    }

    fn commit(&self, writer: &mut IndexWriter, mark: Watermark) -> Result<(), IndexError> {
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&mark.to_payload());
        prepared.commit()?;
        self.reader.reload()?;
        Ok(())
    }

    /// Finds the pages matching `query`, in its order, and counts every match.
    pub fn search(&self, query: &SearchQuery) -> Result<SearchResults, IndexError> {
        let f = self.fields;
        let text = plain_words(&query.text);
        if !text.chars().any(char::is_alphanumeric) {
            return Err(IndexError::EmptyQuery);
        }
        let mut parser = QueryParser::for_index(
            &self.index,
            vec![f.text, f.text_exact, f.meta, f.meta_exact],
        );
        parser.set_conjunction_by_default();
        parser.set_field_boost(f.text_exact, EXACT_BOOST);
        parser.set_field_boost(f.meta_exact, EXACT_BOOST);
        // Only words and quoted phrases reach the parser (see `plain_words`), leniently parsed.
        let (words, _) = parser.parse_query_lenient(&text);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, words.box_clone())];
        let term = |field, value: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, value.trim()),
                IndexRecordOption::Basic,
            ))
        };
        for (field, value) in [
            (f.unit, &query.unit),
            (f.level, &query.level),
            (f.procedure, &query.procedure),
            (f.field, &query.field),
            (f.kind, &query.kind),
            (f.dossier, &query.dossier),
        ] {
            if let Some(value) = value {
                clauses.push((Occur::Must, term(field, value)));
            }
        }
        if let Some(units) = &query.units {
            let any_unit = units
                .iter()
                .map(|unit| (Occur::Should, term(f.unit, unit)))
                .collect();
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(any_unit))));
        }
        if let Some(status) = query.status {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_u64(f.status, u64::from(status)),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        if query.received_from.is_some() || query.received_until.is_some() {
            let bound = |at: Option<i64>, inclusive: bool| match at {
                None => Bound::Unbounded,
                Some(at) if inclusive => Bound::Included(Term::from_field_i64(f.received, at)),
                Some(at) => Bound::Excluded(Term::from_field_i64(f.received, at)),
            };
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    bound(query.received_from, true),
                    bound(query.received_until, false),
                )),
            ));
        }
        let combined = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let limit = query.limit.clamp(1, MAX_LIMIT);
        let offset = query.offset.min(MAX_OFFSET);
        let top = TopDocs::with_limit(limit).and_offset(offset);
        let (found, total): (Vec<(f32, tantivy::DocAddress)>, usize) = match query.order {
            SearchOrder::Relevance => searcher.search(&combined, &(top, Count))?,
            SearchOrder::Newest | SearchOrder::Oldest => {
                let order = if query.order == SearchOrder::Newest {
                    Order::Desc
                } else {
                    Order::Asc
                };
                let by_date = top.order_by_fast_field::<i64>("received", order);
                let (found, total) = searcher.search(&combined, &(by_date, Count))?;
                (found.into_iter().map(|(_, a)| (0.0, a)).collect(), total)
            }
        };
        let mut snippets = SnippetGenerator::create(&searcher, &*words, f.text)?;
        snippets.set_max_num_chars(240);
        let mut hits = Vec::with_capacity(found.len());
        for (score, address) in found {
            let doc: TantivyDocument = searcher.doc(address)?;
            let text_of = |field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let number_of = |field| doc.get_first(field).and_then(|v| v.as_u64()).unwrap_or(0);
            let received = doc
                .get_first(f.received)
                .and_then(|v| v.as_i64())
                .unwrap_or(0);
            let snippet = snippets.snippet_from_doc(&doc);
            hits.push(SearchHit {
                dossier: text_of(f.dossier),
                document: text_of(f.document),
                kind: text_of(f.kind),
                page: number_of(f.page),
                unit: text_of(f.unit),
                procedure: text_of(f.procedure),
                applicant: text_of(f.applicant),
                status: number_of(f.status),
                received_at: crate::time::from_unix(received),
                score,
                snippet: snippet.fragment().to_owned(),
                highlights: snippet
                    .highlighted()
                    .iter()
                    .map(|r| (r.start, r.end))
                    .collect(),
            });
        }
        Ok(SearchResults { total, hits })
    }
}

/// How far the index has followed the database, kept in its commit payload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Watermark {
    /// The highest page id indexed.
    pub pages: i64,
    /// The last dossier change applied.
    pub changes: i64,
}

impl Watermark {
    fn parse(payload: &str) -> Self {
        let mut mark = Self::default();
        for part in payload.split(';') {
            match part.split_once(':') {
                Some(("pages", n)) => mark.pages = n.parse().unwrap_or(0),
                Some(("changes", n)) => mark.changes = n.parse().unwrap_or(0),
                _ => {}
            }
        }
        mark
    }

    fn to_payload(self) -> String {
        format!("pages:{};changes:{}", self.pages, self.changes)
    }
}

/// Deepest page of results served: paging further is a sign of a crawler, not an archivist.
const MAX_OFFSET: usize = 10_000;

/// Longest search text read, in characters; the rest is ignored.
const MAX_QUERY_CHARS: usize = 500;

/// What the query parser is given: the archivist's words (NFC), quoted phrases when the quotes pair up,
/// and a leading `-` to leave a word out; every other character of tantivy's query syntax (fields, ranges,
/// sets, boosts, escapes, control characters) becomes a space. Archivists type words, and the full syntax
/// lets a 21-byte query make the lenient parser allocate gigabytes (found by the `search_query` fuzz
/// target).
fn plain_words(text: &str) -> String {
    let text: String = text.nfc().take(MAX_QUERY_CHARS).collect();
    let quotes_pair = text.chars().filter(|&c| c == '"').count() % 2 == 0;
    let mut out = String::with_capacity(text.len());
    let mut previous = ' ';
    for c in text.chars() {
        let keep = c.is_alphanumeric()
            || (c == '"' && quotes_pair)
            || (c == '-' && previous.is_whitespace());
        let c = if keep { c } else { ' ' };
        out.push(c);
        previous = c;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_words_and_phrases_reach_the_parser() {
        assert_eq!(plain_words("nguyễn văn a"), "nguyễn văn a");
        assert_eq!(
            plain_words("\"giấy chứng nhận\" -bản"),
            "\"giấy chứng nhận\" -bản"
        );
        assert_eq!(
            plain_words("text:đất AND [a TO z]^2"),
            "text đất AND  a TO z  2"
        );
        assert_eq!(plain_words("\"unpaired quote"), " unpaired quote");
        assert_eq!(plain_words("a-b"), "a b");
        assert_eq!(plain_words(&"x".repeat(10_000)).len(), MAX_QUERY_CHARS);
    }

    #[test]
    fn the_query_that_made_the_parser_allocate_gigabytes_is_answered_at_once() {
        // fuzz/regressions/search_query/oom-b42cdc8111a66b03ee65247b57fb9a2837e405dc
        let found_by_fuzzing = "IN[\0\0\0\\_\x0c\0\x07ss\rO\rNI\rT\\";
        let dir = tempfile::tempdir().unwrap();
        let index = SearchIndex::open(dir.path()).unwrap();
        let started = std::time::Instant::now();
        let hits = index
            .search(&SearchQuery {
                text: found_by_fuzzing.to_owned(),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert!(hits.hits.is_empty());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
