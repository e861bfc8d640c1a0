//! line-audit's integration tests, one binary (the workspace's test layout): formats against
//! LINE's guideline rows, escaping, capping, rotation and retention, durability under SIGKILL,
//! search and trace over `tests/fixtures`, and the real client as the observer.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests bound real waits and date files by the real time (the root clippy.toml's clock rule
// is for library code).
#![allow(clippy::disallowed_methods)]

mod capping;
mod client_observer;
mod durability;
mod escaping_prop;
mod format;
mod rotation;
mod search_trace;
