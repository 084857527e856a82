"""What matches nothing: each silent mistake of issue 11 gives a warning naming the policy, none otherwise."""

from __future__ import annotations

import pytest

from flowcheck.model.topology import Port
from flowcheck.model.unmatched import (
    HTTP_METHOD_TYPO,
    NAMED_PORT_NOT_SERVED,
    NAMESPACE_NOT_IN_TOPOLOGY,
    PEER_MATCHES_NOTHING,
    SELECTOR_SELECTS_NOTHING,
    unmatched,
)
from tests.conftest import POLICIES_DIR, REPO_ROOT
from tests.model.helpers import cnp, knp, policies, topo, wl

SHOP = topo(wl("shop/web", {"app": "web"}, (Port("http", 8080), Port("metrics", 9090))),
            wl("shop/db", {"app": "db"}, (Port(None, 5432),)),
            wl("ops/scraper", {"app": "scraper"}),
            namespaces={"shop": {"team": "storefront"}, "ops": {"team": "sre"}})


def findings(text: str) -> list[tuple[str, str]]:
    return [(w.code, w.message) for w in unmatched(SHOP, policies(text))]


def test_the_repositorys_own_policies_match_its_topology() -> None:
    from flowcheck.model.policies import load_policies
    from flowcheck.model.topology import load_topology

    assert unmatched(load_topology(REPO_ROOT / "fixtures" / "topology.yaml"), load_policies([POLICIES_DIR])) == []


def test_a_policy_in_a_misspelt_namespace_is_named() -> None:
    [(code, message)] = findings(knp("deny", "podSelector: {}\npolicyTypes: [Ingress]", namespace="defualt"))
    assert code == NAMESPACE_NOT_IN_TOPOLOGY
    assert message.startswith("namespace 'defualt' is not in the topology (it has ops, shop)")


def test_a_selector_that_selects_no_workload() -> None:
    [(code, message)] = findings(knp("api", "podSelector: {matchLabels: {app: api}}\npolicyTypes: [Ingress]",
                                     namespace="shop"))
    assert code == SELECTOR_SELECTS_NOTHING
    assert "selects no workload of the topology" in message and "app=api" in message


def test_a_peer_in_a_namespace_no_topology_namespace_matches() -> None:
    [(code, message)] = findings(knp("from-ops", """
    podSelector: {matchLabels: {app: web}}
    ingress:
      - from: [{namespaceSelector: {matchLabels: {team: sre-typo}}}]
    """, namespace="shop"))
    assert code == PEER_MATCHES_NOTHING
    assert message.startswith("ingress rule 0: peer ")
    assert "matches no namespace of the topology ({namespace label team=sre-typo})" in message


def test_a_peer_that_matches_no_workload() -> None:
    [(code, message)] = findings(cnp("web", """
    endpointSelector: {matchLabels: {app: web}}
    egress:
      - toEndpoints: [{matchLabels: {app: cache}}]
    """, namespace="shop"))
    assert code == PEER_MATCHES_NOTHING
    assert message.endswith("matches no workload of the topology")


def test_a_named_port_no_workload_serves() -> None:
    [(code, message)] = findings(knp("scrape", """
    podSelector: {matchLabels: {app: web}}
    ingress:
      - ports: [{port: metrix}]
    """, namespace="shop"))
    assert code == NAMED_PORT_NOT_SERVED
    assert "named port TCP/metrix: no workload it selects serves a port by that name" in message


@pytest.mark.parametrize(("method", "flagged"), [("GTE", "GTE"), ("GET|POTS", "POTS"), ("^(PSOT)$", "PSOT")])
def test_an_http_rule_method_one_slip_from_a_real_one_is_named(method: str, flagged: str) -> None:
    [(code, message)] = findings(cnp("l7", f"""
    endpointSelector: {{matchLabels: {{app: web}}}}
    ingress:
      - toPorts: [{{ports: [{{port: '8080'}}], rules: {{http: [{{method: '{method}'}}]}}}}]
    """, namespace="shop"))
    assert code == HTTP_METHOD_TYPO
    assert f"http method '{method}': {flagged} is not an HTTP method (did you mean" in message


@pytest.mark.parametrize("text", [
    cnp("ok", "endpointSelector: {matchLabels: {app: web}}\ningress:\n  - toPorts: [{ports: [{port: '8080'}], "
              "rules: {http: [{method: 'GET|PURGE|PROPFIND'}, {method: 'P.*'}, {path: /x}]}}]", namespace="shop"),
    knp("ok", "podSelector: {matchLabels: {app: web}}\ningress:\n  - ports: [{port: metrics}]", namespace="shop"),
    cnp("ok", "endpointSelector: {}\negress:\n  - toEndpoints: [{matchLabels: {app: db}}]\n    toPorts: "
              "[{ports: [{port: '5432'}]}]", namespace="shop"),
    cnp("ok", "endpointSelector: {}\ningress:\n  - fromEntities: [host]", namespace="ops"),
    cnp("ok", "endpointSelector: {}\negress:\n  - toEndpoints: [{matchLabels: {'reserved:host': ''}}]",
        namespace="ops"),
])
def test_what_matches_something_gives_no_warning(text: str) -> None:
    assert findings(text) == []


def test_a_warning_names_the_file_and_document() -> None:
    [warning] = unmatched(SHOP, policies(knp("deny", "podSelector: {}\npolicyTypes: [Ingress]", namespace="defualt")))
    assert warning.describe().startswith("<test> (document 0): NetworkPolicy defualt/deny: namespace 'defualt'")
    assert warning.to_json() == {"code": NAMESPACE_NOT_IN_TOPOLOGY, "kind": "NetworkPolicy", "namespace": "defualt",
                                 "name": "deny", "path": "<test>", "document": 0, "message": warning.message}
