"""The pytest plugin, run with ``pytester``: options, markers, offline outcomes, xdist, reports.

Live runs use the ``pytest_flowcheck_backend`` hook with ``tests.harness.fakes.FakeProvider``: a
fake cluster that decides every probe from the policy model (or a script) and logs set-ups,
teardowns and every probe to a directory, so the tests can count them across xdist workers.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

# Imported here, not inside a test: pytester restores sys.modules after each test, so modules a test
# imported first would be loaded again by later tests, beside the copies other modules still hold.
from flowcheck.cli import main
from tests.conftest import POLICIES_DIR, REPO_ROOT

TOPOLOGY = REPO_ROOT / "fixtures" / "topology.yaml"
SCENARIO_ARGS = ("--flowcheck-policies", str(POLICIES_DIR), "--flowcheck-topology", str(TOPOLOGY), "-p",
                 "no:cacheprovider")
# Named policies make the plugin add its generic checks: one per manifest file of this repository's
# policies (5), "every policy file is applied" and "policies match the topology".
GENERIC = 7

SUITE = """
import pytest

def test_get_is_allowed(flowcheck_paths):
    flowcheck_paths.expect("tenant/client", "default/my-api", port=8080, http="GET /", verdict="allowed")
    flowcheck_paths.expect("monitoring/prometheus", "default/web", port="metrics", verdict="allowed")

def test_web_is_closed(flowcheck_paths):
    flowcheck_paths.expect("tenant/client", "default/web", port=8080, verdict="dropped")
    flowcheck_paths.expect("monitoring/grafana", "default/web", port=9090, verdict="dropped")

def test_post_is_denied(flowcheck_paths):
    flowcheck_paths.expect("tenant/client", "default/my-api", port=8080, http="POST /", verdict="l7-denied")

@pytest.mark.flowcheck_live
@pytest.mark.parametrize("source", ["tenant/client", "monitoring/grafana"])
def test_matrix(flowcheck_paths, flowcheck_matrix, source):
    flowcheck_paths.expect_planned([p for p in flowcheck_matrix if p.flow.source.describe() == source])
"""


def _fake_cluster_conftest(log_dir: Path, overrides: dict[str, list[str]] | None = None,
                           teardown_error: str = "", two_nodes: bool = False) -> str:
    return f"""
import sys
sys.path.insert(0, {str(REPO_ROOT)!r})
from pathlib import Path
from tests.harness.fakes import FakeProvider

def pytest_flowcheck_backend(config):
    return FakeProvider(Path({str(log_dir)!r}), {overrides or {}!r}, teardown_error={teardown_error!r},
                        two_nodes={two_nodes!r})
"""


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_markers_are_registered_for_strict_runs(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--markers", "--strict-markers")
    for marker in ("flowcheck_live:", "flowcheck_l7:", "flowcheck_dns:"):
        result.stdout.fnmatch_lines([f"@pytest.mark.{marker}*"])
    assert "@pytest.mark.slow:" not in result.stdout.str()  # a generic name is the project's to register


def test_ini_options_set_defaults_and_the_command_line_wins(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nflowcheck_probe_timeout = 0.7\nflowcheck_semantics = kubernetes\n")
    pytester.makepyfile("""
        def test_settings(flowcheck_settings, request):
            assert flowcheck_settings.check.semantics == "kubernetes"
            assert flowcheck_settings.probe.timeout_s == float(request.config.getoption("expected"))
        def pytest_addoption(parser):
            pass
    """)
    pytester.makeconftest("def pytest_addoption(parser):\n    parser.addoption('--expected')\n")
    pytester.runpytest_subprocess("--expected", "0.7", "--flowcheck-cluster=none").assert_outcomes(passed=1)
    pytester.runpytest_subprocess("--expected", "1.5", "--flowcheck-probe-timeout", "1.5",
                                  "--flowcheck-cluster=none").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--flowcheck-cluster=existing",), "*--flowcheck-cluster=existing needs --flowcheck-kube-context NAME*"),
        (("--flowcheck-probe-timeout=0",), "*--flowcheck-probe-timeout 0.0: expected more than 0*"),
        (("--flowcheck-kube-context=staging",),
         "*--flowcheck-kube-context only applies with --flowcheck-cluster=existing*"),
        (("--flowcheck-policies=network-polices",),
         "*--flowcheck-policies */network-polices: no such file or directory"),
        (("--flowcheck-topology=topolgy.yaml",), "*--flowcheck-topology */topolgy.yaml: no such file or directory"),
    ],
)
def test_bad_options_are_usage_errors(pytester: pytest.Pytester, args: tuple[str, ...], message: str) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_offline_runs_model_checks_and_skips_live_ones_saying_why_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess(*SCENARIO_ARGS, "--flowcheck-cluster=none", "-rs")
    result.assert_outcomes(passed=3 + GENERIC, skipped=2)
    result.stdout.fnmatch_lines(["*live check skipped: --flowcheck-cluster=none: offline mode requested*"])
    summary = [line for line in result.outlines if line.startswith("flowcheck: live checks skipped")]
    assert summary == ["flowcheck: live checks skipped (--flowcheck-cluster=none: offline mode requested): 5 paths "
                       "checked against the model only, 2 live-only tests skipped."]


def test_flowcheck_matrix_is_the_models_whole_matrix_planned_once_per_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        from flowcheck.model.matrix import decide_matrix

        seen = []

        def test_it_is_the_whole_matrix(flowcheck_matrix, flowcheck_model):
            assert flowcheck_matrix == tuple(decide_matrix(flowcheck_model))
            seen.append(flowcheck_matrix)

        def test_every_test_gets_the_same_plan(flowcheck_matrix):
            assert flowcheck_matrix is seen[0]
    """)
    pytester.runpytest_subprocess(*SCENARIO_ARGS, "--flowcheck-cluster=none").assert_outcomes(passed=2 + GENERIC)


def test_intent_model_disagreement_fails_offline_with_a_readable_message(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        def test_wrong(flowcheck_paths):
            flowcheck_paths.expect("tenant/client", "default/web", port=8080, verdict="allowed")
    """)
    result = pytester.runpytest_subprocess(*SCENARIO_ARGS, "--flowcheck-cluster=none")
    result.assert_outcomes(failed=1, passed=GENERIC)
    result.stdout.fnmatch_lines([
        "flowcheck: 1 of 1 paths do not behave as intended",
        "*tenant/client -> default/web TCP/8080",
        "*expected  allowed",
        "*model     dropped   <- intent and model disagree",
        "*NetworkPolicy default/default-deny-ingress*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_a_mistake_in_a_suite_is_one_line_naming_the_call_not_a_traceback(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mistakes="""
        def test_bad_verdict(flowcheck_paths):
            flowcheck_paths.expect("tenant/client", "default/web", port=8080, verdict="allowed")
            flowcheck_paths.expect("tenant/client", "default/web", port=8080, verdict="denied")

        def test_unknown_workload(flowcheck_paths):
            flowcheck_paths.expect("tenant/client", "default/webb", port=8080, verdict="dropped")

        def test_port_not_served(flowcheck_paths):
            flowcheck_paths.expect("tenant/client", "default/my-api", port=8443, verdict="dropped")
    """)
    result = pytester.runpytest_subprocess(*SCENARIO_ARGS, "--flowcheck-cluster=none")
    result.assert_outcomes(failed=3, passed=GENERIC)
    out = result.stdout.str()
    mistakes = [line for line in out.splitlines() if line.startswith("test_mistakes.py:")]
    assert mistakes == [
        "test_mistakes.py:3: flowcheck_paths.expect('tenant/client', 'default/web', port=8080, verdict='denied'): "
        "verdict='denied': unknown verdict; expected one of allowed, dropped, l7-denied",
        "test_mistakes.py:6: flowcheck_paths.expect('tenant/client', 'default/webb', port=8080, verdict='dropped'): no "
        "workload 'default/webb' in the topology (known: default/my-api, default/web, kube-system/coredns, "
        f"monitoring/grafana, monitoring/prometheus, tenant/client) (topology {TOPOLOGY})",
        "test_mistakes.py:9: flowcheck_paths.expect('tenant/client', 'default/my-api', port=8443, verdict='dropped'): "
        "port=8443: default/my-api does not serve TCP/8443 (it serves TCP/8080 (http), TCP/9090 (metrics)); a "
        "probe there could only be refused -- name a port it serves, or add this one to the topology"]
    assert "Traceback" not in out and "flowcheck/harness" not in out and "another exception" not in out
    # each failure section is the one line: the test's header, then the mistake
    sections = out.split("=== FAILURES ===")[1].split("=== short test summary info ===")[0].split(" flowcheck ===")[0]
    assert [line for line in sections.splitlines() if line.strip(" =") and not line.startswith("_")] == mistakes
    # the valid expectation declared before the mistake was never checked: the report says so
    assert "note: 1 declared path(s) not checked: tenant/client -> default/web:8080/TCP" in out


def test_a_broken_policy_errors_the_tests_that_need_the_model_naming_file_and_field(
        pytester: pytest.Pytester, policies_copy: Path) -> None:
    target = policies_copy / "allow-get-only.yaml"
    target.write_text(target.read_text().replace("method: GET", "method: [GET"))
    pytester.makepyfile("def test_x(flowcheck_paths):\n    flowcheck_paths.expect('tenant/client', 'default/web', "
                        "port=8080, verdict='dropped')\n")
    result = pytester.runpytest_subprocess("--flowcheck-policies", str(policies_copy), "--flowcheck-topology",
                                           str(TOPOLOGY), "--flowcheck-cluster=none")
    # the generic checks of the broken file, of the kustomization listing it, of what is applied and of the model fail
    result.assert_outcomes(errors=1, failed=4, passed=GENERIC - 4)
    result.stdout.fnmatch_lines([f"*flowcheck: {target} (document 0): invalid YAML at line*"])


def test_xdist_sets_up_once_and_tears_down_once(pytester: pytest.Pytester, tmp_path: Path) -> None:
    log_dir = tmp_path / "fake-cluster"
    log_dir.mkdir()
    pytester.makeconftest(_fake_cluster_conftest(log_dir))
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess(*SCENARIO_ARGS, "-n", "3")
    result.assert_outcomes(passed=5 + GENERIC)
    assert len(_lines(log_dir / "setups")) == 1
    assert len(_lines(log_dir / "teardowns")) == 1
    assert _lines(log_dir / "teardowns")[0].endswith("failed=False")
    assert len({line.split()[0] for line in _lines(log_dir / "probes")}) == 3  # sources probed


def test_only_disagreeing_probes_are_retried(pytester: pytest.Pytester, tmp_path: Path) -> None:
    log_dir = tmp_path / "fake-cluster"
    log_dir.mkdir()
    pytester.makeconftest(_fake_cluster_conftest(log_dir, {"tenant/client->default/web:8080": ["allowed", "dropped"]}))
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess(*SCENARIO_ARGS, "-k", "web_is_closed")
    result.assert_outcomes(passed=1)
    probes = [line.split() for line in _lines(log_dir / "probes")]
    per_path = {}
    for source, _id, _kind, port in probes:
        per_path[(source, port)] = per_path.get((source, port), 0) + 1
    assert per_path == {("tenant/client", "8080"): 2, ("monitoring/grafana", "9090"): 1}


def test_live_mismatch_fails_and_reports_are_written(pytester: pytest.Pytester, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    log_dir = tmp_path / "fake-cluster"
    log_dir.mkdir()
    summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makeconftest(_fake_cluster_conftest(log_dir, {"tenant/client->default/web:8080": ["allowed"]}))
    pytester.makepyfile(test_suite=SUITE)
    report_dir = tmp_path / "report"
    junit = tmp_path / "junit.xml"
    result = pytester.runpytest_subprocess(*SCENARIO_ARGS, "-n", "2", "--flowcheck-report", str(report_dir),
                                           f"--junitxml={junit}")
    result.assert_outcomes(passed=3 + GENERIC, failed=2)
    result.stdout.fnmatch_lines(["*observed  allowed after 3 probes: TCP connected; HTTP request answered by "
                                 "'default/web'*",
                                 "*hubble    FORWARDED ingress default/web:8080 -> tenant/client:4*"])
    matrix = json.loads((report_dir / "matrix.json").read_text())
    assert len(matrix["flows"]) == 5 + 2 * 9  # five expectations, two sources x nine served ports
    assert matrix["metadata"]["mode"] == "live"
    assert (report_dir / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert "flowcheck truth table" in summary.read_text()
    [case] = [c for c in ET.parse(junit).iter("testcase") if c.get("name") == "test_post_is_denied"]
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties == {
        "flowcheck.0.source": "tenant/client", "flowcheck.0.destination": "default/my-api",
        "flowcheck.0.port": "8080/TCP", "flowcheck.0.request": "POST /", "flowcheck.0.expected": "l7-denied",
        "flowcheck.0.model": "l7-denied", "flowcheck.0.observed": "l7-denied"}
    assert len(_lines(log_dir / "teardowns")) == 1
    assert _lines(log_dir / "teardowns")[0].endswith("failed=True")


def test_baseline_changes_fail_the_run(pytester: pytest.Pytester, tmp_path: Path) -> None:
    log_dir = tmp_path / "fake-cluster"
    log_dir.mkdir()
    pytester.makepyfile(test_suite=SUITE)
    pytester.makeconftest(_fake_cluster_conftest(log_dir))
    first = tmp_path / "before"
    pytester.runpytest_subprocess(*SCENARIO_ARGS, "-k", "not matrix", "--flowcheck-report",
                                  str(first)).assert_outcomes(passed=3 + GENERIC, deselected=2)
    baseline = tmp_path / "baseline.json"
    assert main(["baseline", "record", str(first / "matrix.json"), "-o", str(baseline)]) == 0

    unchanged = pytester.runpytest_subprocess(*SCENARIO_ARGS, "-k", "not matrix", "--flowcheck-baseline", str(baseline))
    assert unchanged.ret == pytest.ExitCode.OK

    pytester.makeconftest(_fake_cluster_conftest(log_dir, {"tenant/client->default/my-api:8080": ["l7-denied"]}))
    changed = pytester.runpytest_subprocess(*SCENARIO_ARGS, "-k", "not matrix", "--flowcheck-baseline", str(baseline))
    assert changed.ret == pytest.ExitCode.TESTS_FAILED
    changed.stdout.fnmatch_lines(["*CHANGED*tenant/client*default/my-api*"])


def test_interrupted_xdist_run_still_tears_down_once_and_its_report_says_so(pytester: pytest.Pytester,
                                                                           tmp_path: Path) -> None:
    """Ctrl-C while workers probe: the controller tears the back end down before any worker reported, and
    the report it writes says the run was interrupted and which tests did not run (issue 17.5)."""
    log_dir = tmp_path / "fake-cluster"
    log_dir.mkdir()
    report = tmp_path / "report"
    pytester.makeconftest(_fake_cluster_conftest(log_dir))
    pytester.makepyfile(test_slow="""
        import time
        def test_probe_then_hang(flowcheck_paths):
            flowcheck_paths.expect("tenant/client", "default/web", port=8080, verdict="dropped")
            flowcheck_paths.check()
            time.sleep(120)
    """)
    process = subprocess.Popen([sys.executable, "-m", "pytest", *SCENARIO_ARGS, "-n", "2", "--flowcheck-report",
                                str(report)], cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    deadline = time.monotonic() + 60
    while not _lines(log_dir / "probes") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _lines(log_dir / "setups"), "the back end was never set up"
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert len(_lines(log_dir / "teardowns")) == 1, output
    metadata = json.loads((report / "matrix.json").read_text())["metadata"]
    assert metadata["interrupted"].startswith("yes: the run was interrupted"), metadata
    # the hanging test, and whatever generic checks xdist had queued behind it on its worker
    not_run = rf"\d of {1 + GENERIC} tests \(their paths were not checked\): .*test_slow.py::test_probe_then_hang.*"
    assert re.fullmatch(not_run, metadata["not_run"]), metadata
    for rendering in ("report.md", "report.html"):
        assert "INTERRUPTED" in (report / rendering).read_text()


def test_a_fake_two_node_cluster_gives_every_path_a_same_node_and_a_cross_node_record(
        pytester: pytest.Pytester, tmp_path: Path) -> None:
    """Issue 17.3: placement is part of the run, and every report shows both records."""
    log_dir = tmp_path / "fake-cluster"
    log_dir.mkdir()
    pytester.makeconftest(_fake_cluster_conftest(log_dir, two_nodes=True))
    pytester.makepyfile(test_suite=SUITE)
    report = tmp_path / "report"
    result = pytester.runpytest_subprocess(*SCENARIO_ARGS, "-k", "not matrix", "--flowcheck-report", str(report))
    result.assert_outcomes(passed=3 + GENERIC, deselected=2)
    flows = json.loads((report / "matrix.json").read_text())["flows"]
    assert len(flows) == 2 * 5
    placements = {}
    for flow in flows:
        placements.setdefault((flow["from"], flow["to"], flow["port"], flow["request"]), []).append(
            (flow["placement"], flow["source_node"], flow["destination_node"], flow["probed_via"]))
    assert all(sorted(p[0] for p in found) == ["cross-node", "same-node"] for found in placements.values())
    assert placements[("tenant/client", "default/web", 8080, None)] == [
        ("same-node", "a", "a", "tenant/client@a -> default/web@a"),
        ("cross-node", "a", "b", "tenant/client@a -> default/web@b")]
    html = (report / "report.html").read_text()
    markdown = (report / "report.md").read_text()
    assert "tenant/client@a -&gt; default/web@b" in html and "same-node" in html
    assert "placement: 5 path(s) probed both same-node and cross-node, 0 same-node only, 0 cross-node only" in markdown


def test_a_failing_teardown_is_reported_without_a_traceback(pytester: pytest.Pytester, tmp_path: Path) -> None:
    log_dir = tmp_path / "fake-cluster"
    log_dir.mkdir()
    pytester.makeconftest(_fake_cluster_conftest(log_dir, teardown_error="pod default/web still terminating"))
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess(*SCENARIO_ARGS, "-k", "web_is_closed")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["flowcheck: teardown failed: pod default/web still terminating", "*1 passed*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_paths_that_cannot_be_probed_live_are_said_so(pytester: pytest.Pytester, tmp_path: Path) -> None:
    log_dir = tmp_path / "fake-cluster"
    log_dir.mkdir()
    pytester.makeconftest(_fake_cluster_conftest(log_dir))
    pytester.makepyfile("""
        def test_from_dns(flowcheck_paths):
            flowcheck_paths.expect("kube-system/coredns", "default/web", port=8080, verdict="dropped")
    """)
    result = pytester.runpytest_subprocess(*SCENARIO_ARGS)
    result.assert_outcomes(passed=1 + GENERIC)
    result.stdout.fnmatch_lines(["flowcheck: 1 path not probed live, checked against the model only: not probed: "
                                 "kube-system/coredns is an existing pod"])


FOREIGN_CONFTEST = """
import pytest

def pytest_addoption(parser):
    parser.addoption("--cluster", default="staging", help="which of our clusters the API tests talk to")
    parser.addoption("--policies", action="store_true", help="also check our IAM policies")

def pytest_configure(config):
    config.addinivalue_line("markers", "live: talks to our staging API")

@pytest.fixture
def paths():
    return ["/api/orders", "/api/users"]
"""

FOREIGN_TESTS = """
import pytest

@pytest.mark.live
def test_staging_api_is_reachable(request, paths):
    assert request.config.getoption("cluster") == "prod-eu"
    assert paths == ["/api/orders", "/api/users"]

@pytest.mark.slow
def test_slow_one():
    pass
"""


def test_a_foreign_project_with_its_own_live_marker_cluster_option_and_paths_fixture_runs_unchanged(
        pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 17.1: flowcheck is installed (its plugin loads), the project never asked for it."""
    docker_log = tmp_path / "docker.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(f"#!/bin/sh\necho \"$@\" >> {docker_log}\nexit 0\n")
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin")
    pytester.makeini("[pytest]\naddopts = --strict-markers\nmarkers =\n    slow: our own slow marker\n")
    pytester.makeconftest(FOREIGN_CONFTEST)
    pytester.makepyfile(test_api=FOREIGN_TESTS)
    result = pytester.runpytest_subprocess("--cluster", "prod-eu", "--policies", "-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["plugins: *flowcheck-*"])  # installed and loaded
    mentions = [line for line in result.outlines + result.errlines if "flowcheck" in line]
    assert mentions == [line for line in result.outlines if line.startswith("plugins: ")]  # no summary, no skip
    assert not docker_log.exists(), "the plugin probed for Docker in a run that does not use flowcheck"


def test_the_old_generic_option_names_are_not_registered(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    help_text = pytester.runpytest_subprocess("--help").stdout.str()
    for option in ("--cluster=", "--policies=", "--topology=", "--baseline=", "--kube-context=", "--allow-context=",
                   "--semantics=", "--probe-timeout="):
        assert f"  {option}" not in help_text, option
    assert "--flowcheck-cluster=" in help_text
