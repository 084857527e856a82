"""Intent files and the generic checks, collected by the plugin itself (``pytester``).

The sample repository (``tests/data/sample-repo``) gives the policies and the topology; the intent
files are written per test.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SAMPLE = REPO_ROOT / "tests" / "data" / "sample-repo"
TOPOLOGY = SAMPLE / "tests" / "network" / "topology.yaml"
# `--option=value`: a bare path argument would make pytest take the rootdir from it (this repository).
SAMPLE_ARGS = (f"--flowcheck-policies={SAMPLE / 'network-policies'}", f"--flowcheck-topology={TOPOLOGY}",
               "-p", "no:cacheprovider")
GENERIC = 13  # 11 manifest files, "every policy file is applied", "policies match the topology"

INTENT = """
paths:
  - name: storefront reads the cart
    from: shop/storefront
    to: shop/cart
    port: http
    http: GET /cart
    verdict: allowed
  - name: storefront may not empty the cart
    from: shop/storefront
    to: shop/cart
    port: http
    http: DELETE /cart
    verdict: l7-denied
  - from: payments/payments-api
    to: api.stripe.com
    port: 443
    verdict: allowed
"""  # in the live test the third entry goes to world instead: the fake cluster resolves no names


def _fake_cluster(pytester: pytest.Pytester, log_dir: Path) -> None:
    pytester.makeconftest(f"""
import sys
sys.path.insert(0, {str(REPO_ROOT)!r})
from pathlib import Path
from tests.harness.fakes import FakeProvider

def pytest_flowcheck_backend(config):
    # the fixed table of the fake cluster describes manifests/network-policies only: for the sample repository
    # the fake cluster answers as the model does, so the live test checks the plumbing, not the verdicts
    return FakeProvider(Path({str(log_dir)!r}), {{}}, by_model=True)
""")


def test_each_entry_is_a_test_selected_by_name(pytester: pytest.Pytester) -> None:
    pytester.makefile(".flowcheck.yaml", shop=INTENT)
    result = pytester.runpytest_subprocess(*SAMPLE_ARGS, "--flowcheck-cluster=none", "-v")
    result.assert_outcomes(passed=3 + GENERIC)
    result.stdout.fnmatch_lines(["shop.flowcheck.yaml::storefront reads the cart PASSED*",
                                 "shop.flowcheck.yaml::payments/payments-api -> api.stripe.com TCP/443 PASSED*"])
    # the summary says which renderer read each kustomization, as every command does
    result.stdout.fnmatch_lines(["flowcheck: note: kustomization */network-policies/shop: read by flowcheck's "
                                 "built-in reader*"])
    selected = pytester.runpytest_subprocess(*SAMPLE_ARGS, "--flowcheck-cluster=none", "-k", "cart and not manifest")
    selected.assert_outcomes(passed=2, deselected=1 + GENERIC)
    l7 = pytester.runpytest_subprocess(*SAMPLE_ARGS, "--flowcheck-cluster=none", "-m", "flowcheck_l7")
    assert l7.parseoutcomes()["passed"] == 2


def test_an_entry_the_model_contradicts_fails_with_expected_and_model(pytester: pytest.Pytester) -> None:
    pytester.makefile(".flowcheck.yaml", shop=INTENT.replace("http: GET /cart\n    verdict: allowed",
                                                             "http: GET /cart\n    verdict: dropped"))
    result = pytester.runpytest_subprocess(*SAMPLE_ARGS, "--flowcheck-cluster=none")
    result.assert_outcomes(passed=2 + GENERIC, failed=1)
    result.stdout.fnmatch_lines([
        "*_ entry 0: storefront reads the cart _*",
        "flowcheck: 1 of 1 paths do not behave as intended",
        "✗ shop/storefront -> shop/cart TCP/8080 GET /cart",
        "    expected  dropped",
        "    model     allowed   <- intent and model disagree",
    ])
    assert "Traceback" not in result.stdout.str()


def test_an_unreadable_intent_file_is_one_collection_error_line(pytester: pytest.Pytester) -> None:
    pytester.makefile(".flowcheck.yaml", shop="paths:\n  - {from: shop/storefront, to: shop/cart, port: 80\n")
    result = pytester.runpytest_subprocess(*SAMPLE_ARGS, "--flowcheck-cluster=none")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    errors = result.stdout.str().split("= ERRORS =")[1].split("= short test summary")[0]
    body = [line for line in errors.splitlines() if line.strip("=_ ") and not line.startswith("_")]
    assert len(body) == 1 and body[0].startswith("shop.flowcheck.yaml: invalid YAML at line 2"), errors


def test_a_malformed_entry_fails_alone_and_the_run_goes_on(pytester: pytest.Pytester) -> None:
    malformed = ("  - {name: storefront lists the catalog, from: shop/storefront, to: shop/catalog, port: 8080,\n"
                 "     verdict: denied}\n"
                 "  - {from: shop/storefront, to: shop/cart, port: 99999, verdict: allowed}\n")
    pytester.makefile(".flowcheck.yaml", shop=INTENT.replace("paths:\n", "paths:\n" + malformed))
    pytester.makepyfile(test_suite="def test_a_python_suite_still_runs():\n    pass\n")
    result = pytester.runpytest_subprocess(*SAMPLE_ARGS, "--flowcheck-cluster=none", "-v")
    result.assert_outcomes(passed=3 + GENERIC + 1, failed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # not INTERRUPTED: every other file ran
    result.stdout.fnmatch_lines([
        "shop.flowcheck.yaml::storefront lists the catalog FAILED*",
        "shop.flowcheck.yaml::entry 1 FAILED*",
        "shop.flowcheck.yaml::storefront reads the cart PASSED*",
        "test_suite.py::test_a_python_suite_still_runs PASSED*",
    ])
    failures = result.stdout.str().split("= FAILURES =")[1].split("= flowcheck =")[0]
    body = [line for line in failures.splitlines() if line.strip("=_ ") and not line.startswith("_")]
    assert body == [
        "shop.flowcheck.yaml:2: entry 0 (storefront lists the catalog), field verdict: unknown verdict 'denied'; "
        "expected one of allowed, dropped, l7-denied",
        "shop.flowcheck.yaml:4: entry 1, field port: expected a port from 1 to 65535, got 99999"], failures
    assert "Traceback" not in result.stdout.str()
    selected = pytester.runpytest_subprocess(*SAMPLE_ARGS, "--flowcheck-cluster=none", "-k",
                                          "lists and not manifest")
    selected.assert_outcomes(failed=1, deselected=4 + GENERIC + 1)  # a malformed entry is selected like any


def _does_not_load(pytester: pytest.Pytester, tmp_path: Path) -> tuple[str, ...]:
    """A policies folder whose one CiliumNetworkPolicy uses a field Cilium removed, and three intent entries."""
    policies = tmp_path / "policies"
    policies.mkdir()
    storefront = (SAMPLE / "network-policies" / "shop" / "storefront.yaml").read_text()
    (policies / "storefront.yaml").write_text(
        storefront.replace("  egress:\n    - toEndpoints:", "  egress:\n    - toRequires: [{matchLabels: {a: b}}]\n"
                           "      toEndpoints:", 1).replace("  name: storefront\n", "  name: storefront\n"
                                                             "  namespace: shop\n", 1))
    pytester.makefile(".flowcheck.yaml", shop=INTENT)
    return (f"--flowcheck-policies={policies}", f"--flowcheck-topology={TOPOLOGY}", "-p", "no:cacheprovider",
            "--flowcheck-cluster=none")


REMOVED = "toRequires was removed in Cilium 1.19"


def test_policies_that_do_not_load_are_shown_once_not_once_per_entry(pytester: pytest.Pytester, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)  # on CI pytest's short summary repeats every failure's whole line
    args = _does_not_load(pytester, tmp_path)
    pytester.makepyfile(test_suite="def test_a_suite(flowcheck_paths):\n    pass\n")
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(failed=2 + 3, errors=1)  # the manifest, the model check; 3 entries; the suite's set-up
    output = result.stdout.str()
    # once per test that owns it -- the manifest test of that file (validation) and "policies match the
    # topology" -- and once in the summary's "NOT CHECKED" notice
    assert output.count(REMOVED) == 3, output
    assert f"policies/storefront.yaml (document 0), field spec.egress[0].toRequires: {REMOVED}" in output
    pointer = "flowcheck: the policies do not load (see flowcheck::policies match the topology)"
    assert output.splitlines().count(pointer) == 3 + 1, output
    assert "Traceback" not in output
    # without the generic check, the first test to need the model shows why, and the others point at it
    entries = pytester.runpytest_subprocess(*args, "-k", "not manifest and not topology")
    entries.assert_outcomes(failed=3, errors=1, deselected=2)
    assert entries.stdout.str().count(REMOVED) == 1 + 1, entries.stdout.str()  # its owner, the summary notice
    entries.stdout.fnmatch_lines(["flowcheck: the policies do not load (see shop.flowcheck.yaml::storefront reads "
                                  "the cart)"])


def test_the_report_says_what_input_kept_paths_unchecked(pytester: pytest.Pytester, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Policies that do not load and a malformed entry check nothing: the report (and step summary) must say so,
    not be absent or show a clean, empty table."""
    args = _does_not_load(pytester, tmp_path)
    pytester.makefile(".flowcheck.yaml", extra="- {name: typo, from: shop/storefront, to: shop/cart, port: 8080, "
                                               "verdict: allowd}\n")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest_subprocess(*args, "--flowcheck-report=rep", "-k", "not manifest")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = (pytester.path / "rep" / "report.md").read_text()
    notice = next(line for line in report.splitlines() if "NOT CHECKED" in line)
    assert "2 errors: " in notice and REMOVED in notice and "entry 0 (typo), field verdict" in notice, notice
    meta = json.loads((pytester.path / "rep" / "matrix.json").read_text())["metadata"]
    assert meta["input_errors"].startswith("2 errors: ")
    assert notice in summary.read_text()  # the pull request's step summary says it too


def test_a_topology_that_does_not_load_is_shown_once(pytester: pytest.Pytester, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    topology = tmp_path / "topology.yaml"
    topology.write_text(TOPOLOGY.read_text() + "colour: red\n")
    pytester.makefile(".flowcheck.yaml", shop=INTENT)
    result = pytester.runpytest_subprocess(f"--flowcheck-policies={SAMPLE / 'network-policies'}",
                                           f"--flowcheck-topology={topology}", "-p", "no:cacheprovider",
                                           "--flowcheck-cluster=none")
    result.assert_outcomes(passed=GENERIC - 1, failed=1 + 3)
    output = result.stdout.str()
    assert output.count("unknown field 'colour'") == 1 + 1, output  # its owner, the summary notice
    assert output.splitlines().count("flowcheck: the topology does not load (see flowcheck::policies match the "
                                     "topology)") == 3, output


def test_intent_in_a_repository_that_names_nothing_says_what_to_name(pytester: pytest.Pytester,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Not this repository's defaults leaking in as 'cannot read fixtures/topology.yaml' in every entry."""
    monkeypatch.delenv("CI", raising=False)
    pytester.makefile(".flowcheck.yaml", shop=INTENT)
    result = pytester.runpytest_subprocess("--flowcheck-cluster=none", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=3)
    output = result.stdout.str()
    assert output.count("nothing names the policies and topology to check: pass --flowcheck-policies PATH and "
                        "--flowcheck-topology FILE") == 1 + 1, output  # the first entry, the summary notice
    assert "cannot read" not in output and "Traceback" not in output
    assert output.count("flowcheck: nothing names the policies and topology (see shop.flowcheck.yaml::") == 2, output


def test_a_kustomize_component_is_not_rendered_on_its_own(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """kustomize refuses to build a `kind: Component` alone; the kustomization listing it renders it."""
    component = tmp_path / "policies" / "dns"
    component.mkdir(parents=True)
    (component / "kustomization.yaml").write_text("apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
                                                  "resources: [dns.yaml]\n")
    (component / "dns.yaml").write_text("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                                        "metadata: {name: dns, namespace: shop}\nspec: {podSelector: {}}\n")
    result = pytester.runpytest_subprocess(f"--flowcheck-policies={tmp_path / 'policies'}",
                                           f"--flowcheck-topology={TOPOLOGY}", "-p", "no:cacheprovider",
                                           "--flowcheck-cluster=none", "-k", "manifest", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] */dns/kustomization.yaml: a kustomize Component is not rendered on "
                                 "its own (kustomize refuses it)*"])


def test_an_empty_intent_file_is_a_warning(pytester: pytest.Pytester) -> None:
    pytester.makefile(".flowcheck.yaml", shop="# nothing yet\n")
    result = pytester.runpytest_subprocess(*SAMPLE_ARGS, "--flowcheck-cluster=none", "-k", "topology")
    result.stdout.fnmatch_lines(["*PytestWarning: shop.flowcheck.yaml: no paths: an intent file without entries "
                                 "checks nothing*"])


def test_generic_checks_only_when_flowcheck_is_configured(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    plain = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    assert "flowcheck::" not in plain.stdout.str()
    configured = pytester.runpytest_subprocess(*SAMPLE_ARGS, "--collect-only", "-q")
    configured.stdout.fnmatch_lines(["flowcheck::manifest */network-policies/shop/storefront.yaml",
                                     "flowcheck::every policy file is applied",
                                     "flowcheck::policies match the topology"])
    by_id = pytester.runpytest_subprocess(*SAMPLE_ARGS, "--collect-only", "-q", "test_generic_checks_only_when_"
                                          "flowcheck_is_configured.py::test_nothing")
    assert "flowcheck::" not in by_id.stdout.str()  # tests chosen by node id: nothing added


def test_warnings_are_printed_and_strict_fails_on_them(pytester: pytest.Pytester, tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "typo.yaml").write_text(textwrap.dedent("""\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: deny-all, namespace: shoop}
        spec: {podSelector: {}, policyTypes: [Ingress]}
    """))
    args = (f"--flowcheck-policies={policies}", f"--flowcheck-topology={TOPOLOGY}", "-p", "no:cacheprovider",
            "--flowcheck-cluster=none")
    relaxed = pytester.runpytest_subprocess(*args)
    relaxed.assert_outcomes(passed=2)  # the manifest validates, the policies load
    relaxed.stdout.fnmatch_lines([
        "flowcheck: 1 warning, parts of the policies match nothing in the topology (--flowcheck-strict fails on "
        "them):",
        f"  {policies / 'typo.yaml'} (document 0): NetworkPolicy shoop/deny-all: namespace 'shoop' is not in the "
        "topology*"])
    strict = pytester.runpytest_subprocess(*args, "--flowcheck-strict")
    strict.assert_outcomes(passed=1, failed=1)
    strict.stdout.fnmatch_lines(["*1 warning (--flowcheck-strict):*", "*namespace 'shoop' is not in the topology*"])


def test_a_live_only_path_the_model_cannot_decide_is_reported_not_failed(pytester: pytest.Pytester) -> None:
    block = "  - {from: payments/payments-api, to: 10.20.0.0/16, port: 5432, verdict: allowed%s}\n"
    pytester.makefile(".flowcheck.yaml", db="paths:\n" + block % ", live-only: true")
    result = pytester.runpytest_subprocess(*SAMPLE_ARGS, "--flowcheck-cluster=none", "-k", "10.20")
    result.assert_outcomes(passed=1, deselected=GENERIC)
    result.stdout.fnmatch_lines(["flowcheck: 1 live-only path the model cannot decide, awaiting a cluster: "
                                 "payments/payments-api -> 10.20.0.0/16 (10.20.0.0/16 is not one verdict*"])
    pytester.makefile(".flowcheck.yaml", db="paths:\n" + block % "")
    stated = pytester.runpytest_subprocess(*SAMPLE_ARGS, "--flowcheck-cluster=none", "-k", "10.20")
    stated.assert_outcomes(failed=1, deselected=GENERIC)
    stated.stdout.fnmatch_lines(["*model     unknown   <- intent and model disagree*"])


def test_entries_are_probed_live_and_reach_the_same_reports(pytester: pytest.Pytester, tmp_path: Path) -> None:
    log_dir = tmp_path / "fake-cluster"
    log_dir.mkdir()
    _fake_cluster(pytester, log_dir)
    pytester.makefile(".flowcheck.yaml", shop=INTENT.replace("to: api.stripe.com\n    port: 443\n    verdict: allowed",
                                                                   "to: world\n    port: 443\n    verdict: dropped"))
    report = tmp_path / "report"
    result = pytester.runpytest_subprocess(*SAMPLE_ARGS, "-n", "2", "--flowcheck-report", str(report))
    result.assert_outcomes(passed=3 + GENERIC)
    records = json.loads((report / "matrix.json").read_text())["flows"]  # format 2: decided flows
    flows = {(f["from"], json.dumps(f["to"]), f["request"]): f for f in records}
    cart = flows[("shop/storefront", '"shop/cart"', "GET /cart")]
    assert (cart["expected"], cart["verdict"], cart["observed"]) == ("allowed", "allowed", "allowed")
    assert cart["test"] == "shop.flowcheck.yaml::storefront reads the cart"
    world = flows[("payments/payments-api", '{"entity": "world"}', None)]
    assert (world["verdict"], world["observed"]) == ("dropped", None)
    assert world["observed_detail"] == ("not probed: world is outside the cluster: a run does not depend on reaching "
                                        "the internet, so only the model checks it")
