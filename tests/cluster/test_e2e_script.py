"""scripts/e2e's decisions, with fakes on PATH: live, offline (and why), or install the tools first.

The script runs in a copy of the repository's scripts directory, on a PATH holding only the system
tools it needs plus fakes: ``docker`` (whose ``docker info`` succeeds or fails), ``kind``/``cilium``
when a case has them, ``pytest`` (records its arguments), and ``scripts/cluster-up`` (records that it
ran). Tool downloads come from the fake release server of ``test_install_tools`` (a file:// URL):
nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cluster.test_install_tools import Releases

REPO = Path(__file__).resolve().parents[2]
LIVE_SUITES = "pytest suites/ --flowcheck-cluster=kind --flowcheck-cluster-name flowcheck"
SYSTEM_TOOLS = ("bash", "env", "awk", "curl", "sha256sum", "tar", "gzip", "mktemp", "rm", "mkdir", "mv", "chmod",
                "cat", "grep", "tail", "head", "uname", "dirname", "tr", "sed")

pytestmark = pytest.mark.skipif(any(shutil.which(tool) is None for tool in SYSTEM_TOOLS),
                                reason=f"scripts/e2e needs {', '.join(SYSTEM_TOOLS)}")


class Machine:
    """A repository copy and a PATH with exactly the tools a case gives it."""

    def __init__(self, root: Path, *, docker: str | None, tools: tuple[str, ...] = ()) -> None:
        self.root = root
        self.repo = root / "repo"
        (self.repo / "scripts").mkdir(parents=True)
        for script in ("e2e", "install-tools"):
            shutil.copy2(REPO / "scripts" / script, self.repo / "scripts" / script)
        self.calls = root / "calls.log"
        self._fake(self.repo / "scripts" / "cluster-up", 'echo "cluster-up $*" >> "$CALLS"')
        self.path = root / "path"
        self.path.mkdir()
        for tool in SYSTEM_TOOLS:
            (self.path / tool).symlink_to(shutil.which(tool))  # type: ignore[arg-type]
        self._fake(self.path / "pytest", 'echo "pytest $*" >> "$CALLS"')
        if docker is not None:
            self._fake(self.path / "docker", 'if [ "$1" = info ]; then exit ' + docker + "; fi; exit 0")
        for tool in tools:
            self._fake(self.path / tool, f'echo "{tool} $*" >> "$CALLS"')
        self.releases = Releases(root / "fake-github")
        self.bin = self.repo / ".bin"

    @staticmethod
    def _fake(path: Path, body: str) -> None:
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)

    def run(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        env = {**extra_env, "PATH": str(self.path), "HOME": str(self.root), "CALLS": str(self.calls),
               "FLOWCHECK_TOOL_VERSIONS": str(self.releases.versions),
               "FLOWCHECK_TOOLS_BASE_URL": f"file://{self.releases.base}",
               "FLOWCHECK_TOOLS_OS": "linux", "FLOWCHECK_TOOLS_ARCH": "amd64"}
        return subprocess.run([str(self.repo / "scripts" / "e2e"), *args], capture_output=True, text=True, env=env,
                              timeout=120, check=False)

    def called(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []


def _lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("flowcheck e2e:")]


def test_without_a_docker_client_the_offline_checks_run_and_say_so(tmp_path: Path) -> None:
    machine = Machine(tmp_path, docker=None)
    result = machine.run("-x")
    assert result.returncode == 0, result.stderr
    assert _lines(result) == ["flowcheck e2e: live checks skipped: no Docker client on PATH (kind runs the "
                              "cluster's nodes as Docker containers). Running the offline checks only (policies "
                              "validated and checked against the model)."]
    # --flowcheck-cluster=auto, not none: the plugin records the same reason, not "offline mode requested"
    assert machine.called() == ["pytest suites/ --flowcheck-cluster=auto -x"]


def test_without_a_running_engine_the_reason_is_the_engine(tmp_path: Path) -> None:
    machine = Machine(tmp_path, docker="1")
    result = machine.run()
    assert _lines(result) == ["flowcheck e2e: live checks skipped: no Docker engine is running here (`docker info` "
                              "failed), so kind cannot start a cluster. Running the offline checks only (policies "
                              "validated and checked against the model)."]
    assert machine.called() == ["pytest suites/ --flowcheck-cluster=auto"]


def test_with_docker_and_the_tools_the_run_is_live(tmp_path: Path) -> None:
    machine = Machine(tmp_path, docker="0", tools=("kind", "cilium"))
    result = machine.run("-n", "4")
    assert result.returncode == 0, result.stderr
    assert _lines(result) == []
    assert machine.called() == ["cluster-up flowcheck", f"{LIVE_SUITES} -n 4"]


def test_the_suites_use_the_cluster_the_script_brought_up(tmp_path: Path) -> None:
    machine = Machine(tmp_path, docker="0", tools=("kind", "cilium"))
    assert machine.run(FLOWCHECK_CLUSTER_NAME="ci").returncode == 0
    assert machine.called() == ["cluster-up ci", "pytest suites/ --flowcheck-cluster=kind --flowcheck-cluster-name ci"]


def test_missing_tools_are_installed_verified_and_the_run_goes_live(tmp_path: Path) -> None:
    machine = Machine(tmp_path, docker="0")
    machine.releases.write_versions({})  # nothing pinned: the release's published checksums are checked
    machine.releases.publish_checksums()
    result = machine.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert _lines(result) == ["flowcheck e2e: kind cilium not installed: installing the pinned version(s) into "
                              f"{machine.bin}/ (sha256 checked against scripts/tool-versions, or the release's "
                              "published checksum where none is pinned)"]
    assert {p.name for p in machine.bin.iterdir() if not p.name.startswith(".")} == {"kind", "cilium"}
    for name in ("kind", "cilium"):  # the lines to pin, printed for review
        assert f"sha256  {machine.releases.assets[name].name}  {machine.releases.sha(name)}" in result.stdout
    assert machine.called() == ["cluster-up flowcheck", LIVE_SUITES]


def test_a_pinned_digest_is_what_the_download_is_checked_against(tmp_path: Path) -> None:
    machine = Machine(tmp_path, docker="0", tools=("kind",))
    machine.releases.write_versions({"cilium": machine.releases.sha("cilium")})  # no published checksum needed
    result = machine.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert (machine.bin / "cilium").is_file() and not (machine.bin / "kind").exists()
    assert machine.called() == ["cluster-up flowcheck", LIVE_SUITES]


def test_an_install_that_cannot_work_is_one_line_naming_the_command_then_offline(tmp_path: Path) -> None:
    machine = Machine(tmp_path, docker="0")
    machine.releases.write_versions({})
    machine.releases.publish_checksums(wrong="cilium")  # the download does not match what the release says
    result = machine.run()
    assert result.returncode == 0, result.stderr
    lines = _lines(result)
    assert len(lines) == 2 and lines[0].startswith("flowcheck e2e: kind cilium not installed: installing")
    assert lines[1].startswith("flowcheck e2e: live checks skipped: kind cilium could not be installed "
                               "(install-tools: error: sha256 mismatch for cilium-linux-amd64.tar.gz")
    assert lines[1].endswith("run `scripts/install-tools --trust-published-checksums kind cilium` where GitHub is "
                             "reachable, then make e2e. Running the offline checks only (policies validated and "
                             "checked against the model).")
    assert "install-tools:" not in result.stdout.replace(lines[1], "")  # its own output stays out of the way
    assert not (machine.bin / "cilium").exists()
    assert machine.called() == ["pytest suites/ --flowcheck-cluster=auto"]


def test_the_script_is_executable() -> None:
    assert os.access(REPO / "scripts" / "e2e", os.X_OK)
