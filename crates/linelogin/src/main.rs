//! `linelogin`: the command-line front door of the linelogin workspace.

mod args;
mod commands;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// mimalloc: the emulator, the server and the load-test runner allocate many small, short-lived
/// buffers per request; it cut their CPU per login flow by a measured share (see the README's
/// performance table) over the system allocator. Its `override` feature makes it the C
/// allocator too (SQLite's `malloc`/`free`): glibc's malloc kept the memory SQLite freed, and the
/// server's resident memory rose under a steady load (`tests/it/memory.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process (and what it starts). mimalloc asks for
/// them on its large regions, and the kernel's `khugepaged` then fills whole 2 MiB pages around
/// the few 4 KiB pages in use: the server's resident memory rose by about 20 MiB some ten
/// minutes into a steady load, long after start-up. Our heaps are tens of MiB, where huge pages
/// save little. Failure (a kernel before 3.15) leaves the default: only memory use changes.
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}

fn main() -> ExitCode {
    disable_transparent_huge_pages();
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version go to stdout (exit 0). A usage error is one line on stderr
            // (clap's first line, then where to look), exit 2, as the README says.
            if !err.use_stderr() {
                let _ = err.print();
                return ExitCode::SUCCESS;
            }
            let text = err.to_string();
            let first = text.lines().next().unwrap_or("error: bad usage");
            eprintln!("{first} (see --help)");
            return ExitCode::from(2);
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match commands::run(cli, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = out.flush();
            if err.is_broken_pipe() {
                return ExitCode::SUCCESS;
            }
            eprintln!("linelogin: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
