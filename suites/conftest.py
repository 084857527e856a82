"""Suite-wide parametrization: manifest files from ``--flowcheck-policies``, matrix sources from
``--flowcheck-topology``."""

from __future__ import annotations

import pytest

from flowcheck.errors import FlowcheckError
from flowcheck.manifests.documents import list_manifest_files
from flowcheck.model.topology import load_topology
from flowcheck.plugin import settings_key


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    settings = metafunc.config.stash[settings_key]
    if "manifest_file" in metafunc.fixturenames:
        files = list_manifest_files(settings.check.policies)
        metafunc.parametrize("manifest_file", files, ids=[f.name for f in files])
    if "matrix_source" in metafunc.fixturenames:
        try:
            topology = load_topology(settings.check.topology)
        except FlowcheckError as exc:
            raise pytest.UsageError(f"flowcheck: {exc}") from None
        # Existing workloads (e.g. kube-dns) only receive: the agent runs in flowcheck's own pods.
        sources = [w.ref for w in topology.workloads if not w.existing]
        metafunc.parametrize("matrix_source", sources, ids=sources)
