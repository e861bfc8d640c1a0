//! Integration tests for line-login: every endpoint against a local HTTP stub, ID token
//! verification (security catalogue group A), and the outbound policy on a mock clock.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
// Tests measure real waits and build tokens from the real time (the root clippy.toml's clock
// rule is for library code).
#![allow(clippy::disallowed_methods)]

mod assertion;
mod endpoints;
mod fuzz;
mod id_token;
mod policy;
mod stub;
mod tokens;
