//! Webhooks to the app, per the Standard Webhooks specification
//! (<https://www.standardwebhooks.com>).
//!
//! Account events (`account.linked`, `account.unlinked`, `account.unregistered`,
//! `account.deauthorized`, `account.deauthorization_failed`) are written as outbox rows in the
//! same transaction as the state change they report (see [`crate::store::Store`]), only when
//! `[webhook]` is configured, and [`worker`] delivers them: at least once, retried with
//! backoff, each account's events in order, the same `webhook-id` on every attempt.
//!
//! Each delivery is a `POST` of the JSON payload
//! `{"type", "timestamp" (RFC 3339, of the event), "data": {"account", "userId", "job"?}}`
//! with the headers `webhook-id`, `webhook-timestamp` (Unix seconds of this attempt) and
//! `webhook-signature: v1,<base64 of HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, the key
//! being the bytes of the `whsec_…` secret.

pub mod worker;

use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::store::WebhookEvent;

/// The JSON body of an event. Deterministic: every attempt sends the same bytes.
pub fn payload(event: &WebhookEvent) -> String {
    let timestamp = time::OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(event.occurred_at).saturating_mul(1_000_000),
    )
    .ok()
    .and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_default();
    let mut data = serde_json::json!({
        "account": event.account_id,
        "userId": event.user_id,
    });
    if let (Some(job), Some(map)) = (&event.job_id, data.as_object_mut()) {
        map.insert("job".into(), serde_json::Value::String(job.clone()));
    }
    serde_json::json!({
        "type": event.kind,
        "timestamp": timestamp,
        "data": data,
    })
    .to_string()
}

/// The `webhook-signature` value: `v1,` and the base64 of HMAC-SHA256 over
/// `"{id}.{timestamp}.{body}"`.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!("v1,{sig}")
}

/// A new webhook event id (`msg_` + 128 random bits): the `webhook-id` of every attempt.
pub fn new_event_id() -> String {
    format!("msg_{}", crate::crypto::random_id(16))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signature_matches_the_reference_example() {
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap_or_else(|e| panic!("{e}"));
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn payload_has_type_time_and_data() {
        let event = WebhookEvent {
            id: "msg_1".into(),
            kind: "account.unregistered".into(),
            account_id: "a_1".into(),
            user_id: "U1".into(),
            job_id: Some("j_1".into()),
            occurred_at: 1_614_265_330_123,
            attempts: 1,
            lease: "l".into(),
        };
        let v: serde_json::Value =
            serde_json::from_str(&payload(&event)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v["type"], "account.unregistered");
        assert_eq!(v["timestamp"], "2021-02-25T15:02:10.123Z");
        assert_eq!(v["data"]["account"], "a_1");
        assert_eq!(v["data"]["userId"], "U1");
        assert_eq!(v["data"]["job"], "j_1");
        assert_eq!(
            payload(&event),
            payload(&event),
            "the same bytes every time"
        );
    }
}
