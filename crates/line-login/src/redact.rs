//! Redaction of secret values in request and response bodies.
//!
//! Secret values are replaced by `#` followed by the first 8 hex digits of their SHA-256, so
//! two log lines about the same token can still be correlated without revealing it.
//! The same short hash is available as [`short_hash`] for callers that want to look a
//! token up in redacted logs.

use sha2::{Digest, Sha256};

/// Field names whose values are secrets, in form bodies and JSON bodies alike.
///
/// Includes the OAuth form fields the client sends (`client_secret`, `code`, `code_verifier`,
/// `refresh_token`, `access_token`, `id_token`, `client_assertion`), LINE's JSON names
/// (`userAccessToken`), and the token fields of responses.
pub const SECRET_FIELDS: &[&str] = &[
    "client_secret",
    "code",
    "code_verifier",
    "access_token",
    "refresh_token",
    "id_token",
    "client_assertion",
    "userAccessToken",
    "assertion",
];

/// Whether a field name is one whose value must not be logged.
pub fn is_secret_field(name: &str) -> bool {
    SECRET_FIELDS.contains(&name)
}

/// `#` + the first 8 lowercase hex digits of SHA-256(value).
pub fn short_hash(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    let mut out = String::with_capacity(9);
    out.push('#');
    for b in &digest[..4] {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Redacts an `application/x-www-form-urlencoded` body. Pairs keep their order; the values of
/// secret fields become [`short_hash`]es of their decoded values.
pub fn form_body(body: &str) -> String {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| {
            let v = if is_secret_field(&k) {
                short_hash(&v)
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Redacts a JSON body: the string values of secret fields, at any depth, become
/// [`short_hash`]es. A body that is not JSON is kept only if it is short and looks like
/// text without tokens; otherwise it is replaced by a placeholder giving its length.
pub fn json_body(body: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut value) => {
            redact_value(&mut value);
            value.to_string()
        }
        Err(_) => opaque_body(body),
    }
}

/// Redacts a body whose type is known only by its bytes: JSON if it parses, otherwise a form
/// body if it looks like one, otherwise an opaque placeholder.
pub fn any_body(body: &[u8]) -> String {
    if body.is_empty() {
        return String::new();
    }
    if serde_json::from_slice::<serde_json::Value>(body).is_ok() {
        return json_body(body);
    }
    match std::str::from_utf8(body) {
        Ok(text) if text.contains('=') && !text.contains(char::is_whitespace) => form_body(text),
        _ => opaque_body(body),
    }
}

fn opaque_body(body: &[u8]) -> String {
    format!("[{} bytes, not JSON]", body.len())
}

fn redact_value(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if let (true, serde_json::Value::String(s)) = (is_secret_field(k), &*v) {
                    *v = serde_json::Value::String(short_hash(s));
                    continue;
                }
                redact_value(v);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_secrets_are_hashed_and_others_kept() {
        let out =
            form_body("grant_type=authorization_code&code=abc&client_secret=s3cr3t&client_id=123");
        assert!(out.contains("grant_type=authorization_code"));
        assert!(out.contains("client_id=123"));
        assert!(!out.contains("abc&"));
        assert!(!out.contains("s3cr3t"));
        assert!(out.contains(&short_hash("s3cr3t").replace('#', "%23")));
    }

    #[test]
    fn json_secrets_are_hashed_at_any_depth() {
        let out = json_body(
            br#"{"access_token":"AT","nested":{"refresh_token":"RT"},"scope":"profile"}"#,
        );
        assert!(!out.contains("\"AT\""));
        assert!(!out.contains("\"RT\""));
        assert!(out.contains("profile"));
        assert!(out.contains(&short_hash("AT")));
    }

    #[test]
    fn non_json_is_summarised() {
        assert_eq!(json_body(b"<html>secret</html>"), "[19 bytes, not JSON]");
    }

    #[test]
    fn short_hash_is_stable() {
        assert_eq!(short_hash("abc"), "#ba7816bf");
    }
}
