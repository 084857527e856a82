"""Live probing against fakes: evidence per probe, placement, realization, reachable destinations,
one verdict per path per run, foreign exceptions (issue 17.2-17.5).

The fake cluster decides from a fixed table written from the policy text (``scenario_decider``);
its fake Hubble answers with flows shaped as ``hubble observe -o json`` prints them, agreeing with
what the fake cluster did unless a test makes them contradict it.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from flowcheck.harness.backends import NodeAddress, NodeAddressing, ProbeRoute, SourceNodes
from flowcheck.harness.checker import HarnessContext, PathChecker
from flowcheck.harness.live import await_realization
from flowcheck.harness.run_ledger import RunLedger
from flowcheck.model.engine import Model
from flowcheck.model.policies import load_policies
from flowcheck.model.topology import load_topology
from flowcheck.probe.executor import CompletedExec
from flowcheck.report.records import CheckedFlow
from flowcheck.verdict import Verdict
from tests.conftest import POLICIES_DIR, REPO_ROOT
from tests.harness.fakes import FakeBackend, FakeExecutor, addresses_for, scenario_decider, two_node_backend


@pytest.fixture(scope="module")
def model() -> Model:
    return Model(load_topology(REPO_ROOT / "fixtures" / "topology.yaml"), load_policies([POLICIES_DIR]))


def checker(model: Model, backend: FakeBackend, *, ledger: RunLedger | None = None, test: str = "t::one",
            recorded: list[CheckedFlow] | None = None, realization_timeout_s: float = 5.0) -> PathChecker:
    counter = itertools.count()
    context = HarnessContext(model=model, live=backend, offline_reason=None, probe_timeout_s=0.5,
                             record=(recorded if recorded is not None else []).append, next_key=lambda: next(counter),
                             retry_wait_s=0.0, ledger=ledger or RunLedger(),
                             realization_timeout_s=realization_timeout_s)
    return PathChecker(context, test)


def backend_for(model: Model, **kwargs: Any) -> FakeBackend:
    overrides = kwargs.pop("overrides", None)
    executor = FakeExecutor(addresses_for(model.topology), scenario_decider(overrides))
    existing = [w.ref for w in model.topology.workloads if w.existing]
    return FakeBackend(executor, existing, **kwargs)


# ---------------------------------------------------------------------------------------------
# Evidence per probe (17.2)


def test_two_probes_to_one_destination_in_one_batch_each_get_only_their_own_flows(model: Model) -> None:
    """suites/test_default_deny.py's pair: web -> my-api:8080 as a TCP path and as GET / -- one batch."""
    backend = backend_for(model, hubble=True)
    paths = checker(model, backend)
    paths.expect("default/web", "default/my-api", port=8080, verdict="dropped")
    paths.expect("default/web", "default/my-api", port=8080, http="GET /orders", verdict="dropped")
    first, second = paths.check()
    sports = [s.sport for s in backend.executor.sent]
    assert len(sports) == 2 and sports[0] != sports[1]
    assert first.evidence and second.evidence
    assert all(f":{sports[0]} ->" in line for line in first.evidence)
    assert all(f":{sports[1]} ->" in line for line in second.evidence)
    assert (first.evidence_state, second.evidence_state) == ("confirmed", "confirmed")


def test_an_observation_its_flows_contradict_is_an_error_never_a_pass(model: Model) -> None:
    """A probe that timed out while Hubble shows a forwarded reply: one of the two views is wrong."""
    backend = backend_for(model, hubble=True, contradict=["tenant/client->default/web:8080"])
    paths = checker(model, backend)
    paths.expect("tenant/client", "default/web", port=8080, verdict="dropped")
    with pytest.raises(pytest.fail.Exception, match="the probe itself failed: not a verdict"):
        paths.check()
    [record] = paths.checked
    assert record.observed is Verdict.ERROR and record.evidence_state == "contradicted"
    assert record.observed_detail.startswith("inconsistent: the probe saw dropped (no answer within the timeout")
    assert "but the probe timed out, but Hubble shows a forwarded reply: FORWARDED" in record.observed_detail


def test_a_probe_no_flow_decides_is_counted_as_no_evidence(model: Model) -> None:
    backend = backend_for(model, hubble=True)
    backend.executor.sent.clear()
    real_evidence = backend.evidence
    backend.evidence = lambda queries, since, until: {q.probe_id: () for q in queries} if real_evidence(  # type: ignore[method-assign]
        queries, since, until) is not None else None
    paths = checker(model, backend)
    paths.expect("monitoring/prometheus", "default/web", port=9090, verdict="allowed")
    [record] = paths.check()
    assert (record.observed, record.evidence_state, record.evidence) == (Verdict.ALLOWED, "none", ())


def test_without_an_evidence_source_nothing_is_judged_or_counted(model: Model) -> None:
    paths = checker(model, backend_for(model, hubble=False))
    paths.expect("monitoring/prometheus", "default/web", port=9090, verdict="allowed")
    [record] = paths.check()
    assert record.evidence_state == ""


def test_a_failing_hubble_keeps_the_observations(model: Model) -> None:
    backend = backend_for(model, hubble=True)

    def broken(*_args: Any) -> Any:
        raise OSError("connection reset by peer")

    backend.evidence = broken  # type: ignore[method-assign]
    paths = checker(model, backend)
    paths.expect("monitoring/prometheus", "default/web", port=9090, verdict="allowed")
    [record] = paths.check()
    assert record.observed is Verdict.ALLOWED and record.evidence_state == "none"
    assert record.evidence == ("(Hubble evidence unavailable: OSError: connection reset by peer)",)


# ---------------------------------------------------------------------------------------------
# Identity checks (17.5: nobody checked who answered a plain TCP probe)


def test_a_tcp_path_to_a_probe_server_is_an_identity_check(model: Model) -> None:
    backend = backend_for(model, hubble=False)
    paths = checker(model, backend)
    paths.expect("monitoring/prometheus", "default/web", port=9090, verdict="allowed")
    [record] = paths.check()
    [sent] = backend.executor.sent
    assert (sent.probe["kind"], sent.probe["method"], sent.probe["path"]) == ("http", "GET", "/")
    assert record.observed_detail == ("TCP connected; HTTP request answered by 'default/web' (identity checked over "
                                      "HTTP)")


def test_an_impostor_answering_a_tcp_path_fails_it(model: Model) -> None:
    backend = backend_for(model, hubble=False)
    backend.server_name = lambda target: "default/somebody-else"  # type: ignore[method-assign]
    paths = checker(model, backend)
    paths.expect("monitoring/prometheus", "default/web", port=9090, verdict="allowed")
    with pytest.raises(pytest.fail.Exception, match="answered by server 'default/web', expected "
                                                    "'default/somebody-else'"):
        paths.check()


# ---------------------------------------------------------------------------------------------
# Placement (17.3)


def test_with_two_nodes_every_path_yields_a_same_node_and_a_cross_node_record(model: Model) -> None:
    backend = two_node_backend(model.topology, scenario_decider())
    paths = checker(model, backend)
    paths.expect("tenant/client", "default/web", port=8080, verdict="dropped")
    paths.expect("monitoring/prometheus", "default/web", port=9090, verdict="allowed")
    records = paths.check()
    assert [(r.source, r.destination, r.placement, r.source_node, r.destination_node, r.probed_via)
            for r in records] == [
        ("tenant/client", "default/web", "same-node", "a", "a", "tenant/client@a -> default/web@a"),
        ("tenant/client", "default/web", "cross-node", "a", "b", "tenant/client@a -> default/web@b"),
        ("monitoring/prometheus", "default/web", "same-node", "a", "a",
         "monitoring/prometheus@a -> default/web@a"),
        ("monitoring/prometheus", "default/web", "cross-node", "a", "b",
         "monitoring/prometheus@a -> default/web@b")]
    assert all(r.observed == r.expected for r in records)


def test_a_verdict_that_differs_by_placement_fails_and_says_where(model: Model) -> None:
    decide = scenario_decider()

    def cross_node_leak(source: str, destination: str, probe: dict[str, Any]) -> Verdict:
        if probe.get("host", "").startswith("10.244.2.") and destination == "default/web":
            return Verdict.ALLOWED  # node b's pod of web enforces nothing
        return decide(source, destination, probe)

    backend = two_node_backend(model.topology, cross_node_leak)
    paths = checker(model, backend)
    paths.expect("tenant/client", "default/web", port=8080, verdict="dropped")
    with pytest.raises(pytest.fail.Exception) as failure:
        paths.check()
    text = str(failure.value)
    assert "1 of 2 paths do not behave as intended" in text
    assert "tenant/client -> default/web TCP/8080  [cross-node: tenant/client@a -> default/web@b]" in text


# ---------------------------------------------------------------------------------------------
# Realization before the first probe (17.4, 17.5)


def test_nothing_is_probed_before_the_back_end_reports_the_policies_realized(model: Model) -> None:
    backend = backend_for(model, lagging=[["default/web: realized revision 4, waiting for >= 5"], []])
    sleeps: list[float] = []
    assert await_realization(backend, RunLedger(), sleep=sleeps.append) == []
    assert (backend.unrealized_calls, sleeps) == (2, [1.0])


def test_policies_never_realized_make_every_path_an_error_not_a_verdict(model: Model) -> None:
    backend = backend_for(model, lagging=[["default/web: realized revision 4, waiting for >= 5"]])
    ledger = RunLedger()
    clock = itertools.count()
    lagging = await_realization(backend, ledger, timeout_s=3, sleep=lambda _s: None,
                                clock=lambda: float(next(clock)))
    assert lagging == ["default/web: realized revision 4, waiting for >= 5"]
    assert not ledger.realized
    paths = checker(model, backend, ledger=ledger, realization_timeout_s=0.0)
    paths.expect("monitoring/prometheus", "default/web", port=9090, verdict="allowed")
    with pytest.raises(pytest.fail.Exception, match="the probe itself failed"):
        paths.check()
    [record] = paths.checked
    assert record.observed is Verdict.ERROR and record.attempts == 0
    assert record.observed_detail == ("not probed: the applied policies are not enforced yet after 0 s, so no "
                                      "observation could be judged: default/web: realized revision 4, waiting for >= 5")
    assert backend.executor.runs == []


def test_the_realization_check_runs_once_per_process(model: Model) -> None:
    backend = backend_for(model)
    ledger = RunLedger()
    for _ in range(3):
        paths = checker(model, backend, ledger=ledger)
        paths.expect("monitoring/prometheus", "default/web", port=9090, verdict="allowed")
        paths.check()
    assert backend.unrealized_calls == 1


# ---------------------------------------------------------------------------------------------
# A drop needs a reachable destination (17.5)


def test_a_drop_hubble_does_not_confirm_is_kept_when_a_control_path_reaches_the_destination(model: Model) -> None:
    backend = backend_for(model, hubble=False)
    paths = checker(model, backend)
    paths.expect("tenant/client", "default/web", port=8080, verdict="dropped")
    [record] = paths.check()
    assert record.observed is Verdict.DROPPED
    assert "(the destination pod answered in this run: monitoring/prometheus -> default/web" in record.observed_detail
    control = [s for s in backend.executor.sent if s.source == "monitoring/prometheus"]
    assert [(c.destination, c.probe["port"]) for c in control] == [("default/web", 9090)]


def test_a_destination_that_is_down_turns_drops_into_errors(model: Model) -> None:
    down = {f"{s}->default/web:{p}": ["dropped"] for s in ("tenant/client", "monitoring/prometheus",
                                                             "monitoring/grafana") for p in (8080, 9090)}
    backend = backend_for(model, hubble=False, overrides=down)
    paths = checker(model, backend)
    paths.expect("tenant/client", "default/web", port=8080, verdict="dropped")
    with pytest.raises(pytest.fail.Exception, match="the probe itself failed"):
        paths.check()
    [record] = paths.checked
    assert record.observed is Verdict.ERROR
    assert "default/web was not shown to be up and reachable" in record.observed_detail


def test_a_hubble_policy_drop_confirms_a_drop_without_control_probes(model: Model) -> None:
    backend = backend_for(model, hubble=True)
    paths = checker(model, backend)
    paths.expect("tenant/client", "default/web", port=8080, verdict="dropped")
    [record] = paths.check()
    assert record.observed is Verdict.DROPPED and record.evidence_state == "confirmed"
    assert {s.source for s in backend.executor.sent} == {"tenant/client"}  # no control probe needed


def test_an_earlier_answer_in_the_run_shows_the_destination_reachable(model: Model) -> None:
    backend = backend_for(model, hubble=False)
    ledger = RunLedger()
    first = checker(model, backend, ledger=ledger)
    first.expect("monitoring/prometheus", "default/web", port=9090, verdict="allowed")
    first.check()
    second = checker(model, backend, ledger=ledger)
    second.expect("tenant/client", "default/web", port=8080, verdict="dropped")
    [record] = second.check()
    assert record.observed is Verdict.DROPPED
    assert len(backend.executor.sent) == 2  # no control probe


# ---------------------------------------------------------------------------------------------
# One verdict per path per run (17.5)


def test_the_same_path_observed_differently_within_one_run_is_flagged(model: Model) -> None:
    backend = backend_for(model, hubble=True, overrides={"monitoring/prometheus->default/web:9090":
                                                         ["allowed", "dropped", "dropped", "dropped"]})
    ledger = RunLedger()
    first = checker(model, backend, ledger=ledger, test="suites/a.py::test_first")
    first.expect("monitoring/prometheus", "default/web", port=9090, verdict="allowed")
    first.check()
    second = checker(model, backend, ledger=ledger, test="suites/b.py::test_second")
    second.expect("monitoring/prometheus", "default/web", port=9090, verdict="dropped")
    with pytest.raises(pytest.fail.Exception) as failure:
        second.check()
    assert ("and observed allowed earlier in this run (suites/a.py::test_first), dropped now: the path changed "
            "during the run") in str(failure.value)


# ---------------------------------------------------------------------------------------------
# One probe for the expectations that need the same one (13.3)


def test_expectations_needing_the_same_probe_share_it_and_each_gets_the_observation(model: Model) -> None:
    backend = backend_for(model, hubble=True)
    paths = checker(model, backend)
    paths.expect("monitoring/prometheus", "default/my-api", port=8080, verdict="allowed")
    paths.expect("monitoring/prometheus", "default/my-api", port=8080, http="GET /", verdict="allowed")
    tcp, http = paths.check()
    assert len(backend.executor.sent) == 1  # both are GET / to my-api:8080 from the same pod
    assert tcp.observed == http.observed == Verdict.ALLOWED
    assert tcp.observed_detail.startswith("TCP connected;") and http.observed_detail.startswith("HTTP request")


# ---------------------------------------------------------------------------------------------
# A foreign exception from an exec (17.5)


def test_an_exec_raising_a_foreign_exception_keeps_the_other_sources_observations(model: Model) -> None:
    backend = backend_for(model, hubble=False)
    backend.executor.raise_for["tenant/client"] = json.JSONDecodeError("websocket frame", "x", 0)
    recorded: list[CheckedFlow] = []
    paths = checker(model, backend, recorded=recorded)
    paths.expect("tenant/client", "default/web", port=8080, verdict="dropped")
    paths.expect("monitoring/prometheus", "default/web", port=9090, verdict="allowed")
    with pytest.raises(pytest.fail.Exception):
        paths.check()
    broken, fine = recorded
    assert broken.observed is Verdict.ERROR
    assert broken.observed_detail.startswith("the probe failed (could not run the probe agent in tenant/client: "
                                             "JSONDecodeError: websocket frame")
    assert fine.observed is Verdict.ALLOWED


def test_a_check_that_stops_part_way_records_what_it_did_not_check(model: Model) -> None:
    backend = backend_for(model, hubble=False)
    recorded: list[CheckedFlow] = []
    paths = checker(model, backend, recorded=recorded)
    paths.expect("tenant/client", "default/web", port=8080, verdict="dropped")
    backend.routes = lambda s, d: (_ for _ in ()).throw(KeyboardInterrupt())  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        paths.check()
    [record] = recorded
    assert record.observed is None
    assert record.observed_detail == "not checked: the check stopped (KeyboardInterrupt: )"


def test_a_route_pair_without_two_distinct_pods_is_not_probed_and_says_why(model: Model) -> None:
    backend = backend_for(model, hubble=False)
    backend.routes = lambda s, d: ()  # type: ignore[method-assign]
    paths = checker(model, backend)
    paths.expect("tenant/client", "default/web", port=8080, verdict="dropped")
    [record] = paths.check()
    assert record.observed is None and "no two distinct probe pods" in record.observed_detail


def test_probe_routes_describe_their_placement() -> None:
    assert ProbeRoute("a", "b", "n1", "n1").placement == "same-node"
    assert ProbeRoute("a", "b", "n1", "n2").placement == "cross-node"
    assert ProbeRoute("a", "b").placement == "" and ProbeRoute("a", "b").describe() == "a -> b"
    assert CompletedExec(0, "", "").returncode == 0


def test_one_probe_pod_standing_for_two_workloads_is_probed_once_for_both_paths(model: Model) -> None:
    """Issue 13.3: when one pod stands for two source workloads (one identity), their paths to the same
    destination port are one probe, and its observation is recorded for each workload path, naming the pod."""
    shared = ProbeRoute("tenant/client", "default/web")
    backend = backend_for(model, hubble=True, routes={("tenant/client", "default/web"): [shared],
                                                      ("monitoring/grafana", "default/web"): [shared]})
    paths = checker(model, backend)
    paths.expect("tenant/client", "default/web", port=8080, verdict="dropped")
    paths.expect("monitoring/grafana", "default/web", port=8080, verdict="dropped")
    client, grafana = paths.check()
    assert [(s.source, s.destination) for s in backend.executor.sent] == [("tenant/client", "default/web")]
    assert (client.source, grafana.source) == ("tenant/client", "monitoring/grafana")
    assert client.observed == grafana.observed == Verdict.DROPPED
    assert client.probed_via == grafana.probed_via == "tenant/client -> default/web"
    assert client.evidence == grafana.evidence and client.evidence_state == grafana.evidence_state == "confirmed"


# ---------------------------------------------------------------------------------------------
# Destinations outside the topology (an FQDN): one route out, evidence by the probe's own socket


def test_a_drop_to_a_name_outside_the_topology_is_confirmed_by_hubble_on_the_probes_socket(model: Model) -> None:
    backend = backend_for(model, hubble=True)
    paths = checker(model, backend)
    paths.expect("default/web", "api.example.com", port=443, verdict="dropped")
    [record] = paths.check()
    assert (record.observed, record.evidence_state) == (Verdict.DROPPED, "confirmed")
    [query] = backend.evidence_calls[0]
    assert (query.destination_ip, query.source_port) == ("", backend.executor.sent[0].sport)  # any address, this port
    assert record.probed_via == "default/web -> api.example.com" and record.placement == ""


def test_a_drop_to_a_name_outside_the_topology_without_hubble_is_an_error(model: Model) -> None:
    backend = backend_for(model, hubble=False)
    paths = checker(model, backend)
    paths.expect("default/web", "api.example.com", port=443, verdict="dropped")
    with pytest.raises(pytest.fail.Exception, match="the probe itself failed"):
        paths.check()
    [record] = paths.checked
    assert record.observed is Verdict.ERROR
    assert "api.example.com is outside the topology, so no control path can show it" in record.observed_detail
    assert [s.destination for s in backend.executor.sent] == ["api.example.com"]  # no control probe tried


def test_a_name_outside_the_topology_is_probed_once_from_one_node(model: Model) -> None:
    backend = two_node_backend(model.topology, scenario_decider())
    paths = checker(model, backend)
    paths.expect("tenant/client", "api.example.com", port=443, verdict="allowed")
    [record] = paths.check()
    assert (record.observed, record.placement, record.probed_via, record.source_node) == (
        Verdict.ALLOWED, "", "tenant/client@a -> api.example.com", "a")


# ---------------------------------------------------------------------------------------------
# The host and other nodes: a node address per source pod, from the back end


NODE_IPS = {"a": "172.18.0.2", "b": "172.18.0.3"}


class NodeAwareBackend(FakeBackend):
    """The fake two-node cluster of ``two_node_backend`` (pods ``<workload>@a`` and ``@b``), also knowing its
    nodes' addresses (``NodeAddressing``); the fake cluster treats a probe to a node address as going to
    ``node:<name>`` (so a script can name it), and its Hubble shows the node's own address."""

    def __init__(self, model: Model, nodes: tuple[str, ...] = ("a", "b"), *, hubble: bool = True,
                 overrides: dict[str, list[str]] | None = None) -> None:
        base = two_node_backend(model.topology, scenario_decider(overrides), hubble=hubble)
        executor = base.executor
        for node in nodes:
            executor.addresses[f"node:{node}"] = NODE_IPS[node]
            executor.by_ip[NODE_IPS[node]] = f"node:{node}"
        super().__init__(executor, sorted(base.existing), hubble=hubble, routes=base._routes)
        self.nodes = nodes
        self.asked: list[str] = []

    def source_nodes(self, source: str) -> SourceNodes:
        self.asked.append(source)
        node = source.rpartition("@")[2]
        return SourceNodes(NodeAddress(node, NODE_IPS[node]),
                           tuple(NodeAddress(n, NODE_IPS[n]) for n in self.nodes if n != node))


def test_host_is_probed_at_the_source_pods_own_node_address(model: Model) -> None:
    backend = NodeAwareBackend(model)
    paths = checker(model, backend)
    paths.expect("tenant/client", "host", port=10250, verdict="allowed")  # kubelet, on every kind node
    [record] = paths.check()
    [sent] = backend.executor.sent
    assert (sent.source, sent.destination, sent.probe["kind"], sent.probe["port"]) == (
        "tenant/client@a", "node:a", "tcp", 10250)  # a bare connect: kubelet is no probe server
    assert (record.observed, record.probed_via, record.destination_node, record.placement) == (
        Verdict.ALLOWED, "tenant/client@a -> host", "a", "same-node")
    assert backend.asked == ["tenant/client@a"]


def test_a_drop_to_the_host_is_a_drop_only_when_hubble_shows_the_policy_drop(model: Model) -> None:
    """default/web is isolated for egress (allow-dns-egress): its node is out of reach."""
    backend = NodeAwareBackend(model)
    paths = checker(model, backend)
    paths.expect("default/web", "host", port=10250, verdict="dropped")
    [record] = paths.check()
    assert (record.observed, record.evidence_state) == (Verdict.DROPPED, "confirmed")
    [query] = backend.evidence_calls[0]
    assert (query.destination_ip, query.source_port) == ("172.18.0.2", backend.executor.sent[0].sport)

    blind = NodeAwareBackend(model, hubble=False)
    paths = checker(model, blind)
    paths.expect("default/web", "host", port=10250, verdict="dropped")
    with pytest.raises(pytest.fail.Exception, match="the probe itself failed"):
        paths.check()
    [record] = paths.checked
    assert record.observed is Verdict.ERROR
    assert "host is outside the topology, so no control path can show it" in record.observed_detail


def test_nothing_listening_on_the_host_port_is_a_set_up_error_not_a_verdict(model: Model) -> None:
    backend = NodeAwareBackend(model, overrides={"tenant/client->node:a:10250": ["refused"]})
    paths = checker(model, backend)
    paths.expect("tenant/client", "host", port=10250, verdict="allowed")
    with pytest.raises(pytest.fail.Exception):
        paths.check()
    [record] = paths.checked
    assert record.observed is Verdict.REFUSED


def test_remote_node_is_probed_at_another_nodes_address(model: Model) -> None:
    backend = NodeAwareBackend(model)
    paths = checker(model, backend)
    paths.expect("tenant/client", "remote-node", port=10250, verdict="allowed")
    [record] = paths.check()
    [sent] = backend.executor.sent
    assert (sent.source, sent.destination) == ("tenant/client@a", "node:b")
    assert (record.observed, record.probed_via, record.destination_node, record.placement) == (
        Verdict.ALLOWED, "tenant/client@a -> remote-node", "b", "cross-node")


def test_remote_node_on_a_one_node_cluster_is_not_probed_and_says_why(model: Model) -> None:
    backend = NodeAwareBackend(model, nodes=("a",))
    paths = checker(model, backend)
    paths.expect("tenant/client", "remote-node", port=10250, verdict="allowed")
    [record] = paths.check()
    assert record.observed is None and not backend.executor.sent
    assert record.observed_detail == "not probed: remote-node: the cluster has one node"


def test_a_node_address_in_the_intent_must_be_the_node_it_names(model: Model) -> None:
    backend = NodeAwareBackend(model)
    paths = checker(model, backend)
    paths.expect("tenant/client", "entity:host@172.18.0.3", port=10250, verdict="allowed")
    paths.expect("tenant/client", "entity:remote-node@172.18.0.3", port=10250, verdict="allowed")
    wrong_host, remote = paths.check()
    assert wrong_host.observed_detail == ("not probed: host (172.18.0.3): the source pod's node a has address "
                                          "172.18.0.2; from this pod 172.18.0.3 is not host")
    assert remote.observed is Verdict.ALLOWED and [s.destination for s in backend.executor.sent] == ["node:b"]


def test_a_back_end_that_knows_no_node_addresses_keeps_the_host_unprobed(model: Model) -> None:
    """A back end written before ``NodeAddressing`` works unchanged: the host is checked by the model only."""
    backend = backend_for(model)
    assert not isinstance(backend, NodeAddressing)
    paths = checker(model, backend)
    paths.expect("tenant/client", "host", port=10250, verdict="allowed")
    [record] = paths.check()
    assert record.observed_detail == "not probed: host: the live back end gives pod addresses only, not the nodes'"
    assert not backend.executor.sent


def test_udp_to_the_host_is_probed_only_as_dns(model: Model) -> None:
    backend = NodeAwareBackend(model)
    paths = checker(model, backend)
    paths.expect("tenant/client", "host", port=8472, protocol="UDP", verdict="allowed")
    [record] = paths.check()
    assert record.observed_detail.startswith("not probed: host is not a flowcheck probe server, so nothing would echo")
