"""What a policy change does, path by path (``flowcheck.model.plan_diff``): opened, closed, moved behind the L7
proxy or out from behind it, other L7 rules, other verdicts -- and declared intent the change flips."""

from __future__ import annotations

from flowcheck.model.flows import Flow, HttpRequest
from flowcheck.model.plan_diff import ChangeKind, IntentPath, diff_models
from flowcheck.model.topology import Port
from flowcheck.verdict import Verdict
from tests.model.helpers import cnp, model, topo, wl

TOPOLOGY = topo(wl("default/api", ports=(Port("http", 8080, "TCP"),)), wl("default/client"),
                wl("default/other"))

ALLOW_CLIENT = """
endpointSelector: {matchLabels: {app: api}}
ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
"""
GET_ONLY = """
endpointSelector: {matchLabels: {app: api}}
ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts: [{ports: [{port: "8080", protocol: TCP}], rules: {http: [{method: GET}]}}]
"""
GET_AND_POST = """
endpointSelector: {matchLabels: {app: api}}
ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts: [{ports: [{port: "8080", protocol: TCP}], rules: {http: [{method: GET}, {method: POST}]}}]
"""
KAFKA = """
endpointSelector: {matchLabels: {app: api}}
ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts: [{ports: [{port: "8080", protocol: TCP}], rules: {kafka: [{topic: x}]}}]
"""


def changes(before: str, after: str) -> dict[tuple[str, str], ChangeKind]:
    diff = diff_models(model(TOPOLOGY, cnp("p", before)), model(TOPOLOGY, cnp("p", after)))
    assert diff.compared == 3 * 2  # 3 workloads x 3 served ports, self-flows left out
    return {(c.flow.source.describe(), c.flow.destination.describe()): c.kind for c in diff.changes}


def test_a_port_that_goes_behind_the_l7_proxy_is_now_l7_filtered_and_back_no_longer() -> None:
    assert changes(ALLOW_CLIENT, GET_ONLY) == {("default/client", "default/api"): ChangeKind.NOW_L7_FILTERED}
    assert changes(GET_ONLY, ALLOW_CLIENT) == {("default/client", "default/api"): ChangeKind.NO_LONGER_L7_FILTERED}


def test_other_l7_rules_on_a_filtered_port_are_an_l7_change() -> None:
    assert changes(GET_ONLY, GET_AND_POST) == {("default/client", "default/api"): ChangeKind.L7_CHANGED}
    assert changes(GET_ONLY, GET_ONLY) == {}


def test_opened_closed_and_other_verdict_changes() -> None:
    isolate_only = "endpointSelector: {matchLabels: {app: api}}\ningress: [{}]\n"
    assert changes(isolate_only, ALLOW_CLIENT) == {("default/client", "default/api"): ChangeKind.OPENED}
    assert changes(ALLOW_CLIENT, isolate_only) == {("default/client", "default/api"): ChangeKind.CLOSED}
    assert changes(isolate_only, KAFKA) == {("default/client", "default/api"): ChangeKind.VERDICT_CHANGED}


def test_declared_paths_the_change_flips_are_kept_with_their_intent() -> None:
    post = Flow.between("default/client", "default/api", port=8080, http=HttpRequest.make("POST", "/x"))
    get = Flow.between("default/client", "default/api", port=8080, http=HttpRequest.make("GET", "/x"))
    intent = [IntentPath(post, Verdict.L7_DENIED, "suites/test_api.py::test_post"),
              IntentPath(get, Verdict.ALLOWED, "suites/test_api.py::test_get")]
    diff = diff_models(model(TOPOLOGY, cnp("p", GET_ONLY)), model(TOPOLOGY, cnp("p", GET_AND_POST)), intent)
    assert diff.intent_checked == 2
    [flipped] = diff.intent
    assert (flipped.flow, flipped.kind, flipped.before.verdict, flipped.after.verdict) == (
        post, ChangeKind.OPENED, Verdict.L7_DENIED, Verdict.ALLOWED)
    assert flipped.breaks_intent and not flipped.meets_intent
    assert diff.changes[0].kind is ChangeKind.L7_CHANGED  # the port itself: other rules
    assert diff.changed


INGRESS_FROM_OUTSIDE = """
endpointSelector: {matchLabels: {app: api}}
ingress:
  - fromEntities: [remote-node]
  - fromCIDRSet: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}]
"""


def test_ingress_from_an_entity_and_a_block_with_an_except_are_compared_from_the_rule_that_names_them() -> None:
    """The paths exist only in the new policy's rules; the old policy (no ingress rule) isolates nothing."""
    before, after = model(TOPOLOGY), model(TOPOLOGY, cnp("p", INGRESS_FROM_OUTSIDE))
    diff = diff_models(before, after)
    # Outside: remote-node, 10.128.0.0/9 (the largest block the CIDR rule opens) and 10.1.0.0/16, each on 8080.
    assert (diff.compared, diff.outside) == (6 + 3, 3)
    moved = {(c.flow.source.describe(), c.flow.destination.describe(), c.flow.port, c.kind) for c in diff.changes}
    # The except block is dropped after (closed); the rest of 10.0.0.0/8 (its largest open block) stays allowed, as
    # does remote-node; every workload's path to the newly isolated api is closed.
    assert moved == {("10.1.0.0/16", "default/api", 8080, ChangeKind.CLOSED),
                     ("default/client", "default/api", 8080, ChangeKind.CLOSED),
                     ("default/other", "default/api", 8080, ChangeKind.CLOSED)}
    assert {c.flow.source.describe() for c in diff_models(after, before).changes} >= {"10.1.0.0/16"}


def test_egress_to_the_api_server_and_to_an_fqdn_pattern_are_opened_by_the_rule_that_names_them() -> None:
    after = cnp("p", """
endpointSelector: {matchLabels: {app: client}}
egress:
  - toEntities: [kube-apiserver]
    toPorts: [{ports: [{port: "6443", protocol: TCP}]}]
""")
    diff = diff_models(model(TOPOLOGY), model(TOPOLOGY, after))
    opened = {(c.flow.destination.describe(), c.flow.port) for c in diff.of_kind(ChangeKind.OPENED)}
    closed = {(c.flow.destination.describe(), c.flow.port) for c in diff.of_kind(ChangeKind.CLOSED)}
    assert diff.outside == 1
    assert opened == set()  # kube-apiserver:6443 was allowed already: nothing isolated the client
    assert closed == {("default/api", 8080), ("default/other", 8080)}
    back = diff_models(model(TOPOLOGY, after), model(TOPOLOGY))
    assert back.outside == 1 and not back.of_kind(ChangeKind.CLOSED)
