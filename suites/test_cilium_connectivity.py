"""`cilium connectivity test` beside flowcheck's own suites, each of its tests a pytest subtest.

Cilium's suite exercises the datapath with its own workloads and policies in its own namespace
(`cilium-test-1`); flowcheck's checks exercise *this repository's* policies. Run together, a
broken datapath and a broken policy are told apart. The internet-dependent scenarios
(`pod-to-world`, `pod-to-cidr`) are always excluded -- kind in CI has no guaranteed egress -- and
`--flowcheck-cilium-test REGEX` narrows the run further (and is the opt-in on a
`--flowcheck-cluster=existing` cluster).
cilium keeps its `cilium-test-*` namespaces for the next run. Note: a CiliumClusterwideNetworkPolicy
among the repository's policies also acts on cilium's test pods while this runs.
"""

from __future__ import annotations

import pytest

from flowcheck.harness.backends import LiveBackend
from flowcheck.plugin.settings import FlowcheckSettings

pytestmark = pytest.mark.flowcheck_live


@pytest.mark.slow
def test_cilium_connectivity(flowcheck_live: LiveBackend | None, flowcheck_settings: FlowcheckSettings,
                             subtests: pytest.Subtests, tmp_path_factory: pytest.TempPathFactory) -> None:
    assert flowcheck_live is not None, "flowcheck_live tests are skipped offline; a live run always has a back end"
    cluster = flowcheck_settings.cluster
    if cluster.mode == "existing" and not cluster.connectivity_tests:
        pytest.skip("not run on an existing cluster unless asked with --flowcheck-cilium-test REGEX: Cilium's "
                    "docs warn against running the connectivity test on clusters with real workloads, and it leaves "
                    "its cilium-test-* namespaces behind")
    report_dir = flowcheck_settings.output.report_dir or tmp_path_factory.mktemp("cilium")
    report = flowcheck_live.connectivity_test(report_dir / "cilium-connectivity-junit.xml",
                                              tests=cluster.connectivity_tests)
    if report is None:
        pytest.skip("the live back end is not a Cilium cluster: there is no `cilium connectivity test` to run")
    assert report.results, f"`cilium connectivity test` wrote no results (exit {report.returncode})"
    for result in report.results:
        with subtests.test(msg=result.name):
            if result.status == "skipped":
                pytest.skip(result.message or "skipped by cilium")
            assert result.status == "passed", result.failure_text or result.message
    assert report.returncode == 0 or report.with_status("failed"), (
        f"`cilium connectivity test` exited {report.returncode} without a failed test: see {report.junit_file}")
