//! Deauthorization: the durable outbox and its worker.
//!
//! LINE's development guidelines require that when a user unregisters or unlinks, the app
//! deauthorizes itself for that user at LINE. Here that is an outbox: the job row is written in
//! the same transaction that deletes or unlinks the account ([`crate::accounts`]), so it exists
//! before the POST returns and survives restarts and crashes; [`worker`] sends it.

pub mod keys;
pub mod outbox;
pub mod worker;
