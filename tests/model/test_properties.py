"""Property tests of the engine over generated policies (hypothesis).

* adding an allow rule (to a direction a policy already has, so isolation does not change) never turns an allowed flow
  into anything else -- allows are a union (docs/semantics.md [Allows are a union, denies win]);
* adding a deny rule never turns a dropped flow into anything else -- deny wins ([Allows are a union, denies win]) and
  more rules only isolate more ([Default deny]);
* a policy selecting no workload changes no decision at all.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from flowcheck.model.engine import Decision, Model
from flowcheck.model.flows import EntityEndpoint, Flow, HttpRequest, IcmpMessage, WorkloadEndpoint
from flowcheck.model.identity import Entity
from flowcheck.model.matrix import decide_matrix
from flowcheck.model.topology import Port
from flowcheck.verdict import Verdict
from tests.model.helpers import policies, topo, wl

PORTS = (Port("http", 8080, "TCP"), Port("dns", 53, "UDP"))
TOPOLOGY = topo(wl("a/web", {"app": "web", "tier": "front"}, PORTS, ip="10.244.0.2"),
                wl("a/api", {"app": "api", "tier": "back"}, PORTS),
                wl("b/web", {"app": "web", "tier": "front"}, (Port("http", 9090, "TCP"),)),
                wl("b/db", {"app": "db", "tier": "back"}, PORTS),
                namespaces={"a": {"team": "x"}, "b": {"team": "y"}})
EXTRA_FLOWS = [
    Flow.between("a/web", "a/api", port=8080, http=HttpRequest("GET", "/")),
    Flow.between("b/web", "a/api", port=8080, http=HttpRequest("POST", "/x")),
    Flow(WorkloadEndpoint("a/web"), EntityEndpoint(Entity.WORLD, "1.2.3.4"), "TCP", 443),
    Flow(WorkloadEndpoint("b/db"), EntityEndpoint(Entity.HOST), "TCP", 10250),
    Flow(EntityEndpoint(Entity.WORLD, "1.2.3.4"), WorkloadEndpoint("a/api"), "TCP", 8080),
    Flow(EntityEndpoint(Entity.REMOTE_NODE), WorkloadEndpoint("b/db"), "UDP", 53),
    Flow(WorkloadEndpoint("a/api"), WorkloadEndpoint("b/db"), "ICMP", None, icmp=IcmpMessage(8)),
]

labels = st.sampled_from([("app", ["web", "api", "db"]), ("tier", ["front", "back"])])


@st.composite
def selectors(draw: st.DrawFn) -> dict[str, Any]:
    key, values = draw(labels)
    kind = draw(st.sampled_from(["empty", "labels", "in", "notin", "exists"]))
    if kind == "empty":
        return {}
    if kind == "labels":
        return {"matchLabels": {key: draw(st.sampled_from(values))}}
    op = {"in": "In", "notin": "NotIn", "exists": "Exists"}[kind]
    expr: dict[str, Any] = {"key": key, "operator": op}
    if op != "Exists":
        expr["values"] = draw(st.lists(st.sampled_from(values), min_size=1, max_size=2, unique=True))
    return {"matchExpressions": [expr]}


port_specs = st.sampled_from([{"port": "8080", "protocol": "TCP"}, {"port": "53", "protocol": "UDP"},
                              {"port": "9090"}, {"port": "http", "protocol": "TCP"}, {"port": "0", "protocol": "TCP"}])


@st.composite
def cnp_rules(draw: st.DrawFn, direction: str) -> dict[str, Any]:
    prefix = "from" if direction == "ingress" else "to"
    rule: dict[str, Any] = {}
    peer = draw(st.sampled_from(["endpoints", "entities", "cidr", "none", "empty"]))
    if peer == "endpoints":
        rule[f"{prefix}Endpoints"] = draw(st.lists(selectors(), min_size=1, max_size=2))
    elif peer == "entities":
        rule[f"{prefix}Entities"] = draw(st.lists(st.sampled_from(["world", "cluster", "host", "remote-node", "all"]),
                                                  min_size=1, max_size=2, unique=True))
    elif peer == "cidr":
        rule[f"{prefix}CIDRSet"] = [{"cidr": "1.0.0.0/8", "except": draw(st.sampled_from([[], ["1.2.0.0/16"]]))}]
    elif peer == "empty":
        rule[f"{prefix}Endpoints"] = []
    if draw(st.booleans()) or peer == "none":
        port = draw(port_specs)
        entry: dict[str, Any] = {"ports": [port]}
        if port.get("protocol") == "TCP" and port["port"] != "0" and draw(st.booleans()):
            entry["rules"] = {"http": [{"method": draw(st.sampled_from(["GET", "POST", "GET|HEAD"]))}]}
        rule["toPorts"] = [entry]
    return rule


@st.composite
def knp_rules(draw: st.DrawFn, direction: str) -> dict[str, Any]:
    key = "from" if direction == "ingress" else "to"
    rule: dict[str, Any] = {}
    kind = draw(st.sampled_from(["pod", "ns", "both", "ipblock", "all"]))
    if kind == "pod":
        rule[key] = [{"podSelector": draw(selectors())}]
    elif kind == "ns":
        rule[key] = [{"namespaceSelector": draw(st.sampled_from([{}, {"matchLabels": {"team": "x"}}]))}]
    elif kind == "both":
        rule[key] = [{"podSelector": draw(selectors()), "namespaceSelector": {"matchLabels": {"team": "y"}}}]
    elif kind == "ipblock":
        rule[key] = [{"ipBlock": {"cidr": "10.244.0.0/16", "except": ["10.244.0.2/32"]}}]
    if draw(st.booleans()):
        rule["ports"] = [draw(st.sampled_from([{"port": 8080}, {"port": 53, "protocol": "UDP"}, {"port": "http"},
                                               {"port": 8000, "endPort": 9000}]))]
    return rule


@st.composite
def policy_docs(draw: st.DrawFn, index: int) -> dict[str, Any]:
    ns = draw(st.sampled_from(["a", "b"]))
    directions = draw(st.sampled_from([["ingress"], ["egress"], ["ingress", "egress"]]))
    meta = {"name": f"p{index}", "namespace": ns}
    if draw(st.booleans()):
        spec: dict[str, Any] = {"endpointSelector": draw(selectors())}
        for d in directions:
            spec[d] = draw(st.lists(cnp_rules(d), min_size=0, max_size=2)) or [{}]
        if draw(st.integers(0, 5)) == 0:
            spec["enableDefaultDeny"] = {directions[0]: False}
        return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": meta, "spec": spec}
    spec = {"podSelector": draw(selectors()), "policyTypes": [d.capitalize() for d in directions]}
    for d in directions:
        spec[d] = draw(st.lists(knp_rules(d), min_size=0, max_size=2))
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta, "spec": spec}


@st.composite
def policy_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 4))
    return [draw(policy_docs(i)) for i in range(count)]


def _yaml(docs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(docs)


def decisions(docs: list[dict[str, Any]]) -> dict[Flow, Decision]:
    m = Model(TOPOLOGY, policies(_yaml(docs), validate=False))
    out = {p.flow: p.decision for p in decide_matrix(m)}
    out.update({flow: m.decide(flow) for flow in EXTRA_FLOWS})
    return out


FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(policy_sets(), st.data())
def test_adding_an_allow_rule_never_takes_an_allowed_flow_away(docs: list[dict[str, Any]], data: st.DataObject) -> None:
    """docs/semantics.md [Allows are a union, denies win]: allows are a union; a rule added to a direction the policy
    already has cannot isolate anything new."""
    target = data.draw(st.integers(0, len(docs) - 1))
    doc = docs[target]
    spec = doc["spec"]
    direction = data.draw(st.sampled_from([d for d in ("ingress", "egress") if d in spec]))
    assume(doc["kind"] != "NetworkPolicy" or direction.capitalize() in spec["policyTypes"])
    new_rule = data.draw(cnp_rules(direction) if doc["kind"] != "NetworkPolicy" else knp_rules(direction))
    widened = copy.deepcopy(docs)
    widened[target]["spec"][direction] = [*spec[direction], new_rule]
    before, after = decisions(docs), decisions(widened)
    for flow, decision in before.items():
        if decision.verdict is Verdict.ALLOWED:
            assert after[flow].verdict is Verdict.ALLOWED, (flow, decision, after[flow], new_rule)


@FAST
@given(policy_sets(), st.data())
def test_adding_a_deny_rule_never_lets_a_dropped_flow_through(docs: list[dict[str, Any]], data: st.DataObject) -> None:
    """docs/semantics.md [Allows are a union, denies win]: deny rules take precedence; [Default deny]: a deny section
    also isolates."""
    direction = data.draw(st.sampled_from(["ingress", "egress"]))
    deny = data.draw(cnp_rules(direction))
    for entry in deny.get("toPorts", []):
        entry.pop("rules", None)  # deny rules have no L7 part (PortDenyRule has only ports)
    deny_doc = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
                "metadata": {"name": "deny", "namespace": data.draw(st.sampled_from(["a", "b"]))},
                "spec": {"endpointSelector": data.draw(selectors()), f"{direction}Deny": [deny]}}
    before, after = decisions(docs), decisions([*docs, deny_doc])
    for flow, decision in before.items():
        if decision.verdict is Verdict.DROPPED:
            assert after[flow].verdict is Verdict.DROPPED, (flow, decision, after[flow], deny_doc)


@FAST
@given(policy_sets(), st.data())
def test_a_policy_selecting_no_workload_changes_nothing(docs: list[dict[str, Any]], data: st.DataObject) -> None:
    """A policy applies only to the endpoints its selector selects (docs/semantics.md [Default deny], the
    'default' mode)."""
    extra = data.draw(policy_docs(99))
    if extra["kind"] == "NetworkPolicy":
        extra["spec"]["podSelector"] = {"matchLabels": {"app": "nothing-has-this"}}
    else:
        extra["spec"]["endpointSelector"] = {"matchLabels": {"app": "nothing-has-this"}}
    assert decisions(docs) == decisions([*docs, extra])
