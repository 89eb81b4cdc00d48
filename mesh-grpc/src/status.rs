//! gRPC status codes and which of them a route's retry policy allows retrying (gRFC A44).

use mesh_core::route::RetryOn;
use tonic::Code;

/// The status of a response from its `grpc-status` header or trailer; a missing or malformed value
/// is `UNKNOWN`, as the gRPC spec requires.
pub fn from_header(value: Option<&http::HeaderValue>) -> Code {
    value
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<i32>().ok())
        .map(Code::from_i32)
        .unwrap_or(Code::Unknown)
}

/// The `retry_on` condition that names `code`, if gRPC retries it at all (A44 supports exactly
/// these five).
pub fn retry_condition(code: Code) -> Option<RetryOn> {
    match code {
        Code::Cancelled => Some(RetryOn::Cancelled),
        Code::DeadlineExceeded => Some(RetryOn::DeadlineExceeded),
        Code::Internal => Some(RetryOn::Internal),
        Code::ResourceExhausted => Some(RetryOn::ResourceExhausted),
        Code::Unavailable => Some(RetryOn::Unavailable),
        _ => None,
    }
}

/// True when a call that ended with `code` may be retried under `retry_on`.
///
/// ```
/// use mesh_core::route::RetryOn;
/// use tonic::Code;
/// assert!(mesh_grpc::status::is_retryable(Code::Unavailable, &[RetryOn::Unavailable]));
/// assert!(!mesh_grpc::status::is_retryable(Code::NotFound, &[RetryOn::Unavailable]));
/// ```
pub fn is_retryable(code: Code, retry_on: &[RetryOn]) -> bool {
    retry_condition(code).is_some_and(|c| retry_on.contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsing_defaults_to_unknown() {
        assert_eq!(
            from_header(Some(&http::HeaderValue::from_static("14"))),
            Code::Unavailable
        );
        assert_eq!(
            from_header(Some(&http::HeaderValue::from_static("x"))),
            Code::Unknown
        );
        assert_eq!(from_header(None), Code::Unknown);
    }

    #[test]
    fn only_the_listed_conditions_retry() {
        let on = [RetryOn::Cancelled, RetryOn::DeadlineExceeded];
        assert!(is_retryable(Code::Cancelled, &on));
        assert!(!is_retryable(Code::Unavailable, &on));
        assert!(!is_retryable(Code::Ok, &RetryOn::ALL.map(|(r, _)| r)));
    }
}
