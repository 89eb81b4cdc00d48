//! The resources the Kubernetes source watches.

use kube::api::ApiResource;

/// What the source does with objects of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A `Service`: becomes a `ServiceEntry` with its host `<name>.<namespace>.svc.<domain>`.
    Service,
    /// An `EndpointSlice`: the endpoints of the Service named by `kubernetes.io/service-name`.
    EndpointSlice,
    /// A `Pod`: labels, service account and node of an endpoint.
    Pod,
    /// A `Node`: the topology labels (region, zone) that give its pods' endpoints a locality.
    Node,
    /// A config document (Istio or Gateway API custom resource), read as the directory source
    /// reads a YAML document, and given status conditions.
    Document,
}

/// One watched kind.
#[derive(Debug, Clone, Copy)]
pub struct WatchedKind {
    /// API group; empty for core.
    pub group: &'static str,
    /// The version watched.
    pub version: &'static str,
    /// `kind`.
    pub kind: &'static str,
    /// The resource's plural.
    pub plural: &'static str,
    /// What it is for.
    pub role: Role,
}

impl WatchedKind {
    /// `group/version`, or `version` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// For `kube::Api<DynamicObject>`.
    pub fn api_resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.into(),
            version: self.version.into(),
            api_version: self.api_version(),
            kind: self.kind.into(),
            plural: self.plural.into(),
        }
    }

    /// True for kinds whose status this source writes, as Gateway API `status.parents`.
    pub fn is_route(&self) -> bool {
        self.group == GATEWAY
    }
}

const NETWORKING: &str = "networking.istio.io";
const SECURITY: &str = "security.istio.io";
const GATEWAY: &str = "gateway.networking.k8s.io";

const fn doc(group: &'static str, kind: &'static str, plural: &'static str) -> WatchedKind {
    WatchedKind {
        group,
        version: "v1",
        kind,
        plural,
        role: Role::Document,
    }
}

/// Every watched kind. Documents come in this order (then namespace, then name), which settles
/// conflicts the way file order does for the directory source: services first, routes last.
pub const KINDS: [WatchedKind; 12] = [
    WatchedKind {
        group: "",
        version: "v1",
        kind: "Service",
        plural: "services",
        role: Role::Service,
    },
    WatchedKind {
        group: "discovery.k8s.io",
        version: "v1",
        kind: "EndpointSlice",
        plural: "endpointslices",
        role: Role::EndpointSlice,
    },
    WatchedKind {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        role: Role::Pod,
    },
    WatchedKind {
        group: "",
        version: "v1",
        kind: "Node",
        plural: "nodes",
        role: Role::Node,
    },
    doc(NETWORKING, "ServiceEntry", "serviceentries"),
    doc(NETWORKING, "WorkloadEntry", "workloadentries"),
    doc(NETWORKING, "DestinationRule", "destinationrules"),
    doc(NETWORKING, "VirtualService", "virtualservices"),
    doc(GATEWAY, "HTTPRoute", "httproutes"),
    doc(GATEWAY, "GRPCRoute", "grpcroutes"),
    doc(SECURITY, "PeerAuthentication", "peerauthentications"),
    doc(SECURITY, "AuthorizationPolicy", "authorizationpolicies"),
];
