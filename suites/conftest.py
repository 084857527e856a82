"""Suite-wide helpers: parametrize manifest checks by the files the run's ``--policies`` name."""

from __future__ import annotations

import pytest

from flowcheck.model.documents import list_manifest_files
from flowcheck.plugin import settings_key


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "manifest_file" in metafunc.fixturenames:
        files = list_manifest_files(metafunc.config.stash[settings_key].policies)
        metafunc.parametrize("manifest_file", files, ids=[f.name for f in files])
