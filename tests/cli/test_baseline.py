"""``flowcheck baseline record|compare``: output and exit codes."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flowcheck.cli import baseline, main
from flowcheck.report.baseline import read_baseline
from flowcheck.report.files import write_report_dir
from flowcheck.report.records import CheckedFlow, MatrixReport
from flowcheck.verdict import Verdict
from tests.conftest import POLICIES_DIR, REPO_ROOT
from tests.report.sample import sample_report

A, D = Verdict.ALLOWED, Verdict.DROPPED


def write_run(directory: Path, *observed: Verdict, version: str = "1.16.5") -> Path:
    flows = tuple(CheckedFlow("a/x", "b/y", "TCP", 80 + i, A, expected=A, observed=v) for i, v in enumerate(observed))
    return write_report_dir(MatrixReport(flows, {"cilium_version": version}), directory).matrix


def test_wiring_adds_baseline_with_record_and_compare() -> None:
    parser = argparse.ArgumentParser(prog="flowcheck")
    baseline.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["baseline", "compare", "old.json", "new.json"])
    assert (args.old, args.new, args.format) == ("old.json", "new.json", "text")
    assert args.func is baseline.run_compare
    args = parser.parse_args(["baseline", "record", "m.json", "-o", "b.json", "--meta", "k=v=w"])
    assert (args.matrix, args.output, args.meta) == ("m.json", "b.json", [("k", "v=w")])


def test_record_writes_a_baseline_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = write_report_dir(sample_report(), tmp_path / "run")
    target = tmp_path / "before.json"
    assert main(["baseline", "record", str(paths.directory), "--output", str(target),
                 "--meta", "cilium_version=1.16.6"]) == 0
    assert capsys.readouterr().err == f"baseline of 9 flows written to {target}\n"
    baseline = read_baseline(target)
    assert len(baseline.entries) == 9
    assert baseline.metadata["cilium_version"] == "1.16.6"


def test_record_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    matrix = write_run(tmp_path, D)
    assert main(["baseline", "record", str(matrix)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["flows"] == [{"from": "a/x", "to": "b/y", "protocol": "TCP", "port": 80, "request": None,
                                  "verdicts": ["dropped"], "basis": "observed"}]


def test_compare_unchanged_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = write_run(tmp_path / "old", A, D)
    new = write_run(tmp_path / "new", A, D)
    assert main(["baseline", "compare", str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert out.endswith("no changes: 2 flows compared, every verdict the same\n")


def test_compare_unchanged_but_unobserved_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An error in both runs is unchanged, and still not a pass (docs/contracts.md, "Verdicts")."""
    old = write_run(tmp_path / "old", A, Verdict.ERROR)
    new = write_run(tmp_path / "new", A, Verdict.ERROR)
    assert main(["baseline", "compare", str(old), str(new)]) == 1
    out = capsys.readouterr().out
    assert "NOT A VERDICT  a/x -> b/y:81/TCP: error (the probe failed; never a pass)" in out


def test_compare_changed_new_removed_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = write_run(tmp_path / "old", A, D, version="1.16.5")
    new = write_run(tmp_path / "new", D, D, A, version="1.17.0")
    assert main(["baseline", "compare", str(old), str(new)]) == 1
    assert capsys.readouterr().out == (
        f"baseline compare: {old} -> {new}\n"
        "  run cilium_version: 1.16.5 -> 1.17.0\n"
        "CHANGED  a/x -> b/y:80/TCP: allowed -> dropped\n"
        "NEW      a/x -> b/y:82/TCP: allowed\n"
        "2 differences (1 changed, 1 new, 0 removed); 2 flows in both runs\n"
    )
    assert main(["baseline", "compare", str(new), str(old)]) == 1
    assert "REMOVED  a/x -> b/y:82/TCP: allowed\n" in capsys.readouterr().out


def test_compare_json_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = write_run(tmp_path / "old", A)
    new = write_run(tmp_path / "new", D)
    assert main(["baseline", "compare", "--format", "json", str(old), str(new)]) == 1
    document = json.loads(capsys.readouterr().out)
    assert (document["changed"], document["new"], document["removed"]) == (1, 0, 0)


def test_compare_a_recorded_baseline_with_a_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run(tmp_path / "before", A, D)
    assert main(["baseline", "record", str(tmp_path / "before"), "-o", str(tmp_path / "base.json")]) == 0
    write_run(tmp_path / "after", A, D)
    assert main(["baseline", "compare", str(tmp_path / "base.json"), str(tmp_path / "after")]) == 0


def test_malformed_file_exits_2_naming_file_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_run(tmp_path / "good", A)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"kind": "flowcheck-baseline", "format": 1, "flows": [
        {"from": "a/x", "to": "b/y", "protocol": "TCP", "port": 80, "verdicts": ["allowed"], "basis": "seen"}]}))
    assert main(["baseline", "compare", str(good), str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f"flowcheck: error: {bad}, field flows[0].basis: expected 'observed' or 'model', "
                            "got 'seen'\n")


def test_record_of_a_missing_matrix_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["baseline", "record", str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err == f"flowcheck: error: {tmp_path / 'missing.json'}: no such file\n"


def test_record_to_an_unwritable_place_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    matrix = write_run(tmp_path, A)
    target = tmp_path / "no-such-dir" / "b.json"
    assert main(["baseline", "record", str(matrix), "-o", str(target)]) == 2
    assert capsys.readouterr().err.startswith(f"flowcheck: error: {target}: cannot write the baseline: ")


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["baseline", "record", "m.json", "--meta", "novalue"])
    assert exit_info.value.code == 2
    assert "expected KEY=VALUE, got 'novalue'" in capsys.readouterr().err
    assert main(["baseline"]) == 2
    assert "record" in capsys.readouterr().err


def test_malformed_file_from_a_real_process_has_no_traceback(tmp_path: Path) -> None:
    old = write_run(tmp_path / "old", A)
    bad = tmp_path / "truncated.json"
    bad.write_text(old.read_text()[:50])
    result = subprocess.run([sys.executable, "-m", "flowcheck", "baseline", "compare",
                             str(old), str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"flowcheck: error: {bad}: not valid JSON: ")


def _plan(tmp_path: Path, capsys: pytest.CaptureFixture[str], policies: Path, version: str, name: str) -> Path:
    args = ["plan", "--topology", str(REPO_ROOT / "fixtures" / "topology.yaml"), "--policies", str(policies),
            "--format", "json", "--json-version", version]
    assert main(args) == 0
    target = tmp_path / name
    target.write_text(capsys.readouterr().out)
    return target


@pytest.mark.parametrize(("old_version", "new_version"), [("1", "1"), ("2", "2"), ("1", "2")])
def test_compare_takes_plan_json_of_either_version(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   old_version: str, new_version: str) -> None:
    """A plan before and after a policy change, compared as baselines of model verdicts."""
    changed = tmp_path / "policies"
    shutil.copytree(POLICIES_DIR, changed)
    (changed / "allow-get-only.yaml").unlink()
    (changed / "kustomization.yaml").write_text((changed / "kustomization.yaml").read_text().replace(
        "  - allow-get-only.yaml\n", ""))
    old = _plan(tmp_path, capsys, POLICIES_DIR, old_version, "old.json")
    new = _plan(tmp_path, capsys, changed, new_version, "new.json")
    assert main(["baseline", "compare", str(old), str(new)]) == 1
    out = capsys.readouterr().out
    changes = [line for line in out.splitlines() if line.startswith("CHANGED")]
    assert changes == [f"CHANGED  {source} -> default/my-api:8080/TCP: allowed (model only, not probed) -> "
                       "dropped (model only, not probed)"
                       for source in ("kube-system/coredns", "monitoring/grafana", "monitoring/prometheus",
                                      "tenant/client")]
    assert "4 differences (4 changed, 0 new, 0 removed); 54 flows in both runs" in out
    assert main(["baseline", "compare", str(old), str(old)]) == 0
    capsys.readouterr()


def test_compare_names_a_malformed_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "plan.json"
    bad.write_text(json.dumps({"results": [{"from": "a/b", "to": "c/d", "port": 80, "protocol": "TCP",
                                            "verdict": "perhaps", "reasons": []}]}))
    assert main(["baseline", "compare", str(bad), str(bad)]) == 2
    assert f"{bad}, field results[0].verdict: unknown verdict 'perhaps'" in capsys.readouterr().err
    bad.write_text(json.dumps({"kind": "flowcheck-plan", "format": 2, "flows": [{"from": "a/b"}]}))
    assert main(["baseline", "compare", str(bad), str(bad)]) == 2
    assert f"{bad}, field flows[0].to: expected a non-empty string or an endpoint object, got None" in \
        capsys.readouterr().err
