//! Request bodies as they arrive compressed: gzip inflated within the body size limit (see
//! `crate::hardening`).

use std::io::Read;

use axum::http::{HeaderMap, header};
use bytes::Bytes;

use crate::error::ApiError;

/// Inflates a `Content-Encoding: gzip` body (no encoding and `identity` pass through), refusing
/// with 413 a body that inflates past `limit` bytes and with 400 any other encoding.
pub fn decode_content_encoding(
    headers: &HeaderMap,
    body: Bytes,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let Some(encoding) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(body);
    };
    let encoding = encoding.to_str().unwrap_or_default().trim();
    if encoding.is_empty() || encoding.eq_ignore_ascii_case("identity") {
        return Ok(body);
    }
    if !encoding.eq_ignore_ascii_case("gzip") && !encoding.eq_ignore_ascii_case("x-gzip") {
        return Err(ApiError::bad_request(
            "unsupported_content_encoding",
            "Content-Encoding must be gzip or identity",
            Some("Content-Encoding"),
        ));
    }
    inflate_gzip_within_limit(&body, limit).map(Bytes::from)
}

/// Inflates `compressed`, reading at most one byte past `limit` so memory stays bounded however
/// much the input claims to hold.
pub fn inflate_gzip_within_limit(compressed: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    let decoder = flate2::read::MultiGzDecoder::new(compressed);
    let mut inflated = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit));
    let read = decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|error| {
            ApiError::bad_request(
                "invalid_gzip",
                format!("the gzip body could not be inflated: {error}"),
                None,
            )
        })?;
    if read > limit {
        return Err(ApiError::PayloadTooLarge {
            code: "body_too_large",
            message: format!("request body inflates to more than {limit} bytes"),
        });
    }
    Ok(inflated)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn a_gzip_body_within_the_limit_inflates_to_its_content() {
        let body = br#"{"action":"user.login"}"#;
        assert_eq!(inflate_gzip_within_limit(&gzip(body), 1024).unwrap(), body);
    }

    #[test]
    fn a_body_inflating_past_the_limit_is_refused_after_at_most_the_limit() {
        let bomb = gzip(&vec![b' '; 8 * 1024 * 1024]);
        assert!(bomb.len() < 16 * 1024, "a bomb is small: {}", bomb.len());
        let error = inflate_gzip_within_limit(&bomb, 1024 * 1024).unwrap_err();
        assert_eq!(error.code(), "body_too_large");
    }

    #[test]
    fn garbage_that_claims_to_be_gzip_is_a_bad_request() {
        let error = inflate_gzip_within_limit(b"not gzip at all", 1024).unwrap_err();
        assert_eq!(error.code(), "invalid_gzip");
    }
}
