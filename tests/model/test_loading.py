"""Loading topologies (docs/contracts.md [Topology file]), flows (docs/contracts.md [Flow file]) and policies: shapes,
notes and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowcheck.errors import PolicyError, TopologyError
from flowcheck.manifests.documents import read_documents
from flowcheck.manifests.validation import validate_paths
from flowcheck.model.flows import EntityEndpoint, Flow, FqdnEndpoint, HttpRequest, load_flows
from flowcheck.model.identity import Entity
from flowcheck.model.policies import load_policies, parse_policies
from flowcheck.model.policy import PolicyKind
from flowcheck.model.topology import Port, UnknownWorkloadError, load_topology
from tests.conftest import POLICIES_DIR, REPO_ROOT
from tests.model.helpers import cnp, model, topo, wl

TOPOLOGY_FILE = REPO_ROOT / "fixtures" / "topology.yaml"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_repository_topology_loads() -> None:
    """docs/contracts.md [Topology file]: namespaces with implied kubernetes.io/metadata.name; workloads as
    namespace/name."""
    t = load_topology(TOPOLOGY_FILE)
    assert t.namespaces["monitoring"]["kubernetes.io/metadata.name"] == "monitoring"
    coredns = t.workload("kube-system/coredns")
    assert coredns.ref == "kube-system/coredns"
    assert coredns.existing
    assert coredns.service_account == "coredns"
    assert coredns.ports == (Port("dns", 53, "UDP"), Port("dns-tcp", 53, "TCP"))
    assert t.workload("default/web").service_account == "default"


def test_unknown_workload_is_a_clear_error() -> None:
    t = load_topology(TOPOLOGY_FILE)
    with pytest.raises(UnknownWorkloadError, match=r"no workload 'default/nope'.*known: default/my-api"):
        t.workload("default/nope")
    with pytest.raises(KeyError):
        t.workload("default/nope")


@pytest.mark.parametrize(("text", "field", "message"), [
    ("namespaces: {a: {}}\nworkloads: [{name: x, namespace: b}]", "workloads[0].namespace", "not declared"),
    ("namespaces: {a: {}}\nworkloads: [{name: x, namespace: a, lables: {}}]", "workloads[0].lables", "unknown field"),
    ("namespaces: {a: {}}\nworkloads: [{name: x, namespace: a, ports: [{port: 70000}]}]", "workloads[0].ports[0].port",
     "from 1 to 65535"),
    ("namespaces: {a: {}}\nworkloads: [{name: x, namespace: a, labels: {v: 1}}]", "workloads[0].labels.v",
     "string value"),
    ("namespaces: {a: {}}\nworkloads: [{name: x, namespace: a, ip: nope}]", "workloads[0].ip", "not an IP"),
    ("namespaces: {a: {}}\nworkloads: [{name: x, namespace: a}, {name: x, namespace: a}]", "workloads[1]", "twice"),
    ("workloads: {}", "workloads", "expected a list"),
])
def test_bad_topology_names_file_and_field(tmp_path: Path, text: str, field: str, message: str) -> None:
    path = _write(tmp_path, "topology.yaml", text)
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    assert info.value.path == str(path)
    assert info.value.field == field
    assert message in info.value.message


def test_flows_load_in_order_and_round_trip_to_json(tmp_path: Path) -> None:
    """docs/contracts.md [Flow file]: workload refs, {entity, ip}, {fqdn, ip}, http, dns, icmp; to_json gives the same
    shape."""
    doc = [
        {"from": "tenant/client", "to": "default/my-api", "protocol": "TCP", "port": 8080,
         "http": {"method": "POST", "path": "/orders", "headers": {"X-Token": "42"}}},
        {"from": "default/web", "to": "kube-system/coredns", "protocol": "UDP", "port": 53,
         "dns": {"query": "api.example.com"}},
        {"from": "default/web", "to": {"entity": "world", "ip": "1.1.1.1"}, "protocol": "TCP", "port": 443},
        {"from": "default/web", "to": {"fqdn": "api.example.com", "ip": "203.0.113.7"}, "protocol": "TCP",
         "port": 443},
        {"from": "default/web", "to": "default/my-api", "protocol": "ICMP", "icmp": {"type": 8}},
    ]
    path = _write(tmp_path, "flows.json", json.dumps(doc))
    flows = load_flows(path, load_topology(TOPOLOGY_FILE))
    assert [f.to_json() for f in flows] == doc
    assert flows[0].http == HttpRequest("POST", "/orders", (("X-Token", "42"),))
    assert flows[2].destination == EntityEndpoint(Entity.WORLD, "1.1.1.1")
    assert flows[3].destination == FqdnEndpoint("api.example.com", "203.0.113.7")
    assert flows[4].port is None
    yaml_path = _write(tmp_path, "flows.yaml", "- {from: default/web, to: default/my-api, port: 8080}\n")
    assert load_flows(yaml_path) == [Flow.between("default/web", "default/my-api", port=8080)]


@pytest.mark.parametrize(("text", "field"), [
    ("- {from: default/web, to: default/my-api}", "[0].port"),
    ("- {from: default/web, to: default/my-api, protocol: ICMP, port: 8}", "[0].port"),
    ("- {from: default/web, to: {entity: cluster}, port: 1}", "[0].to.entity"),
    ("- {from: {fqdn: a.example.com}, to: default/web, port: 1}", "[0].from.fqdn"),
    ("- {from: default/ghost, to: default/web, port: 1}", "[0].from"),
    ("- {from: default/web, to: default/my-api, port: 8080, http: {verb: GET}}", "[0].http.verb"),
    ("{from: default/web}", ""),
])
def test_bad_flows_name_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    path = _write(tmp_path, "flows.yaml", text)
    with pytest.raises(TopologyError) as info:
        load_flows(path, load_topology(TOPOLOGY_FILE))
    assert info.value.path == str(path)
    assert info.value.field == field


def test_repository_policies_load_as_typed_objects() -> None:
    """The kustomization directory yields the four policies, typed."""
    ps = load_policies([POLICIES_DIR])
    kinds = sorted((p.ref.kind, p.ref.name) for p in ps.policies)
    assert kinds == [(PolicyKind.CILIUM, "allow-get-only"), (PolicyKind.NETWORK_POLICY, "allow-dns-egress"),
                     (PolicyKind.NETWORK_POLICY, "allow-monitoring-scrape"),
                     (PolicyKind.NETWORK_POLICY, "default-deny-ingress")]
    assert ps.notes == (f"kustomization {POLICIES_DIR}: read by flowcheck's built-in reader (resources and namespace "
                        "only), 4 objects (FLOWCHECK_KUSTOMIZE=builtin)",)


def test_documents_already_read_parse_to_the_same_policies_as_loading_the_paths() -> None:
    """``parse_policies`` serves a caller that read the documents itself (to apply them to a cluster)."""
    documents = list(read_documents([POLICIES_DIR]))
    assert parse_policies(documents) == load_policies([POLICIES_DIR])


def test_other_kinds_are_ignored_with_a_note_and_lists_are_read(tmp_path: Path) -> None:
    path = _write(tmp_path, "mixed.yaml", """\
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
---
apiVersion: v1
kind: List
items:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: deny, namespace: a}
    spec: {podSelector: {}}
  - apiVersion: cilium.io/v2
    kind: CiliumClusterwideNetworkPolicy
    metadata: {name: cw}
    spec: {endpointSelector: {}, ingress: [{}]}
""")
    ps = load_policies([path])
    assert [p.ref.describe() for p in ps.policies] == ["NetworkPolicy a/deny", "CiliumClusterwideNetworkPolicy cw"]
    assert ps.notes == (f"{path} (document 0): ConfigMap cfg ignored (not a network policy)",)


@pytest.mark.parametrize(("spec", "field", "message"), [
    ("endpointSelector: {}\ningress: [{fromEndpoints: [{}], fromEntities: [world]}]", "spec.ingress[0]",
     "combining fromEndpoints and fromEntities"),
    ("endpointSelector: {}\ningress: [{icmps: [{fields: [{type: 8}]}], toPorts: [{ports: [{port: '80'}]}]}]",
     "spec.ingress[0].icmps", "only be present without toPorts"),
    ("endpointSelector: {}\n"
     "ingress: [{toPorts: [{ports: [{port: '53', protocol: UDP}], rules: {dns: [{matchName: a}]}}]}]",
     "spec.ingress[0].toPorts[0].rules.dns", "not allowed on ingress"),
    ("endpointSelector: {}\negress: [{toPorts: [{ports: [{port: '0', protocol: TCP}], rules: {http: [{}]}}]}]",
     "spec.egress[0].toPorts[0].rules", "port is 0"),
    ("endpointSelector: {}\negress: [{toPorts: [{ports: [{port: '80', protocol: UDP}], rules: {http: [{}]}}]}]",
     "spec.egress[0].toPorts[0].rules", "only apply to TCP"),
    ("endpointSelector: {}\ningress: [{toPorts: [{ports: [{port: '80'}], rules: {http: [{path: '(['}]}}]}]",
     "spec.ingress[0].toPorts[0].rules.http[0].path", "invalid regular expression"),
    ("endpointSelector: {}\ningress: [{fromEntities: [everyone]}]", "spec.ingress[0].fromEntities[0]", ""),
    ("endpointSelector: {}", "spec", "at least one of"),
])
def test_policies_cilium_rejects_are_errors_naming_file_document_and_field(tmp_path: Path, spec: str, field: str,
                                                                           message: str) -> None:
    """What Cilium's sanitizer rejects ([Namespace scoping], [Ports and named ports], [L7 rules]) is bad input, not a
    verdict."""
    body = "\n".join("  " + line for line in spec.splitlines())
    path = _write(tmp_path, "p.yaml", "---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
                                      f"metadata: {{name: p, namespace: default}}\nspec:\n{body}\n")
    with pytest.raises(PolicyError) as info:
        load_policies([path])
    assert info.value.path == str(path)
    assert info.value.document == 0
    assert info.value.field == field
    assert message in info.value.message


def test_a_typo_in_a_policy_is_an_error_not_a_silent_change(tmp_path: Path) -> None:
    """A misspelt field (fromEndpoint) would otherwise be ignored and widen or narrow what is allowed."""
    path = _write(tmp_path, "p.yaml", "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
                                      "metadata: {name: p, namespace: default}\n"
                                      "spec: {endpointSelector: {}, ingress: [{fromEndpoint: [{}]}]}\n")
    with pytest.raises(PolicyError, match="fromEndpoint"):
        load_policies([path])


def test_flow_constructors_used_by_the_harness() -> None:
    """`Flow.between` builds a workload-to-workload flow; `HttpRequest.make` takes a header mapping."""
    request = HttpRequest.make("POST", "/orders", {"X-Token": "42"}, "api.example.com")
    flow = Flow.between("tenant/client", "default/my-api", port=8080, http=request)
    assert flow.to_json() == {"from": "tenant/client", "to": "default/my-api", "protocol": "TCP", "port": 8080,
                              "http": {"method": "POST", "path": "/orders", "headers": {"X-Token": "42"},
                                       "host": "api.example.com"}}
    assert request.header("x-token") == "42"
    icmp = Flow.between("default/web", "default/my-api", protocol="icmp")
    assert icmp.to_json() == {"from": "default/web", "to": "default/my-api", "protocol": "ICMP", "icmp": {"type": 8}}
    assert Flow.between("a/b", "c/d", port=53, protocol="UDP", dns="x.example.com").dns is not None


@pytest.mark.parametrize(("top", "ok"), [
    ("specs: []", True),  # present (an empty list): no rules, as validation has always said
    ("spec: null", False),  # a null field is a missing one (the API server prunes it)
    ("spec: null\nspecs: null", False),
    ("specs: [{endpointSelector: {}, ingress: [{}]}]\nspec: null", True),
])
def test_validation_and_the_parser_agree_on_a_missing_spec(tmp_path: Path, top: str, ok: bool) -> None:
    """[Policy objects and rules]: a Cilium policy carries its rules in `spec` and/or `specs`; neither is a missing
    spec. The schema check and the parser apply the same rule, so `validate` and `plan` cannot disagree."""
    path = _write(tmp_path, "p.yaml", "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
                                      f"metadata: {{name: p, namespace: default}}\n{top}\n")
    assert validate_paths([path]).ok is ok
    for validate in (True, False):  # the parser's own check, with and without schema validation first
        if ok:
            load_policies([path], validate=validate)
        else:
            with pytest.raises(PolicyError, match="needs `spec`") as info:
                load_policies([path], validate=validate)
            assert info.value.field == "spec"


def test_transport_text_is_the_same_in_flows_and_reasons() -> None:
    """One rendering of a flow's transport (`TCP/8080`, `ICMP type 0`) for descriptions and reasons."""
    tcp = Flow.between("default/web", "default/my-api", port=8080)
    icmp = Flow.between("default/web", "default/my-api", protocol="ICMP", icmp_type=0)
    assert (tcp.transport(), icmp.transport()) == ("TCP/8080", "ICMP type 0")
    assert icmp.describe() == "default/web -> default/my-api ICMP type 0"
    m = model(topo(wl("default/web"), wl("default/my-api")),
              cnp("p", "endpointSelector: {matchLabels: {app: my-api}}\ningress: [{}]"))
    assert "no rule allows ICMP type 0 from default/web" in m.decide(icmp).reasons[0]
