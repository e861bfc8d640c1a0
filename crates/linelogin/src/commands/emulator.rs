//! `linelogin emulator`.

use std::io::Write;

use super::CliError;

/// Arguments of `linelogin emulator`.
#[derive(Debug, clap::Args)]
pub struct EmulatorArgs {}

/// Runs the emulator.
pub fn run(_args: EmulatorArgs, _out: &mut impl Write) -> Result<(), CliError> {
    Err(CliError::failure("the emulator is not built yet"))
}
