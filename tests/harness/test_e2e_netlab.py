"""End to end on real packets: the repository's suites, live path included, against the netns lab.

The real suite files run under pytest with the lab plugged in through ``pytest_flowcheck_backend``:
every expectation is checked against the model and probed from lab pods (one agent run per source,
real sockets, real nftables), classified and compared, and the report is written. The lab enforces
the repository's policies through a hand-written nftables translation (tests/netlab/scenario.py),
independent of the model, so "all suites pass" means model and enforcement agree on every path; a
lab missing one rule shows how a misconfigured cluster fails, with expected, model and observed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowcheck.harness.live import SELF_TRAFFIC
from tests.conftest import POLICIES_DIR, REPO_ROOT
from tests.netlab import netlab_unavailable_reason

pytestmark = [pytest.mark.netlab, pytest.mark.slow]

LIVE_SUITES = ["test_default_deny.py", "test_dns.py", "test_monitoring_scrape.py", "test_l7_http.py", "test_matrix.py",
               "test_cilium_connectivity.py"]


@pytest.fixture(autouse=True)
def _needs_the_lab() -> None:
    reason = netlab_unavailable_reason()
    if reason is not None:
        pytest.skip(f"the network-namespace lab cannot run here: {reason}")


def _run_suites(pytester: pytest.Pytester, report: Path, skip_rules: tuple[str, ...] = ()) -> pytest.RunResult:
    pytester.makepyfile(flowcheck_lab_plugin=f"""
import sys
sys.path.insert(0, {str(REPO_ROOT)!r})
from tests.netlab.scenario import LabProvider

def pytest_flowcheck_backend(config):
    return LabProvider(skip_rules={skip_rules!r})
""")
    suites = [str(REPO_ROOT / "suites" / name) for name in LIVE_SUITES]
    return pytester.runpytest_subprocess(
        *suites, "--rootdir", str(REPO_ROOT), "-p", "flowcheck_lab_plugin", "-p", "no:cacheprovider",
        "--flowcheck-policies", str(POLICIES_DIR),
        "--flowcheck-topology", str(REPO_ROOT / "fixtures" / "topology.yaml"),
        "--flowcheck-probe-timeout", "0.5", "--flowcheck-report", str(report), "-rfEs")


def test_the_suites_pass_on_a_lab_that_enforces_the_policies(pytester: pytest.Pytester, tmp_path: Path) -> None:
    report = tmp_path / "report"
    result = _run_suites(pytester, report)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()
    assert outcomes.get("errors", 0) == 0, result.stdout.str()
    assert outcomes["passed"] >= 30
    result.stdout.fnmatch_lines(["*the live back end is not a Cilium cluster*"])  # only connectivity skips
    flows = json.loads((report / "matrix.json").read_text())["flows"]
    probed = [f for f in flows if f["observed"] is not None]
    unprobed = {f["observed_detail"] for f in flows if f["observed"] is None}
    assert unprobed <= {"not probed: kube-system/coredns is an existing workload", f"not probed: {SELF_TRAFFIC}"}
    observed = {f["observed"] for f in probed}
    assert observed == {"allowed", "dropped", "l7-denied"}
    assert all(f["observed"] == (f["expected"] or f["verdict"]) for f in probed)  # matrix.json format 2
    denied = [f for f in probed if f["observed"] == "l7-denied"]
    assert all("denied by Cilium's L7 proxy" in f["observed_detail"] for f in denied)
    # the lab's Hubble (nftables packet traces) confirms every drop and every answer, per probe's 5-tuple;
    # its stand-in proxy logs no L7 records, so a denial has no evidence -- counted, never a pass by itself
    states = {(f["observed"], f["evidence_state"]) for f in probed}
    assert states == {("allowed", "confirmed"), ("dropped", "confirmed"), ("l7-denied", "none")}
    result.stdout.fnmatch_lines(["note: Hubble evidence for * probe record(s): * confirmed, * no evidence (no flow "
                                 "decided), 0 contradicted (reported as errors)"])
    dns = [f for f in probed if (f["request"] or "").startswith("DNS") and f["protocol"] == "UDP"]
    assert dns
    assert all(f["observed"] == "allowed" for f in dns)
    assert (report / "report.html").is_file()


def test_a_lab_missing_a_rule_fails_the_paths_it_opens(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """Without the egress isolation of `default` (allow-dns-egress's side effect), default pods can
    reach each other and TCP/53: every such path fails live, showing expected, model and observed."""
    result = _run_suites(pytester, tmp_path / "report", skip_rules=("dns-egress",))
    result.stdout.fnmatch_lines([
        "*default/web -> default/my-api TCP/8080*",
        "*expected  dropped*",
        "*model     dropped*",
        "*observed  allowed after 3 probes: TCP connected*",
    ])
    failed = {line.split("::")[1].split(" ")[0] for line in result.outlines if line.startswith("FAILED")}
    assert "test_pods_inside_default_cannot_reach_each_other" in failed
    assert any(name.startswith("test_dns_over_tcp_is_dropped") for name in failed)
    assert "test_get_on_my_api_is_allowed[tenant/client]" not in failed
