//! Complaint images: upload (multipart `meta` + `file`, the signature over `meta`) and download (unsigned).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{error, frequency_limited, json, param_error};
use crate::Sim;
use crate::state::Image;

pub const UPLOAD_PER_MINUTE: u32 = 60;
const MAX_IMAGE_BYTES: usize = 2 * 1024 * 1024;

pub struct Multipart {
    pub meta: String,
    pub file: Vec<u8>,
    pub file_content_type: String,
}

/// Split `multipart/form-data` into its `meta` and `file` parts (the boundary is taken from the first line).
pub fn parse_multipart(body: &[u8]) -> Option<Multipart> {
    let first_line_end = body.windows(2).position(|w| w == b"\r\n")?;
    let delimiter = [b"\r\n".as_slice(), &body[..first_line_end]].concat();
    let mut meta = None;
    let mut file = None;
    let mut rest = &body[first_line_end + 2..];
    loop {
        let header_end = rest.windows(4).position(|w| w == b"\r\n\r\n")?;
        let headers = std::str::from_utf8(&rest[..header_end]).ok()?.to_ascii_lowercase();
        let content_start = header_end + 4;
        let content_len = rest[content_start..].windows(delimiter.len()).position(|w| w == delimiter.as_slice())?;
        let content = &rest[content_start..content_start + content_len];
        if headers.contains("name=\"meta\"") {
            meta = Some(String::from_utf8(content.to_vec()).ok()?);
        } else if headers.contains("name=\"file\"") {
            let content_type = headers
                .lines()
                .find_map(|l| l.strip_prefix("content-type:"))
                .map(|t| t.trim().to_owned())
                .unwrap_or_default();
            file = Some((content.to_vec(), content_type));
        }
        rest = &rest[content_start + content_len + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        rest = rest.strip_prefix(b"\r\n")?;
    }
    let (file, file_content_type) = file?;
    Some(Multipart { meta: meta?, file, file_content_type })
}

#[derive(Deserialize)]
struct Meta {
    filename: String,
    sha256: String,
}

pub async fn upload(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let is_multipart =
        headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("multipart/form-data"));
    if !is_multipart {
        return param_error("Content-Type应为multipart/form-data");
    }
    let Some(parts) = parse_multipart(&body) else {
        return param_error("multipart格式错误");
    };
    let Ok(meta) = serde_json::from_str::<Meta>(&parts.meta) else {
        return param_error("meta格式错误");
    };
    let extension = meta.filename.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    if !["jpg", "jpeg", "png", "bmp"].contains(&extension.as_str()) {
        return param_error("仅支持jpg、png、bmp格式");
    }
    if parts.file.is_empty() || parts.file.len() > MAX_IMAGE_BYTES {
        return param_error("图片大小不能超过2M");
    }
    let digest = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &parts.file).as_ref());
    if !digest.eq_ignore_ascii_case(&meta.sha256) {
        return param_error("sha256与文件内容不一致");
    }
    let mut state = sim.state();
    if !state.within_limit("image-upload", UPLOAD_PER_MINUTE, sim.clock.now_ms()) {
        return frequency_limited();
    }
    let media_id = format!("SIMMEDIA{:016}", state.next());
    state.images.insert(media_id.clone(), Image { content_type: parts.file_content_type, bytes: parts.file });
    json(StatusCode::OK, &serde_json::json!({"media_id": media_id}))
}

pub async fn download(State(sim): State<Arc<Sim>>, Path(media_id): Path<String>) -> Response {
    // Path extraction percent-decodes; stored ids are the decoded form.
    match sim.state().images.get(&media_id) {
        Some(image) => ([("content-type", image.content_type.clone())], image.bytes.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "图片不存在"),
    }
}
