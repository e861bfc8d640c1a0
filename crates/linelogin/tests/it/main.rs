//! The `linelogin` binary, run as a process: the emulator command, the guideline-log commands,
//! the load-test command, and the process-wide memory settings.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
// Tests bound real waits and date logs by the real time (the root clippy.toml's clock rule
// is for library code).
#![allow(clippy::disallowed_methods)]

mod admin;
mod check;
mod common;
mod demo;
mod emulator;
mod gateway;
mod loadtest;
mod logs;
mod memory;
mod readme;
mod serve_logs;
