"""The exit codes of every ``flowcheck`` command, and the one mapping from an outcome to a code.

Scripts and CI rely on these (README "The flowcheck command", ``docs/contracts.md``):

    0    done: no failure, no change
    1    a failure or a change: a mismatch, a changed verdict, a cluster or a tool that failed
         (any ``FlowcheckError`` that is not bad input)
    2    bad input: the one-line message names the file, the document and the field, or the option
         (``InputError``: ``PolicyError``, ``TopologyError``, ``ContextRefused``, ...)
    3    internal error: anything else is a flowcheck bug (``FLOWCHECK_DEBUG=1`` prints the traceback)
    130  interrupted (Ctrl-C: 128 + SIGINT, as the shell reports it)
    141  stdout was closed early (``flowcheck plan | head``): nothing more is printed, as a Unix tool
         killed by SIGPIPE (128 + 13) would end

Commands return ``OK`` or ``FAILED`` for what they found; everything raised is mapped by
``exit_code_for``, so the meaning of a code cannot differ between commands.
"""

from __future__ import annotations

import enum
import os
import sys
import traceback

from flowcheck.errors import FlowcheckError, InputError

DEBUG_ENV = "FLOWCHECK_DEBUG"


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1
    BAD_INPUT = 2
    INTERNAL = 3
    INTERRUPTED = 130
    STDOUT_CLOSED = 141


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit code for an exception that ended a command (the table above)."""
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(exc, BrokenPipeError):
        return ExitCode.STDOUT_CLOSED
    if isinstance(exc, InputError):
        return ExitCode.BAD_INPUT
    if isinstance(exc, FlowcheckError):
        return ExitCode.FAILED
    return ExitCode.INTERNAL


def report_internal_error(exc: BaseException) -> ExitCode:
    """Say on stderr, in one line, that ``exc`` is a flowcheck bug; return ``ExitCode.INTERNAL``.

    The traceback is printed only with ``FLOWCHECK_DEBUG=1``: a user needs to know it is not their
    input and how to get the details for a bug report, not a page of frames.
    """
    if os.environ.get(DEBUG_ENV):
        traceback.print_exception(exc)
    print(f"flowcheck: internal error (a flowcheck bug): {type(exc).__name__}: {exc} "
          f"(set {DEBUG_ENV}=1 for the traceback)", file=sys.stderr)
    return ExitCode.INTERNAL
