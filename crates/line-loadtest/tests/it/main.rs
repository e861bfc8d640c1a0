//! `line-loadtest`'s tests: the guard that keeps load away from the real LINE Platform, and full
//! runs against the emulator and a small relying party built on `line-login` alone.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod emulator;
mod guard;
mod rp;
