//! What can go wrong talking to Logbook, sorted by what the caller should do about it
//! (`ErrorKind`): retry later, fix the event, or fix the request or configuration.

use std::fmt;

use reqwest::StatusCode;
use serde::Deserialize;

/// Logbook's stable error body: `{"error":{"code","message","field"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `invalid_field`, `missing_field`, `rate_limited`, ...
    pub code: String,
    pub message: String,
    /// A JSON pointer to the offending value (`/events/3/ip`) or a parameter name (`q`).
    #[serde(default)]
    pub field: Option<String>,
}

impl fmt::Display for ErrorDetail {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.code, self.message)?;
        if let Some(field) = self.field.as_deref().filter(|field| !field.is_empty()) {
            write!(formatter, " (field {field})")?;
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub(crate) error: ErrorDetail,
}

impl ErrorDetail {
    /// The standard error object of an answer's body, if it has one.
    pub(crate) fn from_body(body: &[u8]) -> Option<Self> {
        serde_json::from_slice::<ErrorBody>(body)
            .ok()
            .map(|body| body.error)
    }
}

/// What the caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A transient failure (connection, timeout, 429, 5xx): the same request may succeed later,
    /// and sending it again with the same idempotency keys never duplicates an event.
    Retry,
    /// The server refused an event for what it holds: sending it again will not help.
    FixEvent,
    /// The request as a whole was refused (bad key, missing scope, another account, bad query,
    /// quota): fix the configuration or the request.
    FixRequest,
}

/// An error from the client. Cheap to clone (the batcher hands one failure to every event of the
/// batch).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The server could not be reached, or the connection broke before a complete answer.
    #[error("could not reach {server}: {source}")]
    Transport {
        server: String,
        #[source]
        source: std::sync::Arc<reqwest::Error>,
    },
    /// The server answered with a status that says "try again later" (429, 5xx).
    #[error("{}", describe(*status, detail.as_ref()))]
    Unavailable {
        status: StatusCode,
        detail: Option<ErrorDetail>,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<std::time::Duration>,
    },
    /// The server refused the request as a whole (4xx other than 429).
    #[error("{}", describe(*status, detail.as_ref()))]
    Refused {
        status: StatusCode,
        detail: Option<ErrorDetail>,
    },
    /// The server refused one event (in a batch, the others may be stored).
    #[error("{0}")]
    InvalidEvent(ErrorDetail),
    /// The server's answer was not what Logbook answers.
    #[error("the server's answer could not be read: {0}")]
    UnexpectedAnswer(String),
    /// The client was given something it cannot send (a base URL, an event that is no JSON
    /// object) or was closed.
    #[error("{0}")]
    Usage(String),
}

fn describe(status: StatusCode, detail: Option<&ErrorDetail>) -> String {
    match detail {
        Some(detail) => detail.to_string(),
        None => format!("the server answered {status}"),
    }
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Transport { .. } | Error::Unavailable { .. } => ErrorKind::Retry,
            Error::InvalidEvent(_) => ErrorKind::FixEvent,
            Error::Refused { .. } | Error::UnexpectedAnswer(_) | Error::Usage(_) => {
                ErrorKind::FixRequest
            }
        }
    }

    /// Whether sending the same request again later may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind() == ErrorKind::Retry
    }

    /// The server's error object, when it sent one.
    pub fn detail(&self) -> Option<&ErrorDetail> {
        match self {
            Error::Unavailable { detail, .. } | Error::Refused { detail, .. } => detail.as_ref(),
            Error::InvalidEvent(detail) => Some(detail),
            _ => None,
        }
    }

    /// The HTTP status of the answer this error comes from, if any.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Unavailable { status, .. } | Error::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// An error for a non-success answer's status and body.
    pub(crate) fn from_answer(
        status: StatusCode,
        body: &[u8],
        retry_after: Option<std::time::Duration>,
    ) -> Self {
        let detail = ErrorDetail::from_body(body);
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Error::Unavailable {
                status,
                detail,
                retry_after,
            }
        } else {
            Error::Refused { status, detail }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_whether_to_retry_fix_the_event_or_fix_the_request() {
        let body = br#"{"error":{"code":"rate_limited","message":"slow down","field":null}}"#;
        let limited = Error::from_answer(StatusCode::TOO_MANY_REQUESTS, body, None);
        assert_eq!(limited.kind(), ErrorKind::Retry);
        assert_eq!(limited.to_string(), "rate_limited: slow down");
        let unauthenticated = Error::from_answer(StatusCode::UNAUTHORIZED, b"not json", None);
        assert_eq!(unauthenticated.kind(), ErrorKind::FixRequest);
        assert_eq!(
            unauthenticated.to_string(),
            "the server answered 401 Unauthorized"
        );
        let invalid = Error::InvalidEvent(ErrorDetail {
            code: "invalid_field".into(),
            message: "ip must be an IPv4 or IPv6 address".into(),
            field: Some("/events/0/ip".into()),
        });
        assert_eq!(invalid.kind(), ErrorKind::FixEvent);
        assert_eq!(
            invalid.to_string(),
            "invalid_field: ip must be an IPv4 or IPv6 address (field /events/0/ip)"
        );
        assert!(Error::from_answer(StatusCode::BAD_GATEWAY, b"", None).is_retryable());
    }
}
