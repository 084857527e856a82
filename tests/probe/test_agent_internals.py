"""The agent's own small pieces, tested directly: its JSON helpers (the agent parses and writes JSON
through CPython's ``_json`` to keep start-up cheap) must behave exactly like ``json``, with and without
``_json``; host names resolve through the helper-thread path."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowcheck.probe import agent
from tests.probe.conftest import LocalServer, run_agent

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@pytest.fixture(params=["_json", "json fallback"])
def json_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "json fallback":
        monkeypatch.setattr(agent, "C_JSON", None)
    else:
        assert agent.C_JSON is not None, "CPython always has _json"
    return str(request.param)


@given(value=JSON_VALUES)
def test_dumps_matches_json_exactly(value: Any) -> None:
    assert agent.json_dumps(value) == json.dumps(value, separators=(",", ":"))


@given(value=JSON_VALUES)
def test_loads_round_trips_like_json(value: Any) -> None:
    text = json.dumps(value, indent=1)
    assert agent.json_loads(text) == json.loads(text)


@pytest.mark.parametrize("text", ["", "   ", "nope", '{"a": 1} trailing', '{"a":', "[1,]", "{'a': 1}", "\x00"])
def test_loads_rejects_what_json_rejects(json_mode: str, text: str) -> None:
    assert rejection(json.loads, text)
    assert rejection(agent.json_loads, text)


def rejection(parse: Callable[[str], Any], text: str) -> str:
    """The ValueError message ``parse`` raises for ``text`` (fails the test if it accepts it)."""
    try:
        parse(text)
    except ValueError as exc:
        return str(exc) or type(exc).__name__
    raise AssertionError(f"{parse.__module__}.{parse.__name__} accepted {text!r}")


def test_both_paths_agree_on_a_result_line(json_mode: str) -> None:
    line = {"id": "é\n", "outcome": "ok", "elapsed": 0.25, "answers": [{"ttl": 5}], "connected": True, "x": None}
    assert agent.json_dumps(line) == json.dumps(line, separators=(",", ":"))
    assert agent.json_loads(' {"timeout": 2.0, "probes": [NaN]} ')["probes"][0] != 0
    assert math.isnan(agent.json_loads("NaN"))


def test_host_names_are_resolved(local_server: LocalServer) -> None:
    run = run_agent({"timeout": 5, "probes": [
        {"id": "name", "kind": "http", "host": "localhost", "port": local_server.http}]})
    assert run.results[0]["outcome"] == "ok", run.results[0]
    assert run.results[0]["server"] == "default/api"
