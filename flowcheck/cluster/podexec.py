"""Running a command inside a pod through the Kubernetes exec API, shaped like ``subprocess.run``.

``exec_in_pod(clients, pod, argv, stdin=..., timeout_s=...)`` returns ``CompletedExec(returncode,
stdout, stderr)`` (kr8s' model). It follows the ``kubernetes`` client's own streaming API exactly:
``kubernetes.stream.stream(core.connect_get_namespaced_pod_exec, ..., _preload_content=False)``
returns a ``WSClient``; stdin is written and then closed, stdout/stderr are read until the server
closes the connection, and the exit status comes from the error channel (channel 3) -- a
``metav1.Status`` that is ``Success``, or ``Failure`` with a ``details.causes`` entry of reason
``ExitCode`` carrying the code (``WSClient.returncode`` reads it the same way).

Closing stdin needs the ``v5.channel.k8s.io`` subprotocol (its CLOSE frame; Kubernetes API servers
offer it from 1.30, KEP-4006); over ``v4`` a program reading stdin to EOF would wait forever, so a
stdin-fed exec over ``v4`` is refused with a clear error instead of hanging until the deadline.

A ``Failure`` status without an exit code means the command never ran (no such binary, container
gone, ...): that raises ``ExecStartError``; a non-zero exit is returned, never raised. A command that
outlives ``timeout_s`` is abandoned: the connection is closed and the result carries return code
124 (``timeout(1)``'s convention) with what had been printed so far.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from flowcheck.cluster.api_errors import ApiError, ApiUnreachable
from flowcheck.cluster.kube import KubeClients, api_error
from flowcheck.cluster.process import command_line
from flowcheck.errors import ClusterError
from flowcheck.probe.executor import CompletedExec

STDIN_CHANNEL = 0
STDOUT_CHANNEL = 1
STDERR_CHANNEL = 2
ERROR_CHANNEL = 3
V5_CHANNEL_PROTOCOL = "v5.channel.k8s.io"
EXEC_TIMEOUT_RETURNCODE = 124
POLL_INTERVAL_S = 0.5  # wake-ups while waiting for output; the deadline is checked at each


class ExecStartError(ClusterError):
    """The command could not be run in the pod at all (as opposed to running and failing)."""


@dataclass(frozen=True, slots=True)
class PodTarget:
    """Where to exec: a pod and (optionally) one of its containers."""

    namespace: str
    name: str
    container: str | None = None

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}"
        return f"{where} (container {self.container})" if self.container else where


def exec_in_pod(clients: KubeClients, pod: PodTarget, argv: Sequence[str], *, stdin: str | None = None,
                timeout_s: float, clock: Callable[[], float] = time.monotonic) -> CompletedExec:
    """Run ``argv`` in ``pod`` (``stdin`` written then closed) and wait at most ``timeout_s``."""
    what = f"`{command_line(argv)}` in pod {pod}"
    try:
        resp = clients.stream(clients.core.connect_get_namespaced_pod_exec, pod.name, pod.namespace,
                              command=list(argv), container=pod.container, stdin=stdin is not None, stdout=True,
                              stderr=True, tty=False, binary=True, _preload_content=False)
    except Exception as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):  # the client wraps even Ctrl-C in an ApiException
            raise KeyboardInterrupt from exc
        error = api_error(clients, f"cannot exec {what}", exc)
        if isinstance(error, ApiUnreachable):  # not an ExecStartError: no other command would fare better
            raise error from exc
        if isinstance(error, ApiError):
            raise ExecStartError(f"cannot exec {what}: {error.summary}", action=error.action,
                                 context=clients.context) from exc
        raise
    try:
        return _converse(resp, what, stdin, timeout_s, clock)
    except ClusterError:
        raise
    except Exception as exc:  # the websocket broke mid-conversation (connection reset, API server restart, ...)
        where = f" (context {clients.context})" if clients.context else ""
        raise ClusterError(f"the exec stream of {what} broke: {type(exc).__name__}: {exc}{where}") from exc
    finally:
        resp.close()


def _converse(resp: Any, what: str, stdin: str | None, timeout_s: float,
              clock: Callable[[], float]) -> CompletedExec:
    if stdin is not None:
        protocol = getattr(resp, "subprotocol", None)
        if protocol != V5_CHANNEL_PROTOCOL:
            raise ExecStartError(
                f"cannot run {what}: the API server negotiated the {protocol or 'unnamed'} exec protocol, which "
                f"cannot signal the end of stdin; flowcheck needs {V5_CHANNEL_PROTOCOL} (Kubernetes >= 1.30)")
        resp.write_stdin(stdin.encode("utf-8"))
        resp.close_channel(STDIN_CHANNEL)
    out: list[bytes] = []
    err: list[bytes] = []
    deadline = clock() + timeout_s
    timed_out = False
    while resp.is_open():
        remaining = deadline - clock()
        if remaining <= 0:
            timed_out = True
            break
        resp.update(timeout=min(remaining, POLL_INTERVAL_S))
        _drain(resp, out, err)
    _drain(resp, out, err)
    stdout = b"".join(out).decode("utf-8", "replace")
    stderr = b"".join(err).decode("utf-8", "replace")
    if timed_out:
        note = f"flowcheck: {what} did not finish within {timeout_s:g} s and was abandoned\n"
        return CompletedExec(EXEC_TIMEOUT_RETURNCODE, stdout, stderr + note)
    status = _as_text(resp.read_channel(ERROR_CHANNEL))
    return CompletedExec(parse_exec_status(status, what), stdout, stderr)


def _drain(resp: Any, out: list[bytes], err: list[bytes]) -> None:
    for channel, sink in ((STDOUT_CHANNEL, out), (STDERR_CHANNEL, err)):
        data = resp.read_channel(channel, timeout=0)
        if data:
            sink.append(data if isinstance(data, bytes) else str(data).encode("utf-8"))


def _as_text(data: Any) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return str(data or "")


def parse_exec_status(text: str, what: str = "the command") -> int:
    """The exit code from the error channel's ``metav1.Status`` (see module doc)."""
    if not text.strip():
        raise ExecStartError(f"{what}: the exec stream closed without an exit status")
    try:
        status = yaml.safe_load(text)  # what the kubernetes client uses (JSON is YAML)
    except yaml.YAMLError as exc:
        raise ExecStartError(f"{what}: unreadable exit status {text[:200]!r}") from exc
    if not isinstance(status, dict):
        raise ExecStartError(f"{what}: unreadable exit status {text[:200]!r}")
    if status.get("status") == "Success":
        return 0
    details = status.get("details")
    causes = details.get("causes") if isinstance(details, dict) else None
    for cause in causes if isinstance(causes, list) else []:
        if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message", ""))
            except ValueError:
                break
    message = status.get("message") or status.get("reason") or text.strip()
    raise ExecStartError(f"{what} could not be run: {message}")
