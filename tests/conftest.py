"""Shared helpers for flowcheck's own tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

# flowcheck's own tests read kustomizations with the built-in reader, whose output (files in order) they
# assert on, whether or not kustomize or kubectl is installed; the tests of the real renderer
# (tests/manifests/test_kustomize.py) ask for it. Inherited by the pytest runs the tests start.
os.environ.setdefault("FLOWCHECK_KUSTOMIZE", "builtin")

# The sample repository under tests/data is a user's repository, with its own intent files: it is
# collected only by the tests that run flowcheck on it, never by flowcheck's own run.
collect_ignore = ["data"]

REPO_ROOT = Path(__file__).resolve().parent.parent
POLICIES_DIR = REPO_ROOT / "manifests" / "network-policies"


@pytest.fixture
def policies_copy(tmp_path: Path) -> Path:
    """A writable copy of this repository's policy directory."""
    target = tmp_path / "network-policies"
    target.mkdir()
    for source in POLICIES_DIR.iterdir():
        (target / source.name).write_text(source.read_text())
    return target
