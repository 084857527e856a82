"""The process runner (real subprocesses) and finding tools in .bin/ or on PATH."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from flowcheck.cluster.process import SubprocessRunner, command_line, run_checked
from flowcheck.cluster.tools import find_tool, read_tool_versions
from flowcheck.errors import ClusterError, ToolMissing

REPO = Path(__file__).resolve().parents[2]


def test_runner_returns_exit_code_and_output_without_raising() -> None:
    result = SubprocessRunner().run([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); "
                                                           "sys.exit(3)"])
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")


def test_runner_feeds_stdin_and_adds_env() -> None:
    result = SubprocessRunner().run([sys.executable, "-c", "import os, sys; print(sys.stdin.read() + os.environ['X'])"],
                                    stdin="plan", env={"X": "!"})
    assert result.stdout == "plan!\n"


def test_missing_tool_is_one_line_saying_how_to_get_it() -> None:
    with pytest.raises(ToolMissing) as err:
        SubprocessRunner().run(["/nonexistent/.bin/kind", "get", "clusters"])
    assert str(err.value).startswith("kind not found on PATH or in .bin/: run scripts/install-tools")
    assert "\n" not in str(err.value)


def test_timeout_kills_and_explains() -> None:
    with pytest.raises(ClusterError, match=r"did not finish within 0.2 s"):
        SubprocessRunner().run([sys.executable, "-c", "import time; time.sleep(10)"], timeout_s=0.2)


def test_run_checked_quotes_the_end_of_stderr() -> None:
    with pytest.raises(ClusterError) as err:
        run_checked(SubprocessRunner(), [sys.executable, "-c", "import sys; sys.exit('boom')"], what="the step")
    assert "the step failed (exit 1" in str(err.value) and str(err.value).rstrip().endswith("boom")


def test_command_line_is_readable() -> None:
    assert command_line(["/x/.bin/cilium", "connectivity", "test", "--test", "!/pod-to-world"]) == (
        "cilium connectivity test --test '!/pod-to-world'")


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_find_tool_prefers_the_pinned_bin_dir(tmp_path: Path) -> None:
    pinned = _executable(tmp_path / ".bin" / "kind")
    other = _executable(tmp_path / "usr" / "kind")
    assert find_tool("kind", bin_dirs=[tmp_path / ".bin"], path=str(other.parent)) == str(pinned)
    assert find_tool("kind", bin_dirs=[tmp_path / "empty"], path=str(other.parent)) == str(other)


def test_find_tool_missing(tmp_path: Path) -> None:
    with pytest.raises(ToolMissing, match=r"^cilium not found on PATH or in \.bin/: run scripts/install-tools"):
        find_tool("cilium", bin_dirs=[tmp_path], path=str(tmp_path))
    with pytest.raises(ToolMissing, match="Docker Engine"):
        find_tool("docker", bin_dirs=[tmp_path], path=str(tmp_path))


def test_the_versions_file_pins_kind_and_the_cilium_cli() -> None:
    versions = read_tool_versions(REPO / "scripts" / "tool-versions")
    assert versions.tool("kind").version == "v0.31.0"
    assert versions.tool("cilium").version == "v0.19.7"
    assert versions.tool("hubble").repository == "cilium/hubble"
    assert versions.tool("cilium").url("linux", "amd64") == (
        "https://github.com/cilium/cilium-cli/releases/download/v0.19.7/cilium-linux-amd64.tar.gz")
    assert versions.tool("kind").asset("darwin", "arm64") == "kind-darwin-arm64"
    # No hash may be invented: every pin present must be a real sha256 someone pasted in.
    assert all(len(digest) == 64 for _asset, digest in versions.sha256)


def test_a_malformed_pin_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "tool-versions"
    bad.write_text("tool kind v0.31.0 kubernetes-sigs/kind kind-${os}-${arch}\nsha256 kind-linux-amd64 deadbeef\n")
    with pytest.raises(ClusterError, match=r"tool-versions:2: 'deadbeef' is not a sha256"):
        read_tool_versions(bad)


def test_install_tools_is_executable() -> None:
    assert os.access(REPO / "scripts" / "install-tools", os.X_OK)
