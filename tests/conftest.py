"""Shared helpers for flowcheck's own tests."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

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
