//! Integration tests of the login server (one test binary).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod browser;
mod crash;
mod emulator;
mod experience;
mod fake_line;
mod flow;
mod hardening_line;
mod harness;
mod inbound;
mod load429;
mod security;
mod store;
