//! PKCE (RFC 7636) with the `S256` method, the only one LINE supports.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::secret::CodeVerifier;

/// The characters RFC 7636 allows in a code verifier (`unreserved`).
const VERIFIER_CHARSET: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";

/// Minimum verifier length (RFC 7636 §4.1).
pub const MIN_VERIFIER_LEN: usize = 43;
/// Maximum verifier length (RFC 7636 §4.1).
pub const MAX_VERIFIER_LEN: usize = 128;

/// A `code_challenge` value: `BASE64URL(SHA256(verifier))` without padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// Computes the S256 challenge of a verifier.
    pub fn s256(verifier: &CodeVerifier) -> Self {
        Self(s256_challenge(verifier.secret()))
    }

    /// The challenge string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The method, always `S256`.
    pub fn method(&self) -> &'static str {
        "S256"
    }
}

/// `BASE64URL(SHA256(ASCII(verifier)))` without padding.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether a string is a syntactically valid code verifier (43–128 unreserved characters).
pub fn is_valid_verifier(verifier: &str) -> bool {
    (MIN_VERIFIER_LEN..=MAX_VERIFIER_LEN).contains(&verifier.len())
        && verifier.bytes().all(|b| VERIFIER_CHARSET.contains(&b))
}

/// A fresh random verifier of `len` characters (clamped to 43..=128) from the OS CSPRNG.
/// 64 characters carry about 384 bits of entropy.
pub fn random_verifier(len: usize) -> CodeVerifier {
    let len = len.clamp(MIN_VERIFIER_LEN, MAX_VERIFIER_LEN);
    let mut rng = rand::rng();
    let s: String = (0..len)
        .map(|_| VERIFIER_CHARSET[rng.random_range(0..VERIFIER_CHARSET.len())] as char)
        .collect();
    CodeVerifier::new(s)
}

/// A verifier and its challenge, generated together.
#[derive(Debug, Clone)]
pub struct PkcePair {
    /// The secret verifier, kept by the client until the code exchange.
    pub verifier: CodeVerifier,
    /// The challenge, sent in the authorization request.
    pub challenge: CodeChallenge,
}

impl PkcePair {
    /// A new random pair (64-character verifier).
    pub fn generate() -> Self {
        let verifier = random_verifier(64);
        let challenge = CodeChallenge::s256(&verifier);
        Self {
            verifier,
            challenge,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_vector() {
        let v = CodeVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            CodeChallenge::s256(&v).as_str(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn generated_verifiers_are_valid_and_unique() {
        let a = PkcePair::generate();
        let b = PkcePair::generate();
        assert!(is_valid_verifier(a.verifier.secret()));
        assert_eq!(a.verifier.secret().len(), 64);
        assert!(!a.verifier.ct_eq(&b.verifier));
        assert_eq!(a.challenge.method(), "S256");
    }

    #[test]
    fn verifier_validation() {
        assert!(!is_valid_verifier("short"));
        assert!(!is_valid_verifier(&"a".repeat(129)));
        assert!(!is_valid_verifier(&format!("{}{}", "a".repeat(42), "+")));
        assert!(is_valid_verifier(&"a".repeat(43)));
    }
}
