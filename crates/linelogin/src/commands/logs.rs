//! `linelogin logs`.

use std::io::Write;

use super::CliError;

/// Arguments of `linelogin logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {}

/// Runs a logs subcommand.
pub fn run(_args: LogsArgs, _out: &mut impl Write) -> Result<(), CliError> {
    Err(CliError::failure("the logs commands are not built yet"))
}
