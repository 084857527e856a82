"""``agent_argv``: executors start the agent from cached bytecode (``flowcheck.probe.launch``). The
command must run the very same agent, compile it once per cache directory, and still work where nothing
can be cached -- checked with the real interpreter, as a pod would run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flowcheck.probe.launch import agent_argv
from tests.netlab import AGENT_PATH
from tests.probe.conftest import PY39, LocalServer, has_py39

PLAN = json.dumps({"timeout": 2, "probes": [{"id": "bad", "kind": "tcp", "host": "127.0.0.1", "port": 1}]})


def run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, input=PLAN, capture_output=True, text=True, timeout=60, check=False, cwd=cwd,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def pod_files(tmp_path: Path) -> Path:
    """The agent where a pod has it: alone in a read-only directory (the ConfigMap mount)."""
    mount = tmp_path / "flowcheck"
    mount.mkdir()
    shutil.copy(AGENT_PATH, mount / "agent.py")
    mount.chmod(0o555)
    return mount / "agent.py"


def test_the_command_runs_the_agent_and_caches_its_bytecode_once(pod_files: Path, tmp_path: Path) -> None:
    cache = tmp_path / "tmp" / "flowcheck-pycache"
    argv = agent_argv(str(pod_files), python=sys.executable, pycache_dir=str(cache))
    verbose = [argv[0], "-v", *argv[1:]]  # -v: the import system says where the agent's code came from
    env = {"PYTHONDONTWRITEBYTECODE": "1"}  # as probe pods set it
    first = run(verbose, cwd=tmp_path, env=env)
    second = run(verbose, cwd=tmp_path, env=env)
    for done in (first, second):
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["outcome"] == "refused"  # nothing listens on 127.0.0.1:1
    cached = list(cache.rglob("agent.*.pyc"))
    assert len(cached) == 1 and cached[0].parent == cache / str(pod_files.parent).lstrip("/")
    assert f"code object from '{cached[0]}'" not in first.stderr  # compiled ...
    assert f"code object from '{cached[0]}'" in second.stderr  # ... then loaded from the cache


def test_without_a_writable_cache_the_agent_still_runs(pod_files: Path, tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")  # no cache can be made below a file, not even by root
    argv = agent_argv(str(pod_files), python=sys.executable, pycache_dir=str(not_a_directory / "cache"))
    for _ in range(2):
        done = run(argv, cwd=tmp_path)
        assert done.returncode == 0 and json.loads(done.stdout)["id"] == "bad", done.stderr
        assert "Traceback" not in done.stderr


def test_an_agent_py_in_the_working_directory_is_not_the_one_run(pod_files: Path, tmp_path: Path) -> None:
    (tmp_path / "agent.py").write_text("print('impostor')\n")
    done = run(agent_argv(str(pod_files), python=sys.executable, pycache_dir=str(tmp_path / "c")), cwd=tmp_path)
    assert "impostor" not in done.stdout and json.loads(done.stdout)["id"] == "bad"


def test_the_launched_agent_probes_like_the_script(local_server: LocalServer, tmp_path: Path) -> None:
    plan = json.dumps({"timeout": 2, "probes": [
        {"id": "http", "kind": "http", "host": "127.0.0.1", "port": local_server.http}]})
    argv = agent_argv(str(AGENT_PATH), python=sys.executable, pycache_dir=str(tmp_path / "c"))
    done = subprocess.run(argv, input=plan, capture_output=True, text=True, timeout=60, check=False)
    result = json.loads(done.stdout)
    assert done.returncode == 0 and result["outcome"] == "ok" and result["server"] == "default/api"


@pytest.mark.skipif(not has_py39(), reason=f"no Python 3.9 interpreter at {PY39}")
def test_the_command_works_under_python_3_9(pod_files: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c"
    for _ in range(2):
        done = run(agent_argv(str(pod_files), python=str(PY39), pycache_dir=str(cache)), cwd=tmp_path)
        assert done.returncode == 0 and json.loads(done.stdout)["id"] == "bad", done.stderr
    assert "agent.cpython-39.pyc" in [path.name for path in cache.rglob("*.pyc")]


@pytest.mark.parametrize("path", ["agent.py", "/flowcheck/agent", "/flowcheck/my-agent.py", "/flowcheck/agent.pyc"])
def test_paths_that_cannot_be_imported_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="not a path to an importable agent"):
        agent_argv(path)
