//! Page records on their way to the database, kept in a work file: a 500-page document's text and word
//! boxes (about 20 KB a page) would otherwise sit in memory until the one transaction that records them.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, Write};
use std::path::Path;

use super::NewPage;

/// Page records written one by one and read back in order, one JSON line each.
#[derive(Debug)]
pub struct PageSpool {
    writer: BufWriter<File>,
    count: usize,
    pdf_pages: HashMap<u32, u32>,
}

impl PageSpool {
    /// A spool in a new unnamed work file in `dir` (removed by the system when dropped).
    pub fn new_in(dir: &Path) -> io::Result<Self> {
        Ok(Self {
            writer: BufWriter::new(tempfile::tempfile_in(dir)?),
            count: 0,
            pdf_pages: HashMap::new(),
        })
    }

    /// Appends a page record.
    pub fn push(&mut self, page: &NewPage) -> io::Result<()> {
        serde_json::to_writer(&mut self.writer, page)?;
        self.writer.write_all(b"\n")?;
        self.count += 1;
        Ok(())
    }

    /// How many records were written.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no record was written.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Records, after the fact, that page `number` went into the PDF as page `pdf_page`.
    pub fn set_pdf_page(&mut self, number: u32, pdf_page: u32) {
        self.pdf_pages.insert(number, pdf_page);
    }

    /// Reads the records back, in the order written.
    pub fn read(&mut self) -> io::Result<impl Iterator<Item = io::Result<NewPage>> + '_> {
        self.writer.flush()?;
        let mut file = self.writer.get_ref().try_clone()?;
        file.rewind()?;
        let pdf_pages = &self.pdf_pages;
        Ok(BufReader::new(file).lines().map(move |line| {
            let mut page: NewPage = serde_json::from_str(&line?)?;
            if let Some(&pdf_page) = pdf_pages.get(&page.number) {
                page.pdf_page = Some(pdf_page);
            }
            Ok(page)
        }))
    }
}
