//! A simulator on test keys, a WeChat Pay client for it, the control API, and a callback receiver.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use wechatpay::{Apiv3Key, Client, ClientConfig, Credentials, PlatformCertificate, RsaPrivateKey, WechatPayPublicKey};
use wxsim::keys::SignMode;
use wxsim::{ProviderSetup, SimConfig, Simulator};

pub const APIV3: &str = "0123456789abcdefABCDEF0123456789";
pub const SUB_MCHID: &str = "1900000109";

pub use crate::support::testdata;

pub async fn start(mode: SignMode) -> Simulator {
    let config = SimConfig {
        apiv3_key: Some(APIV3.into()),
        merchant: Some((testdata("merchant_key.pem"), testdata("merchant_cert.pem"))),
        platform: Some((testdata("other_key.pem"), testdata("platform_cert.pem"))),
        public_key: Some(testdata("other_key.pem")),
        sign_mode: mode,
        callback_time_scale: 0.001,
        callback_timeout: Duration::from_secs(2),
        ..SimConfig::default()
    };
    Simulator::start(config).await.expect("simulator starts")
}

/// A client configured from what the simulator says a provider must configure.
pub fn client(setup: &ProviderSetup, public_key: bool, certificate: bool) -> Client {
    let config = ClientConfig {
        base_url: url::Url::parse(&setup.wechatpay_base_url).expect("url"),
        timeout: Duration::from_secs(5),
        ..ClientConfig::default()
    };
    let credentials = Credentials {
        mchid: setup.mchid.clone(),
        merchant_cert_serial: setup.merchant_cert_serial.clone(),
        private_key: Arc::new(RsaPrivateKey::from_pem(&setup.merchant_private_key_pem).expect("key")),
        apiv3_key: Apiv3Key::new(setup.apiv3_key.as_bytes()).expect("apiv3"),
    };
    let public = public_key.then(|| {
        WechatPayPublicKey::from_pem(&setup.wechatpay_public_key_id, &setup.wechatpay_public_key_pem).expect("pk")
    });
    let certs = if certificate {
        vec![PlatformCertificate::from_pem(&setup.platform_cert_pem).expect("cert")]
    } else {
        Vec::new()
    };
    Client::new(config, credentials, public, certs).expect("client")
}

pub use crate::sim_control::Control;

/// A callback receiver: records what arrives and answers scripted statuses (204 when the script is empty).
#[derive(Clone, Default)]
pub struct Receiver {
    pub received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    pub statuses: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    pub async fn start() -> (Self, String) {
        let receiver = Receiver::default();
        let app = axum::Router::new().fallback(receive).with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/callbacks", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    pub fn script(&self, statuses: &[u16]) {
        self.statuses.lock().expect("lock").extend(statuses.iter().copied());
    }

    pub fn count(&self) -> usize {
        self.received.lock().expect("lock").len()
    }

    pub fn all(&self) -> Vec<(HeaderMap, Bytes)> {
        self.received.lock().expect("lock").clone()
    }

    /// Wait (bounded) until `n` callbacks have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<(HeaderMap, Bytes)> {
        for _ in 0..500 {
            if self.count() >= n {
                return self.all();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("expected {n} callbacks, got {}", self.count());
    }
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    receiver.received.lock().expect("lock").push((headers, body));
    let status = receiver.statuses.lock().expect("lock").pop_front().unwrap_or(204);
    StatusCode::from_u16(status).expect("status")
}

/// Keys that verify what the simulator signs.
pub fn platform_keys(setup: &ProviderSetup) -> wechatpay::PlatformKeys {
    wechatpay::PlatformKeys::new(
        Some(
            WechatPayPublicKey::from_pem(&setup.wechatpay_public_key_id, &setup.wechatpay_public_key_pem).expect("pk"),
        ),
        vec![PlatformCertificate::from_pem(&setup.platform_cert_pem).expect("cert")],
    )
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
