"""The process runner (real subprocesses) and finding tools in .bin/ or on PATH."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowcheck.cluster import process
from flowcheck.cluster.process import SubprocessRunner, command_line, run_checked
from flowcheck.cluster.tools import find_tool
from flowcheck.errors import ClusterError, ToolMissing
from tests.cluster.tool_versions import read_tool_versions

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


def test_timeout_interrupts_and_explains() -> None:
    with pytest.raises(ClusterError, match=r"did not finish within 0.2 s; it was interrupted \(SIGINT\) and stopped"):
        SubprocessRunner().run([sys.executable, "-c", "import time; time.sleep(10)"], timeout_s=0.2)


# Children that behave like `pytest suites/` when interrupted: SIGINT starts a teardown that takes a
# moment and leaves a marker when it is done. The handler is installed before anything else runs.
TEARDOWN_S = 0.8  # longer than the 0.25 s subprocess waits on Ctrl-C before it kills the child itself
CLEANS_UP = f"""
import signal, sys, time
def teardown(*_):
    time.sleep({TEARDOWN_S})
    open(sys.argv[1], "w").write("torn down")
    sys.exit(130)
signal.signal(signal.SIGINT, teardown)
{{then}}
time.sleep(30)
"""
IGNORES_SIGINT = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
open(sys.argv[1], "w").write(str(os.getpid()))
{then}
time.sleep(30)
"""
# What the terminal does on Ctrl-C: SIGINT to the whole foreground process group (here: the test
# process, which runs the runner, and the child itself).
CTRL_C = "os.kill(os.getppid(), signal.SIGINT); os.kill(os.getpid(), signal.SIGINT)"


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt in this process (whatever a test runner set up)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _child(script: str, then: str = "") -> str:
    return script.replace("{then}", then)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_timeout_sends_sigint_so_the_child_can_tear_down(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    hints: list[str] = []
    with pytest.raises(ClusterError, match=r"did not finish within 1 s; it was interrupted \(SIGINT\) and stopped "
                                           r"\(exit 130\)"):
        SubprocessRunner(notify=hints.append).run(
            [sys.executable, "-c", _child(CLEANS_UP), str(marker)], timeout_s=1.0,
            interrupt_grace_s=20)
    assert marker.read_text() == "torn down"
    assert not any("killed" in hint for hint in hints)


def test_a_child_that_ignores_the_timeouts_sigint_is_killed_after_the_grace(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    hints: list[str] = []
    started = time.monotonic()
    with pytest.raises(ClusterError, match=r"did not finish within 0.5 s; it was interrupted \(SIGINT\) and killed "
                                           r"0.3 s later"):
        SubprocessRunner(notify=hints.append).run([sys.executable, "-c", _child(IGNORES_SIGINT), str(pid_file)],
                                                  timeout_s=0.5, interrupt_grace_s=0.3)
    assert time.monotonic() - started < 10
    assert _gone(int(pid_file.read_text()))
    assert len(hints) == 1 and "\n" not in hints[0]
    assert hints[0].startswith("flowcheck: killed `python")
    assert "did not finish within the 0.3 s grace period" in hints[0]
    assert hints[0].endswith("anything it left in the cluster can be removed with `flowcheck cleanup`")


def test_ctrl_c_lets_the_child_finish_its_teardown_then_reraises(tmp_path: Path, sigint_raises: None) -> None:
    marker = tmp_path / "marker"
    hints: list[str] = []
    script = _child(CLEANS_UP, f"import os; {CTRL_C}")
    with pytest.raises(KeyboardInterrupt):
        SubprocessRunner(notify=hints.append).run([sys.executable, "-c", script, str(marker)], timeout_s=60,
                                                  interrupt_grace_s=20)
    assert marker.read_text() == "torn down"  # subprocess.run would have SIGKILLed it mid-teardown
    assert not any("killed" in hint for hint in hints)


def test_ctrl_c_kills_a_child_still_running_after_the_grace(tmp_path: Path, sigint_raises: None) -> None:
    pid_file = tmp_path / "pid"
    hints: list[str] = []
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        SubprocessRunner(notify=hints.append).run(
            [sys.executable, "-c", _child(IGNORES_SIGINT, CTRL_C), str(pid_file)], timeout_s=60, interrupt_grace_s=0.3)
    assert time.monotonic() - started < 10
    assert _gone(int(pid_file.read_text()))
    assert len(hints) == 1 and "within the 0.3 s grace period" in hints[0] and "`flowcheck cleanup`" in hints[0]


def test_a_long_wait_for_an_interrupted_child_is_announced(tmp_path: Path, sigint_raises: None,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process, "WAITING_NOTE_AFTER_S", 0.1)
    hints: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        SubprocessRunner(notify=hints.append).run(
            [sys.executable, "-c", _child(IGNORES_SIGINT, CTRL_C), str(tmp_path / "pid")], timeout_s=60,
            interrupt_grace_s=0.5)
    assert len(hints) == 2
    assert hints[0].startswith("flowcheck: waiting up to 0.5 s for `python")
    assert hints[0].endswith("to finish its cleanup (Ctrl-C again kills it)")
    assert hints[1].startswith("flowcheck: killed `python")


def test_a_second_ctrl_c_stops_waiting_for_the_child(tmp_path: Path, sigint_raises: None) -> None:
    pid_file = tmp_path / "pid"
    hints: list[str] = []
    twice = f"{CTRL_C}; time.sleep(0.3); os.kill(os.getppid(), signal.SIGINT)"
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        SubprocessRunner(notify=hints.append).run(
            [sys.executable, "-c", _child(IGNORES_SIGINT, twice), str(pid_file)], timeout_s=60, interrupt_grace_s=60)
    assert time.monotonic() - started < 10
    assert _gone(int(pid_file.read_text()))
    assert len(hints) == 1 and "Ctrl-C was pressed again" in hints[0]


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
    assert versions.tool("kind").version == "v0.32.0"
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
