"""Streaming JSON (``flowcheck.cli.json_stream``) and ``flowcheck plan --format json`` written with it.

The writer must give exactly what ``json.dumps`` gives for the whole document -- compact, or with
``indent`` -- while holding one batch of records at a time; ``plan`` must print the same JSON as
before (docs/contracts.md, "The flowcheck command"), compact unless ``--indent`` is given or stdout
is a terminal.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowcheck.cli import main
from flowcheck.cli.json_stream import BATCH_RECORDS, write_encoded_json_stream, write_json_stream
from flowcheck.model.decided_flow import decided_flow_json, document_header
from flowcheck.model.engine import Model
from flowcheck.model.matrix import decide_matrix
from flowcheck.model.policies import load_policies
from flowcheck.model.render import plan_json
from flowcheck.model.topology import load_topology
from tests.conftest import POLICIES_DIR, REPO_ROOT

TOPOLOGY = REPO_ROOT / "fixtures" / "topology.yaml"
MODEL_ARGS = ["--topology", str(TOPOLOGY), "--policies", str(POLICIES_DIR)]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8)
heads = st.dictionaries(st.text(max_size=6).filter(lambda k: k != "results"), json_values, max_size=3)
records = st.lists(st.dictionaries(st.text(max_size=5), json_values, max_size=4), max_size=6)


def _written(head: dict[str, Any], items: list[Any], indent: int | None) -> str:
    out = io.StringIO()
    write_json_stream(out, head, "results", iter(items), indent=indent)
    return out.getvalue()


@settings(max_examples=150, deadline=None)
@given(heads, records, st.sampled_from([None, 0, 1, 2, 4]))
def test_the_stream_is_what_json_dumps_gives_for_the_whole_document(
        head: dict[str, Any], items: list[Any], indent: int | None) -> None:
    document = {**head, "results": items}
    compact = indent is None
    expected = json.dumps(document, separators=(",", ":")) if compact else json.dumps(document, indent=indent)
    assert _written(head, items, indent) == expected + "\n"


@settings(max_examples=100, deadline=None)
@given(heads, records)
def test_records_encoded_by_the_caller_give_the_same_text(head: dict[str, Any], items: list[Any]) -> None:
    out = io.StringIO()
    write_encoded_json_stream(out, head, "results", (json.dumps(r, separators=(",", ":")) for r in items))
    assert out.getvalue() == _written(head, items, None)


def test_a_long_stream_is_written_batch_by_batch_not_held() -> None:
    out = io.StringIO()
    pulled_at_first_write: list[int] = []
    pulled = 0

    class Watch(io.StringIO):
        def write(self, text: str) -> int:
            if "{" in text and not pulled_at_first_write and pulled:
                pulled_at_first_write.append(pulled)
            return out.write(text)

    def items() -> Iterator[dict[str, int]]:
        nonlocal pulled
        for i in range(5 * BATCH_RECORDS):
            pulled += 1
            yield {"i": i}

    write_json_stream(Watch(), {}, "results", items())
    assert pulled_at_first_write == [BATCH_RECORDS]  # the first batch went out before the second was made
    assert json.loads(out.getvalue())["results"][-1] == {"i": 5 * BATCH_RECORDS - 1}


def test_the_streamed_key_cannot_also_be_a_head_field() -> None:
    with pytest.raises(ValueError, match="'results' is the streamed list"):
        write_json_stream(io.StringIO(), {"results": 1}, "results", [])


def _plan_document(version: int) -> dict[str, Any]:
    """The plan as one ``json.dumps`` of the whole document would give it: what the stream must equal."""
    planned = decide_matrix(Model(load_topology(TOPOLOGY), load_policies([POLICIES_DIR])))
    if version == 1:
        return plan_json(planned)
    header = document_header("plan", semantics="cilium", topology=str(TOPOLOGY), policies=[str(POLICIES_DIR)])
    # the repository's policies all match something: no warnings
    return {**header, "warnings": [], "flows": [decided_flow_json(p.flow, p.decision) for p in planned]}


@pytest.mark.parametrize("version", [1, 2])
def test_plan_json_is_compact_by_default_and_the_same_document(capsys: pytest.CaptureFixture[str],
                                                               version: int) -> None:
    assert main(["plan", *MODEL_ARGS, "--format", "json", "--json-version", str(version)]) == 0
    out = capsys.readouterr().out
    assert out == json.dumps(_plan_document(version), separators=(",", ":")) + "\n"
    assert out.count("\n") == 1


@pytest.mark.parametrize("version", [1, 2])
def test_plan_json_with_indent_is_laid_out_as_before(capsys: pytest.CaptureFixture[str], version: int) -> None:
    """``--indent 2`` gives, byte for byte, what plan printed before it streamed (``json.dumps(..., indent=2)``)."""
    assert main(["plan", *MODEL_ARGS, "--format", "json", "--indent", "2", "--json-version", str(version)]) == 0
    assert capsys.readouterr().out == json.dumps(_plan_document(version), indent=2) + "\n"


def test_plan_json_on_a_terminal_is_indented(capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert main(["plan", *MODEL_ARGS, "--format", "json", "--port", "53"]) == 0
    out = capsys.readouterr().out
    assert out.startswith('{\n  "kind": "flowcheck-plan",\n  "format": 2,\n')
    assert json.loads(out)["flows"]


@pytest.mark.parametrize("value", ["-1", "17", "two"])
def test_a_bad_indent_is_bad_input(capsys: pytest.CaptureFixture[str], value: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["plan", *MODEL_ARGS, "--format", "json", "--indent", value])
    assert exit_info.value.code == 2
    assert "--indent" in capsys.readouterr().err
