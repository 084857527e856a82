"""Baselines: recording a run, reading files back, and comparing two runs (the typed diff)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from flowcheck.report.baseline import (
    Basis,
    ChangeKind,
    baseline_from_json,
    compare_baselines,
    dump_baseline,
    read_baseline,
    record_baseline,
    render_diff,
    write_baseline,
)
from flowcheck.report.files import write_report_dir
from flowcheck.report.records import CheckedFlow, MatrixReport, ReportFileError
from flowcheck.verdict import Verdict
from tests.report.sample import sample_flows, sample_report

A, D, L7 = Verdict.ALLOWED, Verdict.DROPPED, Verdict.L7_DENIED


def run(*flows: CheckedFlow, **metadata: str) -> MatrixReport:
    return MatrixReport(tuple(flows), metadata)


def probed(source: str, destination: str, port: int, observed: Verdict, model: Verdict = A) -> CheckedFlow:
    return CheckedFlow(source, destination, "TCP", port, model, expected=model, observed=observed)


def test_record_keeps_observed_verdicts_and_model_verdicts_of_unprobed_flows() -> None:
    baseline = record_baseline(sample_report())
    entries = {e.path: e for e in baseline.entries}
    assert len(entries) == len(sample_flows())
    prom = entries["monitoring/prometheus -> default/my-api:9090/TCP"]
    assert (prom.verdicts, prom.basis) == ((D,), Basis.OBSERVED)
    refused = entries["monitoring/prometheus -> kube-system/coredns:53/UDP"]
    assert (refused.verdicts, refused.basis) == ((Verdict.REFUSED,), Basis.OBSERVED)
    fqdn = entries["default/web -> world:443/TCP fqdn api.example.com"]
    assert (fqdn.verdicts, fqdn.basis) == ((Verdict.UNKNOWN,), Basis.MODEL)
    assert fqdn.describe() == "unknown (model only, not probed)"
    assert baseline.metadata["cilium_version"] == "1.16.5"


def test_record_metadata_argument_overrides_the_run_metadata() -> None:
    baseline = record_baseline(sample_report(), {"cilium_version": "1.17.0", "note": "pre-upgrade"})
    assert baseline.metadata["cilium_version"] == "1.17.0"
    assert baseline.metadata["note"] == "pre-upgrade"
    assert baseline.metadata["run"] == "nightly #42"


def test_same_path_checked_twice_keeps_every_distinct_verdict_preferring_observed() -> None:
    report = run(
        probed("a/x", "b/y", 80, A),
        probed("a/x", "b/y", 80, D),
        CheckedFlow("a/x", "b/y", "TCP", 80, L7),  # not probed: its model verdict does not count
        CheckedFlow("a/x", "b/z", "TCP", 80, L7),
        CheckedFlow("a/x", "b/z", "TCP", 80, L7),
    )
    entries = record_baseline(report).entries
    assert [(e.path, e.verdicts, e.basis) for e in entries] == [
        ("a/x -> b/y:80/TCP", (A, D), Basis.OBSERVED),
        ("a/x -> b/z:80/TCP", (L7,), Basis.MODEL),
    ]
    assert entries[0].describe() == "allowed+dropped"


def test_file_round_trip_one_flow_per_line(tmp_path: Path) -> None:
    baseline = record_baseline(sample_report())
    path = write_baseline(baseline, tmp_path / "base.json")
    assert read_baseline(path) == baseline
    text = path.read_text()
    flow_lines = [line for line in text.splitlines() if line.lstrip().startswith('{"from"')]
    assert len(flow_lines) == len(baseline.entries)
    assert json.loads(text)["kind"] == "flowcheck-baseline"
    assert dump_baseline(baseline) == text


def test_read_baseline_records_a_matrix_or_report_dir_on_the_fly(tmp_path: Path) -> None:
    paths = write_report_dir(sample_report(), tmp_path / "run")
    expected = record_baseline(sample_report())
    assert read_baseline(paths.matrix) == expected
    assert read_baseline(paths.directory) == expected


def test_unchanged_runs_have_no_changes() -> None:
    old = record_baseline(sample_report())
    new = record_baseline(sample_report(), {"run": "nightly #43"})
    diff = compare_baselines(old, new)
    assert diff.changes == ()
    assert not diff.has_changes
    assert diff.compared == len(sample_flows())
    assert [(m.key, m.before, m.after) for m in diff.metadata_changes] == [("run", "nightly #42", "nightly #43")]
    assert render_diff(diff, old_label="before.json", new_label="after.json") == (
        "baseline compare: before.json -> after.json\n"
        "  run run: nightly #42 -> nightly #43\n"
        "NOT A VERDICT  default/web -> kube-system/coredns:53/UDP: error (the probe failed; never a pass)\n"
        "NOT A VERDICT  monitoring/prometheus -> kube-system/coredns:53/UDP: refused (the probe failed; never a pass)\n"
        "no changes: 9 flows compared, every verdict the same\n"
    )
    # Unchanged, but two flows were never observed (error, refused): the comparison cannot vouch for them.
    assert diff.failed
    assert [e.path for e in diff.unverified] == ["default/web -> kube-system/coredns:53/UDP",
                                                 "monitoring/prometheus -> kube-system/coredns:53/UDP"]


def test_unchanged_runs_whose_probes_all_worked_pass() -> None:
    flows = tuple(f for f in sample_report().flows if f.observed not in (Verdict.ERROR, Verdict.REFUSED))
    report = MatrixReport(flows, sample_report().metadata)
    diff = compare_baselines(record_baseline(report), record_baseline(report))
    assert not diff.failed
    assert diff.unverified == ()


def test_changed_new_and_removed_flows_are_labelled() -> None:
    old = record_baseline(run(probed("a/x", "b/y", 80, D), probed("a/x", "b/y", 81, A), probed("a/x", "b/old", 80, A),
                              cilium_version="1.16.5"))
    new = record_baseline(run(probed("a/x", "b/y", 80, A), probed("a/x", "b/y", 81, A), probed("a/x", "b/new", 80, D),
                              cilium_version="1.17.0"))
    diff = compare_baselines(old, new)
    assert diff.has_changes
    assert diff.compared == 2
    assert [(c.kind, c.entry.path) for c in diff.changes] == [
        (ChangeKind.NEW, "a/x -> b/new:80/TCP"),
        (ChangeKind.REMOVED, "a/x -> b/old:80/TCP"),
        (ChangeKind.CHANGED, "a/x -> b/y:80/TCP"),
    ]
    assert [c.entry.path for c in diff.changed] == ["a/x -> b/y:80/TCP"]
    changed = diff.changed[0]
    assert changed.before is not None and changed.after is not None
    assert (changed.before.verdicts, changed.after.verdicts) == ((D,), (A,))
    assert render_diff(diff, old_label="old", new_label="new") == (
        "baseline compare: old -> new\n"
        "  run cilium_version: 1.16.5 -> 1.17.0\n"
        "NEW      a/x -> b/new:80/TCP: dropped\n"
        "REMOVED  a/x -> b/old:80/TCP: allowed\n"
        "CHANGED  a/x -> b/y:80/TCP: dropped -> allowed\n"
        "3 differences (1 changed, 1 new, 1 removed); 2 flows in both runs\n"
    )
    document = diff.to_json()
    assert (document["changed"], document["new"], document["removed"], document["compared"]) == (1, 1, 1, 2)
    assert document["changes"][0] == {"kind": "new", "before": None, "after": {
        "from": "a/x", "to": "b/new", "protocol": "TCP", "port": 80, "request": None, "verdicts": ["dropped"],
        "basis": "observed"}}


def test_l7_request_is_part_of_the_flow_identity() -> None:
    get = CheckedFlow("a/x", "b/y", "TCP", 80, A, request="GET /", observed=A)
    post = CheckedFlow("a/x", "b/y", "TCP", 80, L7, request="POST /", observed=L7)
    old = record_baseline(run(get, post))
    new = record_baseline(run(get, replace(post, observed=A)))
    assert [c.describe() for c in compare_baselines(old, new).changes] == [
        "a/x -> b/y:80/TCP POST /: l7-denied -> allowed"]


def test_unprobed_flows_compare_on_their_model_verdicts() -> None:
    old = record_baseline(run(CheckedFlow("a/x", "b/y", "TCP", 80, A)))
    same = record_baseline(run(CheckedFlow("a/x", "b/y", "TCP", 80, A)))
    moved = record_baseline(run(CheckedFlow("a/x", "b/y", "TCP", 80, D)))
    assert not compare_baselines(old, same).has_changes
    assert [c.describe() for c in compare_baselines(old, moved).changes] == [
        "a/x -> b/y:80/TCP: allowed (model only, not probed) -> dropped (model only, not probed)"]


def test_a_flow_probed_in_one_run_only_is_a_change_even_with_the_same_verdict() -> None:
    old = record_baseline(run(probed("a/x", "b/y", 80, A)))
    new = record_baseline(run(CheckedFlow("a/x", "b/y", "TCP", 80, A)))
    diff = compare_baselines(old, new)
    assert [(c.kind, c.describe()) for c in diff.changes] == [
        (ChangeKind.CHANGED, "a/x -> b/y:80/TCP: allowed -> allowed (model only, not probed)")]


def valid_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(dump_baseline(record_baseline(sample_report())))
    return document


@pytest.mark.parametrize(("mutate", "field", "message"), [
    (lambda d: d.update(kind="something-else"), "kind", "expected 'flowcheck-baseline', got 'something-else'"),
    (lambda d: d.update(format=7), "format", "expected 1, got 7"),
    (lambda d: d.update(flows={}), "flows", "expected a list of flow entries"),
    (lambda d: d.update(metadata={"x": 1}), "metadata", "expected an object of strings"),
    (lambda d: d["flows"][2].update(verdicts=["sometimes"]), "flows[2].verdicts[0]", "unknown verdict 'sometimes'"),
    (lambda d: d["flows"][1].update(verdicts=[]), "flows[1].verdicts", "expected a non-empty list of verdicts"),
    (lambda d: d["flows"][0].update(port="80"), "flows[0].port", "expected an integer or null, got '80'"),
    (lambda d: d["flows"][0].update(basis="guess"), "flows[0].basis", "expected 'observed' or 'model', got 'guess'"),
    (lambda d: d["flows"][3].pop("from"), "flows[3].from", "expected a non-empty string, got None"),
    (lambda d: d["flows"].append(dict(d["flows"][0])), "flows[9]", "duplicate flow default/web -> default/my-api"),
])
def test_malformed_baseline_names_the_field(mutate: Callable[[dict[str, Any]], object], field: str,
                                            message: str) -> None:
    document = valid_document()
    mutate(document)
    with pytest.raises(ReportFileError) as error:
        baseline_from_json(document, path="base.json")
    assert error.value.path == "base.json"
    assert error.value.field == field
    assert message in error.value.message


def test_not_json_and_missing_files_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"kind": "flowcheck-baseline", "flows": [')
    with pytest.raises(ReportFileError, match=rf"^{broken}: not valid JSON: Expecting value at line 1 column 42"):
        read_baseline(broken)
    with pytest.raises(ReportFileError, match=rf"^{tmp_path / 'nope.json'}: no such file$"):
        read_baseline(tmp_path / "nope.json")
    top_level_list = tmp_path / "list.json"
    top_level_list.write_text("[]")
    with pytest.raises(ReportFileError, match=r"expected a JSON object, got list"):
        read_baseline(top_level_list)
