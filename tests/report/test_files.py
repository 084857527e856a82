"""The report directory (--flowcheck-report DIR) and reading matrix.json back, with clear errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowcheck.report.files import read_matrix, write_report_dir
from flowcheck.report.html_page import render_html
from flowcheck.report.markdown import render_markdown
from flowcheck.report.records import CheckedFlow, MatrixReport, ReportFileError, report_from_json
from flowcheck.verdict import Verdict
from tests.report.sample import sample_report


def test_report_dir_has_matrix_html_and_markdown(tmp_path: Path) -> None:
    report = sample_report()
    paths = write_report_dir(report, tmp_path / "out" / "nested")
    assert sorted(p.name for p in paths.directory.iterdir()) == ["matrix.json", "report.html", "report.md"]
    assert MatrixReport.from_json(json.loads(paths.matrix.read_text())) == report
    assert paths.html.read_text() == render_html(report)
    assert paths.markdown.read_text() == render_markdown(report)


def test_report_dir_hands_back_the_markdown_it_wrote_for_the_step_summary(tmp_path: Path) -> None:
    paths = write_report_dir(sample_report(), tmp_path)
    assert paths.markdown_text == paths.markdown.read_text(encoding="utf-8") == render_markdown(sample_report())
    assert "markdown_text" not in repr(paths)  # the paths stay readable when printed


def test_report_dir_overwrites_a_previous_run(tmp_path: Path) -> None:
    write_report_dir(sample_report(), tmp_path)
    smaller = MatrixReport(sample_report().flows[:1])
    write_report_dir(smaller, tmp_path)
    assert read_matrix(tmp_path) == smaller
    assert sorted(p.name for p in tmp_path.iterdir()) == ["matrix.json", "report.html", "report.md"]


def test_read_matrix_accepts_the_file_or_its_directory(tmp_path: Path) -> None:
    paths = write_report_dir(sample_report(), tmp_path)
    assert read_matrix(paths.matrix) == read_matrix(tmp_path) == sample_report()


def test_what_passes_l7_is_kept_in_matrix_json_only_when_known(tmp_path: Path) -> None:
    filtered = CheckedFlow("tenant/client", "default/my-api", "TCP", 8080, Verdict.ALLOWED, l7_passes="GET /.* only")
    plain = CheckedFlow("tenant/client", "default/web", "TCP", 8080, Verdict.DROPPED)
    paths = write_report_dir(MatrixReport((filtered, plain)), tmp_path)
    flows = json.loads(paths.matrix.read_text())["flows"]
    assert flows[0]["l7"] == {"passes": "GET /.* only", "filters": []}
    assert flows[1]["l7"] is None
    assert read_matrix(tmp_path).flows == (filtered, plain)


def test_a_format_1_matrix_is_still_read_with_what_passes_l7(tmp_path: Path) -> None:
    path = tmp_path / "matrix.json"
    path.write_text(json.dumps({"format": 1, "metadata": {"run": "old"}, "flows": [
        {"from": "tenant/client", "to": "default/my-api", "protocol": "TCP", "port": 8080, "request": None,
         "expected": "allowed", "model": "allowed", "model_reasons": ["r"], "observed": "allowed",
         "observed_detail": "", "attempts": 1, "evidence": ["e"], "test": "t", "l7_passes": "GET"}]}))
    assert read_matrix(path).flows == (CheckedFlow(
        "tenant/client", "default/my-api", "TCP", 8080, Verdict.ALLOWED, expected=Verdict.ALLOWED,
        model_reasons=("r",), observed=Verdict.ALLOWED, attempts=1, evidence=("e",), test="t", l7_passes="GET"),)


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    ("{not json", "not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    ('{"format": 1, "flows": [{"from": "a/b"}]}', "field flows[0].to: expected a non-empty string, got None"),
    ('{"format": 1, "flows": [{"from": "a/b", "to": "c/d", "protocol": "TCP", "model": "maybe"}]}',
     "field flows[0].model: unknown verdict 'maybe'"),
    ('{"format": 3, "flows": []}', "field format: expected one of 1, 2, got 3"),
    ('{"format": 2, "flows": [{"from": "a/b", "to": "c/d", "protocol": "TCP", "port": 80, "verdict": "allowed", '
     '"decided_by": "sideways"}]}', "field flows[0].decided_by: expected one of both, egress"),
    ('{"format": 2, "flows": [{"from": {"entity": "galaxy"}, "to": "c/d", "protocol": "TCP", "port": 80}]}',
     "field flows[0].from.entity: expected one of"),
    ('{"format": 2, "flows": [{"from": "a/b", "to": "c/d", "protocol": "TCP", "port": 80, "verdict": "allowed", '
     '"l7": {"passes": "GET", "filters": [{"direction": "up"}]}}]}',
     "field flows[0].l7.filters[0].direction: expected ingress or egress, got 'up'"),
    ('{"format": 1, "flows": [{"from": "a/b", "to": "c/d", "protocol": "TCP", "model": "allowed", "l7_passes": 3}]}',
     "field flows[0].l7_passes: expected a string, got 3"),
])
def test_malformed_matrix_names_the_file_and_field(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "matrix.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ReportFileError) as error:
        read_matrix(path)
    assert str(error.value).startswith(f"{path}")
    assert message in str(error.value)


def test_report_files_get_the_usual_permissions(tmp_path: Path) -> None:
    """Written through a temporary file, but readable like any file the user creates (umask applies)."""
    import os

    mask = os.umask(0o022)
    try:
        paths = write_report_dir(sample_report(), tmp_path / "report")
    finally:
        os.umask(mask)
    assert {p.stat().st_mode & 0o777 for p in (paths.matrix, paths.html, paths.markdown)} == {0o644}


def _plan_document() -> dict[str, object]:
    from flowcheck.model.decided_flow import decided_flow_json, document_header
    from flowcheck.model.engine import Model
    from flowcheck.model.matrix import decide_matrix
    from flowcheck.model.policies import load_policies
    from flowcheck.model.topology import load_topology
    from tests.conftest import POLICIES_DIR, REPO_ROOT

    model = Model(load_topology(REPO_ROOT / "fixtures" / "topology.yaml"), load_policies([POLICIES_DIR]), "cilium")
    planned = decide_matrix(model)
    return {**document_header("plan"), "flows": [decided_flow_json(p.flow, p.decision) for p in planned[:12]]}


PLAN_DOCUMENT = _plan_document()
MATRIX_DOCUMENT = MatrixReport(tuple(sample_report().flows)).to_json()
JUNK = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10),
                 st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


def _paths(value: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*prefix, index)))
    return found


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["plan", "matrix"]), st.data())
def test_a_mutated_plan_or_matrix_reads_or_names_what_is_wrong(which: str, data: st.DataObject) -> None:
    """Any value of a version-2 plan or matrix.json replaced by junk: read, or a ReportFileError -- never a crash."""
    document = copy.deepcopy(PLAN_DOCUMENT if which == "plan" else MATRIX_DOCUMENT)
    path = data.draw(st.sampled_from(_paths(document)[1:]))
    target: Any = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = data.draw(JUNK)
    failure: ReportFileError | None = None
    try:
        report_from_json(document, path="doc.json")
    except ReportFileError as error:
        failure = error
    assert failure is None or str(failure).startswith("doc.json")
