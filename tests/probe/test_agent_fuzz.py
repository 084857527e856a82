"""Whatever arrives on its stdin, the agent answers with results (exit 0) or one line saying why the plan is
malformed (exit 2) -- never a traceback, never another exit code.

The plan parser is exercised in-process with many examples (random bytes, random JSON, and valid plans
with one field replaced by random JSON); the real agent process gets fewer of the same, because each
example is a process start. Mutated plans only ever probe 127.0.0.1 on a closed port with a short
timeout: the host fields are replaced only by values that are not host names, so a plan that comes out
valid never sends a packet anywhere else.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowcheck.probe import agent
from tests.probe.conftest import free_port, run_agent

JSON_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
                | st.text(max_size=20))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
NOT_A_HOST = st.none() | st.booleans() | st.integers() | st.lists(st.integers(), max_size=2) | st.just("")

CLOSED_PORT = free_port()


def _base_plan() -> dict[str, Any]:
    return {"timeout": 0.3, "concurrency": 4, "probes": [
        {"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": CLOSED_PORT},
        {"id": "http", "kind": "http", "host": "127.0.0.1", "port": CLOSED_PORT, "method": "POST", "path": "/x",
         "headers": {"X-Token": "42"}},
        {"id": "udp", "kind": "udp", "host": "127.0.0.1", "port": CLOSED_PORT, "payload": "ping"},
        {"id": "dns", "kind": "dns", "server": "127.0.0.1", "port": CLOSED_PORT, "name": "a.lab", "qtype": "A",
         "transport": "tcp"}]}


@st.composite
def mutated_plans(draw: st.DrawFn) -> dict[str, Any]:
    """A valid plan with one field replaced (or removed, or added): mostly malformed, sometimes still valid."""
    plan = _base_plan()
    target = draw(st.sampled_from(["plan", *range(len(plan["probes"]))]))
    where: dict[str, Any] = plan if target == "plan" else plan["probes"][target]
    key = draw(st.sampled_from([*where, "extra"]))
    if key in ("host", "server"):
        value = draw(NOT_A_HOST)
    elif key == "probes":
        value = draw(JSON_VALUES)
    else:
        value = draw(st.one_of(JSON_VALUES, st.just(KeyError)))
    if value is KeyError:
        where.pop(key, None)
    else:
        where[key] = value
    return plan


def _parses_or_says_why(data: bytes) -> None:
    """The in-process contract: a plan with every probe checked, or ``PlanError`` -- nothing else."""
    try:
        plan = agent.parse_plan(data)
    except agent.PlanError as exc:
        message = str(exc)
    else:
        assert len(plan["specs"]) == len(plan["probes"])
        return
    assert message and "\n" not in message


@given(st.binary(max_size=200))
@settings(max_examples=200)
def test_random_bytes_are_a_plan_or_a_plan_error(data: bytes) -> None:
    _parses_or_says_why(data)


@given(JSON_VALUES)
@settings(max_examples=200)
def test_random_json_is_a_plan_or_a_plan_error(value: Any) -> None:
    _parses_or_says_why(json.dumps(value).encode())


@given(mutated_plans())
@settings(max_examples=200)
def test_a_plan_with_a_field_gone_wrong_is_a_plan_or_a_plan_error(plan: dict[str, Any]) -> None:
    _parses_or_says_why(json.dumps(plan).encode())


def _agent_answers_0_or_2(data: bytes) -> None:
    run = run_agent(data, timeout_s=30)  # asserts: no traceback, every stdout line one JSON object
    assert run.returncode in (0, 2), run.stderr
    if run.returncode == 2:
        assert run.results == []
        assert run.stderr.startswith("flowcheck agent: malformed plan: ") and run.stderr.count("\n") == 1
    else:
        assert run.stderr == ""
        plan = json.loads(data)
        assert sorted(r["id"] for r in run.results) == sorted(p["id"] for p in plan["probes"])


# Random JSON with a non-empty `probes` is left to the mutated plans: only those are sure to probe loopback.
_NO_PROBES_TO_RUN = JSON_VALUES.filter(lambda v: not (isinstance(v, dict) and v.get("probes")))


@given(st.binary(max_size=100) | st.sampled_from([b"{not json", b"{1: 2}", b'{"a', b"\xff", b"", b"[" * 5000])
       | _NO_PROBES_TO_RUN.map(lambda v: json.dumps(v).encode()))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_agent_process_survives_random_bytes_and_json(data: bytes) -> None:
    _agent_answers_0_or_2(data)


@given(mutated_plans())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_agent_process_survives_a_plan_with_a_field_gone_wrong(plan: dict[str, Any]) -> None:
    _agent_answers_0_or_2(json.dumps(plan).encode())
