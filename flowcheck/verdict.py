"""Verdicts: the shared vocabulary of the model, the probe classifier and the reports.

A *verdict* says what policy did to a flow (docs/contracts.md, "Verdicts"): ``allowed``,
``dropped`` at L3/L4, ``l7-denied`` by Cilium's proxy, or ``unknown`` when the model cannot decide. Live probing adds
two *outcomes* that are not policy verdicts and can never count as a pass: ``refused`` (an RST:
nothing listens, a set-up bug) and ``error`` (the probe itself failed). Both the model and the
probe layers import this module; it imports nothing of flowcheck, so the layers stay independent.
"""

from __future__ import annotations

import enum


class Verdict(enum.StrEnum):
    """What happened (or would happen) to one flow. The string values are the wire format."""

    ALLOWED = "allowed"
    DROPPED = "dropped"
    L7_DENIED = "l7-denied"
    UNKNOWN = "unknown"
    # Outcomes of live probing that are not policy verdicts:
    REFUSED = "refused"
    ERROR = "error"

    @classmethod
    def parse(cls, text: str) -> Verdict:
        """Parse a verdict name as users write it (``l7-denied``, ``L7_DENIED`` and ``l7_denied`` all work)."""
        norm = text.strip().lower().replace("_", "-")
        for member in cls:
            if member.value == norm:
                return member
        names = ", ".join(m.value for m in cls)
        raise ValueError(f"unknown verdict {text!r}; expected one of {names}")


EXPECTABLE_VERDICTS: tuple[Verdict, ...] = (Verdict.ALLOWED, Verdict.DROPPED, Verdict.L7_DENIED)
