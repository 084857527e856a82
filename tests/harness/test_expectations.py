"""Expectations: a suite's readable call becomes a model flow, or a message naming what is wrong."""

from __future__ import annotations

import pytest

from flowcheck.harness.expectations import ExpectationError, make_expectation, parse_http
from flowcheck.model.topology import Topology, UnknownWorkloadError, load_topology
from flowcheck.verdict import Verdict
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_topology(REPO_ROOT / "fixtures" / "topology.yaml")


def test_http_expectation_becomes_an_http_flow(topology: Topology) -> None:
    e = make_expectation(topology, "tenant/client", "default/my-api", port=8080, http="POST /orders",
                         headers={"X-Token": "42"}, verdict="l7-denied")
    assert e.verdict is Verdict.L7_DENIED
    assert e.flow.http is not None
    assert (e.flow.http.method, e.flow.http.path, e.flow.http.header("x-token")) == ("POST", "/orders", "42")
    assert e.request == "POST /orders"
    assert e.describe() == "tenant/client -> default/my-api TCP/8080 POST /orders"


def test_dns_expectation_defaults_to_udp_53(topology: Topology) -> None:
    e = make_expectation(topology, "default/web", "kube-system/coredns", dns="kubernetes.default",
                         verdict="allowed")
    assert (e.flow.protocol, e.flow.port) == ("UDP", 53)
    assert e.request == "DNS A kubernetes.default"


def test_named_port_resolves_on_the_destination(topology: Topology) -> None:
    e = make_expectation(topology, "monitoring/prometheus", "default/web", port="metrics", verdict="allowed")
    assert e.flow.port == 9090


def test_unknown_workload_names_the_known_ones(topology: Topology) -> None:
    with pytest.raises(UnknownWorkloadError, match=r"no workload 'default/nope'.*known: default/my-api"):
        make_expectation(topology, "default/nope", "default/web", port=8080, verdict="allowed")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": 8080, "verdict": "maybe"}, "verdict='maybe': unknown verdict; expected one of allowed, dropped, "
                                             "l7-denied$"),
        ({"port": 8080, "verdict": "unknown"}, "an expectation names one of allowed, dropped, l7-denied"),
        ({"verdict": "allowed"}, "port= is required for TCP"),
        ({"port": "grpc", "verdict": "allowed"}, r"port='grpc': default/web serves no port named 'grpc' \(it serves "
                                                 r"TCP/8080 \(http\), TCP/9090 \(metrics\)\)"),
        ({"port": "http", "protocol": "UDP", "verdict": "allowed"}, "default/web serves no UDP port named 'http'"),
        ({"port": 8080, "protocol": "UDP", "http": "GET /", "verdict": "allowed"}, "needs protocol TCP"),
        ({"port": 8080, "headers": {"a": "b"}, "verdict": "allowed"}, "only make sense with http="),
        ({"port": 70000, "verdict": "allowed"}, "port=70000: expected a port number from 1 to 65535 or a port name"),
        ({"port": 8080, "http": "GET orders", "verdict": "allowed"}, "expected 'METHOD /path'"),
        ({"port": 8080, "http": "PSOT /orders", "verdict": "allowed"}, "PSOT is not an HTTP method; did you mean "
                                                                       "POST"),
        ({"port": 22, "verdict": "dropped"}, r"port=22: default/web does not serve TCP/22 \(it serves TCP/8080 "
                                             r"\(http\), TCP/9090 \(metrics\)\); a probe there could only be refused"),
        ({"port": 8080, "protocol": "UDP", "verdict": "dropped"}, "default/web does not serve UDP/8080"),
        ({"dns": "kubernetes.default", "verdict": "allowed"}, "default/web does not serve UDP/53"),
    ],
)
def test_meaningless_expectations_are_rejected(topology: Topology, kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ExpectationError, match=message):
        make_expectation(topology, "tenant/client", "default/web", **kwargs)


def test_bare_method_means_root_path() -> None:
    assert parse_http("get") == ("GET", "/")
