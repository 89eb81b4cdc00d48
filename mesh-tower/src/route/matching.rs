//! Envoy's `RouteMatch`: path, headers, query parameters.

use std::borrow::Cow;

use http::Request;
use mesh_core::StringMatch;
use mesh_core::route::{HeaderMatch, PathMatch, QueryParamMatch, RouteMatch};

/// True when every condition of `m` holds for `req`.
pub fn route_matches<B>(m: &RouteMatch, req: &Request<B>) -> bool {
    let path = req.uri().path();
    let path_ok = match &m.path {
        PathMatch::Prefix(p) if m.case_sensitive => path.starts_with(p.as_str()),
        PathMatch::Prefix(p) => {
            path.len() >= p.len()
                && path.is_char_boundary(p.len())
                && path[..p.len()].eq_ignore_ascii_case(p)
        }
        PathMatch::Exact(p) if m.case_sensitive => path == p,
        PathMatch::Exact(p) => path.eq_ignore_ascii_case(p),
        PathMatch::Regex(r) => r.is_match(path),
    };
    path_ok
        && m.headers.iter().all(|h| header_matches(h, req))
        && m.query_params
            .iter()
            .all(|q| query_matches(q, req.uri().query()))
}

pub(crate) fn header_matches<B>(h: &HeaderMatch, req: &Request<B>) -> bool {
    let value: Option<Cow<'_, str>> = match h.name.as_str() {
        ":method" => Some(Cow::Borrowed(req.method().as_str())),
        ":path" => req
            .uri()
            .path_and_query()
            .map(|p| Cow::Borrowed(p.as_str())),
        ":authority" => super::authority(req).map(Cow::Borrowed),
        ":scheme" => req.uri().scheme_str().map(Cow::Borrowed),
        name => joined_header(req.headers(), name),
    };
    h.matches_value(value.as_deref())
}

/// A header's value; repeated headers are joined with `,` as Envoy does.
pub(crate) fn joined_header<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<Cow<'a, str>> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?.to_str().ok()?;
    match values.next() {
        None => Some(Cow::Borrowed(first)),
        Some(second) => {
            let mut joined = format!("{first},{}", second.to_str().ok()?);
            for v in values {
                joined.push(',');
                joined.push_str(v.to_str().ok()?);
            }
            Some(Cow::Owned(joined))
        }
    }
}

fn query_matches(q: &QueryParamMatch, query: Option<&str>) -> bool {
    let Some(query) = query else { return false };
    // Envoy uses the first occurrence of a parameter.
    let value = query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == q.name).then_some(v)
    });
    match (&q.value, value) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(StringMatch::Exact(e)), Some(v)) => v == e,
        (Some(m), Some(v)) => m.matches(v),
    }
}
