//! The simulator's key material: the provider's merchant certificate (to check `Authorization` headers), WeChat
//! Pay's platform certificates (to sign answers and callbacks, served encrypted at `/v3/certificates`), the WeChat
//! Pay public key and its `PUB_KEY_ID_…`, and the APIv3 key. Given as PEM, or generated (RSA-2048, X.509 via rcgen).

use std::sync::Arc;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_RSA_SHA256, RsaKeySize, SerialNumber};
use wechatpay::keys::{Certificate, RsaPrivateKey, RsaPublicKey};

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("key generation or certificate creation failed: {0}")]
    Generate(String),
    #[error(transparent)]
    Key(#[from] wechatpay::KeyError),
}

/// A private key with its certificate.
#[derive(Clone)]
pub struct Identity {
    pub key: Arc<RsaPrivateKey>,
    pub key_pem: String,
    pub cert_pem: String,
    pub serial: String,
    pub public: RsaPublicKey,
    pub not_after: i64,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("serial", &self.serial).finish_non_exhaustive()
    }
}

impl Identity {
    pub fn from_pem(key_pem: &str, cert_pem: &str) -> Result<Self, KeysError> {
        let cert = Certificate::from_pem(cert_pem)?;
        Ok(Self {
            key: Arc::new(RsaPrivateKey::from_pem(key_pem)?),
            key_pem: key_pem.to_owned(),
            cert_pem: cert_pem.to_owned(),
            serial: cert.serial,
            public: cert.public_key,
            not_after: cert.not_after,
        })
    }

    /// A new RSA-2048 key and a self-signed certificate with a random 20-byte serial, valid from yesterday for five
    /// years.
    pub fn generate(organization: &str, common_name: &str) -> Result<Self, KeysError> {
        let now = time::OffsetDateTime::now_utc();
        Self::generate_valid(
            organization,
            common_name,
            now - time::Duration::days(1),
            now + time::Duration::days(5 * 365),
        )
    }

    /// Like [`Identity::generate`], valid from `not_before` to `not_after` (for certificates that have expired or
    /// are not valid yet).
    pub fn generate_valid(
        organization: &str,
        common_name: &str,
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> Result<Self, KeysError> {
        let err = |e: rcgen::Error| KeysError::Generate(e.to_string());
        let key_pair = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048).map_err(err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CountryName, "CN");
        name.push(DnType::OrganizationName, organization);
        name.push(DnType::CommonName, common_name);
        params.distinguished_name = name;
        let mut serial = [0u8; 20];
        aws_lc_rs::rand::fill(&mut serial).map_err(|_| KeysError::Generate("no randomness".into()))?;
        serial[0] = (serial[0] & 0x7f) | 0x10; // positive, and 40 hex digits like WeChat's
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params.self_signed(&key_pair).map_err(err)?;
        Self::from_pem(&key_pair.serialize_pem(), &cert.pem())
    }
}

/// The WeChat Pay public key (微信支付公钥): a key pair and its id.
#[derive(Clone)]
pub struct PublicKeyIdentity {
    pub id: String,
    pub key: Arc<RsaPrivateKey>,
    pub public_pem: String,
}

impl std::fmt::Debug for PublicKeyIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKeyIdentity").field("id", &self.id).finish_non_exhaustive()
    }
}

impl PublicKeyIdentity {
    pub fn from_pem(id: &str, key_pem: &str) -> Result<Self, KeysError> {
        let key = RsaPrivateKey::from_pem(key_pem)?;
        let public_pem = spki_pem(&key)?;
        Ok(Self { id: id.to_owned(), key: Arc::new(key), public_pem })
    }

    pub fn generate(id: &str) -> Result<Self, KeysError> {
        let key_pair = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048)
            .map_err(|e| KeysError::Generate(e.to_string()))?;
        Self::from_pem(id, &key_pair.serialize_pem())
    }
}

/// `-----BEGIN PUBLIC KEY-----` of a private key's public half.
fn spki_pem(key: &RsaPrivateKey) -> Result<String, KeysError> {
    use base64::Engine as _;
    let der = key.public_key()?.spki_der().to_vec();
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    Ok(format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n")))
}

/// How the simulated WeChat Pay signs answers and callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignMode {
    /// Platform certificates only (`/v3/certificates` serves them).
    Certificate,
    /// The WeChat Pay public key only: `/v3/certificates` is refused, as for merchants onboarded after 2024-10.
    PublicKey,
    /// The switch: answers follow the `Wechatpay-Serial` the request sent; callbacks alternate.
    Both,
}

/// Key material kept in a directory, so a standalone simulator keeps its identity across restarts (and the
/// provider configured against it stays valid).
#[derive(Debug, Clone)]
pub struct KeyDir {
    pub merchant: (String, String),
    pub platform: (String, String),
    pub public_key: String,
    pub apiv3_key: String,
}

impl KeyDir {
    const FILES: [&'static str; 6] = [
        "merchant_key.pem",
        "merchant_cert.pem",
        "platform_key.pem",
        "platform_cert.pem",
        "public_key_private.pem",
        "apiv3_key.txt",
    ];

    /// Load the keys in `dir`, or generate and save them there (files readable by the owner only).
    pub fn load_or_create(dir: &std::path::Path, sp_mchid: &str) -> Result<Self, KeysError> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .map_err(|e| KeysError::Generate(format!("{}: {e}", dir.join(name).display())))
        };
        if Self::FILES.iter().all(|f| dir.join(f).exists()) {
            return Ok(Self {
                merchant: (read("merchant_key.pem")?, read("merchant_cert.pem")?),
                platform: (read("platform_key.pem")?, read("platform_cert.pem")?),
                public_key: read("public_key_private.pem")?,
                apiv3_key: read("apiv3_key.txt")?.trim().to_owned(),
            });
        }
        let merchant = Identity::generate("wxrisk simulated service provider", sp_mchid)?;
        let platform = Identity::generate("Tenpay.com", "Tenpay.com Root CA")?;
        let public_key = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048)
            .map_err(|e| KeysError::Generate(e.to_string()))?;
        let apiv3_key =
            wechatpay::crypto::random_alphanumeric(32).map_err(|_| KeysError::Generate("no randomness".into()))?;
        let keys = Self {
            merchant: (merchant.key_pem, merchant.cert_pem),
            platform: (platform.key_pem, platform.cert_pem),
            public_key: public_key.serialize_pem(),
            apiv3_key,
        };
        std::fs::create_dir_all(dir).map_err(|e| KeysError::Generate(format!("{}: {e}", dir.display())))?;
        let contents =
            [&keys.merchant.0, &keys.merchant.1, &keys.platform.0, &keys.platform.1, &keys.public_key, &keys.apiv3_key];
        for (name, content) in Self::FILES.iter().zip(contents) {
            write_private(&dir.join(name), content).map_err(|e| KeysError::Generate(format!("{name}: {e}")))?;
        }
        Ok(keys)
    }
}

/// Write a file readable by its owner only (it holds keys).
pub fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}
