//! # line-login
//!
//! A typed client for the LINE Login v2.1 platform.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod observer;
pub mod pkce;
pub mod redact;
pub mod secret;
pub mod types;
pub mod wire;
