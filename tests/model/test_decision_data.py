"""Decisions as data: deciding sides, policies and rules, reason kinds, what passes the L7 proxy.

The text of a decision (``reasons``) is what users read; the data beside it (``basis``, ``sides``,
``decided_by``, ``rules``, ``policies``, ``l7``) is what diffs, replays and maps read. These tests
hold the two together (every reason is the rendering of its ``Reason``, over the whole decision
corpus) and check the data on this repository's scenario and on small ones built for one fact.
"""

from __future__ import annotations

import pytest

from flowcheck.model.decision import DecidedBy, Decision, ReasonKind
from flowcheck.model.engine import Model
from flowcheck.model.flows import EntityEndpoint, Flow, HttpRequest, WorkloadEndpoint
from flowcheck.model.identity import Entity
from flowcheck.model.matrix import decide_matrix
from flowcheck.model.policies import load_policies
from flowcheck.model.policy import Direction, PolicyKind, PolicyRef, RuleRef
from flowcheck.model.reasons import render_reasons
from flowcheck.model.topology import Port, UnknownWorkloadError, load_topology
from flowcheck.verdict import Verdict
from tests.conftest import POLICIES_DIR, REPO_ROOT
from tests.model.decision_corpus import corpus_decisions
from tests.model.helpers import ccnp, cnp, decide, knp, model, topo, wl

GET = HttpRequest("GET", "/")
POST = HttpRequest("POST", "/")
ALLOW_GET_ONLY = PolicyRef(PolicyKind.CILIUM, "default", "allow-get-only")
DNS_EGRESS = PolicyRef(PolicyKind.NETWORK_POLICY, "default", "allow-dns-egress")
SCRAPE = PolicyRef(PolicyKind.NETWORK_POLICY, "default", "allow-monitoring-scrape")
DENY_INGRESS = PolicyRef(PolicyKind.NETWORK_POLICY, "default", "default-deny-ingress")


@pytest.fixture(scope="module")
def repo() -> Model:
    return Model(load_topology(REPO_ROOT / "fixtures" / "topology.yaml"), load_policies([POLICIES_DIR]))


def named(refs: tuple[PolicyRef, ...]) -> set[tuple[PolicyKind, str | None, str]]:
    """Policies by kind, namespace and name (a PolicyRef also carries where it was read)."""
    return {(r.kind, r.namespace, r.name) for r in refs}


def ref_named(ref: RuleRef) -> tuple[PolicyKind, str | None, str, Direction, bool, int]:
    return ref.policy.kind, ref.policy.namespace, ref.policy.name, ref.direction, ref.deny, ref.index


# --- the text is the rendering of the data, everywhere ----------------------------------------------

def test_every_reason_of_the_corpus_is_the_rendering_of_its_data() -> None:
    """Over every decision of the corpus: ``reasons`` == rendered ``basis``; each side's reasons are in
    ``basis``; a pod source has an egress side and a pod destination an ingress side, and nothing else
    has a side; the deciding sides carry the flow's verdict."""
    checked = 0
    for item in corpus_decisions():
        d, flow = item.decision, item.flow
        assert render_reasons(d.basis, flow) == d.reasons, item.line()
        for side in d.sides:
            assert all(r in d.basis for r in side.reasons), item.line()
            assert all(r.direction is side.direction for r in side.reasons), item.line()
        if d.decided_by is not DecidedBy.SELF:
            expected = [Direction.EGRESS] if isinstance(flow.source, WorkloadEndpoint) else []
            expected += [Direction.INGRESS] if isinstance(flow.destination, WorkloadEndpoint) else []
            assert [s.direction for s in d.sides] == expected, item.line()
        assert all(s.verdict is d.verdict for s in d.deciding_sides), item.line()
        checked += 1
    assert checked > 30_000


# --- this repository's scenario ------------------------------------------------------------------

def test_post_to_my_api_is_decided_at_its_ingress_by_the_get_rule(repo: Model) -> None:
    d = repo.decide(Flow.between("tenant/client", "default/my-api", port=8080, http=POST))
    assert d.verdict is Verdict.L7_DENIED
    assert d.decided_by is DecidedBy.INGRESS
    assert [ref_named(r) for r in d.rules] == [(PolicyKind.CILIUM, "default", "allow-get-only", Direction.INGRESS,
                                                False, 0)]
    assert named(d.policies) == named((ALLOW_GET_ONLY,))
    assert [r.kind for r in d.basis] == [ReasonKind.L7_MISMATCH, ReasonKind.NO_POLICY_SELECTS]
    egress, ingress = d.sides
    assert (egress.direction, egress.verdict, egress.selected_by) == (Direction.EGRESS, Verdict.ALLOWED, ())
    assert named(ingress.selected_by) == named((ALLOW_GET_ONLY, SCRAPE, DENY_INGRESS))


def test_a_planned_flow_through_the_proxy_says_only_get_passes(repo: Model) -> None:
    """What issue 12's "allowed through the L7 proxy: only GET" cell reads."""
    planned = {(p.flow.source.describe(), p.flow.destination.describe(), p.flow.port): p.decision
               for p in decide_matrix(repo)}
    d = planned[("tenant/client", "default/my-api", 8080)]
    assert d.verdict is Verdict.ALLOWED
    assert d.basis[0].kind is ReasonKind.L7_FILTERED
    (passes,) = d.l7
    (rule,) = passes.http
    assert rule.method is not None and rule.method.pattern == "GET"
    assert (rule.path, rule.host, rule.headers) == (None, None, ())
    assert [ref_named(g.rule)[2] for g in passes.grants] == ["allow-get-only"]
    assert planned[("monitoring/prometheus", "default/my-api", 9090)].l7 == ()  # an L4 allow: nothing filtered


def test_egress_isolation_names_the_isolating_policy_and_no_rule(repo: Model) -> None:
    d = repo.decide(Flow.between("default/web", "default/my-api", port=8080, http=GET))
    assert d.verdict is Verdict.DROPPED
    assert d.decided_by is DecidedBy.EGRESS
    assert d.rules == ()
    assert named(d.policies) == named((DNS_EGRESS,))
    assert d.basis[0].kind is ReasonKind.ISOLATED_NO_RULE
    assert named(d.basis[0].policies) == named((DNS_EGRESS,))
    assert named(d.sides[0].isolated_by) == named((DNS_EGRESS,))
    assert d.sides[1].verdict is Verdict.ALLOWED  # the GET would pass my-api's ingress
    assert d.sides[1].reasons[0].kind is ReasonKind.L7_MATCH


def test_an_allow_rule_names_its_policy_rule_and_side(repo: Model) -> None:
    d = repo.decide(Flow.between("monitoring/prometheus", "default/web", port=9090))
    assert d.verdict is Verdict.ALLOWED
    assert d.decided_by is DecidedBy.INGRESS  # prometheus' egress is unrestricted: it decided nothing
    assert [ref_named(r) for r in d.rules] == [(PolicyKind.NETWORK_POLICY, "default", "allow-monitoring-scrape",
                                                Direction.INGRESS, False, 0)]
    assert d.basis[0].kind is ReasonKind.ALLOW_RULE


def test_flows_no_policy_restricts_are_decided_by_neither_side(repo: Model) -> None:
    d = repo.decide(Flow.between("tenant/client", "monitoring/grafana", port=3000))
    assert d.verdict is Verdict.ALLOWED
    assert d.decided_by is DecidedBy.NEITHER
    assert [r.kind for r in d.basis] == [ReasonKind.NO_POLICY_SELECTS] * 2
    assert d.rules == () and d.policies == ()


def test_self_and_not_a_pod_flows_have_no_side(repo: Model) -> None:
    own = repo.decide(Flow.between("default/web", "default/web", port=8080))
    assert (own.decided_by, own.sides, [r.kind for r in own.basis]) == (DecidedBy.SELF, (), [ReasonKind.SELF_FLOW])
    outside = repo.decide(Flow(EntityEndpoint(Entity.WORLD, "1.1.1.1"), EntityEndpoint(Entity.HOST), "TCP", 22))
    assert (outside.decided_by, outside.sides) == (DecidedBy.NOT_A_POD, ())
    assert [r.kind for r in outside.basis] == [ReasonKind.NOT_A_POD]


def test_the_host_reaching_a_pod_is_localhost(repo: Model) -> None:
    d = repo.decide(Flow(EntityEndpoint(Entity.HOST), WorkloadEndpoint("default/web"), "TCP", 8080))
    assert d.verdict is Verdict.ALLOWED
    assert [r.kind for r in d.basis] == [ReasonKind.LOCALHOST]
    assert d.decided_by is DecidedBy.INGRESS


def test_plan_decisions_carry_the_same_data_as_decide(repo: Model) -> None:
    for p in decide_matrix(repo):
        assert repo.decide(p.flow) == p.decision


# --- one fact each ----------------------------------------------------------------------------------

TOPOLOGY = topo(wl("default/app", {"app": "app"}), wl("default/server", {"app": "server"}),
                wl("other/peer", {"app": "peer"}),
                wl("kube-system/coredns", {"k8s-app": "kube-dns"}, (Port("dns", 53, "UDP"),)),
                namespaces={"default": {}, "other": {"team": "x"}, "kube-system": {}})


def test_a_deny_rule_names_itself_and_both_dropping_sides_decide() -> None:
    m = model(TOPOLOGY, cnp("deny-in", "endpointSelector: {matchLabels: {app: server}}\n"
                                       "ingressDeny: [{fromEndpoints: [{matchLabels: {app: app}}]}]")
              + cnp("no-out", "endpointSelector: {matchLabels: {app: app}}\negress: [{}]"))
    d = decide(m, "default/app", "default/server")
    assert d.verdict is Verdict.DROPPED
    assert d.decided_by is DecidedBy.BOTH
    assert [r.kind for r in d.basis] == [ReasonKind.ISOLATED_NO_RULE, ReasonKind.DENY_RULE]
    (deny,) = d.rules
    assert ref_named(deny) == (PolicyKind.CILIUM, "default", "deny-in", Direction.INGRESS, True, 0)
    assert named(d.policies) == {(PolicyKind.CILIUM, "default", "deny-in"), (PolicyKind.CILIUM, "default", "no-out")}


def test_a_dns_rule_match_names_the_rule_and_the_filter_lists_the_names() -> None:
    m = model(TOPOLOGY, cnp("dns", """
        endpointSelector: {matchLabels: {app: app}}
        egress:
          - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}}]
            toPorts: [{ports: [{port: "53", protocol: UDP}],
                       rules: {dns: [{matchName: api.example.com}, {matchPattern: "*.cilium.io"}]}}]"""))
    d = decide(m, "default/app", "kube-system/coredns", 53, "UDP", dns="docs.cilium.io")
    assert d.verdict is Verdict.ALLOWED
    assert d.basis[0].kind is ReasonKind.L7_MATCH
    assert d.basis[0].matched is not None and d.basis[0].matched.text == "matchPattern *.cilium.io"
    (passes,) = d.l7
    assert [(r.field, r.value) for r in passes.dns] == [("matchName", "api.example.com"),
                                                        ("matchPattern", "*.cilium.io")]
    refused = decide(m, "default/app", "kube-system/coredns", 53, "UDP", dns="example.org")
    assert refused.verdict is Verdict.L7_DENIED
    assert refused.basis[0].kind is ReasonKind.L7_MISMATCH


@pytest.mark.parametrize(("text", "dst", "port", "kind"), [
    (cnp("svc", "endpointSelector: {matchLabels: {app: app}}\n"
                "egress: [{toServices: [{k8sService: {serviceName: api, namespace: default}}]}]"),
     "default/server", 8080, ReasonKind.UNKNOWN_FEATURE),
    (cnp("cidr", "endpointSelector: {matchLabels: {app: app}}\negress: [{toCIDR: [1.0.0.0/8]}]"),
     "world", 443, ReasonKind.MISSING_FACT),
    (knp("ns", "podSelector: {matchLabels: {app: app}}\npolicyTypes: [Egress]\n"
               "egress: [{to: [{namespaceSelector: {matchExpressions: [{key: team, operator: DoesNotExist}]}}]}]"),
     "world", 443, ReasonKind.UNDOCUMENTED),
])
def test_a_verdict_the_model_cannot_give_says_what_kind_of_gap(text: str, dst: str, port: int,
                                                                kind: ReasonKind) -> None:
    d = decide(model(TOPOLOGY, text), "default/app", dst, port)
    assert d.verdict is Verdict.UNKNOWN
    assert d.basis[0].kind is kind
    assert d.basis[0].rule is not None and d.basis[0].rule.direction is Direction.EGRESS


def test_host_policies_are_named_as_such() -> None:
    m = model(TOPOLOGY, ccnp("host-fw", "nodeSelector: {}\ningress: [{fromEntities: [cluster]}]"))
    d = decide(m, "default/app", "host", 10250)
    assert d.verdict is Verdict.UNKNOWN
    assert d.basis[0].kind is ReasonKind.HOST_POLICY
    assert named(d.basis[0].policies) == {(PolicyKind.CILIUM_CLUSTERWIDE, None, "host-fw")}
    assert d.decided_by is DecidedBy.NEITHER
    assert named(d.policies) == {(PolicyKind.CILIUM_CLUSTERWIDE, None, "host-fw")}


def test_an_ambiguous_egress_named_port_is_its_own_kind() -> None:
    t = topo(wl("default/client", {"app": "client"}, ()), wl("default/web-a", {"app": "web-a"}, (Port("http", 80),)),
             wl("default/web-b", {"app": "web-b"}, (Port("http", 8080),)), namespaces={"default": {}})
    m = model(t, cnp("by-name", "endpointSelector: {matchLabels: {app: client}}\n"
                                "egress: [{toPorts: [{ports: [{port: http, protocol: TCP}]}]}]"))
    d = decide(m, "default/client", "default/web-a", 80)
    assert [r.kind for r in d.basis] == [ReasonKind.NAMED_PORT_AMBIGUOUS, ReasonKind.ISOLATED_NO_RULE,
                                         ReasonKind.NO_POLICY_SELECTS]


def test_fqdn_reasons_say_whether_the_name_was_learnt_or_given() -> None:
    fqdn_egress = cnp("fqdn", """
        endpointSelector: {matchLabels: {app: app}}
        egress:
          - toFQDNs: [{matchName: api.example.com}]
            toPorts: [{ports: [{port: "443", protocol: TCP}]}]
          - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}}]
            toPorts: [{ports: [{port: "53", protocol: UDP}]}]""")
    m = model(TOPOLOGY, fqdn_egress)
    not_learnt = decide(m, "default/app", "fqdn:api.example.com@203.0.113.7", 443)
    assert ReasonKind.FQDN_NOT_LEARNT in [r.kind for r in not_learnt.basis]
    unnamed = decide(m, "default/app", "world@203.0.113.7", 443)
    assert [r.kind for r in unnamed.basis][-1] is ReasonKind.FQDN_UNNAMED
    assert unnamed.basis[-1].rule is not None and unnamed.basis[-1].rule.index == 0


def test_a_decision_built_by_hand_has_no_grounds() -> None:
    d = Decision(Verdict.DROPPED, ("because",))
    assert (d.basis, d.sides, d.decided_by, d.rules, d.policies, d.l7) == ((), (), DecidedBy.NEITHER, (), (), ())


# --- identities and resolved endpoints ----------------------------------------------------------------

def test_workloads_with_the_same_labels_share_an_identity_and_the_service_account_tells_them_apart() -> None:
    t = topo(wl("default/a-1", {"app": "a"}), wl("default/a-2", {"app": "a"}, (Port("grpc", 9000),)),
             wl("default/a-3", {"app": "a"}, sa="robot"), wl("other/a", {"app": "a"}),
             namespaces={"default": {}, "other": {}})
    m = model(t)
    assert m.sharing_identity("default/a-2") == ("default/a-1", "default/a-2")
    assert m.sharing_identity("default/a-3") == ("default/a-3",)
    assert m.sharing_identity("other/a") == ("other/a",)
    assert len(m.identities.identities) == 3
    assert "k8s:io.cilium.k8s.policy.serviceaccount=robot" in m.identity_of("default/a-3").describe()
    assert m.identity_of("default/a-1") == m.identity_of("default/a-2")
    with pytest.raises(UnknownWorkloadError):
        m.identity_of("default/nope")


def test_deciding_resolved_endpoints_is_deciding_the_flow(repo: Model) -> None:
    flow = Flow.between("tenant/client", "default/my-api", port=8080, http=POST)
    source, destination = repo.resolve(flow.source), repo.resolve(flow.destination)
    assert (source.workload, source.name) == (4, "tenant/client")
    assert repo.decide_resolved(flow, source, destination) == repo.decide(flow)
    world = repo.resolve(EntityEndpoint(Entity.WORLD, "1.1.1.1"))
    assert (world.workload, world.name) == (None, "world (1.1.1.1)")
    with pytest.raises(ValueError, match="the resolved endpoints are not the flow's"):
        repo.decide_resolved(flow, destination, source)
    with pytest.raises(UnknownWorkloadError):
        repo.resolve(WorkloadEndpoint("default/nope"))
