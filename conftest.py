"""This repository's scenario for flowcheck's suites (``pytest suites/``).

The flowcheck plugin itself is loaded through its ``pytest11`` entry point; this file only holds
what is specific to this repository: where its policies and topology live (the plugin's defaults,
``manifests/network-policies`` and ``fixtures/topology.yaml``) and the fixtures the suites share
(see ``fixtures/``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's root directory (where manifests/ and fixtures/ live)."""
    return REPO_ROOT
