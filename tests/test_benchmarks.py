"""The benchmark scripts take their arguments and say what their figures are measured against.

They are run by hand (benchmarks/README.md), so nothing else notices a script that ignores
``--help`` and starts a minutes-long run, or one that calls targets met at sizes that have none.
Only tiny sizes run here: the figures themselves are not tested.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = REPO_ROOT / "benchmarks"


def _model_plan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BENCHMARKS / "model_plan.py"), *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def test_model_plan_help_names_its_options_and_runs_nothing() -> None:
    done = _model_plan("--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: model_plan.py")
    assert "--sizes" in done.stdout and "--policies" in done.stdout
    assert "model plan benchmark" not in done.stdout


def test_model_plan_at_tiny_sizes_prints_the_load_before_each_sample_and_that_no_target_applies() -> None:
    done = _model_plan("--sizes", "6,4", "--policies", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "M = 3 policies" in lines[0]
    assert lines[1].split()[-2:] == ["load", "before"]
    samples = [line.split() for line in lines[2:4]]
    assert [int(s[0]) for s in samples] == [4, 6]
    assert all(float(s[-1]) >= 0 for s in samples)  # the one-minute load average before the sample
    assert lines[4].startswith("no target applies at N = 4, 6, M = 3")
    assert "targets met" not in done.stdout


def test_model_plan_refuses_sizes_that_are_not_numbers() -> None:
    done = _model_plan("--sizes", "ten")
    assert done.returncode == 2
    assert "--sizes" in done.stderr


def _probe_matrix(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``benchmarks/probe_matrix.py`` as a module (its dataclasses look themselves up in ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location("probe_matrix", BENCHMARKS / "probe_matrix.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts the repository root on it
    spec.loader.exec_module(module)
    return module


def test_probe_matrix_says_no_target_applies_at_sizes_without_one(monkeypatch: pytest.MonkeyPatch) -> None:
    targets_line = _probe_matrix(monkeypatch).targets_line
    assert targets_line([5], []) == "targets: none applies at N = 5 (targets are at N = 20, 50)"
    assert targets_line([5, 20], []) == "targets: all met (at N = 20)"
    assert targets_line([5, 20], ["mode A at N = 20"]) == "targets: MISSED: mode A at N = 20"
