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
