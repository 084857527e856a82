"""The live path under injected faults, on real packets in the netns lab (issue 17.2 and 17.5).

Each test injects one fault into the lab that plays the cluster -- an impostor behind a destination's
address, a destination whose interface is down, rules that land late, an exec that raises something
flowcheck does not know, a Hubble that contradicts a probe -- and checks that the harness reports it
instead of passing. Each fault is also shown to be real: what the old behaviour (a bare TCP connect, a
timeout taken as a drop, no realization wait) would have concluded is asserted next to it.

The lab enforces the repository's policies through a hand-written nftables translation
(tests/netlab/scenario.py) and reports Hubble-shaped evidence from nftables' packet traces
(tests/netlab/hubble.py).
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flowcheck.cluster.hubble import parse_flow_line
from flowcheck.harness.checker import HarnessContext, PathChecker
from flowcheck.harness.run_ledger import RunLedger
from flowcheck.model.engine import Model
from flowcheck.model.policies import load_policies
from flowcheck.model.topology import load_topology
from flowcheck.probe.classify import classify
from flowcheck.probe.plan import TcpProbe, agent_budget_s, build_plan, parse_results
from flowcheck.report.records import CheckedFlow
from flowcheck.verdict import Verdict
from tests.conftest import POLICIES_DIR, REPO_ROOT
from tests.harness.fakes import hubble_line
from tests.netlab import netlab_unavailable_reason
from tests.netlab.hubble import LabHubble
from tests.netlab.lab import NetLab
from tests.netlab.scenario import LabBackend, enforce_repository_policies, start_scenario

pytestmark = [pytest.mark.netlab, pytest.mark.slow]

TOPOLOGY = REPO_ROOT / "fixtures" / "topology.yaml"
TIMEOUT_S = 0.5
GENERIC = 7  # the plugin's generic checks of manifests/network-policies (tests/harness/test_plugin.py), all run first


@pytest.fixture(autouse=True)
def _needs_the_lab() -> None:
    reason = netlab_unavailable_reason()
    if reason is not None:
        pytest.skip(f"the network-namespace lab cannot run here: {reason}")


@pytest.fixture(scope="module")
def model() -> Model:
    return Model(load_topology(TOPOLOGY), load_policies([POLICIES_DIR]))


@pytest.fixture
def lab(model: Model) -> Iterator[NetLab]:
    lab = start_scenario(model.topology)
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def hubble(lab: NetLab) -> Iterator[LabHubble]:
    """The lab's Hubble (flows from nftables' packet traces), running for one test."""
    running = LabHubble(lab)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def checker(model: Model, backend: LabBackend, recorded: list[CheckedFlow] | None = None,
            ledger: RunLedger | None = None) -> PathChecker:
    keys = itertools.count()
    context = HarnessContext(model=model, live=backend, offline_reason=None, probe_timeout_s=TIMEOUT_S,
                             record=(recorded if recorded is not None else []).append, next_key=lambda: next(keys),
                             retry_wait_s=0.2, ledger=ledger or RunLedger(), realization_timeout_s=10.0)
    return PathChecker(context, "tests/harness/test_lab_faults.py")


def backend(lab: NetLab, model: Model, *, hubble: LabHubble | None = None, enforced: bool = True) -> LabBackend:
    return LabBackend(lab, [w.ref for w in model.topology.workloads if w.existing], hubble=hubble, enforced=enforced)


def bare_connect(lab: NetLab, source: str, destination: str, port: int) -> Verdict:
    """What the old harness did for a TCP path: connect, and call any connection "allowed"."""
    backend_ = LabBackend(lab, [])
    plan = build_plan([TcpProbe("1", lab.address_of(destination), port)], timeout_s=TIMEOUT_S)
    done = backend_.executor.run_agent(source, plan, timeout_s=agent_budget_s(plan))
    return classify(parse_results(plan, done)["1"]).verdict


def test_an_impostor_behind_a_tcp_destination_fails_the_allowed_path(lab: NetLab, model: Model) -> None:
    enforce_repository_policies(lab, model.topology)
    web = lab.pod("default/web")
    assert web.server is not None
    web.server.stop()  # another server takes over web's address and ports
    lab.spawn("default/web", [sys.executable, str(lab.server_path), "--name", "default/impostor", "--http",
                              "8080,9090"], ready='"event":"ready"')
    assert bare_connect(lab, "monitoring/prometheus", "default/web", 9090) is Verdict.ALLOWED  # the fault is real
    paths = checker(model, backend(lab, model))
    paths.expect("monitoring/prometheus", "default/web", port="metrics", verdict="allowed")
    with pytest.raises(pytest.fail.Exception, match="answered by server 'default/impostor', expected 'default/web'"):
        paths.check()


def test_a_plain_tcp_impostor_that_speaks_no_http_fails_the_allowed_path(lab: NetLab, model: Model) -> None:
    enforce_repository_policies(lab, model.topology)
    web = lab.pod("default/web")
    assert web.server is not None
    web.server.stop()
    lab.spawn("default/web", [sys.executable, str(lab.server_path), "--name", "default/impostor", "--tcp", "9090"],
              ready='"event":"ready"')  # accepts and closes: a bare connect cannot tell it from web
    assert bare_connect(lab, "monitoring/prometheus", "default/web", 9090) is Verdict.ALLOWED
    paths = checker(model, backend(lab, model))
    paths.expect("monitoring/prometheus", "default/web", port="metrics", verdict="allowed")
    with pytest.raises(pytest.fail.Exception, match="the probe itself failed"):
        paths.check()
    assert paths.checked[0].observed is Verdict.ERROR


def test_an_unreachable_destination_turns_dropped_expectations_into_errors(lab: NetLab, model: Model,
                                                                           hubble: LabHubble) -> None:
    """No rules at all, web's interface down: every probe to web times out; none of that is a drop."""
    subprocess.run(["ip", "-n", lab.pod("default/web").netns, "link", "set", "eth0", "down"], check=True)
    assert bare_connect(lab, "tenant/client", "default/web", 8080) is Verdict.DROPPED  # the old false pass
    paths = checker(model, backend(lab, model, hubble=hubble, enforced=False))
    paths.expect("tenant/client", "default/web", port=8080, verdict="dropped")
    paths.expect("monitoring/grafana", "default/web", port="metrics", verdict="dropped")
    paths.expect("monitoring/prometheus", "default/web", port="metrics", verdict="allowed")
    with pytest.raises(pytest.fail.Exception) as failure:
        paths.check()
    assert [r.observed for r in paths.checked] == [Verdict.ERROR] * 3
    assert all("default/web was not shown to be up and reachable" in r.observed_detail for r in paths.checked)
    assert "3 of 3 paths do not behave as intended" in str(failure.value)


def test_a_drop_confirmed_by_the_labs_hubble_stays_a_drop(lab: NetLab, model: Model, hubble: LabHubble) -> None:
    enforce_repository_policies(lab, model.topology)
    paths = checker(model, backend(lab, model, hubble=hubble))
    paths.expect("tenant/client", "default/web", port=8080, verdict="dropped")
    [record] = paths.check()
    assert (record.observed, record.evidence_state) == (Verdict.DROPPED, "confirmed")
    assert record.evidence[0].startswith("DROPPED POLICY_DENIED ingress tenant/client:")


def test_two_probes_to_one_destination_in_one_batch_each_get_only_their_own_evidence(
        lab: NetLab, model: Model, hubble: LabHubble) -> None:
    enforce_repository_policies(lab, model.topology)
    paths = checker(model, backend(lab, model, hubble=hubble))
    # the first two leave one pod for one destination port: only the source port tells them apart
    paths.expect("tenant/client", "default/web", port=8080, verdict="dropped")
    paths.expect("tenant/client", "default/web", port=8080, http="GET /orders", verdict="dropped")
    paths.expect("monitoring/grafana", "default/web", port=8080, verdict="dropped")
    records = paths.check()
    ports = []
    for record in records:
        assert record.evidence_state == "confirmed"
        sources = {line.split(" -> ")[0].rsplit(" ", 1)[1] for line in record.evidence}
        assert len(sources) == 1, record.evidence  # one client socket: this probe's, not its neighbour's
        ports.append(sources.pop())
    assert len(set(ports)) == 3


def test_an_injected_contradiction_is_reported_as_an_error(lab: NetLab, model: Model, hubble: LabHubble) -> None:
    """A FORWARDED reply in Hubble for a probe that timed out (the acceptance case of issue 17.2)."""
    enforce_repository_policies(lab, model.topology)
    lab_backend = backend(lab, model, hubble=hubble)
    real_run = lab_backend.executor.run_agent

    def run_and_contradict(source: str, plan_json: str, *, timeout_s: float) -> object:
        done = real_run(source, plan_json, timeout_s=timeout_s)
        for line in done.stdout.splitlines():
            result = json.loads(line)
            web = lab.address_of("default/web")
            line = hubble_line(verdict="FORWARDED", src=("default/web", web, 8080),
                               dst=(source, result["saddr"], result["sport"]), when=datetime.now(UTC),
                               flags=("SYN", "ACK"), is_reply=True)
            record = parse_flow_line(line)
            assert record is not None
            hubble.inject(record)
        return done

    lab_backend.executor.run_agent = run_and_contradict  # type: ignore[method-assign]
    paths = checker(model, lab_backend)
    paths.expect("tenant/client", "default/web", port=8080, verdict="dropped")
    with pytest.raises(pytest.fail.Exception, match="the probe itself failed: not a verdict"):
        paths.check()
    [record] = paths.checked
    assert (record.observed, record.evidence_state) == (Verdict.ERROR, "contradicted")
    assert "the probe timed out, but Hubble shows a forwarded reply" in record.observed_detail


def test_a_policy_applied_late_is_not_judged_before_it_is_realized(lab: NetLab, model: Model,
                                                                   hubble: LabHubble) -> None:
    """The rules (with one that breaks an allowed path) land 1.5 s after the set-up returned: probed at
    once, the path would pass against rules that are not there yet; waited for, it fails as it must."""
    breaking = {"default/web": [f"ip saddr {lab.address_of('monitoring/prometheus')} tcp dport 9090 drop"]}
    lab_backend = backend(lab, model, hubble=hubble)
    assert lab_backend.unrealized()  # nothing enforced yet
    bare = bare_connect(lab, "monitoring/prometheus", "default/web", 9090)
    assert bare is Verdict.ALLOWED  # what an early probe sees: the old false pass
    threading.Timer(1.5, enforce_repository_policies, (lab, model.topology), {"extra": breaking}).start()
    started = time.monotonic()
    paths = checker(model, lab_backend)
    paths.expect("monitoring/prometheus", "default/web", port="metrics", verdict="allowed")
    with pytest.raises(pytest.fail.Exception, match="observed  dropped"):
        paths.check()
    assert time.monotonic() - started >= 1.4  # it waited for the rules before probing
    [record] = paths.checked
    assert (record.observed, record.evidence_state) == (Verdict.DROPPED, "confirmed")


def test_an_exec_raising_a_foreign_exception_keeps_the_other_sources(lab: NetLab, model: Model) -> None:
    enforce_repository_policies(lab, model.topology)
    lab_backend = backend(lab, model)
    real_run = lab_backend.executor.run_agent

    def flaky(source: str, plan_json: str, *, timeout_s: float) -> object:
        if source == "tenant/client":
            raise ConnectionResetError(104, "Connection reset by peer")  # not a flowcheck error
        return real_run(source, plan_json, timeout_s=timeout_s)

    lab_backend.executor.run_agent = flaky  # type: ignore[method-assign]
    recorded: list[CheckedFlow] = []
    paths = checker(model, lab_backend, recorded)
    paths.expect("tenant/client", "default/web", port=8080, verdict="dropped")
    paths.expect("monitoring/prometheus", "default/web", port="metrics", verdict="allowed")
    paths.expect("monitoring/grafana", "default/web", port="metrics", verdict="dropped")
    with pytest.raises(pytest.fail.Exception, match="1 of 3 paths do not behave as intended"):
        paths.check()
    assert [r.observed for r in recorded] == [Verdict.ERROR, Verdict.ALLOWED, Verdict.DROPPED]
    assert "ConnectionResetError" in recorded[0].observed_detail


# ---------------------------------------------------------------------------------------------
# Through the plugin: a foreign exception and an interrupted run, as the report shows them


def _lab_plugin(pytester: pytest.Pytester, body: str) -> None:
    pytester.makepyfile(flowcheck_lab_plugin=f"""
import sys
sys.path.insert(0, {str(REPO_ROOT)!r})
from tests.netlab.scenario import LabProvider
{body}
""")


def _args(report: Path) -> list[str]:
    return ["-p", "flowcheck_lab_plugin", "-p", "no:cacheprovider", "--flowcheck-policies", str(POLICIES_DIR),
            "--flowcheck-topology", str(TOPOLOGY), "--flowcheck-probe-timeout", str(TIMEOUT_S),
            "--flowcheck-report", str(report)]


def test_the_report_counts_what_a_foreign_exception_left_unobserved(pytester: pytest.Pytester,
                                                                     tmp_path: Path) -> None:
    _lab_plugin(pytester, """
class BrokenExecProvider(LabProvider):
    def attach(self, state):
        backend = super().attach(state)
        real = backend.executor.run_agent
        def run_agent(source, plan_json, *, timeout_s):
            if source == "tenant/client":
                raise KeyError("stream channel 3")  # something flowcheck does not know
            return real(source, plan_json, timeout_s=timeout_s)
        backend.executor.run_agent = run_agent
        return backend

def pytest_flowcheck_backend(config):
    return BrokenExecProvider()
""")
    pytester.makepyfile(test_paths="""
def test_default_is_closed(flowcheck_paths):
    for source in ("tenant/client", "monitoring/grafana"):
        flowcheck_paths.expect(source, "default/web", port=8080, verdict="dropped")
    flowcheck_paths.expect("monitoring/prometheus", "default/web", port="metrics", verdict="allowed")
""")
    report = tmp_path / "report"
    result = pytester.runpytest_subprocess(*_args(report))
    assert result.parseoutcomes()["failed"] == 1  # the suite's test; the generic checks of the policies pass
    flows = json.loads((report / "matrix.json").read_text())["flows"]
    assert [(f["from"], f["observed"]) for f in flows] == [
        ("tenant/client", "error"), ("monitoring/grafana", "dropped"), ("monitoring/prometheus", "allowed")]
    result.stdout.fnmatch_lines(
        ["flowcheck truth table: 3 flows (2 probed, 1 could not be probed): 1 allowed, 1 dropped, 1 error; "
         "1 mismatch*"])


def test_an_interrupted_runs_report_says_so_and_what_did_not_run(pytester: pytest.Pytester, tmp_path: Path) -> None:
    _lab_plugin(pytester, """
def pytest_flowcheck_backend(config):
    return LabProvider()
""")
    pytester.makepyfile(test_paths="""
import time

def test_first(flowcheck_paths):
    flowcheck_paths.expect("tenant/client", "default/web", port=8080, verdict="dropped")

def test_second_hangs(flowcheck_paths):
    flowcheck_paths.expect("monitoring/prometheus", "default/web", port="metrics", verdict="allowed")
    flowcheck_paths.check()
    print("PROBED", flush=True)
    time.sleep(120)

def test_third(flowcheck_paths):
    flowcheck_paths.expect("monitoring/grafana", "default/web", port=8080, verdict="dropped")
""")
    report = tmp_path / "report"
    process = subprocess.Popen([sys.executable, "-m", "pytest", "-s", *_args(report)], cwd=pytester.path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    output = []
    for line in process.stdout:
        output.append(line)
        if "PROBED" in line:
            break
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=120)
    text = "".join(output) + rest
    assert process.returncode == pytest.ExitCode.INTERRUPTED, text
    matrix = json.loads((report / "matrix.json").read_text())
    assert matrix["metadata"]["interrupted"].startswith("yes: the run was interrupted")
    assert matrix["metadata"]["not_run"] == (f"2 of {3 + GENERIC} tests (their paths were not checked): "
                                             "test_paths.py::test_second_hangs, test_paths.py::test_third")
    assert [f["observed"] for f in matrix["flows"]] == ["dropped", "allowed"]
    for rendering in ("report.md", "report.html"):
        assert "INTERRUPTED -- yes: the run was interrupted" in (report / rendering).read_text(), rendering
    assert "note: INTERRUPTED -- yes: the run was interrupted" in text
