//! The assertion signing keys: loaded from `signing_key_file` or derived from the token
//! encryption keys, published as a JWKS, the first one signing.

use std::path::Path;

use base64::Engine as _;
use hkdf::Hkdf;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::SecretKey;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use sha2::{Digest as _, Sha256};

use crate::config::EncryptionKey;

/// The HKDF `info` of the derived signing key: names its one use, so the token key's other
/// uses (token encryption) and this one can never produce related keys.
const DERIVE_INFO: &[u8] = b"linelogin gateway identity assertion ES256 signing key v1";

/// A signing key could not be loaded, or an assertion not signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file could not be read.
    #[error("gateway.signing_key_file {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        message: String,
    },
    /// The key file holds no usable P-256 private key, or a block that is not one.
    #[error("gateway.signing_key_file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong (never key material).
        message: String,
    },
    /// Signing failed (should not happen with a valid key).
    #[error("assertion signing failed: {0}")]
    Sign(String),
}

/// One published key.
struct Key {
    kid: String,
    encoding: EncodingKey,
    jwk: serde_json::Value,
}

/// The signing keys: the first signs, all are in the JWKS.
pub struct KeySet {
    keys: Vec<Key>,
    jwks: String,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("KeySet").field("kids", &kids).finish()
    }
}

impl KeySet {
    /// Every P-256 private key of a PEM file (`PRIVATE KEY`, PKCS#8, or `EC PRIVATE KEY`,
    /// SEC1), in file order.
    pub fn from_pem_file(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let text = std::fs::read(path).map_err(|e| KeyError::Read {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        let parse_err = |message: String| KeyError::Parse {
            path: shown.clone(),
            message,
        };
        let blocks = pem::parse_many(&text).map_err(|e| parse_err(format!("not PEM: {e}")))?;
        let mut secrets = Vec::new();
        for (i, block) in blocks.iter().enumerate() {
            let key = match block.tag() {
                "PRIVATE KEY" => SecretKey::from_pkcs8_der(block.contents()).ok(),
                "EC PRIVATE KEY" => SecretKey::from_sec1_der(block.contents()).ok(),
                _ => None,
            };
            match key {
                Some(k) => secrets.push(k),
                None => {
                    return Err(parse_err(format!(
                        "PEM block {} ({}) is not a P-256 private key",
                        i + 1,
                        block.tag()
                    )));
                }
            }
        }
        if secrets.is_empty() {
            return Err(parse_err("no private key in the file".into()));
        }
        Self::from_secrets(&secrets)
    }

    /// One key per token encryption key (the current one first, so it signs), each derived
    /// with HKDF-SHA256 ([`derive()`]).
    pub fn derived(current: &EncryptionKey, previous: &[EncryptionKey]) -> Result<Self, KeyError> {
        let secrets: Vec<SecretKey> = std::iter::once(current)
            .chain(previous)
            .map(derive)
            .collect::<Result<_, _>>()?;
        Self::from_secrets(&secrets)
    }

    fn from_secrets(secrets: &[SecretKey]) -> Result<Self, KeyError> {
        let mut keys: Vec<Key> = Vec::with_capacity(secrets.len());
        for secret in secrets {
            let der = secret
                .to_pkcs8_der()
                .map_err(|e| KeyError::Sign(format!("PKCS#8 encoding: {e}")))?;
            let point = secret.public_key().to_encoded_point(false);
            let (Some(x), Some(y)) = (point.x(), point.y()) else {
                return Err(KeyError::Sign("public key has no coordinates".into()));
            };
            let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
            let (x, y) = (b64(x), b64(y));
            let kid = thumbprint(&x, &y);
            if keys.iter().any(|k| k.kid == kid) {
                continue; // the same key twice (e.g. a previous token key equal to the current)
            }
            let jwk = serde_json::json!({
                "kty": "EC", "crv": "P-256", "x": x, "y": y,
                "use": "sig", "alg": "ES256", "kid": kid,
            });
            keys.push(Key {
                kid,
                encoding: EncodingKey::from_ec_der(der.as_bytes()),
                jwk,
            });
        }
        let list: Vec<&serde_json::Value> = keys.iter().map(|k| &k.jwk).collect();
        let jwks = serde_json::json!({ "keys": list }).to_string();
        Ok(Self { keys, jwks })
    }

    /// The JWKS document (`{"keys": [...]}`).
    pub fn jwks(&self) -> &str {
        &self.jwks
    }

    /// The `kid` of the signing key.
    pub fn signing_kid(&self) -> &str {
        self.keys.first().map_or("", |k| k.kid.as_str())
    }

    /// Signs `claims` as a compact JWS, ES256, with the first key's `kid`.
    pub fn sign<T: serde::Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        let key = self
            .keys
            .first()
            .ok_or_else(|| KeyError::Sign("no signing key".into()))?;
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|e| KeyError::Sign(e.to_string()))
    }
}

/// RFC 7638 thumbprint of a P-256 public key: SHA-256 of the required members in
/// lexicographic order, without whitespace, base64url.
fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The P-256 key derived from a token encryption key: HKDF-SHA256 (RFC 5869), the token key
/// as input key material, `DERIVE_INFO` plus a counter byte as `info`; the first output
/// that is a valid scalar (all but about 2^-32 of them) is the key.
pub fn derive(token_key: &EncryptionKey) -> Result<SecretKey, KeyError> {
    let hk = Hkdf::<Sha256>::new(None, token_key.bytes());
    for counter in 0u8..=u8::MAX {
        let mut info = DERIVE_INFO.to_vec();
        info.push(counter);
        let mut okm = [0u8; 32];
        hk.expand(&info, &mut okm)
            .map_err(|e| KeyError::Sign(format!("HKDF: {e}")))?;
        if let Ok(k) = SecretKey::from_slice(&okm) {
            return Ok(k);
        }
    }
    Err(KeyError::Sign("no valid scalar derived".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_derived_key_is_stable_for_the_same_token_key() {
        let token = EncryptionKey::from_bytes([7; 32]);
        let a = derive(&token).unwrap_or_else(|e| panic!("{e}"));
        let b = derive(&EncryptionKey::from_bytes([7; 32])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.to_bytes(), b.to_bytes());
        let other = derive(&EncryptionKey::from_bytes([8; 32])).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(a.to_bytes(), other.to_bytes());
        // Not the token key itself.
        assert_ne!(a.to_bytes()[..], [7u8; 32]);
        let set1 = KeySet::derived(&token, &[]).unwrap_or_else(|e| panic!("{e}"));
        let set2 = KeySet::derived(&token, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(set1.signing_kid(), set2.signing_kid());
        assert_eq!(set1.jwks(), set2.jwks());
    }

    #[test]
    fn previous_token_keys_are_published_and_the_current_one_signs() {
        let cur = EncryptionKey::from_bytes([1; 32]);
        let old = EncryptionKey::from_bytes([2; 32]);
        let set =
            KeySet::derived(&cur, &[old.clone(), cur.clone()]).unwrap_or_else(|e| panic!("{e}"));
        let only_cur = KeySet::derived(&cur, &[]).unwrap_or_else(|e| panic!("{e}"));
        let only_old = KeySet::derived(&old, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(set.signing_kid(), only_cur.signing_kid());
        let jwks: serde_json::Value =
            serde_json::from_str(set.jwks()).unwrap_or_else(|e| panic!("{e}"));
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .map(|a| a.iter().filter_map(|k| k["kid"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(kids, [only_cur.signing_kid(), only_old.signing_kid()]);
    }

    #[test]
    fn kid_is_the_rfc7638_thumbprint() {
        // RFC 7638 has no EC example; RFC 8037-style check: recompute from the JWK members.
        let set = KeySet::derived(&EncryptionKey::from_bytes([3; 32]), &[])
            .unwrap_or_else(|e| panic!("{e}"));
        let jwks: serde_json::Value =
            serde_json::from_str(set.jwks()).unwrap_or_else(|e| panic!("{e}"));
        let k = &jwks["keys"][0];
        let canonical =
            serde_json::json!({"crv": k["crv"], "kty": k["kty"], "x": k["x"], "y": k["y"]});
        // serde_json without `preserve_order` sorts object keys: the RFC 7638 order.
        let digest = Sha256::digest(canonical.to_string().as_bytes());
        assert_eq!(
            k["kid"].as_str(),
            Some(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(digest)
                    .as_str()
            )
        );
    }
}
