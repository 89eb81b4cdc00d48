//! Applying a route's header mutations.

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use mesh_core::route::HeaderMutation;

/// Removes, then sets (replacing), then appends, as Envoy orders them.
pub(crate) fn apply(m: &HeaderMutation, headers: &mut HeaderMap) {
    if m.is_empty() {
        return;
    }
    for name in &m.remove {
        headers.remove(name.as_str());
    }
    for (k, v) in &m.set {
        if let (Ok(k), Ok(v)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            headers.insert(k, v);
        }
    }
    for (k, v) in &m.add {
        if let (Ok(k), Ok(v)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            headers.append(k, v);
        }
    }
}
