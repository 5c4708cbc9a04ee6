//! `GET /v3/certificates`: the provider's platform certificates, encrypted under its APIv3 key.

use http::Method;
use serde::Deserialize;

use crate::client::{ApiRequest, Body, Client};
use crate::crypto::Apiv3Key;
use crate::error::{Error, Result};
use crate::verify::{PlatformCertificate, PlatformKeys, SignatureHeaders};

#[derive(Debug, Deserialize)]
struct CertificatesResponse {
    data: Vec<CertificateEntry>,
}

#[derive(Debug, Deserialize)]
struct CertificateEntry {
    serial_no: String,
    encrypt_certificate: EncryptedCertificate,
}

#[derive(Debug, Deserialize)]
struct EncryptedCertificate {
    algorithm: String,
    nonce: String,
    #[serde(default)]
    associated_data: Option<String>,
    ciphertext: String,
}

/// Decrypt a `/v3/certificates` answer's certificates with the APIv3 key, checking each against its listed serial.
pub fn decrypt_certificates(body: &[u8], key: &Apiv3Key) -> Result<Vec<PlatformCertificate>> {
    let parsed: CertificatesResponse =
        serde_json::from_slice(body).map_err(|e| Error::Decode(format!("certificates: {e}")))?;
    let mut certificates = Vec::with_capacity(parsed.data.len());
    for entry in parsed.data {
        let encrypted = entry.encrypt_certificate;
        if encrypted.algorithm != crate::callback::AEAD_ALGORITHM {
            return Err(Error::Decode(format!("certificate {}: algorithm {}", entry.serial_no, encrypted.algorithm)));
        }
        let pem = key.decrypt(&encrypted.ciphertext, &encrypted.nonce, encrypted.associated_data.as_deref())?;
        let cert = PlatformCertificate::from_pem(&pem)?;
        if !crate::keys::same_serial(&cert.serial, &entry.serial_no) {
            return Err(Error::Decode(format!("certificate listed as {} has serial {}", entry.serial_no, cert.serial)));
        }
        certificates.push(cert);
    }
    Ok(certificates)
}

impl Client {
    /// Download and decrypt the platform certificates (without adding them; see
    /// [`Client::refresh_certificates`]). The answer is verified with the keys held plus the certificates it
    /// brings: a new certificate may sign the very answer that introduces it, and the certificates themselves are
    /// authenticated by AES-GCM under the APIv3 key.
    pub async fn download_certificates(&self) -> Result<Vec<PlatformCertificate>> {
        let response = self
            .execute(ApiRequest {
                method: Method::GET,
                target: "/v3/certificates".into(),
                body: Body::Empty,
                encrypted: false,
                verify: false,
            })
            .await?;
        let certificates = decrypt_certificates(&response.body, self.apiv3_key())?;
        let mut candidates = self.keys().certificates();
        candidates.extend(certificates.iter().cloned());
        let verifier = PlatformKeys::new(self.keys().public_key().cloned(), candidates);
        let headers = SignatureHeaders::from_headers(&response.headers).map_err(Error::ResponseSignature)?;
        verifier.verify(&headers, &response.body, self.now()).map_err(Error::ResponseSignature)?;
        Ok(certificates)
    }
}
