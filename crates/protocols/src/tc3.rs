//! Tencent Cloud API 3.0 signing, TC3-HMAC-SHA256.
//!
//! Contract: the canonical request is `METHOD\n/\nQUERY\nHEADERS\nSIGNED_HEADERS\nhex(SHA-256(body))` with each signed
//! header as `name:value\n` (both lower-cased, value trimmed, sorted by name); the date in the credential scope is
//! the **UTC** date of the timestamp; the key is derived `TC3+secret → date → service → tc3_request`.

use crate::{hmac_sha256, sha256_hex};

pub const ALGORITHM: &str = "TC3-HMAC-SHA256";

/// What is signed.
#[derive(Debug, Clone)]
pub struct Tc3Request<'a> {
    pub method: &'a str,
    /// The query string for GET, empty for POST.
    pub query: &'a str,
    /// Headers to sign, as (name, value); at least `content-type` and `host`.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
    /// `sms`, `cvm`, …: the host's first label.
    pub service: &'a str,
    pub timestamp: i64,
}

/// Intermediate values, for checking against published examples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tc3Signature {
    pub signed_headers: String,
    pub hashed_canonical_request: String,
    pub date: String,
    pub signature: String,
}

/// The UTC date of a Unix timestamp, `YYYY-MM-DD`.
pub fn utc_date(timestamp: i64) -> String {
    let date = time::OffsetDateTime::from_unix_timestamp(timestamp).unwrap_or(time::OffsetDateTime::UNIX_EPOCH).date();
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

pub fn sign(request: &Tc3Request<'_>, secret_key: &str) -> Tc3Signature {
    let mut headers: Vec<(String, String)> =
        request.headers.iter().map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase())).collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let signed_headers = headers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(";");
    let canonical_request = format!(
        "{}\n/\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method,
        request.query,
        sha256_hex(request.body)
    );
    let hashed_canonical_request = sha256_hex(canonical_request.as_bytes());
    let date = utc_date(request.timestamp);
    let scope = format!("{date}/{}/tc3_request", request.service);
    let string_to_sign = format!("{ALGORITHM}\n{}\n{scope}\n{hashed_canonical_request}", request.timestamp);
    let k_date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac_sha256(&k_date, request.service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"tc3_request");
    let signature = hex::encode(hmac_sha256(&k_signing, string_to_sign.as_bytes()));
    Tc3Signature { signed_headers, hashed_canonical_request, date, signature }
}

/// The `Authorization` header value.
pub fn authorization(secret_id: &str, service: &str, signature: &Tc3Signature) -> String {
    format!(
        "{ALGORITHM} Credential={secret_id}/{}/{service}/tc3_request, SignedHeaders={}, Signature={}",
        signature.date, signature.signed_headers, signature.signature
    )
}

/// A parsed TC3 `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tc3Authorization {
    pub secret_id: String,
    pub date: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

impl Tc3Authorization {
    pub fn parse(header: &str) -> Option<Self> {
        let rest = header.trim().strip_prefix(ALGORITHM)?.trim_start();
        let mut credential = None;
        let mut signed_headers = None;
        let mut signature = None;
        for part in rest.split(',') {
            let (key, value) = part.trim().split_once('=')?;
            match key.trim() {
                "Credential" => credential = Some(value.trim()),
                "SignedHeaders" => signed_headers = Some(value.trim()),
                "Signature" => signature = Some(value.trim()),
                _ => return None,
            }
        }
        let mut scope = credential?.split('/');
        let (secret_id, date, service, terminator) = (scope.next()?, scope.next()?, scope.next()?, scope.next()?);
        if terminator != "tc3_request" || scope.next().is_some() {
            return None;
        }
        Some(Self {
            secret_id: secret_id.to_owned(),
            date: date.to_owned(),
            service: service.to_owned(),
            signed_headers: signed_headers?.split(';').map(str::to_owned).collect(),
            signature: signature?.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The official worked example's body: 86 bytes, the `\u` escapes literal.
    const CVM_BODY: &str = r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;

    fn cvm(headers: &[(&str, &str)], secret: &str) -> Tc3Signature {
        sign(
            &Tc3Request {
                method: "POST",
                query: "",
                headers,
                body: CVM_BODY.as_bytes(),
                service: "cvm",
                timestamp: 1_551_113_065,
            },
            secret,
        )
    }

    #[test]
    fn tencents_published_examples_a_b_c() {
        assert_eq!(CVM_BODY.len(), 86);
        assert_eq!(sha256_hex(CVM_BODY.as_bytes()), "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064");
        let headers = [("Content-Type", "application/json; charset=utf-8"), ("Host", "cvm.tencentcloudapi.com")];
        let a = cvm(&headers, "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE");
        assert_eq!(a.date, "2019-02-25", "the UTC date, though Beijing is already on the 26th");
        assert_eq!(a.hashed_canonical_request, "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031");
        assert_eq!(a.signature, "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168");
        assert_eq!(
            authorization("AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "cvm", &a),
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
        let b = cvm(&headers, "Gu5t9xGARNpq86cd98joQYCN3*******");
        assert_eq!(b.signature, "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c");
        let with_action = [
            ("Content-Type", "application/json; charset=utf-8"),
            ("Host", "cvm.tencentcloudapi.com"),
            ("X-TC-Action", "DescribeInstances"),
        ];
        let c = cvm(&with_action, "Gu5t9xGARNpq86cd98joQYCN3*******");
        assert_eq!(c.signed_headers, "content-type;host;x-tc-action");
        assert_eq!(c.hashed_canonical_request, "7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84");
        assert_eq!(c.signature, "be4f67d323c78ab9acb7395e43c0dbcf822a9cfac32fea2449a7bc7726b770a3");
    }

    #[test]
    fn send_sms_vectors_d_e_f() {
        let sms = |body: &str, timestamp: i64, headers: &[(&str, &str)]| {
            sign(
                &Tc3Request { method: "POST", query: "", headers, body: body.as_bytes(), service: "sms", timestamp },
                "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
            )
        };
        let plain = [("Content-Type", "application/json"), ("Host", "sms.tencentcloudapi.com")];
        let d_body = r#"{"PhoneNumberSet": ["+8613800138000"], "SmsSdkAppId": "1400006666", "TemplateId": "1110", "SignName": "\u817e\u8baf\u4e91", "TemplateParamSet": ["4370"]}"#;
        assert_eq!(d_body.len(), 153);
        assert_eq!(sha256_hex(d_body.as_bytes()), "56de497576a0318d877080eea1b0084fd6bd76bcb26f71bdc46daf8e223b6966");
        let d = sms(d_body, 1_700_000_000, &plain);
        assert_eq!(d.date, "2023-11-14");
        assert_eq!(d.hashed_canonical_request, "d8a986944c43ab89a76fd33f494dfeb55d2aeb15e1f6ab4cc2af8f545c989936");
        assert_eq!(d.signature, "fd2255cedac0810febece221d9ee0550db75eda6813cfd08338080637064fdfc");

        let e_body = r#"{"PhoneNumberSet":["+8613800138000"],"SmsSdkAppId":"1400006666","TemplateId":"1110","SignName":"腾讯云","TemplateParamSet":["4370"]}"#;
        assert_eq!(sha256_hex(e_body.as_bytes()), "5c6c22376c2a5907f12d326983512306e33c987a755b6fa54a09120d9fbc98a4");
        let e = sms(e_body, 1_700_000_000, &plain);
        assert_eq!(e.hashed_canonical_request, "3ccc44ceab5a46655ed2cc3f86b9dc8c61bc83d9d3cef65fdcfa1e7ac33675f2");
        assert_eq!(e.signature, "72045456991534614004c1bbb03cfb90b11524068e3473511b35da9fc77ce94b");

        let f_headers = [
            ("Content-Type", "application/json; charset=utf-8"),
            ("Host", "sms.tencentcloudapi.com"),
            ("X-TC-Action", "SendSms"),
        ];
        let f = sms(e_body, 1_551_113_065, &f_headers);
        assert_eq!(f.date, "2019-02-25");
        assert_eq!(f.hashed_canonical_request, "70fdd4df7bf67d7e18208cdbab1a4c726571756705ff07ef08338050b6532dd9");
        assert_eq!(f.signature, "efaed1d7ad780913c7ec7399391aa58b0a24af0402fb8fd1453150a89e87c12c");
    }

    #[test]
    fn authorization_round_trip() {
        let header = "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2023-11-14/sms/tc3_request, SignedHeaders=content-type;host, Signature=fd22";
        let parsed = Tc3Authorization::parse(header).expect("parses");
        assert_eq!(parsed.secret_id, "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE");
        assert_eq!(parsed.service, "sms");
        assert_eq!(parsed.signed_headers, ["content-type", "host"]);
        assert!(Tc3Authorization::parse("TC3-HMAC-SHA256 Credential=x").is_none());
        assert!(Tc3Authorization::parse("Bearer x").is_none());
    }
}
