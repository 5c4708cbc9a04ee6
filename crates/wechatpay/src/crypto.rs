//! AEAD_AES_256_GCM as WeChat Pay uses it: callback resources and downloaded platform certificates are encrypted
//! under the APIv3 key. (RSA-OAEP for sensitive fields lives with the keys, in [`crate::keys`].)
//!
//! Contract: the key is the APIv3 key's 32 ASCII characters used as raw bytes; the nonce is the 12 bytes of the
//! given string; associated data is the given string's bytes, empty when absent; the ciphertext is base64 of the
//! encrypted bytes followed by the 16-byte tag. Any failure — bad base64, short input, wrong key, tampered data —
//! is one [`AeadError`], never a panic.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// The merchant's APIv3 key (32 bytes).
#[derive(Clone)]
pub struct Apiv3Key([u8; 32]);

impl std::fmt::Debug for Apiv3Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Apiv3Key(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AeadError {
    #[error("the APIv3 key must be exactly 32 bytes")]
    KeyLength,
    #[error("the nonce must be 12 bytes")]
    Nonce,
    #[error("the ciphertext is not base64")]
    Base64,
    #[error("the ciphertext is shorter than its 16-byte tag")]
    Truncated,
    #[error("the ciphertext does not open with this APIv3 key (wrong key, or tampered)")]
    Tag,
    #[error("the plaintext is not UTF-8")]
    Utf8,
    #[error("no randomness available")]
    Random,
}

impl Apiv3Key {
    pub fn new(key: &[u8]) -> Result<Self, AeadError> {
        let bytes: [u8; 32] = key.try_into().map_err(|_| AeadError::KeyLength)?;
        Ok(Self(bytes))
    }

    fn key(&self) -> LessSafeKey {
        // AES_256_GCM accepts any 32-byte key.
        let unbound = UnboundKey::new(&AES_256_GCM, &self.0).unwrap_or_else(|_| unreachable!("32-byte key"));
        LessSafeKey::new(unbound)
    }

    /// Decrypt a WeChat resource: base64 `ciphertext`, `nonce` string, optional `associated_data`.
    pub fn decrypt(&self, ciphertext: &str, nonce: &str, associated_data: Option<&str>) -> Result<String, AeadError> {
        let nonce = Nonce::try_assume_unique_for_key(nonce.as_bytes()).map_err(|_| AeadError::Nonce)?;
        let mut data = BASE64.decode(ciphertext.trim()).map_err(|_| AeadError::Base64)?;
        if data.len() < AES_256_GCM.tag_len() {
            return Err(AeadError::Truncated);
        }
        let aad = Aad::from(associated_data.unwrap_or_default().as_bytes());
        let plain = self.key().open_in_place(nonce, aad, &mut data).map_err(|_| AeadError::Tag)?;
        String::from_utf8(plain.to_vec()).map_err(|_| AeadError::Utf8)
    }

    /// Encrypt like WeChat Pay does (the simulator sends callbacks this way). `nonce` must be 12 bytes.
    pub fn encrypt(&self, plaintext: &str, nonce: &str, associated_data: Option<&str>) -> Result<String, AeadError> {
        let nonce = Nonce::try_assume_unique_for_key(nonce.as_bytes()).map_err(|_| AeadError::Nonce)?;
        let mut data = plaintext.as_bytes().to_vec();
        let aad = Aad::from(associated_data.unwrap_or_default().as_bytes());
        self.key().seal_in_place_append_tag(nonce, aad, &mut data).map_err(|_| AeadError::Tag)?;
        Ok(BASE64.encode(data))
    }
}

/// A random nonce string of `NONCE_LEN` (12) characters from `[0-9A-Za-z]`, as WeChat's resources carry.
pub fn random_resource_nonce() -> Result<String, AeadError> {
    random_alphanumeric(NONCE_LEN).map_err(|_| AeadError::Random)
}

/// `len` random characters from `[0-9A-Za-z]`.
pub fn random_alphanumeric(len: usize) -> Result<String, aws_lc_rs::error::Unspecified> {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut bytes = vec![0u8; len];
    aws_lc_rs::rand::fill(&mut bytes)?;
    // 256 is not a multiple of 62; the bias (< 1%) does not matter for a nonce.
    Ok(bytes.iter().map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8; 32] = b"0123456789abcdefABCDEF0123456789";

    #[test]
    fn round_trip_and_failures() {
        let key = Apiv3Key::new(KEY).expect("key");
        let sealed =
            key.encrypt("{\"complaint_id\":\"200201820200101080076610000\"}", "abcdefghijkl", Some("")).expect("seal");
        assert_eq!(
            key.decrypt(&sealed, "abcdefghijkl", None).expect("open"),
            "{\"complaint_id\":\"200201820200101080076610000\"}",
            "absent and empty associated data are the same"
        );
        assert_eq!(key.decrypt(&sealed, "abcdefghijkX", None), Err(AeadError::Tag));
        assert_eq!(key.decrypt(&sealed, "abcdefghijkl", Some("certificate")), Err(AeadError::Tag));
        let other = Apiv3Key::new(b"ZYXWVUTSRQPONMLKJIHGFEDCBA987654").expect("key");
        assert_eq!(other.decrypt(&sealed, "abcdefghijkl", None), Err(AeadError::Tag));
        assert_eq!(key.decrypt("not base64!", "abcdefghijkl", None), Err(AeadError::Base64));
        assert_eq!(key.decrypt("AAAA", "abcdefghijkl", None), Err(AeadError::Truncated));
        assert_eq!(key.decrypt(&sealed, "short", None), Err(AeadError::Nonce));
        assert_eq!(Apiv3Key::new(b"short").err(), Some(AeadError::KeyLength));
        let truncated = &sealed[..sealed.len() - 8];
        assert!(key.decrypt(truncated, "abcdefghijkl", None).is_err());
    }

    #[test]
    fn nonces() {
        let nonce = random_resource_nonce().expect("nonce");
        assert_eq!(nonce.len(), 12);
        assert!(nonce.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}
