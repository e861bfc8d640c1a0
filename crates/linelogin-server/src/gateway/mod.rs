//! The gateway: linelogin in front of, or beside, any web app.

pub mod api;
