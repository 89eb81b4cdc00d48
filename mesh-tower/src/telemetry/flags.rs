//! Envoy's response flags: why the mesh, not the app, shaped a response.

use std::fmt;

/// Envoy's `%RESPONSE_FLAGS%`: set when the mesh itself answered or changed the outcome
/// (`UO` a circuit breaker overflowed, `URX` retries ran out, `NR` no route, …). Rendered as
/// Envoy does: the short names joined by `,`, or `-` when none is set.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ResponseFlags(u16);

/// `(flag, short name)` in Envoy's rendering order.
const NAMES: [(ResponseFlags, &str); 12] = [
    (ResponseFlags::NO_HEALTHY_UPSTREAM, "UH"),
    (ResponseFlags::UPSTREAM_CONNECTION_FAILURE, "UF"),
    (ResponseFlags::UPSTREAM_OVERFLOW, "UO"),
    (ResponseFlags::NO_ROUTE_FOUND, "NR"),
    (ResponseFlags::UPSTREAM_REQUEST_TIMEOUT, "UT"),
    (ResponseFlags::UPSTREAM_CONNECTION_TERMINATION, "UC"),
    (ResponseFlags::DELAY_INJECTED, "DI"),
    (ResponseFlags::FAULT_INJECTED, "FI"),
    (ResponseFlags::RATE_LIMITED, "RL"),
    (ResponseFlags::UPSTREAM_RETRY_LIMIT_EXCEEDED, "URX"),
    (ResponseFlags::NO_CLUSTER_FOUND, "NC"),
    (ResponseFlags::DOWNSTREAM_CONNECTION_TERMINATION, "DC"),
];

impl ResponseFlags {
    /// No flag: the response is the upstream's (or the app's) own.
    pub const NONE: Self = Self(0);
    /// `UH`: no healthy endpoint in the cluster (503).
    pub const NO_HEALTHY_UPSTREAM: Self = Self(1);
    /// `UF`: the connection to the endpoint failed, TLS refusals included (503).
    pub const UPSTREAM_CONNECTION_FAILURE: Self = Self(1 << 1);
    /// `UO`: a circuit breaker threshold overflowed (503).
    pub const UPSTREAM_OVERFLOW: Self = Self(1 << 2);
    /// `NR`: no listener or route for the request (404).
    pub const NO_ROUTE_FOUND: Self = Self(1 << 3);
    /// `UT`: the route or per-try timeout expired (504).
    pub const UPSTREAM_REQUEST_TIMEOUT: Self = Self(1 << 4);
    /// `UC`: the upstream connection ended mid-request (503).
    pub const UPSTREAM_CONNECTION_TERMINATION: Self = Self(1 << 5);
    /// `DI`: a fault delay was injected.
    pub const DELAY_INJECTED: Self = Self(1 << 6);
    /// `FI`: a fault abort answered the request.
    pub const FAULT_INJECTED: Self = Self(1 << 7);
    /// `RL`: the local rate limit answered 429.
    pub const RATE_LIMITED: Self = Self(1 << 8);
    /// `URX`: every allowed retry was spent and the last attempt still failed.
    pub const UPSTREAM_RETRY_LIMIT_EXCEEDED: Self = Self(1 << 9);
    /// `NC`: the route names a cluster the mesh does not have (503).
    pub const NO_CLUSTER_FOUND: Self = Self(1 << 10);
    /// `DC`: the downstream went away before the response was complete.
    pub const DOWNSTREAM_CONNECTION_TERMINATION: Self = Self(1 << 11);

    /// True when `other`'s flags are all set.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Sets `other`'s flags too.
    pub fn insert(&mut self, other: Self) {
        self.0 |= other.0;
    }
}

impl std::ops::BitOr for ResponseFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl fmt::Display for ResponseFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        let mut first = true;
        for (flag, name) in NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for ResponseFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResponseFlags({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::ResponseFlags;

    #[test]
    fn renders_as_envoy() {
        assert_eq!(ResponseFlags::NONE.to_string(), "-");
        assert_eq!(ResponseFlags::UPSTREAM_OVERFLOW.to_string(), "UO");
        let both = ResponseFlags::UPSTREAM_RETRY_LIMIT_EXCEEDED
            | ResponseFlags::UPSTREAM_CONNECTION_FAILURE;
        assert_eq!(both.to_string(), "UF,URX");
        assert!(both.contains(ResponseFlags::UPSTREAM_CONNECTION_FAILURE));
        assert!(!both.contains(ResponseFlags::NO_ROUTE_FOUND));
    }
}
