//! The guideline logs, behind one small trait so the server has a single place to adapt.
//!
//! LINE's development guidelines recommend logging every authorization request (time, full
//! URL) and every authorization response (time, method, path with query). [`AuditSink`] is
//! what the routes call; [`NoAudit`] drops the records (tests, libraries that log elsewhere).
//!
//! Every value is capped at `[logs] max_value_bytes` (default 2 KiB) by `line-audit`, so an
//! anonymous callback with a 50 KB query writes a record of about 2.1 KB, not 50 KB
//! (`tests/it/inbound.rs`); callbacks refused by the per-client limit write none.

use std::fmt;
use std::sync::Arc;

use line_login::observer::ApiObserver;

/// Receives the guideline log records of the login routes.
pub trait AuditSink: Send + Sync + fmt::Debug {
    /// An authorization request was built (the full URL the browser is sent to).
    fn authorization_request(&self, url: &url::Url);
    /// A callback arrived (method and path with query, as received).
    fn authorization_response(&self, method: &str, path_and_query: &str);
    /// The observer that logs LINE Login API calls, if this sink has one.
    fn api_observer(&self) -> Option<Arc<dyn ApiObserver>> {
        None
    }
}

/// Drops every record.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoAudit;

impl AuditSink for NoAudit {
    fn authorization_request(&self, _url: &url::Url) {}
    fn authorization_response(&self, _method: &str, _path_and_query: &str) {}
}

/// The guideline log files of `line-audit` (authorization requests, authorization responses,
/// LINE Login API calls), durable and rotated daily.
#[derive(Debug, Clone)]
pub struct GuidelineLogs {
    log: line_audit::AuditLog,
}

impl GuidelineLogs {
    /// Opens (creating) the log directory of the configuration.
    pub fn open(config: &crate::config::LogsConfig) -> Result<Self, line_audit::AuditError> {
        let mut c = line_audit::AuditConfig::new(config.dir.clone());
        c.retention_days = config.retention_days.max(1);
        c.bodies = config.bodies;
        c.max_value_bytes = config.max_value_bytes;
        c.instance = config.instance.clone();
        Ok(Self {
            log: line_audit::AuditLog::open(c)?,
        })
    }

    /// The underlying log (for maintenance: pruning, stats).
    pub fn log(&self) -> &line_audit::AuditLog {
        &self.log
    }
}

impl AuditSink for GuidelineLogs {
    fn authorization_request(&self, url: &url::Url) {
        if let Err(e) = self.log.authorization_request(self.log.now(), url.as_str()) {
            tracing::error!(error = %e, "could not write the authorization-request log");
        }
    }

    fn authorization_response(&self, method: &str, path_and_query: &str) {
        if let Err(e) = self
            .log
            .authorization_response(self.log.now(), method, path_and_query)
        {
            tracing::error!(error = %e, "could not write the authorization-response log");
        }
    }

    fn api_observer(&self) -> Option<Arc<dyn ApiObserver>> {
        Some(self.log.observer())
    }
}
