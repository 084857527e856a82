"""The `flowcheck` command: version, help, exit codes (0 done, 1 a failure or a change, 2 bad input, 3 a bug)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flowcheck import __version__
from flowcheck.cli import main, validate
from flowcheck.cli.common import summarize_notes
from flowcheck.cli.exit_codes import ExitCode
from flowcheck.errors import ClusterError
from flowcheck.model.topology import load_topology
from tests.conftest import POLICIES_DIR, REPO_ROOT


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"flowcheck {__version__}"


def test_console_script_is_installed() -> None:
    result = subprocess.run([Path(sys.executable).parent / "flowcheck", "--help"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "validate" in result.stdout


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: flowcheck" in capsys.readouterr().out


def test_validate_accepts_the_repository_policies(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(POLICIES_DIR)]) == 0
    assert "4 objects checked, 0 errors" in capsys.readouterr().out


def test_validate_exits_2_naming_file_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x}\n"
                   "spec: {podSelector: {}, policyTypes: [Ingress], ingres: []}\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad} (document 0), field spec.ingres: unknown field 'ingres'" in err


def test_missing_path_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "/nonexistent/policies"]) == 2
    assert "/nonexistent/policies: no such file or directory" in capsys.readouterr().err


def test_pre_upgrade_refuses_a_context_that_was_not_opted_in(capsys: pytest.CaptureFixture[str]) -> None:
    """Wiring of `flowcheck pre-upgrade` (the steps are tested in tests/harness/test_preupgrade.py):
    the context guard answers before anything runs."""
    assert main(["pre-upgrade", "1.20.0", "--context", "staging"]) == 2
    err = capsys.readouterr().err
    assert "step 'context guard' failed: refusing kube context 'staging'" in err
    assert "--allow-context staging" in err


def test_help_describes_the_file_formats_without_pointing_to_an_internal_document() -> None:
    for command in ([], ["plan"], ["explain"], ["validate"]):
        result = subprocess.run([Path(sys.executable).parent / "flowcheck", *command, "--help"],
                                capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        assert "design" not in result.stdout and "§" not in result.stdout, result.stdout
    explain = subprocess.run([Path(sys.executable).parent / "flowcheck", "explain", "--help"],
                             capture_output=True, text=True, check=False).stdout
    assert "fixtures/topology.yaml" in explain and "{entity: world, ip: IP}" in " ".join(explain.split())


def test_an_internal_error_exits_3_and_says_how_to_see_the_traceback(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise KeyError("workload")

    monkeypatch.setattr(validate, "validate_paths", broken)
    monkeypatch.delenv("FLOWCHECK_DEBUG", raising=False)
    assert main(["validate", str(POLICIES_DIR)]) == ExitCode.INTERNAL == 3
    err = capsys.readouterr().err
    assert err == ("flowcheck: internal error (a flowcheck bug): KeyError: 'workload' "
                   "(set FLOWCHECK_DEBUG=1 for the traceback)\n")
    monkeypatch.setenv("FLOWCHECK_DEBUG", "1")
    assert main(["validate", str(POLICIES_DIR)]) == 3
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_a_failure_that_is_not_bad_input_exits_1(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    def unreachable(*_args: object, **_kwargs: object) -> None:
        raise ClusterError("cannot reach the Kubernetes API server of context kind-flowcheck")

    monkeypatch.setattr(validate, "validate_paths", unreachable)
    assert main(["validate", str(POLICIES_DIR)]) == 1
    assert capsys.readouterr().err == "flowcheck: error: cannot reach the Kubernetes API server of context " \
                                      "kind-flowcheck\n"


def test_a_closed_stdout_ends_quietly(tmp_path: Path) -> None:
    """`flowcheck plan ... | head -c 20`: no complaint, and exit 141 as any tool killed by SIGPIPE."""
    topology = tmp_path / "topology.yaml"
    topology.write_text(yaml.safe_dump({"namespaces": {"default": {}}, "workloads": [
        {"name": f"w{i}", "namespace": "default", "labels": {"app": f"w{i}"},
         "ports": [{"port": 80}, {"port": 443}, {"port": 8080}]} for i in range(30)]}))
    flowcheck = Path(sys.executable).parent / "flowcheck"
    script = (f"set -o pipefail; '{flowcheck}' plan --topology '{topology}' --policies '{POLICIES_DIR}' "
              "--format json | head -c 15")  # compact JSON is one line: head -1 would read it all
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False, timeout=120)
    assert result.stdout == '{"kind":"flowch'
    # the notes and warnings about the input only: no complaint about the closed pipe
    assert [line for line in result.stderr.splitlines() if not line.startswith(("note: ", "warning: "))] == []
    assert result.returncode == ExitCode.STDOUT_CLOSED == 141


def test_a_note_repeated_for_every_object_is_said_once_with_a_count(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    for i in range(13):
        (policies / f"p{i:02}.yaml").write_text(
            f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: deny-{i:02}}}\n"
            "spec: {podSelector: {}, policyTypes: [Ingress]}\n")
    (policies / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n")
    topology = tmp_path / "topology.yaml"
    topology.write_text("namespaces: {default: {}}\nworkloads: [{name: a, namespace: default, labels: {app: a}, "
                        "ports: [{port: 80}]}]\n")
    assert main(["plan", "--topology", str(topology), "--policies", str(policies), "--format", "json"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: ")]
    assert notes == [
        f"note: {policies / 'cm.yaml'} (document 0): ConfigMap settings ignored (not a network policy)",
        "note: 13 objects have no metadata.namespace; assumed 'default' (what kubectl apply does with the default "
        f"context): NetworkPolicy deny-00 ({policies / 'p00.yaml'} (document 0)), NetworkPolicy deny-01 "
        f"({policies / 'p01.yaml'} (document 0)), NetworkPolicy deny-02 ({policies / 'p02.yaml'} (document 0)), "
        f"NetworkPolicy deny-03 ({policies / 'p03.yaml'} (document 0)), NetworkPolicy deny-04 "
        f"({policies / 'p04.yaml'} (document 0)), and 8 more"]


def test_distinct_notes_are_kept_in_order() -> None:
    notes = ["a.yaml (document 0): Foo x has no bundled schema; not validated", "free text note",
             "b.yaml (document 1): Foo y has no bundled schema; not validated"]
    assert summarize_notes(notes) == [
        "2 objects have no bundled schema; not validated: Foo x (a.yaml (document 0)), Foo y (b.yaml (document 1))",
        "free text note"]
    assert summarize_notes(notes[:2]) == notes[:2]


def test_the_readme_examples_of_topology_and_flows_files_are_read_as_they_say(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Topology and flows files", 1)[1].split("\n## ", 1)[0]
    topology_text, flows_text = re.findall(r"```yaml\n(.*?)```", section, re.S)
    topology = load_topology(_write(tmp_path / "topology.yaml", topology_text))
    assert topology.workload("kube-system/coredns").existing
    ports = [p.describe() for p in topology.workload("default/my-api").ports]
    assert ports == ["TCP/8080 (http)", "TCP/9090 (metrics)"]
    flows = _write(tmp_path / "flows.yaml", flows_text)
    assert main(["explain", "--topology", str(REPO_ROOT / "fixtures" / "topology.yaml"), "--policies",
                 str(POLICIES_DIR), "--flows", str(flows), "--format", "json"]) == 0
    explained = json.loads(capsys.readouterr().out)["flows"]
    assert len(explained) == 8
    assert explained[4]["to"] == {"cidr": "10.0.0.0/8"}
    # The comments of the last two: a DNS query with no protocol or port is UDP/53; a port name is the port.
    assert [(e["protocol"], e["port"]) for e in explained[6:]] == [("UDP", 53), ("TCP", 9090)]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_python_dash_m_flowcheck_is_the_same_command() -> None:
    """What scripts/ run (`python -m flowcheck cluster up`, `python -m flowcheck pre-upgrade`)."""
    result = subprocess.run([sys.executable, "-m", "flowcheck", "--help"], capture_output=True, text=True,
                            check=False, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert all(command in result.stdout for command in ("validate", "plan", "explain", "baseline", "cleanup",
                                                        "pre-upgrade", "cluster"))
    bad = subprocess.run([sys.executable, "-m", "flowcheck", "pre-upgrade", "1.20"], capture_output=True, text=True,
                         check=False, cwd=REPO_ROOT)
    assert (bad.returncode, bad.stderr) == (2, "flowcheck: error: TARGET_VERSION '1.20' is not a Cilium release "
                                               "version like 1.20.0 (MAJOR.MINOR.PATCH, optionally v-prefixed or with "
                                               "a -pre.N suffix)\n")


@pytest.mark.parametrize(("error", "code"), [
    (KeyboardInterrupt(), 130), (BrokenPipeError(), 141), (ClusterError("x"), 1), (RuntimeError("bug"), 3)])
def test_one_table_maps_every_outcome_to_its_exit_code(error: BaseException, code: int) -> None:
    from flowcheck.cli.exit_codes import exit_code_for
    from flowcheck.errors import ContextRefused, PolicyError

    assert exit_code_for(error) == code
    assert exit_code_for(PolicyError("p.yaml", 0, "spec", "bad")) == exit_code_for(ContextRefused("c", "r")) == 2


def test_a_group_without_its_action_prints_its_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cluster"]) == 2
    assert "connectivity-test" in capsys.readouterr().err


def test_the_cluster_name_default_comes_from_the_environment_at_the_edge(monkeypatch: pytest.MonkeyPatch) -> None:
    from flowcheck.cli import build_parser

    monkeypatch.delenv("FLOWCHECK_CLUSTER_NAME", raising=False)
    assert build_parser().parse_args(["cleanup"]).cluster_name == "flowcheck"
    monkeypatch.setenv("FLOWCHECK_CLUSTER_NAME", "ci")
    parser = build_parser()
    assert parser.parse_args(["cleanup"]).cluster_name == "ci"
    assert parser.parse_args(["cluster", "down"]).name == "ci"
    assert parser.parse_args(["pre-upgrade", "1.20.0"]).cluster_name == "ci"
    assert parser.parse_args(["cluster", "up", "--name", "mine"]).name == "mine"
