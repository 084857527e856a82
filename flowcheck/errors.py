"""The exceptions flowcheck raises, under one root, each carrying what a user needs to act.

Every error that can reach a user names the thing to fix: the file, the document inside it,
and the field (``PolicyError``), the tool that is missing and how to get it (``ToolMissing``),
the kube context that was refused (``ContextRefused``). The command line turns a
``FlowcheckError`` into a one-line message instead of a traceback: exit 2 for bad input
(``InputError``, ``ContextRefused``), exit 1 for any other failure (a cluster or a tool that
failed). Anything that is not a ``FlowcheckError`` is a flowcheck bug: an internal error, exit 3.
"""

from __future__ import annotations

import os
import sys
import traceback

# The exit code every flowcheck entry point gives its own bugs (README "The flowcheck command").
EXIT_INTERNAL = 3


def report_internal_error(exc: BaseException, prog: str = "flowcheck") -> int:
    """Say on stderr, in one line, that ``exc`` is a flowcheck bug; return ``EXIT_INTERNAL``.

    The traceback is printed only with ``FLOWCHECK_DEBUG=1``: a user needs to know it is not their
    input and how to get the details for a bug report, not a page of frames.
    """
    if os.environ.get("FLOWCHECK_DEBUG"):
        traceback.print_exception(exc)
    print(f"{prog}: internal error (a flowcheck bug): {type(exc).__name__}: {exc} "
          "(set FLOWCHECK_DEBUG=1 for the traceback)", file=sys.stderr)
    return EXIT_INTERNAL


class FlowcheckError(Exception):
    """Root of every error flowcheck raises on purpose."""


class InputError(FlowcheckError):
    """Bad input from the user: a file, a document or an option. The CLI exits 2 on these."""


class PolicyError(InputError):
    """A policy document is malformed.

    ``document`` is the 0-based index of the YAML document inside ``path`` (multi-document files
    and ``List`` items count separately); ``field`` is a dotted path inside that document such as
    ``spec.ingress[0].toPorts[0].ports[0].port``.
    """

    def __init__(self, path: str, document: int | None, field: str, message: str) -> None:
        self.path = path
        self.document = document
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path
        if self.document is not None:
            where += f" (document {self.document})"
        if self.field:
            where += f", field {self.field}"
        return f"{where}: {self.message}"


class TopologyError(InputError):
    """The topology or flows file is malformed (same shape of message as ``PolicyError``)."""

    def __init__(self, path: str, field: str, message: str) -> None:
        self.path = path
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path + (f", field {self.field}" if self.field else "")
        return f"{where}: {self.message}"


class ToolMissing(FlowcheckError):
    """An external command (kind, cilium, hubble, docker) is not installed."""

    def __init__(self, tool: str, how_to_get: str) -> None:
        self.tool = tool
        self.how_to_get = how_to_get
        super().__init__(f"{tool} not found on PATH or in .bin/: {how_to_get}")


class ClusterError(FlowcheckError):
    """Talking to the cluster (or to kind, cilium, Hubble) failed.

    Besides the one-line message a user reads, it carries the facts a caller may act on:
    ``action`` (what flowcheck was doing, e.g. ``deleting pod tenant/client``) and ``context``
    (the kube context, when one was involved). Subclasses add their own: the Kubernetes API's
    status (``flowcheck.cluster.api_errors``), a command's exit code (``CommandFailed``).
    """

    def __init__(self, message: str, *, action: str = "", context: str = "") -> None:
        self.action = action
        self.context = context
        super().__init__(message)


class CommandFailed(ClusterError):
    """A local command (kind, cilium, helm, ...) exited non-zero: which one, its exit code and output."""

    def __init__(self, message: str, *, argv: tuple[str, ...], returncode: int, stdout: str = "", stderr: str = "",
                 action: str = "", context: str = "") -> None:
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(message, action=action, context=context)


class ContextRefused(ClusterError, InputError):
    """The kube context is not a kind cluster flowcheck created, and was not explicitly allowed.

    Both a ``ClusterError`` (it is about a cluster) and an ``InputError``: which context to use is
    the user's choice, so it is theirs to fix, and the command line exits 2.
    """

    def __init__(self, context: str, reason: str) -> None:
        self.context = context
        self.reason = reason
        super().__init__(
            f"refusing kube context {context!r}: {reason}. flowcheck only touches kind clusters it "
            f"created or reused; to run against this context anyway pass --allow-context {context}",
            context=context,
        )
