"""agent.py and server.py run inside stock ``python:3-alpine`` pods: standard library only, Python >= 3.9."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.netlab import AGENT_PATH, SERVER_PATH
from tests.netlab.lab import REPO_ROOT
from tests.probe.conftest import PY39, free_port, has_py39, run_agent, start_server, stop_server

POD_FILES = [AGENT_PATH, SERVER_PATH]


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import (the file runs alone in a pod)"
            names.add((node.module or "").split(".")[0])
    return names


@pytest.mark.parametrize("path", POD_FILES, ids=lambda p: p.name)
def test_pod_files_import_only_the_standard_library(path: Path) -> None:
    foreign = imported_modules(path) - set(sys.stdlib_module_names)
    assert not foreign, f"{path.name} imports non-stdlib modules: {sorted(foreign)}"


def find_vermin() -> str | None:
    beside = Path(sys.executable).parent / "vermin"
    return str(beside) if beside.exists() else shutil.which("vermin")


@pytest.mark.parametrize("path", POD_FILES, ids=lambda p: p.name)
def test_pod_files_need_at_most_python_3_9(path: Path) -> None:
    vermin = find_vermin()
    assert vermin is not None, "vermin, a dev dependency (pyproject.toml), is not installed: pip install -e '.[dev]'"
    done = subprocess.run([vermin, "-t=3.9-", "--no-tips", "--violations", "--eval-annotations", str(path)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_agent_runs_without_site_packages(tmp_path: Path) -> None:
    """``-I -S``: no site-packages, no user site, no script directory -- only what a stock image has."""
    server = start_server(tmp_path)
    try:
        run = run_agent({"timeout": 2, "probes": [
            {"id": "1", "kind": "http", "host": "127.0.0.1", "port": server.http}]},
            argv=[sys.executable, "-I", "-S", str(AGENT_PATH)])
    finally:
        stop_server(server)
    assert run.results[0]["server"] == "default/api"


def test_agent_runs_as_a_module() -> None:
    run = run_agent({"probes": [{"id": "1", "kind": "tcp", "host": "127.0.0.1", "port": free_port()}]},
                    argv=[sys.executable, "-m", "flowcheck.probe.agent"], cwd=REPO_ROOT)
    assert run.returncode == 0 and run.results[0]["outcome"] == "refused"
    malformed = run_agent(b"{not json", argv=[sys.executable, "-m", "flowcheck.probe.agent"], cwd=REPO_ROOT)
    assert malformed.returncode == 2 and "malformed plan: the plan is not valid JSON" in malformed.stderr


@pytest.mark.skipif(not has_py39(), reason=f"no Python 3.9 interpreter at {PY39}")
def test_agent_and_server_work_under_python_3_9(tmp_path: Path, local_resolver_port: int) -> None:
    version = subprocess.run([str(PY39), "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("Python 3.9")
    server = start_server(tmp_path, python=str(PY39))
    try:
        run = run_agent({"timeout": 2, "probes": [
            {"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": server.tcp},
            {"id": "http", "kind": "http", "host": "127.0.0.1", "port": server.http, "method": "POST",
             "headers": {"X-Token": "42"}},
            {"id": "udp", "kind": "udp", "host": "127.0.0.1", "port": server.udp},
            {"id": "dns", "kind": "dns", "server": "127.0.0.1", "port": local_resolver_port, "name": "refused.lab",
             "transport": "tcp"},
        ]}, python=str(PY39))
        malformed = run_agent(b"{not json", python=str(PY39))  # 3.9's C scanner needs json imported to say why
    finally:
        server_exit = stop_server(server)
    assert server_exit == 0
    got = run.by_id()
    assert got["tcp"]["outcome"] == "ok"
    assert got["http"]["server"] == "default/api" and got["http"]["echo"]["headers"]["X-Token"] == "42"
    assert got["udp"]["server"] == "default/api"
    assert got["dns"]["rcode"] == "REFUSED"
    assert malformed.returncode == 2
    assert malformed.stderr == ("flowcheck agent: malformed plan: the plan is not valid JSON: Expecting property name "
                                "enclosed in double quotes: line 1 column 2 (char 1)\n")
