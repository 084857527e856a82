"""Reading intent files: each entry's shape checked first, then against the topology; mistakes are one line."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from flowcheck.harness.intent_file import IntentError, new_entry, parse_intent, parse_intent_entries, render_intent
from flowcheck.model.flows import CidrEndpoint, EntityEndpoint, FqdnEndpoint, WorkloadEndpoint
from flowcheck.model.identity import Entity
from flowcheck.model.topology import load_topology
from flowcheck.verdict import Verdict
from tests.conftest import REPO_ROOT

TOPOLOGY = load_topology(REPO_ROOT / "fixtures" / "topology.yaml")


def parse(text: str) -> list[Any]:
    return parse_intent(textwrap.dedent(text), "team.flowcheck.yaml")


def test_a_list_or_a_paths_mapping_reads_the_same() -> None:
    entry = "- {from: tenant/client, to: default/my-api, port: http, http: GET /orders, verdict: allowed}\n"
    [read] = parse(entry)
    [nested] = parse("paths:\n" + textwrap.indent(entry, "  "))
    assert (nested.to_yaml(), nested.name, nested.line) == (read.to_yaml(), read.name, 2)
    assert read.name == "tenant/client -> default/my-api TCP/http GET /orders"
    assert read.line == 1


def test_an_entry_becomes_the_expectation_a_suite_call_would_make() -> None:
    [entry] = parse("""
        - name: orders are read
          from: tenant/client
          to: default/my-api
          port: http
          http: {method: get, path: /orders, headers: {X-Token: "42"}}
          verdict: allowed
    """)
    expectation = entry.expectation(TOPOLOGY)
    assert entry.name == "orders are read"
    assert expectation.flow.port == 8080
    assert expectation.flow.http is not None
    assert (expectation.flow.http.method, expectation.flow.http.path) == ("GET", "/orders")
    assert expectation.flow.http.header("x-token") == "42"
    assert expectation.verdict is Verdict.ALLOWED


@pytest.mark.parametrize(("to", "endpoint"), [
    ("api.example.com", FqdnEndpoint("api.example.com")),
    ("world", EntityEndpoint(Entity.WORLD)),
    ("{entity: world, ip: 1.1.1.1}", EntityEndpoint(Entity.WORLD, "1.1.1.1")),
    ("10.0.0.0/8", CidrEndpoint("10.0.0.0/8")),
    ("{cidr: 192.168.0.0/16}", CidrEndpoint("192.168.0.0/16")),
    ("kube-apiserver", EntityEndpoint(Entity.KUBE_APISERVER)),
])
def test_destinations_beyond_workloads(to: str, endpoint: object) -> None:
    [entry] = parse(f"- {{from: default/web, to: {to}, port: 443, verdict: dropped}}\n")
    flow = entry.expectation(TOPOLOGY).flow
    assert flow.destination == endpoint
    assert flow.source == WorkloadEndpoint("default/web")


@pytest.mark.parametrize(("text", "message"), [
    ("- {from: default/web, to: default/my-api, port: 8080}",
     "team.flowcheck.yaml:1: entry 0, field verdict: missing required field"),
    ("- {from: default/web, to: default/my-api, port: 8080, verdict: denied}",
     "field verdict: unknown verdict 'denied'; expected one of allowed, dropped, l7-denied"),
    ("- {from: default/web, to: default/my-api, port: 8080, verdict: unknown}",
     "field verdict: 'unknown' is not something to expect"),
    ("- {from: default/web, to: default/my-api, port: 8080, verdict: allowed, lables: {}}",
     "field lables: unknown field 'lables'"),
    ("- {name: ghost, from: default/web, to: default/my-api, port: 8080, verdict: allowed, prot: TCP}",
     "entry 0 (ghost), field prot: unknown field 'prot'"),
    ("- {name: x, from: default/web, to: default/my-api, port: 99999, verdict: allowed}",
     "entry 0 (x), field port: expected a port from 1 to 65535, got 99999"),
    ("- {from: default/web, to: default/my-api, port: 8080, verdict: allowed, protocol: QUIC}",
     "field protocol: expected one of TCP, UDP, SCTP, ICMP"),
    ("- {from: default/web, to: default/my-api, port: 8080, http: 'GET orders', verdict: allowed}",
     "field http: expected 'METHOD /path'"),
    ("- {from: default/web, to: default/my-api, port: 8080, http: 'POTS /orders', verdict: allowed}",
     "field http: POTS is not an HTTP method; did you mean POST?"),
    ("- {from: default/web, to: default/my-api, port: 8080, http: {method: GTE}, verdict: allowed}",
     "field http.method: GTE is not an HTTP method; did you mean GET?"),
    ("- {from: api.example.com, to: default/my-api, port: 8080, verdict: allowed}",
     "field from: an FQDN can only be a destination"),
    ("- {from: default/web, to: cidr:10.0.0.0/33, port: 8080, verdict: allowed}", "field to: "),
    ("- {from: default/web, to: default/my-api, port: 8080, verdict: allowed, live-only: yes please}",
     "field live-only: expected true or false"),
    ("- [from, to]", "entry 0: expected a mapping with from, to, verdict"),
    ("- {from: default/web, to: default/my-api, port: 8080, verdict: allowed, verdict: dropped}",
     "entry 0, field verdict: key 'verdict' appears twice; YAML would keep only the last"),
])
def test_a_malformed_entry_is_one_line_naming_file_entry_and_field(text: str, message: str) -> None:
    before = "- {name: before, from: default/web, to: default/my-api, port: 80, verdict: allowed}\n"
    after = "- {name: after, from: tenant/client, to: default/my-api, port: 8080, verdict: allowed}\n"
    first, error, last = parse_intent_entries(f"{before}{text}\n{after}", "team.flowcheck.yaml")
    assert isinstance(error, IntentError), error
    assert message.replace("entry 0", "entry 1").replace(".yaml:1:", ".yaml:2:") in str(error)
    assert str(error).startswith("team.flowcheck.yaml") and "\n" not in str(error)
    assert (first.name, last.name) == ("before", "after")  # the entries around it are read
    with pytest.raises(IntentError) as caught:  # all or nothing: the first mistake
        parse(text)
    assert str(caught.value) == str(error).replace(":2: entry 1", ":1: entry 0")


def test_an_entry_repeating_an_earlier_path_or_name_is_the_later_entrys_mistake() -> None:
    same_path = "- {from: default/web, to: default/my-api, port: 8080, verdict: %s}\n"
    first, second = parse_intent_entries(same_path % "allowed" + same_path % "dropped", "team.flowcheck.yaml")
    assert not isinstance(first, IntentError)
    assert str(second) == "team.flowcheck.yaml:2: entry 1: the same path as entry 0: state each path once"
    named = "- {name: web, from: default/web, to: default/my-api, port: %d, verdict: allowed}\n"
    first, second = parse_intent_entries(named % 8080 + named % 80, "team.flowcheck.yaml")
    assert not isinstance(first, IntentError)
    assert str(second).startswith("team.flowcheck.yaml:2: entry 1 (web), field name: the name is also entry 0's")


@pytest.mark.parametrize(("text", "message"), [
    ("paths: {from: a/b}", "team.flowcheck.yaml: expected a list of paths"),
    ("tests: []", "team.flowcheck.yaml, field tests: unknown top-level field 'tests'"),
    ("paths: []\npaths: []\n", "team.flowcheck.yaml, field paths: line 2: key 'paths' appears twice"),
    ("- {from: default/web, to: default/my-api, port: 8080, verdict: allowed\n", "team.flowcheck.yaml: invalid YAML"),
])
def test_a_file_that_cannot_be_read_as_a_whole_is_one_error(text: str, message: str) -> None:
    with pytest.raises(IntentError) as caught:
        parse_intent_entries(text, "team.flowcheck.yaml")
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


@pytest.mark.parametrize(("text", "message"), [
    ("- {from: default/webb, to: default/my-api, port: 8080, verdict: allowed}",
     "entry 0, field from: no workload 'default/webb' in the topology"),
    ("- {from: default/web, to: default/my-api, port: 8443, verdict: allowed}",
     "entry 0, field port: default/my-api does not serve TCP/8443"),
    ("- {from: default/web, to: default/my-api, port: grpc, verdict: allowed}",
     "field port: default/my-api serves no port named 'grpc'"),
    ("- {from: default/web, to: api.example.com, port: https, verdict: allowed}",
     "field port: api.example.com is outside the topology and serves no named ports"),
    ("- {from: world, to: 10.0.0.0/8, port: 443, verdict: allowed}", "neither end is a workload"),
])
def test_a_mistake_the_topology_shows_names_the_entry_and_field(text: str, message: str) -> None:
    [entry] = parse(text)
    with pytest.raises(IntentError) as caught:
        entry.expectation(TOPOLOGY)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_written_entries_read_back_as_written() -> None:
    entries = [new_entry("tenant/client", "default/my-api", Verdict.L7_DENIED, port=8080, http="POST /orders",
                         headers={"X-Token": "1"}, review="captured"),
               new_entry("default/web", "kube-system/coredns", Verdict.ALLOWED, dns="example.com", review="captured"),
               new_entry("default/web", "10.0.0.0/8", Verdict.DROPPED, port=5432, live_only=True)]
    read = parse_intent(render_intent(entries, "a header\n\nsecond paragraph"), "x.flowcheck.yaml")
    assert [e.to_yaml() for e in read] == [e.to_yaml() for e in entries]
    assert [e.name for e in read] == [e.name for e in entries]


_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-5, 70000) | st.text(max_size=12),
                       lambda children: st.lists(children, max_size=3) | st.dictionaries(
                           st.sampled_from(["from", "to", "port", "protocol", "http", "dns", "qtype", "verdict",
                                            "name", "live-only", "review", "method", "path", "headers", "host",
                                            "entity", "fqdn", "cidr", "ip", "paths", "x"]), children, max_size=5),
                       max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(_VALUES)
def test_any_document_is_entries_or_one_line_error(document: Any) -> None:
    text = yaml.safe_dump(document)
    errors: list[IntentError] = []
    try:
        read = parse_intent_entries(text, "fuzz.flowcheck.yaml")
    except IntentError as exc:
        read = [exc]
    for entry in read:
        if isinstance(entry, IntentError):
            errors.append(entry)
            continue
        try:
            entry.expectation(TOPOLOGY)
        except IntentError as exc:
            errors.append(exc)
    for error in errors:
        assert "\n" not in str(error) and str(error).startswith("fuzz.flowcheck.yaml")


def test_an_unnamed_entry_with_a_port_name_and_no_protocol_is_not_called_tcp() -> None:
    """`port: dns` may be UDP (the destination decides): the test id shows the name, not a guessed protocol."""
    [entry] = parse("- {from: default/web, to: kube-system/coredns, port: dns, verdict: allowed}\n")
    assert entry.name == "default/web -> kube-system/coredns dns"
