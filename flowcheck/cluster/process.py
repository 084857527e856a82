"""The one place flowcheck runs local processes (kind, the cilium CLI, docker).

Everything that shells out goes through a ``ProcessRunner``: ``run(argv, stdin=..., timeout_s=...,
env=...)`` returns a ``CompletedExec(returncode, stdout, stderr)`` -- the same shape as a command
run inside a pod -- and never raises for a non-zero exit, like ``subprocess.run(check=False)``.
Tests swap the runner for a fake that answers from recorded real outputs, so the code around the
tools is exercised without a Docker engine. ``run_checked`` is the convenience most callers want:
a non-zero exit becomes a ``ClusterError`` naming the step and quoting the end of stderr.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from flowcheck.errors import ClusterError, ToolMissing
from flowcheck.probe.executor import CompletedExec

# How much of a failing tool's output an error message quotes: enough for kind's or cilium's
# last error line and its context, short enough to stay readable in a pytest report.
ERROR_TAIL_LINES = 12


class ProcessRunner(Protocol):
    """Runs a local command to completion and returns what it printed."""

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: str | None = None,
        timeout_s: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CompletedExec:
        """Run ``argv``; ``env`` entries are added to the current environment.

        Raises ``ToolMissing`` when ``argv[0]`` cannot be executed and ``ClusterError`` when the
        command outlives ``timeout_s`` (it is killed); a non-zero exit is returned, not raised.
        """
        ...


class SubprocessRunner:
    """The real runner: ``subprocess.run`` with captured text output.

    On Ctrl-C ``subprocess.run`` kills the child before re-raising ``KeyboardInterrupt``, so an
    interrupted ``kind create`` or ``cilium connectivity test`` does not outlive flowcheck.
    """

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: str | None = None,
        timeout_s: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CompletedExec:
        args = [str(a) for a in argv]
        full_env = {**os.environ, **env} if env else None
        try:
            proc = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=timeout_s,
                                  env=full_env, check=False,
                                  stdin=None if stdin is not None else subprocess.DEVNULL)
        except FileNotFoundError as exc:
            from flowcheck.cluster.tools import how_to_get  # local import: tools imports this module

            name = Path(args[0]).name
            raise ToolMissing(name, how_to_get(name)) from exc
        except PermissionError as exc:
            raise ClusterError(f"cannot execute {args[0]}: {exc}") from exc
        except subprocess.TimeoutExpired as exc:
            raise ClusterError(f"`{command_line(args)}` did not finish within {timeout_s:g} s and was killed") from exc
        return CompletedExec(proc.returncode, proc.stdout, proc.stderr)


def run_checked(
    runner: ProcessRunner,
    argv: Sequence[str],
    *,
    what: str,
    stdin: str | None = None,
    timeout_s: float | None = None,
    env: Mapping[str, str] | None = None,
) -> CompletedExec:
    """Run ``argv`` and raise ``ClusterError`` (``what`` failed, exit code, stderr tail) unless it exits 0."""
    result = runner.run(argv, stdin=stdin, timeout_s=timeout_s, env=env)
    if result.returncode != 0:
        raise ClusterError(f"{what} failed (exit {result.returncode}: `{command_line(argv)}`){tail(result)}")
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
