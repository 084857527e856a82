"""Policy realization: agents' policy revisions, every probe pod's endpoint, and waiting for them (fake clock)."""

from __future__ import annotations

import json

import pytest

from flowcheck.cluster.agent_endpoints import lagging, parse_endpoint_list
from flowcheck.cluster.realization import (
    REVISION_COMMANDS,
    EndpointReader,
    RevisionReader,
    agent_pods,
    parse_revision,
    wait_for_endpoints,
    wait_for_revisions,
)
from flowcheck.errors import ClusterError
from tests.cluster.fakes import ExecReply, FakeClock, FakeCluster, data


def test_revision_output_is_quoted() -> None:
    assert parse_revision(data("policy-revision.txt")) == 42
    assert parse_revision("'7'\n") == 7 and parse_revision("12") == 12
    with pytest.raises(ClusterError, match="expected a number"):
        parse_revision("Error: cannot reach agent")


def test_the_revision_command_is_cilium_clis() -> None:
    assert REVISION_COMMANDS[0] == ("cilium-dbg", "policy", "get", "-o", "jsonpath='{.revision}'")
    assert REVISION_COMMANDS[1][0] == "cilium"


def test_agent_pods_are_the_running_cilium_pods() -> None:
    cluster = FakeCluster()
    cluster.add_cilium_agents(["cilium-b", "cilium-a"])
    cluster.add_pod("kube-system", "cilium-new", {"k8s-app": "cilium"}, ready=False, phase="Pending", ip=None)
    assert agent_pods(cluster.clients()) == ["cilium-a", "cilium-b"]
    assert cluster.calls[0][2]["label_selector"] == "k8s-app=cilium"
    with pytest.raises(ClusterError, match="no Running cilium agent pod"):
        agent_pods(FakeCluster().clients())


def test_reader_falls_back_to_the_old_binary_and_remembers_it() -> None:
    cluster = FakeCluster()
    cluster.add_cilium_agents(["cilium-a"])

    def agent(ns: str, pod: str, container: str | None, argv: list[str], stdin: str | None) -> ExecReply:
        assert (ns, container) == ("kube-system", "cilium-agent")
        if argv[0] == "cilium-dbg":
            return ExecReply(status=data("exec-status-start-failure.json"))
        return ExecReply(stdout="'5'")

    cluster.exec_handler = agent
    reader = RevisionReader(cluster.clients)
    assert reader.read("cilium-a") == 5
    assert reader.read("cilium-a") == 5
    assert [c["command"][0] for c in cluster.exec_calls] == ["cilium-dbg", "cilium", "cilium"]


def test_reader_reports_both_failures() -> None:
    cluster = FakeCluster()
    cluster.add_cilium_agents(["cilium-a"])
    cluster.exec_handler = lambda *a: ExecReply(status=data("exec-status-start-failure.json"))
    with pytest.raises(ClusterError, match=r"cannot read the policy revision of cilium agent cilium-a: .*dbg.*; "):
        RevisionReader(cluster.clients).read("cilium-a")


def test_wait_returns_once_a_late_revision_arrives() -> None:
    cluster = FakeCluster()
    cluster.add_cilium_agents(["cilium-a", "cilium-b"])
    clock = FakeClock()
    reads: dict[str, int] = {"cilium-a": 0, "cilium-b": 0}

    def agent(ns: str, pod: str, container: str | None, argv: list[str], stdin: str | None) -> ExecReply:
        reads[pod] += 1
        if pod == "cilium-a":
            return ExecReply(stdout="'14'")
        return ExecReply(stdout="'12'" if reads[pod] < 4 else "'14'")  # the agent catches up on the 4th read

    cluster.exec_handler = agent
    after = wait_for_revisions(RevisionReader(cluster.clients), {"cilium-a": 14, "cilium-b": 14}, timeout_s=30,
                               interval_s=0.5, clock=clock, sleep=clock.sleep)
    assert after == {"cilium-a": 14, "cilium-b": 14}
    assert clock.sleeps == [0.5, 0.5, 0.5]  # tenacity waited between polls -- on the fake clock only
    assert reads == {"cilium-a": 1, "cilium-b": 4}  # an agent that is done is not asked again


def test_wait_gives_up_at_the_deadline_naming_the_lagging_agent() -> None:
    cluster = FakeCluster()
    cluster.add_cilium_agents(["cilium-a", "cilium-b"])
    clock = FakeClock()
    cluster.exec_handler = lambda ns, pod, *a: ExecReply(stdout="'14'" if pod == "cilium-a" else "'12'")
    with pytest.raises(ClusterError, match=r"policies not realized within 3 s: cilium-b at revision 12 "
                                           r"\(waiting for >= 14\)$"):
        wait_for_revisions(RevisionReader(cluster.clients), {"cilium-a": 14, "cilium-b": 14}, timeout_s=3,
                           interval_s=0.5, clock=clock, sleep=clock.sleep)
    assert sum(clock.sleeps) == pytest.approx(3.0)


def test_transient_exec_errors_are_retried_until_the_deadline() -> None:
    cluster = FakeCluster()
    cluster.add_cilium_agents(["cilium-a"])
    clock = FakeClock()
    replies = iter([ExecReply(stderr="agent restarting", status=data("exec-status-exit-code.json"))] * 4
                   + [ExecReply(stdout="'3'")])
    cluster.exec_handler = lambda *a: next(replies)
    reader = RevisionReader(cluster.clients)
    reader._command["cilium-a"] = REVISION_COMMANDS[0]  # the binary is known: no fallback noise
    after = wait_for_revisions(reader, {"cilium-a": 3}, timeout_s=30, clock=clock, sleep=clock.sleep)
    assert after == {"cilium-a": 3}


# ---------------------------------------------------------------------------------------------
# Per endpoint: `endpoint list -o json` (tests/data/cluster/endpoint-list.json, assembled: see its README)


def test_the_endpoint_list_contract_every_kind_of_endpoint() -> None:
    endpoints = parse_endpoint_list(data("endpoint-list.json"), agent="cilium-a")
    by_id = {e.id: e for e in endpoints}
    assert sorted(by_id) == [72, 402, 1187, 1502, 2001, 3120]
    host = by_id[72]
    assert (host.pod_name, host.identity, host.realized_revision, host.state) == ("", 1, 57, "ready")
    api = by_id[1187]
    assert (api.namespace, api.pod_name, api.identity, api.realized_revision) == ("default", "my-api", 40211, 57)
    assert api.addresses == ("10.244.1.23",)
    regenerating = by_id[1502]
    assert (regenerating.state, regenerating.realized_revision) == ("regenerating", 56)  # spec is 57 already
    no_identity = by_id[2001]
    assert (no_identity.identity, no_identity.realized_revision) == (None, None)  # no status.policy at all
    opted_out = by_id[3120]  # no legacy k8s identifiers: only its address tells which pod it is
    assert opted_out.pod_name == "" and opted_out.is_pod("monitoring", "grafana", "10.244.1.30")
    assert not opted_out.is_pod("monitoring", "grafana", "10.244.1.99")


def test_which_probe_pods_lag_and_why() -> None:
    endpoints = parse_endpoint_list(data("endpoint-list.json"))
    pods = [("default", "my-api", "10.244.1.23"), ("tenant", "client", "10.244.1.17"),
            ("monitoring", "prometheus", "10.244.1.22"), ("monitoring", "grafana", "10.244.1.30"),
            ("default", "web", "10.244.1.40")]
    assert lagging(endpoints, pods, 57) == [
        "tenant/client: realized revision 56, waiting for >= 57 (regenerating)",
        "monitoring/prometheus: endpoint 2001 (monitoring/prometheus): waiting-for-identity, no identity yet",
        "default/web: no endpoint on this agent yet"]
    assert lagging(endpoints, pods[:1] + pods[3:4], 57) == []
    assert lagging(endpoints, pods[:1], 58) == ["default/my-api: realized revision 57, waiting for >= 58 (ready)"]


def test_a_revision_of_zero_is_absent_and_reads_as_zero() -> None:
    document = json.loads(data("endpoint-list.json"))
    api = next(e for e in document if e["id"] == 1187)
    del api["status"]["policy"]["realized"]["policy-revision"]  # omitempty: how revision 0 is printed
    [parsed] = [e for e in parse_endpoint_list(json.dumps(document)) if e.id == 1187]
    assert parsed.realized_revision == 0


@pytest.mark.parametrize("text", ["", "Error: cannot reach the agent", '{"id": 1}', "[1, 2]"])
def test_output_that_is_not_an_endpoint_list_is_a_clear_error(text: str) -> None:
    with pytest.raises(ClusterError, match=r"`endpoint list -o json` in cilium-a"):
        parse_endpoint_list(text, agent="cilium-a")


def test_waiting_per_endpoint_until_a_regenerating_pod_catches_up() -> None:
    cluster = FakeCluster()
    cluster.add_cilium_agents(["cilium-a"])
    clock = FakeClock()
    lists = iter([data("endpoint-list.json"), data("endpoint-list.json"),
                  data("endpoint-list.json").replace('"policy-revision": 56', '"policy-revision": 57')])
    cluster.exec_handler = lambda ns, pod, container, argv, stdin: ExecReply(stdout=next(lists))
    reader = EndpointReader(cluster.clients)
    wanted = {"cilium-a": [("default", "my-api", "10.244.1.23"), ("tenant", "client", "10.244.1.17")]}
    wait_for_endpoints(reader, wanted, {"cilium-a": 57}, timeout_s=30, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == [2.0, 2.0]  # cilium-cli's interval between endpoint lists
    assert cluster.exec_calls[0]["command"] == ["cilium-dbg", "endpoint", "list", "-o", "json"]


def test_the_endpoint_wait_names_every_pod_still_behind_at_the_deadline() -> None:
    cluster = FakeCluster()
    cluster.add_cilium_agents(["cilium-a"])
    clock = FakeClock()
    cluster.exec_handler = lambda *a: ExecReply(stdout=data("endpoint-list.json"))
    wanted = {"cilium-a": [("tenant", "client", "10.244.1.17"), ("default", "my-api", "10.244.1.23")]}
    with pytest.raises(ClusterError) as failure:
        wait_for_endpoints(EndpointReader(cluster.clients), wanted, {"cilium-a": 57}, timeout_s=6, clock=clock,
                           sleep=clock.sleep)
    assert str(failure.value) == ("policies not realized within 6 s by the probe pods' endpoints:\n"
                                  "  tenant/client: realized revision 56, waiting for >= 57 (regenerating) "
                                  "(agent cilium-a)")
