"""The one place flowcheck runs local processes (kind, the cilium CLI, helm, pytest).

Everything that shells out goes through a ``ProcessRunner``: ``run(argv, stdin=..., timeout_s=...,
env=..., interrupt_grace_s=...)`` returns a ``CompletedExec(returncode, stdout, stderr)`` -- the
same shape as a command run inside a pod -- and never raises for a non-zero exit, like
``subprocess.run(check=False)``. Tests swap the runner for a fake that answers from recorded real
outputs, so the code around the tools is exercised without a Docker engine. ``run_checked`` is the
convenience most callers want: a non-zero exit becomes a ``CommandFailed`` naming the step and
quoting the end of stderr.

Stopping a child is shaped by what the children do when stopped. A child may be a whole
``pytest suites/`` run (the pre-upgrade check) whose teardown deletes what it put in the cluster;
SIGKILL -- what ``subprocess.run`` sends on a timeout and on Ctrl-C -- skips that teardown and, on
a staging cluster, leaves the repository's policies applied. So:

* On a timeout the child gets SIGINT, which pytest turns into ``KeyboardInterrupt`` and answers by
  running its teardown (SIGTERM would simply end it), then ``interrupt_grace_s`` to finish.
* On Ctrl-C the terminal has already sent SIGINT to the child too (it runs in flowcheck's
  foreground process group), so it is not signalled again -- a second SIGINT would interrupt its
  teardown -- but given ``interrupt_grace_s`` to finish before ``KeyboardInterrupt`` is re-raised.
  A second Ctrl-C while waiting ends the wait at once. A child that did not get the terminal's
  SIGINT (flowcheck itself was interrupted by a signal sent to it alone, e.g. by its own parent's
  timeout) is waited for all the same and then killed: the grace bounds that cost.
* A child still running after the grace is killed (SIGKILL), and a one-line hint says that what it
  left in the cluster can be removed with ``flowcheck cleanup`` (the run id is not known here). A
  child still finishing after a second is announced, so a long teardown does not look like a hang.

While waiting, the child's output keeps being read, so a child printing its teardown cannot block
on a full pipe.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from flowcheck.errors import ClusterError, CommandFailed, ToolMissing
from flowcheck.probe.executor import CompletedExec

# How much of a failing tool's output an error message quotes: enough for kind's or cilium's
# last error line and its context, short enough to stay readable in a pytest report.
ERROR_TAIL_LINES = 12

# How long a child may take to stop after SIGINT before it is killed. Short commands (kind get
# clusters, cilium status, helm) stop at once or have nothing of their own to undo; 10 s lets a Go
# CLI cancel its context and return. Callers whose children tear things down pass more (the
# pre-upgrade check gives its pytest children ten minutes: see harness/preupgrade/options.py).
DEFAULT_INTERRUPT_GRACE_S = 10.0
# After SIGKILL: how long to keep reading output a grandchild may still hold the pipes open for.
DRAIN_AFTER_KILL_S = 2.0
HINT_COMMAND_CHARS = 120  # the kill hint stays one readable line whatever the command line is
WAITING_NOTE_AFTER_S = 1.0  # a child still finishing after this long is announced (the wait may be minutes)


class ProcessRunner(Protocol):
    """Runs a local command to completion and returns what it printed."""

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: str | None = None,
        timeout_s: float | None = None,
        env: Mapping[str, str] | None = None,
        interrupt_grace_s: float = DEFAULT_INTERRUPT_GRACE_S,
    ) -> CompletedExec:
        """Run ``argv``; ``env`` entries are added to the current environment.

        Raises ``ToolMissing`` when ``argv[0]`` cannot be executed and ``ClusterError`` when the
        command outlives ``timeout_s`` (it is interrupted, then killed after ``interrupt_grace_s``);
        a non-zero exit is returned, not raised. On Ctrl-C the command gets ``interrupt_grace_s``
        to finish its own cleanup before ``KeyboardInterrupt`` is re-raised.
        """
        ...


def _print_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class SubprocessRunner:
    """The real runner: ``subprocess.Popen`` with captured text output, stopped gently (module doc)."""

    def __init__(self, *, notify: Callable[[str], None] = _print_to_stderr) -> None:
        self._notify = notify

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: str | None = None,
        timeout_s: float | None = None,
        env: Mapping[str, str] | None = None,
        interrupt_grace_s: float = DEFAULT_INTERRUPT_GRACE_S,
    ) -> CompletedExec:
        args = [str(a) for a in argv]
        full_env = {**os.environ, **env} if env else None
        try:
            proc = subprocess.Popen(args, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)
        except FileNotFoundError as exc:
            from flowcheck.cluster.tools import how_to_get  # local import: tools imports this module

            name = Path(args[0]).name
            raise ToolMissing(name, how_to_get(name)) from exc
        except PermissionError as exc:
            raise ClusterError(f"cannot execute {args[0]}: {exc}") from exc
        try:
            stdout, stderr = proc.communicate(stdin, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            stdout, stderr, killed = self._wait_or_kill(proc, args, interrupt_grace_s)
            how = (f"killed {interrupt_grace_s:g} s later" if killed
                   else f"stopped (exit {proc.returncode})")
            result = CompletedExec(proc.returncode, stdout, stderr)
            raise ClusterError(f"`{command_line(args)}` did not finish within {timeout_s:g} s; it was interrupted "
                               f"(SIGINT) and {how}{tail(result)}") from None
        except KeyboardInterrupt:
            self._wait_or_kill(proc, args, interrupt_grace_s)
            raise
        return CompletedExec(proc.returncode, stdout, stderr)

    def _wait_or_kill(self, proc: subprocess.Popen[str], args: list[str], grace_s: float) -> tuple[str, str, bool]:
        """Let ``proc`` finish within ``grace_s`` (still reading its output), else kill it; True when killed.

        A child still busy after ``WAITING_NOTE_AFTER_S`` is announced, so a teardown that takes
        minutes does not look like a hang.
        """
        first_s = min(grace_s, WAITING_NOTE_AFTER_S)
        try:
            try:
                stdout, stderr = proc.communicate(timeout=first_s)
            except subprocess.TimeoutExpired:
                if grace_s <= first_s:
                    raise
                self._notify(f"flowcheck: waiting up to {grace_s:g} s for `{_one_line(command_line(args))}` to finish "
                             "its cleanup (Ctrl-C again kills it)")
                stdout, stderr = proc.communicate(timeout=grace_s - first_s)
            return stdout, stderr, False
        except subprocess.TimeoutExpired:
            stdout, stderr = self._kill(proc, args, f"it did not finish within the {grace_s:g} s grace period")
            return stdout, stderr, True
        except KeyboardInterrupt:  # Ctrl-C again: the user does not want to wait
            self._kill(proc, args, "Ctrl-C was pressed again while it was finishing")
            raise

    def _kill(self, proc: subprocess.Popen[str], args: list[str], why: str) -> tuple[str, str]:
        proc.kill()
        proc.wait()
        self._notify(f"flowcheck: killed `{_one_line(command_line(args))}` ({why}); anything it left in the cluster "
                     "can be removed with `flowcheck cleanup`")
        try:
            return proc.communicate(timeout=DRAIN_AFTER_KILL_S)
        except subprocess.TimeoutExpired as exc:  # a grandchild still holds the pipes open
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
            return _text(exc.output), _text(exc.stderr)


def _one_line(text: str, limit: int = HINT_COMMAND_CHARS) -> str:
    words = " ".join(text.split())
    return words if len(words) <= limit else words[:limit - 3] + "..."


def _text(data: bytes | str | None) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data or ""


def run_checked(
    runner: ProcessRunner,
    argv: Sequence[str],
    *,
    what: str,
    stdin: str | None = None,
    timeout_s: float | None = None,
    env: Mapping[str, str] | None = None,
    interrupt_grace_s: float = DEFAULT_INTERRUPT_GRACE_S,
) -> CompletedExec:
    """Run ``argv`` and raise ``CommandFailed`` (``what`` failed, exit code, stderr tail) unless it exits 0."""
    result = runner.run(argv, stdin=stdin, timeout_s=timeout_s, env=env, interrupt_grace_s=interrupt_grace_s)
    if result.returncode != 0:
        raise CommandFailed(f"{what} failed (exit {result.returncode}: `{command_line(argv)}`){tail(result)}",
                            argv=tuple(str(a) for a in argv), returncode=result.returncode, stdout=result.stdout,
                            stderr=result.stderr, action=what)
    return result


def tail(result: CompletedExec, lines: int = ERROR_TAIL_LINES) -> str:
    """The last ``lines`` lines of stderr (or stdout when stderr is empty), as an indented block."""
    text = result.stderr.strip() or result.stdout.strip()
    if not text:
        return ""
    kept = text.splitlines()[-lines:]
    return ":\n" + "\n".join("    " + line for line in kept)


def command_line(argv: Sequence[str]) -> str:
    """``argv`` as a reader would type it (tool paths shortened to their name)."""
    if not argv:
        return ""
    first = Path(str(argv[0])).name
    rest = [_quote(str(a)) for a in argv[1:]]
    return " ".join([first, *rest])


def _quote(arg: str) -> str:
    if arg and all(c.isalnum() or c in "-_./=:,@%+" for c in arg):
        return arg
    return "'" + arg.replace("'", "'\\''") + "'"
