"""Names and numbers every layer shares, defined once.

Like ``verdict`` and ``errors``, this module imports nothing of flowcheck, so the model, the probe
layer and everything above them can use it without depending on each other. The probe agent and
server (``flowcheck/probe/agent.py``, ``server.py``) run alone inside pods on the standard library
and keep their own copies; ``tests/probe/test_shared_constants.py`` checks the copies agree.
"""

from __future__ import annotations

import re

DNS_PORT = 53
"""Where a DNS query goes when the path names no port (kube-dns serves UDP and TCP 53)."""

HTTP_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
"""An RFC 9110 ``token``: what an HTTP method and a header name may be."""

INTENT_FILE_SUFFIXES = (".flowcheck.yaml", ".flowcheck.yml")
"""How an intent file is named (docs/contracts.md, "Intent files"): pytest collects such files as tests."""


def counted(count: int, noun: str) -> str:
    """``1 namespace``, ``3 namespaces``: a count as people write it (regular plurals only)."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


HTTP_METHODS = frozenset((
    "ACL", "BASELINE-CONTROL", "BIND", "CHECKIN", "CHECKOUT", "CONNECT", "COPY", "DELETE", "GET", "HEAD", "LABEL",
    "LINK", "LOCK", "MERGE", "MKACTIVITY", "MKCALENDAR", "MKCOL", "MKREDIRECTREF", "MKWORKSPACE", "MOVE",
    "OPTIONS", "ORDERPATCH", "PATCH", "POST", "PRI", "PROPFIND", "PROPPATCH", "PURGE", "PUT", "QUERY", "REBIND",
    "REPORT", "SEARCH", "TRACE", "UNBIND", "UNCHECKOUT", "UNLINK", "UNLOCK", "UPDATE", "UPDATEREDIRECTREF",
    "VERSION-CONTROL"))
"""IANA's HTTP Method Registry, plus PURGE (caches): methods taken as meant, never as typos."""

_COMMON_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE")


def http_method_typo(method: str) -> str | None:
    """The common method ``method`` is one slip away from (``POTS`` -> ``POST``), if it is not a method itself.

    HTTP allows extension methods, so an unknown token is valid; but one a single edit (a letter added,
    dropped, changed or two swapped) from GET or POST is far likelier a typo, and a typo here makes an
    intended ``allowed`` silently test something else.
    """
    upper = method.upper()
    if upper in HTTP_METHODS:
        return None
    return next((known for known in _COMMON_METHODS if _one_edit_apart(upper, known)), None)


def http_method_mistake(method: str) -> str | None:
    """What is wrong with ``method`` as the HTTP method of a request one states, or None: not a token, or
    a typo (``http_method_typo``). Every entry point that reads a request says it in these words."""
    if not HTTP_TOKEN.match(method):
        return f"expected an HTTP method (a token such as GET), got {method!r}"
    typo = http_method_typo(method)
    return None if typo is None else f"{method} is not an HTTP method; did you mean {typo}?"


def _one_edit_apart(a: str, b: str) -> bool:
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
                                  and a[diff[1]] == b[diff[0]])
    short, long = sorted((a, b), key=len)
    return any(long[:i] + long[i + 1:] == short for i in range(len(long)))
