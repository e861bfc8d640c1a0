//! # line-audit
//!
//! The LINE Login guideline logs.
