//! Command-line arguments (clap derive). Each subcommand's arguments live next to its code
//! in `commands/`.

use clap::{Parser, Subcommand};

use crate::commands;

/// LINE Login done by the guidelines: emulator, guideline logs, login server, load tests.
#[derive(Debug, Parser)]
#[command(name = "linelogin", version, about, long_about = None)]
pub struct Cli {
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the LINE Platform emulator (the test environment LINE's guidelines ask for).
    Emulator(commands::emulator::EmulatorArgs),
    /// Search, trace and prune the guideline logs.
    Logs(commands::logs::LogsArgs),
    /// Drive full login flows against a relying party on the emulator (never the real LINE).
    Loadtest(Box<commands::loadtest::LoadtestArgs>),
    /// Run the login server (`--config FILE`; every key also from LINELOGIN_* variables).
    Serve(commands::serve::ServeArgs),
    /// Run the emulator and the login server together, with zero configuration.
    Demo(commands::demo::DemoArgs),
    /// Compliance self-check of a login server configuration and its outbox.
    Check(commands::check::CheckArgs),
    /// The deauthorization outbox: list, show, retry or cancel jobs.
    Outbox(commands::outbox::OutboxArgs),
    /// Accounts, for support staff: find, show, unregister or unlink on a user's behalf.
    Accounts(commands::accounts::AccountsArgs),
    /// The token encryption key: generate a new one, re-encrypt stored tokens under it.
    Keys(commands::keys::KeysArgs),
}
