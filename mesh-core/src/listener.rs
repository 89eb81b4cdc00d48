//! Listeners: for clients, an API listener per target that points at a route table (the form
//! proxyless gRPC clients resolve). Servers' inbound listeners (gRFC A36) are
//! [`crate::inbound`].

use serde::Serialize;

use crate::validate::{FieldErrors, Validate};

/// A listener whose HTTP connection manager takes its routes from RDS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listener {
    /// Resource name: the target, `<host>:<port>`.
    pub name: String,
    /// The `RouteConfiguration` requested over RDS.
    pub route_config_name: String,
    /// HTTP filters in order; the router is always last.
    pub http_filters: Vec<HttpFilter>,
}

/// HTTP filters known to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpFilter {
    /// `envoy.filters.http.fault`, configured per route.
    Fault,
    /// `envoy.filters.http.router`.
    Router,
}

impl Listener {
    /// The client-side listener for `target` (`host:port`), with the fault filter and the router.
    pub fn api(target: impl Into<String>) -> Self {
        let name = target.into();
        Self {
            route_config_name: name.clone(),
            name,
            http_filters: vec![HttpFilter::Fault, HttpFilter::Router],
        }
    }
}

impl Validate for Listener {
    fn validate(&self) -> Result<(), FieldErrors> {
        let mut errs = FieldErrors::default();
        if self.name.is_empty() {
            errs.push("name", "must not be empty");
        }
        if self.route_config_name.is_empty() {
            errs.push("route_config_name", "must not be empty");
        }
        if self.http_filters.last() != Some(&HttpFilter::Router) {
            errs.push("http_filters", "the router must be the last filter");
        }
        errs.into_result()
    }
}
