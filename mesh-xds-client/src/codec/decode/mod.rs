//! The decode half of the codec: received Envoy xDS v3 resources → validated mesh-core values.
//!
//! Decoding has two phases, as in tonic's xDS client: the `Any` is checked for the expected type
//! URL and deserialized with prost ([`DecodeError::WrongType`], [`DecodeError::Malformed`]); then
//! every field is mapped into the model and the result is run through [`mesh_core::Validate`]
//! ([`DecodeError::Invalid`]). Each field of each message the decoder reads is destructured
//! exhaustively, so a field added to the protos in a new `envoy-types` release is a compile error
//! here until someone decides what it means for us: nothing is ignored by accident.
//!
//! What happens to each field is described on [`Decoded`].

// Deprecated fields are read on purpose: control planes still send them (Istio sends the legacy
// header matchers), and exhaustive destructuring names every field.
#![allow(deprecated)]

use std::fmt;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::{
    ConfigSource, config_source::ConfigSourceSpecifier,
};
use envoy_types::pb::envoy::r#type::v3::{FractionalPercent, fractional_percent::DenominatorType};
use envoy_types::pb::google::protobuf::{self as pbwk, Any};
use mesh_core::{FieldErrors, Percent, Validate};
use prost::Message;

/// Warns for every listed field that is set (differs from its protobuf default).
macro_rules! ignore_set {
    ($ctx:expr, $at:expr, $($field:ident),+ $(,)?) => {
        $(
            if $crate::codec::decode::is_set(&$field) {
                $ctx.ignored($at, stringify!($field));
            }
        )+
    };
}

/// Rejects every listed field that is set (differs from its protobuf default), with `$reason`.
macro_rules! reject_set {
    ($ctx:expr, $at:expr, $reason:expr; $($field:ident),+ $(,)?) => {
        $(
            if $crate::codec::decode::is_set(&$field) {
                $ctx.error($crate::codec::decode::join($at, stringify!($field)), $reason);
            }
        )+
    };
}

mod cluster;
mod endpoint;
mod filters;
mod inbound;
mod listener;
mod rbac;
mod route;

pub use cluster::decode_cluster;
pub use endpoint::decode_assignment;
pub use inbound::decode_inbound_listener;
pub use listener::{decode_listener, is_api_listener};
pub use rbac::decode_rbac;
pub use route::decode_route_table;

/// A decoded, validated resource and what in it was not honoured.
///
/// # Fields
/// Every field ends in one of three places:
/// - **mapped** into the model with its Envoy meaning (defaults included: an absent
///   `connect_timeout` is Envoy's 5 s, an absent `num_retries` is 1, …);
/// - **warned**: the field asks for something we do not implement but whose absence does not
///   change who receives a request, what the backend is sent or what security applies (CORS, rate
///   limits, retry host predicates, health checks, HTTP protocol options, stats and tracing
///   settings, …). The resource is accepted and a [`Warning`] names the field;
/// - **rejected** (fail closed, the xDS client NACKs): the field would change routing, the
///   request, or security if ignored (`cluster_header`, path rewrites by regex, a non-optional
///   unknown HTTP filter, RBAC, any upstream `transport_socket`, non-EDS clusters, inline route
///   configurations, …), or its value is one Envoy itself rejects.
///
/// Fields that carry no behaviour for us (`metadata`, stat prefixes, an API listener's `address`)
/// are not read. Every other field of every message the decoder reads is named in its code, so a
/// field added by a new `envoy-types` release cannot be ignored by accident.
///
/// # Round trip
/// `decode(encode(m)) == m` for every model the encoder accepts, up to the encoder's own
/// normalizations: a single cluster is sent as `cluster` and read back with weight 1; an empty
/// prefix, suffix or substring value matcher is sent as `present_match`, and an empty regex as an
/// exact match on `""`; a zero fault delay is left out; an empty `eds_service_name` means the
/// cluster name; a locality weight equal to the sum of its endpoints' weights is the encoder's
/// rendering of "no locality weight" and is read back as `None`; a zero `per_try_timeout` means
/// none.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<T> {
    /// The validated model value.
    pub value: T,
    /// Fields that were set but are not supported; the resource was accepted without them.
    pub warnings: Vec<Warning>,
}

/// A field that was set in a received resource but is not supported and was ignored.
///
/// The resource is still accepted: ignoring the field changes neither who receives a request nor
/// what security applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Name of the resource.
    pub resource: String,
    /// Path of the field in the proto, e.g. `virtual_hosts[0].routes[1].route.cors`.
    pub field: String,
    /// What was not honoured.
    pub reason: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.resource, self.field, self.reason)
    }
}

/// A received resource that must be rejected (NACKed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The `Any` holds another resource type than the one requested.
    #[error("expected a {expected} resource, got type URL {got:?}")]
    WrongType {
        /// The expected type URL, e.g. [`super::CLUSTER_TYPE`].
        expected: &'static str,
        /// The type URL received.
        got: String,
    },
    /// The bytes are not a valid protobuf message of the type.
    #[error("{type_url}: the resource is not a valid protobuf message: {source}")]
    Malformed {
        /// The type URL the bytes were decoded as.
        type_url: &'static str,
        /// What prost reported.
        source: prost::DecodeError,
    },
    /// The resource breaks a rule, or asks for something that cannot be honoured and must not be
    /// ignored. When several fields are wrong, `field` and `reason` name the first and `reason`
    /// lists the others after `; also `.
    #[error("{kind} {resource:?}: {field}: {reason}")]
    Invalid {
        /// Resource kind, e.g. `Cluster`.
        kind: &'static str,
        /// Resource name.
        resource: String,
        /// Path of the field, in proto terms while decoding (`virtual_hosts[0].routes[2].route
        /// .cluster_header`) and in model terms for validation rules (`action.clusters`).
        field: String,
        /// What is wrong.
        reason: String,
    },
}

impl DecodeError {
    /// Name of the rejected resource, when it could be read.
    pub fn resource(&self) -> Option<&str> {
        match self {
            DecodeError::Invalid { resource, .. } => Some(resource),
            DecodeError::WrongType { .. } | DecodeError::Malformed { .. } => None,
        }
    }

    /// The first offending field, for [`DecodeError::Invalid`].
    pub fn field(&self) -> Option<&str> {
        match self {
            DecodeError::Invalid { field, .. } => Some(field),
            DecodeError::WrongType { .. } | DecodeError::Malformed { .. } => None,
        }
    }

    /// True when the bytes could not be read as the requested type at all, so no resource name
    /// is known.
    pub fn is_undecodable(&self) -> bool {
        matches!(
            self,
            DecodeError::WrongType { .. } | DecodeError::Malformed { .. }
        )
    }
}

/// Collects the warnings and errors of one resource while it is mapped into the model.
#[derive(Debug)]
struct Ctx {
    kind: &'static str,
    resource: String,
    warnings: Vec<Warning>,
    errors: FieldErrors,
}

impl Ctx {
    fn new(kind: &'static str, resource: &str) -> Self {
        Self {
            kind,
            resource: resource.to_owned(),
            warnings: Vec::new(),
            errors: FieldErrors::default(),
        }
    }

    fn warn(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.warnings.push(Warning {
            resource: self.resource.clone(),
            field: field.into(),
            reason: reason.into(),
        });
    }

    /// Warns that `at.name` is set but not supported.
    fn ignored(&mut self, at: &str, name: &str) {
        self.warn(join(at, name), "not supported; ignored");
    }

    fn error(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(field, reason);
    }

    /// Validates `value` when mapping found no error, and returns it with the warnings.
    fn finish<T: Validate>(self, value: T) -> Result<Decoded<T>, DecodeError> {
        let Ctx {
            kind,
            resource,
            warnings,
            mut errors,
        } = self;
        // Validating a value that could not be mapped would only repeat the mapping errors.
        if errors.is_empty()
            && let Err(e) = value.validate()
        {
            errors = e;
        }
        let mut errors = errors.0.into_iter();
        let Some(first) = errors.next() else {
            return Ok(Decoded { value, warnings });
        };
        let mut reason = first.reason;
        for e in errors {
            reason.push_str("; also ");
            reason.push_str(&e.to_string());
        }
        Err(DecodeError::Invalid {
            kind,
            resource,
            field: first.field,
            reason,
        })
    }
}

/// `at.name`, or `name` at the top level.
fn join(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.to_owned()
    } else {
        format!("{at}.{name}")
    }
}

/// True when a proto field differs from its default (set, non-empty, non-zero).
fn is_set<T: Default + PartialEq>(v: &T) -> bool {
    *v != T::default()
}

/// The message name of a type URL: what follows the last `/`.
fn type_name(type_url: &str) -> &str {
    type_url.rsplit('/').next().unwrap_or(type_url)
}

/// Phase one: checks the type URL and deserializes.
fn unpack<M: Message + Default>(any: &Any, expected: &'static str) -> Result<M, DecodeError> {
    if type_name(&any.type_url) != type_name(expected) {
        return Err(DecodeError::WrongType {
            expected,
            got: any.type_url.clone(),
        });
    }
    M::decode(any.value.as_slice()).map_err(|source| DecodeError::Malformed {
        type_url: expected,
        source,
    })
}

/// Deserializes an `Any` nested in a resource (a filter config) whose type was already checked;
/// failures are errors at `field`.
fn unpack_nested<M: Message + Default>(ctx: &mut Ctx, field: &str, any: &Any) -> Option<M> {
    match M::decode(any.value.as_slice()) {
        Ok(m) => Some(m),
        Err(e) => {
            ctx.error(
                field,
                format!("not a valid {}: {e}", type_name(&any.type_url)),
            );
            None
        }
    }
}

/// A protobuf `Duration`, or an error at `field` when it is negative or not normalized.
fn duration(ctx: &mut Ctx, field: &str, d: &pbwk::Duration) -> Option<Duration> {
    match (u64::try_from(d.seconds), u32::try_from(d.nanos)) {
        (Ok(s), Ok(n)) if n < 1_000_000_000 => Some(Duration::new(s, n)),
        _ => {
            ctx.error(
                field,
                format!(
                    "{}s {}ns is not a valid non-negative duration",
                    d.seconds, d.nanos
                ),
            );
            None
        }
    }
}

/// Envoy's `FractionalPercent` in parts per million. A numerator above the denominator means
/// 100 %, as in Envoy and gRPC.
fn fractional(ctx: &mut Ctx, field: &str, p: &FractionalPercent) -> Percent {
    let scale = match DenominatorType::try_from(p.denominator) {
        Ok(DenominatorType::Hundred) => 10_000,
        Ok(DenominatorType::TenThousand) => 100,
        Ok(DenominatorType::Million) => 1,
        Err(_) => {
            ctx.error(
                join(field, "denominator"),
                format!("unknown denominator {}", p.denominator),
            );
            return Percent::ALL;
        }
    };
    let ppm = (u64::from(p.numerator) * scale).min(u64::from(Percent::ALL.per_million()));
    Percent::from_per_million(ppm as u32)
}

/// Checks that a resource is fetched over ADS (or `self`, which on an ADS stream is the same).
/// Anything else is read as ADS with a warning: this client has only the ADS stream.
fn expect_ads(ctx: &mut Ctx, field: &str, source: Option<&ConfigSource>) {
    let specifier = source.and_then(|s| s.config_source_specifier.as_ref());
    match specifier {
        Some(ConfigSourceSpecifier::Ads(_) | ConfigSourceSpecifier::Self_(_)) => {}
        Some(_) => ctx.warn(
            field,
            "only ADS is supported; the resource is requested on the ADS stream",
        ),
        None => ctx.warn(
            field,
            "not set; the resource is requested on the ADS stream",
        ),
    }
}

#[cfg(test)]
mod tests;
