//! Integration tests: the emulator driven over real HTTP on 127.0.0.1:0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod authorize;
mod bounds;
mod channel_tokens;
mod client;
mod client_auth;
mod clock;
mod common;
mod cross;
mod developer;
mod flow;
mod hardening;
mod races;
mod resources;
