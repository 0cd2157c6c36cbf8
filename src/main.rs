//! The `sohoa` command: see `sohoa --help`.

/// The hidden first argument that makes this program a SANE scan helper (see
/// `scanner_drivers::isolated`): scans run in a process of their own, so a backend that hangs its process
/// cannot hang the archive.
const SANE_HELPER: &str = "__sane-scan-helper";

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let [_, helper, device, settings] = args.as_slice()
        && helper == SANE_HELPER
    {
        scanner_drivers::isolated::serve_helper(device, settings);
    }
    limit_malloc_arenas();
    if let Ok(program) = std::env::current_exe() {
        scanner_drivers::isolated::use_helper(program, vec![SANE_HELPER.to_owned()]);
    }
    sohoa::cli::main()
}

/// glibc gives every thread that allocates its own arena, up to eight per core, and keeps what it frees in
/// them: page images of tens of megabytes freed on one thread and allocated on another then add up, and
/// peak memory creeps up with the length of a dossier. One arena per core keeps it flat (measured: 20 pages
/// 381 MB, 100 pages 422 MB, where the default gave 428 and 438) at the same speed.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = libc::c_int::try_from(cores.max(2)).unwrap_or(libc::c_int::MAX);
        // SAFETY: called first thing in main, before any other thread exists; mallopt only sets a tunable.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}
