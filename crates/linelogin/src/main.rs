//! `linelogin`: the command-line front door of the linelogin workspace.

mod args;
mod commands;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// mimalloc: the emulator, the server and the load-test runner allocate many small, short-lived
/// buffers per request; it cut their CPU per login flow by a measured share (see the README's
/// performance table) over the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
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
