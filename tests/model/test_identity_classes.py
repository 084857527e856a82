"""Deciding once per identity (``flowcheck.model.identity_plan``) gives every flow exactly its own decision.

The property: for random topologies -- workloads sharing identities, but not always their ports,
named ports or IPs -- and random policies (every feature the decision corpus draws from: selectors,
entities, CIDRs and ipBlocks, named and ranged ports, deny rules, L7 rules, ...), under both
``--semantics``, three ways of deciding the plan agree on every flow, verdict, reasons (names
filled in) and grounds:

* per flow, each with a model of its own (nothing shared between flows: the reference);
* per workload pair (``decide_matrix``, which shares decisions between decision classes);
* per identity (``iter_identity_plan``), each path expanded to its workloads' flows.

And every flow of the plan is in exactly one path.

The draws are biased towards what splits an identity, which uniform draws rarely reach: the
workloads of an identity often serve one number under different names (or one name on different
numbers, ``SPLIT_PORTS``), and most examples add a policy whose ingress (and, for the
NetworkPolicy, egress) names a port by a name the topology serves, or an ipBlock holding one
workload's IP (``_splitting_docs``). Grouping destinations by identity alone instead of by
decision class fails this test within its examples.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowcheck.model.decision import Decision
from flowcheck.model.engine import SEMANTICS, Model
from flowcheck.model.flows import Flow
from flowcheck.model.identity_plan import IdentityPath, iter_identity_plan
from flowcheck.model.matrix import decide_matrix
from flowcheck.model.policy import PolicySet
from flowcheck.model.topology import Port, Topology, Workload
from flowcheck.verdict import Verdict
from tests.model.decision_corpus import _random_doc
from tests.model.helpers import policies

NAMESPACES = {"a": {"team": "x"}, "b": {"team": "y"}, "kube-system": {}}
# Same names on different numbers, and numbers under different names: what splits an identity's
# workloads into decision classes on ingress (and, under kubernetes semantics, egress).
PORT_POOL = (Port("http", 8080, "TCP"), Port("http", 8081, "TCP"), Port("web", 8080, "TCP"),
             Port("metrics", 9090, "TCP"), Port(None, 9090, "TCP"), Port("dns", 53, "UDP"),
             Port("dns-tcp", 53, "TCP"))
IPS = (None, "10.244.0.2", "10.244.1.7", "10.0.0.9", "192.168.3.4")

# One identity's workloads drawn from these serve 8080 as `http` or `web`, or `http` on 8080 or
# 8081: a rule naming `http` (or `web`) opens some of them and not the others.
SPLIT_PORTS = ((Port("http", 8080, "TCP"),), (Port("web", 8080, "TCP"),), (Port("http", 8081, "TCP"),),
               (Port("http", 8080, "TCP"), Port("metrics", 9090, "TCP")), (Port(None, 8080, "TCP"),))

identity_kinds = st.tuples(st.sampled_from(sorted(NAMESPACES)),
                           st.sampled_from([{"app": "web"}, {"app": "api", "tier": "back"}, {"k8s-app": "kube-dns"},
                                            {}]),
                           st.sampled_from(["default", "robot"]))


@st.composite
def topologies(draw: st.DrawFn) -> Topology:
    """Few identities, more workloads: most identities are shared, with ports and IPs drawn per workload."""
    kinds = draw(st.lists(identity_kinds, min_size=1, max_size=3))
    count = draw(st.integers(2, 6))
    workloads = []
    for i in range(count):
        namespace, labels, account = draw(st.sampled_from(kinds))
        ports = draw(st.one_of(
            st.sampled_from(SPLIT_PORTS),
            st.lists(st.sampled_from(PORT_POOL), min_size=1, max_size=2).map(lambda p: tuple(dict.fromkeys(p)))))
        workloads.append(Workload(namespace, f"w{i}", labels, ports, account, draw(st.sampled_from(IPS))))
    return Topology.build(NAMESPACES, workloads)


def _policies(rng: random.Random, topology: Topology) -> PolicySet:
    """The decision corpus's random policies, most often with a policy that splits an identity added."""
    docs = [_random_doc(rng, topology, k) for k in range(rng.randint(1, 4))]
    if rng.random() < 0.8:
        docs += _splitting_docs(rng, topology, len(docs))
    return policies(yaml.safe_dump_all(docs), validate=False)


def _splitting_docs(rng: random.Random, topology: Topology, k: int) -> list[dict[str, Any]]:
    """A policy selecting one workload's identity that opens a port by name -- or, for a NetworkPolicy, a peer
    by an ipBlock of one workload's IP -- so that members of an identity are decided differently."""
    target = rng.choice(topology.workloads)
    names = sorted({p.name for w in topology.workloads for p in w.ports if p.name}) or ["http"]
    name = rng.choice(names)
    with_ip = [w.ip for w in topology.workloads if w.ip]
    if rng.random() < 0.5:
        source: dict[str, list[Any]] = rng.choice(({"fromEndpoints": [{}]}, {"fromEntities": ["cluster"]}))
        spec: dict[str, Any] = {"endpointSelector": {"matchLabels": dict(target.labels)},
                                "ingress": [{**source, "toPorts": [{"ports": [{"port": name, "protocol": "TCP"}]}]}]}
        return [{"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
                 "metadata": {"name": f"p{k}", "namespace": target.namespace}, "spec": spec}]
    direction = rng.choice(("ingress", "egress"))
    peer: dict[str, Any] = ({"ipBlock": {"cidr": f"{rng.choice(with_ip)}/32"}} if with_ip and rng.random() < 0.4
                            else {"namespaceSelector": {}})
    rule = {"from" if direction == "ingress" else "to": [peer], "ports": [{"port": name, "protocol": "TCP"}]}
    return [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
             "metadata": {"name": f"p{k}", "namespace": target.namespace},
             "spec": {"podSelector": {"matchLabels": dict(target.labels)}, "policyTypes": [direction.capitalize()],
                      direction: [rule]}}]


def _reference(topology: Topology, policy_set: PolicySet, semantics: str, flow: Flow) -> Decision:
    """One flow decided by a model that has decided nothing else."""
    return Model(topology, policy_set, semantics).decide(flow)


def _expanded(paths: list[IdentityPath]) -> dict[Flow, Decision]:
    out: dict[Flow, Decision] = {}
    for path in paths:
        flows = list(path.flows())
        assert len(flows) == path.flow_count
        for planned in flows:
            assert planned.flow not in out, f"{planned.flow.describe()} is in two paths"
            out[planned.flow] = planned.decision
    return out


def _same(a: Decision, b: Decision) -> bool:
    return (a.verdict, a.reasons, a.grounds) == (b.verdict, b.reasons, b.grounds)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topologies(), st.integers(0, 2**32 - 1))
def test_per_identity_per_workload_and_per_flow_decisions_are_identical(topology: Topology, seed: int) -> None:
    policy_set = _policies(random.Random(seed), topology)
    for semantics in SEMANTICS:
        model = Model(topology, policy_set, semantics)
        per_workload = {p.flow: p.decision for p in decide_matrix(model)}
        paths = list(iter_identity_plan(model))
        per_identity = _expanded(paths)
        assert set(per_identity) == set(per_workload)
        for flow, decision in per_workload.items():
            reference = _reference(topology, policy_set, semantics, flow)
            assert _same(decision, reference), (semantics, flow.describe(), decision, reference)
            assert _same(per_identity[flow], reference), (semantics, flow.describe(), per_identity[flow], reference)
        for path in paths:
            table = model.identities
            assert all(table.of_workload[_index(topology, ref)] == path.source for ref in path.sources)
            assert all(table.of_workload[_index(topology, ref)] == path.destination for ref in path.destinations)
            assert path.source_name == table.names[path.source]


def _index(topology: Topology, ref: str) -> int:
    return [w.ref for w in topology.workloads].index(ref)


# --- examples ---------------------------------------------------------------------------------------

SAME_IDENTITY = Topology.build({"a": {}}, [
    Workload("a", "web-1", {"app": "web"}, (Port("http", 8080, "TCP"),)),
    Workload("a", "web-2", {"app": "web"}, (Port("http", 8080, "TCP"),)),
    Workload("a", "web-3", {"app": "web"}, (Port("www", 8080, "TCP"),)),  # same identity, another port name
    Workload("a", "client", {"app": "client"}, ()),
])
INGRESS_BY_NAME = """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web-in, namespace: a}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client}}]
      toPorts: [{ports: [{port: http}]}]
"""


def _paths(text: str, topology: Topology = SAME_IDENTITY) -> list[IdentityPath]:
    return list(iter_identity_plan(Model(topology, policies(text, validate=False))))


def test_one_path_per_identity_pair_when_members_are_decided_alike() -> None:
    paths = _paths(INGRESS_BY_NAME.replace("port: http", "port: '8080'"))
    web, client = "a/{app=web}", "a/{app=client}"
    assert [(p.source_name, p.destination_name, p.port, p.own, p.decision.verdict) for p in paths] == [
        (web, web, 8080, False, Verdict.DROPPED), (web, web, 8080, True, Verdict.ALLOWED),
        (client, web, 8080, False, Verdict.ALLOWED)]
    client_path = paths[2]
    assert client_path.sources == ("a/client",)
    assert client_path.destinations == ("a/web-1", "a/web-2", "a/web-3")
    assert client_path.flow_count == 3
    assert client_path.decision.reasons == (
        "CiliumNetworkPolicy a/web-in ingress rule 0: allows TCP/8080 from a/{app=client}",
        "a/{app=client} egress: no policy selects it, egress is unrestricted")
    assert paths[0].flow_count == 6  # web-1, web-2, web-3 to each other, not to themselves
    assert paths[1].sources == paths[1].destinations == ("a/web-1", "a/web-2", "a/web-3")


def test_a_named_port_splits_an_identity_by_what_its_members_serve() -> None:
    """web-3 shares web-1's identity but calls 8080 `www`: the rule opening `http` does not open it."""
    paths = [p for p in _paths(INGRESS_BY_NAME) if p.source_name == "a/{app=client}"]
    assert [(p.destinations, p.decision.verdict) for p in paths] == [
        (("a/web-1", "a/web-2"), Verdict.ALLOWED), (("a/web-3",), Verdict.DROPPED)]


def test_identities_are_named_by_namespace_labels_and_a_service_account_other_than_default() -> None:
    topology = Topology.build({"a": {}}, [Workload("a", "x", {"tier": "back", "app": "api"}, (), "robot"),
                                          Workload("a", "y", {}, ())])
    assert Model(topology, PolicySet(())).identities.names == ("a/{app=api,tier=back} (serviceaccount robot)",
                                                               "a/{}")


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_every_flow_of_the_plan_is_in_one_path(semantics: str) -> None:
    model = Model(SAME_IDENTITY, policies(INGRESS_BY_NAME, validate=False), semantics)
    counted: Counter[Any] = Counter(p.flow for path in iter_identity_plan(model) for p in path.flows())
    assert counted == Counter(p.flow for p in decide_matrix(model))


IP_SPLIT = Topology.build({"a": {}}, [
    Workload("a", "web-1", {"app": "web"}, (Port("http", 8080, "TCP"),), ip="10.244.0.2"),
    Workload("a", "web-2", {"app": "web"}, (Port("http", 8080, "TCP"),), ip="10.244.1.7"),  # same identity
    Workload("a", "client-1", {"app": "client"}, (Port("http", 8080, "TCP"),), ip="10.244.0.9"),
    Workload("a", "client-2", {"app": "client"}, (Port("http", 8080, "TCP"),), ip="10.244.1.3"),
])
EGRESS_TO_ONE_IP = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client-out, namespace: a}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress:
    - to: [{ipBlock: {cidr: 10.244.0.2/32}}]
      ports: [{port: 8080}]
"""
INGRESS_FROM_ONE_IP = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-in, namespace: a}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress:
    - from: [{ipBlock: {cidr: 10.244.0.9/32}}]
"""


def _client_to_web(text: str, semantics: str) -> list[tuple[tuple[str, ...], tuple[str, ...], Verdict]]:
    model = Model(IP_SPLIT, policies(text, validate=False), semantics)
    paths = [p for p in iter_identity_plan(model) if (p.source_name, p.destination_name) == ("a/{app=client}",
                                                                                            "a/{app=web}")]
    assert Counter(p.flow for path in paths for p in path.flows()) == Counter(
        p.flow for p in decide_matrix(model) if p.flow.describe().startswith("a/client-") and " a/web-" in
        p.flow.describe())
    return [(p.sources, p.destinations, p.decision.verdict) for p in paths]


def test_an_ip_block_splits_an_identity_by_its_members_ips_under_kubernetes_semantics() -> None:
    """An ipBlock holding web-1's IP selects web-1 and not web-2 (same identity) under ``--semantics kubernetes``,
    as a destination (egress) and as a source (ingress); Cilium's CIDR rules select no pod, so there the identity
    stays whole."""
    clients, web_1, web_2 = ("a/client-1", "a/client-2"), ("a/web-1",), ("a/web-2",)
    assert _client_to_web(EGRESS_TO_ONE_IP, "kubernetes") == [
        (clients, web_1, Verdict.ALLOWED), (clients, web_2, Verdict.DROPPED)]
    assert _client_to_web(INGRESS_FROM_ONE_IP, "kubernetes") == [
        (("a/client-1",), ("a/web-1", "a/web-2"), Verdict.ALLOWED),
        (("a/client-2",), ("a/web-1", "a/web-2"), Verdict.DROPPED)]
    assert _client_to_web(EGRESS_TO_ONE_IP, "cilium") == [(clients, ("a/web-1", "a/web-2"), Verdict.DROPPED)]
