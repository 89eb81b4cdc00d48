//! HTTP filter configs, in a listener's filter chain and per route: what we know by type URL.

use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::google::protobuf::Any;
use prost::Name;

use super::{Ctx, type_name};

/// Filter packages whose absence would open access: authorization and authentication. They are
/// rejected even when marked optional, since skipping them means serving without the check.
const SECURITY_PACKAGES: [&str; 6] = [
    "envoy.extensions.filters.http.rbac.",
    "envoy.extensions.filters.http.ext_authz.",
    "envoy.extensions.filters.http.jwt_authn.",
    "envoy.extensions.filters.http.oauth2.",
    "envoy.extensions.filters.http.basic_auth.",
    "envoy.extensions.filters.http.api_key_auth.",
];

/// `xds.type.v3.TypedStruct` / `udpa.type.v1.TypedStruct`, read only for the type it stands for.
#[derive(Clone, PartialEq, prost::Message)]
struct TypedStruct {
    #[prost(string, tag = "1")]
    type_url: String,
}

/// What a filter config is, by its type URL (gRPC identifies filters the same way, gRFC A39).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FilterKind {
    /// `envoy.extensions.filters.http.fault.v3.HTTPFault`.
    Fault,
    /// `envoy.extensions.filters.http.router.v3.Router`.
    Router,
    /// An authorization or authentication filter, by message name.
    Security(String),
    /// A config wrapped in a `TypedStruct`, by the message name it stands for.
    TypedStruct(String),
    /// Anything else, by message name.
    Other(String),
}

impl FilterKind {
    pub(super) fn of(any: &Any) -> FilterKind {
        let name = type_name(&any.type_url);
        if name == HttpFault::full_name() {
            return FilterKind::Fault;
        }
        if name == Router::full_name() {
            return FilterKind::Router;
        }
        let (name, wrapped) = match name {
            "xds.type.v3.TypedStruct" | "udpa.type.v1.TypedStruct" => {
                match <TypedStruct as prost::Message>::decode(any.value.as_slice()) {
                    Ok(t) => (type_name(&t.type_url).to_owned(), true),
                    Err(_) => (name.to_owned(), true),
                }
            }
            _ => (name.to_owned(), false),
        };
        if SECURITY_PACKAGES.iter().any(|p| name.starts_with(p)) {
            FilterKind::Security(name)
        } else if wrapped {
            FilterKind::TypedStruct(name)
        } else {
            FilterKind::Other(name)
        }
    }

    /// Why a config of this kind cannot be used (for the kinds other than fault and router).
    pub(super) fn reason(&self) -> String {
        match self {
            FilterKind::Fault | FilterKind::Router => String::new(),
            FilterKind::Security(t) => {
                format!("{t} cannot be enforced yet; refusing to serve without it")
            }
            FilterKind::TypedStruct(t) => {
                format!("{t} as a TypedStruct is not supported; send the typed message")
            }
            FilterKind::Other(t) => format!("filter type {t} is not supported"),
        }
    }
}

/// An unusable filter: skipped with a warning when optional, otherwise an error. Security
/// filters are always errors.
pub(super) fn skip_or_reject(
    ctx: &mut Ctx,
    field: &str,
    kind: Option<&FilterKind>,
    optional: bool,
    reason: String,
) {
    if optional && !matches!(kind, Some(FilterKind::Security(_))) {
        ctx.warn(field, format!("optional filter skipped: {reason}"));
    } else {
        ctx.error(field, reason);
    }
}
