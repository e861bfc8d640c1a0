//! Integration tests: the emulator driven over real HTTP on 127.0.0.1:0.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests bound real waits and build tokens from the real time (the root clippy.toml's clock
// rule is for library code).
#![allow(clippy::disallowed_methods)]

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
