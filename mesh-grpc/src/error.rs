//! One mapping from mesh errors to the gRPC status a caller sees.

use mesh_tower::client::Error;
use tonic::{Code, Status};

/// The status for a mesh client error: UNAVAILABLE for no healthy endpoint, connection failures
/// and a refused mTLS peer, and also for a call the mesh cannot route (no listener, route or
/// cluster), as gRPC's own xDS clients answer; DEADLINE_EXCEEDED for an expired route or call
/// deadline; INVALID_ARGUMENT for malformed requests. The message is the mesh error's, which
/// names the cluster, route or endpoint and the reason.
pub fn to_status(e: &Error) -> Status {
    let code = match e {
        Error::NoHealthyEndpoint { .. }
        | Error::Upstream { .. }
        | Error::NoIdentity { .. }
        | Error::Tls { .. }
        | Error::NoTarget { .. }
        | Error::NoRoute { .. }
        | Error::NoCluster { .. } => Code::Unavailable,
        Error::Timeout { .. } => Code::DeadlineExceeded,
        Error::InvalidRequest(_) => Code::InvalidArgument,
        _ => Code::Unknown,
    };
    Status::new(code, e.to_string())
}

/// A mesh client error as a gRPC status; `tonic::Status::from(MeshError(e))`.
#[derive(Debug)]
pub struct MeshError(pub Error);

impl From<MeshError> for Status {
    fn from(e: MeshError) -> Status {
        to_status(&e.0)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn mesh_errors_map_to_the_codes_callers_expect_and_keep_the_reason() {
        let s = Status::from(MeshError(Error::NoHealthyEndpoint {
            cluster: "outbound|9080||reviews".into(),
        }));
        assert_eq!(s.code(), Code::Unavailable);
        assert!(s.message().contains("outbound|9080||reviews"), "{s:?}");
        let s = to_status(&Error::Timeout {
            route: "default".into(),
            timeout: Duration::from_millis(250),
        });
        assert_eq!(s.code(), Code::DeadlineExceeded);
        let s = to_status(&Error::NoTarget {
            authority: "nope:80".into(),
            target: "nope:80".into(),
        });
        assert_eq!(s.code(), Code::Unavailable);
        assert!(s.message().contains("nope:80"), "{s:?}");
        let s = to_status(&Error::InvalidRequest("no authority".into()));
        assert_eq!(s.code(), Code::InvalidArgument);
    }
}
