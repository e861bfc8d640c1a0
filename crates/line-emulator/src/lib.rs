//! # line-emulator
//!
//! A local LINE Platform emulator.
