//! Complaint images: upload (for replies) and download (evidence).

use http::Method;
use serde::{Deserialize, Serialize};

use crate::client::{ApiRequest, Body, Client};
use crate::error::{Error, Result};

pub const MAX_IMAGE_BYTES: usize = 2 * 1024 * 1024;

/// A downloaded image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Serialize)]
struct Meta<'a> {
    filename: &'a str,
    sha256: String,
}

#[derive(Deserialize)]
struct MediaId {
    media_id: String,
}

/// The image type from the file name: jpg/jpeg, png or bmp only.
fn image_type(filename: &str) -> Option<&'static str> {
    let extension = filename.rsplit_once('.')?.1.to_ascii_lowercase();
    match extension.as_str() {
        "jpg" | "jpeg" => Some("image/jpeg"),
        "png" => Some("image/png"),
        "bmp" => Some("image/bmp"),
        _ => None,
    }
}

/// `multipart/form-data` with `meta` first and `file` second (the Go SDK's order); `filename` is plain ASCII here
/// because it was checked, so no header encoding is needed.
fn multipart(boundary: &str, meta: &str, filename: &str, content_type: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(bytes.len() + meta.len() + 512);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"meta\"\r\nContent-Type: application/json\r\n\r\n{meta}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

impl Client {
    /// Upload an image for a reply; returns its `media_id`. JPG/PNG/BMP, at most 2 MB. The signature covers the
    /// `meta` JSON, not the multipart body.
    pub async fn upload_image(&self, filename: &str, bytes: &[u8]) -> Result<String> {
        let content_type = image_type(filename)
            .ok_or_else(|| Error::Invalid(format!("`{filename}` is not a .jpg, .png or .bmp file")))?;
        if filename.len() > 128 || !filename.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\') {
            return Err(Error::Invalid(
                "the file name must be at most 128 printable ASCII characters, no quotes".into(),
            ));
        }
        if bytes.is_empty() || bytes.len() > MAX_IMAGE_BYTES {
            return Err(Error::Invalid(format!("images must be 1 byte to 2 MB (this one has {} bytes)", bytes.len())));
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
        let meta = serde_json::to_string(&Meta { filename, sha256: hex::encode(digest.as_ref()) })
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let boundary = format!(
            "wechatpay-{}",
            crate::crypto::random_alphanumeric(24).map_err(|_| Error::Invalid("no randomness".into()))?
        );
        let body = multipart(&boundary, &meta, filename, content_type, bytes);
        let answer: MediaId = self
            .json(ApiRequest {
                method: Method::POST,
                target: "/v3/merchant-service/images/upload".into(),
                body: Body::Multipart {
                    bytes: body,
                    content_type: format!("multipart/form-data; boundary={boundary}"),
                    meta,
                },
                encrypted: false,
                verify: true,
            })
            .await?;
        Ok(answer.media_id)
    }

    /// Download a complaint image by its `media_url`, used exactly as WeChat gave it (its `%3D`-style escapes are
    /// part of the signed URL). WeChat does not sign image answers, so none is verified.
    pub async fn download_image(&self, media_url: &str) -> Result<Image> {
        let response = self
            .execute(ApiRequest {
                method: Method::GET,
                target: media_url.to_owned(),
                body: Body::Empty,
                encrypted: false,
                verify: false,
            })
            .await?;
        let content_type = response
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        Ok(Image { content_type, bytes: response.body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_types() {
        assert_eq!(image_type("evidence.JPG"), Some("image/jpeg"));
        assert_eq!(image_type("a.png"), Some("image/png"));
        assert_eq!(image_type("a.gif"), None);
        assert_eq!(image_type("noextension"), None);
    }

    #[test]
    fn multipart_layout() {
        let body = multipart("B", "{\"filename\":\"a.png\",\"sha256\":\"00\"}", "a.png", "image/png", b"PNG");
        let text = String::from_utf8(body).expect("ascii");
        assert!(text.starts_with("--B\r\nContent-Disposition: form-data; name=\"meta\"\r\n"));
        assert!(text.contains("name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\nPNG\r\n--B--\r\n"));
    }
}
