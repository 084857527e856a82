"""Replaying Hubble flows (``flowcheck.model.replay``): which records are paths, how their ends map to the
topology, and that no record is ever dropped silently -- also for arbitrary, hostile input (hypothesis)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flowcheck.model.flows import EntityEndpoint, FqdnEndpoint, WorkloadEndpoint
from flowcheck.model.hubble_flow import FlowRecord, parse_flow_line
from flowcheck.model.identity import Entity
from flowcheck.model.replay import Skip, observe
from flowcheck.model.topology import Port
from tests.model.helpers import topo, wl

TOPOLOGY = topo(
    wl("default/api", {"app": "api"}, ports=(Port("http", 8080, "TCP"),)),
    wl("default/api-canary", {"app": "api", "track": "canary"}),
    wl("default/twin-a", {"tier": "x"}), wl("default/twin-b", {"tier": "x"}),
    wl("default/fixed", {"app": "fixed"}, ip="10.244.9.9"),
    wl("tenant/client", {"app": "client"}),
)


def pod(namespace: str, name: str, **labels: str) -> dict[str, Any]:
    return {"namespace": namespace, "pod_name": name, "identity": 4242,
            "labels": [*(f"k8s:{k}={v}" for k, v in labels.items()), f"k8s:io.kubernetes.pod.namespace={namespace}",
                       "k8s:io.cilium.k8s.policy.serviceaccount=default", "k8s:io.cilium.k8s.policy.cluster=c1",
                       f"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name={namespace}"]}


def reserved(*names: str) -> dict[str, Any]:
    return {"identity": 2, "labels": [f"reserved:{n}" for n in names]}


def record(source: dict[str, Any], destination: dict[str, Any], *, l4: dict[str, Any] | None = None,
           verdict: str = "FORWARDED", reply: bool | None = False, **extra: Any) -> FlowRecord:
    flow: dict[str, Any] = {"time": "2026-08-27T15:02:00.1Z", "verdict": verdict, "Type": "L3_L4",
                            "IP": {"source": "10.244.1.5", "destination": "10.244.2.6"},
                            "l4": l4 or {"TCP": {"source_port": 40000, "destination_port": 8080,
                                                 "flags": {"SYN": True}}},
                            "source": source, "destination": destination, **extra}
    if reply is not None:
        flow["is_reply"] = reply
    parsed = parse_flow_line(json.dumps({"flow": flow, "node_name": "c1/n1", "time": flow["time"]}))
    assert parsed is not None
    return parsed


def one_path(*records: FlowRecord) -> Any:
    observed = observe(records, TOPOLOGY)
    assert len(observed.paths) == 1, observed
    return observed.paths[0]


def skipped(*records: FlowRecord) -> dict[Skip, int]:
    observed = observe(records, TOPOLOGY)
    assert observed.records == len(records) == sum(p.records for p in observed.paths) + observed.skipped_records
    return {s.reason: s.records for s in observed.skipped}


def test_a_pod_maps_to_the_workload_whose_labels_are_all_among_its_own_the_most_specific_first() -> None:
    client = pod("tenant", "client-1", app="client", version="v3")
    path = one_path(record(client, pod("default", "api-7f-x", app="api", track="canary", extra="1")))
    assert path.flow.source == WorkloadEndpoint("tenant/client")
    assert path.flow.destination == WorkloadEndpoint("default/api-canary")  # both api workloads match; canary has more
    assert one_path(record(client, pod("default", "api-7f-y", app="api"))).flow.destination == WorkloadEndpoint(
        "default/api")


def test_equally_good_matches_and_strangers_are_not_guessed() -> None:
    client = pod("tenant", "client-1", app="client")
    observed = observe([record(client, pod("default", "t-1", tier="x")),
                        record(client, pod("default", "other", app="other")),
                        record(client, pod("ghost", "g", app="api"))], TOPOLOGY)
    assert observed.paths == ()
    [unmapped] = observed.skipped
    assert (unmapped.reason, unmapped.records) == (Skip.DESTINATION_UNMAPPED, 3)
    assert unmapped.examples == (
        "default/t-1: its labels match default/twin-a, default/twin-b equally; the topology does not say which",
        "default/other (app=other): no workload of default has all its labels among these",
        "ghost/g: the topology has no namespace ghost")


def test_an_address_maps_to_the_workload_that_has_it_and_reserved_labels_to_entities() -> None:
    client = pod("tenant", "client-1", app="client")
    by_ip = record(client, {"identity": 0, "labels": []}, IP={"source": "10.244.1.5", "destination": "10.244.9.9"})
    assert one_path(by_ip).flow.destination == WorkloadEndpoint("default/fixed")
    world = record(client, reserved("world"), destination_names=["api.example.com"],
                   IP={"source": "10.244.1.5", "destination": "203.0.113.7"})
    assert one_path(world).flow.destination == FqdnEndpoint("api.example.com", "203.0.113.7")
    apiserver = record(client, reserved("kube-apiserver", "host"),
                       IP={"source": "10.244.1.5", "destination": "172.18.0.2"})
    assert one_path(apiserver).flow.destination == EntityEndpoint(Entity.KUBE_APISERVER, "172.18.0.2")
    probe = record(reserved("host"), pod("default", "api-1", app="api"))
    assert one_path(probe).flow.source == EntityEndpoint(Entity.HOST, "10.244.1.5")


def test_replies_responses_and_records_of_unknown_direction_are_counted_not_replayed() -> None:
    client, api = pod("tenant", "c", app="client"), pod("default", "a", app="api")
    ack = {"TCP": {"source_port": 8080, "destination_port": 40000, "flags": {"ACK": True}}}
    assert skipped(record(api, client, l4=ack, reply=True),
                   record(client, api, l4=ack, reply=None),
                   record(api, client, reply=True, Type="L7", l7={"type": "RESPONSE", "http": {"code": 200}}),
                   record(client, api, l4={"ICMPv4": {}}, reply=None, verdict="DROPPED"),
                   record(client, api, l4={"IGMP": {}}, reply=False)) == {
        Skip.REPLY: 1, Skip.DIRECTION_UNKNOWN: 1, Skip.L7_RESPONSE: 1, Skip.ICMP_NOT_ECHO: 1, Skip.NO_TRANSPORT: 1}


def test_a_drop_and_a_syn_without_is_reply_are_the_request_direction() -> None:
    client, api = pod("tenant", "c", app="client"), pod("default", "a", app="api")
    path = one_path(record(client, api, reply=None, verdict="DROPPED"), record(client, api, reply=None))
    assert (path.records, dict(path.verdicts), path.carried) == (2, {"DROPPED": 1, "FORWARDED": 1}, True)


def test_l7_requests_are_paths_of_their_own_with_the_request() -> None:
    client, api = pod("tenant", "c", app="client"), pod("default", "a", app="api")
    get = record(client, api, Type="L7", l7={"type": "REQUEST", "http": {
        "method": "GET", "url": "http://api.default:8080/orders?id=3", "headers": [{"key": "X-Token", "value": "1"}]}})
    dns = record(client, api, Type="L7", l4={"UDP": {"source_port": 5000, "destination_port": 53}},
                 l7={"type": "REQUEST", "dns": {"query": "example.com."}})
    observed = observe([get, dns, record(client, api)], TOPOLOGY)
    flows = [p.flow for p in observed.paths]
    assert flows[0].http is not None and (flows[0].http.method, flows[0].http.path, flows[0].http.host,
                                          flows[0].http.headers) == ("GET", "/orders?id=3", "api.default:8080",
                                                                     (("X-Token", "1"),))
    assert flows[1].dns is not None and flows[1].dns.query == "example.com"
    assert (flows[1].protocol, flows[1].port) == ("UDP", 53)
    assert flows[2].http is None and flows[2].port == 8080


JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-2, 70000), st.text(max_size=12),
                      st.sampled_from(["TCP", "UDP", "ICMPv4", "L7", "REQUEST", "RESPONSE", "DROPPED", "FORWARDED",
                                       "reserved:world", "reserved:host", "k8s:app=api", "default", "10.244.9.9",
                                       "2026-08-27T15:02:00Z"]))
JSON = st.recursive(JSON_LEAF, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=12), inner, max_size=5)),
                    max_leaves=12)
FLOW_KEYS = ["time", "verdict", "Type", "IP", "l4", "source", "destination", "l7", "is_reply", "reply",
             "destination_names", "event_type", "drop_reason_desc"]


@settings(max_examples=120, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(FLOW_KEYS), JSON, max_size=10), max_size=4))
def test_any_flow_shaped_json_is_replayed_or_counted_never_a_crash(flows: list[dict[str, Any]]) -> None:
    records = []
    for flow in flows:
        flow.setdefault("time", "2026-08-27T15:02:00Z")
        parsed = parse_flow_line(json.dumps({"flow": flow}))
        if parsed is not None:
            records.append(parsed)
    observed = observe(records, TOPOLOGY)
    assert sum(p.records for p in observed.paths) + observed.skipped_records == observed.records == len(records)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), JSON.map(json.dumps)))
def test_any_line_parses_to_a_record_or_to_none(line: str) -> None:
    assert parse_flow_line(line) is None or isinstance(parse_flow_line(line), FlowRecord)
