//! Request bodies: read within the size limit and the read deadline, a refused body's rest read
//! and thrown away (within bounds) so its client hears the 413, and gzip inflated within the same
//! size limit (see `crate::hardening`).

use std::io::Read;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;

use crate::error::ApiError;

/// The most of a refused body read and thrown away before the 413 is sent. Clients such as
/// Python's urllib write the whole body before they read the answer; if the connection closes
/// with their bytes unread, the kernel resets it and they see a broken pipe, never the 413. A
/// declared length above this is not worth reading: such a client gets the reset.
pub const MAX_DISCARDED_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// The longest a refused body's rest is read for, so a slow sender cannot hold the connection
/// by being refused.
pub const DISCARD_DEADLINE: Duration = Duration::from_secs(10);

/// Reads the whole body within `read_deadline` (408 past it), refusing it (413) as soon as it is
/// known to be larger than `limit`: before reading anything when `Content-Length` says so,
/// otherwise at the first frame past it. A refused body's rest is read and thrown away first
/// (`discard_refused_body`), so a client that writes everything before reading gets the 413.
pub async fn read_body_within_limit(
    headers: &HeaderMap,
    mut body: Body,
    limit: usize,
    read_deadline: Duration,
) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::PayloadTooLarge {
        code: "body_too_large",
        message: format!("request body is larger than {limit} bytes"),
    };
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    if let Some(length) = declared_length.filter(|length| *length > limit as u64) {
        // A client that asked `Expect: 100-continue` has sent nothing yet; reading would invite
        // the body this answer refuses.
        if length <= MAX_DISCARDED_BODY_BYTES && !expects_continue(headers) {
            discard_refused_body(&mut body, MAX_DISCARDED_BODY_BYTES).await;
        }
        return Err(too_large());
    }
    let read = tokio::time::timeout(read_deadline, read_at_most(&mut body, limit))
        .await
        .map_err(|_elapsed| ApiError::RequestTimeout)?;
    match read? {
        Some(bytes) => Ok(bytes),
        None => {
            discard_refused_body(&mut body, MAX_DISCARDED_BODY_BYTES).await;
            Err(too_large())
        }
    }
}

/// The body's bytes, or `None` as soon as more than `limit` of them arrived.
async fn read_at_most(body: &mut Body, limit: usize) -> Result<Option<Bytes>, ApiError> {
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut received = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            ApiError::bad_request(
                "body_unreadable",
                format!("request body could not be read: {error}"),
                None,
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        received = received.saturating_add(data.len());
        if received > limit {
            return Ok(None);
        }
        // One frame (the usual case) is handed over as is; several are joined once.
        match (&mut first, &mut joined) {
            (None, None) => first = Some(data),
            (Some(_), None) => {
                let mut buffer = BytesMut::with_capacity(received);
                buffer.extend_from_slice(&first.take().expect("checked just above"));
                buffer.extend_from_slice(&data);
                joined = Some(buffer);
            }
            (_, Some(buffer)) => buffer.extend_from_slice(&data),
        }
    }
    Ok(Some(match joined {
        Some(buffer) => buffer.freeze(),
        None => first.unwrap_or_default(),
    }))
}

/// Reads and drops what is left of a refused body, at most `bound` bytes and for at most
/// `DISCARD_DEADLINE`; whatever stops it (the end, the bound, the deadline, an error) is fine.
pub async fn discard_refused_body(body: &mut Body, bound: u64) {
    let discard = async {
        let mut discarded = 0u64;
        while discarded <= bound {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        discarded += data.len() as u64;
                    }
                }
                Some(Err(_)) | None => return,
            }
        }
    };
    let _ = tokio::time::timeout(DISCARD_DEADLINE, discard).await;
}

fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(header::EXPECT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("100-continue"))
}

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
