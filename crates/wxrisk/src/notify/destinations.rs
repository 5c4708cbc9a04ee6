//! Where channels may send: a guard against using webhooks, test sends and SMTP settings to probe the network
//! wxrisk runs in (SSRF).
//!
//! Contract: unless `notify.allow_private_destinations` is set, a destination taken from channel settings (a
//! webhook URL, an SMTP host) is refused when it is, or resolves to, an address outside the public internet
//! ([`refused_range`]: loopback, private, carrier-grade NAT, link-local, unique-local, unspecified, multicast,
//! broadcast, reserved, benchmarking and documentation ranges, and IPv6 forms embedding such an IPv4 address).
//! - The check runs **when sending**, on the addresses the name resolves to then, and wxrisk connects only to
//!   addresses that passed: HTTP through [`GuardedResolver`] (a client without proxies, so the name is resolved
//!   here and not by a proxy), SMTP by resolving here ([`resolve_checked`]) and connecting to the checked address
//!   while TLS still verifies the host name. A name that resolves inside later (DNS rebinding) is caught.
//! - A literal address (or `localhost`) in a refused range is also refused when the channel is created or
//!   updated ([`check_settings`]); names can only be judged when sending.
//! - A refused destination is a permanent delivery error (`destination_refused`), never retried.
//!
//! The services' addresses in the operator's configuration (`notify.wechat_api_base`, `notify.tencent_sms_endpoint`,
//! `notify.wecom_base`, `notify.dingtalk_base`, `notify.feishu_base`, `notify.lark_base`; robot channels only add
//! a key to these) are not checked: no API caller can change them, and an operator may rightly point them at an
//! egress proxy or a gateway inside their own network. They use the ordinary client, which honours proxies.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde_json::{Map, Value};

use crate::domain::FieldError;
use crate::domain::channel::ChannelKind;

/// The name of the range `ip` is in, when wxrisk must not send there; `None` for a public address.
pub fn refused_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "\"this network\" (0.0.0.0/8)",
        (10, _, _) => "private (10.0.0.0/8)",
        (100, 64..=127, _) => "carrier-grade NAT (100.64.0.0/10)",
        (127, _, _) => "loopback (127.0.0.0/8)",
        (169, 254, _) => "link-local (169.254.0.0/16)",
        (172, 16..=31, _) => "private (172.16.0.0/12)",
        (192, 0, 0) => "IETF protocol assignments (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation (TEST-NET)",
        (192, 88, 99) => "6to4 relay anycast (192.88.99.0/24)",
        (192, 168, _) => "private (192.168.0.0/16)",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (224..=239, _, _) => "multicast (224.0.0.0/4)",
        (240..=255, _, _) => "reserved or broadcast (240.0.0.0/4)",
        _ => return None,
    })
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    let embedded_v4 = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    if let Some(v4) = ip.to_ipv4_mapped() {
        // ::ffff:a.b.c.d reaches a.b.c.d.
        return refused_v4(v4).map(|_| "an IPv4-mapped address in a refused IPv4 range");
    }
    Some(match segments {
        [0, 0, 0, 0, 0, 0, 0, 0] => "unspecified (::)",
        [0, 0, 0, 0, 0, 0, 0, 1] => "loopback (::1)",
        // ::a.b.c.d (deprecated IPv4-compatible) and other addresses under ::/96.
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible (::/96, deprecated)",
        // NAT64 translates 64:ff9b::a.b.c.d to a.b.c.d.
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => {
            return refused_v4(embedded_v4(high, low)).map(|_| "a NAT64 address of a refused IPv4 range");
        }
        [0x64, 0xff9b, 1, ..] => "local-use NAT64 (64:ff9b:1::/48)",
        [0x100, 0, 0, 0, ..] => "discard-only (100::/64)",
        [0x2001, 0xdb8, ..] => "documentation (2001:db8::/32)",
        [0x2001, 0..=0x1ff, ..] => "IETF protocol assignments (2001::/23, Teredo included)",
        // 6to4: 2002:a.b.c.d::/48 is routed to a.b.c.d.
        [0x2002, high, low, ..] => {
            return refused_v4(embedded_v4(high, low)).map(|_| "a 6to4 address of a refused IPv4 range");
        }
        [0x3fff, 0..=0x0fff, ..] => "documentation (3fff::/20)",
        [first, ..] if first & 0xfe00 == 0xfc00 => "unique-local (fc00::/7)",
        [first, ..] if first & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        [first, ..] if first & 0xffc0 == 0xfec0 => "site-local (fec0::/10, deprecated)",
        [first, ..] if first & 0xff00 == 0xff00 => "multicast (ff00::/8)",
        _ => return None,
    })
}

/// A destination the guard refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "destination {host} refused: {reason}; channels may not send to addresses outside the public internet \
     (the operator can allow it with notify.allow_private_destinations)"
)]
pub struct DestinationRefused {
    pub host: String,
    pub reason: String,
}

impl DestinationRefused {
    fn address(host: &str, ip: IpAddr, range: &str) -> Self {
        let reason = if host == ip.to_string() { range.to_owned() } else { format!("it resolves to {ip}, {range}") };
        Self { host: host.to_owned(), reason }
    }
}

/// `localhost` and its subdomains are loopback by definition (RFC 6761), whatever a resolver says.
fn is_localhost_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// At create/update time, check a host as written in settings: a literal address, or a `localhost` name. Other
/// names pass (they are checked when sending).
pub fn check_host_literal(host: &str, allow_private: bool) -> Result<(), DestinationRefused> {
    if allow_private {
        return Ok(());
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if is_localhost_name(bare) {
        return Err(DestinationRefused { host: host.to_owned(), reason: "loopback (localhost)".to_owned() });
    }
    match bare.parse::<IpAddr>() {
        Ok(ip) => match refused_range(ip) {
            Some(range) => Err(DestinationRefused::address(bare, ip, range)),
            None => Ok(()),
        },
        Err(_) => Ok(()),
    }
}

/// At create/update time, check the host of a URL as written: a literal address or a `localhost` name (the `url`
/// crate has already turned `http://2130706433/` and the like into the address they mean).
pub fn check_url_literal(url: &url::Url, allow_private: bool) -> Result<(), DestinationRefused> {
    match url.host() {
        Some(url::Host::Domain(name)) => check_host_literal(name, allow_private),
        _ => check_url_address(url, allow_private),
    }
}

/// When sending, check a URL whose host is a literal address: reqwest connects to those without asking the
/// resolver. A name is left to [`GuardedResolver`].
pub fn check_url_address(url: &url::Url, allow_private: bool) -> Result<(), DestinationRefused> {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => check_ip(&ip.to_string(), IpAddr::V4(ip), allow_private),
        Some(url::Host::Ipv6(ip)) => check_ip(&ip.to_string(), IpAddr::V6(ip), allow_private),
        Some(url::Host::Domain(_)) => Ok(()),
        None => Err(DestinationRefused { host: url.to_string(), reason: "the URL has no host".to_owned() }),
    }
}

fn check_ip(host: &str, ip: IpAddr, allow_private: bool) -> Result<(), DestinationRefused> {
    match refused_range(ip) {
        Some(range) if !allow_private => Err(DestinationRefused::address(host, ip, range)),
        _ => Ok(()),
    }
}

/// At create/update time: refuse settings whose destination is a literal address (or `localhost`) in a refused
/// range, naming the setting.
pub fn check_settings(kind: ChannelKind, public: &Map<String, Value>, allow_private: bool) -> Result<(), FieldError> {
    let refused = |key: &str, e: DestinationRefused| FieldError::new(format!("settings.{key}"), e.to_string());
    match kind {
        ChannelKind::Webhook => {
            if let Some(text) = public.get("url").and_then(Value::as_str) {
                let url =
                    url::Url::parse(text).map_err(|e| FieldError::new("settings.url", format!("not a URL: {e}")))?;
                check_url_literal(&url, allow_private).map_err(|e| refused("url", e))?;
            }
        }
        ChannelKind::Email => {
            if let Some(host) = public.get("host").and_then(Value::as_str) {
                check_host_literal(host, allow_private).map_err(|e| refused("host", e))?;
            }
        }
        // Their hosts come from the operator's configuration.
        ChannelKind::WechatTemplate
        | ChannelKind::TencentSms
        | ChannelKind::WecomRobot
        | ChannelKind::DingtalkRobot
        | ChannelKind::FeishuRobot => {}
    }
    Ok(())
}

/// Why a destination could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Refused(#[from] DestinationRefused),
    #[error("cannot resolve {host}: {source}")]
    Lookup { host: String, source: std::io::Error },
}

/// Resolve `host` now and keep the addresses the guard lets through; refused when none is left. A literal
/// address resolves to itself and is checked the same way.
pub async fn resolve_checked(host: &str, port: u16, allow_private: bool) -> Result<Vec<SocketAddr>, ResolveError> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| ResolveError::Lookup { host: host.to_owned(), source })?
        .collect();
    Ok(keep_allowed(host, addresses, allow_private)?)
}

/// The addresses the guard lets through; refused (naming the first refused address) when none is left.
fn keep_allowed(
    host: &str,
    addresses: Vec<SocketAddr>,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, DestinationRefused> {
    if allow_private {
        return Ok(addresses);
    }
    let first_refused = addresses.iter().find_map(|a| refused_range(a.ip()).map(|range| (a.ip(), range)));
    let allowed: Vec<SocketAddr> = addresses.into_iter().filter(|a| refused_range(a.ip()).is_none()).collect();
    match (allowed.is_empty(), first_refused) {
        (false, refused) => {
            if let Some((ip, range)) = refused {
                tracing::warn!(%host, %ip, range, "a destination also resolves to a refused address; not using it");
            }
            Ok(allowed)
        }
        (true, Some((ip, range))) => Err(DestinationRefused::address(host, ip, range)),
        (true, None) => Err(DestinationRefused { host: host.to_owned(), reason: "it resolves to no address".into() }),
    }
}

/// A DNS resolver for reqwest that hands out only addresses the guard lets through, so the connection goes to an
/// address that was checked (no second lookup an attacker's DNS could answer differently).
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = resolve_checked(&host, 0, allow_private).await.map_err(|e| match e {
                ResolveError::Refused(refused) => Box::new(refused) as Box<dyn std::error::Error + Send + Sync>,
                ResolveError::Lookup { source, .. } => Box::new(source),
            })?;
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The guard's refusal somewhere in an error's chain of causes (reqwest wraps what the resolver said).
pub fn refusal_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a DestinationRefused> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(refused) = e.downcast_ref::<DestinationRefused>() {
            return Some(refused);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let refused = [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.255.255",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
            "3fff::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
        ];
        for text in refused {
            let ip: IpAddr = text.parse().expect(text);
            assert!(refused_range(ip).is_some(), "{text} must be refused");
        }
        let public = [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.169.0.1",
            "198.20.0.1",
            "223.255.255.255",
            "101.91.22.57",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2400:3200::1",
            "2408:8000::1",
            "2606:4700:4700::1111",
        ];
        for text in public {
            let ip: IpAddr = text.parse().expect(text);
            assert_eq!(refused_range(ip), None, "{text} is public");
        }
    }

    #[test]
    fn literals_in_settings() {
        let url = |text: &str| url::Url::parse(text).expect("url");
        for text in [
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "https://api.localhost/hook",
            "https://[::1]/hook",
            "https://[::ffff:7f00:1]/hook",
            "https://10.1.2.3/hook",
            "https://2130706433/hook",
            "https://0x7f.1/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[fd00::1]/",
        ] {
            let error = check_url_literal(&url(text), false).expect_err(text);
            assert!(error.to_string().contains("notify.allow_private_destinations"), "{error}");
            assert!(check_url_literal(&url(text), true).is_ok(), "{text} allowed by the setting");
        }
        assert!(check_url_literal(&url("https://hooks.example.com/x"), false).is_ok(), "names wait for sending");
        assert!(check_url_literal(&url("https://8.8.8.8/x"), false).is_ok());
        assert!(check_host_literal("192.168.0.10", false).is_err());
        assert!(check_host_literal("smtp.163.com", false).is_ok());
        let public: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"url": "https://10.0.0.5/hook"})).expect("map");
        let error = check_settings(ChannelKind::Webhook, &public, false).expect_err("private webhook");
        assert_eq!(error.field, "settings.url");
        let public: Map<String, Value> = serde_json::from_value(serde_json::json!({"host": "127.0.0.1"})).expect("map");
        assert_eq!(check_settings(ChannelKind::Email, &public, false).expect_err("loopback").field, "settings.host");
        assert!(check_settings(ChannelKind::Email, &public, true).is_ok());
    }

    #[test]
    fn resolution_keeps_only_public_addresses() {
        let addresses: Vec<SocketAddr> =
            ["10.0.0.1:443", "93.184.215.14:443"].iter().map(|a| a.parse().expect("addr")).collect();
        assert_eq!(keep_allowed("mixed.example", addresses.clone(), false).expect("one public"), [addresses[1]]);
        assert_eq!(keep_allowed("mixed.example", addresses.clone(), true).expect("all"), addresses);
        let inside: Vec<SocketAddr> = vec!["192.168.1.1:25".parse().expect("addr")];
        let error = keep_allowed("rebind.example", inside, false).expect_err("inside only");
        assert!(error.to_string().contains("resolves to 192.168.1.1"), "{error}");
    }

    #[tokio::test]
    async fn localhost_is_refused_when_sending_unless_allowed() {
        let refused = resolve_checked("localhost", 25, false).await.expect_err("loopback");
        assert!(matches!(refused, ResolveError::Refused(_)), "{refused}");
        let allowed = resolve_checked("localhost", 25, true).await.expect("allowed");
        assert!(allowed.iter().all(|a| a.ip().is_loopback() && a.port() == 25), "{allowed:?}");
    }
}
