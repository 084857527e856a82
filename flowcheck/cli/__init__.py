"""The ``flowcheck`` command: one module per subcommand, one table of exit codes.

Each subcommand module has ``register(subparsers)`` and a ``run(args) -> int`` that composes the
lower layers: they return results and raise errors, never touch argv, stdout or exit codes; this
package turns the results into output and every error into one line on stderr and its exit code
(``exit_codes``: 0 done, 1 a failure or a change, 2 bad input, 3 a flowcheck bug, 130 Ctrl-C, 141
stdout closed). ``python -m flowcheck`` is the same command (what ``scripts/`` run).

    init         a topology and starter intent from a repo (``init``)
    validate     manifests against the schemas            (``validate``)
    plan         every flow the model predicts            (``plan``)
    explain      what the policies do to given flows      (``explain``)
    diff         what a policy change does to every path  (``diff``)
    replay       Hubble flows decided against the policies (``replay``)
    baseline     record / compare runs' verdicts          (``baseline``)
    cleanup      leftovers of flowcheck runs              (``cleanup``)
    pre-upgrade  the Cilium upgrade check                 (``preupgrade``)
    cluster      kind + Cilium up / down / connectivity   (``cluster``)
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Callable, Sequence

from flowcheck import __version__
from flowcheck.cli import baseline, cleanup, cluster, diff, explain, init, plan, preupgrade, replay, validate
from flowcheck.cli.common import strict_failure
from flowcheck.cli.exit_codes import ExitCode, exit_code_for, report_internal_error
from flowcheck.errors import FlowcheckError

Command = Callable[[argparse.Namespace], int]

COMMANDS = (init, validate, plan, explain, diff, replay, baseline, cleanup, preupgrade, cluster)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowcheck",
        description="Prove that a cluster's network policies do what their authors meant: predict "
                    "every path from the policies (offline) and probe it on a kind + Cilium cluster.",
    )
    parser.add_argument("--version", action="version", version=f"flowcheck {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not complain about the closed pipe.

    The recipe from Python's documentation of SIGPIPE (``signal`` module, "Note on SIGPIPE").
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # stdout is not a file descriptor (e.g. captured in-process): nothing will flush to it


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code (see ``exit_codes``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Command | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return ExitCode.BAD_INPUT
    try:
        code = func(args)
        if code == ExitCode.OK and strict_failure(args):
            code = ExitCode.FAILED  # warnings under --strict: the output was printed, the command fails
        sys.stdout.flush()  # a reader that went away shows here, not as a complaint at interpreter exit
        return code
    except BrokenPipeError:
        _stdout_to_devnull()
        return ExitCode.STDOUT_CLOSED
    except KeyboardInterrupt as exc:
        print("flowcheck: interrupted", file=sys.stderr)
        return exit_code_for(exc)
    except FlowcheckError as exc:
        print(f"flowcheck: error: {exc}", file=sys.stderr)
        return exit_code_for(exc)
    except Exception as exc:
        return report_internal_error(exc)
