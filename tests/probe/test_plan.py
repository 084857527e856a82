"""Unit tests of ``flowcheck.probe.plan``: specs → plan JSON, and whatever the agent printed → one result
per planned probe (never a crash, never a silent pass)."""

from __future__ import annotations

import json
import signal

import pytest

from flowcheck.probe import agent
from flowcheck.probe.executor import CompletedExec
from flowcheck.probe.plan import (
    DnsProbe,
    HttpProbe,
    Outcome,
    ProbeKind,
    TcpProbe,
    UdpProbe,
    agent_budget_s,
    build_plan,
    parse_results,
)

SPECS = [
    TcpProbe("1", "10.0.0.2", 80),
    UdpProbe("2", "10.0.0.2", 81, payload="ping"),
    HttpProbe("3", "10.0.0.2", 8080, method="POST", path="/", headers={"X-Token": "42"}),
    DnsProbe("4", "10.96.0.10", "kubernetes.default.svc.cluster.local", qtype="A", transport="udp", timeout_s=1.5),
]


def line(**fields: object) -> str:
    return json.dumps(fields)


def test_plan_has_the_design_shape() -> None:
    plan = json.loads(build_plan(SPECS, timeout_s=2.0, concurrency=256))
    assert plan == {"timeout": 2.0, "concurrency": 256, "probes": [
        {"id": "1", "kind": "tcp", "host": "10.0.0.2", "port": 80},
        {"id": "2", "kind": "udp", "host": "10.0.0.2", "port": 81, "payload": "ping"},
        {"id": "3", "kind": "http", "host": "10.0.0.2", "port": 8080, "method": "POST", "path": "/",
         "headers": {"X-Token": "42"}},
        {"id": "4", "kind": "dns", "server": "10.96.0.10", "port": 53, "name": "kubernetes.default.svc.cluster.local",
         "qtype": "A", "transport": "udp", "timeout": 1.5},
    ]}


def test_every_built_probe_passes_the_agents_own_validation() -> None:
    plan = agent.parse_plan(build_plan(SPECS, timeout_s=2.0, deadline_s=30).encode())
    assert plan["deadline"] == 30
    for entry in plan["probes"]:
        spec = agent.validate_probe(entry, plan["timeout"])
        assert spec["kind"] == entry["kind"]


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate probe ids: 1"):
        build_plan([TcpProbe("1", "a", 1), TcpProbe("1", "b", 2)], timeout_s=1)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: TcpProbe("", "h", 1), "non-empty"),
    (lambda: TcpProbe("x", "h", 0), "port"),
    (lambda: TcpProbe("x", "h", 1, timeout_s=0), "timeout_s"),
    (lambda: HttpProbe("x", "h", 1, method="GET /"), "HTTP token"),
    (lambda: HttpProbe("x", "h", 1, path="/a b"), "whitespace"),
    (lambda: HttpProbe("x", "h", 1, headers={"X-A": "1\r\nX-Injected: 2"}), "CR, LF"),
    (lambda: DnsProbe("x", "s", "example.com", qtype="ANY"), "qtype"),
    (lambda: DnsProbe("x", "s", "example.com", transport="doh"), "transport"),
    (lambda: DnsProbe("x", "s", "bad..name"), "DNS name"),
])
def test_invalid_specs_are_refused_when_built(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


def test_http_spec_keeps_its_own_copy_of_headers() -> None:
    headers = {"X-Token": "42"}
    probe = HttpProbe("x", "h", 80, headers=headers)
    headers["X-Token"] = "changed"
    assert probe.headers == {"X-Token": "42"}


def test_agent_budget_covers_the_agents_deadline() -> None:
    plan = build_plan([TcpProbe(str(i), "h", 80) for i in range(300)], timeout_s=2.0, concurrency=100)
    # three waves of 2 s, the agent's 2 s margin, plus the exec/startup allowance
    assert agent_budget_s(plan) == pytest.approx(3 * 2.0 + 2.0 + 10.0)
    assert agent_budget_s(build_plan(SPECS, timeout_s=1.0, deadline_s=5.0)) == pytest.approx(15.0)


def test_clean_run_gives_typed_results_in_plan_order() -> None:
    plan = build_plan(SPECS, timeout_s=2.0)
    stdout = "\n".join([
        line(id="4", kind="dns", outcome="ok", elapsed=0.01, rcode="NOERROR", transport="udp",
             answers=[{"name": "k.", "type": "A", "ttl": 5, "data": "10.96.0.1"}]),
        line(id="1", kind="tcp", outcome="timeout", elapsed=2.0, phase="connect", connected=False),
        line(id="3", kind="http", outcome="ok", elapsed=0.01, status=200, body="{}", server="default/api",
             headers={"server": "flowcheck-probe-server"},
             echo={"method": "POST", "path": "/", "headers": {"X-Token": "42"}}, connected=True),
        line(id="2", kind="udp", outcome="refused", errno="ECONNREFUSED", detail="refused"),
    ]) + "\n"
    results = parse_results(plan, CompletedExec(0, stdout, ""))
    assert list(results) == ["1", "2", "3", "4"]
    assert results["1"].outcome is Outcome.TIMEOUT and results["1"].connected is False
    assert results["2"].outcome is Outcome.REFUSED and results["2"].errno == "ECONNREFUSED"
    assert results["3"].kind is ProbeKind.HTTP and results["3"].status == 200
    assert results["3"].echo is not None and results["3"].echo.headers == {"X-Token": "42"}
    assert results["4"].rcode == "NOERROR" and results["4"].answers[0].data == "10.96.0.1"
    assert results["4"].raw.startswith('{"id": "4"')


def test_source_address_and_port_are_typed_and_older_agents_lines_still_parse() -> None:
    plan = build_plan(SPECS[:2], timeout_s=1.0)
    stdout = "\n".join([
        line(id="1", kind="tcp", outcome="timeout", saddr="10.244.1.7", sport=43122, connected=False),
        line(id="2", kind="udp", outcome="ok", reply="x"),  # an agent from before saddr/sport
    ])
    results = parse_results(plan, CompletedExec(0, stdout, ""))
    assert (results["1"].saddr, results["1"].sport) == ("10.244.1.7", 43122)
    assert results["2"].outcome is Outcome.OK and (results["2"].saddr, results["2"].sport) == (None, None)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("sport", 0, "'sport' is not a port number"),
    ("sport", 70000, "'sport' is not a port number"),
    ("sport", "43122", "'sport' has the wrong type"),
    ("sport", True, "'sport' has the wrong type"),
    ("saddr", 10, "'saddr' has the wrong type"),
])
def test_a_malformed_source_address_or_port_makes_the_line_unreadable(field: str, value: object,
                                                                       message: str) -> None:
    plan = build_plan(SPECS[:1], timeout_s=1.0)
    result = parse_results(plan, CompletedExec(0, line(id="1", kind="tcp", outcome="ok", **{field: value}), ""))["1"]
    assert result.outcome is Outcome.ERROR and message in result.detail


def test_probe_without_a_line_is_an_error_with_the_stderr_tail() -> None:
    plan = build_plan(SPECS[:2], timeout_s=1.0)
    results = parse_results(plan, CompletedExec(0, line(id="1", kind="tcp", outcome="ok") + "\n", "warning: x\n"))
    assert results["1"].outcome is Outcome.OK
    assert results["2"].outcome is Outcome.ERROR
    assert "no result" in results["2"].detail and "warning: x" in results["2"].detail


def test_rejected_plan_makes_every_probe_an_error() -> None:
    plan = build_plan(SPECS, timeout_s=1.0)
    results = parse_results(plan, CompletedExec(2, "", "flowcheck agent: malformed plan: the plan is not valid JSON"))
    assert {r.outcome for r in results.values()} == {Outcome.ERROR}
    assert all("rejected the plan (exit 2)" in r.detail and "malformed plan" in r.detail for r in results.values())


def test_killed_agent_keeps_finished_results_and_errors_the_rest() -> None:
    plan = build_plan(SPECS, timeout_s=1.0)
    partial = line(id="2", kind="udp", outcome="ok", reply="x") + "\n" + '{"id": "3", "kind": "ht'
    results = parse_results(plan, CompletedExec(-signal.SIGKILL, partial, "[netlab] agent killed after 5 s"))
    assert results["2"].outcome is Outcome.OK
    for pid in ("1", "3", "4"):
        assert results[pid].outcome is Outcome.ERROR
        assert "killed (SIGKILL)" in results[pid].detail
        assert "not JSON" in results[pid].detail


def test_crashed_agent_exit_status_is_named() -> None:
    results = parse_results(build_plan(SPECS[:1], timeout_s=1.0), CompletedExec(1, "", "internal error: boom"))
    assert "exited with status 1" in results["1"].detail and "boom" in results["1"].detail


def test_garbled_lines_never_become_results() -> None:
    plan = build_plan(SPECS, timeout_s=1.0)
    stdout = "\n".join([
        "hello from a stray print",
        line(id="1", kind="tcp", outcome="allowed"),  # not an outcome
        line(id="2", kind="tcp", outcome="ok"),  # kind does not match the plan
        line(id="3", kind="http", outcome="ok", status="200"),  # wrong type
        line(id="99", kind="tcp", outcome="ok"),  # never planned
        "[1, 2, 3]",
    ])
    results = parse_results(plan, CompletedExec(0, stdout, ""))
    assert {r.outcome for r in results.values()} == {Outcome.ERROR}
    assert "unknown outcome 'allowed'" in results["1"].detail
    assert "kind 'tcp' for a udp probe" in results["2"].detail
    assert "'status' has the wrong type" in results["3"].detail
    assert "unplanned probe id '99'" in results["4"].detail


def test_a_probe_reported_twice_is_an_error() -> None:
    plan = build_plan(SPECS[:1], timeout_s=1.0)
    stdout = line(id="1", kind="tcp", outcome="ok") + "\n" + line(id="1", kind="tcp", outcome="timeout") + "\n"
    result = parse_results(plan, CompletedExec(0, stdout, ""))["1"]
    assert result.outcome is Outcome.ERROR and "2 times" in result.detail


def test_parse_results_accepts_the_specs_instead_of_the_plan_json() -> None:
    results = parse_results(SPECS, CompletedExec(0, line(id="1", kind="tcp", outcome="ok"), ""))
    assert results["1"].outcome is Outcome.OK and results["4"].kind is ProbeKind.DNS


def test_a_non_plan_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="not a plan"):
        parse_results("{}", CompletedExec(0, "", ""))
