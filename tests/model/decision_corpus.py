"""A fixed corpus of model decisions: what ``test_decisions_unchanged`` hashes.

Three sources, every one deterministic:

* this repository's scenario (``manifests/network-policies`` against ``fixtures/topology.yaml``);
* the scenario topologies the model tests build (``tests/model/test_*.py``), with the policy texts
  those modules share and with seeded random policies drawn from each topology's own labels,
  namespaces and ports;
* seeded random topologies with seeded random policies.

The random policies use every feature the engine reasons about -- endpoint selectors (with the
namespace keys, namespace-label keys and ``reserved:`` keys that change scoping), entities, CIDRs
with exceptions, ``toFQDNs``, HTTP and DNS rules, named and ranged ports, ICMP, deny sections,
``enableDefaultDeny: false``, NetworkPolicy ``namespaceSelector``/``ipBlock``, host policies and
the features the model answers ``unknown`` for -- so a refactor that changes any branch's outcome
changes the hash.

Every model is asked about its whole plan (the fast path) and, through ``Model.decide``, about L7
variants (HTTP requests, DNS queries), ICMP, and flows to and from entities and FQDN destinations,
under both ``--semantics``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from flowcheck.model.engine import SEMANTICS, Decision, Model
from flowcheck.model.explain import explain
from flowcheck.model.flows import (
    DnsQuery,
    Endpoint,
    EntityEndpoint,
    Flow,
    FqdnEndpoint,
    HttpRequest,
    IcmpMessage,
    WorkloadEndpoint,
)
from flowcheck.model.identity import Entity
from flowcheck.model.matrix import decide_matrix
from flowcheck.model.policies import load_policies
from flowcheck.model.policy import PolicySet
from flowcheck.model.topology import Port, Topology, Workload, load_topology
from tests.conftest import POLICIES_DIR, REPO_ROOT
from tests.model import (
    test_cilium_peers,
    test_cilium_ports_l7,
    test_cilium_scoping,
    test_knp,
    test_properties,
    test_unsupported,
)
from tests.model.helpers import cnp, policies

SEED = 15
RANDOM_SETS_PER_TOPOLOGY = 6
RANDOM_TOPOLOGIES = 24

NAMES = ("api.example.com", "x.example.com", "a.b.example.com", "api.github.com", "cilium.io",
         "kubernetes.default.svc.cluster.local")
WORLD_IPS = ("1.1.1.1", "1.2.3.4", "10.1.2.3", "203.0.113.7", "2001:db8::1")
HTTP_REQUESTS = (HttpRequest("GET", "/"), HttpRequest("POST", "/orders"),
                 HttpRequest("GET", "/v1/items", (("X-Token", "42"),), "api.local"),
                 HttpRequest("HEAD", "/public", (("X-A", "1"), ("X-B", "b"))),
                 HttpRequest("GET", "/v1/x", (("x-token", "7"), ("X-B", "a")), "other.local"))
ENTITIES = (Entity.WORLD, Entity.HOST, Entity.REMOTE_NODE, Entity.KUBE_APISERVER, Entity.HEALTH, Entity.INGRESS)


@dataclass(frozen=True)
class CorpusDecision:
    """One decision of the corpus; ``note`` is the ``--semantics`` note of an explained flow (None in a plan)."""

    label: str
    semantics: str
    flow: Flow
    decision: Decision
    note: str | None = None

    def line(self) -> str:
        """Source label, semantics, flow, verdict and every reason in order (and the note): what is hashed."""
        note = () if self.note is None else (self.note,)
        return "\t".join((self.label, self.semantics, repr(self.flow.to_json()), self.decision.verdict.value,
                          *self.decision.reasons, *note))


def corpus_lines() -> Iterator[str]:
    """One line per decision (``CorpusDecision.line``)."""
    return (item.line() for item in corpus_decisions())


def corpus_decisions() -> Iterator[CorpusDecision]:
    yield from _scenario_decisions()
    rng = random.Random(SEED)
    for label, topology, shared in _scenario_topologies():
        for text_index, text in enumerate(shared):
            yield from _model_decisions(f"{label}/shared{text_index}", topology, policies(text, validate=False), rng)
        for k in range(RANDOM_SETS_PER_TOPOLOGY):
            yield from _model_decisions(f"{label}/random{k}", topology, _random_policies(rng, topology), rng)
    for k in range(RANDOM_TOPOLOGIES):
        topology = _random_topology(rng)
        yield from _model_decisions(f"random-topology{k}", topology, _random_policies(rng, topology), rng)


# --- the repository's scenario --------------------------------------------------------------------

def _scenario_decisions() -> Iterator[CorpusDecision]:
    topology = load_topology(REPO_ROOT / "fixtures" / "topology.yaml")
    policy_set = load_policies([POLICIES_DIR])
    for semantics in SEMANTICS:
        model = Model(topology, policy_set, semantics)
        for planned in decide_matrix(model):
            yield CorpusDecision("repo/plan", semantics, planned.flow, planned.decision)
        flows = list(_extra_flows(random.Random(SEED), topology, policy_set))
        for item in explain(model, flows):
            yield CorpusDecision("repo/explain", semantics, item.flow, item.decision, item.semantics_note or "")


# --- one model --------------------------------------------------------------------------------

def _model_decisions(label: str, topology: Topology, policy_set: PolicySet,
                     rng: random.Random) -> Iterator[CorpusDecision]:
    flows = list(_extra_flows(rng, topology, policy_set))
    for semantics in SEMANTICS:
        model = Model(topology, policy_set, semantics)
        for planned in decide_matrix(model):
            yield CorpusDecision(label, semantics, planned.flow, planned.decision)
        for item in explain(model, flows):
            yield CorpusDecision(label, semantics, item.flow, item.decision, item.semantics_note or "")


def _extra_flows(rng: random.Random, topology: Topology, policy_set: PolicySet) -> Iterator[Flow]:
    """L7, ICMP, entity and FQDN flows around every workload (the plan covers plain L3/L4 pairs)."""
    workloads = [WorkloadEndpoint(w.ref) for w in topology.workloads]
    served = [(WorkloadEndpoint(w.ref), p) for w in topology.workloads for p in w.ports]
    names = list(NAMES) + _fqdn_names(policy_set)
    for src in workloads:
        for dst, port in served:
            if port.protocol == "TCP":
                yield Flow(src, dst, "TCP", port.port, http=rng.choice(HTTP_REQUESTS[:2]))
                yield Flow(src, dst, "TCP", port.port, http=rng.choice(HTTP_REQUESTS[2:]))
            if port.port == 53:
                yield Flow(src, dst, port.protocol, 53, dns=DnsQuery(rng.choice(names)))
        for dst in rng.sample(workloads, min(2, len(workloads))):
            yield Flow(src, dst, "ICMP", None, icmp=IcmpMessage(rng.choice((8, 0, 3))))
        for entity in ENTITIES:
            ip = rng.choice((None, *WORLD_IPS)) if entity is Entity.WORLD else None
            other: Endpoint = EntityEndpoint(entity, ip)
            port_number = rng.choice((443, 80, 8080, 53, 9090))
            yield Flow(src, other, "TCP", port_number)
            if served:
                dst, port = rng.choice(served)
                yield Flow(other, dst, port.protocol, port.port)
                yield Flow(EntityEndpoint(entity, ip), src, "TCP", port_number)
        yield Flow(EntityEndpoint(Entity.WORLD, rng.choice(WORLD_IPS)), EntityEndpoint(rng.choice(ENTITIES)), "TCP",
                   443)
        for name in names:
            fqdn = FqdnEndpoint(name, rng.choice(WORLD_IPS[:4]))
            yield Flow(src, fqdn, "TCP", rng.choice((443, 80)))
        yield Flow(src, FqdnEndpoint(rng.choice(names)), "TCP", 443, http=rng.choice(HTTP_REQUESTS))


def _fqdn_names(policy_set: PolicySet) -> list[str]:
    """Names the policies' toFQDNs matchName peers give, so FQDN flows meet the rules."""
    found: list[str] = []
    for spec in policy_set.specs:
        for rule in spec.rules:
            for peer in rule.peers:
                name = getattr(peer, "name", None)
                if isinstance(name, str) and name not in found and name not in NAMES:
                    found.append(name)
    return found


# --- scenario topologies of the model tests --------------------------------------------------

_TO_KUBE_DNS = "toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}}]"


def _to_kube_dns(protocol: str, extra: str) -> str:
    """An egress rule of ``default/app`` towards kube-dns on port 53 with ``extra`` in its toPorts entry."""
    return f"  - {_TO_KUBE_DNS}\n    toPorts: [{{ports: [{{port: '53', protocol: {protocol}}}], {extra}}}]\n"


def _app_ingress_http(rules: str) -> str:
    return cnp("edge-in", "endpointSelector: {matchLabels: {app: app}}\ningress:\n"
                          f"  - toPorts: [{{ports: [{{port: '8080', protocol: TCP}}], rules: {{http: [{rules}]}}}}]")


# Corners random policies rarely reach: L7 kinds meeting on one port, the wrong L7 kind for the flow,
# and every kind of HTTP header condition.
_EDGES = (
    *(cnp("edge", f"endpointSelector: {{matchLabels: {{app: app}}}}\negress:\n{rules}") for rules in (
        _to_kube_dns("TCP", "rules: {http: [{method: GET}]}")
        + _to_kube_dns("ANY", "rules: {dns: [{matchPattern: '*'}]}"),
        _to_kube_dns("TCP", "rules: {http: [{host: api.local}]}"),
        _to_kube_dns("TCP", "rules: {kafka: [{topic: a}]}"),
        _to_kube_dns("TCP", "serverNames: [a.example.com], rules: {http: [{method: GET}]}"),
    )),
    *(_app_ingress_http(rules) for rules in (
        "{headers: ['X-Token: 42']}, {headers: [X-A]}",
        "{headerMatches: [{name: X-B, value: b}]}",
        "{headerMatches: [{name: X-S, secret: {name: s}}]}, {method: POST}",
        "{host: 'api\\.local', method: GET}",
        "{headerMatches: [{name: X-C, value: c, mismatch: LOG}], path: '/v1/.*'}",
    )),
    *(cnp("edge-in", f"endpointSelector: {{matchLabels: {{app: app}}}}\n{rules}") for rules in (
        "ingressDeny: [{fromEntities: [host]}]\ningress: [{fromEntities: [all]}]",
        "ingress: [{fromEntities: [all], toPorts: [{ports: [{port: '8080', protocol: TCP}], rules: {}}]}]",
        "ingress: [{fromEntities: [all], toPorts: [{}]}]",
        "ingress: [{fromEntities: [all], authentication: {mode: required}}, {fromEntities: [all]}]",
    )),
)


def _scenario_topologies() -> Iterator[tuple[str, Topology, tuple[str, ...]]]:
    egress = test_cilium_peers.egress
    peers_shared = (
        egress(test_cilium_peers.DNS_RULE + test_cilium_peers.FQDN_RULE),
        egress(test_cilium_peers.PLAIN_DNS_RULE + test_cilium_peers.FQDN_RULE),
        egress(test_cilium_peers.PLAIN_DNS_RULE + test_cilium_peers.FQDN_RULE)
        + cnp("resolver", f"endpointSelector: {{matchLabels: {{app: peer}}}}\negress:\n{test_cilium_peers.DNS_RULE}"),
    )
    yield "peers", test_cilium_peers.TOPOLOGY, (*peers_shared, *_EDGES)
    yield "mediabot", test_cilium_peers.MEDIABOT, (test_cilium_peers.DNS_PATTERN_YAML,)
    yield "ports-l7", test_cilium_ports_l7.TOPOLOGY, ()
    yield "web-ab", test_cilium_ports_l7.WEB_AB, (test_cilium_ports_l7.EGRESS_HTTP_BY_NAME,)
    yield "scoping", test_cilium_scoping.TOPOLOGY, ()
    yield "knp", test_knp.TOPOLOGY, ()
    yield "properties", test_properties.TOPOLOGY, ()
    yield "unsupported", test_unsupported.TOPOLOGY, ()


# --- random topologies ----------------------------------------------------------------------------

_PORT_POOL = (Port("http", 8080, "TCP"), Port("http", 8081, "TCP"), Port("metrics", 9090, "TCP"),
              Port("dns", 53, "UDP"), Port("dns-tcp", 53, "TCP"), Port(None, 443, "TCP"), Port("grpc", 9000, "TCP"),
              Port("syslog", 514, "UDP"), Port("sctp", 3868, "SCTP"), Port("web", 9090, "TCP"))


def _random_topology(rng: random.Random) -> Topology:
    namespaces = {"default": {}, "kube-system": {}, "a": {"team": "x", "env": "prod"}, "b": {"team": "y"}}
    workloads: list[Workload] = []
    count = rng.randint(3, 7)
    for i in range(count):
        namespace = rng.choice(sorted(namespaces))
        labels = {"app": rng.choice(("web", "api", "db", "kube-dns")), "tier": rng.choice(("front", "back"))}
        if rng.random() < 0.3:
            labels = {"k8s-app": "kube-dns"}
        ports = tuple(dict.fromkeys(rng.sample(_PORT_POOL, rng.randint(0, 3))))
        ip = rng.choice((None, f"10.244.{i}.{i + 2}"))
        workloads.append(Workload(namespace, f"w{i}", labels, ports, rng.choice(("default", "robot")), ip))
    if rng.random() < 0.6:
        workloads.append(Workload("kube-system", "coredns", {"k8s-app": "kube-dns"},
                                  (Port("dns", 53, "UDP"), Port("dns-tcp", 53, "TCP"))))
    return Topology.build(namespaces, workloads)


# --- random policies ------------------------------------------------------------------------------

def _random_policies(rng: random.Random, topology: Topology) -> PolicySet:
    docs = [_random_doc(rng, topology, k) for k in range(rng.randint(1, 5))]
    return policies(yaml.safe_dump_all(docs), validate=False)


def _label_pairs(topology: Topology) -> list[tuple[str, str]]:
    pairs = sorted({(k, v) for w in topology.workloads for k, v in w.labels.items()})
    return [*pairs, ("app", "nothing-has-this")]


def _selector(rng: random.Random, topology: Topology, *, peer: bool) -> dict[str, Any]:
    pairs = _label_pairs(topology)
    kind = rng.choice(("empty", "labels", "labels", "in", "notin", "exists", "doesnotexist", "ns", "nslabel",
                       "reserved") if peer else ("empty", "labels", "labels", "in", "notin", "exists"))
    key, value = rng.choice(pairs)
    if kind == "empty":
        return {}
    if kind == "labels":
        return {"matchLabels": {key: value}}
    if kind == "ns":
        return {"matchLabels": {"k8s:io.kubernetes.pod.namespace": rng.choice(sorted(topology.namespaces)), key: value}}
    if kind == "nslabel":
        return {"matchLabels": {"io.cilium.k8s.namespace.labels.team": rng.choice(("x", "y"))}}
    if kind == "reserved":
        return {"matchLabels": {f"reserved:{rng.choice(('host', 'world', 'remote-node'))}": ""}}
    op = {"in": "In", "notin": "NotIn", "exists": "Exists", "doesnotexist": "DoesNotExist"}[kind]
    expr: dict[str, Any] = {"key": key, "operator": op}
    if op in ("In", "NotIn"):
        expr["values"] = sorted({value, rng.choice(pairs)[1]})
    return {"matchExpressions": [expr]}


def _served(topology: Topology) -> list[Port]:
    return sorted({p for w in topology.workloads for p in w.ports}, key=lambda p: (p.port, p.protocol, p.name or ""))


def _cilium_port(rng: random.Random, topology: Topology) -> dict[str, Any]:
    served = _served(topology)
    kind = rng.choice(("number", "number", "name", "any", "range", "zero"))
    if kind == "name" and any(p.name for p in served):
        port = rng.choice([p for p in served if p.name])
        return {"port": port.name, "protocol": rng.choice((port.protocol, "ANY"))}
    if kind == "range":
        return {"port": "8000", "endPort": 9100, "protocol": "TCP"}
    if kind == "zero":
        return {"port": "0", "protocol": rng.choice(("TCP", "UDP", "ANY"))}
    if served and kind != "any":
        port = rng.choice(served)
        return {"port": str(port.port), "protocol": port.protocol}
    return {"port": str(rng.choice((8080, 443, 53, 9090))), "protocol": "ANY"}


def _http_rules(rng: random.Random) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for _ in range(rng.randint(1, 2)):
        rule: dict[str, Any] = {}
        for field, choices in (("method", ("GET", "POST", "GET|HEAD", "[A-Z]+")),
                               ("path", ("/", "/v1/.*", "/orders", "/public")),
                               ("host", ("api\\.local", ".*"))):
            if rng.random() < 0.5:
                rule[field] = rng.choice(choices)
        if rng.random() < 0.25:
            rule["headers"] = [rng.choice(("X-Token: 42", "X-A", "X-Token: 7"))]
        if rng.random() < 0.2:
            rule["headerMatches"] = [rng.choice(({"name": "X-B", "value": "b"},
                                                 {"name": "X-B", "secret": {"name": "s"}},
                                                 {"name": "X-C", "value": "c", "mismatch": "LOG"}))]
        rules.append(rule)
    return rules


def _dns_rules(rng: random.Random) -> list[dict[str, str]]:
    choices = ({"matchPattern": "*"}, {"matchPattern": "*.example.com"}, {"matchName": "api.example.com"},
               {"matchPattern": "**.example.com"}, {"matchName": "cilium.io"})
    return rng.sample(choices, rng.randint(1, 2))


def _cilium_rule(rng: random.Random, topology: Topology, direction: str, deny: bool) -> dict[str, Any]:
    prefix = "from" if direction == "ingress" else "to"
    rule: dict[str, Any] = {}
    kinds = ["endpoints", "endpoints", "entities", "cidr", "cidrset", "none", "empty", "unsupported"]
    if direction == "egress" and not deny:
        kinds += ["fqdn", "fqdn", "dns"]
    kind = rng.choice(kinds)
    if kind == "endpoints":
        rule[f"{prefix}Endpoints"] = [_selector(rng, topology, peer=True) for _ in range(rng.randint(1, 2))]
    elif kind == "entities":
        rule[f"{prefix}Entities"] = rng.sample(("world", "cluster", "host", "remote-node", "all", "kube-apiserver",
                                                "none", "health"), rng.randint(1, 2))
    elif kind == "cidr":
        rule[f"{prefix}CIDR"] = [rng.choice(("1.0.0.0/8", "10.0.0.0/8", "0.0.0.0/0", "203.0.113.0/24"))]
    elif kind == "cidrset":
        rule[f"{prefix}CIDRSet"] = [{"cidr": rng.choice(("1.0.0.0/8", "0.0.0.0/0", "10.244.0.0/16")),
                                     "except": rng.choice(([], ["1.2.0.0/16"], ["10.0.0.0/8"]))}]
    elif kind == "empty":
        rule[f"{prefix}Endpoints"] = []
    elif kind == "unsupported":
        if direction == "egress" and not deny:
            rule["toServices"] = [{"k8sService": {"serviceName": "api", "namespace": "default"}}]
        else:
            rule[f"{prefix}CIDRSet"] = [{"cidrGroupRef": "corp"}]
    elif kind == "fqdn":
        rule["toFQDNs"] = [rng.choice(({"matchName": "api.example.com"}, {"matchPattern": "*.example.com"},
                                       {"matchPattern": "*.github.com"}, {"matchName": "cilium.io"}))]
    elif kind == "dns":
        rule["toEndpoints"] = [rng.choice(({"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system",
                                                            "k8s-app": "kube-dns"}}, {}))]
        entry: dict[str, Any] = {"ports": [{"port": "53", "protocol": rng.choice(("UDP", "ANY", "TCP"))}]}
        if rng.random() < 0.75:
            entry["rules"] = {"dns": _dns_rules(rng)}
        rule["toPorts"] = [entry]
        return rule
    shape = rng.choice(("ports", "ports", "l3", "icmp") if kind != "none" else ("ports", "icmp"))
    if shape == "ports":
        entries = []
        for _ in range(rng.randint(1, 2)):
            port = _cilium_port(rng, topology)
            entry = {"ports": [port]}
            protocol, number = port["protocol"], port["port"]
            if not deny and number != "0" and protocol in ("TCP", "ANY") and "endPort" not in port:
                roll = rng.random()
                if roll < 0.4:
                    entry["rules"] = {"http": _http_rules(rng)}
                elif roll < 0.45:
                    entry["rules"] = {"kafka": [{"topic": "a"}]}
                elif roll < 0.5:
                    entry["serverNames"] = ["a.example.com"]
                elif roll < 0.55:
                    entry["rules"] = {}
            entries.append(entry)
        rule["toPorts"] = entries
    elif shape == "icmp":
        rule["icmps"] = [{"fields": [rng.choice(({"type": 8}, {"type": 0, "family": "IPv4"}, {"type": "EchoRequest"},
                                                 {"type": "NoSuchType"}, {"type": 128, "family": "IPv6"}))]}]
    if shape == "ports" and rng.random() < 0.05:
        rule["toPorts"].append({})  # no ports: not modelled
    if not deny and rng.random() < 0.1:
        rule["authentication"] = {"mode": "required"}
    return rule


def _random_doc(rng: random.Random, topology: Topology, k: int) -> dict[str, Any]:
    namespace = rng.choice(sorted(topology.namespaces))
    roll = rng.random()
    if roll < 0.35:
        return _random_knp(rng, topology, k, namespace)
    clusterwide = roll > 0.85
    spec: dict[str, Any] = {}
    if clusterwide and rng.random() < 0.15:
        spec["nodeSelector"] = {}
    else:
        spec["endpointSelector"] = _selector(rng, topology, peer=False)
    for direction in rng.choice((["ingress"], ["egress"], ["ingress", "egress"])):
        deny = rng.random() < 0.25
        key = direction + ("Deny" if deny else "")
        spec[key] = [_cilium_rule(rng, topology, direction, deny) for _ in range(rng.randint(0, 2))] or [{}]
    if rng.random() < 0.15:
        spec["enableDefaultDeny"] = {rng.choice(("ingress", "egress")): False}
    if clusterwide:
        return {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy",
                "metadata": {"name": f"p{k}"}, "spec": spec}
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
            "metadata": {"name": f"p{k}", "namespace": namespace}, "spec": spec}


def _random_knp(rng: random.Random, topology: Topology, k: int, namespace: str) -> dict[str, Any]:
    directions = rng.choice((["Ingress"], ["Egress"], ["Ingress", "Egress"], []))
    spec: dict[str, Any] = {"podSelector": _selector(rng, topology, peer=False)}
    if directions:
        spec["policyTypes"] = directions
    for direction in ("ingress", "egress"):
        if direction.capitalize() not in directions and directions:
            continue
        if not directions and direction == "egress" and rng.random() < 0.5:
            continue
        key = "from" if direction == "ingress" else "to"
        rules = []
        for _ in range(rng.randint(0, 2)):
            rule: dict[str, Any] = {}
            kind = rng.choice(("pod", "ns", "both", "ipblock", "all", "notin"))
            if kind == "pod":
                rule[key] = [{"podSelector": _selector(rng, topology, peer=False)}]
            elif kind == "ns":
                rule[key] = [{"namespaceSelector": rng.choice(({}, {"matchLabels": {"team": "x"}}))}]
            elif kind == "both":
                rule[key] = [{"podSelector": _selector(rng, topology, peer=False),
                              "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}]
            elif kind == "ipblock":
                rule[key] = [{"ipBlock": {"cidr": rng.choice(("10.244.0.0/16", "0.0.0.0/0", "1.0.0.0/8")),
                                          "except": rng.choice(([], ["10.244.0.2/32"], ["1.2.0.0/16"]))}}]
            elif kind == "notin":
                rule[key] = [{"namespaceSelector": {"matchExpressions": [
                    {"key": "team", "operator": rng.choice(("NotIn", "DoesNotExist")),
                     **({"values": ["x"]} if rng.random() < 0.5 else {})}]}}]
                expr = rule[key][0]["namespaceSelector"]["matchExpressions"][0]
                if expr["operator"] == "NotIn":
                    expr["values"] = ["x"]
                else:
                    expr.pop("values", None)
            if rng.random() < 0.6:
                served = _served(topology)
                port = rng.choice(served) if served else Port(None, 8080, "TCP")
                rule["ports"] = [rng.choice(({"port": port.port, "protocol": port.protocol},
                                             {"port": port.name or port.port, "protocol": port.protocol},
                                             {"port": 8000, "endPort": 9100}, {"protocol": "UDP"}))]
            rules.append(rule)
        if rules or rng.random() < 0.5:
            spec[direction] = rules
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"p{k}", "namespace": namespace}, "spec": spec}
