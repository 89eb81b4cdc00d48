//! Envoy's `RouteMatch`: path, headers, query parameters.

use std::borrow::Cow;

use http::Request;
use mesh_core::StringMatch;
use mesh_core::route::{HeaderMatch, PathMatch, QueryParamMatch, RouteMatch};

/// True when every condition of `m` holds for `req`.
#[inline]
pub fn route_matches<B>(m: &RouteMatch, req: &Request<B>) -> bool {
    first_mismatch(m, req).is_none()
}

/// The first condition of `m` that `req` fails, in the order they are checked (path, headers,
/// query parameters); `None` when the route matches. The one implementation of route matching:
/// [`route_matches`] is this, and the debug explainer states its answer in words.
pub(crate) fn first_mismatch<'m, B>(m: &'m RouteMatch, req: &Request<B>) -> Option<Mismatch<'m>> {
    if !path_matches(m, req.uri().path()) {
        return Some(Mismatch::Path(&m.path));
    }
    if let Some(h) = m.headers.iter().find(|h| !header_matches(h, req)) {
        return Some(Mismatch::Header(h));
    }
    m.query_params
        .iter()
        .find(|q| !query_matches(q, req.uri().query()))
        .map(Mismatch::QueryParam)
}

/// A condition a request failed (see [`first_mismatch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mismatch<'m> {
    /// The path condition.
    Path(&'m PathMatch),
    /// A header condition (the method is the `:method` pseudo-header).
    Header(&'m HeaderMatch),
    /// A query parameter condition.
    QueryParam(&'m QueryParamMatch),
}

fn path_matches(m: &RouteMatch, path: &str) -> bool {
    match &m.path {
        PathMatch::Prefix(p) if m.case_sensitive => path.starts_with(p.as_str()),
        PathMatch::Prefix(p) => {
            path.len() >= p.len()
                && path.is_char_boundary(p.len())
                && path[..p.len()].eq_ignore_ascii_case(p)
        }
        PathMatch::Exact(p) if m.case_sensitive => path == p,
        PathMatch::Exact(p) => path.eq_ignore_ascii_case(p),
        PathMatch::Regex(r) => r.is_match(path),
    }
}

pub(crate) fn header_matches<B>(h: &HeaderMatch, req: &Request<B>) -> bool {
    h.matches_value(header_value(&h.name, req).as_deref())
}

/// The value a header condition on `name` reads: the pseudo-headers `:method`, `:path` (with the
/// query), `:authority` and `:scheme`, else the header, its values joined with `,`.
pub(crate) fn header_value<'r, B>(name: &str, req: &'r Request<B>) -> Option<Cow<'r, str>> {
    match name {
        ":method" => Some(Cow::Borrowed(req.method().as_str())),
        ":path" => req
            .uri()
            .path_and_query()
            .map(|p| Cow::Borrowed(p.as_str())),
        ":authority" => super::authority(req).map(Cow::Borrowed),
        ":scheme" => req.uri().scheme_str().map(Cow::Borrowed),
        name => joined_header(req.headers(), name),
    }
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
    match (&q.value, query_value(&q.name, query)) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(StringMatch::Exact(e)), Some(v)) => v == e,
        (Some(m), Some(v)) => m.matches(v),
    }
}

/// The value of query parameter `name` (Envoy uses its first occurrence; `a` alone is `""`).
pub(crate) fn query_value<'q>(name: &str, query: Option<&'q str>) -> Option<&'q str> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}
