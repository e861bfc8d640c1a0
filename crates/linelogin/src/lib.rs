//! The `linelogin` crate: the command-line front door of the workspace, and the load-test
//! runner ([`loadtest`]) that drives full LINE Login flows against a relying party whose LINE
//! platform is the linelogin emulator — never the real LINE Platform.

pub mod loadtest;
