//! The README's shell commands, run as a newcomer would run them.
//!
//! The convention: a fenced `sh` block right after the line `<!-- test: run -->` is run, command
//! by command, in a scratch directory, with `linelogin …` and `cargo run … -p linelogin -- …`
//! both meaning the binary under test. A command that runs until Ctrl-C (`demo`) is started in
//! the background on free ports (`--listen 127.0.0.1:0 --emulator-listen 127.0.0.1:0` added),
//! waited for, and stopped at the end. Every other shell command in the README, marked block
//! or not, must be in [`SKIP`] with the reason it cannot run here: a new unmarked block fails
//! this test until it is marked or listed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const README: &str = include_str!("../../../../README.md");
const MARK: &str = "<!-- test: run -->";

/// Commands (by prefix, after `linelogin ` is normalized) that do not run here, and why.
const SKIP: &[(&str, &str)] = &[
    (
        "cargo install",
        "installs into ~/.cargo/bin and compiles for minutes; the test runs the built binary",
    ),
    ("cargo test", "is the test suite itself"),
    (
        "linelogin check --config server.toml",
        "needs the reader's server.toml with a real LINE channel",
    ),
    (
        "linelogin serve --config server.toml",
        "needs the reader's server.toml with a real LINE channel",
    ),
    (
        "linelogin emulator --config examples/gateway/emulator.toml",
        "fixed ports; tests/it/gateway.rs runs this file on free ports",
    ),
    (
        "linelogin serve --config examples/gateway/",
        "fixed ports; tests/it/gateway.rs runs these files on free ports",
    ),
    (
        "(cd examples/upstream-python",
        "fixed ports; tests/it/gateway.rs runs this app on free ports",
    ),
    (
        "mkdir -p /tmp/nginx/tmp && nginx -p /tmp/nginx -c",
        "fixed ports; tests/it/gateway.rs runs deploy/nginx/linelogin.conf on free ports",
    ),
    (
        "caddy run --config deploy/caddy/Caddyfile",
        "fixed ports; tests/it/gateway.rs runs deploy/caddy/Caddyfile on free ports",
    ),
    (
        "linelogin logs --dir linelogin-demo/logs trace STATE_OR_REQUEST_ID",
        "STATE_OR_REQUEST_ID is a placeholder for an id from the reader's own login",
    ),
];

struct Block {
    run: bool,
    commands: Vec<String>,
}

/// The README's shell blocks, each with whether it is marked to run.
fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    let mut previous = "";
    while let Some(line) = lines.next() {
        let fence = line.trim_start();
        if let Some(lang) = fence.strip_prefix("```")
            && matches!(lang.trim(), "sh" | "bash" | "shell" | "console")
        {
            let mut commands = Vec::new();
            for body in lines.by_ref() {
                let body = body.trim();
                if body.starts_with("```") {
                    break;
                }
                let command = body.split("  #").next().unwrap_or("").trim();
                let command = command.strip_prefix("$ ").unwrap_or(command);
                if !command.is_empty() && !command.starts_with('#') {
                    commands.push(command.to_owned());
                }
            }
            out.push(Block {
                run: previous.trim() == MARK,
                commands,
            });
        }
        if !line.trim().is_empty() {
            previous = line;
        }
    }
    out
}

/// `cargo run … -p linelogin -- ARGS` and `linelogin ARGS` → `linelogin ARGS`.
fn normalize(command: &str) -> String {
    match command.split_once(" -p linelogin -- ") {
        Some((cargo, rest)) if cargo.starts_with("cargo run") => format!("linelogin {rest}"),
        _ => command.to_owned(),
    }
}

fn skipped(command: &str) -> Option<&'static str> {
    SKIP.iter()
        .find(|(prefix, _)| command.starts_with(prefix))
        .map(|(_, why)| *why)
}

fn linelogin(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_linelogin"));
    for (k, _) in std::env::vars() {
        if k.starts_with("LINELOGIN_") {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(dir).args(args);
    cmd
}

/// A background command, killed (and reaped) when the test ends.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn every_readme_shell_command_runs_or_is_skipped_with_a_reason() {
    let blocks = blocks(README);
    assert!(
        blocks.iter().any(|b| b.run),
        "no README block is marked {MARK}"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut background = Vec::new();
    let mut ran = 0;
    for block in &blocks {
        for command in &block.commands {
            let command = normalize(command);
            if skipped(&command).is_some() {
                continue;
            }
            assert!(
                block.run,
                "README command {command:?} is in an unmarked block: put {MARK} before the \
                 block, or add it to SKIP with the reason it cannot run"
            );
            let Some(args) = command.strip_prefix("linelogin ") else {
                panic!(
                    "README command {command:?}: only linelogin commands run here; add it to SKIP"
                );
            };
            let mut args: Vec<&str> = args.split_whitespace().collect();
            if args.first() == Some(&"demo") {
                args.extend([
                    "--listen",
                    "127.0.0.1:0",
                    "--emulator-listen",
                    "127.0.0.1:0",
                ]);
                let mut child = linelogin(dir.path(), &args)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                let stdout = child.stdout.take().unwrap();
                background.push(Background(child));
                let ready = BufReader::new(stdout)
                    .lines()
                    .map_while(Result::ok)
                    .any(|l| l.starts_with("Press Ctrl-C"));
                assert!(ready, "README command {command:?} never became ready");
            } else {
                let out = linelogin(dir.path(), &args).output().unwrap();
                assert!(
                    out.status.success(),
                    "README command {command:?} failed ({}): {}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            ran += 1;
        }
    }
    assert!(ran >= 2, "ran {ran} README commands");
    drop(background);
}

#[test]
fn the_extractor_reads_marks_and_comments() {
    let text = "x\n\n<!-- test: run -->\n\n```sh\nlinelogin a   # note\n\n# only a comment\n```\n\
                ```sh\n$ cargo test\n```\n```rust\nfn main() {}\n```\n";
    let b = blocks(text);
    assert_eq!(b.len(), 2);
    assert!(b[0].run && !b[1].run);
    assert_eq!(b[0].commands, vec!["linelogin a"]);
    assert_eq!(b[1].commands, vec!["cargo test"]);
    assert_eq!(
        normalize("cargo run --release -p linelogin -- demo"),
        "linelogin demo"
    );
    assert!(skipped("cargo test --workspace").is_some());
}
