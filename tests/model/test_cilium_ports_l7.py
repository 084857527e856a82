"""Cilium toPorts, ICMP, deny rules, enableDefaultDeny and L7 (HTTP, DNS) semantics.

Written from docs/semantics.md [Policy objects and rules] (enableDefaultDeny), [Ports and named ports] (ports, named
ports, ICMP side effect), [L7 rules], [HTTP rules], [DNS rules] (L7 rules, HTTP anchored regexes and headers, DNS
patterns), [L7 rules] (L7 wildcarding and the >= 1.18 allow-all when default deny is off), [Default deny], [Allows are
a union, denies win], [Both sides enforce] (modes, allow union, deny precedence, both sides, replies).
"""

from __future__ import annotations

import warnings

import pytest

from flowcheck.errors import PolicyError
from flowcheck.model.flows import HttpRequest
from flowcheck.model.policy import dns_pattern_regex
from flowcheck.model.topology import Port
from flowcheck.verdict import Verdict
from tests.model.helpers import ccnp, cnp, decide, knp, model, policies, topo, verdict, wl

PORTS = (Port("http", 8080, "TCP"), Port("metrics", 9090, "TCP"), Port("syslog", 514, "UDP"), Port(None, 443, "TCP"))
TOPOLOGY = topo(wl("default/server", {"app": "server"}, PORTS), wl("default/client", {"app": "client"}),
                wl("default/bad", {"app": "bad"}), wl("default/alt", {"app": "alt"}, (Port("http", 9000, "TCP"),)),
                namespaces={"default": {}})


def ingress(rules: str, selector: str = "{matchLabels: {app: server}}") -> str:
    return cnp("ingress", f"endpointSelector: {selector}\ningress:\n{rules}")


# --- ports ---------------------------------------------------------------------------------------

def test_port_zero_means_every_port_of_the_protocol() -> None:
    """[Ports and named ports]: `port: "0"` = all ports."""
    m = model(TOPOLOGY, ingress('  - toPorts: [{ports: [{port: "0", protocol: TCP}]}]'))
    assert verdict(m, "default/client", "default/server", 9090) is Verdict.ALLOWED
    assert verdict(m, "default/client", "default/server", 514, "UDP") is Verdict.DROPPED


def test_protocol_any_or_omitted_matches_tcp_udp_sctp_but_not_icmp() -> None:
    """[Ports and named ports]: 'If "ANY", omitted or empty, any protocols with transport ports ... Matching on ICMP
    is not supported'."""
    for proto in (', protocol: ANY', ''):  # the CRD enum refuses an empty string, so "omitted" it is
        m = model(TOPOLOGY, ingress(f'  - toPorts: [{{ports: [{{port: "514"{proto}}}]}}]'))
        assert verdict(m, "default/client", "default/server", 514, "UDP") is Verdict.ALLOWED
        assert verdict(m, "default/client", "default/server", 514, "TCP") is Verdict.ALLOWED
        assert verdict(m, "default/client", "default/server", 514, "SCTP") is Verdict.ALLOWED
        assert verdict(m, "default/client", "default/server", None, "ICMP") is Verdict.DROPPED


def test_end_port_is_an_inclusive_range() -> None:
    """[Ports and named ports]: endPort is the inclusive upper bound (l4_port_range.yaml: 80..444)."""
    m = model(TOPOLOGY, ingress('  - toPorts: [{ports: [{port: "80", endPort: 444, protocol: TCP}]}]'))
    assert verdict(m, "default/client", "default/server", 443) is Verdict.ALLOWED
    assert verdict(m, "default/client", "default/server", 444) is Verdict.ALLOWED
    assert verdict(m, "default/client", "default/server", 445) is Verdict.DROPPED


def test_named_port_on_ingress_resolves_on_the_selected_pod() -> None:
    """[Ports and named ports]: 'ingress resolves the name against the selected pod's own container ports'."""
    m = model(TOPOLOGY, ingress('  - toPorts: [{ports: [{port: http, protocol: TCP}]}]', "{}"))
    assert verdict(m, "default/client", "default/server", 8080) is Verdict.ALLOWED
    assert verdict(m, "default/client", "default/alt", 9000) is Verdict.ALLOWED
    assert verdict(m, "default/client", "default/alt", 8080) is Verdict.DROPPED


# The issue 14 scenario: `http` is 80 on web-a and 8080 on web-b, and the client's egress allows `http`.
# pkg/types/portmap.go (namedPortMultiMap.GetNamedPort; TestPolicyNamedPortMultiMap): a name mapped to
# two numbers gives ErrDuplicateNamedPorts; pkg/endpoint/policy.go GetNamedPort: "egress needs named
# ports of all the pods"; pkg/policy/l4.go skips a named port it cannot resolve, adding nothing.
WEB_AB = topo(wl("default/client", {"app": "client"}, ()),
              wl("default/web-a", {"app": "web-a"}, (Port("http", 80, "TCP"),)),
              wl("default/web-b", {"app": "web-b"}, (Port("http", 8080, "TCP"),)), namespaces={"default": {}})
EGRESS_HTTP_BY_NAME = cnp("egress-by-name", "endpointSelector: {matchLabels: {app: client}}\n"
                                            "egress: [{toPorts: [{ports: [{port: http, protocol: TCP}]}]}]")


def test_named_port_ambiguous_cluster_wide_on_egress_opens_nothing() -> None:
    """pkg/types/portmap.go, pkg/policy/l4.go: the name cannot be resolved on egress, so the rule opens
    nothing; with the client isolated for egress both flows are dropped, and the first reason says why."""
    m = model(WEB_AB, EGRESS_HTTP_BY_NAME)
    for dst, port in (("default/web-a", 80), ("default/web-b", 8080)):
        d = decide(m, "default/client", dst, port)
        assert d.verdict is Verdict.DROPPED, d
        assert d.reasons[0].startswith("CiliumNetworkPolicy default/egress-by-name egress rule 0: named port 'http' "
                                       "is ambiguous cluster-wide for TCP (80 on default/web-a; 8080 on "
                                       "default/web-b)"), d.reasons
        assert "ErrDuplicateNamedPorts" in d.reasons[0]
        assert "no rule allows TCP" in d.reasons[1]


def test_named_port_ambiguous_on_egress_leaves_the_verdict_to_the_other_rules() -> None:
    """pkg/policy/l4.go adds nothing for the unresolved name; another rule's allow still decides."""
    numbered = EGRESS_HTTP_BY_NAME.replace("[{port: http, protocol: TCP}]",
                                           '[{port: http, protocol: TCP}, {port: "80"}]')
    m = model(WEB_AB, numbered)
    d = decide(m, "default/client", "default/web-a", 80)
    assert d.verdict is Verdict.ALLOWED
    assert not any("ambiguous" in r for r in d.reasons)
    assert verdict(m, "default/client", "default/web-b", 8080) is Verdict.DROPPED


def test_named_port_ambiguous_on_egress_denies_nothing() -> None:
    """pkg/policy/l4.go: the same skip applies to a deny rule; it denies nothing, so the allow decides."""
    m = model(WEB_AB, cnp("deny-by-name", "endpointSelector: {matchLabels: {app: client}}\n"
                                          "egress: [{toEndpoints: [{}]}]\n"
                                          "egressDeny: [{toPorts: [{ports: [{port: http, protocol: TCP}]}]}]"))
    assert verdict(m, "default/client", "default/web-a", 80) is Verdict.ALLOWED


def test_named_port_on_egress_resolves_per_protocol() -> None:
    """pkg/policy/rule.go merges an ANY port once per protocol (TCP, UDP, SCTP) and pkg/types/portmap.go
    skips a named port of another protocol: `http` meaning 80/TCP and 5000/UDP is not ambiguous."""
    t = topo(wl("default/client", {"app": "client"}, ()),
             wl("default/web-a", {"app": "web-a"}, (Port("http", 80, "TCP"),)),
             wl("default/stream", {"app": "stream"}, (Port("http", 5000, "UDP"),)), namespaces={"default": {}})
    m = model(t, EGRESS_HTTP_BY_NAME.replace("protocol: TCP", "protocol: ANY"))
    assert verdict(m, "default/client", "default/web-a", 80) is Verdict.ALLOWED
    assert verdict(m, "default/client", "default/stream", 5000, "UDP") is Verdict.ALLOWED
    assert verdict(m, "default/client", "default/stream", 5000, "TCP") is Verdict.DROPPED


def test_named_port_on_ingress_is_resolved_on_the_destination_even_when_ambiguous() -> None:
    """[Ports and named ports]: ingress resolves the name against the selected pod's own ports, so the cluster-wide
    ambiguity does not matter there."""
    m = model(WEB_AB, cnp("ingress-by-name", "endpointSelector: {}\n"
                                             "ingress: [{toPorts: [{ports: [{port: http, protocol: TCP}]}]}]"))
    assert verdict(m, "default/client", "default/web-a", 80) is Verdict.ALLOWED
    assert verdict(m, "default/client", "default/web-b", 8080) is Verdict.ALLOWED
    assert verdict(m, "default/client", "default/web-b", 80) is Verdict.DROPPED


def test_protocol_must_match() -> None:
    """[Ports and named ports]: a UDP port rule does not allow TCP."""
    m = model(TOPOLOGY, ingress('  - toPorts: [{ports: [{port: "8080", protocol: UDP}]}]'))
    assert verdict(m, "default/client", "default/server", 8080) is Verdict.DROPPED


# --- ICMP ----------------------------------------------------------------------------------------

def test_any_l4_policy_blocks_icmp_unless_allowed() -> None:
    """[Ports and named ports]: 'If any layer 4 policy is specified, then ICMP will be blocked unless ...'"""
    m = model(TOPOLOGY, ingress('  - toPorts: [{ports: [{port: "8080", protocol: TCP}]}]'))
    assert verdict(m, "default/client", "default/server", None, "ICMP") is Verdict.DROPPED


def test_l3_only_allow_allows_icmp_and_no_policy_allows_everything() -> None:
    """[Ports and named ports]: 'An L3-only allow (no toPorts) allows ICMP'; no policy at all allows everything."""
    m = model(TOPOLOGY, ingress("  - fromEndpoints: [{matchLabels: {app: client}}]"))
    assert verdict(m, "default/client", "default/server", None, "ICMP") is Verdict.ALLOWED
    assert verdict(model(TOPOLOGY), "default/client", "default/server", None, "ICMP") is Verdict.ALLOWED


def test_icmps_allow_the_listed_types_only() -> None:
    """[ICMP]: fields [{family, type: number or name}] (examples/policies/l4/icmp.yaml)."""
    m = model(TOPOLOGY, ingress("  - icmps: [{fields: [{type: 8, family: IPv4}]}]"))
    assert verdict(m, "default/client", "default/server", None, "ICMP", icmp_type=8) is Verdict.ALLOWED
    assert verdict(m, "default/client", "default/server", None, "ICMP", icmp_type=13) is Verdict.DROPPED
    assert verdict(m, "default/client", "default/server", 8080) is Verdict.DROPPED
    m = model(TOPOLOGY, ingress("  - icmps: [{fields: [{type: EchoRequest}]}]"))
    assert verdict(m, "default/client", "default/server", None, "ICMP", icmp_type=8) is Verdict.ALLOWED


# --- deny ----------------------------------------------------------------------------------------

def test_deny_beats_allow_across_policy_kinds() -> None:
    """[Allows are a union, denies win]: 'Deny policies take precedence over allow policies, regardless of whether
    they are a CNP, a CCNP or even a KNP'."""
    allow_all = knp("allow-all", "podSelector: {}\ningress: [{}]")
    deny = ccnp("deny-bad", "endpointSelector: {}\ningressDeny: [{fromEndpoints: [{matchLabels: {app: bad}}]}]")
    m = model(TOPOLOGY, allow_all + deny)
    d = decide(m, "default/bad", "default/server")
    assert d.verdict is Verdict.DROPPED
    assert d.reasons[0].startswith("CiliumClusterwideNetworkPolicy deny-bad ingressDeny rule 0: denies TCP/8080")
    assert verdict(m, "default/client", "default/server") is Verdict.ALLOWED


def test_l4_deny_beats_l3_allow() -> None:
    """[Allows are a union, denies win]: deny table col. 2 -- a deny on L4 80 beats an allow on L3."""
    m = model(TOPOLOGY, ingress("  - fromEndpoints: [{}]") + cnp(
        "deny", "endpointSelector: {}\ningressDeny: [{toPorts: [{ports: [{port: \"9090\", protocol: TCP}]}]}]"))
    assert verdict(m, "default/client", "default/server", 9090) is Verdict.DROPPED
    assert verdict(m, "default/client", "default/server", 8080) is Verdict.ALLOWED


def test_deny_except_falls_back_to_the_allows() -> None:
    """[Allows are a union, denies win] Test_Allowception: allow 0.0.0.0/0, deny 1.0.0.0/8 except 1.1.1.1/32."""
    m = model(TOPOLOGY, cnp("p", """
        endpointSelector: {matchLabels: {app: client}}
        egress: [{toCIDR: [0.0.0.0/0]}]
        egressDeny: [{toCIDRSet: [{cidr: 1.0.0.0/8, except: [1.1.1.1/32]}]}]"""))
    assert verdict(m, "default/client", "world@1.1.1.1", 443) is Verdict.ALLOWED
    assert verdict(m, "default/client", "world@1.2.3.4", 443) is Verdict.DROPPED
    assert verdict(m, "default/client", "world@8.8.8.8", 443) is Verdict.ALLOWED


def test_a_deny_only_policy_puts_the_pod_into_default_deny() -> None:
    """[Default deny]: ingressDeny counts as a rule of the direction; 'only a deny policy -> everything denied'."""
    m = model(TOPOLOGY, cnp("deny", "endpointSelector: {matchLabels: {app: server}}\n"
                                    "ingressDeny: [{fromEntities: [world]}]"))
    assert verdict(m, "default/client", "default/server") is Verdict.DROPPED


# --- enableDefaultDeny ---------------------------------------------------------------------------

def test_enable_default_deny_false_keeps_the_direction_open() -> None:
    """[Policy objects and rules]/[Default deny]: rules with enableDefaultDeny false do not isolate; a synthetic
    allow-all is appended."""
    m = model(TOPOLOGY, cnp("p", """
        endpointSelector: {matchLabels: {app: server}}
        enableDefaultDeny: {ingress: false}
        ingress: [{fromEndpoints: [{matchLabels: {app: client}}]}]"""))
    assert verdict(m, "default/bad", "default/server") is Verdict.ALLOWED


def test_default_deny_wins_when_any_selecting_policy_requests_it() -> None:
    """[Policy objects and rules]: 'that endpoint's default deny will be enabled if any policy requests it'."""
    m = model(TOPOLOGY, cnp("open", """
        endpointSelector: {matchLabels: {app: server}}
        enableDefaultDeny: {ingress: false}
        ingress: [{fromEndpoints: [{matchLabels: {app: client}}]}]""")
              + ingress("  - fromEndpoints: [{matchLabels: {app: alt}}]"))
    assert verdict(m, "default/bad", "default/server") is Verdict.DROPPED
    assert verdict(m, "default/client", "default/server") is Verdict.ALLOWED
    assert verdict(m, "default/alt", "default/server") is Verdict.ALLOWED


def test_l7_rules_get_an_allow_all_when_default_deny_is_off() -> None:
    """[L7 rules] (>= 1.18, e0a7378d04): L7 rules must not deny other L7 traffic when EnableDefaultDeny=false. Low
    confidence in the docs (intro.rst still says otherwise); the code's behaviour is modelled."""
    m = model(TOPOLOGY, cnp("p", """
        endpointSelector: {matchLabels: {app: server}}
        enableDefaultDeny: {ingress: false}
        ingress: [{toPorts: [{ports: [{port: "8080", protocol: TCP}], rules: {http: [{method: GET}]}}]}]"""))
    assert verdict(m, "default/client", "default/server", http=HttpRequest("POST", "/")) is Verdict.ALLOWED


# --- L7 HTTP -------------------------------------------------------------------------------------

def http_policy(rules: str) -> str:
    return ingress(f'  - toPorts: [{{ports: [{{port: "8080", protocol: TCP}}], rules: {{http: {rules}}}}}]')


@pytest.mark.parametrize(("rules", "request_", "expected"), [
    ("[{method: GET}]", HttpRequest("GET", "/anything"), Verdict.ALLOWED),
    ("[{method: GET}]", HttpRequest("HEAD", "/"), Verdict.L7_DENIED),  # anchored: GET != HEAD
    ("[{method: GET}]", HttpRequest("POST", "/"), Verdict.L7_DENIED),
    ("[{path: /public}]", HttpRequest("GET", "/public"), Verdict.ALLOWED),
    ("[{path: /public}]", HttpRequest("GET", "/public/x"), Verdict.L7_DENIED),  # full-string match
    ("[{path: /public}]", HttpRequest("GET", "/public?x=1"), Verdict.L7_DENIED),  # query kept (low confidence)
    ("[{path: '/api/v[0-9]+/.*', method: 'GET|PUT'}]", HttpRequest("PUT", "/api/v2/x"), Verdict.ALLOWED),
    ("[{method: GET}, {method: POST, path: /orders}]", HttpRequest("POST", "/orders"), Verdict.ALLOWED),
    ("[{}]", HttpRequest("DELETE", "/x"), Verdict.ALLOWED),  # empty rule matches every request
    ("[{headers: ['X-Token: 42']}]", HttpRequest("GET", "/", (("x-token", "42"),)), Verdict.ALLOWED),
    ("[{headers: ['X-Token: 42']}]", HttpRequest("GET", "/", (("X-Token", "43"),)), Verdict.L7_DENIED),
    ("[{headers: ['X-Token']}]", HttpRequest("GET", "/", (("X-Token", "anything"),)), Verdict.ALLOWED),
    ("[{headers: ['X-Token']}]", HttpRequest("GET", "/"), Verdict.L7_DENIED),
    ("[{headerMatches: [{name: X-Env, value: prod}]}]", HttpRequest("GET", "/", (("X-Env", "dev"),)),
     Verdict.L7_DENIED),
    ("[{headerMatches: [{name: X-Env, value: prod, mismatch: LOG}]}]", HttpRequest("GET", "/", (("X-Env", "dev"),)),
     Verdict.ALLOWED),
    ("[{host: 'api\\.example\\.com'}]", HttpRequest("GET", "/", host="api.example.com"), Verdict.ALLOWED),
    ("[{host: 'api\\.example\\.com'}]", HttpRequest("GET", "/", host="api.example.com:8080"), Verdict.L7_DENIED),
    ("[{host: 'api\\.example\\.com'}]", HttpRequest("GET", "/"), Verdict.UNKNOWN),  # flow gives no host
])
def test_http_rules_are_anchored_regexes_and_header_checks(rules: str, request_: HttpRequest,
                                                            expected: Verdict) -> None:
    """[HTTP rules]: method/path/host are full-string (anchored) regexes; headers 'Name: value' exact, 'Name'
    presence; headerMatches exact unless a mismatch action is set; rules are ORed, fields ANDed."""
    m = model(TOPOLOGY, http_policy(rules))
    assert verdict(m, "default/client", "default/server", http=request_) is expected


def test_a_tcp_flow_without_a_request_reaches_the_proxy() -> None:
    """[HTTP rules]/[What a drop and an L7 denial look like]: with HTTP rules the TCP connection is accepted (by
    Envoy); requests are judged after."""
    m = model(TOPOLOGY, http_policy("[{method: GET}]"))
    d = decide(m, "default/client", "default/server")
    assert d.verdict is Verdict.ALLOWED
    assert "L7 proxy" in d.reasons[0]


def test_l4_only_allow_for_the_same_peer_and_port_wildcards_l7() -> None:
    """[L7 rules]: 'If a layer 4 rule is specified ... and a similar layer 4 rule with layer 7 rules is also
    specified, then the layer 7 portions of the latter rule will have no effect' (l4_filter_test 2A/2B)."""
    m = model(TOPOLOGY, http_policy("[{method: GET}]") + knp("l4", """
        podSelector: {matchLabels: {app: server}}
        ingress: [{ports: [{port: 8080}]}]"""))
    assert verdict(m, "default/client", "default/server", http=HttpRequest("POST", "/")) is Verdict.ALLOWED


def test_disjoint_peers_keep_their_own_l7_restrictions() -> None:
    """[L7 rules] TestWildcardL4RulesIngress: bar1 L4-only on 80 and bar2 GET / on 80 -> bar1 unrestricted, bar2
    restricted."""
    m = model(TOPOLOGY, ingress("""  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
  - fromEndpoints: [{matchLabels: {app: bad}}]
    toPorts: [{ports: [{port: "8080", protocol: TCP}], rules: {http: [{method: GET, path: /}]}}]"""))
    post = HttpRequest("POST", "/")
    assert verdict(m, "default/client", "default/server", http=post) is Verdict.ALLOWED
    assert verdict(m, "default/bad", "default/server", http=post) is Verdict.L7_DENIED
    assert verdict(m, "default/bad", "default/server", http=HttpRequest("GET", "/")) is Verdict.ALLOWED


def test_l7_rules_of_several_policies_are_combined() -> None:
    """[L7 rules]: 'layer 7 rules are combined together if they are of the same type'."""
    m = model(TOPOLOGY, http_policy("[{method: GET}]") + cnp("post", """
        endpointSelector: {matchLabels: {app: server}}
        ingress: [{toPorts: [{ports: [{port: "8080", protocol: TCP}], rules: {http: [{method: POST}]}}]}]"""))
    assert verdict(m, "default/client", "default/server", http=HttpRequest("POST", "/")) is Verdict.ALLOWED
    assert verdict(m, "default/client", "default/server", http=HttpRequest("PUT", "/")) is Verdict.L7_DENIED


# --- DNS patterns --------------------------------------------------------------------------------

@pytest.mark.parametrize(("pattern", "name", "matches"), [
    ("*.cilium.io", "sub.cilium.io", True),
    ("*.cilium.io", "cilium.io", False),
    ("*.cilium.io", "a.b.cilium.io", False),  # * never crosses a dot
    ("*cilium.io", "cilium.io", True),
    ("*cilium.io", "subcilium.io", True),
    ("*cilium.io", "www.cilium.io", False),
    ("part*ial.com", "partial.com", True),
    ("**.cilium.io", "app.cilium.io", True),
    ("**.cilium.io", "test.app.cilium.io", True),
    ("**.cilium.io", "cilium.io", False),
    ("*", "anything.at.all", True),
    ("*.CILIUM.io", "Sub.Cilium.IO.", True),  # case-insensitive, trailing dot normalised
])
def test_dns_match_pattern(pattern: str, name: str, matches: bool) -> None:
    """[DNS rules]: the examples from layer7.rst and pkg/fqdn/matchpattern."""
    from flowcheck.model.policy import normalise_dns_name
    assert (dns_pattern_regex(pattern).match(normalise_dns_name(name)) is not None) is matches


# --- both sides, union, replies -----------------------------------------------------------------

def test_both_sides_are_checked_and_both_are_reported() -> None:
    """[Both sides enforce]: 'policy must be configured on both sides (sender and receiver)'."""
    egress_ok = cnp("egress", "endpointSelector: {matchLabels: {app: client}}\negress: [{toEndpoints: [{}]}]")
    ingress_no = ingress("  - fromEndpoints: [{matchLabels: {app: alt}}]")
    d = decide(model(TOPOLOGY, egress_ok + ingress_no), "default/client", "default/server")
    assert d.verdict is Verdict.DROPPED
    assert d.reasons[0].startswith("CiliumNetworkPolicy default/ingress ingress: no rule allows TCP/8080 from "
                                   "default/client")
    assert d.reasons[1] == "CiliumNetworkPolicy default/egress egress rule 0: allows TCP/8080 to default/server"


def test_allows_are_a_union_across_policy_kinds() -> None:
    """[Allows are a union, denies win]: allow rules from all CNPs, CCNPs and KNPs selecting the endpoint are ORed."""
    m = model(TOPOLOGY, ingress("  - fromEndpoints: [{matchLabels: {app: client}}]") +
              knp("k", "podSelector: {matchLabels: {app: server}}\ningress: [{from: [{podSelector: "
                       "{matchLabels: {app: alt}}}]}]") +
              ccnp("c", "endpointSelector: {matchLabels: {app: server}}\ningress: [{fromEndpoints: "
                        "[{matchLabels: {app: bad}}]}]"))
    for src in ("default/client", "default/alt", "default/bad"):
        assert verdict(m, src, "default/server") is Verdict.ALLOWED


def test_allowing_a_to_b_does_not_allow_b_to_initiate() -> None:
    """[Both sides enforce]: replies of A => B are allowed, but B is not automatically allowed to initiate to A."""
    m = model(TOPOLOGY, cnp("all", "endpointSelector: {}\ningress: [{fromEndpoints: [{matchLabels: {app: client}}]}]"))
    assert verdict(m, "default/client", "default/server") is Verdict.ALLOWED
    assert verdict(m, "default/server", "default/client") is Verdict.DROPPED


# --- HTTP regex dialect: RE2, as Envoy uses --------------------------------------------------------

@pytest.mark.parametrize(("rules", "request_", "expected"), [
    ("[{method: GET, path: '/v[[:digit:]]+'}]", HttpRequest("GET", "/v1"), Verdict.ALLOWED),
    ("[{method: GET, path: '/v[[:digit:]]+'}]", HttpRequest("GET", "/v:"), Verdict.L7_DENIED),
    ("[{path: '/[[:alpha:]]+/[[:xdigit:]]{4}'}]", HttpRequest("GET", "/orders/beef"), Verdict.ALLOWED),
    ("[{path: '/\\pL+'}]", HttpRequest("GET", "/é"), Verdict.ALLOWED),  # RE2 Unicode class; Python re refuses \p
    ("[{path: '/a\\z'}]", HttpRequest("GET", "/a"), Verdict.ALLOWED),  # RE2's end of text; Python 3.11 refuses \z
])
def test_http_regexes_are_re2_with_posix_classes(rules: str, request_: HttpRequest, expected: Verdict) -> None:
    """[HTTP rules]: path/method/host are "extended POSIX regex" that Cilium hands to Envoy's safe_regex, which is RE2
    (full-string match): POSIX bracket classes such as [[:digit:]] and RE2 escapes work as RE2 defines them; Python's
    re reads [[:digit:]] as a nested set and mismatches."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Python re's "Possible nested set" FutureWarning must not occur
        m = model(TOPOLOGY, http_policy(rules))
    assert verdict(m, "default/client", "default/server", http=request_) is expected


@pytest.mark.parametrize(("field", "pattern"), [
    ("path", "/(?=admin).*"),  # lookahead
    ("path", "/(?<!x)y"),  # lookbehind
    ("path", "/(a)\\1"),  # backreference
    ("path", "/(?P<n>a)(?P=n)"),  # named backreference
    ("method", "GET\\Z"),  # Python's \Z; RE2 only has \z
    ("host", "(?>api)\\.example\\.com"),  # atomic group
    ("path", "/(["),  # malformed in every dialect
])
def test_http_regex_re2_refuses_is_a_policy_error_naming_the_field(
        field: str, pattern: str, capfd: pytest.CaptureFixture[str]) -> None:
    """[HTTP rules]: Envoy (RE2) cannot evaluate Python-only syntax and Cilium's sanitizer rejects the policy, so the
    model refuses it as bad input (file, document, field) instead of matching with Python's re."""
    rule = f"{{ports: [{{port: '8080', protocol: TCP}}], rules: {{http: [{{{field}: '{pattern}'}}]}}}}"
    text = http_policy("[{method: GET}]") + cnp("bad", f"""
        endpointSelector: {{matchLabels: {{app: server}}}}
        ingress: [{{toPorts: [{rule}]}}]""")
    with pytest.raises(PolicyError) as info:
        policies(text)
    assert (info.value.path, info.value.document) == ("<test>", 1)
    assert info.value.field == f"spec.ingress[0].toPorts[0].rules.http[0].{field}"
    assert "RE2" in info.value.message and repr(pattern) in info.value.message
    assert capfd.readouterr().err == ""  # RE2's own logging stays off: the error says it once
