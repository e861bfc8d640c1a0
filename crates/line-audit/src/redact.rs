//! Defensive redaction of bodies before they are written.
//!
//! The client already redacts bodies with [`line_login::redact`] before handing them to an
//! observer. This module runs a second, idempotent pass so that a body that reached the log
//! writer some other way (a hand-built record, a future client path) still never carries a
//! secret: the values of secret fields become [`short_hash`]es, and values that are already
//! short hashes (`#` + 8 hex digits) are left alone, so hashes stay comparable (the `trace`
//! command looks authorization codes up by their hash).
//!
//! Secret fields are those of [`line_login::redact::is_secret_field`] plus a few spellings
//! used by LINE's other APIs for channel access tokens. Any JWT-shaped string (an ID token, a
//! client assertion) found in a value that is not JSON or a form is hashed as well.

pub use line_login::redact::short_hash;
use serde_json::Value;

/// Extra field names treated as secrets, beyond `line_login::redact::SECRET_FIELDS`.
pub const EXTRA_SECRET_FIELDS: &[&str] = &[
    "channel_access_token",
    "channelAccessToken",
    "accessToken",
    "refreshToken",
    "idToken",
    "clientSecret",
    "codeVerifier",
    "client_assertion_jwt",
];

/// Whether a field name holds a secret.
pub fn is_secret_field(name: &str) -> bool {
    line_login::redact::is_secret_field(name) || EXTRA_SECRET_FIELDS.contains(&name)
}

/// Whether `s` is already a short hash (`#` followed by 8 lowercase hex digits).
pub fn is_short_hash(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 9
        && b[0] == b'#'
        && b[1..]
            .iter()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

fn hash_unless_hashed(v: &str) -> String {
    if is_short_hash(v) {
        v.to_owned()
    } else {
        short_hash(v)
    }
}

/// Redacts a body of any type (JSON, form, or other text); idempotent.
pub fn redact_body(body: &str) -> String {
    let trimmed = body.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && let Ok(mut v) = serde_json::from_str::<Value>(body)
    {
        return if redact_value(&mut v) {
            v.to_string()
        } else {
            body.to_owned()
        };
    }
    if body.contains('=') && !body.contains(char::is_whitespace) {
        return redact_form(body);
    }
    redact_jwts(body)
}

/// Redacts an `x-www-form-urlencoded` body; the original text is kept when nothing changes.
pub fn redact_form(body: &str) -> String {
    let mut changed = false;
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| {
            let v = if is_secret_field(&k) && !is_short_hash(&v) {
                changed = true;
                short_hash(&v)
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    if !changed {
        return body.to_owned();
    }
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Redacts secret fields at any depth; returns whether anything changed.
fn redact_value(value: &mut Value) -> bool {
    let mut changed = false;
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if is_secret_field(k)
                    && let Value::String(s) = v
                {
                    if !is_short_hash(s) {
                        *v = Value::String(hash_unless_hashed(s));
                        changed = true;
                    }
                    continue;
                }
                changed |= redact_value(v);
            }
        }
        Value::Array(items) => {
            for v in items {
                changed |= redact_value(v);
            }
        }
        Value::String(s) if looks_like_jwt(s) => {
            *s = short_hash(s);
            changed = true;
        }
        _ => {}
    }
    changed
}

fn is_b64url(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
}

/// Whether a string has the shape of a JWT (`eyJ…` with three base64url segments).
pub fn looks_like_jwt(s: &str) -> bool {
    let mut parts = s.split('.');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(h), Some(p), Some(sig), None)
            if h.starts_with("eyJ") && is_b64url(h) && is_b64url(p) && (sig.is_empty() || is_b64url(sig))
    )
}

/// Hashes every JWT-shaped word in free text.
fn redact_jwts(text: &str) -> String {
    if !text.contains("eyJ") {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if looks_like_jwt(word) {
            out.push_str(&short_hash(word));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '=') {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// The short hashes found in a body under the fields that identify one login (the code, the
/// tokens, the code verifier), as `(field, hash)` pairs. Shared secrets such as the client
/// secret are deliberately left out: they are the same for every login.
pub fn login_hashes(body: &str) -> Vec<(String, String)> {
    const LOGIN_FIELDS: &[&str] = &[
        "code",
        "code_verifier",
        "access_token",
        "refresh_token",
        "id_token",
        "userAccessToken",
        "accessToken",
        "refreshToken",
        "idToken",
    ];
    let mut out = Vec::new();
    let trimmed = body.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && let Ok(v) = serde_json::from_str::<Value>(body)
    {
        collect_json(&v, LOGIN_FIELDS, &mut out);
        return out;
    }
    for (k, v) in url::form_urlencoded::parse(body.as_bytes()) {
        if LOGIN_FIELDS.contains(&k.as_ref()) && is_short_hash(&v) {
            out.push((k.into_owned(), v.into_owned()));
        }
    }
    out
}

fn collect_json(v: &Value, fields: &[&str], out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::String(s) if fields.contains(&k.as_str()) && is_short_hash(s) => {
                        out.push((k.clone(), s.clone()));
                    }
                    _ => collect_json(v, fields, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_json(i, fields, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_is_redacted_once() {
        let once =
            redact_body("grant_type=authorization_code&code=abc&client_secret=s3&client_id=1");
        assert!(once.contains(&short_hash("abc").replace('#', "%23")));
        assert!(!once.contains("s3&"));
        assert_eq!(redact_body(&once), once);
        let from_client = line_login::redact::form_body("code=abc&client_secret=s3");
        assert_eq!(redact_body(&from_client), from_client);
    }

    #[test]
    fn json_is_redacted_once() {
        let body = r#"{"access_token":"AT","id_token":"eyJa.eyJb.c","scope":"profile","channelAccessToken":"CAT"}"#;
        let once = redact_body(body);
        assert!(!once.contains("\"AT\"") && !once.contains("CAT") && !once.contains("eyJ"));
        assert!(once.contains(&short_hash("AT")));
        assert_eq!(redact_body(&once), once);
        let clean = r#"{"scope":"profile"}"#;
        assert_eq!(redact_body(clean), clean);
    }

    #[test]
    fn jwts_in_text_are_hashed() {
        let out = redact_body("bad token eyJhbGciOi.eyJzdWIi.sig here");
        assert!(!out.contains("eyJ"));
    }

    #[test]
    fn login_hashes_skip_shared_secrets() {
        let body = line_login::redact::form_body("code=abc&client_secret=s3&code_verifier=v");
        let hashes = login_hashes(&body);
        assert!(hashes.contains(&("code".into(), short_hash("abc"))));
        assert!(hashes.iter().all(|(k, _)| k != "client_secret"));
    }
}
