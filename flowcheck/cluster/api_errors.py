"""Kubernetes API errors, typed by what the API server answered.

The ``kubernetes`` client raises one ``ApiException`` for every status, and urllib3's
``HTTPError`` subclasses when nothing answered at all. Callers should not test status numbers on
client exceptions; ``flowcheck.cluster.kube`` turns every failed call into one of these at the
boundary (``kube.api_error``), so a caller writes ``except NotFound`` or ``except Conflict`` and
still gets a one-line message naming what was being done and quoting the API server.

The classes follow the API server's ``Status`` reasons (``metav1.StatusReason``: ``NotFound``,
``AlreadyExists``/``Conflict``, ``Invalid``, ``Forbidden``, ...), chosen by HTTP status as the
client sees it (apimachinery ``pkg/api/errors``: 404 NotFound, 409 AlreadyExists or Conflict,
422 Invalid, 403 Forbidden, 401 Unauthorized, 410 Gone/Expired, 429 TooManyRequests, 5xx
InternalError/ServiceUnavailable/Timeout). Each keeps the status, the reason, the API server's
message and the decoded ``Status`` body (``payload``) for callers that need more.
"""

from __future__ import annotations

from typing import Any, ClassVar

from flowcheck.errors import ClusterError


class ApiError(ClusterError):
    """The API server answered a request with an error status."""

    statuses: ClassVar[tuple[int, ...]] = ()

    def __init__(self, action: str, status: int, reason: str, api_message: str, *,
                 payload: dict[str, Any] | None = None, context: str = "", text: str | None = None) -> None:
        self.status = status
        self.reason = reason
        self.api_message = api_message
        self.payload = payload
        super().__init__(text if text is not None else f"{action}: {self.summary}", action=action, context=context)

    @property
    def summary(self) -> str:
        """``422 Invalid: CiliumNetworkPolicy.cilium.io "x" is invalid: ...``: the API server's own words."""
        head = " ".join(str(p) for p in (self.status or None, self.reason) if p)
        if not self.api_message:
            return head or "the API server refused the request"
        return f"{head}: {self.api_message}" if head else self.api_message

    @staticmethod
    def for_status(status: int) -> type[ApiError]:
        """The class for an HTTP status (``ApiError`` itself for one without its own class)."""
        for cls in _BY_STATUS:
            if status in cls.statuses:
                return cls
        return ServerError if status >= 500 else ApiError


class BadRequest(ApiError):
    statuses = (400,)


class Unauthorized(ApiError):
    """The credentials of the kube context were not accepted."""

    statuses = (401,)


class Forbidden(ApiError):
    """The kube context's user may not do this (RBAC)."""

    statuses = (403,)


class NotFound(ApiError):
    """The object (or, for a custom resource, its type) does not exist."""

    statuses = (404,)


class Conflict(ApiError):
    """It already exists, or it changed since it was read (a stale ``resourceVersion``)."""

    statuses = (409,)


class Gone(ApiError):
    """A watch's ``resourceVersion`` is too old to resume from."""

    statuses = (410,)


class Invalid(ApiError):
    """The object does not pass the API server's validation (its message names the fields)."""

    statuses = (422,)


class TooManyRequests(ApiError):
    statuses = (429,)


class ServerError(ApiError):
    """The API server failed (5xx): internal error, unavailable, timeout."""


_BY_STATUS: tuple[type[ApiError], ...] = (BadRequest, Unauthorized, Forbidden, NotFound, Conflict, Gone, Invalid,
                                          TooManyRequests)


class ApiUnreachable(ClusterError):
    """Nothing answered: the API server of the context could not be reached (or the connection broke)."""

    def __init__(self, action: str, *, context: str, server: str, problem: str) -> None:
        self.server = server
        self.problem = problem
        where = f"context {context}" if context else "the kube context"
        text = (f"cannot reach the Kubernetes API server of {where}" + (f" ({server})" if server else "")
                + f": {problem}")
        self.unreachable_text = text
        super().__init__(f"{action}: {text}", action=action, context=context)
