//! Key material a service provider holds: its merchant API private key, its merchant API certificate, WeChat Pay
//! platform certificates and the WeChat Pay public key.
//!
//! Contract: every constructor parses PEM text an operator pasted and either returns a usable key or a
//! [`KeyError`] saying in plain words what is wrong with it. Nothing here panics on input.

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{
    KeyPair as RsaKeyPair, OAEP_SHA1_MGF1SHA1, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey,
    PublicEncryptingKey,
};
use aws_lc_rs::signature::{KeyPair as _, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, SubjectPublicKeyInfoDer};

/// Why a key, certificate or serial was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("not a PEM block of the expected kind: {0}")]
    Pem(String),
    #[error("the key is not an RSA key this library can use: {0}")]
    Rsa(String),
    #[error("RSA keys must be at least 2048 bits; this one has {0}")]
    TooShort(usize),
    #[error("the certificate does not parse: {0}")]
    Certificate(String),
    #[error("the serial number must be hexadecimal, 1 to 64 characters")]
    Serial,
    #[error("signing failed")]
    Sign,
    #[error("the ciphertext does not decrypt with this key (not base64, wrong key, or damaged)")]
    Decrypt,
    #[error("the plaintext is too long for RSA-OAEP with this key (at most {0} bytes)")]
    TooLong(usize),
    #[error("encryption failed")]
    Encrypt,
}

/// An RSA private key (≥ 2048 bits, PKCS#8 or PKCS#1 PEM). For a merchant this is its API private key
/// (`apiclient_key.pem`): it signs requests and decrypts what WeChat encrypted for the merchant (`payer_phone`).
/// A simulator of WeChat Pay holds its platform key in one too.
pub struct RsaPrivateKey {
    key: RsaKeyPair,
    oaep: OaepPrivateDecryptingKey,
}

impl std::fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key itself never reaches a log line.
        f.debug_struct("RsaPrivateKey").field("bits", &(self.key.public_modulus_len() * 8)).finish_non_exhaustive()
    }
}

impl RsaPrivateKey {
    /// Parse `-----BEGIN PRIVATE KEY-----` (PKCS#8, what WeChat's certificate tool writes) or
    /// `-----BEGIN RSA PRIVATE KEY-----` (PKCS#1).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let der = PrivateKeyDer::from_pem_slice(pem.trim().as_bytes())
            .map_err(|e| KeyError::Pem(format!("expected a PRIVATE KEY or RSA PRIVATE KEY block ({e})")))?;
        let key = match &der {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            PrivateKeyDer::Sec1(_) => {
                return Err(KeyError::Rsa("this is an EC key, WeChat Pay uses RSA".into()));
            }
            _ => return Err(KeyError::Rsa("unsupported private key encoding".into())),
        }
        .map_err(|e| KeyError::Rsa(e.to_string()))?;
        let bits = key.public_modulus_len() * 8;
        if bits < 2048 {
            return Err(KeyError::TooShort(bits));
        }
        // One parse for both uses: the OAEP key is made from the same key's PKCS#8 form.
        let pkcs8 = key.as_der().map_err(|_| KeyError::Rsa("cannot re-encode the key".into()))?;
        let decrypting = PrivateDecryptingKey::from_pkcs8(pkcs8.as_ref()).map_err(|e| KeyError::Rsa(e.to_string()))?;
        let oaep = OaepPrivateDecryptingKey::new(decrypting).map_err(|_| KeyError::Rsa("unusable for OAEP".into()))?;
        Ok(Self { key, oaep })
    }

    /// The public half, as SubjectPublicKeyInfo DER (what the merchant certificate carries).
    pub fn public_key(&self) -> Result<RsaPublicKey, KeyError> {
        let der = self.key.public_key().as_der().map_err(|_| KeyError::Rsa("cannot encode the public key".into()))?;
        RsaPublicKey::from_spki_der(der.as_ref())
    }

    /// Decrypt a sensitive field WeChat encrypted with RSA-OAEP (SHA-1, MGF1-SHA-1) for this merchant, given as
    /// base64 (e.g. a complaint's `payer_phone`).
    pub fn decrypt_oaep_base64(&self, ciphertext: &str) -> Result<String, KeyError> {
        let bytes = BASE64.decode(ciphertext.trim()).map_err(|_| KeyError::Decrypt)?;
        let mut plaintext = vec![0u8; self.oaep.min_output_size()];
        let plain =
            self.oaep.decrypt(&OAEP_SHA1_MGF1SHA1, &bytes, &mut plaintext, None).map_err(|_| KeyError::Decrypt)?;
        String::from_utf8(plain.to_vec()).map_err(|_| KeyError::Decrypt)
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message`.
    pub fn sign_sha256(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature).map_err(|_| KeyError::Sign)?;
        Ok(signature)
    }

    /// True when `public` is this key's public half, proven by a signature it verifies.
    pub fn matches(&self, public: &RsaPublicKey) -> bool {
        const PROBE: &[u8] = b"wechatpay key pair check";
        match self.sign_sha256(PROBE) {
            Ok(signature) => public.verify_sha256(PROBE, &signature),
            Err(_) => false,
        }
    }
}

/// An RSA public key as a SubjectPublicKeyInfo (what a certificate or a WeChat Pay public-key PEM holds): verifies
/// signatures, and encrypts sensitive fields for its owner.
#[derive(Clone)]
pub struct RsaPublicKey {
    parsed: ParsedPublicKey,
    encrypting: PublicEncryptingKey,
}

impl std::fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaPublicKey").finish_non_exhaustive()
    }
}

impl RsaPublicKey {
    /// From SubjectPublicKeyInfo DER.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let parsed =
            ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der).map_err(|e| KeyError::Rsa(e.to_string()))?;
        let encrypting = PublicEncryptingKey::from_der(der).map_err(|e| KeyError::Rsa(e.to_string()))?;
        Ok(Self { parsed, encrypting })
    }

    /// From `-----BEGIN PUBLIC KEY-----` (the WeChat Pay public key, `pub_key.pem`).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let der = SubjectPublicKeyInfoDer::from_pem_slice(pem.trim().as_bytes())
            .map_err(|e| KeyError::Pem(format!("expected a PUBLIC KEY block ({e})")))?;
        Self::from_spki_der(der.as_ref())
    }

    /// SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        self.parsed.as_ref()
    }

    /// RSASSA-PKCS1-v1_5 / SHA-256 verification; any failure is `false`.
    pub fn verify_sha256(&self, message: &[u8], signature: &[u8]) -> bool {
        self.parsed.verify_sig(message, signature).is_ok()
    }

    /// RSA-OAEP (SHA-1, MGF1-SHA-1) encryption of a sensitive field, standard base64 — what WeChat Pay expects
    /// for fields encrypted with a platform certificate or the WeChat Pay public key.
    pub fn encrypt_oaep_base64(&self, plaintext: &str) -> Result<String, KeyError> {
        let key = OaepPublicEncryptingKey::new(self.encrypting.clone()).map_err(|_| KeyError::Encrypt)?;
        let max = key.max_plaintext_size(&OAEP_SHA1_MGF1SHA1);
        if plaintext.len() > max {
            return Err(KeyError::TooLong(max));
        }
        let mut ciphertext = vec![0u8; key.ciphertext_size()];
        let out = key
            .encrypt(&OAEP_SHA1_MGF1SHA1, plaintext.as_bytes(), &mut ciphertext, None)
            .map_err(|_| KeyError::Encrypt)?;
        Ok(BASE64.encode(out))
    }
}

/// An X.509 certificate: the merchant API certificate or a WeChat Pay platform certificate.
#[derive(Debug)]
pub struct Certificate {
    /// Serial number, upper-case hex without separators, as WeChat prints it.
    pub serial: String,
    /// Validity, seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// The subject, for display.
    pub subject: String,
    pub public_key: RsaPublicKey,
}

impl Certificate {
    /// Parse one `-----BEGIN CERTIFICATE-----` block.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem.trim().as_bytes())
            .map_err(|e| KeyError::Pem(format!("expected a CERTIFICATE block ({e})")))?;
        if pem.label != "CERTIFICATE" {
            return Err(KeyError::Pem(format!("expected a CERTIFICATE block, found {}", pem.label)));
        }
        let cert = pem.parse_x509().map_err(|e| KeyError::Certificate(e.to_string()))?;
        let serial = serial_hex(cert.raw_serial());
        let public_key = RsaPublicKey::from_spki_der(cert.public_key().raw)?;
        Ok(Self {
            serial,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            subject: cert.subject().to_string(),
            public_key,
        })
    }
}

/// Upper-case hex of a DER serial, without the sign byte DER adds when the high bit is set.
fn serial_hex(raw: &[u8]) -> String {
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len().saturating_sub(1));
    hex::encode_upper(&raw[start..])
}

/// Normalise a certificate serial an operator typed: upper-case hex, `:`/space separators removed.
pub fn normalize_serial(serial: &str) -> Result<String, KeyError> {
    let cleaned: String = serial.chars().filter(|c| *c != ':' && !c.is_whitespace()).collect();
    if cleaned.is_empty() || cleaned.len() > 64 || !cleaned.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(KeyError::Serial);
    }
    Ok(cleaned.to_ascii_uppercase())
}

/// Whether two serials name the same certificate. WeChat compares serials as numbers (leading zeros do not
/// matter; the Python SDK does `int(serial, 16)`), so do we.
pub fn same_serial(a: &str, b: &str) -> bool {
    let strip = |s: &str| s.trim_start_matches('0').to_ascii_uppercase();
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(RsaPrivateKey::from_pem("hello"), Err(KeyError::Pem(_))));
        assert!(matches!(RsaPublicKey::from_pem(""), Err(KeyError::Pem(_))));
        assert!(Certificate::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----").is_err());
    }

    #[test]
    fn serials() {
        assert_eq!(normalize_serial("5e:7a:bc").as_deref(), Ok("5E7ABC"));
        assert_eq!(normalize_serial("xyz"), Err(KeyError::Serial));
        assert_eq!(normalize_serial(""), Err(KeyError::Serial));
        assert!(same_serial("00ABC", "abc"));
        assert!(!same_serial("ABD", "ABC"));
        assert_eq!(serial_hex(&[0x00, 0x9a, 0x01]), "9A01");
        assert_eq!(serial_hex(&[0x00]), "00");
    }
}
