//! Integration tests of the login server (one test binary).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod browser;
mod crash;
mod emulator;
mod fake_line;
mod fleet;
mod flow;
mod hardening_line;
mod harness;
mod load429;
mod security;
mod store;
