//! The query string of `/debug/explain`, read into the request to explain.

use http::header::{HeaderName, HeaderValue};
use http::{Method, Request};

/// A query parameter that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query parameter {parameter}: {reason}")]
pub(super) struct BadParameter {
    /// The parameter.
    pub(super) parameter: String,
    /// Why.
    pub(super) reason: String,
}

fn bad(parameter: &str, reason: impl Into<String>) -> BadParameter {
    BadParameter {
        parameter: parameter.into(),
        reason: reason.into(),
    }
}

/// The request `/debug/explain?…` describes: `authority` (required), `method` (default `GET`),
/// `path` with query (default `/`), `scheme` (`http` or `https`, default `http`; it sets the
/// default port) and any number of `header=name:value`. Values are percent-decoded.
pub(super) fn explain_request(query: Option<&str>) -> Result<Request<()>, BadParameter> {
    let mut method = None;
    let mut authority = None;
    let mut path = None;
    let mut scheme = None;
    let mut headers = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(k).map_err(|r| bad(k, r))?;
        let value = decode(v).map_err(|r| bad(&key, r))?;
        let slot = match key.as_str() {
            "method" => &mut method,
            "authority" => &mut authority,
            "path" => &mut path,
            "scheme" => &mut scheme,
            "header" => {
                headers.push(header(&value)?);
                continue;
            }
            _ => {
                return Err(bad(
                    &key,
                    "unknown (expected authority, method, path, scheme or header)",
                ));
            }
        };
        if slot.replace(value).is_some() {
            return Err(bad(&key, "given more than once"));
        }
    }
    let authority = authority.ok_or_else(|| {
        bad(
            "authority",
            "required: the host (and port) the request is sent to",
        )
    })?;
    let authority: http::uri::Authority = authority.parse().map_err(|e| {
        bad(
            "authority",
            format!("{authority:?} is not an authority: {e}"),
        )
    })?;
    let method = match method {
        Some(m) => Method::from_bytes(m.as_bytes())
            .map_err(|_| bad("method", format!("{m:?} is not an HTTP method")))?,
        None => Method::GET,
    };
    let scheme = scheme.unwrap_or_else(|| "http".into());
    if scheme != "http" && scheme != "https" {
        return Err(bad(
            "scheme",
            format!("{scheme:?} is neither http nor https"),
        ));
    }
    let path = path.unwrap_or_else(|| "/".into());
    if !path.starts_with('/') {
        return Err(bad("path", format!("{path:?} does not start with '/'")));
    }
    let uri: http::Uri = format!("{scheme}://{authority}{path}")
        .parse()
        .map_err(|e| bad("path", format!("{path:?} is not a valid path: {e}")))?;
    let mut req = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        req = req.header(name, value);
    }
    req.body(())
        .map_err(|e| bad("header", format!("cannot build the request: {e}")))
}

/// `name:value` (spaces after the colon are ignored).
fn header(v: &str) -> Result<(HeaderName, HeaderValue), BadParameter> {
    let (name, value) = v
        .split_once(':')
        .ok_or_else(|| bad("header", format!("{v:?} is not name:value")))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| bad("header", format!("{name:?} is not a header name")))?;
    let value = HeaderValue::from_str(value.trim_start())
        .map_err(|_| bad("header", format!("{value:?} is not a header value")))?;
    Ok((name, value))
}

/// Percent-decodes a query component (`+` is a space).
fn decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("{s:?} has a bad percent escape"))?;
                out.push(hex);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_parameter_and_decodes_them() {
        let req = explain_request(Some(
            "method=POST&authority=reviews&path=%2Fr%2F1%3Fv%3D2&scheme=https&header=x-user:+bob&header=x-b%3A1",
        ))
        .unwrap();
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri().to_string(), "https://reviews/r/1?v=2");
        assert_eq!(req.headers()["x-user"], "bob");
        assert_eq!(req.headers()["x-b"], "1");
    }

    #[test]
    fn names_the_parameter_that_is_wrong() {
        let err = |q: &str| explain_request(Some(q)).unwrap_err();
        assert_eq!(err("path=/x").parameter, "authority");
        assert_eq!(err("authority=a&path=x").parameter, "path");
        assert_eq!(err("authority=a&method=G%20T").parameter, "method");
        assert_eq!(err("authority=a&header=novalue").parameter, "header");
        assert_eq!(err("authority=a&authority=b").parameter, "authority");
        assert_eq!(err("authority=a&scheme=ftp").parameter, "scheme");
        assert_eq!(err("authority=a&pth=/").parameter, "pth");
        assert_eq!(err("authority=%zz").parameter, "authority");
        assert!(err("path=/x").to_string().contains("required"));
    }
}
