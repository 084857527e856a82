"""How each verdict looks in a report, and how a mismatch is described -- one vocabulary for all formats.

Colours follow Hubble UI, which users already read: **green** for what went through (Hubble's
FORWARDED; our ``allowed``), **red** for what policy dropped at L3/L4 (Hubble's DROPPED; our
``dropped``), and **amber** for everything that is neither: ``l7-denied`` (the proxy answered 403 /
REFUSED -- a policy verdict, drawn solid amber) and ``unknown``, ``refused``, ``error`` (the model
could not decide, or the probe could not give a policy answer -- drawn amber with stripes in HTML,
because they are never a pass). Every mark also carries its word, so nothing depends on colour.

A cell is *mismatched* when intent and model disagree (``CheckedFlow.intent_mismatch``) or when the
cluster did something other than expected (``CheckedFlow.live_mismatch``); the table marks it
``!N`` and the mismatch list below the table explains entry N.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowcheck.report.records import CheckedFlow
from flowcheck.verdict import Verdict


@dataclass(frozen=True, slots=True)
class Mark:
    """The presentation of one verdict: its word, colour family, emoji (Markdown) and ANSI colour."""

    word: str
    tone: str  # "green" | "red" | "amber"
    emoji: str
    ansi: str  # SGR parameters, e.g. "32" for green
    meaning: str


MARKS: dict[Verdict, Mark] = {
    Verdict.ALLOWED: Mark("allowed", "green", "🟢", "32", "reached the server"),
    Verdict.DROPPED: Mark("dropped", "red", "🔴", "31", "dropped by policy at L3/L4 (client timed out)"),
    Verdict.L7_DENIED: Mark("l7-denied", "amber", "🟠", "33", "denied by the L7 proxy (HTTP 403 / DNS REFUSED)"),
    Verdict.UNKNOWN: Mark("unknown", "amber", "🟡", "33", "the model cannot decide (see its reasons)"),
    Verdict.REFUSED: Mark("refused", "amber", "🟡", "33", "connection refused: nothing listens (a set-up bug)"),
    Verdict.ERROR: Mark("error", "amber", "🟡", "33", "the probe itself failed"),
}

MISMATCH_MARK = "!"
"""Prefix of the mismatch reference in a cell (``dropped !2`` = mismatch 2 in the list below)."""

PREDICTED_MARK = "~"
"""Prefix of a cell the model predicted but nobody probed, in a run where other cells were probed."""

EMPTY_CELL = "-"
"""A source/destination pair no flow checked."""


def cell_basis(probed: bool) -> str:
    """What the cells of a table show, for its legend."""
    return "the observed outcome where probed, else the model's verdict" if probed \
        else "the model's verdicts; nothing was probed"


def mismatch_kinds(flow: CheckedFlow) -> list[str]:
    """Plain-language statements of what disagrees, e.g. ``intent vs model: expected allowed, model dropped``."""
    kinds: list[str] = []
    if flow.intent_mismatch and flow.expected is not None:
        kinds.append(f"intent vs model: expected {flow.expected.value}, the model predicts {flow.model.value}")
    if flow.live_mismatch and flow.observed is not None:
        if flow.expected is not None:
            kinds.append(f"live vs expected: expected {flow.expected.value}, observed {flow.observed.value}")
        else:
            kinds.append(f"live vs model: the model predicts {flow.model.value}, observed {flow.observed.value}")
    return kinds


def expected_text(flow: CheckedFlow) -> str:
    """The stated intent, or ``(none stated)`` when the flow has none (a model plan)."""
    return "(none stated)" if flow.expected is None else flow.expected.value


def observed_text(flow: CheckedFlow) -> str:
    """``dropped (2 attempts)``, or ``not probed`` (+ why) when the flow was not probed."""
    if flow.observed is None:
        return f"not probed ({flow.observed_detail})" if flow.observed_detail else "not probed"
    text = flow.observed.value
    extras = []
    if flow.attempts > 1:
        extras.append(f"{flow.attempts} attempts")
    if flow.observed_detail:
        extras.append(flow.observed_detail)
    if flow.probed_via:  # where: which probe pods, which placement (a path probed both ways has two records)
        nodes = f" (nodes {flow.source_node} -> {flow.destination_node})" if flow.source_node else ""
        extras.append(f"{flow.placement or 'probed'}: {flow.probed_via}{nodes}")
    return f"{text} ({'; '.join(extras)})" if extras else text
