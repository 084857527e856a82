"""Cilium peers: entities, CIDRs (with except), host rules, FQDNs.

Written from docs/semantics.md [Peers] (peer kinds, entity table, CIDR rules never match cluster endpoints, toFQDNs),
[Host, nodes and allow-localhost] (host, nodes, DNS) and [How one side decides].
"""

from __future__ import annotations

import pytest

from flowcheck.model.topology import Port
from flowcheck.verdict import Verdict
from tests.model.helpers import cnp, decide, model, topo, verdict, wl

DNS_PORTS = (Port("dns", 53, "UDP"), Port("dns-tcp", 53, "TCP"))
TOPOLOGY = topo(wl("default/app", {"app": "app"}, ip="10.244.1.10"), wl("default/peer", {"app": "peer"}),
                wl("other/peer", {"app": "peer"}), wl("kube-system/coredns", {"k8s-app": "kube-dns"}, DNS_PORTS),
                namespaces={"default": {}, "other": {}, "kube-system": {}})


def egress(rules: str) -> str:
    return cnp("egress", f"endpointSelector: {{matchLabels: {{app: app}}}}\negress:\n{rules}")


@pytest.mark.parametrize(("entity", "allowed"), [
    ("world", {"world@1.1.1.1", "fqdn:x.example.com@1.1.1.1"}),
    ("cluster", {"default/peer", "other/peer", "host", "remote-node", "kube-apiserver"}),
    ("host", {"host"}),
    ("remote-node", {"remote-node"}),
    ("kube-apiserver", {"kube-apiserver"}),
    ("all", {"default/peer", "other/peer", "host", "remote-node", "kube-apiserver", "world@1.1.1.1",
             "fqdn:x.example.com@1.1.1.1"}),
    ("none", set()),
])
def test_to_entities_selects_what_the_entity_table_says(entity: str, allowed: set[str]) -> None:
    """[Peers] entity table: world = outside the cluster; cluster = pods + host/nodes/apiserver, not world; all =
    everything; none = nothing."""
    m = model(TOPOLOGY, egress(f"  - toEntities: [{entity}]"))
    for dst in ("default/peer", "other/peer", "host", "remote-node", "kube-apiserver", "world@1.1.1.1",
                "fqdn:x.example.com@1.1.1.1"):
        expected = Verdict.ALLOWED if dst in allowed else Verdict.DROPPED
        if entity in ("host", "remote-node") and dst == "kube-apiserver":
            expected = Verdict.UNKNOWN  # the API server may or may not run on a node: the model cannot know
        assert verdict(m, "default/app", dst, 443) is expected, (entity, dst)


def test_host_reaches_local_pods_under_ingress_default_deny() -> None:
    """[Host, nodes and allow-localhost]: 'Kubernetes demands that the localhost can always reach local pods'
    (allow-localhost)."""
    m = model(TOPOLOGY, cnp("deny-all", "endpointSelector: {}\ningress: [{}]"))
    assert verdict(m, "host", "default/app") is Verdict.ALLOWED
    assert verdict(m, "remote-node", "default/app") is Verdict.DROPPED
    assert verdict(m, "default/peer", "default/app") is Verdict.DROPPED


def test_pod_to_host_egress_needs_an_explicit_host_rule() -> None:
    """[Host, nodes and allow-localhost]: pod -> host egress is not automatic; it needs toEntities: [host]."""
    base = "  - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system}}]\n"
    assert verdict(model(TOPOLOGY, egress(base)), "default/app", "host", 10250) is Verdict.DROPPED
    with_host = base + "  - toEntities: [host]\n"
    assert verdict(model(TOPOLOGY, egress(with_host)), "default/app", "host", 10250) is Verdict.ALLOWED


def test_remote_node_is_matched_by_cluster_not_by_host() -> None:
    """[Host, nodes and allow-localhost]: traffic from other nodes is reserved:remote-node and matches fromEntities
    cluster."""
    m = model(TOPOLOGY, cnp("p", "endpointSelector: {}\ningress: [{fromEntities: [host]}]"))
    assert verdict(m, "remote-node", "default/app") is Verdict.DROPPED
    m = model(TOPOLOGY, cnp("p", "endpointSelector: {}\ningress: [{fromEntities: [cluster]}]"))
    assert verdict(m, "remote-node", "default/app") is Verdict.ALLOWED


def test_cidr_never_matches_pod_ips() -> None:
    """[Peers]: 'CIDR rules do not apply to traffic where both sides ... are managed by Cilium'."""
    m = model(TOPOLOGY, cnp("p", "endpointSelector: {matchLabels: {app: peer}}\n"
                                 "ingress: [{fromCIDR: [10.0.0.0/8]}]"))
    assert verdict(m, "default/app", "default/peer") is Verdict.DROPPED  # app's IP 10.244.1.10 is in 10/8
    assert verdict(m, "world@10.1.2.3", "default/peer") is Verdict.ALLOWED


def test_cidr_does_not_match_node_ips() -> None:
    """[Peers]: nodes become selectable by CIDR only with policy-cidr-match-mode=nodes (off by default)."""
    m = model(TOPOLOGY, egress("  - toCIDR: [0.0.0.0/0]"))
    assert verdict(m, "default/app", "host@172.18.0.2") is Verdict.DROPPED
    assert verdict(m, "default/app", "world@172.18.0.2") is Verdict.ALLOWED


def test_cidr_set_except_is_carved_out() -> None:
    """[Peers]: except lists sub-prefixes excluded from that CIDRRule only."""
    m = model(TOPOLOGY, egress("  - toCIDRSet: [{cidr: 1.0.0.0/8, except: [1.1.1.0/24]}]"))
    assert verdict(m, "default/app", "world@1.2.3.4", 443) is Verdict.ALLOWED
    assert verdict(m, "default/app", "world@1.1.1.1", 443) is Verdict.DROPPED
    assert verdict(m, "default/app", "world@8.8.8.8", 443) is Verdict.DROPPED


def test_cidr_rule_without_the_peer_ip_is_unknown_not_a_guess() -> None:
    """[How one side decides]: CIDR identities need the IP; without it the model says unknown, with the reason."""
    m = model(TOPOLOGY, egress("  - toCIDR: [1.0.0.0/8]"))
    d = decide(m, "default/app", "world", 443)
    assert d.verdict is Verdict.UNKNOWN
    assert "needs world's IP" in d.reasons[0]


def test_definite_allow_needs_no_ip() -> None:
    """A definite allow (toEntities world) decides the flow even when a CIDR rule could not be judged."""
    m = model(TOPOLOGY, egress("  - toCIDR: [1.0.0.0/8]\n  - toEntities: [world]"))
    assert verdict(m, "default/app", "world", 443) is Verdict.ALLOWED


# --- toFQDNs ([Peers], [toFQDNs]) -------------------------------------------------------------------

DNS_RULE = """  - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}}]
    toPorts: [{ports: [{port: "53", protocol: UDP}], rules: {dns: [{matchPattern: "*.example.com"}]}}]
"""
PLAIN_DNS_RULE = """  - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}}]
    toPorts: [{ports: [{port: "53", protocol: UDP}]}]
"""
FQDN_RULE = """  - toFQDNs: [{matchName: api.example.com}]
    toPorts: [{ports: [{port: "443", protocol: TCP}]}]
"""


def test_to_fqdns_allows_names_looked_up_through_the_dns_proxy() -> None:
    """[Peers]: toFQDNs IPs come only from DNS answers that passed Cilium's DNS proxy (an L7 dns rule)."""
    m = model(TOPOLOGY, egress(DNS_RULE + FQDN_RULE))
    assert verdict(m, "default/app", "fqdn:api.example.com@203.0.113.7", 443) is Verdict.ALLOWED
    assert verdict(m, "default/app", "fqdn:API.Example.COM.@203.0.113.7", 443) is Verdict.ALLOWED
    assert verdict(m, "default/app", "fqdn:other.example.com@203.0.113.8", 443) is Verdict.DROPPED
    assert verdict(m, "default/app", "fqdn:api.example.com@203.0.113.7", 80) is Verdict.DROPPED


def test_to_fqdns_without_an_l7_dns_rule_selects_nothing() -> None:
    """[Peers]: 'This requires ... an L7 policy allowing DNS requests'; a plain L4 DNS allow is not enough."""
    m = model(TOPOLOGY, egress(PLAIN_DNS_RULE + FQDN_RULE))
    d = decide(m, "default/app", "fqdn:api.example.com@203.0.113.7", 443)
    assert d.verdict is Verdict.DROPPED
    assert any("toFQDNs matchName api.example.com names api.example.com but selects nothing" in r for r in d.reasons)


def test_to_fqdns_when_only_another_pod_resolves_through_the_proxy_is_unknown() -> None:
    """[Peers]: IPs learnt from *any* pod's proxied lookup on the node are allowed; node placement is not in the
    topology, so the model cannot tell."""
    other = cnp("resolver", f"endpointSelector: {{matchLabels: {{app: peer}}}}\negress:\n{DNS_RULE}")
    m = model(TOPOLOGY, egress(PLAIN_DNS_RULE + FQDN_RULE) + other)
    d = decide(m, "default/app", "fqdn:api.example.com@203.0.113.7", 443)
    assert d.verdict is Verdict.UNKNOWN
    assert "default/peer can" in d.reasons[0]


def test_to_fqdns_without_a_dns_server_in_the_topology_is_unknown() -> None:
    """[toFQDNs] needs the DNS lookup; with no workload serving port 53 the model lacks that fact."""
    t = topo(wl("default/app", {"app": "app"}))
    m = model(t, egress(DNS_RULE + FQDN_RULE))
    assert verdict(m, "default/app", "fqdn:api.example.com@203.0.113.7", 443) is Verdict.UNKNOWN


# The DNS getting-started guide (Documentation/security/dns.rst): mediabot may reach GitHub and "shouldn't
# have access to any other external service"; the policy is examples/kubernetes-dns/dns-pattern.yaml.
MEDIABOT = topo(wl("default/mediabot", {"org": "empire", "class": "mediabot"}, ()),
                wl("kube-system/coredns", {"k8s-app": "kube-dns"}, DNS_PORTS),
                namespaces={"default": {}, "kube-system": {}})
DNS_PATTERN_YAML = cnp("fqdn", """endpointSelector:
  matchLabels:
    org: empire
    class: mediabot
egress:
- toFQDNs:
  - matchPattern: "*.github.com"
- toEndpoints:
  - matchLabels:
      "k8s:io.kubernetes.pod.namespace": kube-system
      "k8s:k8s-app": kube-dns
  toPorts:
  - ports:
    - port: "53"
      protocol: ANY
    rules:
      dns:
      - matchPattern: "*"
""")


def test_mediabot_reaches_github_names_but_not_a_raw_world_address() -> None:
    """Documentation/security/dns.rst + examples/kubernetes-dns/dns-pattern.yaml: a github name's answer is
    allowed; an address given without a name (not learnt from DNS) is dropped, and the drop names the
    toFQDNs rule that would open it were it an answer for a name the pattern matches."""
    m = model(MEDIABOT, DNS_PATTERN_YAML)
    assert verdict(m, "default/mediabot", "fqdn:api.github.com@140.82.112.6", 443) is Verdict.ALLOWED
    assert verdict(m, "default/mediabot", "fqdn:help.twitter.com@104.244.42.1", 443) is Verdict.DROPPED
    d = decide(m, "default/mediabot", "world@8.8.8.8", 443)
    assert d.verdict is Verdict.DROPPED, d
    assert d.reasons[0] == ("CiliumNetworkPolicy default/fqdn egress: no rule allows TCP/443 to world (8.8.8.8) "
                            "(default/mediabot is isolated for egress)")
    note = d.reasons[1]
    assert note.startswith("CiliumNetworkPolicy default/fqdn egress rule 0: toFQDNs matchPattern *.github.com does "
                           "not select world (8.8.8.8): the flow names no FQDN"), d.reasons
    assert "{fqdn: NAME, ip: 8.8.8.8}" in note
    assert "default/mediabot's DNS lookups pass Cilium's DNS proxy" in note


def test_world_address_is_decided_by_the_other_rules_when_a_to_fqdns_rule_names_the_port() -> None:
    """[Peers]/[toFQDNs]: toFQDNs selects only IPs a proxied DNS answer gave; an address given without a name is not
    one, so a matchName rule does not select it (the note says how to judge the other case), and a CIDR rule covering
    the address still allows it."""
    m = model(TOPOLOGY, egress(DNS_RULE + FQDN_RULE))
    d = decide(m, "default/app", "world@203.0.113.7", 443)
    assert d.verdict is Verdict.DROPPED
    assert d.reasons[1].startswith("CiliumNetworkPolicy default/egress egress rule 1: toFQDNs matchName "
                                   "api.example.com does not select world (203.0.113.7)")
    assert "{fqdn: api.example.com, ip: 203.0.113.7}" in d.reasons[1]
    assert "default/app looks api.example.com up through Cilium's DNS proxy" in d.reasons[1]
    assert verdict(m, "default/app", "world@203.0.113.7", 80) is Verdict.DROPPED  # the rule's port is 443
    assert verdict(m, "default/app", "fqdn:api.example.com@203.0.113.7", 443) is Verdict.ALLOWED
    with_cidr = model(TOPOLOGY, egress(DNS_RULE + FQDN_RULE + "  - toCIDR: [203.0.113.0/24]\n"))
    assert verdict(with_cidr, "default/app", "world@203.0.113.7", 443) is Verdict.ALLOWED
    d = decide(model(TOPOLOGY, egress(DNS_RULE + FQDN_RULE)), "default/app", "world", 443)
    assert d.verdict is Verdict.DROPPED  # no address at all: still not a DNS answer
    assert "{fqdn: api.example.com, ip: IP}" in d.reasons[1]


def test_world_address_is_dropped_even_when_another_pod_resolves_through_the_proxy() -> None:
    """[Peers]: IPs learnt from any pod's proxied lookup on the node serve every pod there; the note says so, but an
    address given without a name is none of them."""
    other = cnp("resolver", f"endpointSelector: {{matchLabels: {{app: peer}}}}\negress:\n{DNS_RULE}")
    fqdn = FQDN_RULE.replace("matchName: api.example.com", 'matchPattern: "*.example.com"')
    d = decide(model(TOPOLOGY, egress(PLAIN_DNS_RULE + fqdn) + other), "default/app", "world@203.0.113.7", 443)
    assert d.verdict is Verdict.DROPPED
    assert "toFQDNs matchPattern *.example.com does not select world (203.0.113.7)" in d.reasons[1]
    assert "default/peer's DNS lookups pass Cilium's DNS proxy" in d.reasons[1]


def test_world_address_without_a_dns_server_in_the_topology_is_dropped() -> None:
    """The missing DNS server matters only to a flow that names its FQDN; the note says so."""
    t = topo(wl("default/app", {"app": "app"}))
    d = decide(model(t, egress(DNS_RULE + FQDN_RULE.replace("matchName: api.example.com",
                                                            'matchPattern: "*.example.com"'))),
               "default/app", "world@203.0.113.7", 443)
    assert d.verdict is Verdict.DROPPED
    assert "the topology has no DNS server" in d.reasons[1]


def test_world_address_without_a_proxied_dns_path_stays_dropped_and_says_why() -> None:
    """[toFQDNs]: 'otherwise the FQDN rule selects nothing' -- no DNS L7 rule means no proxied lookup, so the toFQDNs
    rule cannot cover the address; the drop says so."""
    for fqdn in (FQDN_RULE, FQDN_RULE.replace("matchName: api.example.com", 'matchPattern: "*.example.com"')):
        d = decide(model(TOPOLOGY, egress(PLAIN_DNS_RULE + fqdn)), "default/app", "world@203.0.113.7", 443)
        assert d.verdict is Verdict.DROPPED
        assert any(r.startswith("CiliumNetworkPolicy default/egress egress rule 1: toFQDNs ") and
                   "selects nothing" in r for r in d.reasons), d.reasons
    names_refused = DNS_RULE.replace('matchPattern: "*.example.com"', 'matchPattern: "*.cluster.local"')
    d = decide(model(TOPOLOGY, egress(names_refused + FQDN_RULE)), "default/app", "world@203.0.113.7", 443)
    assert d.verdict is Verdict.DROPPED  # the proxy refuses api.example.com: it never learns its IPs
    assert any("toFQDNs matchName api.example.com" in r and "selects nothing" in r for r in d.reasons)


def test_dns_l7_rules_allow_matching_queries_and_refuse_others() -> None:
    """[DNS rules] + [What a drop and an L7 denial look like]: a query not matching the dns rules is answered REFUSED
    (l7-denied)."""
    m = model(TOPOLOGY, egress(DNS_RULE))
    assert verdict(m, "default/app", "kube-system/coredns", 53, "UDP", dns="api.example.com") is Verdict.ALLOWED
    d = decide(m, "default/app", "kube-system/coredns", 53, "UDP", dns="example.org")
    assert d.verdict is Verdict.L7_DENIED
    assert "REFUSED" in d.reasons[0]
    assert verdict(m, "default/app", "kube-system/coredns", 53, "TCP", dns="api.example.com") is Verdict.DROPPED


def test_dns_still_passes_the_proxy_when_an_l4_rule_also_allows_it() -> None:
    """[L7 rules]: an L4-only allow wildcards the L7 rules (nothing is refused) but the traffic is still redirected to
    the proxy (TestWildcardL3RulesEgress), so toFQDNs still learns the answers."""
    m = model(TOPOLOGY, egress(DNS_RULE + PLAIN_DNS_RULE + FQDN_RULE))
    assert verdict(m, "default/app", "kube-system/coredns", 53, "UDP", dns="example.org") is Verdict.ALLOWED
    assert verdict(m, "default/app", "fqdn:api.example.com@203.0.113.7", 443) is Verdict.ALLOWED


def test_other_reserved_entities_are_endpoints_too() -> None:
    """[Peers] entity table: health, ingress, init and unmanaged are reserved identities inside `cluster`."""
    m = model(TOPOLOGY, cnp("p", "endpointSelector: {}\ningress: [{fromEntities: [health, ingress]}]"))
    assert verdict(m, "health", "default/app") is Verdict.ALLOWED
    assert verdict(m, "ingress", "default/app") is Verdict.ALLOWED
    assert verdict(m, "init", "default/app") is Verdict.DROPPED
    m = model(TOPOLOGY, cnp("p", "endpointSelector: {}\ningress: [{fromEntities: [cluster]}]"))
    assert verdict(m, "unmanaged", "default/app") is Verdict.ALLOWED
    assert verdict(m, "world@8.8.8.8", "default/app") is Verdict.DROPPED
