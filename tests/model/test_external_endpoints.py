"""Endpoints beyond workloads: one-line endpoint text, world addresses, and whole external blocks.

A block (``{cidr: 10.0.0.0/8}``) is decided only when every address of it gets one verdict from the
policies' CIDRs; otherwise the model says ``unknown`` and names the sub-blocks it would have to tell
apart -- never a guess.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowcheck.errors import TopologyError
from flowcheck.model.flows import (
    CidrEndpoint,
    EntityEndpoint,
    Flow,
    FqdnEndpoint,
    WorkloadEndpoint,
    endpoint_from_text,
    parse_endpoint,
)
from flowcheck.model.identity import Entity
from flowcheck.verdict import Verdict
from tests.model.helpers import cnp, knp, model, topo, wl


def _parse(text: object) -> object:
    def fail(field: str, message: str) -> TopologyError:
        return TopologyError("<test>", field, message)

    return parse_endpoint(text, "to", fail)


@pytest.mark.parametrize(("text", "endpoint"), [
    ("shop/cart", WorkloadEndpoint("shop/cart")),
    ("world", EntityEndpoint(Entity.WORLD)),
    ("kube-apiserver", EntityEndpoint(Entity.KUBE_APISERVER)),
    ("entity:world@1.1.1.1", EntityEndpoint(Entity.WORLD, "1.1.1.1")),
    ("1.1.1.1", EntityEndpoint(Entity.WORLD, "1.1.1.1")),
    ("2001:db8::1", EntityEndpoint(Entity.WORLD, "2001:db8::1")),
    ("api.example.com", FqdnEndpoint("api.example.com")),
    ("fqdn:api.example.com@203.0.113.7", FqdnEndpoint("api.example.com", "203.0.113.7")),
    ("10.0.0.0/8", CidrEndpoint("10.0.0.0/8")),
    ("cidr:10.1.2.3/16", CidrEndpoint("10.1.0.0/16")),
])
def test_one_line_endpoints_mean_what_they_say(text: str, endpoint: object) -> None:
    assert _parse(text) == endpoint


@pytest.mark.parametrize(("text", "message"), [
    ("cluster", "'cluster' is a set of endpoints, not one"),
    ("entity:wrld", "expected one of"),
    ("cidr:10.0.0.0/33", "'10.0.0.0/33' is not a CIDR"),
    ("fqdn:bad name.example.com", "is not a DNS name"),
    ("a/b/c", "expected a workload as namespace/name"),
])
def test_bad_one_line_endpoints_name_the_field(text: str, message: str) -> None:
    with pytest.raises(TopologyError, match="field to") as caught:
        _parse(text)
    assert message in str(caught.value)


@given(st.text(max_size=40))
def test_any_endpoint_text_parses_or_is_one_bad_input_error(text: str) -> None:
    message = ""
    try:
        endpoint = _parse(text)
    except TopologyError as exc:
        message = exc.message
    if message:
        assert "\n" not in message
    else:  # what was read is written back in the flow file's form, and reads the same
        assert _parse(endpoint.to_json()) == endpoint  # type: ignore[attr-defined]
        assert endpoint_from_text(text) is not None


EGRESS = cnp("egress", """
endpointSelector: {matchLabels: {app: cart}}
egress:
  - toCIDRSet: [{cidr: 10.0.0.0/8, except: [10.96.0.0/12]}]
    toPorts: [{ports: [{port: "5432"}]}]
  - toEntities: [world]
    toPorts: [{ports: [{port: "443"}]}]
""", namespace="shop")
SHOP = topo(wl("shop/cart"), wl("shop/db", ip="192.168.7.7"))


def _block(destination: str, port: int) -> Flow:
    return Flow(WorkloadEndpoint("shop/cart"), CidrEndpoint(destination), "TCP", port)


@pytest.mark.parametrize(("block", "port", "expected"), [
    ("10.0.0.0/12", 5432, Verdict.ALLOWED),      # inside the allowed CIDR, clear of the exception
    ("10.96.0.0/16", 5432, Verdict.DROPPED),     # inside the exception
    ("172.16.0.0/12", 5432, Verdict.DROPPED),    # outside every CIDR: no rule allows 5432 there
    ("0.0.0.0/0", 443, Verdict.ALLOWED),         # every world address on 443: the CIDRs do not matter there
])
def test_a_block_the_policies_treat_alike_gets_their_verdict(block: str, port: int, expected: Verdict) -> None:
    decision = model(SHOP, EGRESS).decide(_block(block, port))
    assert decision.verdict is expected, decision.reasons


def test_a_block_the_policies_cut_is_unknown_naming_the_sub_blocks() -> None:
    decision = model(SHOP, EGRESS).decide(_block("10.0.0.0/8", 5432))
    assert decision.verdict is Verdict.UNKNOWN
    [reason] = decision.reasons
    assert "10.0.0.0/8 is not one verdict" in reason
    assert reason.endswith("10.0.0.0/10, 10.64.0.0/11, 10.112.0.0/12, 10.128.0.0/9 allowed; 10.96.0.0/12 dropped; "
                           "name a narrower block or an address")


def test_the_verdict_of_a_block_is_that_of_each_of_its_addresses() -> None:
    m = model(SHOP, EGRESS)
    block = ipaddress.ip_network("10.64.0.0/10")
    expected = model(SHOP, EGRESS).decide(_block(str(block), 5432)).verdict
    assert expected is Verdict.UNKNOWN  # 10.96.0.0/12 lies inside it
    verdicts = {m.decide(Flow(WorkloadEndpoint("shop/cart"), EntityEndpoint(Entity.WORLD, str(address)), "TCP",
                              5432)).verdict for address in (block[0], block[-1], ipaddress.ip_address("10.97.1.1"))}
    assert verdicts == {Verdict.ALLOWED, Verdict.DROPPED}


def test_a_block_holding_a_pod_ip_is_decided_for_its_world_addresses_and_says_so() -> None:
    decision = model(SHOP, EGRESS).decide(_block("192.168.0.0/16", 443))
    assert decision.verdict is Verdict.ALLOWED
    assert "192.168.0.0/16 holds the pod IP of shop/db" in decision.reasons[-1]


def test_a_block_can_be_a_source_of_ingress() -> None:
    ingress = knp("from-office", """
    podSelector: {matchLabels: {app: cart}}
    ingress:
      - from: [{ipBlock: {cidr: 198.51.100.0/24}}]
    """, namespace="shop")
    m = model(SHOP, ingress)
    inside = Flow(CidrEndpoint("198.51.100.0/25"), WorkloadEndpoint("shop/cart"), "TCP", 8080)
    straddling = Flow(CidrEndpoint("198.51.0.0/16"), WorkloadEndpoint("shop/cart"), "TCP", 8080)
    assert m.decide(inside).verdict is Verdict.ALLOWED
    assert m.decide(straddling).verdict is Verdict.UNKNOWN
