//! The `sohoa` command: see `sohoa --help`.

fn main() -> std::process::ExitCode {
    // Tesseract is built with OpenMP; left alone, every engine would spawn a thread per core on top of our
    // one worker per core. Set before any thread exists, so the environment is not read concurrently.
    if std::env::var_os("OMP_THREAD_LIMIT").is_none() {
        // SAFETY: the process is still single-threaded here.
        unsafe { std::env::set_var("OMP_THREAD_LIMIT", "1") };
    }
    sohoa::cli::main()
}
