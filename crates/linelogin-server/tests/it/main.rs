//! Integration tests of the login server (one test binary).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
// Tests bound real waits and build tokens from the real time (the root clippy.toml's clock
// rule is for library code).
#![allow(clippy::disallowed_methods)]

mod api;
mod browser;
mod compose;
mod crash;
mod emulator;
mod experience;
mod fake_line;
mod fleet;
mod flow;
mod gateway;
mod hardening_db;
mod hardening_line;
mod hardening_listener;
mod harness;
mod inbound;
mod load429;
mod metrics;
mod notice;
mod outbox_fleet;
mod security;
mod store;
mod store_admin;
mod webhook;
