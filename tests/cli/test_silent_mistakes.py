"""The silent mistakes of issue 11, each now a warning or an error from every command that reads policies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowcheck.cli import main
from tests.conftest import REPO_ROOT

TOPOLOGY = REPO_ROOT / "fixtures" / "topology.yaml"
TYPO = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: defualt}
spec: {podSelector: {}, policyTypes: [Ingress]}
"""
UNSERVED_PORT = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: scrape, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
    - ports: [{port: metrix}]
"""


@pytest.fixture
def typo(tmp_path: Path) -> Path:
    path = tmp_path / "policies"
    path.mkdir()
    (path / "deny.yaml").write_text(TYPO)
    return path


def test_plan_warns_and_strict_fails_after_printing(typo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["plan", "--topology", str(TOPOLOGY), "--policies", str(typo), "--format", "json"]
    assert main(args) == 0
    captured = capsys.readouterr()
    [warning] = json.loads(captured.out)["warnings"]
    assert (warning["code"], warning["namespace"], warning["name"]) == ("namespace-not-in-topology", "defualt",
                                                                        "deny-all")
    assert f"warning: {typo / 'deny.yaml'} (document 0): NetworkPolicy defualt/deny-all: namespace 'defualt' is not " \
           "in the topology" in captured.err
    assert main([*args, "--strict"]) == 1
    strict = capsys.readouterr()
    assert json.loads(strict.out)["flows"]  # the plan is printed all the same
    assert "flowcheck: 1 warning and --strict: failing" in strict.err


def test_explain_warns_too(typo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (typo / "scrape.yaml").write_text(UNSERVED_PORT)
    code = main(["explain", "--topology", str(TOPOLOGY), "--policies", str(typo), "--from", "tenant/client",
                 "--to", "default/web", "--port", "8080"])
    assert code == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2
    assert "named port TCP/metrix: no workload it selects serves a port by that name" in warnings[1]


def test_validate_with_a_topology_warns_in_text_and_json(typo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(typo), "--topology", str(TOPOLOGY)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "1 object checked, 0 errors, 1 warning"
    assert "warning: " in captured.err
    assert main(["validate", str(typo), "--topology", str(TOPOLOGY), "--format", "json", "--strict"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert (document["checked"], document["errors"], len(document["warnings"])) == (1, [], 1)
    assert (document["kind"], document["format"]) == ("flowcheck-validate", 1)  # as every JSON flowcheck writes


def test_an_empty_policies_path_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "policies"
    empty.mkdir()
    assert main(["validate", str(empty)]) == 2
    assert f"error: {empty}: holds no Kubernetes object" in capsys.readouterr().err
    assert main(["plan", "--topology", str(TOPOLOGY), "--policies", str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"flowcheck: error: {empty}: no NetworkPolicy, CiliumNetworkPolicy, "
                          "CiliumClusterwideNetworkPolicy here")
    assert len(err.splitlines()) == 1


def test_a_policy_defined_twice_fails_validate_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    for name in ("a.yaml", "b.yaml"):
        (policies / name).write_text(TYPO.replace("defualt", "default"))
    assert main(["validate", str(policies)]) == 2
    [line] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert line == (f"error: {policies / 'b.yaml'} (document 0), field metadata.name: NetworkPolicy default/deny-all "
                    f"is defined twice (also in {policies / 'a.yaml'} (document 0)); the cluster would keep only the "
                    "last one applied")


@pytest.mark.parametrize("out", ["afile", "afile/sub"])
def test_init_out_through_a_file_is_one_line_exit_2(tmp_path: Path, out: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("")
    sample = REPO_ROOT / "tests" / "data" / "sample-repo"
    code = main(["init", str(sample / "deploy"), "--policies", str(sample / "network-policies"),
                 "--out", str(tmp_path / out)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"flowcheck: error: --out {tmp_path / out}: {tmp_path / 'afile'} is a file; --out names a directory" in err
    assert "internal error" not in err


def test_a_directory_given_as_the_topology_or_flows_file_says_what_is_expected(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policies = str(REPO_ROOT / "manifests" / "network-policies")
    assert main(["plan", "--topology", str(tmp_path), "--policies", policies]) == 2
    assert (f"flowcheck: error: {tmp_path}: is a directory; expected a topology file (`flowcheck init MANIFESTS "
            "--policies P --out DIR` writes one from your manifests)") in capsys.readouterr().err
    assert main(["explain", "--topology", str(TOPOLOGY), "--policies", policies, "--flows", str(tmp_path)]) == 2
    assert f"flowcheck: error: {tmp_path}: is a directory; expected a file" in capsys.readouterr().err


def test_validate_names_a_policy_file_no_kustomization_applies(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """The plugin's "every policy file is applied" check, from the command line too (one answer everywhere)."""
    import shutil

    policies = tmp_path / "np"
    shutil.copytree(REPO_ROOT / "tests" / "data" / "sample-repo" / "network-policies", policies)
    (policies / "shop" / "orphan.yaml").write_text((policies / "shop" / "metrics.yaml").read_text())
    assert main(["validate", str(policies)]) == 0
    out, err = capsys.readouterr()
    assert f"warning: {policies / 'shop' / 'orphan.yaml'}: no kustomization lists it" in err
    assert out.strip() == "12 objects checked, 0 errors, 1 file no kustomization applies"
    assert main(["validate", str(policies), "--strict"]) == 1
    assert "--strict: failing" in capsys.readouterr().err
    assert main(["validate", str(policies), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["unapplied"] == [str(policies / "shop" / "orphan.yaml")]
    (policies / "shop" / "orphan.yaml").unlink()
    assert main(["validate", str(policies)]) == 0
    assert "no kustomization" not in capsys.readouterr().out
