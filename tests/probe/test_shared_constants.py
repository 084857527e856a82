"""The probe agent and server run alone on the standard library, so they keep their own copies of
constants the library defines once (``flowcheck.vocabulary``, ``flowcheck.probe.plan``): the copies
must agree, or a plan the library builds would mean something else inside the pod."""

from __future__ import annotations

import string

from flowcheck.probe import agent, plan, server
from flowcheck.vocabulary import DNS_PORT, HTTP_TOKEN


def test_the_http_token_is_the_same_character_set_everywhere() -> None:
    printable = set(string.printable) | {"\x00", "\x7f", "é"}
    library = {ch for ch in printable if HTTP_TOKEN.match(ch)}
    assert library == set(agent.HTTP_TOKEN_CHARS) == set(server.HTTP_TOKEN_CHARS)


def test_the_agents_limits_and_defaults_are_the_plans() -> None:
    assert agent.DEFAULT_TIMEOUT_S == plan.DEFAULT_PROBE_TIMEOUT_S
    assert agent.DEFAULT_CONCURRENCY == plan.DEFAULT_CONCURRENCY
    assert agent.MAX_TIMEOUT_S == plan.MAX_TIMEOUT_S
    assert agent.MAX_CONCURRENCY == plan.MAX_CONCURRENCY
    assert agent.DEADLINE_MARGIN_S == plan.AGENT_DEADLINE_MARGIN_S
    assert set(agent.DNS_QTYPES) == set(plan.DNS_QTYPES)


def test_a_dns_probe_without_a_port_goes_to_the_dns_port_in_the_agent_and_the_library() -> None:
    spec = agent.validate_probe({"id": "1", "kind": "dns", "server": "10.0.0.1", "name": "a.example"}, 2.0)
    assert spec["port"] == DNS_PORT == plan.DnsProbe("1", "10.0.0.1", "a.example").port

