//! Token encryption and random identifiers.
//!
//! Access and refresh tokens are sealed with XChaCha20-Poly1305 (a fresh random 192-bit nonce
//! per write), with associated data binding each ciphertext to the LINE user (issuer + user id)
//! and the token kind: a ciphertext copied to another user's row, or an access token swapped
//! with a refresh token, fails to open. The cipher is built once from the configured key (no
//! per-request key derivation).
//!
//! Layout: `version (1) ‖ key id (1) ‖ nonce (24) ‖ ciphertext+tag`.
//!
//! **Key rotation**: the cipher holds the current key (`token_encryption_key`), which alone
//! seals, and the previous keys (`previous_token_encryption_keys`), which still open. Opening
//! tries the current key first, then each previous key in order (an AEAD tag check is cheap,
//! and the header's key id stays `1` so that ciphertexts written before rotation existed
//! still open). `linelogin keys rotate` uses [`TokenCipher::open_with_key`] to find the
//! ciphertexts not yet under the current key and re-seals them.

use std::fmt;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::config::EncryptionKey;

const VERSION: u8 = 1;
const KEY_ID: u8 = 1;

/// Which token a ciphertext holds (part of the associated data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A user access token.
    Access,
    /// A refresh token.
    Refresh,
    /// A pending login record (state, nonce, PKCE verifier).
    PendingLogin,
}

impl TokenKind {
    fn label(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
            TokenKind::PendingLogin => "pending-login",
        }
    }
}

/// A ciphertext did not open: wrong key, wrong binding, or tampering.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("stored secret could not be decrypted (wrong key, wrong binding or tampered)")]
pub struct DecryptError;

/// Which configured key opened a ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUsed {
    /// The current key (`token_encryption_key`).
    Current,
    /// `previous_token_encryption_keys[i]`: the ciphertext should be re-sealed.
    Previous(usize),
}

/// The AEAD used for stored tokens: seals with the current key, opens with the current key
/// or any previous one.
#[derive(Clone)]
pub struct TokenCipher {
    aead: XChaCha20Poly1305,
    previous: Vec<XChaCha20Poly1305>,
}

impl fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenCipher([redacted])")
    }
}

impl TokenCipher {
    /// Builds the cipher from one key (no previous keys).
    pub fn new(key: &EncryptionKey) -> Self {
        Self::with_previous(key, &[])
    }

    /// Builds the cipher from the current key and the keys used before it (tried in order
    /// when the current one does not open a ciphertext).
    pub fn with_previous(current: &EncryptionKey, previous: &[EncryptionKey]) -> Self {
        Self {
            aead: XChaCha20Poly1305::new(current.bytes().into()),
            previous: previous
                .iter()
                .map(|k| XChaCha20Poly1305::new(k.bytes().into()))
                .collect(),
        }
    }

    /// The cipher of a configuration: `token_encryption_key`, then
    /// `previous_token_encryption_keys`.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self::with_previous(
            &config.token_encryption_key,
            &config.previous_token_encryption_keys,
        )
    }

    fn aad(kind: TokenKind, binding: &str) -> Vec<u8> {
        let mut aad = Vec::with_capacity(32 + binding.len());
        aad.extend_from_slice(b"linelogin/v1\0");
        aad.push(KEY_ID);
        aad.extend_from_slice(kind.label().as_bytes());
        aad.push(0);
        aad.extend_from_slice(binding.as_bytes());
        aad
    }

    /// Seals `plaintext`, bound to `kind` and `binding` (for tokens: `issuer \0 user id`).
    pub fn seal(&self, kind: TokenKind, binding: &str, plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes: [u8; 24] = rand::random();
        let nonce: XNonce = nonce_bytes.into();
        let aad = Self::aad(kind, binding);
        // Encryption only fails for plaintexts beyond the cipher's limit (~256 GiB).
        let ct = self
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(2 + 24 + ct.len());
        out.push(VERSION);
        out.push(KEY_ID);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens a ciphertext sealed with the same kind and binding, under any configured key.
    pub fn open(
        &self,
        kind: TokenKind,
        binding: &str,
        sealed: &[u8],
    ) -> Result<Vec<u8>, DecryptError> {
        self.open_with_key(kind, binding, sealed)
            .map(|(plain, _)| plain)
    }

    /// [`TokenCipher::open`], also saying which key opened it.
    pub fn open_with_key(
        &self,
        kind: TokenKind,
        binding: &str,
        sealed: &[u8],
    ) -> Result<(Vec<u8>, KeyUsed), DecryptError> {
        if sealed.len() < 2 + 24 + 16 || sealed[0] != VERSION || sealed[1] != KEY_ID {
            return Err(DecryptError);
        }
        let nonce_bytes: [u8; 24] = sealed[2..26].try_into().map_err(|_| DecryptError)?;
        let nonce: XNonce = nonce_bytes.into();
        let aad = Self::aad(kind, binding);
        let payload = || Payload {
            msg: &sealed[26..],
            aad: &aad,
        };
        if let Ok(plain) = self.aead.decrypt(&nonce, payload()) {
            return Ok((plain, KeyUsed::Current));
        }
        self.previous
            .iter()
            .enumerate()
            .find_map(|(i, aead)| {
                aead.decrypt(&nonce, payload())
                    .ok()
                    .map(|plain| (plain, KeyUsed::Previous(i)))
            })
            .ok_or(DecryptError)
    }

    /// Seals a string token.
    pub fn seal_str(&self, kind: TokenKind, binding: &str, token: &str) -> Vec<u8> {
        self.seal(kind, binding, token.as_bytes())
    }

    /// Opens a string token.
    pub fn open_str(
        &self,
        kind: TokenKind,
        binding: &str,
        sealed: &[u8],
    ) -> Result<String, DecryptError> {
        String::from_utf8(self.open(kind, binding, sealed)?).map_err(|_| DecryptError)
    }
}

/// The binding of a user's tokens: issuer and LINE user id.
pub fn user_binding(issuer: &str, sub: &str) -> String {
    format!("{issuer}\0{sub}")
}

/// A random URL-safe identifier with `bytes` bytes of entropy (from the OS-seeded CSPRNG).
pub fn random_id(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// SHA-256 hex of a value (session ids and pending-login ids are stored only as this).
pub fn hash_id(value: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(value.as_bytes());
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// Constant-time string equality.
pub fn ct_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> TokenCipher {
        TokenCipher::new(&EncryptionKey::from_bytes([7; 32]))
    }

    #[test]
    fn tok01_same_plaintext_twice_differs_and_round_trips() {
        let c = cipher();
        let b = user_binding("https://access.line.me", "Ua");
        let x = c.seal_str(TokenKind::Access, &b, "CANARY_ACCESS");
        let y = c.seal_str(TokenKind::Access, &b, "CANARY_ACCESS");
        assert_ne!(x, y);
        assert!(!x.windows(6).any(|w| w == b"CANARY"));
        assert_eq!(
            c.open_str(TokenKind::Access, &b, &x).unwrap(),
            "CANARY_ACCESS"
        );
    }

    #[test]
    fn tok02_swapped_ciphertexts_fail() {
        let c = cipher();
        let a = user_binding("https://access.line.me", "Ua");
        let b = user_binding("https://access.line.me", "Ub");
        let x = c.seal_str(TokenKind::Refresh, &a, "r");
        assert!(c.open(TokenKind::Refresh, &b, &x).is_err());
        assert!(c.open(TokenKind::Access, &a, &x).is_err());
        let mut t = x.clone();
        let last = t.len() - 1;
        t[last] ^= 1;
        assert!(c.open(TokenKind::Refresh, &a, &t).is_err());
    }

    #[test]
    fn tok03_wrong_key_fails_closed() {
        let b = user_binding("i", "s");
        let x = cipher().seal_str(TokenKind::Access, &b, "t");
        let other = TokenCipher::new(&EncryptionKey::from_bytes([8; 32]));
        assert!(other.open(TokenKind::Access, &b, &x).is_err());
        assert!(other.open(TokenKind::Access, &b, &[1, 1, 0]).is_err());
    }

    #[test]
    fn previous_keys_open_but_only_the_current_one_seals() {
        let b = user_binding("i", "s");
        let old = EncryptionKey::from_bytes([7; 32]);
        let new = EncryptionKey::from_bytes([9; 32]);
        let sealed_old = TokenCipher::new(&old).seal_str(TokenKind::Refresh, &b, "r");
        let rotated = TokenCipher::with_previous(&new, &[EncryptionKey::from_bytes([8; 32]), old]);
        let (plain, used) = rotated
            .open_with_key(TokenKind::Refresh, &b, &sealed_old)
            .unwrap();
        assert_eq!((plain.as_slice(), used), (&b"r"[..], KeyUsed::Previous(1)));
        let sealed_new = rotated.seal_str(TokenKind::Refresh, &b, "r");
        assert_eq!(
            rotated
                .open_with_key(TokenKind::Refresh, &b, &sealed_new)
                .unwrap()
                .1,
            KeyUsed::Current
        );
        assert!(
            TokenCipher::new(&new)
                .open(TokenKind::Refresh, &b, &sealed_new)
                .is_ok()
        );
        assert!(
            TokenCipher::new(&new)
                .open(TokenKind::Refresh, &b, &sealed_old)
                .is_err()
        );
        // The binding still holds under a previous key.
        assert!(rotated.open(TokenKind::Access, &b, &sealed_old).is_err());
    }

    #[test]
    fn ses03_ids_are_long_and_unique() {
        let ids: std::collections::HashSet<_> = (0..1000).map(|_| random_id(32)).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|i| i.len() == 43));
        assert_eq!(
            hash_id("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
