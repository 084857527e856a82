"""Features the model does not evaluate give `unknown` with the reason -- never a guess.

DEVELOPERS.md: "A policy feature the model does not support yields an explicit unknown with the reason". The features
are those listed in docs/semantics.md [Peers] (toServices, toGroups, fromNodes, cidrGroupRef, authentication), [L7
rules]/[Features the model does not evaluate] (kafka, l7proto, listener, serverNames, TLS) and [Policy objects and
rules] (host policies via nodeSelector).
"""

from __future__ import annotations

import pytest

from flowcheck.model.flows import HttpRequest
from flowcheck.model.topology import Port
from flowcheck.verdict import Verdict
from tests.model.helpers import ccnp, cnp, decide, model, topo, verdict, wl

TOPOLOGY = topo(wl("default/app", {"app": "app"}),
                wl("default/server", {"app": "server"}, (Port("kafka", 9092, "TCP"),)),
                namespaces={"default": {}})


@pytest.mark.parametrize(("rule", "reason"), [
    ("toServices: [{k8sService: {serviceName: api, namespace: default}}]", "toServices"),
    ("toGroups: [{aws: {securityGroupsIds: [sg-1]}}]", "toGroups"),
    ("toNodes: [{matchLabels: {role: infra}}]", "toNodes"),
    ("toCIDRSet: [{cidrGroupRef: corp}]", "cidrGroupRef"),
    ("toEndpoints: [{}]\n    authentication: {mode: required}", "mutual authentication"),
    ('toEndpoints: [{}]\n    toPorts: [{ports: [{port: "9092", protocol: TCP}], rules: {kafka: [{topic: a}]}}]',
     "kafka"),
    ('toEndpoints: [{}]\n    toPorts: [{ports: [{port: "9092", protocol: TCP}], serverNames: [a.example.com]}]',
     "serverNames"),
])
def test_unsupported_egress_features_are_unknown_with_the_reason(rule: str, reason: str) -> None:
    """The model cannot tell whether these rules allow the flow: unknown, naming the feature."""
    m = model(TOPOLOGY, cnp("p", f"endpointSelector: {{matchLabels: {{app: app}}}}\negress:\n  - {rule}"))
    d = decide(m, "default/app", "default/server", 9092)
    assert d.verdict is Verdict.UNKNOWN, d
    assert reason in d.reasons[0]
    assert "CiliumNetworkPolicy default/p egress rule 0" in d.reasons[0]


def test_unsupported_rule_does_not_hide_a_definite_allow() -> None:
    """An unknown peer kind does not matter when another rule allows the flow outright."""
    m = model(TOPOLOGY, cnp("p", """
        endpointSelector: {matchLabels: {app: app}}
        egress:
          - toServices: [{k8sService: {serviceName: api, namespace: default}}]
          - toEndpoints: [{matchLabels: {app: server}}]"""))
    assert verdict(m, "default/app", "default/server", 9092) is Verdict.ALLOWED


def test_unsupported_peer_for_a_flow_it_cannot_match_keeps_the_verdict_definite() -> None:
    """A toServices rule restricted to port 9092 says nothing about port 80: dropped stays dropped."""
    m = model(TOPOLOGY, cnp("p", """
        endpointSelector: {matchLabels: {app: app}}
        egress: [{toServices: [{k8sService: {serviceName: api, namespace: default}}],
                  toPorts: [{ports: [{port: "9092", protocol: TCP}]}]}]"""))
    assert verdict(m, "default/app", "default/server", 80) is Verdict.DROPPED


def test_kafka_rules_with_an_http_request_are_unknown() -> None:
    """[L7 rules]: kafka is deprecated and not modelled."""
    m = model(TOPOLOGY, cnp("p", """
        endpointSelector: {matchLabels: {app: server}}
        ingress: [{toPorts: [{ports: [{port: "9092", protocol: TCP}], rules: {kafka: [{topic: a}]}}]}]"""))
    assert verdict(m, "default/app", "default/server", 9092, http=HttpRequest()) is Verdict.UNKNOWN


def test_host_policies_make_host_flows_unknown() -> None:
    """[Policy objects and rules]: nodeSelector selects the host endpoint (host firewall), which the model does not
    evaluate."""
    m = model(TOPOLOGY, ccnp("host-fw", "nodeSelector: {}\ningress: [{fromEntities: [cluster]}]"))
    assert verdict(m, "default/app", "host", 10250) is Verdict.UNKNOWN
    assert verdict(m, "default/app", "default/server", 9092) is Verdict.ALLOWED
