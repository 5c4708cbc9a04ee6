//! Small validated values.

use secrecy::{ExposeSecret, SecretString};

use super::FieldError;

/// A WeChat Pay merchant number (the provider's own, or a sub-merchant's): ASCII digits only.
///
/// WeChat's documents give these fields as `string(32)` and every mchid seen is 8–10 digits; we accept 6–20 digits
/// so a pasted number with a digit missing or doubled is not accepted silently, while leaving room for longer ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mchid(String);

impl Mchid {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let value = value.trim();
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FieldError::new(field, format!("`{value}` is not an mchid: it must be all digits")));
        }
        if !(6..=20).contains(&value.len()) {
            return Err(FieldError::new(field, format!("an mchid has 6 to 20 digits; `{value}` has {}", value.len())));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Mchid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A WeChat AppID: `wx` followed by 16 letters or digits (18 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appid(String);

impl Appid {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let value = value.trim();
        let ok = value.len() == 18 && value.starts_with("wx") && value.bytes().all(|b| b.is_ascii_alphanumeric());
        if !ok {
            return Err(FieldError::new(
                field,
                format!("`{value}` is not an AppID: it is `wx` followed by 16 letters or digits"),
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The APIv3 key: exactly 32 ASCII letters or digits, used as the raw AES-256 key bytes.
pub struct Apiv3Key(SecretString);

impl std::fmt::Debug for Apiv3Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Apiv3Key(<redacted>)")
    }
}

impl Apiv3Key {
    pub fn parse(field: &str, value: &SecretString) -> Result<Self, FieldError> {
        let key = value.expose_secret();
        // Say what is wrong without echoing any part of the key.
        if key.len() != 32 {
            return Err(FieldError::new(
                field,
                format!("the APIv3 key is exactly 32 characters; this one has {} bytes", key.len()),
            ));
        }
        if !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(FieldError::new(field, "the APIv3 key consists of ASCII letters and digits only"));
        }
        Ok(Self(value.clone()))
    }

    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

/// WeChat Pay public key id: `PUB_KEY_ID_` followed by digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyId(String);

impl PublicKeyId {
    pub const PREFIX: &'static str = "PUB_KEY_ID_";

    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let value = value.trim();
        let digits = value.strip_prefix(Self::PREFIX).unwrap_or_default();
        if digits.is_empty() || digits.len() > 64 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FieldError::new(
                field,
                format!("`{value}` is not a WeChat Pay public key id: it is PUB_KEY_ID_ followed by digits"),
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A URL WeChat Pay calls (refund notify URL): absolute https, at most 255 characters, no query string
/// (WeChat refuses notify URLs with parameters). Plain http is accepted only for loopback hosts, which is
/// where the simulator and local tests live.
pub fn notify_url(field: &str, value: &str) -> Result<String, FieldError> {
    let value = value.trim();
    let url = url::Url::parse(value).map_err(|e| FieldError::new(field, format!("`{value}` is not a URL: {e}")))?;
    let loopback = matches!(url.host(), Some(url::Host::Domain("localhost")))
        || matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(FieldError::new(field, "WeChat Pay only calls https:// URLs"));
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(FieldError::new(field, "WeChat Pay does not accept notify URLs with a query string"));
    }
    if value.len() > 255 {
        return Err(FieldError::new(field, "must be at most 255 characters"));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mchid() {
        assert!(Mchid::parse("mchid", "1900000109").is_ok());
        assert!(Mchid::parse("mchid", " 1900000109 ").is_ok());
        assert!(Mchid::parse("mchid", "19000001O9").is_err());
        assert!(Mchid::parse("mchid", "-190000010").is_err());
        assert!(Mchid::parse("mchid", "123").is_err());
        assert!(Mchid::parse("mchid", "").is_err());
        assert!(Mchid::parse("mchid", "１９０００００１０９").is_err(), "full-width digits are not digits here");
    }

    #[test]
    fn appid() {
        assert!(Appid::parse("appid", "wxd678efh567hg6787").is_ok());
        assert!(Appid::parse("appid", "wxd678efh567hg678").is_err());
        assert!(Appid::parse("appid", "abd678efh567hg6787").is_err());
    }

    #[test]
    fn apiv3_key_errors_do_not_echo_the_key() {
        let short = SecretString::from("tooShortKeyValue");
        let e = Apiv3Key::parse("apiv3_key", &short).expect_err("short");
        assert!(!e.message.contains("tooShort"));
        assert!(e.message.contains("32"));
        let good = SecretString::from("0123456789abcdefABCDEF0123456789");
        assert!(Apiv3Key::parse("apiv3_key", &good).is_ok());
        let bad = SecretString::from("0123456789abcdefABCDEF012345678!");
        assert!(Apiv3Key::parse("apiv3_key", &bad).is_err());
        assert_eq!(format!("{:?}", Apiv3Key::parse("k", &good).expect("ok")), "Apiv3Key(<redacted>)");
    }

    #[test]
    fn public_key_id() {
        assert!(PublicKeyId::parse("f", "PUB_KEY_ID_0116571234562024052000123400000000").is_ok());
        assert!(PublicKeyId::parse("f", "PUB_KEY_ID_").is_err());
        assert!(PublicKeyId::parse("f", "5E7ABC").is_err());
    }

    #[test]
    fn notify_urls() {
        assert!(notify_url("u", "https://risk.example.com/callbacks/1/refunds").is_ok());
        assert!(notify_url("u", "http://127.0.0.1:8080/callbacks/1/refunds").is_ok());
        assert!(notify_url("u", "http://risk.example.com/x").is_err());
        assert!(notify_url("u", "https://risk.example.com/x?a=1").is_err());
        assert!(notify_url("u", "not a url").is_err());
    }
}
