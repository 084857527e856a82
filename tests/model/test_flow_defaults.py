"""A flows-file entry that leaves out its protocol or port, or names its port (docs/contracts.md, "Flow file"):
what it means, and the one-line error when it cannot mean anything."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowcheck.errors import TopologyError
from flowcheck.model.flows import Flow, parse_flow
from flowcheck.model.topology import Port, Topology
from tests.model.helpers import topo, wl

TOPOLOGY = topo(
    wl("default/web"),
    wl("default/api", ports=(Port("http", 8080, "TCP"), Port("metrics", 9090, "TCP"))),
    wl("kube-system/dns", ports=(Port("dns", 53, "UDP"), Port("dns-tcp", 53, "TCP"))),
    wl("default/dual", ports=(Port("both", 5353, "UDP"), Port("both", 5353, "TCP"), Port("sig", 3868, "SCTP"))),
)
NAMES = ["http", "metrics", "dns", "dns-tcp", "both", "sig", "grpc"]


def fail(field: str, message: str) -> TopologyError:
    return TopologyError("flows.yaml", field, message)


def parse(raw: dict[str, Any], topology: Topology | None = TOPOLOGY) -> Flow:
    return parse_flow(raw, "[0]", fail, topology)


def test_a_dns_query_with_no_protocol_or_port_is_udp_53() -> None:
    flow = parse({"from": "default/web", "to": "kube-system/dns", "dns": {"query": "example.com"}})
    assert (flow.protocol, flow.port) == ("UDP", 53)
    flow = parse({"from": "default/web", "to": "kube-system/dns", "protocol": "tcp", "dns": {"query": "example.com"}})
    assert (flow.protocol, flow.port) == ("TCP", 53)


def test_a_port_name_is_the_destinations_port_with_its_protocol() -> None:
    assert parse({"from": "default/web", "to": "default/api", "port": "metrics"}) == \
        Flow.between("default/web", "default/api", port=9090)
    assert parse({"from": "default/web", "to": "kube-system/dns", "port": "dns"}) == \
        Flow.between("default/web", "kube-system/dns", port=53, protocol="UDP")
    assert parse({"from": "default/web", "to": "default/api", "port": "8080"}) == \
        Flow.between("default/web", "default/api", port=8080)


@pytest.mark.parametrize(("raw", "message"), [
    ({"to": "default/dual", "port": "both"},
     "flows.yaml, field [0].protocol: default/dual serves a port named 'both' under TCP and UDP (UDP/5353 (both), "
     "TCP/5353 (both)); say which protocol"),
    ({"to": "kube-system/dns", "port": "dns", "protocol": "TCP"},
     "flows.yaml, field [0].port: kube-system/dns serves no TCP port named 'dns' (it serves UDP/53 (dns), "
     "TCP/53 (dns-tcp))"),
    ({"to": "default/api", "port": "grpc"},
     "flows.yaml, field [0].port: default/api serves no port named 'grpc' (it serves TCP/8080 (http), "
     "TCP/9090 (metrics))"),
    ({"to": {"entity": "world", "ip": "1.1.1.1"}, "port": "https"},
     "flows.yaml, field [0].port: world (1.1.1.1) is outside the topology and serves no named ports; give the "
     "number"),
    ({"to": "default/api", "port": "0"}, "flows.yaml, field [0].port: expected a port number from 1 to 65535 or a "
                                         "port name, got 0"),
    ({"to": "default/api", "port": " http"}, "field [0].port: expected a port number from 1 to 65535 or a port "
                                             "name, got ' http'"),
    ({"to": "default/api", "port": [80]}, "field [0].port: expected a port number from 1 to 65535 or a port "
                                          "name, got a list"),
    ({"to": "default/api"}, "field [0].port: missing required field (a TCP flow needs a port)"),
    ({"to": "default/dual", "port": "sig", "dns": {"query": "example.com"}},
     "field [0].dns: a DNS query needs protocol UDP or TCP"),
])
def test_a_flow_that_cannot_mean_anything_is_one_line_naming_the_field(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(TopologyError) as caught:
        parse({"from": "default/web", **raw})
    assert message in str(caught.value)


def test_a_port_name_without_a_topology_asks_for_the_number() -> None:
    with pytest.raises(TopologyError, match=r"field \[0\]\.port: a port name \('metrics'\) is looked up in the "
                                            r"topology, and there is none here; give the number"):
        parse({"from": "default/web", "to": "default/api", "port": "metrics"}, topology=None)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(destination=st.sampled_from(["default/api", "kube-system/dns", "default/dual", "1.1.1.1"]),
       port=st.one_of(st.none(), st.sampled_from(NAMES), st.integers(-1, 70000),
                      st.integers(0, 70000).map(str), st.text(max_size=5)),
       protocol=st.one_of(st.none(), st.sampled_from(["TCP", "udp", "SCTP", "ICMP"])),
       dns=st.one_of(st.none(), st.just("example.com")),
       with_topology=st.booleans())
def test_a_flow_is_what_its_fields_say_or_one_error_naming_a_field(destination: str, port: object,
                                                                   protocol: str | None, dns: str | None,
                                                                   with_topology: bool) -> None:
    raw: dict[str, Any] = {"from": "default/web", "to": destination}
    for key, value in (("port", port), ("protocol", protocol)):
        if value is not None:
            raw[key] = value
    if dns is not None:
        raw["dns"] = {"query": dns}
    topology = TOPOLOGY if with_topology else None
    try:
        flow = parse(raw, topology)
    except TopologyError as exc:
        error: TopologyError | None = exc
    else:
        error = None
    if error is not None:
        assert error.field.startswith("[0]") and error.message and "\n" not in str(error)
        return
    if protocol is not None:
        assert flow.protocol == protocol.upper()  # an explicit protocol wins
    if isinstance(port, str) and not (port.isascii() and port.isdigit()):
        served = TOPOLOGY.workload(destination).named_port(port)
        assert (flow.port, flow.protocol) in {(p.port, p.protocol) for p in served}
        if protocol is None:
            assert len({p.protocol for p in served}) == 1  # a name under two protocols never guesses
    elif protocol is None:
        assert flow.protocol == ("UDP" if dns else "TCP")
    if port is None and flow.protocol != "ICMP":
        assert dns is not None and flow.port == 53
    # What explain prints and a decided flow carries is a flows-file entry meaning the same flow.
    assert parse(flow.to_json(), topology) == flow
