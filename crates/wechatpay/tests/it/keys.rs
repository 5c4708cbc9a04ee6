//! Key parsing against key material made by OpenSSL (testdata/README.md), not by this crate.

use crate::testdata;
use wechatpay::keys::{Certificate, KeyError, RsaPrivateKey, RsaPublicKey};

#[test]
fn pkcs8_and_pkcs1_keys_load_and_match_their_certificate() {
    let cert = Certificate::from_pem(&testdata("merchant_cert.pem")).expect("cert");
    assert_eq!(cert.serial, "5E7ABC0123456789ABCDEF0123456789ABCDEF01");
    assert!(cert.not_after > cert.not_before);
    for name in ["merchant_key.pem", "merchant_key_pkcs1.pem"] {
        let key = RsaPrivateKey::from_pem(&testdata(name)).expect(name);
        assert!(key.matches(&cert.public_key), "{name} should match its certificate");
    }
}

#[test]
fn a_key_does_not_match_someone_elses_certificate() {
    let key = RsaPrivateKey::from_pem(&testdata("merchant_key.pem")).expect("key");
    let other = Certificate::from_pem(&testdata("platform_cert.pem")).expect("cert");
    assert!(!key.matches(&other.public_key));
    let public = RsaPublicKey::from_pem(&testdata("wechatpay_public_key.pem")).expect("public key");
    assert!(!key.matches(&public));
    let other_key = RsaPrivateKey::from_pem(&testdata("other_key.pem")).expect("other key");
    assert!(other_key.matches(&public), "the public key was derived from other_key.pem");
}

#[test]
fn high_bit_serial_has_no_sign_byte() {
    let cert = Certificate::from_pem(&testdata("platform_cert_highbit.pem")).expect("cert");
    assert_eq!(cert.serial, "9A5A1B2C3D4E5F60718293A4B5C6D7E8F9012345");
}

#[test]
fn weak_or_wrong_keys_are_refused_with_a_reason() {
    let short = RsaPrivateKey::from_pem(&testdata("short_key.pem")).expect_err("1024-bit key");
    assert!(matches!(short, KeyError::TooShort(1024) | KeyError::Rsa(_)), "{short:?}");
    assert!(short.to_string().to_lowercase().contains("small") || short.to_string().contains("2048"), "{short}");
    assert!(matches!(RsaPrivateKey::from_pem(&testdata("ec_key.pem")), Err(KeyError::Rsa(_))));
    // A certificate where a key is expected and the other way round.
    assert!(matches!(RsaPrivateKey::from_pem(&testdata("merchant_cert.pem")), Err(KeyError::Pem(_))));
    assert!(Certificate::from_pem(&testdata("merchant_key.pem")).is_err());
    assert!(matches!(RsaPublicKey::from_pem(&testdata("merchant_cert.pem")), Err(KeyError::Pem(_))));
    // A truncated key.
    let key = testdata("merchant_key.pem");
    let truncated = format!("{}\n-----END PRIVATE KEY-----\n", &key[..600]);
    assert!(RsaPrivateKey::from_pem(&truncated).is_err());
}

#[test]
fn signatures_verify_with_openssl_public_key() {
    // The signature scheme is cross-checked against OpenSSL's own verification in the Python cross-check;
    // here the public key OpenSSL derived must accept what this key signs, and refuse a changed message.
    let key = RsaPrivateKey::from_pem(&testdata("other_key.pem")).expect("key");
    let public = RsaPublicKey::from_pem(&testdata("wechatpay_public_key.pem")).expect("public key");
    let signature =
        key.sign_sha256(b"GET\n/v3/certificates\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n").expect("sign");
    assert_eq!(signature.len(), 256);
    assert!(
        public.verify_sha256(b"GET\n/v3/certificates\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n", &signature)
    );
    assert!(
        !public.verify_sha256(b"GET\n/v3/certificates\n1554208461\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n", &signature)
    );
}
