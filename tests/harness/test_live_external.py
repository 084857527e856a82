"""Live probes of ends outside the topology: what a pod can reach is probed, the rest says why not."""

from __future__ import annotations

import pytest

from flowcheck.harness.expectations import make_expectation
from flowcheck.harness.live import LiveItem, external_target, live_items_for
from flowcheck.model.flows import EntityEndpoint, FqdnEndpoint
from flowcheck.model.identity import Entity
from flowcheck.model.topology import load_topology
from flowcheck.probe.plan import HttpProbe, TcpProbe
from flowcheck.verdict import Verdict
from tests.conftest import REPO_ROOT
from tests.harness.fakes import FakeBackend, FakeExecutor, addresses_for

TOPOLOGY = load_topology(REPO_ROOT / "fixtures" / "topology.yaml")
BACKEND = FakeBackend(FakeExecutor(addresses_for(TOPOLOGY), lambda *_: Verdict.ALLOWED), ["kube-system/coredns"])


def item(source: str, destination: str, **kwargs: object) -> LiveItem | str:
    expectation = make_expectation(TOPOLOGY, source, destination, verdict="allowed", **kwargs)  # type: ignore[arg-type]
    made = live_items_for(BACKEND, expectation, lambda: 1, Verdict.ALLOWED)
    if isinstance(made, str):
        return made
    [only] = made  # one route out of the topology, whatever the placement
    return only


def test_an_fqdn_is_probed_by_name_through_the_pods_resolver() -> None:
    tcp = item("default/web", "api.example.com", port=443)
    assert isinstance(tcp, LiveItem)
    assert tcp.spec == TcpProbe("0", "api.example.com", 443)
    assert (tcp.expected_server, tcp.foreign_destination) == (None, True)
    http = item("default/web", "api.example.com", port=80, http="GET /status")
    assert isinstance(http, LiveItem) and isinstance(http.spec, HttpProbe)
    assert (http.spec.host, http.spec.path) == ("api.example.com", "/status")


def test_the_api_server_is_probed_through_its_service_on_443_only() -> None:
    probe = item("default/web", "kube-apiserver", port=443)
    assert isinstance(probe, LiveItem)
    assert probe.spec == TcpProbe("0", "kubernetes.default.svc", 443)
    assert item("default/web", "kube-apiserver", port=6443) == (
        "kube-apiserver is probed only through its kubernetes.default.svc Service on TCP/443, not TCP/6443")


@pytest.mark.parametrize(("destination", "why"), [
    ("world", "world is outside the cluster: a run does not depend on reaching the internet, so only the model "
              "checks it"),
    ("1.1.1.1", "world (1.1.1.1) is outside the cluster"),
    ("10.0.0.0/8", "10.0.0.0/8 is outside the cluster"),
    ("host", "host: the live back end gives pod addresses only, not the nodes'"),
])
def test_what_a_pod_cannot_be_sent_to_says_why(destination: str, why: str) -> None:
    reason = item("default/web", destination, port=443)
    assert isinstance(reason, str) and reason.startswith(why)


def test_nothing_is_sent_from_outside_the_cluster() -> None:
    assert item("world", "default/web", port=8080) == (
        "world is not a workload: the probe agent runs only in flowcheck's probe pods, so nothing can send from there")


def test_external_targets() -> None:
    assert external_target(FqdnEndpoint("api.example.com", "203.0.113.7"), "TCP", 443).host == "api.example.com"
    assert external_target(EntityEndpoint(Entity.KUBE_APISERVER), "UDP", 443).host is None
