"""Policy realization: reading agents' policy revisions and waiting (tenacity, fake clock) for new ones."""

from __future__ import annotations

import pytest

from flowcheck.cluster.realization import (
    REVISION_COMMANDS,
    RevisionReader,
    agent_pods,
    parse_revision,
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
