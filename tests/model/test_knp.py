"""Kubernetes NetworkPolicy as Cilium translates it, and where --semantics kubernetes differs.

Written from docs/semantics.md [NetworkPolicy translation] (the translation, policyTypes defaulting, ipBlock never
matching pods) and the Kubernetes NetworkPolicy API (networking.k8s.io/v1: peers, ports, endPort, policyTypes).
"""

from __future__ import annotations

import pytest

from flowcheck.model.explain import explain
from flowcheck.model.flows import EntityEndpoint, Flow, WorkloadEndpoint
from flowcheck.model.identity import Entity
from flowcheck.model.topology import Port
from flowcheck.verdict import Verdict
from tests.model.helpers import decide, knp, model, topo, verdict, wl

NAMESPACES = {"default": {}, "monitoring": {"team": "obs"}, "tenant": {}}
PORTS = (Port("http", 8080, "TCP"), Port("metrics", 9090, "TCP"), Port("dns", 53, "UDP"), Port("sctp", 3868, "SCTP"))
TOPOLOGY = topo(wl("default/server", {"app": "server"}, PORTS, ip="10.244.1.10"),
                wl("default/client", {"app": "client"}, ip="10.244.1.11"),
                wl("monitoring/prom", {"app": "prom"}), wl("monitoring/other", {"app": "other"}),
                wl("tenant/prom", {"app": "prom"}, ip="10.244.2.5"),
                wl("tenant/alt", {"app": "alt"}, (Port("metrics", 9100, "TCP"),)),
                namespaces=NAMESPACES)


def test_egress_only_policy_without_policy_types_also_isolates_ingress() -> None:
    """[NetworkPolicy translation]: 'Ingress is always in policyTypes unless explicitly omitted with Egress only, so
    an egress-only KNP without policyTypes also isolates ingress'."""
    m = model(TOPOLOGY, knp("e", "podSelector: {matchLabels: {app: server}}\negress: [{to: [{podSelector: {}}]}]"))
    assert verdict(m, "default/client", "default/server") is Verdict.DROPPED
    assert verdict(m, "default/server", "default/client") is Verdict.ALLOWED
    assert verdict(m, "default/server", "tenant/prom", 8080) is Verdict.DROPPED


def test_policy_types_egress_only_leaves_ingress_open() -> None:
    """[NetworkPolicy translation]: with policyTypes [Egress] and no egress rules -> egress = [{}] (deny all egress)
    only."""
    m = model(TOPOLOGY, knp("e", "podSelector: {matchLabels: {app: server}}\npolicyTypes: [Egress]"))
    assert verdict(m, "default/client", "default/server") is Verdict.ALLOWED
    assert verdict(m, "default/server", "default/client") is Verdict.DROPPED


def test_policy_without_rules_or_types_isolates_ingress_only() -> None:
    """[NetworkPolicy translation] default deny: no ingress rules and policyTypes defaulted to [Ingress] -> deny all
    ingress."""
    m = model(TOPOLOGY, knp("d", "podSelector: {}"))
    assert verdict(m, "tenant/prom", "default/server") is Verdict.DROPPED
    assert verdict(m, "default/server", "tenant/prom", 8080) is Verdict.ALLOWED


def test_direction_missing_from_policy_types_is_ignored() -> None:
    """NetworkPolicy API: rules of a direction not listed in policyTypes have no effect."""
    m = model(TOPOLOGY, knp("p", "podSelector: {matchLabels: {app: server}}\npolicyTypes: [Egress]\n"
                                 "ingress: [{from: [{podSelector: {matchLabels: {app: client}}}]}]\negress: [{}]"))
    assert verdict(m, "tenant/prom", "default/server") is Verdict.ALLOWED


def test_pod_selector_peer_stays_in_the_policy_namespace() -> None:
    """[NetworkPolicy translation]: 'Peer podSelector only -> same namespace added'."""
    m = model(TOPOLOGY, knp("p", "podSelector: {matchLabels: {app: server}}\n"
                                 "ingress: [{from: [{podSelector: {matchLabels: {app: prom}}}]}]"))
    assert verdict(m, "monitoring/prom", "default/server", 9090) is Verdict.DROPPED


def test_namespace_and_pod_selector_in_one_peer_is_and() -> None:
    """[NetworkPolicy translation]: namespaceSelector+podSelector in one peer = AND."""
    m = model(TOPOLOGY, knp("p", """
        podSelector: {matchLabels: {app: server}}
        ingress:
          - from: [{namespaceSelector: {matchLabels: {team: obs}}, podSelector: {matchLabels: {app: prom}}}]"""))
    assert verdict(m, "monitoring/prom", "default/server", 9090) is Verdict.ALLOWED
    assert verdict(m, "monitoring/other", "default/server", 9090) is Verdict.DROPPED
    assert verdict(m, "tenant/prom", "default/server", 9090) is Verdict.DROPPED


def test_separate_namespace_and_pod_selector_peers_are_or() -> None:
    """NetworkPolicy API: separate entries of `from` are ORed."""
    m = model(TOPOLOGY, knp("p", """
        podSelector: {matchLabels: {app: server}}
        ingress:
          - from: [{namespaceSelector: {matchLabels: {team: obs}}}, {podSelector: {matchLabels: {app: client}}}]"""))
    assert verdict(m, "monitoring/other", "default/server") is Verdict.ALLOWED
    assert verdict(m, "default/client", "default/server") is Verdict.ALLOWED
    assert verdict(m, "tenant/prom", "default/server") is Verdict.DROPPED


def test_empty_namespace_selector_means_all_pods_of_all_namespaces_not_world() -> None:
    """[NetworkPolicy translation]: 'namespaceSelector: {} -> io.kubernetes.pod.namespace Exists (all pods, any
    namespace)'."""
    m = model(TOPOLOGY, knp("p", "podSelector: {matchLabels: {app: server}}\n"
                                 "ingress: [{from: [{namespaceSelector: {}}]}]"))
    assert verdict(m, "tenant/prom", "default/server") is Verdict.ALLOWED
    assert verdict(m, "world@1.2.3.4", "default/server") is Verdict.DROPPED


def test_missing_from_allows_every_peer_including_world() -> None:
    """[NetworkPolicy translation]: 'from/to empty or missing -> WildcardSelector (all peers, including world/host)'."""
    m = model(TOPOLOGY, knp("p", "podSelector: {matchLabels: {app: server}}\ningress: [{ports: [{port: 8080}]}]"))
    assert verdict(m, "world@1.2.3.4", "default/server") is Verdict.ALLOWED
    assert verdict(m, "remote-node", "default/server") is Verdict.ALLOWED
    assert verdict(m, "tenant/prom", "default/server", 9090) is Verdict.DROPPED


def test_ip_block_never_matches_pod_ips_under_cilium_but_does_under_kubernetes() -> None:
    """[NetworkPolicy translation]: 'CIDR selectors never match pods ("Known missing features: ipBlock set with a pod
    IP")'; the NetworkPolicy spec lets an ipBlock match a pod IP. `explain` says the semantics matter."""
    text = knp("p", "podSelector: {matchLabels: {app: server}}\n"
                    "ingress: [{from: [{ipBlock: {cidr: 10.244.0.0/16, except: [10.244.2.0/24]}}]}]")
    cilium = model(TOPOLOGY, text)
    kubernetes = model(TOPOLOGY, text, semantics="kubernetes")
    assert verdict(cilium, "default/client", "default/server") is Verdict.DROPPED
    assert verdict(kubernetes, "default/client", "default/server") is Verdict.ALLOWED
    assert verdict(kubernetes, "tenant/prom", "default/server") is Verdict.DROPPED  # in except
    assert verdict(kubernetes, "monitoring/prom", "default/server") is Verdict.UNKNOWN  # no ip in the topology
    assert verdict(cilium, "monitoring/prom", "default/server") is Verdict.DROPPED  # no ip needed under Cilium
    [note] = explain(cilium, [Flow.between("default/client", "default/server", port=8080)])
    assert note.semantics_note is not None
    assert "--semantics kubernetes the verdict is allowed" in note.semantics_note
    [same] = explain(cilium, [Flow.between("tenant/prom", "default/server", port=8080)])
    assert same.semantics_note is None


def test_ip_block_except_for_world_addresses() -> None:
    """[NetworkPolicy translation]: ipBlock -> CIDRRule{cidr, except}."""
    m = model(TOPOLOGY, knp("p", "podSelector: {matchLabels: {app: client}}\npolicyTypes: [Egress]\n"
                                 "egress: [{to: [{ipBlock: {cidr: 0.0.0.0/0, except: [169.254.169.254/32]}}]}]"))
    assert verdict(m, "default/client", "world@1.1.1.1", 443) is Verdict.ALLOWED
    assert verdict(m, "default/client", "world@169.254.169.254", 80) is Verdict.DROPPED


def test_named_port_resolves_on_the_destination() -> None:
    """[NetworkPolicy translation]/[Ports and named ports]: named ports supported; on ingress the selected pod's own
    port numbers count."""
    m = model(TOPOLOGY, knp("p", "podSelector: {}\ningress: [{ports: [{port: metrics}]}]", "tenant"))
    assert verdict(m, "default/client", "tenant/alt", 9100) is Verdict.ALLOWED
    assert verdict(m, "default/client", "tenant/alt", 9090) is Verdict.DROPPED


def test_named_port_on_egress_under_kubernetes_semantics_resolves_on_the_destination_pod() -> None:
    """NetworkPolicy spec: a named port refers to the destination pod's port; Cilium instead resolves egress names
    over all pods ([Ports and named ports]), where `metrics` means both 9090 and 9100: ErrDuplicateNamedPorts
    (pkg/types/portmap.go), the rule adds nothing (pkg/policy/l4.go) and the flow is dropped."""
    text = knp("p", "podSelector: {matchLabels: {app: client}}\npolicyTypes: [Egress]\n"
                    "egress: [{ports: [{port: metrics}]}]")
    assert verdict(model(TOPOLOGY, text, "kubernetes"), "default/client", "tenant/alt", 9100) is Verdict.ALLOWED
    assert verdict(model(TOPOLOGY, text, "kubernetes"), "default/client", "default/server", 9100) is Verdict.DROPPED
    d = decide(model(TOPOLOGY, text), "default/client", "tenant/alt", 9100)
    assert d.verdict is Verdict.DROPPED
    assert "named port 'metrics' is ambiguous cluster-wide" in d.reasons[0]


def test_end_port_and_protocols() -> None:
    """[NetworkPolicy translation]: protocol default TCP; endPort supported; SCTP supported; port absent = all ports."""
    m = model(TOPOLOGY, knp("p", """
        podSelector: {matchLabels: {app: server}}
        ingress: [{ports: [{port: 8000, endPort: 8100}, {protocol: UDP}, {protocol: SCTP, port: 3868}]}]"""))
    assert verdict(m, "default/client", "default/server", 8080) is Verdict.ALLOWED
    assert verdict(m, "default/client", "default/server", 9090) is Verdict.DROPPED
    assert verdict(m, "default/client", "default/server", 53, "UDP") is Verdict.ALLOWED
    assert verdict(m, "default/client", "default/server", 3868, "SCTP") is Verdict.ALLOWED
    assert verdict(m, "default/client", "default/server", 3868, "TCP") is Verdict.DROPPED


def test_reasons_name_kind_namespace_name_direction_and_rule() -> None:
    """Verdict reasons name the policy kind, namespace/name, direction and rule index (issue 3)."""
    m = model(TOPOLOGY, knp("scrape", "podSelector: {}\ningress: [{from: [{namespaceSelector: {}}]}, "
                                      "{ports: [{port: 9090}]}]"))
    d = decide(m, "world@1.1.1.1", "default/server", 9090)
    assert d.reasons == ("NetworkPolicy default/scrape ingress rule 1: allows TCP/9090 from world (1.1.1.1)",)


NEGATIVE_NAMESPACE_SELECTORS = [
    "{matchExpressions: [{key: team, operator: DoesNotExist}]}",
    "{matchExpressions: [{key: team, operator: NotIn, values: [obs]}]}",
]


@pytest.mark.parametrize("selector", NEGATIVE_NAMESPACE_SELECTORS)
def test_negative_namespace_selector_selects_pods_only_under_kubernetes_semantics(selector: str) -> None:
    """NetworkPolicy API: a namespaceSelector peer selects pods in the matching namespaces, never world,
    host or other nodes -- even when its requirements are NotIn/DoesNotExist, which an endpoint without
    namespace labels would satisfy."""
    m = model(TOPOLOGY, knp("p", f"""
        podSelector: {{matchLabels: {{app: server}}}}
        policyTypes: [Ingress, Egress]
        ingress: [{{from: [{{namespaceSelector: {selector}}}]}}]
        egress: [{{to: [{{namespaceSelector: {selector}}}]}}]"""), semantics="kubernetes")
    assert verdict(m, "tenant/prom", "default/server") is Verdict.ALLOWED
    assert verdict(m, "monitoring/prom", "default/server") is Verdict.DROPPED
    assert verdict(m, "world@1.2.3.4", "default/server") is Verdict.DROPPED
    assert verdict(m, "remote-node", "default/server") is Verdict.DROPPED
    assert verdict(m, "default/server", "world@1.2.3.4", 443) is Verdict.DROPPED
    assert verdict(m, "default/server", "host", 10250) is Verdict.DROPPED


@pytest.mark.parametrize("selector", NEGATIVE_NAMESPACE_SELECTORS)
def test_negative_namespace_selector_and_reserved_identities_is_unknown_under_cilium(selector: str) -> None:
    """[NetworkPolicy translation]: Cilium rewrites namespaceSelector keys to io.cilium.k8s.namespace.labels.<key>;
    world, host and remote-node lack those labels, so NotIn/DoesNotExist could match them, and the reference does not
    say whether the translation restricts the peer to pods. The model must say unknown, not allow."""
    m = model(TOPOLOGY, knp("p", f"""
        podSelector: {{matchLabels: {{app: server}}}}
        policyTypes: [Ingress, Egress]
        ingress: [{{from: [{{namespaceSelector: {selector}}}]}}]
        egress: [{{to: [{{namespaceSelector: {selector}}}]}}]"""))
    assert verdict(m, "tenant/prom", "default/server") is Verdict.ALLOWED
    assert verdict(m, "monitoring/prom", "default/server") is Verdict.DROPPED
    for src, dst, port in (("world@1.2.3.4", "default/server", 8080), ("remote-node", "default/server", 8080),
                           ("default/server", "world@1.2.3.4", 443), ("default/server", "host", 10250)):
        d = decide(m, src, dst, port)
        assert d.verdict is Verdict.UNKNOWN, (src, dst)
        assert "io.cilium.k8s.namespace.labels." in d.reasons[0]
        assert "reserved" in d.reasons[0] and "cannot tell" in d.reasons[0]
    [note] = explain(m, [Flow(EntityEndpoint(Entity.WORLD, "1.2.3.4"), WorkloadEndpoint("default/server"), "TCP",
                              8080)])
    assert note.semantics_note is not None and "kubernetes the verdict is dropped" in note.semantics_note


def test_positive_namespace_selector_never_matches_reserved_identities() -> None:
    """[NetworkPolicy translation]: a namespaceSelector with In/Exists requirements needs namespace labels that world
    lacks: dropped under both semantics, no unknown."""
    text = knp("p", "podSelector: {matchLabels: {app: server}}\n"
                    "ingress: [{from: [{namespaceSelector: {matchLabels: {team: obs}}}]}]")
    for semantics in ("cilium", "kubernetes"):
        assert verdict(model(TOPOLOGY, text, semantics), "world@1.2.3.4", "default/server") is Verdict.DROPPED
