//! The hot folder over real files and the real binary: a slowly written page is waited for, a dossier's
//! files become one document, a bad file goes to failed/ with its reason, and a restart that finds files
//! already ingested stores nothing twice.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;

const DOSSIER: &str = "000.00.15.H27-231128-0042";

/// A watcher process, stopped when dropped (also when an assertion fails).
struct Watcher(Child);

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `sohoa watch` running on `folder`, its output lines on a channel.
fn watch(sohoa: &Sohoa, folder: &Path) -> (Watcher, mpsc::Receiver<String>) {
    let mut child = sohoa
        .command()
        .args([
            "watch",
            "--procedure",
            "1.001234",
            "--settle",
            "1",
            "--interval",
            "0.2",
        ])
        .arg(folder)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("sohoa watch starts");
    let stdout = child.stdout.take().unwrap();
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = send.send(line);
        }
    });
    (Watcher(child), receive)
}

fn next_line(lines: &mpsc::Receiver<String>) -> String {
    lines
        .recv_timeout(Duration::from_secs(120))
        .expect("the watcher reports within two minutes")
}

#[test]
fn the_hot_folder_waits_for_complete_files_and_ingests_each_dossier_once() {
    let sohoa = Sohoa::new();
    let hot = sohoa.dir.path().join("hot");
    std::fs::create_dir_all(&hot).unwrap();
    let page1 = sohoa.input("p1.jpg");
    write_jpeg(&render_page(LETTER), &page1);
    let page2 = sohoa.input("p2.jpg");
    write_jpeg(&render_page(CERTIFICATE), &page2);
    let (watcher, lines) = watch(&sohoa, &hot);

    // Page 1 arrives whole; page 2 is written slowly, stopping half-way for longer than the settle time.
    std::fs::copy(&page1, hot.join(format!("{DOSSIER}_001.jpg"))).unwrap();
    let second = std::fs::read(&page2).unwrap();
    let target = hot.join(format!("{DOSSIER}_002.jpg"));
    let mut file = std::fs::File::create(&target).unwrap();
    file.write_all(&second[..second.len() / 2]).unwrap();
    file.flush().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        lines.try_recv().is_err(),
        "nothing is taken while a page of the dossier is half-written"
    );
    assert!(hot.join(format!("{DOSSIER}_001.jpg")).exists());
    file.write_all(&second[second.len() / 2..]).unwrap();
    drop(file);

    let line = next_line(&lines);
    assert!(line.starts_with(&format!("ingested {DOSSIER}")), "{line}");
    assert!(line.contains("(2 pages from 2 files)"), "{line}");
    let document = line.split_whitespace().nth(4).unwrap().to_owned();
    for n in ["001", "002"] {
        assert!(hot.join("done").join(format!("{DOSSIER}_{n}.jpg")).exists());
        assert!(!hot.join(format!("{DOSSIER}_{n}.jpg")).exists());
    }
    let hits = sohoa.search("tran van binh");
    assert_eq!(hits[0]["page"].as_u64(), Some(1), "{hits:?}");
    let hits = sohoa.search("nguyen thi huong");
    assert_eq!(hits[0]["page"].as_u64(), Some(2), "{hits:?}");

    // A file that is no image: refused, moved to failed/ with the reason beside it.
    let bad = "000.00.15.H27-231128-0043_001.jpg";
    std::fs::write(hot.join(bad), "this is a note, not a scan").unwrap();
    let line = next_line(&lines);
    assert!(
        line.starts_with("refused 000.00.15.H27-231128-0043"),
        "{line}"
    );
    let reason =
        std::fs::read_to_string(hot.join("failed").join(format!("{bad}.reason.txt"))).unwrap();
    assert!(reason.contains("not a PNG, JPEG or TIFF"), "{reason}");

    // A dossier with one unreadable page: the good page is stored and its file done, the bad one's file
    // goes to failed/ saying how to replace it.
    let partial = "000.00.15.H27-231128-0044";
    std::fs::copy(&page2, hot.join(format!("{partial}_001.jpg"))).unwrap();
    std::fs::write(hot.join(format!("{partial}_002.jpg")), "half a scan").unwrap();
    let line = next_line(&lines);
    assert!(line.starts_with(&format!("ingested {partial}")), "{line}");
    assert!(line.contains("could not read"), "{line}");
    assert!(hot.join("done").join(format!("{partial}_001.jpg")).exists());
    let reason = std::fs::read_to_string(
        hot.join("failed")
            .join(format!("{partial}_002.jpg.reason.txt")),
    )
    .unwrap();
    assert!(
        reason.contains("page 2 could not be read") && reason.contains("replace-page"),
        "{reason}"
    );

    // A crash after storing but before moving leaves the files in place: a restart stores nothing twice.
    drop(watcher);
    std::fs::copy(&page1, hot.join(format!("{DOSSIER}_001.jpg"))).unwrap();
    std::fs::copy(&page2, hot.join(format!("{DOSSIER}_002.jpg"))).unwrap();
    let (_watcher, lines) = watch(&sohoa, &hot);
    let line = next_line(&lines);
    assert!(
        line.contains(&document),
        "the same document, not a second one: {line}"
    );
    assert!(
        hot.join("done")
            .join(format!("{DOSSIER}_001.jpg.1"))
            .exists()
    );
    let hits = sohoa.search("tran van binh");
    assert_eq!(hits.len(), 1, "{hits:?}");
}
