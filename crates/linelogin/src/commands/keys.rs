//! `linelogin keys generate|rotate`: the token encryption key.

use std::io::Write;

use linelogin_server::admin::{ROTATE_BATCH, RotateCounts, rotate_keys};
use linelogin_server::config::EncryptionKey;
use linelogin_server::crypto::TokenCipher;

use super::CliError;
use super::admin::{ConfigArg, json, store_failure, with_store};

/// Arguments of `linelogin keys`.
#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: KeysCommand,
}

/// The `keys` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Print a new random key (base64 of 32 bytes) for `token_encryption_key`.
    Generate,
    /// Re-encrypt every stored token (accounts' and pending or failed deauthorization jobs')
    /// that is not under `token_encryption_key`, reading it with
    /// `previous_token_encryption_keys`. Safe beside running servers, idempotent and
    /// resumable: run it again after an interruption. Exit status 1 while some tokens are not
    /// under the current key yet (changed meanwhile, or decrypting under no configured key).
    Rotate {
        /// The configuration (with the new key as `token_encryption_key` and the old one in
        /// `previous_token_encryption_keys`).
        #[command(flatten)]
        config: ConfigArg,
        /// Rows read per batch.
        #[arg(long, default_value_t = ROTATE_BATCH, value_parser = clap::value_parser!(i64).range(1..=100_000))]
        batch: i64,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn counts_line(name: &str, c: &RotateCounts) -> String {
    format!(
        "{name}: {} scanned, {} already under the current key, {} re-encrypted, {} changed \
         meanwhile, {} decrypt under no configured key",
        c.scanned, c.current, c.reencrypted, c.changed_meanwhile, c.undecryptable
    )
}

/// Runs a `keys` subcommand.
pub fn run(args: KeysArgs, out: &mut impl Write) -> Result<(), CliError> {
    match args.command {
        KeysCommand::Generate => {
            writeln!(out, "{}", EncryptionKey::generate().to_base64())?;
            Ok(())
        }
        KeysCommand::Rotate {
            config,
            batch,
            json: as_json,
        } => {
            let config = config.load()?;
            let cipher = TokenCipher::from_config(&config);
            let report = with_store(&config, async |store| {
                rotate_keys(&*store, &cipher, batch)
                    .await
                    .map_err(store_failure)
            })?;
            if as_json {
                json(out, &report)?;
            } else {
                writeln!(out, "{}", counts_line("accounts", &report.accounts))?;
                writeln!(out, "{}", counts_line("jobs", &report.jobs))?;
            }
            let undecryptable = report.accounts.undecryptable + report.jobs.undecryptable;
            let changed = report.accounts.changed_meanwhile + report.jobs.changed_meanwhile;
            if undecryptable > 0 {
                return Err(CliError::failure(format!(
                    "{undecryptable} token pairs decrypt under no configured key: add the key \
                     that wrote them to previous_token_encryption_keys and run again"
                )));
            }
            if changed > 0 {
                return Err(CliError::failure(format!(
                    "{changed} token pairs changed while being re-encrypted: run again"
                )));
            }
            Ok(())
        }
    }
}
