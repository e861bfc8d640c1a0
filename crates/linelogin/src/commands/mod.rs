//! The subcommands. Each takes its parsed arguments and a writer for its normal output.

pub mod accounts;
pub mod admin;
pub mod check;
pub mod demo;
pub mod emulator;
pub mod keys;
pub mod loadtest;
pub mod logs;
pub mod outbox;
pub mod serve;

use std::fmt;
use std::io::Write;

use crate::args::{Cli, Command};

/// A command failure: one clear line for stderr, and an exit status.
#[derive(Debug)]
pub struct CliError {
    message: String,
    code: u8,
    broken_pipe: bool,
}

impl CliError {
    /// A failure (exit status 1).
    pub fn failure(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 1,
            broken_pipe: false,
        }
    }

    /// Bad usage (exit status 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 2,
            broken_pipe: false,
        }
    }

    /// The exit status for this error.
    pub fn exit_code(&self) -> u8 {
        self.code
    }

    /// Whether the error is a closed stdout (e.g. piped into `head`), which is not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        self.broken_pipe
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<std::io::Error> for CliError {
    fn from(err: std::io::Error) -> Self {
        let broken_pipe = err.kind() == std::io::ErrorKind::BrokenPipe;
        Self {
            message: err.to_string(),
            code: 1,
            broken_pipe,
        }
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli, out: &mut impl Write) -> Result<(), CliError> {
    match cli.command {
        Command::Emulator(args) => emulator::run(args, out),
        Command::Logs(args) => logs::run(args, out),
        Command::Loadtest(args) => loadtest::run(*args, out),
        Command::Serve(args) => serve::run(args, out),
        Command::Demo(args) => demo::run(args, out),
        Command::Check(args) => check::run(args, out),
        Command::Outbox(args) => outbox::run(args, out),
        Command::Accounts(args) => accounts::run(args, out),
        Command::Keys(args) => keys::run(args, out),
    }
}
