//! Typed WeChat Pay APIs for service providers. Requests are checked against WeChat's documented rules before
//! they are sent (a request WeChat would refuse is an [`Error::Invalid`](crate::Error::Invalid), never a round
//! trip); responses parse leniently (unknown fields ignored, optional fields defaulted).

pub mod certificates;
pub mod complaints;
pub mod limitations;
pub mod media;
pub mod refunds;
pub mod violations;

use crate::error::{Error, Result};

/// An identifier placed in a URL path: letters, digits, `_`, `-` only, so nothing needs encoding.
pub(crate) fn path_id<'a>(what: &str, id: &'a str) -> Result<&'a str> {
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(Error::Invalid(format!("{what} `{id}` is not a plain identifier")));
    }
    Ok(id)
}

/// A query string in the order given, values form-encoded.
pub(crate) fn query(pairs: &[(&str, String)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        serializer.append_pair(key, value);
    }
    serializer.finish()
}

/// A notification URL WeChat will accept: https, no query string, at most `max` bytes. Plain http is let through
/// for loopback hosts only: WeChat would refuse it, but a simulator on the same machine calls it.
pub(crate) fn notify_url(field: &str, value: &str, max: usize) -> Result<()> {
    let url = url::Url::parse(value).map_err(|e| Error::Invalid(format!("{field}: `{value}` is not a URL: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(domain)) => domain == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(Error::Invalid(format!("{field}: WeChat Pay calls https URLs only")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Invalid(format!("{field}: WeChat Pay refuses URLs with a query string")));
    }
    if value.len() > max {
        return Err(Error::Invalid(format!("{field}: at most {max} bytes")));
    }
    Ok(())
}

pub(crate) fn json_body<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Invalid(e.to_string()))
}

/// WeChat accepts only characters of 1–3 bytes in UTF-8: drop 4-byte ones (emoji and other supplementary-plane
/// characters).
pub fn strip_four_byte_chars(text: &str) -> String {
    text.chars().filter(|c| c.len_utf8() < 4).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert!(path_id("complaint_id", "200201820200101080076610000").is_ok());
        assert!(path_id("complaint_id", "../x").is_err());
        assert!(path_id("complaint_id", "").is_err());
        assert_eq!(
            query(&[("limit", "5".into()), ("begin_date", "2019-01-01".into())]),
            "limit=5&begin_date=2019-01-01"
        );
        assert!(notify_url("url", "https://risk.example.com/callbacks/1/complaints", 255).is_ok());
        assert!(notify_url("url", "http://risk.example.com/x", 255).is_err());
        assert!(notify_url("url", "http://127.0.0.1:9000/callbacks", 255).is_ok(), "a local simulator");
        assert!(notify_url("url", "https://risk.example.com/x?a=1", 255).is_err());
        assert_eq!(strip_four_byte_chars("您好😀，已处理"), "您好，已处理");
    }
}
