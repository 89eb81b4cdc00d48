#!/usr/bin/env python3
"""Offline checks of the Helm chart charts/mesh-control-plane; no cluster, no network, no helm binary.

    ~/.cache/mesh-venv/bin/python scripts/check_chart.py

Needs helm-python-sdk (Helm's Go SDK behind a C ABI: lint and `helm template` in-process) and
kubernetes-validate (the Kubernetes OpenAPI schemas, and jsonschema), both pinned and installed
into the venv by scripts/test.sh. It:

1. lints the chart (helm lint --strict, Kubernetes 1.33) with every value set below;
2. renders it with several value sets and checks which kinds appear, the arguments (exactly the
   expected ones for the set's values), ports, the security context, the injection webhook
   configuration, the RBAC rules (exactly the expected ones, resource names included), NOTES.txt
   and the CRD definitions;
3. validates every rendered manifest against the Kubernetes 1.33 schemas (kubernetes-validate,
   strict: unknown fields are errors), CRDs and the MutatingWebhookConfiguration included (and
   checks broken webhook configurations are refused), and checks the CRD schemas are structural;
4. checks the CRD schemas accept every document of a supported kind found in the repository
   (examples/, docs/, tests/: *.yaml files and ```yaml blocks in docs) and reject a list of broken
   documents (and accept a list of unusual but valid Istio / Gateway API documents);
5. checks values.schema.json refuses bad values;
6. prints a summary, and exits 1 naming every failure.
"""

from __future__ import annotations

import copy
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Callable

try:
    import helm_python as helm
    import jsonschema
    import kubernetes_validate
    import yaml
except ImportError as e:  # pragma: no cover - environment problem
    sys.exit(
        f"check_chart: missing Python package ({e}). Install the pinned ones into the venv:\n"
        "  ~/.cache/mesh-venv/bin/python -m pip install helm-python-sdk==0.2.2 "
        "kubernetes-validate==1.37.0\n(scripts/test.sh does this)"
    )

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "charts" / "mesh-control-plane"
KUBE_VERSION = "1.33.0"
RELEASE = "mesh"
NAMESPACE = "mesh-system"
FULLNAME = f"{RELEASE}-mesh-control-plane"

Doc = dict[str, Any]

# ----------------------------------------------------------------------------------------------
# Failure collection


class Failures:
    def __init__(self) -> None:
        self.items: list[str] = []

    def check(self, ok: bool, message: str) -> bool:
        if not ok:
            self.items.append(message)
        return ok


F = Failures()
SUMMARY: list[str] = []


# ----------------------------------------------------------------------------------------------
# Helm


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML keeps the last one silently; the
    API server's decoder refuses them)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def render(values: dict[str, Any]) -> tuple[list[Doc], str]:
    """`helm template` offline: the manifests (parsed) and NOTES.txt."""
    with helm.Chart.load(CHART) as chart:
        out = chart.render(values=values, name=RELEASE, namespace=NAMESPACE)
    docs: list[Doc] = []
    notes = ""
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        for doc in yaml.load_all(text, Loader=StrictLoader):
            if doc:
                doc.setdefault("__template__", path)
                docs.append(doc)
    return docs, notes


def strip_meta(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if k != "__template__"}


def kinds(docs: list[Doc]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for d in docs:
        counts[d["kind"]] = counts.get(d["kind"], 0) + 1
    return counts


def one(docs: list[Doc], kind: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind]
    if len(found) != 1:
        raise AssertionError(f"expected one {kind}, found {len(found)}")
    return found[0]


def container(docs: list[Doc]) -> Doc:
    return one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def args(docs: list[Doc]) -> list[str]:
    return [str(a) for a in container(docs)["args"]]


def flag(argv: list[str], name: str) -> str | None:
    """Value of `--name VALUE` in argv, None when absent."""
    return argv[argv.index(name) + 1] if name in argv else None


# ----------------------------------------------------------------------------------------------
# 1. lint

LINT_SEVERITY = {0: "unknown", 1: "info", 2: "warning", 3: "error"}


def lint(values: dict[str, Any], label: str) -> None:
    report = helm.lint(
        CHART, values, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}"
    )
    for m in report.get("messages", []):
        if m.get("severity", 0) >= 2:
            F.check(
                False,
                f"lint [{label}]: {LINT_SEVERITY.get(m['severity'])} {m.get('path')}: {m.get('error')}",
            )
    for e in report.get("errors") or []:
        F.check(False, f"lint [{label}]: {e}")


# ----------------------------------------------------------------------------------------------
# 2. render with value sets

IMAGE_DEFAULT = "mesh-control-plane:0.1.0"

CRD_NAMES_ISTIO = {
    "virtualservices.networking.istio.io",
    "destinationrules.networking.istio.io",
    "serviceentries.networking.istio.io",
    "workloadentries.networking.istio.io",
    "peerauthentications.security.istio.io",
    "authorizationpolicies.security.istio.io",
}
CRD_NAMES_GATEWAY = {"httproutes.gateway.networking.k8s.io", "grpcroutes.gateway.networking.k8s.io"}

BASE_KINDS = {
    "Deployment": 1,
    "Service": 1,
    "ServiceAccount": 1,
    "ClusterRole": 1,
    "ClusterRoleBinding": 1,
    "Role": 1,
    "RoleBinding": 1,
    "MutatingWebhookConfiguration": 1,  # injection.enabled is the default
}

# Names the chart derives from the release and its namespace.
SERVICE_HOST = f"{FULLNAME}.{NAMESPACE}.svc"  # the webhook's DNS name; xDS at :15010
WEBHOOK_CONFIG = f"{FULLNAME}-{NAMESPACE}"  # cluster-scoped, named like the ClusterRole
DEFAULT_CA_SECRET = f"{FULLNAME}-ca"

# The chart's defaults as they are meant to be (written here, not read from values.yaml: a default
# changed in values.yaml must fail the checks below, not move them).
DEFAULTS: dict[str, Any] = {
    "logLevel": "info",
    "logJson": False,
    "trustDomain": "cluster.local",
    "clusterDomain": "cluster.local",
    "caMode": "secret",
    "ca": {"secretName": "", "tokenAudience": "istio-ca", "certTtl": "24h", "maxCertTtl": "24h"},
    "leaderElection": {"leaseName": "mesh-control-plane-leader"},
    "injection": {"enabled": True, "failurePolicy": "Fail", "namespaceSelector": {}},
    "extraConfigMap": "",
}


def lookup(tree: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return False, None
        tree = tree[key]
    return True, tree


def value(values: dict[str, Any], *path: str) -> Any:
    """The value a render sees at `path`: the value set's, else the default (Helm merges a value
    set over values.yaml key by key)."""
    found, v = lookup(values, path)
    if found:
        return v
    found, v = lookup(DEFAULTS, path)
    if not found:
        raise KeyError(f"no default for {'.'.join(path)}")
    return v


# An RBAC grant: (apiGroup, resource, verb, resourceNames).
Rule = tuple[str, str, str, tuple[str, ...]]

# What every value set grants cluster-wide: read the translated resources, patch their /status,
# create Events, review tokens.
CLUSTER_RULES_ALWAYS: set[Rule] = {
    *((("", r, v, ()) for r in ("services", "pods", "nodes") for v in ("list", "watch"))),
    *(("discovery.k8s.io", "endpointslices", v, ()) for v in ("list", "watch")),
    *(
        (group, r + sub, v, ())
        for group, resources in (
            ("networking.istio.io", ("virtualservices", "destinationrules", "serviceentries", "workloadentries")),
            ("security.istio.io", ("peerauthentications", "authorizationpolicies")),
            ("gateway.networking.k8s.io", ("httproutes", "grpcroutes")),
        )
        for r in resources
        for sub, verbs in (("", ("list", "watch")), ("/status", ("patch",)))
        for v in verbs
    ),
    # Events are only created (no patch: the code never updates one).
    ("events.k8s.io", "events", "create", ()),
    # The CA's TokenReviews of workloads' projected service-account tokens.
    ("authentication.k8s.io", "tokenreviews", "create", ()),
}
RULE_KEYS = {"apiGroups", "resources", "verbs", "resourceNames"}


class Expect:
    """What a value set must render, derived from its values over DEFAULTS."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.log_level: str = value(values, "logLevel")
        self.log_json: bool = value(values, "logJson")
        self.trust_domain: str = value(values, "trustDomain")
        self.cluster_domain: str = value(values, "clusterDomain")
        self.token_audience: str = value(values, "ca", "tokenAudience")
        self.lease: str = value(values, "leaderElection", "leaseName")
        self.ca_mode: str = value(values, "caMode")
        secret_name: str = value(values, "ca", "secretName")
        # caMode secret: the Secret the control plane creates and reads (default <fullname>-ca).
        self.ca_secret = (secret_name or DEFAULT_CA_SECRET) if self.ca_mode == "secret" else None
        # caMode plugged: the Secret the kubelet mounts.
        self.plugged_secret = secret_name if self.ca_mode == "plugged" else None
        self.injection: bool = value(values, "injection", "enabled")
        self.failure_policy: str = value(values, "injection", "failurePolicy")
        self.namespace_selector: Doc = value(values, "injection", "namespaceSelector")
        self.config_map: str = value(values, "extraConfigMap")
        self.cert_ttl: str = value(values, "ca", "certTtl")
        self.max_cert_ttl: str = value(values, "ca", "maxCertTtl")

    def global_args(self) -> list[str]:
        return ["--log-level", self.log_level] + (["--log-json"] if self.log_json else [])

    def serve_args(self) -> list[tuple[str, str]]:
        """Every `--flag value` after `serve`, in no particular order."""
        out = [
            ("--source", "kubernetes"),
            ("--xds-addr", "0.0.0.0:15010"),
            ("--admin-addr", "0.0.0.0:15014"),
            ("--trust-domain", self.trust_domain),
            ("--cert-ttl", self.cert_ttl),
            ("--max-cert-ttl", self.max_cert_ttl),
            ("--control-plane-namespace", "$(POD_NAMESPACE)"),
            ("--replica-name", "$(POD_NAME)"),
            ("--lease-name", self.lease),
            ("--cluster-domain", self.cluster_domain),
            ("--token-audience", self.token_audience),
        ]
        if self.ca_secret:
            out.append(("--ca-secret", self.ca_secret))
        if self.plugged_secret:
            out.append(("--ca-dir", "/etc/mesh/ca"))
        if self.injection:
            out += [
                ("--injection-addr", "0.0.0.0:15017"),
                ("--injection-dns-name", SERVICE_HOST),
                ("--injection-xds-address", f"{SERVICE_HOST}:15010"),
                ("--injection-webhook-config", WEBHOOK_CONFIG),
            ]
        if self.config_map:
            out.append(("--config-dir", "/etc/mesh/config"))
        return out

    def cluster_rules(self) -> set[Rule]:
        rules = set(CLUSTER_RULES_ALWAYS)
        if self.injection:
            # The leader reads and replaces its own webhook configuration's caBundle, no other.
            rules |= {("admissionregistration.k8s.io", "mutatingwebhookconfigurations", v, (WEBHOOK_CONFIG,))
                      for v in ("get", "update")}
        return rules

    def role_rules(self) -> set[Rule]:
        rules: set[Rule] = {
            ("coordination.k8s.io", "leases", "create", ()),
            *(("coordination.k8s.io", "leases", v, (self.lease,)) for v in ("get", "update")),
        }
        if self.ca_secret:
            rules |= {("", "secrets", "create", ()), ("", "secrets", "get", (self.ca_secret,))}
        return rules

    def container_ports(self) -> dict[str, int]:
        ports = {"grpc-xds": 15010, "http-monitoring": 15014}
        if self.injection:
            ports["https-webhook"] = 15017
        return ports

    def service_ports(self) -> dict[str, tuple[int, Any, str]]:
        """name: (port, targetPort, appProtocol)."""
        ports: dict[str, tuple[int, Any, str]] = {
            "grpc-xds": (15010, "grpc-xds", "grpc"),
            "http-monitoring": (15014, "http-monitoring", "http"),
        }
        if self.injection:
            ports["https-webhook"] = (443, 15017, "https")
        return ports

    def webhook(self) -> Doc:
        """The one webhook, whole: no caBundle (the leader writes it at run time)."""
        return {
            "name": "inject.meshlib.dev",
            "clientConfig": {"service": {"name": FULLNAME, "namespace": NAMESPACE, "path": "/inject", "port": 443}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["pods"], "scope": "Namespaced"}],
            "objectSelector": {"matchLabels": {"meshlib.dev/inject": "true"}},
            "namespaceSelector": self.namespace_selector,
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "failurePolicy": self.failure_policy,
            "reinvocationPolicy": "Never",
            "timeoutSeconds": 10,
        }


def rule_grants(rules: list[Doc]) -> list[Rule]:
    """Every (apiGroup, resource, verb, resourceNames) a Role's rules grant, duplicates kept."""
    return [
        (g, r, v, tuple(sorted(rule.get("resourceNames") or ())))
        for rule in rules
        for g in rule.get("apiGroups", [])
        for r in rule.get("resources", [])
        for v in rule.get("verbs", [])
    ]


def check_rules(kind: str, rules: list[Doc], expected: set[Rule]) -> None:
    for rule in rules:
        F.check(set(rule) <= RULE_KEYS, f"{kind}: rule with {sorted(set(rule) - RULE_KEYS)}: {rule}")
    grants = rule_grants(rules)
    got = set(grants)
    F.check(got == expected, f"{kind} grants differ: extra {sorted(got - expected)}, missing {sorted(expected - got)}")
    F.check(len(grants) == len(got), f"{kind}: a grant is given twice: {sorted(grants)}")


def serve_pairs(argv: list[str], serve: int) -> list[tuple[str, str]] | None:
    """The `--flag value` pairs after `serve`; None when they are not all such pairs."""
    rest = argv[serve + 1:]
    pairs = list(zip(rest[::2], rest[1::2]))
    if len(rest) % 2 or any(not f.startswith("--") or v.startswith("--") for f, v in pairs):
        return None
    return pairs


def check_common(docs: list[Doc], notes: str, x: Expect) -> None:
    """What holds for every value set, with the expectations the set's values imply."""
    dep = one(docs, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    c = container(docs)
    argv = args(docs)
    # Command line: the global flags, `serve`, then exactly the expected serve flags.
    serve = argv.index("serve") if "serve" in argv else -1
    F.check(serve > 0, f"args: no `serve` subcommand: {argv}")
    F.check(argv[:serve] == x.global_args(), f"args before serve: {argv[:serve]} != {x.global_args()}")
    pairs = serve_pairs(argv, serve) if serve > 0 else None
    if F.check(pairs is not None, f"args after serve are not `--flag value` pairs: {argv}"):
        got, want = Counter(pairs), Counter(x.serve_args())
        F.check(got == want, f"serve args differ: extra {sorted((got - want).elements())}, "
                             f"missing {sorted((want - got).elements())}")
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in c.get("env", [])}
    F.check(env.get("POD_NAMESPACE") == "metadata.namespace", f"env: POD_NAMESPACE from the downward API: {env}")
    F.check(env.get("POD_NAME") == "metadata.name", f"env: POD_NAME from the downward API: {env}")
    # Ports and probes.
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    F.check(ports == x.container_ports(), f"container ports: {ports} != {x.container_ports()}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = c.get(probe, {}).get("httpGet", {})
        F.check(
            get.get("path") == path and get.get("port") in (15014, "http-monitoring"),
            f"{probe}: expected GET {path} on 15014, got {get}",
        )
    # Security context.
    sc = c.get("securityContext", {})
    F.check(sc.get("runAsNonRoot") is True and sc.get("runAsUser") == 65532, f"container runs as 65532: {sc}")
    F.check(sc.get("readOnlyRootFilesystem") is True, "container: readOnlyRootFilesystem")
    F.check(sc.get("allowPrivilegeEscalation") is False, "container: allowPrivilegeEscalation false")
    F.check(sc.get("capabilities", {}).get("drop") == ["ALL"], "container: capabilities drop ALL")
    seccomp = sc.get("seccompProfile") or pod.get("securityContext", {}).get("seccompProfile")
    F.check((seccomp or {}).get("type") == "RuntimeDefault", "seccompProfile RuntimeDefault")
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    F.check("/tmp" in mounts and "emptyDir" in vols.get(mounts["/tmp"], {}), "an emptyDir at /tmp")
    # Only a plugged CA is a mounted Secret (caMode secret reads its Secret through the API).
    secret_vols = sorted(v["secret"].get("secretName") for v in vols.values() if "secret" in v)
    F.check(secret_vols == ([x.plugged_secret] if x.plugged_secret else []),
            f"caMode {x.ca_mode}: Secret volumes {secret_vols}")
    F.check(("/etc/mesh/ca" in mounts) == bool(x.plugged_secret), f"caMode {x.ca_mode}: mounts {sorted(mounts)}")
    # Prometheus scrape annotations.
    ann = dep["spec"]["template"]["metadata"].get("annotations", {})
    F.check(
        ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "15014",
        f"pod: prometheus scrape annotations for 15014: {ann}",
    )
    # Service.
    svc = one(docs, "Service")
    sports = {p["name"]: (p.get("port"), p.get("targetPort"), p.get("appProtocol")) for p in svc["spec"]["ports"]}
    F.check(sports == x.service_ports(), f"service ports: {sports} != {x.service_ports()}")
    F.check(svc["metadata"]["name"] == FULLNAME, f"service name {svc['metadata']['name']} != {FULLNAME}")
    F.check(f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc" == SERVICE_HOST,
            f"the Service is not the host {SERVICE_HOST} the webhook certificate and pods name")
    # Labels.
    labels = dep["metadata"].get("labels", {})
    for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                "app.kubernetes.io/managed-by", "helm.sh/chart"):
        F.check(key in labels, f"deployment: label {key} missing")
    # RBAC: exactly what the code uses (resource names included), bound to the chart's account.
    sa = one(docs, "ServiceAccount")["metadata"]["name"]
    F.check(pod.get("serviceAccountName") == sa, "pod runs as the chart's ServiceAccount")
    cluster_role = one(docs, "ClusterRole")
    check_rules("ClusterRole", cluster_role["rules"], x.cluster_rules())
    F.check(cluster_role["metadata"]["name"] == WEBHOOK_CONFIG,
            f"ClusterRole name {cluster_role['metadata']['name']} != {WEBHOOK_CONFIG}")
    role = one(docs, "Role")
    check_rules("Role", role["rules"], x.role_rules())
    F.check(role["metadata"].get("namespace") == NAMESPACE, "Role in the release namespace")
    for kind, ref in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        b = one(docs, kind)
        F.check(b["roleRef"]["kind"] == ref and b["roleRef"]["name"] == one(docs, ref)["metadata"]["name"],
                f"{kind} references its {ref}")
        F.check(b["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}],
                f"{kind} subjects: {b['subjects']}")
    # The injection webhook: whole, or absent.
    hooks = [d for d in docs if d["kind"] == "MutatingWebhookConfiguration"]
    if x.injection and F.check(len(hooks) == 1, f"injection: {len(hooks)} MutatingWebhookConfigurations"):
        meta = hooks[0]["metadata"]
        F.check(meta["name"] == WEBHOOK_CONFIG, f"webhook configuration name {meta['name']} != {WEBHOOK_CONFIG}")
        F.check("namespace" not in meta, "the MutatingWebhookConfiguration is cluster-scoped: no namespace")
        F.check(labels.items() <= meta.get("labels", {}).items(), "webhook configuration: the chart's labels")
        webhooks = hooks[0].get("webhooks", [])
        for w in webhooks:
            F.check("caBundle" not in w.get("clientConfig", {}),
                    f"webhook {w.get('name')}: caBundle in the template (the leader writes it at run time)")
        want = x.webhook()
        F.check(webhooks == [want], "webhook differs: " + "; ".join(
            f"{key}: {w.get(key)!r} != {want.get(key)!r}"
            for w in webhooks[:1] for key in sorted(set(w) | set(want)) if w.get(key) != want.get(key)
        ) + ("" if len(webhooks) == 1 else f" ({len(webhooks)} webhooks)"))
    if not x.injection:
        F.check(not hooks, "injection disabled: a MutatingWebhookConfiguration is rendered")
    # CRDs: kept on uninstall.
    for crd in (d for d in docs if d["kind"] == "CustomResourceDefinition"):
        F.check(crd["metadata"].get("annotations", {}).get("helm.sh/resource-policy") == "keep",
                f"CRD {crd['metadata']['name']}: helm.sh/resource-policy keep")
    # NOTES: how to mesh a workload (the label, or the manual bootstrap), status, syncz, the CA.
    F.check(f"{SERVICE_HOST}:15010" in notes, "NOTES.txt names the xDS address")
    for word in ("GRPC_XDS_BOOTSTRAP", "kubectl get virtualservices -A", "/debug/syncz", "15014",
                 f"audience {x.token_audience}", "/var/run/secrets/mesh/tokens"):
        F.check(word in notes, f"NOTES.txt mentions {word}")
    label = 'meshlib.dev/inject: "true"'
    if x.injection:
        F.check(label in notes, f"NOTES.txt: injection enabled, but no {label}")
        F.check('"xds_servers"' not in notes, "NOTES.txt: injection enabled, but a hand-written bootstrap")
    else:
        F.check(label not in notes, f"NOTES.txt: injection disabled, but tells to label pods {label}")
        F.check(f'"server_uri": "{SERVICE_HOST}:15010"' in notes,
                "NOTES.txt: injection disabled, but no bootstrap naming the xDS address")
    ca_line = next((line for line in notes.splitlines() if line.startswith("CA: ")), "")
    want_ca = {"secret": x.ca_secret, "plugged": x.plugged_secret, "memory": "in memory"}[x.ca_mode]
    F.check(bool(want_ca) and str(want_ca) in ca_line, f"NOTES.txt: CA line for caMode {x.ca_mode}: {ca_line!r}")


def expect_kinds(docs: list[Doc], expected: dict[str, int], label: str) -> None:
    got = kinds(docs)
    for kind, n in expected.items():
        F.check(got.get(kind, 0) == n, f"[{label}] expected {n} {kind}, rendered {got.get(kind, 0)}")
    unexpected = set(got) - set(expected)
    F.check(not unexpected, f"[{label}] unexpected kinds rendered: {sorted(unexpected)}")


def crd_names(docs: list[Doc]) -> set[str]:
    return {d["metadata"]["name"] for d in docs if d["kind"] == "CustomResourceDefinition"}


def k(**counts: int) -> dict[str, int]:
    """BASE_KINDS with overrides (CRDs counted by name below)."""
    out = dict(BASE_KINDS)
    out.update(counts)
    return out


ALL_CRDS = len(CRD_NAMES_ISTIO | CRD_NAMES_GATEWAY)


def secret_grants(docs: list[Doc]) -> set[Rule]:
    return {g for g in rule_grants(one(docs, "Role")["rules"]) if g[1] == "secrets"}


def set_defaults(docs: list[Doc]) -> None:
    dep = one(docs, "Deployment")
    argv = args(docs)
    F.check(dep["spec"].get("replicas") == 2, "defaults: 2 replicas")
    F.check(container(docs)["image"] == IMAGE_DEFAULT, f"defaults: image {container(docs)['image']}")
    F.check("--log-json" not in argv and flag(argv, "--log-level") == "info", f"defaults: text logs at info: {argv}")
    F.check(flag(argv, "--ca-secret") == "mesh-mesh-control-plane-ca", f"defaults: CA in Secret <fullname>-ca: {argv}")
    F.check(flag(argv, "--ca-dir") is None, "defaults: no --ca-dir")
    F.check(flag(argv, "--config-dir") is None, "defaults: no --config-dir")
    F.check(flag(argv, "--trust-domain") == "cluster.local", "defaults: trust domain cluster.local")
    F.check(flag(argv, "--cluster-domain") == "cluster.local", "defaults: cluster domain cluster.local")
    F.check(flag(argv, "--token-audience") == "istio-ca", "defaults: token audience istio-ca")
    F.check(flag(argv, "--lease-name") == "mesh-control-plane-leader", "defaults: lease name")
    F.check(flag(argv, "--injection-webhook-config") == "mesh-mesh-control-plane-mesh-system",
            f"defaults: injection with the webhook configuration <fullname>-<namespace>: {argv}")
    F.check(flag(argv, "--injection-dns-name") == "mesh-mesh-control-plane.mesh-system.svc",
            f"defaults: webhook DNS name <fullname>.<namespace>.svc: {argv}")
    hook = one(docs, "MutatingWebhookConfiguration")["webhooks"][0]
    F.check(hook.get("failurePolicy") == "Fail" and hook.get("namespaceSelector") == {},
            f"defaults: failurePolicy Fail, every namespace: {hook}")
    F.check(secret_grants(docs) == {("", "secrets", "create", ()),
                                    ("", "secrets", "get", ("mesh-mesh-control-plane-ca",))},
            f"defaults: Role creates Secrets and reads the CA Secret alone: {secret_grants(docs)}")
    F.check(one(docs, "PodDisruptionBudget")["spec"].get("minAvailable") == 1, "defaults: PDB minAvailable 1")
    F.check(crd_names(docs) == CRD_NAMES_ISTIO | CRD_NAMES_GATEWAY, f"defaults: CRDs {sorted(crd_names(docs))}")


def set_single(docs: list[Doc]) -> None:
    F.check(one(docs, "Deployment")["spec"].get("replicas") == 1, "single: 1 replica")


def set_autoscaling(docs: list[Doc]) -> None:
    hpa = one(docs, "HorizontalPodAutoscaler")
    F.check(hpa["apiVersion"] == "autoscaling/v2", "HPA is autoscaling/v2")
    F.check(hpa["spec"]["minReplicas"] == 3 and hpa["spec"]["maxReplicas"] == 7, f"HPA bounds: {hpa['spec']}")
    F.check(hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": FULLNAME},
            "HPA targets the Deployment")
    metric = hpa["spec"]["metrics"][0]["resource"]
    F.check(metric["name"] == "cpu" and metric["target"]["averageUtilization"] == 65, f"HPA metric: {metric}")
    F.check("replicas" not in one(docs, "Deployment")["spec"], "autoscaling: Deployment leaves replicas to the HPA")


def set_secret_custom(docs: list[Doc]) -> None:
    argv = args(docs)
    F.check(flag(argv, "--ca-secret") == "mesh-root-ca", f"secret: --ca-secret mesh-root-ca: {argv}")
    F.check(flag(argv, "--token-audience") == "mesh-ca", f"secret: --token-audience mesh-ca: {argv}")
    F.check(flag(argv, "--cluster-domain") == "corp.example", f"secret: --cluster-domain corp.example: {argv}")
    F.check(("", "secrets", "get", ("mesh-root-ca",)) in secret_grants(docs),
            f"secret: Role reads Secret mesh-root-ca: {secret_grants(docs)}")


def set_memory(docs: list[Doc]) -> None:
    argv = args(docs)
    F.check(flag(argv, "--ca-secret") is None and flag(argv, "--ca-dir") is None,
            f"memory: neither --ca-secret nor --ca-dir: {argv}")
    F.check(not secret_grants(docs), f"memory: no Secret access: {secret_grants(docs)}")


def set_plugged(docs: list[Doc]) -> None:
    argv = args(docs)
    F.check(flag(argv, "--ca-dir") == "/etc/mesh/ca", f"plugged: --ca-dir /etc/mesh/ca: {argv}")
    F.check(flag(argv, "--ca-secret") is None, f"plugged: no --ca-secret: {argv}")
    F.check(not secret_grants(docs), f"plugged: no Secret access (the kubelet mounts it): {secret_grants(docs)}")
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container(docs)["volumeMounts"]}
    m = mounts.get("/etc/mesh/ca")
    F.check(m is not None and m.get("readOnly") is True, "plugged: CA mounted read-only at /etc/mesh/ca")
    secret = vols.get(m["name"] if m else "", {}).get("secret", {})
    F.check(secret.get("secretName") == "mesh-cacerts", f"plugged: CA from Secret mesh-cacerts: {secret}")
    keys = {i["key"] for i in secret.get("items", [])}
    F.check(keys == {"ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"}, f"plugged: CA files {keys}")
    F.check(flag(argv, "--trust-domain") == "example.org", "plugged: trust domain from values")


def set_no_injection(docs: list[Doc]) -> None:
    argv = args(docs)
    F.check(not [a for a in argv if a.startswith("--injection")], f"injection disabled: --injection-* flags: {argv}")
    F.check(15017 not in [p["containerPort"] for p in container(docs)["ports"]], "injection disabled: port 15017")
    F.check(443 not in [p["port"] for p in one(docs, "Service")["spec"]["ports"]], "injection disabled: Service 443")
    groups = {g for r in one(docs, "ClusterRole")["rules"] for g in r["apiGroups"]}
    F.check("admissionregistration.k8s.io" not in groups, "injection disabled: webhook configuration access")
    F.check("authentication.k8s.io" in groups, "injection disabled: TokenReviews still granted (the CA uses them)")


def set_ignore(docs: list[Doc]) -> None:
    hook = one(docs, "MutatingWebhookConfiguration")["webhooks"][0]
    F.check(hook.get("failurePolicy") == "Ignore", f"failurePolicy Ignore: {hook.get('failurePolicy')}")
    F.check(hook.get("namespaceSelector") == {
        "matchLabels": {"mesh": "enabled"},
        "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                              "values": ["kube-system", "mesh-system"]}],
    }, f"namespaceSelector from values: {hook.get('namespaceSelector')}")


def set_istio_crds_off(docs: list[Doc]) -> None:
    F.check(crd_names(docs) == CRD_NAMES_GATEWAY, f"istio CRDs off: {sorted(crd_names(docs))}")


def set_custom(docs: list[Doc]) -> None:
    argv = args(docs)
    c = container(docs)
    F.check(c["image"] == "registry.example.com/mesh/control-plane:v9.9.9", f"custom image: {c['image']}")
    F.check(c["imagePullPolicy"] == "Always", "custom pull policy")
    F.check("--log-json" in argv and argv.index("--log-json") < argv.index("serve"), f"--log-json before serve: {argv}")
    F.check(flag(argv, "--log-level") == "debug", "log level debug")
    F.check(flag(argv, "--config-dir") == "/etc/mesh/config", f"extraConfigMap: --config-dir: {argv}")
    F.check(flag(argv, "--lease-name") == "other-lease", "custom lease name")
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    m = mounts.get("/etc/mesh/config")
    F.check(m is not None and vols.get(m["name"], {}).get("configMap", {}).get("name") == "extra-mesh-config",
            "extraConfigMap mounted at /etc/mesh/config")
    F.check(pod.get("nodeSelector") == {"kubernetes.io/os": "linux"}, "nodeSelector passed through")
    F.check(pod.get("imagePullSecrets") == [{"name": "regcred"}], "imagePullSecrets passed through")
    ann = one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    F.check(ann.get("example.com/team") == "mesh" and ann.get("prometheus.io/scrape") == "true",
            f"podAnnotations merged with the scrape annotations: {ann}")
    F.check(ann.get("prometheus.io/path") == "/custom-metrics", "podAnnotations override the defaults")
    role = one(docs, "Role")
    F.check(any(r.get("resourceNames") == ["other-lease"] for r in role["rules"]), "Role names the custom lease")


# (label, values, expected kinds, extra check)
VALUE_SETS: list[tuple[str, dict[str, Any], dict[str, int], Callable[[list[Doc]], None] | None]] = [
    ("defaults", {}, k(PodDisruptionBudget=1, CustomResourceDefinition=ALL_CRDS), set_defaults),
    (
        "replicaCount 1, PDB disabled",
        {"replicaCount": 1, "podDisruptionBudget": {"enabled": False}},
        k(CustomResourceDefinition=ALL_CRDS),
        set_single,
    ),
    # One replica and the PDB left enabled: still none (minAvailable 1 would block node drains).
    ("replicaCount 1, PDB enabled", {"replicaCount": 1}, k(CustomResourceDefinition=ALL_CRDS), set_single),
    ("PDB disabled, 3 replicas", {"replicaCount": 3, "podDisruptionBudget": {"enabled": False}},
     k(CustomResourceDefinition=ALL_CRDS), None),
    (
        "autoscaling enabled",
        {"autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 7,
                         "targetCPUUtilizationPercentage": 65}},
        k(HorizontalPodAutoscaler=1, PodDisruptionBudget=1, CustomResourceDefinition=ALL_CRDS),
        set_autoscaling,
    ),
    (
        "autoscaling from 1 replica",
        {"autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 3}},
        k(HorizontalPodAutoscaler=1, CustomResourceDefinition=ALL_CRDS),
        None,
    ),
    (
        "caMode secret with ca.secretName, tokenAudience, clusterDomain",
        {"caMode": "secret", "ca": {"secretName": "mesh-root-ca", "tokenAudience": "mesh-ca"},
         "clusterDomain": "corp.example"},
        k(PodDisruptionBudget=1, CustomResourceDefinition=ALL_CRDS),
        set_secret_custom,
    ),
    (
        "caMode memory, one replica",
        {"caMode": "memory", "replicaCount": 1},
        k(CustomResourceDefinition=ALL_CRDS),
        set_memory,
    ),
    (
        "caMode plugged",
        {"caMode": "plugged", "ca": {"secretName": "mesh-cacerts"}, "trustDomain": "example.org"},
        k(PodDisruptionBudget=1, CustomResourceDefinition=ALL_CRDS),
        set_plugged,
    ),
    (
        "injection disabled",
        {"injection": {"enabled": False}},
        k(PodDisruptionBudget=1, CustomResourceDefinition=ALL_CRDS, MutatingWebhookConfiguration=0),
        set_no_injection,
    ),
    (
        "injection failurePolicy Ignore, namespaceSelector",
        {"injection": {"failurePolicy": "Ignore", "namespaceSelector": {
            "matchLabels": {"mesh": "enabled"},
            "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                                  "values": ["kube-system", "mesh-system"]}]}}},
        k(PodDisruptionBudget=1, CustomResourceDefinition=ALL_CRDS),
        set_ignore,
    ),
    (
        "all CRDs off",
        {"crds": {"istio": {"install": False}, "gatewayApi": {"install": False}}},
        k(PodDisruptionBudget=1),
        None,
    ),
    (
        "Istio CRDs off",
        {"crds": {"istio": {"install": False}, "gatewayApi": {"install": True}}},
        k(PodDisruptionBudget=1, CustomResourceDefinition=len(CRD_NAMES_GATEWAY)),
        set_istio_crds_off,
    ),
    (
        "logJson + custom image + extraConfigMap",
        {
            "logJson": True,
            "logLevel": "debug",
            "image": {"repository": "registry.example.com/mesh/control-plane", "tag": "v9.9.9",
                      "pullPolicy": "Always"},
            "imagePullSecrets": [{"name": "regcred"}],
            "extraConfigMap": "extra-mesh-config",
            "leaderElection": {"leaseName": "other-lease"},
            "podAnnotations": {"example.com/team": "mesh", "prometheus.io/path": "/custom-metrics"},
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "serviceAccount": {"create": True, "name": "mesh-cp", "annotations": {"a": "b"}},
        },
        k(PodDisruptionBudget=1, CustomResourceDefinition=ALL_CRDS),
        set_custom,
    ),
]


# ----------------------------------------------------------------------------------------------
# 3. Kubernetes schemas (kubernetes-validate) and structural CRD schemas

FORBIDDEN_IN_STRUCTURAL = {"$ref", "$schema", "definitions", "dependencies", "id", "additionalItems",
                           "patternProperties"}


def structural_problems(node: Any, at: str, out: list[str]) -> None:
    """The apiextensions rules for a structural schema (the ones a hand-written schema can break)."""
    if not isinstance(node, dict):
        out.append(f"{at}: not an object")
        return
    for key in FORBIDDEN_IN_STRUCTURAL & node.keys():
        out.append(f"{at}: {key} is not allowed")
    if node.get("uniqueItems") is True:
        out.append(f"{at}: uniqueItems true is not allowed")
    free = node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
    if not node.get("type") and not free:
        out.append(f"{at}: no type")
    if "properties" in node and "additionalProperties" in node:
        out.append(f"{at}: both properties and additionalProperties")
    if node.get("additionalProperties") is False:
        out.append(f"{at}: additionalProperties false is not allowed")
    if node.get("type") == "array" and not isinstance(node.get("items"), dict):
        out.append(f"{at}: array without a single items schema")
    if node.get("type") == "object" and "items" in node:
        out.append(f"{at}: object with items")
    for word in ("anyOf", "oneOf", "allOf", "not"):
        if word in node:
            out.append(f"{at}: {word} (keep the schemas plain)")
    for name, sub in (node.get("properties") or {}).items():
        structural_problems(sub, f"{at}.{name}", out)
    if isinstance(node.get("additionalProperties"), dict):
        structural_problems(node["additionalProperties"], f"{at}.*", out)
    if isinstance(node.get("items"), dict):
        structural_problems(node["items"], f"{at}[]", out)
    if "enum" in node and node.get("type") == "string":
        bad = [e for e in node["enum"] if not isinstance(e, str)]
        if bad:
            out.append(f"{at}: enum values not strings: {bad}")


def check_crd_definition(crd: Doc) -> None:
    name = crd["metadata"]["name"]
    spec = crd["spec"]
    versions = spec["versions"]
    storage = [v["name"] for v in versions if v.get("storage")]
    F.check(storage == ["v1"], f"CRD {name}: storage version must be v1 alone, is {storage}")
    F.check(all(v.get("served") for v in versions), f"CRD {name}: every version served")
    F.check(spec.get("conversion", {}).get("strategy") == "None", f"CRD {name}: conversion None")
    F.check(spec.get("scope") == "Namespaced", f"CRD {name}: namespaced")
    schemas = [v["schema"]["openAPIV3Schema"] for v in versions]
    F.check(all(s == schemas[0] for s in schemas), f"CRD {name}: versions have different schemas")
    for v in versions:
        F.check(v.get("subresources") == {"status": {}}, f"CRD {name} {v['name']}: status subresource")
        columns = {c["name"]: c["jsonPath"] for c in v.get("additionalPrinterColumns", [])}
        F.check("Accepted" in columns and "Accepted" in columns["Accepted"],
                f"CRD {name} {v['name']}: an Accepted column from the status conditions")
        for col, path in columns.items():
            F.check(path.startswith(".") and path.count("[") == path.count("]")
                    and path.count("(") == path.count(")"),
                    f"CRD {name} {v['name']}: column {col}: malformed jsonPath {path}")
        root = v["schema"]["openAPIV3Schema"]
        problems: list[str] = []
        structural_problems(root, "openAPIV3Schema", problems)
        meta = root.get("properties", {}).get("metadata", {})
        F.check(meta == {"type": "object"}, f"CRD {name}: metadata must be a plain object schema")
        status = root.get("properties", {}).get("status", {})
        F.check(status.get("x-kubernetes-preserve-unknown-fields") is True,
                f"CRD {name}: status keeps unknown fields")
        for p in problems:
            F.check(False, f"CRD {name} {v['name']}: not structural: {p}")
    expected = {
        "virtualservices.networking.istio.io": (["v1", "v1beta1", "v1alpha3"], ["vs"]),
        "destinationrules.networking.istio.io": (["v1", "v1beta1", "v1alpha3"], ["dr"]),
        "serviceentries.networking.istio.io": (["v1", "v1beta1", "v1alpha3"], ["se"]),
        "workloadentries.networking.istio.io": (["v1", "v1beta1", "v1alpha3"], ["we"]),
        "peerauthentications.security.istio.io": (["v1", "v1beta1"], ["pa"]),
        "authorizationpolicies.security.istio.io": (["v1", "v1beta1"], ["ap"]),
        "httproutes.gateway.networking.k8s.io": (["v1", "v1beta1"], None),
        "grpcroutes.gateway.networking.k8s.io": (["v1"], None),
    }
    if F.check(name in expected, f"unexpected CRD {name}"):
        want_versions, short = expected[name]
        F.check([v["name"] for v in versions] == want_versions, f"CRD {name}: versions {[v['name'] for v in versions]}")
        F.check(spec["names"].get("shortNames") == short, f"CRD {name}: shortNames {spec['names'].get('shortNames')}")


def kube_validate(docs: list[Doc], label: str) -> Counter[str]:
    """Validates every document; returns how many of each kind passed."""
    n: Counter[str] = Counter()
    for d in docs:
        doc = strip_meta(d)
        what = f"{doc['kind']}/{doc['metadata']['name']} ({d['__template__']})"
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
            n[doc["kind"]] += 1
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            F.check(False, f"kubernetes-validate [{label}] {what}: {path}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            F.check(False, f"kubernetes-validate [{label}] {what}: {e.message}")
    return n


# Changes to the rendered MutatingWebhookConfiguration that kubernetes-validate must refuse (so
# that its passing the rendered one means something): (why, change, where the error must be).
BROKEN_WEBHOOK_CONFIGS: list[tuple[str, Callable[[Doc], None], str]] = [
    ("a misspelled clientConfig field",
     lambda d: d["webhooks"][0]["clientConfig"].update(cabundle="x"), "webhooks.0.clientConfig"),
    ("no admissionReviewVersions", lambda d: d["webhooks"][0].pop("admissionReviewVersions"), "webhooks.0"),
    ("the service port as a string",
     lambda d: d["webhooks"][0]["clientConfig"]["service"].update(port="443"), "webhooks.0.clientConfig.service.port"),
    ("timeoutSeconds as a string", lambda d: d["webhooks"][0].update(timeoutSeconds="10"), "webhooks.0.timeoutSeconds"),
]


def check_webhook_validation_refuses(mwc: Doc) -> int:
    refused = 0
    for why, change, at in BROKEN_WEBHOOK_CONFIGS:
        doc = copy.deepcopy(strip_meta(mwc))
        change(doc)
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
            F.check(False, f"kubernetes-validate accepts a MutatingWebhookConfiguration with {why}")
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            if F.check(path == at, f"MutatingWebhookConfiguration with {why} refused at {path}, not {at}: {e.message}"):
                refused += 1
    return refused


# ----------------------------------------------------------------------------------------------
# 4. CRD schemas against documents


def to_jsonschema(node: Any) -> Any:
    """A CRD schema node as plain JSON schema, with the API server's field handling: unknown
    fields are refused (as kubectl's strict field validation does) unless the node keeps them
    (x-kubernetes-preserve-unknown-fields); x-kubernetes-int-or-string is integer or string."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key == "nullable":
            continue
        if key == "properties":
            out[key] = {name: to_jsonschema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = to_jsonschema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [to_jsonschema(v) for v in value]
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (
        node.get("type") == "object"
        and "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


class CrdValidators:
    def __init__(self, crds: list[Doc]) -> None:
        self.by_gvk: dict[tuple[str, str, str], jsonschema.protocols.Validator] = {}
        for crd in crds:
            group = crd["spec"]["group"]
            kind = crd["spec"]["names"]["kind"]
            for v in crd["spec"]["versions"]:
                schema = to_jsonschema(v["schema"]["openAPIV3Schema"])
                cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
                cls.check_schema(schema)
                self.by_gvk[(group, v["name"], kind)] = cls(schema)
        self.kinds = {(g, k) for g, _, k in self.by_gvk}

    def supports(self, doc: Any) -> bool:
        if not isinstance(doc, dict) or not isinstance(doc.get("apiVersion"), str):
            return False
        group = doc["apiVersion"].split("/")[0]
        return (group, doc.get("kind")) in self.kinds

    def errors(self, doc: Doc) -> list[str]:
        group, _, version = doc["apiVersion"].partition("/")
        validator = self.by_gvk.get((group, version, doc["kind"]))
        if validator is None:
            return [f"version not served: {doc['apiVersion']} {doc['kind']}"]
        return [
            f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
        ]


def repo_documents() -> list[tuple[str, Any]]:
    """(where, document) for every YAML document in the repository's examples, docs and tests."""
    files: set[Path] = set()
    for pattern in ("examples/demo/config/*.yaml", "examples/demo/steps/*.yaml"):
        files.update(REPO.glob(pattern))
    for top in ("examples", "docs", "tests"):
        for ext in ("*.yaml", "*.yml"):
            files.update(p for p in (REPO / top).rglob(ext) if "target" not in p.parts)
    found: list[tuple[str, Any]] = []
    for path in sorted(files):
        rel = path.relative_to(REPO)
        try:
            for i, doc in enumerate(d for d in yaml.safe_load_all(path.read_text()) if d is not None):
                found.append((f"{rel} document {i}", doc))
        except yaml.YAMLError as e:
            F.check(False, f"{rel}: does not parse as YAML: {e}")
    # ```yaml blocks in the docs (only whole documents of a supported kind are used below).
    fence = re.compile(r"^```ya?ml\s*\n(.*?)^```", re.S | re.M)
    for path in sorted((REPO / "docs").rglob("*.md")) + [REPO / "README.md"]:
        rel = path.relative_to(REPO)
        for n, block in enumerate(fence.findall(path.read_text())):
            try:
                for i, doc in enumerate(d for d in yaml.safe_load_all(block) if d is not None):
                    found.append((f"{rel} yaml block {n} document {i}", doc))
            except yaml.YAMLError:
                continue  # a fragment, not a document
    return found


# Documents the CRDs must refuse: (why, document).
def _vs(http: list[Doc], **spec: Any) -> Doc:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "bad", "namespace": "default"},
            "spec": {"hosts": ["reviews"], "http": http, **spec}}


def _doc(api: str, kind: str, spec: Any) -> Doc:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": "x", "namespace": "default"}, "spec": spec}


SE_OK = {"hosts": ["reviews.default.svc.cluster.local"],
         "ports": [{"number": 9080, "name": "grpc", "protocol": "GRPC"}], "resolution": "STATIC"}
DEST = {"destination": {"host": "reviews", "subset": "v1"}}

BROKEN: list[tuple[str, Doc]] = [
    ("VirtualService weight as a string", _vs([{"route": [{**DEST, "weight": "ten"}]}])),
    ("VirtualService negative weight", _vs([{"route": [{**DEST, "weight": -1}]}])),
    ("VirtualService route without destination", _vs([{"route": [{"weight": 100}]}])),
    ("VirtualService destination without host", _vs([{"route": [{"destination": {"subset": "v1"}}]}])),
    ("VirtualService destination port as a string",
     _vs([{"route": [{"destination": {"host": "reviews", "port": {"number": "9080"}}}]}])),
    ("VirtualService timeout not a duration", _vs([{"route": [DEST], "timeout": "2 seconds"}])),
    ("VirtualService retries.attempts as a string", _vs([{"route": [DEST], "retries": {"attempts": "three"}}])),
    ("VirtualService http as an object", _vs({"route": [DEST]})),  # type: ignore[arg-type]
    ("VirtualService hosts as a string", _doc("networking.istio.io/v1", "VirtualService",
                                              {"hosts": "reviews", "http": [{"route": [DEST]}]})),
    ("VirtualService uri match with exact and prefix",
     _vs([{"match": [{"uri": {"exact": "/a", "prefix": "/b"}}], "route": [DEST]}])),
    ("VirtualService unknown StringMatch field", _vs([{"match": [{"uri": {"suffix": ".png"}}], "route": [DEST]}])),
    ("VirtualService fault percentage over 100",
     _vs([{"route": [DEST], "fault": {"abort": {"httpStatus": 503, "percentage": {"value": 120}}}}])),
    ("VirtualService unknown gRPC status",
     _vs([{"route": [DEST], "fault": {"abort": {"grpcStatus": "BROKEN", "percentage": {"value": 1}}}}])),
    ("VirtualService directResponse status 700", _vs([{"directResponse": {"status": 700}}])),
    ("ServiceEntry without hosts", _doc("networking.istio.io/v1", "ServiceEntry",
                                        {k: v for k, v in SE_OK.items() if k != "hosts"})),
    ("ServiceEntry with empty hosts", _doc("networking.istio.io/v1", "ServiceEntry", {**SE_OK, "hosts": []})),
    ("ServiceEntry port number as a string", _doc("networking.istio.io/v1", "ServiceEntry",
                                                  {**SE_OK, "ports": [{"number": "9080", "name": "grpc"}]})),
    ("ServiceEntry port 70000", _doc("networking.istio.io/v1", "ServiceEntry",
                                     {**SE_OK, "ports": [{"number": 70000, "name": "grpc"}]})),
    ("ServiceEntry port without name", _doc("networking.istio.io/v1", "ServiceEntry",
                                            {**SE_OK, "ports": [{"number": 9080}]})),
    ("ServiceEntry unknown resolution", _doc("networking.istio.io/v1", "ServiceEntry",
                                             {**SE_OK, "resolution": "static"})),
    ("ServiceEntry endpoint port as a string", _doc("networking.istio.io/v1", "ServiceEntry", {
        **SE_OK, "endpoints": [{"address": "10.0.0.1", "ports": {"grpc": "9080"}}]})),
    ("WorkloadEntry weight as a string", _doc("networking.istio.io/v1", "WorkloadEntry",
                                              {"address": "10.0.0.1", "weight": "heavy"})),
    ("DestinationRule without host", _doc("networking.istio.io/v1", "DestinationRule",
                                          {"subsets": [{"name": "v1"}]})),
    ("DestinationRule subset without name", _doc("networking.istio.io/v1", "DestinationRule",
                                                 {"host": "reviews", "subsets": [{"labels": {"v": "1"}}]})),
    ("DestinationRule unknown TLS mode", _doc("networking.istio.io/v1", "DestinationRule",
                                              {"host": "reviews", "trafficPolicy": {"tls": {"mode": "MTLS"}}})),
    ("DestinationRule maxConnections as a string", _doc("networking.istio.io/v1", "DestinationRule", {
        "host": "reviews", "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": "many"}}}})),
    ("DestinationRule subset labels not strings", _doc("networking.istio.io/v1", "DestinationRule",
                                                       {"host": "reviews",
                                                        "subsets": [{"name": "v1", "labels": {"v": 1}}]})),
    ("PeerAuthentication unknown mode", _doc("security.istio.io/v1", "PeerAuthentication",
                                             {"mtls": {"mode": "STRICTLY"}})),
    ("AuthorizationPolicy unknown action", _doc("security.istio.io/v1", "AuthorizationPolicy",
                                                {"action": "PERMIT", "rules": [{}]})),
    ("AuthorizationPolicy principals as a string", _doc("security.istio.io/v1", "AuthorizationPolicy", {
        "rules": [{"from": [{"source": {"principals": "cluster.local/ns/a/sa/b"}}]}]})),
    ("AuthorizationPolicy port as an object", _doc("security.istio.io/v1", "AuthorizationPolicy", {
        "rules": [{"to": [{"operation": {"ports": [{"port": 8080}]}}]}]})),
    ("AuthorizationPolicy condition without key", _doc("security.istio.io/v1", "AuthorizationPolicy", {
        "rules": [{"when": [{"values": ["a"]}]}]})),
    ("HTTPRoute backend weight as a string", _doc("gateway.networking.k8s.io/v1", "HTTPRoute", {
        "parentRefs": [{"kind": "Service", "group": "", "name": "reviews"}],
        "rules": [{"backendRefs": [{"name": "reviews", "port": 9080, "weight": "ten"}]}]})),
    ("HTTPRoute backend port as a string", _doc("gateway.networking.k8s.io/v1", "HTTPRoute", {
        "parentRefs": [{"name": "reviews"}], "rules": [{"backendRefs": [{"name": "reviews", "port": "9080"}]}]})),
    ("HTTPRoute unknown path match type", _doc("gateway.networking.k8s.io/v1", "HTTPRoute", {
        "parentRefs": [{"name": "reviews"}],
        "rules": [{"matches": [{"path": {"type": "Prefix", "value": "/"}}]}]})),
    ("HTTPRoute parentRef without name", _doc("gateway.networking.k8s.io/v1", "HTTPRoute", {
        "parentRefs": [{"kind": "Service"}]})),
    ("HTTPRoute filter without type", _doc("gateway.networking.k8s.io/v1", "HTTPRoute", {
        "parentRefs": [{"name": "reviews"}],
        "rules": [{"filters": [{"requestHeaderModifier": {"set": [{"name": "a", "value": "b"}]}}]}]})),
    ("HTTPRoute timeout with a fraction (Gateway API durations are whole)",
     _doc("gateway.networking.k8s.io/v1", "HTTPRoute", {
         "parentRefs": [{"name": "reviews"}], "rules": [{"timeouts": {"request": "1.5s"}}]})),
    ("GRPCRoute unknown method match type", _doc("gateway.networking.k8s.io/v1", "GRPCRoute", {
        "parentRefs": [{"name": "reviews"}],
        "rules": [{"matches": [{"method": {"type": "Glob", "service": "x.Y"}}]}]})),
    ("GRPCRoute v1beta1 is not served", _doc("gateway.networking.k8s.io/v1beta1", "GRPCRoute", {
        "parentRefs": [{"name": "reviews"}]})),
    ("VirtualService v2 is not served", _doc("networking.istio.io/v2", "VirtualService",
                                             {"hosts": ["reviews"], "http": [{"route": [DEST]}]})),
]

# Where each broken document must be refused: how one of its errors begins (the field path), so
# that a document refused for an unintended reason does not count.
BROKEN_AT: dict[str, str] = {
    'VirtualService weight as a string': 'spec.http.0.route.0.weight',
    'VirtualService negative weight': 'spec.http.0.route.0.weight',
    'VirtualService route without destination': "spec.http.0.route.0: 'destination'",
    'VirtualService destination without host': "spec.http.0.route.0.destination: 'host'",
    'VirtualService destination port as a string': 'spec.http.0.route.0.destination.port.number',
    'VirtualService timeout not a duration': 'spec.http.0.timeout',
    'VirtualService retries.attempts as a string': 'spec.http.0.retries.attempts',
    'VirtualService http as an object': 'spec.http: ',
    'VirtualService hosts as a string': 'spec.hosts: ',
    'VirtualService uri match with exact and prefix': 'spec.http.0.match.0.uri: ',
    'VirtualService unknown StringMatch field': 'spec.http.0.match.0.uri: ',
    'VirtualService fault percentage over 100': 'spec.http.0.fault.abort.percentage.value',
    'VirtualService unknown gRPC status': 'spec.http.0.fault.abort.grpcStatus',
    'VirtualService directResponse status 700': 'spec.http.0.directResponse.status',
    'ServiceEntry without hosts': "spec: 'hosts' is a required property",
    'ServiceEntry with empty hosts': 'spec.hosts: ',
    'ServiceEntry port number as a string': 'spec.ports.0.number',
    'ServiceEntry port 70000': 'spec.ports.0.number',
    'ServiceEntry port without name': "spec.ports.0: 'name'",
    'ServiceEntry unknown resolution': 'spec.resolution',
    'ServiceEntry endpoint port as a string': 'spec.endpoints.0.ports.grpc',
    'WorkloadEntry weight as a string': 'spec.weight',
    'DestinationRule without host': "spec: 'host' is a required property",
    'DestinationRule subset without name': "spec.subsets.0: 'name'",
    'DestinationRule unknown TLS mode': 'spec.trafficPolicy.tls.mode',
    'DestinationRule maxConnections as a string': 'spec.trafficPolicy.connectionPool.tcp.maxConnections',
    'DestinationRule subset labels not strings': 'spec.subsets.0.labels.v',
    'PeerAuthentication unknown mode': 'spec.mtls.mode',
    'AuthorizationPolicy unknown action': 'spec.action',
    'AuthorizationPolicy principals as a string': 'spec.rules.0.from.0.source.principals',
    'AuthorizationPolicy port as an object': 'spec.rules.0.to.0.operation.ports.0',
    'AuthorizationPolicy condition without key': "spec.rules.0.when.0: 'key'",
    'HTTPRoute backend weight as a string': 'spec.rules.0.backendRefs.0.weight',
    'HTTPRoute backend port as a string': 'spec.rules.0.backendRefs.0.port',
    'HTTPRoute unknown path match type': 'spec.rules.0.matches.0.path.type',
    'HTTPRoute parentRef without name': "spec.parentRefs.0: 'name'",
    'HTTPRoute filter without type': "spec.rules.0.filters.0: 'type'",
    'HTTPRoute timeout with a fraction (Gateway API durations are whole)': 'spec.rules.0.timeouts.request',
    'GRPCRoute unknown method match type': 'spec.rules.0.matches.0.method.type',
    'GRPCRoute v1beta1 is not served': 'version not served',
    'VirtualService v2 is not served': 'version not served',
}

# Unusual but valid documents the CRDs must accept: Istio / Gateway API fields the control plane
# does not implement must reach it (it warns, or for authorization rules refuses), every served
# version, AuthorizationPolicy ports as numbers, `kubectl get -o yaml` output with status.
VALID: list[tuple[str, Doc]] = [
    ("VirtualService v1alpha3 with corsPolicy, tcp and a status",
     {**_doc("networking.istio.io/v1alpha3", "VirtualService", {
         "hosts": ["reviews"], "gateways": ["mesh"], "tcp": [{"route": [DEST]}],
         "http": [{"name": "r", "corsPolicy": {"allowOrigins": [{"exact": "*"}]},
                   "match": [{"uri": {"prefix": "/"}, "headers": {"end-user": {"exact": "jason"}},
                              "sourceLabels": {"app": "a"}, "port": 9080, "ignoreUriCase": True}],
                   "route": [{**DEST, "weight": 100}], "timeout": "1.5s",
                   "retries": {"attempts": 2, "perTryTimeout": "250ms", "retryOn": "5xx",
                               "retryRemoteLocalities": True},
                   "fault": {"delay": {"fixedDelay": "1m30s", "percentage": {"value": 12.5}},
                             "abort": {"grpcStatus": "UNAVAILABLE", "percentage": {"value": 1}}},
                   "mirror": {"host": "ratings"}, "mirrorPercentage": {"value": 5},
                   "headers": {"request": {"set": {"x": "1"}, "remove": ["y"]}},
                   "rewrite": {"uri": "/v2", "uriRegexRewrite": {"match": "a", "rewrite": "b"}}}]}),
      "status": {"conditions": [{"type": "Accepted", "status": "True"}], "observedGeneration": 3}}),
    ("VirtualService directResponse", _vs([{"directResponse": {"status": 404, "body": {"string": "no"}}}])),
    ("VirtualService timeout 0", _vs([{"route": [DEST], "timeout": "0"}])),
    ("DestinationRule v1beta1 with portLevelSettings and localityLbSetting",
     _doc("networking.istio.io/v1beta1", "DestinationRule", {
         "host": "reviews", "exportTo": ["*"],
         "trafficPolicy": {"loadBalancer": {"simple": "LEAST_REQUEST", "localityLbSetting": {"enabled": True}},
                           "portLevelSettings": [{"port": {"number": 9080}}],
                           "connectionPool": {"tcp": {"maxConnections": 10, "connectTimeout": "1s",
                                                      "tcpKeepalive": {"time": "7200s"}},
                                              "http": {"http2MaxRequests": 100, "idleTimeout": "1h"}},
                           "outlierDetection": {"consecutive5xxErrors": 3, "interval": "10s",
                                                "splitExternalLocalOriginErrors": True},
                           "retryBudget": {"percent": 25.5, "minRetryConcurrency": 3},
                           "tls": {"mode": "ISTIO_MUTUAL", "sni": "reviews"}},
         "subsets": [{"name": "v1", "labels": {"version": "v1"},
                      "trafficPolicy": {"loadBalancer": {"consistentHash": {
                          "httpCookie": {"name": "c", "ttl": "0s"}, "ringHash": {"minimumRingSize": 1024}}}}}]})),
    ("ServiceEntry v1alpha3 with addresses and subjectAltNames", _doc("networking.istio.io/v1alpha3", "ServiceEntry", {
        **SE_OK, "addresses": ["240.0.0.1"], "subjectAltNames": ["spiffe://x"], "location": "MESH_INTERNAL",
        "endpoints": [{"address": "10.0.0.1", "ports": {"grpc": 19090}, "weight": 2, "network": "n1"}]})),
    ("ServiceEntry with workloadSelector", _doc("networking.istio.io/v1", "ServiceEntry", {
        **SE_OK, "workloadSelector": {"labels": {"app": "reviews"}}})),
    ("WorkloadEntry v1beta1 with network", _doc("networking.istio.io/v1beta1", "WorkloadEntry", {
        "address": "10.0.0.7", "labels": {"app": "reviews"}, "network": "n1", "serviceAccount": "reviews",
        "locality": "r/z/s"})),
    ("PeerAuthentication v1beta1 with portLevelMtls", _doc("security.istio.io/v1beta1", "PeerAuthentication", {
        "selector": {"matchLabels": {"app": "ratings"}}, "mtls": {"mode": "PERMISSIVE"},
        "portLevelMtls": {"8080": {"mode": "DISABLE"}}})),
    ("AuthorizationPolicy with numeric and string ports and a condition",
     _doc("security.istio.io/v1", "AuthorizationPolicy", {
         "selector": {"matchLabels": {"app": "ratings"}}, "action": "DENY",
         "rules": [{"from": [{"source": {"notNamespaces": ["shop"], "ipBlocks": ["10.0.0.0/8"]}}],
                    "to": [{"operation": {"ports": [8080, "9090"], "methods": ["GET"], "paths": ["/x/*"]}}],
                    "when": [{"key": "request.headers[x-a]", "values": ["1"]}]}]})),
    ("AuthorizationPolicy CUSTOM with a provider (the control plane refuses it with a reason)",
     _doc("security.istio.io/v1", "AuthorizationPolicy", {"action": "CUSTOM", "provider": {"name": "ext"},
                                                           "rules": [{}]})),
    ("AuthorizationPolicy with an unknown rule field (must reach the control plane, which refuses it)",
     _doc("security.istio.io/v1", "AuthorizationPolicy", {"rules": [{"from": [{"source": {
         "principals": ["a"], "futureField": ["x"]}}]}]})),
    ("HTTPRoute v1beta1 with hostnames, sessionPersistence and every filter",
     _doc("gateway.networking.k8s.io/v1beta1", "HTTPRoute", {
         "parentRefs": [{"group": "", "kind": "Service", "name": "reviews", "port": 9080}],
         "hostnames": ["reviews"],
         "rules": [{"name": "r", "sessionPersistence": {"sessionName": "s"},
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}, "method": "GET",
                                 "headers": [{"name": "a", "value": "b"}],
                                 "queryParams": [{"type": "RegularExpression", "name": "q", "value": ".*"}]}],
                    "filters": [{"type": "RequestHeaderModifier",
                                 "requestHeaderModifier": {"set": [{"name": "a", "value": "b"}], "remove": ["c"]}},
                                {"type": "RequestMirror",
                                 "requestMirror": {"backendRef": {"name": "shadow", "port": 9080}, "percent": 10}},
                                {"type": "URLRewrite", "urlRewrite": {"hostname": "h", "path": {
                                    "type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"}}},
                                {"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}}],
                    "backendRefs": [{"name": "reviews", "port": 9080, "weight": 90},
                                    {"group": "networking.istio.io", "kind": "ServiceEntry", "name": "r2",
                                     "weight": 10, "filters": []}],
                    "timeouts": {"request": "10s", "backendRequest": "1s"}}]})),
    ("GRPCRoute with method and header matches", _doc("gateway.networking.k8s.io/v1", "GRPCRoute", {
        "parentRefs": [{"group": "", "kind": "Service", "name": "reviews", "port": 9080}],
        "rules": [{"matches": [{"method": {"type": "Exact", "service": "shop.Reviews", "method": "Get"},
                                "headers": [{"name": "x-canary", "value": "1"}]}],
                   "filters": [{"type": "ResponseHeaderModifier",
                                "responseHeaderModifier": {"add": [{"name": "x", "value": "y"}]}}],
                   "backendRefs": [{"name": "reviews-v2", "port": 9080, "weight": 1}]}]})),
]


# ----------------------------------------------------------------------------------------------
# 5. values.schema.json

BAD_VALUES: list[tuple[str, dict[str, Any], type[Exception]]] = [
    ('caMode "bogus"', {"caMode": "bogus"}, helm.HelmValuesError),
    ('replicaCount "two"', {"replicaCount": "two"}, helm.HelmValuesError),
    ("replicaCount 0", {"replicaCount": 0}, helm.HelmValuesError),
    ('logLevel "verbose"', {"logLevel": "verbose"}, helm.HelmValuesError),
    ('logJson "yes"', {"logJson": "yes"}, helm.HelmValuesError),
    ("an unknown top-level key", {"replicas": 3}, helm.HelmValuesError),
    ("an unknown image key", {"image": {"repository": "x", "pullPolicy": "Always", "digest": "sha256:0"}},
     helm.HelmValuesError),
    ("caMode plugged without ca.secretName", {"caMode": "plugged"}, helm.HelmValuesError),
    ('crds.istio.install "yes"', {"crds": {"istio": {"install": "yes"}}}, helm.HelmValuesError),
    ('image.pullPolicy "Sometimes"', {"image": {"pullPolicy": "Sometimes"}}, helm.HelmValuesError),
    ('ca.certTtl "1 day"', {"ca": {"certTtl": "1 day"}}, helm.HelmValuesError),
    ('injection.failurePolicy "Maybe"', {"injection": {"failurePolicy": "Maybe"}}, helm.HelmValuesError),
    ('injection.enabled "yes"', {"injection": {"enabled": "yes"}}, helm.HelmValuesError),
    ("an unknown injection key", {"injection": {"port": 15017}}, helm.HelmValuesError),
    ('injection.namespaceSelector operator "Like"',
     {"injection": {"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Like"}]}}},
     helm.HelmValuesError),
    ("injection.namespaceSelector with an unknown key", {"injection": {"namespaceSelector": {"names": ["a"]}}},
     helm.HelmValuesError),
    ('ca.tokenAudience ""', {"ca": {"tokenAudience": ""}}, helm.HelmValuesError),
    ('ca.secretName "Mesh_CA" (not an object name)', {"ca": {"secretName": "Mesh_CA"}}, helm.HelmValuesError),
    ('clusterDomain "Cluster.Local"', {"clusterDomain": "Cluster.Local"}, helm.HelmValuesError),
    ("autoscaling minReplicas above maxReplicas",
     {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}, helm.HelmRenderError),
]


# ----------------------------------------------------------------------------------------------


def main() -> int:
    print(f"check_chart: {CHART} (helm SDK {helm.helm_sdk_version()}, "
          f"helm-python-sdk {helm.__version__}, kubernetes-validate {kubernetes_validate.__version__}, "
          f"Kubernetes {KUBE_VERSION})")

    # 1. lint
    before = len(F.items)
    lint({}, "defaults")
    for label, values, _, _ in VALUE_SETS[1:]:
        lint(values, label)
    SUMMARY.append(f"lint (strict, v{KUBE_VERSION}): {1 + len(VALUE_SETS) - 1} value sets, "
                   f"{len(F.items) - before} problem(s)")

    # 2 + 3. render, per-set expectations, Kubernetes schemas
    rendered_total = 0
    validated: Counter[str] = Counter()
    webhook_configs_refused = 0
    before_render = len(F.items)
    default_docs: list[Doc] = []
    crds_checked: set[str] = set()
    for label, values, expected, extra in VALUE_SETS:
        try:
            docs, notes = render(values)
        except (helm.HelmError, yaml.YAMLError) as e:
            F.check(False, f"render [{label}]: {type(e).__name__}: {e}")
            continue
        if label == "defaults":
            default_docs = docs
        rendered_total += len(docs)
        expect_kinds(docs, expected, label)
        try:
            check_common(docs, notes, Expect(values))
            if extra:
                extra(docs)
        except (AssertionError, KeyError, IndexError, ValueError, TypeError) as e:
            F.check(False, f"render [{label}]: {type(e).__name__}: {e}")
        valid = kube_validate(docs, label)
        validated += valid
        hooks = [d for d in docs if d["kind"] == "MutatingWebhookConfiguration"]
        F.check(valid["MutatingWebhookConfiguration"] == expected.get("MutatingWebhookConfiguration", 0),
                f"kubernetes-validate [{label}]: {valid['MutatingWebhookConfiguration']} "
                f"MutatingWebhookConfiguration(s) valid, expected {expected.get('MutatingWebhookConfiguration', 0)}")
        if label == "defaults" and F.check(len(hooks) == 1, "defaults: no MutatingWebhookConfiguration to break"):
            webhook_configs_refused = check_webhook_validation_refuses(hooks[0])
        for crd in (d for d in docs if d["kind"] == "CustomResourceDefinition"):
            if crd["metadata"]["name"] not in crds_checked:
                crds_checked.add(crd["metadata"]["name"])
                check_crd_definition(crd)
    SUMMARY.append(f"render: {len(VALUE_SETS)} value sets, {rendered_total} manifests, "
                   f"{len(F.items) - before_render} problem(s) with kinds, arguments, RBAC, security")
    SUMMARY.append(f"kubernetes-validate {KUBE_VERSION} (strict): {sum(validated.values())}/{rendered_total} "
                   f"manifests valid ({validated['MutatingWebhookConfiguration']} MutatingWebhookConfigurations, "
                   f"{validated['CustomResourceDefinition']} CRDs); {webhook_configs_refused}/"
                   f"{len(BROKEN_WEBHOOK_CONFIGS)} broken webhook configurations refused; "
                   f"{len(crds_checked)} CRDs structural")

    # 4. CRD schemas against documents
    crds = [d for d in default_docs if d["kind"] == "CustomResourceDefinition"]
    if F.check(len(crds) == ALL_CRDS, f"default render has {len(crds)} CRDs, expected {ALL_CRDS}"):
        validators = CrdValidators(crds)
        accepted_by_kind: dict[str, int] = {}
        files_used: set[str] = set()
        for where, doc in repo_documents():
            if not validators.supports(doc):
                continue
            errs = validators.errors(doc)
            F.check(not errs, f"CRD schema refuses {where} ({doc.get('kind')}): {'; '.join(errs)}")
            if not errs:
                accepted_by_kind[doc["kind"]] = accepted_by_kind.get(doc["kind"], 0) + 1
                files_used.add(where.split(" ")[0])
        # The Kubernetes example: its own objects against the Kubernetes schemas.
        example_objects = 0
        for where, doc in repo_documents():
            if not where.startswith("examples/kubernetes/") or validators.supports(doc):
                continue
            try:
                kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
                example_objects += 1
            except kubernetes_validate.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                F.check(False, f"kubernetes-validate {where}: {path}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError as e:
                F.check(False, f"kubernetes-validate {where}: {e.message}")
        F.check(example_objects >= 5, f"only {example_objects} Kubernetes objects in examples/kubernetes/")
        SUMMARY.append(f"examples/kubernetes: {example_objects} Kubernetes objects valid (1.33)")
        for required in ("examples/demo/config/services.yaml", "examples/demo/config/reviews-route.yaml",
                         "examples/demo/steps/ratings-policy.yaml", "examples/kubernetes/shop.yaml"):
            F.check(required in files_used, f"no accepted document from {required}")
        n_repo = sum(accepted_by_kind.values())
        rejected = 0
        for why, doc in BROKEN:
            errs = validators.errors(doc)
            at = BROKEN_AT.get(why, "?")
            if not F.check(bool(errs), f"CRD schema accepts a broken document: {why}"):
                continue
            if F.check(any(e.startswith(at) for e in errs),
                       f"broken document {why!r} refused, but not at {at}: {'; '.join(errs)}"):
                rejected += 1
        accepted_valid = 0
        for why, doc in VALID:
            errs = validators.errors(doc)
            if F.check(not errs, f"CRD schema refuses a valid document: {why}: {'; '.join(errs)}"):
                accepted_valid += 1
        by_kind = ", ".join(f"{k} {n}" for k, n in sorted(accepted_by_kind.items()))
        SUMMARY.append(f"CRD schemas: {n_repo} repository documents accepted ({by_kind}) from "
                       f"{len(files_used)} files; {rejected}/{len(BROKEN)} broken documents rejected; "
                       f"{accepted_valid}/{len(VALID)} unusual valid documents accepted")

    # 5. values.schema.json
    refused = 0
    for why, values, error in BAD_VALUES:
        try:
            render(values)
            F.check(False, f"values: {why} was accepted")
        except error:
            refused += 1
        except helm.HelmError as e:
            F.check(False, f"values: {why}: expected {error.__name__}, got {type(e).__name__}: {e}")
    SUMMARY.append(f"values.schema.json: {refused}/{len(BAD_VALUES)} bad value sets refused")

    # 6. summary
    for line in SUMMARY:
        print(f"  {line}")
    if F.items:
        print(f"\ncheck_chart: FAILED, {len(F.items)} problem(s):", file=sys.stderr)
        for item in F.items:
            print(f"  - {item}", file=sys.stderr)
        return 1
    print("check_chart: OK")
    return 0


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chart", type=Path, default=CHART, help=f"chart directory (default: {CHART})")
    CHART = parser.parse_args().chart.resolve()
    try:
        sys.exit(main())
    except Exception:  # a bug here or a chart shape the checks did not expect
        import traceback

        traceback.print_exc()
        print("check_chart: FAILED with an unexpected error (above)", file=sys.stderr)
        sys.exit(1)
