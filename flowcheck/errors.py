"""The exceptions flowcheck raises, under one root, each carrying what a user needs to act.

Every error that can reach a user names the thing to fix: the file, the document inside it,
and the field (``PolicyError``), the tool that is missing and how to get it (``ToolMissing``),
the kube context that was refused (``ContextRefused``). The command line prints a
``FlowcheckError`` as one line instead of a traceback, and its class decides the exit code --
the one mapping, implemented by ``flowcheck.cli.exit_codes``:

* ``InputError`` (``PolicyError``, ``TopologyError``, an expectation or a semantics that means
  nothing, ``ContextRefused``): exit 2, bad input -- the user's to fix;
* every other ``FlowcheckError`` (``ClusterError`` with its API and command failures,
  ``ToolMissing``, a failed pre-upgrade step): exit 1, a failure;
* anything that is not a ``FlowcheckError``: exit 3, a flowcheck bug (an internal error).

A command that finds a mismatch or a changed verdict exits 1 without raising; Ctrl-C is 130 and
a closed stdout 141 (``flowcheck plan | head``).
"""

from __future__ import annotations


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
            f"created or reused; to run against this context anyway pass --allow-context {context} "
            f"(to pytest: --flowcheck-allow-context {context})",
            context=context,
        )
