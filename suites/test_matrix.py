"""The full matrix: every workload to every workload on every served port, probed live.

The model predicts each path (``flowcheck plan``); this suite probes all of them on the cluster
and fails where the cluster disagrees with the model -- the check that catches what no hand-written
expectation thought of. One test per source workload, so a failure points at a sender. Workloads
marked ``existing`` (kube-dns) only receive: flowcheck cannot run its agent inside pods it did not
deploy.
"""

from __future__ import annotations

import pytest

from flowcheck.harness.checker import PathChecker
from flowcheck.model.matrix import PlannedFlow

pytestmark = pytest.mark.flowcheck_live


def test_matrix_from_source(flowcheck_paths: PathChecker, flowcheck_matrix: tuple[PlannedFlow, ...],
                            matrix_source: str) -> None:
    planned = [p for p in flowcheck_matrix if p.flow.source.describe() == matrix_source]
    assert planned, f"{matrix_source} has nothing to probe"
    flowcheck_paths.expect_planned(planned)
