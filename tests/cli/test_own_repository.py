"""A repository flowcheck has never seen, checked the way the README says (issue 11).

``tests/data/sample-repo`` is a platform repository of its own -- a shop, payments and observability
namespaces, Deployments, a StatefulSet, a DaemonSet, a CronJob, Services, kustomizations,
NetworkPolicies and CiliumNetworkPolicies with an L7 HTTP rule, DNS rules, ``toFQDNs`` and CIDR
egress -- sharing nothing with this repository's scenario. These tests copy it, run the README's
"Checking your own repository" commands exactly as the README writes them, and check the outcome:
they pass; an intent made wrong fails naming the path, the expected and the model's verdict.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

SAMPLE = REPO_ROOT / "tests" / "data" / "sample-repo"
README = REPO_ROOT / "README.md"
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def readme_block(marker: str) -> str:
    """The fenced block that follows the ``<!-- ... -->`` comment starting with ``marker``."""
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"<!-- {re.escape(marker)}[^>]*-->\n```\w+\n(?P<body>.*?)\n```", text, re.S)
    assert match, f"README has no block after <!-- {marker} -->"
    return match["body"]


def sh(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``command`` in bash, with this environment's flowcheck and pytest first on PATH and the kustomize
    renderer chosen as a user's would be (the real tool when it is installed)."""
    env = {k: v for k, v in os.environ.items() if k != "FLOWCHECK_KUSTOMIZE" and not k.startswith("PYTEST_")}
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, check=False,
                          timeout=300)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    copy = tmp_path / "their-repo"
    shutil.copytree(SAMPLE, copy)
    shutil.rmtree(copy / "tests" / "network")  # their own intent, written by hand: used by the tests below
    return copy


def run_readme_commands(repo: Path) -> list[subprocess.CompletedProcess[str]]:
    results = []
    for line in readme_block("own-repository commands").splitlines():
        result = sh(line, repo)
        results.append(result)
        assert result.returncode == 0, f"$ {line}\n{result.stdout}\n{result.stderr}"
    return results


def test_the_readme_commands_check_a_repository_flowcheck_has_never_seen(repo: Path) -> None:
    init, run = run_readme_commands(repo)
    assert "wrote tests/flowcheck/topology.yaml: 4 namespaces, 8 workloads" in init.stdout
    out = run.stdout
    assert re.search(r"=+ \d+ passed in", out), out
    # the generic checks ran without a file copied from anywhere, and every intent entry is a test
    for name in ("flowcheck::manifest network-policies/shop/storefront.yaml", "flowcheck::every policy file is applied",
                 "flowcheck::policies match the topology"):
        assert name in sh("pytest tests/flowcheck --collect-only -q --flowcheck-policies network-policies "
                          "--flowcheck-topology tests/flowcheck/topology.yaml", repo).stdout
    assert "tests/flowcheck/intent.flowcheck.yaml" in out
    assert "intent entries are still marked for review" in out


def test_one_intent_made_wrong_fails_naming_the_path_and_both_verdicts(repo: Path) -> None:
    run_readme_commands(repo)
    intent = repo / "tests" / "flowcheck" / "intent.flowcheck.yaml"
    text = intent.read_text()
    entry = "- from: shop/storefront\n  to: shop/cart\n  port: 8080\n  http: GET /cart\n  verdict: allowed\n"
    assert entry in text
    intent.write_text(text.replace(entry, entry.replace("verdict: allowed", "verdict: l7-denied")))
    command = readme_block("own-repository commands").splitlines()[1]
    result = sh(command, repo)
    assert result.returncode == 1, result.stdout
    assert "1 failed" in result.stdout
    failure = result.stdout.split("= FAILURES =")[1]
    assert "✗ shop/storefront -> shop/cart TCP/8080 GET /cart" in failure
    assert "expected  l7-denied" in failure
    assert "model     allowed   <- intent and model disagree" in failure
    assert "CiliumNetworkPolicy shop/storefront egress rule 0: http GET /cart matched" in failure


def test_the_readme_pyproject_settings_work_as_well(repo: Path) -> None:
    run_readme_commands(repo)
    (repo / "pyproject.toml").write_text(readme_block("own-repository pyproject") + "\n")
    result = sh("pytest tests/flowcheck", repo)
    assert result.returncode == 0, result.stdout
    assert "flowcheck::policies match the topology" in sh("pytest tests/flowcheck --collect-only -q", repo).stdout


def test_strict_fails_on_entries_still_marked_for_review(repo: Path) -> None:
    run_readme_commands(repo)
    command = readme_block("own-repository commands").splitlines()[1] + " --flowcheck-strict"
    result = sh(command, repo)
    assert result.returncode == 1
    assert "still marked for review (--flowcheck-strict)" in result.stdout


def test_init_writes_a_topology_whose_matrix_is_the_hand_written_ones(repo: Path) -> None:
    hand_written = SAMPLE / "tests" / "network" / "topology.yaml"
    assert sh("flowcheck init deploy --policies network-policies --out written", repo).returncode == 0

    def plan(topology: Path | str) -> list[dict[str, object]]:
        result = sh(f"flowcheck plan --topology {topology} --policies network-policies --format json", repo)
        assert result.returncode == 0, result.stderr
        document = json.loads(result.stdout)
        assert document["warnings"] == []
        return sorted(document["flows"], key=lambda r: (r["from"], r["to"], r["protocol"], r["port"]))

    written = plan("written/topology.yaml")
    assert len(written) == 88
    assert written == plan(hand_written)


def test_init_refuses_to_overwrite_without_force(repo: Path) -> None:
    first = sh("flowcheck init deploy --policies network-policies --out out", repo)
    assert first.returncode == 0
    (repo / "out" / "topology.yaml").write_text("# my edits\n")
    again = sh("flowcheck init deploy --policies network-policies --out out", repo)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines()[-1] == (
        "flowcheck: error: out/topology.yaml exists: `flowcheck init` does not overwrite what may hold your edits "
        "(--force writes it anyway)")
    assert (repo / "out" / "topology.yaml").read_text() == "# my edits\n"
    assert sh("flowcheck init deploy --policies network-policies --out out --force", repo).returncode == 0
    assert "kube-dns" in (repo / "out" / "topology.yaml").read_text()


def test_the_starter_intent_has_l7_examples_allowed_and_refused(repo: Path) -> None:
    assert sh("flowcheck init deploy --policies network-policies --out out", repo).returncode == 0
    entries = yaml.safe_load((repo / "out" / "intent.flowcheck.yaml").read_text())["paths"]
    assert all(e["review"] for e in entries)
    cart = {(e.get("http"), e["verdict"]) for e in entries if e["from"] == "shop/storefront" and e["to"] == "shop/cart"}
    assert {("GET /cart", "allowed"), ("POST /cart/items", "allowed"), ("DELETE /cart/items/1", "allowed"),
            ("DELETE /flowcheck-not-allowed", "l7-denied")} <= cart
    dns = {(e.get("dns"), e["verdict"]) for e in entries
           if e["from"] == "payments/payments-api" and e["to"] == "kube-system/kube-dns"}
    assert dns == {("api.stripe.com", "allowed"), ("ledger.db.example.net", "allowed"),
                   ("not-allowed.flowcheck.invalid", "l7-denied")}
    external = {(e["to"], e.get("port"), e["verdict"]) for e in entries if e["from"] == "payments/payments-api"}
    assert {("api.stripe.com", 443, "allowed"), ("10.20.128.0/17", 5432, "allowed"),
            ("10.20.99.0/24", 5432, "dropped")} <= external


def test_hand_written_intent_with_fqdn_entity_and_cidr_ends_is_checked_offline(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(SAMPLE, copy)
    result = sh("pytest tests/network --flowcheck-policies network-policies --flowcheck-topology "
                "tests/network/topology.yaml -v", copy)
    assert result.returncode == 0, result.stdout
    for name in ("payments reaches the payment provider by name", "payments reaches no other name",
                 "the settlement job reads its config from the API server", "not its replication subnet",
                 "the internet never reaches payments"):
        assert re.search(rf"payments\.flowcheck\.yaml::{re.escape(name)} PASSED", result.stdout), name
    selected = sh("pytest tests/network --flowcheck-policies network-policies --flowcheck-topology "
                  "tests/network/topology.yaml -k settlement -q", copy)
    assert "1 passed, 24 deselected" in selected.stdout


def test_a_malformed_entry_is_one_line_naming_file_entry_and_field(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(SAMPLE, copy)
    (copy / "tests" / "flowcheck").mkdir()
    intent = copy / "tests" / "flowcheck" / "payments.flowcheck.yaml"
    intent.write_text(
        "paths:\n"
        "  - {from: payments/payments-api, to: api.stripe.com, port: 443, verdict: allowed}\n"
        "  - {from: payments/settlement, to: kube-apiserver, port: 443, verdict: allowed}\n"
        "  - name: payments reaches the provider\n"
        "    from: payments/payments-api\n"
        "    to: api.stripe.com\n"
        "    port: 70000\n"
        "    verdict: allowed\n")
    result = sh("pytest tests/flowcheck --flowcheck-policies network-policies --flowcheck-topology "
                "tests/network/topology.yaml", copy)
    assert result.returncode == 1, result.stdout  # that entry's test fails; the run goes on
    assert re.search(r"\b1 failed, \d+ passed\b", result.stdout), result.stdout  # the other entries, the checks
    line = ("tests/flowcheck/payments.flowcheck.yaml:4: entry 2 (payments reaches the provider), field port: "
            "expected a port from 1 to 65535, got 70000")
    assert line in result.stdout.splitlines()
    assert line in README.read_text(encoding="utf-8").splitlines()  # the README shows this very line
    assert "Traceback" not in result.stdout and "flowcheck/harness" not in result.stdout


def test_the_readme_intent_file_example_says_what_the_sample_policies_do() -> None:
    from flowcheck.harness.intent_file import parse_intent
    from flowcheck.model.engine import Model
    from flowcheck.model.policies import load_policies
    from flowcheck.model.topology import load_topology
    from flowcheck.verdict import Verdict

    model = Model(load_topology(SAMPLE / "tests" / "network" / "topology.yaml"),
                  load_policies([SAMPLE / "network-policies"]))
    entries = parse_intent(readme_block("intent file example"), "README.md")
    assert len(entries) == 8
    for entry in entries:
        expectation = entry.expectation(model.topology)
        decided = model.decide(expectation.flow).verdict
        assert decided == expectation.verdict or (entry.live_only and decided is Verdict.UNKNOWN), entry.name
