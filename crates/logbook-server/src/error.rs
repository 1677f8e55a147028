//! The one mapping from everything that can go wrong in a request to an HTTP answer with the
//! stable body `{"error":{"code","message","field"}}`.
//!
//! Internal causes (database messages, panics) are logged here, inside the request's span so the
//! log line carries the request id, and never sent to the client: a 500 says only
//! `internal_error` and the request id, which `middleware` fills in because only it knows the id.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use logbook_core::StoreError;
use logbook_core::query::QueryError;
use serde::Serialize;

/// `Retry-After` in seconds for answers that say "try again later". Kept here rather than in the
/// settings because `IntoResponse` cannot reach the state; five seconds suits a full disk being
/// cleaned up or a store restarting.
const RETRY_AFTER_SECONDS: &str = "5";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No key, a malformed key, an unknown key or a revoked key (401).
    #[error("{message}")]
    Unauthenticated { message: &'static str },
    /// The key is valid but may not do this (403).
    #[error("{message}")]
    Forbidden {
        message: String,
        field: Option<String>,
    },
    /// An operator turned the account's ingest off (403); reads keep working.
    #[error(
        "ingest is turned off for account {account}: nothing was stored; its operator can turn it back on"
    )]
    IngestDisabled { account: logbook_core::AccountId },
    /// The change races another or contradicts what exists (409); nothing was changed.
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    /// Nothing here, or nothing this key may see (404): the two are never told apart.
    #[error("not found")]
    NotFound,
    /// A body or a parameter names something that does not exist or that this key may not see
    /// (404), with the field that names it; the two are never told apart.
    #[error("{message}")]
    UnknownReference {
        code: &'static str,
        message: String,
        field: &'static str,
    },
    #[error("this path does not answer this method")]
    MethodNotAllowed,
    /// The client sent its body too slowly (408).
    #[error("request body did not arrive in time")]
    RequestTimeout,
    #[error("request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// The body or the batch is larger than the configured limits (413).
    #[error("{message}")]
    PayloadTooLarge { code: &'static str, message: String },
    /// Any other bad input (400).
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    /// `q` could not be parsed (400), with where and which term.
    #[error("{source}")]
    InvalidQuery {
        source: QueryError,
        field: &'static str,
    },
    /// A rate limit (`limits`) refused the request (429, with `Retry-After`).
    #[error("rate limit exceeded: {}; retry after {retry_after_seconds} s", scope.describe())]
    RateLimited {
        scope: crate::limits::LimitScope,
        retry_after_seconds: u64,
    },
    /// The account already has as many exports or live tails open as it may (429).
    #[error("{message}")]
    TooManyOpen { code: &'static str, message: String },
    /// A stored-volume quota refused the whole request (`quota_exceeded`, `field` names the quota).
    /// Over `events_per_day`: 429 with `Retry-After` until the next UTC midnight, when the count
    /// starts over. Over `stored_bytes`: 403, because waiting does not help (only the operator
    /// raising the quota does), and 507 already means "the server's disk is full, retry soon".
    #[error("{message}")]
    QuotaExceeded {
        message: String,
        field: &'static str,
        retry_after_seconds: Option<u64>,
    },
    /// A query ran past its time budget and was stopped (503, with `Retry-After`).
    #[error(
        "the query took longer than its time budget of {budget_ms} ms and was stopped; narrow it (a time range, an action, an actor) or page with a smaller limit"
    )]
    QueryTimeout { budget_ms: u64 },
    /// The store refused a write because the disk is full (507).
    #[error("storage is full")]
    StorageFull,
    /// The store is shutting down or unavailable (503).
    #[error("service unavailable")]
    Unavailable,
    /// Anything else (500). The cause is logged, not sent.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn bad_request(
        code: &'static str,
        message: impl Into<String>,
        field: Option<&str>,
    ) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
            field: field.map(str::to_owned),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::Forbidden {
            message: message.into(),
            field: None,
        }
    }

    pub fn internal(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        ApiError::Internal(Box::new(cause))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } | ApiError::IngestDisabled { .. } => StatusCode::FORBIDDEN,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::NotFound | ApiError::UnknownReference { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BadRequest { .. } | ApiError::InvalidQuery { .. } => StatusCode::BAD_REQUEST,
            ApiError::RateLimited { .. } | ApiError::TooManyOpen { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::QuotaExceeded {
                retry_after_seconds: Some(_),
                ..
            } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::QuotaExceeded { .. } => StatusCode::FORBIDDEN,
            ApiError::QueryTimeout { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated { .. } => "unauthenticated",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::IngestDisabled { .. } => "account_ingest_disabled",
            ApiError::Conflict { code, .. } => code,
            ApiError::NotFound => "not_found",
            ApiError::UnknownReference { code, .. } => code,
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::RequestTimeout => "request_timeout",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge { code, .. } => code,
            ApiError::BadRequest { code, .. } => code,
            ApiError::InvalidQuery { .. } => "invalid_query",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::TooManyOpen { code, .. } => code,
            ApiError::QuotaExceeded { .. } => "quota_exceeded",
            ApiError::QueryTimeout { .. } => "query_timeout",
            ApiError::StorageFull => "storage_full",
            ApiError::Unavailable => "unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            ApiError::Forbidden { field, .. }
            | ApiError::BadRequest { field, .. }
            | ApiError::Conflict { field, .. } => field.as_deref(),
            ApiError::InvalidQuery { field, .. } => Some(field),
            ApiError::QuotaExceeded { field, .. } => Some(field),
            ApiError::UnknownReference { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// A query string that does not fit a handler's parameters (a repeated parameter, or an unknown
/// one where the handler refuses those): 400 `invalid_parameters`, naming what did not fit.
impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::bad_request(
            "invalid_parameters",
            format!("query string is not valid: {}", rejection.body_text()),
            None,
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::StorageFull(_) => ApiError::StorageFull,
            StoreError::Unavailable(_) | StoreError::Locked(_) => ApiError::Unavailable,
            StoreError::VolumeQuotaExceeded {
                field,
                retry_after_seconds,
                ..
            } => ApiError::QuotaExceeded {
                message: error.to_string(),
                field: field.name(),
                retry_after_seconds,
            },
            // An account under legal hold refuses removals until an owner clears it.
            StoreError::LegalHold(_) => ApiError::forbidden(error.to_string()),
            other => ApiError::internal(other),
        }
    }
}

/// The body of every error answer.
#[derive(Serialize)]
pub struct ErrorBody<'error> {
    pub error: ErrorDetail<'error>,
}

#[derive(Serialize)]
pub struct ErrorDetail<'error> {
    pub code: &'error str,
    pub message: &'error str,
    pub field: Option<&'error str>,
    /// Only for `invalid_query`: byte offset of the offending term in `q`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
    /// Only for `invalid_query`: the offending term.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub term: Option<&'error str>,
    /// Only for 500 answers: what to quote to the operator, who finds the cause in the log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'error str>,
}

/// Marks a response as an internal error whose body still needs the request id.
#[derive(Debug, Clone, Copy)]
pub struct InternalErrorMarker;

/// Serializes the standard error body for a status, code, message and field.
pub fn error_response(status: StatusCode, detail: ErrorDetail<'_>) -> Response {
    let body =
        serde_json::to_vec(&ErrorBody { error: detail }).expect("error bodies always serialize");
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The body of a 500 once the request id is known.
pub fn internal_error_response(request_id: &str) -> Response {
    let message = format!("internal error; quote request id {request_id} to the operator");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorDetail {
            code: "internal_error",
            message: &message,
            field: None,
            position: None,
            term: None,
            request_id: Some(request_id),
        },
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            ApiError::Internal(cause) => {
                // The request span (method, route, request id) is current here, so this line can
                // be matched to the client's answer.
                tracing::error!(error = %ErrorChain(cause.as_ref()), "request failed with an internal error");
                let mut response = status.into_response();
                response.extensions_mut().insert(InternalErrorMarker);
                return response;
            }
            ApiError::StorageFull | ApiError::Unavailable => {
                tracing::warn!(code = self.code(), "store refused the request");
            }
            _ => {}
        }
        let message = self.to_string();
        let (position, term) = match &self {
            ApiError::InvalidQuery { source, .. } => {
                (Some(source.position), Some(source.term.as_str()))
            }
            _ => (None, None),
        };
        let mut response = error_response(
            status,
            ErrorDetail {
                code: self.code(),
                message: &message,
                field: self.field(),
                position,
                term,
                request_id: None,
            },
        );
        let headers = response.headers_mut();
        match self {
            ApiError::Unauthenticated { .. } => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RateLimited {
                retry_after_seconds,
                ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
            }
            ApiError::QuotaExceeded {
                retry_after_seconds: Some(retry_after_seconds),
                ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
            }
            ApiError::TooManyOpen { .. } | ApiError::QueryTimeout { .. } => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECONDS),
                );
            }
            ApiError::StorageFull | ApiError::Unavailable => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECONDS),
                );
            }
            _ => {}
        }
        response
    }
}

/// The error shapes of the producer protocols Logbook speaks besides its own API
/// (`api::retraced`, `api::workos`, `api::otlp`). Status codes and headers (`Retry-After`,
/// `WWW-Authenticate`) always come from `ApiError`'s one mapping above; only the body takes the
/// protocol's documented shape, so a client's own error handling reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorDialect {
    /// Retraced's publisher API: `{"status":N,"type":"Error","error":"...","invalid":[...]}`.
    Retraced,
    /// WorkOS: `{"code":"...","message":"...","errors":[...]}`.
    WorkOs,
    /// OTLP/HTTP: a `google.rpc.Status` in the encoding the request used.
    Otlp(crate::api::otlp::OtlpEncoding),
}

/// One event of a producer protocol's request that validation refused, for the protocol's
/// list of problems (Retraced's `invalid`, WorkOS's `errors`).
#[derive(Debug, Clone)]
pub struct RejectedEventDetail {
    /// The event's position in the request (0 for a single event).
    pub index: usize,
    pub code: &'static str,
    pub message: String,
    /// Where in the protocol's own event the problem is, as a JSON pointer (`/source_ip`).
    pub field: String,
}

/// An `ApiError` answered in a producer protocol's error shape, with the events validation
/// refused when that is why.
#[derive(Debug)]
pub struct DialectError {
    pub dialect: ErrorDialect,
    pub error: ApiError,
    pub rejected_events: Vec<RejectedEventDetail>,
}

impl DialectError {
    pub fn new(dialect: ErrorDialect, error: ApiError) -> Self {
        Self {
            dialect,
            error,
            rejected_events: Vec::new(),
        }
    }
}

/// gRPC status codes (`google.rpc.Code`) for the HTTP statuses Logbook answers, as the OTLP
/// specification pairs them.
fn grpc_code_of(status: StatusCode) -> i32 {
    match status.as_u16() {
        400 | 413 | 415 => 3, // INVALID_ARGUMENT
        401 => 16,            // UNAUTHENTICATED
        403 => 7,             // PERMISSION_DENIED
        404 => 5,             // NOT_FOUND
        408 => 4,             // DEADLINE_EXCEEDED
        429 | 507 => 8,       // RESOURCE_EXHAUSTED
        503 => 14,            // UNAVAILABLE
        _ => 13,              // INTERNAL
    }
}

impl IntoResponse for DialectError {
    fn into_response(self) -> Response {
        let message = self.error.to_string();
        let code = self.error.code();
        let field = self.error.field().map(str::to_owned);
        // Status, headers and the 500 marker (whose body the middleware writes with the request
        // id) come from the one mapping; the body is replaced by the protocol's shape.
        let mut response = self.error.into_response();
        if response.extensions().get::<InternalErrorMarker>().is_some() {
            return response;
        }
        let status = response.status();
        let (content_type, body): (&'static str, Vec<u8>) = match self.dialect {
            ErrorDialect::Retraced => {
                let invalid: Vec<serde_json::Value> = self
                    .rejected_events
                    .iter()
                    .map(|rejected| {
                        serde_json::json!({
                            "message": format!("Invalid event input at index {}: {}", rejected.index, rejected.message),
                            "index": rejected.index,
                            "violations": [{
                                "message": rejected.message,
                                "field": rejected.field,
                                "violation": rejected.code,
                            }],
                        })
                    })
                    .collect();
                let mut body = serde_json::json!({
                    "status": status.as_u16(),
                    "type": "Error",
                    "error": message,
                });
                if !invalid.is_empty() {
                    body["invalid"] = serde_json::Value::Array(invalid);
                }
                ("application/json", body.to_string().into_bytes())
            }
            ErrorDialect::WorkOs => {
                let body = if self.rejected_events.is_empty() {
                    serde_json::json!({"code": code, "message": message, "param": field})
                } else {
                    let errors: Vec<serde_json::Value> = self
                        .rejected_events
                        .iter()
                        .map(|rejected| {
                            serde_json::json!({
                                "instancePath": rejected.field,
                                "code": rejected.code,
                                "message": rejected.message,
                            })
                        })
                        .collect();
                    serde_json::json!({
                        "code": "invalid_audit_log",
                        "message": "Invalid Audit Log event",
                        "errors": errors,
                    })
                };
                ("application/json", body.to_string().into_bytes())
            }
            ErrorDialect::Otlp(encoding) => {
                crate::api::otlp::encode_status(encoding, grpc_code_of(status), &message)
            }
        };
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.remove(header::CONTENT_LENGTH);
        *response.body_mut() = axum::body::Body::from(body);
        response
    }
}

/// Displays an error and every `source` behind it, separated by `: `, for the log.
pub struct ErrorChain<'error>(pub &'error (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(formatter, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_store_answers_507_and_an_unavailable_one_503_both_with_retry_after() {
        for (store_error, status, code) in [
            (
                StoreError::StorageFull("disk full".into()),
                StatusCode::INSUFFICIENT_STORAGE,
                "storage_full",
            ),
            (
                StoreError::Unavailable("shutting down".into()),
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
            ),
        ] {
            let error = ApiError::from(store_error);
            assert_eq!(error.code(), code);
            let response = error.into_response();
            assert_eq!(response.status(), status);
            assert_eq!(response.headers()[header::RETRY_AFTER], RETRY_AFTER_SECONDS);
        }
    }

    #[test]
    fn other_store_errors_are_internal_and_keep_their_cause_out_of_the_answer() {
        let error = ApiError::from(StoreError::Database {
            context: "reading",
            message: "secret.db locked".into(),
        });
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let response = error.into_response();
        assert!(response.extensions().get::<InternalErrorMarker>().is_some());
    }
}
