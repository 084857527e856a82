"""Hubble flows judged against one probe's observation: confirmed, contradicted, or no evidence (issue 17.2).

The recorded flows (tests/data/cluster/hubble-flows-probes.jsonl, shapes in its README) cover a
policy drop and an HTTP proxy denial; the other cases are built with ``flow_line`` in the same
protojson shape.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from flowcheck.cluster.evidence import EvidenceState, judge
from flowcheck.cluster.hubble import FlowRecord, ProbeFacts, match, parse_flow_line, parse_flow_lines, parse_time
from flowcheck.verdict import Verdict
from tests.cluster.fakes import data

CLIENT, MY_API = "10.244.1.17", "10.244.2.31"
START, END = parse_time("2026-08-27T14:30:12.000Z"), parse_time("2026-08-27T14:30:16.0Z")


def facts(port: int, sport: int, protocol: str = "TCP") -> ProbeFacts:
    return ProbeFacts(CLIENT, MY_API, port, protocol, START, END, src_port=sport)


def flow_line(*, verdict: str, reply: bool = False, port: int = 9090, sport: int = 41300, protocol: str = "TCP",
              drop_reason: str = "", flags: dict[str, bool] | None = None, l7: dict[str, Any] | None = None,
              event_type: int = 4) -> FlowRecord:
    """One flow in ``hubble observe -o json`` form; ``reply`` swaps the direction."""
    src, dst, sp, dp = (MY_API, CLIENT, port, sport) if reply else (CLIENT, MY_API, sport, port)
    body: dict[str, Any] = {"source_port": sp, "destination_port": dp}
    if flags:
        body["flags"] = flags
    flow: dict[str, Any] = {"time": "2026-08-27T14:30:13.1Z", "verdict": verdict,
                            "IP": {"source": src, "destination": dst, "ipVersion": "IPv4"},
                            "l4": {protocol: body}, "Type": "L7" if l7 else "L3_L4",
                            "event_type": {"type": 129 if l7 else event_type},
                            "traffic_direction": "INGRESS", "node_name": "kind-flowcheck/flowcheck-worker2"}
    if drop_reason:
        flow["drop_reason_desc"] = drop_reason
    if l7:
        flow["l7"] = l7
        flow["is_reply"] = reply
    record = parse_flow_line(json.dumps({"flow": flow, "node_name": flow["node_name"], "time": flow["time"]}))
    assert record is not None
    return record


@pytest.fixture(scope="module")
def recorded() -> list[FlowRecord]:
    return parse_flow_lines(data("hubble-flows-probes.jsonl"))


def test_a_recorded_policy_drop_confirms_a_timeout(recorded: list[FlowRecord]) -> None:
    probe = facts(9090, 41234)
    check = judge(Verdict.DROPPED, "tcp", match(recorded, probe), probe)
    assert check.state is EvidenceState.CONFIRMED and check.policy_drop
    assert check.detail.startswith("policy drop: DROPPED POLICY_DENIED ingress tenant/client:41234")


def test_the_recorded_proxy_denial_confirms_an_l7_denied_http_probe(recorded: list[FlowRecord]) -> None:
    probe = facts(8080, 41240)
    check = judge(Verdict.L7_DENIED, "http", match(recorded, probe), probe)
    assert check.state is EvidenceState.CONFIRMED
    assert "HTTP/1.1 POST" in check.detail


def test_the_same_flows_contradict_other_observations(recorded: list[FlowRecord]) -> None:
    dropped = facts(9090, 41234)
    assert judge(Verdict.ALLOWED, "tcp", match(recorded, dropped), dropped).state is EvidenceState.CONTRADICTED
    denied = facts(8080, 41240)
    check = judge(Verdict.DROPPED, "http", match(recorded, denied), denied)
    assert check.state is EvidenceState.CONTRADICTED  # the proxy answered a probe that "timed out"


def test_a_forwarded_reply_to_a_probe_that_timed_out_is_a_contradiction() -> None:
    """The acceptance case of issue 17.2: a timeout with a FORWARDED reply is an error, never a drop."""
    probe = facts(9090, 41300)
    synack = flow_line(verdict="FORWARDED", reply=True, flags={"SYN": True, "ACK": True})
    check = judge(Verdict.DROPPED, "tcp", [synack], probe)
    assert check.state is EvidenceState.CONTRADICTED
    assert check.detail.startswith("the probe timed out, but Hubble shows a forwarded reply: FORWARDED")
    assert not check.policy_drop


def test_no_flow_is_no_evidence_not_a_confirmation() -> None:
    check = judge(Verdict.DROPPED, "tcp", [], facts(9090, 41300))
    assert check.state is EvidenceState.NONE
    assert check.detail == "no Hubble flow of this probe's 5-tuple arrived in time"
    forwarded_syn = flow_line(verdict="FORWARDED", flags={"SYN": True})  # the source node forwarding the SYN
    assert judge(Verdict.DROPPED, "tcp", [forwarded_syn], facts(9090, 41300)).state is EvidenceState.NONE


def test_a_drop_that_is_not_policy_contradicts_a_policy_drop() -> None:
    drop = flow_line(verdict="DROPPED", drop_reason="CT_MAP_INSERTION_FAILED", event_type=1, flags={"SYN": True})
    check = judge(Verdict.DROPPED, "tcp", [drop], facts(9090, 41300))
    assert check.state is EvidenceState.CONTRADICTED
    assert "not by policy (CT_MAP_INSERTION_FAILED)" in check.detail


@pytest.mark.parametrize("reason", ["POLICY_DENIED", "POLICY_DENY"])
def test_default_deny_and_deny_rules_are_both_policy_drops(reason: str) -> None:
    drop = flow_line(verdict="DROPPED", drop_reason=reason, event_type=1, flags={"SYN": True})
    assert judge(Verdict.DROPPED, "tcp", [drop], facts(9090, 41300)).policy_drop


def test_an_answered_probe_is_confirmed_by_its_forwarded_reply_and_contradicted_by_a_drop() -> None:
    probe = facts(9090, 41300)
    synack = flow_line(verdict="FORWARDED", reply=True, flags={"SYN": True, "ACK": True})
    assert judge(Verdict.ALLOWED, "tcp", [synack], probe).state is EvidenceState.CONFIRMED
    drop = flow_line(verdict="DROPPED", drop_reason="POLICY_DENIED", event_type=1, flags={"SYN": True})
    check = judge(Verdict.ALLOWED, "tcp", [drop, synack], probe)
    assert check.state is EvidenceState.CONTRADICTED
    assert check.detail.startswith("the probe was answered, but Hubble shows a drop")


def test_an_http_403_contradicted_by_the_application_answering() -> None:
    probe = facts(8080, 41300)
    request = flow_line(verdict="FORWARDED", port=8080, l7={"type": "REQUEST", "http": {"method": "POST", "url": "/"}})
    answer = flow_line(verdict="FORWARDED", reply=True, port=8080,
                       l7={"type": "RESPONSE", "http": {"code": 200, "method": "POST", "url": "/"}})
    check = judge(Verdict.L7_DENIED, "http", [request, answer], probe)
    assert check.state is EvidenceState.CONTRADICTED
    assert "HTTP 200" in check.detail


def test_dns_denial_is_the_proxys_dropped_request() -> None:
    probe = facts(53, 40001, "UDP")
    denied = flow_line(verdict="DROPPED", port=53, sport=40001, protocol="UDP",
                       l7={"type": "REQUEST", "dns": {"query": "api.example.com.", "qtypes": ["A"]}})
    assert judge(Verdict.L7_DENIED, "dns", [denied], probe).state is EvidenceState.CONFIRMED
    passed = flow_line(verdict="FORWARDED", port=53, sport=40001, protocol="UDP",
                       l7={"type": "REQUEST", "dns": {"query": "api.example.com.", "qtypes": ["A"]}})
    assert judge(Verdict.L7_DENIED, "dns", [passed], probe).state is EvidenceState.CONTRADICTED
    assert judge(Verdict.ALLOWED, "dns", [denied], probe).state is EvidenceState.CONTRADICTED


def test_errors_are_not_judged() -> None:
    synack = flow_line(verdict="FORWARDED", reply=True, flags={"SYN": True, "ACK": True})
    check = judge(Verdict.ERROR, "tcp", [synack], facts(9090, 41300))
    assert check.state is EvidenceState.NONE and "not judged" in check.detail
